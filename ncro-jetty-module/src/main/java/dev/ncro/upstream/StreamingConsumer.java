package dev.ncro.upstream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.apache.hc.core5.http.EntityDetails;
import org.apache.hc.core5.http.Header;
import org.apache.hc.core5.http.HttpResponse;
import org.apache.hc.core5.http.nio.AsyncResponseConsumer;
import org.apache.hc.core5.http.nio.CapacityChannel;
import org.apache.hc.core5.http.protocol.HttpContext;

/**
 * Streams a response body to a {@link Sink} with end-to-end backpressure.
 *
 * <p>HttpComponents reads from the upstream socket only while the stream's capacity window
 * is open. This consumer keeps the {@link CapacityChannel} and opens the window only as far as
 * the sink has {@link #release(int) released} bytes: the bytes between the upstream socket and
 * the client socket never exceed {@code windowBytes} plus HttpComponents' session buffer (it
 * may deliver what it already read past a closed window, at most one buffer's worth).
 * ({@code AbstractBinDataConsumer} re-opens the window after every chunk regardless of the
 * reader, which would buffer a whole NAR in memory behind a slow client.)
 *
 * <p>{@code credit} mirrors HttpComponents' own window for the message: it starts at the
 * client's initial window, falls by every byte delivered and rises by every grant.
 */
public final class StreamingConsumer implements AsyncResponseConsumer<Void> {

    /** Receives the response; called on the I/O reactor thread, must not block. */
    public interface Sink {
        /**
         * The response head arrived. Return true to have the body streamed to {@link #onData},
         * false to discard it (the exchange still ends with {@link #onEnd}).
         *
         * @param entity the body's length and framing, or null when the answer has no body
         */
        boolean onResponse(HttpResponse response, EntityDetails entity);

        /**
         * A chunk of body, valid only during the call (it is HttpComponents' own buffer, reused
         * for the next chunk): the sink copies what it keeps, and must {@link #release(int)} the
         * chunk's size once it wrote the bytes on.
         */
        void onData(ByteBuffer data);

        void onEnd();

        void onError(Exception failure);
    }

    private final Sink sink;
    private final int windowBytes;
    private CapacityChannel channel;
    private long credit;
    private long outstanding;
    private boolean discard;
    private boolean finished;
    private FutureCallback<Void> resultCallback;
    private volatile boolean cancelled;

    /**
     * @param initialWindow the HTTP/1.1 initial window the client was configured with
     * @param windowBytes the most bytes allowed between upstream socket and client socket
     */
    public StreamingConsumer(Sink sink, int initialWindow, int windowBytes) {
        this.sink = sink;
        this.windowBytes = windowBytes;
        this.credit = initialWindow;
    }

    @Override
    public void consumeResponse(HttpResponse response, EntityDetails entityDetails, HttpContext context,
            FutureCallback<Void> resultCallback) {
        boolean stream = sink.onResponse(response, entityDetails);
        synchronized (this) {
            discard = !stream;
        }
        if (entityDetails == null) {
            finish();
            if (resultCallback != null) resultCallback.completed(null);
        } else {
            this.resultCallback = resultCallback;
        }
    }

    @Override
    public void informationResponse(HttpResponse response, HttpContext context) {}

    @Override
    public void updateCapacity(CapacityChannel capacityChannel) throws IOException {
        long grant;
        synchronized (this) {
            channel = capacityChannel;
            grant = grantable();
        }
        if (grant > 0) capacityChannel.update((int) grant);
    }

    /**
     * Abandons the exchange. Cancelling HttpComponents' future from inside {@link #consume}
     * (where a sink that writes synchronously learns that its client is gone) does not reliably
     * close the upstream connection; failing the next {@code consume} does, so both are used.
     * A stream whose window is closed (its client stopped reading) would never see a next
     * {@code consume}: the window is opened a little, so that one comes and fails.
     */
    public void cancel() {
        cancelled = true;
        CapacityChannel ch;
        synchronized (this) {
            ch = finished ? null : channel;
        }
        if (ch != null) {
            try {
                ch.update(1);
            } catch (IOException | RuntimeException e) {
                // the exchange is already over or failing
            }
        }
    }

    @Override
    public void consume(ByteBuffer src) throws IOException {
        if (cancelled) throw new IOException("stream cancelled: the client is gone");
        int n = src.remaining();
        boolean drop;
        long grant = 0;
        CapacityChannel ch;
        synchronized (this) {
            credit -= n;
            drop = discard;
            if (!drop) outstanding += n;
            ch = channel;
            // a discarded body is not the sink's to release: keep the window open ourselves
            if (drop && ch != null) grant = grantable();
        }
        if (drop) {
            src.position(src.limit());
            if (grant > 0) ch.update((int) grant);
            return;
        }
        sink.onData(src);
        if (cancelled) throw new IOException("stream cancelled: the client is gone");
    }

    /** The sink has written {@code bytes} to the client: let that much more come in. */
    public void release(int bytes) {
        long grant;
        CapacityChannel ch;
        synchronized (this) {
            outstanding -= bytes;
            ch = channel;
            grant = ch == null ? 0 : grantable();
        }
        if (grant > 0) {
            try {
                ch.update((int) grant);
            } catch (IOException e) {
                // the exchange is already failing; HttpComponents reports it through failed()
            }
        }
    }

    /** How much more the window may open now; adjusts {@code credit} for the caller. */
    private long grantable() {
        long open = Math.max(credit, 0);
        long grant = windowBytes - outstanding - open;
        // open in steps of at least a quarter window, or when reading has stopped, to keep
        // the number of selector wake-ups low
        if (grant <= 0 || (grant < windowBytes / 4 && credit > 0)) return 0;
        credit += grant;
        return grant;
    }

    @Override
    public void streamEnd(List<? extends Header> trailers) {
        finish();
        FutureCallback<Void> cb = resultCallback;
        if (cb != null) cb.completed(null);
    }

    private void finish() {
        synchronized (this) {
            if (finished) return;
            finished = true;
        }
        sink.onEnd();
    }

    @Override
    public void failed(Exception cause) {
        synchronized (this) {
            if (finished) return;
            finished = true;
        }
        sink.onError(cause);
    }

    @Override
    public void releaseResources() {}

    /** Bytes delivered to the sink and not yet released; for tests and diagnostics. */
    public synchronized long outstanding() {
        return outstanding;
    }
}
