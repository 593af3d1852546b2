package dev.ncro.upstream;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.LongSupplier;
import org.apache.hc.client5.http.DnsResolver;
import org.apache.hc.core5.net.InetAddressUtils;

/**
 * Host name lookups that never block the thread asking. {@link #lookup} runs the
 * {@link Resolver} on the client's own DNS executor (one lookup per host at a time, however
 * many requests wait for it) and remembers the answer for {@code ttl}, a failure for
 * {@code failureTtl}. As HttpComponents' {@link DnsResolver} it only reads what was looked up:
 * a connection request satisfied later on an I/O thread never waits for DNS, and the addresses
 * the redirect policy checked are the ones connected to.
 *
 * <p>IP literals are parsed, never looked up. The answer HttpComponents reads is the last good
 * one even after it expired, so a request queued for a pooled connection while a refresh fails
 * still connects where its lookup said.
 */
final class HostCache implements DnsResolver {
    /** Answers kept before expired ones are swept; hosts are the upstreams and their redirect targets. */
    private static final int SWEEP_ABOVE = 1024;

    private record Answer(InetAddress[] addresses, UnknownHostException failure, long expiresNanos) {}

    private final Resolver resolver;
    private final Executor executor;
    private final LongSupplier nanoClock;
    private final long ttlNanos;
    private final long failureTtlNanos;
    private final Map<String, Answer> answers = new ConcurrentHashMap<>();
    /** The last successful answer per host, for HttpComponents' connector. */
    private final Map<String, InetAddress[]> lastGood = new ConcurrentHashMap<>();
    private final Map<String, CompletableFuture<InetAddress[]>> pending = new ConcurrentHashMap<>();

    HostCache(Resolver resolver, Executor executor, LongSupplier nanoClock, Duration ttl, Duration failureTtl) {
        this.resolver = resolver;
        this.executor = executor;
        this.nanoClock = nanoClock;
        this.ttlNanos = ttl.toNanos();
        this.failureTtlNanos = failureTtl.toNanos();
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
            remember(key, new Answer(addresses, null, nanoClock.getAsLong() + ttlNanos));
            lastGood.put(key, addresses);
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
        if (answers.size() > SWEEP_ABOVE) {
            long now = nanoClock.getAsLong();
            answers.values().removeIf(a -> now - a.expiresNanos() >= 0);
        }
        answers.put(key, answer);
    }

    /** For HttpComponents: what {@link #lookup} found, never a lookup of its own. */
    @Override
    public InetAddress[] resolve(String host) throws UnknownHostException {
        String key = key(host);
        InetAddress[] literal = literal(key);
        if (literal != null) return literal;
        InetAddress[] known = lastGood.get(key);
        if (known == null) throw unknown(key, "not looked up before connecting");
        return known.clone();
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
