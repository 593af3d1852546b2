package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A pooled keep-alive connection the upstream closed must not fail the request: one retry on
 * another connection, only for a failure before any response head, never for a timeout or a
 * status. The upstream is a raw socket server so the close can be placed exactly.
 */
class UpstreamClientRetryTest {
    /** What the raw server does with the n-th request (0-based) on the c-th connection (0-based). */
    private interface Behaviour {
        /** @return false to drop the connection (reset) without answering */
        boolean answer(int connection, int request);
    }

    /**
     * A tiny HTTP/1.1 server on 127.0.0.1: one thread per connection, answers body-less requests
     * with {@code 200 "hello"} and keep-alive, or resets the connection when told to.
     */
    private static final class RawServer implements AutoCloseable {
        final ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        final AtomicInteger connections = new AtomicInteger();
        final AtomicInteger requests = new AtomicInteger();
        private final Behaviour behaviour;
        /** Drop with a reset (RST) or a plain close (FIN). */
        volatile boolean reset = true;

        RawServer(Behaviour behaviour) throws IOException {
            this.behaviour = behaviour;
            Thread acceptor = new Thread(this::accept, "raw-server");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        private void accept() {
            while (!socket.isClosed()) {
                try {
                    Socket s = socket.accept();
                    int c = connections.getAndIncrement();
                    Thread t = new Thread(() -> serve(s, c), "raw-server-" + c);
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private void serve(Socket s, int connection) {
            try (s) {
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
                OutputStream out = s.getOutputStream();
                for (int n = 0; ; n++) {
                    String line = in.readLine();
                    if (line == null) return;
                    while (!(line = in.readLine()).isEmpty()) {
                        // headers: body-less requests only
                    }
                    requests.incrementAndGet();
                    if (!behaviour.answer(connection, n)) {
                        if (reset) s.setSoLinger(true, 0); // as a load balancer dropping an idle connection does
                        return;
                    }
                    out.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
                            .getBytes(StandardCharsets.ISO_8859_1));
                    out.flush();
                }
            } catch (IOException | NullPointerException e) {
                // the client went away
            }
        }

        URI uri() {
            return URI.create("http://127.0.0.1:" + socket.getLocalPort());
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    private RawServer server;
    private UpstreamClient client;

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) client.stop();
        if (server != null) server.close();
    }

    private Upstream start(Behaviour behaviour) throws Exception {
        server = new RawServer(behaviour);
        Upstream u = new Upstream(server.uri(), 10, 0);
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
        client.start();
        return u;
    }

    /**
     * Waits until the answered exchange's connection is back in the pool, so the next request
     * reuses it (the callback may run before HttpComponents has released it).
     */
    private void awaitIdleConnection(boolean streamPool) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(Outcome.WAIT_SECONDS);
        while (client.idleConnections(streamPool) == 0) {
            assertTrue(System.nanoTime() < end, "the connection never went back to the pool");
            Thread.sleep(1); // polling a state, not waiting out a timer
        }
    }

    private Outcome fetch(Upstream u, String method, Duration timeout) {
        Outcome outcome = new Outcome();
        client.request(u, method, u.resolve("x.narinfo"), 1024, timeout, outcome);
        return outcome;
    }

    @Test
    void keepAliveClosedByTheUpstream_isRetriedOnAnotherConnection() throws Exception {
        // the first connection answers once, then drops the next request it is sent
        Upstream u = start((connection, request) -> connection > 0 || request == 0);

        assertEquals("hello", fetch(u, "GET", Duration.ofSeconds(10)).body());
        awaitIdleConnection(false);
        Outcome second = fetch(u, "GET", Duration.ofSeconds(10));

        assertEquals("hello", second.body());
        assertEquals(1, second.calls.get());
        assertEquals(2, server.connections.get(), "the second request went to a fresh connection");
        assertEquals(3, server.requests.get());
    }

    @Test
    void keepAliveClosedCleanlyByTheUpstream_isRetriedToo() throws Exception {
        Upstream u = start((connection, request) -> connection > 0 || request == 0);
        server.reset = false;

        assertEquals("hello", fetch(u, "GET", Duration.ofSeconds(10)).body());
        awaitIdleConnection(false);
        assertEquals("hello", fetch(u, "GET", Duration.ofSeconds(10)).body());

        assertEquals(2, server.connections.get());
    }

    @Test
    void keepAliveClosedByTheUpstream_streamIsRetriedToo() throws Exception {
        Upstream u = start((connection, request) -> connection > 0 || request == 0);
        for (int i = 0; i < 2; i++) {
            RecordingSink sink = new RecordingSink(true);
            sink.attach(client.stream(u, u.resolve("nar/a.nar"), false, Map.of(), Duration.ofSeconds(10), sink));
            assertEquals("end", sink.awaitEnd());
            assertEquals("hello", sink.body());
            assertEquals(List.of(200), sink.statuses);
            if (i == 0) awaitIdleConnection(true);
        }
        assertEquals(2, server.connections.get());
    }

    @Test
    void everyConnectionDropped_isRetriedOnlyOnce() throws Exception {
        Upstream u = start((connection, request) -> false);

        Exception failure = fetch(u, "HEAD", Duration.ofSeconds(10)).failure();

        assertTrue(UpstreamClient.isStaleConnection(failure), failure.toString());
        assertEquals(2, server.requests.get(), "the request and one retry");
    }

    @Test
    void timeout_isNeverRetried() throws Exception {
        ScriptedServer silent = ScriptedServer.start((request, response, callback) -> {});
        try {
            Upstream u = new Upstream(silent.uri(), 10, 0);
            client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
            client.start();
            Outcome outcome = new Outcome();
            client.fetch(u, u.resolve("x.narinfo"), 1024, Duration.ofMillis(300), outcome);

            assertInstanceOf(TimeoutException.class, outcome.failure());
            assertEquals(1, silent.requests().size());
        } finally {
            silent.close();
        }
    }

    @Test
    void anErrorStatus_isAnAnswer_neverRetried() throws Exception {
        ScriptedServer failing = ScriptedServer.answering(503, "busy");
        try {
            Upstream u = new Upstream(failing.uri(), 10, 0);
            client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
            client.start();
            Outcome outcome = new Outcome();
            client.fetch(u, u.resolve("x.narinfo"), 1024, Duration.ofSeconds(10), outcome);

            assertEquals(503, outcome.fetched().status());
            assertEquals(1, failing.requests().size());
        } finally {
            failing.close();
        }
    }
}
