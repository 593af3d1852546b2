package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.StreamingConsumer;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import dev.ncro.upstream.UpstreamStream;
import org.apache.hc.core5.http.EntityDetails;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.hc.core5.http.Header;
import org.apache.hc.core5.http.HttpResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One NAR request. The first candidate is the upstream that served the narinfo naming this
 * URL, when ncro knows it; on a not-found there (or when it is unknown) the others follow in
 * preference order. A failure of the pinned upstream is answered with 502 rather than taking
 * the file from a cache whose narinfo the client never saw. Once the head has gone to the
 * client there is no switching: a later failure aborts the client connection.
 */
final class NarExchange implements NarStream, StreamingConsumer.Sink {
    private static final Logger LOG = LoggerFactory.getLogger(NarExchange.class);

    /** Request headers forwarded to the upstream: resume, conditionals, content negotiation. */
    static final Set<String> FORWARDED_REQUEST_HEADERS = Set.of(
            "range", "if-range", "if-none-match", "if-modified-since", "accept-encoding");
    /** Response headers passed to the client. A whitelist: hop-by-hop and cookies never pass. */
    static final Set<String> PASSED_RESPONSE_HEADERS = Set.of(
            "content-length", "content-type", "content-encoding", "content-range", "accept-ranges",
            "etag", "last-modified", "cache-control", "expires");

    private final NarRequest request;
    private final NarHandler handler;
    private final List<Upstream> candidates;
    private final boolean pinned;
    private final UpstreamClient client;
    private final Duration idleTimeout;
    private final NcroMetrics metrics;
    private final java.util.concurrent.atomic.AtomicBoolean open = new java.util.concurrent.atomic.AtomicBoolean();

    private int next;
    private final List<String> failures = new ArrayList<>();
    private volatile boolean cancelled;
    private volatile UpstreamStream exchange;
    // set on the I/O thread of the current attempt, read by the same thread
    private Upstream current;
    private boolean headSent;
    private String attemptFailure;

    NarExchange(NarRequest request, NarHandler handler, List<Upstream> candidates, boolean pinned,
            UpstreamClient client, Duration idleTimeout, NcroMetrics metrics) {
        this.metrics = metrics;
        this.request = request;
        this.handler = handler;
        this.candidates = candidates;
        this.pinned = pinned;
        this.client = client;
        this.idleTimeout = idleTimeout;
    }

    @Override
    public void start() {
        metrics.narRequests.inc();
        if (open.compareAndSet(false, true)) metrics.narStreamsInFlight.inc();
        attempt();
    }

    private void attempt() {
        if (cancelled) return;
        if (next >= candidates.size()) {
            if (failures.isEmpty()) {
                giveUp(404, "not found in any upstream: " + request.target());
            } else {
                giveUp(502, "no upstream served " + request.target() + ": " + String.join("; ", failures));
            }
            return;
        }
        current = candidates.get(next++);
        attemptFailure = null;
        Map<String, String> headers = new HashMap<>();
        request.headers().forEach((name, value) -> {
            if (FORWARDED_REQUEST_HEADERS.contains(name.toLowerCase(Locale.ROOT))) headers.put(name, value);
        });
        try {
            Duration stall = current.responseTimeout() != null ? current.responseTimeout() : idleTimeout;
            exchange = client.stream(current, current.resolve(request.target()), request.head(), headers, stall, this);
        } catch (RuntimeException e) {
            onError(e);
            return;
        }
        if (cancelled) exchange.cancel();
    }

    @Override
    public boolean onResponse(HttpResponse response, EntityDetails entity) {
        int status = response.getCode();
        if (status == 404 || status == 410 || status == 403) {
            attemptFailure = null;
            return false;
        }
        if ((status >= 200 && status < 300) || status == 304 || status == 416) {
            if (cancelled) return false;
            headSent = true;
            List<Map.Entry<String, String>> headers = new ArrayList<>();
            for (Header h : response.getHeaders()) {
                if (PASSED_RESPONSE_HEADERS.contains(h.getName().toLowerCase(Locale.ROOT))) {
                    headers.add(new AbstractMap.SimpleImmutableEntry<>(h.getName(), h.getValue()));
                }
            }
            handler.onHead(status, headers);
            return true;
        }
        attemptFailure = "HTTP " + status;
        return false;
    }

    @Override
    public void onData(ByteBuffer data) {
        metrics.narBytes.inc(data.remaining());
        handler.onData(data);
    }

    @Override
    public void onEnd() {
        if (headSent) {
            closed();
            handler.onComplete();
        } else if (attemptFailure == null) {
            attempt(); // not found here: the next candidate
        } else {
            failed(attemptFailure);
        }
    }

    @Override
    public void onError(Exception failure) {
        if (cancelled) return;
        String reason = NarinfoRace.describe(failure);
        if (headSent) {
            LOG.warn("NAR {} from {} failed after the response started: {}", request.target(), current, reason);
            giveUp(502, current + " failed mid-body: " + reason);
        } else {
            failed(reason);
        }
    }

    private void failed(String reason) {
        failures.add(current + ": " + reason);
        if (pinned && next == 1) {
            LOG.warn("NAR {} from pinned upstream {} failed: {}", request.target(), current, reason);
            giveUp(502, "upstream " + current + " (which served the narinfo) failed: " + reason);
        } else {
            attempt();
        }
    }

    /** Ends the stream with a failure for the handler; see {@link NarHandler#onFailure}. */
    private void giveUp(int status, String reason) {
        closed();
        handler.onFailure(status, reason);
    }

    /** The stream is over, one way or another: counted once. */
    private void closed() {
        if (open.compareAndSet(true, false)) metrics.narStreamsInFlight.dec();
    }

    @Override
    public void release(int bytes) {
        UpstreamStream s = exchange;
        if (s != null) s.release(bytes);
    }

    @Override
    public void cancel() {
        cancelled = true;
        closed();
        UpstreamStream s = exchange;
        if (s != null) s.cancel();
    }
}
