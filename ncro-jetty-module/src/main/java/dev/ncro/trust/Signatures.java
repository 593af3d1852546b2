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
    private Signatures() {}

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
