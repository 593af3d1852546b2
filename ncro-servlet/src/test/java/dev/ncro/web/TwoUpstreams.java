package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ncro.engine.NarBuffers;
import dev.ncro.testing.FakeCache;
import org.junit.jupiter.api.AfterEach;

/**
 * The usual fixture: two fake binary caches and, once a test starts it, ncro in front of them.
 * After each test every pooled NAR buffer must have gone back (the test's streams ended, one
 * way or another, while ncro still ran).
 */
abstract class TwoUpstreams {
    protected final FakeCache a = FakeCache.start();
    protected final FakeCache b = FakeCache.start();
    protected NcroUnderTest ncro;

    @AfterEach
    void stopNcroAndUpstreams() throws Exception {
        // streams a test abandoned end on other threads: give them a moment to finish
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (NarBuffers.outstanding() > 0 && System.nanoTime() < deadline) Thread.sleep(5);
        long outstanding = NarBuffers.outstanding();
        if (ncro != null) ncro.close();
        a.close();
        b.close();
        assertEquals(0, outstanding, "pooled NAR buffers still out after the test's streams ended");
    }
}
