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
 * were served, read-ahead pauses. While paused, one candidate in {@code probeEvery} is still
 * read ahead: if clients download those, served bytes rise and read-ahead resumes by
 * itself; if not, the window rolls past the fetched bytes and the guard starts over. A
 * query-only client therefore costs at most {@code minBytes} per window plus one NAR in
 * {@code probeEvery}.
 *
 * <p>The trade-off: a real client's narinfo phase that names more than {@code minBytes} of
 * small NARs before its first download may pause read-ahead for its last paths; its downloads
 * then lift the ratio again. Thread-safe; every method is a few additions under a lock.
 */
final class ReadAheadGuard {
    private static final int BUCKETS = 10;

    private final InstantSource clock;
    private final long bucketMillis;
    private final long minBytes;
    private final int probeEvery;
    private final long[] epoch = new long[BUCKETS];
    private final long[] fetched = new long[BUCKETS];
    private final long[] served = new long[BUCKETS];
    private long skipped;

    ReadAheadGuard(InstantSource clock, Duration window, long minBytes, int probeEvery) {
        if (window.toMillis() < BUCKETS) throw new IllegalArgumentException("window too short: " + window);
        if (probeEvery < 1) throw new IllegalArgumentException("probeEvery must be at least 1, got " + probeEvery);
        this.clock = clock;
        this.bucketMillis = window.toMillis() / BUCKETS;
        this.minBytes = minBytes;
        this.probeEvery = probeEvery;
        java.util.Arrays.fill(epoch, -1);
    }

    /** Whether this candidate may be read ahead: always while not paused, one in {@code probeEvery} while paused. */
    synchronized boolean admit() {
        if (!pausedNow()) {
            skipped = 0;
            return true;
        }
        if (++skipped >= probeEvery) {
            skipped = 0;
            return true;
        }
        return false;
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
