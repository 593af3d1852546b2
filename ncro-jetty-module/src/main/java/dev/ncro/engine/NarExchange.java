package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.config.Durations;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.StreamingConsumer;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import dev.ncro.upstream.UpstreamStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Predicate;
import org.apache.hc.core5.http.EntityDetails;
import org.apache.hc.core5.http.Header;
import org.apache.hc.core5.http.HttpResponse;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One NAR request, tried on the candidates {@link NarRouting} chose, one after the other.
 *
 * <p>Before the response has started, any failure of an upstream — refused, reset, a 5xx, a
 * refused redirect, or no usable answer (a streamed 2xx, or a complete error or not-found
 * answer) within its {@code timeout.first_byte} — moves on to the next candidate; a
 * not-found does too. A request that waits for one of the upstream's stream slots longer than
 * that moves on as well (the last candidate is waited for up to the stall limit). The answer is 404 only when every candidate said
 * not-found, 502 otherwise. Once the head has gone to the client there is no switching: a
 * later failure aborts the client connection, and that upstream is tried last for this NAR's
 * next request, so Nix's retry is served by another upstream.
 *
 * <p>A 200 answer to a GET (a whole file, whether or not a Range was asked for) ends cleanly only if the bytes streamed match
 * the upstream's Content-Length, or, when it sent none, the narinfo's FileSize (NarSize for
 * an uncompressed NAR); a 206 only if they match its Content-Length or, without one, the
 * single range its Content-Range names; a chunked body without either is trusted to its terminating chunk,
 * and a body delimited only by the connection closing, with nothing to check it against,
 * is aborted: a truncated NAR must never look complete.
 *
 * <p>Threads: HttpComponents' I/O thread of the current attempt delivers the upstream's
 * answer; the scheduler fires the first-byte timeout and hands it to the executor; the web
 * layer calls {@link #release} and {@link #cancel}. An attempt's state moves by compare-and-set
 * (waiting → streaming, or waiting → failed), so a late callback of an abandoned attempt is
 * ignored.
 */
final class NarExchange implements NarStream {
    private static final Logger LOG = LoggerFactory.getLogger(NarExchange.class);

    /** Request headers forwarded to the upstream: resume, conditionals, content negotiation. */
    static final Set<String> FORWARDED_REQUEST_HEADERS = Set.of(
            "range", "if-range", "if-none-match", "if-modified-since", "accept-encoding");
    /** Response headers passed to the client. A whitelist: hop-by-hop and cookies never pass. */
    static final Set<String> PASSED_RESPONSE_HEADERS = Set.of(
            "content-length", "content-type", "content-encoding", "content-range", "accept-ranges",
            "etag", "last-modified", "cache-control", "expires");

    /**
     * Opens one upstream exchange: {@link UpstreamClient#stream} in ncro; its callbacks may run
     * before it returns (a small body can arrive, be written and be released first).
     */
    @FunctionalInterface
    interface Opener {
        UpstreamStream stream(Upstream upstream, java.net.URI uri, boolean head, Map<String, String> headers,
                Duration idleTimeout, StreamingConsumer.Sink sink);
    }

    /** What ncro knows of the file from the narinfo that named it. */
    record Expected(long fileSize) {
        static final Expected UNKNOWN = new Expected(-1);
    }

    private final NarRequest request;
    private final NarHandler handler;
    private final List<Upstream> candidates;
    private final Expected expected;
    private final Opener client;
    private final Duration idleTimeout;
    private final NcroMetrics metrics;
    private final NarRouting routing;
    private final Function<Upstream, AsyncLimiter> streamGates;
    private final Predicate<Upstream> hasLogin;
    private final Scheduler scheduler;
    private final Executor executor;
    private final Map<String, String> forwarded = new HashMap<>();
    private final AtomicBoolean open = new AtomicBoolean();
    /** The body's pooled buffers the handler holds, across attempts (only one streams a body). */
    private final NarBuffers buffers = new NarBuffers();

    private volatile boolean cancelled;
    private volatile Attempt current;
    // advanced only by the attempt that just ended, so never by two threads at once
    private int next;
    private final List<String> failures = new ArrayList<>();
    /** Upstreams whose answer contradicted the narinfo and were passed over, to come back last (guarded by {@link #failures}). */
    private final Set<Upstream> passedOver = new java.util.HashSet<>();
    /** Who said not-found, and how (guarded by {@link #failures}): named in a 404's body. */
    private final List<String> notFoundBy = new ArrayList<>();

    NarExchange(NarRequest request, NarHandler handler, List<Upstream> candidates, Expected expected,
            Opener client, Duration idleTimeout, NcroMetrics metrics, NarRouting routing,
            Function<Upstream, AsyncLimiter> streamGates, Predicate<Upstream> hasLogin, Scheduler scheduler,
            Executor executor) {
        this.request = request;
        this.handler = handler;
        this.candidates = new ArrayList<>(candidates); // an upstream passed over may come back as the last resort
        this.expected = expected;
        this.client = client;
        this.idleTimeout = idleTimeout;
        this.metrics = metrics;
        this.routing = routing;
        this.streamGates = streamGates;
        this.hasLogin = hasLogin;
        this.scheduler = scheduler;
        this.executor = executor;
        request.headers().forEach((name, value) -> {
            if (FORWARDED_REQUEST_HEADERS.contains(name.toLowerCase(Locale.ROOT))) forwarded.put(name, value);
        });
    }

    /** An upstream that could have the NAR and is not asked: the answer is then never a 404. Before {@link #start}. */
    void unasked(String why) {
        synchronized (failures) {
            failures.add(why);
        }
    }

    @Override
    public void start() {
        // cancelled before it started (a head start's client gone between hand-over and start):
        // nothing opened, nothing counted, nothing left in flight
        if (cancelled) return;
        if (open.compareAndSet(false, true)) metrics.narStreamsInFlight.inc();
        if (cancelled) { // a cancel that ran just before the line above found nothing open to close
            closed();
            return;
        }
        tryNext();
    }

    /** The next candidate, or the final answer when none is left. */
    private void tryNext() {
        if (cancelled) return;
        if (next >= candidates.size()) {
            List<String> failed;
            synchronized (failures) {
                failed = List.copyOf(failures);
            }
            if (failed.isEmpty()) {
                List<String> said;
                synchronized (failures) {
                    said = List.copyOf(notFoundBy);
                }
                giveUp(404, "not found in any upstream: " + request.target() + " (" + String.join("; ", said) + ")");
            } else {
                giveUp(502, "no upstream served " + request.target() + ": " + String.join("; ", failed));
            }
            return;
        }
        if (next > 0) metrics.narFailovers.inc();
        Upstream upstream = candidates.get(next++);
        Attempt attempt = new Attempt(upstream, streamGates.apply(upstream));
        current = attempt;
        if (!attempt.enqueue()) {
            // every stream slot of this upstream is taken: wait for one at most as long as for
            // a first byte, then let the next candidate serve (busy is not sick: no cooldown);
            // the last candidate is waited for up to the stall limit
            Duration wait = next < candidates.size() ? upstream.firstByteTimeout() : idleTimeout;
            scheduler.schedule(() -> executor.execute(attempt::busy), wait.toNanos(), TimeUnit.NANOSECONDS);
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
        buffers.release(bytes);
        Attempt a = current;
        if (a != null) a.release(bytes);
    }

    @Override
    public void discard(int bytes) {
        buffers.discard(bytes);
        Attempt a = current;
        if (a != null) a.release(bytes);
    }

    @Override
    public void cancel() {
        cancelled = true;
        closed();
        Attempt a = current;
        if (a != null) a.abandon();
    }

    /** One upstream's try. */
    private final class Attempt implements StreamingConsumer.Sink {
        private static final int WAITING = 0;
        private static final int STREAMING = 1;
        private static final int PASSED = 2; // not-found or failed before the head: the next one's turn
        private static final int OVER = 3;

        final Upstream upstream;
        /** This upstream's stream slots (per_upstream_max_streams). */
        private final AsyncLimiter gate;
        /** The task queued at the gate: one object, so that it can be withdrawn. */
        private final Runnable launchTask = this::launch;
        private final AtomicInteger state = new AtomicInteger(WAITING);
        private final AtomicBoolean gateHeld = new AtomicBoolean();
        private UpstreamStream stream;
        /**
         * Bytes the handler released before {@code client.stream} returned the handle (the
         * body can arrive, be written and be released first): handed on with the handle, or the
         * upstream window would never reopen for them and the stream would stall. At most
         * the stream window, as in {@code ReadAhead.Entry}.
         */
        private int releasedEarly;
        private boolean abandoned;
        private Scheduler.Task firstByte;
        private volatile boolean launched;
        // I/O thread of this attempt only
        private String failure;
        private boolean notFound;
        private long bytes;
        private long expectedBytes = -1;
        private boolean trustFraming;
        private boolean checkLength;

        Attempt(Upstream upstream, AsyncLimiter gate) {
            this.upstream = upstream;
            this.gate = gate;
        }

        /** Launches now if a stream slot is free, else queues for one; true when launched. */
        boolean enqueue() {
            gate.run(launchTask);
            return launched;
        }

        /** Runs once this upstream has a free stream slot. */
        private void launch() {
            gateHeld.set(true);
            launched = true;
            if (cancelled || current != this) {
                releaseGate();
                return;
            }
            Duration firstByteTimeout = upstream.firstByteTimeout();
            Scheduler.Task timer = scheduler.schedule(() -> executor.execute(this::noFirstByte),
                    firstByteTimeout.toNanos(), TimeUnit.NANOSECONDS);
            synchronized (this) {
                firstByte = timer;
            }
            UpstreamStream s;
            try {
                Duration stall = upstream.responseTimeout() != null ? upstream.responseTimeout() : idleTimeout;
                s = client.stream(upstream, upstream.resolve(request.target()), request.head(), forwarded, stall, this);
            } catch (RuntimeException e) {
                passOn("could not start: " + NarinfoRace.describe(e), true);
                return;
            }
            boolean drop;
            int early;
            synchronized (this) {
                drop = abandoned;
                if (!drop) stream = s;
                early = releasedEarly;
                releasedEarly = 0;
            }
            if (drop || cancelled) {
                s.cancel();
            } else if (early > 0) {
                s.release(early);
            }
        }

        /** Still queued for a stream slot after the first-byte timeout: the next candidate's turn. */
        void busy() {
            if (!gate.withdraw(launchTask) || !state.compareAndSet(WAITING, PASSED)) return;
            synchronized (failures) {
                failures.add(upstream + ": every stream slot stayed busy");
            }
            metrics.narUpstreamFailures.labelValues(upstream.name(), "busy").inc();
            tryNext();
        }

        void release(int n) {
            UpstreamStream s;
            synchronized (this) {
                s = stream;
                if (s == null) {
                    releasedEarly += n;
                    return;
                }
            }
            s.release(n);
        }

        /** Cancels the upstream exchange, now or as soon as it exists. */
        void abandon() {
            UpstreamStream s;
            Scheduler.Task timer;
            synchronized (this) {
                abandoned = true;
                s = stream;
                timer = firstByte;
            }
            if (!launched) gate.withdraw(launchTask); // a client gone while queued
            if (timer != null) timer.cancel();
            if (s != null) s.cancel();
            if (state.getAndSet(OVER) != OVER) releaseGate();
        }

        private void releaseGate() {
            if (gateHeld.compareAndSet(true, false)) gate.release();
        }

        private void cancelTimer() {
            Scheduler.Task timer;
            synchronized (this) {
                timer = firstByte;
            }
            if (timer != null) timer.cancel();
        }

        /** The first-byte timer fired (on the executor). */
        private void noFirstByte() {
            if (!state.compareAndSet(WAITING, PASSED)) return;
            String reason = "no usable answer within " + Durations.format(upstream.firstByteTimeout());
            LOG.warn("NAR {} from {}: {}; trying the next upstream", request.target(), upstream, reason);
            abandonExchange();
            recordFailure(reason, "first_byte");
            releaseGate();
            tryNext();
        }

        private void abandonExchange() {
            UpstreamStream s;
            synchronized (this) {
                abandoned = true;
                s = stream;
            }
            if (s != null) s.cancel();
        }

        private void recordFailure(String reason, String phase) {
            synchronized (failures) {
                failures.add(upstream + ": " + reason);
            }
            metrics.narUpstreamFailures.labelValues(upstream.name(), phase).inc();
            routing.failed(request.target(), upstream);
        }

        @Override
        public boolean onResponse(HttpResponse response, EntityDetails entity) {
            if (state.get() != WAITING) return false; // timed out or abandoned: discard
            // the first-byte timer keeps running until a body is streamed: an error or
            // not-found answer whose body stalls must not hold the request past it
            int status = response.getCode();
            if (NotFound.means(status, hasLogin.test(upstream))) {
                notFound = true;
                synchronized (failures) {
                    notFoundBy.add(upstream + ": HTTP " + status);
                }
                return false;
            }
            boolean ok = (status >= 200 && status < 300) || status == 304 || status == 416;
            if (!ok) {
                failure = "HTTP " + status;
                return false;
            }
            if (contradicts(status, response, entity)) return false;
            if (cancelled || !state.compareAndSet(WAITING, STREAMING)) return false;
            cancelTimer();
            if (!request.head() && (status == 200 || status == 206)) routing.streaming(request.target(), upstream);
            planLengthCheck(status, response, entity);
            List<Map.Entry<String, String>> headers = new ArrayList<>();
            for (Header h : response.getHeaders()) {
                if (PASSED_RESPONSE_HEADERS.contains(h.getName().toLowerCase(Locale.ROOT))) {
                    headers.add(new AbstractMap.SimpleImmutableEntry<>(h.getName(), h.getValue()));
                }
            }
            handler.onHead(status, headers);
            return true;
        }

        /**
         * A whole file whose Content-Length is not the narinfo's FileSize may not be the file the
         * narinfo describes (Nix would reject it by its hash and, alone, try its next cache): the
         * other candidates first, this one once more at the end, as the last resort. Passes the
         * turn on and returns true when it does.
         */
        private boolean contradicts(int status, HttpResponse response, EntityDetails entity) {
            if (request.head() || status != 200 || entity == null || expected.fileSize() < 0) return false;
            long length = entity.getContentLength();
            if (length < 0 || length == expected.fileSize() || response.containsHeader("Content-Encoding")) return false;
            synchronized (failures) {
                // the last candidate, or one back for its second turn: served as it is
                if (next >= candidates.size() || !passedOver.add(upstream)) return false;
                candidates.add(upstream);
            }
            String why = "Content-Length " + length + " is not the narinfo's FileSize " + expected.fileSize();
            LOG.warn("NAR {} from {}: {}; trying the others first", request.target(), upstream, why);
            routing.contradicted(request.target(), upstream);
            abandonExchange(); // not read to its end: the next candidate's turn now
            passOn(why, false);
            return true;
        }

        private void planLengthCheck(int status, HttpResponse response, EntityDetails entity) {
            if (request.head() || entity == null) return;
            if (status == 200) {
                // a 200 is a whole file even when a Range was asked for (the upstream ignored it)
                checkLength = true;
                if (entity.getContentLength() >= 0) {
                    expectedBytes = entity.getContentLength();
                } else if (expected.fileSize() >= 0 && !response.containsHeader("Content-Encoding")) {
                    expectedBytes = expected.fileSize();
                } else {
                    trustFraming = chunked(response);
                }
            } else if (status == 206) {
                // a part: its Content-Length, else the one range its Content-Range names
                checkLength = true;
                if (entity.getContentLength() >= 0) {
                    expectedBytes = entity.getContentLength();
                } else {
                    expectedBytes = rangeLength(response.getFirstHeader("Content-Range"));
                    if (expectedBytes < 0) trustFraming = chunked(response);
                }
            }
        }

        /**
         * Whether the body's own framing tells a complete end from a cut: HTTP/1.1 chunking
         * (HttpComponents checks the terminating chunk; its EntityDetails calls any body of
         * unknown length "chunked", so the header is what tells), or HTTP/2.
         */
        private static boolean chunked(HttpResponse response) {
            org.apache.hc.core5.http.Header te = response.getFirstHeader("Transfer-Encoding");
            if (te != null && te.getValue().toLowerCase(Locale.ROOT).contains("chunked")) return true;
            // HTTP/2 ends a body with END_STREAM; a reset or a lost connection fails the exchange
            org.apache.hc.core5.http.ProtocolVersion v = response.getVersion();
            return v != null && v.getMajor() >= 2;
        }

        /** The length of {@code bytes first-last/total}, or -1 when it names no single range. */
        private static long rangeLength(org.apache.hc.core5.http.Header contentRange) {
            if (contentRange == null) return -1;
            String v = contentRange.getValue().trim();
            if (!v.regionMatches(true, 0, "bytes ", 0, 6)) return -1;
            int dash = v.indexOf('-', 6);
            int slash = v.indexOf('/', 6);
            if (dash < 0 || slash < dash) return -1;
            try {
                long first = Long.parseLong(v.substring(6, dash).trim());
                long last = Long.parseLong(v.substring(dash + 1, slash).trim());
                return first >= 0 && last >= first ? last - first + 1 : -1;
            } catch (NumberFormatException e) {
                return -1;
            }
        }

        @Override
        public void onData(ByteBuffer data) {
            int n = data.remaining();
            if (n == 0) return;
            bytes += n;
            metrics.narBytes.inc(n);
            handler.onData(buffers.copy(data));
        }

        @Override
        public void onEnd() {
            int s = state.get();
            if (s == STREAMING) {
                String wrong = lengthProblem();
                if (wrong != null) {
                    LOG.warn("NAR {} from {}: {}; aborting the client connection", request.target(), upstream, wrong);
                    midBody(wrong, "truncated");
                    return;
                }
                if (state.compareAndSet(STREAMING, OVER)) {
                    releaseGate();
                    routing.served(upstream);
                    closed();
                    handler.onComplete();
                }
            } else if (s == WAITING) {
                if (notFound) {
                    passOn(null, false);
                } else {
                    passOn(failure != null ? failure : "answered with no usable response", true);
                }
            }
        }

        /** Why the body must not count as complete, or null. */
        private String lengthProblem() {
            if (!checkLength) return null;
            if (expectedBytes >= 0) {
                return bytes == expectedBytes ? null
                        : "body ended after " + bytes + " of " + expectedBytes + " bytes";
            }
            return trustFraming ? null : "body of " + bytes + " bytes had no length to check it against";
        }

        @Override
        public void onError(Exception error) {
            int s = state.get();
            if (s == STREAMING) {
                String reason = NarinfoRace.describe(error);
                LOG.warn("NAR {} from {} failed after the response started: {}", request.target(), upstream, reason);
                midBody(reason, "mid_body");
            } else if (s == WAITING) {
                cancelTimer();
                passOn(NarinfoRace.describe(error), true);
            }
        }

        /** The client already has part of the body: abort it; the retry goes elsewhere. */
        private void midBody(String reason, String phase) {
            if (!state.compareAndSet(STREAMING, OVER)) return;
            recordFailure(reason, phase);
            releaseGate();
            giveUp(502, upstream + " failed mid-body: " + reason);
        }

        /** Not-found here, or failed before the head: the next candidate's turn. */
        private void passOn(String failureReason, boolean failed) {
            if (!state.compareAndSet(WAITING, PASSED)) return;
            cancelTimer();
            if (failed) {
                if (!cancelled) LOG.warn("NAR {} from {} failed: {}; trying the next upstream", request.target(), upstream, failureReason);
                recordFailure(failureReason, "before_head");
            }
            releaseGate();
            tryNext();
        }
    }
}
