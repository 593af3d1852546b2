package dev.ncro.e2e;

import static dev.ncro.e2e.FaultFixture.explain;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ncro.e2e.FaultFixture.Closure;
import dev.ncro.mesh.NodeKey;
import dev.ncro.testing.FakeCache;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three ncro nodes in a mesh (issue 11, "Done when" (1)): three real Jetty distributions, each
 * its own JVM, gossiping over UDP on 127.0.0.1 every 200 ms, in front of the same two signed
 * upstreams (one tier: every miss races both; u2 answers 200 ms later, so u1 wins). The real
 * Nix client realises a closure through node A; once node C has A's routes (its /health says
 * so), a fresh client of C realises the same closure, and each path's narinfo costs C exactly
 * one request, to the upstream A named — u2, which every race would have asked, gets none.
 */
class NixMeshTest {
    private static final Duration GOSSIP = Duration.ofMillis(200);
    private FaultFixture fx;

    @AfterEach
    void stop() throws Exception {
        if (fx != null) fx.close();
    }

    private record Node(String name, int port, Path keyFile, String publicKey) {}

    private static Node node(Path work, String name) throws Exception {
        int port;
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        byte[] seed = new byte[NodeKey.SEED_BYTES];
        new SecureRandom().nextBytes(seed);
        Path keyFile = work.resolve(name + ".key");
        Files.write(keyFile, seed);
        return new Node(name, port, keyFile, NodeKey.ofSeed(seed).publicKeyHex());
    }

    private Path config(Node self, List<Node> all, FakeCache... upstreams) throws Exception {
        StringBuilder yaml = new StringBuilder("upstreams:\n");
        for (FakeCache u : upstreams) {
            yaml.append("  - url: ").append(u.uri()).append("\n    priority: 10\n");
            yaml.append("    public_key: \"").append(fx.publicKey).append("\"\n");
        }
        yaml.append("health:\n  probe_interval: 1h\n");
        yaml.append("mesh:\n  enabled: true\n  bind_addr: \"127.0.0.1:").append(self.port()).append("\"\n");
        yaml.append("  private_key: \"").append(self.keyFile()).append("\"\n");
        yaml.append("  gossip_interval: ").append(GOSSIP.toMillis()).append("ms\n  peers:\n");
        for (Node n : all) {
            if (n == self) continue;
            yaml.append("    - {addr: \"127.0.0.1:").append(n.port()).append("\", public_key: \"").append(n.publicKey()).append("\"}\n");
        }
        Path file = fx.work.resolve(self.name() + ".yaml");
        Files.writeString(file, yaml);
        return file;
    }

    private static long narinfoRequests(FakeCache u) {
        return u.requests().stream().filter(l -> l.path().endsWith(".narinfo")).count();
    }

    @Test
    void closureRealisedThroughA_isRealisedThroughC_withOneVerificationFetchPerPath_andNoRace(@TempDir Path work)
            throws Exception {
        Nix.requireOrSkip();
        fx = new FaultFixture(work).smallClosures();
        Closure closure = fx.closures("mesh").get("mesh");
        FakeCache u1 = fx.upstream(Duration.ZERO);
        FakeCache u2 = fx.upstream(Duration.ofMillis(200));
        List<Node> nodes = new ArrayList<>();
        for (String name : List.of("a", "b", "c")) nodes.add(node(work, name));
        List<JettyDistribution> ncro = new ArrayList<>();
        for (Node n : nodes) ncro.add(fx.ncro(config(n, nodes, u1, u2), work.resolve(n.name() + ".db")));
        JettyDistribution a = ncro.get(0);
        JettyDistribution c = ncro.get(2);
        assertTrue(a.log().contains(nodes.get(0).publicKey()), "node A logs its public key at start");

        Nix.Timed viaA = fx.realise(a, "client-a", closure.top(), Duration.ofSeconds(60));
        assertEquals(0, viaA.exit(), () -> explain(viaA, a));
        fx.assertRealised("client-a", closure);
        long learnedAt = System.nanoTime();
        int paths = closure.paths().size();
        assertEquals(paths, narinfoRequests(u1), "A raced both upstreams for each path: " + u1.requests());

        // wait for the mesh event: C's /health shows A's routes (another process: polled)
        String aKey = nodes.get(0).publicKey();
        JsonNode fromA = null;
        long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < until) {
            for (JsonNode p : new ObjectMapper().readTree(c.get("/health").body()).path("mesh").path("peers")) {
                if (p.path("public_key").asText().equals(aKey)) fromA = p;
            }
            if (fromA != null && fromA.path("routes_received").asInt() >= paths) break;
            Thread.sleep(20);
        }
        assertTrue(fromA != null && fromA.path("routes_received").asInt() >= paths, "C heard A's routes: " + fromA);
        System.out.printf("mesh e2e: C had A's %d routes %d ms after A's client finished (gossip interval %d ms)%n",
                paths, (System.nanoTime() - learnedAt) / 1_000_000, GOSSIP.toMillis());
        String phaseA = "A's phase: u1 " + u1.requests() + "\nu2 " + u2.requests();
        u1.clearLog();
        u2.clearLog();

        Nix.Timed viaC = fx.realise(c, "client-c", closure.top(), Duration.ofSeconds(60));
        assertEquals(0, viaC.exit(), () -> explain(viaC, c));
        fx.assertRealised("client-c", closure);
        assertEquals(paths, narinfoRequests(u1), "one verification fetch per path, to the upstream A named: " + u1.requests());
        for (String p : closure.paths()) assertEquals(1, u1.count("/" + FaultFixture.hash(p) + ".narinfo"), p);
        assertEquals(0, narinfoRequests(u2), "no race from C: " + u2.requests() + "\npaths " + closure.paths()
                + "\n" + phaseA + "\nC's phase: u1 " + u1.requests() + "\nC /health " + c.get("/health").body()
                + "\nC log:\n" + FaultFixture.tail(c.log(), 40));
        String metrics = c.get("/metrics").body();
        assertTrue(metrics.contains("ncro_mesh_hints_total{result=\"verified\"} " + paths + ".0"), metrics);
        assertTrue(new ObjectMapper().readTree(c.get("/health").body()).path("mesh").path("rejected_from_unknown_senders")
                .isEmpty(), "no packet was refused");
    }
}
