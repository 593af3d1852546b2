package dev.ncro.upstream;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import java.util.function.ToLongFunction;
import org.apache.hc.client5.http.DnsResolver;
import org.apache.hc.core5.net.InetAddressUtils;

/**
 * Host name lookups that never block the thread asking. {@link #lookup} runs the
 * {@link Resolver} on the client's own DNS executor (one lookup per host at a time, however
 * many requests wait for it) and remembers the answer for {@code ttl}, a failure for
 * {@code failureTtl}. As HttpComponents' {@link DnsResolver} it only reads what was looked up:
 * a connection request satisfied later on an I/O thread never waits for DNS, and it connects to
 * the addresses the request's lookup (and the redirect policy's check) saw, unless another
 * request's refresh of the same host (after {@code ttl}) replaced them in between: the pool is
 * keyed by host name and asks by host name, so addresses are not pinned per request.
 *
 * <p>IP literals are parsed, never looked up. The answer HttpComponents reads is the last good
 * one even after it expired, so a request queued for a pooled connection while a refresh fails
 * still connects where its lookup said.
 *
 * <h2>Bounded</h2>
 * Hosts are the upstreams and their redirect targets, and a CDN may name a new host for every
 * NAR, so what is remembered is bounded. Once more than {@value #SWEEP_ABOVE} hosts are held,
 * a sweep (at most once per {@code ttl}, or when the count doubles) forgets expired answers and
 * last good answers that expired more than {@link #RETAIN_LAST_GOOD} ago (a host in use is
 * looked up again every {@code ttl}, so only hosts nobody asked for that long go). Beyond
 * {@value #MAX_HOSTS} hosts the oldest answers are forgotten, however fresh.
 */
final class HostCache implements DnsResolver {
    /** Hosts held before sweeps start. */
    static final int SWEEP_ABOVE = 1024;
    /** Hosts held at most; above it the oldest answers go (a tenth more, so eviction is rare). */
    static final int MAX_HOSTS = 10_000;
    /** How long after its answer expired a host's last good addresses are still served. */
    static final Duration RETAIN_LAST_GOOD = Duration.ofMinutes(10);

    private record Answer(InetAddress[] addresses, UnknownHostException failure, long expiresNanos) {}

    /** The last successful answer for a host, and when it expired (or expires). */
    private record Good(InetAddress[] addresses, long expiresNanos) {}

    private final Resolver resolver;
    private final Executor executor;
    private final LongSupplier nanoClock;
    private final long ttlNanos;
    private final long failureTtlNanos;
    private final Map<String, Answer> answers = new ConcurrentHashMap<>();
    /** The last successful answer per host, for HttpComponents' connector. */
    private final Map<String, Good> lastGood = new ConcurrentHashMap<>();
    private final Map<String, CompletableFuture<InetAddress[]>> pending = new ConcurrentHashMap<>();
    private final long retainNanos;
    /** One sweep at a time; a lookup finding one under way leaves it to finish. */
    private final ReentrantLock sweeping = new ReentrantLock();
    private volatile long lastSweepNanos;
    private volatile int sweepAbove = SWEEP_ABOVE;

    HostCache(Resolver resolver, Executor executor, LongSupplier nanoClock, Duration ttl, Duration failureTtl) {
        this.resolver = resolver;
        this.executor = executor;
        this.nanoClock = nanoClock;
        this.ttlNanos = ttl.toNanos();
        this.failureTtlNanos = failureTtl.toNanos();
        this.retainNanos = Math.max(RETAIN_LAST_GOOD.toNanos(), ttlNanos);
        this.lastSweepNanos = nanoClock.getAsLong();
    }

    /**
     * The addresses of {@code host}: at once when remembered, otherwise when the DNS executor
     * has looked it up. Fails with {@link UnknownHostException}. Never blocks.
     */
    CompletableFuture<InetAddress[]> lookup(String host) {
        String key = key(host);
        InetAddress[] literal = literal(key);
        if (literal != null) return CompletableFuture.completedFuture(literal);
        Answer known = answers.get(key);
        if (known != null && nanoClock.getAsLong() - known.expiresNanos() < 0) {
            return known.failure() != null ? CompletableFuture.failedFuture(known.failure())
                    : CompletableFuture.completedFuture(known.addresses());
        }
        CompletableFuture<InetAddress[]> mine = new CompletableFuture<>();
        CompletableFuture<InetAddress[]> theirs = pending.putIfAbsent(key, mine);
        if (theirs != null) return theirs;
        try {
            executor.execute(() -> resolve(key, mine));
        } catch (RejectedExecutionException e) {
            pending.remove(key, mine);
            mine.completeExceptionally(unknown(key, "the upstream client is stopping"));
        }
        return mine;
    }

    private void resolve(String key, CompletableFuture<InetAddress[]> result) {
        try {
            InetAddress[] addresses = resolver.resolve(key);
            if (addresses == null || addresses.length == 0) throw unknown(key, "no addresses");
            addresses = addresses.clone();
            long expires = nanoClock.getAsLong() + ttlNanos;
            lastGood.put(key, new Good(addresses, expires));
            remember(key, new Answer(addresses, null, expires));
            result.complete(addresses);
        } catch (UnknownHostException e) {
            remember(key, new Answer(null, e, nanoClock.getAsLong() + failureTtlNanos));
            result.completeExceptionally(e);
        } catch (RuntimeException e) {
            UnknownHostException failure = unknown(key, e.toString());
            remember(key, new Answer(null, failure, nanoClock.getAsLong() + failureTtlNanos));
            result.completeExceptionally(failure);
        } finally {
            pending.remove(key, result);
        }
    }

    private void remember(String key, Answer answer) {
        answers.put(key, answer);
        long now = nanoClock.getAsLong();
        int held = Math.max(answers.size(), lastGood.size());
        boolean due = held > sweepAbove || (held > SWEEP_ABOVE && now - lastSweepNanos >= ttlNanos);
        if (due && sweeping.tryLock()) {
            try {
                sweep(now);
            } finally {
                sweeping.unlock();
            }
        }
    }

    /** Forgets expired answers, last good answers past their retention, and the oldest beyond the cap. */
    private void sweep(long now) {
        answers.values().removeIf(a -> now - a.expiresNanos() >= 0);
        lastGood.values().removeIf(g -> now - g.expiresNanos() >= retainNanos);
        for (String key : oldest(lastGood, Good::expiresNanos, now)) {
            Good g = lastGood.get(key);
            if (g != null && lastGood.remove(key, g)) {
                // no fresh answer may outlive the addresses HttpComponents would connect to
                answers.computeIfPresent(key, (k, a) -> a.failure() == null ? null : a);
            }
        }
        for (String key : oldest(answers, Answer::expiresNanos, now)) {
            Answer a = answers.get(key);
            if (a != null) answers.remove(key, a);
        }
        lastSweepNanos = now;
        int held = Math.max(answers.size(), lastGood.size());
        sweepAbove = Math.max(SWEEP_ABOVE, Math.min(MAX_HOSTS, 2 * held));
    }

    /** The keys to evict from {@code map} for it to hold a tenth less than {@link #MAX_HOSTS}, oldest first. */
    private static <V> List<String> oldest(Map<String, V> map, ToLongFunction<V> expiresNanos, long now) {
        int excess = map.size() - MAX_HOSTS;
        if (excess <= 0) return List.of();
        return map.entrySet().stream()
                .sorted(Comparator.comparingLong(e -> expiresNanos.applyAsLong(e.getValue()) - now))
                .limit(excess + MAX_HOSTS / 10)
                .map(Map.Entry::getKey)
                .toList();
    }

    /** Hosts held (the larger of answers and last good answers); for tests. */
    int size() {
        return Math.max(answers.size(), lastGood.size());
    }

    /** For HttpComponents: what {@link #lookup} found, never a lookup of its own. */
    @Override
    public InetAddress[] resolve(String host) throws UnknownHostException {
        String key = key(host);
        InetAddress[] literal = literal(key);
        if (literal != null) return literal;
        Good known = lastGood.get(key);
        if (known == null) throw unknown(key, "not looked up before connecting");
        return known.addresses().clone();
    }

    @Override
    public String resolveCanonicalHostname(String host) {
        return host; // only Kerberos-style auth asks; ncro uses Basic
    }

    private static String key(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return h.startsWith("[") && h.endsWith("]") ? h.substring(1, h.length() - 1) : h;
    }

    /** The address an IP literal names, or null for a host name. */
    private static InetAddress[] literal(String host) {
        if (!InetAddressUtils.isIPv4(host) && !InetAddressUtils.isIPv6(host)) return null;
        try {
            return new InetAddress[] {InetAddress.getByName(host)}; // a literal: parsed, not looked up
        } catch (UnknownHostException e) {
            return null;
        }
    }

    private static UnknownHostException unknown(String host, String why) {
        return new UnknownHostException(host + ": " + why);
    }
}
