package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * mDNS discovery for real, across a link: two network namespaces joined by a veth pair. In
 * the first, a binary cache announces itself as {@code _nix-serve._tcp} ({@link
 * AdvertisedCache}, JmDNS); in the second, the assembled distribution runs with
 * {@code discovery.enabled} and a configured upstream that is up and holds nothing (an
 * unannounced empty cache beside the announced one). ncro finds the cache, serves its signed
 * narinfo, refuses its unsigned one (discovery.public_keys), and stops using it once the cache
 * withdraws its announcement; a NAR whose narinfo came from the cache that left is then 502,
 * not the 404 the remaining upstream gives (Nix would hide the path); it advertises itself,
 * never adds itself, and never makes another ncro (announced with {@code ncro=1}) an upstream.
 *
 * <p>Needs root and {@code ip netns}; skipped otherwise, a failure under NCRO_REQUIRE_NIX=1
 * (CI, which runs as root).
 */
class DiscoveryNetnsTest {
    private static final int CACHE_PORT = 5000;

    @TempDir
    Path work;

    private final String id = HexFormat.of().toHexDigits((short) ThreadLocalRandom.current().nextInt());
    private final String cacheNs = "ncro-dc-" + id;
    private final String ncroNs = "ncro-dn-" + id;
    private final List<String> namespaces = new ArrayList<>();
    private Process advertiser;
    /** The cache namespace's end of the link, set by {@link #link}. */
    private String cacheAddress;

    @AfterEach
    void tearDown() throws Exception {
        if (advertiser != null) {
            advertiser.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        for (String ns : namespaces) run("ip", "netns", "del", ns);
    }

    @Test
    void cacheAnnouncedOnTheLan_isFoundUsedTrustCheckedAndDroppedWhenItLeaves() throws Exception {
        requireNetnsOrSkip();
        link();
        String publicKey = fixture("ncro-fixture-1.pk").trim();

        advertiser = new ProcessBuilder("ip", "netns", "exec", cacheNs, java(), "-cp", System.getProperty("java.class.path"),
                AdvertisedCache.class.getName(), String.valueOf(CACHE_PORT), AdvertisedCache.MID)
                .redirectErrorStream(true).start();
        BufferedReader advertiserOut = new BufferedReader(new InputStreamReader(advertiser.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder advertiserLog = new StringBuilder();
        assertTrue(awaitLine(advertiserOut, "ADVERTISED", advertiserLog), () -> "the cache did not advertise:\n" + advertiserLog);

        Path config = work.resolve("ncro.yaml");
        // the configured upstream is up and holds nothing: only the discovered cache has the
        // paths, and once it left, the configured one's 404 is no proof a NAR is missing
        Files.writeString(config, "upstreams:\n"
                + "  - url: http://" + cacheAddress + ":" + (CACHE_PORT + 2) + "\n    priority: 10\n    public_key: \""
                + publicKey + "\"\n"
                + "discovery:\n  enabled: true\n  priority: 20\n  public_keys: [\"" + publicKey + "\"]\n");
        try (JettyDistribution ncro = JettyDistribution.startInNamespace(ncroNs, Map.of("NCRO_CONFIG", config.toString(),
                "NCRO_DB_PATH", work.resolve("routes.db").toString()))) {
            assertTrue(ncro.awaitLog("mDNS: discovered cache lan cache", Duration.ofSeconds(30)),
                    () -> "ncro did not discover the cache:\n" + ncro.log() + "\n--- cache ---\n" + advertiserLog);

            assertTrue(ncro.awaitLog("mDNS: advertised _nix-serve._tcp.local.", Duration.ofSeconds(30)),
                    () -> "ncro did not advertise itself:\n" + ncro.log());

            Fetch top = fetch(ncro, AdvertisedCache.TOP + ".narinfo");
            assertEquals(200, top.status(), () -> top + "\n" + ncro.log());
            assertTrue(top.body().contains("StorePath: /nix/store/" + AdvertisedCache.TOP), top.body());
            String health = fetch(ncro, "health").body();
            assertTrue(health.contains(":" + CACHE_PORT + "\""), () -> "the discovered cache is a /health row: " + health);
            assertTrue(!health.contains(":" + (CACHE_PORT + 1) + "\""), () -> "another ncro is not an upstream: " + health + "\n" + ncro.log());

            java.util.regex.Matcher url = java.util.regex.Pattern.compile("(?m)^URL: (\\S+)$").matcher(top.body());
            assertTrue(url.find(), top.body());
            String nar = url.group(1);

            Fetch unsigned = fetch(ncro, AdvertisedCache.MID + ".narinfo");
            assertTrue(unsigned.status() != 200, () -> "an unsigned narinfo from a discovered cache was served: " + unsigned);

            try (Writer w = new OutputStreamWriter(advertiser.getOutputStream(), StandardCharsets.UTF_8)) {
                w.write("withdraw\n");
                w.flush();
                assertTrue(awaitLine(advertiserOut, "WITHDRAWN", advertiserLog), advertiserLog::toString);
                assertTrue(ncro.awaitLog("went away: no longer used", Duration.ofSeconds(30)),
                        () -> "ncro did not drop the cache:\n" + ncro.log());
                Fetch leaf = fetch(ncro, AdvertisedCache.LEAF + ".narinfo");
                assertTrue(leaf.status() != 200, () -> "a withdrawn cache was still used: " + leaf);
                String healthAfter = fetch(ncro, "health").body();
                assertTrue(!healthAfter.contains(":" + CACHE_PORT + "\""), () -> "and its /health row is gone: " + healthAfter);
                // the NAR its narinfo named: the configured upstream says 404, but the cache
                // that named it was never asked, so the answer must not be a not-found
                Fetch orphan = fetch(ncro, nar);
                assertEquals(502, orphan.status(), () -> orphan + "\n" + ncro.log());
                assertTrue(orphan.body().contains("no longer an upstream"), orphan::toString);
            }
            String log = ncro.log();
            assertTrue(!log.contains("discovered cache other ncro"),
                    () -> "another ncro (ncro=1) was made an upstream:\n" + log);
            assertTrue(!log.contains("discovered cache ncro-"), () -> "ncro discovered itself:\n" + log);
        }
    }

    /** One veth pair, 10.213.N.1 (cache) and .2 (ncro), loopback up, multicast routed to the link. */
    private void link() throws Exception {
        for (String ns : List.of(cacheNs, ncroNs)) {
            ok("ip", "netns", "add", ns);
            namespaces.add(ns);
            ok("ip", "-n", ns, "link", "set", "lo", "up");
        }
        String a = "nd" + id + "a";
        String b = "nd" + id + "b";
        ok("ip", "link", "add", a, "netns", cacheNs, "type", "veth", "peer", "name", b, "netns", ncroNs);
        int subnet = Integer.parseInt(id, 16) % 250;
        cacheAddress = "10.213." + subnet + ".1";
        ok("ip", "-n", cacheNs, "addr", "add", cacheAddress + "/24", "dev", a);
        ok("ip", "-n", ncroNs, "addr", "add", "10.213." + subnet + ".2/24", "dev", b);
        ok("ip", "-n", cacheNs, "link", "set", a, "up", "multicast", "on");
        ok("ip", "-n", ncroNs, "link", "set", b, "up", "multicast", "on");
        ok("ip", "-n", cacheNs, "route", "add", "224.0.0.0/4", "dev", a);
        ok("ip", "-n", ncroNs, "route", "add", "224.0.0.0/4", "dev", b);
    }

    private record Fetch(int status, String body) {}

    /** curl inside the ncro namespace (ncro listens on that namespace's loopback). */
    private Fetch fetch(JettyDistribution ncro, String path) throws Exception {
        Process p = new ProcessBuilder("ip", "netns", "exec", ncroNs, "curl", "-sS", "-m", "30", "-w", "\n%{http_code}",
                "http://127.0.0.1:" + ncro.port + "/" + path).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(40, TimeUnit.SECONDS);
        int nl = out.lastIndexOf('\n');
        return new Fetch(Integer.parseInt(out.substring(nl + 1).trim()), out.substring(0, Math.max(nl, 0)));
    }

    /** Reads the advertiser's output until a line starts with {@code prefix}; false at its end or after 60 s. */
    private static boolean awaitLine(BufferedReader in, String prefix, StringBuilder log) throws Exception {
        java.util.concurrent.CompletableFuture<Boolean> seen = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                for (String line; (line = in.readLine()) != null; ) {
                    synchronized (log) {
                        log.append(line).append('\n');
                    }
                    if (line.startsWith(prefix)) return true;
                }
            } catch (IOException e) {
                // the process ended
            }
            return false;
        }, r -> {
            Thread t = new Thread(r, "advertiser-output");
            t.setDaemon(true);
            t.start();
        });
        try {
            return seen.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        }
    }

    private static String fixture(String name) throws Exception {
        try (var in = DiscoveryNetnsTest.class.getResourceAsStream("/dev/ncro/trust/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static String java() {
        return ProcessHandle.current().info().command().orElse("java");
    }

    /** Skips without root or ip netns, unless NCRO_REQUIRE_NIX=1 makes that a failure. */
    private void requireNetnsOrSkip() throws Exception {
        String why = null;
        if (!"root".equals(System.getProperty("user.name"))) {
            why = "not root";
        } else if (!hasCommand("ip") || !hasCommand("curl")) {
            why = "ip (iproute2) or curl is missing";
        } else {
            String probe = "ncro-probe-" + id;
            if (run("ip", "netns", "add", probe) != 0) why = "ip netns add is not permitted here";
            else run("ip", "netns", "del", probe);
        }
        if (why == null) return;
        String msg = "discovery across network namespaces needs root and ip netns: " + why;
        if ("1".equals(System.getenv("NCRO_REQUIRE_NIX"))) throw new AssertionError(msg + " (NCRO_REQUIRE_NIX=1)");
        Assumptions.abort(msg + "; skipping");
    }

    private static boolean hasCommand(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, name))) return true;
        }
        return Files.isExecutable(Path.of("/usr/sbin", name)) || Files.isExecutable(Path.of("/sbin", name));
    }

    private static void ok(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", command) + " failed: " + out);
        }
    }

    private static int run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor(30, TimeUnit.SECONDS) ? p.exitValue() : -1;
    }
}
