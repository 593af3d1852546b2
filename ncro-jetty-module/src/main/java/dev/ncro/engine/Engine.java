package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.route.RouteStore;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Comparator;
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
 * many clients ask at once), NAR routing and streaming. A server-level lifecycle bean; it owns
 * (and so starts and stops) the route store, the upstream HTTP client and the deadline timer.
 */
public final class Engine extends ContainerLifeCycle implements NcroService {
    private static final byte[] REMEMBERED_NOT_FOUND =
            "not found in any upstream (remembered)\n".getBytes(StandardCharsets.UTF_8);

    private final NcroConfig config;
    private final List<List<Upstream>> tiers;
    private final List<Upstream> preference;
    private final Map<String, Upstream> byBase = new LinkedHashMap<>();
    private final UpstreamClient client;
    private final RouteStore routes;
    private final String cacheInfo;
    /** Single-flight: the race in progress for each hash. */
    private final ConcurrentHashMap<String, CompletableFuture<NarinfoAnswer>> inflight = new ConcurrentHashMap<>();
    private ScheduledExecutorService timer;

    public Engine(NcroConfig config) {
        this(config, Path.of(config.cache().dbPath()), InstantSource.system());
    }

    public Engine(NcroConfig config, Path dbPath, InstantSource clock) {
        this.config = config;
        List<Upstream> upstreams = new ArrayList<>();
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            upstreams.add(new Upstream(u.url(), u.priority(), i));
        }
        TreeMap<Integer, List<Upstream>> byPriority = new TreeMap<>();
        for (Upstream u : upstreams) {
            byPriority.computeIfAbsent(u.priority(), p -> new ArrayList<>()).add(u);
            byBase.put(u.base().toString(), u);
        }
        this.tiers = List.copyOf(byPriority.values().stream().map(List::copyOf).toList());
        this.preference = upstreams.stream()
                .sorted(Comparator.comparingInt(Upstream::priority).thenComparingInt(Upstream::order))
                .toList();
        this.cacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: " + config.server().cachePriority() + "\n";
        NcroConfig.Cache cache = config.cache();
        this.routes = new RouteStore(dbPath, cache.maxEntries(), cache.ttl(), cache.negativeTtl(),
                cache.massQuery().inMemoryNegativeTtl(), clock);
        this.client = new UpstreamClient(Defaults.CONNECT_TIMEOUT);
        addBean(routes, true);
        addBean(client, true);
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
        super.doStart();
    }

    @Override
    protected void doStop() throws Exception {
        super.doStop();
        timer.shutdownNow();
    }

    public List<Upstream> upstreams() {
        return preference;
    }

    public RouteStore routes() {
        return routes;
    }

    @Override
    public String cacheInfo() {
        return cacheInfo;
    }

    @Override
    public CompletableFuture<NarinfoAnswer> narinfo(String hash) {
        NarinfoAnswer remembered = remembered(hash);
        if (remembered != null) return CompletableFuture.completedFuture(remembered);
        CompletableFuture<NarinfoAnswer> mine = new CompletableFuture<>();
        CompletableFuture<NarinfoAnswer> running = inflight.putIfAbsent(hash, mine);
        if (running != null) return running.copy();
        // a race that ended between the lookup above and putIfAbsent has remembered its answer
        remembered = remembered(hash);
        if (remembered != null) {
            inflight.remove(hash, mine);
            mine.complete(remembered);
            return mine.copy();
        }
        new NarinfoRace(hash, tiers, client, config.cache().raceDeadline(), this::won).start(timer)
                .whenComplete((answer, failure) -> {
                    NarinfoAnswer a = failure == null ? answer : new NarinfoAnswer(502,
                            ("narinfo lookup failed: " + failure + "\n").getBytes(StandardCharsets.UTF_8), null);
                    if (a.status() == 404) routes.rememberNotFound(hash); // failures are never remembered
                    inflight.remove(hash, mine); // only this race's entry, never a newer one
                    mine.complete(a);
                });
        return mine.copy();
    }

    /** An answer from the route store, or null when the store knows nothing usable. */
    private NarinfoAnswer remembered(String hash) {
        RouteStore.Lookup lookup = routes.lookup(hash);
        if (lookup instanceof RouteStore.Hit hit && byBase.containsKey(hit.route().upstream())) {
            return new NarinfoAnswer(200, hit.route().narinfo(), hit.route().upstream());
        }
        if (lookup instanceof RouteStore.NotFound) return new NarinfoAnswer(404, REMEMBERED_NOT_FOUND, null);
        return null;
    }

    private void won(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs) {
        String url = narinfo.url();
        routes.remember(narinfo.hashPart(), upstream.base().toString(), body, url.contains("://") ? null : url, latencyMs);
    }

    @Override
    public NarStream nar(NarRequest request, NarHandler handler) {
        Optional<Upstream> pinned = routes.upstreamForNar(request.target()).map(byBase::get);
        List<Upstream> candidates = new ArrayList<>(preference.size());
        pinned.ifPresent(candidates::add);
        for (Upstream u : preference) if (!candidates.contains(u)) candidates.add(u);
        return new NarExchange(request, handler, candidates, pinned.isPresent(), client,
                config.server().writeTimeout());
    }
}
