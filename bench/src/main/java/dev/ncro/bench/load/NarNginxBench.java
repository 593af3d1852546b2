package dev.ncro.bench.load;

import dev.ncro.testing.FakeCache;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A large NAR (1 GiB unless {@code -Dnar.bytes}) from a fake upstream, streamed on loopback
 * with {@code curl -o /dev/null} through
 * <ol>
 *   <li>nginx from a static file (sendfile): the ceiling of the box;</li>
 *   <li>nginx as a streaming reverse proxy ({@code proxy_buffering off});</li>
 *   <li>ncro, the assembled distribution in a JVM of its own ({@code -Dnar.jvm}, options separated by commas, default
 *       {@code -Xmx512m}).</li>
 * </ol>
 * {@code -Dnar.runs} (3) streams each, the median printed; and ncro's resident set
 * ({@code VmRSS}) before the first stream, its peak during the streams (sampled every 20 ms), and
 * after them; and the CPU time each proxy's processes spent per GiB streamed (less noisy than the
 * rate on a shared box: the rate is what the client sees, the CPU what the proxy costs).
 */
public final class NarNginxBench {
    private static final String NAR = "/nar/iylahv99ib6ldixkyrvcshpi0ba8w9dxhs2k8gznrhajmnrz1ia0.nar";
    private static final String WARM = "/nar/q6kp4znpdbk525y9jpqzkd4q5aylawdad7gdhyvpar03c4hlaq30.nar";

    private final long size = Long.getLong("nar.bytes", 1L << 30);
    private final int runs = Integer.getInteger("nar.runs", 3);
    private final List<String> jvm = List.of(System.getProperty("nar.jvm", "-Xmx512m").split("[\\s,]+"));
    private final Path home = Path.of(System.getProperty("ncro.jetty.home", "jetty-base/target/jetty-home")).toAbsolutePath();
    private final Path base = Path.of(System.getProperty("ncro.jetty.base", "jetty-base/target/jetty-base")).toAbsolutePath();

    public static void main(String[] args) throws Exception {
        new NarNginxBench().run();
    }

    void run() throws Exception {
        Path work = Files.createTempDirectory("ncro-nar-nginx");
        try (FakeCache upstream = FakeCache.start().putGenerated(NAR, size).putGenerated(WARM, 8 << 20)) {
            Path root = Files.createDirectories(work.resolve("static/nar")).getParent();
            HttpClient http = HttpClient.newHttpClient();
            http.send(HttpRequest.newBuilder(upstream.uri().resolve(NAR)).build(),
                    HttpResponse.BodyHandlers.ofFile(root.resolve(NAR.substring(1))));
            System.out.printf("NAR stream: %d MiB on loopback, curl -o /dev/null, median of %d; %d cores, Java %s, %s;"
                    + " ncro JVM %s%n", size >> 20, runs, Runtime.getRuntime().availableProcessors(), Runtime.version(),
                    HotPathBench.nginxVersion(), String.join(" ", jvm));
            Map<String, Double> mibs = new LinkedHashMap<>();
            Map<String, Double> cpu = new LinkedHashMap<>();
            try (Nginx nginx = Nginx.staticFiles(Files.createDirectories(work.resolve("nginx-static")), root)) {
                mibs.put(nginx.name + " (sendfile)", median(nginx.url()));
            }
            try (Nginx nginx = Nginx.streamingProxy(Files.createDirectories(work.resolve("nginx-proxy")), upstream.uri().toString())) {
                Duration before = nginx.cpu();
                mibs.put(nginx.name + " (proxy_buffering off)", median(nginx.url()));
                cpu.put("nginx proxy", perGiB(nginx.cpu().minus(before)));
            }
            Path config = work.resolve("ncro.yaml");
            Files.writeString(config, "upstreams:\n  - url: " + upstream.uri() + "\n    priority: 10\n");
            long[] rss = new long[3];
            try (Distribution ncro = Distribution.start(home, base, Files.createDirectories(work.resolve("ncro")), config,
                    jvm, 120, true)) {
                curl(ncro.url() + WARM); // class loading and pools are not counted as growth
                Thread.sleep(1000);
                rss[0] = ncro.statusKiB("VmRSS");
                AtomicLong peak = new AtomicLong(rss[0]);
                AtomicBoolean done = new AtomicBoolean();
                Thread sampler = new Thread(() -> {
                    while (!done.get()) {
                        peak.accumulateAndGet(ncro.statusKiB("VmRSS"), Math::max);
                        try {
                            Thread.sleep(20);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                }, "rss-sampler");
                sampler.start();
                Duration before = cpu(ncro);
                try {
                    mibs.put("ncro", median(ncro.url()));
                    cpu.put("ncro", perGiB(cpu(ncro).minus(before)));
                } finally {
                    done.set(true);
                    sampler.join();
                }
                rss[1] = peak.get();
                Thread.sleep(2000);
                rss[2] = ncro.statusKiB("VmRSS");
            }
            System.out.printf("%-38s %8s%n", "server", "MiB/s");
            mibs.forEach((name, v) -> System.out.printf("%-38s %8.0f%n", name, v));
            double ncro = mibs.get("ncro");
            double proxy = mibs.get("nginx proxy (proxy_buffering off)");
            double stat = mibs.get("nginx static (sendfile)");
            System.out.printf("ncro / nginx proxy %.2fx (target >= 1.3x: %s)   ncro / nginx static %.2fx%n",
                    ncro / proxy, ncro / proxy >= 1.3 ? "MET" : "MISSED", ncro / stat);
            System.out.printf("CPU seconds per GiB streamed: ncro %.2f, nginx proxy %.2f (ncro / nginx proxy %.2fx)%n",
                    cpu.get("ncro"), cpu.get("nginx proxy"), cpu.get("ncro") / cpu.get("nginx proxy"));
            long growth = rss[1] - rss[0];
            System.out.printf("ncro VmRSS: before %d MiB, peak during the streams %d MiB, 2 s after %d MiB -> growth %d MiB"
                    + " (target < 64 MiB: %s)%n", rss[0] >> 10, rss[1] >> 10, rss[2] >> 10, growth >> 10,
                    growth < 64 << 10 ? "MET" : "MISSED");
        } finally {
            try (var files = Files.walk(work)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static Duration cpu(Distribution ncro) {
        return ncro.serverProcess().info().totalCpuDuration().orElse(Duration.ZERO);
    }

    /** CPU seconds per GiB of the {@code runs} streams. */
    private double perGiB(Duration cpu) {
        return cpu.toNanos() / 1e9 / (runs * (double) size / (1L << 30));
    }

    private double median(String url) throws Exception {
        double[] v = new double[runs];
        for (int i = 0; i < runs; i++) v[i] = curl(url + NAR);
        Arrays.sort(v);
        return v[runs / 2];
    }

    /** One download with curl to /dev/null, checked for its length; MiB/s. */
    private double curl(String url) throws Exception {
        List<String> command = new ArrayList<>(List.of("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        }
        p.waitFor();
        String[] f = out.split(" ");
        if (f.length != 3 || !f[0].equals("200")) throw new IllegalStateException(url + ": " + out);
        long n = Long.parseLong(f[1]);
        if (!url.endsWith(WARM) && n != size) throw new IllegalStateException(url + ": " + n + " of " + size + " bytes");
        return n / 1048576.0 / Double.parseDouble(f[2]);
    }
}
