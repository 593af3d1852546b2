package dev.ncro.engine;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.io.ArrayByteBufferPool;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.RetainableByteBuffer;
import org.eclipse.jetty.util.BufferUtil;

/**
 * The body buffers of one NAR stream: each chunk HttpComponents delivers (valid only during its
 * callback) is copied once into a pooled direct buffer, which the handler writes to its client
 * as it is, and which goes back to the pool once the handler has {@link #release released} all
 * of its bytes. Before, every chunk was a fresh {@code byte[]}: a GiB of garbage per GiB
 * streamed, and a young generation that grew with it.
 *
 * <p>The handler releases bytes in the order it received them (that is the order it writes
 * them), so the buffers are kept oldest first and released by byte count. Thread-safe: buffers
 * are added on the I/O thread and released on the web layer's threads.
 *
 * <p>One pool for the process: buffers of up to {@link #MAX_CHUNK} bytes in 4 KiB steps, at
 * most {@link #MAX_POOLED} of them kept for reuse; the live ones are bounded by the streams'
 * windows.
 */
public final class NarBuffers {
    /** The largest chunk pooled: the stream client's session buffer. */
    static final int MAX_CHUNK = 256 * 1024;
    /** Direct memory the pool keeps for reuse at most. */
    static final long MAX_POOLED = 16L << 20;

    private static final ByteBufferPool POOL = new ArrayByteBufferPool(0, 4096, MAX_CHUNK, -1, 0, MAX_POOLED);
    private static final AtomicLong OUTSTANDING = new AtomicLong();

    private record Held(RetainableByteBuffer buffer, int size) {}

    private final ArrayDeque<Held> held = new ArrayDeque<>();
    /** Bytes released of the oldest held buffer. */
    private long releasedOfOldest;

    /**
     * Buffers taken from the pool and not yet given back, by all streams of the process; for
     * tests that prove streams leave none behind, and for diagnostics.
     */
    public static long outstanding() {
        return OUTSTANDING.get();
    }

    /** A pooled copy of {@code src}'s remaining bytes (consumed), held until released. */
    ByteBuffer copy(ByteBuffer src) {
        int n = src.remaining();
        RetainableByteBuffer buffer = POOL.acquire(n, true);
        OUTSTANDING.incrementAndGet();
        ByteBuffer bytes = buffer.getByteBuffer();
        BufferUtil.append(bytes, src);
        synchronized (this) {
            held.add(new Held(buffer, n));
        }
        return bytes;
    }

    /**
     * The handler is done with {@code bytes} more bytes, oldest first: every buffer whose bytes
     * are all released goes back to the pool (exactly once: it leaves the queue as it goes).
     * Bytes beyond what is held are ignored.
     */
    synchronized void release(int bytes) {
        giveBack(bytes, true);
    }

    /**
     * Like {@link #release}, but the buffers never go back to the pool: for bytes a writer may
     * still be reading, which must never be handed to another stream. They become garbage once
     * the writer lets go (Jetty's pool holds the entries it lent only weakly).
     */
    synchronized void discard(int bytes) {
        giveBack(bytes, false);
    }

    private void giveBack(int bytes, boolean reuse) {
        long left = releasedOfOldest + bytes;
        Held oldest;
        while ((oldest = held.peek()) != null && left >= oldest.size) {
            held.poll();
            left -= oldest.size;
            OUTSTANDING.decrementAndGet();
            if (reuse) oldest.buffer.release();
        }
        releasedOfOldest = oldest == null ? 0 : left;
    }
}
