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
}
