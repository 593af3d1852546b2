package dev.ncro.health;

import dev.ncro.upstream.Fetched;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Probes every upstream with {@code HEAD /nix-cache-info} (GET once an upstream refuses HEAD
 * with 405 or 501) every {@code interval} times its state's backoff (×1, ×4, ×10); at once at
 * start when its restored state is not Active (until probed it is only a hint). A
 * server-level lifecycle bean. Each probe is a small task that catches everything and always
 * schedules the next one: an exception must not silently end an upstream's probing.
 *
 * <p>The timer thread only hands a due probe to the worker executor; requests are sent, and
 * answers handled, there.
 */
public final class ProbeScheduler extends AbstractLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(ProbeScheduler.class);
    private static final int MAX_BYTES = 4096;

    /** Traffic-triggered probes of one upstream start at most this often. */
    static final Duration SUSPECT_GAP = Duration.ofSeconds(1);

    /** An upstream and its health record. */
    public record Target(Upstream upstream, UpstreamHealth health) {}

    /** A target's schedule; guarded by itself. */
    private static final class Schedule {
        final Target target;
        long generation;
        boolean probing;
        /** Traffic saw a failure while a probe was running: probe again once it is done. */
        boolean suspectedWhileProbing;
        boolean started;
        long lastStart;
        CompletableFuture<Void> owed;

        Schedule(Target target) {
            this.target = target;
        }
    }

    private final java.time.InstantSource clock;
    /** Every target's schedule; discovered upstreams are added and removed while running. */
    private final Map<Upstream, Schedule> schedules = new ConcurrentHashMap<>();
    private final UpstreamClient client;
    private final Duration interval;
    private final Duration timeout;
    private final Scheduler timer;
    private final Executor executor;
    private final java.util.function.Consumer<UpstreamHealth> probed;
    private final Map<Upstream, Boolean> headRefused = new ConcurrentHashMap<>();
    private final Map<Upstream, Scheduler.Task> scheduled = new ConcurrentHashMap<>();
    private volatile CompletableFuture<Void> startProbes = CompletableFuture.completedFuture(null);

    /**
     * @param probed told after every probe (persists the health); runs on {@code executor}
     */
    public ProbeScheduler(List<Target> targets, UpstreamClient client, Duration interval, Duration timeout,
            Scheduler timer, Executor executor, java.util.function.Consumer<UpstreamHealth> probed) {
        this(targets, client, interval, timeout, timer, executor, probed, java.time.InstantSource.system());
    }

    /** @param clock for the spacing of traffic-triggered probes */
    public ProbeScheduler(List<Target> targets, UpstreamClient client, Duration interval, Duration timeout,
            Scheduler timer, Executor executor, java.util.function.Consumer<UpstreamHealth> probed,
            java.time.InstantSource clock) {
        this.clock = clock;
        this.executor = executor;
        this.probed = probed;
        for (Target t : targets) schedules.put(t.upstream(), new Schedule(t));
        this.client = client;
        this.interval = interval;
        this.timeout = timeout;
        this.timer = timer;
    }

    /**
     * An upstream whose Degraded or Down state was restored from the database is probed at
     * once (until then that state is only a hint); the others one interval after start (races
     * sample their latency before that).
     */
    @Override
    protected void doStart() {
        List<CompletableFuture<Void>> first = new java.util.ArrayList<>();
        for (Schedule s : schedules.values()) {
            Target t = s.target;
            if (t.health().unconfirmed()) {
                CompletableFuture<Void> done = new CompletableFuture<>();
                first.add(done);
                schedule(t, Duration.ZERO, done);
            } else {
                schedule(t, interval, null);
            }
        }
        startProbes = CompletableFuture.allOf(first.toArray(CompletableFuture[]::new));
    }

    /** Probes a discovered upstream now, then on its own schedule like the configured ones. */
    public void add(Target target) {
        if (schedules.putIfAbsent(target.upstream(), new Schedule(target)) == null) schedule(target, Duration.ZERO, null);
    }

    /** Stops probing an upstream that went away; a probe under way ends and schedules nothing. */
    public void remove(Upstream upstream) {
        schedules.remove(upstream);
        Scheduler.Task task = scheduled.remove(upstream);
        if (task != null) task.cancel();
    }

    /** Completes when the probes made at start (of restored Degraded or Down states) have answered or failed. */
    public CompletableFuture<Void> startProbes() {
        return startProbes;
    }

    @Override
    protected void doStop() {
        scheduled.values().forEach(Scheduler.Task::cancel);
        scheduled.clear();
    }

    /**
     * Traffic saw {@code upstream} fail: probe it now rather than at its next turn, so that a
     * dead upstream is confirmed Down (and its misses answered 404) in seconds, not in a
     * quarter of an hour of backed-off probes. At most one probe at a time, and one start
     * per {@link #SUSPECT_GAP} at most.
     */
    public void suspect(Upstream upstream) {
        Schedule s = schedules.get(upstream);
        if (s == null || !isRunning()) return;
        long now = clock.millis();
        synchronized (s) {
            if (s.probing) {
                // its outcome may already be counted: this failure must not be lost with it
                s.suspectedWhileProbing = true;
                return;
            }
            if (s.started && now - s.lastStart < SUSPECT_GAP.toMillis()) return;
        }
        schedule(s.target, Duration.ZERO, null);
    }

    /**
     * Schedules the target's next probe, replacing any scheduled one: a superseded task
     * finds its generation stale and does nothing, so one chain of probes runs per upstream.
     *
     * @param probed completed after this probe, or null
     */
    private void schedule(Target t, Duration delay, CompletableFuture<Void> probed) {
        if (!isRunning() && !isStarting()) return;
        Schedule s = schedules.get(t.upstream());
        if (s == null || s.target != t) return; // removed
        long generation;
        CompletableFuture<Void> owed;
        synchronized (s) {
            generation = ++s.generation;
            // a superseded schedule's caller (startProbes) is owed this probe's completion instead
            owed = probed != null ? probed : s.owed;
            s.owed = owed;
        }
        CompletableFuture<Void> notify = owed;
        Scheduler.Task previous = scheduled.put(t.upstream(), timer.schedule(() -> executor.execute(() -> {
            if (schedules.get(t.upstream()) != s) { // removed while due
                if (notify != null) notify.complete(null);
                return;
            }
            synchronized (s) {
                if (s.generation != generation) return; // superseded: the newer one completes what is owed
                if (s.probing) {
                    if (notify != null) notify.complete(null);
                    return;
                }
                s.owed = null;
                s.probing = true;
                s.started = true;
                s.lastStart = clock.millis();
            }
            try {
                probe(t).whenComplete((ok, failure) -> {
                    boolean again;
                    long sinceStart;
                    synchronized (s) {
                        s.probing = false;
                        again = s.suspectedWhileProbing;
                        s.suspectedWhileProbing = false;
                        sinceStart = clock.millis() - s.lastStart;
                    }
                    if (notify != null) notify.complete(null);
                    // a failure seen meanwhile gets its probe, still one start per SUSPECT_GAP at most
                    schedule(t, again ? Duration.ofMillis(Math.max(0, SUSPECT_GAP.toMillis() - Math.max(0, sinceStart)))
                            : t.health().nextProbeIn(interval), null);
                });
            } catch (RuntimeException e) {
                synchronized (s) {
                    s.probing = false;
                }
                LOG.warn("probe of {} could not start: {}", t.upstream(), e.toString());
                if (notify != null) notify.complete(null);
                schedule(t, t.health().nextProbeIn(interval), null);
            }
        }), delay.toMillis(), TimeUnit.MILLISECONDS));
        if (previous != null) previous.cancel();
    }

    /** Probes every upstream once, now; completes when all have answered or failed. */
    public CompletableFuture<Void> probeAll() {
        return CompletableFuture.allOf(schedules.values().stream().map(s -> s.target).map(this::probe).toArray(CompletableFuture[]::new));
    }

    /** One probe; never completes exceptionally. */
    public CompletableFuture<Void> probe(Target t) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        send(t, headRefused.containsKey(t.upstream()) ? "GET" : "HEAD", done);
        return done;
    }

    private void send(Target t, String method, CompletableFuture<Void> done) {
        long start = System.nanoTime();
        UpstreamState before = t.health().state();
        try {
            client.request(t.upstream(), method, t.upstream().resolve("nix-cache-info"), MAX_BYTES, timeout, new FutureCallback<Fetched>() {
                @Override
                public void completed(Fetched answer) {
                    executor.execute(() -> answered(answer));
                }

                private void answered(Fetched answer) {
                    int status = answer.status();
                    if (method.equals("HEAD") && (status == 405 || status == 501)) {
                        headRefused.put(t.upstream(), Boolean.TRUE);
                        send(t, "GET", done);
                        return;
                    }
                    if (status >= 200 && status < 300) {
                        t.health().probeSucceeded((System.nanoTime() - start) / 1e6);
                    } else {
                        t.health().probeFailed();
                    }
                    finish(t, before, "HTTP " + status, done);
                }

                @Override
                public void failed(Exception ex) {
                    executor.execute(() -> {
                        t.health().probeFailed();
                        finish(t, before, ex.toString(), done);
                    });
                }

                @Override
                public void cancelled() {
                    done.complete(null);
                }
            });
        } catch (RuntimeException e) {
            t.health().probeFailed();
            finish(t, before, e.toString(), done);
        }
    }

    private void finish(Target t, UpstreamState before, String outcome, CompletableFuture<Void> done) {
        try {
            probed.accept(t.health());
        } catch (RuntimeException e) {
            LOG.warn("after probing {}: {}", t.upstream(), e.toString());
        }
        UpstreamState after = t.health().state();
        if (after != before) {
            LOG.warn("upstream {} is now {} (was {}; last probe: {})", t.upstream(), after.label(), before.label(), outcome);
        }
        done.complete(null);
    }
}
