package dev.ncro.trust;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * Checks a narinfo's signatures against an upstream's keys: one valid signature by one of
 * those keys is enough (caches that re-sign carry several). Anything else is a rejection,
 * with a reason that names the keys for the operator.
 */
public final class Signatures {
    private static final String SAMPLE_HASH = "0c8vfqw8ljyqdjm2wkwylqjmn4mfr5xc";
    private static final String SAMPLE = "StorePath: /nix/store/" + SAMPLE_HASH + "-warm-up\n"
            + "URL: nar/1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s.nar.xz\nCompression: xz\n"
            + "FileHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\nFileSize: 1\n"
            + "NarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\nNarSize: 1\nReferences: \n"
            + "Sig: warm-up-1:" + "A".repeat(86) + "==\n";
    private static final String SAMPLE_KEY = "warm-up-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

    private Signatures() {}

    /**
     * Checks one sample narinfo end to end (parsed, its signature verified and refused), so
     * that the first client's lookup does not pay for loading and initialising that code: in a
     * JVM just started, BouncyCastle's first Ed25519 verification takes about 300 ms (its
     * precomputed tables), the first parse about 25 ms. ncro runs this in the background as it
     * starts. Never throws.
     */
    public static void warmUp() {
        try {
            org.bouncycastle.math.ec.rfc8032.Ed25519.precompute();
            reject(Narinfo.parse(SAMPLE.getBytes(StandardCharsets.UTF_8), SAMPLE_HASH), List.of(PublicKey.parse(SAMPLE_KEY)));
        } catch (RuntimeException | LinkageError e) {
            // nothing is lost: the first real check pays for it instead
        }
    }

    /** @return null when trusted, else why not */
    public static String reject(Narinfo narinfo, List<PublicKey> keys) {
        List<String> sigs = narinfo.signatures();
        if (sigs.isEmpty()) return "no Sig line (trusted keys: " + names(keys) + ")";
        byte[] message = narinfo.fingerprint().getBytes(StandardCharsets.UTF_8);
        boolean keyMatched = false;
        for (String sig : sigs) {
            int colon = sig.indexOf(':');
            if (colon <= 0) continue;
            String name = sig.substring(0, colon);
            for (PublicKey key : keys) {
                if (!key.name().equals(name)) continue;
                keyMatched = true;
                byte[] signature;
                try {
                    signature = Base64.getDecoder().decode(PublicKey.pad(sig.substring(colon + 1).trim()));
                } catch (IllegalArgumentException e) {
                    continue;
                }
                if (key.verifies(message, signature)) return null;
            }
        }
        return keyMatched
                ? "signature by " + names(keys) + " does not match the narinfo (tampered or wrongly signed)"
                : "signed only by untrusted keys " + sigs.stream().map(s -> s.substring(0, Math.max(0, s.indexOf(':')))).toList()
                        + " (trusted: " + names(keys) + ")";
    }

    private static String names(List<PublicKey> keys) {
        return keys.stream().map(PublicKey::name).toList().toString();
    }
}
