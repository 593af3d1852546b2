package dev.ncro.mesh;

/** What became of a received packet: the {@code result} label of {@code ncro_mesh_packets_total{direction="in"}}. */
enum Verdict {
    ACCEPTED("accepted"),
    /** Shorter than key, signature and a one-byte body. */
    TRUNCATED("truncated"),
    /** Longer than 1400 bytes. */
    OVERSIZED("oversized"),
    /** Signed (or not) by a key that is not in {@code mesh.peers}, and {@code accept_any_peer} is off. */
    UNKNOWN_PEER("unknown_peer"),
    BAD_SIGNATURE("bad_signature"),
    /** Signed, but not a body this version can read (or its node_id is not the key's). */
    MALFORMED("malformed"),
    UNSUPPORTED_VERSION("unsupported_version"),
    /** Timestamp more than two gossip intervals away from this node's clock. */
    STALE("stale"),
    /** A sequence number this sender used before. */
    REPLAYED("replayed");

    final String label;

    Verdict(String label) {
        this.label = label;
    }
}
