package dev.ncro.mesh;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Set;
import org.bouncycastle.math.ec.rfc8032.Ed25519;

/**
 * A mesh node's ed25519 identity: the 32-byte seed and the public key derived from it. The
 * key file holds the raw seed, 32 bytes and nothing else, as the reference ncro writes it; a
 * missing file is created with a fresh seed, mode 0600. No file (an empty path): an ephemeral
 * key, new at every start, which peers can only list if they accept any peer.
 *
 * <p>The seed never leaves this object: it is not logged, and {@link #toString} shows the
 * public key only.
 */
public final class NodeKey {
    public static final int SEED_BYTES = Ed25519.SECRET_KEY_SIZE;
    public static final int PUBLIC_KEY_BYTES = Ed25519.PUBLIC_KEY_SIZE;
    public static final int SIGNATURE_BYTES = Ed25519.SIGNATURE_SIZE;
    private static final HexFormat HEX = HexFormat.of();

    private final byte[] seed;
    private final byte[] publicKey = new byte[PUBLIC_KEY_BYTES];

    private NodeKey(byte[] seed) {
        if (seed.length != SEED_BYTES) throw new IllegalArgumentException("an ed25519 seed is 32 bytes, got " + seed.length);
        this.seed = seed.clone();
        Ed25519.generatePublicKey(this.seed, 0, publicKey, 0);
    }

    public static NodeKey ofSeed(byte[] seed) {
        return new NodeKey(seed);
    }

    public static NodeKey generate(SecureRandom random) {
        byte[] seed = new byte[SEED_BYTES];
        random.nextBytes(seed);
        return new NodeKey(seed);
    }

    /**
     * The key in {@code path} ({@code mesh.private_key}), created (mode 0600, a fresh seed) when
     * the file does not exist; an ephemeral key when {@code path} is empty.
     *
     * @throws IOException naming the file, when it cannot be read or created or is not 32 bytes
     */
    public static NodeKey load(String path, SecureRandom random) throws IOException {
        if (path == null || path.isEmpty()) return generate(random);
        Path file = Path.of(path);
        if (!Files.exists(file)) {
            NodeKey created = generate(random);
            try {
                write(file, created.seed);
                return created;
            } catch (FileAlreadyExistsException e) {
                // another process created it meanwhile: use that one
            }
        }
        byte[] seed = Files.readAllBytes(file);
        if (seed.length != SEED_BYTES) {
            throw new IOException("mesh.private_key " + file + " holds " + seed.length
                    + " bytes; an ed25519 key file is the raw 32-byte seed");
        }
        return new NodeKey(seed);
    }

    private static void write(Path file, byte[] seed) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        Set<StandardOpenOption> options = Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try (SeekableByteChannel channel = open(file, options)) {
            ByteBuffer b = ByteBuffer.wrap(seed);
            while (b.hasRemaining()) channel.write(b);
        }
    }

    private static SeekableByteChannel open(Path file, Set<StandardOpenOption> options) throws IOException {
        try {
            return Files.newByteChannel(file, options,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException notPosix) {
            return Files.newByteChannel(file, options);
        }
    }

    /** The 32-byte public key (a copy). */
    public byte[] publicKey() {
        return publicKey.clone();
    }

    /** The public key as 64 lower-case hex characters: what peers list as {@code public_key}. */
    public String publicKeyHex() {
        return HEX.formatHex(publicKey);
    }

    /** The node id carried in packets: hex of the first 8 bytes of the public key (as the reference). */
    public String nodeId() {
        return nodeId(publicKey, 0);
    }

    static String nodeId(byte[] key, int off) {
        return HEX.formatHex(key, off, off + 8);
    }

    /** Signs {@code message[off, off+len)} into {@code signature[sigOff, sigOff+64)}. */
    public void sign(byte[] message, int off, int len, byte[] signature, int sigOff) {
        Ed25519.sign(seed, 0, publicKey, 0, message, off, len, signature, sigOff);
    }

    /** Whether {@code signature} is {@code key}'s over the message; false for a malformed key. */
    public static boolean verify(byte[] key, int keyOff, byte[] signature, int sigOff, byte[] message, int off, int len) {
        try {
            return Ed25519.verify(signature, sigOff, key, keyOff, message, off, len);
        } catch (RuntimeException e) {
            return false;
        }
    }

    @Override
    public String toString() {
        return "NodeKey[" + publicKeyHex() + "]";
    }
}
