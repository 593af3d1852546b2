package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.StreamingConsumer;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.hc.core5.http.ContentType;
import org.apache.hc.core5.http.HttpVersion;
import org.apache.hc.core5.http.impl.BasicEntityDetails;
import org.apache.hc.core5.http.message.BasicHttpResponse;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link NarExchange} against an upstream exchange whose callbacks run before
 * {@code UpstreamClient.stream} has returned its handle: on a fast upstream a small body can
 * arrive, be written to the client and be released while the launching thread is still on its
 * way out of {@code stream()}. Those releases must reach the handle, or the upstream's window
 * never reopens and the NAR stalls until the stall limit (seen as a 300 s hang in CI).
 */
class NarExchangeTest {
    private static final byte[] BODY = "0123456789".getBytes(StandardCharsets.US_ASCII);

    private final Upstream upstream = new Upstream(URI.create("http://127.0.0.1:1/"), 10, 0);
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler();
    private final Recorder client = new Recorder();

    @BeforeEach
    void start() throws Exception {
        scheduler.start();
    }

    @AfterEach
    void stop() throws Exception {
        scheduler.stop();
        assertEquals(0, NarBuffers.outstanding(), "pooled NAR buffers still lent out");
    }

    @Test
    void bytesReleasedBeforeTheHandleExists_areHandedToIt() {
        Handler handler = new Handler(h -> h.exchange.release(h.lastChunk)); // written at once, as a fast client would
        NarExchange exchange = exchange(handler, sink -> {
            sink.onResponse(ok(BODY.length), new BasicEntityDetails(BODY.length, ContentType.APPLICATION_OCTET_STREAM));
            sink.onData(ByteBuffer.wrap(BODY, 0, 4));
            sink.onData(ByteBuffer.wrap(BODY, 4, 6));
        });
        exchange.start();

        assertEquals(List.of(10), client.stream.released, "what the client wrote before stream() returned");
        client.sink.onEnd();
        assertTrue(handler.completed, "the NAR completes");
        assertEquals(BODY.length, handler.received);
    }

    @Test
    void clientGoneBeforeTheHandleExists_cancelsTheUpstreamExchange() {
        Handler handler = new Handler(h -> h.exchange.cancel()); // the first write fails: client gone
        NarExchange exchange = exchange(handler, sink -> {
            sink.onResponse(ok(BODY.length), new BasicEntityDetails(BODY.length, ContentType.APPLICATION_OCTET_STREAM));
            sink.onData(ByteBuffer.wrap(BODY));
        });
        exchange.start();

        assertTrue(client.stream.cancelled, "the upstream exchange is abandoned as soon as it exists");
        assertEquals(List.of(), client.stream.released);
        exchange.discard(handler.lastChunk); // the proxy gives back the buffer it could not write
    }

    /** HTTP/2 ends a body with END_STREAM (a reset fails the exchange): no length needed. */
    @Test
    void http2BodyWithoutAnyLength_isTrustedToItsEnd() {
        Handler handler = new Handler(h -> h.exchange.release(h.lastChunk));
        exchange(handler, NarExchange.Expected.UNKNOWN, sink -> withoutLength(sink, HttpVersion.HTTP_2)).start();
        client.sink.onEnd();

        assertTrue(handler.completed, "complete");
        assertEquals(0, handler.failures.get());
    }

    /** HTTP/1.1 without Content-Length or chunking ends with the connection: a cut looks the same. */
    @Test
    void http1BodyDelimitedOnlyByTheConnection_withNoSizeToCheck_isAborted() {
        Handler handler = new Handler(h -> h.exchange.release(h.lastChunk));
        exchange(handler, NarExchange.Expected.UNKNOWN, sink -> withoutLength(sink, HttpVersion.HTTP_1_1)).start();
        client.sink.onEnd();

        assertEquals(false, handler.completed);
        assertEquals(List.of(502), handler.failureStatuses);
    }

    /** A 200 of the given version with neither Content-Length nor chunking, and the whole body. */
    private static void withoutLength(StreamingConsumer.Sink sink, HttpVersion version) {
        BasicHttpResponse response = new BasicHttpResponse(200);
        response.setVersion(version);
        sink.onResponse(response, new BasicEntityDetails(-1, ContentType.APPLICATION_OCTET_STREAM));
        sink.onData(ByteBuffer.wrap(BODY));
    }

    private NarExchange exchange(Handler handler, Consumer<StreamingConsumer.Sink> beforeReturning) {
        return exchange(handler, new NarExchange.Expected(BODY.length), beforeReturning);
    }

    private NarExchange exchange(Handler handler, NarExchange.Expected expected, Consumer<StreamingConsumer.Sink> beforeReturning) {
        client.beforeReturning = beforeReturning;
        NarRouting routing = new NarRouting(u -> new UpstreamHealth(u.name(), 0.3, InstantSource.fixed(Instant.EPOCH)),
                () -> List.of(upstream), Duration.ofSeconds(30), InstantSource.fixed(Instant.EPOCH), u -> {});
        NarExchange exchange = new NarExchange(new NarRequest("nar/abc.nar.xz", false, Map.of()), handler, List.of(upstream),
                expected, client, Duration.ofSeconds(300), new NcroMetrics(), routing,
                u -> new AsyncLimiter(4, Runnable::run), u -> false, scheduler, Runnable::run);
        handler.exchange = exchange;
        return exchange;
    }

    private static BasicHttpResponse ok(int length) {
        BasicHttpResponse response = new BasicHttpResponse(200);
        response.addHeader("Content-Length", Integer.toString(length));
        return response;
    }

    /** The upstream exchange: runs the scripted callbacks inside stream(), then returns its handle. */
    private static final class Recorder implements NarExchange.Opener {
        Consumer<StreamingConsumer.Sink> beforeReturning;
        StreamingConsumer.Sink sink;
        final Stream stream = new Stream();

        @Override
        public UpstreamStream stream(Upstream upstream, URI uri, boolean head, Map<String, String> headers,
                Duration idleTimeout, StreamingConsumer.Sink sink) {
            this.sink = sink;
            beforeReturning.accept(sink);
            return stream;
        }
    }

    private static final class Stream implements UpstreamStream {
        final List<Integer> released = new ArrayList<>();
        boolean cancelled;

        @Override
        public void release(int bytes) {
            released.add(bytes);
        }

        @Override
        public void cancel() {
            cancelled = true;
        }
    }

    /** The NAR proxy's part: each chunk is "written", then handled by {@code onChunk}. */
    private static final class Handler implements NarHandler {
        private final Consumer<Handler> onChunk;
        NarExchange exchange;
        int lastChunk;
        int received;
        boolean completed;
        final AtomicInteger failures = new AtomicInteger();
        final List<Integer> failureStatuses = new ArrayList<>();

        Handler(Consumer<Handler> onChunk) {
            this.onChunk = onChunk;
        }

        @Override
        public void onHead(int status, List<Map.Entry<String, String>> headers) {
            assertEquals(200, status);
        }

        @Override
        public void onData(ByteBuffer data) {
            lastChunk = data.remaining();
            received += lastChunk;
            onChunk.accept(this);
        }

        @Override
        public void onComplete() {
            completed = true;
        }

        @Override
        public void onFailure(int status, String reason) {
            failures.incrementAndGet();
            failureStatuses.add(status);
        }
    }
}
