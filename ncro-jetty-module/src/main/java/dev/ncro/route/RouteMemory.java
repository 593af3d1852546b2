package dev.ncro.route;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.github.benmanes.caffeine.cache.Policy;
import com.github.benmanes.caffeine.cache.Ticker;
import java.time.Duration;
import java.time.InstantSource;
import java.util.concurrent.TimeUnit;

/**
 * Routes held in the heap, within a budget in bytes: the narinfo front (hash to route), the
 * NAR-URL index (file URL to hash) and the remembered not-founds.
 *
 * <p>Each cache is bounded by weight, each entry weighed by {@link HeapWeights}, so that an
 * upstream padding its narinfos to 64 KiB gets fewer routes held, never more heap. The budget
 * is split:
 * <ul>
 *   <li>{@value #FRONT_PERCENT} % to the front: it holds the narinfo bytes, and every warm hit
 *       it answers saves a database read;
 *   <li>{@value #INDEX_PERCENT} % to the NAR-URL index: Nix asks for a NAR seconds after its
 *       narinfo, so the index only needs to cover recent routes (about 300 bytes each, so
 *       6.4 MiB of the default budget covers some 20,000); older ones are found through the
 *       database's {@code nar_url} index;
 *   <li>{@value #NEGATIVE_PERCENT} % to the not-founds (about 200 bytes each): with a database
 *       they are held only for {@code in_memory_negative_ttl}, a burst's worth.
 * </ul>
 * No cache also holds more than {@code maxEntries} entries: each entry weighs at least its
 * share's 1/maxEntries, so the in-memory store never holds more routes than the database may.
 *
 * <p>Eviction runs on the thread that writes, not on {@code ForkJoinPool.commonPool()}: the
 * weighted size is within the budget when a put returns. Time is the injected clock's.
 */
final class RouteMemory {
    static final int FRONT_PERCENT = 80;
    static final int INDEX_PERCENT = 10;
    static final int NEGATIVE_PERCENT = 10;

    private final Cache<String, Route> front;
    private final Cache<String, String> hashByNarUrl;
    private final Cache<String, Boolean> negatives;

    /**
     * @param negativeTtl how long a not-found is held in memory
     * @param indexTtl how long a NAR URL stays indexed (the route TTL: it cannot outlive its route)
     */
    RouteMemory(long budget, long maxEntries, Duration negativeTtl, Duration indexTtl, InstantSource clock) {
        if (budget <= 0) throw new IllegalArgumentException("memory budget must be positive, got " + budget + " bytes");
        if (maxEntries <= 0) throw new IllegalArgumentException("maxEntries must be positive, got " + maxEntries);
        Ticker ticker = () -> TimeUnit.MILLISECONDS.toNanos(clock.millis());
        front = RouteMemory.<String, Route>share(budget, FRONT_PERCENT, maxEntries, ticker,
                        (hash, route) -> HeapWeights.CACHE_ENTRY + HeapWeights.route(route))
                .expireAfter(new UntilExpiry(clock))
                .build();
        hashByNarUrl = RouteMemory.<String, String>share(budget, INDEX_PERCENT, maxEntries, ticker,
                        (narUrl, hash) -> HeapWeights.CACHE_ENTRY + HeapWeights.string(narUrl) + HeapWeights.string(hash))
                .expireAfterWrite(indexTtl)
                .build();
        negatives = RouteMemory.<String, Boolean>share(budget, NEGATIVE_PERCENT, maxEntries, ticker,
                        (hash, b) -> HeapWeights.CACHE_ENTRY + HeapWeights.string(hash))
                .expireAfterWrite(negativeTtl)
                .build();
    }

    /**
     * A cache holding {@code percent} of the budget, by estimated heap bytes; no entry weighs
     * less than its share of {@code maxEntries}, so the count stays bounded too.
     */
    private static <K, V> Caffeine<K, V> share(long budget, int percent, long maxEntries, Ticker ticker,
            java.util.function.ToLongBiFunction<K, V> bytes) {
        long share = budget * percent / 100;
        long floor = share / maxEntries;
        return Caffeine.newBuilder()
                .executor(Runnable::run)
                .ticker(ticker)
                .maximumWeight(share)
                .weigher((K key, V value) -> weight(bytes.applyAsLong(key, value), floor));
    }

    private static int weight(long bytes, long floor) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(bytes, floor));
    }

    /** The live route for {@code hash}, if held. */
    Route route(String hash) {
        return front.getIfPresent(hash);
    }

    /** The live route held for this NAR URL, if its narinfo still names it. */
    Route routeForNar(String narUrl) {
        String hash = hashByNarUrl.getIfPresent(narUrl);
        if (hash == null) return null;
        Route route = front.getIfPresent(hash);
        return route != null && narUrl.equals(route.narUrl()) ? route : null;
    }

    /** Holds a route, replacing what was held for its hash and any not-found. */
    void put(Route route) {
        front.put(route.hash(), route);
        negatives.invalidate(route.hash());
        if (route.narUrl() != null) hashByNarUrl.put(route.narUrl(), route.hash());
    }

    boolean notFound(String hash) {
        return negatives.getIfPresent(hash) != null;
    }

    void putNotFound(String hash) {
        negatives.put(hash, Boolean.TRUE);
    }

    /** Forgets the not-found held for {@code hash}, if any. */
    void forgetNotFound(String hash) {
        negatives.invalidate(hash);
    }

    /** Forgets every not-found held. */
    void forgetNotFounds() {
        negatives.invalidateAll();
    }

    long routes() {
        return front.estimatedSize();
    }

    /** Estimated heap held by the three caches, in bytes; at most the budget. */
    long weightedSize() {
        return weighted(front.policy()) + weighted(hashByNarUrl.policy()) + weighted(negatives.policy());
    }

    private static long weighted(Policy<?, ?> policy) {
        return policy.eviction().map(e -> e.weightedSize().orElse(0)).orElse(0L);
    }

    /** Caffeine expiry that follows each route's own {@code expiresAt}. */
    private static final class UntilExpiry implements Expiry<String, Route> {
        private final InstantSource clock;

        UntilExpiry(InstantSource clock) {
            this.clock = clock;
        }

        private long remaining(Route route) {
            return TimeUnit.MILLISECONDS.toNanos(Math.max(0, route.expiresAt() - clock.millis()));
        }

        @Override
        public long expireAfterCreate(String key, Route route, long currentTime) {
            return remaining(route);
        }

        @Override
        public long expireAfterUpdate(String key, Route route, long currentTime, long currentDuration) {
            return remaining(route);
        }

        @Override
        public long expireAfterRead(String key, Route route, long currentTime, long currentDuration) {
            return currentDuration;
        }
    }
}
