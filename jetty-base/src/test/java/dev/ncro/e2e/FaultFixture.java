package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the fault tests share: signed closures written by {@code nix copy} into one binary
 * cache directory (so every upstream serving it holds byte-identical NARs at the same URLs, as
 * caches filled from the same source do), upstreams serving it, ncro in the real distribution
 * with short timeouts, and the real Nix client realising a closure into a fresh store under a
 * time limit.
 */
final class FaultFixture implements AutoCloseable {
    /** {@code server.first_byte_timeout} in every fault test. */
    static final Duration FIRST_BYTE = Duration.ofSeconds(1);
    /** {@code cache.race_deadline} in every fault test. */
    static final Duration DEADLINE = Duration.ofSeconds(3);

    /**
     * A closure {@code top → mid → leaf} plus {@code top → big}; {@code big} is a ~256 KiB text
     * (xz: ~130 KiB), large enough that a reset half-way really cuts a body in flight. Tests that
     * only look narinfos up make it one line ({@link #smallClosures}).
     */
    record Closure(String top, String mid, String leaf, String big) {
        List<String> paths() {
            return List.of(leaf, mid, big, top);
        }
    }

    /** Lines of {@code big}: 4000 (~256 KiB), or 1 where NAR sizes do not matter. */
    private int bigLines = 4000;

    /** Makes {@code big} a one-line path from now on: cheaper to make, copy and sign. */
    FaultFixture smallClosures() {
        bigLines = 1;
        return this;
    }

    final Path work;
    final Nix nix;
    final String src;
    final Path cache;
    String publicKey;
    private final List<AutoCloseable> open = new ArrayList<>();

    FaultFixture(Path work) {
        this.work = work;
        this.nix = new Nix(work);
        this.src = "local?root=" + work.resolve("src");
        this.cache = work.resolve("cache");
    }

    /**
     * Makes one closure per tag, and {@code extra} single paths (Nix expressions), in one
     * evaluation; signs them all; writes the closures to {@link #cache} (xz). Returns the
     * closures by tag; the extra paths are in {@link #extra}.
     */
    Map<String, Closure> closures(List<String> extraPaths, String... tags) throws Exception {
        StringBuilder list = new StringBuilder("[");
        for (String tag : tags) {
            String leaf = "(builtins.toFile \"leaf-" + tag + "\" \"leaf " + tag + "\")";
            String mid = "(builtins.toFile \"mid-" + tag + "\" \"mid ${" + leaf + "}\")";
            String big = "(builtins.toFile \"big-" + tag + "\" (builtins.concatStringsSep \"\\n\" (builtins.genList (i: "
                    + "builtins.hashString \"sha256\" \"" + tag + "${toString i}\") " + bigLines + ")))";
            String top = "(builtins.toFile \"top-" + tag + "\" \"top ${" + mid + "} ${" + leaf + "} ${" + big + "}\")";
            list.append(' ').append(top).append(' ').append(mid).append(' ').append(leaf).append(' ').append(big);
        }
        for (String e : extraPaths) list.append(" (").append(e).append(')');
        list.append(" ]");
        String json = nix.ok("nix-instantiate", "--store", src, "--read-write-mode", "--eval", "--strict", "--json", "-E", list.toString());
        List<String> paths = new ArrayList<>();
        new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.strip().lines().reduce((x, y) -> y).orElseThrow())
                .forEach(n -> paths.add(n.asText()));
        Map<String, Closure> made = new LinkedHashMap<>();
        for (int i = 0; i < tags.length; i++) {
            made.put(tags[i], new Closure(paths.get(4 * i), paths.get(4 * i + 1), paths.get(4 * i + 2), paths.get(4 * i + 3)));
        }
        extra.addAll(paths.subList(4 * tags.length, paths.size()));
        publicKey = nix.keyPair("ncro-fault-1");
        List<String> sign = Nix.list("nix", "store", "sign", "--store", src, "--key-file", work.resolve("ncro-fault-1.sk").toString(), "-r");
        sign.addAll(paths);
        nix.ok(sign.toArray(String[]::new));
        if (tags.length > 0) {
            List<String> copy = Nix.list("nix", "copy", "--from", src, "--to", "file://" + cache + "?compression=xz");
            made.values().forEach(c -> copy.add(c.top()));
            nix.ok(copy.toArray(String[]::new));
        }
        return made;
    }

    Map<String, Closure> closures(String... tags) throws Exception {
        return closures(List.of(), tags);
    }

    /** The extra single paths made by {@link #closures(List, String...)}, in order. */
    final List<String> extra = new ArrayList<>();

    /** An upstream serving {@link #cache}, closed after the test. */
    FakeCache upstream(Duration delay) {
        FakeCache u = FakeCache.start().serveDirectory(cache).delay(delay);
        open.add(() -> u.hangAll(false).close());
        return u;
    }

    /** An upstream serving another directory, closed after the test. */
    FakeCache upstream(Path dir, Duration delay) {
        FakeCache u = FakeCache.start().serveDirectory(dir).delay(delay);
        open.add(() -> u.hangAll(false).close());
        return u;
    }

    /**
     * The ncro configuration for these upstreams: the first is the preferred tier (priority
     * 10), each next one a tier behind it, so the first wins every race it can; short first-byte
     * timeout and race deadline; {@code probes} as given.
     */
    Path config(String name, Duration probeInterval, Duration probeTimeout, FakeCache... upstreams) throws Exception {
        StringBuilder yaml = new StringBuilder("server:\n  first_byte_timeout: " + FIRST_BYTE.toMillis() + "ms\n");
        yaml.append("upstreams:\n");
        int priority = 10;
        for (FakeCache u : upstreams) {
            yaml.append("  - url: ").append(u.uri()).append("\n    priority: ").append(priority).append('\n');
            yaml.append("    public_key: \"").append(publicKey).append("\"\n");
            priority += 10;
        }
        yaml.append("cache:\n  race_deadline: ").append(DEADLINE.toMillis()).append("ms\n");
        yaml.append("health:\n  probe_interval: ").append(probeInterval.toMillis()).append("ms\n");
        yaml.append("  probe_timeout: ").append(probeTimeout.toMillis()).append("ms\n");
        Path config = work.resolve(name + ".yaml");
        Files.writeString(config, yaml);
        return config;
    }

    /** Starts ncro in the real distribution with this configuration and database; stopped after the test. */
    JettyDistribution ncro(Path config, Path db) throws Exception {
        return ncro(JettyDistribution.BASE, config, db);
    }

    /** Starts ncro in the Jetty base {@code base} with this configuration and database; stopped after the test. */
    JettyDistribution ncro(Path base, Path config, Path db) throws Exception {
        JettyDistribution jetty = JettyDistribution.start(base, Map.of("NCRO_CONFIG", config.toString(),
                "NCRO_DB_PATH", db.toString()));
        open.add(jetty);
        return jetty;
    }

    /** Realises {@code storePath} through ncro into a fresh store, with a fresh narinfo cache, within {@code limit}. */
    Nix.Timed realise(JettyDistribution ncro, String client, String storePath, Duration limit) throws Exception {
        nix.freshNarinfoCache(client);
        return nix.run(limit, "nix-store", "--store", work.resolve("dst-" + client).toString(), "-r", storePath,
                "--option", "substituters", ncro.url(), "--option", "trusted-public-keys", publicKey);
    }

    /** Every path of the closure is in the client's store, byte for byte as in the source store. */
    void assertRealised(String client, Closure c) throws Exception {
        for (String p : c.paths()) {
            Path got = work.resolve("dst-" + client).resolve("nix/store").resolve(p.substring("/nix/store/".length()));
            Path want = work.resolve("src/nix/store").resolve(p.substring("/nix/store/".length()));
            assertEquals(-1L, Files.mismatch(want, got), p + " realised by " + client);
        }
    }

    /** The NAR URL path ({@code /nar/….nar.xz}) of each store path, from the narinfos nix copy wrote. */
    Map<String, String> narUrls(Closure c) throws Exception {
        Map<String, String> urls = new LinkedHashMap<>();
        for (String p : c.paths()) {
            String narinfo = Files.readString(cache.resolve(hash(p) + ".narinfo"));
            String url = narinfo.lines().filter(l -> l.startsWith("URL: ")).findFirst().orElseThrow().substring(5);
            urls.put(p, "/" + url);
        }
        return urls;
    }

    static String hash(String storePath) {
        return storePath.substring("/nix/store/".length(), "/nix/store/".length() + 32);
    }

    /** The client's output and ncro's log, for a failure message. */
    static String explain(Nix.Timed r, JettyDistribution ncro) {
        return (r.timedOut() ? "nix-store was still running at the limit, after " + r.millis() + " ms, and was killed"
                : "nix-store exited " + r.exit() + " after " + r.millis() + " ms")
                + "\n--- nix output ---\n" + r.output() + "\n--- ncro log (tail) ---\n" + tail(ncro.log(), 60);
    }

    static String tail(String text, int lines) {
        String[] all = text.split("\n");
        return String.join("\n", java.util.Arrays.copyOfRange(all, Math.max(0, all.length - lines), all.length));
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        for (int i = open.size() - 1; i >= 0; i--) {
            try {
                open.get(i).close();
            } catch (Exception e) {
                if (first == null) first = e;
            }
        }
        open.clear();
        if (first != null) throw first;
    }
}
