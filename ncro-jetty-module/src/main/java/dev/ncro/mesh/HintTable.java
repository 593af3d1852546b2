package dev.ncro.mesh;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.ncro.upstream.Upstream;
import java.util.Optional;

/**
 * Routes peers announced, merged per hash, at most {@code maxEntries} (least recently used
 * out). The merge is the reference's: an expired entry gives way; otherwise the lower EMA
 * wins, and on a tie the newer {@code last_verified}; a claim for the same upstream always
 * refreshes the entry when it is newer. Only routes to configured upstreams get here.
 */
final class HintTable {
    record Hint(Upstream upstream, float emaMs, long lastVerified, long expiresAt) {}

    private final Cache<String, Hint> hints;

    HintTable(long maxEntries) {
        this.hints = Caffeine.newBuilder().maximumSize(maxEntries).executor(Runnable::run).build();
    }

    /** @return whether the table changed */
    boolean merge(String hash, Hint offered, long now) {
        boolean[] changed = {false};
        hints.asMap().compute(hash, (h, held) -> {
            if (held == null || held.expiresAt() <= now || better(offered, held)) {
                changed[0] = true;
                return offered;
            }
            return held;
        });
        return changed[0];
    }

    private static boolean better(Hint offered, Hint held) {
        if (offered.upstream().equals(held.upstream())) return offered.lastVerified() > held.lastVerified();
        if (offered.emaMs() != held.emaMs()) return offered.emaMs() < held.emaMs();
        return offered.lastVerified() > held.lastVerified();
    }

    Optional<Upstream> get(String hash, long now) {
        Hint h = hints.getIfPresent(hash);
        if (h == null) return Optional.empty();
        if (h.expiresAt() <= now) {
            hints.asMap().remove(hash, h);
            return Optional.empty();
        }
        return Optional.of(h.upstream());
    }

    /** Forgets the hint for {@code hash} if it still names {@code upstream}. */
    void refute(String hash, Upstream upstream) {
        hints.asMap().computeIfPresent(hash, (h, held) -> held.upstream().equals(upstream) ? null : held);
    }

    long size() {
        return hints.estimatedSize();
    }
}
