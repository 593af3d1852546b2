package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hc.core5.concurrent.Cancellable;
import org.junit.jupiter.api.Test;

/**
 * Cancelling a lookup (a race's loser): exactly one {@code cancelled()}, at once, on the
 * client's executor; the answer that arrives afterwards is read, never reported, and its
 * keep-alive connection serves the next lookup (no new connection or TLS handshake).
 */
class UpstreamClientCancelTest {
    @Test
    void cancelBeforeTheAnswer_reportsCancelledOnce_andTheLateAnswerKeepsItsConnection() throws Exception {
        CountDownLatch received = new CountDownLatch(1);
        CountDownLatch answerNow = new CountDownLatch(1);
        AtomicInteger connections = new AtomicInteger();
        try (ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            Thread server = new Thread(() -> {
                while (!socket.isClosed()) {
                    try {
                        Socket s = socket.accept();
                        connections.incrementAndGet();
                        Thread t = new Thread(() -> answerLate(s, received, answerNow), "slow-server-connection");
                        t.setDaemon(true);
                        t.start();
                    } catch (IOException e) {
                        return;
                    }
                }
            }, "slow-server");
            server.setDaemon(true);
            server.start();
            Upstream u = new Upstream(URI.create("http://127.0.0.1:" + socket.getLocalPort()), 10, 0);
            UpstreamClient client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
            client.start();
            try {
                Outcome outcome = new Outcome();
                Cancellable exchange = client.fetch(u, u.resolve("x.narinfo"), 1024, Duration.ofSeconds(30), outcome);
                assertTrue(received.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS));

                assertTrue(exchange.cancel());
                assertFalse(exchange.cancel(), "decided once");
                assertEquals("cancelled", outcome.await());
                assertTrue(outcome.thread.startsWith("ncro-upstream"), outcome.thread);

                answerNow.countDown();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(Outcome.WAIT_SECONDS);
                while (client.idleConnections(false) == 0) {
                    assertTrue(System.nanoTime() < end, "the late answer was read and its connection kept");
                    Thread.sleep(1); // polling a state, not waiting out a timer
                }
                Outcome next = new Outcome();
                client.fetch(u, u.resolve("y.narinfo"), 1024, Duration.ofSeconds(30), next);

                assertEquals("late", next.body());
                assertEquals(1, connections.get(), "the next lookup reused the cancelled one's connection");
                assertEquals(1, outcome.calls.get(), "the cancelled lookup never heard its answer");
            } finally {
                client.stop();
            }
        }
    }

    /** What the engine's first-byte timeout does to a frozen upstream: its socket must not linger. */
    @Test
    void streamCancelledBeforeItsHead_closesItsConnectionAtOnce() throws Exception {
        CountDownLatch received = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        try (ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            Thread server = new Thread(() -> {
                try (Socket s = socket.accept()) {
                    BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
                    String line = in.readLine();
                    while (line != null && !line.isEmpty()) line = in.readLine();
                    received.countDown(); // a frozen upstream: never answers
                    if (in.read() == -1) closed.countDown();
                } catch (IOException e) {
                    closed.countDown(); // a reset is a close too
                }
            }, "frozen-server");
            server.setDaemon(true);
            server.start();
            Upstream u = new Upstream(URI.create("http://127.0.0.1:" + socket.getLocalPort()), 10, 0);
            UpstreamClient client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
            client.start();
            try {
                RecordingSink sink = new RecordingSink(true);
                // an idle timeout far beyond the wait below: only cancel() can close it in time
                UpstreamStream stream = sink.attach(client.stream(u, u.resolve("nar/a.nar"), false, java.util.Map.of(),
                        Duration.ofMinutes(5), sink));
                assertTrue(received.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS));

                stream.cancel();

                assertTrue(closed.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS), "the connection was closed");
                assertTrue(sink.statuses.isEmpty());
            } finally {
                client.stop();
            }
        }
    }

    /** Answers every request on {@code s}, each only once {@code answerNow} is open. */
    private static void answerLate(Socket s, CountDownLatch received, CountDownLatch answerNow) {
        try (s) {
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
            OutputStream out = s.getOutputStream();
            String line;
            while ((line = in.readLine()) != null) {
                while (!line.isEmpty()) line = in.readLine();
                received.countDown();
                answerNow.await();
                out.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate".getBytes(StandardCharsets.ISO_8859_1));
                out.flush();
            }
        } catch (Exception e) {
            // the client went away
        }
    }
}
