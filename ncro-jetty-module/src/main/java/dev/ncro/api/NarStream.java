package dev.ncro.api;

/** Flow control of one NAR stream, handed to the web layer. Thread-safe. */
public interface NarStream {
    /** Sends the request upstream; handler callbacks may come from now on. Call once. */
    void start();

    /**
     * The caller is done with {@code bytes} more of the bytes it received, in order (written
     * out, or dropped once nothing writes them): the engine reuses their buffers and may read
     * that much more. Also valid after the stream ended or was cancelled.
     */
    void release(int bytes);

    /**
     * Like {@link #release}, for bytes whose buffers the container may still be reading (a
     * write that was neither completed nor failed when the response ended): the engine
     * forgets them instead of reusing them, so no other stream can ever write into them.
     */
    default void discard(int bytes) {
        release(bytes);
    }

    /** Abandons the stream: the upstream exchange is cancelled and its connection freed. */
    void cancel();
}
