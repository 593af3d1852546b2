package dev.ncro.route;

import dev.ncro.config.Defaults;
import dev.ncro.health.UpstreamHealth;
import java.nio.file.Path;
import java.sql.SQLException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ncro's memory of routing decisions: a server-level lifecycle bean.
 *
 * <p><b>Where routes live.</b> A hot narinfo is answered from an in-memory front (no SQLite
 * read, no upstream request); behind it, SQLite at {@code cache.db_path} keeps up to
 * {@code cache.max_entries} routes across restarts, least recently used first out. Every
 * route expires {@code cache.ttl} after its decision, in memory and on disk alike. A lookup
 * every upstream answered not-found is remembered for {@code cache.negative_ttl} on disk and
 * {@code in_memory_negative_ttl} in memory. Failures are never remembered.
 *
 * <p><b>Memory.</b> What is held in the heap (the front with its narinfo bytes, the NAR-URL
 * index, the not-founds) is weighed in bytes and held within {@code cache.memory_budget}
 * (default {@link Defaults#MEMORY_BUDGET}), split as {@link RouteMemory} describes; routes
 * that no longer fit are still found in SQLite. Writes waiting for the database hold at most
 * {@link Defaults#WRITE_QUEUE_MAX_BYTES} more; past that they are dropped, counted in
 * {@link #droppedWrites()} and logged (see {@link RouteWriter}). Lookups never wait for the
 * writer, and wait at most {@link Defaults#ROUTE_READ_TIMEOUT} for a reader connection (then
 * they answer {@link Unknown}).
 *
 * <p><b>A failing database.</b> If the database cannot be opened (corrupt, unreadable,
 * directory not writable) ncro still starts: it logs one error naming the path and keeps
 * routes in memory only, within the same budget; {@link #state()} says so. If it opens but
 * later cannot be written (disk full), {@link #writeFailure()} says why until writes succeed
 * again; lookups go on from memory and from what the database holds.
 *
 * <p><b>Stored routes are checked again.</b> A route read from the database (written by an
 * earlier run, or let go by the front) is passed to the {@link RouteValidator} set with
 * {@link #setValidator} before it is used, since the operator may have changed that
 * upstream's keys or filters since. A rejected route answers {@link Unknown} and is deleted.
 *
 * <p>Time comes from the injected {@link InstantSource}, for the database and for the
 * in-memory expiry alike, so tests move a fake clock instead of sleeping.
 */
public final class RouteStore extends AbstractLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(RouteStore.class);
    private static final Duration LOG_EVERY = Duration.ofMinutes(1);

    /** What the store knows about a hash. */
    public sealed interface Lookup permits Hit, NotFound, Unknown {}

    public record Hit(Route route) implements Lookup {}

    public record NotFound() implements Lookup {}

    public record Unknown() implements Lookup {}

    private static final Lookup UNKNOWN = new Unknown();
    private static final Lookup NOT_FOUND = new NotFound();

    private final Path dbPath;
    private final long maxEntries;
    private final long memoryBudget;
    private final Duration ttl;
    private final Duration negativeTtl;
    private final Duration memoryNegativeTtl;
    private final InstantSource clock;
    private final Duration readTimeout;
    private final String writerInitSql;
    private final LogThrottle readFailureLog;
    private final LogThrottle rejectLog;
    private final AtomicLong rejected = new AtomicLong();
    private volatile RouteValidator validator = RouteValidator.ACCEPT_ALL;
    // published by doStart to request threads: volatile, and each object is fully built first
    private volatile SqliteRoutes db;
    private volatile RouteMemory memory;
    private volatile String state = "stopped";

    /** A store whose heap is held within {@link Defaults#MEMORY_BUDGET}. */
    public RouteStore(Path dbPath, long maxEntries, Duration ttl, Duration negativeTtl, Duration memoryNegativeTtl,
            InstantSource clock) {
        this(dbPath, maxEntries, Defaults.MEMORY_BUDGET, ttl, negativeTtl, memoryNegativeTtl, clock);
    }

    /**
     * @param dbPath the SQLite file ({@code cache.db_path})
     * @param maxEntries routes kept in the database ({@code cache.max_entries}), and at most as
     *     many in memory
     * @param memoryBudget heap for routes held in memory, in bytes ({@code cache.memory_budget})
     * @param ttl how long a route lives after its decision ({@code cache.ttl})
     * @param negativeTtl how long a not-found is remembered on disk ({@code cache.negative_ttl})
     * @param memoryNegativeTtl how long a not-found is held in memory when there is a database
     */
    public RouteStore(Path dbPath, long maxEntries, long memoryBudget, Duration ttl, Duration negativeTtl,
            Duration memoryNegativeTtl, InstantSource clock) {
        this(dbPath, maxEntries, memoryBudget, ttl, negativeTtl, memoryNegativeTtl, clock, Defaults.ROUTE_READ_TIMEOUT, null);
    }

    /** For tests: a reader timeout, and SQL run on the writer connection when it opens. */
    RouteStore(Path dbPath, long maxEntries, long memoryBudget, Duration ttl, Duration negativeTtl,
            Duration memoryNegativeTtl, InstantSource clock, Duration readTimeout, String writerInitSql) {
        if (maxEntries <= 0) throw new IllegalArgumentException("cache.max_entries must be positive, got " + maxEntries);
        if (memoryBudget <= 0) {
            throw new IllegalArgumentException("cache.memory_budget must be positive, got " + memoryBudget + " bytes");
        }
        this.dbPath = dbPath;
        this.maxEntries = maxEntries;
        this.memoryBudget = memoryBudget;
        this.ttl = ttl;
        this.negativeTtl = negativeTtl;
        this.memoryNegativeTtl = memoryNegativeTtl;
        this.clock = clock;
        this.readTimeout = readTimeout;
        this.writerInitSql = writerInitSql;
        this.readFailureLog = new LogThrottle(clock, LOG_EVERY);
        this.rejectLog = new LogThrottle(clock, LOG_EVERY);
    }

    /**
     * Sets the check every route read from the database must pass before it is served; by
     * default every route passes. Set it before the store starts.
     */
    public void setNegativesScope(String scope) {
        if (isStarted() || isStarting()) throw new IllegalStateException("set the not-found scope before the route store starts");
        this.negativesScope = scope;
    }

    public void setValidator(RouteValidator validator) {
        if (isStarted() || isStarting()) throw new IllegalStateException("set the route validator before the route store starts");
        this.validator = validator == null ? RouteValidator.ACCEPT_ALL : validator;
    }

    /**
     * What stored not-founds are true of (the configured upstreams); those stored under another
     * are dropped at start. Set it before the store starts; null (the default) keeps them.
     */
    private volatile String negativesScope;

    @Override
    protected void doStart() throws Exception {
        SqliteRoutes opened = null;
        try {
            opened = new SqliteRoutes(dbPath, maxEntries, Defaults.WRITE_QUEUE_MAX_BYTES, readTimeout, writerInitSql, clock,
                    negativesScope);
            state = "sqlite " + dbPath;
        } catch (SQLException | RuntimeException e) {
            state = "memory only: route database " + dbPath + " is unusable: " + e.getMessage();
            LOG.error("route database {} is unusable ({}); ncro serves with an in-memory route store,"
                    + " and routes will not survive a restart", dbPath, e.getMessage());
        }
        // without a database, memory is all there is: hold not-founds as long as the disk would
        Duration inMemoryNegative = opened == null ? negativeTtl : memoryNegativeTtl;
        memory = new RouteMemory(memoryBudget, maxEntries, inMemoryNegative, ttl, clock);
        db = opened;
        if (opened != null) LOG.info("route store: {} ({} routes)", state, opened.writer().routeCount());
    }

    @Override
    protected void doStop() {
        SqliteRoutes d = db;
        db = null;
        if (d != null) d.close();
        state = "stopped";
    }

    /** Where routes live: {@code sqlite <path> …} or {@code memory only: …} with the reason. */
    public String state() {
        return state;
    }

    public boolean persistent() {
        return db != null;
    }

    /**
     * What the store knows about {@code hash}: a live route, a remembered not-found, or
     * nothing. A database that cannot answer in time answers {@link Unknown}.
     */
    public Lookup lookup(String hash) {
        RouteMemory mem = memory;
        if (mem == null) return UNKNOWN; // not started
        long now = clock.millis();
        SqliteRoutes d = db;
        Route route = mem.route(hash);
        if (route != null) {
            if (d != null) d.writer().touch(hash, now);
            return new Hit(route);
        }
        if (mem.notFound(hash)) return NOT_FOUND;
        if (d == null) return UNKNOWN;
        try {
            Optional<Route> stored = d.route(hash, now);
            if (stored.isPresent()) {
                if (!usable(d, stored.get())) return UNKNOWN;
                mem.put(stored.get());
                d.writer().touch(hash, now);
                return new Hit(stored.get());
            }
            Optional<Long> expires = d.negative(hash, now);
            // stored before an upstream joined: that upstream was never asked
            if (expires.isPresent() && expires.get() - negativeTtl.toMillis() > notFoundsFrom) {
                mem.putNotFound(hash);
                return NOT_FOUND;
            }
        } catch (SQLException e) {
            readFailed("lookup of " + hash, e);
        }
        return UNKNOWN;
    }

    /**
     * The live route whose narinfo named this file URL ({@code nar/….nar.xz}), if any: its
     * upstream served the narinfo, and its narinfo carries the NAR's {@code FileSize}.
     */
    public Optional<Route> routeForNar(String narUrl) {
        RouteMemory mem = memory;
        if (mem == null) return Optional.empty();
        Route held = mem.routeForNar(narUrl);
        if (held != null) return Optional.of(held);
        SqliteRoutes d = db;
        if (d == null) return Optional.empty();
        try {
            Optional<Route> stored = d.routeForNar(narUrl, clock.millis());
            if (stored.isEmpty() || !usable(d, stored.get())) return Optional.empty();
            mem.put(stored.get());
            return stored;
        } catch (SQLException e) {
            readFailed("NAR lookup of " + narUrl, e);
            return Optional.empty();
        }
    }

    /** The upstream (base URL) whose narinfo named this file URL, if a live route says so. */
    public Optional<String> upstreamForNar(String narUrl) {
        return routeForNar(narUrl).map(Route::upstream);
    }

    /**
     * Whether a route read from the database passes the validator; a rejected one is deleted
     * (only that decision: a newer route for the same hash, written meanwhile, stays).
     */
    private boolean usable(SqliteRoutes d, Route route) {
        String reason;
        try {
            reason = validator.reject(route);
        } catch (RuntimeException e) {
            // a bug in the check is no reason to delete the route: skip it this time only
            LOG.warn("route database {}: checking the stored route of {} (upstream {}) failed: {}",
                    dbPath, route.hash(), route.upstream(), e.toString());
            return false;
        }
        if (reason == null) return true;
        d.writer().delete(route.hash(), route.createdAt());
        long n = rejected.incrementAndGet();
        if (rejectLog.shouldLog()) {
            LOG.info("route database {}: stored route of {} from {} no longer passes the upstream's checks ({});"
                    + " dropped, {} stored routes dropped so far", dbPath, route.hash(), route.upstream(), reason, n);
        }
        return false;
    }

    private void readFailed(String what, SQLException e) {
        if (readFailureLog.shouldLog()) {
            LOG.warn("route database {}: {} failed, answered as unknown: {}", dbPath, what, e.toString());
        }
    }

    /** Remembers a decision made now; it expires after {@code cache.ttl}. */
    public Route remember(String hash, String upstream, byte[] narinfo, String narUrl, double latencyMs) {
        long now = clock.millis();
        Route route = new Route(hash, upstream, narinfo, narUrl, latencyMs, now, now + ttl.toMillis());
        RouteMemory mem = memory;
        if (mem != null) mem.put(route);
        SqliteRoutes d = db;
        if (d != null) d.writer().put(route);
        return route;
    }

    /**
     * An upstream joined (a discovered cache): every not-found remembered so far was not asked
     * of it, so none is served any more; the next request for such a path races again.
     */
    public void upstreamJoined() {
        joins.incrementAndGet(); // first: a race that began before it now remembers nothing
        notFoundsFrom = clock.millis();
        RouteMemory mem = memory;
        if (mem != null) mem.forgetNotFounds();
    }

    /** Stored not-founds from before this time (clock millis) are not served: see {@link #upstreamJoined}. */
    private volatile long notFoundsFrom = Long.MIN_VALUE;

    /** How many upstreams joined so far: taken when a race begins, for {@link #rememberNotFound(String, long)}. */
    private final java.util.concurrent.atomic.AtomicLong joins = new java.util.concurrent.atomic.AtomicLong();

    /** {@link #upstreamJoined} calls so far. */
    public long joins() {
        return joins.get();
    }

    /**
     * Remembers that every upstream said not-found, unless an upstream joined since the race
     * began ({@code joinsAtStart}, from {@link #joins()}): that one was not asked.
     */
    public void rememberNotFound(String hash, long joinsAtStart) {
        if (joins.get() != joinsAtStart) return;
        rememberNotFound(hash);
        // a join between the check and the remembering: what it forgot must stay forgotten
        if (joins.get() != joinsAtStart) {
            RouteMemory mem = memory;
            if (mem != null) mem.forgetNotFound(hash);
        }
    }

    /** Remembers that every upstream said not-found. */
    public void rememberNotFound(String hash) {
        RouteMemory mem = memory;
        if (mem != null) mem.putNotFound(hash);
        SqliteRoutes d = db;
        if (d != null) d.writer().putNegative(hash, clock.millis() + negativeTtl.toMillis());
    }

    /** Persists an upstream's health (for seeding after a restart); a no-op without a database. */
    public void saveHealth(UpstreamHealth.Snapshot snapshot) {
        SqliteRoutes d = db;
        if (d != null) d.writer().putHealth(snapshot);
    }

    /** Health snapshots persisted by an earlier run, by upstream name; empty without a database. */
    public Map<String, UpstreamHealth.Snapshot> loadHealth() {
        SqliteRoutes d = db;
        if (d == null) return Map.of();
        try {
            return d.health();
        } catch (SQLException e) {
            LOG.warn("route database {}: cannot read health snapshots: {}", dbPath, e.toString());
            return Map.of();
        }
    }

    /** Completes once every write made before the call is committed, or its batch has failed. */
    public CompletableFuture<Void> flush() {
        SqliteRoutes d = db;
        return d == null ? CompletableFuture.completedFuture(null) : d.writer().flush();
    }

    /**
     * Why the database cannot be written (naming it, with SQLite's reason, such as "database or
     * disk is full"), while that is so; empty while writes succeed and without a database
     * ({@link #persistent()} reports that). Cleared by the next batch that commits.
     */
    public Optional<String> writeFailure() {
        SqliteRoutes d = db;
        return d == null ? Optional.empty() : d.writer().failure();
    }

    /**
     * Writes dropped because the write queue was full, since start: routes, not-founds, health
     * snapshots and hits recorded for the least-recently-used order alike. Growing means the
     * disk is falling behind; the dropped routes are still served from memory.
     */
    public long droppedWrites() {
        SqliteRoutes d = db;
        return d == null ? 0 : d.writer().droppedWrites();
    }

    /** Stored routes that failed the validator and were deleted, since start. */
    public long rejectedRoutes() {
        return rejected.get();
    }

    /** Estimated heap held by routes in memory, in bytes; at most {@code cache.memory_budget}. */
    public long memoryBytes() {
        RouteMemory mem = memory;
        return mem == null ? 0 : mem.weightedSize();
    }

    /** Estimated heap held by writes waiting for the database, in bytes. */
    public long pendingWriteBytes() {
        SqliteRoutes d = db;
        return d == null ? 0 : d.writer().pendingBytes();
    }

    /** Routes in the database (exact), or in memory when there is no database. */
    public long size() {
        SqliteRoutes d = db;
        if (d != null) return d.writer().routeCount();
        RouteMemory mem = memory;
        return mem == null ? 0 : mem.routes();
    }

    /** A database read that bypasses memory and the validator; for benchmarks and diagnostics. */
    public Optional<Route> readThrough(String hash) throws SQLException {
        SqliteRoutes d = db;
        return d == null ? Optional.empty() : d.route(hash, clock.millis());
    }

    /** Routes in the database, from the writer's exact count (no query); 0 without a database. */
    public long routesOnDisk() {
        SqliteRoutes d = db;
        return d == null ? 0 : d.writer().routeCount();
    }

    /** Routes held in memory now (an estimate, as Caffeine's). */
    public long routesInMemory() {
        RouteMemory mem = memory;
        return mem == null ? 0 : mem.routes();
    }

    /** The open database, for tests that need to hold its readers. */
    SqliteRoutes database() {
        return db;
    }
}
