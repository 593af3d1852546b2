package dev.ncro.health;

import java.time.Duration;
import java.time.InstantSource;
import org.eclipse.jetty.util.annotation.ManagedAttribute;
import org.eclipse.jetty.util.annotation.ManagedObject;

/**
 * One upstream's health: an exponential moving average of its answer latency (probes and
 * races alike; the first sample is taken as is), its consecutive probe failures, its state,
 * and a short cooldown after a transient failure (a network error in a race, a NAR that failed).
 *
 * <p>A state restored from the database ({@link #seed}) is only a hint until a probe of this
 * run confirms it: {@link #confirmedDown()} is false until then, so a restored Down never
 * turns a lookup into a 404. Any HTTP answer ends a cooldown: the upstream is back.
 *
 * <p>State machine: {@link UpstreamState#ACTIVE}; {@link UpstreamState#DEGRADED} after
 * {@value #DEGRADED_AFTER} consecutive failures; {@link UpstreamState#DOWN} after
 * {@value #DOWN_AFTER}; the first success restores ACTIVE. Thread-safe; time comes from the
 * injected clock. Exposed over JMX when Jetty's {@code jmx} module is enabled.
 */
@ManagedObject("ncro upstream health")
public final class UpstreamHealth {
    public static final int DEGRADED_AFTER = 3;
    public static final int DOWN_AFTER = 10;

    /** A consistent copy of the health, for /health, metrics and persistence. */
    public record Snapshot(String upstream, UpstreamState state, double emaMs, int consecutiveFailures,
            long lastProbeAt, long cooldownUntil) {}

    private final String upstream;
    private final double alpha;
    private final InstantSource clock;
    private double emaMs = Double.NaN;
    private int consecutiveFailures;
    private UpstreamState state = UpstreamState.ACTIVE;
    private long lastProbeAt;
    private long cooldownUntil;
    /** Set by NAR failures, ended only by a NAR served or by time (narinfo answers and probes say nothing of NARs). */
    private long narCooldownUntil;
    /** True from {@link #seed} until the first probe of this run. */
    private boolean restored;
    /** Consecutive failed probes of this run: what confirms Down, not a count restored from disk. */
    private int failuresThisRun;

    public UpstreamHealth(String upstream, double alpha, InstantSource clock) {
        this.upstream = upstream;
        this.alpha = alpha;
        this.clock = clock;
    }

    /** Restores a persisted snapshot (at start-up). */
    public synchronized void seed(Snapshot s) {
        emaMs = s.emaMs();
        consecutiveFailures = s.consecutiveFailures();
        state = s.state();
        lastProbeAt = s.lastProbeAt();
        restored = true;
    }

    /** A latency sample from an answer (any HTTP answer: a 404 is a healthy upstream too). */
    public synchronized void sample(double latencyMs) {
        emaMs = Double.isNaN(emaMs) ? latencyMs : alpha * latencyMs + (1 - alpha) * emaMs;
    }

    /**
     * A probe succeeded: restores ACTIVE. A cooldown stays: {@code /nix-cache-info} answering
     * says little about the narinfos and NARs that just failed.
     */
    public synchronized void probeSucceeded(double latencyMs) {
        sample(latencyMs);
        lastProbeAt = clock.millis();
        consecutiveFailures = 0;
        failuresThisRun = 0;
        state = UpstreamState.ACTIVE;
        restored = false;
    }

    public synchronized void probeFailed() {
        lastProbeAt = clock.millis();
        restored = false;
        failuresThisRun++;
        consecutiveFailures++;
        if (consecutiveFailures >= DOWN_AFTER) {
            state = UpstreamState.DOWN;
        } else if (consecutiveFailures >= DEGRADED_AFTER) {
            state = UpstreamState.DEGRADED;
        }
    }

    /**
     * A transient failure (no answer in a race, a NAR that failed): prefer the others for a
     * while. A cooling upstream is still asked when nobody else has a path.
     */
    public synchronized void cooldown(Duration d) {
        cooldownUntil = Math.max(cooldownUntil, clock.millis() + d.toMillis());
    }

    /** It answered a narinfo request (below 500): whatever failed there before has passed. */
    public synchronized void answered() {
        cooldownUntil = 0;
    }

    /** A NAR failed on it (no head in time, 5xx, reset, truncated): try it last for NARs a while. */
    public synchronized void narCooldown(Duration d) {
        narCooldownUntil = Math.max(narCooldownUntil, clock.millis() + d.toMillis());
    }

    /** It served a NAR whole: NARs may go to it first again. */
    public synchronized void narServed() {
        narCooldownUntil = 0;
    }

    /** Whether NARs should go to it first now: not Down, not cooling for narinfos or for NARs. */
    public synchronized boolean narUsable() {
        return state != UpstreamState.DOWN && !coolingNow() && clock.millis() >= narCooldownUntil;
    }

    /** Whether races should ask this upstream first: not Down, not cooling down. */
    public synchronized boolean raceable() {
        return state != UpstreamState.DOWN && !coolingNow();
    }

    private boolean coolingNow() {
        return clock.millis() < cooldownUntil;
    }

    /** A Degraded or Down state restored from the database that no probe of this run has confirmed. */
    public synchronized boolean unconfirmed() {
        return restored && state != UpstreamState.ACTIVE;
    }

    /**
     * Down as confirmed by probes of this run — {@value #DOWN_AFTER} failed in a row, the last
     * one no longer ago than its next scheduled probe (plus {@code probeTimeout} and a second
     * of slack) — only then may it count as not having a path. A Down state restored from the
     * database is a hint; so is a Down whose probes stopped coming (the verdict is stale).
     *
     * @param interval the base probe interval (Down probes come {@code ×10} as often)
     */
    public synchronized boolean confirmedDown(Duration interval, Duration probeTimeout) {
        long fresh = interval.multipliedBy(state.probeBackoff()).plus(probeTimeout).toMillis() + 1000;
        return state == UpstreamState.DOWN && failuresThisRun >= DOWN_AFTER
                && clock.millis() - lastProbeAt <= fresh;
    }

    /** When the next probe is due after the one just made. */
    public synchronized Duration nextProbeIn(Duration interval) {
        return interval.multipliedBy(state.probeBackoff());
    }

    public synchronized Snapshot snapshot() {
        return new Snapshot(upstream, state, emaMs, consecutiveFailures, lastProbeAt, cooldownUntil);
    }

    @ManagedAttribute("upstream base URL")
    public String getUpstream() {
        return upstream;
    }

    @ManagedAttribute("active, degraded or down")
    public synchronized String getState() {
        return state.label();
    }

    @ManagedAttribute("EMA of answer latency in milliseconds (NaN before the first sample)")
    public synchronized double getEmaLatencyMs() {
        return emaMs;
    }

    @ManagedAttribute("consecutive probe failures")
    public synchronized int getConsecutiveFailures() {
        return consecutiveFailures;
    }

    public String upstream() {
        return upstream;
    }

    public synchronized UpstreamState state() {
        return state;
    }

    public synchronized double emaMs() {
        return emaMs;
    }
}
