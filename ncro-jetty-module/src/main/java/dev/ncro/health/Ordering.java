package dev.ncro.health;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;
import java.util.function.ToIntFunction;

/**
 * Preference among upstreams of one tier: by EMA latency, except that latencies within
 * {@value #TIE_PERCENT}% of each other count as a tie, which the lower {@code tieBreak} wins
 * (ncro passes the configuration position: within a tier every priority is the same, so the
 * operator's order decides between two caches that are about as fast). Upstreams without a
 * sample yet sort after measured ones.
 */
public final class Ordering {
    public static final int TIE_PERCENT = 10;

    private Ordering() {}

    public static <T> List<T> byLatency(List<T> upstreams, ToDoubleFunction<T> emaMs, ToIntFunction<T> tieBreak) {
        List<T> sorted = new ArrayList<>(upstreams);
        // insertion sort with the tie rule: not a total order (ties are not transitive), so
        // Collections.sort's contract would not hold; tiers are small
        for (int i = 1; i < sorted.size(); i++) {
            T item = sorted.get(i);
            int j = i - 1;
            while (j >= 0 && before(item, sorted.get(j), emaMs, tieBreak)) {
                sorted.set(j + 1, sorted.get(j));
                j--;
            }
            sorted.set(j + 1, item);
        }
        return sorted;
    }

    static <T> boolean before(T a, T b, ToDoubleFunction<T> emaMs, ToIntFunction<T> tieBreak) {
        double la = emaMs.applyAsDouble(a);
        double lb = emaMs.applyAsDouble(b);
        if (Double.isNaN(la) || Double.isNaN(lb)) {
            if (Double.isNaN(la) != Double.isNaN(lb)) return Double.isNaN(lb);
            return tieBreak.applyAsInt(a) < tieBreak.applyAsInt(b);
        }
        double low = Math.min(la, lb);
        if (Math.abs(la - lb) <= low * TIE_PERCENT / 100.0) return tieBreak.applyAsInt(a) < tieBreak.applyAsInt(b);
        return la < lb;
    }
}
