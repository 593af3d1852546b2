package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Upstream health as operators and clients see it. Probes are driven by the test
 * ({@code probeAll}), the clock is fake: nothing here waits for a timer.
 */
class HealthTest {
    @TempDir
    Path dir;

    private final FakeCache a = FakeCache.start();
    private final FakeCache b = FakeCache.start();
    private final FakeClock clock = new FakeClock();
    private NcroUnderTest ncro;

    @AfterEach
    void stop() throws Exception {
        if (ncro != null) ncro.close();
        a.hangAll(false).close();
        b.hangAll(false).close();
    }

    private NcroUnderTest start(String deadline) throws Exception {
        return start(deadline, "200ms");
    }

    private NcroUnderTest start(String deadline, String probeTimeout) throws Exception {
        String yaml = NcroUnderTest.config("race_deadline: " + deadline, a.uri(), 10, b.uri(), 10)
                + "health:\n  probe_interval: 1h\n  probe_timeout: " + probeTimeout + "\n";
        return NcroUnderTest.start(yaml, dir.resolve("routes.db"), clock);
    }

    private JsonNode health() throws Exception {
        HttpResponse<byte[]> r = ncro.get("/health");
        JsonNode json = new ObjectMapper().readTree(r.body());
        assertEquals(json.get("status").asText().equals("down") ? 503 : 200, r.statusCode());
        return json;
    }

    private static JsonNode upstream(JsonNode health, FakeCache cache) {
        for (JsonNode u : health.get("upstreams")) if (u.get("url").asText().equals(cache.uri().toString())) return u;
        throw new AssertionError("no " + cache.uri() + " in " + health);
    }

    private void probe(int times) throws Exception {
        for (int i = 0; i < times; i++) ncro.engine.probes().probeAll().get();
    }

    @Test
    void refusingUpstream_goesDegradedThenDown_onHealth_andRejoinsWhenBack() throws Exception {
        String onlyB = hash(60);
        b.put("/" + onlyB + ".narinfo", narinfo(onlyB, "b", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 3));
        ncro = start("5s");
        probe(1);
        JsonNode healthy = health();
        assertEquals("ok", healthy.get("status").asText());
        assertTrue(upstream(healthy, b).get("ema_latency_ms").isNumber());
        assertTrue(upstream(healthy, b).get("last_probe").isTextual());

        b.refuseConnections();
        probe(3);
        assertEquals("degraded", upstream(health(), b).get("state").asText());
        probe(7);
        JsonNode down = health();
        assertEquals("down", upstream(down, b).get("state").asText());
        assertEquals(10, upstream(down, b).get("consecutive_failures").asInt());
        assertEquals("degraded", down.get("status").asText(), "one of two upstreams down");
        assertEquals("active", upstream(down, a).get("state").asText());

        b.resume();
        probe(1);
        JsonNode back = health();
        assertEquals("active", upstream(back, b).get("state").asText());
        assertEquals("ok", back.get("status").asText());
        assertEquals(200, ncro.get("/" + onlyB + ".narinfo").statusCode(), "b is raced again");
    }

    @Test
    void hangingUpstream_onceDown_lookupsNoLongerWaitForIt() throws Exception {
        String first = hash(61);
        String second = hash(62);
        b.hangAll(true);
        ncro = start("1s"); // not less: the healthy upstream's 404 must arrive within it on a loaded machine

        // while b is active a miss waits for it until the deadline: 504, never 404
        assertEquals(504, ncro.get("/" + first + ".narinfo").statusCode());

        probe(10); // every probe times out
        assertEquals("down", upstream(health(), b).get("state").asText());
        clock.advance(Duration.ofMinutes(1)); // past the cooldown the deadline imposed
        b.clearLog();

        HttpResponse<byte[]> r = ncro.get("/" + second + ".narinfo");

        assertEquals(404, r.statusCode(), "a Down upstream is left out: " + new String(r.body()));
        assertEquals(0, b.count("/" + second + ".narinfo"), "the hanging upstream was not asked");
        assertEquals(1, a.count("/" + second + ".narinfo"));
    }

    @Test
    void upstreamCoolingDownAfterAFailure_isAskedLast_soAMissIs404AsSoonAsItAnswersAgain() throws Exception {
        String onlyB = hash(66);
        b.put("/" + onlyB + ".narinfo", narinfo(onlyB, "b", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 3));
        b.refuseConnections();
        ncro = start("5s");
        HttpResponse<byte[]> refused = ncro.get("/" + hash(63) + ".narinfo");
        assertEquals(502, refused.statusCode(), "b failed, so it may have it: " + new String(refused.body()));
        assertEquals(502, ncro.get("/" + hash(63) + ".narinfo").statusCode(), "still refusing while cooling: still 502");
        b.resume(); // back within the cooldown

        HttpResponse<byte[]> miss = ncro.get("/" + hash(64) + ".narinfo");
        HttpResponse<byte[]> hit = ncro.get("/" + onlyB + ".narinfo");

        assertEquals(404, miss.statusCode(), "the cooling upstream is asked last and says not-found: " + new String(miss.body()));
        assertEquals(1, b.count("/" + hash(64) + ".narinfo"));
        assertEquals(200, hit.statusCode(), "a path only the cooling upstream has is still served");
    }

    @Test
    void restoredDownState_isNotTrustedBeforeAProbeOfThisRun_soItsPathsAreNot404() throws Exception {
        String onlyB = hash(67);
        ncro = start("5s");
        b.refuseConnections();
        probe(10);
        assertEquals("down", upstream(health(), b).get("state").asText());
        ncro.close();
        b.resume();
        b.put("/" + onlyB + ".narinfo", narinfo(onlyB, "b", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 3));
        b.hang("/nix-cache-info"); // the probe at start never answers: the restored Down stays unconfirmed

        ncro = start("5s", "1h");
        HttpResponse<byte[]> hit = ncro.get("/" + onlyB + ".narinfo");
        HttpResponse<byte[]> miss = ncro.get("/" + hash(68) + ".narinfo");

        assertEquals("down", upstream(health(), b).get("state").asText(), "restored, not yet re-probed");
        assertEquals(200, hit.statusCode(), "b is asked though its restored state says down: " + new String(hit.body()));
        assertEquals(404, miss.statusCode(), "b answered not-found");
        assertEquals(1, b.count("/" + hash(68) + ".narinfo"));
        assertTrue(b.count("/nix-cache-info") >= 1, "the restored Down state was re-probed at start");
    }

    @Test
    void failuresSeenByTraffic_getTheUpstreamProbedAtOnce_soADeadOneIsConfirmedDownWithoutWaitingAnInterval()
            throws Exception {
        b.refuseConnections();
        ncro = start("5s"); // probes every hour: only traffic can get b probed
        for (int i = 1; i <= 10; i++) {
            clock.advance(Duration.ofSeconds(1)); // traffic-triggered probes are spaced a second apart
            assertEquals(502, ncro.get("/" + hash(200 + i) + ".narinfo").statusCode(), "b refused: it may have it");
            awaitFailures(b, i);
        }
        assertEquals("down", upstream(health(), b).get("state").asText());
        b.clearLog();

        HttpResponse<byte[]> miss = ncro.get("/" + hash(211) + ".narinfo");

        assertEquals(404, miss.statusCode(), "confirmed Down in this run: it counts as not having it");
        assertEquals(0, b.count("/" + hash(211) + ".narinfo"), "b was not asked (only probed, which a Down upstream left out earns)");
    }

    /** Waits (bounded) for the probe that the failure set off to be counted. */
    private void awaitFailures(FakeCache cache, int n) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (upstream(health(), cache).get("consecutive_failures").asInt() < n) {
            if (System.nanoTime() > until) throw new AssertionError("no probe after a failure: " + health());
            Thread.onSpinWait();
        }
    }

    @Test
    void everyUpstreamDown_isStillTried_andHealthSays503() throws Exception {
        String h = hash(65);
        a.refuseConnections();
        b.put("/" + h + ".narinfo", narinfo(h, "b", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 3)).refuseConnections();
        ncro = start("5s");
        probe(10);
        assertEquals("down", health().get("status").asText());

        b.resume();
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode(), "with everyone down, all are tried");
    }

    @Test
    void healthSnapshots_arePersisted_andSeededAtStart() throws Exception {
        ncro = start("5s");
        b.refuseConnections();
        probe(10);
        assertEquals("down", upstream(health(), b).get("state").asText());
        probe(1); // a's EMA too
        ncro.close();

        ncro = start("5s"); // same database
        ncro.engine.probes().startProbes().get(30, java.util.concurrent.TimeUnit.SECONDS); // a restored Down is re-probed at once
        JsonNode seeded = health();

        assertEquals("down", upstream(seeded, b).get("state").asText());
        assertEquals(12, upstream(seeded, b).get("consecutive_failures").asInt(), "11 restored, 1 at start");
        assertTrue(upstream(seeded, a).get("ema_latency_ms").isNumber());
        b.resume();
    }

    @Test
    void probe_fallsBackToGet_whenHeadIsRefused_andRemembersIt() throws Exception {
        b.refuseHead(true);
        ncro = start("5s");

        probe(2);

        assertEquals("active", upstream(health(), b).get("state").asText());
        assertEquals(0, upstream(health(), b).get("consecutive_failures").asInt());
        List<String> methods = b.requests().stream().filter(l -> l.path().equals("/nix-cache-info")).map(FakeCache.Logged::method).toList();
        assertEquals(List.of("HEAD", "GET", "GET"), methods, "HEAD once, then GET for good");
        assertEquals(List.of("HEAD", "HEAD"),
                a.requests().stream().filter(l -> l.path().equals("/nix-cache-info")).map(FakeCache.Logged::method).toList());
    }

    @Test
    void unknownNar_isAskedOfTheFasterUpstreamFirst_byMeasuredLatency() throws Exception {
        a.delay(Duration.ofMillis(150)).put("/nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar", "from a".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        b.put("/nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar", "from b".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        ncro = start("5s"); // a is listed first, same priority
        probe(1);
        a.clearLog();
        b.clearLog();

        HttpResponse<byte[]> r = ncro.get("/nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar");

        assertEquals("from b", new String(r.body(), java.nio.charset.StandardCharsets.UTF_8), "b's EMA is far lower");
        assertEquals(0, a.count("/nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar"));
    }
}
