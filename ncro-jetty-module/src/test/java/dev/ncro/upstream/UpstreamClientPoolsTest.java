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
