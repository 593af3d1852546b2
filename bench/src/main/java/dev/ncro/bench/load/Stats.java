package dev.ncro.bench.load;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/** Counts, outcomes and latency percentiles of the samples a predicate selects. */
final class Stats {
    final long count;
    final double[] sortedMs;
    final Map<Integer, Long> outcomes = new TreeMap<>((a, b) -> a >= 0 && b >= 0 ? Integer.compare(a, b) : Integer.compare(b, a));
    final long bodyBytes;

    private Stats(long count, double[] sortedMs, long bodyBytes) {
        this.count = count;
        this.sortedMs = sortedMs;
        this.bodyBytes = bodyBytes;
    }

    /** Selects samples by start time window [fromMs, toMs) and kind (null: every kind). */
    static Stats of(List<Samples> all, int fromMs, int toMs, Workload.Kind kind) {
        return of(all, (s, i) -> s.startMs(i) >= fromMs && s.startMs(i) < toMs && (kind == null || s.kind(i) == kind));
    }

    interface Selector {
        boolean test(Samples s, int i);
    }

    static Stats of(List<Samples> all, Selector selector) {
        int n = 0;
        for (Samples s : all) n += s.size();
        double[] ms = new double[n];
        int k = 0;
        long bytes = 0;
        Map<Integer, Long> outcomes = new TreeMap<>();
        for (Samples s : all) {
            for (int i = 0; i < s.size(); i++) {
                if (!selector.test(s, i)) continue;
                ms[k++] = s.latencyMs(i);
                outcomes.merge((int) s.outcome(i), 1L, Long::sum);
                if (s.outcome(i) == 200) bytes += s.bodyBytes(i);
            }
        }
        double[] sorted = Arrays.copyOf(ms, k);
        Arrays.sort(sorted);
        Stats stats = new Stats(k, sorted, bytes);
        stats.outcomes.putAll(outcomes);
        return stats;
    }

    long outcome(int code) {
        return outcomes.getOrDefault(code, 0L);
    }

    long matching(IntPredicate code) {
        return outcomes.entrySet().stream().filter(e -> code.test(e.getKey())).mapToLong(Map.Entry::getValue).sum();
    }

    /** Nearest-rank percentile, NaN when empty. */
    double pct(double p) {
        if (sortedMs.length == 0) return Double.NaN;
        int i = (int) Math.ceil(p / 100.0 * sortedMs.length) - 1;
        return sortedMs[Math.max(0, Math.min(sortedMs.length - 1, i))];
    }

    double max() {
        return sortedMs.length == 0 ? Double.NaN : sortedMs[sortedMs.length - 1];
    }

    /** "200×12,345  504×3  short body×1". */
    String outcomeText() {
        if (outcomes.isEmpty()) return "-";
        StringBuilder sb = new StringBuilder();
        outcomes.forEach((code, n) -> {
            if (sb.length() > 0) sb.append("  ");
            sb.append(Samples.outcomeName(code)).append('×').append(String.format("%,d", n));
        });
        return sb.toString();
    }
}
