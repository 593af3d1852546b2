package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One of four upstreams hangs (accepts, never answers). Real Nix realises closures through
 * the real distribution; the times with and without the hanging upstream are printed for the
 * record (never asserted). What is asserted: hits never wait for the hanging upstream, a miss
 * waits for the deadline only while it is still Active, and once probes mark it Down a miss
 * is answered at once without asking it.
 */
class NixHangingUpstreamTest {
    private static final String DEADLINE = "3s";

    @TempDir
    Path work;

    private final List<AutoCloseable> open = new ArrayList<>();
    private final HttpClient http = HttpClient.newHttpClient();

    @AfterEach
    void close() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) open.get(i).close();
    }

    private record Closure(String top, String mid, String leaf) {}

    private Closure closure(Nix nix, String src, String tag) throws Exception {
        String leaf = "builtins.toFile \"leaf-" + tag + "\" \"leaf " + tag + "\"";
        String mid = "builtins.toFile \"mid-" + tag + "\" \"mid ${" + leaf + "}\"";
        String top = "builtins.toFile \"top-" + tag + "\" \"top ${" + mid + "} ${" + leaf + "}\"";
        return new Closure(nix.makePath(src, top), nix.makePath(src, mid), nix.makePath(src, leaf));
    }

    private FakeCache cache(Nix nix, String src, String name, Duration delay, List<Closure> closures) throws Exception {
        for (Closure c : closures) {
            nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve(name) + "?compression=xz", c.top());
        }
        FakeCache cache = FakeCache.start().serveDirectory(work.resolve(name)).delay(delay);
        open.add(cache);
        return cache;
    }

    private JettyDistribution jetty(String name, FakeCache... upstreams) throws Exception {
        StringBuilder yaml = new StringBuilder("upstreams:\n");
        for (FakeCache u : upstreams) yaml.append("  - url: ").append(u.uri()).append("\n    priority: 10\n");
        yaml.append("cache:\n  race_deadline: ").append(DEADLINE).append('\n');
        yaml.append("health:\n  probe_interval: 200ms\n  probe_timeout: 200ms\n");
        yaml.append("logging:\n  format: json\n");
        Path config = work.resolve(name + ".yaml");
        Files.writeString(config, yaml);
        JettyDistribution jetty = JettyDistribution.start(Map.of("NCRO_CONFIG", config.toString(),
                "NCRO_DB_PATH", work.resolve(name + ".db").toString()));
        open.add(jetty);
        return jetty;
    }

    private long realise(Nix nix, JettyDistribution jetty, String publicKey, String client, Closure c) throws Exception {
        nix.freshNarinfoCache(client);
        long t0 = System.nanoTime();
        Nix.Result r = nix.run("nix-store", "--store", work.resolve("dst-" + client).toString(), "-r", c.top(),
                "--option", "substituters", jetty.url(), "--option", "trusted-public-keys", publicKey);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
        return ms;
    }

    private HttpResponse<String> get(JettyDistribution jetty, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(jetty.url() + path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Waits for the probes (every 200 ms, backing off) to mark the upstream Down, as seen on /health. */
    private void awaitDown(JettyDistribution jetty, FakeCache upstream) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        String marker = "\"url\" : \"" + upstream.uri() + "\"";
        while (System.nanoTime() < until) {
            String body = get(jetty, "/health").body();
            int at = body.indexOf(marker);
            if (at >= 0 && body.substring(at, body.indexOf('}', at)).contains("\"state\" : \"down\"")) return;
            Thread.sleep(100); // polling another process's state: the only view there is
        }
        throw new AssertionError(upstream.uri() + " never went down:\n" + get(jetty, "/health").body());
    }

    /** Largest observed race wait, from the histogram's buckets: the first bucket holding every race. */
    private double raceWaitBound(JettyDistribution jetty) throws Exception {
        String metrics = get(jetty, "/metrics").body();
        double count = 0;
        for (String line : metrics.split("\n")) {
            if (line.startsWith("ncro_race_wait_seconds_count ")) count = Double.parseDouble(line.split(" ")[1]);
        }
        for (String line : metrics.split("\n")) {
            if (line.startsWith("ncro_race_wait_seconds_bucket{le=\"")) {
                String le = line.substring(line.indexOf('"') + 1, line.lastIndexOf('"'));
                if (Double.parseDouble(line.split(" ")[1]) == count) return le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le);
            }
        }
        throw new AssertionError("no race_wait histogram in\n" + metrics);
    }

    @Test
    void hangingUpstream_costsNoLookupTheDeadline_onceDown() throws Exception {
        Nix.requireOrSkip();
        Nix nix = new Nix(work);
        String src = "local?root=" + work.resolve("src");
        List<Closure> closures = new ArrayList<>();
        for (String tag : List.of("without", "active", "down")) closures.add(closure(nix, src, tag));
        String publicKey = nix.keyPair("ncro-hang-1");
        for (Closure c : closures) {
            nix.ok("nix", "store", "sign", "--store", src, "--key-file", work.resolve("ncro-hang-1.sk").toString(), "-r", c.top());
        }
        FakeCache a = cache(nix, src, "cacheA", Duration.ofMillis(50), closures);
        FakeCache b = cache(nix, src, "cacheB", Duration.ofMillis(100), closures);
        FakeCache c = cache(nix, src, "cacheC", Duration.ofMillis(150), closures);
        FakeCache hanging = FakeCache.start().hangAll(true);
        open.add(() -> hanging.hangAll(false).close());

        JettyDistribution without = jetty("without", a, b, c);
        long msWithout = realise(nix, without, publicKey, "without", closures.get(0));

        JettyDistribution with = jetty("with", a, b, c, hanging);
        long msActive = realise(nix, with, publicKey, "active", closures.get(1));
        long t0 = System.nanoTime();
        HttpResponse<String> missWhileActive = get(with, "/" + "0".repeat(32) + ".narinfo");
        long missActiveMs = (System.nanoTime() - t0) / 1_000_000;
        awaitDown(with, hanging);
        long msDown = realise(nix, with, publicKey, "down", closures.get(2));
        hanging.clearLog();
        t0 = System.nanoTime();
        HttpResponse<String> missWhileDown = get(with, "/" + "1".repeat(32) + ".narinfo");
        long missDownMs = (System.nanoTime() - t0) / 1_000_000;

        System.out.printf("realise a 3-path closure: without the hanging upstream %d ms; with it, still active %d ms;"
                + " with it marked down %d ms. A miss: %d ms (HTTP %d) while it is active, %d ms (HTTP %d) once it is down.%n",
                msWithout, msActive, msDown, missActiveMs, missWhileActive.statusCode(), missDownMs, missWhileDown.statusCode());

        assertEquals(504, missWhileActive.statusCode(), "while active, a miss waits for it: " + missWhileActive.body());
        assertEquals(404, missWhileDown.statusCode(), missWhileDown.body());
        assertEquals(0, hanging.count("/" + "1".repeat(32) + ".narinfo"), "a Down upstream is not asked");
        // every race but the deliberate miss ended far below the deadline
        assertTrue(raceWaitBound(without) <= 1, "race waits without the hanging upstream");
        assertTrue(with.log().lines().anyMatch(l -> l.startsWith("{") && l.contains("\"loggerName\":\"dev.ncro.jetty.NcroModule\"")
                && l.contains("\"formattedMessage\":\"ncro configured from")), "JSON start-up line:\n" + with.log());
        String metrics = get(with, "/metrics").body();
        assertTrue(metrics.contains("ncro_narinfo_requests_total{status=\"504\"} 1.0"), "only the deliberate miss hit the deadline");
    }
}
