package dev.ncro.engine;

import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.health.Ordering;
import dev.ncro.health.ProbeScheduler;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.trust.Filters;
import dev.ncro.trust.Narinfo;
import dev.ncro.trust.PublicKey;
import dev.ncro.trust.Signatures;
import dev.ncro.config.Netrc;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The upstreams and what ncro knows of each: its tier, health, trusted keys, path filters,
 * whether ncro logs in to it, and its two load limits (narinfo requests in flight, NAR
 * streams). The configured ones are fixed; discovered ones ({@code discovery.enabled}) come
 * and go at run time. Readers see one immutable {@link Snapshot} (copy-on-write): a race
 * takes its tiers once, an upstream removed after that is never chosen again, and work
 * already under way with it keeps finding its health and limits (a removed upstream's entry
 * is kept, and revived should the same URL be discovered again).
 */
final class Upstreams {
    private static final Logger LOG = LoggerFactory.getLogger(Upstreams.class);

    /** Everything kept per upstream. */
    private record Entry(UpstreamHealth health, List<PublicKey> keys, List<Filters.Rule> filters,
            AsyncLimiter lookups, AsyncLimiter streams) {}

    /** Who is in, and in which tier; replaced whole on every change. */
    private record Snapshot(List<Upstream> inOrder, List<List<Upstream>> tiers, Map<String, Upstream> byBase) {
        static Snapshot of(List<Upstream> inOrder) {
            TreeMap<Integer, List<Upstream>> byPriority = new TreeMap<>();
            Map<String, Upstream> byBase = new LinkedHashMap<>();
            for (Upstream u : inOrder) {
                byPriority.computeIfAbsent(u.priority(), p -> new ArrayList<>()).add(u);
                byBase.put(u.base().toString(), u);
            }
            return new Snapshot(List.copyOf(inOrder), byPriority.values().stream().map(List::copyOf).toList(),
                    java.util.Collections.unmodifiableMap(byBase));
        }
    }

    private final NcroConfig config;
    private final InstantSource clock;
    private final Executor executor;
    private volatile Snapshot snapshot;
    private final Map<Upstream, Entry> entries = new java.util.concurrent.ConcurrentHashMap<>();
    /** Discovered upstreams ever added, by base URL: a returning cache gets its old record back. */
    private final Map<String, Upstream> discovered = new LinkedHashMap<>();
    private final Set<Upstream> withLogin = new HashSet<>();

    /** @param executor where a queued request starts once a slot frees */
    Upstreams(NcroConfig config, InstantSource clock, Executor executor) {
        this.config = config;
        this.clock = clock;
        this.executor = executor;
        List<Upstream> all = new ArrayList<>();
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = new Upstream(u.url(), u.priority(), i, u.timeout().connect(),
                    u.timeout().response().orElse(null), u.timeout().firstByte(), u.redirectHosts());
            all.add(upstream);
            List<PublicKey> keys = u.keys();
            if (keys.isEmpty()) {
                LOG.warn("upstream {} has no public_key: its narinfos are served without a signature check", upstream);
            }
            entries.put(upstream, entry(upstream, keys, u.filters()));
        }
        this.snapshot = Snapshot.of(all);
    }

    private Entry entry(Upstream upstream, List<PublicKey> keys, List<Filters.Rule> filters) {
        NcroConfig.MassQuery mq = config.cache().massQuery();
        return new Entry(new UpstreamHealth(upstream.name(), config.cache().latencyAlpha(), clock), keys, filters,
                new AsyncLimiter(mq.perUpstreamMaxInflight(), executor), new AsyncLimiter(mq.perUpstreamMaxStreams(), executor));
    }

    /**
     * Adds a discovered cache at {@code discovery.priority}, trusting only narinfos signed by
     * {@code discovery.public_keys}.
     *
     * @return the upstream, or null when this URL is already in (configured or discovered)
     */
    synchronized Upstream addDiscovered(java.net.URI base) {
        Snapshot now = snapshot;
        Upstream upstream = discovered.get(new Upstream(base, 0, 0).base().toString());
        if (upstream == null) {
            upstream = new Upstream(base, config.discovery().priority(), config.upstreams().size() + discovered.size());
            if (now.byBase().containsKey(upstream.base().toString())) return null;
            discovered.put(upstream.base().toString(), upstream);
            entries.put(upstream, entry(upstream, config.discovery().publicKeys(), List.of()));
        } else if (now.byBase().containsKey(upstream.base().toString())) {
            return null;
        }
        List<Upstream> next = new ArrayList<>(now.inOrder());
        next.add(upstream);
        snapshot = Snapshot.of(next);
        return upstream;
    }

    /** Removes a discovered upstream; a configured one stays. @return whether it was in */
    synchronized boolean removeDiscovered(Upstream upstream) {
        Snapshot now = snapshot;
        if (!discovered.containsValue(upstream) || !now.inOrder().contains(upstream)) return false;
        List<Upstream> next = new ArrayList<>(now.inOrder());
        next.remove(upstream);
        snapshot = Snapshot.of(next);
        return true;
    }

    /**
     * Gives {@code client} each upstream's login: {@code username}/{@code password}, else the
     * netrc's {@code machine} entry for its host, else the netrc's {@code default} entry —
     * that one only after a 401 challenge, or it would go to every upstream, cache.nixos.org
     * included.
     */
    void logIn(NcroConfig config, UpstreamClient client) {
        Netrc netrc = config.server().netrc().orElse(null);
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = all().get(i);
            if (u.username().isPresent()) {
                client.login(upstream, u.username().get(), u.password().orElse(""));
                withLogin.add(upstream);
            } else if (netrc != null) {
                var machine = netrc.machine(u.url().getHost());
                if (machine.isPresent()) {
                    client.login(upstream, machine.get().user(), machine.get().password());
                    withLogin.add(upstream);
                } else if (netrc.fallback().isPresent()) {
                    var login = netrc.fallback().get();
                    client.loginOnChallenge(upstream, login.user(), login.password());
                    withLogin.add(upstream);
                }
            }
        }
    }

    /** In configuration order, discovered ones last in the order they were found. */
    List<Upstream> all() {
        return snapshot.inOrder();
    }

    int size() {
        return snapshot.inOrder().size();
    }

    /** Upstreams grouped by priority, lowest number first, each in configuration order. */
    List<List<Upstream>> tiers() {
        return snapshot.tiers();
    }

    /** Preference order: tiers first, then latency within a tier (see {@link Ordering}). */
    List<Upstream> preference() {
        Snapshot now = snapshot;
        List<Upstream> order = new ArrayList<>(now.inOrder().size());
        for (List<Upstream> tier : now.tiers()) order.addAll(byLatency(tier));
        return order;
    }

    List<Upstream> byLatency(List<Upstream> tier) {
        return Ordering.byLatency(tier, u -> health(u).emaMs(), Upstream::order);
    }

    /** The upstream with this base URL (as routes record it), or null. */
    Upstream byBase(String base) {
        return snapshot.byBase().get(base);
    }

    /** The upstream under whose root an absolute URL lies, or null. */
    Upstream owning(String absoluteUrl) {
        for (Upstream u : snapshot.inOrder()) if (absoluteUrl.startsWith(u.base() + "/")) return u;
        return null;
    }

    UpstreamHealth health(Upstream upstream) {
        return entries.get(upstream).health();
    }

    List<ProbeScheduler.Target> probeTargets() {
        return all().stream().map(this::probeTarget).toList();
    }

    ProbeScheduler.Target probeTarget(Upstream u) {
        return new ProbeScheduler.Target(u, health(u));
    }

    boolean hasLogin(Upstream upstream) {
        return withLogin.contains(upstream);
    }

    /** Why this upstream's narinfo must not be cached or served, or null when it is trusted. */
    String distrust(Upstream upstream, Narinfo narinfo) {
        List<PublicKey> keys = entries.get(upstream).keys();
        return keys.isEmpty() ? null : Signatures.reject(narinfo, keys);
    }

    /** Why this upstream's filters exclude the path, or null. */
    String filtered(Upstream upstream, Narinfo narinfo) {
        List<Filters.Rule> rules = entries.get(upstream).filters();
        return rules.isEmpty() ? null : Filters.reject(narinfo, rules);
    }

    /** cache.mass_query.per_upstream_max_inflight: narinfo requests to it queue beyond this. */
    AsyncLimiter lookupGate(Upstream upstream) {
        return entries.get(upstream).lookups();
    }

    /** cache.mass_query.per_upstream_max_streams: NAR streams from it queue beyond this. */
    AsyncLimiter streamGate(Upstream upstream) {
        return entries.get(upstream).streams();
    }

    int streamsQueued() {
        return entries.values().stream().mapToInt(e -> e.streams().queued()).sum();
    }

    /**
     * How long a cooling upstream asked as the last resort of a miss may take: a second, or
     * a few times its usual latency if that is longer.
     */
    Duration lastResortTimeout(Upstream upstream) {
        double ema = health(upstream).emaMs();
        long ms = Double.isNaN(ema) ? 0 : Math.round(ema * Defaults.LAST_RESORT_EMA_FACTOR);
        return Duration.ofMillis(Math.max(Defaults.LAST_RESORT_TIMEOUT.toMillis(), ms));
    }
}
