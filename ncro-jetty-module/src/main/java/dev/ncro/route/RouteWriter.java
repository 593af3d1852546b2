package dev.ncro.route;

import dev.ncro.config.Defaults;
import dev.ncro.health.UpstreamHealth;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one thread that writes the route database, and the bounded queue in front of it.
 *
 * <p>Callers (request threads among them) only enqueue; they never wait. The writer takes what
 * is queued in batches of up to {@link Defaults#ROUTE_WRITE_BATCH} writes, lingering {@link Defaults#ROUTE_WRITE_LINGER} to fill
 * one, and commits each batch as one transaction. Hits are recorded as "touches" in a map and
 * written with the next batch, so a hit costs no write of its own.
 *
 * <p><b>Bounds.</b> Writes waiting for the writer, including the batch it is applying, hold at
 * most {@code maxQueueBytes} of heap (estimated by {@link HeapWeights}) and at most
 * {@value #MAX_QUEUED_OPS} writes. When either is reached the new write is dropped: the route
 * store is a cache, and the in-memory front still has the route. Drops are counted
 * ({@link #droppedWrites()}) and logged the first time, then at most once a minute with the
 * count. Flush barriers are never dropped.
 *
 * <p><b>Failures.</b> A batch that fails (disk full, file removed, database locked past the busy
 * timeout) is rolled back and its writes are lost; {@link #failure()} names the database and
 * the reason until a later batch that writes something commits. The failure is logged when it
 * starts, then at most once a minute while it lasts, and once more when writes succeed again.
 *
 * <p><b>Size.</b> The routes table is held at {@code maxEntries} rows by evicting the least
 * recently used once a batch has pushed the count over it (never before: the count is exact,
 * kept from the changes each committed statement reports). Expired rows are purged once a
 * minute.
 */
final class RouteWriter implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RouteWriter.class);
    static final int BATCH = Defaults.ROUTE_WRITE_BATCH;
    static final long LINGER_MS = Defaults.ROUTE_WRITE_LINGER.toMillis();
    static final int MAX_QUEUED_OPS = Defaults.WRITE_QUEUE_MAX_OPS;
    private static final long PURGE_EVERY_MS = 60_000;
    private static final Duration LOG_EVERY = Duration.ofMinutes(1);

    private sealed interface Op permits PutRoute, PutNegative, PutHealth, DeleteRoute, Barrier {
        /** Heap held while the op waits, in bytes. */
        long weight();
    }

    private record PutRoute(Route route) implements Op {
        public long weight() {
            return HeapWeights.QUEUED_OP + HeapWeights.route(route);
        }
    }

    private record PutNegative(String hash, long expiresAt) implements Op {
        public long weight() {
            return HeapWeights.QUEUED_OP + HeapWeights.string(hash);
        }
    }

    private record PutHealth(UpstreamHealth.Snapshot snapshot) implements Op {
        public long weight() {
            return HeapWeights.QUEUED_OP + HeapWeights.HEALTH_SNAPSHOT + HeapWeights.string(snapshot.upstream());
        }
    }

    /** Deletes the route only if it is still the one that was rejected (same decision time). */
    private record DeleteRoute(String hash, long createdAt) implements Op {
        public long weight() {
            return HeapWeights.QUEUED_OP + HeapWeights.string(hash);
        }
    }

    private record Barrier(CompletableFuture<Void> done) implements Op {
        public long weight() {
            return 0;
        }
    }

    private final Path path;
    private final Connection connection;
    private final long maxEntries;
    private final long maxQueueBytes;
    private final InstantSource clock;
    /** Unbounded as a collection; {@link #admit} bounds what enters it. */
    private final LinkedBlockingQueue<Op> queue = new LinkedBlockingQueue<>();
    private final Map<String, Long> touches = new ConcurrentHashMap<>();
    private final AtomicLong pendingBytes = new AtomicLong();
    private final AtomicLong pendingOps = new AtomicLong();
    private final AtomicLong routeCount;
    private final AtomicLong negativeCount;
    private final AtomicLong dropped = new AtomicLong();
    private final LogThrottle dropLog;
    private final LogThrottle failureLog;
    private final Thread thread;
    private volatile boolean running = true;
    private volatile String failure;
    // writer thread only
    private long failedBatches;
    private long lastPurge;

    /**
     * Starts the writer thread on {@code connection} (auto-commit off), which it owns and closes.
     *
     * @param routes rows in the routes table now
     * @param negatives rows in the negatives table now
     */
    RouteWriter(Path path, Connection connection, long maxEntries, long maxQueueBytes, long routes, long negatives,
            InstantSource clock) {
        if (maxQueueBytes <= 0) throw new IllegalArgumentException("maxQueueBytes must be positive, got " + maxQueueBytes);
        this.path = path;
        this.connection = connection;
        this.maxEntries = maxEntries;
        this.maxQueueBytes = maxQueueBytes;
        this.clock = clock;
        this.routeCount = new AtomicLong(routes);
        this.negativeCount = new AtomicLong(negatives);
        this.dropLog = new LogThrottle(clock, LOG_EVERY);
        this.failureLog = new LogThrottle(clock, LOG_EVERY);
        this.lastPurge = clock.millis();
        this.thread = new Thread(this::writeLoop, "ncro-route-writer");
        thread.setDaemon(true);
        thread.start();
    }

    long routeCount() {
        return routeCount.get();
    }

    long droppedWrites() {
        return dropped.get();
    }

    /** Heap held by writes waiting for the writer (or in the batch it applies), estimated. */
    long pendingBytes() {
        return pendingBytes.get();
    }

    /** Why the last batch failed, naming the database; empty once a batch has written again. */
    Optional<String> failure() {
        return Optional.ofNullable(failure);
    }

    // ---- any thread; never blocks ----

    void put(Route route) {
        enqueue(new PutRoute(route));
    }

    void putNegative(String hash, long expiresAt) {
        enqueue(new PutNegative(hash, expiresAt));
    }

    void putHealth(UpstreamHealth.Snapshot snapshot) {
        enqueue(new PutHealth(snapshot));
    }

    void delete(String hash, long createdAt) {
        enqueue(new DeleteRoute(hash, createdAt));
    }

    /** Records a hit for the least-recently-used order; written with the next batch. */
    void touch(String hash, long at) {
        Long known = touches.get(hash); // a hot route touched again within its millisecond: a read, no lock
        if (known != null && known >= at) return;
        if (touches.computeIfPresent(hash, (h, before) -> Math.max(before, at)) != null) return;
        if (!admit(HeapWeights.TOUCH)) {
            dropped();
            return;
        }
        // reserved first, so that the writer, which releases what it drains, never releases
        // more than was reserved
        if (touches.putIfAbsent(hash, at) != null) release(HeapWeights.TOUCH, 1);
    }

    /** Completes once everything queued before it is committed (or its batch has failed). */
    CompletableFuture<Void> flush() {
        CompletableFuture<Void> done = new CompletableFuture<>();
        if (!running) {
            done.complete(null);
            return done;
        }
        queue.add(new Barrier(done));
        return done;
    }

    private void enqueue(Op op) {
        if (!running) return; // stopping: the database is about to close
        if (admit(op.weight())) {
            queue.add(op);
        } else {
            dropped();
        }
    }

    /** Reserves room for one write of {@code weight} bytes, or says there is none. */
    private boolean admit(long weight) {
        if (pendingOps.incrementAndGet() > MAX_QUEUED_OPS) {
            pendingOps.decrementAndGet();
            return false;
        }
        for (long before = pendingBytes.get(); ; before = pendingBytes.get()) {
            if (before + weight > maxQueueBytes) {
                pendingOps.decrementAndGet();
                return false;
            }
            if (pendingBytes.compareAndSet(before, before + weight)) return true;
        }
    }

    private void release(long bytes, long ops) {
        pendingBytes.addAndGet(-bytes);
        pendingOps.addAndGet(-ops);
    }

    private void dropped() {
        long n = dropped.incrementAndGet();
        if (dropLog.shouldLog()) {
            LOG.warn("route database {} is falling behind: its write queue is full ({} writes, {} of {} bytes);"
                    + " {} writes dropped so far (those routes stay in memory only)",
                    path, pendingOps.get(), pendingBytes.get(), maxQueueBytes, n);
        }
    }

    // ---- the writer thread ----

    private void writeLoop() {
        List<Op> batch = new ArrayList<>(BATCH);
        Map<String, Long> touched = new HashMap<>();
        while (running || !queue.isEmpty()) {
            try {
                Op first = queue.poll(1, TimeUnit.SECONDS);
                if (first != null) fill(batch, first);
                drainTouches(touched);
                boolean wrote = apply(batch, touched);
                if (wrote) succeeded();
            } catch (InterruptedException e) {
                running = false;
            } catch (Exception | Error e) { // an exception must not end the only writer
                failed(batch.stream().filter(op -> !(op instanceof Barrier)).count() + touched.size(), e);
                rollback();
            } finally {
                long bytes = (long) touched.size() * HeapWeights.TOUCH;
                long ops = touched.size();
                for (Op op : batch) {
                    if (!(op instanceof Barrier)) {
                        bytes += op.weight();
                        ops++;
                    }
                }
                release(bytes, ops); // only now: the batch held its writes until here
                // then the barriers, so that a flush sees the batch's outcome in full
                for (Op op : batch) if (op instanceof Barrier b) b.done().complete(null);
                batch.clear();
                touched.clear();
            }
        }
    }

    /**
     * Ends the failed batch's transaction and opens the next one. After some errors (SQLITE_FULL
     * among them) SQLite has already rolled back by itself; the driver's rollback then fails
     * before it begins a new transaction, and without one the next batch's statements would
     * each commit alone, behind the counts' back.
     */
    private void rollback() {
        try {
            connection.rollback();
        } catch (SQLException | RuntimeException e) {
            try (Statement s = connection.createStatement()) {
                s.execute("BEGIN");
            } catch (SQLException | RuntimeException again) {
                LOG.warn("route database {}: cannot start a new transaction after a failed batch: {}", path, again.toString());
            }
        }
    }

    /** Gathers up to a batch, waiting at most the linger time, and never past a flush barrier. */
    private void fill(List<Op> batch, Op first) throws InterruptedException {
        batch.add(first);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(LINGER_MS);
        while (batch.size() < BATCH && !(batch.get(batch.size() - 1) instanceof Barrier) && running) {
            int from = batch.size();
            if (queue.drainTo(batch, BATCH - batch.size()) > 0) {
                for (int i = from; i < batch.size(); i++) if (batch.get(i) instanceof Barrier) return;
                continue;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) return;
            Op next = queue.poll(left, TimeUnit.NANOSECONDS);
            if (next == null) return;
            batch.add(next);
        }
    }

    private void drainTouches(Map<String, Long> touched) {
        for (String hash : List.copyOf(touches.keySet())) {
            Long at = touches.remove(hash);
            if (at != null) touched.put(hash, at);
        }
    }

    /**
     * Applies one batch as one transaction. Counts change only after the commit, so that a
     * rolled-back batch leaves them exact.
     *
     * @return whether the batch held a write (not just barriers and touches)
     */
    private boolean apply(List<Op> batch, Map<String, Long> touched) throws SQLException {
        long now = clock.millis();
        boolean purge = now - lastPurge >= PURGE_EVERY_MS;
        boolean wrote = batch.stream().anyMatch(op -> !(op instanceof Barrier));
        if (!wrote && touched.isEmpty() && !purge) return false;
        long routes = 0;
        long negatives = 0;
        try (PreparedStatement insert = connection.prepareStatement(
                "INSERT OR IGNORE INTO routes (hash, upstream, narinfo, nar_url, latency_ms, created_at, last_used, expires_at)"
                        + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
                PreparedStatement update = connection.prepareStatement(
                        "UPDATE routes SET upstream = ?, narinfo = ?, nar_url = ?, latency_ms = ?, created_at = ?,"
                                + " last_used = ?, expires_at = ? WHERE hash = ?");
                PreparedStatement delete = connection.prepareStatement(
                        "DELETE FROM routes WHERE hash = ? AND created_at = ?");
                PreparedStatement negative = connection.prepareStatement(
                        "INSERT OR IGNORE INTO negatives (hash, expires_at) VALUES (?, ?)");
                PreparedStatement renewNegative = connection.prepareStatement(
                        "UPDATE negatives SET expires_at = ? WHERE hash = ?");
                PreparedStatement dropNegative = connection.prepareStatement("DELETE FROM negatives WHERE hash = ?");
                PreparedStatement touch = connection.prepareStatement(
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
                        routes++;
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
                    if (negativeCount.get() + negatives > 0) {
                        dropNegative.setString(1, r.hash());
                        negatives -= dropNegative.executeUpdate();
                    }
                } else if (op instanceof DeleteRoute d) {
                    delete.setString(1, d.hash());
                    delete.setLong(2, d.createdAt());
                    routes -= delete.executeUpdate();
                } else if (op instanceof PutHealth h) {
                    HealthTable.write(connection, h.snapshot());
                } else if (op instanceof PutNegative n) {
                    negative.setString(1, n.hash());
                    negative.setLong(2, n.expiresAt());
                    if (negative.executeUpdate() == 1) {
                        negatives++;
                    } else {
                        renewNegative.setLong(1, n.expiresAt());
                        renewNegative.setString(2, n.hash());
                        renewNegative.executeUpdate();
                    }
                }
            }
            for (Map.Entry<String, Long> t : touched.entrySet()) {
                touch.setLong(1, t.getValue());
                touch.setString(2, t.getKey());
                touch.setLong(3, t.getValue());
                touch.addBatch();
            }
            if (!touched.isEmpty()) touch.executeBatch();
            if (purge) {
                routes -= deleteWhere("routes", "expires_at <= " + now, Long.MAX_VALUE, "expires_at");
                negatives -= deleteWhere("negatives", "expires_at <= " + now, Long.MAX_VALUE, "expires_at");
            }
            long excess = routeCount.get() + routes - maxEntries;
            if (excess > 0) routes -= deleteWhere("routes", "1", excess, "last_used");
            long negativeExcess = negativeCount.get() + negatives - maxEntries;
            if (negativeExcess > 0) negatives -= deleteWhere("negatives", "1", negativeExcess, "expires_at");
            connection.commit();
        }
        routeCount.addAndGet(routes);
        negativeCount.addAndGet(negatives);
        if (purge) lastPurge = now;
        return wrote;
    }

    /** Deletes up to {@code limit} rows matching {@code where}, oldest by {@code orderBy} first. */
    private long deleteWhere(String table, String where, long limit, String orderBy) throws SQLException {
        try (PreparedStatement ps = connection.prepareStatement("DELETE FROM " + table + " WHERE hash IN (SELECT hash FROM "
                + table + " WHERE " + where + " ORDER BY " + orderBy + " LIMIT ?)")) {
            ps.setLong(1, limit);
            return ps.executeUpdate();
        }
    }

    private void succeeded() {
        if (failure == null) return;
        LOG.info("route database {}: writes succeed again after {} failed batches", path, failedBatches);
        failure = null;
        failedBatches = 0;
        failureLog.reset();
    }

    private void failed(long writes, Throwable e) {
        failedBatches++;
        failure = "route database " + path + " cannot be written: " + e.getMessage();
        if (failureLog.shouldLog()) {
            LOG.error("route database {}: a batch of {} writes failed ({} failed batches in a row); routes are kept in"
                    + " memory only until the database can be written again: {}", path, writes, failedBatches, e.toString());
        }
    }

    /** Stops taking writes, lets the writer commit what is queued, then closes the connection. */
    @Override
    public void close() {
        running = false;
        queue.add(new Barrier(new CompletableFuture<>())); // wake the writer: it drains, then ends
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) LOG.warn("route database {}: the writer did not finish within 10 s; closing anyway", path);
        try {
            connection.close();
        } catch (SQLException ignored) {
            // closing
        }
    }
}
