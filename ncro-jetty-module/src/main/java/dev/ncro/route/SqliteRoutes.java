package dev.ncro.route;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.time.InstantSource;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.health.UpstreamState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.sqlite.SQLiteConfig;

/**
 * The SQLite side of the route store: WAL mode, so readers never wait behind the writer; a
 * small pool of reader connections; and one writer thread that applies queued writes in
 * batches, one transaction each, off the request path.
 *
 * <p>Size is held at {@code maxEntries} by evicting the least recently used rows once a batch
 * has pushed the count over it (never before: the count is exact, kept from the changes each
 * statement reports). Hits are recorded as "touches" in memory and written with the next
 * batch, so a hit costs no write of its own.
 */
final class SqliteRoutes implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SqliteRoutes.class);
    private static final int READERS = 4;
    private static final int BATCH = 1024;
    /** How long the writer waits to fill a batch: one commit per batch, not one per write. */
    private static final long LINGER_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final int QUEUE = 100_000;
    private static final long PURGE_EVERY_MS = 60_000;
    private static final int SCHEMA_VERSION = 1;

    private sealed interface Op permits PutRoute, PutNegative, PutHealth, Barrier {}
    private record PutHealth(UpstreamHealth.Snapshot snapshot) implements Op {}
    private record PutRoute(Route route) implements Op {}
    private record PutNegative(String hash, long expiresAt) implements Op {}
    private record Barrier(CompletableFuture<Void> done) implements Op {}

    private final Path path;
    private final long maxEntries;
    private final InstantSource clock;
    private final BlockingQueue<Connection> readers = new ArrayBlockingQueue<>(READERS);
    private final Connection writer;
    private final BlockingQueue<Op> queue = new LinkedBlockingQueue<>(QUEUE);
    private final Map<String, Long> touches = new ConcurrentHashMap<>();
    private final AtomicLong routeCount = new AtomicLong();
    private final AtomicLong negativeCount = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private final Thread writerThread;
    private volatile boolean running = true;
    private long lastPurge;

    /** Opens (creating if needed) the database; throws if the file is not usable. */
    SqliteRoutes(Path path, long maxEntries, InstantSource clock) throws SQLException {
        this.path = path;
        this.maxEntries = maxEntries;
        this.clock = clock;
        String url = "jdbc:sqlite:" + path;
        SQLiteConfig config = new SQLiteConfig();
        config.setJournalMode(SQLiteConfig.JournalMode.WAL);
        config.setSynchronous(SQLiteConfig.SynchronousMode.NORMAL);
        config.setBusyTimeout(5000);
        config.setCacheSize(-64 * 1024); // KiB: the writer touches index pages all over a large table
        config.setTempStore(SQLiteConfig.TempStore.MEMORY);
        writer = config.createConnection(url);
        try {
            try (Statement s = writer.createStatement()) {
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
                s.execute("CREATE TABLE IF NOT EXISTS health (upstream TEXT PRIMARY KEY, state TEXT NOT NULL,"
                        + " ema_ms REAL, failures INTEGER NOT NULL, last_probe INTEGER NOT NULL)");
                s.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '" + SCHEMA_VERSION + "')");
                try (ResultSet rs = s.executeQuery("SELECT value FROM meta WHERE key = 'schema_version'")) {
                    int version = rs.next() ? Integer.parseInt(rs.getString(1)) : -1;
                    if (version != SCHEMA_VERSION) throw new SQLException("schema version " + version + ", expected " + SCHEMA_VERSION);
                }
                routeCount.set(count(s, "routes"));
                negativeCount.set(count(s, "negatives"));
            }
            writer.setAutoCommit(false);
            SQLiteConfig readConfig = new SQLiteConfig();
            readConfig.setBusyTimeout(5000);
            readConfig.setReadOnly(true);
            for (int i = 0; i < READERS; i++) readers.add(readConfig.createConnection(url));
        } catch (SQLException | RuntimeException e) {
            closeQuietly();
            throw e;
        }
        lastPurge = clock.millis();
        writerThread = new Thread(this::writeLoop, "ncro-route-writer");
        writerThread.setDaemon(true);
        writerThread.start();
    }

    private static long count(Statement s, String table) throws SQLException {
        try (ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM " + table)) {
            return rs.next() ? rs.getLong(1) : 0;
        }
    }

    Path path() {
        return path;
    }

    long routeCount() {
        return routeCount.get();
    }

    long droppedWrites() {
        return dropped.get();
    }

    // ---- reads: any thread; never wait behind the writer (WAL) ----

    Optional<Route> route(String hash, long now) throws SQLException {
        return read(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT upstream, narinfo, nar_url, latency_ms, created_at, expires_at FROM routes WHERE hash = ? AND expires_at > ?")) {
                ps.setString(1, hash);
                ps.setLong(2, now);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) return Optional.empty();
                    return Optional.of(new Route(hash, rs.getString(1), rs.getBytes(2), rs.getString(3),
                            rs.getDouble(4), rs.getLong(5), rs.getLong(6)));
                }
            }
        });
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

    Optional<String> upstreamForNar(String narUrl, long now) throws SQLException {
        return read(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT upstream FROM routes WHERE nar_url = ? AND expires_at > ? LIMIT 1")) {
                ps.setString(1, narUrl);
                ps.setLong(2, now);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(rs.getString(1)) : Optional.empty();
                }
            }
        });
    }

    private interface Read<T> {
        T apply(Connection c) throws SQLException;
    }

    private <T> T read(Read<T> read) throws SQLException {
        Connection c;
        try {
            c = readers.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted waiting for a reader connection", e);
        }
        try {
            return read.apply(c);
        } finally {
            readers.add(c);
        }
    }

    /** Every persisted upstream health snapshot, by upstream name. */
    Map<String, UpstreamHealth.Snapshot> health() throws SQLException {
        return read(c -> {
            Map<String, UpstreamHealth.Snapshot> all = new java.util.HashMap<>();
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT upstream, state, ema_ms, failures, last_probe FROM health")) {
                while (rs.next()) {
                    double ema = rs.getDouble(3);
                    if (rs.wasNull()) ema = Double.NaN;
                    UpstreamState state;
                    try {
                        state = UpstreamState.valueOf(rs.getString(2));
                    } catch (IllegalArgumentException e) {
                        continue; // written by another version: ignore
                    }
                    all.put(rs.getString(1), new UpstreamHealth.Snapshot(rs.getString(1), state, ema, rs.getInt(4), rs.getLong(5), 0));
                }
            }
            return all;
        });
    }

    // ---- writes: queued, applied by the writer thread ----

    void putHealth(UpstreamHealth.Snapshot snapshot) {
        enqueue(new PutHealth(snapshot));
    }

    void put(Route route) {
        enqueue(new PutRoute(route));
    }

    void putNegative(String hash, long expiresAt) {
        enqueue(new PutNegative(hash, expiresAt));
    }

    void touch(String hash, long at) {
        touches.put(hash, at);
    }

    /** Completes once everything queued before it is committed. */
    CompletableFuture<Void> flush() {
        CompletableFuture<Void> done = new CompletableFuture<>();
        if (!running) {
            done.complete(null);
            return done;
        }
        try {
            queue.put(new Barrier(done));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            done.completeExceptionally(e);
        }
        return done;
    }

    private void enqueue(Op op) {
        // a route store is a cache: when the disk cannot keep up, drop the write rather than
        // grow without bound; the in-memory front still has the route
        if (!queue.offer(op) && dropped.getAndIncrement() % 10_000 == 0) {
            LOG.warn("route database {} is falling behind; dropped {} writes so far", path, dropped.get());
        }
    }

    private void writeLoop() {
        List<Op> batch = new ArrayList<>(BATCH);
        while (running || !queue.isEmpty()) {
            try {
                Op first = queue.poll(1, TimeUnit.SECONDS);
                if (first != null) fill(batch, first);
                apply(batch);
            } catch (InterruptedException e) {
                running = false;
            } catch (SQLException | RuntimeException e) {
                LOG.error("route database {}: a batch of {} writes failed: {}", path, batch.size(), e.toString());
                try {
                    writer.rollback();
                } catch (SQLException ignored) {
                    // the next batch starts a new transaction anyway
                }
            } finally {
                for (Op op : batch) if (op instanceof Barrier b) b.done().complete(null);
                batch.clear();
            }
        }
    }

    /** Gathers up to a batch, waiting at most the linger time, and never past a flush barrier. */
    private void fill(List<Op> batch, Op first) throws InterruptedException {
        batch.add(first);
        long deadline = System.nanoTime() + LINGER_NANOS;
        while (batch.size() < BATCH && !(batch.get(batch.size() - 1) instanceof Barrier) && running) {
            if (queue.drainTo(batch, BATCH - batch.size()) > 0) {
                if (batch.stream().anyMatch(op -> op instanceof Barrier)) return;
                continue;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) return;
            Op next = queue.poll(left, TimeUnit.NANOSECONDS);
            if (next == null) return;
            batch.add(next);
        }
    }

    private void apply(List<Op> batch) throws SQLException {
        long now = clock.millis();
        boolean purge = now - lastPurge >= PURGE_EVERY_MS;
        if (batch.isEmpty() && touches.isEmpty() && !purge) return;
        try (PreparedStatement insert = writer.prepareStatement(
                "INSERT OR IGNORE INTO routes (hash, upstream, narinfo, nar_url, latency_ms, created_at, last_used, expires_at)"
                        + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
                PreparedStatement update = writer.prepareStatement(
                        "UPDATE routes SET upstream = ?, narinfo = ?, nar_url = ?, latency_ms = ?, created_at = ?,"
                                + " last_used = ?, expires_at = ? WHERE hash = ?");
                PreparedStatement negative = writer.prepareStatement(
                        "INSERT OR IGNORE INTO negatives (hash, expires_at) VALUES (?, ?)");
                PreparedStatement renewNegative = writer.prepareStatement(
                        "UPDATE negatives SET expires_at = ? WHERE hash = ?");
                PreparedStatement dropNegative = writer.prepareStatement("DELETE FROM negatives WHERE hash = ?");
                PreparedStatement health = writer.prepareStatement(
                        "INSERT OR REPLACE INTO health (upstream, state, ema_ms, failures, last_probe) VALUES (?, ?, ?, ?, ?)");
                PreparedStatement touch = writer.prepareStatement(
                        "UPDATE routes SET last_used = ? WHERE hash = ? AND last_used < ?")) {
            for (Op op : batch) {
                if (op instanceof PutRoute p) {
                    Route r = p.route();
                    insert.setString(1, r.hash());
                    insert.setString(2, r.upstream());
                    insert.setBytes(3, r.narinfo());
                    insert.setString(4, r.narUrl());
                    insert.setDouble(5, r.latencyMs());
                    insert.setLong(6, r.createdAt());
                    insert.setLong(7, r.createdAt());
                    insert.setLong(8, r.expiresAt());
                    if (insert.executeUpdate() == 1) {
                        routeCount.incrementAndGet();
                    } else {
                        update.setString(1, r.upstream());
                        update.setBytes(2, r.narinfo());
                        update.setString(3, r.narUrl());
                        update.setDouble(4, r.latencyMs());
                        update.setLong(5, r.createdAt());
                        update.setLong(6, r.createdAt());
                        update.setLong(7, r.expiresAt());
                        update.setString(8, r.hash());
                        update.executeUpdate();
                    }
                    if (negativeCount.get() > 0) {
                        dropNegative.setString(1, r.hash());
                        negativeCount.addAndGet(-dropNegative.executeUpdate());
                    }
                } else if (op instanceof PutHealth h) {
                    UpstreamHealth.Snapshot snap = h.snapshot();
                    health.setString(1, snap.upstream());
                    health.setString(2, snap.state().name());
                    if (Double.isNaN(snap.emaMs())) health.setNull(3, java.sql.Types.REAL);
                    else health.setDouble(3, snap.emaMs());
                    health.setInt(4, snap.consecutiveFailures());
                    health.setLong(5, snap.lastProbeAt());
                    health.executeUpdate();
                } else if (op instanceof PutNegative n) {
                    negative.setString(1, n.hash());
                    negative.setLong(2, n.expiresAt());
                    if (negative.executeUpdate() == 1) {
                        negativeCount.incrementAndGet();
                    } else {
                        renewNegative.setLong(1, n.expiresAt());
                        renewNegative.setString(2, n.hash());
                        renewNegative.executeUpdate();
                    }
                }
            }
            for (String hash : List.copyOf(touches.keySet())) {
                Long at = touches.remove(hash);
                if (at == null) continue;
                touch.setLong(1, at);
                touch.setString(2, hash);
                touch.setLong(3, at);
                touch.addBatch();
            }
            touch.executeBatch();
            if (purge) {
                lastPurge = now;
                routeCount.addAndGet(-deleteWhere("routes", "expires_at <= " + now, Long.MAX_VALUE, "expires_at"));
                negativeCount.addAndGet(-deleteWhere("negatives", "expires_at <= " + now, Long.MAX_VALUE, "expires_at"));
            }
            long excess = routeCount.get() - maxEntries;
            if (excess > 0) routeCount.addAndGet(-deleteWhere("routes", "1", excess, "last_used"));
            long negativeExcess = negativeCount.get() - maxEntries;
            if (negativeExcess > 0) negativeCount.addAndGet(-deleteWhere("negatives", "1", negativeExcess, "expires_at"));
            writer.commit();
        }
    }

    /** Deletes up to {@code limit} rows matching {@code where}, oldest by {@code orderBy} first. */
    private long deleteWhere(String table, String where, long limit, String orderBy) throws SQLException {
        try (PreparedStatement ps = writer.prepareStatement("DELETE FROM " + table + " WHERE hash IN (SELECT hash FROM "
                + table + " WHERE " + where + " ORDER BY " + orderBy + " LIMIT ?)")) {
            ps.setLong(1, limit);
            return ps.executeUpdate();
        }
    }

    @Override
    public void close() {
        running = false;
        queue.offer(new Barrier(new CompletableFuture<>())); // wake the writer: it drains, then ends
        try {
            writerThread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeQuietly();
    }

    private void closeQuietly() {
        for (Connection c : readers) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing
            }
        }
        try {
            writer.close();
        } catch (SQLException ignored) {
            // closing
        }
    }
}
