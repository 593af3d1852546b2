package dev.ncro.upstream;

/** Flow control of one streamed upstream exchange (across any redirects it followed). */
public interface UpstreamStream {
    /** The sink has written {@code bytes} more to its client: that much more may be read. */
    void release(int bytes);

    /** Abandons the exchange; its connection is closed, not returned to the pool. */
    void cancel();
}
