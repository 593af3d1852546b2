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
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import org.apache.hc.core5.concurrent.Cancellable;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One narinfo lookup: tier by tier (lowest priority number first), every upstream of a tier
 * is asked with a GET at once; the first valid narinfo wins and the others are cancelled. The
 * GET (not HEAD, then GET) makes a cold lookup cost one round trip to the winner.
 *
 * <p>The answer is 404 only when every upstream said not-found (404, 410, 403). When an
 * upstream failed and none had the path the answer is 502, or 504 if the deadline passed:
 * Nix remembers a 404 for an hour, and an upstream that was merely down must not hide a path
 * for that long.
 *
 * <p>All state is guarded by {@code this}; callbacks arrive on I/O threads and the timer.
 */
final class NarinfoRace {
    /** Told what each upstream did; the winner before the answer completes, so it is remembered first. */
    interface Observer {
        /** @return the narinfo bytes to serve (the upstream's, or with its URL made relative) */
        byte[] won(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs);

        /** An upstream answered (any HTTP status) after {@code latencyMs}. */
        void answered(Upstream upstream, int status, double latencyMs);

        /** An upstream failed without an HTTP answer (refused, reset, timed out). */
        void failed(Upstream upstream, Exception failure);

        /** Why this upstream's narinfo must not be cached or served, or null when it is trusted. */
        String distrust(Upstream upstream, Narinfo narinfo);

        /** Why this upstream's filters exclude the path (it then counts as not having it), or null. */
        String filtered(Upstream upstream, Narinfo narinfo);
    }

    private static final Logger LOG = LoggerFactory.getLogger(NarinfoRace.class);

    private final String hash;
    private final List<List<Upstream>> tiers;
    private final UpstreamClient client;
    private final Duration deadline;
    private final Observer observer;
    private final List<Upstream> cooling;
    /** Each upstream's in-flight limit: a request waits for a slot rather than failing. */
    private final Function<Upstream, AsyncLimiter> gates;
    private long tierStartNanos;
    private final CompletableFuture<NarinfoAnswer> result = new CompletableFuture<>();

    private int tier = -1;
    private int pending;
    private final Map<Upstream, Cancellable> inflight = new LinkedHashMap<>();
    private final List<String> failures = new ArrayList<>();
    private final Set<Upstream> settled = new HashSet<>();
    private boolean starting;
    private ScheduledFuture<?> timer;

    /**
     * @param cooling upstreams left out because they are cooling down after a recent failure:
     *     if nobody raced has the path, they may, so the answer is then 502, not 404
     */
    NarinfoRace(String hash, List<List<Upstream>> tiers, List<Upstream> cooling, UpstreamClient client,
            Duration deadline, Observer observer, Function<Upstream, AsyncLimiter> gates) {
        this.gates = gates;
        this.cooling = cooling;
        this.hash = hash;
        this.tiers = tiers;
        this.client = client;
        this.deadline = deadline;
        this.observer = observer;
    }

    CompletableFuture<NarinfoAnswer> start(ScheduledExecutorService scheduler) {
        synchronized (this) {
            timer = scheduler.schedule(this::onDeadline, deadline.toNanos(), TimeUnit.NANOSECONDS);
            nextTier();
        }
        return result;
    }

    /**
     * Starts the next tier, or finishes when none is left. Caller holds the lock. A callback
     * may run inside {@code fetch} on this very thread: {@code starting} keeps it from
     * advancing tiers under the loop, and {@code settled} from leaving a stale in-flight entry.
     */
    private void nextTier() {
        while (!result.isDone() && ++tier < tiers.size()) {
            List<Upstream> members = tiers.get(tier);
            pending = members.size();
            tierStartNanos = System.nanoTime();
            settled.clear();
            starting = true;
            for (Upstream upstream : members) {
                if (result.isDone()) break;
                AsyncLimiter gate = gates.apply(upstream);
                gate.run(() -> launch(upstream, gate));
            }
            starting = false;
            if (pending > 0) return;
        }
        if (result.isDone()) return;
        if (failures.isEmpty() && cooling.isEmpty()) {
            finish(404, "not found in any upstream", null);
        } else if (failures.isEmpty()) {
            finish(502, "no upstream raced has " + hash + ".narinfo; not asked after a recent failure: " + cooling, null);
        } else {
            finish(502, "no upstream has " + hash + ".narinfo and some failed: " + String.join("; ", failures), null);
        }
    }

    /** Sends one upstream's request once it holds a slot of that upstream's limit. */
    private void launch(Upstream upstream, AsyncLimiter gate) {
        boolean skip;
        synchronized (this) {
            skip = result.isDone();
            if (!skip) {
                try {
                    Cancellable exchange = client.fetch(upstream, upstream.resolve(hash + ".narinfo"),
                            Defaults.NARINFO_MAX_BYTES, upstream.answerWithin(deadline), new Outcome(upstream, gate));
                    if (result.isDone()) exchange.cancel();
                    else if (!settled.contains(upstream)) inflight.put(upstream, exchange);
                } catch (RuntimeException e) {
                    // the client refused the request (it is stopping): that upstream failed
                    gate.release();
                    failures.add(upstream.name() + ": " + describe(e));
                    if (--pending == 0 && !starting) nextTier();
                }
            }
        }
        if (skip) gate.release(); // the race ended while this request waited for a slot
    }

    private synchronized void settle(Upstream upstream, boolean notFound, String failure) {
        inflight.remove(upstream);
        settled.add(upstream);
        if (result.isDone()) return;
        if (!notFound) failures.add(upstream.name() + ": " + failure);
        if (--pending == 0 && !starting) nextTier();
    }

    private synchronized void win(Upstream upstream, Narinfo narinfo, byte[] body) {
        inflight.remove(upstream);
        settled.add(upstream);
        if (result.isDone()) return;
        byte[] served = observer.won(upstream, narinfo, body, (System.nanoTime() - tierStartNanos) / 1e6);
        finish(200, null, upstream, served);
    }

    private synchronized void onDeadline() {
        if (result.isDone()) return;
        String waiting = inflight.keySet().toString();
        for (Upstream slow : inflight.keySet()) {
            observer.failed(slow, new TimeoutException("no answer within the race deadline"));
        }
        finish(504, "deadline of " + Durations.format(deadline) + " passed waiting for " + waiting
                + (failures.isEmpty() ? "" : "; failures: " + String.join("; ", failures)), null);
    }

    private void finish(int status, String message, Upstream winner) {
        if (status != 404) LOG.warn("narinfo {}: {} {}", hash, status, message);
        finish(status, message, winner, (message + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private void finish(int status, String message, Upstream winner, byte[] body) {
        if (timer != null) timer.cancel(false);
        for (Cancellable loser : inflight.values()) loser.cancel();
        inflight.clear();
        result.complete(new NarinfoAnswer(status, body, winner == null ? null : winner.name()));
    }

    private final class Outcome implements FutureCallback<Fetched> {
        private final Upstream upstream;
        private final AsyncLimiter gate;
        private final AtomicBoolean released = new AtomicBoolean();

        Outcome(Upstream upstream, AsyncLimiter gate) {
            this.upstream = upstream;
            this.gate = gate;
        }

        /** First thing in every callback, outside the race's lock (see AsyncLimiter). */
        private void release() {
            if (released.compareAndSet(false, true)) gate.release();
        }

        @Override
        public void completed(Fetched fetched) {
            release();
            int status = fetched.status();
            observer.answered(upstream, status, (System.nanoTime() - tierStartNanos) / 1e6);
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
                    settle(upstream, true, null);
                    return;
                }
                String distrust = observer.distrust(upstream, narinfo);
                if (distrust != null) {
                    LOG.warn("narinfo {} from {} rejected: {}", hash, upstream, distrust);
                    settle(upstream, false, "rejected narinfo: " + distrust);
                    return;
                }
                win(upstream, narinfo, fetched.body());
            } else if (status == 404 || status == 410 || status == 403) {
                settle(upstream, true, null);
            } else {
                settle(upstream, false, "HTTP " + status);
            }
        }

        @Override
        public void failed(Exception ex) {
            release();
            observer.failed(upstream, ex);
            settle(upstream, false, describe(ex));
        }

        @Override
        public void cancelled() {
            release(); // only the race itself cancels, after it has an answer
        }
    }

    static String describe(Throwable ex) {
        String name = ex.getClass().getSimpleName();
        return ex.getMessage() == null ? name : name + ": " + ex.getMessage();
    }
}
