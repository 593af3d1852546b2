package dev.ncro.trust;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Signature checks on narinfos written and signed by the real Nix client (see the fixtures' README). */
class SignaturesTest {
    private static final String TOP = "8hw9by54xj72m1fgzwvkj3ya48y20y3j";
    private static final String MID = "zhn3p8w1gy34555fmrdvbk6mqrjkl8yi";
    private static final String LEAF = "bihphjc5sij6qfda4z0gks08j57xwslx";

    private static String fixture(String name) throws IOException {
        try (InputStream in = SignaturesTest.class.getResourceAsStream(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static PublicKey key(int n) throws IOException {
        return PublicKey.parse(fixture("ncro-fixture-" + n + ".pk"));
    }

    private static Narinfo narinfo(String hash) throws IOException {
        return Narinfo.parse(fixture(hash + ".narinfo").getBytes(StandardCharsets.UTF_8), hash);
    }

    private static Narinfo edited(String hash, String from, String to) throws IOException {
        String text = fixture(hash + ".narinfo");
        assertTrue(text.contains(from), from);
        return Narinfo.parse(text.replace(from, to).getBytes(StandardCharsets.UTF_8), hash);
    }

    @Test
    void nixSignedNarinfos_verify_withAndWithoutReferences() throws Exception {
        for (String h : List.of(TOP, MID, LEAF)) assertNull(Signatures.reject(narinfo(h), List.of(key(1))), h);
    }

    /** The start-up warm-up checks its own sample (refused) and leaves real checks as they were. */
    @Test
    void warmUp_leavesChecksAsTheyWere() throws Exception {
        Signatures.warmUp();
        Signatures.warmUp(); // twice is harmless
        assertNull(Signatures.reject(narinfo(TOP), List.of(key(1))));
        assertTrue(Signatures.reject(edited(TOP, "NarSize: 232", "NarSize: 233"), List.of(key(1))).contains("does not match"));
    }

    @Test
    void fingerprint_isWhatNixSigns() throws Exception {
        assertEquals("1;/nix/store/" + TOP + "-fixture-top;sha256:1ph39f53fb5qyhkkqqnjb4d7y0cncavnqax06fg5hbrvjv2paq37;232;"
                + "/nix/store/" + LEAF + "-fixture-leaf,/nix/store/" + MID + "-fixture-mid", narinfo(TOP).fingerprint());
    }

    @Test
    void severalSigLines_oneTrustedKeyIsEnough() throws Exception {
        assertNull(Signatures.reject(narinfo(TOP), List.of(key(2))));
        assertNull(Signatures.reject(narinfo(TOP), List.of(key(1), key(2))));
        assertNotNull(Signatures.reject(narinfo(MID), List.of(key(2))), "mid is signed by key 1 only");
    }

    @Test
    void tamperedFields_areRejected() throws Exception {
        assertNotNull(Signatures.reject(edited(TOP, "NarSize: 232", "NarSize: 233"), List.of(key(1))));
        assertNotNull(Signatures.reject(edited(MID, "References: " + LEAF + "-fixture-leaf", "References: "), List.of(key(1))));
        String reason = Signatures.reject(edited(LEAF, "NarHash: sha256:0i", "NarHash: sha256:1i"), List.of(key(1)));
        assertTrue(reason.contains("does not match"), reason);
    }

    @Test
    void wrongKey_sameName_isRejected() throws Exception {
        PublicKey impostor = new PublicKey("ncro-fixture-1", key(2).key());
        assertNotNull(Signatures.reject(narinfo(LEAF), List.of(impostor)));
    }

    @Test
    void missingSignature_isRejected_andSaysWhichKeysWereExpected() throws Exception {
        String text = fixture(LEAF + ".narinfo").replaceAll("(?m)^Sig: .*\\n", "");
        String reason = Signatures.reject(Narinfo.parse(text.getBytes(StandardCharsets.UTF_8), LEAF), List.of(key(1)));
        assertTrue(reason.contains("no Sig") && reason.contains("ncro-fixture-1"), reason);
    }

    @Test
    void hexNarHash_asAtticWritesIt_isNormalisedAndVerifies() throws Exception {
        String nix32 = "0iclkbr27lkblhi8glsajf038m00j72aapsid6m717zii6p53ddr";
        String hex = HexFormat.of().formatHex(Nix32.decode(nix32, 32));
        Narinfo attic = edited(LEAF, "sha256:" + nix32, "sha256:" + hex);

        assertEquals("sha256:" + nix32, attic.narHash());
        assertNull(Signatures.reject(attic, List.of(key(1))));
    }

    @Test
    void keys_paddedOrNot_andBadKeysAreNamed() throws Exception {
        String padded = fixture("ncro-fixture-1.pk").trim();
        assertTrue(padded.endsWith("="));
        PublicKey unpadded = PublicKey.parse(padded.replace("=", ""));
        assertArrayEquals(key(1).key(), unpadded.key());
        assertNull(Signatures.reject(narinfo(LEAF), List.of(unpadded)));

        assertTrue(assertThrows(IllegalArgumentException.class, () -> PublicKey.parse("nokey")).getMessage().contains("name:base64"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PublicKey.parse("k:AAAA")).getMessage().contains("32"));
    }

    @Test
    void nix32_roundTrips() {
        byte[] bytes = new byte[32];
        for (int i = 0; i < 32; i++) bytes[i] = (byte) (i * 37 + 11);
        assertArrayEquals(bytes, Nix32.decode(Nix32.encode(bytes), 32));
        assertEquals(52, Nix32.encode(bytes).length());
        assertThrows(IllegalArgumentException.class, () -> Nix32.decode("e".repeat(52), 32));
    }
}
