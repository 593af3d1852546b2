package dev.ncro.health;

import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ncro.testing.FakeClock;
import org.junit.jupiter.api.Test;

/**
 * "404 only when … Down as confirmed by probes in this run": a Down state restored
 * with its 10 consecutive failures is confirmed by ONE failed probe of this run (a single
 * blip at start), since seed() keeps the persisted failure count and probeFailed() adds to it.
 */
class RestoredDownTest {
    @Test
    void restoredDown_isNotConfirmedByASingleFailedProbeOfThisRun() {
        UpstreamHealth h = new UpstreamHealth("http://up", 0.3, new FakeClock());
        h.seed(new UpstreamHealth.Snapshot("http://up", UpstreamState.DOWN, 50, UpstreamHealth.DOWN_AFTER, 0, 0));

        h.probeFailed(); // one probe at start times out (the upstream is slow to warm up, a blip)

        assertFalse(h.confirmedDown(java.time.Duration.ofHours(1), java.time.Duration.ofSeconds(5)), "one failure in this run must not confirm a Down that took "
                + UpstreamHealth.DOWN_AFTER + " failures to reach");
    }

    @Test
    void confirmedDown_needsTenFailedProbesOfThisRun_andLapsesWhenProbesStopComing() {
        FakeClock clock = new FakeClock();
        UpstreamHealth h = new UpstreamHealth("http://up", 0.3, clock);
        for (int i = 0; i < UpstreamHealth.DOWN_AFTER - 1; i++) h.probeFailed();
        java.time.Duration interval = java.time.Duration.ofSeconds(30);
        java.time.Duration timeout = java.time.Duration.ofSeconds(5);
        org.junit.jupiter.api.Assertions.assertFalse(h.confirmedDown(interval, timeout));
        h.probeFailed();
        org.junit.jupiter.api.Assertions.assertTrue(h.confirmedDown(interval, timeout));

        clock.advance(java.time.Duration.ofSeconds(300)); // the next Down probe is due now (x10)
        org.junit.jupiter.api.Assertions.assertTrue(h.confirmedDown(interval, timeout), "within its probe period it stands");
        clock.advance(java.time.Duration.ofSeconds(7)); // that probe never came: the verdict is stale

        assertFalse(h.confirmedDown(interval, timeout), "a stale Down must be asked again, not trusted");
    }
}
