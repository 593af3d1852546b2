package dev.ncro.health;

import java.util.Locale;

/** An upstream's health, as probes and races have seen it. */
public enum UpstreamState {
    /** Answering; probed at the base interval. */
    ACTIVE(1),
    /** {@value UpstreamHealth#DEGRADED_AFTER} consecutive failures; still raced, probed 4× less often. */
    DEGRADED(4),
    /** {@value UpstreamHealth#DOWN_AFTER} consecutive failures; left out of races, probed 10× less often. */
    DOWN(10);

    private final int probeBackoff;

    UpstreamState(int probeBackoff) {
        this.probeBackoff = probeBackoff;
    }

    /** Multiplier of the probe interval in this state. */
    public int probeBackoff() {
        return probeBackoff;
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
