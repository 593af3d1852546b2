package dev.ncro.bench.closure;

import dev.ncro.bench.load.Distribution;
import dev.ncro.testing.FakeCache;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The closure benchmark with the real Nix client ({@code bench/run closure}): a 30-path closure
 * of depth 6 ({@link ClosureFixture}) spread over signed fake caches with injected delays
 * (default 20/80/150/300 ms, {@code -Dclosure.delays=}), realised by {@code nix-store -r}
 * straight from the caches (listed fastest first: they all say Priority 40, so Nix keeps that
 * order) and through ncro (the assembled Jetty distribution in a JVM of its own, every cache
 * one upstream in one tier with its key) — the narinfo phase alone ({@code --dry-run}) and the
 * whole closure at {@code max-jobs} 1 and 16 (Nix 2.8 has no {@code max-substitution-jobs}:
 * substitutions count against {@code max-jobs}). Cold: ncro just started on a new route
 * database; warm: the same ncro again, its routes remembered. Every client run gets a fresh
 * store and a fresh narinfo cache. Each figure is the median of {@code -Dclosure.reps=3} runs.
 *
 * <p>It also counts the NAR bytes the caches sent (GETs of the closure's NAR URLs, and the
 * body bytes the caches wrote: a read-ahead or head start cancelled early sent only part) against the bytes ncro streamed to its client ({@code ncro_nar_streamed_bytes_total}),
 * so NAR read-ahead shows as the difference, and runs clients that only query ({@code --dry-run},
 * one cold then nine warm) to show what they make ncro download. The plot of closure time by mode
 * goes to {@code bench/target/closure.png}.
 */
public final class ClosureBench {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    /** What a client run asks for. */
    enum Mode {
        DRY("narinfo phase (`--dry-run`)", true, 1),
        JOBS1("full closure, `max-jobs 1`", false, 1),
        JOBS16("full closure, `max-jobs 16`", false, 16);

        final String label;
        final boolean dryRun;
        final int maxJobs;

        Mode(String label, boolean dryRun, int maxJobs) {
            this.label = label;
            this.dryRun = dryRun;
            this.maxJobs = maxJobs;
        }
    }

    /** One run's time and NAR traffic: bytes the caches sent, and bytes ncro sent its client (-1 direct). */
    record Sample(long millis, long upstreamNarBytes, int upstreamNarGets, long narDelayMillis, long servedNarBytes) {}

    private final Path work;
    private final Path home;
    private final Path base;
    private final int reps;
    private final long[] delays;
    private final NixClient nix;
    private final ClosureFixture fixture;
    private final List<FakeCache> caches = new ArrayList<>();
    private int runs;

    private ClosureBench(Path work, Path home, Path base, int reps, long[] delays) {
        this.work = work;
        this.home = home;
        this.base = base;
        this.reps = reps;
        this.delays = delays;
        this.nix = new NixClient(work);
        this.fixture = new ClosureFixture(work, nix, delays.length);
    }

    public static void main(String[] args) throws Exception {
        long t0 = System.nanoTime();
        NixClient.require();
        Path work = Path.of(System.getProperty("closure.work", "bench/target/closure-work")).toAbsolutePath();
        NixClient.delete(work);
        Files.createDirectories(work);
        long[] delays = Arrays.stream(System.getProperty("closure.delays", "20,80,150,300").split(","))
                .mapToLong(s -> Long.parseLong(s.trim())).toArray();
        ClosureBench bench = new ClosureBench(work,
                Path.of(System.getProperty("ncro.jetty.home")).toAbsolutePath(),
                Path.of(System.getProperty("ncro.jetty.base")).toAbsolutePath(),
                Integer.getInteger("closure.reps", 3), delays);
        try {
            bench.run(Path.of(System.getProperty("closure.png", "bench/target/closure.png")));
        } finally {
            bench.caches.forEach(FakeCache::close);
        }
        System.out.printf("closure benchmark: %.0f s in all%n", (System.nanoTime() - t0) / 1e9);
    }

    private void run(Path png) throws Exception {
        long t = System.nanoTime();
        fixture.make(delays.length);
        System.out.printf("fixture: %s (made in %.0f s)%n", fixture.sizeSummary(), (System.nanoTime() - t) / 1e9);
        for (int c = 0; c < delays.length; c++) {
            caches.add(FakeCache.start().serveDirectory(fixture.cacheDirs.get(c)).delay(Duration.ofMillis(delays[c])));
            int c0 = c;
            long held = fixture.nodes.values().stream().filter(n -> n.holders().contains(c0)).count();
            System.out.printf("  cache %d: %d ms, holds %d paths%n", c, delays[c], held);
        }
        long bound = fixture.criticalPathMillis(delays);
        System.out.printf("critical path bound (fastest holders' delays along the deepest reference chain): %d ms%n%n", bound);

        String dryOnly = "";
        long starting = 0;
        long stopping = 0;
        Sample[][] direct = new Sample[Mode.values().length][];
        Sample[][] cold = new Sample[Mode.values().length][];
        Sample[][] warm = new Sample[Mode.values().length][];
        for (Mode mode : Mode.values()) {
            direct[mode.ordinal()] = new Sample[reps];
            cold[mode.ordinal()] = new Sample[reps];
            warm[mode.ordinal()] = new Sample[reps];
            for (int r = 0; r < reps; r++) {
                direct[mode.ordinal()][r] = clientRun(mode, cacheUrls(), null);
                long t0 = System.nanoTime();
                Distribution ncro = startNcro(mode.name().toLowerCase() + "-" + r);
                try {
                    starting += System.nanoTime() - t0;
                    cold[mode.ordinal()][r] = clientRun(mode, List.of(ncro.url()), ncro);
                    warm[mode.ordinal()][r] = clientRun(mode, List.of(ncro.url()), ncro);
                } finally {
                    long t1 = System.nanoTime();
                    ncro.close();
                    stopping += System.nanoTime() - t1;
                }
            }
            if (mode == Mode.DRY) dryOnly = dryRunOnly();
            System.out.printf("  %s: direct %s, ncro cold %s, warm %s (ms); ncro starts so far %.0f s, stops %.0f s%n",
                    mode.name(), times(direct[mode.ordinal()]), times(cold[mode.ordinal()]), times(warm[mode.ordinal()]),
                    starting / 1e9, stopping / 1e9);
        }
        // max-jobs 16 through an ncro with read-ahead off: read-ahead must not make it slower
        Sample[][] off = coldAndWarm(Mode.JOBS16, "jobs16-off-", "readahead:\n  enabled: false\n");
        Sample[] offCold = off[0];
        Sample[] offWarm = off[1];
        System.out.printf("  JOBS16, read-ahead off: ncro cold %s, warm %s (ms)%n", times(offCold), times(offWarm));
        // max-jobs 1 with only the memory rule: NARs over 4 MiB get no head start
        Sample[][] plain = coldAndWarm(Mode.JOBS1, "jobs1-nohead-", "readahead:\n  head_start: false\n");
        Sample[] plainCold = plain[0];
        Sample[] plainWarm = plain[1];
        System.out.printf("  JOBS1, head starts off: ncro cold %s, warm %s (ms)%n", times(plainCold), times(plainWarm));
        List<String[]> rows = new ArrayList<>();
        List<ClosurePlot.Bar> bars = new ArrayList<>();
        for (Mode mode : Mode.values()) {
            long d = median(direct[mode.ordinal()]);
            long c = median(cold[mode.ordinal()]);
            long w = median(warm[mode.ordinal()]);
            rows.add(new String[] {mode.label + ", cold", secs(d), secs(c), ratio(d, c)});
            rows.add(new String[] {mode.label + ", warm routes", secs(d), secs(w), ratio(d, w)});
            String shortLabel = mode == Mode.DRY ? "narinfo" : "max-jobs " + mode.maxJobs;
            bars.add(new ClosurePlot.Bar(shortLabel + " cold", d, c));
            bars.add(new ClosurePlot.Bar(shortLabel + " warm", d, w));
        }
        System.out.println();
        System.out.printf("closure of %d paths, depth %d, caches %s ms; median of %d runs:%n%n",
                fixture.nodes.size(), ClosureFixture.LEVELS.length, joined(delays), reps);
        System.out.println("| run | Nix alone | through ncro | speedup |");
        System.out.println("|---|---|---|---|");
        for (String[] row : rows) System.out.println("| " + String.join(" | ", row) + " |");
        long d16 = median(direct[Mode.JOBS16.ordinal()]);
        System.out.printf("| %s, cold, read-ahead off | %s | %s | %s |%n", Mode.JOBS16.label, secs(d16), secs(median(offCold)),
                ratio(d16, median(offCold)));
        System.out.printf("| %s, warm routes, read-ahead off | %s | %s | %s |%n", Mode.JOBS16.label, secs(d16),
                secs(median(offWarm)), ratio(d16, median(offWarm)));
        long d1 = median(direct[Mode.JOBS1.ordinal()]);
        System.out.printf("| %s, cold, head starts off | %s | %s | %s |%n", Mode.JOBS1.label, secs(d1), secs(median(plainCold)),
                ratio(d1, median(plainCold)));
        System.out.printf("| %s, warm routes, head starts off | %s | %s | %s |%n", Mode.JOBS1.label, secs(d1),
                secs(median(plainWarm)), ratio(d1, median(plainWarm)));
        System.out.printf("| critical path bound (narinfo phase) | %s | | |%n%n", secs(bound));
        System.out.println(floor(direct, warm, bound));

        System.out.printf("NAR traffic (median run; the closure's compressed NARs total %s):%n%n", mib(fixture.totalFileSize()));
        System.out.println("| run | NAR GETs at the caches | their delays, summed | NAR bytes from the caches | NAR bytes to the client |");
        System.out.println("|---|---|---|---|---|");
        for (Mode mode : Mode.values()) {
            System.out.println(trafficRow(mode.label + ", Nix alone", direct[mode.ordinal()]));
            System.out.println(trafficRow(mode.label + ", ncro cold", cold[mode.ordinal()]));
            System.out.println(trafficRow(mode.label + ", ncro warm", warm[mode.ordinal()]));
        }
        System.out.println();
        System.out.println(dryOnly);
        ClosurePlot.write(png, "closure of " + fixture.nodes.size() + " paths, caches " + joined(delays)
                + " ms: Nix 2.8 alone vs through ncro (median of " + reps + ")", bars, bound);
        System.out.println("plot: " + png.toAbsolutePath());
    }

    /** {@code reps} fresh ncros with {@code extraYaml}, each run cold then warm: [cold runs, warm runs]. */
    private Sample[][] coldAndWarm(Mode mode, String name, String extraYaml) throws Exception {
        Sample[][] runs = new Sample[2][reps];
        for (int r = 0; r < reps; r++) {
            try (Distribution ncro = startNcro(name + r, extraYaml)) {
                runs[0][r] = clientRun(mode, List.of(ncro.url()), ncro);
                runs[1][r] = clientRun(mode, List.of(ncro.url()), ncro);
            }
        }
        return runs;
    }

    /**
     * What no read-ahead can beat at {@code max-jobs 1}: the narinfo phase (cold: the
     * critical-path bound; warm: as measured), then Nix's own work on the NARs (Nix alone's
     * full closure minus its narinfo phase minus the delays its NAR requests waited). Under the
     * memory rule alone (NARs over 4 MiB never read ahead) add the fastest holder's delay of
     * every such NAR, fetched one after the other; head starts hide those too.
     */
    private String floor(Sample[][] direct, Sample[][] warm, long bound) {
        long full = median(direct[Mode.JOBS1.ordinal()]);
        long dry = median(direct[Mode.DRY.ordinal()]);
        Sample directFull = medianSample(direct[Mode.JOBS1.ordinal()]);
        long nixOwn = Math.max(0, full - dry - directFull.narDelayMillis());
        long big = fixture.bigNarDelayMillis(delays, 4L << 20);
        long coldFloor = bound + nixOwn;
        long warmFloor = median(warm[Mode.DRY.ordinal()]) + nixOwn;
        return String.format("floor at max-jobs 1: Nix's own work %s (Nix alone %s - narinfo phase %s - NAR delays %s);"
                + " cold %s (+ bound %s): at most %s; warm %s (+ warm narinfo phase): at most %s. Without head starts, + NARs"
                + " over 4 MiB from their fastest holders %s: cold at most %s, warm at most %s%n",
                secs(nixOwn), secs(full), secs(dry), secs(directFull.narDelayMillis()), secs(coldFloor), secs(bound),
                ratio(full, coldFloor), secs(warmFloor), ratio(full, warmFloor), secs(big), ratio(full, coldFloor + big),
                ratio(full, warmFloor + big));
    }

    /**
     * Clients that only query: ten {@code --dry-run}s in a row against a fresh ncro that sees
     * nothing else, with {@code readahead.ttl: 1s} so that what one client had read ahead is
     * gone before the next asks (as with clients minutes apart): an unguarded read-ahead would
     * fetch every small NAR once per client. Whatever NAR bytes ncro downloads here is wasted;
     * the guard must keep it small.
     */
    private String dryRunOnly() throws Exception {
        int gets = 0;
        int clients = 10;
        long before = narBytesWritten();
        try (Distribution ncro = startNcro("dry-only", "readahead:\n  ttl: 1s\n")) {
            for (int i = 0; i < clients; i++) {
                Sample s = clientRun(Mode.DRY, List.of(ncro.url()), ncro);
                gets += s.upstreamNarGets();
                Thread.sleep(1100); // a benchmark, not a test: the TTL must pass between clients
            }
        }
        // everything the caches sent, also what was still on its way when a client run ended
        long fetched = narBytesWritten() - before;
        long readAheadable = fixture.fileSizes.values().stream().filter(s -> s <= 4L << 20).mapToLong(Long::longValue).sum();
        return String.format("--dry-run clients only (%d, 1.1 s apart, one fresh ncro with readahead.ttl 1s): ncro downloaded %s of"
                + " NARs from the caches (%d GETs), %.1f%% of the %s an unguarded read-ahead (NARs up to 4 MiB, once per client)"
                + " would%n", clients, mib(fetched), gets, 100.0 * fetched / (clients * readAheadable), mib(clients * readAheadable));
    }

    private Sample clientRun(Mode mode, List<String> substituters, Distribution ncro) throws Exception {
        caches.forEach(FakeCache::clearLog);
        long writtenBefore = narBytesWritten();
        double servedBefore = ncro == null ? 0 : metric(ncro, "ncro_nar_streamed_bytes_total");
        long millis = nix.realise("run" + (runs++), fixture.top(), substituters, fixture.publicKeys, mode.maxJobs, mode.dryRun);
        long served = ncro == null ? -1 : (long) (metric(ncro, "ncro_nar_streamed_bytes_total") - servedBefore);
        // what the caches actually sent: a read-ahead or head start cancelled early sent only part
        long bytes = narBytesWritten() - writtenBefore;
        int gets = 0;
        long waited = 0;
        for (int c = 0; c < caches.size(); c++) {
            for (FakeCache.Logged l : caches.get(c).requests()) {
                Long size = fixture.narFiles.get(l.path());
                if (size != null && l.method().equals("GET")) {
                    gets++;
                    waited += delays[c];
                }
            }
        }
        return new Sample(millis, bytes, gets, waited, served);
    }

    private Distribution startNcro(String name) throws Exception {
        return startNcro(name, "");
    }

    /** NAR body bytes all caches have written so far. */
    private long narBytesWritten() {
        return caches.stream().mapToLong(FakeCache::narBytesWritten).sum();
    }

    private Distribution startNcro(String name, String extraYaml) throws Exception {
        Path dir = work.resolve("ncro-" + name);
        Files.createDirectories(dir);
        StringBuilder yaml = new StringBuilder("upstreams:\n");
        for (int c = 0; c < caches.size(); c++) {
            yaml.append("  - url: ").append(caches.get(c).uri()).append("\n    priority: 40\n");
            yaml.append("    public_key: \"").append(fixture.publicKeys.get(c)).append("\"\n");
        }
        yaml.append(extraYaml);
        Path config = dir.resolve("ncro.yaml");
        Files.writeString(config, yaml);
        Distribution ncro = Distribution.start(home, base, dir, config, List.of("-Xmx512m", "-Dorg.eclipse.jetty.LEVEL=WARN"), 120);
        warmUp(ncro);
        return ncro;
    }

    /**
     * With {@code -Dclosure.warmup=N}, N narinfo lookups of hashes no cache holds (16 at a
     * time) before the cold run: the JVM has loaded and run its request path, while the
     * closure's routes are still unknown. Off by default: then "cold" is a JVM just started.
     */
    private static void warmUp(Distribution ncro) throws Exception {
        int lookups = Integer.getInteger("closure.warmup", 0);
        java.util.Random random = new java.util.Random(lookups);
        for (int done = 0; done < lookups; done += 16) {
            List<java.util.concurrent.CompletableFuture<HttpResponse<Void>>> wave = new ArrayList<>();
            for (int i = done; i < Math.min(lookups, done + 16); i++) {
                StringBuilder hash = new StringBuilder();
                for (int k = 0; k < 32; k++) hash.append("0123456789abcdfghijklmnpqrsvwxyz".charAt(random.nextInt(32)));
                wave.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(ncro.url() + "/" + hash + ".narinfo")).build(),
                        HttpResponse.BodyHandlers.discarding()));
            }
            for (var answer : wave) answer.get();
        }
    }

    private List<String> cacheUrls() {
        return caches.stream().map(c -> c.uri().toString()).toList();
    }

    private static double metric(Distribution ncro, String name) throws Exception {
        HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create(ncro.url() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        return response.body().lines().filter(l -> l.startsWith(name + " ") || l.startsWith(name + "{"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }

    private static Sample medianSample(Sample[] samples) {
        Sample[] sorted = samples.clone();
        Arrays.sort(sorted, (a, b) -> Long.compare(a.millis(), b.millis()));
        return sorted[sorted.length / 2];
    }

    private static long median(Sample[] samples) {
        return medianSample(samples).millis();
    }

    private static String trafficRow(String label, Sample[] samples) {
        Sample s = medianSample(samples);
        return "| " + label + " | " + s.upstreamNarGets() + " | " + secs(s.narDelayMillis()) + " | " + mib(s.upstreamNarBytes()) + " | "
                + (s.servedNarBytes() < 0 ? mib(s.upstreamNarBytes()) : mib(s.servedNarBytes())) + " |";
    }

    private static String times(Sample[] samples) {
        return Arrays.stream(samples).map(s -> Long.toString(s.millis())).reduce((a, b) -> a + "/" + b).orElse("");
    }

    private static String joined(long[] values) {
        return Arrays.stream(values).mapToObj(Long::toString).reduce((a, b) -> a + "/" + b).orElse("");
    }

    private static String secs(long millis) {
        return String.format("%.2f s", millis / 1000.0);
    }

    private static String ratio(long direct, long ncro) {
        return String.format("%.1f×", (double) direct / Math.max(1, ncro));
    }

    private static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / 1048576.0);
    }
}
