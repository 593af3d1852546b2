package dev.ncro.web;

import dev.ncro.testing.FakeCache;
import org.junit.jupiter.api.AfterEach;

/** The usual fixture: two fake binary caches and, once a test starts it, ncro in front of them. */
abstract class TwoUpstreams {
    protected final FakeCache a = FakeCache.start();
    protected final FakeCache b = FakeCache.start();
    protected NcroUnderTest ncro;

    @AfterEach
    void stopNcroAndUpstreams() throws Exception {
        if (ncro != null) ncro.close();
        a.close();
        b.close();
    }
}
