package dev.ncro.upstream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.apache.hc.core5.http.ContentType;
import org.apache.hc.core5.http.HttpResponse;
import org.apache.hc.client5.http.async.methods.AbstractBinResponseConsumer;

/**
 * Reads a small body completely, failing the exchange when a 200 answer is larger than
 * {@code maxBytes}: a narinfo is a few hundred bytes, a huge one is an upstream fault and must
 * not cost ncro memory. Error pages are read up to the cap and the rest discarded. Granting
 * capacity freely is fine here (unlike for NARs) because the total is capped. The body is kept
 * as sent; {@link ContentDecoding} undoes its {@code Content-Encoding} afterwards.
 */
final class BoundedBodyConsumer extends AbstractBinResponseConsumer<Fetched> {
    private final int maxBytes;
    private int status;
    private ByteArrayOutputStream body;
    // written on the I/O thread, read after the exchange completed on another thread
    private volatile boolean headArrived;
    private volatile String location;
    private volatile String contentEncoding;

    BoundedBodyConsumer(int maxBytes) {
        this.maxBytes = maxBytes;
    }

    @Override
    protected void start(HttpResponse response, ContentType contentType) throws IOException {
        status = response.getCode();
        headArrived = true;
        var loc = response.getFirstHeader("Location");
        location = loc == null ? null : loc.getValue();
        var encodings = response.getHeaders("Content-Encoding");
        contentEncoding = encodings.length == 0 ? null : java.util.Arrays.stream(encodings)
                .map(h -> h.getValue()).collect(java.util.stream.Collectors.joining(","));
        var length = response.getFirstHeader("Content-Length");
        if (status == 200 && length != null) {
            try {
                if (Long.parseLong(length.getValue().trim()) > maxBytes) {
                    throw new IOException("answer of " + length.getValue() + " bytes exceeds the " + maxBytes + "-byte limit");
                }
            } catch (NumberFormatException e) {
                throw new IOException("malformed Content-Length '" + length.getValue() + "'");
            }
        }
        body = new ByteArrayOutputStream(512);
    }

    @Override
    protected int capacityIncrement() {
        return maxBytes;
    }

    @Override
    protected void data(ByteBuffer src, boolean endOfStream) throws IOException {
        int room = maxBytes - body.size();
        if (src.remaining() > room && status == 200) {
            throw new IOException("answer exceeds the " + maxBytes + "-byte limit");
        }
        int n = Math.min(room, src.remaining());
        byte[] chunk = new byte[n];
        src.get(chunk);
        body.write(chunk, 0, n);
        src.position(src.limit());
    }

    @Override
    protected Fetched buildResult() {
        return new Fetched(status, body == null ? new byte[0] : body.toByteArray());
    }

    @Override
    public void releaseResources() {}

    /** A response head reached this consumer: the request was not lost on a stale connection. */
    boolean headArrived() {
        return headArrived;
    }

    /** The answer's {@code Location} header, or null. */
    String location() {
        return location;
    }

    /** The answer's {@code Content-Encoding} header, or null. */
    String contentEncoding() {
        return contentEncoding;
    }

}
