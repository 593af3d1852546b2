package dev.ncro.mesh;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.core.buffer.ArrayBufferInput;
import org.msgpack.value.ValueType;

/**
 * The mesh's packets, byte for byte (the normative description is {@code docs/mesh.md}):
 *
 * <pre>
 * offset 0   32 bytes  sender's ed25519 public key
 * offset 32  64 bytes  ed25519 signature of the body, by that key
 * offset 96  ...       body: a MessagePack map, at most 1304 bytes (a packet is at most 1400)
 * </pre>
 *
 * The body's first key is {@code "version"} (1); then {@code type} (1 = announce),
 * {@code node_id}, {@code timestamp} (epoch ms), {@code seq}, {@code upstreams} (the upstream
 * URLs the routes name, each once) and {@code routes}: arrays
 * {@code [hash, upstream index, ema_ms, last_verified, ttl_ms]}. Unknown keys, and elements
 * past the fifth of a route, are skipped, so a later version 1 sender may add some.
 */
public final class WireFormat {
    private WireFormat() {}

    public static final int MAX_PACKET = 1400;
    public static final int HEADER = NodeKey.PUBLIC_KEY_BYTES + NodeKey.SIGNATURE_BYTES;
    public static final int MAX_BODY = MAX_PACKET - HEADER;
    public static final int VERSION = 1;
    public static final int TYPE_ANNOUNCE = 1;
    /** A route naming a longer upstream URL is not sent (and refused when received). */
    public static final int MAX_URL_BYTES = 512;
    static final int HASH_CHARS = 32;
    private static final int MAX_KEYS = 16;
    private static final int MAX_KEY_BYTES = 32;
    private static final int MAX_UPSTREAMS = 16;
    private static final int MAX_ROUTE_FIELDS = 16;
    private static final String NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

    /** Why a body was refused; decoding stops at the first problem. */
    public static final class Malformed extends Exception {
        private final boolean unsupportedVersion;

        Malformed(String message, boolean unsupportedVersion) {
            super(message, null, false, false); // no stack trace: a hostile packet is not an error of ours
            this.unsupportedVersion = unsupportedVersion;
        }

        public boolean unsupportedVersion() {
            return unsupportedVersion;
        }
    }

    // ---- encoding ----

    /**
     * Takes routes from the head of {@code queue} while they fit, and returns the signed packet
     * carrying them (never more than {@link #MAX_PACKET} bytes; at least one route if the queue
     * has one that can be sent at all). Routes that can never be sent (an over-long URL, a
     * malformed hash) are taken and dropped.
     */
    public static byte[] packet(NodeKey key, long timestamp, long seq, Deque<MeshRoute> queue) {
        List<MeshRoute> chosen = new ArrayList<>();
        Map<String, Integer> table = new LinkedHashMap<>();
        int size = headerSize(key.nodeId(), timestamp, seq, 0, 0, 0);
        int urlBytes = 0;
        int routeBytes = 0;
        while (!queue.isEmpty()) {
            MeshRoute r = queue.peekFirst();
            if (!sendable(r)) {
                queue.pollFirst();
                continue;
            }
            boolean newUrl = !table.containsKey(r.upstream());
            if (newUrl && table.size() == MAX_UPSTREAMS) break;
            int addUrl = newUrl ? strSize(utf8(r.upstream()).length) : 0;
            int index = newUrl ? table.size() : table.get(r.upstream());
            int addRoute = routeSize(r, index);
            int candidate = headerSize(key.nodeId(), timestamp, seq, table.size() + (newUrl ? 1 : 0),
                    chosen.size() + 1, urlBytes + addUrl + routeBytes + addRoute);
            if (candidate > MAX_BODY) break;
            queue.pollFirst();
            if (newUrl) table.put(r.upstream(), index);
            chosen.add(r);
            urlBytes += addUrl;
            routeBytes += addRoute;
            size = candidate;
        }
        byte[] body = body(key.nodeId(), timestamp, seq, table, chosen);
        if (body.length != size || body.length > MAX_BODY) {
            throw new IllegalStateException("mesh packet body sized " + size + " but encoded to " + body.length);
        }
        byte[] packet = new byte[HEADER + body.length];
        System.arraycopy(key.publicKey(), 0, packet, 0, NodeKey.PUBLIC_KEY_BYTES);
        System.arraycopy(body, 0, packet, HEADER, body.length);
        key.sign(packet, HEADER, body.length, packet, NodeKey.PUBLIC_KEY_BYTES);
        return packet;
    }

    /** The unsigned body for these routes: any routes, any upstream table (tests forge packets with it). */
    static byte[] body(String nodeId, long timestamp, long seq, Map<String, Integer> table, List<MeshRoute> routes) {
        try (MessageBufferPacker p = MessagePack.newDefaultBufferPacker()) {
            p.packMapHeader(7);
            p.packString("version").packInt(VERSION);
            p.packString("type").packInt(TYPE_ANNOUNCE);
            p.packString("node_id").packString(nodeId);
            p.packString("timestamp").packLong(timestamp);
            p.packString("seq").packLong(seq);
            p.packString("upstreams").packArrayHeader(table.size());
            for (String url : table.keySet()) p.packString(url);
            p.packString("routes").packArrayHeader(routes.size());
            for (MeshRoute r : routes) {
                p.packArrayHeader(5);
                p.packString(r.hash());
                p.packInt(table.get(r.upstream()));
                p.packFloat(r.emaMs());
                p.packLong(r.lastVerified());
                p.packLong(r.ttlMs());
            }
            p.flush();
            return p.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e); // an in-memory packer does not fail
        }
    }

    /** A route that can be announced at all. */
    static boolean sendable(MeshRoute r) {
        return validHash(r.hash()) && utf8(r.upstream()).length <= MAX_URL_BYTES && r.lastVerified() >= 0 && r.ttlMs() >= 0;
    }

    private static int headerSize(String nodeId, long timestamp, long seq, int upstreams, int routes, int payload) {
        return 1 // map of 7
                + strSize(7) + 1 // "version": 1
                + strSize(4) + 1 // "type": 1
                + strSize(7) + strSize(nodeId.length())
                + strSize(9) + uintSize(timestamp)
                + strSize(3) + uintSize(seq)
                + strSize(9) + arraySize(upstreams)
                + strSize(6) + arraySize(routes)
                + payload;
    }

    private static int routeSize(MeshRoute r, int index) {
        return 1 + strSize(HASH_CHARS) + uintSize(index) + 5 + uintSize(r.lastVerified()) + uintSize(r.ttlMs());
    }

    private static int strSize(int n) {
        return n < 32 ? 1 + n : n < 256 ? 2 + n : n < 65536 ? 3 + n : 5 + n;
    }

    private static int arraySize(int n) {
        return n < 16 ? 1 : n < 65536 ? 3 : 5;
    }

    private static int uintSize(long v) {
        return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v < (1L << 32) ? 5 : 9;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static boolean validHash(String hash) {
        if (hash == null || hash.length() != HASH_CHARS) return false;
        for (int i = 0; i < HASH_CHARS; i++) if (NIX32.indexOf(hash.charAt(i)) < 0) return false;
        return true;
    }

    // ---- decoding ----

    /**
     * Decodes bodies with bounded work and memory: every length a body declares is checked
     * against what is left of the packet and a fixed limit before anything is read or
     * allocated. One decoder per listener (it reuses its buffers); not thread-safe.
     */
    public static final class Decoder {
        private final ArrayBufferInput input = new ArrayBufferInput(new byte[0]);
        private final MessageUnpacker unpacker = MessagePack.newDefaultUnpacker(input);
        private final byte[] scratch = new byte[MAX_PACKET];
        private int length;

        public Announcement decode(byte[] packet, int off, int len) throws Malformed {
            if (len > MAX_BODY) throw new Malformed("body of " + len + " bytes", false);
            try {
                input.reset(packet, off, len);
                unpacker.reset(input);
                length = len;
                return read();
            } catch (Malformed e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                throw new Malformed("undecodable body: " + e.getClass().getSimpleName(), false);
            }
        }

        private Announcement read() throws IOException, Malformed {
            if (unpacker.getNextFormat().getValueType() != ValueType.MAP) throw new Malformed("body is not a map", false);
            int keys = unpacker.unpackMapHeader();
            if (keys > MAX_KEYS) throw new Malformed("body map of " + keys + " keys", false);
            if (keys == 0 || !"version".equals(string(MAX_KEY_BYTES))) throw new Malformed("first key is not version", false);
            long version = integer();
            if (version != VERSION) throw new Malformed("version " + version, true);
            Long type = null;
            String nodeId = null;
            Long timestamp = null;
            Long seq = null;
            List<String> upstreams = null;
            List<RawRoute> routes = null;
            for (int k = 1; k < keys; k++) {
                String key = string(MAX_KEY_BYTES);
                switch (key) {
                    case "type" -> type = integer();
                    case "node_id" -> nodeId = string(64);
                    case "timestamp" -> timestamp = integer();
                    case "seq" -> seq = integer();
                    case "upstreams" -> upstreams = upstreams();
                    case "routes" -> routes = routes();
                    default -> unpacker.skipValue();
                }
            }
            if (type == null || type != TYPE_ANNOUNCE) throw new Malformed("type " + type + " is not announce (1)", false);
            if (nodeId == null || timestamp == null || seq == null || routes == null) {
                throw new Malformed("node_id, timestamp, seq or routes missing", false);
            }
            if (timestamp < 0 || seq < 0) throw new Malformed("negative timestamp or seq", false);
            if (unpacker.getTotalReadBytes() != length) throw new Malformed("bytes after the body", false);
            List<MeshRoute> out = new ArrayList<>(routes.size());
            for (RawRoute r : routes) {
                if (upstreams == null || r.index >= upstreams.size()) throw new Malformed("route names upstream " + r.index, false);
                out.add(new MeshRoute(r.hash, upstreams.get(r.index), r.emaMs, r.lastVerified, r.ttlMs));
            }
            return new Announcement(nodeId, timestamp, seq, out);
        }

        private List<String> upstreams() throws IOException, Malformed {
            int n = array(MAX_UPSTREAMS);
            List<String> urls = new ArrayList<>(n);
            for (int i = 0; i < n; i++) urls.add(string(MAX_URL_BYTES));
            return urls;
        }

        private record RawRoute(String hash, int index, float emaMs, long lastVerified, long ttlMs) {}

        private List<RawRoute> routes() throws IOException, Malformed {
            // a route takes at least 40 bytes: never more routes than the body could hold
            int n = array(MAX_BODY / 40);
            List<RawRoute> routes = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                int fields = array(MAX_ROUTE_FIELDS);
                if (fields < 5) throw new Malformed("route of " + fields + " fields", false);
                String hash = string(HASH_CHARS);
                if (!validHash(hash)) throw new Malformed("route hash is not 32 nix32 characters", false);
                long index = integer();
                if (index < 0 || index >= MAX_UPSTREAMS) throw new Malformed("upstream index " + index, false);
                double ema = number();
                long lastVerified = integer();
                long ttl = integer();
                if (!(ema >= 0) || Double.isInfinite(ema) || lastVerified < 0 || ttl < 0) {
                    throw new Malformed("route with a negative or non-finite value", false);
                }
                for (int f = 5; f < fields; f++) unpacker.skipValue();
                routes.add(new RawRoute(hash, (int) index, (float) ema, lastVerified, ttl));
            }
            return routes;
        }

        private int remaining() {
            return (int) (length - unpacker.getTotalReadBytes());
        }

        private int array(int max) throws IOException, Malformed {
            if (unpacker.getNextFormat().getValueType() != ValueType.ARRAY) throw new Malformed("expected an array", false);
            int n = unpacker.unpackArrayHeader();
            if (n < 0 || n > max || n > remaining()) throw new Malformed("array of " + n + " elements", false);
            return n;
        }

        private String string(int maxBytes) throws IOException, Malformed {
            if (unpacker.getNextFormat().getValueType() != ValueType.STRING) throw new Malformed("expected a string", false);
            int n = unpacker.unpackRawStringHeader();
            if (n < 0 || n > maxBytes || n > remaining()) throw new Malformed("string of " + n + " bytes", false);
            unpacker.readPayload(scratch, 0, n);
            return new String(scratch, 0, n, StandardCharsets.UTF_8);
        }

        private long integer() throws IOException, Malformed {
            if (unpacker.getNextFormat().getValueType() != ValueType.INTEGER) throw new Malformed("expected an integer", false);
            return unpacker.unpackLong();
        }

        private double number() throws IOException, Malformed {
            MessageFormat f = unpacker.getNextFormat();
            if (f.getValueType() == ValueType.FLOAT) return unpacker.unpackDouble();
            if (f.getValueType() == ValueType.INTEGER) return unpacker.unpackLong();
            throw new Malformed("expected a number", false);
        }
    }
}
