package dev.ncro.e2e;

import static dev.ncro.e2e.FaultFixture.DEADLINE;
import static dev.ncro.e2e.FaultFixture.explain;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.e2e.FaultFixture.Closure;
import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restarts (issue 8, "Done when" (e) and (f)): a failure that is over, or a Down state that is
 * only remembered, never makes ncro answer 404 for a path it has not asked about, and never
 * makes a miss answer 502 once every upstream answers again. Upstream A (20 ms, priority 10)
 * and B (100 ms, priority 20); ncro in the real distribution with
 * {@code server.first_byte_timeout: 1s} and {@code cache.race_deadline: 3s}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NixFaultRestartTest {
    private FaultFixture fx;
    private Map<String, Closure> closures;
    /** A path only B holds, in a cache directory of its own. */
    private String onlyOnB;
    private Path cacheOfB;

    @BeforeAll
    void closures(@TempDir Path work) throws Exception {
        Nix.requireOrSkip();
        fx = new FaultFixture(work).smallClosures();
        closures = fx.closures(java.util.List.of("builtins.toFile \"only-on-b\" \"only B holds this\""), "restart");
        onlyOnB = fx.extra.get(0);
        cacheOfB = work.resolve("cacheB");
        fx.nix.ok("nix", "copy", "--from", fx.src, "--to", "file://" + cacheOfB + "?compression=xz", onlyOnB);
    }

    @AfterEach
    void stopServers() throws Exception {
        if (fx != null) fx.close();
    }

    /** A hash nobody has, different for each use (a negative answer is remembered per hash). */
    private static String missing(char c) {
        return String.valueOf(c).repeat(31) + "0";
    }

    /**
     * (e) A restarts (down well under a second). While it is down, a lookup fails on A: the
     * answer is a 5xx, never a 404 (A was not asked). Right after it is back, a miss answers 404,
     * not 502, within the race deadline, and A was asked; the real Nix client then sees "don't
     * know how to build", not an HTTP 502.
     */
    @Test
    void upstreamRestarted_aMissRightAfterItIsBack_answers404Not502() throws Exception {
        FakeCache a = fx.upstream(Duration.ofMillis(20));
        FakeCache b = fx.upstream(Duration.ofMillis(100));
        // probes hourly: nothing but the requests themselves tells ncro that A is back
        JettyDistribution ncro = fx.ncro(fx.config("restart", Duration.ofHours(1), Duration.ofSeconds(1), a, b),
                fx.work.resolve("restart.db"));
        Closure c = closures.get("restart");
        JettyDistribution.Answer warm = ncro.get("/" + FaultFixture.hash(c.leaf()) + ".narinfo");
        assertEquals(200, warm.status(), "before the restart, A serves: " + warm.body());

        AtomicReference<JettyDistribution.Answer> whileDown = new AtomicReference<>();
        Duration down = a.restart(() -> {
            try {
                whileDown.set(ncro.get("/" + missing('1') + ".narinfo"));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        JettyDistribution.Answer afterBack = ncro.get("/" + missing('2') + ".narinfo");

        System.out.printf("(e) A restarted, down %d ms: a miss while down -> %d in %d ms; a miss right after -> %d in %d ms%n",
                down.toMillis(), whileDown.get().status(), whileDown.get().millis(), afterBack.status(), afterBack.millis());
        assertTrue(down.compareTo(Duration.ofSeconds(1)) < 0, "the restart took " + down.toMillis() + " ms");
        assertTrue(whileDown.get().status() >= 500, "while A is down a miss is unsure, never a 404: "
                + whileDown.get().status() + " " + whileDown.get().body());
        assertEquals(404, afterBack.status(), "a miss right after A is back: " + afterBack.body()
                + "\n--- ncro log (tail) ---\n" + FaultFixture.tail(ncro.log(), 20));
        assertTrue(afterBack.millis() < DEADLINE.toMillis(), "the miss answered within the race deadline: " + afterBack.millis() + " ms");
        assertTrue(a.count("/" + missing('2') + ".narinfo") >= 1, "A, back, was asked about the miss: " + a.requests());

        String path = "/nix/store/" + missing('3') + "-missing";
        Nix.Timed r = fx.realise(ncro, "restart-miss", path, Duration.ofSeconds(30));
        System.out.printf("(e) the real client asking for a missing path right after: exit %d in %d ms%n", r.exit(), r.millis());
        assertFalse(r.output().contains("HTTP error 502"), () -> explain(r, ncro));
        assertTrue(r.output().contains("don't know how to build these paths"), () -> explain(r, ncro));
    }

    /**
     * (f) ncro is stopped while its database says B is Down (B refused connections until
     * frequent probes marked it so); B comes back; ncro starts again on the same database with
     * hourly probes, so the only probe that can run is one made at start. A fresh client at once
     * asks for a path only B holds: it is realised, never a 404 for B's paths before B was probed
     * in this run.
     */
    @Test
    void ncroRestartedWithDownInItsDatabase_aPathOnlyTheDownUpstreamHolds_isRealisedAtOnce() throws Exception {
        FakeCache a = fx.upstream(Duration.ofMillis(20));
        FakeCache b = fx.upstream(cacheOfB, Duration.ofMillis(100));
        Path db = fx.work.resolve("down.db");
        JettyDistribution first = fx.ncro(fx.config("down-first", Duration.ofMillis(100), Duration.ofMillis(200), a, b), db);
        long t0 = System.nanoTime();
        b.refuseConnections();
        first.awaitState(b.uri(), "down", Duration.ofSeconds(60));
        long toDown = (System.nanoTime() - t0) / 1_000_000;
        t0 = System.nanoTime();
        first.close();
        long toStop = (System.nanoTime() - t0) / 1_000_000;
        b.resume();

        JettyDistribution second = fx.ncro(fx.config("down-second", Duration.ofHours(1), Duration.ofSeconds(1), a, b), db);
        String atStart = second.health(b.uri()).toString();
        Nix.Timed r = fx.realise(second, "after-restart", onlyOnB, Duration.ofSeconds(30));

        System.out.printf("(f) B down on /health after %d ms, ncro stopped in %d ms; restarted with B down in its database"
                + " (B at start: %s): exit %d in %d ms; B received %s%n", toDown, toStop, atStart, r.exit(), r.millis(), b.requests().stream().map(l -> l.method() + " " + l.path()).toList());
        assertFalse(r.timedOut(), () -> explain(r, second));
        assertEquals(0, r.exit(), () -> explain(r, second));
        assertEquals("only B holds this", Files.readString(fx.work.resolve("dst-after-restart/nix/store")
                .resolve(onlyOnB.substring("/nix/store/".length()))));
    }
}
