package dev.ncro.bench.load;

import dev.ncro.testing.FakeCache;
import java.io.IOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * N client loops, each a thread with one keep-alive connection, asking one server for what
 * {@link Workload.Cursor} hands out, as fast as answers come (a closed loop: a slow answer
 * slows its client, as it slows a Nix build). Bounded twice: every loop stops at the end time
 * and all together stop after {@code maxRequests}; a request no answer ever comes for ends at
 * the read timeout; a loop still running {@link #JOIN_GRACE_MS} after the end has its
 * connection closed under it.
 */
final class ClientLoops {
    /** What one phase of loops did. */
    record Result(List<Samples> samples, long staleRetries, long connects, boolean countBoundHit, int stuckLoops) {}

    private static final long JOIN_GRACE_MS = 5_000;
    /** Bytes of a narinfo answer kept for the check (the whole narinfo fits). */
    private static final int KEEP_BYTES = 2048;

    private final String host;
    private final int port;
    private final int clients;
    private final int readTimeoutMs;

    ClientLoops(String host, int port, int clients, int readTimeoutMs) {
        this.host = host;
        this.port = port;
        this.clients = clients;
        this.readTimeoutMs = readTimeoutMs;
    }

    /**
     * Runs the loops from now: until {@code zero} (a {@link System#nanoTime}) as warm-up (negative
     * start times), then {@code measureMs}; {@code event} runs {@code eventAtMs} after {@code zero}
     * (null: none).
     */
    Result run(Workload.Cursor cursor, long zero, long measureMs, long maxRequests, long eventAtMs, Runnable event)
            throws InterruptedException {
        long end = zero + TimeUnit.MILLISECONDS.toNanos(measureMs);
        AtomicLong issued = new AtomicLong();
        List<Samples> samples = new ArrayList<>();
        List<HttpConnection> connections = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Samples s = new Samples();
            HttpConnection connection = new HttpConnection(host, port, 5_000, readTimeoutMs);
            SplittableRandom random = new SplittableRandom(0x5eed0000L + c);
            samples.add(s);
            connections.add(connection);
            Thread t = new Thread(null, () -> loop(cursor, connection, s, random, zero, end, issued, maxRequests),
                    "load-client-" + c, 256 * 1024);
            t.setDaemon(true);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        if (event != null) {
            long waitNanos = zero + TimeUnit.MILLISECONDS.toNanos(eventAtMs) - System.nanoTime();
            if (waitNanos > 0) TimeUnit.NANOSECONDS.sleep(waitNanos);
            if (threads.stream().anyMatch(Thread::isAlive)) event.run();
        }
        long joinBy = end + TimeUnit.MILLISECONDS.toNanos(readTimeoutMs + JOIN_GRACE_MS);
        int stuck = 0;
        for (int c = 0; c < clients; c++) {
            long left = joinBy - System.nanoTime();
            threads.get(c).join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            if (threads.get(c).isAlive()) {
                stuck++;
                connections.get(c).close(); // its read fails at once; the loop then sees the end time
                threads.get(c).join(1_000);
            }
        }
        long stale = 0;
        long connects = 0;
        for (HttpConnection connection : connections) {
            stale += connection.staleRetries();
            connects += connection.connects();
            connection.close();
        }
        return new Result(samples, stale, connects, issued.get() > maxRequests, stuck);
    }

    private void loop(Workload.Cursor cursor, HttpConnection connection, Samples samples, SplittableRandom random,
            long zero, long end, AtomicLong issued, long maxRequests) {
        while (System.nanoTime() < end && issued.incrementAndGet() <= maxRequests) {
            Workload.Request request = cursor.next(random);
            String target = request.target();
            long t0 = System.nanoTime();
            short outcome;
            long bytes = 0;
            String detail = null;
            try {
                HttpConnection.Answer answer = connection.get(target, KEEP_BYTES,
                        request.kind() == Workload.Kind.NAR ? ClientLoops::matchesPattern : null);
                bytes = answer.bodyBytes();
                outcome = (short) answer.status();
                if (answer.status() == 200) {
                    detail = wrongBody(request, answer);
                    if (detail != null) {
                        outcome = Samples.WRONG_BODY;
                    } else if (request.kind() == Workload.Kind.NARINFO_COLD) {
                        cursor.answered((int) request.path());
                    }
                } else {
                    detail = oneLine(answer.headText());
                }
            } catch (SocketTimeoutException e) {
                outcome = Samples.TIMEOUT;
                detail = "no byte for " + readTimeoutMs + " ms";
            } catch (HttpConnection.ShortBodyException e) {
                outcome = Samples.SHORT_BODY;
                detail = e.getMessage();
            } catch (ConnectException e) {
                outcome = Samples.REFUSED;
                detail = e.getMessage();
            } catch (IOException | RuntimeException e) {
                outcome = Samples.IO_ERROR;
                detail = e.getClass().getSimpleName() + ": " + e.getMessage();
            }
            long t1 = System.nanoTime();
            int startMs = (int) Math.floorDiv(t0 - zero, 1_000_000L);
            samples.add(startMs, t1 - t0, request.kind(), outcome, bytes);
            boolean expected = request.kind().exists() ? outcome == 200 : outcome == 404;
            if (!expected) {
                samples.failed(new Samples.Failure(startMs / 1000.0, request.kind(), target, Samples.outcomeName(outcome),
                        (t1 - t0) / 1e6, detail));
            }
        }
        connection.close();
    }

    /** Why a 200 answer is not the one for this path, or null when it is. */
    private static String wrongBody(Workload.Request request, HttpConnection.Answer answer) {
        return switch (request.kind()) {
            case NAR -> {
                int size = Workload.narSize((int) request.path());
                if (answer.bodyBytes() != size) yield "NAR of " + answer.bodyBytes() + " bytes, expected " + size;
                yield answer.patternOk() ? null : "NAR bytes differ from the upstream's";
            }
            case NARINFO_COLD, NARINFO_WARM -> {
                String expected = "StorePath: /nix/store/" + Workload.hash((int) request.path()) + "-";
                String narUrl = "URL: " + Workload.narUrl((int) request.path()) + "\n";
                String text = answer.headText();
                yield text.startsWith(expected) && text.contains(narUrl) ? null : "narinfo not this path's: " + oneLine(text);
            }
            case NARINFO_MISS -> null; // a 200 for a miss is reported by its status
        };
    }

    /** Whether {@code buf[off, off + len)} is {@link FakeCache#PATTERN} at body offset {@code position}. */
    static boolean matchesPattern(long position, byte[] buf, int off, int len) {
        byte[] pattern = FakeCache.PATTERN;
        int chunk = FakeCache.CHUNK;
        while (len > 0) {
            int at = (int) (position % chunk);
            int n = Math.min(len, chunk - at);
            if (!Arrays.equals(buf, off, off + n, pattern, at, at + n)) return false;
            position += n;
            off += n;
            len -= n;
        }
        return true;
    }

    private static String oneLine(String text) {
        String t = text.strip().replace('\n', ' ');
        return t.length() > 160 ? t.substring(0, 160) + "…" : t;
    }
}
