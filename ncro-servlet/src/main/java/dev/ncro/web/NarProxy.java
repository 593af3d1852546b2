package dev.ncro.web;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarStream;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Moves one NAR from the engine to the client with Servlet non-blocking output.
 *
 * <p>Flow control: chunks from the engine wait in a queue; they are written only while
 * {@link ServletOutputStream#isReady()} says the container can take them, and each chunk is
 * released to the engine (which then reads that much more from the upstream) only once its
 * write has completed, i.e. when {@code isReady()} is true again. A slow client therefore
 * slows the upstream down instead of filling memory.
 *
 * <p>Buffers: the engine lends its pooled (direct) buffers; each is written as it is
 * ({@code write(ByteBuffer)}: Servlet 6.1, and Jetty's ee10 output before it; the container
 * may keep using the buffer until {@code isReady()} is true again, which is when it is
 * released). Once the response is over (aborted, or completed by the container), whatever is
 * still queued is released too, a write that may still be in flight has its buffer discarded
 * rather than reused, and any chunk that arrives later is released at once: a client that
 * goes away leaves no buffer behind, and no buffer is reused while Jetty may still read it.
 *
 * <p>Callbacks come from the engine's I/O threads and from container threads; all output work
 * runs in {@link #drain()}, which a work-in-progress counter serialises, so exactly one thread
 * at a time touches the output stream.
 *
 * <p>Failure rules: before the response is committed an engine failure becomes an error
 * status (404 only when the engine says every upstream said not-found). After it, the client
 * connection is aborted: a truncated NAR must never look like a complete one. A client that
 * goes away cancels the upstream exchange.
 */
final class NarProxy implements NarHandler, WriteListener, AsyncListener {
    /** {@code write(ByteBuffer)} of an output stream class, or null where it has none. */
    private static final ClassValue<MethodHandle> WRITE_BUFFER = new ClassValue<>() {
        @Override
        protected MethodHandle computeValue(Class<?> type) {
            try {
                return MethodHandles.publicLookup()
                        .findVirtual(type, "write", MethodType.methodType(void.class, ByteBuffer.class))
                        .asType(MethodType.methodType(void.class, ServletOutputStream.class, ByteBuffer.class));
            } catch (NoSuchMethodException | IllegalAccessException e) {
                return null;
            }
        }
    };

    private final AsyncContext async;
    private final HttpServletResponse clientResponse;
    private final boolean head;
    private final AtomicInteger wip = new AtomicInteger();
    private final ArrayDeque<ByteBuffer> queue = new ArrayDeque<>();
    private volatile NarStream stream;
    private ServletOutputStream out;
    // written by engine threads, read in drain()
    private volatile boolean listening;
    private volatile boolean ended;
    private volatile String failure;
    /** The container completed the response: nothing writes any more. */
    private volatile boolean containerDone;
    /** A write failed: the container holds none of our buffers any more. */
    private volatile boolean writeFailed;
    // guarded by queue: the queue was emptied for good, later chunks are released at once
    private boolean closed;
    // only touched inside drain()
    private int unreleased;
    private boolean done;
    /** The last isReady() was false: the container may still be reading the last buffer. */
    private boolean writePending;
    /** The client's request, taken while it is valid: Jetty recycles the async context. */
    private final jakarta.servlet.ServletRequest clientRequest;
    private MethodHandle writeBuffer;
    private byte[] scratch;

    NarProxy(AsyncContext async, HttpServletResponse clientResponse, boolean head) {
        this.async = async;
        this.clientRequest = async.getRequest();
        this.clientResponse = clientResponse;
        this.head = head;
        async.addListener(this);
    }

    void attach(NarStream stream) {
        this.stream = stream;
    }

    @Override
    public void onHead(int status, List<Map.Entry<String, String>> headers) {
        clientResponse.setStatus(status);
        for (Map.Entry<String, String> h : headers) {
            String name = h.getKey().toLowerCase(Locale.ROOT);
            switch (name) {
                case "content-length" -> {
                    try {
                        clientResponse.setContentLengthLong(Long.parseLong(h.getValue().trim()));
                    } catch (NumberFormatException e) {
                        // leave it out; the body is then sent chunked
                    }
                }
                case "content-type" -> clientResponse.setContentType(h.getValue());
                default -> clientResponse.addHeader(h.getKey(), h.getValue());
            }
        }
        try {
            out = clientResponse.getOutputStream();
            writeBuffer = WRITE_BUFFER.get(out.getClass());
            out.setWriteListener(this);
            listening = true;
        } catch (IOException | IllegalStateException e) {
            stream.cancel();
            finish();
        }
    }

    @Override
    public void onData(ByteBuffer data) {
        boolean late;
        synchronized (queue) {
            late = closed;
            if (!late) queue.add(data);
        }
        if (late) {
            stream.release(data.remaining()); // the response is over: nobody will write it
        } else {
            drain();
        }
    }

    @Override
    public void onComplete() {
        ended = true;
        drain();
    }

    @Override
    public void onFailure(int status, String reason) {
        if (!listening) {
            // nothing was sent yet: a proper error answer
            SmallResponse.sendText(async, status, reason, head);
            return;
        }
        failure = reason;
        drain();
    }

    @Override
    public void onWritePossible() {
        drain();
    }

    @Override
    public void onError(Throwable t) {
        // the client went away or the write failed: nobody is left to receive the NAR
        writeFailed = true;
        stream.cancel();
        failure = "client write failed: " + t;
        drain();
    }

    private void drain() {
        if (wip.getAndIncrement() != 0) return;
        do {
            try {
                drainOnce();
            } catch (IOException | RuntimeException e) {
                writeFailed = true;
                try {
                    stream.cancel();
                } catch (RuntimeException cancelFailed) {
                    // the upstream side ends on its own timeouts; the client must still go
                }
                abort();
            }
        } while (wip.decrementAndGet() != 0);
    }

    private void drainOnce() throws IOException {
        if (containerDone) {
            releaseAll();
            return;
        }
        // after abort() every buffer is back (releaseAll), after finish() none was held
        if (done || !listening) return;
        while (true) {
            if (failure != null) {
                abort();
                return;
            }
            if (!out.isReady()) { // a write is pending; onWritePossible() comes next
                writePending = true;
                return;
            }
            writePending = false;
            if (unreleased > 0) {
                stream.release(unreleased);
                unreleased = 0;
            }
            ByteBuffer next;
            synchronized (queue) {
                next = queue.poll();
            }
            if (next == null) {
                if (ended) finish();
                return;
            }
            // counted before the write: a write that throws (the client is gone) must still
            // give the buffer back when the response completes
            unreleased += next.remaining();
            // pending until isReady() says otherwise: Jetty may keep reading the buffer
            writePending = true;
            write(next);
        }
    }

    /** Writes the buffer itself where the container can (no copy), else through a byte array. */
    private void write(ByteBuffer buffer) throws IOException {
        if (writeBuffer != null) {
            try {
                writeBuffer.invokeExact(out, buffer);
            } catch (IOException | RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException(t);
            }
        } else if (buffer.hasArray()) {
            out.write(buffer.array(), buffer.arrayOffset() + buffer.position(), buffer.remaining());
        } else {
            // in use until isReady() is true again, like the buffer, so one array serves every write
            int n = buffer.remaining();
            if (scratch == null || scratch.length < n) scratch = new byte[n];
            buffer.get(scratch, 0, n);
            out.write(scratch, 0, n);
        }
    }

    /**
     * The response is over: every byte received and not yet released goes back to the engine.
     * The bytes of a write that may still be in flight (neither completed nor failed: Jetty can
     * complete or abort a response while a flush is under way) are discarded instead, so their
     * buffers are never handed to another stream. Never throws.
     */
    private void releaseAll() {
        long written = unreleased;
        unreleased = 0;
        boolean mayBeWriting = written > 0 && writePending && !writeFailed && !readyNow();
        long queued = 0;
        synchronized (queue) {
            closed = true;
            for (ByteBuffer b : queue) queued += b.remaining();
            queue.clear();
        }
        try {
            giveBack(written, mayBeWriting); // the oldest first
            giveBack(queued, false);
        } catch (RuntimeException e) {
            // the engine's side of the stream is over as well
        }
    }

    private void giveBack(long n, boolean discard) {
        while (n > 0) {
            int step = (int) Math.min(n, Integer.MAX_VALUE);
            if (discard) {
                stream.discard(step);
            } else {
                stream.release(step);
            }
            n -= step;
        }
    }

    /** Whether the last write has ended; false when the output cannot tell any more. */
    private boolean readyNow() {
        try {
            return out != null && out.isReady();
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Ends the body cleanly: only after the upstream sent all of it. */
    private void finish() {
        if (done) return;
        done = true;
        async.complete();
    }

    /** Breaks the client connection, so that a truncated body cannot pass for a whole one. */
    private void abort() {
        if (done) return;
        done = true;
        try {
            AccessLog.aborted(clientRequest);
        } catch (RuntimeException e) {
            // the access line is not worth a locked drain()
        }
        if (containerDone) {
            releaseAll();
            return;
        }
        try {
            // Jetty: sendError(-1) aborts the connection rather than completing the response
            clientResponse.sendError(-1);
        } catch (IOException | IllegalStateException e) {
            // already aborting
        }
        try {
            async.complete();
        } catch (IllegalStateException e) {
            // the output was aborted already (a failed write): Jetty ends the exchange itself;
            // thrown on, this would leave drain() locked and the buffers unreleased
        }
        // a broken connection's response may never be completed (onComplete(AsyncEvent))
        // while the server runs, so the buffers go back now (one still being written is
        // discarded, see releaseAll)
        releaseAll();
    }

    // AsyncListener: the container's view of the exchange

    @Override
    public void onComplete(AsyncEvent event) {
        containerDone = true;
        drain();
    }

    @Override
    public void onTimeout(AsyncEvent event) {
        stream.cancel();
    }

    @Override
    public void onError(AsyncEvent event) {
        stream.cancel();
        failure = "client connection failed";
        drain();
    }

    @Override
    public void onStartAsync(AsyncEvent event) {}
}
