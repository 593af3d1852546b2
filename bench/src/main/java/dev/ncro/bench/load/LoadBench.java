package dev.ncro.bench.load;

import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The load run of issue #8: {@value #DEFAULT_CLIENTS} concurrent clients, mixed narinfo and NAR
 * traffic, for {@value #DEFAULT_SECONDS} s, through ncro running as the real Jetty distribution
 * in its own JVM, against two upstreams that both hold every path: A (fast, so preferred) and
 * B (slower). Half-way, A freezes: it accepts connections and never answers
 * ({@link FakeCache#hangAll}). What must hold: no error for any path (B holds them all), no
 * 404 for a path that exists. What is measured: latency by kind before and after the freeze,
 * throughput, ncro's resident set. Then the peer: the same clients and mix straight to B, and
 * the ratio of ncro's p99 to B-direct's.
 *
 * <p>Settings are system properties ({@code -Dload.clients=200} …), printed at the start.
 */
public final class LoadBench {
    static final int DEFAULT_CLIENTS = 200;
    static final int DEFAULT_SECONDS = 60;

    private final int clients = Integer.getInteger("load.clients", DEFAULT_CLIENTS);
    private final int seconds = Integer.getInteger("load.seconds", DEFAULT_SECONDS);
    private final int freezeAt = Integer.getInteger("load.freezeAt", seconds / 2);
    private final int warmupSeconds = Integer.getInteger("load.warmup", 5);
    private final int directSeconds = Integer.getInteger("load.directSeconds", 15);
    private final int paths = Integer.getInteger("load.paths", 40_000);
    private final long maxRequests = Long.getLong("load.maxRequests", 5_000_000L);
    private final int readTimeoutMs = Integer.getInteger("load.readTimeoutMs", 30_000);
    private final Workload.Mix mix = Workload.Mix.parse(System.getProperty("load.mix", "20,40,10,30"));
    private final Duration delayA = Duration.ofMillis(Integer.getInteger("load.delayA", 5));
    private final Duration delayB = Duration.ofMillis(Integer.getInteger("load.delayB", 20));
    private final String heap = System.getProperty("load.heap", "512m");
    private final String firstByteA = System.getProperty("load.firstByteA", "1s");
    private final String raceDeadline = System.getProperty("load.raceDeadline", "3s");
    private final Path home = Path.of(System.getProperty("ncro.jetty.home", "jetty-base/target/jetty-home")).toAbsolutePath();
    private final Path base = Path.of(System.getProperty("ncro.jetty.base", "jetty-base/target/jetty-base")).toAbsolutePath();

    public static void main(String[] args) throws Exception {
        new LoadBench().run();
    }

    void run() throws Exception {
        Path work = Files.createTempDirectory("ncro-load");
        Workload workload = new Workload(paths);
        List<AutoCloseable> open = new ArrayList<>();
        try {
            FakeCache a = FakeCache.start().delay(delayA);
            open.add(() -> a.hangAll(false).close());
            FakeCache b = FakeCache.start().delay(delayB);
            open.add(b::close);
            workload.install(a, b);
            Thread housekeeping = housekeeping(a, b);
            open.add(housekeeping::interrupt);

            Path config = work.resolve("ncro.yaml");
            Files.writeString(config, yaml(a, b));
            List<String> jvm = List.of("-Xmx" + heap);
            printSetup(a, b, workload, config, jvm);

            Report ncroReport;
            Distribution ncro = Distribution.start(home, base, work, config, jvm, 120);
            try {
                System.out.printf("  ncro: pid %d, %s; log %s%n", ncro.serverProcess().pid(),
                        ncro.forked() ? "start.jar forked a child JVM (measured: the child)"
                                : "start.jar ran Jetty in its own JVM (no --exec): that pid is the server",
                        KEPT_LOG.toAbsolutePath());
                ncroReport = ncroPhase(ncro, a, b, workload);
            } finally {
                ncro.close();
                keepLog(ncro.logFile);
            }
            ncroReport.print();

            System.out.printf("%npeer: the same %d clients and mix straight to B (%s), no ncro, %d s (ncro stopped):%n",
                    clients, b.uri(), directSeconds, directSeconds);
            ClientLoops direct = new ClientLoops("127.0.0.1", b.port(), clients, readTimeoutMs);
            long zero = System.nanoTime();
            ClientLoops.Result directResult = direct.run(workload.new Cursor(mix), zero,
                    TimeUnit.SECONDS.toMillis(directSeconds), maxRequests, -1, null);
            Report.printComparison(ncroReport, directResult, directSeconds);
        } finally {
            for (int i = open.size() - 1; i >= 0; i--) {
                try {
                    open.get(i).close();
                } catch (Exception e) {
                    System.err.println("closing: " + e);
                }
            }
            try (var files = Files.walk(work)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private Report ncroPhase(Distribution ncro, FakeCache a, FakeCache b, Workload workload) throws Exception {
        ClientLoops loops = new ClientLoops("127.0.0.1", ncro.port, clients, readTimeoutMs);
        long zero = System.nanoTime() + TimeUnit.SECONDS.toNanos(warmupSeconds);
        double[] frozenAt = {Double.NaN};
        ClientLoops.Result result;
        long hwmKiB;
        List<Monitor.Tick> ticks;
        String metrics;
        try (Monitor monitor = new Monitor(ncro, a.uri().toString(), zero)) {
            result = loops.run(workload.new Cursor(mix), zero, TimeUnit.SECONDS.toMillis(seconds), maxRequests,
                    TimeUnit.SECONDS.toMillis(freezeAt), () -> {
                        a.hangAll(true);
                        frozenAt[0] = (System.nanoTime() - zero) / 1e9;
                    });
            hwmKiB = ncro.statusKiB("VmHWM");
            metrics = metrics(ncro);
            monitor.close();
            ticks = monitor.ticks();
        }
        if (!ncro.alive()) System.out.println("  ncro's process ENDED during the run: see " + KEPT_LOG.toAbsolutePath());
        return new Report(clients, seconds, warmupSeconds, frozenAt[0], result, ticks, hwmKiB, heap, metrics,
                ncro.complaints(), a.hangingCount());
    }

    /** Selected lines of ncro's /metrics after the run. */
    private static String metrics(Distribution ncro) {
        HttpConnection c = new HttpConnection("127.0.0.1", ncro.port, 2_000, 10_000);
        try {
            String text = c.get("/metrics", 1 << 20, null).headText();
            StringBuilder sb = new StringBuilder();
            for (String line : text.split("\n")) {
                if (line.startsWith("#")) continue;
                if (line.startsWith("ncro_narinfo_requests_total") || line.startsWith("ncro_nar_requests_total")
                        || line.startsWith("ncro_nar_failovers") || line.startsWith("ncro_nar_upstream_failures")
                        || line.startsWith("ncro_upstream_state") || line.startsWith("ncro_upstream_race_wins")
                        || line.startsWith("ncro_route_entries") || line.startsWith("ncro_route_writes_dropped")) {
                    sb.append("    ").append(line).append('\n');
                }
            }
            return sb.toString();
        } catch (Exception e) {
            return "    (/metrics unreadable: " + e + ")\n";
        } finally {
            c.close();
        }
    }

    private String yaml(FakeCache a, FakeCache b) {
        return "upstreams:\n"
                + "  - url: " + a.uri() + "\n"
                + "    priority: 10\n"
                + "    timeout:\n"
                + "      first_byte: " + firstByteA + "\n"
                + "  - url: " + b.uri() + "\n"
                + "    priority: 10\n"
                + "cache:\n"
                + "  race_deadline: " + raceDeadline + "\n";
    }

    private void printSetup(FakeCache a, FakeCache b, Workload workload, Path config, List<String> jvm) throws Exception {
        System.out.printf("ncro load run on %d cores, Java %s%n", Runtime.getRuntime().availableProcessors(), Runtime.version());
        System.out.printf("  %d clients (one keep-alive connection each, closed loop), %d s measured after %d s warm-up,"
                + " A frozen at %d s; bounds: %,d requests, %d s read timeout%n",
                clients, seconds, warmupSeconds, freezeAt, maxRequests, readTimeoutMs / 1000);
        System.out.printf("  mix: %s; NARs 4 KiB (50%%), 64 KiB (30%%), 512 KiB (15%%), 4 MiB (5%%): mean %.0f KiB%n",
                mix, workload.meanNarSize() / 1024);
        System.out.printf("  upstreams (FakeCache, this JVM): A %s answers after %d ms, B %s after %d ms;"
                + " both hold all %,d paths (narinfo + NAR)%n", a.uri(), delayA.toMillis(), b.uri(), delayB.toMillis(), paths);
        System.out.printf("  ncro: %s%n", String.join(" ", List.of("java", String.join(" ", jvm), "-jar",
                home.resolve("start.jar").toString(), "jetty.home=" + home, "jetty.base=" + base)));
        System.out.printf("  config (NCRO_CONFIG; every other key at its default):%n%s",
                Files.readString(config).indent(4));
    }

    /** Where ncro's log is kept after the run (the work directory is deleted). */
    private static final Path KEPT_LOG = Path.of("bench/target/load-ncro.log");

    private static void keepLog(Path log) {
        try {
            Files.createDirectories(KEPT_LOG.toAbsolutePath().getParent());
            Files.copy(log, KEPT_LOG, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (java.io.IOException e) {
            System.err.println("could not keep ncro's log: " + e);
        }
    }

    /** Clears the fake caches' request logs: they are kept for tests and would grow with every request. */
    private static Thread housekeeping(FakeCache... caches) {
        Thread t = new Thread(() -> {
            try {
                while (true) {
                    for (FakeCache c : caches) c.clearLog();
                    TimeUnit.MILLISECONDS.sleep(250);
                }
            } catch (InterruptedException e) {
                // stopped
            }
        }, "load-housekeeping");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
