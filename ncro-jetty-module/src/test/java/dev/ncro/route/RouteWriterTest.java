package dev.ncro.route;

import static dev.ncro.route.RouteMemoryBudgetTest.hash;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.ncro.config.Defaults;
import dev.ncro.testing.FakeClock;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** The write queue's bounds and a writer that cannot write, against real SQLite files. */
class RouteWriterTest {
    private static final Duration TTL = Duration.ofHours(1);
    /**
     * The writer waits for another process's lock this long (not the 5 s default), so that on a
     * loaded machine the first batch stays blocked, and its writes counted, until the test lets go.
     */
    private static final String LOCK_WAIT_LONGER_THAN_THE_TEST = "PRAGMA busy_timeout = 120000";

    @TempDir
    Path dir;

    private final FakeClock clock = new FakeClock();
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();
    private RouteStore store;
    private Path db;

    @BeforeEach
    void captureLog() {
        Logger writerLogger = assertInstanceOf(Logger.class, LoggerFactory.getLogger(RouteWriter.class), "logback in tests");
        log.start();
        writerLogger.addAppender(log);
    }

    @AfterEach
    void close() throws Exception {
        ((Logger) LoggerFactory.getLogger(RouteWriter.class)).detachAppender(log);
        if (store != null) store.stop();
    }

    private RouteStore open(String writerInitSql) throws Exception {
        db = dir.resolve("routes.db");
        RouteStore s = new RouteStore(db, 100_000, Defaults.MEMORY_BUDGET, TTL, Duration.ofMinutes(10), Duration.ofSeconds(5),
                clock, Defaults.ROUTE_READ_TIMEOUT, writerInitSql);
        s.start();
        return s;
    }

    private List<String> messages() {
        return log.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
    }

    private Route remember(int n, int narinfoBytes) {
        return store.remember(hash(n), "http://up", new byte[narinfoBytes], String.format("nar/%05d.nar", n), 1.0);
    }

    @Test
    void writerHeldByALock_fullQueue_dropsAndCountsNewWrites_withoutBlocking() throws Exception {
        store = open(LOCK_WAIT_LONGER_THAN_THE_TEST);
        int writes = 300;
        long weight = HeapWeights.QUEUED_OP + HeapWeights.route(new Route(hash(0), "http://up", new byte[64 * 1024],
                "nar/00000.nar", 1.0, 0, 0));
        long fits = Defaults.WRITE_QUEUE_MAX_BYTES / weight;
        assertTrue(fits < writes);

        try (Connection other = DriverManager.getConnection("jdbc:sqlite:" + db);
                Statement s = other.createStatement()) {
            s.execute("BEGIN EXCLUSIVE"); // another process holds the database: the writer waits
            for (int i = 0; i < writes; i++) {
                remember(i, 64 * 1024);
                assertTrue(store.pendingWriteBytes() <= Defaults.WRITE_QUEUE_MAX_BYTES, store.pendingWriteBytes() + " bytes");
            }
            assertEquals(writes - fits, store.droppedWrites());
            assertEquals(fits * weight, store.pendingWriteBytes(), "the batch being applied still counts");
            s.execute("COMMIT");
        }
        store.flush().get();

        assertEquals(fits, store.size(), "every write that was not dropped is in the database");
        assertEquals(0, store.pendingWriteBytes());
        assertEquals(Optional.empty(), store.writeFailure());
        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(writes - 1)), "a dropped write's route is still in memory");
        List<String> drops = messages().stream().filter(m -> m.contains("dropped")).toList();
        assertEquals(1, drops.size(), "logged once, not per drop: " + drops);
        assertTrue(drops.get(0).contains(db.toString()) && drops.get(0).contains("1 writes dropped"), drops.get(0));
    }

    @Test
    void dropsKeepHappening_areLoggedAgainAfterAMinute_withTheCount() throws Exception {
        store = open(LOCK_WAIT_LONGER_THAN_THE_TEST);
        long weight = HeapWeights.QUEUED_OP + HeapWeights.route(new Route(hash(0), "http://up", new byte[64 * 1024],
                "nar/00000.nar", 1.0, 0, 0));
        long fits = Defaults.WRITE_QUEUE_MAX_BYTES / weight;

        try (Connection other = DriverManager.getConnection("jdbc:sqlite:" + db);
                Statement s = other.createStatement()) {
            s.execute("BEGIN EXCLUSIVE");
            for (int i = 0; i < fits + 5; i++) remember(i, 64 * 1024);
            clock.advance(Duration.ofMinutes(1));
            remember(100_000, 64 * 1024);
            s.execute("COMMIT");
        }
        store.flush().get();

        List<String> drops = messages().stream().filter(m -> m.contains("dropped")).toList();
        assertEquals(2, drops.size(), drops.toString());
        assertTrue(drops.get(1).contains("6 writes dropped"), drops.get(1));
    }

    @Test
    void diskFull_writeFailureNamesTheDatabase_untilABatchCommitsAgain() throws Exception {
        // a real SQLITE_FULL: the writer's connection may not grow the file past its current pages
        store = open("PRAGMA max_page_count = 1");
        remember(1, 100);
        store.flush().get();
        assertEquals(Optional.empty(), store.writeFailure(), "a small row fits in the pages there are");

        remember(2, 64 * 1024); // needs overflow pages
        store.flush().get();

        Optional<String> failure = store.writeFailure();
        assertTrue(failure.isPresent());
        assertTrue(failure.get().contains(db.toString()) && failure.get().contains("full"), failure.get());
        assertEquals(1, store.size(), "the failed batch was rolled back, and the count with it");
        assertFalse(store.readThrough(hash(2)).isPresent());
        assertEquals(0, store.pendingWriteBytes(), "the failed batch released its queue bytes");
        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(2)), "still served from memory");

        remember(3, 100);
        store.flush().get();

        assertEquals(Optional.empty(), store.writeFailure(), "cleared by the next batch that commits");
        assertEquals(2, store.size());
        assertTrue(messages().stream().anyMatch(m -> m.contains("failed") && m.contains(db.toString())), messages().toString());
        assertTrue(messages().stream().anyMatch(m -> m.contains("succeed again")), messages().toString());
    }

    @Test
    void aFlushAlone_doesNotClearAFailure() throws Exception {
        store = open("PRAGMA max_page_count = 1");
        remember(1, 64 * 1024);
        store.flush().get();
        assertTrue(store.writeFailure().isPresent());

        store.flush().get();
        store.lookup(hash(1)); // a touch: an update that writes no new page

        store.flush().get();
        assertTrue(store.writeFailure().isPresent(), "nothing was written, so nothing proved the disk writable");
    }

    @Test
    void touchesAndWrites_releaseTheirQueueBytes_onceCommitted() throws Exception {
        store = open(null);
        for (int i = 0; i < 50; i++) remember(i, 1000);
        store.flush().get();
        store.stop();
        store = open(null);
        for (int i = 0; i < 50; i++) assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(i))); // loads and touches
        for (int i = 0; i < 50; i++) assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(i))); // touches again
        store.rememberNotFound(hash(60));

        store.flush().get();

        assertEquals(0, store.pendingWriteBytes());
        assertEquals(0, store.droppedWrites());
    }

    @Test
    void concurrentWritesAndHits_leaveNoQueueBytesBehind_andMemoryWithinBudget() throws Exception {
        db = dir.resolve("routes.db");
        long budget = 1024 * 1024;
        store = new RouteStore(db, 100_000, budget, TTL, Duration.ofMinutes(10), Duration.ofSeconds(5), clock);
        store.start();
        List<Thread> threads = new java.util.ArrayList<>();
        java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
        for (int t = 0; t < 4; t++) {
            int offset = t;
            Thread thread = new Thread(() -> {
                try {
                    for (int i = 0; i < 1200; i++) {
                        int n = (i * 4 + offset) % 500; // threads share keys: touches race on the same hash
                        switch (i % 3) {
                            case 0 -> remember(n, 1000);
                            case 1 -> store.lookup(hash(n));
                            default -> store.rememberNotFound(hash(1000 + n));
                        }
                    }
                } catch (Throwable e) {
                    failed.set(e);
                }
            });
            thread.start();
            threads.add(thread);
        }
        for (Thread t : threads) t.join();
        remember(9999, 1000); // on this thread: Caffeine's maintenance runs before it returns

        store.flush().get();

        assertEquals(null, failed.get());
        assertEquals(0, store.pendingWriteBytes(), "every reservation was released exactly once");
        assertEquals(0, store.droppedWrites());
        assertTrue(store.memoryBytes() <= budget, store.memoryBytes() + " bytes");
    }
}
