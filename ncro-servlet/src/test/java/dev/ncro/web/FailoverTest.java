package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.ncro.testing.RawHttp;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A sick upstream never fails a request another upstream can serve: NAR fail-over before the
 * response starts (5xx, no head in time, reset), the retry after a mid-body failure going
 * elsewhere, truncated bodies never ending cleanly, logins whose 403 is a failure, and the
 * race's own timing rules. Real upstreams scripted to fail; the real client.
 */
class FailoverTest extends TwoUpstreams {
    private static final String NAR = "nar/0gbwkc5z7q8zq0zx6nkd5dmfa3fg8kcbswwkjhzqqkf4bz0cr1p3.nar";

    /** a (preferred, pinned) and b both hold the narinfo and the same NAR URL with different bytes. */
    private String bothHold(byte[] aBytes, byte[] bBytes) {
        String h = hash(90);
        a.put("/" + h + ".narinfo", narinfo(h, "f", NAR, aBytes.length)).put("/" + NAR, aBytes);
        b.delay(Duration.ofMillis(100)).put("/" + h + ".narinfo", narinfo(h, "f", NAR, bBytes.length)).put("/" + NAR, bBytes);
        return h;
    }

    /**
     * a (faster: its narinfo wins) and b both hold {@link #NAR}, compressed differently: 400,000
     * bytes of 'a' and of 'b', each narinfo with its own file's FileHash (the URL is neither).
     */
    private String compressedDifferently(int n) throws Exception {
        byte[] aBytes = bytes(400_000, 'a');
        byte[] bBytes = bytes(400_000, 'b');
        String h = hash(n);
        a.put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, NAR, aBytes.length, ReadAheadTest.fileHash(aBytes))).put("/" + NAR, aBytes);
        b.delay(Duration.ofMillis(100)).put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, NAR, bBytes.length, ReadAheadTest.fileHash(bBytes)))
                .put("/" + NAR, bBytes);
        return h;
    }

    private static String config(String server, Object... urlAndPriority) {
        return "server:\n" + server.indent(2) + NcroUnderTest.config(null, urlAndPriority);
    }

    @Test
    void pinnedUpstreamWithNoHeadWithinFirstByte_isLeftForTheNext_andLaterNarsSkipIt() throws Exception {
        String h = bothHold(bytes(1000, 'a'), bytes(1000, 'b'));
        a.hang("/" + NAR);
        ncro = NcroUnderTest.start(config("first_byte_timeout: 300ms\nwrite_timeout: 300s", a.uri(), 10, b.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

        long t0 = System.nanoTime();
        HttpResponse<byte[]> first = ncro.get("/" + NAR);
        long firstMs = (System.nanoTime() - t0) / 1_000_000;
        HttpResponse<byte[]> second = ncro.get("/" + NAR);

        assertEquals(200, first.statusCode());
        assertEquals('b', first.body()[0], "served by b, at the same URL");
        assertTrue(firstMs < 10_000, "waited for the first-byte timeout, not the 300 s stall limit: " + firstMs + " ms");
        assertEquals(200, second.statusCode());
        assertEquals(1, a.count("/" + NAR), "the retry went to b first");
        assertEquals(2, b.count("/" + NAR));
    }

    @Test
    void pinnedUpstreamAnswering500_failsOverBeforeTheResponseStarts() throws Exception {
        String h = bothHold(bytes(10, 'a'), bytes(10, 'b'));
        a.status("/" + NAR, 500);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        ncro.get("/" + h + ".narinfo");

        HttpResponse<byte[]> r = ncro.get("/" + NAR);

        assertEquals(200, r.statusCode());
        assertEquals("bbbbbbbbbb", new String(r.body(), StandardCharsets.UTF_8));
    }

    @Test
    void resetMidBody_abortsTheClient_andTheRetryIsServedByAnotherUpstream() throws Exception {
        String h = bothHold(bytes(400_000, 'a'), bytes(400_000, 'b'));
        a.resetAfter("/" + NAR, 200_000);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        ncro.get("/" + h + ".narinfo");

        assertThrows(IOException.class, () -> ncro.get("/" + NAR), "a truncated NAR never ends cleanly");
        HttpResponse<byte[]> retry = ncro.get("/" + NAR);

        assertEquals(200, retry.statusCode());
        assertEquals(400_000, retry.body().length);
        assertEquals('b', retry.body()[0]);
        assertEquals(1, a.count("/" + NAR));
    }

    /**
     * Nix resumes a broken download with a Range. Under a name that is not the file's own hash,
     * another upstream's file may hold other bytes (the same NAR compressed otherwise): the rest
     * is asked of the upstream whose narinfo named the file first, even right after it failed,
     * not taken from another and appended to the first part; only if the home fails again does
     * another holder get its turn. (Read-ahead is off in this config: it would fetch the file whole first.)
     */
    @Test
    void rangeResumingAFileNotNamedByItsHash_isAskedOfItsHomeFirst() throws Exception {
        String h = compressedDifferently(92);
        a.resetAfter("/" + NAR, 200_000);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertThrows(IOException.class, () -> ncro.get("/" + NAR), "a reset half-way: a is now this NAR's last choice");
        a.clearScripts();

        HttpResponse<byte[]> rest = ncro.get("/" + NAR, "Range", "bytes=200000-");

        assertEquals(206, rest.statusCode());
        assertEquals(200_000, rest.body().length);
        assertEquals('a', rest.body()[0], "the rest of a's file, not b's");
        assertEquals(0, b.count("/" + NAR), "b's file under that name may be another file");

        // the home down: a part from b, which may not fit, beats none (Nix checks the NAR's hash)
        a.status("/" + NAR, 503);
        HttpResponse<byte[]> fromB = ncro.get("/" + NAR, "Range", "bytes=200000-");
        assertEquals(206, fromB.statusCode());
        assertEquals('b', fromB.body()[0]);
    }

    /**
     * The first part came from b (a, the home, had just failed this NAR): the rest is asked of
     * b first, whose bytes the client holds, not of the home.
     */
    @Test
    void rangeResumingAPartThatCameFromAnotherHolder_asksThatHolderFirst() throws Exception {
        String h = compressedDifferently(94);
        a.status("/" + NAR, 503);
        b.resetAfter("/" + NAR, 200_000);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertThrows(IOException.class, () -> ncro.get("/" + NAR), "a 503, then b reset half-way");
        a.clearScripts();
        b.clearScripts();

        HttpResponse<byte[]> rest = ncro.get("/" + NAR, "Range", "bytes=200000-");

        assertEquals(206, rest.statusCode());
        assertEquals('b', rest.body()[0], "the rest of b's file, whose first part the client holds");
        assertEquals(1, a.count("/" + NAR), "a only for the first try");
    }

    /**
     * An uncompressed NAR is the same bytes everywhere only under a name that is its NarHash
     * (nix-serve's storehash-narhash): under a store hash alone another cache may hold another
     * build or another compression, so the rest comes from the upstream that sent the first part.
     */
    @Test
    void rangeResumingAnUncompressedNar_movesToAnotherHolderOnlyUnderItsNarHash() throws Exception {
        String narHash = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"; // Narinfos.narinfo's
        String byStoreHash = "nar/" + hash(95) + ".nar";
        String byNarHash = "nar/" + hash(96) + "-" + narHash + ".nar";
        String h1 = hash(97);
        String h2 = hash(98);
        for (String[] p : new String[][] {{h1, byStoreHash}, {h2, byNarHash}}) {
            a.put("/" + p[0] + ".narinfo", narinfo(p[0], "u", p[1], 400_000)).put("/" + p[1], bytes(400_000, 'a'));
            b.put("/" + p[0] + ".narinfo", narinfo(p[0], "u", p[1], 400_000)).put("/" + p[1], bytes(400_000, 'b'));
        }
        b.delay(Duration.ofMillis(100));
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));

        assertEquals(200, ncro.get("/" + h1 + ".narinfo").statusCode());
        a.resetAfter("/" + byStoreHash, 200_000);
        assertThrows(IOException.class, () -> ncro.get("/" + byStoreHash));
        a.clearScripts();
        HttpResponse<byte[]> rest = ncro.get("/" + byStoreHash, "Range", "bytes=200000-");
        assertEquals(206, rest.statusCode());
        assertEquals('a', rest.body()[0], "under a store hash: a's rest");

        // a served that part whole: no longer cooling down, it streams the next NAR first
        assertEquals(200, ncro.get("/" + h2 + ".narinfo").statusCode());
        a.resetAfter("/" + byNarHash, 200_000);
        assertThrows(IOException.class, () -> ncro.get("/" + byNarHash));
        a.clearScripts();
        assertEquals('b', ncro.get("/" + byNarHash, "Range", "bytes=200000-").body()[0],
                "under its NarHash the file is the same everywhere: b, which did not fail, first");
    }

    /** The same resume of a file named by its own hash (as Nix names what it uploads): any holder's bytes are the same. */
    @Test
    void rangeResumingAFileNamedByItsHash_isServedByAnotherHolder() throws Exception {
        byte[] same = bytes(400_000, 'c');
        String hashName = ReadAheadTest.fileHash(same).substring("sha256:".length());
        String nar = "nar/" + hashName + ".nar.xz";
        String h = hash(93);
        a.put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, nar, same.length, ReadAheadTest.fileHash(same))).put("/" + nar, same);
        b.delay(Duration.ofMillis(100)).put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, nar, same.length, ReadAheadTest.fileHash(same)))
                .put("/" + nar, same);
        a.resetAfter("/" + nar, 200_000);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertThrows(IOException.class, () -> ncro.get("/" + nar));

        HttpResponse<byte[]> rest = ncro.get("/" + nar, "Range", "bytes=200000-");

        assertEquals(206, rest.statusCode());
        assertEquals(200_000, rest.body().length);
        assertEquals(1, b.count("/" + nar), "the holder that did not fail served the rest");
        assertEquals(1, a.count("/" + nar));
    }

    /**
     * The home's file contradicts its own narinfo (a Content-Length other than FileSize): Nix
     * would reject it by its hash and, alone, fetch the path from its next cache. The other
     * holder is asked first; the home's answer is served only as the last resort.
     */
    @Test
    void aFileContradictingItsNarinfosFileSize_isServedFromAnotherHolderFirst() throws Exception {
        String h = hash(99);
        String nar = "nar/" + hash(100) + ".nar.xz";
        byte[] good = bytes(5000, 'b');
        a.put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, nar, 5000, null)).put("/" + nar, bytes(6000, 'a'));
        b.delay(Duration.ofMillis(100)).put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, nar, 5000, null)).put("/" + nar, good);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

        HttpResponse<byte[]> r = ncro.get("/" + nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(good, r.body(), "b's file, which matches the narinfo");
        assertEquals(1, a.count("/" + nar));

        // nobody else holds it: the home's answer after all, not a failure
        b.status("/" + nar, 404);
        HttpResponse<byte[]> last = ncro.get("/" + nar);
        assertEquals(200, last.statusCode());
        assertEquals(6000, last.body().length, "the last resort: a's file as it is");
    }

    @Test
    void everyUpstreamFailingANar_is502_never404() throws Exception {
        String h = bothHold(bytes(10, 'a'), bytes(10, 'b'));
        a.status("/" + NAR, 503);
        b.status("/" + NAR, 500);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));
        ncro.get("/" + h + ".narinfo");

        assertEquals(502, ncro.get("/" + NAR).statusCode());
    }

    @Test
    void forbiddenFromAnUpstreamWithALogin_isAFailure_notANotFound() throws Exception {
        String h = hash(91);
        a.status("/" + h + ".narinfo", 403).status("/" + NAR, 403);
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + a.uri() + "\n    username: u\n    password: p\n"
                + "  - url: " + b.uri() + "\n");

        HttpResponse<byte[]> narinfo = ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> nar = ncro.get("/" + NAR);

        assertEquals(502, narinfo.statusCode(), "expired credentials must not hide the path: " + body(narinfo));
        assertEquals(502, nar.statusCode(), body(nar));
    }

    @Test
    void forbiddenFromAnUpstreamWithoutALogin_isNotFound_asNixReadsIt() throws Exception {
        String h = hash(92);
        a.status("/" + h + ".narinfo", 403);
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10));

        assertEquals(404, ncro.get("/" + h + ".narinfo").statusCode());
    }

    @Test
    void raceLosers_areNotCancelled_theirAnswerStillSamplesLatency() throws Exception {
        String h = hash(93);
        a.put("/" + h + ".narinfo", narinfo(h, "l", NAR, 1));
        b.delay(Duration.ofMillis(150)).put("/" + h + ".narinfo", narinfo(h, "l", NAR, 1));
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 10)
                + "health:\n  probe_interval: 1h\n");

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        JsonNode bHealth = awaitLatencySample(b);

        assertTrue(bHealth.get("ema_latency_ms").asDouble() >= 100, "b's own answer time: " + bHealth);
        assertEquals(1, b.count("/" + h + ".narinfo"));
    }

    /** The loser's answer arrives ~150 ms after the winner's: wait for that event, bounded. */
    private JsonNode awaitLatencySample(dev.ncro.testing.FakeCache cache) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            JsonNode health = new ObjectMapper().readTree(ncro.get("/health").body());
            for (JsonNode u : health.get("upstreams")) {
                if (u.get("url").asText().equals(cache.uri().toString()) && u.get("ema_latency_ms").isNumber()) return u;
            }
            if (System.nanoTime() > until) throw new AssertionError("no latency sample for " + cache.uri() + ": " + health);
            Thread.onSpinWait();
        }
    }

    @Test
    void frozenUpstreamCoolingDown_costsAMissOnlyTheLastResortLeash_notTheDeadline() throws Exception {
        b.hangAll(true);
        ncro = NcroUnderTest.start(NcroUnderTest.config("race_deadline: 3s", a.uri(), 10, b.uri(), 10)
                + "health:\n  probe_interval: 1h\n");
        assertEquals(504, ncro.get("/" + hash(112) + ".narinfo").statusCode(), "b silent at the deadline: it cools down");

        long t0 = System.nanoTime();
        HttpResponse<byte[]> miss = ncro.get("/" + hash(113) + ".narinfo");
        long ms = (System.nanoTime() - t0) / 1_000_000;

        assertEquals(502, miss.statusCode(), "b was asked last and did not answer: it may have it, so no 404");
        assertTrue(ms < 2_500, "a frozen cooling upstream costs the 1 s leash, not the 3 s deadline: " + ms + " ms");
        assertEquals(1, b.count("/" + hash(113) + ".narinfo"), "asked, as a last resort");
    }

    @Test
    void aResolverThatTakesTenSeconds_delaysNothingButItsOwnHost_andTheDeadlineFiresOnTime() throws Exception {
        String h = hash(114);
        a.put("/" + h + ".narinfo", narinfo(h, "dns", NAR, 1));
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        dev.ncro.upstream.Resolver slow = host -> {
            if (host.equals("slow.invalid")) {
                try {
                    release.await(10, java.util.concurrent.TimeUnit.SECONDS); // a resolver that takes 10 s
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return new InetAddress[] {InetAddress.getLoopbackAddress()};
            }
            return InetAddress.getAllByName(host);
        };
        ncro = NcroUnderTest.start(NcroUnderTest.config("race_deadline: 1s", a.uri(), 10,
                "http://slow.invalid:" + b.port(), 10), slow);
        try {
            long t0 = System.nanoTime();
            HttpResponse<byte[]> hit = ncro.get("/" + h + ".narinfo");
            long hitMs = (System.nanoTime() - t0) / 1_000_000;
            t0 = System.nanoTime();
            HttpResponse<byte[]> miss = ncro.get("/" + hash(115) + ".narinfo");
            long missMs = (System.nanoTime() - t0) / 1_000_000;

            assertEquals(200, hit.statusCode(), "the other upstream answers as usual");
            assertTrue(hitMs < 1_000, "a hit does not wait for the slow lookup: " + hitMs + " ms");
            assertTrue(miss.statusCode() == 504 || miss.statusCode() == 502, "the slow upstream may have it: 5xx, never 404: "
                    + miss.statusCode() + " " + body(miss));
            assertTrue(missMs < 2_500, "the 1 s deadline fired on time, not after the 10 s lookup: " + missMs + " ms");
        } finally {
            release.countDown();
        }
    }

    @Test
    void raceDeadline_countsFromTheStartOfTheLookup_notFromWhenARaceSlotFreed() throws Exception {
        a.hangAll(true);
        // 2 s deadlines: the queued lookup answers about 2 s after it started if its deadline
        // counts from its own start, about 4 s if from when the first race freed the slot
        ncro = NcroUnderTest.start(NcroUnderTest.config("race_deadline: 2s\nmass_query:\n  max_concurrent_races: 1",
                a.uri(), 10));
        CompletableFuture<HttpResponse<byte[]>> first = CompletableFuture.supplyAsync(() -> get("/" + hash(94) + ".narinfo"));
        awaitRequests(a, 1); // the first race holds the only slot
        long t0 = System.nanoTime();
        HttpResponse<byte[]> second = ncro.get("/" + hash(95) + ".narinfo");
        long secondMs = (System.nanoTime() - t0) / 1_000_000;

        assertEquals(504, second.statusCode());
        assertEquals(504, first.get().statusCode());
        assertTrue(secondMs < 3_200, "the queued lookup answered at its own deadline, not after the first's: " + secondMs + " ms");
    }

    private HttpResponse<byte[]> get(String path) {
        try {
            return ncro.get(path);
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void awaitRequests(dev.ncro.testing.FakeCache cache, int n) {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (cache.requests().size() < n) {
            if (System.nanoTime() > until) throw new AssertionError("no request reached " + cache.uri());
            Thread.onSpinWait();
        }
    }

    @Test
    void streamsPerUpstream_areCapped_andTheRestQueue() throws Exception {
        String[] nars = new String[3];
        for (int i = 0; i < 3; i++) {
            nars[i] = "nar/" + hash(100 + i) + ".nar";
            a.put("/" + nars[i], bytes(100, 'q'));
        }
        a.delay(Duration.ofMillis(300));
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10)
                + "cache:\n  mass_query:\n    per_upstream_max_streams: 2\n");

        CompletableFuture<?>[] all = new CompletableFuture<?>[3];
        for (int i = 0; i < 3; i++) {
            String path = "/" + nars[i];
            all[i] = CompletableFuture.supplyAsync(() -> get(path));
        }
        CompletableFuture.allOf(all).get();

        assertEquals(2, a.maxConcurrentRequests(), "never more than 2 NAR streams at once to one upstream");
        for (CompletableFuture<?> f : all) assertEquals(200, ((HttpResponse<?>) f.get()).statusCode(), "the third queued, then ran");
    }

    @Test
    void narWaitingForABusyUpstreamsStreamSlot_movesToTheNextAfterTheFirstByteTimeout() throws Exception {
        String big = "nar/" + hash(110) + ".nar";
        String small = "nar/" + hash(111) + ".nar";
        a.putGenerated("/" + big, 256L << 20).put("/" + small, bytes(100, 'a'));
        b.put("/" + small, bytes(100, 'b'));
        ncro = NcroUnderTest.start(config("first_byte_timeout: 500ms", a.uri(), 10, b.uri(), 20)
                + "cache:\n  mass_query:\n    per_upstream_max_streams: 1\n");
        // a client that stops reading holds a's only stream slot (backpressure keeps it open)
        HttpResponse<java.io.InputStream> stalled = ncro.http.send(java.net.http.HttpRequest.newBuilder(ncro.uri("/" + big)).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, stalled.statusCode());

        HttpResponse<byte[]> r = ncro.get("/" + small);

        assertEquals(200, r.statusCode());
        assertEquals('b', r.body()[0], "served by b while a was busy");
        assertEquals(0, a.count("/" + small), "a was never asked: its slot stayed taken");
        stalled.body().close();
    }

    // ---- length checks: a raw upstream that answers without Content-Length or chunking ----

    @Test
    void closeDelimitedBodyShorterThanTheNarinfosFileSize_isAborted() throws Exception {
        try (RawUpstream raw = new RawUpstream(bytes(500, 'r'))) {
            String h = hash(96);
            ncro = NcroUnderTest.start(NcroUnderTest.config(null, raw.uri(), 10));
            raw.narinfo = narinfo(h, "raw", NAR, 1000); // Compression: none, NarSize 1000
            assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

            assertThrows(IOException.class, () -> ncro.get("/" + NAR), "500 of 1000 bytes must not end cleanly");
        }
    }

    @Test
    void closeDelimitedBodyOfTheNarinfosFileSize_endsCleanly() throws Exception {
        try (RawUpstream raw = new RawUpstream(bytes(1000, 'r'))) {
            String h = hash(97);
            ncro = NcroUnderTest.start(NcroUnderTest.config(null, raw.uri(), 10));
            raw.narinfo = narinfo(h, "raw", NAR, 1000);
            assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

            HttpResponse<byte[]> r = ncro.get("/" + NAR);

            assertEquals(200, r.statusCode());
            assertEquals(1000, r.body().length);
        }
    }

    @Test
    void closeDelimitedBodyWithNothingToCheckItAgainst_isAborted() throws Exception {
        try (RawUpstream raw = new RawUpstream(bytes(700, 'r'))) {
            ncro = NcroUnderTest.start(NcroUnderTest.config(null, raw.uri(), 10));

            assertThrows(IOException.class, () -> ncro.get("/" + NAR), "an unverifiable end is not a clean end");
        }
    }

    @Test
    void closeDelimitedPartialBodyShorterThanItsContentRange_isAborted() throws Exception {
        try (RawUpstream raw = new RawUpstream(bytes(500, 'r'))) {
            raw.narHead = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999/5000\r\n";
            ncro = NcroUnderTest.start(NcroUnderTest.config(null, raw.uri(), 10));

            assertThrows(IOException.class, () -> ncro.get("/" + NAR, "Range", "bytes=0-999"),
                    "500 of the 1000 bytes Content-Range promised must not end cleanly");
        }
    }

    @Test
    void closeDelimitedPartialBodyOfItsContentRange_endsCleanly() throws Exception {
        try (RawUpstream raw = new RawUpstream(bytes(1000, 'r'))) {
            raw.narHead = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999/5000\r\n";
            ncro = NcroUnderTest.start(NcroUnderTest.config(null, raw.uri(), 10));

            HttpResponse<byte[]> r = ncro.get("/" + NAR, "Range", "bytes=0-999");

            assertEquals(206, r.statusCode());
            assertEquals(1000, r.body().length);
            assertEquals("bytes 0-999/5000", r.headers().firstValue("Content-Range").orElse(null));
        }
    }

    private static byte[] bytes(int n, char c) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) c);
        return b;
    }

    private static String body(HttpResponse<byte[]> r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    /**
     * An HTTP/1.1 upstream on 127.0.0.1 that answers a narinfo normally and any NAR with a body
     * delimited only by closing the connection (no Content-Length, no chunking), as some
     * servers and misconfigured proxies do.
     */
    private static final class RawUpstream implements AutoCloseable {
        private final ServerSocket server;
        private final byte[] narBody;
        private final AtomicInteger served = new AtomicInteger();
        volatile String narinfo = "";
        /** The NAR answer's status line and any headers of its own, each ending in CRLF. */
        volatile String narHead = "HTTP/1.1 200 OK\r\n";

        RawUpstream(byte[] narBody) throws IOException {
            this.narBody = narBody;
            this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            Thread t = new Thread(this::serve, "raw-upstream");
            t.setDaemon(true);
            t.start();
        }

        java.net.URI uri() {
            return java.net.URI.create("http://127.0.0.1:" + server.getLocalPort());
        }

        private void serve() {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    String head = RawHttp.readHead(s.getInputStream());
                    String path = head.split(" ")[1];
                    OutputStream out = s.getOutputStream();
                    if (path.endsWith(".narinfo")) {
                        byte[] body = narinfo.getBytes(StandardCharsets.UTF_8);
                        out.write(("HTTP/1.1 200 OK\r\nContent-Length: " + body.length + "\r\nConnection: close\r\n\r\n")
                                .getBytes(StandardCharsets.UTF_8));
                        out.write(body);
                    } else if (path.startsWith("/nar/")) {
                        out.write((narHead + "Content-Type: application/x-nix-nar\r\nConnection: close\r\n\r\n")
                                .getBytes(StandardCharsets.UTF_8));
                        out.write(narBody);
                        served.incrementAndGet();
                    } else {
                        out.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                .getBytes(StandardCharsets.UTF_8));
                    }
                    out.flush();
                } catch (IOException e) {
                    // closed, or the peer went away
                }
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
