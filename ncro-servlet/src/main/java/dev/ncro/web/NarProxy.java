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
    // only touched inside drain()
    private int unreleased;
    private boolean done;

    NarProxy(AsyncContext async, HttpServletResponse clientResponse, boolean head) {
        this.async = async;
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
            out.setWriteListener(this);
            listening = true;
        } catch (IOException | IllegalStateException e) {
            stream.cancel();
            finish();
        }
    }

    @Override
    public void onData(ByteBuffer data) {
        synchronized (queue) {
            queue.add(data);
        }
        drain();
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
                stream.cancel();
                abort();
            }
        } while (wip.decrementAndGet() != 0);
    }

    private void drainOnce() throws IOException {
        if (done || !listening) return;
        while (true) {
            if (failure != null) {
                abort();
                return;
            }
            if (!out.isReady()) return; // a write is pending; onWritePossible() comes next
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
            int n = next.remaining();
            out.write(next.array(), next.arrayOffset() + next.position(), n);
            unreleased += n;
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
        AccessLog.aborted(async.getRequest());
        try {
            // Jetty: sendError(-1) aborts the connection rather than completing the response
            clientResponse.sendError(-1);
        } catch (IOException | IllegalStateException e) {
            // already aborting
        } finally {
            async.complete();
        }
    }

    // AsyncListener: the container's view of the exchange

    @Override
    public void onComplete(AsyncEvent event) {}

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
