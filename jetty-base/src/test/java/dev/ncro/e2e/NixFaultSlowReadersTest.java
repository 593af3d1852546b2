package dev.ncro.e2e;

import static dev.ncro.e2e.FaultFixture.DEADLINE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.e2e.FaultFixture.Closure;
import dev.ncro.testing.FakeCache;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Slow readers never starve lookups or probes (issue 8, "Done when" (g)). 130 clients each
 * fetch a 64 MiB NAR through ncro and read it at about 100 bytes per second through a small
 * receive buffer, so backpressure holds each stream's upstream connection. Meanwhile cold
 * narinfo lookups of other paths answer 200 within the race deadline, and the probes of the
 * upstream carrying the streams keep succeeding: /health shows it active.
 */
class NixFaultSlowReadersTest {
    private static final int READERS = 130;
    private static final long NAR_SIZE = 64L * 1024 * 1024;
    /** A NAR URL in the request grammar, as nix copy names them (52 nix32 characters). */
    private static final String NAR = "/nar/" + "1".repeat(52) + ".nar";
    private static final int BYTES_PER_TICK = 10;
    private static final Duration TICK = Duration.ofMillis(100); // 10 B per 100 ms: 100 B/s
    private static final Duration PROBE_WATCH = Duration.ofSeconds(10);
    /** Generous (a probe answers in milliseconds), so that a failed probe means starvation, not a busy box. */
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(1);

    @TempDir
    Path work;

    private FaultFixture fx;
    private final List<SocketChannel> readers = new ArrayList<>();
    private ScheduledExecutorService pace;

    @AfterEach
    void close() throws Exception {
        long t0 = System.nanoTime();
        if (pace != null) pace.shutdownNow();
        for (SocketChannel ch : readers) {
            try {
                ch.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        if (fx != null) fx.close();
        System.out.printf("(g) closed the readers, ncro and the upstreams in %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    }

    @Test
    void slowNarReaders_130at100BytesPerSecond_lookupsStillAnswerWithinTheDeadline_andProbesKeepTheUpstreamActive() throws Exception {
        Nix.requireOrSkip();
        long t0 = System.nanoTime();
        fx = new FaultFixture(work).smallClosures();
        // cold lookups of these while the readers stream (4 paths each)
        Map<String, Closure> closures = fx.closures("warm", "slow1", "slow2", "slow3");
        List<Closure> cold = List.of(closures.get("slow1"), closures.get("slow2"), closures.get("slow3"));
        FakeCache a = fx.upstream(Duration.ofMillis(20)).putGenerated(NAR, NAR_SIZE);
        FakeCache b = fx.upstream(Duration.ofMillis(100)).putGenerated(NAR, NAR_SIZE);
        JettyDistribution ncro = fx.ncro(fx.config("slow", Duration.ofMillis(200), PROBE_TIMEOUT, a, b),
                work.resolve("slow.db"));

        // warm up ncro's lookup path (class loading, JIT, the first signature check, connections to
        // A) with another closure, so the cold lookups below measure contention, not a cold JVM
        for (String p : closures.get("warm").paths()) {
            JettyDistribution.Answer warm = ncro.get("/" + FaultFixture.hash(p) + ".narinfo");
            assertEquals(200, warm.status(), "warm-up lookup before the readers: " + warm.body());
        }
        long tStarted = System.nanoTime();
        // the slow readers: one thread paces them all, 10 bytes per reader every 100 ms
        byte[] request = ("GET " + NAR + " HTTP/1.1\r\nHost: 127.0.0.1:" + ncro.port + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < READERS; i++) {
            SocketChannel ch = SocketChannel.open();
            ch.setOption(StandardSocketOptions.SO_RCVBUF, 1024); // before connect: the window stays small
            ch.connect(new InetSocketAddress("127.0.0.1", ncro.port));
            ch.write(ByteBuffer.wrap(request));
            ch.configureBlocking(false);
            readers.add(ch);
        }
        java.util.concurrent.atomic.AtomicLong read = new java.util.concurrent.atomic.AtomicLong();
        pace = Executors.newSingleThreadScheduledExecutor();
        pace.scheduleAtFixedRate(() -> {
            ByteBuffer buf = ByteBuffer.allocate(BYTES_PER_TICK);
            for (int i = 0; i < READERS; i++) {
                try {
                    buf.clear();
                    int n = readers.get(i).read(buf);
                    if (n > 0) read.addAndGet(n);
                } catch (IOException e) {
                    // counted as not reading; the assertions below look at ncro, not at this reader
                }
            }
        }, 0, TICK.toMillis(), TimeUnit.MILLISECONDS);

        // the streams are established once the upstreams have been asked for as many NARs as
        // ncro lets one upstream stream at once (the default, 64) — or more
        long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (narRequests(a, b) < 64 && System.nanoTime() < until) Thread.sleep(50);
        long streaming = narRequests(a, b);
        assertTrue(streaming >= 64, "slow readers streaming: upstreams got " + streaming + " NAR requests");

        long tStreaming = System.nanoTime();
        // cold lookups of other paths, one after another, each within the race deadline
        List<String> slow = new ArrayList<>();
        long worst = 0;
        int lookups = 0;
        for (String p : cold.stream().flatMap(c -> c.paths().stream()).toList()) {
            lookups++;
            JettyDistribution.Answer answer = ncro.get("/" + FaultFixture.hash(p) + ".narinfo");
            worst = Math.max(worst, answer.millis());
            if (answer.status() != 200 || answer.millis() >= DEADLINE.toMillis()) {
                slow.add(FaultFixture.hash(p) + ".narinfo: " + answer.status() + " after " + answer.millis() + " ms ("
                        + answer.body().trim() + ")");
            }
        }

        long tLooked = System.nanoTime();
        // probes keep running and A stays active: watch A's last_probe change four times and its
        // state at every look. Every 200 ms with a 1 s timeout, four probes take under 6 s even
        // if each timed out (backing off ×4 once degraded): PROBE_WATCH is ample unless starved.
        Set<String> probes = new HashSet<>();
        Set<String> states = new HashSet<>();
        int failures = 0;
        until = System.nanoTime() + PROBE_WATCH.toNanos();
        while (probes.size() < 5 && System.nanoTime() < until) {
            var h = ncro.health(a.uri());
            probes.add(h.path("last_probe").asText());
            states.add(h.path("state").asText());
            failures = Math.max(failures, h.path("consecutive_failures").asInt());
            Thread.sleep(50); // polling another process's state
        }
        System.out.printf("(g) phases: closures and ncro %d ms, readers streaming %d ms, lookups %d ms, probes watched %d ms%n",
                (tStarted - t0) / 1_000_000, (tStreaming - tStarted) / 1_000_000, (tLooked - tStreaming) / 1_000_000,
                (System.nanoTime() - tLooked) / 1_000_000);
        long readTotal = read.get();
        System.out.printf("(g) %d slow readers (%d bytes read in all), upstreams asked for %d NARs (A %d, B %d); %d cold lookups,"
                + " slowest %d ms; A over %d probes: %s, most consecutive failures %d%n",
                READERS, readTotal, narRequests(a, b), a.count(NAR), b.count(NAR), lookups, worst, probes.size() - 1,
                states, failures);

        assertEquals(List.of(), slow, "cold lookups while slow readers stream must answer 200 within " + DEADLINE.toMillis() + " ms");
        assertTrue(probes.size() >= 5, "A was probed at least four times within " + PROBE_WATCH.toSeconds()
                + " s while the readers streamed: " + probes);
        assertEquals(Set.of("active"), states, "A's state on /health while the readers streamed (most consecutive probe failures "
                + failures + "):\n" + ncro.get("/health").body());
    }

    private static long narRequests(FakeCache a, FakeCache b) {
        return a.count(NAR) + b.count(NAR);
    }
}
