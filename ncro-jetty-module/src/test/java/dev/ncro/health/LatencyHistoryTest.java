package dev.ncro.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class LatencyHistoryTest {
    @Test
    void keepsTheLastCapacitySamples_oldestFirst() {
        LatencyHistory history = new LatencyHistory(3);
        assertEquals(List.of(), history.samples());

        for (int i = 1; i <= 5; i++) history.add(new LatencyHistory.Sample(i * 1000L, i, true));

        assertEquals(List.of(3000L, 4000L, 5000L), history.samples().stream().map(LatencyHistory.Sample::atMillis).toList());
    }

    @Test
    void record_takesTheProbesOutcome_fromTheHealthItLeft() {
        LatencyHistory history = new LatencyHistory();

        history.record(new UpstreamHealth.Snapshot("http://a", UpstreamState.ACTIVE, 12.5, 0, 1000, 0));
        history.record(new UpstreamHealth.Snapshot("http://a", UpstreamState.ACTIVE, 12.5, 1, 2000, 0));

        List<LatencyHistory.Sample> samples = history.samples();
        assertTrue(samples.get(0).ok());
        assertFalse(samples.get(1).ok(), "a failure in a row: that probe failed");
        assertEquals(12.5, samples.get(1).emaMs());
        assertEquals(60, history.capacity());
    }
}
