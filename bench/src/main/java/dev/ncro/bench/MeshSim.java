package dev.ncro.bench;

import dev.ncro.config.Listen;
import dev.ncro.config.NcroConfig;
import dev.ncro.mesh.MeshNode;
import dev.ncro.mesh.NodeKey;
import dev.ncro.mesh.Transport;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.Upstream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The mesh at scale, in one JVM: {@code N} real {@link MeshNode}s in a full mesh, each
 * signing, sending, verifying and decoding real packets, over an in-memory network (no loss,
 * no delay) and a simulated clock, so a 30 s gossip interval costs no wall time. Nodes
 * announce at staggered times (node i at i/N of the interval). Each interval every node
 * verifies {@code churn} new routes at random moments; the run reports the bytes each node
 * sent per interval (against the formula of docs/mesh.md) and how long after a route was
 * verified the last node of the mesh held it as a hint.
 *
 * <p>Usage: {@code MeshSim [nodes, default 100] [intervals, default 3]}; runs churn 0, 10 and
 * 100 on all nodes, then a burst past the per-announcement cap on 10 nodes.
 */
public final class MeshSim {
    private static final Duration INTERVAL = Duration.ofSeconds(30);
    private static final List<Upstream> UPSTREAMS = List.of(
            new Upstream(URI.create("https://cache.nixos.org"), 40, 0),
            new Upstream(URI.create("http://attic.lan:8080/main"), 10, 1));
    private static final String NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

    public static void main(String[] args) throws Exception {
        int nodes = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        int intervals = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        System.out.printf("mesh simulation: full mesh, gossip interval %ds, in-memory network, real signed packets%n",
                INTERVAL.toSeconds());
        for (int churn : new int[] {0, 10, 100}) new MeshSim(nodes, churn, false).run(intervals);
        // past the cap of 64 packets (1344 routes) per announcement: one burst, carried over
        new MeshSim(10, 3000, true).run(4);
    }

    private final int n;
    private final int churn;
    private final AtomicLong now = new AtomicLong(1_750_000_000_000L);
    private final Map<SocketAddress, Transport.Receiver> network = new HashMap<>();
    private final ArrayDeque<Object[]> inFlight = new ArrayDeque<>();
    private final List<MeshNode> mesh = new ArrayList<>();
    private final List<NcroMetrics> metrics = new ArrayList<>();
    private final Random random = new Random(42);

    /** Routes are verified in the first interval only (a burst), not in every one. */
    private final boolean burst;

    private MeshSim(int n, int churn, boolean burst) throws Exception {
        this.n = n;
        this.churn = churn;
        this.burst = burst;
        InstantSource clock = () -> Instant.ofEpochMilli(now.get());
        List<NodeKey> keys = new ArrayList<>();
        for (int i = 0; i < n; i++) keys.add(NodeKey.generate(new SecureRandom()));
        Map<String, Upstream> configured = new HashMap<>();
        for (Upstream u : UPSTREAMS) configured.put(u.base().toString(), u);
        for (int i = 0; i < n; i++) {
            List<NcroConfig.Peer> peers = new ArrayList<>();
            for (int j = 0; j < n; j++) if (j != i) peers.add(new NcroConfig.Peer("10.0.0." + j + ":7946", keys.get(j).publicKeyHex()));
            NcroConfig.Mesh config = new NcroConfig.Mesh(true, new Listen("10.0.0." + i, 7946), peers, "", INTERVAL, false);
            NcroMetrics m = new NcroMetrics();
            MeshNode node = new MeshNode(config, Duration.ofHours(1), configured::get, clock, null, Runnable::run, m,
                    this::open).withKey(keys.get(i));
            node.start();
            mesh.add(node);
            metrics.add(m);
        }
    }

    /** The in-memory network: a send is queued and delivered, in order, before the next node's turn. */
    private Transport open(Listen bind, Transport.Receiver receiver) {
        SocketAddress self = new InetSocketAddress(bind.host(), bind.port());
        network.put(self, receiver);
        return new Transport() {
            @Override
            public SocketAddress resolve(String addr) {
                Listen l = Listen.parse(addr);
                return new InetSocketAddress(l.host(), l.port());
            }

            @Override
            public void send(SocketAddress to, byte[] packet) {
                inFlight.add(new Object[] {to, packet, self});
            }

            @Override
            public SocketAddress localAddress() {
                return self;
            }

            @Override
            public void close() {
                network.remove(self);
            }
        };
    }

    private void deliver() {
        for (Object[] p; (p = inFlight.poll()) != null; ) {
            byte[] packet = (byte[]) p[1];
            network.get((SocketAddress) p[0]).receive(packet, 0, packet.length, (SocketAddress) p[2]);
        }
    }

    private record Pending(String hash, int origin, long learnedAt) {}

    private void run(int intervals) throws Exception {
        long step = INTERVAL.toMillis();
        long start = now.get();
        List<List<Pending>> waiting = new ArrayList<>();
        for (int i = 0; i < n; i++) waiting.add(new ArrayList<>());
        List<Pending> notYet = new ArrayList<>();
        List<Double> reachMs = new ArrayList<>();
        long[] bytes = new long[n];
        long[][] perInterval = new long[intervals][n];
        long wall = System.nanoTime();
        for (int k = 0; k < intervals; k++) {
            long intervalStart = start + k * step;
            for (int i = 0; i < n; i++) {
                long tick = intervalStart + i * step / n;
                // routes verified at random moments of the interval before this node's tick
                for (int c = 0; c < (burst && k > 0 ? 0 : churn); c++) {
                    long learnedAt = tick - 1 - random.nextInt((int) step - 1);
                    String hash = hash();
                    now.set(learnedAt);
                    mesh.get(i).learned(hash, UPSTREAMS.get(random.nextInt(UPSTREAMS.size())), 10 + random.nextInt(90));
                    waiting.get(i).add(new Pending(hash, i, learnedAt));
                }
                now.set(tick);
                mesh.get(i).announce();
                deliver();
                perInterval[k][i] = mesh.get(i).bytesSent() - bytes[i];
                bytes[i] = mesh.get(i).bytesSent();
                notYet.addAll(waiting.get(i));
                waiting.get(i).clear();
                // which routes does every node now hold?
                notYet.removeIf(p -> {
                    for (int j = 0; j < n; j++) if (j != p.origin() && mesh.get(j).hint(p.hash()).isEmpty()) return false;
                    reachMs.add((double) (tick - p.learnedAt()));
                    return true;
                });
            }
        }
        double wallS = (System.nanoTime() - wall) / 1e9;
        long[] flat = Arrays.stream(perInterval).skip(intervals > 1 && !burst ? 1 : 0).flatMapToLong(Arrays::stream).sorted().toArray();
        double accepted = 0;
        double rejected = 0;
        for (NcroMetrics m : metrics) {
            accepted += m.meshPackets.labelValues("in", "accepted").get();
            for (String r : List.of("truncated", "oversized", "unknown_peer", "bad_signature", "malformed",
                    "unsupported_version", "stale", "replayed")) rejected += m.meshPackets.labelValues("in", r).get();
        }
        reachMs.sort(Double::compare);
        System.out.printf("%n%d nodes x %d peers, %s %d routes/node%s, %d intervals (%.1f s wall):%n",
                n, n - 1, burst ? "a burst of" : "churn", churn, burst ? " in the first interval" : "/interval",
                intervals, wallS);
        System.out.printf("  bytes sent per node per interval: mean %.0f  max %d  (%.1f KiB/s at %ds)%n",
                Arrays.stream(flat).average().orElse(0), flat[flat.length - 1],
                flat[flat.length - 1] / 1024.0 / INTERVAL.toSeconds(), INTERVAL.toSeconds());
        System.out.printf("  packets accepted %.0f, rejected %.0f%n", accepted, rejected);
        if (churn > 0) {
            System.out.printf("  routes reaching every node: %d of %d; time from verified to held by all: "
                            + "p50 %.1f s  p99 %.1f s  max %.1f s (%.2f intervals)%n",
                    reachMs.size(), reachMs.size() + notYet.size(), pct(reachMs, 0.5) / 1000, pct(reachMs, 0.99) / 1000,
                    pct(reachMs, 1) / 1000, pct(reachMs, 1) / step);
        }
        for (MeshNode m : mesh) m.stop();
    }

    private static double pct(List<Double> sorted, double q) {
        if (sorted.isEmpty()) return Double.NaN;
        return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(q * sorted.size()) - 1 < 0 ? 0 : (int) Math.ceil(q * sorted.size()) - 1));
    }

    private String hash() {
        char[] c = new char[32];
        for (int i = 0; i < 32; i++) c[i] = NIX32.charAt(random.nextInt(32));
        return new String(c);
    }
}
