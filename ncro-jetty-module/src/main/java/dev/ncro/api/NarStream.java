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

    /** Abandons the stream: the upstream exchange is cancelled and its connection freed. */
    void cancel();
}
