package dev.ncro.health;

import java.util.ArrayList;
import java.util.List;

/**
 * An upstream's latency EMA after each of its last {@link #capacity()} probes, for the status
 * page's chart: a fixed ring, so memory stays bounded however long ncro runs. One record per
 * probe (every {@code probe_interval}, or a second apart at most when traffic has an upstream
 * probed), so the lock guards a few field writes and is never contended in practice.
 */
public final class LatencyHistory {
    /** Samples kept per upstream: half an hour at the default 30 s probe interval. */
    public static final int DEFAULT_CAPACITY = 60;

    /**
     * One probe's outcome.
     *
     * @param atMillis when the probe ended (the engine's clock)
     * @param emaMs the latency EMA after it; NaN if the upstream never answered
     * @param ok whether the probe succeeded
     */
    public record Sample(long atMillis, double emaMs, boolean ok) {}

    private final Sample[] ring;
    private long recorded; // guarded by this; the next slot is recorded % ring.length

    public LatencyHistory() {
        this(DEFAULT_CAPACITY);
    }

    public LatencyHistory(int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("latency history capacity must be positive, got " + capacity);
        this.ring = new Sample[capacity];
    }

    /** Records the health as a probe just left it. */
    public void record(UpstreamHealth.Snapshot probed) {
        add(new Sample(probed.lastProbeAt(), probed.emaMs(), probed.consecutiveFailures() == 0));
    }

    public synchronized void add(Sample sample) {
        ring[(int) (recorded % ring.length)] = sample;
        recorded++;
    }

    /** The samples kept, oldest first. */
    public synchronized List<Sample> samples() {
        int n = (int) Math.min(recorded, ring.length);
        List<Sample> out = new ArrayList<>(n);
        for (long i = recorded - n; i < recorded; i++) out.add(ring[(int) (i % ring.length)]);
        return out;
    }

    public int capacity() {
        return ring.length;
    }
}
