package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Defaults;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.util.Callback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** NAR streams and narinfo lookups use separate pools: slow readers never starve lookups. */
class UpstreamClientPoolsTest {
    private ScriptedServer server;
    private UpstreamClient client;

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) client.stop();
        if (server != null) server.close();
    }

    /**
     * Pooled connections take turns (the one idle longest goes first): while lookups go on,
     * none sits idle into the upstream's keep-alive timeout, to be closed and paid for again
     * with a handshake on a later burst's path. Last-in-first-out reused one connection only.
     */
    @Test
    void pooledConnections_takeTurns() throws Exception {
        List<Integer> ports = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Runnable> held = new ArrayList<>();
        server = ScriptedServer.start((request, response, callback) -> {
            ports.add(org.eclipse.jetty.server.Request.getRemotePort(request));
            Runnable answer = () -> response.write(true, ByteBuffer.wrap("narinfo".getBytes(StandardCharsets.UTF_8)), callback);
            if (!request.getHttpURI().getPath().startsWith("/both")) {
                answer.run();
                return;
            }
            List<Runnable> now = List.of();
            synchronized (held) {
                held.add(answer);
                if (held.size() == 2) now = List.copyOf(held); // both in: two connections are open
            }
            now.forEach(Runnable::run);
        });
        Upstream u = new Upstream(server.uri(), 10, 0);
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
        client.start();

        Outcome first = new Outcome();
        Outcome second = new Outcome();
        client.fetch(u, u.resolve("both-1.narinfo"), 1024, Duration.ofSeconds(30), first);
        client.fetch(u, u.resolve("both-2.narinfo"), 1024, Duration.ofSeconds(30), second);
        assertEquals(200, first.fetched().status());
        assertEquals(200, second.fetched().status());
        for (int i = 0; i < 4; i++) {
            Outcome one = new Outcome();
            client.fetch(u, u.resolve(i + ".narinfo"), 1024, Duration.ofSeconds(30), one);
            assertEquals(200, one.fetched().status());
        }

        assertEquals(2, java.util.Set.copyOf(ports.subList(0, 2)).size(), "two connections: " + ports);
        assertEquals(2, java.util.Set.copyOf(ports.subList(2, 6)).size(), "one after the other, both used: " + ports);
    }

    @Test
    void moreStalledStreamsThanTheLookupPoolHolds_lookupsStillAnswer() throws Exception {
        int streams = Defaults.POOL_MAX_PER_ROUTE + 2; // one shared pool would have no connection left
        ScriptedServer[] self = new ScriptedServer[1];
        server = ScriptedServer.start((request, response, callback) -> {
            if (request.getHttpURI().getPath().endsWith(".narinfo")) {
                response.write(true, ByteBuffer.wrap("narinfo".getBytes(StandardCharsets.UTF_8)), callback);
            } else {
                // a NAR whose head and first bytes went out, and whose reader stalls: the
                // connection stays busy until the server stops
                response.write(false, ByteBuffer.wrap(new byte[1024]), Callback.NOOP);
                self[0].hold(callback);
            }
        });
        self[0] = server;
        Upstream u = new Upstream(server.uri(), 10, 0);
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(u));
        client.start();

        List<RecordingSink> sinks = new ArrayList<>();
        for (int i = 0; i < streams; i++) {
            RecordingSink sink = new RecordingSink(false);
            sink.attach(client.stream(u, u.resolve("nar/" + i + ".nar"), false, Map.of(), Duration.ofMinutes(5), sink));
            sinks.add(sink);
        }
        for (RecordingSink sink : sinks) assertTrue(sink.awaitHead(), "every stream holds a connection");

        // a shared, exhausted pool would never answer (the streams hold for 5 minutes); the
        // bound is generous so that a loaded machine does not pass for a starved pool
        Outcome lookup = new Outcome();
        client.fetch(u, u.resolve("x.narinfo"), 1024, Duration.ofSeconds(30), lookup);
        Outcome probe = new Outcome();
        client.request(u, "HEAD", u.resolve("nix-cache-info"), 1024, Duration.ofSeconds(30), probe);

        assertEquals("narinfo", lookup.body());
        assertEquals(200, probe.fetched().status());
    }
}
