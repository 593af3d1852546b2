package dev.ncro.engine;

import java.time.Duration;
import java.time.InstantSource;

/**
 * Pauses NAR read-ahead while it does not pay: clients that only query ({@code --dry-run},
 * {@code nix path-info}) fetch narinfos and never the NARs, and each read-ahead for them is
 * download volume for nothing.
 *
 * <p>Over a sliding window (ten buckets of a tenth of it, by the injected clock) the guard
 * counts the bytes read-ahead started to fetch and the bytes of them a client was served.
 * Once at least {@code minBytes} were fetched within the window and less than half of them
 * were served, read-ahead pauses: {@link ReadAhead} then holds candidates back, and starts
 * them when a client downloads a NAR (proof that the narinfos just served were not a mere
 * query); if clients download those, served bytes rise and read-ahead resumes by itself; if
 * not, the window rolls past the fetched bytes and the guard starts over. A query-only client
 * therefore costs at most about {@code minBytes} per window.
 *
 * <p>The trade-off: a real client's narinfo phase that names more than {@code minBytes} of
 * small NARs before its first download has the rest read ahead only from that download on.
 * Thread-safe; every method is a few additions under a lock.
 */
final class ReadAheadGuard {
    private static final int BUCKETS = 10;

    private final InstantSource clock;
    private final long bucketMillis;
    private final long minBytes;
    private final long[] epoch = new long[BUCKETS];
    private final long[] fetched = new long[BUCKETS];
    private final long[] served = new long[BUCKETS];

    ReadAheadGuard(InstantSource clock, Duration window, long minBytes) {
        if (window.toMillis() < BUCKETS) throw new IllegalArgumentException("window too short: " + window);
        this.clock = clock;
        this.bucketMillis = window.toMillis() / BUCKETS;
        this.minBytes = minBytes;
        java.util.Arrays.fill(epoch, -1);
    }

    /** Whether a candidate may be read ahead now: whenever not paused. */
    synchronized boolean admit() {
        return !pausedNow();
    }

    /** Read-ahead started fetching {@code bytes}. */
    synchronized void fetched(long bytes) {
        fetched[bucket()] += bytes;
    }

    /** A client was served {@code bytes} read ahead. */
    synchronized void served(long bytes) {
        served[bucket()] += bytes;
    }

    /** Whether read-ahead is paused now (the metric {@code ncro_readahead_guard_paused}). */
    synchronized boolean paused() {
        return pausedNow();
    }

    private boolean pausedNow() {
        long now = clock.millis() / bucketMillis;
        long f = 0;
        long s = 0;
        for (int i = 0; i < BUCKETS; i++) {
            if (epoch[i] > now - BUCKETS) {
                f += fetched[i];
                s += served[i];
            }
        }
        return f >= minBytes && s * 2 < f;
    }

    /** The current bucket, emptied first when it last held an older period. */
    private int bucket() {
        long now = clock.millis() / bucketMillis;
        int i = (int) Math.floorMod(now, (long) BUCKETS);
        if (epoch[i] != now) {
            epoch[i] = now;
            fetched[i] = 0;
            served[i] = 0;
        }
        return i;
    }
}
