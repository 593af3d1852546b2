package dev.ncro.route;

import static dev.ncro.route.RouteMemoryBudgetTest.hash;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Defaults;
import dev.ncro.testing.FakeClock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Routes read back from SQLite: re-checked, found by NAR URL, and never waited for too long. */
class StoredRouteTest {
    private static final Duration TTL = Duration.ofHours(1);

    @TempDir
    Path dir;

    private final FakeClock clock = new FakeClock();
    private RouteStore store;

    @AfterEach
    void close() throws Exception {
        if (store != null) store.stop();
    }

    private RouteStore create(Duration readTimeout) {
        return new RouteStore(dir.resolve("routes.db"), 1000, Defaults.MEMORY_BUDGET, TTL, Duration.ofMinutes(10),
                Duration.ofSeconds(5), clock, readTimeout, null);
    }

    private RouteStore open(RouteValidator validator) throws Exception {
        RouteStore s = create(Defaults.ROUTE_READ_TIMEOUT);
        if (validator != null) s.setValidator(validator);
        s.start();
        return s;
    }

    private static byte[] narinfo(int n) {
        return ("StorePath: /nix/store/" + hash(n) + "-p\nURL: nar/" + n + ".nar\nFileSize: " + (1000 + n) + "\n")
                .getBytes(StandardCharsets.UTF_8);
    }

    private Route remember(int n, String upstream) {
        return store.remember(hash(n), upstream, narinfo(n), "nar/" + n + ".nar", 3.0);
    }

    /** Routes 1 and 2 from upstreams a and b, written by an earlier run. */
    private void earlierRun() throws Exception {
        store = open(null);
        remember(1, "http://a");
        remember(2, "http://b");
        store.stop(); // drains the writer
    }

    @Test
    void storedRoute_thatTheValidatorNowRejects_isUnknown_andDeleted() throws Exception {
        earlierRun();
        store = open(route -> route.upstream().equals("http://a") ? "upstream a has a new public key" : null);

        assertInstanceOf(RouteStore.Unknown.class, store.lookup(hash(1)));
        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(2)), "b's route still passes");
        store.flush().get();

        assertFalse(store.readThrough(hash(1)).isPresent(), "the rejected row is gone");
        assertTrue(store.readThrough(hash(2)).isPresent());
        assertEquals(1, store.size());
        assertEquals(1, store.rejectedRoutes());
    }

    @Test
    void storedRoute_foundByNarUrl_isCheckedToo() throws Exception {
        earlierRun();
        store = open(route -> route.upstream().equals("http://a") ? "upstream a now filters this path" : null);

        assertEquals(Optional.empty(), store.routeForNar("nar/1.nar"));
        assertEquals(Optional.empty(), store.upstreamForNar("nar/1.nar"));
        assertEquals(Optional.of("http://b"), store.upstreamForNar("nar/2.nar"));
        store.flush().get();

        assertFalse(store.readThrough(hash(1)).isPresent());
    }

    @Test
    void storedRoute_isCheckedOnceWhenLoaded_thenServedFromMemory() throws Exception {
        earlierRun();
        AtomicInteger checks = new AtomicInteger();
        store = open(route -> {
            checks.incrementAndGet();
            return null;
        });

        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(1)));
        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(1)));
        assertTrue(store.routeForNar("nar/1.nar").isPresent());
        remember(3, "http://a"); // learned in this run: the engine checked it

        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(3)));
        assertEquals(1, checks.get());
    }

    @Test
    void validatorThatThrows_skipsTheRoute_butKeepsTheRow() throws Exception {
        earlierRun();
        store = open(route -> {
            throw new IllegalStateException("bug in the check");
        });

        assertInstanceOf(RouteStore.Unknown.class, store.lookup(hash(1)));
        store.flush().get();

        assertTrue(store.readThrough(hash(1)).isPresent());
        assertEquals(0, store.rejectedRoutes());
    }

    @Test
    void validator_cannotBeChangedOnceStarted() throws Exception {
        store = open(null);

        assertThrows(IllegalStateException.class, () -> store.setValidator(RouteValidator.ACCEPT_ALL));
    }

    @Test
    void routeForNar_returnsTheWholeRoute_fromMemoryAndAfterARestart() throws Exception {
        store = open(null);
        Route remembered = remember(4, "http://a");

        Optional<Route> live = store.routeForNar("nar/4.nar");
        assertEquals(Optional.of(remembered), live);
        store.stop();
        store = open(null);
        Optional<Route> stored = store.routeForNar("nar/4.nar");

        assertTrue(stored.isPresent());
        assertArrayEquals(narinfo(4), stored.get().narinfo(), "the narinfo, with its FileSize");
        assertEquals("http://a", stored.get().upstream());
        assertEquals(remembered.expiresAt(), stored.get().expiresAt());
    }

    @Test
    void routeForNar_followsTheNewestNarinfo_notAStaleIndexEntry() throws Exception {
        store = open(null);
        store.remember(hash(5), "http://a", narinfo(5), "nar/old.nar", 3.0);
        clock.advance(Duration.ofSeconds(1));
        store.remember(hash(5), "http://b", narinfo(5), "nar/new.nar", 3.0);
        store.flush().get();

        assertEquals(Optional.empty(), store.routeForNar("nar/old.nar"));
        assertEquals(Optional.of("http://b"), store.upstreamForNar("nar/new.nar"));
    }

    @Test
    void routeForNar_expiresWithItsRoute() throws Exception {
        store = open(null);
        remember(6, "http://a");
        store.flush().get();

        clock.advance(TTL);

        assertEquals(Optional.empty(), store.routeForNar("nar/6.nar"));
    }

    @Test
    void everyReaderBusy_lookupAnswersUnknown_atOnce_thenHitsOnceOneIsFree() throws Exception {
        earlierRun();
        store = create(Duration.ZERO);
        store.start();
        CountDownLatch held = new CountDownLatch(SqliteRoutes.READERS);
        CountDownLatch release = new CountDownLatch(1);
        List<Thread> holders = new ArrayList<>();
        for (int i = 0; i < SqliteRoutes.READERS; i++) {
            Thread t = new Thread(() -> {
                try {
                    store.database().read(c -> {
                        held.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        return null;
                    });
                } catch (java.sql.SQLException e) {
                    throw new IllegalStateException(e);
                }
            });
            t.start();
            holders.add(t);
        }
        assertTrue(held.await(10, TimeUnit.SECONDS));

        RouteStore.Lookup busy = store.lookup(hash(1));
        Optional<Route> busyNar = store.routeForNar("nar/2.nar");
        release.countDown();
        for (Thread t : holders) t.join();

        assertInstanceOf(RouteStore.Unknown.class, busy);
        assertEquals(Optional.empty(), busyNar);
        assertInstanceOf(RouteStore.Hit.class, store.lookup(hash(1)));
        assertTrue(store.routeForNar("nar/2.nar").isPresent());
    }
}
