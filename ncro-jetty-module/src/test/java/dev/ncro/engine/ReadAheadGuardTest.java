package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeClock;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class ReadAheadGuardTest {
    private static final long MIB = 1024 * 1024;
    private final FakeClock clock = new FakeClock();
    private final ReadAheadGuard guard = new ReadAheadGuard(clock, Duration.ofMinutes(5), 16 * MIB);

    private int admittedOf(int candidates) {
        int n = 0;
        for (int i = 0; i < candidates; i++) if (guard.admit()) n++;
        return n;
    }

    @Test
    void belowTheMinimum_neverPauses_evenWithNothingServed() {
        guard.fetched(16 * MIB - 1);
        assertFalse(guard.paused());
        assertEquals(8, admittedOf(8));
    }

    @Test
    void queryOnlyClients_pauseReadAhead() {
        guard.fetched(16 * MIB);
        assertTrue(guard.paused());
        assertEquals(0, admittedOf(8), "held back while paused (ReadAhead starts them when a client downloads)");
    }

    @Test
    void halfServed_keepsReadAheadOn() {
        guard.fetched(20 * MIB);
        guard.served(10 * MIB);
        assertFalse(guard.paused());
        guard.fetched(1);
        assertTrue(guard.paused(), "just under half");
    }

    @Test
    void downloadsOfReleasedNars_resumeReadAhead() {
        guard.fetched(16 * MIB);
        assertTrue(guard.paused());
        clock.advance(Duration.ofSeconds(40));
        guard.served(8 * MIB);
        assertFalse(guard.paused());
        assertEquals(8, admittedOf(8));
    }

    @Test
    void windowRollingPastTheFetchedBytes_resumesReadAhead() {
        guard.fetched(32 * MIB);
        clock.advance(Duration.ofMinutes(4));
        assertTrue(guard.paused(), "still within the window");
        clock.advance(Duration.ofSeconds(61));
        assertFalse(guard.paused(), "the fetched bytes left the window");
        assertEquals(8, admittedOf(8));
    }

    @Test
    void servedBytesAlsoLeaveTheWindow() {
        guard.fetched(16 * MIB);
        guard.served(16 * MIB);
        clock.advance(Duration.ofMinutes(5).plusSeconds(1));
        guard.fetched(16 * MIB);
        assertTrue(guard.paused(), "old downloads do not excuse new waste");
    }
}
