package dev.ncro.upstream;

import java.net.URI;
import java.time.Duration;

/**
 * One configured binary cache.
 *
 * @param base the cache root, without a trailing slash
 * @param priority lower is preferred; equal priorities race as one tier
 * @param order position in the configuration, the tie-breaker within a tier
 * @param connectTimeout how long connecting to it may take
 * @param responseTimeout how long one of its answers may take (narinfo: within the race
 *     deadline; NAR: the stall limit), or null for the global settings
 * @param firstByteTimeout how long a NAR request waits for its response head before the next
 *     upstream is tried
 * @param redirectHosts hosts (lower case) it may redirect to even when they resolve to
 *     loopback, link-local, private or unique-local addresses
 */
public record Upstream(URI base, int priority, int order, Duration connectTimeout, Duration responseTimeout,
        Duration firstByteTimeout, java.util.Set<String> redirectHosts) {
    public Upstream(URI base, int priority, int order) {
        this(base, priority, order, dev.ncro.config.Defaults.CONNECT_TIMEOUT, null);
    }

    public Upstream(URI base, int priority, int order, Duration connectTimeout, Duration responseTimeout) {
        this(base, priority, order, connectTimeout, responseTimeout, dev.ncro.config.Defaults.FIRST_BYTE_TIMEOUT,
                java.util.Set.of());
    }

    /** {@code fallback}, or this upstream's response timeout when it is shorter. */
    public Duration answerWithin(Duration fallback) {
        return responseTimeout == null || responseTimeout.compareTo(fallback) > 0 ? fallback : responseTimeout;
    }

    /** The port connections go to: the URL's, or the scheme's default. */
    public int port() {
        return base.getPort() >= 0 ? base.getPort() : base.getScheme().equals("https") ? 443 : 80;
    }

    /** scheme://host:port with the default port filled in: how connections to it are pooled. */
    public String endpoint() {
        return endpoint(base.getScheme(), base.getHost(), port());
    }

    /** The pool key of an endpoint; hosts compare without case. */
    public static String endpoint(String scheme, String host, int port) {
        return scheme + "://" + host.toLowerCase(java.util.Locale.ROOT) + ":" + port;
    }

    public Upstream {
        redirectHosts = java.util.Set.copyOf(redirectHosts);
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
