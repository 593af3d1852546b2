package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.api.Status;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** The status page's HTML and SVG from hand-made snapshots: escaping, the chart's shapes, no secrets. */
class StatusPageRenderTest {
    private static final Instant NOW = Instant.parse("2025-06-01T12:00:00Z");

    private static Status status(List<Status.Upstream> upstreams) {
        return new Status(NOW, "degraded", upstreams, new Status.Routes(12, 345, true, "sqlite /var/lib/ncro/ncro.db", 40_960),
                new Status.Lookups(30, 10, 10), new Status.Nars(2, 1, 5L * 1024 * 1024));
    }

    private static Status.Upstream upstream(String url, String state, List<Status.LatencySample> latency) {
        return new Status.Upstream(url, 40, state, latency.isEmpty() ? Double.NaN : 12.5, 7, 0,
                latency.isEmpty() ? null : NOW.minusSeconds(42), latency);
    }

    private static List<Status.LatencySample> samples(int n) {
        List<Status.LatencySample> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new Status.LatencySample(NOW.minusSeconds(30L * (n - i)), 10 + i, true));
        return out;
    }

    /** The chart must be well-formed XML whatever it holds: parse it. */
    private static Document svg(List<Status.Upstream> upstreams) throws Exception {
        String svg = LatencyChart.svg(upstreams);
        var factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        return factory.newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    }

    private static int count(Document doc, String tag) {
        return doc.getElementsByTagNameNS("http://www.w3.org/2000/svg", tag).getLength();
    }

    @Test
    void upstreamUrl_withMarkup_isEscapedEverywhere_soNoTagOrAttributeCanBeInjected() throws Exception {
        String hostile = "http://evil.example/<script>alert(1)</script>\"onmouseover='x'&amp;";
        Status s = status(List.of(upstream(hostile, "active", samples(3))));

        String html = StatusPage.html(s);

        assertFalse(html.contains("<script"), html);
        assertFalse(html.contains("\"onmouseover"), "no attribute can be closed early: " + html);
        assertFalse(html.contains("'x'"), html);
        assertTrue(html.contains("http://evil.example/&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover=&#39;x&#39;&amp;amp;"),
                "shown as text: " + html);
        Document chart = svg(s.upstreams()); // the escaped title and data attribute still parse
        Element series = (Element) chart.getElementsByTagNameNS("http://www.w3.org/2000/svg", "g").item(0);
        assertEquals(hostile, series.getAttribute("data-upstream"), "round-trips as the text it was");
    }

    @Test
    void storeStateAndOverall_areEscapedToo() {
        Status s = new Status(NOW, "<b>ok</b>", List.of(), new Status.Routes(0, 0, false, "memory only: <i>/x</i> & y", 0),
                new Status.Lookups(0, 0, 0), new Status.Nars(0, 0, 0));

        String html = StatusPage.html(s);

        assertFalse(html.contains("<b>") || html.contains("<i>"), html);
        assertTrue(html.contains("memory only: &lt;i&gt;/x&lt;/i&gt; &amp; y"), html);
        assertTrue(html.contains("class=\"badge down\">&lt;b&gt;ok&lt;/b&gt;"), "an unknown state gets a fixed class: " + html);
    }

    @Test
    void escape_replacesControlCharacters() {
        assertEquals("a\uFFFDb\tc", Html.escape("a\u0000b\tc"));
        assertEquals("", Html.escape(null));
    }

    @Test
    void chart_withNoSamples_saysSo_andDrawsNoSeries() throws Exception {
        Document chart = svg(List.of(upstream("http://a", "active", List.of()), upstream("http://b", "active", List.of())));

        assertEquals(0, count(chart, "polyline"));
        assertEquals(0, count(chart, "circle"));
        assertTrue(chart.getDocumentElement().getTextContent().contains("no probes yet"));
    }

    @Test
    void chart_withOneSample_drawsADot_inTheMiddle() throws Exception {
        Document chart = svg(List.of(upstream("http://a", "active", samples(1))));

        assertEquals(0, count(chart, "polyline"), "one point is no line");
        NodeList circles = chart.getElementsByTagNameNS("http://www.w3.org/2000/svg", "circle");
        assertEquals(1, circles.getLength());
        double cx = Double.parseDouble(((Element) circles.item(0)).getAttribute("cx"));
        assertTrue(cx > LatencyChart.WIDTH * 0.4 && cx < LatencyChart.WIDTH * 0.6, "a one-instant span is centred: " + cx);
    }

    @Test
    void chart_withNSamples_drawsOneLinePerUpstream_throughEverySample_oldestLeft() throws Exception {
        Document chart = svg(List.of(upstream("http://a", "active", samples(60)), upstream("http://b", "active", samples(5))));

        NodeList lines = chart.getElementsByTagNameNS("http://www.w3.org/2000/svg", "polyline");
        assertEquals(2, lines.getLength());
        String[] points = ((Element) lines.item(0)).getAttribute("points").split(" ");
        assertEquals(60, points.length);
        double first = Double.parseDouble(points[0].split(",")[0]);
        double last = Double.parseDouble(points[59].split(",")[0]);
        assertTrue(first < last, "time runs left to right");
        double firstY = Double.parseDouble(points[0].split(",")[1]);
        double lastY = Double.parseDouble(points[59].split(",")[1]);
        assertTrue(lastY < firstY, "the latency grew (10 → 69 ms), so the line climbs");
        assertEquals(65, count(chart, "circle"));
        assertEquals(LatencyChart.COLOURS[0], ((Element) lines.item(0)).getAttribute("stroke"));
        assertEquals(LatencyChart.COLOURS[1], ((Element) lines.item(1)).getAttribute("stroke"));
    }

    @Test
    void chart_failedProbes_areRings_andAnUpstreamThatNeverAnswered_breaksNoLine() throws Exception {
        List<Status.LatencySample> flaky = List.of(
                new Status.LatencySample(NOW.minusSeconds(90), 20, true),
                new Status.LatencySample(NOW.minusSeconds(60), 20, false),
                new Status.LatencySample(NOW.minusSeconds(30), 25, true));
        List<Status.LatencySample> dead = List.of(
                new Status.LatencySample(NOW.minusSeconds(60), Double.NaN, false),
                new Status.LatencySample(NOW.minusSeconds(30), Double.NaN, false));

        Document chart = svg(List.of(upstream("http://flaky", "active", flaky), upstream("http://dead", "down", dead)));

        assertEquals(1, count(chart, "polyline"), "only the upstream with latencies has a line");
        int rings = 0;
        NodeList circles = chart.getElementsByTagNameNS("http://www.w3.org/2000/svg", "circle");
        for (int i = 0; i < circles.getLength(); i++) {
            if ("failed".equals(((Element) circles.item(i)).getAttribute("class"))) rings++;
        }
        assertEquals(3, rings, "one failed probe of flaky, two of dead");
    }

    @Test
    void page_showsEveryFigure_andLinksHealthAndMetrics() {
        Status s = status(List.of(upstream("https://cache.nixos.org", "active", samples(3)),
                upstream("https://attic.example/main", "down", List.of())));

        String html = StatusPage.html(s);

        assertTrue(html.startsWith("<!DOCTYPE html>"));
        assertTrue(html.contains("<a href=\"health\">") && html.contains("<a href=\"metrics\">"), "relative: works under any context path");
        assertTrue(html.contains("https://cache.nixos.org") && html.contains("https://attic.example/main"));
        assertTrue(html.contains("<span class=\"badge state down\">down</span>"), html);
        assertTrue(html.contains("12.5 ms"), "EMA latency");
        assertTrue(html.contains("42 s ago"), "last probe");
        assertTrue(html.contains(">never<"), "an upstream never probed");
        assertTrue(html.contains("80.0 %"), "hit ratio: (30 + 10) / 50");
        assertTrue(html.contains(">345<") && html.contains(">12<"), "routes on disk and in memory");
        assertTrue(html.contains("5.0 MiB"), "NAR bytes");
        assertFalse(html.contains("<script"), "no script at all");
        assertFalse(html.contains("src=") || html.contains("<link"), "nothing loaded from anywhere");
    }

    @Test
    void formats() {
        assertEquals("–", StatusPage.millis(Double.NaN));
        assertEquals("0.85 ms", StatusPage.millis(0.85));
        assertEquals("42.0 ms", StatusPage.millis(42));
        assertEquals("1250 ms", StatusPage.millis(1250));
        assertEquals("512 B", StatusPage.bytes(512));
        assertEquals("1.5 GiB", StatusPage.bytes(3L << 29));
        assertEquals("3 min 5 s ago", StatusPage.ago(Duration.ofSeconds(185)));
        assertEquals("0 ms", LatencyChart.axisLabel(0));
        assertEquals("0.25 ms", LatencyChart.axisLabel(0.25));
        assertEquals("50 ms", LatencyChart.axisLabel(50.0));
        assertEquals("1000 ms", LatencyChart.axisLabel(1000.0));
        assertEquals(1, LatencyChart.niceCeiling(0.3));
        assertEquals(25, LatencyChart.niceCeiling(21));
        assertEquals(500, LatencyChart.niceCeiling(420));
    }
}
