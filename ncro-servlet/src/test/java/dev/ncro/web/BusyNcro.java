package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;

import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The status page's scenario: ncro in front of two real fake caches, both with logins (a in
 * the YAML, b from a netrc file), after some traffic (a race a won, a hit, a NAR streamed)
 * and twelve probe rounds 30 s apart on a fake clock, during which b stops listening — so a
 * is active with a latency history, and b is down after ten failed probes. Probes are driven
 * here ({@code probeAll}); the scheduled ones are an hour away: nothing waits for a timer.
 */
final class BusyNcro implements AutoCloseable {
    static final String USERNAME = "status-page-user";
    static final String PASSWORD = "status-page-pw-8d1f";
    static final String NETRC_USER = "netrc-login-name";
    static final String NETRC_PASSWORD = "netrc-pw-77c2";
    static final String NAR = "nar/" + hash(91) + ".nar";
    static final long NAR_SIZE = 3L * 1024 * 1024 + 12345;

    final FakeCache a = FakeCache.start();
    final FakeCache b = FakeCache.start();
    final FakeClock clock = new FakeClock();
    final NcroUnderTest ncro;

    BusyNcro(Path dir) throws Exception {
        Path netrc = dir.resolve("netrc");
        Files.writeString(netrc, "machine 127.0.0.1 login " + NETRC_USER + " password " + NETRC_PASSWORD + "\n");
        ncro = NcroUnderTest.start("server:\n  netrc_file: " + netrc + "\n"
                + "upstreams:\n"
                + "  - url: " + a.uri() + "\n    priority: 40\n    username: " + USERNAME + "\n    password: " + PASSWORD + "\n"
                + "  - url: " + b.uri() + "\n    priority: 40\n"
                + "health:\n  probe_interval: 1h\n  probe_timeout: 2s\n", dir.resolve("routes.db"), clock);
    }

    /** Traffic, then the probe rounds; returns this, now in the state the class describes. */
    BusyNcro drive() throws Exception {
        String h = hash(90);
        a.put("/" + h + ".narinfo", narinfo(h, "hello", NAR, NAR_SIZE)).putGenerated("/" + NAR, NAR_SIZE);
        check(ncro.get("/" + h + ".narinfo").statusCode() == 200, "a's narinfo");
        check(ncro.get("/" + h + ".narinfo").statusCode() == 200, "a's narinfo again, remembered");
        check(ncro.get("/" + NAR).body().length == NAR_SIZE, "the NAR, whole");
        ncro.routes().flush().get();

        // a's answers take a varying few milliseconds, so its chart has a shape; b is slower until it goes away
        int[] delaysMs = {8, 14, 22, 12, 30, 26, 18, 10, 16, 24, 15, 12};
        b.delay(Duration.ofMillis(35));
        for (int round = 0; round < delaysMs.length; round++) {
            if (round == 2) b.refuseConnections();
            a.delay(Duration.ofMillis(delaysMs[round]));
            clock.advance(Duration.ofSeconds(30));
            ncro.engine.probes().probeAll().get();
        }
        a.delay(Duration.ZERO);
        return this;
    }

    private static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError("scenario set-up failed: " + what);
    }

    @Override
    public void close() throws Exception {
        ncro.close();
        a.close();
        b.close();
    }
}
