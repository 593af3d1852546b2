package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fastest upstream serves narinfos whose signatures do not verify (each carries another
 * path's genuine signature); the real Nix client still realises the closure, from the honest
 * upstream, through ncro in the real distribution.
 */
class NixTrustTest {
    @TempDir
    Path work;

    @Test
    void badSignaturesOnTheFastestUpstream_theClientStillRealisesFromTheHonestOne() throws Exception {
        Nix.requireOrSkip();
        Nix nix = new Nix(work);
        String src = "local?root=" + work.resolve("src");
        String leaf = "builtins.toFile \"trust-leaf\" \"leaf\"";
        String mid = "builtins.toFile \"trust-mid\" \"mid ${" + leaf + "}\"";
        String top = nix.makePath(src, "builtins.toFile \"trust-top\" \"top ${" + mid + "} ${" + leaf + "}\"");
        String publicKey = nix.keyPair("ncro-trust-1");
        nix.ok("nix", "store", "sign", "--store", src, "--key-file", work.resolve("ncro-trust-1.sk").toString(), "-r", top);
        for (String cache : List.of("forged", "honest")) {
            nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve(cache) + "?compression=xz", top);
        }
        // forge: rotate the Sig lines among the forged cache's narinfos
        List<Path> narinfos;
        try (Stream<Path> files = Files.list(work.resolve("forged"))) {
            narinfos = files.filter(p -> p.toString().endsWith(".narinfo")).sorted().toList();
        }
        List<String> sigs = new ArrayList<>();
        for (Path p : narinfos) sigs.add(Files.readString(p).lines().filter(l -> l.startsWith("Sig: ")).findFirst().orElseThrow());
        for (int i = 0; i < narinfos.size(); i++) {
            Path p = narinfos.get(i);
            Files.writeString(p, Files.readString(p).replace(sigs.get(i), sigs.get((i + 1) % sigs.size())));
        }

        try (FakeCache forged = FakeCache.start().serveDirectory(work.resolve("forged")).delay(Duration.ofMillis(20));
                FakeCache honest = FakeCache.start().serveDirectory(work.resolve("honest")).delay(Duration.ofMillis(150))) {
            Path config = work.resolve("ncro.yaml");
            Files.writeString(config, "upstreams:\n"
                    + "  - url: " + forged.uri() + "\n    public_key: \"" + publicKey + "\"\n"
                    + "  - url: " + honest.uri() + "\n    public_key: \"" + publicKey + "\"\n");
            try (JettyDistribution jetty = JettyDistribution.start(Map.of("NCRO_CONFIG", config.toString(),
                    "NCRO_DB_PATH", work.resolve("routes.db").toString()))) {
                nix.freshNarinfoCache("trust");
                Nix.Result r = nix.run("nix-store", "--store", work.resolve("dst").toString(), "-r", top,
                        "--option", "substituters", jetty.url(), "--option", "trusted-public-keys", publicKey);

                assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
                assertTrue(Files.readString(work.resolve("dst/nix/store").resolve(top.substring(11))).startsWith("top "));
                assertTrue(forged.requests().stream().anyMatch(l -> l.path().endsWith(".narinfo")), "the forger was raced");
                assertTrue(forged.requests().stream().noneMatch(l -> l.path().startsWith("/nar/")), "but served nothing");
                assertEquals(3, honest.requests().stream().filter(l -> l.path().startsWith("/nar/")).count());
                assertTrue(jetty.log().contains("does not match the narinfo"), "the rejections are logged");
            }
        }
    }
}
