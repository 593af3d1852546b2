package dev.ncro.health;

import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ncro.testing.FakeClock;
import org.junit.jupiter.api.Test;

/**
 * Audit of "404 only when … Down as confirmed by probes in this run": a Down state restored
 * with its 10 consecutive failures is confirmed by ONE failed probe of this run (a single
 * blip at start), since seed() keeps the persisted failure count and probeFailed() adds to it.
 */
class AuditRestoredDownTest {
    @Test
    void restoredDown_isNotConfirmedByASingleFailedProbeOfThisRun() {
        UpstreamHealth h = new UpstreamHealth("http://up", 0.3, new FakeClock());
        h.seed(new UpstreamHealth.Snapshot("http://up", UpstreamState.DOWN, 50, UpstreamHealth.DOWN_AFTER, 0, 0));

        h.probeFailed(); // one probe at start times out (the upstream is slow to warm up, a blip)

        assertFalse(h.confirmedDown(), "one failure in this run must not confirm a Down that took "
                + UpstreamHealth.DOWN_AFTER + " failures to reach");
    }
}
