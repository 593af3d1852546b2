package dev.ncro.health;

import dev.ncro.upstream.Fetched;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Probes every upstream with {@code HEAD /nix-cache-info} (GET once an upstream refuses HEAD
 * with 405 or 501), every {@code interval} times its state's backoff (×1, ×4, ×10). A
 * server-level lifecycle bean. Each probe is a small task that catches everything and always
 * schedules the next one: an exception must not silently end an upstream's probing.
 */
public final class ProbeScheduler extends AbstractLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(ProbeScheduler.class);
    private static final int MAX_BYTES = 4096;

    /** An upstream and its health record. */
    public record Target(Upstream upstream, UpstreamHealth health) {}

    private final List<Target> targets;
    private final UpstreamClient client;
    private final Duration interval;
    private final Duration timeout;
    private final Supplier<ScheduledExecutorService> timer;
    private final java.util.function.Consumer<UpstreamHealth> probed;
    private final Map<Upstream, Boolean> headRefused = new ConcurrentHashMap<>();
    private final Map<Upstream, ScheduledFuture<?>> scheduled = new ConcurrentHashMap<>();

    /** Probes sent on the timer's thread; answers handled on the client's I/O threads. */
    public ProbeScheduler(List<Target> targets, UpstreamClient client, Duration interval, Duration timeout,
            Supplier<ScheduledExecutorService> timer, java.util.function.Consumer<UpstreamHealth> probed) {
        this.probed = probed;
        this.targets = List.copyOf(targets);
        this.client = client;
        this.interval = interval;
        this.timeout = timeout;
        this.timer = timer;
    }

    /** The first probe of each upstream comes one interval after start; races sample latency before that. */
    @Override
    protected void doStart() {
        for (Target t : targets) schedule(t, interval);
    }

    @Override
    protected void doStop() {
        scheduled.values().forEach(f -> f.cancel(false));
        scheduled.clear();
    }

    private void schedule(Target t, Duration delay) {
        if (!isRunning() && !isStarting()) return;
        scheduled.put(t.upstream(), timer.get().schedule(() -> {
            try {
                probe(t).whenComplete((ok, failure) -> schedule(t, t.health().nextProbeIn(interval)));
            } catch (RuntimeException e) {
                LOG.warn("probe of {} could not start: {}", t.upstream(), e.toString());
                schedule(t, t.health().nextProbeIn(interval));
            }
        }, delay.toMillis(), TimeUnit.MILLISECONDS));
    }

    /** Probes every upstream once, now; completes when all have answered or failed. */
    public CompletableFuture<Void> probeAll() {
        return CompletableFuture.allOf(targets.stream().map(this::probe).toArray(CompletableFuture[]::new));
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
                    t.health().probeFailed();
                    finish(t, before, ex.toString(), done);
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
