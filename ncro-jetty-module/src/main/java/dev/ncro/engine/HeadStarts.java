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
 * follows is opened ahead of it and paused after its first window ({@link
 * Defaults#STREAM_WINDOW_BYTES}, the bytes it may hold between upstream and client anyway).
 * The client's download then takes that stream over — the upstream's round trip already
 * paid — with its backpressure unchanged: the held bytes go first, the rest flows as the
 * client reads.
 *
 * <p>Rules, besides the read-ahead's (a GET answered 200, the NAR's home upstream first in
 * the stream order, the guard admits, never for HEAD, one download per head start):
 * <ul>
 *   <li>only once a client downloaded a NAR within the TTL below: before that, and while the
 *       guard pauses, candidates are held back, and the next download starts them, newest
 *       first (a Nix client reads a closure's narinfos top down, then downloads bottom up);
 *       clients that only query open no stream at all;</li>
 *   <li>at most {@link Defaults#HEAD_START_MAX} wait at once, each holding one upstream
 *       connection (or HTTP/2 stream) and at most a window of bytes; only while fewer than half
 *       of that upstream's stream slots are in use and no client waits for one;</li>
 *   <li>one not taken over within {@code readahead.ttl}, and at most {@link
 *       Defaults#HEAD_START_TTL} and half its upstream's stall limit (a paused stream meets
 *       that idle timeout, and a healthy upstream would count as failing), is cancelled;</li>
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
    /** The streams' stall limit where an upstream sets none ({@code server.write_timeout}). */
    private final java.time.Duration stallLimit;
    private final ReadAheadGuard guard;
    private final Function<Upstream, AsyncLimiter> streamGates;
    private final NcroMetrics metrics;
    private final InstantSource clock;
    private final Scheduler scheduler;
    private final Executor executor;
    private final ConcurrentHashMap<String, Waiting> waiting = new ConcurrentHashMap<>();
    /** When a client last downloaded a NAR (clock millis), or {@code Long.MIN_VALUE}. */
    private volatile long lastDownload = Long.MIN_VALUE;
    /** Candidates held back, by target, oldest first (guarded by itself). */
    private final java.util.LinkedHashMap<String, Held> held = new java.util.LinkedHashMap<>();
    /** When each target was last considered: a narinfo served again and again starts at most one head start a second. */
    private final Stamps considered;

    HeadStarts(boolean enabled, java.time.Duration ttl, java.time.Duration stallLimit, ReadAheadGuard guard, Function<Upstream, AsyncLimiter> streamGates,
            NcroMetrics metrics, InstantSource clock, Scheduler scheduler, Executor executor) {
        this.enabled = enabled;
        this.ttlMillis = Math.min(ttl.toMillis(), Defaults.HEAD_START_TTL.toMillis());
        this.stallLimit = stallLimit;
        this.guard = guard;
        this.streamGates = streamGates;
        this.metrics = metrics;
        this.clock = clock;
        this.scheduler = scheduler;
        this.executor = executor;
        this.considered = new Stamps(clock);
    }

    /**
     * A narinfo naming {@code target}, a NAR too big to read ahead, was just served to a GET:
     * opens its normal stream ({@code opener}) if the rules allow. Never throws.
     */
    void consider(String target, Upstream home, BiFunction<NarRequest, NarHandler, NarStream> opener) {
        if (!enabled) return;
        if (consideredRecently(target)) return;
        considered.stamp(target);
        long now = clock.millis();
        if (waiting.containsKey(target)) return;
        if (!downloadedWithin(now) || !guard.admit() || !open(target, home, opener, now)) {
            hold(new Held(target, home, opener, now));
        }
    }

    /**
     * Whether a client downloaded a NAR within the head starts' TTL. Until one does, candidates
     * are only held back: a client that only queries ({@code --dry-run}, {@code nix path-info})
     * then opens no stream at all — a paused stream costs more than its window, as the
     * upstream's sends fill the socket buffers on both sides before the pause bites.
     */
    private boolean downloadedWithin(long now) {
        long last = lastDownload;
        return last != Long.MIN_VALUE && now - last >= 0 && now - last < ttlMillis;
    }

    /** Opens the head start if the upstream's slots and the limit allow; false when they do not. */
    private boolean open(String target, Upstream home, BiFunction<NarRequest, NarHandler, NarStream> opener, long now) {
        if (waiting.size() >= Defaults.HEAD_START_MAX) return false;
        AsyncLimiter gate = streamGates.apply(home);
        if (gate.queued() > 0 || gate.inUse() >= gate.permits() / 2) return false;
        // a paused stream meets its stall limit: the head start ends well before it, or a healthy
        // upstream would be counted as failing
        java.time.Duration stall = home.responseTimeout() != null ? home.responseTimeout() : stallLimit;
        long lifetime = Math.min(ttlMillis, stall.toMillis() / 2);
        if (lifetime < 1) return true;
        Waiting w = new Waiting(target, now, lifetime);
        try {
            // the stream exists before anyone can claim it; it is started once registered
            w.stream = opener.apply(new NarRequest(target, false, Map.of()), w);
        } catch (RuntimeException e) {
            LOG.debug("no head start for {}: {}", target, e.toString());
            return true;
        }
        if (waiting.putIfAbsent(target, w) != null) return true;
        guard.fetched(Defaults.STREAM_WINDOW_BYTES);
        try {
            w.timer = scheduler.schedule(() -> expire(w), lifetime, TimeUnit.MILLISECONDS);
            w.stream.start();
        } catch (RuntimeException e) {
            LOG.debug("no head start for {}: {}", target, e.toString());
            if (waiting.remove(target, w)) w.drop("could not start");
        }
        return true;
    }

    /** A candidate the guard, busy slots or the limit held back. */
    private record Held(String target, Upstream home, BiFunction<NarRequest, NarHandler, NarStream> opener, long at) {}

    private void hold(Held h) {
        synchronized (held) {
            held.remove(h.target());
            held.put(h.target(), h);
            java.util.Iterator<Held> oldest = held.values().iterator();
            while (held.size() > Defaults.HEAD_START_MAX_HELD && oldest.hasNext()) {
                oldest.next();
                oldest.remove();
            }
        }
    }

    /**
     * A client downloads {@code target}: the candidates held back within the TTL get their head
     * start now, the newest first (a Nix client downloads a closure's deepest paths first, and
     * read their narinfos last), as far as the limit and the upstreams' slots allow; the others
     * are forgotten. As with read-ahead's held-back NARs, this passes the guard: a download shows
     * that the narinfos just served were not a mere query.
     */
    void downloading(String target) {
        if (!enabled) return;
        noteDownload();
        List<Held> released;
        synchronized (held) {
            held.remove(target);
            if (held.isEmpty()) return;
            released = new java.util.ArrayList<>(held.values());
            held.clear();
        }
        long now = clock.millis();
        for (int i = released.size() - 1; i >= 0; i--) {
            Held h = released.get(i);
            long age = now - h.at();
            if (age < 0 || age >= ttlMillis || waiting.containsKey(h.target())) continue;
            open(h.target(), h.home(), h.opener(), now); // too many, or its upstream busy: forgotten
        }
    }

    /** Whether {@code target} was considered less than a second ago: nothing to decide (the hot narinfo path). */
    boolean consideredRecently(String target) {
        return !enabled || considered.within(target, ReadAhead.SETTLED_MS);
    }

    private void expire(Waiting w) {
        if (waiting.remove(w.target, w)) dropExpired(w);
    }

    /** A head start no download took within its lifetime: counted, and cancelled. */
    private void dropExpired(Waiting w) {
        metrics.headStarts.labelValues("expired").inc();
        w.drop("not downloaded within " + w.lifetime + " ms");
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
        if (age < 0 || age >= w.lifetime) {
            dropExpired(w);
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

    /** A client downloads a NAR: from now on, for the TTL, head starts open as narinfos are served. */
    void noteDownload() {
        lastDownload = clock.millis();
    }

    /** Head starts waiting, for tests. */
    int waitingCount() {
        return waiting.size();
    }

    /** Cancels every waiting head start (the engine stops). */
    void clear() {
        considered.clear();
        synchronized (held) {
            held.clear();
        }
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
        /** How long it may wait for its download, in ms. */
        final long lifetime;
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
        private volatile boolean cancelled;

        Waiting(String target, long startedAt, long lifetime) {
            this.target = target;
            this.startedAt = startedAt;
            this.lifetime = lifetime;
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
                    // nothing more reaches the client (what is queued is given back), and no
                    // fresh stream starts for it
                    cancelled = true;
                    NarStream f = fallback;
                    if (f != null) f.cancel();
                    discardAll();
                }
            };
        }

        private void attach(NarHandler handler) {
            synchronized (this) {
                if (!cancelled) taker = handler;
            }
            drain();
        }

        /** Dropped (expired, failed, stopping): the stream is cancelled and every byte it held given back. */
        void drop(String why) {
            LOG.debug("head start of {} dropped: {}", target, why);
            discardAll();
        }

        /** Cancels the stream; what it delivered and still delivers is given back, not handed on. */
        private void discardAll() {
            synchronized (this) {
                taker = new Discarder();
            }
            stream.cancel();
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
                    for (Event e; (e = events.poll()) != null; ) {
                        try {
                            deliver(h, e);
                        } catch (RuntimeException x) {
                            // never leaves the loop stuck: later events still flow (or are given back)
                            LOG.warn("head start of {}: handing on {} failed: {}", target, e.getClass().getSimpleName(), x.toString());
                        }
                    }
                }
            } while (draining.decrementAndGet() != 0);
        }

        private void deliver(NarHandler h, Event e) {
            if (fallback != null) {
                // the client is served by a fresh stream: what this one still delivers is given back
                if (e instanceof Data d) stream.release(d.buffer().remaining());
                return;
            }
            if (!headPassed && !cancelled && !(h instanceof Discarder) && (e instanceof Failure
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
                if (cancelled) {
                    fresh.cancel(); // the client left meanwhile
                    return;
                }
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
