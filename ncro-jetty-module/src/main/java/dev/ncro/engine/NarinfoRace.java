package dev.ncro.engine;

import dev.ncro.api.NarinfoAnswer;
import dev.ncro.config.Defaults;
import dev.ncro.config.Durations;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Fetched;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One narinfo lookup. Stage by stage (the priority tiers, lowest number first, then a last
 * resort of upstreams that are cooling down after a failure or whose Down state is not yet
 * confirmed in this run), every upstream of a stage is asked with a GET at once; the first
 * valid narinfo wins. The GET (not HEAD, then GET) makes a cold lookup cost one round trip
 * to the winner. Losers are not cancelled: their answers still sample latency, and their
 * connections go back to the pool instead of being closed.
 *
 * <p>The answer is 404 only when every upstream asked said not-found (404, 410, or 403 from
 * an upstream without a login); upstreams left out are only those confirmed Down by a probe
 * of this run. When an upstream failed and none had the path the answer is 502, or 504 when
 * the deadline passed: Nix remembers a 404 for an hour, and an upstream that was merely down
 * must not hide a path for that long.
 *
 * <p>Threads: answers arrive on the client's I/O threads and are handed to {@code executor}
 * at once, where parsing, signature checks and remembering run; the deadline fires on the
 * scheduler, where it only decides and completes the answer. Decisions are taken under {@code this}, actions (starting
 * requests, telling the observer, completing the answer) after releasing it.
 */
final class NarinfoRace {
    /** Told what each upstream did; the winner before the answer completes, so it is remembered first. */
    interface Observer {
        /** @return the narinfo bytes to serve (the upstream's, or with its URL made relative) */
        byte[] won(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs);

        /** An upstream answered (any HTTP status) {@code latencyMs} after its request was sent. */
        void answered(Upstream upstream, int status, double latencyMs);

        /** An upstream failed without an HTTP answer (refused, reset, timed out). */
        void failed(Upstream upstream, Exception failure);

        /** Why this upstream's narinfo must not be cached or served, or null when it is trusted. */
        String distrust(Upstream upstream, Narinfo narinfo);

        /** Why this upstream's filters exclude the path (it then counts as not having it), or null. */
        String filtered(Upstream upstream, Narinfo narinfo);

        /** Whether a 403 from this upstream is a failure (it has a login) rather than "not here". */
        boolean hasLogin(Upstream upstream);

        /** How long a last-resort request to this (cooling) upstream may take. */
        Duration lastResortTimeout(Upstream upstream);
    }

    private static final Logger LOG = LoggerFactory.getLogger(NarinfoRace.class);
    private static final Duration DEADLINE_GRACE = Duration.ofMillis(250);

    private final String hash;
    private final UpstreamClient client;
    private final Duration deadline;
    private final long deadlineAtNanos;
    private final Observer observer;
    /** Each upstream's in-flight limit: a request waits for a slot rather than failing. */
    private final Function<Upstream, AsyncLimiter> gates;
    private final Executor executor;
    private final CompletableFuture<NarinfoAnswer> result = new CompletableFuture<>();
    private final AtomicBoolean finished = new AtomicBoolean();

    // guarded by this
    private List<List<Upstream>> stages = List.of();
    private boolean lastResort;
    private Runnable enteringLastResort = () -> { };
    private int stage = -1;
    private final List<String> failures = new ArrayList<>();
    /** Who said not-found, and how (guarded by this): named in a 404's body, so a 404 always says where it came from. */
    private final List<String> notFoundBy = new ArrayList<>();
    private final Set<Upstream> waiting = new LinkedHashSet<>();
    private final Set<Outcome> live = new java.util.HashSet<>();
    private Scheduler.Task deadlineTask;
    private volatile Scheduler scheduler;

    /** The deadline counts from now, the start of the lookup, whatever queueing follows. */
    NarinfoRace(String hash, UpstreamClient client, Duration deadline, Observer observer,
            Function<Upstream, AsyncLimiter> gates, Executor executor) {
        this.hash = hash;
        this.client = client;
        this.deadline = deadline;
        this.deadlineAtNanos = System.nanoTime() + deadline.toNanos();
        this.observer = observer;
        this.gates = gates;
        this.executor = executor;
    }

    CompletableFuture<NarinfoAnswer> result() {
        return result;
    }

    /** Arms the deadline; call once, before {@link #begin}. */
    void armDeadline(Scheduler scheduler) {
        this.scheduler = scheduler;
        // runs on the timer thread itself: it only decides and completes (no I/O, no locks others
        // hold long), so a busy worker pool can never make a deadline late
        Scheduler.Task task = scheduler.schedule(this::onDeadline,
                Math.max(0, deadlineAtNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        synchronized (this) {
            deadlineTask = task;
        }
        if (finished.get()) task.cancel();
    }

    /**
     * Starts asking: {@code stages} in order, each a non-empty list of upstreams asked at once.
     * A race whose deadline passed while it waited to begin does nothing.
     */
    void begin(List<List<Upstream>> stages, boolean endsWithLastResort, Runnable enteringLastResort) {
        synchronized (this) {
            this.stages = stages;
            this.lastResort = endsWithLastResort;
            this.enteringLastResort = enteringLastResort;
        }
        advance();
    }

    /** Starts the next stage, or answers when none is left. */
    private void advance() {
        List<Upstream> members;
        boolean shortLeash;
        synchronized (this) {
            if (finished.get()) return;
            shortLeash = lastResort && stage + 1 == stages.size() - 1;
            if (++stage < stages.size()) {
                members = stages.get(stage);
                waiting.addAll(members); // every upstream is in one stage only: the stage is over when this empties
            } else {
                members = null;
            }
        }
        if (members == null) {
            missed();
            return;
        }
        if (shortLeash) enteringLastResort.run();
        for (Upstream upstream : members) {
            AsyncLimiter gate = gates.apply(upstream);
            if (!shortLeash) {
                gate.run(() -> launch(upstream, gate, Long.MAX_VALUE));
                continue;
            }
            // a cooling upstream gets a short leash, counted from now, queueing for a slot
            // included: a frozen one must not cost every miss the deadline, and one that is
            // back answers every miss, however many arrive at once
            long leashEnds = System.nanoTime() + observer.lastResortTimeout(upstream).toNanos();
            Runnable task = () -> launch(upstream, gate, leashEnds);
            gate.run(task);
            Scheduler s = scheduler;
            if (s != null) {
                s.schedule(() -> executor.execute(() -> {
                    if (gate.withdraw(task)) settle(upstream, false, "cooling down, and no request slot free within its leash");
                }), Math.max(0, leashEnds - System.nanoTime()), TimeUnit.NANOSECONDS);
            }
        }
    }

    /** Sends one upstream's request once it holds a slot of that upstream's limit. */
    /** @param leashEnds when a last-resort request must have been answered (nanoTime), or Long.MAX_VALUE */
    private void launch(Upstream upstream, AsyncLimiter gate, long leashEnds) {
        long now = System.nanoTime();
        long remaining = deadlineAtNanos - now;
        if (finished.get() || remaining <= 0) {
            gate.release(); // the race ended while this request waited for a slot
            return;
        }
        // the race's own deadline decides (504), not the client's timeout racing it (502)
        Duration timeout = upstream.answerWithin(Duration.ofNanos(remaining).plus(DEADLINE_GRACE));
        if (leashEnds != Long.MAX_VALUE) {
            long leash = leashEnds - now;
            if (leash <= 0) {
                gate.release();
                settle(upstream, false, "cooling down, and no request slot free within its leash");
                return;
            }
            if (leash < timeout.toNanos()) timeout = Duration.ofNanos(leash);
        }
        long sentAt = System.nanoTime();
        try {
            client.fetch(upstream, upstream.resolve(hash + ".narinfo"), Defaults.NARINFO_MAX_BYTES,
                    timeout, new Outcome(upstream, gate, sentAt));
        } catch (RuntimeException e) {
            // the client refused the request (it is stopping): that upstream failed
            gate.release();
            settle(upstream, false, describe(e));
        }
    }

    /** An upstream is done with this race without winning it. */
    private void settle(Upstream upstream, boolean notFound, String failure) {
        boolean stageOver;
        synchronized (this) {
            boolean wasWaiting = waiting.remove(upstream);
            if (finished.get() || !wasWaiting) return; // decided, or this upstream already settled
            if (!notFound) {
                failures.add(upstream.name() + ": " + failure);
            } else if (failure != null) {
                notFoundBy.add(upstream.name() + ": " + failure);
            }
            stageOver = waiting.isEmpty();
        }
        if (stageOver) advance();
    }

    private void win(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs) {
        synchronized (this) {
            waiting.remove(upstream);
        }
        if (!finished.compareAndSet(false, true)) return;
        NarinfoAnswer answer = null;
        try {
            answer = new NarinfoAnswer(200, observer.won(upstream, narinfo, body, latencyMs), upstream.name());
        } catch (RuntimeException e) {
            LOG.error("narinfo {}: remembering the winner from {} failed", hash, upstream, e);
            answer = new NarinfoAnswer(502, ("narinfo " + hash + ": ncro failed to keep " + upstream + "'s answer\n")
                    .getBytes(StandardCharsets.UTF_8), null);
        } finally {
            if (answer == null) answer = new NarinfoAnswer(502, new byte[0], null);
            complete(answer);
        }
    }

    /** Every stage is over and nobody had the path. */
    private void missed() {
        String failed;
        String said;
        synchronized (this) {
            failed = String.join("; ", failures);
            said = String.join("; ", notFoundBy);
        }
        if (failed.isEmpty()) {
            fail(404, "not found in any upstream" + (said.isEmpty() ? "" : " (" + said + ")"));
        } else {
            fail(502, "no upstream has " + hash + ".narinfo and some failed: " + failed);
        }
    }

    private void onDeadline() {
        List<Upstream> slow;
        String failed;
        synchronized (this) {
            if (finished.get()) return;
            slow = List.copyOf(waiting);
            failed = String.join("; ", failures);
        }
        if (!finished.compareAndSet(false, true)) return;
        for (Upstream u : slow) observer.failed(u, new TimeoutException("no answer within the race deadline"));
        answer(504, "deadline of " + Durations.format(deadline) + " passed waiting for " + slow
                + (failed.isEmpty() ? "" : "; failures: " + failed));
    }

    private void fail(int status, String message) {
        if (!finished.compareAndSet(false, true)) return;
        answer(status, message);
    }

    private void answer(int status, String message) {
        if (status != 404) LOG.warn("narinfo {}: {} {}", hash, status, message);
        complete(new NarinfoAnswer(status, (message + "\n").getBytes(StandardCharsets.UTF_8), null));
    }

    private void complete(NarinfoAnswer answer) {
        Scheduler.Task task;
        List<Outcome> losers;
        synchronized (this) {
            task = deadlineTask;
            losers = List.copyOf(live);
        }
        if (task != null) task.cancel();
        // the race is decided: requests still running only sample latency now, so they give
        // back their upstream's in-flight slot rather than hold it against the next lookups
        for (Outcome loser : losers) loser.release();
        result.complete(answer);
    }

    /** One upstream's request; the callbacks come on an I/O thread and move to the executor. */
    private final class Outcome implements FutureCallback<Fetched> {
        private final Upstream upstream;
        private final AsyncLimiter gate;
        private final long sentAt;
        private final AtomicBoolean released = new AtomicBoolean();

        Outcome(Upstream upstream, AsyncLimiter gate, long sentAt) {
            this.upstream = upstream;
            this.gate = gate;
            this.sentAt = sentAt;
            synchronized (NarinfoRace.this) {
                live.add(this);
            }
        }

        /** First thing in every callback (see AsyncLimiter); also when the race is decided. */
        private void release() {
            if (released.compareAndSet(false, true)) {
                synchronized (NarinfoRace.this) {
                    live.remove(this);
                }
                gate.release();
            }
        }

        @Override
        public void completed(Fetched fetched) {
            release();
            double latencyMs = (System.nanoTime() - sentAt) / 1e6;
            executor.execute(() -> handle(fetched, latencyMs));
        }

        @Override
        public void failed(Exception ex) {
            release();
            executor.execute(() -> {
                observer.failed(upstream, ex);
                settle(upstream, false, describe(ex));
            });
        }

        @Override
        public void cancelled() {
            release(); // only a stopping client cancels
            executor.execute(() -> settle(upstream, false, "request cancelled"));
        }

        private void handle(Fetched fetched, double latencyMs) {
            int status = fetched.status();
            observer.answered(upstream, status, latencyMs);
            if (finished.get()) {
                settle(upstream, true, null); // a loser: its answer only sampled latency
                return;
            }
            if (status == 200) {
                Narinfo narinfo;
                try {
                    narinfo = Narinfo.parse(fetched.body(), hash);
                } catch (Narinfo.InvalidNarinfoException e) {
                    LOG.warn("narinfo {} from {} rejected: {}", hash, upstream, e.getMessage());
                    settle(upstream, false, "invalid narinfo: " + e.getMessage());
                    return;
                }
                String filtered = observer.filtered(upstream, narinfo);
                if (filtered != null) {
                    LOG.info("narinfo {} from {} not used: {}", hash, upstream, filtered);
                    settle(upstream, true, "filtered: " + filtered);
                    return;
                }
                String distrust = observer.distrust(upstream, narinfo);
                if (distrust != null) {
                    LOG.warn("narinfo {} from {} rejected: {}", hash, upstream, distrust);
                    settle(upstream, false, "rejected narinfo: " + distrust);
                    return;
                }
                win(upstream, narinfo, fetched.body(), latencyMs);
            } else if (NotFound.means(status, observer.hasLogin(upstream))) {
                settle(upstream, true, "HTTP " + status);
            } else {
                settle(upstream, false, "HTTP " + status);
            }
        }
    }

    /**
     * What failed, in words a client or an operator reads (error bodies, log lines), not the
     * Java class: "cannot resolve cache.example.org", "connection refused", "timed out".
     */
    static String describe(Throwable ex) {
        Throwable e = ex instanceof java.util.concurrent.CompletionException && ex.getCause() != null ? ex.getCause() : ex;
        String message = e.getMessage();
        String detail = message == null || message.isBlank() ? "" : ": " + message;
        if (e instanceof java.net.UnknownHostException) return "cannot resolve host" + detail;
        if (e instanceof java.net.ConnectException) return "connection refused" + detail;
        if (e instanceof java.net.SocketTimeoutException || e instanceof java.util.concurrent.TimeoutException) return "timed out" + detail;
        if (e instanceof javax.net.ssl.SSLException) return "TLS failed" + detail;
        if (e instanceof org.apache.hc.core5.http.ConnectionClosedException
                || e instanceof org.apache.hc.core5.http.NoHttpResponseException) return "connection closed before a whole answer" + detail;
        if (e instanceof java.net.SocketException) return "connection failed" + detail;
        if (e instanceof java.io.IOException) return "I/O error" + detail;
        return message == null || message.isBlank() ? "internal error (see ncro's log)" : message;
    }
}
