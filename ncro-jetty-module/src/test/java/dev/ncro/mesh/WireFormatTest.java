package dev.ncro.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class WireFormatTest {
    private static final NodeKey KEY = NodeKey.generate(new SecureRandom());
    private static final String NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

    static String hash(Random r) {
        char[] c = new char[32];
        for (int i = 0; i < 32; i++) c[i] = NIX32.charAt(r.nextInt(32));
        return new String(c);
    }

    @Test
    void thousandRoutes_splitIntoPacketsOfAtMost1400Bytes_allSignedAndDecodedBack() throws Exception {
        Random r = new Random(1);
        List<MeshRoute> routes = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            routes.add(new MeshRoute(hash(r), i % 3 == 0 ? "https://cache.nixos.org" : "http://attic.internal:8080/main",
                    r.nextFloat() * 100, 1_700_000_000_000L + i, 3_600_000));
        }
        ArrayDeque<MeshRoute> queue = new ArrayDeque<>(routes);
        List<MeshRoute> decoded = new ArrayList<>();
        WireFormat.Decoder decoder = new WireFormat.Decoder();
        int packets = 0;
        while (!queue.isEmpty()) {
            byte[] p = WireFormat.packet(KEY, 1_700_000_000_000L, 1000 + packets, queue);
            packets++;
            assertTrue(p.length <= WireFormat.MAX_PACKET, "packet of " + p.length + " bytes");
            assertTrue(NodeKey.verify(p, 0, p, 32, p, 96, p.length - 96), "signed by the sender's key");
            assertTrue(Arrays.equals(KEY.publicKey(), Arrays.copyOf(p, 32)));
            Announcement a = decoder.decode(p, 96, p.length - 96);
            assertEquals(KEY.nodeId(), a.nodeId());
            assertEquals(1000 + packets - 1, a.seq());
            decoded.addAll(a.routes());
        }
        assertEquals(routes, decoded, "every route, in order, with its values");
        assertTrue(packets <= 1000 / 20 + 1, "at least 20 routes a packet: " + packets + " packets");
    }

    @Test
    void emptyAnnouncement_isOnePacket() throws Exception {
        byte[] p = WireFormat.packet(KEY, 5, 6, new ArrayDeque<>());
        Announcement a = new WireFormat.Decoder().decode(p, 96, p.length - 96);
        assertEquals(List.of(), a.routes());
        assertEquals(5, a.timestamp());
    }

    @Test
    void unsendableRoutes_areDropped_notLooped() {
        ArrayDeque<MeshRoute> q = new ArrayDeque<>(List.of(
                new MeshRoute("not-a-hash", "http://a", 1, 1, 1),
                new MeshRoute(hash(new Random(2)), "http://" + "a".repeat(600), 1, 1, 1)));
        WireFormat.packet(KEY, 1, 1, q);
        assertTrue(q.isEmpty());
    }

    @Test
    void malformedBodies_areRefused_withTheVersionToldApart() {
        WireFormat.Decoder d = new WireFormat.Decoder();
        Random r = new Random(3);
        String h = hash(r);
        byte[] good = WireFormat.body(KEY.nodeId(), 1, 1, Map.of("http://a", 0), List.of(new MeshRoute(h, "http://a", 1, 1, 1)));
        // every proper prefix of a valid body is refused
        for (int n = 0; n < good.length; n++) {
            int len = n;
            assertThrows(WireFormat.Malformed.class, () -> d.decode(good, 0, len), "prefix of " + len);
        }
        byte[] v2 = good.clone();
        // the version value is the byte after the first key ("version": a fixstr of 7)
        v2[1 + 8] = 2;
        WireFormat.Malformed e = assertThrows(WireFormat.Malformed.class, () -> d.decode(v2, 0, v2.length));
        assertTrue(e.unsupportedVersion());
        // a declared string length far past the packet is refused before anything is allocated
        byte[] huge = {(byte) 0x81, (byte) 0xdb, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff, 1};
        assertThrows(WireFormat.Malformed.class, () -> d.decode(huge, 0, huge.length));
        byte[] hugeArray = {(byte) 0x81, (byte) 0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 1, (byte) 0xa6, 'r', 'o', 'u', 't', 'e', 's',
            (byte) 0xdd, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff};
        assertThrows(WireFormat.Malformed.class, () -> d.decode(hugeArray, 0, hugeArray.length));
    }

    @Test
    void replayWindow_acceptsEachNumberOnce_toleratesReorderingWithin64() {
        ReplayWindow w = new ReplayWindow();
        assertTrue(w.accept(100));
        assertTrue(!w.accept(100));
        assertTrue(w.accept(102));
        assertTrue(w.accept(101), "reordered, not seen");
        assertTrue(!w.accept(101));
        assertTrue(w.accept(200));
        assertTrue(!w.accept(136), "older than the window");
        assertTrue(w.accept(137));
        assertTrue(!w.fresh(137));
        assertTrue(w.fresh(138));
    }
}
