package dev.ncro.web;

import dev.ncro.api.Status;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;

/**
 * The status page at {@code /}: one self-contained HTML document rendered from a {@link Status}
 * snapshot — upstreams (state, latency, race wins, failures, last probe), a latency chart
 * ({@link LatencyChart}), routes, lookups and NAR streams, links to {@code /health} and
 * {@code /metrics}. No script, no external asset: the {@link #CSP} it is served with lets it
 * load nothing and run nothing, only its own inline styles and SVG.
 *
 * <p>Every value from the engine is escaped ({@link Html#escape}), upstream URLs included:
 * they come from configuration but are treated as untrusted text. The snapshot carries no
 * credentials, so the page cannot show any.
 */
final class StatusPage {
    static final String CONTENT_TYPE = "text/html; charset=utf-8";
    /** Nothing may load but inline styles and data: images; no script at all. */
    static final String CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

    private static final DateTimeFormatter ISO = DateTimeFormatter.ISO_INSTANT;

    private static final String STYLE = """
            :root{color-scheme:light}
            body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#18181b;background:#f4f4f5}
            main{max-width:840px;margin:0 auto;padding:20px 24px 32px}
            header{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap;margin-bottom:8px}
            h1{font-size:22px;margin:0}
            h2{font-size:15px;margin:22px 0 8px;color:#3f3f46}
            nav{margin-left:auto}
            nav a{margin-left:14px;color:#2563eb;text-decoration:none}
            nav a:hover{text-decoration:underline}
            .muted{color:#71717a}
            .badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.03em}
            .ok,.active{background:#dcfce7;color:#166534}
            .degraded{background:#fef3c7;color:#92400e}
            .down{background:#fee2e2;color:#991b1b}
            table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e4e7;border-radius:6px}
            th,td{padding:7px 10px;text-align:left;border-bottom:1px solid #f0f0f2;white-space:nowrap}
            th{font-size:12px;font-weight:600;color:#52525b;background:#fafafa}
            td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
            td.url{white-space:normal;word-break:break-all;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}
            tr:last-child td{border-bottom:none}
            .swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:8px;vertical-align:0}
            .s0{background:#2563eb}.s1{background:#d97706}.s2{background:#059669}.s3{background:#7c3aed}
            .s4{background:#db2777}.s5{background:#0891b2}.s6{background:#65a30d}.s7{background:#475569}
            .chart{display:block;width:100%;height:auto;background:#fff;border:1px solid #e4e4e7;border-radius:6px}
            .chart text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:#71717a}
            .chart text.empty{font-size:13px}
            .legend{margin:6px 0 18px;font-size:12px;color:#52525b}
            .cards{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
            .card{background:#fff;border:1px solid #e4e4e7;border-radius:6px;padding:10px 14px}
            .card h2{margin:0 0 6px}
            .big{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
            dl{display:grid;grid-template-columns:auto auto;gap:2px 12px;margin:6px 0 0;font-size:13px}
            dt{color:#71717a}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
            .store{margin-top:6px;font-size:12px;color:#71717a;word-break:break-all}
            footer{margin-top:20px;font-size:12px;color:#71717a}
            """;

    private StatusPage() {}

    static byte[] render(Status status) {
        return html(status).getBytes(StandardCharsets.UTF_8);
    }

    static String html(Status status) {
        StringBuilder page = new StringBuilder(16384);
        page.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")
                .append("<title>ncro status: ").append(Html.escape(status.overall())).append("</title>")
                .append("<style>").append(STYLE).append("</style></head><body><main>");
        page.append("<header><h1>ncro</h1><span id=\"overall\" class=\"badge ").append(stateClass(status.overall()))
                .append("\">").append(Html.escape(status.overall())).append("</span>")
                .append("<span class=\"muted\">as of ").append(Html.escape(ISO.format(status.at().truncatedTo(ChronoUnit.SECONDS))))
                .append("</span><nav><a href=\"health\">/health</a><a href=\"metrics\">/metrics</a></nav></header>");
        upstreams(page, status);
        page.append("<h2>Latency</h2>").append(LatencyChart.svg(status.upstreams()));
        legend(page, status.upstreams());
        page.append("<div class=\"cards\">");
        routes(page, status.routes());
        lookups(page, status.lookups());
        nars(page, status.nars());
        page.append("</div><footer>A snapshot taken as this page was asked for; reload to refresh. ")
                .append("Latency is each upstream's EMA after its probes; red rings are failed probes.</footer>")
                .append("</main></body></html>\n");
        return page.toString();
    }

    private static void upstreams(StringBuilder page, Status status) {
        page.append("<h2>Upstreams</h2><table id=\"upstreams\"><thead><tr><th>upstream</th><th class=\"num\">priority</th>")
                .append("<th>state</th><th class=\"num\">EMA latency</th><th class=\"num\">race wins</th>")
                .append("<th class=\"num\">failures</th><th>last probe</th></tr></thead><tbody>");
        List<Status.Upstream> upstreams = status.upstreams();
        for (int i = 0; i < upstreams.size(); i++) {
            Status.Upstream u = upstreams.get(i);
            page.append("<tr data-upstream=\"").append(Html.escape(u.url())).append("\">")
                    .append("<td class=\"url\"><span class=\"swatch s").append(i % LatencyChart.COLOURS.length)
                    .append("\"></span>").append(Html.escape(u.url())).append("</td>")
                    .append("<td class=\"num\">").append(u.priority()).append("</td>")
                    .append("<td><span class=\"badge state ").append(stateClass(u.state())).append("\">")
                    .append(Html.escape(u.state())).append("</span></td>")
                    .append("<td class=\"num\">").append(Html.escape(millis(u.emaLatencyMs()))).append("</td>")
                    .append("<td class=\"num\">").append(u.raceWins()).append("</td>")
                    .append("<td class=\"num\" title=\"probes failed in a row\">").append(u.consecutiveFailures()).append("</td>")
                    .append("<td>").append(lastProbe(u.lastProbe(), status.at())).append("</td></tr>");
        }
        page.append("</tbody></table>");
    }

    private static void legend(StringBuilder page, List<Status.Upstream> upstreams) {
        page.append("<p class=\"legend\">");
        for (int i = 0; i < upstreams.size(); i++) {
            Status.Upstream u = upstreams.get(i);
            page.append("<span class=\"swatch s").append(i % LatencyChart.COLOURS.length).append("\"></span>")
                    .append(Html.escape(u.url())).append(" (").append(u.latency().size()).append(" samples)");
            if (i < upstreams.size() - 1) page.append(" &nbsp; ");
        }
        page.append("</p>");
    }

    private static void routes(StringBuilder page, Status.Routes routes) {
        page.append("<section class=\"card\" id=\"routes\"><h2>Routes</h2><div class=\"big\">").append(routes.onDisk())
                .append("</div><div class=\"muted\">on disk</div><dl>")
                .append("<dt>in memory</dt><dd>").append(routes.inMemory()).append("</dd>")
                .append("<dt>memory held</dt><dd>").append(Html.escape(bytes(routes.memoryBytes()))).append("</dd></dl>")
                .append("<div class=\"store\">").append(routes.persistent() ? "" : "<span class=\"badge degraded\">memory only</span> ")
                .append(Html.escape(routes.store())).append("</div></section>");
    }

    private static void lookups(StringBuilder page, Status.Lookups lookups) {
        double ratio = lookups.hitRatio();
        page.append("<section class=\"card\" id=\"lookups\"><h2>Narinfo lookups</h2><div class=\"big\">")
                .append(Double.isNaN(ratio) ? "–" : String.format(Locale.ROOT, "%.1f %%", ratio * 100))
                .append("</div><div class=\"muted\" title=\"lookups answered from remembered routes and not-founds, without asking an upstream\">hit ratio</div><dl>")
                .append("<dt>hits</dt><dd>").append(lookups.hits()).append("</dd>")
                .append("<dt>remembered 404s</dt><dd>").append(lookups.negativeHits()).append("</dd>")
                .append("<dt>misses</dt><dd>").append(lookups.misses()).append("</dd></dl></section>");
    }

    private static void nars(StringBuilder page, Status.Nars nars) {
        page.append("<section class=\"card\" id=\"nars\"><h2>NAR streams</h2><div class=\"big\">").append(nars.inFlight())
                .append("</div><div class=\"muted\">in flight</div><dl>")
                .append("<dt>queued for a slot</dt><dd>").append(nars.queued()).append("</dd>")
                .append("<dt>streamed</dt><dd title=\"").append(nars.bytes()).append(" bytes\">")
                .append(Html.escape(bytes(nars.bytes()))).append("</dd></dl></section>");
    }

    /** The CSS class of a state: one of a fixed set, whatever the text says. */
    private static String stateClass(String state) {
        return switch (state) {
            case "ok", "active" -> "ok";
            case "degraded" -> "degraded";
            default -> "down";
        };
    }

    private static String lastProbe(Instant at, Instant now) {
        if (at == null) return "<span class=\"muted\">never</span>";
        String iso = ISO.format(at.truncatedTo(ChronoUnit.SECONDS));
        return "<time datetime=\"" + Html.escape(iso) + "\" title=\"" + Html.escape(iso) + "\">"
                + Html.escape(ago(Duration.between(at, now))) + "</time>";
    }

    static String ago(Duration d) {
        long s = Math.max(0, d.toSeconds());
        if (s < 60) return s + " s ago";
        if (s < 3600) return s / 60 + " min " + s % 60 + " s ago";
        if (s < 86400) return s / 3600 + " h " + s % 3600 / 60 + " min ago";
        return s / 86400 + " d " + s % 86400 / 3600 + " h ago";
    }

    /** A latency in milliseconds, to a sensible precision; "–" before the first sample. */
    static String millis(double ms) {
        if (Double.isNaN(ms)) return "–";
        if (ms == 0) return "0 ms";
        if (ms < 10) return String.format(Locale.ROOT, "%.2f ms", ms);
        if (ms < 100) return String.format(Locale.ROOT, "%.1f ms", ms);
        return String.format(Locale.ROOT, "%.0f ms", ms);
    }

    /** Bytes in IEC units. */
    static String bytes(long n) {
        if (n < 1024) return n + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
