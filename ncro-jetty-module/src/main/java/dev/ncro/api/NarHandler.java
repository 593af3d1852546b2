package dev.ncro.api;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * Receives one NAR stream. Calls come from the engine's I/O threads, never concurrently for
 * one stream, in the order: {@link #onHead} once, then {@link #onData} zero or more times,
 * then exactly one of {@link #onComplete} or {@link #onFailure}. {@code onFailure} may also
 * come first, when no upstream could answer at all.
 *
 * <p>Implementations must not block. Each data buffer is lent to them (a pooled, usually
 * direct buffer): they must call {@link NarStream#release(int)} with its size once the bytes
 * have left their hands, i.e. once a write of it has completed, and not touch it after that,
 * when the engine reuses it. The engine stops reading from the upstream while too much is
 * unreleased. Every byte received must be released exactly once and in the order received,
 * also the bytes that are never written because the response ended early (once nothing may
 * still be writing them): otherwise the stream's buffers do not return to the pool.
 */
public interface NarHandler {
    /** Status and end-to-end response headers of the upstream's answer (hop-by-hop removed). */
    void onHead(int status, List<Map.Entry<String, String>> headers);

    void onData(ByteBuffer data);

    /** The upstream sent the whole body. */
    void onComplete();

    /**
     * The exchange failed. Before {@link #onHead}, {@code status} is what the client should be
     * told (404 only when every candidate upstream said not-found, 502 or 504 otherwise);
     * after it, the body is truncated and the client connection must be aborted.
     */
    void onFailure(int status, String reason);
}
