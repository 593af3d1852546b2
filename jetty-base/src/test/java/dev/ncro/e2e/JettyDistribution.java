package dev.ncro.e2e;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The real thing: the stock jetty-home unpacked by the build, running the jetty-base this
 * project assembles (or any other base, such as one the module distribution was installed
 * into), as its own JVM, the way an operator starts it. Readiness is the log line Jetty prints
 * when the server has started, not a timer.
 */
final class JettyDistribution implements AutoCloseable {
    static final Path HOME = Path.of(System.getProperty("ncro.jetty.home", "target/jetty-home"));
    static final Path BASE = Path.of(System.getProperty("ncro.jetty.base", "target/jetty-base"));

    final int port;
    private final Process process;
    private final List<String> log = new ArrayList<>();
    private final CountDownLatch started = new CountDownLatch(1);

    private JettyDistribution(Path base, Map<String, String> env, String... properties) throws IOException {
        this(List.of(), base, env, properties);
    }

    /** @param prefix run start.jar under this command, such as {@code ip netns exec NAME} */
    private JettyDistribution(List<String> prefix, Path base, Map<String, String> env, String... properties) throws IOException {
        port = freePort();
        ProcessBuilder pb = startJar(base, properties).redirectErrorStream(true);
        if (!prefix.isEmpty()) {
            List<String> command = new ArrayList<>(prefix);
            command.addAll(pb.command());
            pb.command(command);
        }
        pb.environment().putAll(env);
        pb.environment().put("NCRO_LISTEN", "127.0.0.1:" + port);
        process = pb.start();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    synchronized (log) {
                        log.add(line);
                    }
                    if (line.contains("Started oejs.Server@")) started.countDown();
                }
            } catch (IOException e) {
                // process ended
            } finally {
                started.countDown();
            }
        }, "jetty-log");
        reader.setDaemon(true);
        reader.start();
    }

    /** {@code java -jar start.jar} of the stock jetty-home on {@code base}, run in {@code base}, with {@code args}. */
    private static ProcessBuilder startJar(Path base, String... args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java, "-jar", HOME.toAbsolutePath().resolve("start.jar").toString(),
                "jetty.home=" + HOME.toAbsolutePath(), "jetty.base=" + base.toAbsolutePath()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).directory(base.toFile());
    }

    private static void requireAssembled() {
        if (!Files.isRegularFile(HOME.resolve("start.jar")) || !Files.isDirectory(BASE.resolve("lib/ncro"))) {
            throw new IllegalStateException("run through Maven (mvn verify): no assembled " + BASE + " or " + HOME);
        }
    }

    /** Starts the base this project assembles. */
    static JettyDistribution start(Map<String, String> env) throws Exception {
        return start(BASE, env);
    }

    /** Starts {@code base} with the stock jetty-home, extra start {@code properties} and NCRO_LISTEN on a free port; at most 120 s. */
    static JettyDistribution start(Path base, Map<String, String> env, String... properties) throws Exception {
        requireAssembled();
        JettyDistribution jetty = new JettyDistribution(base, env, properties);
        if (!jetty.started.await(120, TimeUnit.SECONDS) || !jetty.process.isAlive()) {
            String out = jetty.log();
            jetty.close();
            throw new IllegalStateException("Jetty did not start:\n" + out);
        }
        return jetty;
    }

    /**
     * Starts the assembled base inside network namespace {@code netns} (as root); NCRO_LISTEN
     * is that namespace's 127.0.0.1 on a port free in this one (a fresh namespace has none taken).
     */
    static JettyDistribution startInNamespace(String netns, Map<String, String> env) throws Exception {
        requireAssembled();
        JettyDistribution jetty = new JettyDistribution(List.of("ip", "netns", "exec", netns), BASE, env);
        if (!jetty.started.await(120, TimeUnit.SECONDS) || !jetty.process.isAlive()) {
            String out = jetty.log();
            jetty.close();
            throw new IllegalStateException("Jetty did not start in " + netns + ":\n" + out);
        }
        return jetty;
    }

    /** Waits until a log line contains {@code text}; false after {@code max}. */
    boolean awaitLog(String text, Duration max) throws InterruptedException {
        long end = System.nanoTime() + max.toNanos();
        while (System.nanoTime() < end) {
            if (log().contains(text)) return true;
            Thread.sleep(100);
        }
        return log().contains(text);
    }

    /** How a start that was expected to end on its own ended. */
    record Exit(int status, String output) {}

    /** Starts the distribution expecting it to exit by itself (a refused start); at most 120 s. */
    static Exit runToExit(Map<String, String> env) throws Exception {
        requireAssembled();
        JettyDistribution jetty = new JettyDistribution(BASE, env);
        if (!jetty.process.waitFor(120, TimeUnit.SECONDS)) {
            jetty.close();
            throw new AssertionError("Jetty did not exit:\n" + jetty.log());
        }
        jetty.started.await(10, TimeUnit.SECONDS); // the reader has seen the end of the output
        return new Exit(jetty.process.exitValue(), jetty.log());
    }

    /**
     * Runs a start.jar command that ends by itself on {@code base}, such as
     * {@code --add-modules=…}; at most 60 s.
     */
    static Exit command(Path base, String... args) throws Exception {
        requireAssembled();
        Path out = Files.createTempFile("start-jar", ".out");
        try {
            Process p = startJar(base, args).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            boolean ended = p.waitFor(60, TimeUnit.SECONDS);
            if (!ended) p.destroyForcibly().waitFor();
            String output = Files.readString(out);
            if (!ended) throw new AssertionError("start.jar " + String.join(" ", args) + " did not end:\n" + output);
            return new Exit(p.exitValue(), output);
        } finally {
            Files.delete(out);
        }
    }

    String log() {
        synchronized (log) {
            return String.join("\n", log);
        }
    }

    /** The lines logged so far. */
    List<String> logLines() {
        synchronized (log) {
            return List.copyOf(log);
        }
    }

    /**
     * The first line from {@code from} on that contains {@code text}, waiting up to {@code max} for it:
     * another process's output, so it is polled.
     */
    String awaitLogLine(int from, String text, java.time.Duration max) throws InterruptedException {
        long until = System.nanoTime() + max.toNanos();
        while (true) {
            List<String> lines = logLines();
            for (String line : lines.subList(Math.min(from, lines.size()), lines.size())) {
                if (line.contains(text)) return line;
            }
            if (System.nanoTime() > until) throw new AssertionError("no log line with '" + text + "' within " + max + ":\n" + log());
            Thread.sleep(20);
        }
    }

    /** The port of the started connector whose protocols start with {@code protocol} (e.g. {@code SSL}), from Jetty's log. */
    int connectorPort(String protocol) {
        java.util.regex.Pattern started = java.util.regex.Pattern.compile(
                "Started oejs\\.ServerConnector@\\w+\\{" + protocol + "\\b.*\\}\\{[^}]*:(\\d+)\\}");
        for (String line : logLines()) {
            var m = started.matcher(line);
            if (m.find()) return Integer.parseInt(m.group(1));
        }
        throw new AssertionError("no started " + protocol + " connector in the log:\n" + log());
    }

    /** A copy of the assembled base in {@code dir}, for a test that changes its modules. */
    static Path copyBase(Path dir) throws IOException {
        try (var paths = Files.walk(BASE)) {
            for (Path from : (Iterable<Path>) paths::iterator) {
                Path to = dir.resolve(BASE.relativize(from).toString());
                if (Files.isDirectory(from)) {
                    Files.createDirectories(to);
                } else if (!from.getFileName().toString().startsWith("ncro.db")) {
                    Files.copy(from, to);
                }
            }
        }
        return dir;
    }

    /** Runs {@code start.jar} on {@code base} with {@code args} (e.g. {@code --add-modules=forwarded}); it must succeed. */
    static String configure(Path base, String... args) throws Exception {
        Exit exit = command(base, args);
        if (exit.status() != 0) throw new AssertionError("start.jar " + String.join(" ", args) + " failed:\n" + exit.output());
        return exit.output();
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    /** A plain HTTP answer from ncro, and how long it took. */
    record Answer(int status, String body, long millis) {}

    private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newBuilder()
            .connectTimeout(java.time.Duration.ofSeconds(10)).build();

    /** GETs {@code path} from ncro with a plain HTTP client (no retries), timed; at most 60 s. */
    Answer get(String path) throws IOException, InterruptedException {
        java.net.http.HttpRequest request = java.net.http.HttpRequest.newBuilder(java.net.URI.create(url() + path))
                .timeout(java.time.Duration.ofSeconds(60)).build();
        long t0 = System.nanoTime();
        java.net.http.HttpResponse<String> response = HTTP.send(request, java.net.http.HttpResponse.BodyHandlers.ofString());
        return new Answer(response.statusCode(), response.body(), (System.nanoTime() - t0) / 1_000_000);
    }

    /** This upstream's entry in /health ({@code state}, {@code consecutive_failures}, {@code last_probe}, ...). */
    com.fasterxml.jackson.databind.JsonNode health(java.net.URI upstream) throws IOException, InterruptedException {
        String body = get("/health").body();
        for (com.fasterxml.jackson.databind.JsonNode u : new com.fasterxml.jackson.databind.ObjectMapper().readTree(body).path("upstreams")) {
            if (u.path("url").asText().equals(upstream.toString())) return u;
        }
        throw new AssertionError("no upstream " + upstream + " on /health:\n" + body);
    }

    /** Polls /health (another process's state: there is no event to wait for) until {@code upstream} shows {@code state}. */
    void awaitState(java.net.URI upstream, String state, java.time.Duration max) throws IOException, InterruptedException {
        long until = System.nanoTime() + max.toNanos();
        while (System.nanoTime() < until) {
            if (health(upstream).path("state").asText().equals(state)) return;
            Thread.sleep(50);
        }
        throw new AssertionError(upstream + " not " + state + " within " + max + ":\n" + get("/health").body());
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
    }
}
