package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The route store as clients see it: through HTTP, the engine and real upstreams. */
class RouteMemoryTest extends TwoUpstreams {
    @TempDir
    Path dir;

    private void bothHave(String h, String name) {
        a.put("/" + h + ".narinfo", narinfo(h, name, "nar/" + name + ".nar", 3));
        b.put("/" + h + ".narinfo", narinfo(h, name, "nar/" + name + ".nar", 3));
    }

    @Test
    void warmNarinfo_isAnsweredFromMemory_withoutAnUpstreamRequest() throws Exception {
        String h = hash(50);
        bothHave(h, "warm");
        ncro = NcroUnderTest.start(config(null, a.uri(), 10)); // one upstream: no race loser to count late

        HttpResponse<byte[]> cold = ncro.get("/" + h + ".narinfo");
        long asked = asked(h);
        HttpResponse<byte[]> warm = ncro.get("/" + h + ".narinfo");

        assertEquals(200, warm.statusCode());
        assertEquals(new String(cold.body(), StandardCharsets.UTF_8), new String(warm.body(), StandardCharsets.UTF_8));
        assertEquals(1, asked, "the cold lookup asked the upstream");
        assertEquals(asked, asked(h), "the warm one asked no upstream");
    }

    /**
     * narinfo requests that reached the upstream. These tests give ncro a single upstream: with
     * two, a race's loser may be cancelled before its request leaves, or reach its server after
     * the race has answered, and no count of requests is then exact.
     */
    private long asked(String h) {
        return a.count("/" + h + ".narinfo");
    }

    @Test
    void hundredConcurrentLookups_shareOneRace() throws Exception {
        String h = hash(51);
        bothHave(h, "popular");
        a.delay(Duration.ofMillis(300));
        b.delay(Duration.ofMillis(400));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        List<CompletableFuture<HttpResponse<byte[]>>> answers = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            answers.add(ncro.http.sendAsync(HttpRequest.newBuilder(ncro.uri("/" + h + ".narinfo")).build(),
                    HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (var answer : answers) assertEquals(200, answer.get().statusCode());

        assertEquals(1, a.count("/" + h + ".narinfo"), "exactly one request per upstream");
        assertEquals(1, b.count("/" + h + ".narinfo"), "exactly one request per upstream");
    }

    @Test
    void everyoneSaidNotFound_isRemembered_butAFailureIsNot() throws Exception {
        String missing = hash(52);
        String failing = hash(53);
        b.status("/" + failing + ".narinfo", 500);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        assertEquals(404, ncro.get("/" + missing + ".narinfo").statusCode());
        assertEquals(404, ncro.get("/" + missing + ".narinfo").statusCode());
        assertEquals(1, a.count("/" + missing + ".narinfo"), "the second 404 came from memory");

        assertEquals(502, ncro.get("/" + failing + ".narinfo").statusCode());
        b.clearScripts().put("/" + failing + ".narinfo", narinfo(failing, "back", "nar/57mm5hhm0g54ycbqll7zkqkslq96aq0ddh2mzvrf28x6g3d482g0.nar", 3));
        assertEquals(200, ncro.get("/" + failing + ".narinfo").statusCode(), "a failure is not remembered");
        assertEquals(2, b.count("/" + failing + ".narinfo"));
    }

    @Test
    void routesSurviveARestart_narinfoAndNarPin() throws Exception {
        String h = hash(54);
        a.put("/" + h + ".narinfo", narinfo(h, "kept", "nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar", 1)).put("/nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar", "A".getBytes(StandardCharsets.UTF_8));
        b.delay(Duration.ofMillis(200)).put("/" + h + ".narinfo", narinfo(h, "kept", "nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar", 1))
                .put("/nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar", "B".getBytes(StandardCharsets.UTF_8));
        Path db = dir.resolve("routes.db");
        // the first run knows only a (so no race loser can reach b late); the second knows both,
        // b listed first: only the remembered route can send the NAR request to a
        ncro = NcroUnderTest.start(config(null, a.uri(), 10), db, InstantSource.system());
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        ncro.close();
        a.clearLog();

        ncro = NcroUnderTest.start(config(null, b.uri(), 10, a.uri(), 10), db, InstantSource.system());
        HttpResponse<byte[]> narinfo = ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> nar = ncro.get("/nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar");

        assertEquals(200, narinfo.statusCode());
        assertEquals(0, a.count("/" + h + ".narinfo") + b.count("/" + h + ".narinfo"), "no upstream asked after restart");
        assertEquals("A", new String(nar.body(), StandardCharsets.UTF_8), "the NAR pin survived too");
        assertEquals(0, b.count("/nar/n43mcjhzxzblcdzkilsv09l3nh80rpwzzxr4pdba7d6sxmsfhgy0.nar"));
    }

    @Test
    void routeTtl_followsTheInjectedClock() throws Exception {
        String h = hash(55);
        bothHave(h, "ttl");
        FakeClock clock = new FakeClock();
        ncro = NcroUnderTest.start(config("ttl: 1h", a.uri(), 10), dir.resolve("routes.db"), clock);

        ncro.get("/" + h + ".narinfo");
        long asked = asked(h);
        clock.advance(Duration.ofMinutes(59));
        ncro.get("/" + h + ".narinfo");
        assertEquals(asked, asked(h), "within the TTL: no upstream asked");

        clock.advance(Duration.ofMinutes(2));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertEquals(asked + 1, asked(h), "after the TTL the upstream is asked again");
    }

    @Test
    void corruptDatabase_ncroStillStartsAndServes() throws Exception {
        String h = hash(56);
        bothHave(h, "x");
        Path db = dir.resolve("routes.db");
        Files.writeString(db, "garbage, not SQLite ".repeat(200));

        ncro = NcroUnderTest.start(config(null, a.uri(), 10), db, InstantSource.system());

        assertFalse(ncro.engine.routes().persistent());
        assertTrue(ncro.engine.routes().state().contains(db.toString()));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        long asked = asked(h);
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertEquals(asked, asked(h), "the in-memory store still remembers");
    }
}
