package dev.ncro.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The real Nix client (Debian's nix-bin), run as root without a daemon, every store and the
 * narinfo cache below one work directory.
 */
final class Nix {
    record Result(int exit, String output) {}

    /** A run under a time limit: {@code timedOut} when the client was killed at the limit. */
    record Timed(int exit, String output, long millis, boolean timedOut) {}

    private final Path work;
    private final Map<String, String> env = new HashMap<>();

    Nix(Path work) {
        this.work = work;
        env.put("NIX_CONFIG", "build-users-group =\nsandbox = false\nexperimental-features = nix-command\n");
        env.put("XDG_CACHE_HOME", work.resolve("xdg").toString());
        env.put("HOME", work.toString());
    }

    /** Skips the calling test when nix is missing, unless NCRO_REQUIRE_NIX=1 makes that a failure. */
    static void requireOrSkip() {
        boolean present;
        try {
            present = new ProcessBuilder("nix-store", "--version").redirectErrorStream(true).start().waitFor() == 0;
        } catch (IOException | InterruptedException e) {
            present = false;
        }
        if (present) return;
        String msg = "the real Nix client (nix-store from Debian's nix-bin) is not on PATH: apt-get install -y nix-bin";
        if ("1".equals(System.getenv("NCRO_REQUIRE_NIX"))) throw new AssertionError(msg + " (NCRO_REQUIRE_NIX=1)");
        Assumptions.abort(msg + "; skipping the end-to-end test");
    }

    /**
     * The certificates (PEM) the next client runs trust for https. Nix 2.8 reads them from
     * NIX_SSL_CERT_FILE; its ssl-cert-file setting (--option or NIX_CONFIG) does not take.
     */
    void trustCertificates(Path pem) {
        env.put("NIX_SSL_CERT_FILE", pem.toString());
    }

    /** A fresh, empty narinfo cache for the next client run. */
    void freshNarinfoCache(String name) {
        env.put("XDG_CACHE_HOME", work.resolve("xdg-" + name).toString());
    }

    Result run(String... args) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(args).directory(work.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + String.join(" ", args));
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    /**
     * Runs a client for at most {@code limit}; a client still running then is killed, and the
     * result says so, with what it had printed. Fault tests bound their clients this way so that
     * a stall fails the test at its time bound instead of after Nix's own 300 s stall limit.
     */
    Timed run(java.time.Duration limit, String... args) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(args).directory(work.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        long t0 = System.nanoTime();
        Process p = pb.start();
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (var in = p.getInputStream()) {
                in.transferTo(out);
            } catch (IOException e) {
                // the process was killed
            }
        }, "nix-output");
        reader.start();
        boolean finished = p.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS);
        long millis = (System.nanoTime() - t0) / 1_000_000;
        if (!finished) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly().waitFor();
        }
        reader.join(10_000);
        String text;
        synchronized (out) {
            text = out.toString(StandardCharsets.UTF_8);
        }
        return new Timed(finished ? p.exitValue() : -1, text, millis, !finished);
    }

    String ok(String... args) throws IOException, InterruptedException {
        Result r = run(args);
        if (r.exit() != 0) throw new AssertionError(String.join(" ", args) + " failed (" + r.exit() + "):\n" + r.output());
        return r.output();
    }

    /** Evaluates an expression that writes store paths into {@code store}; returns the printed path. */
    String makePath(String store, String expr) throws IOException, InterruptedException {
        String out = ok("nix-instantiate", "--store", store, "--read-write-mode", "--eval", "-E", expr).trim();
        String[] lines = out.split("\n");
        return lines[lines.length - 1].replace("\"", "");
    }

    /** Writes a binary signing key pair; returns the public key. */
    String keyPair(String name) throws IOException, InterruptedException {
        Path sk = work.resolve(name + ".sk");
        Path pk = work.resolve(name + ".pk");
        ok("nix-store", "--generate-binary-cache-key", name, sk.toString(), pk.toString());
        return Files.readString(pk).trim();
    }

    static List<String> list(String... s) {
        return new ArrayList<>(List.of(s));
    }
}
