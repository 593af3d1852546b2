package dev.ncro.web;

import dev.ncro.api.Status;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The status page's latency chart: each upstream's latency EMA after each of its recent
 * probes, one line per upstream, as inline SVG (no script, no external asset, nothing the
 * page's Content-Security-Policy would block). Time runs left to right over the span the
 * samples cover; a failed probe is a red ring on its upstream's line (at the baseline if the
 * upstream never answered). Series colours are the {@code s0…s7} classes of the page.
 */
final class LatencyChart {
    static final int WIDTH = 760;
    static final int HEIGHT = 220;
    /** Room for the y-axis labels on the left and the time labels below. */
    private static final int LEFT = 56;
    private static final int RIGHT = 12;
    private static final int TOP = 12;
    private static final int BOTTOM = 28;
    private static final int PLOT_W = WIDTH - LEFT - RIGHT;
    private static final int PLOT_H = HEIGHT - TOP - BOTTOM;
    /** As many series colours as the page's stylesheet defines; upstreams beyond repeat them. */
    static final String[] COLOURS = {"#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569"};
    private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss", Locale.ROOT).withZone(ZoneOffset.UTC);

    private LatencyChart() {}

    static String colour(int index) {
        return COLOURS[index % COLOURS.length];
    }

    /** The chart for {@code upstreams}, in their order (which sets their colours). */
    static String svg(List<Status.Upstream> upstreams) {
        StringBuilder svg = new StringBuilder(4096);
        svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 ").append(WIDTH).append(' ')
                .append(HEIGHT).append("\" width=\"").append(WIDTH).append("\" height=\"").append(HEIGHT)
                .append("\" role=\"img\" aria-labelledby=\"chart-title\">")
                .append("<title id=\"chart-title\">latency EMA of each upstream after its recent probes</title>");
        long from = Long.MAX_VALUE;
        long to = Long.MIN_VALUE;
        double max = 0;
        int samples = 0;
        for (Status.Upstream u : upstreams) {
            for (Status.LatencySample s : u.latency()) {
                samples++;
                from = Math.min(from, s.at().toEpochMilli());
                to = Math.max(to, s.at().toEpochMilli());
                if (!Double.isNaN(s.emaMs())) max = Math.max(max, s.emaMs());
            }
        }
        frame(svg);
        if (samples == 0) {
            svg.append("<text class=\"empty\" x=\"").append(LEFT + PLOT_W / 2).append("\" y=\"").append(TOP + PLOT_H / 2)
                    .append("\" text-anchor=\"middle\">no probes yet: the chart fills in as upstreams are probed</text></svg>");
            return svg.toString();
        }
        double top = niceCeiling(max);
        yAxis(svg, top);
        xAxis(svg, from, to);
        for (int i = 0; i < upstreams.size(); i++) {
            series(svg, upstreams.get(i), colour(i), from, to, top);
        }
        return svg.append("</svg>").toString();
    }

    private static void frame(StringBuilder svg) {
        svg.append("<rect x=\"").append(LEFT).append("\" y=\"").append(TOP).append("\" width=\"").append(PLOT_W)
                .append("\" height=\"").append(PLOT_H).append("\" fill=\"#ffffff\" stroke=\"#d4d4d8\"/>");
    }

    /** Four grid lines with their latency, from 0 at the baseline to {@code top}. */
    private static void yAxis(StringBuilder svg, double top) {
        for (int i = 0; i <= 4; i++) {
            double value = top * i / 4;
            double y = TOP + PLOT_H - PLOT_H * i / 4.0;
            if (i > 0) {
                svg.append("<line x1=\"").append(LEFT).append("\" x2=\"").append(LEFT + PLOT_W).append("\" y1=\"")
                        .append(fmt(y)).append("\" y2=\"").append(fmt(y)).append("\" stroke=\"#ececf0\"/>");
            }
            svg.append("<text class=\"axis\" x=\"").append(LEFT - 6).append("\" y=\"").append(fmt(y + 4))
                    .append("\" text-anchor=\"end\">").append(axisLabel(value)).append("</text>");
        }
    }

    /** The span's first and last instants (UTC) under the plot's two ends. */
    private static void xAxis(StringBuilder svg, long from, long to) {
        int y = TOP + PLOT_H + 18;
        svg.append("<text class=\"axis\" x=\"").append(LEFT).append("\" y=\"").append(y).append("\" text-anchor=\"start\">")
                .append(CLOCK.format(Instant.ofEpochMilli(from))).append(" UTC</text>");
        if (to > from) {
            svg.append("<text class=\"axis\" x=\"").append(LEFT + PLOT_W).append("\" y=\"").append(y)
                    .append("\" text-anchor=\"end\">").append(CLOCK.format(Instant.ofEpochMilli(to))).append(" UTC</text>");
        }
    }

    /**
     * One upstream's line: consecutive samples with a latency are joined; a sample without
     * one (never answered) breaks the line. A lone point is still drawn, as a dot.
     */
    private static void series(StringBuilder svg, Status.Upstream upstream, String colour, long from, long to, double top) {
        svg.append("<g class=\"series\" data-upstream=\"").append(Html.escape(upstream.url())).append("\"><title>")
                .append(Html.escape(upstream.url())).append("</title>");
        List<String> run = new ArrayList<>();
        for (Status.LatencySample s : upstream.latency()) {
            double x = x(s.at().toEpochMilli(), from, to);
            if (Double.isNaN(s.emaMs())) {
                line(svg, run, colour);
                run.clear();
            } else {
                run.add(fmt(x) + "," + fmt(y(s.emaMs(), top)));
            }
        }
        line(svg, run, colour);
        for (Status.LatencySample s : upstream.latency()) {
            double x = x(s.at().toEpochMilli(), from, to);
            double y = Double.isNaN(s.emaMs()) ? TOP + PLOT_H : y(s.emaMs(), top);
            if (s.ok()) {
                svg.append("<circle cx=\"").append(fmt(x)).append("\" cy=\"").append(fmt(y))
                        .append("\" r=\"2.5\" fill=\"").append(colour).append("\"/>");
            } else {
                svg.append("<circle class=\"failed\" cx=\"").append(fmt(x)).append("\" cy=\"").append(fmt(y))
                        .append("\" r=\"4\" fill=\"#ffffff\" stroke=\"#dc2626\" stroke-width=\"2\"/>");
            }
        }
        svg.append("</g>");
    }

    private static void line(StringBuilder svg, List<String> points, String colour) {
        if (points.size() < 2) return; // a single point is its dot
        svg.append("<polyline fill=\"none\" stroke=\"").append(colour)
                .append("\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"").append(String.join(" ", points))
                .append("\"/>");
    }

    /** Time to x; a span of one instant is drawn in the middle. */
    private static double x(long at, long from, long to) {
        if (to == from) return LEFT + PLOT_W / 2.0;
        return LEFT + PLOT_W * (double) (at - from) / (to - from);
    }

    private static double y(double ms, double top) {
        return TOP + PLOT_H - PLOT_H * Math.min(ms, top) / top;
    }

    /** The smallest of 1, 2, 2.5, 5 × 10ⁿ ms at or above {@code max}, so grid lines read well; at least 1 ms. */
    static double niceCeiling(double max) {
        if (!(max > 1)) return 1;
        double magnitude = Math.pow(10, Math.floor(Math.log10(max)));
        for (double step : new double[] {1, 2, 2.5, 5, 10}) {
            if (step * magnitude >= max) return step * magnitude;
        }
        return 10 * magnitude;
    }

    /** A grid line's latency, as short as it is exact: {@code 0 ms}, {@code 2.5 ms}, {@code 50 ms}. */
    static String axisLabel(double ms) {
        return java.math.BigDecimal.valueOf(ms).stripTrailingZeros().toPlainString() + " ms";
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }
}
