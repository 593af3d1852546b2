package dev.ncro.bench.load;

import static dev.ncro.testing.Narinfos.narinfo;

import dev.ncro.bench.Bench;
import dev.ncro.testing.FakeCache;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The hot narinfo path against nginx on the same machine, in one run (issue 12): 29 distinct
 * narinfos, all already known, served by
 * <ol>
 *   <li>nginx from static files;</li>
 *   <li>nginx as a caching reverse proxy ({@code proxy_cache}) in front of a fake upstream,
 *       warmed so that every request is a cache hit;</li>
 *   <li>ncro, the assembled distribution in a JVM of its own ({@code -Xmx512m}), in front of the
 *       same upstream, warmed so that every request is a hit from memory.</li>
 * </ol>
 * All three run at once; each is first warmed by a {@code -Dhot.prewarm} (10) second
 * {@code wrk} run (ncro's JIT), then they are measured in turn, {@code -Dhot.rounds} (3) times, medians
 * printed: a warm-up {@code wrk} run, then the measured one, {@code wrk -t2 -c64 -d10s --latency}
 * with a Lua script rotating over the 29 paths. Access logs are on for all three, to a file
 * (ncro's is kept in {@code bench/target/hot-ncro.log}). Settings: {@code -Dhot.seconds},
 * {@code -Dhot.warmup}, {@code -Dhot.connections}, {@code -Dhot.threads}, {@code -Dhot.rounds}, {@code -Dhot.prewarm}.
 */
public final class HotPathBench {
    static final int PATHS = 29;
    private static final Path KEPT_LOG = Path.of("bench/target/hot-ncro.log");

    private final int seconds = Integer.getInteger("hot.seconds", 10);
    private final int warmupSeconds = Integer.getInteger("hot.warmup", 3);
    private final int connections = Integer.getInteger("hot.connections", 64);
    private final int threads = Integer.getInteger("hot.threads", 2);
    private final int rounds = Integer.getInteger("hot.rounds", 3);
    private final int prewarmSeconds = Integer.getInteger("hot.prewarm", 10);
    private final Path home = Path.of(System.getProperty("ncro.jetty.home", "jetty-base/target/jetty-home")).toAbsolutePath();
    private final Path base = Path.of(System.getProperty("ncro.jetty.base", "jetty-base/target/jetty-base")).toAbsolutePath();
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    public static void main(String[] args) throws Exception {
        new HotPathBench().run();
    }

    void run() throws Exception {
        Path work = Files.createTempDirectory("ncro-hot");
        Path root = Files.createDirectories(work.resolve("static"));
        List<String> paths = new ArrayList<>();
        try (FakeCache upstream = FakeCache.start()) {
            for (int i = 0; i < PATHS; i++) {
                String h = Bench.routeHash(7_000 + i);
                String info = narinfo(h, "hot-" + i, "nar/" + Bench.routeHash(9_000 + i) + ".nar", 4096L * (i + 1));
                String path = "/" + h + ".narinfo";
                upstream.put(path, info);
                Files.writeString(root.resolve(h + ".narinfo"), info);
                paths.add(path);
            }
            Wrk wrk = new Wrk(work, paths);
            System.out.printf("hot narinfo: %d distinct narinfos, all known; wrk -t%d -c%d -d%ds --latency after a %d s"
                    + " warm-up run, %d rounds (servers in turn, medians; each prewarmed %d s); %d cores, Java %s, %s%n", PATHS, threads,
                    connections, seconds, warmupSeconds, rounds, prewarmSeconds, Runtime.getRuntime().availableProcessors(),
                    Runtime.version(), nginxVersion());
            Path config = work.resolve("ncro.yaml");
            Files.writeString(config, "upstreams:\n  - url: " + upstream.uri() + "\n    priority: 10\n");
            // all three up at once, measured in turn: an idle server costs the others nothing, and
            // on a shared machine interleaved rounds spread the neighbours' load over all three
            try (Nginx statics = Nginx.staticFiles(Files.createDirectories(work.resolve("nginx-static")), root);
                    Nginx cache = Nginx.proxyCache(Files.createDirectories(work.resolve("nginx-cache")), upstream.uri().toString());
                    Distribution ncro = Distribution.start(home, base, Files.createDirectories(work.resolve("ncro")), config,
                            List.of(System.getProperty("hot.jvm", "-Xmx512m").split("[\\s,]+")), 120, true)) {
                Map<String, String> urls = new LinkedHashMap<>();
                urls.put(statics.name, statics.url());
                urls.put(cache.name, cache.url());
                urls.put("ncro", ncro.url());
                for (String url : urls.values()) {
                    warm(url, paths);
                    wrk.run(url, threads, connections, prewarmSeconds); // the JIT, nginx's page cache
                }
                long before = narinfoRequests(upstream);
                Map<String, List<Wrk.Result>> results = new LinkedHashMap<>();
                for (int round = 0; round < rounds; round++) {
                    for (var e : urls.entrySet()) {
                        results.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(measure(wrk, e.getValue()));
                    }
                }
                long asked = narinfoRequests(upstream) - before;
                if (asked > 0) System.out.printf("  (the upstream was asked for %d narinfos during the runs: not all hits)%n", asked);
                print(results);
                Files.copy(ncro.logFile, KEPT_LOG, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            try (var files = Files.walk(work)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static long narinfoRequests(FakeCache upstream) {
        return upstream.requests().stream().filter(r -> r.path().endsWith(".narinfo")).count();
    }

    private Wrk.Result measure(Wrk wrk, String url) throws Exception {
        wrk.run(url, threads, connections, warmupSeconds);
        return wrk.run(url, threads, connections, seconds);
    }

    /** Every path once, checked: a miss becomes a hit (ncro's memory, nginx's proxy_cache). */
    private void warm(String url, List<String> paths) throws Exception {
        for (int round = 0; round < 2; round++) {
            for (String p : paths) {
                HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create(url + p)).build(),
                        HttpResponse.BodyHandlers.ofByteArray());
                if (r.statusCode() != 200) throw new IllegalStateException(url + p + ": " + r.statusCode());
            }
        }
    }

    private static void print(Map<String, List<Wrk.Result>> runs) {
        System.out.printf("%-18s %10s %9s %9s %8s %7s   %s%n", "server", "req/s", "p50", "p99", "non-2xx", "errors",
                "req/s of each round");
        Map<String, Wrk.Result> median = new LinkedHashMap<>();
        runs.forEach((name, list) -> {
            Wrk.Result r = new Wrk.Result(median(list, Wrk.Result::requestsPerSecond), median(list, Wrk.Result::p50Ms),
                    median(list, Wrk.Result::p99Ms), list.stream().mapToLong(Wrk.Result::non2xx).sum(),
                    list.stream().mapToLong(Wrk.Result::socketErrors).sum(), "");
            median.put(name, r);
            System.out.printf("%-18s %,10.0f %6.2f ms %6.2f ms %8d %7d   %s%n", name, r.requestsPerSecond(), r.p50Ms(),
                    r.p99Ms(), r.non2xx(), r.socketErrors(), list.stream()
                            .map(x -> String.format("%,.0f", x.requestsPerSecond())).toList());
        });
        Wrk.Result ncro = median.get("ncro");
        for (String other : List.of("nginx proxy_cache", "nginx static")) {
            Wrk.Result o = median.get(other);
            System.out.printf("ncro / %-17s req/s %.2fx   p99 %.2fx%n", other, ncro.requestsPerSecond() / o.requestsPerSecond(),
                    ncro.p99Ms() / o.p99Ms());
        }
        Wrk.Result cache = median.get("nginx proxy_cache");
        System.out.printf("target: req/s >= 1.0x nginx proxy_cache (%s), p99 no worse (%s)%n",
                ncro.requestsPerSecond() >= cache.requestsPerSecond() ? "MET" : "MISSED",
                ncro.p99Ms() <= cache.p99Ms() ? "MET" : "MISSED");
    }

    private static double median(List<Wrk.Result> list, java.util.function.ToDoubleFunction<Wrk.Result> field) {
        double[] v = list.stream().mapToDouble(field).sorted().toArray();
        return v[v.length / 2];
    }

    static String nginxVersion() {
        try {
            Process p = new ProcessBuilder(Nginx.BINARY.toString(), "-v").redirectErrorStream(true).start();
            String v = new String(p.getInputStream().readAllBytes()).trim();
            p.waitFor();
            return v.replace("nginx version: ", "");
        } catch (Exception e) {
            return "nginx ?";
        }
    }
}
