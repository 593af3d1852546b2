package dev.ncro.mesh;

/**
 * One route as the mesh carries it: a peer's claim that {@code upstream} answered
 * {@code <hash>.narinfo} with a narinfo that peer verified. A claim only: a node acts on it by
 * asking that upstream itself, and serves nothing it did not verify.
 *
 * @param hash the store path's 32-character nix32 hash part
 * @param upstream the upstream's base URL, as the sender has it configured (no trailing slash)
 * @param emaMs the sender's latency EMA of that upstream, in milliseconds
 * @param lastVerified when the sender last fetched and verified the narinfo there, epoch ms
 * @param ttlMs how long after {@code lastVerified} the claim holds
 */
public record MeshRoute(String hash, String upstream, float emaMs, long lastVerified, long ttlMs) {
    /** When the claim lapses, epoch ms. */
    public long expiresAt() {
        return ttlMs > Long.MAX_VALUE - lastVerified ? Long.MAX_VALUE : lastVerified + ttlMs;
    }
}
