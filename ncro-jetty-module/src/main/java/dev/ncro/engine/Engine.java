package dev.ncro.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ncro.api.Answer;
import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.config.Defaults;
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
import java.time.Duration;
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
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;

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
    /** Deadlines, first-byte timeouts and probe schedules; only hands work to {@link #executor}. */
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler("ncro-timer", true);
    /** Parsing, signature checks, remembering, starting requests: never the timer or an I/O thread. */
    private final QueuedThreadPool executor;
    /** cache.mass_query.max_concurrent_races: further lookups queue for a slot. */
    private final AsyncLimiter races;
    /** cache.mass_query.per_upstream_max_inflight: narinfo requests to one upstream queue beyond it. */
    private final Map<Upstream, AsyncLimiter> gates = new LinkedHashMap<>();
    /** cache.mass_query.per_upstream_max_streams: NAR streams from one upstream queue beyond it. */
    private final Map<Upstream, AsyncLimiter> streamGates = new LinkedHashMap<>();
    /** Upstreams ncro logs in to: a 403 from them is a failure, not a not-found. */
    private final java.util.Set<Upstream> withLogin = new java.util.HashSet<>();
    private final NarRouting narRouting;

    public Engine(NcroConfig config) {
        this(config, Path.of(config.cache().dbPath()), InstantSource.system());
    }

    public Engine(NcroConfig config, Path dbPath, InstantSource clock) {
        this(config, dbPath, clock, dev.ncro.upstream.Resolver.SYSTEM);
    }

    /** @param resolver host name lookups for upstreams and redirect targets (tests inject a slow one) */
    public Engine(NcroConfig config, Path dbPath, InstantSource clock, dev.ncro.upstream.Resolver resolver) {
        this.config = config;
        this.executor = new QueuedThreadPool(Math.max(8, 2 * Runtime.getRuntime().availableProcessors()), 2);
        executor.setName("ncro-worker");
        executor.setDaemon(true);
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
        this.races = new AsyncLimiter(mq.maxConcurrentRaces(), executor);
        for (Upstream u : byBase.values()) {
            gates.put(u, new AsyncLimiter(mq.perUpstreamMaxInflight(), executor));
            streamGates.put(u, new AsyncLimiter(mq.perUpstreamMaxStreams(), executor));
        }
        this.narRouting = new NarRouting(health::get, this::upstreams, mq.upstreamCooldown(), clock);
        this.cacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: " + config.server().cachePriority() + "\n";
        NcroConfig.Cache cache = config.cache();
        this.routes = new RouteStore(dbPath, cache.maxEntries(), cache.ttl(), cache.negativeTtl(),
                cache.massQuery().inMemoryNegativeTtl(), clock);
        this.client = new UpstreamClient(config.server().connectTimeout(), List.copyOf(byBase.values()), resolver);
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
                withLogin.add(upstream);
            } else if (netrc != null) {
                var machine = netrc.machine(u.url().getHost());
                if (machine.isPresent()) {
                    client.login(upstream, machine.get().user(), machine.get().password());
                    withLogin.add(upstream);
                } else if (netrc.fallback().isPresent()) {
                    // a default entry would otherwise go to every upstream, cache.nixos.org included
                    var login = netrc.fallback().get();
                    client.loginOnChallenge(upstream, login.user(), login.password());
                    withLogin.add(upstream);
                }
            }
        }
        this.probes = new ProbeScheduler(targets, client, config.health().probeInterval(),
                config.health().probeTimeout(), scheduler, executor, h -> routes.saveHealth(h.snapshot()));
        addBean(executor, true);
        addBean(scheduler, true);
        addBean(routes, true);
        addBean(client, true);
        addBean(probes, true);
        health.values().forEach(h -> addBean(h, false)); // JMX, when Jetty's jmx module is on
        metrics.registerCallbacks(routes::size, () -> {
            Map<String, Double> states = new LinkedHashMap<>();
            health.forEach((u, h) -> states.put(u.name(), (double) h.state().ordinal()));
            return states;
        }, () -> streamGates.values().stream().mapToInt(AsyncLimiter::queued).sum(), routes::droppedWrites);
    }

    @Override
    protected void doStart() throws Exception {
        start(executor);
        start(scheduler);
        // the route store next, so that each upstream's health is seeded before probes and races
        start(routes);
        Map<String, UpstreamHealth.Snapshot> persisted = routes.loadHealth();
        health.forEach((u, h) -> {
            UpstreamHealth.Snapshot s = persisted.get(u.name());
            if (s != null) h.seed(s);
        });
        super.doStart(); // starts the rest; the running route store is left as it is
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
        try {
            // a race that ended between the lookup above and putIfAbsent has remembered its answer
            remembered = remembered(hash);
            if (remembered != null) {
                inflight.remove(hash, mine);
                mine.complete(remembered);
            } else {
                race(hash, mine);
            }
        } catch (RuntimeException e) {
            // whatever failed, this hash must not stay registered with nobody to answer it
            inflight.remove(hash, mine);
            mine.complete(failed("narinfo lookup of " + hash + " could not start: " + NarinfoRace.describe(e)));
        }
        return mine.copy();
    }

    private static NarinfoAnswer failed(String message) {
        return new NarinfoAnswer(502, (message + "\n").getBytes(StandardCharsets.UTF_8), null);
    }

    /**
     * Starts a race for {@code hash}: its deadline runs from now; it begins asking once it
     * holds one of the max_concurrent_races slots, and frees it when it has its answer.
     */
    private void race(String hash, CompletableFuture<NarinfoAnswer> mine) {
        long start = System.nanoTime();
        NarinfoRace race = new NarinfoRace(hash, client, config.cache().raceDeadline(), new Observer(), gates::get, executor);
        java.util.concurrent.atomic.AtomicBoolean everyoneAsked = new java.util.concurrent.atomic.AtomicBoolean();
        race.result().whenComplete((answerOrNull, failure) -> {
            NarinfoAnswer a = failure == null ? answerOrNull : failed("narinfo lookup failed: " + NarinfoRace.describe(failure));
            metrics.raceWait.observe((System.nanoTime() - start) / 1e9);
            // failures are never remembered, nor a not-found some upstream was not asked about
            if (a.status() == 404 && everyoneAsked.get()) routes.rememberNotFound(hash);
            inflight.remove(hash, mine); // only this race's entry, never a newer one
            mine.complete(a);
        });
        race.armDeadline(scheduler);
        races.run(() -> {
            race.result().whenComplete((a, f) -> races.release());
            List<Upstream> lastResort = new ArrayList<>();
            List<List<Upstream>> stages = stages(lastResort);
            everyoneAsked.set(stages.stream().mapToInt(List::size).sum() == byBase.size());
            race.begin(stages, !lastResort.isEmpty());
        });
    }

    /**
     * The stages of a race now: each tier's upstreams that are neither Down nor cooling down;
     * then, as a last resort, those cooling down after a recent failure and those whose Down
     * state was restored from the database and not yet confirmed by a probe — either may well
     * have the path. Only upstreams confirmed Down in this run are left out (they count as not
     * having it). If that leaves nothing, every upstream is tried rather than failing blind.
     */
    private List<List<Upstream>> stages(List<Upstream> lastResort) {
        List<List<Upstream>> now = new ArrayList<>(tiers.size() + 1);
        for (List<Upstream> tier : tiers) {
            List<Upstream> members = new ArrayList<>();
            for (Upstream u : Ordering.byLatency(tier, x -> health.get(x).emaMs(), Upstream::priority)) {
                UpstreamHealth h = health.get(u);
                if (h.raceable()) members.add(u);
                else if (!h.confirmedDown()) lastResort.add(u);
            }
            if (!members.isEmpty()) now.add(members);
        }
        if (!lastResort.isEmpty()) now.add(lastResort);
        if (now.isEmpty()) {
            lastResort.clear();
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
            UpstreamHealth h = health.get(upstream);
            h.sample(latencyMs);
            // an answer means it is back; a 5xx means it is still sick
            if (status >= 500) h.cooldown(config.cache().massQuery().upstreamCooldown());
            else h.answered();
            metrics.upstreamLatency.labelValues(upstream.name()).observe(latencyMs / 1000);
        }

        @Override
        public boolean hasLogin(Upstream upstream) {
            return withLogin.contains(upstream);
        }

        @Override
        public Duration lastResortTimeout(Upstream upstream) {
            double ema = health.get(upstream).emaMs();
            long ms = Double.isNaN(ema) ? 0 : Math.round(ema * Defaults.LAST_RESORT_EMA_FACTOR);
            return Duration.ofMillis(Math.max(Defaults.LAST_RESORT_TIMEOUT.toMillis(), ms));
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
        Optional<dev.ncro.route.Route> route = routes.routeForNar(request.target());
        Upstream home = route.map(r -> byBase.get(r.upstream())).orElse(null);
        NarExchange.Expected expected = route.map(Engine::expected).orElse(NarExchange.Expected.UNKNOWN);
        return new NarExchange(request, handler, narRouting.candidates(request.target(), home), expected, client,
                config.server().writeTimeout(), metrics, narRouting, streamGates::get, withLogin::contains,
                scheduler, executor);
    }

    /** The file's size from the narinfo that named it: FileSize, or NarSize when uncompressed. */
    private static NarExchange.Expected expected(dev.ncro.route.Route route) {
        try {
            Narinfo narinfo = Narinfo.parse(route.narinfo(), route.hash());
            String fileSize = narinfo.field("FileSize");
            if (fileSize != null) return new NarExchange.Expected(Long.parseLong(fileSize.trim()));
            if ("none".equals(narinfo.field("Compression"))) return new NarExchange.Expected(narinfo.narSize());
        } catch (RuntimeException e) {
            // nothing usable to check against: the upstream's own framing has to do
        }
        return NarExchange.Expected.UNKNOWN;
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
        Optional<String> writeFailure = routes.writeFailure();
        String status = down == health.size() ? "down"
                : allActive && routes.persistent() && writeFailure.isEmpty() ? "ok" : "degraded";
        Map<String, Object> store = new LinkedHashMap<>();
        store.put("persistent", routes.persistent());
        store.put("state", routes.state());
        store.put("write_failure", writeFailure.orElse(null));
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
