package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class AsyncLimiterTest {
    /** Hand-offs wait here until the test runs them: nothing runs inline in release(). */
    private final ArrayDeque<Runnable> handedOff = new ArrayDeque<>();
    private final AsyncLimiter limiter = new AsyncLimiter(2, handedOff::add);
    private final List<Integer> ran = new ArrayList<>();

    @Test
    void beyondThePermits_tasksQueueInOrder_andEachReleaseStartsTheNextElsewhere() {
        for (int i = 0; i < 5; i++) {
            int n = i;
            limiter.run(() -> ran.add(n));
        }
        assertEquals(List.of(0, 1), ran, "two permits: two ran at once");
        assertEquals(3, limiter.queued());

        limiter.release();
        assertEquals(List.of(0, 1), ran, "release never runs a queued task inline");
        handedOff.poll().run();
        assertEquals(List.of(0, 1, 2), ran);
        assertEquals(2, limiter.inUse(), "the permit passed straight to the next task");

        limiter.release();
        limiter.release();
        handedOff.forEach(Runnable::run);
        assertEquals(List.of(0, 1, 2, 3, 4), ran);

        limiter.release();
        limiter.release();
        assertEquals(0, limiter.inUse());
        assertEquals(0, limiter.queued());
    }
}
