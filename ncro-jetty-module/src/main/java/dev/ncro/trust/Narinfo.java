package dev.ncro.trust;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A parsed narinfo. Only what routing needs is interpreted here; the bytes that are served
 * stay exactly as the upstream sent them.
 */
public final class Narinfo {
    public static final String STORE_DIR = "/nix/store/";

    private final Map<String, String> fields;

    private Narinfo(Map<String, String> fields) {
        this.fields = fields;
    }

    /**
     * Parses and checks a narinfo answered for {@code expectedHash}.
     *
     * @throws InvalidNarinfoException saying what is wrong, for the operator's log
     */
    public static Narinfo parse(byte[] bytes, String expectedHash) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new InvalidNarinfoException("not UTF-8 text");
        }
        Map<String, String> fields = new LinkedHashMap<>();
        int lineNo = 0;
        for (String line : text.split("\n", -1)) {
            lineNo++;
            if (line.isEmpty()) continue;
            int colon = line.indexOf(": ");
            if (colon <= 0) {
                throw new InvalidNarinfoException("line " + lineNo + " is not 'Key: value'");
            }
            String key = line.substring(0, colon);
            String value = line.substring(colon + 2);
            if (key.equals("Sig")) {
                fields.merge(key, value, (a, b) -> a + "\n" + b);
            } else if (fields.putIfAbsent(key, value) != null) {
                throw new InvalidNarinfoException("field " + key + " appears twice");
            }
        }
        for (String required : new String[] {"StorePath", "URL", "NarHash", "NarSize"}) {
            if (!fields.containsKey(required)) throw new InvalidNarinfoException("field " + required + " is missing");
        }
        Narinfo info = new Narinfo(fields);
        String storePath = info.storePath();
        if (!storePath.startsWith(STORE_DIR) || storePath.length() < STORE_DIR.length() + 34
                || storePath.charAt(STORE_DIR.length() + 32) != '-') {
            throw new InvalidNarinfoException("StorePath '" + storePath + "' is not a /nix/store path");
        }
        if (!info.hashPart().equals(expectedHash)) {
            throw new InvalidNarinfoException("StorePath hash " + info.hashPart() + " is not the requested " + expectedHash);
        }
        try {
            if (Long.parseLong(fields.get("NarSize")) <= 0) throw new InvalidNarinfoException("NarSize must be positive");
        } catch (NumberFormatException e) {
            throw new InvalidNarinfoException("NarSize '" + fields.get("NarSize") + "' is not a number");
        }
        if (info.url().isBlank()) throw new InvalidNarinfoException("URL is empty");
        info.narHash(); // must parse
        for (String ref : info.references()) {
            if (!ref.startsWith(STORE_DIR) || ref.length() < STORE_DIR.length() + 34 || ref.charAt(STORE_DIR.length() + 32) != '-') {
                throw new InvalidNarinfoException("reference '" + ref.substring(Math.min(ref.length(), STORE_DIR.length())) + "' is not a store path");
            }
        }
        return info;
    }

    /** NarHash as {@code sha256:<nix32>}, whether the narinfo wrote nix32, hex (attic) or SRI base64. */
    public String narHash() {
        String h = fields.get("NarHash");
        byte[] digest;
        try {
            if (h.startsWith("sha256:")) {
                String v = h.substring(7);
                if (v.length() == 64 && v.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                    digest = java.util.HexFormat.of().parseHex(v);
                } else {
                    digest = Nix32.decode(v, 32);
                }
            } else if (h.startsWith("sha256-")) {
                digest = java.util.Base64.getDecoder().decode(h.substring(7));
                if (digest.length != 32) throw new IllegalArgumentException("not 32 bytes");
            } else {
                throw new IllegalArgumentException("not a sha256 hash");
            }
        } catch (IllegalArgumentException e) {
            throw new InvalidNarinfoException("NarHash '" + h + "' is not a sha256 hash: " + e.getMessage());
        }
        return "sha256:" + Nix32.encode(digest);
    }

    public long narSize() {
        return Long.parseLong(fields.get("NarSize"));
    }

    /** References as full store paths, sorted (the order Nix signs them in). */
    public java.util.List<String> references() {
        String refs = fields.getOrDefault("References", "").trim();
        if (refs.isEmpty()) return java.util.List.of();
        return java.util.Arrays.stream(refs.split(" +")).map(r -> STORE_DIR + r).sorted().toList();
    }

    /** The Sig lines, each {@code keyname:base64}. */
    public java.util.List<String> signatures() {
        String sigs = fields.get("Sig");
        return sigs == null ? java.util.List.of() : java.util.List.of(sigs.split("\n"));
    }

    /** What Nix signs: {@code 1;StorePath;NarHash;NarSize;refs}. */
    public String fingerprint() {
        return "1;" + storePath() + ";" + narHash() + ";" + narSize() + ";" + String.join(",", references());
    }

    public String storePath() {
        return fields.get("StorePath");
    }

    public String hashPart() {
        return storePath().substring(STORE_DIR.length(), STORE_DIR.length() + 32);
    }

    /** The file URL, relative to the cache root unless it carries a scheme. */
    /**
     * The same narinfo bytes with only the {@code URL:} line's value replaced (line by line,
     * every other byte kept: the URL is not part of the signed fingerprint).
     */
    public static byte[] withUrl(byte[] body, String url) {
        String text = new String(body, StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder(text.length() + url.length());
        String[] lines = text.split("\n", -1);
        boolean replaced = false;
        for (int i = 0; i < lines.length; i++) {
            if (i > 0) out.append('\n');
            if (!replaced && lines[i].startsWith("URL: ")) {
                out.append("URL: ").append(url);
                replaced = true;
            } else {
                out.append(lines[i]);
            }
        }
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * The SHA-256 digest of the file bytes from {@code FileHash: sha256:<nix32>} (or 64 hex
     * digits), or null when the narinfo has no FileHash.
     *
     * @throws IllegalArgumentException for a FileHash of another algorithm or form
     */
    public byte[] fileSha256() {
        String fileHash = fields.get("FileHash");
        if (fileHash == null) return null;
        String value = fileHash.trim();
        if (!value.startsWith("sha256:")) throw new IllegalArgumentException("FileHash is not sha256: " + value);
        String digest = value.substring("sha256:".length());
        if (digest.length() == 64) return java.util.HexFormat.of().parseHex(digest);
        return Nix32.decode(digest, 32);
    }

    public String url() {
        return fields.get("URL");
    }

    public String field(String name) {
        return fields.get(name);
    }

    /** Thrown for a narinfo that must not be cached or served. */
    public static final class InvalidNarinfoException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public InvalidNarinfoException(String message) {
            super(message);
        }
    }
}
