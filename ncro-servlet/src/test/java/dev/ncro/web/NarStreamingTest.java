package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** NAR requests through the real servlet, engine and HTTP client against real upstreams. */
class NarStreamingTest extends TwoUpstreams {
    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Both caches hold the narinfo and a NAR at the same URL, with different bytes. */
    private String twoCachesWithDifferentNars(String url) {
        String h = hash(20);
        a.put("/" + h + ".narinfo", narinfo(h, "p", url, 7));
        b.delay(Duration.ofMillis(200)).put("/" + h + ".narinfo", narinfo(h, "p", url, 7));
        a.put("/" + url, bytes("A-bytes"));
        b.put("/" + url, bytes("B-bytes"));
        return h;
    }

    @Test
    void nar_comesFromTheUpstreamThatServedTheNarinfo() throws Exception {
        String h = twoCachesWithDifferentNars("nar/dd500r7cz748bfagph57shd0hx842pnby6h2l09xgf0yqzs2qkf1.nar.xz");
        ncro = NcroUnderTest.start(config(null, b.uri(), 10, a.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

        HttpResponse<byte[]> r = ncro.get("/nar/dd500r7cz748bfagph57shd0hx842pnby6h2l09xgf0yqzs2qkf1.nar.xz");

        assertEquals(200, r.statusCode());
        assertEquals("A-bytes", new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(0, b.count("/nar/dd500r7cz748bfagph57shd0hx842pnby6h2l09xgf0yqzs2qkf1.nar.xz"));
    }

    @Test
    void pinnedUpstreamWithoutTheNar_fallsThroughToTheOthers() throws Exception {
        String h = hash(21);
        a.put("/" + h + ".narinfo", narinfo(h, "p", "nar/bia6k5215sbpyqllrf2dlxkfcvjygyqnyqlfns4h2nzx6wj9nml1.nar", 7));
        b.put("/nar/bia6k5215sbpyqllrf2dlxkfcvjygyqnyqlfns4h2nzx6wj9nml1.nar", bytes("B-bytes"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));
        ncro.get("/" + h + ".narinfo");

        HttpResponse<byte[]> r = ncro.get("/nar/bia6k5215sbpyqllrf2dlxkfcvjygyqnyqlfns4h2nzx6wj9nml1.nar");

        assertEquals(200, r.statusCode());
        assertEquals("B-bytes", new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(1, a.count("/nar/bia6k5215sbpyqllrf2dlxkfcvjygyqnyqlfns4h2nzx6wj9nml1.nar"));
    }

    @Test
    void pinnedUpstreamFailing_isPassedOver_andTheSameUrlIsServedByTheOther_thenTriedLast() throws Exception {
        String nar = "/nar/gmdy400b81dlpdzbvw55q0bxipyp2psfzy574v61allp1chbbxg0.nar";
        String h = twoCachesWithDifferentNars(nar.substring(1));
        a.status(nar, 503);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));
        ncro.get("/" + h + ".narinfo");

        HttpResponse<byte[]> first = ncro.get(nar);
        HttpResponse<byte[]> retry = ncro.get(nar);

        assertEquals(200, first.statusCode());
        assertEquals("B-bytes", new String(first.body(), StandardCharsets.UTF_8));
        assertEquals(200, retry.statusCode());
        assertEquals(1, a.count(nar), "the pinned upstream was tried first once, then passed over");
        assertEquals(2, b.count(nar));
    }

    @Test
    void unknownNar_triesUpstreamsInPreferenceOrder() throws Exception {
        b.put("/nar/wd2ck7gij4iv0r3f4sqwnh1pkicw164r7z4im8mwx6hk32adsic1.nar", bytes("B-bytes"));
        ncro = NcroUnderTest.start(config(null, b.uri(), 20, a.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/nar/wd2ck7gij4iv0r3f4sqwnh1pkicw164r7z4im8mwx6hk32adsic1.nar");

        assertEquals(200, r.statusCode());
        assertEquals("B-bytes", new String(r.body(), StandardCharsets.UTF_8));
        assertTrue(a.requests().get(0).path().equals("/nar/wd2ck7gij4iv0r3f4sqwnh1pkicw164r7z4im8mwx6hk32adsic1.nar"), "priority 10 first");
    }

    @Test
    void unknownNarNowhere_is404_butWithAFailure502() throws Exception {
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));
        HttpResponse<byte[]> notFound = ncro.get("/nar/3air6mjkjhqy99crng4s1hbbid2ba4jy171fc46s81s992wzf580.nar");
        assertEquals(404, notFound.statusCode());
        String says = new String(notFound.body(), StandardCharsets.UTF_8);
        assertTrue(says.contains(a.uri() + ": HTTP 404") && says.contains(b.uri() + ": HTTP 404"), "names each answer: " + says);

        b.status("/nar/3air6mjkjhqy99crng4s1hbbid2ba4jy171fc46s81s992wzf580.nar", 500);
        assertEquals(502, ncro.get("/nar/3air6mjkjhqy99crng4s1hbbid2ba4jy171fc46s81s992wzf580.nar").statusCode());
    }

    /**
     * A NAR URL outside the usual forms (here one directory deeper) is passed on when a narinfo
     * ncro served named it; refusing it would be a 404 for a NAR its upstream holds. Unnamed,
     * it is still refused without asking anyone.
     */
    @Test
    void narUrlInAnotherForm_isStreamed_whenAServedNarinfoNamedIt() throws Exception {
        String h = hash(90);
        String odd = "nar/ab/" + hash(91) + ".nar.xz";
        String unnamed = "/nar/ab/" + hash(92) + ".nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, "odd", odd, 2)).put("/" + odd, bytes("ok")).put(unnamed, bytes("no"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        assertEquals(404, ncro.get("/" + odd).statusCode(), "no narinfo named it yet");
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        HttpResponse<byte[]> r = ncro.get("/" + odd);

        assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
        assertEquals("ok", new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(404, ncro.get(unnamed).statusCode());
        assertEquals(0, a.count(unnamed), "a path no narinfo named never reaches an upstream");
    }

    /**
     * A URL in another form is asked only of the upstream whose narinfo named it: a narinfo's
     * URL is not signed, and must not make ncro fetch arbitrary paths from the others (with
     * their logins). Nix alone would ask that one cache too.
     */
    @Test
    void narUrlInAnotherForm_isAskedOnlyOfTheUpstreamThatNamedIt() throws Exception {
        String h = hash(95);
        String odd = "nar/private/" + hash(96) + ".nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, "odd", odd, 2));
        b.put("/" + odd, bytes("b's private file"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());

        HttpResponse<byte[]> r = ncro.get("/" + odd);

        assertEquals(404, r.statusCode(), "a, which named it, lacks it");
        assertEquals(1, a.count("/" + odd));
        assertEquals(0, b.count("/" + odd), "b is never asked for a path in another form");
    }

    @Test
    void pathAndQuery_areForwardedExactly() throws Exception {
        String url = "nar/yssk7zb7vqw332qd1lczlpy2pad1ssfd75w52gswsr43470kbym0.nar?hash=gyxg5xsl2lsprfhrsf3ll1qwjxj5klxn";
        a.put("/nar/yssk7zb7vqw332qd1lczlpy2pad1ssfd75w52gswsr43470kbym0.nar", bytes("nar"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/" + url);

        assertEquals(200, r.statusCode());
        assertEquals("/" + url, a.requests().get(0).target());
    }

    @Test
    void percentEncodedQuery_isForwardedExactly_butAQueryThatCouldLeaveItsPlaceIs400() throws Exception {
        String path = "nar/yssk7zb7vqw332qd1lczlpy2pad1ssfd75w52gswsr43470kbym0.nar";
        a.put("/" + path, bytes("nar"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> encoded = ncro.get("/" + path + "?token=Ab%2Bc%3D%3D&hash=x_y.z");
        HttpResponse<byte[]> slash = ncro.get("/" + path + "?x=a/b");
        HttpResponse<byte[]> semicolon = ncro.get("/" + path + "?x=a;b");

        assertEquals(200, encoded.statusCode());
        assertEquals("/" + path + "?token=Ab%2Bc%3D%3D&hash=x_y.z", a.requests().get(0).target());
        assertEquals(400, slash.statusCode());
        assertEquals(400, semicolon.statusCode());
        assertEquals(1, a.requests().size(), "nothing malformed reached the upstream");
    }

    @Test
    void range_isForwarded_andAnswered206WithContentRange() throws Exception {
        byte[] nar = new byte[1000];
        for (int i = 0; i < nar.length; i++) nar[i] = (byte) i;
        a.put("/nar/1x4bz98ng1f9n4rb5hlyymnw09dvkf8wk8bxicwjj2w52j793ai0.nar", nar);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> r = ncro.get("/nar/1x4bz98ng1f9n4rb5hlyymnw09dvkf8wk8bxicwjj2w52j793ai0.nar", "Range", "bytes=900-");

        assertEquals(206, r.statusCode());
        assertEquals("bytes 900-999/1000", r.headers().firstValue("content-range").orElseThrow());
        assertEquals("bytes", r.headers().firstValue("accept-ranges").orElseThrow());
        assertEquals("100", r.headers().firstValue("content-length").orElseThrow());
        assertArrayEquals(java.util.Arrays.copyOfRange(nar, 900, 1000), r.body());
        assertEquals("bytes=900-", a.requests().get(0).headers().get("range"));
    }

    @Test
    void endToEndHeadersPass_hopByHopAndCookiesDoNot() throws Exception {
        String path = "/nar/39cv4k7fv1alsgziml0c6vcxakdxkc6rj2gpf0x34dw96k089ma1.nar";
        a.put(path, bytes("nar"))
                // end-to-end, on the whitelist: must reach the client
                .header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
                .header("Cache-Control", "public, max-age=600")
                .header("Expires", "Thu, 22 Oct 2015 07:28:00 GMT")
                // hop-by-hop, or naming one (RFC 9110 7.6.1), or not for the client: must not
                .header("Connection", "x-custom")
                .header("X-Custom", "hop")
                .header("Keep-Alive", "timeout=5, max=1000")
                .header("Proxy-Authenticate", "Basic realm=\"upstream\"")
                .header("X-Upstream-Internal", "10.0.0.7");
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));
        // the upstream really sends them, so the half about dropping them can fail
        java.net.http.HttpHeaders sent = ncro.http.send(java.net.http.HttpRequest.newBuilder(a.uri().resolve(path)).build(),
                HttpResponse.BodyHandlers.discarding()).headers();
        for (String name : new String[] {"connection", "x-custom", "keep-alive", "proxy-authenticate", "set-cookie",
                "x-upstream-internal", "last-modified", "cache-control", "expires", "etag"}) {
            assertTrue(sent.firstValue(name).isPresent(), "the fake upstream sends " + name + ": " + sent.map());
        }
        assertTrue(sent.allValues("connection").toString().contains("x-custom"), sent.map().toString());
        a.clearLog();

        HttpResponse<byte[]> r = ncro.get(path);

        assertEquals(200, r.statusCode());
        assertEquals("nar", new String(r.body(), StandardCharsets.UTF_8));
        java.net.http.HttpHeaders got = r.headers();
        assertEquals(sent.firstValue("etag"), got.firstValue("etag"));
        assertEquals("application/x-nix-nar", got.firstValue("content-type").orElseThrow());
        assertEquals("bytes", got.firstValue("accept-ranges").orElseThrow());
        assertEquals("3", got.firstValue("content-length").orElseThrow());
        assertEquals("Wed, 21 Oct 2015 07:28:00 GMT", got.firstValue("last-modified").orElseThrow());
        assertEquals("public, max-age=600", got.firstValue("cache-control").orElseThrow());
        assertEquals("Thu, 22 Oct 2015 07:28:00 GMT", got.firstValue("expires").orElseThrow());
        for (String name : new String[] {"x-custom", "keep-alive", "proxy-authenticate", "set-cookie", "x-upstream-internal"}) {
            assertFalse(got.firstValue(name).isPresent(), name + " reached the client: " + got.map());
        }
        // ncro's own server may say keep-alive or close on its connection, never the upstream's token
        assertFalse(got.allValues("connection").toString().toLowerCase(java.util.Locale.ROOT).contains("x-custom"),
                "the upstream's Connection header reached the client: " + got.map());
        assertEquals(1, a.count(path));
    }

    @Test
    void head_isForwardedAsHead() throws Exception {
        a.put("/nar/dj491liymn3xwmdjpn6g8vsxs8336jf90jfa3k0xybw6srldfr71.nar", new byte[12345]);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> r = ncro.send("HEAD", "/nar/dj491liymn3xwmdjpn6g8vsxs8336jf90jfa3k0xybw6srldfr71.nar");

        assertEquals(200, r.statusCode());
        assertEquals("12345", r.headers().firstValue("content-length").orElseThrow());
        assertEquals("HEAD", a.requests().get(0).method());
    }

    @Test
    void largeNar_arrivesByteForByte() throws Exception {
        long size = 48L * 1024 * 1024 + 123;
        a.putGenerated("/nar/iylahv99ib6ldixkyrvcshpi0ba8w9dxhs2k8gznrhajmnrz1ia0.nar", size);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<InputStream> r = ncro.http.send(java.net.http.HttpRequest.newBuilder(ncro.uri("/nar/iylahv99ib6ldixkyrvcshpi0ba8w9dxhs2k8gznrhajmnrz1ia0.nar")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        long n = 0;
        try (InputStream in = r.body()) {
            byte[] buf = new byte[65536];
            for (int k; (k = in.read(buf)) > 0; ) {
                for (int i = 0; i < k; i++) {
                    if (buf[i] != FakeCache.PATTERN[(int) ((n + i) % FakeCache.CHUNK)]) throw new AssertionError("byte " + (n + i) + " differs");
                }
                n += k;
            }
        }
        assertEquals(size, n);
    }

    @Test
    void upstreamResetMidBody_withLength_abortsTheClient() throws Exception {
        a.putGenerated("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar", 4 * 1024 * 1024).resetAfter("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar", 1024 * 1024);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        assertThrows(IOException.class, () -> ncro.get("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar"));
    }

    @Test
    void upstreamResetMidBody_chunked_neverEndsTheBodyCleanly() throws Exception {
        a.putGenerated("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar", 4 * 1024 * 1024).chunked("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar").resetAfter("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar", 1024 * 1024);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        assertThrows(IOException.class, () -> ncro.get("/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar"));
    }

    @Test
    void clientDisconnect_cancelsTheUpstreamExchange_andFreesTheConnection() throws Exception {
        a.putGenerated("/nar/a720w6cmm6a21hksdi9mfpv355mkklcbar5c3vv35cfl1pv1qjp0.nar", 1L << 32);
        a.put("/nar/h90m5l0v1znkci7pni8v7axm803wnvajam99dmidwlipvxsivf01.nar", bytes("ok"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        try (Socket s = new Socket("127.0.0.1", ncro.port())) {
            OutputStream out = s.getOutputStream();
            out.write("GET /nar/a720w6cmm6a21hksdi9mfpv355mkklcbar5c3vv35cfl1pv1qjp0.nar HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] buf = new byte[65536];
            long read = 0;
            while (read < 4 * 1024 * 1024) read += in.read(buf);
        }

        assertTrue(a.awaitAbortedWrite(Duration.ofSeconds(20)), "the upstream saw ncro hang up");
        assertEquals(200, ncro.get("/nar/h90m5l0v1znkci7pni8v7axm803wnvajam99dmidwlipvxsivf01.nar").statusCode());
    }

    @Test
    void everyEndOfAStream_givesItsPooledBuffersBack() throws Exception {
        String whole = "/nar/0e3khy1rvhz6qdkmgd4vnqxnbwhpgp2dlh4y9vbxp4k3f4kwrq1z.nar";
        String reset = "/nar/3js67dcvm2raxpr3qfsprg22cv2zbhaybkbclvhbnv9llx26yd00.nar";
        String endless = "/nar/a720w6cmm6a21hksdi9mfpv355mkklcbar5c3vv35cfl1pv1qjp0.nar";
        a.putGenerated(whole, 8L * 1024 * 1024 + 7);
        a.putGenerated(reset, 4 * 1024 * 1024).resetAfter(reset, 1024 * 1024);
        a.putGenerated(endless, 1L << 32);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));
        long before = dev.ncro.engine.NarBuffers.outstanding();

        assertEquals(8L * 1024 * 1024 + 7, ncro.get(whole).body().length);
        assertThrows(IOException.class, () -> ncro.get(reset));
        try (Socket s = new Socket("127.0.0.1", ncro.port())) { // a client that goes away mid-body
            s.getOutputStream().write(("GET " + endless + " HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            byte[] buf = new byte[65536];
            for (long read = 0; read < 4 * 1024 * 1024; ) read += in.read(buf);
        }
        assertTrue(a.awaitAbortedWrite(Duration.ofSeconds(20)), "the upstream saw ncro hang up");

        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (dev.ncro.engine.NarBuffers.outstanding() > before && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals(before, dev.ncro.engine.NarBuffers.outstanding(), "pooled NAR buffers not given back");
    }

    @Test
    void absoluteNarUrlUnderAConfiguredUpstream_isMadeRelative_andStreamedThroughNcro() throws Exception {
        String h = hash(40);
        String nar = "nar/" + hash(41) + hash(42).substring(0, 20) + ".nar.xz";
        a.put("/" + h + ".narinfo", narinfo(h, "abs", b.uri() + "/" + nar, 7)); // NarSize: the uncompressed file's length
        b.put("/" + nar, bytes("B-bytes"));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 20));

        HttpResponse<byte[]> info = ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> r = ncro.get("/" + nar);

        assertTrue(new String(info.body(), StandardCharsets.UTF_8).contains("\nURL: " + nar + "\n"), "relative now");
        assertEquals("B-bytes", new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(0, a.count("/" + nar), "pinned to b, where the URL pointed");
    }

    @Test
    void absoluteNarUrlElsewhere_isServedAsIs_andNeverFetchedByNcro() throws Exception {
        String h = hash(43);
        String foreign = "http://169.254.169.254/latest/meta-data";
        a.put("/" + h + ".narinfo", narinfo(h, "foreign", foreign, 3));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> info = ncro.get("/" + h + ".narinfo");

        assertEquals(200, info.statusCode());
        assertTrue(new String(info.body(), StandardCharsets.UTF_8).contains("URL: " + foreign));
        assertEquals(404, ncro.get("/latest/meta-data").statusCode(), "not a path ncro forwards");
        assertEquals(1, a.requests().size(), "only the narinfo was ever requested");
    }
}
