package dev.ncro.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Listen;
import dev.ncro.config.NcroConfig;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.Upstream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One mesh node on 127.0.0.1 with a real UDP socket, a fixed clock and one configured peer. */
class MeshNodeTest {
    static final Duration INTERVAL = Duration.ofMillis(200);
    static final long T0 = 1_750_000_000_000L;
    static final Upstream U1 = new Upstream(URI.create("http://u1.example"), 10, 0);

    final AtomicLong now = new AtomicLong(T0);
    final InstantSource clock = () -> Instant.ofEpochMilli(now.get());
    final NodeKey peer = NodeKey.generate(new SecureRandom());
    final NcroMetrics metrics = new NcroMetrics();
    final List<MeshNode> started = new ArrayList<>();
    final AtomicLong seq = new AtomicLong(1);

    MeshNode node(NcroMetrics m, boolean acceptAny, NcroConfig.Peer... peers) throws Exception {
        NcroConfig.Mesh config = new NcroConfig.Mesh(true, new Listen("127.0.0.1", 0), List.of(peers), "", INTERVAL, acceptAny);
        MeshNode n = new MeshNode(config, Duration.ofHours(1), Map.of(U1.base().toString(), U1)::get, clock, null,
                Runnable::run, m, UdpTransport.FACTORY);
        n.start();
        started.add(n);
        return n;
    }

    MeshNode node() throws Exception {
        return node(metrics, false, new NcroConfig.Peer("127.0.0.1:9", peer.publicKeyHex()));
    }

    @AfterEach
    void stop() throws Exception {
        for (MeshNode n : started) n.stop();
    }

    byte[] announce(NodeKey from, long timestamp, long sequence, MeshRoute... routes) {
        return WireFormat.packet(from, timestamp, sequence, new ArrayDeque<>(List.of(routes)));
    }

    static MeshRoute route(String hash, String upstream) {
        return new MeshRoute(hash, upstream, 12.5f, T0 - 1000, 3_600_000);
    }

    double in(String result) {
        return metrics.meshPackets.labelValues("in", result).get();
    }

    @Test
    void signedAnnouncementFromAPeer_keepsOnlyRoutesToConfiguredUpstreams() throws Exception {
        MeshNode n = node();
        Random r = new Random(7);
        String h1 = WireFormatTest.hash(r);
        String h2 = WireFormatTest.hash(r);
        byte[] p = announce(peer, T0, seq.getAndIncrement(), route(h1, "http://u1.example/"), route(h2, "http://elsewhere"));
        n.receive(p, 0, p.length, null);

        assertEquals(1, in("accepted"));
        assertEquals(U1, n.hint(h1).orElseThrow(), "a route to a configured upstream is a hint (trailing slash or not)");
        assertTrue(n.hint(h2).isEmpty(), "a route to an upstream this node does not have is ignored");
        assertEquals(1, metrics.meshRoutesMerged.get());
        Map<?, ?> row = (Map<?, ?>) ((List<?>) n.report().get("peers")).get(0);
        assertEquals(2L, row.get("routes_received"));
        assertEquals(1L, row.get("routes_ignored"));

        now.addAndGet(Duration.ofHours(2).toMillis());
        assertTrue(n.hint(h1).isEmpty(), "an expired claim is gone");
    }

    @Test
    void aHintToAnUpstreamRemovedSinceItWasMerged_isNoLongerGiven() throws Exception {
        // a discovered cache that went away: the engine's upstreams no longer have its URL
        Map<String, Upstream> configured = new java.util.concurrent.ConcurrentHashMap<>(Map.of(U1.base().toString(), U1));
        NcroConfig.Mesh config = new NcroConfig.Mesh(true, new Listen("127.0.0.1", 0),
                List.of(new NcroConfig.Peer("127.0.0.1:9", peer.publicKeyHex())), "", INTERVAL, false);
        MeshNode n = new MeshNode(config, Duration.ofHours(1), configured::get, clock, null, Runnable::run, metrics,
                UdpTransport.FACTORY);
        n.start();
        started.add(n);
        String h = WireFormatTest.hash(new Random(11));
        byte[] p = announce(peer, T0, seq.getAndIncrement(), route(h, U1.base().toString()));
        n.receive(p, 0, p.length, null);
        assertEquals(U1, n.hint(h).orElseThrow());

        configured.remove(U1.base().toString());
        assertTrue(n.hint(h).isEmpty(), "a removed upstream is never chosen again, not even through a peer's hint");
        configured.put(U1.base().toString(), U1);
        assertEquals(U1, n.hint(h).orElseThrow(), "back under the same URL: the hint holds again");
    }

    @Test
    void discoveredPeers_areBounded_andOneThatGoesAway_keepsItsReplayHistory() throws Exception {
        NcroMetrics m = new NcroMetrics();
        MeshNode open = node(m, true);
        // anyone on the LAN can announce ncro=1 services: their number must not grow what this node keeps (and sends to)
        for (int i = 0; i < dev.ncro.config.Defaults.MESH_MAX_OTHER_PEERS + 50; i++) {
            open.discovered(NodeKey.generate(new SecureRandom()).publicKeyHex(), "127.0.0.1:9");
        }
        assertTrue(((List<?>) open.report().get("peers")).size() <= dev.ncro.config.Defaults.MESH_MAX_OTHER_PEERS,
                "discovered peers are capped");

        MeshNode open2 = node(m, true);
        NodeKey stranger = NodeKey.generate(new SecureRandom());
        assertTrue(open2.discovered(stranger.publicKeyHex(), "127.0.0.1:9"));
        byte[] first = announce(stranger, T0, 7);
        open2.receive(first, 0, first.length, null);
        assertEquals(1, m.meshPackets.labelValues("in", "accepted").get());
        open2.undiscovered(stranger.publicKeyHex());
        open2.receive(first, 0, first.length, null);
        assertEquals(1, m.meshPackets.labelValues("in", "accepted").get(), "its mDNS record went away: a replay is still a replay");
    }

    @Test
    void replayedStaleForeignAndForgedPackets_areDroppedAndCountedByReason() throws Exception {
        MeshNode n = node();
        byte[] ok = announce(peer, T0, 500);
        n.receive(ok, 0, ok.length, null);
        n.receive(ok, 0, ok.length, null);
        byte[] older = announce(peer, T0, 500 - ReplayWindow.WIDTH);
        n.receive(older, 0, older.length, null);
        byte[] stale = announce(peer, T0 - 2 * INTERVAL.toMillis() - 1, 501);
        n.receive(stale, 0, stale.length, null);
        byte[] future = announce(peer, T0 + 2 * INTERVAL.toMillis() + 1, 502);
        n.receive(future, 0, future.length, null);
        byte[] stranger = announce(NodeKey.generate(new SecureRandom()), T0, 503);
        n.receive(stranger, 0, stranger.length, null);
        byte[] forged = announce(peer, T0, 504);
        forged[forged.length - 1] ^= 1;
        n.receive(forged, 0, forged.length, null);

        assertEquals(1, in("accepted"));
        assertEquals(2, in("replayed"));
        assertEquals(2, in("stale"));
        assertEquals(1, in("unknown_peer"));
        assertEquals(1, in("bad_signature"));
        byte[] next = announce(peer, T0, 505);
        n.receive(next, 0, next.length, null);
        assertEquals(2, in("accepted"), "a stale or forged packet did not move the window");
    }

    @Test
    void acceptAnyPeer_takesAStrangersSignedPacket_butNeverAForgedOne() throws Exception {
        MeshNode n = node(metrics, true);
        NodeKey stranger = NodeKey.generate(new SecureRandom());
        byte[] forged = announce(stranger, T0, 1);
        forged[100] ^= 4;
        n.receive(forged, 0, forged.length, null);
        byte[] ok = announce(stranger, T0, 1);
        n.receive(ok, 0, ok.length, null);
        assertEquals(1, in("bad_signature"));
        assertEquals(1, in("accepted"));
        assertEquals(1, n.packetsAccepted(stranger.publicKeyHex()));
    }

    @Test
    void announcement_reachesAPeerOverUdp_withTheRoutesLearnedSinceTheLastOne() throws Exception {
        NcroMetrics mb = new NcroMetrics();
        NodeKey ka = NodeKey.generate(new SecureRandom());
        MeshNode b = node(mb, false, new NcroConfig.Peer("127.0.0.1:9", ka.publicKeyHex()));
        int bPort = ((InetSocketAddress) b.localAddress()).getPort();
        NcroConfig.Mesh ca = new NcroConfig.Mesh(true, new Listen("127.0.0.1", 0),
                List.of(new NcroConfig.Peer("127.0.0.1:" + bPort, b.key().publicKeyHex())), "", INTERVAL, false);
        MeshNode a = new MeshNode(ca, Duration.ofHours(1), Map.of(U1.base().toString(), U1)::get, clock, null,
                Runnable::run, metrics, UdpTransport.FACTORY).withKey(ka);
        a.start();
        started.add(a);
        Random r = new Random(9);
        List<String> hashes = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            hashes.add(WireFormatTest.hash(r));
            a.learned(hashes.get(i), U1, 20);
        }
        a.announce();
        long packets = (long) metrics.meshPackets.labelValues("out", "sent").get();
        assertTrue(packets >= 4 && packets <= 6, "100 routes in a few packets: " + packets);
        await(() -> b.packetsAccepted(ka.publicKeyHex()) == packets);
        for (String h : hashes) assertEquals(U1, b.hint(h).orElseThrow());

        a.announce();
        await(() -> b.packetsAccepted(ka.publicKeyHex()) == packets + 1);
        assertEquals(packets + 1, (long) metrics.meshPackets.labelValues("out", "sent").get(),
                "nothing new: one empty announcement, so the peer sees this node alive");
    }

    @Test
    void privateKeyFile_isCreatedOwnerOnly_andReadBack_andAWrongSizeIsRefused(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("keys/mesh.key");
        NodeKey created = NodeKey.load(file.toString(), new SecureRandom());
        assertEquals(32, Files.size(file));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        assertEquals(created.publicKeyHex(), NodeKey.load(file.toString(), new SecureRandom()).publicKeyHex());
        Files.write(file, new byte[64]);
        assertTrue(assertThrows(java.io.IOException.class, () -> NodeKey.load(file.toString(), new SecureRandom()))
                .getMessage().contains("32-byte seed"));
    }

    /**
     * 100,000 hostile packets: random bytes, truncated valid ones, bit-flipped valid ones,
     * replays, stale ones, signed garbage from the peer, and well-formed ones from unknown keys.
     * None is accepted, each is counted, no packet makes the handler allocate more than 32 KiB
     * (whatever lengths it declares), and the listener still takes a valid packet afterwards. Most go straight to the
     * handler; 5,000 go through the real socket.
     */
    @Test
    void hundredThousandFuzzedPackets_noneAccepted_listenerStillServing() throws Exception {
        MeshNode n = node();
        Random r = new Random(11);
        List<NodeKey> strangers = new ArrayList<>();
        for (int i = 0; i < 50; i++) strangers.add(NodeKey.generate(new SecureRandom()));
        String h = WireFormatTest.hash(r);
        byte[] replayed = announce(peer, T0, 1, route(h, U1.base().toString()));
        n.receive(replayed, 0, replayed.length, null);
        assertEquals(1, in("accepted"));
        List<byte[]> valid = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            MeshRoute[] routes = new MeshRoute[r.nextInt(25)];
            for (int k = 0; k < routes.length; k++) routes[k] = route(WireFormatTest.hash(r), U1.base().toString());
            valid.add(announce(peer, T0, 1_000_000 + i, routes)); // never sent as they are
        }
        // signed packets are made ahead, in pools, so that the run costs the node's checks, not the test's signing
        List<List<byte[]>> pools = new ArrayList<>();
        for (int kind = 4; kind <= 6; kind++) {
            List<byte[]> pool = new ArrayList<>();
            for (int i = 0; i < 300; i++) pool.add(signedFuzz(kind, r, strangers));
            pools.add(pool);
        }
        DatagramSocket socket = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress());
        SocketAddress target = n.localAddress();
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long self = Thread.currentThread().getId();
        long maxAllocated = 0;
        long[] perKind = new long[8];
        int total = 100_000;
        int viaSocket = 0;
        for (int i = 0; i < total; i++) {
            int kind = i % 8;
            byte[] p = kind >= 4 && kind <= 6 ? pools.get(kind - 4).get(r.nextInt(300)) : fuzz(kind, r, valid, replayed);
            if (i % 20 == 0) {
                socket.send(new DatagramPacket(p, p.length, target));
                viaSocket++;
                if (viaSocket % 100 == 0) awaitCounted(1 + i + 1); // never more in flight than the socket buffer holds
            } else {
                long before = threads.getThreadAllocatedBytes(self);
                n.receive(p, 0, p.length, null);
                // after a warm-up (first use of each code path and metric label allocates once)
                if (i > 1000) {
                    long a = threads.getThreadAllocatedBytes(self) - before;
                    maxAllocated = Math.max(maxAllocated, a);
                    perKind[kind] = Math.max(perKind[kind], a);
                }
            }
        }
        awaitCounted(1 + total);
        socket.close();

        assertEquals(1, in("accepted"), "none of the fuzzed packets was accepted");
        assertEquals(5000, viaSocket);
        System.out.println("mesh fuzz: most bytes allocated for one packet, by kind: " + java.util.Arrays.toString(perKind));
        // a constant bound, whatever lengths a packet declares: ed25519 verification takes ~8 KiB,
        // a decoding exception of msgpack-core (with its stack trace) ~10 KiB
        assertTrue(maxAllocated < 32 * 1024, "at most 32 KiB for any one packet, got " + maxAllocated);
        for (String reason : List.of("truncated", "oversized", "unknown_peer", "bad_signature", "malformed", "stale", "replayed")) {
            assertTrue(in(reason) > 0, reason + " was seen");
        }
        // the listener still serves: a fresh packet through the socket is accepted
        byte[] fresh = announce(peer, T0, 2_000_000, route(WireFormatTest.hash(r), U1.base().toString()));
        try (DatagramSocket s = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
            s.send(new DatagramPacket(fresh, fresh.length, target));
        }
        await(() -> in("accepted") == 2);
    }

    private byte[] signedFuzz(int kind, Random r, List<NodeKey> strangers) {
        switch (kind) {
            case 4 -> { // well-formed and signed, by a key nobody listed
                return announce(strangers.get(r.nextInt(strangers.size())), T0, r.nextInt(1000) + 2,
                        route(WireFormatTest.hash(r), U1.base().toString()));
            }
            case 5 -> { // the peer's signature over bytes that are not a body
                byte[] body = new byte[1 + r.nextInt(WireFormat.MAX_BODY)];
                r.nextBytes(body);
                if (r.nextBoolean()) body[0] = (byte) 0x87; // a map, to get further into the decoder
                return signed(body);
            }
            default -> { // signed, right schema, outside the time window
                long skew = (2 * INTERVAL.toMillis() + 1 + r.nextInt(100_000)) * (r.nextBoolean() ? 1 : -1);
                return announce(peer, T0 + skew, 3_000_000 + r.nextInt(1000));
            }
        }
    }

    private byte[] fuzz(int kind, Random r, List<byte[]> valid, byte[] replayed) {
        byte[] v = valid.get(r.nextInt(valid.size()));
        switch (kind) {
            case 0 -> { // random bytes, any length up to past the limit
                byte[] p = new byte[r.nextInt(1600)];
                r.nextBytes(p);
                if (p.length >= 32 && r.nextBoolean()) System.arraycopy(peer.publicKey(), 0, p, 0, 32); // claims the peer
                return p;
            }
            case 1 -> { // a valid packet cut short
                return java.util.Arrays.copyOf(v, r.nextInt(v.length));
            }
            case 2 -> { // one bit flipped anywhere
                byte[] p = v.clone();
                int bit = r.nextInt(p.length * 8);
                p[bit / 8] ^= (byte) (1 << (bit % 8));
                return p;
            }
            case 3 -> {
                return replayed;
            }
            default -> { // oversized: a valid packet with bytes after it
                byte[] p = java.util.Arrays.copyOf(v, WireFormat.MAX_PACKET + 1 + r.nextInt(100));
                return p;
            }
        }
    }

    private byte[] signed(byte[] body) {
        byte[] p = new byte[WireFormat.HEADER + body.length];
        System.arraycopy(peer.publicKey(), 0, p, 0, 32);
        System.arraycopy(body, 0, p, WireFormat.HEADER, body.length);
        peer.sign(p, WireFormat.HEADER, body.length, p, 32);
        return p;
    }

    private void awaitCounted(long n) throws InterruptedException {
        await(() -> {
            double sum = 0;
            for (Verdict v : Verdict.values()) sum += in(v.label);
            return sum >= n;
        });
    }

    /** Waits for a condition another thread makes true (the listener), up to 10 s. */
    static void await(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) throw new AssertionError("not reached within 10 s");
            Thread.sleep(2);
        }
    }

    @Test
    void aDiscoveredNode_becomesAPeer_onlyWithAcceptAnyPeer_andKeepsItsReplayHistory() throws Exception {
        MeshNode strict = node();
        NodeKey stranger = NodeKey.generate(new SecureRandom());
        assertTrue(!strict.discovered(stranger.publicKeyHex(), "127.0.0.1:9"), "a key not in mesh.peers is ignored");
        assertTrue(!strict.discovered(peer.publicKeyHex(), "10.0.0.9:7946"), "a configured peer keeps its configured address");
        assertTrue(!strict.discovered(strict.key().publicKeyHex(), "127.0.0.1:9"));

        NcroMetrics m = new NcroMetrics();
        MeshNode open = node(m, true);
        byte[] first = announce(stranger, T0, 7);
        open.receive(first, 0, first.length, null);
        assertTrue(open.discovered(stranger.publicKeyHex(), "127.0.0.1:9"));
        assertTrue(!open.discovered(stranger.publicKeyHex(), "127.0.0.1:9"), "once");
        assertTrue(!open.discovered(open.key().publicKeyHex(), "127.0.0.1:9"), "never itself");
        open.receive(first, 0, first.length, null);
        assertEquals(1, m.meshPackets.labelValues("in", "accepted").get(), "a replay is still a replay");
        List<?> rows = (List<?>) open.report().get("peers");
        assertEquals(1, rows.size());
        assertEquals("127.0.0.1:9", ((Map<?, ?>) rows.get(0)).get("addr"));

        open.undiscovered(stranger.publicKeyHex());
        // no longer a peer announced to; still a sender whose packets are accepted (one row, its replay history kept)
        assertEquals(1, ((List<?>) open.report().get("peers")).size());
        strict.undiscovered(peer.publicKeyHex());
        assertEquals(1, ((List<?>) strict.report().get("peers")).size(), "a configured peer stays");
    }
}
