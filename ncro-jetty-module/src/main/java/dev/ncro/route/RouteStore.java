package dev.ncro.route;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.github.benmanes.caffeine.cache.Ticker;
import java.nio.file.Path;
import java.sql.SQLException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ncro's memory of routing decisions: a server-level lifecycle bean.
 *
 * <p>A hot narinfo is answered from a bounded Caffeine front (no SQLite read, no upstream
 * request); behind it, SQLite at {@code cache.db_path} keeps up to {@code cache.max_entries}
 * routes across restarts, least recently used first out. Every route expires {@code cache.ttl}
 * after its decision, in memory and on disk alike. A lookup every upstream answered
 * not-found is remembered for {@code cache.negative_ttl} on disk and
 * {@code in_memory_negative_ttl} in memory. Failures are never remembered.
 *
 * <p>If the database cannot be opened (corrupt, unreadable, directory not writable) ncro
 * still starts: it logs one error naming the path and keeps routes in memory only, with the
 * front sized to {@code max_entries}; {@link #state()} says so.
 *
 * <p>Time comes from the injected {@link InstantSource}, for the database and for Caffeine's
 * ticker alike, so tests move a fake clock instead of sleeping.
 */
public final class RouteStore extends AbstractLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(RouteStore.class);
    /** The in-memory front holds at most this many routes while SQLite holds the rest. */
    static final long FRONT_MAX = 100_000;

    /** What the store knows about a hash. */
    public sealed interface Lookup permits Hit, NotFound, Unknown {}

    public record Hit(Route route) implements Lookup {}

    public record NotFound() implements Lookup {}

    public record Unknown() implements Lookup {}

    private static final Lookup UNKNOWN = new Unknown();
    private static final Lookup NOT_FOUND = new NotFound();

    private final Path dbPath;
    private final long maxEntries;
    private final Duration ttl;
    private final Duration negativeTtl;
    private final Duration memoryNegativeTtl;
    private final InstantSource clock;
    private volatile SqliteRoutes db;
    private volatile String state = "stopped";
    private Cache<String, Route> front;
    private Cache<String, Route> byNarUrl;
    private Cache<String, Boolean> negatives;

    public RouteStore(Path dbPath, long maxEntries, Duration ttl, Duration negativeTtl, Duration memoryNegativeTtl,
            InstantSource clock) {
        this.dbPath = dbPath;
        this.maxEntries = maxEntries;
        this.ttl = ttl;
        this.negativeTtl = negativeTtl;
        this.memoryNegativeTtl = memoryNegativeTtl;
        this.clock = clock;
    }

    @Override
    protected void doStart() throws Exception {
        try {
            db = new SqliteRoutes(dbPath, maxEntries, clock);
            state = "sqlite " + dbPath;
        } catch (SQLException | RuntimeException e) {
            db = null;
            state = "memory only: route database " + dbPath + " is unusable: " + e.getMessage();
            LOG.error("route database {} is unusable ({}); ncro serves with an in-memory route store,"
                    + " and routes will not survive a restart", dbPath, e.getMessage());
        }
        Ticker ticker = () -> TimeUnit.MILLISECONDS.toNanos(clock.millis());
        long frontSize = db == null ? maxEntries : Math.min(maxEntries, FRONT_MAX);
        front = Caffeine.newBuilder().maximumSize(frontSize).ticker(ticker).expireAfter(new UntilExpiry()).build();
        byNarUrl = Caffeine.newBuilder().maximumSize(frontSize).ticker(ticker).expireAfter(new UntilExpiry()).build();
        Duration inMemoryNegative = db == null ? negativeTtl : memoryNegativeTtl;
        negatives = Caffeine.newBuilder().maximumSize(frontSize).ticker(ticker).expireAfterWrite(inMemoryNegative).build();
        if (db != null) LOG.info("route store: {} ({} routes)", state, db.routeCount());
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

    public Lookup lookup(String hash) {
        long now = clock.millis();
        Route route = front.getIfPresent(hash);
        SqliteRoutes d = db;
        if (route != null) {
            if (d != null) d.touch(hash, now);
            return new Hit(route);
        }
        if (negatives.getIfPresent(hash) != null) return NOT_FOUND;
        if (d == null) return UNKNOWN;
        try {
            Optional<Route> stored = d.route(hash, now);
            if (stored.isPresent()) {
                front.put(hash, stored.get());
                d.touch(hash, now);
                return new Hit(stored.get());
            }
            if (d.negative(hash, now).isPresent()) {
                negatives.put(hash, Boolean.TRUE);
                return NOT_FOUND;
            }
        } catch (SQLException e) {
            LOG.warn("route database {}: lookup of {} failed: {}", dbPath, hash, e.toString());
        }
        return UNKNOWN;
    }

    /** The live route whose narinfo named this file URL. (Interim: the route writer's version replaces this.) */
    public Optional<Route> routeForNar(String narUrl) {
        Route route = byNarUrl.getIfPresent(narUrl);
        if (route != null) return Optional.of(route);
        return upstreamForNar(narUrl).map(u -> new Route("", u, new byte[0], narUrl, 0, 0, 0));
    }

    /** Why route writes fail now, or empty while they succeed. (Interim.) */
    public Optional<String> writeFailure() {
        return Optional.empty();
    }

    /** Route writes dropped because the writer fell behind. (Interim.) */
    public long droppedWrites() {
        return 0;
    }

    /** The upstream (base URL) whose narinfo named this file URL, if a live route says so. */
    public Optional<String> upstreamForNar(String narUrl) {
        Route route = byNarUrl.getIfPresent(narUrl);
        if (route != null) return Optional.of(route.upstream());
        SqliteRoutes d = db;
        if (d == null) return Optional.empty();
        try {
            return d.upstreamForNar(narUrl, clock.millis());
        } catch (SQLException e) {
            LOG.warn("route database {}: NAR lookup of {} failed: {}", dbPath, narUrl, e.toString());
            return Optional.empty();
        }
    }

    /** Remembers a decision made now; it expires after {@code cache.ttl}. */
    public Route remember(String hash, String upstream, byte[] narinfo, String narUrl, double latencyMs) {
        long now = clock.millis();
        Route route = new Route(hash, upstream, narinfo, narUrl, latencyMs, now, now + ttl.toMillis());
        front.put(hash, route);
        negatives.invalidate(hash);
        if (narUrl != null) byNarUrl.put(narUrl, route);
        SqliteRoutes d = db;
        if (d != null) d.put(route);
        return route;
    }

    /** Remembers that every upstream said not-found. */
    public void rememberNotFound(String hash) {
        negatives.put(hash, Boolean.TRUE);
        SqliteRoutes d = db;
        if (d != null) d.putNegative(hash, clock.millis() + negativeTtl.toMillis());
    }

    /** Persists an upstream's health (for seeding after a restart); a no-op without a database. */
    public void saveHealth(dev.ncro.health.UpstreamHealth.Snapshot snapshot) {
        SqliteRoutes d = db;
        if (d != null) d.putHealth(snapshot);
    }

    /** Health snapshots persisted by an earlier run, by upstream name; empty without a database. */
    public java.util.Map<String, dev.ncro.health.UpstreamHealth.Snapshot> loadHealth() {
        SqliteRoutes d = db;
        if (d == null) return java.util.Map.of();
        try {
            return d.health();
        } catch (SQLException e) {
            LOG.warn("route database {}: cannot read health snapshots: {}", dbPath, e.toString());
            return java.util.Map.of();
        }
    }

    /** Completes once every write made before the call is in the database. */
    public CompletableFuture<Void> flush() {
        SqliteRoutes d = db;
        return d == null ? CompletableFuture.completedFuture(null) : d.flush();
    }

    /** Routes in the database (exact), or in memory when there is no database. */
    public long size() {
        SqliteRoutes d = db;
        return d != null ? d.routeCount() : front.estimatedSize();
    }

    /** A database read that bypasses the in-memory front; for benchmarks and diagnostics. */
    public Optional<Route> readThrough(String hash) throws SQLException {
        SqliteRoutes d = db;
        return d == null ? Optional.empty() : d.route(hash, clock.millis());
    }

    /** Caffeine expiry that follows each route's own {@code expiresAt}. */
    private final class UntilExpiry implements Expiry<String, Route> {
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
