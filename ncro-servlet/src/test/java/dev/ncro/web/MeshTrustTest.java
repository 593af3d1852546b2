package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ncro.mesh.MeshRoute;
import dev.ncro.mesh.NodeKey;
import dev.ncro.mesh.WireFormat;
import dev.ncro.testing.FakeCache;
import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A mesh peer tells where, this node checks what (issue 11, "Done when" (2)): a route to an
 * upstream this node does not have is ignored; a route to a configured upstream whose narinfo
 * then fails the signature check is never served, and the race answers right; a good route
 * costs exactly one request, to the named upstream. The peer is forged by the test: a key in
 * {@code mesh.peers} and hand-made packets sent to ncro's mesh socket.
 */
class MeshTrustTest extends TwoUpstreams {
    private static final String LEAF = "bihphjc5sij6qfda4z0gks08j57xwslx";
    private final FakeCache c = FakeCache.start();
    private final NodeKey peer = NodeKey.generate(new SecureRandom());
    private long seq = 1;

    @AfterEach
    void stopThird() {
        c.close();
    }

    private static String fixture(String name) throws IOException {
        try (InputStream in = MeshTrustTest.class.getResourceAsStream("/dev/ncro/trust/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** a and b, both checked against the fixture key, in one tier; c is not configured. */
    private NcroUnderTest start() throws Exception {
        String key = fixture("ncro-fixture-1.pk").trim();
        return NcroUnderTest.start("upstreams:\n"
                + "  - url: " + a.uri() + "\n    public_key: \"" + key + "\"\n"
                + "  - url: " + b.uri() + "\n    public_key: \"" + key + "\"\n"
                + "mesh:\n  enabled: true\n  bind_addr: \"127.0.0.1:0\"\n  gossip_interval: 1h\n"
                + "  peers: [{addr: \"127.0.0.1:9\", public_key: \"" + peer.publicKeyHex() + "\"}]\n");
    }

    /** The peer announces that {@code upstream} holds LEAF; returns once ncro accepted the packet. */
    private void announce(String upstream) throws Exception {
        byte[] packet = WireFormat.packet(peer, System.currentTimeMillis(), seq++, new ArrayDeque<>(List.of(
                new MeshRoute(LEAF, upstream, 5, System.currentTimeMillis(), 3_600_000))));
        long before = ncro.engine.mesh().packetsAccepted(peer.publicKeyHex());
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            s.send(new DatagramPacket(packet, packet.length, ncro.engine.mesh().localAddress()));
        }
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (ncro.engine.mesh().packetsAccepted(peer.publicKeyHex()) == before) {
            if (System.nanoTime() > until) throw new AssertionError("ncro did not accept the peer's packet");
            Thread.sleep(2);
        }
    }

    private double hints(String result) {
        return ncro.engine.metricsRegistry().meshHints.labelValues(result).get();
    }

    private JsonNode meshHealth() throws Exception {
        return new ObjectMapper().readTree(ncro.get("/health").body()).path("mesh");
    }

    @Test
    void routeToAnUpstreamThisNodeDoesNotHave_isIgnored_andNeverAsked() throws Exception {
        String honest = fixture(LEAF + ".narinfo");
        a.put("/" + LEAF + ".narinfo", honest);
        c.put("/" + LEAF + ".narinfo", honest);
        ncro = start();

        announce(c.uri().toString());
        HttpResponse<byte[]> r = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(200, r.statusCode());
        assertEquals(honest, new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(0, c.requests().size(), "the unconfigured upstream a peer named was never asked");
        assertEquals(0, hints("verified") + hints("fallback"), "no hint was taken: the race answered");
        JsonNode p = meshHealth().path("peers").get(0);
        assertEquals(1, p.path("routes_received").asInt());
        assertEquals(1, p.path("routes_ignored").asInt());
    }

    @Test
    void routeToAConfiguredUpstreamWhoseNarinfoFailsItsKeys_isNeverServed_theRaceAnswers() throws Exception {
        String honest = fixture(LEAF + ".narinfo");
        a.delay(Duration.ofMillis(50)).put("/" + LEAF + ".narinfo", honest);
        b.put("/" + LEAF + ".narinfo", honest.replace("NarSize: 120", "NarSize: 121"));
        ncro = start();

        announce(b.uri().toString());
        HttpResponse<byte[]> first = ncro.get("/" + LEAF + ".narinfo");
        HttpResponse<byte[]> second = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(200, first.statusCode(), "never a 404 or 502 because of a bad hint");
        assertEquals(honest, new String(first.body(), StandardCharsets.UTF_8), "the honest narinfo, from the race");
        assertEquals(honest, new String(second.body(), StandardCharsets.UTF_8), "and only it is remembered");
        assertEquals(1, hints("fallback"));
        assertEquals(0, hints("verified"));
        assertTrue(b.count("/" + LEAF + ".narinfo") >= 1, "the hinted upstream was asked");
        assertEquals(1, a.count("/" + LEAF + ".narinfo"), "the race asked the honest one once");
    }

    @Test
    void goodRoute_costsOneRequestToTheNamedUpstream_noRace() throws Exception {
        String honest = fixture(LEAF + ".narinfo");
        a.put("/" + LEAF + ".narinfo", honest);
        b.put("/" + LEAF + ".narinfo", honest);
        ncro = start();

        announce(a.uri().toString());
        HttpResponse<byte[]> r = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(200, r.statusCode());
        assertEquals(honest, new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(1, a.count("/" + LEAF + ".narinfo"), "one verification fetch from the named upstream");
        assertEquals(0, b.count("/" + LEAF + ".narinfo"), "no race: the other upstream was not asked");
        assertEquals(1, hints("verified"));
        JsonNode mesh = meshHealth();
        assertEquals(ncro.engine.mesh().key().publicKeyHex(), mesh.path("public_key").asText());
        assertEquals(peer.publicKeyHex(), mesh.path("peers").get(0).path("public_key").asText());
        assertTrue(mesh.path("peers").get(0).hasNonNull("last_packet"));
    }
}
