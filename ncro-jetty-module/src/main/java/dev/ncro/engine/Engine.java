package dev.ncro.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ncro.api.Answer;
import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.config.NcroConfig;
import dev.ncro.health.Ordering;
import dev.ncro.health.ProbeScheduler;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.health.UpstreamState;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.route.RouteStore;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import org.eclipse.jetty.util.component.ContainerLifeCycle;

/**
 * The ncro engine: narinfo lookups (remembered routes first, then one race per hash however
 * many clients ask at once), NAR routing and streaming, upstream health and metrics. A
 * server-level lifecycle bean; it owns — and so starts, and stops in reverse — the route
 * store, the upstream HTTP client, the probe scheduler and the timer they share.
 */
public final class Engine extends ContainerLifeCycle implements NcroService {
    private static final byte[] REMEMBERED_NOT_FOUND =
            "not found in any upstream (remembered)\n".getBytes(StandardCharsets.UTF_8);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final NcroConfig config;
    private final List<List<Upstream>> tiers;
    private final Map<String, Upstream> byBase = new LinkedHashMap<>();
    private final Map<Upstream, UpstreamHealth> health = new LinkedHashMap<>();
    private final Map<Upstream, List<dev.ncro.trust.PublicKey>> keys = new LinkedHashMap<>();
    private final Map<Upstream, List<dev.ncro.trust.Filters.Rule>> filters = new LinkedHashMap<>();
    private final UpstreamClient client;
    private final RouteStore routes;
    private final ProbeScheduler probes;
    private final NcroMetrics metrics = new NcroMetrics();
    private final String cacheInfo;
    /** Single-flight: the race in progress for each hash. */
    private final ConcurrentHashMap<String, CompletableFuture<NarinfoAnswer>> inflight = new ConcurrentHashMap<>();
    private volatile ScheduledExecutorService timer;
    /** cache.mass_query.max_concurrent_races: further lookups queue for a slot. */
    private final AsyncLimiter races;
    /** cache.mass_query.per_upstream_max_inflight: narinfo requests to one upstream queue beyond it. */
    private final Map<Upstream, AsyncLimiter> gates = new LinkedHashMap<>();

    public Engine(NcroConfig config) {
        this(config, Path.of(config.cache().dbPath()), InstantSource.system());
    }

    public Engine(NcroConfig config, Path dbPath, InstantSource clock) {
        this.config = config;
        TreeMap<Integer, List<Upstream>> byPriority = new TreeMap<>();
        List<ProbeScheduler.Target> targets = new ArrayList<>();
        List<Upstream> inConfigOrder = new ArrayList<>();
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = new Upstream(u.url(), u.priority(), i,
                    u.timeout().connect() != null ? u.timeout().connect() : config.server().connectTimeout(),
                    u.timeout().response(),
                    u.timeout().firstByte() != null ? u.timeout().firstByte() : config.server().firstByteTimeout(),
                    java.util.Set.copyOf(u.redirectHosts()));
            byPriority.computeIfAbsent(upstream.priority(), p -> new ArrayList<>()).add(upstream);
            byBase.put(upstream.base().toString(), upstream);
            inConfigOrder.add(upstream);
            keys.put(upstream, u.keys());
            filters.put(upstream, u.filters());
            if (keys.get(upstream).isEmpty()) {
                org.slf4j.LoggerFactory.getLogger(Engine.class).warn(
                        "upstream {} has no public_key: its narinfos are served without a signature check", upstream);
            }
            UpstreamHealth h = new UpstreamHealth(upstream.name(), config.cache().latencyAlpha(), clock);
            health.put(upstream, h);
            targets.add(new ProbeScheduler.Target(upstream, h));
        }
        this.tiers = List.copyOf(byPriority.values().stream().map(List::copyOf).toList());
        NcroConfig.MassQuery mq = config.cache().massQuery();
        java.util.concurrent.Executor handOff = java.util.concurrent.ForkJoinPool.commonPool(); // tasks only send requests
        this.races = new AsyncLimiter(mq.maxConcurrentRaces(), handOff);
        byBase.values().forEach(u -> gates.put(u, new AsyncLimiter(mq.perUpstreamMaxInflight(), handOff)));
        this.cacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: " + config.server().cachePriority() + "\n";
        NcroConfig.Cache cache = config.cache();
        this.routes = new RouteStore(dbPath, cache.maxEntries(), cache.ttl(), cache.negativeTtl(),
                cache.massQuery().inMemoryNegativeTtl(), clock);
        this.client = new UpstreamClient(config.server().connectTimeout(), List.copyOf(byBase.values()));
        dev.ncro.upstream.Netrc netrc = null;
        if (!config.server().netrcFile().isEmpty()) {
            try {
                netrc = dev.ncro.upstream.Netrc.read(Path.of(config.server().netrcFile()));
            } catch (java.io.IOException e) {
                throw new IllegalStateException("cannot read server.netrc_file " + config.server().netrcFile() + ": " + e.getMessage(), e);
            }
        }
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            Upstream upstream = inConfigOrder.get(i);
            if (u.username() != null) {
                client.login(upstream, u.username(), u.password());
            } else if (netrc != null) {
                var machine = netrc.machine(u.url().getHost());
                if (machine.isPresent()) {
                    client.login(upstream, machine.get().user(), machine.get().password());
                } else {
                    // a default entry would otherwise go to every upstream, cache.nixos.org included
                    netrc.fallback().ifPresent(l -> client.loginOnChallenge(upstream, l.user(), l.password()));
                }
            }
        }
        this.probes = new ProbeScheduler(targets, client, config.health().probeInterval(),
                config.health().probeTimeout(), () -> timer, h -> routes.saveHealth(h.snapshot()));
        addBean(routes, true);
        addBean(client, true);
        addBean(probes, true);
        health.values().forEach(h -> addBean(h, false)); // JMX, when Jetty's jmx module is on
        metrics.registerCallbacks(routes::size, () -> {
            Map<String, Double> states = new LinkedHashMap<>();
            health.forEach((u, h) -> states.put(u.name(), (double) h.state().ordinal()));
            return states;
        });
    }

    @Override
    protected void doStart() throws Exception {
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, r -> {
            Thread thread = Executors.defaultThreadFactory().newThread(r);
            thread.setName("ncro-timer");
            thread.setDaemon(true);
            return thread;
        });
        t.setRemoveOnCancelPolicy(true); // a won race's deadline must not linger in the queue
        timer = t;
        // the route store first, so that each upstream's health is seeded before probes and races
        start(routes);
        Map<String, UpstreamHealth.Snapshot> persisted = routes.loadHealth();
        health.forEach((u, h) -> {
            UpstreamHealth.Snapshot s = persisted.get(u.name());
            if (s != null) h.seed(s);
        });
        super.doStart(); // starts the rest; the running route store is left as it is
    }

    @Override
    protected void doStop() throws Exception {
        super.doStop();
        timer.shutdownNow();
    }

    /** Upstreams in preference order: tiers first, then latency within a tier (see {@link Ordering}). */
    public List<Upstream> upstreams() {
        List<Upstream> order = new ArrayList<>();
        for (List<Upstream> tier : tiers) {
            order.addAll(Ordering.byLatency(tier, u -> health.get(u).emaMs(), Upstream::priority));
        }
        return order;
    }

    public RouteStore routes() {
        return routes;
    }

    public ProbeScheduler probes() {
        return probes;
    }

    public UpstreamHealth health(Upstream upstream) {
        return health.get(upstream);
    }

    public NcroMetrics metricsRegistry() {
        return metrics;
    }

    @Override
    public String cacheInfo() {
        return cacheInfo;
    }

    @Override
    public CompletableFuture<NarinfoAnswer> narinfo(String hash) {
        CompletableFuture<NarinfoAnswer> answer = lookup(hash);
        answer.thenAccept(a -> metrics.narinfoRequests.labelValues(String.valueOf(a.status())).inc());
        return answer;
    }

    private CompletableFuture<NarinfoAnswer> lookup(String hash) {
        NarinfoAnswer remembered = remembered(hash);
        if (remembered != null) return CompletableFuture.completedFuture(remembered);
        metrics.narinfoCacheMisses.inc();
        CompletableFuture<NarinfoAnswer> mine = new CompletableFuture<>();
        CompletableFuture<NarinfoAnswer> running = inflight.putIfAbsent(hash, mine);
        if (running != null) {
            metrics.singleFlightWaiters.inc();
            return running.copy();
        }
        // a race that ended between the lookup above and putIfAbsent has remembered its answer
        remembered = remembered(hash);
        if (remembered != null) {
            inflight.remove(hash, mine);
            mine.complete(remembered);
            return mine.copy();
        }
        races.run(() -> race(hash, mine));
        return mine.copy();
    }

    /** Runs once the race holds one of the max_concurrent_races slots; frees it when done. */
    private void race(String hash, CompletableFuture<NarinfoAnswer> mine) {
        long start = System.nanoTime();
        List<Upstream> cooling = new ArrayList<>();
        List<List<Upstream>> raced = raceTiers(cooling);
        boolean everyoneAsked = raced.stream().mapToInt(List::size).sum() == byBase.size();
        CompletableFuture<NarinfoAnswer> answer;
        try {
            answer = new NarinfoRace(hash, raced, cooling, client, config.cache().raceDeadline(), new Observer(),
                    gates::get).start(timer);
        } catch (RuntimeException e) {
            answer = CompletableFuture.failedFuture(e); // e.g. stopping: the timer refuses new deadlines
        }
        answer.whenComplete((a, f) -> races.release());
        answer.whenComplete((answerOrNull, failure) -> {
            NarinfoAnswer a = failure == null ? answerOrNull : new NarinfoAnswer(502,
                    ("narinfo lookup failed: " + failure + "\n").getBytes(StandardCharsets.UTF_8), null);
            metrics.raceWait.observe((System.nanoTime() - start) / 1e9);
            // failures are never remembered, nor a not-found some upstream was not asked about
            if (a.status() == 404 && everyoneAsked) routes.rememberNotFound(hash);
            inflight.remove(hash, mine); // only this race's entry, never a newer one
            mine.complete(a);
        });
    }

    /**
     * The tiers to race now: Down upstreams and those cooling down after a network error are
     * left out, and so is a tier left empty. If that leaves nothing, every upstream is tried
     * anyway rather than failing blind. A Down upstream counts as absent; one only cooling
     * down is added to {@code cooling}, because it may well have the path.
     */
    private List<List<Upstream>> raceTiers(List<Upstream> cooling) {
        List<List<Upstream>> now = new ArrayList<>(tiers.size());
        for (List<Upstream> tier : tiers) {
            List<Upstream> members = new ArrayList<>();
            for (Upstream u : tier) {
                UpstreamHealth h = health.get(u);
                if (h.raceable()) members.add(u);
                else if (h.state() != UpstreamState.DOWN) cooling.add(u);
            }
            if (!members.isEmpty()) now.add(members);
        }
        if (now.isEmpty()) {
            cooling.clear();
            return tiers;
        }
        return now;
    }

    /** An answer from the route store, or null when the store knows nothing usable. */
    private NarinfoAnswer remembered(String hash) {
        RouteStore.Lookup lookup = routes.lookup(hash);
        if (lookup instanceof RouteStore.Hit hit && byBase.containsKey(hit.route().upstream())) {
            metrics.narinfoCacheHits.inc();
            return new NarinfoAnswer(200, hit.route().narinfo(), hit.route().upstream());
        }
        if (lookup instanceof RouteStore.NotFound) {
            metrics.narinfoNegativeHits.inc();
            return new NarinfoAnswer(404, REMEMBERED_NOT_FOUND, null);
        }
        return null;
    }

    private final class Observer implements NarinfoRace.Observer {
        @Override
        public byte[] won(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs) {
            String url = narinfo.url();
            String pinned = url;
            byte[] served = body;
            Upstream home = upstream; // where the NAR lives
            if (url.contains("://")) {
                // an absolute NAR URL under a configured upstream becomes relative, so the NAR
                // comes through ncro from that upstream (URL is not signed: signatures hold);
                // any other absolute URL is served as is and never fetched or pinned by ncro
                Upstream owner = byBase.values().stream()
                        .filter(u -> url.startsWith(u.base() + "/")).findFirst().orElse(null);
                if (owner != null) {
                    pinned = url.substring(owner.base().toString().length() + 1);
                    served = new String(body, StandardCharsets.UTF_8)
                            .replace("URL: " + url + "\n", "URL: " + pinned + "\n").getBytes(StandardCharsets.UTF_8);
                    home = owner;
                } else {
                    pinned = null;
                }
            }
            routes.remember(narinfo.hashPart(), home.base().toString(), served, pinned, latencyMs);
            metrics.raceWins.labelValues(upstream.name()).inc();
            return served;
        }

        @Override
        public void answered(Upstream upstream, int status, double latencyMs) {
            health.get(upstream).sample(latencyMs);
            metrics.upstreamLatency.labelValues(upstream.name()).observe(latencyMs / 1000);
        }

        @Override
        public String distrust(Upstream upstream, Narinfo narinfo) {
            List<dev.ncro.trust.PublicKey> trusted = keys.get(upstream);
            return trusted.isEmpty() ? null : dev.ncro.trust.Signatures.reject(narinfo, trusted);
        }

        @Override
        public String filtered(Upstream upstream, Narinfo narinfo) {
            List<dev.ncro.trust.Filters.Rule> rules = filters.get(upstream);
            return rules.isEmpty() ? null : dev.ncro.trust.Filters.reject(narinfo, rules);
        }

        @Override
        public void failed(Upstream upstream, Exception failure) {
            health.get(upstream).cooldown(config.cache().massQuery().upstreamCooldown());
        }
    }

    @Override
    public NarStream nar(NarRequest request, NarHandler handler) {
        Optional<Upstream> pinned = routes.upstreamForNar(request.target()).map(byBase::get);
        List<Upstream> candidates = new ArrayList<>(byBase.size());
        pinned.ifPresent(candidates::add);
        List<Upstream> preference = upstreams();
        for (Upstream u : preference) if (!candidates.contains(u) && health.get(u).raceable()) candidates.add(u);
        for (Upstream u : preference) if (!candidates.contains(u)) candidates.add(u); // Down ones last
        return new NarExchange(request, handler, candidates, pinned.isPresent(), client,
                config.server().writeTimeout(), metrics);
    }

    @Override
    public Answer health() {
        List<Map<String, Object>> upstreams = new ArrayList<>();
        int down = 0;
        boolean allActive = true;
        for (Upstream u : upstreams()) {
            UpstreamHealth.Snapshot s = health.get(u).snapshot();
            if (s.state() == UpstreamState.DOWN) down++;
            if (s.state() != UpstreamState.ACTIVE) allActive = false;
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("url", u.name());
            entry.put("priority", u.priority());
            entry.put("state", s.state().label());
            entry.put("ema_latency_ms", Double.isNaN(s.emaMs()) ? null : Math.round(s.emaMs() * 100) / 100.0);
            entry.put("consecutive_failures", s.consecutiveFailures());
            entry.put("last_probe", s.lastProbeAt() == 0 ? null : Instant.ofEpochMilli(s.lastProbeAt()).toString());
            upstreams.add(entry);
        }
        String status = down == health.size() ? "down" : allActive && routes.persistent() ? "ok" : "degraded";
        Map<String, Object> store = new LinkedHashMap<>();
        store.put("persistent", routes.persistent());
        store.put("state", routes.state());
        store.put("routes", routes.size());
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("status", status);
        report.put("upstreams", upstreams);
        report.put("route_store", store);
        try {
            return new Answer(status.equals("down") ? 503 : 200, "application/json",
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public Answer metrics() {
        return new Answer(200, metrics.contentType(), metrics.scrape());
    }
}
