package dev.ncro.route;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.ncro.upstream.Upstream;
import java.util.Optional;

/**
 * Remembers which upstream served the narinfo that named a file URL, so that the NAR comes
 * from the same cache (the same store path can have different NAR bytes elsewhere). Bounded,
 * least recently used first out. The persistent route store replaces this.
 */
public final class NarPins {
    private final Cache<String, Upstream> pins;

    public NarPins(long maxEntries) {
        pins = Caffeine.newBuilder().maximumSize(maxEntries).build();
    }

    /** @param url the narinfo's URL field, relative to the cache root */
    public void pin(String url, Upstream upstream) {
        pins.put(url, upstream);
    }

    public Optional<Upstream> find(String url) {
        return Optional.ofNullable(pins.getIfPresent(url));
    }
}
