package dev.ncro.mesh;

/**
 * A sender's sequence numbers seen so far: the highest, and which of the 64 below it. A
 * packet is new if its number is above the highest, or within the 64 below it and not seen
 * yet (UDP may reorder a burst); anything else is a replay. Not thread-safe: the node's
 * packet handler owns it.
 */
final class ReplayWindow {
    static final int WIDTH = 64;
    private long highest = -1;
    /** Bit i set: {@code highest - i} was seen. */
    private long seen;

    /** Records {@code seq}; false when it was seen before or is too old to tell. */
    boolean accept(long seq) {
        if (seq < 0) return false;
        if (seq > highest) {
            long shift = highest < 0 ? WIDTH : seq - highest;
            seen = shift >= WIDTH ? 1 : (seen << shift) | 1;
            highest = seq;
            return true;
        }
        long back = highest - seq;
        if (back >= WIDTH) return false;
        long bit = 1L << back;
        if ((seen & bit) != 0) return false;
        seen |= bit;
        return true;
    }

    /** Takes over another window's record (a sender that becomes a peer keeps its history). */
    void copyFrom(ReplayWindow other) {
        highest = other.highest;
        seen = other.seen;
    }

    /** Would {@link #accept} take it? (Checked before a packet is accepted, recorded after.) */
    boolean fresh(long seq) {
        if (seq < 0) return false;
        if (seq > highest) return true;
        long back = highest - seq;
        return back < WIDTH && (seen & (1L << back)) == 0;
    }
}
