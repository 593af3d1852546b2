package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.http.HttpHeaders;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The hot path: a narinfo the engine answers from memory is written on the request thread,
 * without startAsync. Its answer must be the one the asynchronous path gives for a lookup that
 * waits on an upstream: same status, headers (but Date) and bytes, for GET and HEAD, found and
 * not found, with its access line.
 */
class HotNarinfoTest extends TwoUpstreams {

    @Test
    void hitFromMemory_answersLikeTheRaceDid_statusHeadersAndBody() throws Exception {
        String h = hash(3);
        a.delay(Duration.ofMillis(50)).put("/" + h + ".narinfo", narinfo(h, "hot", "nar/g8ahw6i5z5jc9xc5h285ni06dnby64vzfmwknx7j6wgz6hdqxa40.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> raced = ncro.get("/" + h + ".narinfo");
        assertTrue(ncro.engine.narinfo(h).isDone(), "the second lookup is a hit from memory");
        HttpResponse<byte[]> hot = ncro.get("/" + h + ".narinfo");

        assertEquals(200, raced.statusCode());
        assertSameAnswer(raced, hot);
        assertEquals(1, a.count("/" + h + ".narinfo"), "the hit asked no upstream");
    }

    @Test
    void headOnAHit_answersLikeHeadOnTheRace_withoutABody() throws Exception {
        String h = hash(4);
        a.delay(Duration.ofMillis(50)).put("/" + h + ".narinfo", narinfo(h, "hot-head", "nar/x40qravmfzwnc5i5l6210xmpb4d2vhkc5vkjqr89raf00b0x3ig0.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> raced = ncro.send("HEAD", "/" + h + ".narinfo");
        HttpResponse<byte[]> hot = ncro.send("HEAD", "/" + h + ".narinfo");
        HttpResponse<byte[]> get = ncro.get("/" + h + ".narinfo");

        assertEquals(200, raced.statusCode());
        assertSameAnswer(raced, hot);
        assertEquals(0, hot.body().length);
        assertEquals(String.valueOf(get.body().length), hot.headers().firstValue("content-length").orElseThrow());
    }

    @Test
    void rememberedNotFound_answersLikeTheRaceDid() throws Exception {
        String h = hash(5);
        a.delay(Duration.ofMillis(50));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));

        HttpResponse<byte[]> raced = ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> hot = ncro.get("/" + h + ".narinfo");

        assertEquals(404, raced.statusCode());
        assertEquals(404, hot.statusCode());
        assertEquals(1, a.count("/" + h + ".narinfo"), "the not-found was remembered");
        // the engine words a remembered not-found differently from a fresh one: the same
        // headers but the body's length, and the body is the engine's answer byte for byte
        Map<String, List<String>> expected = headers(raced.headers());
        expected.put("content-length", List.of(String.valueOf(hot.body().length)));
        assertEquals(expected, headers(hot.headers()));
        assertArrayEquals(ncro.engine.narinfo(h).join().body(), hot.body());
    }

    @Test
    void hitFromMemory_writesTheSameAccessLine_withItsUpstream() throws Exception {
        String h = hash(6);
        a.put("/" + h + ".narinfo", narinfo(h, "logged", "nar/27ldlbv36f8dfswz8lf87w35a777v4fmkxqq9ldql2gz3wr2c541.nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));
        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertTrue(ncro.engine.narinfo(h).isDone());

        var appender = (org.eclipse.jetty.logging.StdErrAppender) ((org.eclipse.jetty.logging.JettyLogger) AccessLog.LOG).getAppender();
        var captured = new ByteArrayOutputStream();
        PrintStream previous = appender.getStream();
        appender.setStream(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
            assertEquals(200, ncro.send("HEAD", "/" + h + ".narinfo").statusCode());
        } finally {
            appender.setStream(previous);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        // written before the answer leaves the request thread: no waiting needed
        assertTrue(log.contains(" http GET /" + h + ".narinfo 200 "), "a GET line in: " + log);
        assertTrue(log.contains(" http HEAD /" + h + ".narinfo 200 "), "a HEAD line in: " + log);
        assertTrue(log.lines().anyMatch(l -> l.contains(" GET /" + h + ".narinfo 200 ") && l.contains("ms upstream ")),
                "the upstream is named in: " + log);
    }

    private static void assertSameAnswer(HttpResponse<byte[]> expected, HttpResponse<byte[]> actual) {
        assertEquals(expected.statusCode(), actual.statusCode(), "status");
        assertEquals(headers(expected.headers()), headers(actual.headers()), "headers");
        assertArrayEquals(expected.body(), actual.body(), "body");
    }

    private static Map<String, List<String>> headers(HttpHeaders headers) {
        Map<String, List<String>> m = new TreeMap<>(headers.map());
        m.remove("date");
        return m;
    }
}
