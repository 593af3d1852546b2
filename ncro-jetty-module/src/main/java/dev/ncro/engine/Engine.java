package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.route.NarPins;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import org.eclipse.jetty.util.component.ContainerLifeCycle;

/**
 * The ncro engine: narinfo races, NAR routing and streaming. A server-level lifecycle bean;
 * it owns (and so starts and stops) the upstream HTTP client and a timer for race deadlines.
 */
public final class Engine extends ContainerLifeCycle implements NcroService {
    private final NcroConfig config;
    private final List<List<Upstream>> tiers;
    private final List<Upstream> preference;
    private final UpstreamClient client;
    private final NarPins pins = new NarPins(Defaults.NAR_PINS);
    private final String cacheInfo;
    private ScheduledExecutorService timer;

    public Engine(NcroConfig config) {
        this.config = config;
        List<Upstream> upstreams = new ArrayList<>();
        for (int i = 0; i < config.upstreams().size(); i++) {
            NcroConfig.Upstream u = config.upstreams().get(i);
            upstreams.add(new Upstream(u.url(), u.priority(), i));
        }
        TreeMap<Integer, List<Upstream>> byPriority = new TreeMap<>();
        for (Upstream u : upstreams) byPriority.computeIfAbsent(u.priority(), p -> new ArrayList<>()).add(u);
        this.tiers = List.copyOf(byPriority.values().stream().map(List::copyOf).toList());
        this.preference = upstreams.stream()
                .sorted(Comparator.comparingInt(Upstream::priority).thenComparingInt(Upstream::order))
                .toList();
        this.cacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: " + config.server().cachePriority() + "\n";
        this.client = new UpstreamClient(Defaults.CONNECT_TIMEOUT);
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

    @Override
    public String cacheInfo() {
        return cacheInfo;
    }

    @Override
    public CompletableFuture<NarinfoAnswer> narinfo(String hash) {
        return new NarinfoRace(hash, tiers, client, config.cache().raceDeadline(), this::remember).start(timer);
    }

    private void remember(Narinfo narinfo, Upstream upstream) {
        String url = narinfo.url();
        if (!url.contains("://")) pins.pin(url, upstream);
    }

    @Override
    public NarStream nar(NarRequest request, NarHandler handler) {
        Optional<Upstream> pinned = pins.find(request.target());
        List<Upstream> candidates = new ArrayList<>(preference.size());
        pinned.ifPresent(candidates::add);
        for (Upstream u : preference) if (!candidates.contains(u)) candidates.add(u);
        return new NarExchange(request, handler, candidates, pinned.isPresent(), client,
                config.server().writeTimeout());
    }
}
