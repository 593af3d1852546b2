package dev.ncro.route;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeClock;
import dev.ncro.testing.Narinfos;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RouteStoreTest {
    private static final Duration TTL = Duration.ofHours(1);
    private static final Duration NEGATIVE_TTL = Duration.ofMinutes(10);
    private static final Duration MEMORY_NEGATIVE_TTL = Duration.ofSeconds(5);

    @TempDir
    Path dir;

    private final FakeClock clock = new FakeClock();
    private RouteStore store;

    private RouteStore open(Path db, long maxEntries) throws Exception {
        RouteStore s = new RouteStore(db, maxEntries, TTL, NEGATIVE_TTL, MEMORY_NEGATIVE_TTL, clock);
        s.start();
        return s;
    }

    @AfterEach
    void close() throws Exception {
        if (store != null) store.stop();
    }

    private static String h(int n) {
        return Narinfos.hash(n);
    }

    private Route remember(int n) {
        return store.remember(h(n), "http://up" + n % 2, ("narinfo " + n).getBytes(StandardCharsets.UTF_8), "nar/" + n + ".nar", 12.5);
    }

    @Test
    void rememberedRoute_isAHit_untilItsTtlPasses() throws Exception {
        store = open(dir.resolve("routes.db"), 100);
        remember(1);
        store.flush().get();

        assertInstanceOf(RouteStore.Hit.class, store.lookup(h(1)));
        clock.advance(TTL.minusSeconds(1));
        assertInstanceOf(RouteStore.Hit.class, store.lookup(h(1)));
        clock.advance(Duration.ofSeconds(1));
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(1)), "expired in memory and in SQLite");
        assertEquals(Optional.empty(), store.upstreamForNar("nar/1.nar"));
    }

    @Test
    void routesSurviveARestart_andAreUsedAtOnce() throws Exception {
        Path db = dir.resolve("routes.db");
        store = open(db, 100);
        remember(2);
        store.stop(); // stopping drains the writer

        store = open(db, 100);
        RouteStore.Lookup lookup = store.lookup(h(2));

        assertInstanceOf(RouteStore.Hit.class, lookup);
        assertArrayEquals("narinfo 2".getBytes(StandardCharsets.UTF_8), ((RouteStore.Hit) lookup).route().narinfo());
        assertEquals(Optional.of("http://up0"), store.upstreamForNar("nar/2.nar"));
        assertTrue(store.persistent());
    }

    @Test
    void restartedStore_stillHonoursTheOriginalTtl() throws Exception {
        Path db = dir.resolve("routes.db");
        store = open(db, 100);
        remember(3);
        store.stop();
        clock.advance(TTL.plusSeconds(1));

        store = open(db, 100);

        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(3)));
    }

    @Test
    void leastRecentlyUsedRoutes_areEvictedAtTheCap() throws Exception {
        store = open(dir.resolve("routes.db"), 10);
        for (int i = 0; i < 10; i++) {
            remember(i);
            clock.advance(Duration.ofSeconds(1));
        }
        store.flush().get();
        for (int i = 0; i < 5; i++) store.lookup(h(i)); // 0..4 are now the most recently used
        clock.advance(Duration.ofSeconds(1));
        for (int i = 10; i < 15; i++) remember(i);
        store.flush().get();

        assertEquals(10, store.size());
        for (int i = 0; i < 5; i++) assertTrue(store.readThrough(h(i)).isPresent(), "recently used " + i + " kept");
        for (int i = 5; i < 10; i++) assertFalse(store.readThrough(h(i)).isPresent(), "least recently used " + i + " evicted");
        for (int i = 10; i < 15; i++) assertTrue(store.readThrough(h(i)).isPresent(), "new " + i + " kept");
    }

    @Test
    void eviction_neverFiresBeforeTheCapIsExceeded() throws Exception {
        store = open(dir.resolve("routes.db"), 1);
        remember(20);
        store.flush().get();

        assertEquals(1, store.size());
        assertTrue(store.readThrough(h(20)).isPresent());

        remember(20); // the same hash again is an update, not a second row
        store.flush().get();
        assertEquals(1, store.size());
        assertTrue(store.readThrough(h(20)).isPresent());
    }

    @Test
    void notFound_isRememberedInMemoryThenOnDisk_untilNegativeTtl() throws Exception {
        store = open(dir.resolve("routes.db"), 100);
        store.rememberNotFound(h(30));
        store.flush().get();

        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(30)));
        clock.advance(MEMORY_NEGATIVE_TTL.plusSeconds(1));
        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(30)), "the database remembers past the memory window");
        clock.advance(NEGATIVE_TTL);
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(30)));
    }

    @Test
    void storedNotFounds_surviveARestartWithTheSameUpstreams_butNotOneWithAnotherSet() throws Exception {
        Path db = dir.resolve("routes.db");
        store = new RouteStore(db, 100, TTL, NEGATIVE_TTL, MEMORY_NEGATIVE_TTL, clock);
        store.setNegativesScope("http://a\nhttp://b");
        store.start();
        store.rememberNotFound(h(32));
        store.flush().get();
        store.stop();

        store = new RouteStore(db, 100, TTL, NEGATIVE_TTL, MEMORY_NEGATIVE_TTL, clock);
        store.setNegativesScope("http://a\nhttp://b");
        store.start();
        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(32)), "the same upstreams: still true");
        store.stop();

        // an upstream added: the path may be on it, so its not-found must not be served
        store = new RouteStore(db, 100, TTL, NEGATIVE_TTL, MEMORY_NEGATIVE_TTL, clock);
        store.setNegativesScope("http://a\nhttp://b\nhttp://c");
        store.start();
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(32)));
    }

    @Test
    void notFoundsRememberedBeforeAnUpstreamJoined_areNotServed_laterOnesAre() throws Exception {
        store = open(dir.resolve("routes.db"), 100);
        store.rememberNotFound(h(33));
        store.flush().get();
        clock.advance(Duration.ofSeconds(1));

        store.upstreamJoined();
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(33)), "neither from memory nor from the database");
        clock.advance(Duration.ofSeconds(1));
        store.rememberNotFound(h(34)); // asked of the newcomer too
        store.flush().get();
        clock.advance(MEMORY_NEGATIVE_TTL.plusSeconds(1));
        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(34)), "from the database");
    }

    /** A race that began before an upstream joined did not ask it: its not-found is not remembered. */
    @Test
    void notFoundOfARaceThatBeganBeforeAnUpstreamJoined_isNotRemembered() throws Exception {
        store = open(dir.resolve("routes.db"), 100);
        long atStart = store.joins();
        store.upstreamJoined(); // while the race runs
        clock.advance(Duration.ofSeconds(1)); // the race ends a moment later
        store.rememberNotFound(h(35), atStart);
        store.flush().get();
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(35)), "neither in memory nor stored");

        store.rememberNotFound(h(36), store.joins()); // a race that began after the join
        store.flush().get();
        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(36)));
        clock.advance(MEMORY_NEGATIVE_TTL.plusSeconds(1));
        assertInstanceOf(RouteStore.NotFound.class, store.lookup(h(36)), "from the database");
        assertInstanceOf(RouteStore.Unknown.class, store.lookup(h(35)), "nor stored for later");
    }

    @Test
    void aRouteReplacesARememberedNotFound() throws Exception {
        store = open(dir.resolve("routes.db"), 100);
        store.rememberNotFound(h(31));
        remember(31);
        store.flush().get();

        assertInstanceOf(RouteStore.Hit.class, store.lookup(h(31)));
    }

    @Test
    void corruptDatabase_startsInMemory_andSaysWhy() throws Exception {
        Path db = dir.resolve("routes.db");
        Files.write(db, "this is not an SQLite database, just garbage bytes ".repeat(100).getBytes(StandardCharsets.UTF_8));

        store = open(db, 100);

        assertFalse(store.persistent());
        assertTrue(store.state().contains(db.toString()), store.state());
        remember(40);
        assertInstanceOf(RouteStore.Hit.class, store.lookup(h(40)));
    }

    @Test
    void unusableDirectory_startsInMemory() throws Exception {
        Path notADirectory = dir.resolve("file");
        Files.writeString(notADirectory, "x");

        store = open(notADirectory.resolve("routes.db"), 100);

        assertFalse(store.persistent());
        assertTrue(store.state().startsWith("memory only"), store.state());
    }
}
