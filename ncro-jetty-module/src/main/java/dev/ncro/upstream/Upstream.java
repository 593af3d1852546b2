package dev.ncro.upstream;

import java.net.URI;

/**
 * One configured binary cache.
 *
 * @param base the cache root, without a trailing slash
 * @param priority lower is preferred; equal priorities race as one tier
 * @param order position in the configuration, the tie-breaker within a tier
 */
public record Upstream(URI base, int priority, int order) {
    public Upstream {
        String s = base.toString();
        while (s.endsWith("/")) s = s.substring(0, s.length() - 1);
        base = URI.create(s);
    }

    /** The URL of a file below this cache's root; {@code relative} keeps its raw query. */
    public URI resolve(String relative) {
        return URI.create(base + "/" + relative);
    }

    /** Name for logs, errors and (later) metric labels: never carries credentials. */
    public String name() {
        return base.getScheme() + "://" + base.getRawAuthority() + base.getRawPath();
    }

    @Override
    public String toString() {
        return name();
    }
}
