package dev.ncro.testing;

/** Narinfo texts for tests; signatures come with the trust work. */
public final class Narinfos {
    public static final String NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

    private Narinfos() {}

    /** A distinct valid 32-character nix32 hash for each {@code n}. */
    public static String hash(int n) {
        StringBuilder sb = new StringBuilder(32);
        for (int i = 0; i < 32; i++) sb.append(NIX32.charAt((i * 7 + n * 13 + n / 32) % 32));
        return sb.toString();
    }

    public static String narinfo(String hash, String name, String url, long narSize) {
        return "StorePath: /nix/store/" + hash + "-" + name + "\n"
                + "URL: " + url + "\n"
                + "Compression: none\n"
                + "NarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\n"
                + "NarSize: " + narSize + "\n"
                + "References: \n";
    }
}
