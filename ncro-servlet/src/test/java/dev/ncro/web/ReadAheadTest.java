package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.metrics.NcroMetrics;
import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import dev.ncro.trust.Nix32;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * NAR read-ahead through the real filter, servlet and engine against real upstreams: what
 * the client gets, and how many NAR requests the upstreams actually received.
 */
class ReadAheadTest extends TwoUpstreams {
    private final FakeClock clock = new FakeClock();

    /** {@code sha256:<nix32>} of {@code bytes}, as a narinfo's FileHash carries it. */
    static String fileHash(byte[] bytes) throws Exception {
        return "sha256:" + Nix32.encode(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    static String narinfo(String hash, String url, long fileSize, String fileHash) {
        return "StorePath: /nix/store/" + hash + "-p\n"
                + "URL: " + url + "\n"
                + "Compression: xz\n"
                + (fileHash != null ? "FileHash: " + fileHash + "\n" : "")
                + "FileSize: " + fileSize + "\n"
                + "NarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\n"
                + "NarSize: " + (fileSize * 3) + "\n"
                + "References: \n";
    }

    static byte[] nar(int n, int size) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte) (i * 7 + n);
        return b;
    }

    /** A path on {@code cache}: its narinfo (with FileSize and FileHash) and NAR; returns the NAR path. */
    private String path(FakeCache cache, int n, byte[] bytes) throws Exception {
        String h = hash(n);
        String url = "nar/" + h + "0000000000000000000000.nar.xz";
        cache.put("/" + h + ".narinfo", narinfo(h, url, bytes.length, fileHash(bytes)));
        cache.put("/" + url, bytes);
        return "/" + url;
    }

    private void startNcro(String readAheadYaml) throws Exception {
        String yaml = "upstreams:\n  - url: " + a.uri() + "\n    priority: 10\n  - url: " + b.uri() + "\n    priority: 20\n"
                + (readAheadYaml == null ? "" : "readahead:\n" + readAheadYaml.indent(2));
        ncro = NcroUnderTest.start(yaml, null, clock);
    }

    private NcroMetrics metrics() {
        return ncro.engine.metricsRegistry();
    }

    private static String hashOf(String narPath) {
        return narPath.substring("/nar/".length(), "/nar/".length() + 32);
    }

    /** Waits for a condition the engine reaches on its own threads (no sleeping for timers). */
    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(5);
        }
    }

    @Test
    void narAfterNarinfo_isServedFromReadAhead_once_andTheNextDownloadGoesUpstream() throws Exception {
        byte[] bytes = nar(1, 100_000);
        String nar = path(a, 1, bytes);
        startNcro(null);

        assertEquals(200, ncro.get("/" + hashOf(nar) + ".narinfo").statusCode());
        HttpResponse<byte[]> first = ncro.get(nar);
        HttpResponse<byte[]> second = ncro.get(nar);

        assertEquals(200, first.statusCode());
        assertArrayEquals(bytes, first.body());
        assertArrayEquals(bytes, second.body());
        assertEquals(2, a.count(nar), "one read-ahead for the first download, the second went upstream");
        assertEquals(1, metrics().readAheadHits.get());
        assertEquals(1, metrics().readAheadMisses.get());
        // the answer from memory looks like the streamed one
        for (String header : new String[] {"content-length", "content-type", "accept-ranges", "etag"}) {
            assertEquals(second.headers().firstValue(header), first.headers().firstValue(header), header);
        }
        assertTrue(first.headers().firstValue("set-cookie").isEmpty());
    }

    @Test
    void headNarinfo_readsNothingAhead_andHeadNar_doesNotUseTheEntry() throws Exception {
        byte[] bytes = nar(2, 5000);
        String nar = path(a, 2, bytes);
        startNcro(null);

        assertEquals(200, ncro.send("HEAD", "/" + hashOf(nar) + ".narinfo").statusCode());
        assertArrayEquals(bytes, ncro.get(nar).body());
        assertEquals(1, a.count(nar), "no read-ahead after a HEAD narinfo");
        assertEquals(0, metrics().readAheadHits.get());

        assertEquals(200, ncro.get("/" + hashOf(nar) + ".narinfo").statusCode());
        assertEquals(200, ncro.send("HEAD", nar).statusCode());
        assertArrayEquals(bytes, ncro.get(nar).body());
        assertEquals(1, metrics().readAheadHits.get(), "the HEAD left the entry to the GET");
        assertEquals(3, a.count(nar), "the earlier GET, the read-ahead, the HEAD");
    }

    /** A HEAD of a narinfo already remembered (answered on the request thread) reads nothing ahead either. */
    @Test
    void headOfARememberedNarinfo_readsNothingAhead() throws Exception {
        byte[] bytes = nar(7, 5000);
        String nar = path(a, 7, bytes);
        startNcro(null);
        assertEquals(200, ncro.get("/" + hashOf(nar) + ".narinfo").statusCode());
        assertArrayEquals(bytes, ncro.get(nar).body());
        assertEquals(1, metrics().readAheadHits.get());
        clock.advance(Duration.ofSeconds(5)); // past the second in which a served narinfo is not considered again

        assertEquals(200, ncro.send("HEAD", "/" + hashOf(nar) + ".narinfo").statusCode());
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(1, metrics().readAheadHits.get(), "no read-ahead after the HEAD");
        assertEquals(2, a.count(nar), "the first read-ahead, then the download after the HEAD");
    }

    @Test
    void readAheadDisabled_makesNoExtraUpstreamRequest() throws Exception {
        byte[] bytes = nar(3, 5000);
        String nar = path(a, 3, bytes);
        startNcro("enabled: false");

        ncro.get("/" + hashOf(nar) + ".narinfo");
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(1, a.count(nar));
        assertEquals(0, metrics().readAheadHits.get());
        assertEquals(0, metrics().readAheadMisses.get());
    }

    @Test
    void narOverMaxSize_isNotReadAhead() throws Exception {
        byte[] bytes = nar(4, 5000);
        String nar = path(a, 4, bytes);
        startNcro("max_nar_size: 4999");

        ncro.get("/" + hashOf(nar) + ".narinfo");
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(1, a.count(nar));
        assertEquals(0, metrics().readAheadHits.get());
    }

    /** The narinfo says something of the NAR that its bytes do not match: the client still gets the upstream's bytes. */
    /** @param blamed whether the upstream is taken for failing (also cooled down for other NARs), not only passed over for this one */
    private void wrongNarinfo_fallsBack(int n, long fileSize, String fileHash, boolean blamed) throws Exception {
        byte[] bytes = nar(n, 5000);
        String h = hash(n);
        String nar = "/nar/" + h + "0000000000000000000000.nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, nar.substring(1), fileSize, fileHash));
        a.put(nar, bytes);
        startNcro(null);

        ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body(), "the upstream's bytes, as without read-ahead");
        assertEquals(2, a.count(nar), "the failed read-ahead, then the normal stream");
        assertEquals(0, metrics().readAheadHits.get());
        assertEquals(1, metrics().readAheadMisses.get());
        assertEquals(1, b.count(nar), blamed ? "a failed the read-ahead: b first"
                : "a's file contradicts the narinfo's FileSize: b first for this NAR, a the last resort");

    }

    @Test
    void fileSizeMismatch_fallsBackToTheNormalStream() throws Exception {
        // the upstream's Content-Length says 5000: read-ahead cannot use it, the stream passes it on
        wrongNarinfo_fallsBack(5, 4000, null, false);
    }

    @Test
    void fileHashMismatch_fallsBackToTheNormalStream() throws Exception {
        wrongNarinfo_fallsBack(6, 5000, fileHash(nar(99, 5000)), true);
    }

    /**
     * A body without Content-Length (chunked) that ends before the narinfo's FileSize, or runs
     * past it: checked as it arrives, never served (short, it would go out padded with zeros),
     * and the download takes the normal stream. (One case per ncro: a wasted read-ahead pauses
     * the next through the guard.)
     */
    private void chunkedBody_isNotServedFromReadAhead(int n, int declared) throws Exception {
        startNcro(null);
        byte[] bytes = nar(n, 5000);
        String h = hash(n);
        String nar = "/nar/" + h + "0000000000000000000000.nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, nar.substring(1), declared, null)).put(nar, bytes).chunked(nar);

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        await(() -> a.count(nar) == 1, "the read-ahead's request"); // the download finds it, in flight or ended
        try {
            HttpResponse<byte[]> r = ncro.get(nar);
            // whatever the normal stream makes of it: never the read-ahead's buffer
            assertFalse(r.statusCode() == 200 && r.body().length == declared
                    && Arrays.equals(Arrays.copyOf(r.body(), 5000), bytes), "served from read-ahead");
        } catch (java.io.IOException e) {
            // the normal stream aborted a body shorter than FileSize: Nix retries, as with a truncated upstream
        }
        assertEquals(0, metrics().readAheadHits.get());
        assertEquals(2, a.count(nar), "the read-ahead, then the normal stream");
    }

    @Test
    void chunkedBodyShorterThanFileSize_isNotServedFromReadAhead() throws Exception {
        chunkedBody_isNotServedFromReadAhead(80, 6000);
    }

    @Test
    void chunkedBodyLongerThanFileSize_isNotServedFromReadAhead() throws Exception {
        chunkedBody_isNotServedFromReadAhead(81, 4000);
    }

    @Test
    void readAheadWithNoHeadWithinFirstByte_theDownloadIsServedByTheOtherUpstream() throws Exception {
        byte[] bytes = nar(14, 5000);
        String nar = path(a, 14, bytes);
        b.put(nar, bytes);
        a.hang(nar);
        ncro = NcroUnderTest.start("server:\n  first_byte_timeout: 300ms\nupstreams:\n  - url: " + a.uri()
                + "\n    priority: 10\n  - url: " + b.uri() + "\n    priority: 20\n", null, clock);

        ncro.get("/" + hashOf(nar) + ".narinfo");
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(1, a.count(nar), "the hanging upstream was asked once, by the read-ahead, then tried last");
        assertEquals(1, b.count(nar));
    }

    @Test
    void narTheOnlyUpstreamLacks_isAskedForOnce_notOnEveryHitOfItsNarinfo() throws Exception {
        String h = hash(61);
        String url = "nar/" + h + "0000000000000000000000.nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, url, 5000, null)); // the NAR itself is missing
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + a.uri() + "\n", null, clock);

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        await(() -> a.count("/" + url) == 1, "the read-ahead");
        // the clock stands still: every hit after the read-ahead's 404 is within its second
        for (int i = 0; i < 50; i++) assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

        assertEquals(1, a.count("/" + url), "one read-ahead GET for 51 hits of its narinfo");
        assertEquals(404, ncro.get("/" + url).statusCode(), "the download still asks, and hears not-found");
    }

    /**
     * A read-ahead answered not-found (a narinfo naming a NAR its cache lacks, or an S3 bucket's
     * 403 for a missing key) is no failure: the upstream does not cool down, and the next NAR
     * still goes to it first. Before, it did: every NAR went to the lower priority first.
     */
    @Test
    void readAheadAnsweredNotFound_doesNotCoolItsUpstreamDown() throws Exception {
        for (int status : new int[] {404, 403}) {
            String h = hash(62 + status % 10);
            String missing = "nar/" + h + "0000000000000000000000.nar.xz";
            a.put("/" + h + ".narinfo", narinfo(h, missing, 5000, null)).status("/" + missing, status);
            String other = path(a, 64 + status % 10, nar(64, 3000));
            b.put(other, nar(1, 3000));
            if (ncro == null) startNcro(null);
            double before = metrics().readAheadNotFound.get();

            assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
            await(() -> metrics().readAheadNotFound.get() == before + 1, "the read-ahead's not-found");
            HttpResponse<byte[]> r = ncro.get(other);

            assertEquals(200, r.statusCode());
            assertArrayEquals(nar(64, 3000), r.body(), "from a, which still comes first (HTTP " + status + ")");
            assertEquals(0, b.count(other), "b, priority 20, is not asked (HTTP " + status + ")");
        }
    }

    /**
     * A NAR its upstream lacks is not read ahead again for a while after the not-found, also
     * once the one-second settle has passed (many clients of one closure hitting its narinfo),
     * and the not-found's body is read to its end: the connection stays in the pool. Before, a
     * not-found was remembered only as a failure was; as a plain not-found it was asked for on
     * every hit more than a second apart (10 GETs for 10 hits), each closing its connection.
     */
    @Test
    void narItsUpstreamLacks_isNotReadAheadAgain_forAWhile() throws Exception {
        String h = hash(71);
        String url = "nar/" + h + "0000000000000000000000.nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, url, 5000, null)); // the NAR itself is missing
        startNcro(null);

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        await(() -> metrics().readAheadNotFound.get() == 1, "the read-ahead's not-found");
        int closedBefore = a.closedConnections();
        for (int i = 0; i < 9; i++) {
            clock.advance(Duration.ofSeconds(2));
            assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        }

        assertEquals(1, a.count("/" + url), "one read-ahead GET for 10 hits, 2 s apart");
        assertEquals(1, metrics().readAheadNotFound.get());
        assertEquals(0, a.closedConnections() - closedBefore, "no connection closed for a not-found");
        assertEquals(404, ncro.get("/" + url).statusCode(), "the download itself still asks");
    }

    @Test
    void upstreamFailingTheReadAhead_doesNotFailTheClient() throws Exception {
        byte[] bytes = nar(7, 200_000);
        String nar = path(a, 7, bytes);
        a.resetAfter(nar, 1000);
        startNcro(null);

        ncro.get("/" + hashOf(nar) + ".narinfo");
        await(() -> metrics().readAheadWastedBytes.get() > 0, "the read-ahead to fail");
        a.clearScripts();
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(0, metrics().readAheadHits.get());
    }

    @Test
    void upstreamResettingTheReadAheadMidBody_isTriedLast_byTheDownload() throws Exception {
        byte[] bytes = nar(9, 200_000);
        String nar = path(a, 9, bytes);
        b.put(nar, bytes);
        a.resetAfter(nar, 1000); // and keeps resetting: a streamed download from a would fail too
        startNcro(null);

        ncro.get("/" + hashOf(nar) + ".narinfo");
        await(() -> metrics().readAheadWastedBytes.get() > 0, "the read-ahead to fail");
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(1, a.count(nar), "a failed this NAR mid-body (the read-ahead): the download goes to b first");
        assertEquals(1, b.count(nar));
    }

    @Test
    void readAheadAnswered503_clientIsServedByTheOtherUpstream() throws Exception {
        byte[] bytes = nar(8, 5000);
        String nar = path(a, 8, bytes);
        b.put(nar, bytes);
        a.status(nar, 503);
        startNcro(null);

        ncro.get("/" + hashOf(nar) + ".narinfo");
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(1, b.count(nar));
    }

    @Test
    void clientJoiningATransferInFlight_getsTheWholeNar_fromOneUpstreamRequest() throws Exception {
        byte[] bytes = nar(9, 1_000_000);
        String nar = path(a, 9, bytes);
        a.delay(Duration.ofMillis(300)); // every answer, the read-ahead's too, starts late
        startNcro(null);

        ncro.get("/" + hashOf(nar) + ".narinfo");
        HttpResponse<byte[]> r = ncro.get(nar); // arrives while the read-ahead waits for its head

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(1, a.count(nar), "the download joined the read-ahead");
        assertEquals(1, metrics().readAheadHits.get());
    }

    @Test
    void entryOlderThanTtl_isDropped_andTheDownloadGoesUpstream() throws Exception {
        byte[] bytes = nar(10, 5000);
        String nar = path(a, 10, bytes);
        startNcro("ttl: 30s");

        ncro.get("/" + hashOf(nar) + ".narinfo");
        // every byte read ahead before the entry expires, so all of them count as wasted
        await(() -> metrics().readAheadFetchedBytes.get() == bytes.length, "the read-ahead to have every byte");
        clock.advance(Duration.ofSeconds(31));
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(2, a.count(nar));
        assertEquals(0, metrics().readAheadHits.get());
        await(() -> metrics().readAheadWastedBytes.get() == bytes.length, "the expired entry to count as wasted");
    }

    @Test
    void memoryBudget_dropsTheOldestFirst() throws Exception {
        byte[][] bytes = {nar(11, 8000), nar(12, 8000), nar(13, 8000)};
        String[] nars = new String[3];
        for (int i = 0; i < 3; i++) nars[i] = path(a, 11 + i, bytes[i]);
        startNcro("max_nar_size: 10000\nmemory: 20000");

        for (String nar : nars) ncro.get("/" + hashOf(nar) + ".narinfo");
        for (int i = 0; i < 3; i++) assertArrayEquals(bytes[i], ncro.get(nars[i]).body());

        assertEquals(2, a.count(nars[0]), "the oldest was dropped for the third");
        assertEquals(1, a.count(nars[1]));
        assertEquals(1, a.count(nars[2]));
        assertEquals(2, metrics().readAheadHits.get());
        assertTrue(ncro.engine.metrics().body().length > 0);
        String scrape = new String(ncro.engine.metrics().body(), StandardCharsets.UTF_8);
        assertTrue(scrape.contains("ncro_readahead_bytes 0.0"), scrape);
        assertTrue(Arrays.asList(scrape.split("\n")).contains("ncro_readahead_guard_paused 0.0"), scrape);
    }

    @Test
    void queryOnlyClient_pausesReadAhead_andADownloadStartsTheHeldBackNars() throws Exception {
        // the guard judges once `memory` (here below its 4 MiB) was fetched: five NARs of 20,000 bytes
        String[] nars = new String[7];
        for (int i = 0; i < nars.length; i++) nars[i] = path(a, 20 + i, nar(20 + i, 20_000));
        startNcro("max_nar_size: 20000\nmemory: 100000");

        for (String nar : nars) assertEquals(200, ncro.get("/" + hashOf(nar) + ".narinfo").statusCode());
        await(() -> metrics().readAheadFetchedBytes.get() == 100_000, "five read-aheads");
        assertEquals(0, a.count(nars[5]), "held back: nothing of the five was downloaded");
        assertEquals(0, a.count(nars[6]));
        String scrape = new String(ncro.engine.metrics().body(), StandardCharsets.UTF_8);
        assertTrue(Arrays.asList(scrape.split("\n")).contains("ncro_readahead_guard_paused 1.0"), scrape);
        // served again and again while held back (the hot path skips them without a lock): still
        // nothing fetched, and still held back for the next download, with the clock standing still
        for (int i = 0; i < 20; i++) assertEquals(200, ncro.get("/" + hashOf(nars[5 + i % 2]) + ".narinfo").statusCode());
        assertEquals(0, a.count(nars[5]));
        assertEquals(0, a.count(nars[6]));

        // a client downloads one: it downloads, so the held-back NARs are read ahead now (as many as fit)
        assertArrayEquals(nar(20, 20_000), ncro.get(nars[0]).body());
        await(() -> a.count(nars[6]) == 1, "the newest held-back NAR to be read ahead");
        assertArrayEquals(nar(26, 20_000), ncro.get(nars[6]).body());
        assertEquals(1, a.count(nars[6]), "its download was answered from the read-ahead");
        assertEquals(2, metrics().readAheadHits.get());
    }

    @Test
    void heldBackLongerThanTtl_isNotStartedByALaterDownload() throws Exception {
        String[] nars = new String[7];
        for (int i = 0; i < nars.length; i++) nars[i] = path(a, 40 + i, nar(40 + i, 20_000));
        startNcro("max_nar_size: 20000\nmemory: 100000\nttl: 30s");

        for (String nar : nars) ncro.get("/" + hashOf(nar) + ".narinfo");
        await(() -> metrics().readAheadFetchedBytes.get() == 100_000, "five read-aheads");
        clock.advance(Duration.ofSeconds(31));
        assertArrayEquals(nar(40, 20_000), ncro.get(nars[0]).body());
        assertArrayEquals(nar(46, 20_000), ncro.get(nars[6]).body());

        assertEquals(0, a.count(nars[5]), "held back 31 s ago: its client is long past downloading it");
        assertEquals(1, a.count(nars[6]));
        assertEquals(0, metrics().readAheadHits.get());
    }

    @Test
    void servedNarinfo_looksUpItsUnknownReferences_twoLevelsDown_andTheClientGetsThemFromMemory() throws Exception {
        // top -> r1 -> r2 -> r3: a chain of references, all on upstream a
        String[] h = {hash(30), hash(31), hash(32), hash(33)};
        for (int i = 0; i < h.length; i++) {
            String refs = i + 1 < h.length ? h[i + 1] + "-p" : "";
            a.put("/" + h[i] + ".narinfo", narinfo(h[i], "nar/" + h[i] + ".nar.xz", 10, null)
                    .replace("References: \n", "References: " + refs + "\n"));
        }
        startNcro(null);

        assertEquals(200, ncro.get("/" + h[0] + ".narinfo").statusCode());
        await(() -> metrics().referenceLookups.labelValues("found").get() == 2, "two levels of references");
        assertEquals(1, a.count("/" + h[1] + ".narinfo"));
        assertEquals(1, a.count("/" + h[2] + ".narinfo"));
        assertEquals(0, a.count("/" + h[3] + ".narinfo"), "three levels down is past reference_depth 2");

        double hits = metrics().narinfoCacheHits.get();
        assertEquals(200, ncro.get("/" + h[1] + ".narinfo").statusCode());
        assertEquals(1, a.count("/" + h[1] + ".narinfo"), "answered from memory: the upstream was asked once");
        // serving r1 looks up r2's references in turn: r3 now
        await(() -> a.count("/" + h[3] + ".narinfo") == 1, "the next level once the client asked for r1");
        assertEquals(hits + 1, metrics().narinfoCacheHits.get(), "the client's request was a hit");
    }

    @Test
    void referenceDepthZero_looksUpNoReference() throws Exception {
        String top = hash(34);
        String ref = hash(35);
        a.put("/" + top + ".narinfo", narinfo(top, "nar/" + top + ".nar.xz", 10, null)
                .replace("References: \n", "References: " + ref + "-p\n"));
        a.put("/" + ref + ".narinfo", narinfo(ref, "nar/" + ref + ".nar.xz", 10, null));
        startNcro("reference_depth: 0");

        assertEquals(200, ncro.get("/" + top + ".narinfo").statusCode());
        assertEquals(200, ncro.get("/" + ref + ".narinfo").statusCode());
        assertEquals(1, a.count("/" + ref + ".narinfo"), "only the client's own request");
        assertEquals(0, metrics().referenceLookups.labelValues("found").get());
    }
}
