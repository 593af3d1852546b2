package dev.ncro.mesh;

import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.route.RouteHints;
import dev.ncro.upstream.Upstream;
import java.io.IOException;
import java.net.SocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A mesh node: this ncro's identity, its socket and listener, and the announcer that tells
 * every peer, each {@code gossip_interval}, the routes this node verified since its last
 * announcement (and an empty announcement when there are none, so peers see it alive).
 *
 * <p><b>Receiving</b> (the transport's listener thread, one packet at a time): size, then the
 * sender's key against {@code mesh.peers} (unless {@code accept_any_peer}), then the
 * signature over the body — before a byte of the body is decoded — then the bounded decode,
 * the timestamp window (±2 gossip intervals of this node's clock) and the sender's sequence
 * window. Only then are its routes looked at, and only those naming an upstream this node has
 * configured are kept, as hints ({@link HintTable}). Every packet is counted by result.
 *
 * <p><b>Using</b>: {@link RouteHints}: the narinfo lookup asks {@link #hint} on a miss and
 * asks the named upstream once, verifying what it gets against that upstream's keys; what it
 * verifies ({@link #learned}) is announced by this node in turn.
 *
 * <p><b>Sending</b> (the engine's timer fires, a worker sends): the routes queued since the
 * last announcement, in packets of at most 1400 bytes, the same packets to every peer, at
 * most {@link Defaults#MESH_MAX_PACKETS_PER_INTERVAL} packets per announcement; what does not
 * fit waits for the next one, first in line.
 */
public final class MeshNode extends AbstractLifeCycle implements RouteHints {
    private static final Logger LOG = LoggerFactory.getLogger(MeshNode.class);
    private static final HexFormat HEX = HexFormat.of();

    /** What this node knows of one sender key. Guarded by the node. */
    private static final class Peer {
        final String publicKey;
        final String addr;
        final boolean configured;
        SocketAddress resolved;
        final ReplayWindow window = new ReplayWindow();
        long lastPacketAt;
        SocketAddress lastFrom;
        long packetsAccepted;
        long routesReceived;
        long routesIgnored;
        final EnumMap<Verdict, Long> rejected = new EnumMap<>(Verdict.class);

        Peer(String publicKey, String addr, boolean configured) {
            this.publicKey = publicKey;
            this.addr = addr;
            this.configured = configured;
        }
    }

    private final NcroConfig.Mesh config;
    private final Duration routeTtl;
    private final Function<String, Upstream> configuredUpstream;
    private final InstantSource clock;
    private final Scheduler scheduler;
    private final Executor executor;
    private final NcroMetrics metrics;
    private final Transport.Factory transports;
    private final long windowMs;
    private final HintTable hints = new HintTable(Defaults.MESH_MAX_HINTS);
    private final WireFormat.Decoder decoder = new WireFormat.Decoder();

    // guarded by this
    private final Map<String, Peer> peers = new LinkedHashMap<>();
    /** Senders not in mesh.peers whose packets were accepted (accept_any_peer), least recent first. */
    private final LinkedHashMap<String, Peer> others = new LinkedHashMap<>(16, 0.75f, true);
    private final EnumMap<Verdict, Long> rejectedUnknown = new EnumMap<>(Verdict.class);

    /** Routes verified here since the last announcement, by hash (a newer one replaces an older). */
    private final LinkedHashMap<String, MeshRoute> outbox = new LinkedHashMap<>();
    /** Routes an announcement had no room for; only the announcer touches it. */
    private final ArrayDeque<MeshRoute> carried = new ArrayDeque<>();
    private final AtomicLong seq = new AtomicLong();
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong routesDropped = new AtomicLong();

    private volatile NodeKey key;
    private volatile Transport transport;
    private volatile Scheduler.Task nextAnnouncement;

    /**
     * @param routeTtl how long a route this node verified holds ({@code cache.ttl}); also the
     *     longest a peer's claim is believed, whatever TTL it carries
     * @param configuredUpstream the configured upstream with this base URL, or null
     * @param scheduler fires announcements every gossip interval; null: only {@link #announce} calls send
     */
    public MeshNode(NcroConfig.Mesh config, Duration routeTtl, Function<String, Upstream> configuredUpstream,
            InstantSource clock, Scheduler scheduler, Executor executor, NcroMetrics metrics, Transport.Factory transports) {
        this.config = config;
        this.routeTtl = routeTtl;
        this.configuredUpstream = configuredUpstream;
        this.clock = clock;
        this.scheduler = scheduler;
        this.executor = executor;
        this.metrics = metrics;
        this.transports = transports;
        this.windowMs = 2 * config.gossipInterval().toMillis();
        for (NcroConfig.Peer p : config.peers()) peers.put(p.publicKey(), new Peer(p.publicKey(), p.addr(), true));
    }

    /** Uses {@code key} instead of {@code mesh.private_key} (the simulation and tests). */
    public MeshNode withKey(NodeKey key) {
        this.key = key;
        return this;
    }

    @Override
    protected void doStart() throws Exception {
        if (key == null) {
            try {
                key = NodeKey.load(config.privateKey(), new SecureRandom());
            } catch (IOException e) {
                throw new IOException("mesh.private_key " + config.privateKey() + ": " + e.getMessage(), e);
            }
        }
        // the sequence starts at the start time in microseconds: a restarted node is past
        // whatever its peers last saw from it, with no state kept on disk
        seq.set(Math.max(seq.get(), clock.millis() * 1000));
        transport = transports.open(config.bindAddr(), this::receive);
        resolvePeers();
        LOG.info("mesh node {} on {}: public key {}, {} peers{}, gossip every {}", key.nodeId(), transport.localAddress(),
                key.publicKeyHex(), peers.size(), config.acceptAnyPeer() ? " (and any peer that signs)" : "",
                config.gossipInterval());
        if (config.privateKey().isEmpty()) {
            LOG.warn("mesh.private_key is empty: this node's key is new at every start, so peers must list it again");
        }
        scheduleAnnouncement();
    }

    @Override
    protected void doStop() {
        Scheduler.Task task = nextAnnouncement;
        if (task != null) task.cancel();
        Transport t = transport;
        transport = null;
        if (t != null) t.close();
    }

    private void scheduleAnnouncement() {
        if (scheduler == null || !isRunning() && !isStarting()) return;
        // the timer only fires; the announcement (signing, sending) runs on a worker
        nextAnnouncement = scheduler.schedule(() -> executor.execute(() -> {
            try {
                announce();
            } catch (Throwable t) {
                LOG.warn("mesh announcement failed", t);
            } finally {
                scheduleAnnouncement();
            }
        }), config.gossipInterval().toMillis(), TimeUnit.MILLISECONDS);
    }

    // ---- RouteHints ----

    @Override
    public Optional<Upstream> hint(String hash) {
        // the upstream must still be one of this node's: a discovered cache that went away
        // since the peer's route was merged is never asked again because of it
        return hints.get(hash, clock.millis()).filter(u -> u.equals(configuredUpstream.apply(u.base().toString())));
    }

    @Override
    public void learned(String hash, Upstream upstream, double emaMs) {
        MeshRoute route = new MeshRoute(hash, upstream.base().toString(),
                (float) (Double.isNaN(emaMs) ? 0 : emaMs), clock.millis(), routeTtl.toMillis());
        synchronized (outbox) {
            outbox.remove(hash); // re-learned: to the back of the line, with its new values
            outbox.put(hash, route);
            if (outbox.size() > Defaults.MESH_MAX_QUEUED_ROUTES) {
                var eldest = outbox.keySet().iterator();
                eldest.next();
                eldest.remove();
                routesDropped.incrementAndGet();
            }
        }
    }

    @Override
    public void refuted(String hash, Upstream upstream) {
        hints.refute(hash, upstream);
    }

    // ---- sending ----

    /**
     * Sends one announcement to every peer: the routes carried from the last one, then those
     * verified since, in at most {@link Defaults#MESH_MAX_PACKETS_PER_INTERVAL} packets; an
     * empty announcement when there is nothing to tell. Called by the timer's task (one at a
     * time); the simulation calls it directly.
     */
    public void announce() {
        Transport t = transport;
        NodeKey k = key;
        if (t == null || k == null) return;
        long now = clock.millis();
        synchronized (outbox) {
            carried.addAll(outbox.values());
            outbox.clear();
        }
        carried.removeIf(r -> r.expiresAt() <= now);
        while (carried.size() > Defaults.MESH_MAX_QUEUED_ROUTES) {
            carried.pollFirst();
            routesDropped.incrementAndGet();
        }
        List<byte[]> packets = new ArrayList<>();
        do {
            packets.add(WireFormat.packet(k, now, seq.getAndIncrement(), carried));
        } while (!carried.isEmpty() && packets.size() < Defaults.MESH_MAX_PACKETS_PER_INTERVAL);
        resolvePeers();
        Map<SocketAddress, String> targets = new LinkedHashMap<>();
        synchronized (this) {
            for (Peer p : peers.values()) if (p.resolved != null) targets.put(p.resolved, p.addr);
        }
        for (Map.Entry<SocketAddress, String> target : targets.entrySet()) {
            SocketAddress to = target.getKey();
            for (byte[] packet : packets) {
                try {
                    t.send(to, packet);
                    bytesSent.addAndGet(packet.length);
                    metrics.meshPackets.labelValues("out", "sent").inc();
                } catch (IOException | RuntimeException e) {
                    metrics.meshPackets.labelValues("out", "send_failed").inc();
                    LOG.debug("mesh: sending to {} ({}) failed: {}", target.getValue(), to, e.toString());
                }
            }
        }
    }

    /**
     * Looks up the peers not resolved yet, outside the lock the listener takes (a name lookup
     * may be slow); one that does not resolve is tried again at the next announcement.
     */
    private void resolvePeers() {
        Transport t = transport;
        if (t == null) return;
        List<Peer> unresolved;
        synchronized (this) {
            unresolved = peers.values().stream().filter(p -> p.resolved == null).toList();
        }
        for (Peer p : unresolved) {
            try {
                SocketAddress a = t.resolve(p.addr);
                synchronized (this) {
                    p.resolved = a;
                }
            } catch (IOException e) {
                LOG.warn("mesh peer {} ({}): {}", p.addr, p.publicKey, e.getMessage());
            }
        }
    }

    /**
     * A node that mDNS discovery found announcing its mesh port and key. Only with
     * {@code accept_any_peer} does it become a peer this node announces to (its packets are
     * accepted then anyway); a key in {@code mesh.peers} already is one, at its configured
     * address; any other key is ignored.
     *
     * @param addr {@code host:port} of its mesh socket
     * @return whether it was added
     */
    public synchronized boolean discovered(String publicKeyHex, String addr) {
        String k = publicKeyHex.toLowerCase(java.util.Locale.ROOT);
        NodeKey own = key;
        if (!config.acceptAnyPeer() || !k.matches("[0-9a-f]{64}") || peers.containsKey(k)
                || own != null && own.publicKeyHex().equals(k)) {
            return false;
        }
        // anyone on the LAN can announce an ncro: what this node keeps (and sends to) is bounded
        long discoveredPeers = peers.values().stream().filter(p -> !p.configured).count();
        if (discoveredPeers >= Defaults.MESH_MAX_OTHER_PEERS) {
            LOG.warn("mesh: discovered peer {} at {} not added: already {} discovered peers", k, addr, discoveredPeers);
            return false;
        }
        Peer peer = new Peer(k, addr, false);
        Peer seen = others.remove(k);
        if (seen != null) peer.window.copyFrom(seen.window);
        peers.put(k, peer);
        LOG.info("mesh: discovered peer {} at {} (accept_any_peer)", k, addr);
        return true;
    }

    /** A discovered peer's announcement went away: this node stops announcing to it. */
    public synchronized void undiscovered(String publicKeyHex) {
        String k = publicKeyHex.toLowerCase(java.util.Locale.ROOT);
        Peer p = peers.get(k);
        if (p != null && !p.configured) {
            peers.remove(k);
            // its packets are still accepted (accept_any_peer): it keeps its replay history
            remember(k, p);
        }
    }

    /** Keeps a sender that is not a peer, at most {@link Defaults#MESH_MAX_OTHER_PEERS} (least recent out). */
    private void remember(String sender, Peer peer) {
        others.put(sender, peer);
        if (others.size() > Defaults.MESH_MAX_OTHER_PEERS) {
            var eldest = others.keySet().iterator();
            eldest.next();
            eldest.remove();
        }
    }

    // ---- receiving ----

    /**
     * Handles one datagram: checks it in order (size, sender, signature, body, timestamp,
     * sequence) and merges the routes of an accepted one. Never throws for what a packet holds;
     * keeps no reference to {@code buffer}.
     */
    public synchronized void receive(byte[] buffer, int off, int len, SocketAddress from) {
        Verdict verdict = check(buffer, off, len, from);
        metrics.meshPackets.labelValues("in", verdict.label).inc();
    }

    private Verdict check(byte[] buffer, int off, int len, SocketAddress from) {
        if (len > WireFormat.MAX_PACKET) return rejectUnknown(Verdict.OVERSIZED);
        if (len <= WireFormat.HEADER) return rejectUnknown(Verdict.TRUNCATED);
        String sender = HEX.formatHex(buffer, off, off + NodeKey.PUBLIC_KEY_BYTES);
        Peer peer = peers.get(sender);
        if (peer == null) peer = others.get(sender);
        if (peer == null && !config.acceptAnyPeer()) return rejectUnknown(Verdict.UNKNOWN_PEER);
        int bodyOff = off + WireFormat.HEADER;
        int bodyLen = len - WireFormat.HEADER;
        if (!NodeKey.verify(buffer, off, buffer, off + NodeKey.PUBLIC_KEY_BYTES, buffer, bodyOff, bodyLen)) {
            return reject(peer, Verdict.BAD_SIGNATURE);
        }
        Announcement a;
        try {
            a = decoder.decode(buffer, bodyOff, bodyLen);
        } catch (WireFormat.Malformed e) {
            LOG.debug("mesh: packet from {} ({}) refused: {}", sender, from, e.getMessage());
            return reject(peer, e.unsupportedVersion() ? Verdict.UNSUPPORTED_VERSION : Verdict.MALFORMED);
        }
        if (!a.nodeId().equals(NodeKey.nodeId(buffer, off))) return reject(peer, Verdict.MALFORMED);
        long now = clock.millis();
        if (Math.abs(a.timestamp() - now) > windowMs) return reject(peer, Verdict.STALE);
        if (peer == null) {
            peer = new Peer(sender, String.valueOf(from), false);
            remember(sender, peer);
        }
        if (!peer.window.accept(a.seq())) return reject(peer, Verdict.REPLAYED);
        peer.lastPacketAt = now;
        peer.lastFrom = from;
        peer.packetsAccepted++;
        merge(peer, a.routes(), now);
        return Verdict.ACCEPTED;
    }

    private void merge(Peer peer, List<MeshRoute> routes, long now) {
        long maxTtl = routeTtl.toMillis();
        for (MeshRoute r : routes) {
            peer.routesReceived++;
            String url = r.upstream();
            while (url.endsWith("/")) url = url.substring(0, url.length() - 1);
            Upstream upstream = configuredUpstream.apply(url);
            // a claim about an upstream this node does not have, one already lapsed, or one
            // "verified" in the future is of no use here
            long expiresAt = Math.min(r.expiresAt(), now + maxTtl);
            if (upstream == null || expiresAt <= now || r.lastVerified() > now + windowMs) {
                peer.routesIgnored++;
                continue;
            }
            if (hints.merge(r.hash(), new HintTable.Hint(upstream, r.emaMs(), r.lastVerified(), expiresAt), now)) {
                metrics.meshRoutesMerged.inc();
            }
        }
    }

    private Verdict rejectUnknown(Verdict v) {
        rejectedUnknown.merge(v, 1L, Long::sum);
        return v;
    }

    private Verdict reject(Peer peer, Verdict v) {
        if (peer == null) return rejectUnknown(v);
        peer.rejected.merge(v, 1L, Long::sum);
        return v;
    }

    // ---- what /health shows ----

    /** The {@code mesh} object of {@code /health}. */
    public synchronized Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        NodeKey k = key;
        Transport t = transport;
        m.put("public_key", k == null ? null : k.publicKeyHex());
        m.put("node_id", k == null ? null : k.nodeId());
        m.put("bind_addr", t == null ? config.bindAddr().toString() : String.valueOf(t.localAddress()));
        m.put("accept_any_peer", config.acceptAnyPeer());
        m.put("gossip_interval_ms", config.gossipInterval().toMillis());
        m.put("hints", hints.size());
        m.put("bytes_sent", bytesSent.get());
        m.put("routes_dropped", routesDropped.get());
        List<Map<String, Object>> rows = new ArrayList<>();
        for (Peer p : peers.values()) rows.add(row(p));
        for (Peer p : others.values()) rows.add(row(p));
        m.put("peers", rows);
        m.put("rejected_from_unknown_senders", labels(rejectedUnknown));
        return m;
    }

    private static Map<String, Object> row(Peer p) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("addr", p.addr);
        r.put("public_key", p.publicKey);
        r.put("configured", p.configured);
        r.put("last_packet", p.lastPacketAt == 0 ? null : Instant.ofEpochMilli(p.lastPacketAt).toString());
        r.put("packets_accepted", p.packetsAccepted);
        r.put("routes_received", p.routesReceived);
        r.put("routes_ignored", p.routesIgnored);
        r.put("rejected", labels(p.rejected));
        return r;
    }

    private static Map<String, Long> labels(EnumMap<Verdict, Long> counts) {
        Map<String, Long> m = new LinkedHashMap<>();
        counts.forEach((v, n) -> m.put(v.label, n));
        return m;
    }

    /** This node's key; null before start. */
    public NodeKey key() {
        return key;
    }

    /** Where the transport listens (the bound port when {@code bind_addr} said port 0); null when stopped. */
    public SocketAddress localAddress() {
        Transport t = transport;
        return t == null ? null : t.localAddress();
    }

    /** Packet bytes sent since start, to every peer together. */
    public long bytesSent() {
        return bytesSent.get();
    }

    /** Accepted packets from the peer with this key (hex). */
    public synchronized long packetsAccepted(String publicKeyHex) {
        Peer p = peers.containsKey(publicKeyHex) ? peers.get(publicKeyHex) : others.get(publicKeyHex);
        return p == null ? 0 : p.packetsAccepted;
    }

    /** Hints held (routes from peers to configured upstreams). */
    public long hintCount() {
        return hints.size();
    }
}
