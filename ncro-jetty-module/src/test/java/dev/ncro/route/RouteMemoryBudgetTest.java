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
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The heap held by routes is bounded in bytes, whatever the size of the narinfos. */
class RouteMemoryBudgetTest {
    private static final long BUDGET = 1024 * 1024;
    private static final int NARINFO_BYTES = 64 * 1024;
    private static final int ROUTES = 40; // 2.5 MiB of narinfos: more than twice the budget

    @TempDir
    Path dir;

    private final FakeClock clock = new FakeClock();
    private RouteStore store;

    @AfterEach
    void close() throws Exception {
        if (store != null) store.stop();
    }

    private RouteStore open(Path db) throws Exception {
        RouteStore s = new RouteStore(db, 1000, BUDGET, Duration.ofHours(1), Duration.ofMinutes(10), Duration.ofSeconds(5), clock);
        return s;
    }

    /** A narinfo padded to 64 KiB, as a hostile upstream could send; distinct for each n. */
    private static byte[] padded(int n) {
        byte[] narinfo = new byte[NARINFO_BYTES];
        Arrays.fill(narinfo, (byte) ('a' + n % 26));
        byte[] head = ("StorePath: " + n + "\n").getBytes(StandardCharsets.UTF_8);
        System.arraycopy(head, 0, narinfo, 0, head.length);
        return narinfo;
    }

    /** A distinct hash for every n (Narinfos.hash repeats after 32). */
    static String hash(int n) {
        char[] c = new char[32];
        Arrays.fill(c, '0');
        for (int i = 31; n > 0; i--, n /= 32) c[i] = Narinfos.NIX32.charAt(n % 32);
        return new String(c);
    }

    private static String narUrl(int n) {
        return String.format("nar/%04d.nar", n);
    }

    @Test
    void largeNarinfos_neverPushTheCachesPastTheBudget_andEvictedRoutesAreReadFromSqlite() throws Exception {
        store = open(dir.resolve("routes.db"));
        AtomicInteger readFromDatabase = new AtomicInteger();
        store.setValidator(route -> {
            readFromDatabase.incrementAndGet(); // called only for routes read from SQLite
            return null;
        });
        store.start();

        for (int i = 0; i < ROUTES; i++) {
            store.remember(hash(i), "http://up", padded(i), narUrl(i), 1.0);
            assertTrue(store.memoryBytes() <= BUDGET, "after route " + i + ": " + store.memoryBytes() + " bytes");
            assertTrue(store.routesInMemory() * NARINFO_BYTES <= BUDGET, store.routesInMemory() + " routes held");
        }
        store.flush().get();
        assertEquals(ROUTES, store.size(), "every route reached the database");

        for (int i = 0; i < ROUTES; i++) {
            RouteStore.Lookup lookup = store.lookup(hash(i));
            assertInstanceOf(RouteStore.Hit.class, lookup, "route " + i);
            assertArrayEquals(padded(i), ((RouteStore.Hit) lookup).route().narinfo(), "route " + i);
            assertTrue(store.memoryBytes() <= BUDGET, "after lookup " + i + ": " + store.memoryBytes() + " bytes");
            assertTrue(store.routesInMemory() * NARINFO_BYTES <= BUDGET, store.routesInMemory() + " routes held");
        }
        assertTrue(readFromDatabase.get() > 0, "some routes had left memory and came from SQLite");

        int before = readFromDatabase.get();
        Optional<Route> early = store.routeForNar(narUrl(0));
        assertTrue(early.isPresent());
        assertArrayEquals(padded(0), early.get().narinfo());
        assertTrue(store.memoryBytes() <= BUDGET);
        assertTrue(readFromDatabase.get() >= before);
    }

    @Test
    void memoryOnly_holdsTheSameBudget() throws Exception {
        Path notADirectory = dir.resolve("file");
        Files.writeString(notADirectory, "x");
        store = open(notADirectory.resolve("routes.db"));
        store.start();
        assertFalse(store.persistent());

        for (int i = 0; i < ROUTES; i++) {
            store.remember(hash(i), "http://up", padded(i), narUrl(i), 1.0);
            assertTrue(store.memoryBytes() <= BUDGET, "after route " + i + ": " + store.memoryBytes() + " bytes");
        }

        long held = 0;
        for (int i = 0; i < ROUTES; i++) if (store.lookup(hash(i)) instanceof RouteStore.Hit) held++;
        assertTrue(held > 0, "some routes are held");
        assertTrue(held * NARINFO_BYTES <= BUDGET, held + " routes of 64 KiB held");
    }

    @Test
    void smallMaxEntries_boundsTheRoutesInMemory_evenWhenTheyWeighLittle() throws Exception {
        Path notADirectory = dir.resolve("file");
        Files.writeString(notADirectory, "x");
        store = new RouteStore(notADirectory.resolve("routes.db"), 10, BUDGET, Duration.ofHours(1), Duration.ofMinutes(10),
                Duration.ofSeconds(5), clock);
        store.start();

        for (int i = 0; i < 50; i++) store.remember(hash(i), "http://up", new byte[100], narUrl(i), 1.0);

        long held = 0;
        for (int i = 0; i < 50; i++) if (store.lookup(hash(i)) instanceof RouteStore.Hit) held++;
        assertTrue(held > 0 && held <= 10, held + " routes held");
    }

    @Test
    void aRouteWeighsItsNarinfo_plusAnHonestOverhead() {
        Route route = new Route(hash(1), "https://cache.nixos.org", new byte[600], "nar/"
                + "1".repeat(52) + ".nar.xz", 1.0, 0, 1);
        long weight = HeapWeights.CACHE_ENTRY + HeapWeights.route(route);

        // 600 narinfo bytes; hash, base URL and file URL as strings; the route and the cache's node
        assertTrue(weight > 600 + 32 + 23 + 63 + 200, "weight " + weight);
        assertTrue(weight < 1200, "weight " + weight);
    }
}
