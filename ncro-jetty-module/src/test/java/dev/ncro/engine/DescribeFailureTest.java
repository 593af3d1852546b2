package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.ConnectException;
import java.net.UnknownHostException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeoutException;
import org.apache.hc.core5.http.ConnectionClosedException;
import org.junit.jupiter.api.Test;

/** Error bodies and log lines say what failed, not which Java class carried it. */
class DescribeFailureTest {
    @Test
    void networkFailures_areNamedInWords() {
        assertEquals("cannot resolve host: cache.nixos.org: Name or service not known",
                NarinfoRace.describe(new UnknownHostException("cache.nixos.org: Name or service not known")));
        assertEquals("connection refused: Connection refused", NarinfoRace.describe(new ConnectException("Connection refused")));
        assertEquals("timed out", NarinfoRace.describe(new CompletionException(new TimeoutException())));
        assertEquals("connection closed before a whole answer: Connection closed by peer",
                NarinfoRace.describe(new ConnectionClosedException("Connection closed by peer")));
        assertEquals("internal error (see ncro's log)", NarinfoRace.describe(new IllegalStateException()));
    }
}
