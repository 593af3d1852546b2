package dev.ncro.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;

/**
 * ncro's Prometheus metrics, in a registry of the engine's own (never the global default, so
 * that several engines in one JVM do not collide). Names carry their unit; counters get
 * {@code _total} from the exposition format. The {@code upstream} label is the upstream's
 * display name, which never carries credentials.
 */
public final class NcroMetrics {
    private static final double[] LATENCY_BUCKETS = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();

    public final Counter narinfoCacheHits = Counter.builder().name("ncro_narinfo_cache_hits")
            .help("narinfo lookups answered from remembered routes").register(registry);
    public final Counter narinfoCacheMisses = Counter.builder().name("ncro_narinfo_cache_misses")
            .help("narinfo lookups that needed a race (or joined one)").register(registry);
    public final Counter narinfoNegativeHits = Counter.builder().name("ncro_narinfo_negative_cache_hits")
            .help("narinfo lookups answered 404 from a remembered not-found").register(registry);
    public final Counter singleFlightWaiters = Counter.builder().name("ncro_narinfo_singleflight_waiters")
            .help("narinfo lookups that joined a race already in flight for the same hash").register(registry);
    public final Counter narinfoRequests = Counter.builder().name("ncro_narinfo_requests")
            .help("narinfo answers by HTTP status").labelNames("status").register(registry);
    public final Histogram raceWait = Histogram.builder().name("ncro_race_wait_seconds")
            .help("time from the start of a race to its answer").classicOnly().classicUpperBounds(LATENCY_BUCKETS)
            .register(registry);
    public final Counter raceWins = Counter.builder().name("ncro_upstream_race_wins")
            .help("narinfo races won, by upstream").labelNames("upstream").register(registry);
    public final Histogram upstreamLatency = Histogram.builder().name("ncro_upstream_latency_seconds")
            .help("upstream answer latency seen by races and probes").labelNames("upstream")
            .classicOnly().classicUpperBounds(LATENCY_BUCKETS).register(registry);
    public final Counter narRequests = Counter.builder().name("ncro_nar_requests")
            .help("NAR (file) requests from clients, GET and HEAD").register(registry);
    public final Counter narBytes = Counter.builder().name("ncro_nar_streamed")
            .help("NAR body bytes streamed from upstreams to clients").unit(io.prometheus.metrics.model.snapshots.Unit.BYTES)
            .register(registry);
    public final Counter narFailovers = Counter.builder().name("ncro_nar_failovers")
            .help("NAR requests moved on to another upstream after a failure or a not-found").register(registry);
    public final Counter narUpstreamFailures = Counter.builder().name("ncro_nar_upstream_failures")
            .help("NAR attempts that failed, by upstream and phase (first_byte, before_head, mid_body, truncated, busy)")
            .labelNames("upstream", "phase").register(registry);
    public final Counter meshPackets = Counter.builder().name("ncro_mesh_packets")
            .help("mesh packets by direction and result: in (accepted, truncated, oversized, unknown_peer, bad_signature,"
                    + " malformed, unsupported_version, stale, replayed), out (sent, send_failed)")
            .labelNames("direction", "result").register(registry);
    public final Counter meshRoutesMerged = Counter.builder().name("ncro_mesh_routes_merged")
            .help("routes from mesh peers that changed this node's hints").register(registry);
    public final Counter meshHints = Counter.builder().name("ncro_mesh_hints")
            .help("narinfo misses with a mesh hint, by result: verified (served from the hinted upstream after this"
                    + " node checked it) or fallback (the race answered)").labelNames("result").register(registry);
    public final Counter readAheadHits = Counter.builder().name("ncro_readahead_hits")
            .help("NAR downloads answered from a NAR read ahead into memory").register(registry);
    public final Counter readAheadMisses = Counter.builder().name("ncro_readahead_misses")
            .help("whole-file NAR downloads, with read-ahead on, that no read-ahead answered (none, or it failed or was late)")
            .register(registry);
    public final Counter readAheadNotFound = Counter.builder().name("ncro_readahead_not_found")
            .help("NAR read-aheads the upstream answered not-found (404, 410; 403 without a login): its narinfo names a NAR"
                    + " it lacks; the download then asks every upstream")
            .register(registry);
    public final Counter readAheadFetchedBytes = Counter.builder().name("ncro_readahead_fetched")
            .help("bytes read ahead from upstreams (used or not: with ncro_readahead_wasted_bytes_total, what read-ahead costs)")
            .unit(io.prometheus.metrics.model.snapshots.Unit.BYTES).register(registry);
    public final Counter headStarts = Counter.builder().name("ncro_readahead_head_starts")
            .help("head starts of NARs over readahead.max_nar_size (their stream opened when the narinfo was served), by"
                    + " outcome: taken (a download took the stream over), expired (none came in time), failed (the"
                    + " stream failed first: the download took a fresh one)")
            .labelNames("outcome").register(registry);
    public final Counter referenceLookups = Counter.builder().name("ncro_readahead_reference_lookups")
            .help("background lookups of served narinfos' references, by result: found, not_found, failed,"
                    + " dropped (the queue was full)").labelNames("result").register(registry);
    public final Counter readAheadWastedBytes = Counter.builder().name("ncro_readahead_wasted")
            .help("bytes read ahead that no download used (expired, dropped for newer ones, failed, or the client left)")
            .unit(io.prometheus.metrics.model.snapshots.Unit.BYTES).register(registry);
    public final Gauge narStreamsInFlight = Gauge.builder().name("ncro_nar_streams_in_flight")
            .help("NAR streams currently open").register(registry);

    /** Gauges read at scrape time from the engine's state. */
    public void registerCallbacks(DoubleSupplier routeEntries, Supplier<Map<String, Double>> upstreamStates,
            DoubleSupplier streamsQueued, DoubleSupplier droppedRouteWrites, DoubleSupplier routeMemoryBytes,
            DoubleSupplier routeWriteQueueBytes, DoubleSupplier routeWriteFailing) {
        GaugeWithCallback.builder().name("ncro_route_store_write_failing")
                .help("1 while the route database cannot be written (disk full, read-only): routes live in memory only")
                .callback(cb -> cb.call(routeWriteFailing.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_route_memory_bytes")
                .help("estimated heap held by routes in memory (within cache.memory_budget)")
                .callback(cb -> cb.call(routeMemoryBytes.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_route_write_queue_bytes")
                .help("bytes of route writes waiting for the database writer")
                .callback(cb -> cb.call(routeWriteQueueBytes.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_nar_streams_queued")
                .help("NAR requests waiting for a per_upstream_max_streams slot")
                .callback(cb -> cb.call(streamsQueued.getAsDouble())).register(registry);
        CounterWithCallback.builder().name("ncro_route_writes_dropped")
                .help("route writes dropped because the database writer fell behind")
                .callback(cb -> cb.call(droppedRouteWrites.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_route_entries").help("routes remembered")
                .callback(cb -> cb.call(routeEntries.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_upstream_state")
                .help("upstream health: 0 active, 1 degraded, 2 down").labelNames("upstream")
                .callback(cb -> upstreamStates.get().forEach((upstream, state) -> cb.call(state, upstream)))
                .register(registry);
    }

    /** The read-ahead gauges, read at scrape time. */
    public void registerReadAhead(DoubleSupplier bytesHeld, DoubleSupplier guardPaused) {
        GaugeWithCallback.builder().name("ncro_readahead_bytes")
                .help("bytes of NARs read ahead and not yet claimed by a download (within readahead.memory)")
                .callback(cb -> cb.call(bytesHeld.getAsDouble())).register(registry);
        GaugeWithCallback.builder().name("ncro_readahead_guard_paused")
                .help("1 while the read-ahead guard pauses read-ahead because too little of it was used")
                .callback(cb -> cb.call(guardPaused.getAsDouble())).register(registry);
    }

    /** Races won so far by each upstream that has won one, by display name. */
    public Map<String, Long> raceWinsByUpstream() {
        Map<String, Long> wins = new java.util.HashMap<>();
        for (var point : raceWins.collect().getDataPoints()) {
            wins.put(point.getLabels().get("upstream"), (long) point.getValue());
        }
        return wins;
    }

    /** The Prometheus text exposition of every metric. */
    public byte[] scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public String contentType() {
        return writer.getContentType();
    }
}
