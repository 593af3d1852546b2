package dev.ncro.bench.load;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What the ncro phase of the load run did, and how it compares with the peer. */
final class Report {
    private static final int WINDOW_MS = 5_000;

    private final int clients;
    private final int seconds;
    private final int warmupSeconds;
    private final double frozenAt;
    private final ClientLoops.Result result;
    private final List<Monitor.Tick> ticks;
    private final long hwmKiB;
    private final String heap;
    private final String metrics;
    private final List<Map.Entry<String, Long>> complaints;
    private final int hangingAtA;
    private final int freezeMs;
    private final int endMs;

    Report(int clients, int seconds, int warmupSeconds, double frozenAt, ClientLoops.Result result,
            List<Monitor.Tick> ticks, long hwmKiB, String heap, String metrics, List<Map.Entry<String, Long>> complaints,
            int hangingAtA) {
        this.clients = clients;
        this.seconds = seconds;
        this.warmupSeconds = warmupSeconds;
        this.frozenAt = frozenAt;
        this.result = result;
        this.ticks = ticks;
        this.hwmKiB = hwmKiB;
        this.heap = heap;
        this.metrics = metrics;
        this.complaints = complaints;
        this.hangingAtA = hangingAtA;
        this.freezeMs = Double.isNaN(frozenAt) ? Integer.MAX_VALUE : (int) Math.round(frozenAt * 1000);
        this.endMs = seconds * 1000;
    }

    /** Requests for paths that exist that did not get a whole, correct 200. */
    private long errors(int fromMs, int toMs) {
        long n = 0;
        for (Workload.Kind k : Workload.Kind.values()) {
            if (k.exists()) n += Stats.of(result.samples(), fromMs, toMs, k).matching(c -> c != 200);
        }
        return n;
    }

    private long false404s(int fromMs, int toMs) {
        long n = 0;
        for (Workload.Kind k : Workload.Kind.values()) {
            if (k.exists()) n += Stats.of(result.samples(), fromMs, toMs, k).outcome(404);
        }
        return n;
    }

    void print() {
        List<Samples> samples = result.samples();
        Stats measured = Stats.of(samples, 0, endMs, null);
        Stats warmup = Stats.of(samples, Integer.MIN_VALUE, 0, null);
        System.out.printf("%nncro under load: %,d requests in %d s (%,.0f/s), NAR bytes %,.0f MiB (%.0f MiB/s);"
                + " warm-up %,d requests; A frozen at %.1f s%n",
                measured.count, seconds, measured.count / (double) seconds, measured.bodyBytes / 1048576.0,
                Stats.of(samples, (s, i) -> s.startMs(i) >= 0 && s.startMs(i) < endMs && s.kind(i) == Workload.Kind.NAR)
                        .bodyBytes / 1048576.0 / seconds,
                warmup.count, frozenAt);
        System.out.printf("  %-13s %-13s %9s %8s %9s %9s %9s  %s%n", "kind", "phase", "requests", "per s", "p50 ms",
                "p99 ms", "max ms", "outcomes");
        for (Workload.Kind kind : Workload.Kind.values()) {
            row(kind.label, "before freeze", Stats.of(samples, 0, Math.min(freezeMs, endMs), kind), Math.min(freezeMs, endMs));
            row("", "after freeze", Stats.of(samples, Math.min(freezeMs, endMs), endMs, kind), endMs - Math.min(freezeMs, endMs));
        }
        row("all kinds", "warm-up", warmup, warmupSeconds * 1000);
        row("", "before freeze", Stats.of(samples, 0, Math.min(freezeMs, endMs), null), Math.min(freezeMs, endMs));
        row("", "after freeze", Stats.of(samples, Math.min(freezeMs, endMs), endMs, null), endMs - Math.min(freezeMs, endMs));
        System.out.println("  (latency: from sending the request to the last body byte, every request counted, failed ones too;"
                + " phase by start time; the warm-up begins with every client asking a cold narinfo, as nothing is warm yet)");

        long errors = errors(Integer.MIN_VALUE, endMs);
        long false404 = false404s(Integer.MIN_VALUE, endMs);
        System.out.printf("%n  errors for paths held elsewhere (non-200, broken or short body, for a path B holds): %,d"
                + " (warm-up %,d, before freeze %,d, after %,d)  -> %s%n",
                errors, errors(Integer.MIN_VALUE, 0), errors(0, freezeMs), errors(freezeMs, endMs), errors == 0 ? "MET (0)" : "MISSED");
        System.out.printf("  false 404s (404 for a path that exists): %,d  -> %s%n", false404, false404 == 0 ? "MET (0)" : "MISSED");
        Stats misses = Stats.of(samples, (s, i) -> s.startMs(i) < endMs && s.kind(i) == Workload.Kind.NARINFO_MISS);
        Stats missesAfter = Stats.of(samples, freezeMs, endMs, Workload.Kind.NARINFO_MISS);
        System.out.printf("  misses (no upstream has the hash): %,d, answered 404: %,d; otherwise: %s%n", misses.count,
                misses.outcome(404), misses.count == misses.outcome(404) ? "none" : nonNotFound(misses));
        if (missesAfter.count > missesAfter.outcome(404)) {
            System.out.println("    a miss is 404 only when every upstream said not-found or is Down as confirmed by a probe"
                    + " of this run; a frozen A is neither until probes mark it Down, so its misses wait for the race deadline");
        }

        long maxRss = ticks.stream().filter(t -> t.atMs() >= 0).mapToLong(Monitor.Tick::rssKiB).max().orElse(-1);
        System.out.printf("%n  ncro's memory: heap limit -Xmx%s; resident set max %.0f MiB (VmHWM, start-up included),"
                + " max sampled VmRSS during the measured load %.0f MiB%n", heap, hwmKiB / 1024.0, maxRss / 1024.0);
        System.out.printf("  clients: %,d connections opened for %d loops, %,d stale keep-alive retries, %d loops stuck at the end%s%n",
                result.connects(), clients, result.staleRetries(), result.stuckLoops(),
                result.countBoundHit() ? "; STOPPED BY THE REQUEST COUNT BOUND" : "");
        System.out.printf("  requests ncro sent to A after the freeze (none answered): %,d%n", hangingAtA);
        printStates();
        printTimeline();
        printFailures();
        if (!complaints.isEmpty()) {
            System.out.println("  ncro's log, WARN/ERROR lines by message (hashes and numbers masked as #), top 8:");
            complaints.stream().limit(8).forEach(e -> System.out.printf("    %,7d  %s%n", e.getValue(), e.getKey()));
        }
        System.out.print("  ncro's /metrics at the end (selected):\n" + metrics);
    }

    private static String nonNotFound(Stats s) {
        StringBuilder sb = new StringBuilder();
        s.outcomes.forEach((code, n) -> {
            if (code != 404) sb.append(sb.length() > 0 ? "  " : "").append(Samples.outcomeName(code)).append('×').append(String.format("%,d", n));
        });
        return sb.toString();
    }

    private static void row(String kind, String phase, Stats s, int windowMs) {
        System.out.printf("  %-13s %-13s %,9d %,8.0f %9.2f %9.2f %9.2f  %s%n", kind, phase, s.count,
                s.count / Math.max(0.001, windowMs / 1000.0), s.pct(50), s.pct(99), s.max(), s.outcomeText());
    }

    /** When the watched upstream's state, as /health reported it, changed. */
    private void printStates() {
        StringBuilder sb = new StringBuilder();
        String last = null;
        for (Monitor.Tick t : ticks) {
            if (t.upstreamState() == null || t.upstreamState().equals(last)) continue;
            last = t.upstreamState();
            if (sb.length() > 0) sb.append(", ");
            sb.append(last).append(" from ").append(String.format("%.1f s", t.atMs() / 1000.0));
        }
        System.out.println("  A as ncro's /health saw it (every second): " + (sb.length() == 0 ? "never read" : sb));
    }

    private void printTimeline() {
        System.out.printf("  by %d s window:%n", WINDOW_MS / 1000);
        System.out.printf("    %-9s %8s %8s %10s %10s %10s %10s %9s %9s %11s%n", "t s", "req/s", "NAR MiB/s", "p99 cold",
                "p99 warm", "p99 NAR", "max any", "not-ok*", "RSS MiB", "streams**");
        for (int from = 0; from < endMs; from += WINDOW_MS) {
            int to = Math.min(endMs, from + WINDOW_MS);
            int f = from;
            List<Samples> samples = result.samples();
            Stats all = Stats.of(samples, from, to, null);
            Stats nar = Stats.of(samples, from, to, Workload.Kind.NAR);
            long notOk = errors(from, to) + Stats.of(samples, from, to, Workload.Kind.NARINFO_MISS).matching(c -> c != 404);
            long rss = ticks.stream().filter(t -> t.atMs() >= f && t.atMs() < to).mapToLong(Monitor.Tick::rssKiB).max().orElse(-1);
            int open = ticks.stream().filter(t -> t.atMs() >= f && t.atMs() < to).mapToInt(Monitor.Tick::streamsInFlight).max().orElse(-1);
            int queued = ticks.stream().filter(t -> t.atMs() >= f && t.atMs() < to).mapToInt(Monitor.Tick::streamsQueued).max().orElse(-1);
            System.out.printf("    %-9s %,8.0f %8.1f %10.2f %10.2f %10.2f %10.2f %,9d %9.0f %11s%s%n", from / 1000 + "-" + to / 1000,
                    all.count / ((to - from) / 1000.0), nar.bodyBytes / 1048576.0 / ((to - from) / 1000.0),
                    Stats.of(samples, from, to, Workload.Kind.NARINFO_COLD).pct(99),
                    Stats.of(samples, from, to, Workload.Kind.NARINFO_WARM).pct(99), nar.pct(99), all.max(), notOk,
                    rss / 1024.0, open + "/" + queued, from <= freezeMs && freezeMs < to ? "  <- A freezes" : "");
        }
        System.out.println("    * not-ok: requests for existing paths without a whole 200, plus misses not answered 404");
        System.out.println("    ** ncro's NAR streams open / queued for a per_upstream_max_streams slot (most seen in a once-a-second /metrics read)");
    }

    private void printFailures() {
        List<Samples.Failure> existing = new ArrayList<>();
        List<Samples.Failure> misses = new ArrayList<>();
        for (Samples s : result.samples()) {
            for (Samples.Failure f : s.failures) (f.kind().exists() ? existing : misses).add(f);
        }
        existing.sort((x, y) -> Double.compare(x.atSeconds(), y.atSeconds()));
        misses.sort((x, y) -> Double.compare(x.atSeconds(), y.atSeconds()));
        if (!existing.isEmpty()) {
            System.out.println("  failed requests for existing paths (first 12 by time; up to 20 kept per client):");
            existing.stream().limit(12).forEach(Report::printFailure);
        }
        if (!misses.isEmpty()) {
            System.out.println("  misses not answered 404 (first 3):");
            misses.stream().limit(3).forEach(Report::printFailure);
        }
    }

    private static void printFailure(Samples.Failure f) {
        System.out.printf("    t=%.3f s %-12s %s -> %s after %.0f ms: %s%n", f.atSeconds(), f.kind().label, f.target(),
                f.outcome(), f.latencyMs(), f.detail());
    }

    /** The peer phase's table and ncro's p99 against it, kind by kind. */
    static void printComparison(Report ncro, ClientLoops.Result direct, int directSeconds) {
        List<Samples> d = direct.samples();
        int endMs = directSeconds * 1000;
        Stats total = Stats.of(d, 0, endMs, null);
        System.out.printf("  %,d requests in %d s (%,.0f/s), NAR %.0f MiB/s; %,d connections, %,d stale retries%n",
                total.count, directSeconds, total.count / (double) directSeconds,
                Stats.of(d, 0, endMs, Workload.Kind.NAR).bodyBytes / 1048576.0 / directSeconds, direct.connects(),
                direct.staleRetries());
        System.out.printf("  %-13s %9s %9s %9s %9s  %s%n", "kind", "requests", "p50 ms", "p99 ms", "max ms", "outcomes");
        for (Workload.Kind kind : Workload.Kind.values()) {
            Stats s = Stats.of(d, 0, endMs, kind);
            System.out.printf("  %-13s %,9d %9.2f %9.2f %9.2f  %s%n", kind.label, s.count, s.pct(50), s.pct(99), s.max(),
                    s.outcomeText());
        }
        System.out.printf("  %-13s %,9d %9.2f %9.2f %9.2f  %s%n", "all kinds", total.count, total.pct(50), total.pct(99),
                total.max(), total.outcomeText());
        System.out.println("  (on B, cold and warm are the same request: B has no memory of what was asked)");

        System.out.println("\np99 ratio, ncro / B-direct (same machine, same clients and mix; < 1: ncro answered faster than"
                + " the healthy cache alone would):");
        System.out.printf("  %-13s %14s %14s%n", "kind", "before freeze", "after freeze");
        for (Workload.Kind kind : Workload.Kind.values()) ratioRow(ncro, kind.label, Stats.of(d, 0, endMs, kind), kind);
        ratioRow(ncro, "all kinds", total, null);
        System.out.println("  B-direct is what the same clients would see using only B, the cache that never froze. Warm narinfos"
                + " come from ncro's memory (below 1 is ncro's gain); cold narinfos, misses and NARs pay ncro's extra hop,"
                + " its limits and, after the freeze, its waits for A.");
    }

    private static void ratioRow(Report ncro, String label, Stats direct, Workload.Kind kind) {
        int freeze = Math.min(ncro.freezeMs, ncro.endMs);
        Stats before = Stats.of(ncro.result.samples(), 0, freeze, kind);
        Stats after = Stats.of(ncro.result.samples(), freeze, ncro.endMs, kind);
        System.out.printf("  %-13s %13.2f× %13.2f×   (ncro p99 %.2f / %.2f ms, B-direct p99 %.2f ms)%n", label,
                before.pct(99) / direct.pct(99), after.pct(99) / direct.pct(99), before.pct(99), after.pct(99), direct.pct(99));
    }
}
