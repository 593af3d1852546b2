package dev.ncro.mesh;

import java.util.List;

/**
 * A decoded packet body (see {@code docs/mesh.md}, "Wire format").
 *
 * @param nodeId hex of the first 8 bytes of the sender's public key
 * @param timestamp when the packet was made, epoch ms (replay window)
 * @param seq the sender's packet sequence number, strictly increasing per sender key
 */
public record Announcement(String nodeId, long timestamp, long seq, List<MeshRoute> routes) {}
