package dev.ncro.trust;

/**
 * Nix's base-32: the alphabet {@code 0123456789abcdfghijklmnpqrsvwxyz} (no e, o, u, t),
 * written from the last 5-bit group to the first. A SHA-256 is 52 characters.
 */
public final class Nix32 {
    public static final String ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

    private Nix32() {}

    public static int encodedLength(int bytes) {
        return (bytes * 8 - 1) / 5 + 1;
    }

    public static String encode(byte[] bytes) {
        int len = encodedLength(bytes.length);
        StringBuilder sb = new StringBuilder(len);
        for (int n = len - 1; n >= 0; n--) {
            int b = n * 5;
            int i = b / 8;
            int j = b % 8;
            int c = (bytes[i] & 0xff) >> j;
            if (i + 1 < bytes.length) c |= (bytes[i + 1] & 0xff) << (8 - j);
            sb.append(ALPHABET.charAt(c & 0x1f));
        }
        return sb.toString();
    }

    /** @throws IllegalArgumentException if {@code s} is not valid nix32 for {@code bytes} bytes */
    public static byte[] decode(String s, int bytes) {
        if (s.length() != encodedLength(bytes)) {
            throw new IllegalArgumentException("expected " + encodedLength(bytes) + " nix32 characters, got " + s.length());
        }
        byte[] out = new byte[bytes];
        for (int n = 0; n < s.length(); n++) {
            int digit = ALPHABET.indexOf(s.charAt(s.length() - n - 1));
            if (digit < 0) throw new IllegalArgumentException("'" + s.charAt(s.length() - n - 1) + "' is not a nix32 character");
            int b = n * 5;
            int i = b / 8;
            int j = b % 8;
            out[i] |= (byte) (digit << j);
            int carry = digit >> (8 - j);
            if (i + 1 < bytes) {
                out[i + 1] |= (byte) carry;
            } else if (carry != 0) {
                throw new IllegalArgumentException("nix32 value does not fit " + bytes + " bytes");
            }
        }
        return out;
    }
}
