package dev.ncro.engine;

import dev.ncro.config.Defaults;
import java.time.InstantSource;
import java.util.concurrent.ConcurrentHashMap;

/**
 * When each NAR target was last marked, read without a lock (the hot narinfo path asks): a
 * bounded memory of "done this a moment ago", emptied whenever it reaches {@link
 * Defaults#READAHEAD_MAX_PARKED} entries.
 */
final class Stamps {
    private final InstantSource clock;
    private final ConcurrentHashMap<String, Long> at = new ConcurrentHashMap<>();

    Stamps(InstantSource clock) {
        this.clock = clock;
    }

    /** Records now for {@code target}. */
    void stamp(String target) {
        if (at.size() >= Defaults.READAHEAD_MAX_PARKED) at.clear();
        at.put(target, clock.millis());
    }

    /** Whether {@code target} was stamped less than {@code ms} ago (a clock stepped back: stale). */
    boolean within(String target, long ms) {
        Long then = at.get(target);
        if (then == null) return false;
        long age = clock.millis() - then;
        return age >= 0 && age < ms;
    }

    void clear() {
        at.clear();
    }
}
