package dev.ncro.trust;

import java.util.Base64;
import org.bouncycastle.crypto.params.Ed25519PublicKeyParameters;
import org.bouncycastle.crypto.signers.Ed25519Signer;

/** A Nix binary-cache public key, {@code name:base64(32 bytes)}; base64 padded or not. */
public record PublicKey(String name, byte[] key) {
    /** Keys live in the sealed configuration: the array is copied in and out, never shared. */
    public PublicKey {
        key = key.clone();
    }

    @Override
    public byte[] key() {
        return key.clone();
    }

    public static PublicKey parse(String text) {
        String s = text == null ? "" : text.trim();
        int colon = s.indexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            throw new IllegalArgumentException("expected a Nix public key 'name:base64', got '" + text + "'");
        }
        byte[] key;
        try {
            key = Base64.getDecoder().decode(pad(s.substring(colon + 1)));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("key '" + s.substring(0, colon) + "' is not valid base64");
        }
        if (key.length != Ed25519PublicKeyParameters.KEY_SIZE) {
            throw new IllegalArgumentException("key '" + s.substring(0, colon) + "' has " + key.length
                    + " bytes; an ed25519 public key has 32");
        }
        return new PublicKey(s.substring(0, colon), key);
    }

    static String pad(String b64) {
        int rem = b64.length() % 4;
        return rem == 0 ? b64 : b64 + "=".repeat(4 - rem);
    }

    /** Whether {@code signature} is this key's ed25519 signature of {@code message}. */
    public boolean verifies(byte[] message, byte[] signature) {
        if (signature.length != Ed25519PublicKeyParameters.KEY_SIZE * 2) return false;
        Ed25519Signer verifier = new Ed25519Signer();
        verifier.init(false, new Ed25519PublicKeyParameters(key, 0));
        verifier.update(message, 0, message.length);
        return verifier.verifySignature(signature);
    }
}
