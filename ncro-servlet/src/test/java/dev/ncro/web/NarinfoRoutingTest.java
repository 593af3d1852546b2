package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Defaults;
import dev.ncro.testing.FakeCache;
import java.net.ServerSocket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Narinfo lookups through the real filter, engine and HTTP client against real upstreams. */
class NarinfoRoutingTest extends TwoUpstreams {
    private final FakeCache c = FakeCache.start();

    @AfterEach
    void stopThirdUpstream() {
        c.close();
    }

    private static String body(HttpResponse<byte[]> r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    @Test
    void race_answersWithTheFastestUpstreamsNarinfo() throws Exception {
        String h = hash(1);
        a.delay(Duration.ofMillis(900)).put("/" + h + ".narinfo", narinfo(h, "slow", "nar/nxip0lzc53xwivli31p9kp9pgl8sdfvvn73n8w56qiyviyyychp0.nar", 1));
        // 50 ms: time for every racer's request to arrive before the winner answers, even under load
        b.delay(Duration.ofMillis(50)).put("/" + h + ".narinfo", narinfo(h, "fast", "nar/g8ahw6i5z5jc9xc5h285ni06dnby64vzfmwknx7j6wgz6hdqxa40.nar", 1));
        c.delay(Duration.ofMillis(450)).put("/" + h + ".narinfo", narinfo(h, "mid", "nar/27ldlbv36f8dfswz8lf87w35a777v4fmkxqq9ldql2gz3wr2c541.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10, c.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(200, r.statusCode());
        assertEquals(narinfo(h, "fast", "nar/g8ahw6i5z5jc9xc5h285ni06dnby64vzfmwknx7j6wgz6hdqxa40.nar", 1), body(r));
        assertEquals("text/x-nix-narinfo", r.headers().firstValue("content-type").orElseThrow());
        assertEquals(1, a.count("/" + h + ".narinfo"), "every tier member is raced");
        assertEquals("GET", b.requests().get(0).method(), "the race GETs: one round trip to the winner");
    }

    @Test
    void lowerPriorityTierWins_evenWhenSlower_andNextTierIsNotAsked() throws Exception {
        String h = hash(2);
        a.delay(Duration.ofMillis(150)).put("/" + h + ".narinfo", narinfo(h, "first-tier", "nar/v5jwypnhp30kbrr9w35hzpvh7dkqxi8kkdc4cxbrxx6lc94hplj1.nar", 1));
        b.put("/" + h + ".narinfo", narinfo(h, "second-tier", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(200, r.statusCode());
        assertTrue(body(r).contains("first-tier"));
        assertEquals(0, b.requests().size());
    }

    @Test
    void missInFirstTier_fallsToNextTier() throws Exception {
        String h = hash(3);
        b.put("/" + h + ".narinfo", narinfo(h, "second", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(200, r.statusCode());
        assertTrue(body(r).contains("second"));
        assertEquals(1, a.count("/" + h + ".narinfo"));
    }

    @Test
    void everyUpstreamNotFound_is404() throws Exception {
        String h = hash(4);
        b.status("/" + h + ".narinfo", 410);
        c.status("/" + h + ".narinfo", 403);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10, c.uri(), 20));

        assertEquals(404, ncro.get("/" + h + ".narinfo").statusCode());
    }

    @Test
    void oneUpstreamFailedAndNoneHadIt_is502_never404() throws Exception {
        String h = hash(5);
        b.status("/" + h + ".narinfo", 500);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(502, r.statusCode());
        assertTrue(body(r).contains(b.uri().toString()), "the error names the failing upstream: " + body(r));
    }

    @Test
    void refusedConnection_is502() throws Exception {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, "http://127.0.0.1:" + closedPort, 10));

        assertEquals(502, ncro.get("/" + hash(6) + ".narinfo").statusCode());
    }

    @Test
    void hangingUpstream_answers504AtTheDeadline_andOthersStillCount() throws Exception {
        String h = hash(7);
        a.hang("/" + h + ".narinfo");
        ncro = NcroUnderTest.start(config("race_deadline: 300ms", a.uri(), 10, b.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(504, r.statusCode(), "b's 404 alone must not make it a 404 while a never answered: " + body(r));
        assertTrue(body(r).contains("300ms"), body(r));
        // the others still count: b was asked in the same race, and its answer was taken (the
        // 504 waited for a alone, not for b too)
        assertEquals(1, b.count("/" + h + ".narinfo"), "the other upstream is raced alongside the hanging one");
        assertTrue(body(r).contains("waiting for [" + a.uri() + "]"), "only the hanging upstream was waited for: " + body(r));
    }

    @Test
    void hangingSlowUpstream_doesNotDelayAFasterHit() throws Exception {
        String h = hash(8);
        a.hang("/" + h + ".narinfo");
        b.put("/" + h + ".narinfo", narinfo(h, "b", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 1));
        ncro = NcroUnderTest.start(config("race_deadline: 30s", a.uri(), 10, b.uri(), 10));

        long start = System.nanoTime();
        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");
        Duration took = Duration.ofNanos(System.nanoTime() - start);

        assertEquals(200, r.statusCode());
        assertTrue(body(r).contains("/nix/store/" + h + "-b"), body(r));
        // a never answers, so anything that waits for it waits for the 30 s deadline; b answers
        // at once, so 5 s is generous even on a loaded machine
        assertTrue(took.compareTo(Duration.ofSeconds(5)) < 0, "the hit waited for the hanging upstream: " + took);
        // the race asked both at once, but b's answer can reach the client before a's server
        // has logged the request it holds
        ReadAheadTest.await(() -> a.count("/" + h + ".narinfo") == 1, "a raced too: the hit did not come from leaving it out");
        assertEquals(1, a.count("/" + h + ".narinfo"), "a asked once");
    }

    @Test
    void invalidNarinfoFromTheFastest_losesToAnHonestSlowerOne() throws Exception {
        String h = hash(9);
        a.put("/" + h + ".narinfo", narinfo(hash(10), "wrong-path", "nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar", 1));
        b.delay(Duration.ofMillis(100)).put("/" + h + ".narinfo", narinfo(h, "honest", "nar/s7cil84nhydnrvkia9h0ri0d260cxs1gfwjyg62iz7mh3vhwwg81.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(200, r.statusCode());
        assertTrue(body(r).contains("honest"));
    }

    @Test
    void onlyAnInvalidNarinfo_is502_not404() throws Exception {
        String h = hash(11);
        a.put("/" + h + ".narinfo", "this is not a narinfo");
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        assertEquals(502, ncro.get("/" + h + ".narinfo").statusCode());
    }

    /**
     * A narinfo that would be valid but for its size: only the size limit can reject it (a
     * body of junk would be rejected as invalid whatever its size).
     */
    private static String oversizedNarinfo(String h) {
        String info = narinfo(h, "big", "nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar", 1);
        return info + "Padding: " + "x".repeat(Defaults.NARINFO_MAX_BYTES + 1024 - info.length()) + "\n";
    }

    @Test
    void oversizedNarinfo_withContentLength_failsThatUpstream_502NotA404() throws Exception {
        String h = hash(12);
        a.put("/" + h + ".narinfo", oversizedNarinfo(h));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(502, r.statusCode(), body(r));
        assertTrue(body(r).contains(a.uri().toString()), "the error names the failing upstream: " + body(r));
        assertEquals(1, b.count("/" + h + ".narinfo"), "b was asked, and said 404");
    }

    @Test
    void oversizedNarinfo_chunkedWithoutLength_failsThatUpstream_502NotA404NorTruncated() throws Exception {
        String h = hash(16);
        String path = "/" + h + ".narinfo";
        a.put(path, oversizedNarinfo(h)).chunked(path);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));
        HttpResponse<byte[]> direct = ncro.http.send(HttpRequest.newBuilder(a.uri().resolve(path)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        assertTrue(direct.headers().firstValue("content-length").isEmpty(), "the fixture streams it without a length");
        assertEquals("chunked", direct.headers().firstValue("transfer-encoding").orElse(""));
        assertEquals(oversizedNarinfo(h), body(direct), "and whole: only the size limit can reject it");
        a.clearLog();

        HttpResponse<byte[]> r = ncro.get(path);

        assertEquals(502, r.statusCode(), "never a 404, never the body cut at the limit: " + body(r));
        assertTrue(body(r).contains(a.uri().toString()), "the error names the failing upstream: " + body(r));
        assertEquals(1, a.count(path));
        assertEquals(1, b.count(path), "b was asked, and said 404");
    }

    @Test
    void head_answersHeadersWithoutBody() throws Exception {
        String h = hash(13);
        String info = narinfo(h, "x", "nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar", 1);
        a.put("/" + h + ".narinfo", info);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> r = ncro.send("HEAD", "/" + h + ".narinfo");

        assertEquals(200, r.statusCode());
        assertEquals(String.valueOf(info.length()), r.headers().firstValue("content-length").orElseThrow());
        assertEquals(0, r.body().length);
    }

    @Test
    void cacheInfo_isAnsweredLocally() throws Exception {
        ncro = NcroUnderTest.start(config(null, a.uri(), 10) + "server:\n  cache_priority: 35\n");

        HttpResponse<byte[]> r = ncro.get("/nix-cache-info");

        assertEquals(200, r.statusCode());
        assertEquals("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 35\n", body(r));
        assertEquals(0, a.requests().size());
    }

    @Test
    void otherMethods_are405_andOtherPaths404_withoutTouchingUpstreams() throws Exception {
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> post = ncro.send("POST", "/" + hash(14) + ".narinfo");
        assertEquals(405, post.statusCode());
        assertEquals("GET, HEAD", post.headers().firstValue("allow").orElseThrow());
        assertEquals(405, ncro.send("PUT", "/nar/14jl19y27c94hdkqw143v7ca8fx53nfz95z4n0h8hm9fb1r2ibb0.nar").statusCode());
        assertEquals(404, ncro.get("/index.html").statusCode());
        assertEquals(404, ncro.get("/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.narinfo").statusCode(), "e is not nix32");
        assertEquals(404, ncro.get("/" + hash(14).substring(1) + ".narinfo").statusCode(), "31 characters");
        assertEquals(404, ncro.get("/nar/").statusCode());
        assertEquals(0, a.requests().size());
    }

    @Test
    void concurrentLookups_allAnswered() throws Exception {
        for (int i = 0; i < 50; i++) a.put("/" + hash(100 + i) + ".narinfo", narinfo(hash(100 + i), "p" + i, "nar/p" + i + ".nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        var futures = new java.util.ArrayList<java.util.concurrent.CompletableFuture<HttpResponse<byte[]>>>();
        for (int i = 0; i < 50; i++) {
            futures.add(ncro.http.sendAsync(HttpRequest.newBuilder(ncro.uri("/" + hash(100 + i) + ".narinfo")).build(),
                    HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (var f : futures) assertEquals(200, f.get().statusCode());
    }

    @Test
    void perUpstreamResponseTimeout_failsThatUpstreamBeforeTheDeadline() throws Exception {
        String h = hash(15);
        a.hang("/" + h + ".narinfo");
        ncro = NcroUnderTest.start("upstreams:\n"
                + "  - url: " + a.uri() + "\n    timeout:\n      response: 200ms\n"
                + "  - url: " + b.uri() + "\n"
                + "cache:\n  race_deadline: 30s\n");

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(502, r.statusCode(), "a's own timeout, not the 30 s deadline (504): " + body(r));
    }
}
