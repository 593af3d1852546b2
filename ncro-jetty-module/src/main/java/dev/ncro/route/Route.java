package dev.ncro.route;

/**
 * A remembered routing decision: which upstream answered {@code <hash>.narinfo}, with the
 * narinfo bytes it sent (served as they are until the route expires).
 *
 * @param upstream the upstream's base URL, as configured
 * @param narUrl the narinfo's URL field (relative to the cache root), or null
 * @param latencyMs how long the winning answer took when the decision was made
 * @param createdAt when the decision was made, epoch milliseconds
 * @param expiresAt after this instant (epoch ms) the route is gone
 */
public record Route(String hash, String upstream, byte[] narinfo, String narUrl, double latencyMs,
        long createdAt, long expiresAt) {}
