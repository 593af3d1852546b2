package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The status page at {@code /} over real HTTP, from a real engine in the {@link BusyNcro} scenario. */
class StatusPageTest {
    @TempDir
    Path dir;

    private BusyNcro busy;

    @AfterEach
    void stop() throws Exception {
        if (busy != null) busy.close();
    }

    private static String body(HttpResponse<byte[]> r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    /** The table row of one upstream. */
    private static String row(String html, String url) {
        Matcher m = Pattern.compile("<tr data-upstream=\"" + Pattern.quote(url) + "\">(.*?)</tr>").matcher(html);
        assertTrue(m.find(), "a row for " + url + " in " + html);
        return m.group(1);
    }

    @Test
    void get_answersHtml_neverCached_underAPolicyThatLoadsAndRunsNothing() throws Exception {
        busy = new BusyNcro(dir);

        HttpResponse<byte[]> r = busy.ncro.get("/");

        assertEquals(200, r.statusCode());
        assertEquals("text/html;charset=utf-8", r.headers().firstValue("content-type").orElseThrow().replace(" ", "").toLowerCase());
        assertEquals("no-store", r.headers().firstValue("cache-control").orElseThrow());
        assertEquals("default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                r.headers().firstValue("content-security-policy").orElseThrow());
        assertEquals("nosniff", r.headers().firstValue("x-content-type-options").orElseThrow());
        assertTrue(body(r).contains("no probes yet"), "no probe has run: an empty chart");
    }

    @Test
    void head_answersTheHeadersAndLength_withoutABody() throws Exception {
        busy = new BusyNcro(dir);
        int length = busy.ncro.get("/").body().length;

        HttpResponse<byte[]> r = busy.ncro.send("HEAD", "/");

        assertEquals(200, r.statusCode());
        assertEquals(0, r.body().length);
        assertEquals(length, Integer.parseInt(r.headers().firstValue("content-length").orElseThrow()));
        assertEquals("no-store", r.headers().firstValue("cache-control").orElseThrow());
    }

    @Test
    void aRequestForThePage_writesItsAccessLine_likeEveryOtherAnswer() throws Exception {
        busy = new BusyNcro(dir);
        var appender = (org.eclipse.jetty.logging.StdErrAppender) ((org.eclipse.jetty.logging.JettyLogger) AccessLog.LOG).getAppender();
        var captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream previous = appender.getStream();
        appender.setStream(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            assertEquals(200, busy.ncro.get("/").statusCode());
            long deadline = System.nanoTime() + 5_000_000_000L;
            // the line is written when the response completes, which may follow the client's read
            while (!captured.toString(StandardCharsets.UTF_8).contains(" GET / 200 ") && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
        } finally {
            appender.setStream(previous);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains(" http GET / 200 "), "an access line for / in: " + log);
    }

    @Test
    void otherMethods_are405_andOtherPathsNearby_are404() throws Exception {
        busy = new BusyNcro(dir);

        for (String method : new String[] {"POST", "PUT", "DELETE", "OPTIONS"}) {
            HttpResponse<byte[]> r = busy.ncro.send(method, "/");
            assertEquals(405, r.statusCode(), method);
            assertEquals("GET, HEAD", r.headers().firstValue("allow").orElseThrow());
        }
        for (String path : new String[] {"/index.html", "/status", "//"}) {
            int status = busy.ncro.get(path).statusCode();
            assertTrue(status == 404 || status == 400, path + " is no status page: " + status);
        }
    }

    @Test
    void afterTrafficAndProbes_showsEachUpstreamsState_latency_wins_failures_andTheCounters() throws Exception {
        busy = new BusyNcro(dir).drive();

        String html = body(busy.ncro.get("/"));

        String a = row(html, busy.a.uri().toString());
        String b = row(html, busy.b.uri().toString());
        assertTrue(a.contains(">active</span>"), a);
        assertTrue(b.contains(">down</span>"), "ten probes refused: " + b);
        assertTrue(a.contains("<td class=\"num\">1</td>"), "a won the one race: " + a);
        assertTrue(b.contains(">10</td>"), "b's failures in a row: " + b);
        assertTrue(a.contains(" ms</td>"), "a's EMA latency: " + a);
        assertTrue(a.contains("0 s ago"), "a was probed at the fake clock's now: " + a);
        assertTrue(html.contains("id=\"overall\" class=\"badge degraded\">degraded<"), "one of two upstreams down");
        assertTrue(html.contains("50.0 %"), "hit ratio: one hit, one miss");
        assertTrue(html.contains("3.0 MiB"), "the NAR's bytes");
        assertTrue(html.contains("<section class=\"card\" id=\"routes\"><h2>Routes</h2><div class=\"big\">1</div>"),
                "the route, on disk: " + html);
        assertEquals(2, count(html, "<polyline "), "a line for each upstream that answered a probe");
        assertEquals(10, count(html, "class=\"failed\""), "b's refused probes as rings");
        assertTrue(html.contains("(12 samples)"), "one sample per probe round");
    }

    @Test
    void configuredLogins_appearNowhereOnThePage() throws Exception {
        busy = new BusyNcro(dir).drive();

        String html = body(busy.ncro.get("/"));

        for (String secret : new String[] {BusyNcro.USERNAME, BusyNcro.PASSWORD, BusyNcro.NETRC_USER, BusyNcro.NETRC_PASSWORD,
                base64(BusyNcro.USERNAME + ":" + BusyNcro.PASSWORD), base64(BusyNcro.NETRC_USER + ":" + BusyNcro.NETRC_PASSWORD),
                "netrc"}) {
            assertFalse(html.contains(secret), secret + " on the page: " + html);
        }
        assertTrue(busy.a.requests().stream().anyMatch(l -> l.headers().get("authorization") != null),
                "the logins are in use, so there was something to leak");
    }

    @Test
    void latencyHistory_isBounded_toTheLastSixtyProbes() throws Exception {
        busy = new BusyNcro(dir);
        for (int i = 0; i < 75; i++) busy.ncro.engine.probes().probeAll().get();

        var status = busy.ncro.engine.status();

        assertEquals(60, status.upstreams().get(0).latency().size());
        assertEquals(60, status.upstreams().get(1).latency().size());
    }

    private static String base64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    private static int count(String haystack, String needle) {
        int n = 0;
        for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) n++;
        return n;
    }
}
