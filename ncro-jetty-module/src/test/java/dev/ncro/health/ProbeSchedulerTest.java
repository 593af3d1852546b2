package dev.ncro.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import dev.ncro.testing.FakeClock;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.eclipse.jetty.util.thread.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The probe backoff as {@link ProbeScheduler} applies it: real probes of a real upstream, and
 * a timer that runs nothing by itself but records the delay of every probe the scheduler asks
 * for. The test runs each due probe and reads the delay of the next one: no test waits for a
 * timer, and a scheduler that ignored the state's backoff would be seen asking for the wrong delay.
 */
class ProbeSchedulerTest {
    private static final Duration INTERVAL = Duration.ofSeconds(30);
    /** How long a probe (a HEAD to a fake cache on 127.0.0.1) may take before the test gives up. */
    private static final long PROBE_WAIT_SECONDS = 10;

    /** A requested timer task and its delay. */
    private record Requested(Runnable task, long delayMillis) {}

    /** Records what it is asked to schedule; runs nothing. */
    private static final class RecordingTimer extends AbstractLifeCycle implements Scheduler {
        final BlockingQueue<Requested> requested = new LinkedBlockingQueue<>();

        @Override
        public Task schedule(Runnable task, long delay, TimeUnit units) {
            requested.add(new Requested(task, units.toMillis(delay)));
            return () -> false;
        }
    }

    private final FakeCache cache = FakeCache.start();
    private final RecordingTimer timer = new RecordingTimer();
    private final ExecutorService executor = Executors.newSingleThreadExecutor();
    private final Upstream upstream = new Upstream(cache.uri(), 10, 0);
    private final UpstreamHealth health = new UpstreamHealth(upstream.name(), 0.3, new FakeClock());
    private final UpstreamClient client = new UpstreamClient(Duration.ofSeconds(2), List.of(upstream));
    private ProbeScheduler probes;

    @AfterEach
    void tearDown() throws Exception {
        if (probes != null) probes.stop();
        client.stop();
        cache.close();
        executor.shutdownNow();
    }

    private void start() throws Exception {
        client.start();
        probes = new ProbeScheduler(List.of(new ProbeScheduler.Target(upstream, health)), client, INTERVAL,
                Duration.ofSeconds(5), timer, executor, h -> { }, new FakeClock());
        probes.start();
    }

    /** The next probe the scheduler asked the timer for; only ever one at a time here. */
    private Requested next() throws InterruptedException {
        Requested r = timer.requested.poll(PROBE_WAIT_SECONDS, TimeUnit.SECONDS);
        assertNotNull(r, "no next probe was scheduled");
        assertTrue(timer.requested.isEmpty(), "more than one probe scheduled: " + timer.requested);
        return r;
    }

    /** Runs the due probe; returns the probe the scheduler then asked for, with its delay. */
    private Requested probeNow(Requested due) throws InterruptedException {
        long before = cache.count("/nix-cache-info");
        due.task().run();
        Requested following = next();
        assertEquals(before + 1, cache.count("/nix-cache-info"), "the due task probed the upstream");
        return following;
    }

    @Test
    void nextProbe_isTheIntervalTimesOneActive_fourDegraded_tenDown_andOneAgainOnRecovery() throws Exception {
        start();
        Requested due = next();
        assertEquals(INTERVAL.toMillis(), due.delayMillis(), "the first probe of an Active upstream: one interval after start");

        cache.statusUnder("/", 500);
        for (int failures = 1; failures <= UpstreamHealth.DOWN_AFTER + 1; failures++) {
            due = probeNow(due);
            UpstreamState state = health.state();
            UpstreamState expected = failures >= UpstreamHealth.DOWN_AFTER ? UpstreamState.DOWN
                    : failures >= UpstreamHealth.DEGRADED_AFTER ? UpstreamState.DEGRADED : UpstreamState.ACTIVE;
            assertEquals(expected, state, "after " + failures + " failed probes");
            int factor = switch (state) {
                case ACTIVE -> 1;
                case DEGRADED -> 4;
                case DOWN -> 10;
            };
            assertEquals(INTERVAL.multipliedBy(factor).toMillis(), due.delayMillis(),
                    "next probe after " + failures + " failed probes (" + state.label() + ", x" + factor + ")");
        }

        cache.clearScripts();
        assertEquals(INTERVAL.toMillis(), probeNow(due).delayMillis(), "the first success restores Active, and the base interval");
        assertEquals(UpstreamState.ACTIVE, health.state());
    }

    @Test
    void failureSeenByTrafficWhileAProbeRuns_getsItsOwnProbeRightAfter_notAnIntervalLater() throws Exception {
        start();
        Requested due = next();
        cache.hangUnder("/"); // the probe stays in flight until its 5 s timeout
        due.task().run();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(PROBE_WAIT_SECONDS);
        while (cache.count("/nix-cache-info") == 0) {
            assertTrue(System.nanoTime() < until, "the probe never reached the upstream");
            Thread.sleep(5);
        }

        probes.suspect(upstream); // its outcome may be counted already: this failure must not be lost

        Requested following = next();
        assertTrue(following.delayMillis() <= ProbeScheduler.SUSPECT_GAP.toMillis(),
                "probed again at most one gap later, not after " + following.delayMillis() + " ms");
    }

    @Test
    void restoredDown_isProbedAtOnce_andAConfirmingFailureBacksOffTenfold() throws Exception {
        health.seed(new UpstreamHealth.Snapshot(upstream.name(), UpstreamState.DOWN, 50, UpstreamHealth.DOWN_AFTER, 0, 0));
        cache.statusUnder("/", 503);
        start();

        Requested due = next();

        assertEquals(0, due.delayMillis(), "a restored Down is only a hint: probed at once");
        assertEquals(INTERVAL.multipliedBy(10).toMillis(), probeNow(due).delayMillis(), "still failing, still Down: x10");
        assertEquals(UpstreamState.DOWN, health.state());
    }

    @Test
    void anAddedUpstream_isProbedAtOnceThenOnSchedule_andOnceRemoved_probesNoMore() throws Exception {
        start();
        next(); // the configured upstream's first probe, one interval away
        try (FakeCache lan = FakeCache.start()) {
            Upstream discovered = new Upstream(lan.uri(), 20, 1);
            UpstreamHealth lanHealth = new UpstreamHealth(discovered.name(), 0.3, new FakeClock());
            probes.add(new ProbeScheduler.Target(discovered, lanHealth));
            Requested due = next();
            assertEquals(0, due.delayMillis(), "a discovered upstream is probed at once");
            due.task().run();
            Requested following = next();
            assertEquals(1, lan.count("/nix-cache-info"));
            assertEquals(INTERVAL.toMillis(), following.delayMillis(), "then on the interval");

            probes.remove(discovered);
            following.task().run();
            // the timer could not cancel it (this one never does): the task runs, on the executor
            executor.submit(() -> { }).get(PROBE_WAIT_SECONDS, TimeUnit.SECONDS);
            assertEquals(1, lan.count("/nix-cache-info"), "a removed upstream is not probed again");
            assertTrue(timer.requested.isEmpty(), "and nothing more is scheduled for it");
        }
    }
}
