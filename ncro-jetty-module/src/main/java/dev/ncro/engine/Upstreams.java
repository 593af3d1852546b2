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
 * The configured upstreams and what ncro knows of each: its tier, health, trusted keys,
 * path filters, whether ncro logs in to it, and its two load limits (narinfo requests in
 * flight, NAR streams). Fixed at construction; the health records change, nothing else.
 */
final class Upstreams {
    private static final Logger LOG = LoggerFactory.getLogger(Upstreams.class);

    /** Everything kept per upstream. */
    private record Entry(UpstreamHealth health, List<PublicKey> keys, List<Filters.Rule> filters,
            AsyncLimiter lookups, AsyncLimiter streams) {}

    private final List<Upstream> inConfigOrder;
    private final List<List<Upstream>> tiers;
    private final Map<String, Upstream> byBase = new LinkedHashMap<>();
    private final Map<Upstream, Entry> entries = new LinkedHashMap<>();
    private final Set<Upstream> withLogin = new HashSet<>();

    /** @param executor where a queued request starts once a slot frees */
    Upstreams(NcroConfig config, InstantSource clock, Executor executor) {
        NcroConfig.MassQuery mq = config.cache().massQuery();
        TreeMap<Integer, List<Upstream>> byPriority = new TreeMap<>();
        List<Upstream> all = new ArrayList<>();
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = new Upstream(u.url(), u.priority(), i, u.timeout().connect(),
                    u.timeout().response().orElse(null), u.timeout().firstByte(), u.redirectHosts());
            all.add(upstream);
            byPriority.computeIfAbsent(upstream.priority(), p -> new ArrayList<>()).add(upstream);
            byBase.put(upstream.base().toString(), upstream);
            List<PublicKey> keys = u.keys();
            if (keys.isEmpty()) {
                LOG.warn("upstream {} has no public_key: its narinfos are served without a signature check", upstream);
            }
            entries.put(upstream, new Entry(new UpstreamHealth(upstream.name(), config.cache().latencyAlpha(), clock),
                    keys, u.filters(), new AsyncLimiter(mq.perUpstreamMaxInflight(), executor),
                    new AsyncLimiter(mq.perUpstreamMaxStreams(), executor)));
        }
        this.inConfigOrder = List.copyOf(all);
        this.tiers = byPriority.values().stream().map(List::copyOf).toList();
    }

    /**
     * Gives {@code client} each upstream's login: {@code username}/{@code password}, else the
     * netrc's {@code machine} entry for its host, else the netrc's {@code default} entry —
     * that one only after a 401 challenge, or it would go to every upstream, cache.nixos.org
     * included.
     */
    void logIn(NcroConfig config, UpstreamClient client) {
        Netrc netrc = config.server().netrc().orElse(null);
        for (int i = 0; i < inConfigOrder.size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = inConfigOrder.get(i);
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

    /** In configuration order. */
    List<Upstream> all() {
        return inConfigOrder;
    }

    int size() {
        return inConfigOrder.size();
    }

    /** Upstreams grouped by priority, lowest number first, each in configuration order. */
    List<List<Upstream>> tiers() {
        return tiers;
    }

    /** Preference order: tiers first, then latency within a tier (see {@link Ordering}). */
    List<Upstream> preference() {
        List<Upstream> order = new ArrayList<>(inConfigOrder.size());
        for (List<Upstream> tier : tiers) order.addAll(byLatency(tier));
        return order;
    }

    List<Upstream> byLatency(List<Upstream> tier) {
        return Ordering.byLatency(tier, u -> health(u).emaMs(), Upstream::order);
    }

    /** The upstream with this base URL (as routes record it), or null. */
    Upstream byBase(String base) {
        return byBase.get(base);
    }

    /** The upstream under whose root an absolute URL lies, or null. */
    Upstream owning(String absoluteUrl) {
        for (Upstream u : inConfigOrder) if (absoluteUrl.startsWith(u.base() + "/")) return u;
        return null;
    }

    UpstreamHealth health(Upstream upstream) {
        return entries.get(upstream).health();
    }

    List<ProbeScheduler.Target> probeTargets() {
        return inConfigOrder.stream().map(u -> new ProbeScheduler.Target(u, health(u))).toList();
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
