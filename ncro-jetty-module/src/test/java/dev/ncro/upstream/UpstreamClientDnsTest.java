package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Host lookups run on the client's own DNS threads, never on the caller's: a resolver that
 * hangs delays nothing but the requests to that host, and their timeouts still fire.
 */
class UpstreamClientDnsTest {
    /** A resolver whose answers the test scripts: "slow.test" hangs until released. */
    private static final class ScriptedResolver implements Resolver {
        final CountDownLatch release = new CountDownLatch(1);
        final CountDownLatch slowAsked = new CountDownLatch(1);
        final List<String> threads = new CopyOnWriteArrayList<>();
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public InetAddress[] resolve(String host) throws UnknownHostException {
            calls.incrementAndGet();
            threads.add(Thread.currentThread().getName());
            switch (host) {
                case "slow.test" -> {
                    slowAsked.countDown();
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    throw new UnknownHostException(host);
                }
                case "cache.test" -> {
                    return new InetAddress[] {InetAddress.getByAddress(host, new byte[] {127, 0, 0, 1})};
                }
                default -> throw new UnknownHostException(host);
            }
        }
    }

    private final ScriptedResolver resolver = new ScriptedResolver();
    private UpstreamClient client;
    private ScriptedServer server;

    @AfterEach
    void tearDown() throws Exception {
        resolver.release.countDown();
        if (client != null) client.stop();
        if (server != null) server.close();
    }

    private UpstreamClient start() throws Exception {
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(), resolver);
        client.start();
        return client;
    }

    @Test
    void hangingResolver_fetchReturnsAtOnce_failsOnTime_andOtherHostsAreServed() throws Exception {
        server = ScriptedServer.answering(200, "fine");
        start();
        Upstream slow = new Upstream(URI.create("http://slow.test:" + server.port()), 10, 0);
        Upstream fast = new Upstream(server.uri(), 10, 1);
        Duration timeout = Duration.ofMillis(300);

        long before = System.nanoTime();
        Outcome stuck = new Outcome();
        client.fetch(slow, slow.resolve("x.narinfo"), 1024, timeout, stuck);
        long returnedNanos = System.nanoTime() - before;
        assertTrue(resolver.slowAsked.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS));

        Outcome other = new Outcome();
        client.fetch(fast, fast.resolve("x.narinfo"), 1024, Duration.ofSeconds(10), other);
        assertEquals("fine", other.body(), "another host is served while the lookup hangs");

        Exception failure = stuck.failure();
        long tookMillis = (stuck.atNanos - before) / 1_000_000;
        assertInstanceOf(TimeoutException.class, failure, failure.toString());
        assertTrue(tookMillis >= 250 && tookMillis < 5_000, "the deadline fired on time, not after the lookup: " + tookMillis);
        assertTrue(returnedNanos < TimeUnit.SECONDS.toNanos(2), "fetch returned at once");
        assertEquals(1, resolver.release.getCount(), "still hanging when the timeout fired");
        assertTrue(stuck.thread.startsWith("ncro-upstream"), "callbacks run on the client's executor: " + stuck.thread);
        assertTrue(resolver.threads.stream().allMatch(t -> t.startsWith("ncro-dns")), "lookups on the DNS threads: " + resolver.threads);

        resolver.release.countDown();
        assertEquals(1, stuck.calls.get(), "one outcome, even after the lookup ends");
    }

    @Test
    void hangingResolver_streamFailsWithinItsIdleTimeout() throws Exception {
        start();
        Upstream slow = new Upstream(URI.create("http://slow.test:1"), 10, 0);
        RecordingSink sink = new RecordingSink(true);

        long before = System.nanoTime();
        sink.attach(client.stream(slow, slow.resolve("nar/a.nar"), false, Map.of(), Duration.ofMillis(300), sink));
        Object end = sink.awaitEnd();

        assertInstanceOf(UnknownHostException.class, end);
        assertTrue(System.nanoTime() - before < TimeUnit.SECONDS.toNanos(5));
        assertEquals(1, resolver.release.getCount(), "failed before the lookup ended");
        assertTrue(sink.errorThread.startsWith("ncro-upstream"), sink.errorThread);
    }

    @Test
    void hostName_isLookedUpOnce_andConnectedToTheAddressFound() throws Exception {
        server = ScriptedServer.answering(200, "by name");
        start();
        Upstream named = new Upstream(URI.create("http://cache.test:" + server.port()), 10, 0);

        assertEquals("by name", fetchBody(named));
        assertEquals("by name", fetchBody(named));
        RecordingSink sink = new RecordingSink(true);
        sink.attach(client.stream(named, named.resolve("nar/a.nar"), false, Map.of(), Duration.ofSeconds(10), sink));
        assertEquals("end", sink.awaitEnd());

        assertEquals(1, resolver.calls.get(), "remembered for the TTL, for both pools");
        assertEquals("cache.test:" + server.port(), server.requests().get(0).headers().get("host"));
    }

    @Test
    void unknownHost_isAFailure_neverAnAnswer() throws Exception {
        start();
        Upstream nowhere = new Upstream(URI.create("http://nowhere.test"), 10, 0);

        Outcome outcome = new Outcome();
        client.fetch(nowhere, nowhere.resolve("x.narinfo"), 1024, Duration.ofSeconds(10), outcome);

        assertInstanceOf(UnknownHostException.class, outcome.failure());
        assertFalse(resolver.threads.isEmpty());
    }

    private String fetchBody(Upstream u) throws Exception {
        Outcome outcome = new Outcome();
        client.fetch(u, u.resolve("x.narinfo"), 1024, Duration.ofSeconds(10), outcome);
        return outcome.body();
    }
}
