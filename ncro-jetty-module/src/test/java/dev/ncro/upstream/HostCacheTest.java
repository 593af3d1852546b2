package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The DNS cache, driven by a fake clock and an executor the test runs by hand. */
class HostCacheTest {
    private final AtomicLong now = new AtomicLong(1_000);
    private final Queue<Runnable> queued = new ArrayDeque<>();
    private final Executor manual = queued::add;
    private final AtomicInteger lookups = new AtomicInteger();
    private volatile boolean failing;

    private final Resolver resolver = host -> {
        lookups.incrementAndGet();
        if (failing) throw new UnknownHostException(host);
        return new InetAddress[] {InetAddress.getByAddress(host, new byte[] {93, (byte) 184, 0, (byte) lookups.get()})};
    };
    private final HostCache cache = new HostCache(resolver, manual, now::get, Duration.ofSeconds(30), Duration.ofSeconds(2));

    private void runQueued() {
        Runnable r;
        while ((r = queued.poll()) != null) r.run();
    }

    private void advance(Duration d) {
        now.addAndGet(d.toNanos());
    }

    @Test
    void lookup_runsOnTheExecutorOnly_andConcurrentAsksShareIt() throws Exception {
        CompletableFuture<InetAddress[]> first = cache.lookup("Cache.Example.org");
        CompletableFuture<InetAddress[]> second = cache.lookup("cache.example.org");

        assertFalse(first.isDone(), "nothing looked up on the caller's thread");
        assertEquals(0, lookups.get());
        assertSame(first, second, "one lookup per host at a time");
        runQueued();

        assertEquals(1, lookups.get());
        assertEquals(4, first.get()[0].getAddress().length);
    }

    @Test
    void answers_areRememberedForTheTtl_thenLookedUpAgain() throws Exception {
        cache.lookup("a.example");
        runQueued();

        advance(Duration.ofSeconds(29));
        assertTrue(cache.lookup("a.example").isDone(), "within the TTL: at once");
        advance(Duration.ofSeconds(2));
        CompletableFuture<InetAddress[]> refresh = cache.lookup("a.example");
        assertFalse(refresh.isDone(), "expired: looked up again");
        runQueued();

        assertEquals(2, lookups.get());
        assertEquals(2, refresh.get()[0].getAddress()[3]);
    }

    @Test
    void failures_areRememberedBriefly() {
        failing = true;
        CompletableFuture<InetAddress[]> f = cache.lookup("gone.example");
        runQueued();
        assertThrows(ExecutionException.class, f::get);

        assertTrue(cache.lookup("gone.example").isCompletedExceptionally(), "a fresh failure is answered from memory");
        advance(Duration.ofSeconds(3));
        assertFalse(cache.lookup("gone.example").isDone(), "then asked again");
        assertEquals(1, lookups.get());
    }

    @Test
    void httpComponentsSide_readsOnly_andKeepsTheLastGoodAnswerThroughAFailedRefresh() throws Exception {
        assertThrows(UnknownHostException.class, () -> cache.resolve("never.example"), "never looked up: no lookup here either");
        assertEquals(0, lookups.get());
        assertTrue(queued.isEmpty());

        cache.lookup("a.example");
        runQueued();
        InetAddress[] good = cache.resolve("A.example");
        advance(Duration.ofMinutes(1));
        failing = true;
        cache.lookup("a.example");
        runQueued();

        assertArrayEquals(good, cache.resolve("a.example"));
    }

    @Test
    void ipLiterals_areParsed_neverLookedUp() throws Exception {
        assertEquals(InetAddress.getByName("127.0.0.1"), cache.lookup("127.0.0.1").get()[0]);
        assertEquals(InetAddress.getByName("::1"), cache.lookup("[::1]").get()[0]);
        assertEquals(InetAddress.getByName("10.1.2.3"), cache.resolve("10.1.2.3")[0]);
        assertEquals(0, lookups.get());
        assertTrue(queued.isEmpty());
    }

    /** A resolver answering every host at once with one public address; no lookups counted. */
    private static HostCache immediate(AtomicLong clock) {
        Resolver any = host -> new InetAddress[] {InetAddress.getByAddress(host, new byte[] {93, (byte) 184, 0, 1})};
        return new HostCache(any, Runnable::run, clock::get, Duration.ofSeconds(30), Duration.ofSeconds(2));
    }

    @Test
    void hostsNobodyAskedForAnHour_areForgotten_byTheConnectorToo() throws Exception {
        AtomicLong clock = new AtomicLong();
        HostCache cache = immediate(clock);
        for (int i = 0; i < 5000; i++) cache.lookup("h" + i + ".cdn.example").get(); // a new host per NAR
        clock.addAndGet(Duration.ofHours(1).toNanos()); // every answer long expired
        for (int i = 0; i < 2000; i++) cache.lookup("later" + i + ".cdn.example").get(); // sweeps run

        assertThrows(UnknownHostException.class, () -> cache.resolve("h0.cdn.example"), "an hour-old host is not held");
        assertThrows(UnknownHostException.class, () -> cache.resolve("h4999.cdn.example"));
        assertArrayEquals(cache.lookup("later1999.cdn.example").get(), cache.resolve("later1999.cdn.example"));
        assertTrue(cache.size() <= 2000, "only the hosts of the last hour: " + cache.size());
    }

    @Test
    void aHostWithARefreshPending_keepsItsLastGoodAnswerThroughSweeps() throws Exception {
        cache.lookup("a.example");
        runQueued();
        InetAddress[] good = cache.resolve("a.example");
        advance(Duration.ofMinutes(1)); // expired: the next ask refreshes it
        CompletableFuture<InetAddress[]> refresh = cache.lookup("a.example");
        Runnable pendingRefresh = queued.poll();
        assertFalse(refresh.isDone(), "refresh pending");

        for (int i = 0; i < 3 * HostCache.SWEEP_ABOVE; i++) {
            cache.lookup("n" + i + ".example");
            runQueued(); // other hosts' lookups, which sweep; a.example's refresh stays pending
        }

        assertArrayEquals(good, cache.resolve("a.example"), "a minute past its TTL: still where its lookup said");
        pendingRefresh.run();
        assertArrayEquals(refresh.get(), cache.resolve("a.example"), "then the refreshed answer");
    }

    @Test
    void beyondMaxHosts_theOldestAreForgotten_evenWhenFresh() throws Exception {
        AtomicLong clock = new AtomicLong();
        HostCache cache = immediate(clock);
        int asked = HostCache.MAX_HOSTS + 500;
        for (int i = 0; i < asked; i++) {
            clock.incrementAndGet(); // all within the TTL, each a nanosecond younger
            cache.lookup("h" + i + ".cdn.example").get();
        }

        assertTrue(cache.size() <= HostCache.MAX_HOSTS, "held " + cache.size());
        assertThrows(UnknownHostException.class, () -> cache.resolve("h0.cdn.example"), "the oldest went");
        assertEquals(1, cache.resolve("h" + (asked - 1) + ".cdn.example").length, "the newest stays");
    }
}
