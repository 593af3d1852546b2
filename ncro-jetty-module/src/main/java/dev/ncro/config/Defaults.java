package dev.ncro.config;

import java.time.Duration;

/**
 * Every default of ncro, in one place. The embedded default configuration
 * ({@code ncro-default.yaml}), the {@code ncro.mod} ini-template and docs/configuration.md agree
 * with these constants.
 */
public final class Defaults {
    private Defaults() {}

    public static final String LISTEN = ":8080";
    public static final Duration READ_TIMEOUT = Duration.ofSeconds(30);
    /** How long a NAR stream may make no progress; Nix's own stalled-download-timeout. */
    public static final Duration WRITE_TIMEOUT = Duration.ofSeconds(300);
    /** Priority advertised in /nix-cache-info; cache.nixos.org says 40, so ncro is asked first. */
    public static final int CACHE_PRIORITY = 30;

    public static final int UPSTREAM_PRIORITY = 50;
    public static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    /**
     * How long a NAR request waits for the response head of one upstream before it moves on
     * to the next: a frozen upstream costs a client this much, never {@link #WRITE_TIMEOUT}.
     */
    public static final Duration FIRST_BYTE_TIMEOUT = Duration.ofSeconds(10);
    /** Redirect hops followed for one narinfo or NAR request (caches redirect NARs to CDNs). */
    public static final int MAX_REDIRECTS = 5;

    public static final String DB_PATH = "ncro.db";
    public static final long MAX_ENTRIES = 100_000;
    public static final Duration TTL = Duration.ofHours(1);
    public static final Duration NEGATIVE_TTL = Duration.ofMinutes(10);
    public static final double LATENCY_ALPHA = 0.3;
    /** One deadline bounds a whole narinfo lookup, across every tier. */
    public static final Duration RACE_DEADLINE = Duration.ofSeconds(5);
    public static final int MAX_CONCURRENT_RACES = 64;
    public static final int PER_UPSTREAM_MAX_INFLIGHT = 8;
    public static final Duration IN_MEMORY_NEGATIVE_TTL = Duration.ofSeconds(5);
    public static final Duration UPSTREAM_COOLDOWN = Duration.ofSeconds(15);
    /** NAR streams to one upstream at once; more queue. Streams have a pool of their own. */
    public static final int PER_UPSTREAM_MAX_STREAMS = 64;
    /** Heap for remembered routes in memory (narinfo front, NAR-URL index, negatives), in bytes. */
    public static final long MEMORY_BUDGET = 64L * 1024 * 1024;
    /** Bytes of route writes that may wait for the SQLite writer; beyond it writes are dropped (counted, logged). */
    public static final long WRITE_QUEUE_MAX_BYTES = 16L * 1024 * 1024;
    /** Route writes that may wait, whatever their size (a negative or a touch weighs little). */
    public static final int WRITE_QUEUE_MAX_OPS = 100_000;
    /** Writes committed in one SQLite transaction. */
    public static final int ROUTE_WRITE_BATCH = 1024;
    /** How long the writer waits to fill a batch: one commit per batch, not one per write. */
    public static final Duration ROUTE_WRITE_LINGER = Duration.ofMillis(10);
    /** SQLite reader connections (WAL: reads run beside the one writer). */
    public static final int ROUTE_READERS = 4;
    /**
     * A cooling upstream asked as the last resort of a narinfo miss must answer within this,
     * or {@link #LAST_RESORT_EMA_FACTOR} times its latency EMA if that is longer (and within
     * the race deadline): a frozen upstream must not cost every miss the whole deadline.
     */
    public static final Duration LAST_RESORT_TIMEOUT = Duration.ofSeconds(1);
    public static final double LAST_RESORT_EMA_FACTOR = 4;
    /**
     * How long a route lookup waits for a free SQLite reader connection; past it the lookup
     * answers "unknown" (the upstreams are asked) rather than hold a request thread.
     */
    public static final Duration ROUTE_READ_TIMEOUT = Duration.ofMillis(100);
    /** How long a NAR that failed mid-body on an upstream is first tried elsewhere. */
    public static final Duration NAR_FAILURE_MEMORY = Duration.ofMinutes(10);

    /** Health probes: HEAD /nix-cache-info this often (×4 when degraded, ×10 when down). */
    public static final Duration PROBE_INTERVAL = Duration.ofSeconds(30);
    public static final Duration PROBE_TIMEOUT = Duration.ofSeconds(5);

    public static final String LOG_LEVEL = "info";
    public static final String LOG_FORMAT = "text";

    public static final String DISCOVERY_SERVICE = "_nix-serve._tcp";
    public static final String DISCOVERY_DOMAIN = "local";
    public static final int DISCOVERY_PRIORITY = 20;
    public static final boolean DISCOVERY_ADVERTISE = true;

    public static final String MESH_BIND_ADDR = "0.0.0.0:7946";
    public static final Duration GOSSIP_INTERVAL = Duration.ofSeconds(30);
    /** Packets from keys not in mesh.peers are dropped unless this is set. */
    public static final boolean MESH_ACCEPT_ANY_PEER = false;
    /**
     * Packets in one announcement (each sent to every peer): at most 64 × 1400 bytes per peer
     * per gossip interval; routes beyond them wait for the next announcement.
     */
    public static final int MESH_MAX_PACKETS_PER_INTERVAL = 64;
    /** Routes waiting to be announced; beyond this the oldest are dropped (counted). */
    public static final int MESH_MAX_QUEUED_ROUTES = 100_000;
    /** Routes heard from peers and kept as hints (least recently used out). */
    public static final long MESH_MAX_HINTS = 100_000;
    /** Senders outside mesh.peers remembered at once (with accept_any_peer), least recent out. */
    public static final int MESH_MAX_OTHER_PEERS = 256;

    /**
     * NAR read-ahead: when a narinfo GET is answered 200, the NAR it names may be fetched
     * into memory so the client's download is answered from there (see the README).
     */
    public static final boolean READAHEAD_ENABLED = true;
    /** Only NARs whose FileSize is at most this are read ahead. */
    public static final long READAHEAD_MAX_NAR_SIZE = 4L * 1024 * 1024;
    /** Memory for NARs read ahead and not yet claimed; the oldest are dropped first. */
    public static final long READAHEAD_MEMORY = 128L * 1024 * 1024;
    /** How long a NAR read ahead waits for its one download. */
    public static final Duration READAHEAD_TTL = Duration.ofSeconds(30);
    /** The guard's window: bytes read ahead and bytes of them served, over this much time. */
    public static final Duration READAHEAD_GUARD_WINDOW = Duration.ofMinutes(5);
    /** The guard judges only once this many bytes were read ahead within its window. */
    public static final long READAHEAD_GUARD_MIN_BYTES = 4L * 1024 * 1024;
    /**
     * Levels of a served narinfo's references looked up in the background: 1 is the client's
     * next level, 2 the one after (a Nix client asks a level only once it has the one above).
     */
    public static final int READAHEAD_REFERENCE_DEPTH = 2;
    public static final int READAHEAD_MAX_REFERENCE_DEPTH = 8;
    /** Reference lookups waiting for a slot; more are not queued (the client asks for them itself). */
    public static final int READAHEAD_MAX_QUEUED_REFERENCES = 4096;
    /** Narinfos remembered as walked for reference read-ahead (for {@code readahead.ttl}). */
    public static final int READAHEAD_MAX_WALKED = 100_000;
    /** Candidates the guard held back, kept (for {@code readahead.ttl}) until a client downloads. */
    public static final int READAHEAD_MAX_PARKED = 4096;
    /** Head starts for NARs over the read-ahead limit ({@code readahead.head_start}). */
    public static final boolean READAHEAD_HEAD_START = true;
    /** Head starts waiting for their download at once, each holding a connection and a window. */
    public static final int HEAD_START_MAX = 16;
    /** Head-start candidates held back (by the guard or busy slots) for the next download. */
    public static final int HEAD_START_MAX_HELD = 256;
    /**
     * The longest a head start waits for its download (at most {@code readahead.ttl}): short of
     * the idle timeouts a paused stream would otherwise meet (ncro's stall limit, servers' 30 s).
     */
    public static final Duration HEAD_START_TTL = Duration.ofSeconds(10);

    /** Upstream HTTP client pool: far above HttpComponents' 25 total / 5 per route. */
    public static final int POOL_MAX_TOTAL = 512;
    public static final int POOL_MAX_PER_ROUTE = 128;
    /**
     * Connections per upstream in the NAR stream pool: above {@link #PER_UPSTREAM_MAX_STREAMS}
     * so that cap, not the pool, queues streams.
     */
    public static final int STREAM_POOL_MAX_PER_ROUTE = 256;
    public static final int STREAM_POOL_MAX_TOTAL = 4096;
    /** How long a host's addresses are used before they are looked up again. */
    public static final Duration DNS_TTL = Duration.ofSeconds(30);
    /** How long a failed lookup is answered from memory: long enough to spare a struggling resolver. */
    public static final Duration DNS_FAILURE_TTL = Duration.ofSeconds(2);
    /** Narinfo bodies larger than this fail the upstream that sent them. */
    public static final int NARINFO_MAX_BYTES = 64 * 1024;
    /**
     * Bytes of one NAR stream that may sit between the upstream socket and the client socket.
     * HttpComponents may overshoot by one chunk of its 64 KiB session buffer (the stream
     * client's), so the total stays under 256 KiB.
     */
    public static final int STREAM_WINDOW_BYTES = 128 * 1024;
}
