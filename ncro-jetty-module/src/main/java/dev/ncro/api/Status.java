package dev.ncro.api;

import java.time.Instant;
import java.util.List;

/**
 * What the engine is doing, at one instant: the status page's data. Immutable, built from
 * state the engine keeps in memory anyway (health records, metric counters, the route
 * store's counts), so taking one never waits for the network or the database. Carries no
 * credentials: upstreams appear by their display URL, which never holds a login.
 *
 * @param at when the snapshot was taken (the engine's clock)
 * @param overall {@code ok}, {@code degraded} or {@code down}, as {@code /health} says
 * @param upstreams in preference order (tiers, then latency)
 * @param routes the route store
 * @param lookups narinfo lookups since start
 * @param nars NAR streams
 */
public record Status(Instant at, String overall, List<Upstream> upstreams, Routes routes, Lookups lookups, Nars nars) {
    public Status {
        upstreams = List.copyOf(upstreams);
    }

    /**
     * One configured upstream.
     *
     * @param url its display URL (scheme, host, port, path; never a login)
     * @param state {@code active}, {@code degraded} or {@code down}
     * @param emaLatencyMs the latency EMA; NaN before the first sample
     * @param raceWins narinfo races it won since start
     * @param consecutiveFailures probes failed in a row
     * @param lastProbe when it was last probed, or null if never
     * @param latency its latency EMA after each of its last probes, oldest first
     */
    public record Upstream(String url, int priority, String state, double emaLatencyMs, long raceWins,
            int consecutiveFailures, Instant lastProbe, List<LatencySample> latency) {
        public Upstream {
            latency = List.copyOf(latency);
        }
    }

    /**
     * The latency EMA right after one probe.
     *
     * @param emaMs NaN when the upstream has never answered
     * @param ok whether that probe succeeded
     */
    public record LatencySample(Instant at, double emaMs, boolean ok) {}

    /**
     * @param inMemory routes held in the in-memory front (an estimate)
     * @param onDisk routes in the database (exact; 0 without one)
     * @param persistent whether routes are written to the database
     * @param store where routes live: {@code sqlite <path>} or {@code memory only: <reason>}
     * @param memoryBytes estimated heap held by routes in memory
     */
    public record Routes(long inMemory, long onDisk, boolean persistent, String store, long memoryBytes) {}

    /**
     * @param hits answered from a remembered route
     * @param negativeHits answered 404 from a remembered not-found
     * @param misses that needed a race (or joined one)
     */
    public record Lookups(long hits, long negativeHits, long misses) {
        /** Lookups answered without asking an upstream, of all lookups; NaN before the first. */
        public double hitRatio() {
            long all = hits + negativeHits + misses;
            return all == 0 ? Double.NaN : (double) (hits + negativeHits) / all;
        }
    }

    /**
     * @param inFlight NAR streams open now
     * @param queued NAR requests waiting for a stream slot
     * @param bytes NAR body bytes streamed to clients since start
     */
    public record Nars(long inFlight, long queued, long bytes) {}
}
