package dev.ncro.bench.closure;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real Nix client (Debian's nix-bin, 2.8), run as root without a daemon the way the
 * end-to-end tests run it: every store and narinfo cache below one work directory, and each
 * timed realisation into a store and a narinfo cache ({@code XDG_CACHE_HOME}) of its own.
 */
final class NixClient {
    private final Path work;

    NixClient(Path work) {
        this.work = work;
    }

    /** Fails with a clear message when nix-store is not on PATH. */
    static void require() {
        try {
            if (new ProcessBuilder("nix-store", "--version").redirectErrorStream(true).start().waitFor() == 0) return;
        } catch (IOException | InterruptedException e) {
            // fall through
        }
        throw new IllegalStateException("the closure benchmark needs the real Nix client: apt-get install -y nix-bin");
    }

    private ProcessBuilder process(Path xdg, List<String> args) {
        ProcessBuilder pb = new ProcessBuilder(args).directory(work.toFile()).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.put("NIX_CONFIG", "build-users-group =\nsandbox = false\nexperimental-features = nix-command\n");
        env.put("XDG_CACHE_HOME", xdg.toString());
        env.put("HOME", work.toString());
        return pb;
    }

    private String run(Path xdg, List<String> args) throws IOException, InterruptedException {
        Process p = process(xdg, args).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("timed out: " + String.join(" ", args));
        }
        String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) throw new IllegalStateException(String.join(" ", args) + " failed (" + p.exitValue() + "):\n" + text);
        return text;
    }

    String ok(String... args) throws IOException, InterruptedException {
        return run(work.resolve("xdg"), List.of(args));
    }

    /** Writes a signing key pair {@code name.sk}/{@code name.pk}; returns the public key. */
    String keyPair(String name) throws IOException, InterruptedException {
        Path sk = work.resolve(name + ".sk");
        Path pk = work.resolve(name + ".pk");
        ok("nix-store", "--generate-binary-cache-key", name, sk.toString(), pk.toString());
        return Files.readString(pk).trim();
    }

    /**
     * Realises {@code storePath} (or only looks its closure up, {@code dryRun}) into a fresh
     * store with a fresh narinfo cache, from {@code substituters} in the order given; returns
     * the wall-clock time in milliseconds. The store is deleted afterwards.
     */
    long realise(String run, String storePath, List<String> substituters, List<String> keys, int maxJobs, boolean dryRun)
            throws IOException, InterruptedException {
        Path store = work.resolve("dst-" + run);
        Path xdg = work.resolve("xdg-" + run);
        List<String> args = new ArrayList<>(List.of("nix-store", "--store", store.toString(), "-r", storePath,
                "--option", "substituters", String.join(" ", substituters),
                "--option", "trusted-public-keys", String.join(" ", keys),
                "--option", "max-jobs", Integer.toString(maxJobs)));
        if (dryRun) args.add("--dry-run");
        long t0 = System.nanoTime();
        String out = run(xdg, args);
        long millis = (System.nanoTime() - t0) / 1_000_000;
        if (dryRun && !out.contains("will be fetched")) {
            throw new IllegalStateException("dry run " + run + " found nothing to fetch:\n" + out);
        }
        if (!dryRun && !Files.isDirectory(store.resolve("nix/store"))) {
            throw new IllegalStateException("run " + run + " realised nothing:\n" + out);
        }
        if (!dryRun && !Files.exists(store.resolve(storePath.substring(1)))) {
            throw new IllegalStateException("run " + run + " did not realise " + storePath + ":\n" + out);
        }
        delete(store);
        delete(xdg);
        return millis;
    }

    static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator) {
                p.toFile().setWritable(true);
                Files.delete(p);
            }
        }
    }
}
