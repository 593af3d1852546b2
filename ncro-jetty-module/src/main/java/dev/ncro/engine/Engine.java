package dev.ncro.engine;

import dev.ncro.api.Answer;
import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarUrls;
import dev.ncro.api.NarStream;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.api.Status;
import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.discovery.Discovery;
import dev.ncro.health.HealthReport;
import dev.ncro.health.LatencyHistory;
import dev.ncro.health.ProbeScheduler;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.mesh.MeshNode;
import dev.ncro.mesh.UdpTransport;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.route.RouteHints;
import dev.ncro.route.Route;
import dev.ncro.route.RouteStore;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Resolver;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.time.InstantSource;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;

/**
 * The ncro engine: a server-level lifecycle bean that wires the parts and answers the web
 * layer ({@link NcroService}). It owns — and so starts, and stops in reverse — its worker
 * executor and scheduler, the route store, the upstream HTTP client and the probe scheduler.
 *
 * <ul>
 *   <li>{@link Upstreams}: the configured upstreams, their health, keys, filters, logins and limits;</li>
 *   <li>{@link NarinfoLookup}: memory → single-flight → {@link NarinfoRace} → remember;</li>
 *   <li>{@link NarRouting} and {@link NarExchange}: which upstream serves a NAR, and the stream;</li>
 *   <li>{@link HealthReport}: {@code /health};</li>
 *   <li>{@link MeshNode} (with {@code mesh.enabled}): routes shared with peers, used as hints.</li>
 * </ul>
 *
 * <p>Threads: the scheduler ({@code ncro-timer}) only fires deadlines and timeouts and hands
 * the work to the worker executor ({@code ncro-worker}), where parsing, signature checks,
 * remembering and starting requests run; upstream answers arrive on the HTTP client's I/O
 * threads and are handed over at once.
 */
public final class Engine extends ContainerLifeCycle implements NcroService {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Engine.class);
    private final NcroConfig config;
    private final Upstreams upstreams;
    private final UpstreamClient client;
    private final RouteStore routes;
    private final ProbeScheduler probes;
    private final NcroMetrics metrics = new NcroMetrics();
    /** The hot path's counter, looked up once: a label lookup per hit costs more than the increment. */
    private final io.prometheus.metrics.core.datapoints.CounterDataPoint narinfoFound = metrics.narinfoRequests.labelValues("200");
    private final String cacheInfo;
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler("ncro-timer", true);
    private final QueuedThreadPool executor;
    private final NarinfoLookup lookups;
    private final NarRouting narRouting;
    private final ReadAhead readAhead;
    private final ReferenceReadAhead references;
    private final HeadStarts headStarts;
    private final InstantSource clock;
    /** Each upstream's latency after its last probes, for the status page; by display name. */
    private final Map<String, LatencyHistory> latencyHistory = new java.util.concurrent.ConcurrentHashMap<>();
    /** Null unless mesh.enabled. */
    private final MeshNode mesh;
    /** Null unless discovery.enabled. */
    private final Discovery discovery;

    public Engine(NcroConfig config) {
        this(config, Path.of(config.cache().dbPath()), InstantSource.system());
    }

    public Engine(NcroConfig config, Path dbPath, InstantSource clock) {
        this(config, dbPath, clock, Resolver.SYSTEM);
    }

    /** @param resolver host name lookups for upstreams and redirect targets (tests inject a slow one) */
    public Engine(NcroConfig config, Path dbPath, InstantSource clock, Resolver resolver) {
        this.config = config;
        this.clock = clock;
        this.executor = new QueuedThreadPool(Math.max(16, 4 * Runtime.getRuntime().availableProcessors()), 2);
        executor.setName("ncro-worker");
        executor.setDaemon(true);
        this.upstreams = new Upstreams(config, clock, executor);
        NcroConfig.Cache cache = config.cache();
        this.routes = new RouteStore(dbPath, cache.maxEntries(), cache.memoryBudget(), cache.ttl(), cache.negativeTtl(),
                cache.massQuery().inMemoryNegativeTtl(), clock);
        routes.setValidator(this::recheck);
        // a not-found stored while other upstreams were configured may be on one added since
        routes.setNegativesScope(upstreams.all().stream().map(u -> u.base().toString()).sorted()
                .collect(java.util.stream.Collectors.joining("\n")));
        this.client = new UpstreamClient(config.server().connectTimeout(), upstreams.all(), resolver);
        upstreams.logIn(config, client);
        // the mesh node is the engine's bean (like the route store and the probes): it needs the
        // engine's upstreams, clock, timer and workers, and starts and stops with them
        this.mesh = config.mesh().enabled() ? new MeshNode(config.mesh(), cache.ttl(), upstreams::byBase, clock,
                scheduler, executor, metrics, UdpTransport.FACTORY) : null;
        this.lookups = new NarinfoLookup(upstreams, routes, client, metrics, cache.raceDeadline(),
                cache.massQuery().upstreamCooldown(), cache.massQuery().maxConcurrentRaces(), scheduler, executor,
                this::suspect, config.health().probeInterval(), config.health().probeTimeout(),
                mesh != null ? mesh : RouteHints.NONE);
        this.narRouting = new NarRouting(upstreams::health, upstreams::preference, cache.massQuery().upstreamCooldown(), clock,
                this::suspect);
        NcroConfig.ReadAhead ra = config.readAhead();
        this.readAhead = new ReadAhead(ra, new ReadAheadGuard(clock, Defaults.READAHEAD_GUARD_WINDOW,
                Math.min(Defaults.READAHEAD_GUARD_MIN_BYTES, ra.memory())),
                client, upstreams::streamGate, metrics, clock, config.server().writeTimeout(), narRouting::failed, narRouting::contradicted, upstreams::hasLogin);
        this.headStarts = new HeadStarts(ra.enabled() && ra.headStart(), ra.ttl(), config.server().writeTimeout(), readAhead.guard(), upstreams::streamGate,
                metrics, clock, scheduler, executor);
        this.references = new ReferenceReadAhead(lookups::lookup, routes, executor, metrics,
                ra.enabled() ? ra.referenceDepth() : 0, Math.max(1, cache.massQuery().maxConcurrentRaces() / 2),
                Defaults.READAHEAD_MAX_QUEUED_REFERENCES, ra.ttl());
        this.cacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: " + config.server().cachePriority() + "\n";
        upstreams.all().forEach(u -> latencyHistory.put(u.name(), new LatencyHistory()));
        this.probes = new ProbeScheduler(upstreams.probeTargets(), client, config.health().probeInterval(),
                config.health().probeTimeout(), scheduler, executor, this::probed, clock);
        addBean(executor, true);
        addBean(scheduler, true);
        addBean(routes, true);
        addBean(client, true);
        addBean(probes, true);
        if (mesh != null) addBean(mesh, true);
        this.discovery = config.discovery().enabled() ? new Discovery(config.discovery(), new Discovered(), executor,
                scheduler, "ncro-" + java.util.HexFormat.of().toHexDigits(new java.security.SecureRandom().nextInt())) : null;
        if (discovery != null) addBean(discovery, true); // last: it adds upstreams to the running parts
        upstreams.all().forEach(u -> addBean(upstreams.health(u), false)); // JMX, when Jetty's jmx module is on
        metrics.registerCallbacks(routes::size, () -> {
            Map<String, Double> states = new LinkedHashMap<>();
            upstreams.all().forEach(u -> states.put(u.name(), (double) upstreams.health(u).state().ordinal()));
            return states;
        }, upstreams::streamsQueued, routes::droppedWrites, routes::memoryBytes, routes::pendingWriteBytes,
                () -> routes.writeFailure().isPresent() ? 1 : 0);
        metrics.registerReadAhead(readAhead::bytes, () -> readAhead.guard().paused() ? 1 : 0);
    }

    /**
     * A route stored by an earlier run (or evicted from memory) is checked again before it is
     * served: the operator may have changed that upstream's keys or filters, or removed it.
     */
    private String recheck(Route route) {
        Upstream upstream = upstreams.byBase(route.upstream());
        if (upstream == null) return "upstream " + route.upstream() + " is no longer configured";
        Narinfo narinfo;
        try {
            narinfo = Narinfo.parse(route.narinfo(), route.hash());
        } catch (Narinfo.InvalidNarinfoException e) {
            return "stored narinfo is invalid: " + e.getMessage();
        }
        String filtered = upstreams.filtered(upstream, narinfo);
        return filtered != null ? filtered : upstreams.distrust(upstream, narinfo);
    }

    /** After every probe: its outcome goes to the latency history and, persisted, to the database. */
    private void probed(UpstreamHealth health) {
        UpstreamHealth.Snapshot snapshot = health.snapshot();
        LatencyHistory history = latencyHistory.get(health.upstream());
        if (history != null) history.record(snapshot);
        routes.saveHealth(snapshot);
    }

    /**
     * Discovered caches join and leave the upstreams at run time: a removed one is never
     * chosen again, and its routes read as unknown (the next request races again).
     */
    private final class Discovered implements Discovery.Registry {
        @Override
        public Upstream found(java.net.URI base) {
            Upstream upstream = upstreams.addDiscovered(base);
            if (upstream == null) return null;
            routes.upstreamJoined(); // it may hold what every other upstream lacked
            latencyHistory.putIfAbsent(upstream.name(), new LatencyHistory());
            probes.add(upstreams.probeTarget(upstream));
            return upstream;
        }

        @Override
        public void lost(Upstream upstream) {
            if (upstreams.removeDiscovered(upstream)) probes.remove(upstream);
        }

        @Override
        public void peer(String publicKeyHex, String addr) {
            if (mesh != null) mesh.discovered(publicKeyHex, addr);
        }

        @Override
        public void peerGone(String publicKeyHex) {
            if (mesh != null) mesh.undiscovered(publicKeyHex);
        }
    }

    /**
     * With {@code discovery.advertise}: announces this node on mDNS once the server has bound
     * {@code httpPort} (and the mesh its port).
     */
    public void advertise(java.util.function.IntSupplier httpPort) {
        if (discovery == null) return;
        discovery.advertise(() -> {
            int meshPort = mesh != null && mesh.localAddress() instanceof java.net.InetSocketAddress a ? a.getPort() : 0;
            String meshKey = mesh != null && mesh.key() != null ? mesh.key().publicKeyHex() : null;
            return new Discovery.Advert(httpPort.getAsInt(), meshPort, meshKey);
        });
    }

    /** The discovery bean, or null when {@code discovery.enabled} is off. */
    public Discovery discovery() {
        return discovery;
    }

    /** Traffic saw this upstream fail: have it probed soon. */
    private void suspect(Upstream upstream) {
        ProbeScheduler p = probes;
        if (p != null) p.suspect(upstream);
    }

    @Override
    protected void doStart() throws Exception {
        start(executor);
        start(scheduler);
        // the route store next, so that each upstream's health is seeded before probes and races
        start(routes);
        Map<String, UpstreamHealth.Snapshot> persisted = routes.loadHealth();
        for (Upstream u : upstreams.all()) {
            UpstreamHealth.Snapshot s = persisted.get(u.name());
            if (s != null) upstreams.health(u).seed(s);
        }
        super.doStart(); // starts the rest; the running ones are left as they are
        try {
            // off the start: the first client lookup would otherwise pay ~0.3 s for it
            executor.execute(dev.ncro.trust.Signatures::warmUp);
        } catch (RuntimeException e) {
            LOG.debug("no signature warm-up: {}", e.toString());
        }
    }

    @Override
    protected void doStop() throws Exception {
        readAhead.clear();
        headStarts.clear();
        super.doStop();
    }

    /** Upstreams in preference order: tiers first, then latency within a tier. */
    public List<Upstream> upstreams() {
        return upstreams.preference();
    }

    public RouteStore routes() {
        return routes;
    }

    /** The mesh node, or null when {@code mesh.enabled} is off. */
    public MeshNode mesh() {
        return mesh;
    }

    public ProbeScheduler probes() {
        return probes;
    }

    public UpstreamHealth health(Upstream upstream) {
        return upstreams.health(upstream);
    }

    public NcroMetrics metricsRegistry() {
        return metrics;
    }

    @Override
    public String cacheInfo() {
        return cacheInfo;
    }

    /** A GET's lookup: it may start a NAR read-ahead. */
    @Override
    public CompletableFuture<NarinfoAnswer> narinfo(String hash) {
        return narinfo(hash, false);
    }

    @Override
    public CompletableFuture<NarinfoAnswer> narinfo(String hash, boolean head) {
        CompletableFuture<NarinfoAnswer> answer = lookups.lookup(hash);
        if (answer.isDone() && !answer.isCompletedExceptionally()) {
            // the hot path, remembered: the same steps as below, on this thread, no stages
            served(hash, answer.join(), head);
            return answer;
        }
        // the read-ahead is registered before the web layer sees the answer, so that the
        // client's NAR request, which can only follow it, finds it
        return answer.thenApply(a -> {
            served(hash, a, head);
            return a;
        });
    }

    /**
     * What follows every answer before the client sees it: its count, and for a GET answered 200
     * the read-aheads. Never throws: the client's answer goes out whatever happens here.
     */
    private void served(String hash, NarinfoAnswer a, boolean head) {
        try {
            (a.status() == 200 ? narinfoFound : metrics.narinfoRequests.labelValues(String.valueOf(a.status()))).inc();
            if (head || !readAhead.enabled() || !a.found()) return;
            readAheadFor(hash, a.body());
            references.served(hash, a.body());
        } catch (RuntimeException e) {
            LOG.warn("after the narinfo of {}: {}", hash, e.toString());
        }
    }

    /**
     * What a narinfo says for read-ahead: its NAR, size and FileHash digest; target null when
     * none; {@code big} when the NAR is over {@code readahead.max_nar_size} (a head start only).
     */
    private record Plan(byte[] narinfo, String target, long size, byte[] sha256, boolean big) {}

    /** The last plan made for each hash served, valid while its narinfo is the same array (hot hits parse nothing). */
    private final com.github.benmanes.caffeine.cache.Cache<String, Plan> plans =
            com.github.benmanes.caffeine.cache.Caffeine.newBuilder().maximumSize(Defaults.READAHEAD_MAX_PARKED).build();

    private Plan plan(String hash, byte[] narinfoBytes) {
        Plan known = plans.getIfPresent(hash);
        if (known != null && known.narinfo() == narinfoBytes) return known;
        Plan plan = new Plan(narinfoBytes, null, -1, null, false);
        try {
            Narinfo narinfo = Narinfo.parse(narinfoBytes, hash);
            String target = narinfo.url();
            long size = expected(narinfo).fileSize();
            if (target != null && !target.contains("://") && !target.startsWith("/") && size >= 0) {
                if (size > config.readAhead().maxNarSize()) {
                    plan = new Plan(narinfoBytes, target, size, null, true);
                } else {
                    // a FileHash this ncro cannot check throws: no read-ahead
                    plan = new Plan(narinfoBytes, target, size, narinfo.fileSha256(), false);
                }
            }
        } catch (RuntimeException e) {
            LOG.debug("no NAR read-ahead for {}: {}", hash, e.toString());
        }
        plans.put(hash, plan);
        return plan;
    }

    /** A GET of this narinfo is about to be answered 200: its NAR may be read ahead. Never throws. */
    private void readAheadFor(String hash, byte[] narinfoBytes) {
        try {
            Plan plan = plan(hash, narinfoBytes);
            String target = plan.target();
            if (target == null) return;
            // considered a moment ago (in memory, in flight, held back or failed): nothing to
            // decide, no lock to take
            if (plan.big() ? headStarts.consideredRecently(target) : readAhead.settledRecently(target)) return;
            long size = plan.size();
            byte[] sha256 = plan.sha256();
            Upstream home = routes.routeForNar(target).map(r -> upstreams.byBase(r.upstream())).orElse(null);
            if (home == null) return;
            List<Upstream> candidates = narRouting.candidates(target, home);
            // only from where the normal stream would start: same URL, same bytes
            if (candidates.isEmpty() || !candidates.get(0).equals(home)) return;
            if (plan.big()) {
                headStarts.consider(target, home, this::stream);
            } else {
                readAhead.consider(target, home, size, sha256);
            }
        } catch (RuntimeException e) {
            LOG.debug("no NAR read-ahead for {}: {}", hash, e.toString());
        }
    }

    @Override
    public NarStream nar(NarRequest request, NarHandler handler) {
        // counted here, once per client request: not per stream (a head start opens one before
        // any client asks; a fallback opens a second for the same request)
        metrics.narRequests.inc();
        if (readAhead.enabled() && ReadAhead.plain(request)) {
            ReadAhead.Entry entry = readAhead.claim(request.target());
            headStarts.noteDownload(); // before the narinfos that follow are served
            // a client downloading: what the guard held back is read ahead now, off this thread
            try {
                executor.execute(() -> {
                    readAhead.downloading(request.target());
                    headStarts.downloading(request.target());
                });
            } catch (RuntimeException e) {
                LOG.debug("held-back read-aheads not started: {}", e.toString()); // stopping
            }
            NarStream started = headStarts.claim(request, handler, () -> stream(request, handler));
            if (started != null) {
                if (entry != null) entry.abandon(); // both existed: the head start serves it
                return started;
            }
            if (entry != null) {
                return new ReadAheadStream(entry, handler, () -> stream(request, handler),
                        u -> narRouting.failed(request.target(), u), metrics, scheduler, executor);
            }
            metrics.readAheadMisses.inc();
        }
        return stream(request, handler);
    }

    @Override
    public boolean namesNar(String target) {
        return routes.routeForNar(target).isPresent();
    }

    /** The normal stream: from the upstreams, in {@link NarRouting}'s order. */
    private NarStream stream(NarRequest request, NarHandler handler) {
        Optional<Route> route = routes.routeForNar(request.target());
        Upstream home = route.map(r -> upstreams.byBase(r.upstream())).orElse(null);
        // parsed once: its sizes for the length check, its hashes for the resume rule below
        Narinfo narinfo = route.map(Engine::parsed).orElse(null);
        NarExchange.Expected expected = narinfo != null ? expected(narinfo) : NarExchange.Expected.UNKNOWN;
        // a URL in a usual form names the file by its content: any upstream holding it will do.
        // Any other form is asked only of the upstream whose narinfo named it (a narinfo's URL
        // is not signed: it must not make ncro fetch arbitrary paths from the others, with
        // their logins), as Nix itself would
        boolean usual = NarUrls.usualForm(request.target());
        List<Upstream> candidates = usual ? narRouting.candidates(request.target(), home)
                : home != null ? List.of(home) : List.of();
        // a part of a file (Nix resuming a broken download) continues bytes that came from the
        // home upstream: another upstream's file under the same name may hold other bytes (the
        // same NAR compressed otherwise), and its part appended to the first would be neither.
        // Only a name that is the file's own hash, or an uncompressed NAR, is the same file
        // everywhere; any other part is asked of the home first, even right after it failed
        // (a blip), and of the others only if it fails again: a part that may not fit beats none
        if (usual && home != null && partial(request) && !sameBytesEverywhere(request.target(), narinfo)) {
            // the first part may have come from another holder than the home (the home cooling
            // down then): the one whose bytes last went to a client continues them
            Upstream source = narRouting.streamedFrom(request.target());
            if (source == null || !candidates.contains(source)) source = home; // gone, or never known
            List<Upstream> sourceFirst = new java.util.ArrayList<>(candidates.size() + 1);
            sourceFirst.add(source);
            for (Upstream u : candidates) if (!u.equals(source)) sourceFirst.add(u);
            candidates = sourceFirst;
        }
        NarExchange exchange = new NarExchange(request, handler, candidates, expected, client::stream,
                config.server().writeTimeout(), metrics, narRouting, upstreams::streamGate, upstreams::hasLogin,
                scheduler, executor);
        // the upstream whose narinfo named this NAR is no longer one (a discovered cache gone):
        // the others' not-found is no proof the NAR is missing
        if (route.isPresent() && home == null) exchange.unasked(route.get().upstream() + ": named this NAR, no longer an upstream");
        if (route.isEmpty() && !usual) exchange.unasked("no live route names this NAR URL any more");
        return exchange;
    }

    /** A request for part of a file: a Range, or a Range made conditional (If-Range). */
    private static boolean partial(NarRequest request) {
        for (String name : request.headers().keySet()) {
            if (name.equalsIgnoreCase("range") || name.equalsIgnoreCase("if-range")) return true;
        }
        return false;
    }

    /**
     * Whether every upstream's file at {@code target} is byte for byte the home's: the file's
     * name is its own FileHash (as Nix names the files it uploads), or the narinfo says
     * {@code Compression: none} and the name is the NAR's hash (nix-serve's
     * {@code <storehash>-<narhash>.nar}): the NAR's bytes are canonical. A name part counts in
     * nix32 (52 characters) or hex (64).
     */
    static boolean sameBytesEverywhere(String target, Narinfo narinfo) {
        // nothing to tell by (no narinfo, or a hash it cannot give): the upstream that served the first part first
        if (narinfo == null) return false;
        try {
            byte[] digest;
            if ("none".equals(narinfo.field("Compression"))) {
                digest = dev.ncro.trust.Nix32.decode(narinfo.narHash().substring("sha256:".length()), 32);
            } else {
                digest = narinfo.fileSha256();
            }
            return digest != null && nameHas(target, digest);
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Whether a {@code -}-separated part of the file name (before its first dot) is {@code digest}. */
    private static boolean nameHas(String target, byte[] digest) {
        String name = target.substring(target.lastIndexOf('/') + 1);
        int dot = name.indexOf('.');
        if (dot >= 0) name = name.substring(0, dot);
        for (String part : name.split("-")) {
            try {
                if (part.length() == dev.ncro.trust.Nix32.encodedLength(32)
                        && java.util.Arrays.equals(digest, dev.ncro.trust.Nix32.decode(part, 32))) {
                    return true;
                }
                if (part.length() == 64 && java.util.Arrays.equals(digest, java.util.HexFormat.of().parseHex(part))) {
                    return true;
                }
            } catch (IllegalArgumentException notAHash) {
                // another kind of name part
            }
        }
        return false;
    }

    /** The file's size from the narinfo that named it: FileSize, or NarSize when uncompressed. */
    /** The route's narinfo, or null when it no longer parses. */
    private static Narinfo parsed(Route route) {
        try {
            return Narinfo.parse(route.narinfo(), route.hash());
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static NarExchange.Expected expected(Narinfo narinfo) {
        try {
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
        HealthReport report = HealthReport.of(healthRows(), storeRow(), mesh != null ? mesh.report() : null);
        return new Answer(report.httpStatus(), "application/json", report.json());
    }

    private List<HealthReport.Upstream> healthRows() {
        return upstreams.preference().stream()
                .map(u -> new HealthReport.Upstream(u.name(), u.priority(), upstreams.health(u).snapshot())).toList();
    }

    private HealthReport.Store storeRow() {
        return new HealthReport.Store(routes.persistent(), routes.state(), routes.writeFailure().orElse(null), routes.size());
    }

    /** From memory only: health snapshots, metric counters, the route store's kept counts. */
    @Override
    public Status status() {
        List<HealthReport.Upstream> rows = healthRows();
        Map<String, Long> wins = metrics.raceWinsByUpstream();
        List<Status.Upstream> shown = rows.stream().map(row -> {
            UpstreamHealth.Snapshot h = row.health();
            List<Status.LatencySample> latency = latencyHistory.computeIfAbsent(row.name(), n -> new LatencyHistory()).samples().stream()
                    .map(s -> new Status.LatencySample(Instant.ofEpochMilli(s.atMillis()), s.emaMs(), s.ok())).toList();
            return new Status.Upstream(row.name(), row.priority(), h.state().label(), h.emaMs(),
                    wins.getOrDefault(row.name(), 0L), h.consecutiveFailures(),
                    h.lastProbeAt() == 0 ? null : Instant.ofEpochMilli(h.lastProbeAt()), latency);
        }).toList();
        return new Status(clock.instant(), HealthReport.status(rows, storeRow()), shown,
                new Status.Routes(routes.routesInMemory(), routes.routesOnDisk(), routes.persistent(), routes.state(),
                        routes.memoryBytes()),
                new Status.Lookups((long) metrics.narinfoCacheHits.get(), (long) metrics.narinfoNegativeHits.get(),
                        (long) metrics.narinfoCacheMisses.get()),
                new Status.Nars((long) metrics.narStreamsInFlight.get(), upstreams.streamsQueued(),
                        (long) metrics.narBytes.get()));
    }

    @Override
    public Answer metrics() {
        return new Answer(200, metrics.contentType(), metrics.scrape());
    }
}
