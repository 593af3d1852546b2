package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ncro.metrics.NcroMetrics;
import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Head starts for NARs over {@code readahead.max_nar_size}, through the real filter, servlet
 * and engine against real upstreams: the NAR's stream opens when its narinfo is served, and
 * the download takes it over — or, when the head start expired or failed, gets a stream of
 * its own, never a failure the normal stream would not have given it.
 */
class HeadStartTest extends TwoUpstreams {
    private final FakeClock clock = new FakeClock();

    /** A NAR of {@code size} bytes on {@code cache} (over the 1000-byte limit these tests set); returns its path. */
    private String path(FakeCache cache, int n, byte[] bytes) throws Exception {
        String h = hash(n);
        String url = "nar/" + h + "0000000000000000000000.nar.xz";
        cache.put("/" + h + ".narinfo", ReadAheadTest.narinfo(h, url, bytes.length, ReadAheadTest.fileHash(bytes)));
        cache.put("/" + url, bytes);
        return "/" + url;
    }

    private void startNcro(String readAheadYaml) throws Exception {
        String yaml = "upstreams:\n  - url: " + a.uri() + "\n    priority: 10\n  - url: " + b.uri() + "\n    priority: 20\n"
                + "readahead:\n" + ("max_nar_size: 1000\n" + (readAheadYaml == null ? "" : readAheadYaml)).indent(2);
        ncro = NcroUnderTest.start(yaml, null, clock);
        // a client downloads: head starts open as narinfos are served (before any download,
        // candidates are only held back, so that clients that only query open no stream)
        String small = "/nar/" + hash(99) + "0000000000000000000000.nar.xz";
        a.put(small, new byte[10]);
        assertEquals(200, ncro.get(small).statusCode());
        a.clearLog();
    }

    private double headStarts(String outcome) {
        return metrics().headStarts.labelValues(outcome).get();
    }

    private NcroMetrics metrics() {
        return ncro.engine.metricsRegistry();
    }

    private static String narinfoOf(String narPath) {
        return "/" + narPath.substring("/nar/".length(), "/nar/".length() + 32) + ".narinfo";
    }

    @Test
    void bigNar_isRequestedWithItsNarinfo_andItsDownloadTakesThatStreamOver() throws Exception {
        byte[] bytes = ReadAheadTest.nar(1, 600_000); // several stream windows: the head start pauses
        String nar = path(a, 1, bytes);
        startNcro(null);

        assertEquals(200, ncro.get(narinfoOf(nar)).statusCode());
        ReadAheadTest.await(() -> a.count(nar) == 1, "the NAR requested before its download");
        HttpResponse<byte[]> first = ncro.get(nar);
        HttpResponse<byte[]> second = ncro.get(nar);

        assertEquals(200, first.statusCode());
        assertArrayEquals(bytes, first.body());
        assertEquals(String.valueOf(bytes.length), first.headers().firstValue("content-length").orElse(null));
        assertArrayEquals(bytes, second.body());
        assertEquals(2, a.count(nar), "the download took the head start's stream; the next one went upstream");
        assertEquals(1, headStarts("taken"));
        assertEquals(0, metrics().readAheadHits.get(), "never read into memory");
        assertEquals(1 + 2, metrics().narRequests.get(), "set-up's download, then two, one over the head start's stream");
    }

    @Test
    void headStartNotTakenWithinItsTtl_isCancelled_andTheDownloadGetsItsOwnStream() throws Exception {
        byte[] bytes = ReadAheadTest.nar(2, 600_000);
        String nar = path(a, 2, bytes);
        startNcro(null);

        ncro.get(narinfoOf(nar));
        ReadAheadTest.await(() -> a.count(nar) == 1, "the head start");
        clock.advance(Duration.ofSeconds(10)); // the head start's limit (under readahead.ttl's 30 s)
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode());
        assertArrayEquals(bytes, r.body());
        assertEquals(2, a.count(nar));
        assertEquals(1, headStarts("expired"));
        assertEquals(0, headStarts("taken"));
        assertEquals(1 + 1, metrics().narRequests.get(), "set-up's download and this one: a head start nobody took is no NAR request");
    }

    @Test
    void headStartFailing_beforeTheDownload_doesNotFailTheDownload() throws Exception {
        byte[] bytes = ReadAheadTest.nar(3, 300_000);
        String nar = path(a, 3, bytes);
        a.status(nar, 503); // b lacks it: the head start's stream ends 502
        startNcro(null);

        ncro.get(narinfoOf(nar));
        ReadAheadTest.await(() -> b.count(nar) == 1, "the head start to ask a, then b");
        a.clearScripts(); // a answers again: the download must not inherit the head start's 502
        HttpResponse<byte[]> r = ncro.get(nar);

        assertEquals(200, r.statusCode(), () -> new String(r.body()));
        assertArrayEquals(bytes, r.body());
        assertEquals(1, headStarts("failed"));
        assertEquals(0, headStarts("taken"));
        assertEquals(1 + 1, metrics().narRequests.get(), "set-up's download and this one, whatever streams it took");
    }

    @Test
    void rangeDownload_takesItsOwnStream_andLeavesTheHeadStartToTheWholeFileDownload() throws Exception {
        byte[] bytes = ReadAheadTest.nar(4, 300_000);
        String nar = path(a, 4, bytes);
        startNcro(null);

        ncro.get(narinfoOf(nar));
        ReadAheadTest.await(() -> a.count(nar) == 1, "the head start");
        HttpResponse<byte[]> part = ncro.get(nar, "Range", "bytes=1000-"); // as Nix resumes
        HttpResponse<byte[]> whole = ncro.get(nar);

        assertEquals(206, part.statusCode());
        assertArrayEquals(Arrays.copyOfRange(bytes, 1000, bytes.length), part.body());
        assertArrayEquals(bytes, whole.body());
        assertEquals(2, a.count(nar), "the head start (taken by the whole-file GET) and the Range GET");
        assertEquals(1, headStarts("taken"));
    }

    @Test
    void headNarinfo_startsNothing() throws Exception {
        byte[] bytes = ReadAheadTest.nar(5, 300_000);
        String nar = path(a, 5, bytes);
        startNcro(null);

        assertEquals(200, ncro.send("HEAD", narinfoOf(nar)).statusCode());
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(1, a.count(nar));
        assertEquals(0, headStarts("taken") + headStarts("expired") + headStarts("failed"));
    }

    @Test
    void headStartOff_requestsNothingBeforeTheDownload() throws Exception {
        byte[] bytes = ReadAheadTest.nar(6, 300_000);
        String nar = path(a, 6, bytes);
        startNcro("head_start: false\n");

        ncro.get(narinfoOf(nar));
        assertArrayEquals(bytes, ncro.get(nar).body());

        assertEquals(1, a.count(nar));
        assertEquals(0, headStarts("taken") + headStarts("expired") + headStarts("failed"));
    }
}
