package dev.ncro.bench.load;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Watches the ncro process during a run: its resident set ({@code VmRSS} from
 * {@code /proc/<pid>/status}) every 200 ms; every second the state ncro's {@code /health}
 * reports for the upstream that will freeze, and from {@code /metrics} the NAR streams open and
 * queued for a per-upstream stream slot. One thread, stopped by {@link #close}.
 */
final class Monitor implements AutoCloseable {
    /**
     * One observation; {@code upstreamState} is null and the stream counts -1 when /health and
     * /metrics were not read at that tick.
     */
    record Tick(int atMs, long rssKiB, String upstreamState, int streamsInFlight, int streamsQueued) {}

    private static final Pattern IN_FLIGHT = Pattern.compile("(?m)^ncro_nar_streams_in_flight (\\S+)$");
    private static final Pattern QUEUED = Pattern.compile("(?m)^ncro_nar_streams_queued (\\S+)$");

    private final Distribution ncro;
    private final String watchedUrl;
    private final long zeroNanos;
    private final List<Tick> ticks = new CopyOnWriteArrayList<>();
    private final Thread thread;
    private volatile boolean running = true;

    /** @param zeroNanos the {@link System#nanoTime} the run's times count from */
    Monitor(Distribution ncro, String watchedUrl, long zeroNanos) {
        this.ncro = ncro;
        this.watchedUrl = watchedUrl;
        this.zeroNanos = zeroNanos;
        this.thread = new Thread(this::run, "load-monitor");
        thread.setDaemon(true);
        thread.start();
    }

    private void run() {
        Pattern state = Pattern.compile("\"url\"\\s*:\\s*\"" + Pattern.quote(watchedUrl) + "\"[^}]*?\"state\"\\s*:\\s*\"(\\w+)\"");
        HttpConnection health = new HttpConnection("127.0.0.1", ncro.port, 2_000, 5_000);
        long tick = 0;
        try {
            while (running) {
                int atMs = (int) TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - zeroNanos);
                String upstreamState = null;
                int inFlight = -1;
                int queued = -1;
                if (tick++ % 5 == 0) {
                    try {
                        Matcher m = state.matcher(health.get("/health", 64 * 1024, null).headText());
                        upstreamState = m.find() ? m.group(1) : "?";
                        String metrics = health.get("/metrics", 1 << 20, null).headText();
                        inFlight = gauge(IN_FLIGHT, metrics);
                        queued = gauge(QUEUED, metrics);
                    } catch (Exception e) {
                        upstreamState = "unanswered";
                    }
                }
                ticks.add(new Tick(atMs, ncro.statusKiB("VmRSS"), upstreamState, inFlight, queued));
                TimeUnit.MILLISECONDS.sleep(200);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            health.close();
        }
    }

    private static int gauge(Pattern p, String metrics) {
        Matcher m = p.matcher(metrics);
        return m.find() ? (int) Double.parseDouble(m.group(1)) : -1;
    }

    List<Tick> ticks() {
        return List.copyOf(ticks);
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.interrupt();
        thread.join(10_000);
    }
}
