package dev.ncro.upstream;

import dev.ncro.config.Defaults;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Future;
import org.apache.hc.core5.http.EntityDetails;
import org.apache.hc.core5.http.Header;
import org.apache.hc.core5.http.HttpResponse;
import org.apache.hc.core5.http.nio.support.AsyncRequestBuilder;

/**
 * One streamed request ({@link UpstreamClient#stream}) across its lookups, redirects and one
 * stale-connection retry. Each hop has its own {@link StreamingConsumer}; the sink sees only the
 * final answer, and {@link #release} and {@link #cancel} always act on the current hop.
 */
final class StreamExchange implements UpstreamStream {
    private final UpstreamClient client;
    private final Upstream upstream;
    private final boolean head;
    private final Map<String, String> headers;
    private final Duration idleTimeout;
    private final StreamingConsumer.Sink sink;
    private volatile boolean cancelled;
    private volatile StreamingConsumer consumer;
    private volatile Future<Void> future;

    StreamExchange(UpstreamClient client, Upstream upstream, boolean head, Map<String, String> headers,
            Duration idleTimeout, StreamingConsumer.Sink sink) {
        this.client = client;
        this.upstream = upstream;
        this.head = head;
        this.headers = headers;
        this.idleTimeout = idleTimeout;
        this.sink = sink;
    }

    void start(URI uri) {
        hop(uri, 0);
    }

    private void hop(URI uri, int redirects) {
        client.resolveThen(upstream, uri, redirects > 0, idleTimeout, () -> cancelled,
                failure -> sink.onError(asException(failure)), this::refuse, () -> send(uri, redirects, false));
    }

    private void send(URI uri, int redirects, boolean retry) {
        AsyncRequestBuilder builder = head ? AsyncRequestBuilder.head(uri) : AsyncRequestBuilder.get(uri);
        headers.forEach(builder::addHeader);
        Hop hop = new Hop(uri, redirects, retry);
        StreamingConsumer c = new StreamingConsumer(hop, UpstreamClient.INITIAL_WINDOW, Defaults.STREAM_WINDOW_BYTES);
        consumer = c;
        try {
            future = client.streams().execute(builder.build(), c, null, client.context(upstream, uri, idleTimeout), null);
        } catch (RuntimeException e) {
            sink.onError(e); // the client is stopping
            return;
        }
        if (cancelled) cancel();
    }

    private void refuse(RedirectRefusedException e) {
        UpstreamClient.logRefused(e);
        sink.onError(e);
    }

    @Override
    public void release(int bytes) {
        StreamingConsumer c = consumer;
        if (c != null) c.release(bytes);
    }

    @Override
    public void cancel() {
        cancelled = true;
        StreamingConsumer c = consumer;
        if (c != null) c.cancel();
        Future<Void> f = future;
        if (f != null) f.cancel(true);
    }

    private static Exception asException(Throwable t) {
        return t instanceof Exception e ? e : new java.io.IOException(t);
    }

    /**
     * The sink of one hop: hides redirects (their bodies are discarded) and a stale connection's
     * failure from the exchange's sink. Called on the stream reactor's I/O thread.
     */
    private final class Hop implements StreamingConsumer.Sink {
        private final URI uri;
        private final int redirects;
        private final boolean retry;
        private boolean headArrived;
        private String location;

        Hop(URI uri, int redirects, boolean retry) {
            this.uri = uri;
            this.redirects = redirects;
            this.retry = retry;
        }

        @Override
        public boolean onResponse(HttpResponse response, EntityDetails entity) {
            headArrived = true;
            Header loc = response.getFirstHeader("Location");
            if (RedirectPolicy.isRedirect(response.getCode()) && loc != null) {
                location = loc.getValue();
                return false;
            }
            return sink.onResponse(response, entity);
        }

        @Override
        public void onData(ByteBuffer data) {
            sink.onData(data);
        }

        @Override
        public void onEnd() {
            if (location == null) {
                sink.onEnd();
            } else {
                follow();
            }
        }

        @Override
        public void onError(Exception failure) {
            if (cancelled) return;
            if (location != null) {
                follow(); // the redirect's head arrived; only its discarded body failed
            } else if (!headArrived && !retry && UpstreamClient.isStaleConnection(failure)) {
                // the upstream closed an idle pooled connection: once more on another
                client.dispatch(() -> {
                    if (!cancelled) send(uri, redirects, true);
                });
            } else {
                sink.onError(failure);
            }
        }

        private void follow() {
            if (cancelled) return;
            try {
                hop(RedirectPolicy.next(upstream, uri, location, redirects + 1), redirects + 1);
            } catch (RedirectRefusedException e) {
                refuse(e);
            }
        }
    }
}
