package dev.ncro.route;

import java.time.Duration;
import java.time.InstantSource;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Lets a repeating condition be logged the first time and then at most once per interval, so
 * that a full disk or an overloaded writer shows in the log without flooding it. The message
 * logged should carry the running count, since the occurrences in between are not logged.
 */
final class LogThrottle {
    private final InstantSource clock;
    private final long intervalMs;
    private final AtomicLong nextAt = new AtomicLong(Long.MIN_VALUE);

    LogThrottle(InstantSource clock, Duration interval) {
        this.clock = clock;
        this.intervalMs = interval.toMillis();
    }

    /** True for the first call and then for one call per interval; never blocks. */
    boolean shouldLog() {
        long now = clock.millis();
        long next = nextAt.get();
        return now >= next && nextAt.compareAndSet(next, now + intervalMs);
    }

    /** The next occurrence is logged again at once (a condition ended, so a new one is news). */
    void reset() {
        nextAt.set(Long.MIN_VALUE);
    }
}
