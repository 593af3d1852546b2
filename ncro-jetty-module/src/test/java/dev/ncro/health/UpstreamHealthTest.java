package dev.ncro.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeClock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class UpstreamHealthTest {
    private final FakeClock clock = new FakeClock();
    private final UpstreamHealth health = new UpstreamHealth("http://up", 0.3, clock);

    @Test
    void ema_takesTheFirstSampleAsIs_thenWeighsNewSamplesByAlpha() {
        assertTrue(Double.isNaN(health.emaMs()));
        health.sample(100);
        assertEquals(100, health.emaMs(), 1e-9);
        health.sample(200);
        assertEquals(0.3 * 200 + 0.7 * 100, health.emaMs(), 1e-9);
        health.probeSucceeded(10);
        assertEquals(0.3 * 10 + 0.7 * 130, health.emaMs(), 1e-9);
    }

    @Test
    void stateMachine_degradedAfter3_downAfter10_activeOnFirstSuccess() {
        for (int i = 1; i <= 2; i++) health.probeFailed();
        assertEquals(UpstreamState.ACTIVE, health.state());
        health.probeFailed();
        assertEquals(UpstreamState.DEGRADED, health.state());
        for (int i = 4; i <= 9; i++) health.probeFailed();
        assertEquals(UpstreamState.DEGRADED, health.state());
        health.probeFailed();
        assertEquals(UpstreamState.DOWN, health.state());
        assertFalse(health.raceable(), "down upstreams are left out of races");

        health.probeSucceeded(5);

        assertEquals(UpstreamState.ACTIVE, health.state());
        assertEquals(0, health.getConsecutiveFailures());
        assertTrue(health.raceable());
    }

    @Test
    void probeInterval_backsOffByState() {
        Duration base = Duration.ofSeconds(30);
        assertEquals(base, health.nextProbeIn(base));
        for (int i = 0; i < 3; i++) health.probeFailed();
        assertEquals(Duration.ofSeconds(120), health.nextProbeIn(base));
        for (int i = 0; i < 7; i++) health.probeFailed();
        assertEquals(Duration.ofSeconds(300), health.nextProbeIn(base));
    }

    @Test
    void cooldown_endsWithTheInjectedClock() {
        health.cooldown(Duration.ofSeconds(15));
        assertFalse(health.raceable());
        clock.advance(Duration.ofSeconds(14));
        assertFalse(health.raceable());
        clock.advance(Duration.ofSeconds(1));
        assertTrue(health.raceable());
    }

    @Test
    void lastProbeTime_comesFromTheClock() {
        clock.advance(Duration.ofMinutes(3));
        health.probeFailed();
        assertEquals(clock.millis(), health.snapshot().lastProbeAt());
    }

    private record U(String name, double ema, int priority) {}

    @Test
    void ordering_byLatency_withinTenPercentLowerPriorityWins_unmeasuredLast() {
        U fast = new U("fast", 50, 20);
        U nearlyAsFast = new U("near", 54, 10); // within 10% of 50: a tie, priority 10 wins
        U slow = new U("slow", 200, 1);
        U unknown = new U("unknown", Double.NaN, 0);

        List<U> order = Ordering.byLatency(List.of(slow, unknown, fast, nearlyAsFast), U::ema, U::priority);

        assertEquals(List.of(nearlyAsFast, fast, slow, unknown), order);
    }
}
