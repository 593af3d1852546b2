package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.RawHttp;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * an upstream whose error (or not-found) head arrives but whose body never does. The
 * first-byte timer is cancelled as soon as any head arrives (NarExchange.Attempt.onResponse),
 * so the NAR waits for the 300 s stall limit instead of moving to the next upstream.
 */
class StalledErrorBodyTest extends TwoUpstreams {
    private static final String NAR = "nar/0gbwkc5z7q8zq0zx6nkd5dmfa3fg8kcbswwkjhzqqkf4bz0cr1p3.nar";

    @Test
    void error500WhoseBodyNeverArrives_movesOnAfterFirstByteTimeout() throws Exception {
        check("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\n");
    }

    @Test
    void notFoundWhoseBodyNeverArrives_movesOnAfterFirstByteTimeout() throws Exception {
        check("HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n");
    }

    private void check(String head) throws Exception {
        try (StallingUpstream raw = new StallingUpstream(head)) {
            b.put("/" + NAR, "bbbbbbbbbb");
            // 1 s, not less: the healthy upstream must answer within it on a loaded machine too
            ncro = NcroUnderTest.start("server:\n  first_byte_timeout: 1s\n  write_timeout: 300s\n"
                    + NcroUnderTest.config(null, raw.uri(), 10, b.uri(), 20) + "health:\n  probe_interval: 1h\n");
            long t0 = System.nanoTime();
            HttpResponse<byte[]> r;
            try {
                r = ncro.http.send(HttpRequest.newBuilder(ncro.uri("/" + NAR)).timeout(Duration.ofSeconds(15)).build(),
                        HttpResponse.BodyHandlers.ofByteArray());
            } catch (java.net.http.HttpTimeoutException e) {
                throw new AssertionError("NAR still waiting after 15 s (first_byte_timeout 1s); raw asked "
                        + raw.narRequests + " times, b " + b.count("/" + NAR) + " times", e);
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(200, r.statusCode());
            assertEquals("bbbbbbbbbb", new String(r.body(), StandardCharsets.UTF_8));
            assertTrue(ms < 8000, "took " + ms + " ms (waiting out write_timeout would take 300 s)");
        }
    }

    /** Answers /nix-cache-info normally; a NAR with the given head and then nothing, forever. */
    static final class StallingUpstream implements AutoCloseable {
        private final ServerSocket server;
        private final String narHead;
        private final List<Socket> held = new ArrayList<>();
        volatile int narRequests;

        StallingUpstream(String narHead) throws IOException {
            this.narHead = narHead;
            this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            Thread t = new Thread(this::serve, "stalling-upstream");
            t.setDaemon(true);
            t.start();
        }

        java.net.URI uri() {
            return java.net.URI.create("http://127.0.0.1:" + server.getLocalPort());
        }

        private void serve() {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    String head = RawHttp.readHead(s.getInputStream());
                    String[] parts = head.split(" ");
                    String path = parts.length > 1 ? parts[1] : "";
                    OutputStream out = s.getOutputStream();
                    if (path.startsWith("/nar/")) {
                        narRequests++;
                        out.write(narHead.getBytes(StandardCharsets.UTF_8));
                        out.flush();
                        synchronized (held) {
                            held.add(s); // body never sent
                        }
                    } else if (path.equals("/nix-cache-info")) {
                        byte[] body = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n".getBytes(StandardCharsets.UTF_8);
                        out.write(("HTTP/1.1 200 OK\r\nContent-Length: " + body.length + "\r\nConnection: close\r\n\r\n")
                                .getBytes(StandardCharsets.UTF_8));
                        out.write(body);
                        s.close();
                    } else {
                        out.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                .getBytes(StandardCharsets.UTF_8));
                        s.close();
                    }
                } catch (IOException e) {
                    // closed
                }
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            synchronized (held) {
                for (Socket s : held) s.close();
            }
        }
    }
}
