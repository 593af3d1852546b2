package dev.ncro.engine;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.ncro.config.Defaults;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.upstream.Upstream;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The order in which a NAR request tries upstreams. First the upstream whose narinfo named
 * the URL (the bytes the client expects: the same path may be compressed differently
 * elsewhere), unless it is Down, cooling down after a failure, or has just failed this very
 * NAR; then every other usable upstream in preference order (the same relative URL: caches
 * name NARs by content, and Nix checks the NarHash, so a wrong guess costs a retry, never a
 * corrupt store); last, the ones passed over, so that a NAR somebody can serve is never
 * refused.
 *
 * <p>A NAR that failed on an upstream (no head in time, 5xx, reset before or during the body)
 * is remembered for {@link Defaults#NAR_FAILURE_MEMORY}, so Nix's retry of it goes elsewhere
 * first; that upstream also cools down for NARs (until it serves one whole again, or for
 * {@code upstream_cooldown}), so other NARs prefer the others meanwhile — whatever its
 * narinfos and {@code /nix-cache-info} say, which tell nothing about NARs.
 */
final class NarRouting {
    private final Function<Upstream, UpstreamHealth> health;
    private final Supplier<List<Upstream>> preference;
    private final Duration cooldown;
    private final Cache<String, Set<Upstream>> failedNars;
    /** The upstream whose bytes of each NAR last went to a client: a resumed part continues them. */
    private final Cache<String, Upstream> streamedFrom;

    private final java.util.function.Consumer<Upstream> suspect;

    /** @param suspect told of every failure (probes the upstream soon) */
    NarRouting(Function<Upstream, UpstreamHealth> health, Supplier<List<Upstream>> preference, Duration cooldown,
            InstantSource clock, java.util.function.Consumer<Upstream> suspect) {
        this.suspect = suspect;
        this.health = health;
        this.preference = preference;
        this.cooldown = cooldown;
        this.failedNars = recent(clock);
        this.streamedFrom = recent(clock);
    }

    /** A per-NAR memory of {@link Defaults#NAR_FAILURE_MEMORY}, on the engine's clock. */
    private static <V> Cache<String, V> recent(InstantSource clock) {
        return Caffeine.newBuilder()
                .ticker(() -> TimeUnit.MILLISECONDS.toNanos(clock.millis()))
                .expireAfterWrite(Defaults.NAR_FAILURE_MEMORY)
                .maximumSize(10_000)
                .build();
    }

    /** {@code upstream}'s answer to a GET of {@code target} (whole or a part) went to a client. */
    void streaming(String target, Upstream upstream) {
        streamedFrom.put(target, upstream);
    }

    /** The upstream whose bytes of {@code target} last went to a client, or null. */
    Upstream streamedFrom(String target) {
        return streamedFrom.getIfPresent(target);
    }

    /**
     * {@code upstream} answered {@code target} with something that contradicts its narinfo
     * (a length other than FileSize): the others first for this NAR, but no cooldown and no
     * probe (the upstream is not failing).
     */
    void contradicted(String target, Upstream upstream) {
        failedNars.asMap().computeIfAbsent(target, t -> ConcurrentHashMap.newKeySet()).add(upstream);
    }

    /** @param home the upstream whose narinfo named {@code target}, or null when unknown */
    List<Upstream> candidates(String target, Upstream home) {
        Set<Upstream> failed = failedNars.getIfPresent(target);
        List<Upstream> order = preference.get();
        List<Upstream> first = new ArrayList<>(order.size());
        List<Upstream> last = new ArrayList<>(order.size());
        if (home != null) (usable(home, failed) ? first : last).add(home);
        for (Upstream u : order) {
            if (u.equals(home)) continue;
            (usable(u, failed) ? first : last).add(u);
        }
        first.addAll(last);
        return first;
    }

    private boolean usable(Upstream u, Set<Upstream> failed) {
        return health.apply(u).narUsable() && (failed == null || !failed.contains(u));
    }

    /** {@code upstream} failed to serve {@code target}: try it last for a while. */
    void failed(String target, Upstream upstream) {
        contradicted(target, upstream); // tried last for this NAR, and besides:
        health.apply(upstream).narCooldown(cooldown);
        suspect.accept(upstream);
    }

    /** {@code upstream} served a NAR whole: NARs may go to it first again. */
    void served(Upstream upstream) {
        health.apply(upstream).narServed();
    }
}
