package dev.ncro.route;

import dev.ncro.config.Defaults;
import dev.ncro.health.UpstreamHealth;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLTimeoutException;
import java.sql.Statement;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.sqlite.SQLiteConfig;

/**
 * The route database: its schema, a small pool of reader connections, and the
 * {@link RouteWriter} that owns the one writer connection.
 *
 * <p>WAL mode, so readers never wait behind the writer. A read first checks a reader
 * connection out of the pool and waits at most {@code readTimeout} for one; past that it
 * fails with an {@link SQLTimeoutException}, which the route store answers as "unknown" (the
 * engine then asks the upstreams), so a busy pool never parks a request thread. A reader
 * also waits at most {@code readTimeout} for a database lock. (A read stuck in the disk
 * itself cannot be bounded from here.)
 */
final class SqliteRoutes implements AutoCloseable {
    static final int READERS = Defaults.ROUTE_READERS;
    private static final int SCHEMA_VERSION = 1;

    private final Path path;
    private final Duration readTimeout;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SqliteRoutes.class);
    private final List<Connection> allReaders = new ArrayList<>(READERS);
    private final BlockingQueue<Connection> readers = new ArrayBlockingQueue<>(READERS);
    private final RouteWriter writer;

    /**
     * Opens (creating if needed) the database; throws if the file is not usable.
     *
     * @param writerInitSql run once on the writer connection after the schema is in place, as
     *     HikariCP's {@code connectionInitSql}; null for none
     * @param negativesScope what the stored not-founds were true of (the upstreams asked); when
     *     the database's differs, they are all dropped: a path no upstream had may be on one
     *     added since, and its stored not-found would be a false 404. Null: kept as they are.
     */
    SqliteRoutes(Path path, long maxEntries, long writeQueueMaxBytes, Duration readTimeout, String writerInitSql,
            InstantSource clock, String negativesScope) throws SQLException {
        this.path = path;
        this.readTimeout = readTimeout;
        String url = "jdbc:sqlite:" + path;
        SQLiteConfig config = new SQLiteConfig();
        config.setJournalMode(SQLiteConfig.JournalMode.WAL);
        config.setSynchronous(SQLiteConfig.SynchronousMode.NORMAL);
        config.setBusyTimeout(5000);
        config.setCacheSize(-64 * 1024); // KiB: the writer touches index pages all over a large table
        config.setTempStore(SQLiteConfig.TempStore.MEMORY);
        Connection writerConnection = config.createConnection(url);
        try {
            long routes;
            long negatives;
            try (Statement s = writerConnection.createStatement()) {
                s.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
                s.execute("CREATE TABLE IF NOT EXISTS routes ("
                        + " hash TEXT PRIMARY KEY, upstream TEXT NOT NULL, narinfo BLOB NOT NULL, nar_url TEXT,"
                        + " latency_ms REAL NOT NULL, created_at INTEGER NOT NULL, last_used INTEGER NOT NULL,"
                        + " expires_at INTEGER NOT NULL)"); // rows of ~0.5 KiB: a rowid table, not WITHOUT ROWID
                s.execute("CREATE INDEX IF NOT EXISTS routes_nar_url ON routes(nar_url)");
                s.execute("CREATE INDEX IF NOT EXISTS routes_last_used ON routes(last_used)");
                s.execute("CREATE INDEX IF NOT EXISTS routes_expires_at ON routes(expires_at)");
                s.execute("CREATE TABLE IF NOT EXISTS negatives (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID");
                s.execute("CREATE INDEX IF NOT EXISTS negatives_expires_at ON negatives(expires_at)");
                HealthTable.create(s);
                s.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '" + SCHEMA_VERSION + "')");
                try (ResultSet rs = s.executeQuery("SELECT value FROM meta WHERE key = 'schema_version'")) {
                    int version = rs.next() ? Integer.parseInt(rs.getString(1)) : -1;
                    if (version != SCHEMA_VERSION) throw new SQLException("schema version " + version + ", expected " + SCHEMA_VERSION);
                }
                if (negativesScope != null) forgetNegativesOutside(writerConnection, negativesScope);
                routes = count(s, "routes");
                negatives = count(s, "negatives");
                if (writerInitSql != null) s.execute(writerInitSql);
            }
            writerConnection.setAutoCommit(false);
            SQLiteConfig readConfig = new SQLiteConfig();
            // a reader waits for a lock (rare in WAL mode: recovery, a checkpoint's restart) no
            // longer than it may wait for a connection; it runs on a request thread
            readConfig.setBusyTimeout((int) Math.min(Integer.MAX_VALUE, readTimeout.toMillis()));
            readConfig.setReadOnly(true);
            for (int i = 0; i < READERS; i++) {
                Connection c = readConfig.createConnection(url);
                allReaders.add(c);
                readers.add(c);
            }
            writer = new RouteWriter(path, writerConnection, maxEntries, writeQueueMaxBytes, routes, negatives, clock);
        } catch (SQLException | RuntimeException e) {
            closeReaders();
            closeQuietly(writerConnection);
            throw e;
        }
    }

    private static long count(Statement s, String table) throws SQLException {
        try (ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM " + table)) {
            return rs.next() ? rs.getLong(1) : 0;
        }
    }

    Path path() {
        return path;
    }

    RouteWriter writer() {
        return writer;
    }

    // ---- reads: any thread; never wait behind the writer (WAL), at most readTimeout for a connection ----

    Optional<Route> route(String hash, long now) throws SQLException {
        return liveRoute("hash = ? AND expires_at > ?", hash, now);
    }

    /** The newest live route whose narinfo names this file URL. */
    Optional<Route> routeForNar(String narUrl, long now) throws SQLException {
        return liveRoute("nar_url = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1", narUrl, now);
    }

    /** The first route of {@code where} (a key, then {@code now}). */
    private Optional<Route> liveRoute(String where, String key, long now) throws SQLException {
        return read(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT hash, upstream, narinfo, nar_url, latency_ms, created_at, expires_at FROM routes WHERE " + where)) {
                ps.setString(1, key);
                ps.setLong(2, now);
                return one(ps);
            }
        });
    }

    private static Optional<Route> one(PreparedStatement ps) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) return Optional.empty();
            return Optional.of(new Route(rs.getString(1), rs.getString(2), rs.getBytes(3), rs.getString(4),
                    rs.getDouble(5), rs.getLong(6), rs.getLong(7)));
        }
    }

    /** Drops every stored not-found unless they were stored under {@code scope}; records the scope. */
    private static void forgetNegativesOutside(Connection c, String scope) throws SQLException {
        String stored = null;
        try (PreparedStatement ps = c.prepareStatement("SELECT value FROM meta WHERE key = 'negatives_scope'");
                ResultSet rs = ps.executeQuery()) {
            if (rs.next()) stored = rs.getString(1);
        }
        if (scope.equals(stored)) return;
        try (Statement s = c.createStatement()) {
            int dropped = s.executeUpdate("DELETE FROM negatives");
            if (dropped > 0) {
                LOG.info("route store: {} remembered not-founds dropped: the upstreams are not the ones they were asked of", dropped);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("INSERT OR REPLACE INTO meta VALUES ('negatives_scope', ?)")) {
            ps.setString(1, scope);
            ps.executeUpdate();
        }
    }

    /** Expiry of a live negative entry for {@code hash}, if any. */
    Optional<Long> negative(String hash, long now) throws SQLException {
        return read(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT expires_at FROM negatives WHERE hash = ? AND expires_at > ?")) {
                ps.setString(1, hash);
                ps.setLong(2, now);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
                }
            }
        });
    }

    /** Every persisted upstream health snapshot, by upstream name. */
    Map<String, UpstreamHealth.Snapshot> health() throws SQLException {
        return read(HealthTable::readAll);
    }

    interface Read<T> {
        T apply(Connection c) throws SQLException;
    }

    /** Runs {@code read} on a pooled reader connection, waiting at most the read timeout for one. */
    <T> T read(Read<T> read) throws SQLException {
        Connection c;
        try {
            c = readers.poll(readTimeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted waiting for a reader connection", e);
        }
        if (c == null) {
            throw new SQLTimeoutException("all " + READERS + " reader connections stayed busy for "
                    + readTimeout.toMillis() + " ms");
        }
        try {
            return read.apply(c);
        } finally {
            readers.add(c);
        }
    }

    /** Lets the writer commit what is queued, then closes every connection. */
    @Override
    public void close() {
        writer.close();
        closeReaders();
    }

    private void closeReaders() {
        for (Connection c : allReaders) closeQuietly(c);
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // closing
        }
    }
}
