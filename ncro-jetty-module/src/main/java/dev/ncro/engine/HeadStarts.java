package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.config.Defaults;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.Upstream;
import java.nio.ByteBuffer;
import java.time.InstantSource;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Head starts for NARs over {@code readahead.max_nar_size}: they are never read into memory,
 * but once their narinfo was served to a GET, the normal stream for the download that
 * follows is opened at once and paused after its first window ({@link
 * Defaults#STREAM_WINDOW_BYTES}, the bytes it may hold between upstream and client anyway).
 * The client's download then takes that stream over — the upstream's round trip already
 * paid — with its backpressure unchanged: the held bytes go first, the rest flows as the
 * client reads.
 *
 * <p>Rules, besides the read-ahead's (a GET answered 200, the NAR's home upstream first in
 * the stream order, the guard admits, never for HEAD, one download per head start):
 * <ul>
 *   <li>at most {@link Defaults#HEAD_START_MAX} wait at once, each holding one upstream
 *       connection (or HTTP/2 stream) and at most a window of bytes; only while fewer than half
 *       of that upstream's stream slots are in use and no client waits for one;</li>
 *   <li>one not taken over within {@code readahead.ttl}, and at most {@link
 *       Defaults#HEAD_START_TTL} (short of the idle timeouts of the stream and of common
 *       servers), is cancelled;</li>
 *   <li>only a whole-file download with no conditions takes one over; one whose stream failed
 *       or answered anything but 200 before the client's download saw its head is cancelled,
 *       and the download takes a fresh normal stream: a head start never costs a client a
 *       failure the normal stream would not have given it.</li>
 * </ul>
 *
 * <p>A head start that failed while waiting reported it as any stream does (the upstream tried
 * last for that NAR, and cooled down on a real failure); the timeouts above keep a healthy
 * upstream from timing out a paused stream.
 */
final class HeadStarts {
    private static final Logger LOG = LoggerFactory.getLogger(HeadStarts.class);

    private final boolean enabled;
    private final long ttlMillis;
    private final ReadAheadGuard guard;
    private final Function<Upstream, AsyncLimiter> streamGates;
    private final NcroMetrics metrics;
    private final InstantSource clock;
    private final Scheduler scheduler;
    private final Executor executor;
    private final ConcurrentHashMap<String, Waiting> waiting = new ConcurrentHashMap<>();
    /** When each target was last considered: a narinfo served again and again starts at most one head start a second. */
    private final ConcurrentHashMap<String, Long> considered = new ConcurrentHashMap<>();

    HeadStarts(boolean enabled, java.time.Duration ttl, ReadAheadGuard guard, Function<Upstream, AsyncLimiter> streamGates,
            NcroMetrics metrics, InstantSource clock, Scheduler scheduler, Executor executor) {
        this.enabled = enabled;
        this.ttlMillis = Math.min(ttl.toMillis(), Defaults.HEAD_START_TTL.toMillis());
        this.guard = guard;
        this.streamGates = streamGates;
        this.metrics = metrics;
        this.clock = clock;
        this.scheduler = scheduler;
        this.executor = executor;
    }

    /**
     * A narinfo naming {@code target}, a NAR too big to read ahead, was just served to a GET:
     * opens its normal stream ({@code opener}) if the rules allow. Never throws.
     */
    void consider(String target, Upstream home, BiFunction<NarRequest, NarHandler, NarStream> opener) {
        if (!enabled) return;
        long now = clock.millis();
        if (consideredRecently(target)) return;
        if (considered.size() >= Defaults.READAHEAD_MAX_PARKED) considered.clear();
        considered.put(target, now);
        if (waiting.containsKey(target) || waiting.size() >= Defaults.HEAD_START_MAX) return;
        AsyncLimiter gate = streamGates.apply(home);
        if (gate.queued() > 0 || gate.inUse() >= gate.permits() / 2) return;
        if (!guard.admit()) return;
        Waiting w = new Waiting(target, now);
        if (waiting.putIfAbsent(target, w) != null) return;
        try {
            w.stream = opener.apply(new NarRequest(target, false, Map.of()), w);
            guard.fetched(Defaults.STREAM_WINDOW_BYTES);
            w.timer = scheduler.schedule(() -> expire(w), ttlMillis, TimeUnit.MILLISECONDS);
            w.stream.start();
        } catch (RuntimeException e) {
            LOG.debug("no head start for {}: {}", target, e.toString());
            if (waiting.remove(target, w)) w.drop("could not start");
        }
    }

    /** Whether {@code target} was considered less than a second ago: nothing to decide (the hot narinfo path). */
    boolean consideredRecently(String target) {
        if (!enabled) return true;
        Long last = considered.get(target);
        if (last == null) return false;
        long age = clock.millis() - last;
        return age >= 0 && age < ReadAhead.SETTLED_MS;
    }

    private void expire(Waiting w) {
        if (waiting.remove(w.target, w)) {
            metrics.headStarts.labelValues("expired").inc();
            w.drop("not downloaded within " + ttlMillis + " ms");
        }
    }

    /**
     * A plain GET of {@code request.target()}: the stream a head start opened for it, handed
     * to {@code handler}; null when there is none (or it expired or failed: cancelled). The
     * returned stream falls back to {@code normal} if the head start fails before the client
     * saw its head.
     */
    NarStream claim(NarRequest request, NarHandler handler, Supplier<NarStream> normal) {
        if (waiting.isEmpty()) return null;
        Waiting w = waiting.remove(request.target());
        if (w == null) return null;
        Scheduler.Task t = w.timer;
        if (t != null) t.cancel();
        long age = clock.millis() - w.startedAt;
        if (age < 0 || age >= ttlMillis) {
            metrics.headStarts.labelValues("expired").inc();
            w.drop("not downloaded within " + ttlMillis + " ms");
            return null;
        }
        if (!w.take(normal)) {
            metrics.headStarts.labelValues("failed").inc();
            w.drop("its stream failed before the download");
            return null;
        }
        metrics.headStarts.labelValues("taken").inc();
        guard.served(Defaults.STREAM_WINDOW_BYTES);
        return w.handOver(handler);
    }

    /** Head starts waiting, for tests. */
    int waitingCount() {
        return waiting.size();
    }

    /** Cancels every waiting head start (the engine stops). */
    void clear() {
        considered.clear();
        for (Waiting w : List.copyOf(waiting.values())) {
            if (waiting.remove(w.target, w)) w.drop("stopping");
        }
    }

    /** One event of the stream, kept until a handler takes it. */
    private interface Event {}

    private record Head(int status, List<Map.Entry<String, String>> headers) implements Event {}

    private record Data(ByteBuffer buffer) implements Event {}

    private record Complete() implements Event {}

    private record Failure(int status, String reason) implements Event {}

    /**
     * A head start's stream and what it delivered so far. It is the stream's handler: events are
     * queued and handed on, in order and one at a time, to whoever took it over (the client's
     * handler, or a discarder once dropped).
     */
    private final class Waiting implements NarHandler {
        final String target;
        final long startedAt;
        volatile NarStream stream;
        volatile Scheduler.Task timer;
        private final ConcurrentLinkedQueue<Event> events = new ConcurrentLinkedQueue<>();
        private final AtomicInteger draining = new AtomicInteger();
        // guarded by this
        private boolean taken;
        private boolean spoiled;
        private NarHandler taker;
        private Supplier<NarStream> normal;
        // the drainer's only
        private boolean headPassed;
        private volatile NarStream fallback;

        Waiting(String target, long startedAt) {
            this.target = target;
            this.startedAt = startedAt;
        }

        @Override
        public void onHead(int status, List<Map.Entry<String, String>> headers) {
            if (status != 200) spoil();
            offer(new Head(status, headers));
        }

        @Override
        public void onData(ByteBuffer data) {
            offer(new Data(data));
        }

        @Override
        public void onComplete() {
            offer(new Complete());
        }

        @Override
        public void onFailure(int status, String reason) {
            spoil();
            offer(new Failure(status, reason));
        }

        /** A failure or a non-200 head before a download took the stream: it cannot be taken. */
        private synchronized void spoil() {
            if (!taken) spoiled = true;
        }

        /** A download takes it, with its own normal stream to fall back on; false when it failed before. */
        synchronized boolean take(Supplier<NarStream> normalStream) {
            if (spoiled) return false;
            taken = true;
            normal = normalStream;
            return true;
        }

        /** The stream the web layer gets: started, it hands the events on to the client's {@code handler}. */
        NarStream handOver(NarHandler handler) {
            return new NarStream() {
                @Override
                public void start() {
                    // callbacks come from the engine's threads, as from any stream
                    try {
                        executor.execute(() -> attach(handler));
                    } catch (RejectedExecutionException e) {
                        attach(handler);
                    }
                }

                @Override
                public void release(int bytes) {
                    NarStream f = fallback;
                    (f != null ? f : stream).release(bytes);
                }

                @Override
                public void discard(int bytes) {
                    NarStream f = fallback;
                    (f != null ? f : stream).discard(bytes);
                }

                @Override
                public void cancel() {
                    NarStream f = fallback;
                    if (f != null) f.cancel();
                    stream.cancel();
                }
            };
        }

        private void attach(NarHandler handler) {
            synchronized (this) {
                taker = handler;
            }
            drain();
        }

        /** Dropped (expired, failed, stopping): the stream is cancelled and every byte it held given back. */
        void drop(String why) {
            LOG.debug("head start of {} dropped: {}", target, why);
            NarStream s = stream;
            synchronized (this) {
                taker = new Discarder();
            }
            if (s != null) s.cancel();
            drain();
        }

        private void offer(Event e) {
            events.add(e);
            drain();
        }

        /** Hands the queued events on, one thread at a time, once someone took the stream over. */
        private void drain() {
            if (draining.getAndIncrement() != 0) return;
            do {
                NarHandler h;
                synchronized (this) {
                    h = taker;
                }
                if (h != null) {
                    for (Event e; (e = events.poll()) != null; ) deliver(h, e);
                }
            } while (draining.decrementAndGet() != 0);
        }

        private void deliver(NarHandler h, Event e) {
            if (fallback != null) {
                // the client is served by a fresh stream: what this one still delivers is given back
                if (e instanceof Data d) stream.release(d.buffer().remaining());
                return;
            }
            if (!headPassed && !(h instanceof Discarder) && (e instanceof Failure
                    || (e instanceof Head head && head.status() != 200))) {
                // failed before the client saw anything: a fresh normal stream serves it
                Supplier<NarStream> n;
                synchronized (this) {
                    n = normal;
                }
                LOG.debug("head start of {} failed before its download began: the normal stream serves it", target);
                metrics.headStarts.labelValues("failed").inc();
                NarStream s = stream;
                if (s != null) s.cancel();
                NarStream fresh = n.get();
                fallback = fresh;
                fresh.start();
                return;
            }
            if (e instanceof Head head) {
                headPassed = true;
                h.onHead(head.status(), head.headers());
            } else if (e instanceof Data d) {
                h.onData(d.buffer());
            } else if (e instanceof Complete) {
                h.onComplete();
            } else if (e instanceof Failure f) {
                h.onFailure(f.status(), f.reason());
            }
        }

        /** Takes a dropped head start's events: its data buffers go straight back to the stream. */
        private final class Discarder implements NarHandler {
            @Override
            public void onHead(int status, List<Map.Entry<String, String>> headers) {}

            @Override
            public void onData(ByteBuffer data) {
                NarStream s = stream;
                if (s != null) s.release(data.remaining());
            }

            @Override
            public void onComplete() {}

            @Override
            public void onFailure(int status, String reason) {}
        }
    }
}
