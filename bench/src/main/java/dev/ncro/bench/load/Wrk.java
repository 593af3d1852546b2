package dev.ncro.bench.load;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code wrk --latency} rotating over a list of paths (a Lua script, one counter per thread),
 * and what it printed: requests per second, p50 and p99, errors and non-2xx answers.
 */
final class Wrk {
    private static final Pattern RATE = Pattern.compile("Requests/sec:\\s+([0-9.]+)");
    private static final Pattern NON2XX = Pattern.compile("Non-2xx or 3xx responses:\\s+(\\d+)");
    private static final Pattern ERRORS = Pattern.compile("Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)");

    record Result(double requestsPerSecond, double p50Ms, double p99Ms, long non2xx, long socketErrors, String output) {}

    private final Path script;

    Wrk(Path work, List<String> paths) throws IOException {
        StringBuilder lua = new StringBuilder("local paths = {\n");
        for (String p : paths) lua.append("  \"").append(p).append("\",\n");
        lua.append("""
                }
                local i = 0
                request = function()
                  i = i %% #paths + 1
                  return wrk.format("GET", paths[i])
                end
                """.replace("%%", "%"));
        script = work.resolve("rotate.lua");
        Files.writeString(script, lua);
    }

    Result run(String url, int threads, int connections, int seconds) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("wrk", "-t" + threads, "-c" + connections, "-d" + seconds + "s",
                "--latency", "-s", script.toString(), url));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IllegalStateException(String.join(" ", command) + " failed:\n" + out);
        Matcher rate = RATE.matcher(out);
        if (!rate.find()) throw new IllegalStateException("no Requests/sec in wrk's output:\n" + out);
        Matcher non2xx = NON2XX.matcher(out);
        Matcher errors = ERRORS.matcher(out);
        long socketErrors = 0;
        if (errors.find()) {
            for (int g = 1; g <= 4; g++) socketErrors += Long.parseLong(errors.group(g));
        }
        return new Result(Double.parseDouble(rate.group(1)), percentile(out, "50%"), percentile(out, "99%"),
                non2xx.find() ? Long.parseLong(non2xx.group(1)) : 0, socketErrors, out);
    }

    /** A line of wrk's latency distribution, e.g. {@code 99%    2.41ms}, in milliseconds. */
    private static double percentile(String out, String which) {
        Matcher m = Pattern.compile("^\\s+" + Pattern.quote(which) + "\\s+([0-9.]+)(us|ms|s)\\s*$", Pattern.MULTILINE).matcher(out);
        if (!m.find()) throw new IllegalStateException("no " + which + " latency in wrk's output:\n" + out);
        double v = Double.parseDouble(m.group(1));
        return switch (m.group(2)) {
            case "us" -> v / 1000;
            case "s" -> v * 1000;
            default -> v;
        };
    }
}
