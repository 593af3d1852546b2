package dev.ncro.route;

/**
 * Estimates of the heap a route takes, in bytes, for the memory budget and the write queue.
 *
 * <p>The estimates assume a 64-bit JVM with compressed references (any heap under 32 GiB),
 * 12-byte object headers and 8-byte alignment, and Latin-1 strings (hashes, URLs and base
 * URLs are ASCII). They err high: a string shared between two structures (the hash is both
 * the front's key and the route's field) is counted in each that may keep it alive alone.
 */
final class HeapWeights {
    private HeapWeights() {}

    /**
     * One entry of a Caffeine cache bounded by weight with per-entry expiry: its node (key,
     * value, weight, access and expiry times, links in the access and timer-wheel orders, about
     * 64 bytes), the ConcurrentHashMap node that holds it (32), the map's table slot (4 to 8 at
     * its load factor) and its share of the frequency sketch (8), rounded up.
     */
    static final int CACHE_ENTRY = 128;
    /** A {@link Route} object: header, four references, three 8-byte numbers. */
    static final int ROUTE = 56;
    /** A queued write: the queue's node (16) and the op record holding it (16 to 32). */
    static final int QUEUED_OP = 48;
    /** A pending LRU touch: map node, table slot, boxed Long, and the hash when not shared. */
    static final int TOUCH = 64 + 72;
    /** A health snapshot: the record and its boxed/primitive fields, name aside. */
    static final int HEALTH_SNAPSHOT = 64;

    static long align(long bytes) {
        return (bytes + 7) & ~7L;
    }

    /** A String: the object (24) and its byte array (16-byte header plus one byte a char). */
    static long string(String s) {
        return s == null ? 0 : 24 + align(16 + s.length());
    }

    static long bytes(byte[] b) {
        return b == null ? 0 : align(16 + b.length);
    }

    /** A route with everything it references: the narinfo bytes dominate. */
    static long route(Route r) {
        return ROUTE + string(r.hash()) + string(r.upstream()) + string(r.narUrl()) + bytes(r.narinfo());
    }
}
