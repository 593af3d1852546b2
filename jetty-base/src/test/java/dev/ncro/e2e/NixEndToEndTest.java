package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The spine, end to end: the real Nix client substitutes a closure through ncro running in the
 * stock Jetty distribution, from three signed binary caches written by {@code nix copy} and
 * served by real HTTP upstreams with different delays.
 *
 * <ul>
 *   <li>cache A (50 ms) and cache B (200 ms) hold the closure {@code top → mid → leaf};</li>
 *   <li>cache C (100 ms) holds only {@code solo} (which refers to {@code leaf}).</li>
 * </ul>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NixEndToEndTest {
    private Path work;
    private Nix nix;
    private FakeCache a;
    private FakeCache b;
    private FakeCache c;
    private JettyDistribution jetty;
    private String publicKey;
    private String top;
    private String mid;
    private String leaf;
    private String solo;

    @BeforeAll
    void setUp(@TempDir Path tmp) throws Exception {
        Nix.requireOrSkip();
        work = tmp;
        nix = new Nix(work);
        String src = "local?root=" + work.resolve("src");
        leaf = nix.makePath(src, "builtins.toFile \"leaf\" \"leaf-content\"");
        mid = nix.makePath(src, "let leaf = builtins.toFile \"leaf\" \"leaf-content\"; in builtins.toFile \"mid\" \"mid refers to ${leaf}\"");
        top = nix.makePath(src, "let leaf = builtins.toFile \"leaf\" \"leaf-content\"; mid = builtins.toFile \"mid\" \"mid refers to ${leaf}\"; in "
                + "builtins.toFile \"top\" \"top refers to ${mid} and ${leaf}\"");
        solo = nix.makePath(src, "let leaf = builtins.toFile \"leaf\" \"leaf-content\"; in builtins.toFile \"solo\" \"solo refers to ${leaf}\"");
        publicKey = nix.keyPair("ncro-test-1");
        nix.ok("nix", "store", "sign", "--store", src, "--key-file", work.resolve("ncro-test-1.sk").toString(), "-r", top, solo);
        nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve("cacheA") + "?compression=xz", top);
        nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve("cacheB") + "?compression=zstd", top);
        nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve("cacheC") + "?compression=none", solo);
        Files.delete(work.resolve("cacheC").resolve(hash(leaf) + ".narinfo")); // C has solo only

        a = FakeCache.start().serveDirectory(work.resolve("cacheA")).delay(Duration.ofMillis(50));
        b = FakeCache.start().serveDirectory(work.resolve("cacheB")).delay(Duration.ofMillis(200));
        c = FakeCache.start().serveDirectory(work.resolve("cacheC")).delay(Duration.ofMillis(100));
        Path config = work.resolve("ncro.yaml");
        Files.writeString(config, "upstreams:\n"
                + "  - url: " + a.uri() + "\n    priority: 10\n"
                + "  - url: " + b.uri() + "\n    priority: 10\n"
                + "  - url: " + c.uri() + "\n    priority: 10\n");
        jetty = JettyDistribution.start(Map.of("NCRO_CONFIG", config.toString(),
                "NCRO_DB_PATH", work.resolve("routes.db").toString()));
    }

    @AfterAll
    void tearDown() throws Exception {
        if (jetty != null) jetty.close();
        for (FakeCache cache : new FakeCache[] {a, b, c}) if (cache != null) cache.close();
    }

    private static String hash(String storePath) {
        return storePath.substring("/nix/store/".length(), "/nix/store/".length() + 32);
    }

    private Nix.Result realise(String store, String... paths) throws Exception {
        var args = Nix.list("nix-store", "--store", store, "-r");
        args.addAll(java.util.List.of(paths));
        args.addAll(java.util.List.of("--option", "substituters", jetty.url(),
                "--option", "trusted-public-keys", publicKey));
        return nix.run(args.toArray(String[]::new));
    }

    @Test
    @Order(1) // cold: ncro has never seen these paths
    void nixRealisesAClosureThroughNcroInTheJettyDistribution() throws Exception {
        for (FakeCache cache : new FakeCache[] {a, b, c}) cache.clearLog();
        Path dst = work.resolve("dst1");
        nix.freshNarinfoCache("client1");

        Nix.Result r = realise(dst.toString(), top, solo);

        assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
        Path store = dst.resolve("nix/store");
        assertEquals("top refers to " + mid + " and " + leaf, Files.readString(store.resolve(top.substring(11))));
        assertEquals("mid refers to " + leaf, Files.readString(store.resolve(mid.substring(11))));
        assertEquals("leaf-content", Files.readString(store.resolve(leaf.substring(11))));
        assertEquals("solo refers to " + leaf, Files.readString(store.resolve(solo.substring(11))));

        // every NAR came from the cache whose narinfo won: A for the closure, C for solo
        long narsFromA = a.requests().stream().filter(l -> l.path().startsWith("/nar/")).count();
        long narsFromB = b.requests().stream().filter(l -> l.path().startsWith("/nar/")).count();
        long narsFromC = c.requests().stream().filter(l -> l.path().startsWith("/nar/")).count();
        assertEquals(3, narsFromA, "top, mid and leaf from the fastest cache: " + a.requests());
        assertEquals(0, narsFromB, "the slow cache lost every race: " + b.requests());
        assertEquals(1, narsFromC, "solo exists only in C: " + c.requests());
        assertTrue(b.count("/" + hash(top) + ".narinfo") >= 1, "B was raced too");
        assertTrue(jetty.log().contains(" INFO  [main] dev.ncro.jetty.NcroModule - ncro configured from " + work.resolve("ncro.yaml")
                + " with NCRO_LISTEN, NCRO_DB_PATH: listen 127.0.0.1:" + jetty.port), "the text start-up line:\n" + jetty.log());
        assertTrue(jetty.log().contains("route store: sqlite " + work.resolve("routes.db")),
                "the distribution runs the SQLite route store:\n" + jetty.log());
    }

    @Test
    @Order(2) // warm: whatever ran before, a first client has been through ncro here
    void aSecondClient_getsEveryNarinfoFromNcrosMemory_andOnlyNarsFromUpstreams() throws Exception {
        nix.freshNarinfoCache("warm-first");
        Nix.Result first = realise(work.resolve("dst-warm-first").toString(), top, solo);
        assertEquals(0, first.exit(), first::output);
        for (FakeCache cache : new FakeCache[] {a, b, c}) cache.clearLog();
        Path dst = work.resolve("dst-warm-second");
        nix.freshNarinfoCache("warm-second");

        Nix.Result r = realise(dst.toString(), top, solo);

        assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
        assertEquals("top refers to " + mid + " and " + leaf,
                Files.readString(dst.resolve("nix/store").resolve(top.substring(11))));
        for (FakeCache cache : new FakeCache[] {a, b, c}) {
            assertTrue(cache.requests().stream().noneMatch(l -> l.path().endsWith(".narinfo")),
                    "no narinfo request reached an upstream: " + cache.requests());
        }
        long nars = Stream.of(a, b, c).flatMap(cache -> cache.requests().stream())
                .filter(l -> l.path().startsWith("/nar/")).count();
        assertEquals(4, nars, "the second client's NARs still come from upstreams");
    }
}
