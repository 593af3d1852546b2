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

        assertFalse(h.confirmedDown(java.time.Duration.ofHours(1)), "one failure in this run must not confirm a Down that took "
                + UpstreamHealth.DOWN_AFTER + " failures to reach");
    }

    @Test
    void confirmedDown_needsTenFailedProbesOfThisRun_andLapsesOnceTheLastIsOlderThanAnInterval() {
        FakeClock clock = new FakeClock();
        UpstreamHealth h = new UpstreamHealth("http://up", 0.3, clock);
        for (int i = 0; i < UpstreamHealth.DOWN_AFTER - 1; i++) h.probeFailed();
        org.junit.jupiter.api.Assertions.assertFalse(h.confirmedDown(java.time.Duration.ofSeconds(30)));
        h.probeFailed();
        org.junit.jupiter.api.Assertions.assertTrue(h.confirmedDown(java.time.Duration.ofSeconds(30)));

        clock.advance(java.time.Duration.ofSeconds(31)); // probes back off x10 when down: the verdict goes stale

        assertFalse(h.confirmedDown(java.time.Duration.ofSeconds(30)), "a stale Down must be asked again, not trusted");
    }
}
