package dev.ncro.api;

/** Flow control of one NAR stream, handed to the web layer. Thread-safe. */
public interface NarStream {
    /** Sends the request upstream; handler callbacks may come from now on. Call once. */
    void start();

    /** The caller has written {@code bytes} more bytes out; the engine may read that much more. */
    void release(int bytes);

    /** Abandons the stream: the upstream exchange is cancelled and its connection freed. */
    void cancel();
}
