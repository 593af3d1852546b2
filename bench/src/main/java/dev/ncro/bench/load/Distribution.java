package dev.ncro.bench.load;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * ncro as an operator runs it: the stock jetty-home's {@code start.jar} with the jetty-base the
 * build assembles, in a JVM of its own, configured by {@code NCRO_CONFIG}, {@code NCRO_LISTEN}
 * and {@code NCRO_DB_PATH}. JVM options are given to the {@code java} that runs start.jar: the
 * base asks for no {@code --exec}, so start.jar runs Jetty inside that same JVM, and the pid
 * started here is the server's (checked: if start.jar forked a child JVM, the child is
 * measured instead).
 *
 * <p>The log goes to a file; lines at WARN and ERROR are also counted by message (hashes and
 * numbers masked) so a run can show what ncro complained about. {@link #close} stops the
 * process and everything it started: SIGTERM, then SIGKILL after a grace; a shutdown hook does
 * the same if the bench JVM is interrupted.
 */
public final class Distribution implements AutoCloseable {
    private static final Pattern MASK = Pattern.compile("[0-9a-z]{32,64}|\\b\\d+(\\.\\d+)?\\b");
    private static final Pattern LEVEL = Pattern.compile("^\\S+ (WARN|ERROR)\\s+\\[[^]]*] (\\S+) - (.*)$");

    final int port;
    final List<String> command;
    final Path logFile;
    private final Process process;
    private final CountDownLatch started = new CountDownLatch(1);
    private final Map<String, AtomicLong> complaints = new LinkedHashMap<>();
    private final List<String> tail = new CopyOnWriteArrayList<>();
    private final Thread hook;

    private Distribution(Path home, Path base, Path work, Path config, List<String> jvmOptions, boolean logToFile)
            throws IOException {
        port = freePort();
        logFile = work.resolve("jetty.log");
        String java = ProcessHandle.current().info().command().orElse("java");
        command = new ArrayList<>();
        command.add(java);
        command.addAll(jvmOptions);
        command.addAll(List.of("-jar", home.resolve("start.jar").toString(), "jetty.home=" + home, "jetty.base=" + base));
        ProcessBuilder pb = new ProcessBuilder(command).directory(base.toFile()).redirectErrorStream(true);
        if (logToFile) pb.redirectOutput(logFile.toFile());
        pb.environment().put("NCRO_CONFIG", config.toString());
        pb.environment().put("NCRO_LISTEN", "127.0.0.1:" + port);
        pb.environment().put("NCRO_DB_PATH", work.resolve("routes.db").toString());
        process = pb.start();
        hook = new Thread(this::kill, "kill-ncro");
        Runtime.getRuntime().addShutdownHook(hook);
        Thread reader = new Thread(logToFile ? this::awaitStartedInFile : this::readLog, "ncro-log");
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts the distribution and waits for Jetty's "Started" line (at most {@code maxSeconds}). */
    public static Distribution start(Path home, Path base, Path work, Path config, List<String> jvmOptions, int maxSeconds)
            throws Exception {
        return start(home, base, work, config, jvmOptions, maxSeconds, false);
    }

    /**
     * {@link #start}, with {@code logToFile}: the server's output goes straight to the log file,
     * not through this JVM (a throughput run, where reading tens of thousands of access lines a
     * second would cost the benchmark's CPU); nothing is counted then.
     */
    static Distribution start(Path home, Path base, Path work, Path config, List<String> jvmOptions, int maxSeconds,
            boolean logToFile) throws Exception {
        if (!Files.isRegularFile(home.resolve("start.jar")) || !Files.isDirectory(base.resolve("lib/ncro"))) {
            throw new IllegalStateException("no assembled distribution at " + home + " and " + base
                    + ": run mvn -B -DskipTests package first (bench/run does)");
        }
        Distribution d = new Distribution(home, base, work, config, jvmOptions, logToFile);
        try {
            if (!d.started.await(maxSeconds, TimeUnit.SECONDS) || !d.process.isAlive()) {
                throw new IllegalStateException("Jetty did not start within " + maxSeconds + " s; last lines:\n"
                        + String.join("\n", d.tail));
            }
        } catch (Exception | Error e) {
            d.close();
            throw e;
        }
        return d;
    }

    private void readLog() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                PrintWriter out = new PrintWriter(Files.newBufferedWriter(logFile))) {
            for (String line; (line = in.readLine()) != null; ) {
                out.println(line);
                tail.add(line);
                if (tail.size() > 40) tail.remove(0);
                if (line.contains("Started oejs.Server@")) started.countDown();
                var m = LEVEL.matcher(line);
                if (m.matches()) {
                    String key = m.group(1) + " " + m.group(2) + ": " + MASK.matcher(m.group(3)).replaceAll("#");
                    if (key.length() > 220) key = key.substring(0, 220) + "…";
                    synchronized (complaints) {
                        if (complaints.size() < 200 || complaints.containsKey(key)) {
                            complaints.computeIfAbsent(key, k -> new AtomicLong()).incrementAndGet();
                        }
                    }
                }
            }
        } catch (IOException e) {
            // the process ended
        } finally {
            started.countDown();
        }
    }

    private void awaitStartedInFile() {
        try {
            while (process.isAlive()) {
                if (Files.exists(logFile)) {
                    List<String> lines = Files.readAllLines(logFile);
                    tail.clear();
                    tail.addAll(lines.subList(Math.max(0, lines.size() - 40), lines.size()));
                    if (lines.stream().anyMatch(l -> l.contains("Started oejs.Server@"))) break;
                }
                Thread.sleep(100);
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            // the process ended or the file is unreadable: the start times out
        } finally {
            started.countDown();
        }
    }

    /** The server JVM: the started process, or the JVM start.jar forked if it did. */
    ProcessHandle serverProcess() {
        return process.children().reduce((a, b) -> b).orElse(process.toHandle());
    }

    boolean forked() {
        return process.children().findAny().isPresent();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** A line of the server's /proc/pid/status, in KiB ({@code VmRSS}, {@code VmHWM}); -1 if unreadable. */
    long statusKiB(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + serverProcess().pid() + "/status"))) {
                if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        } catch (IOException | RuntimeException e) {
            // the process is gone
        }
        return -1;
    }

    /** WARN/ERROR lines by masked message, most frequent first. */
    List<Map.Entry<String, Long>> complaints() {
        synchronized (complaints) {
            return complaints.entrySet().stream()
                    .map(e -> Map.entry(e.getKey(), e.getValue().get()))
                    .sorted((a, b) -> Long.compare(b.getValue(), a.getValue()))
                    .toList();
        }
    }

    public String url() {
        return "http://127.0.0.1:" + port;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private void kill() {
        List<ProcessHandle> all = new ArrayList<>(process.descendants().toList());
        process.destroy();
        all.forEach(ProcessHandle::destroy);
        try {
            if (!process.waitFor(20, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        all.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }

    @Override
    public void close() {
        kill();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: the hook runs anyway
        }
    }
}
