package dev.ncro.engine;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarStream;
import dev.ncro.metrics.NcroMetrics;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * One NAR download answered from a read-ahead entry it claimed, or, when that entry cannot
 * serve, by the normal stream ({@link NarExchange}).
 *
 * <p>A download that finds its read-ahead still in flight waits for it to complete and be
 * verified, and is then served from memory. If the read-ahead fails, or has no head from its
 * upstream within that upstream's first-byte timeout (counted from the read-ahead's start),
 * the normal stream serves the download from the start (the read-ahead is cancelled; without
 * a head, that upstream is tried last, as after a normal stream's first-byte timeout). The simplest correct choice: the client
 * never sees a byte that was not verified, and a read-ahead that fails half-way never
 * costs it a broken download — at the price of waiting for the whole of a NAR of at most
 * {@code readahead.max_nar_size} before its first byte.
 *
 * <p>The answer from memory looks like the streamed one: status 200 and the headers the
 * upstream sent with the bytes (the same whitelist), in chunks handed over at once (the
 * bytes are in memory already; the web layer writes them as the client reads).
 */
final class ReadAheadStream implements NarStream {
    private static final int CHUNK = 64 * 1024;

    private final ReadAhead.Entry entry;
    private final NarHandler handler;
    private final Supplier<NarStream> normal;
    private final java.util.function.Consumer<dev.ncro.upstream.Upstream> noHead;
    private final NcroMetrics metrics;
    private final Scheduler scheduler;
    private final Executor executor;
    private final AtomicBoolean decided = new AtomicBoolean();
    private volatile boolean cancelled;
    private volatile NarStream fallback;
    private volatile Scheduler.Task timer;

    /** @param noHead told of the upstream when the read-ahead got no head within its first-byte timeout */
    ReadAheadStream(ReadAhead.Entry entry, NarHandler handler, Supplier<NarStream> normal,
            java.util.function.Consumer<dev.ncro.upstream.Upstream> noHead, NcroMetrics metrics,
            Scheduler scheduler, Executor executor) {
        this.noHead = noHead;
        this.entry = entry;
        this.handler = handler;
        this.normal = normal;
        this.metrics = metrics;
        this.scheduler = scheduler;
        this.executor = executor;
    }

    @Override
    public void start() {
        if (!entry.done.isDone()) {
            // the first-byte timeout counts from the read-ahead's start, so joining never
            // waits longer for a head than the normal stream would have
            Duration firstByte = entry.upstream.firstByteTimeout();
            long left = entry.startedNanos + firstByte.toNanos() - System.nanoTime();
            timer = scheduler.schedule(() -> executor.execute(this::firstByteDue), Math.max(0, left), TimeUnit.NANOSECONDS);
        }
        entry.done.whenComplete((ok, x) -> executor.execute(() -> decide(Boolean.TRUE.equals(ok), "the read-ahead failed")));
    }

    /**
     * The read-ahead's first-byte deadline passed: without a head, the download takes the
     * normal stream, and that upstream goes last for it (as a normal stream's first-byte
     * timeout would have done); with one, the download waits for the rest, which the fetch's
     * own stall limit bounds.
     */
    private void firstByteDue() {
        if (entry.headed) return;
        if (!entry.done.isDone()) noHead.accept(entry.upstream);
        decide(false, "no head within the first-byte timeout");
    }

    private void decide(boolean ok, String why) {
        if (!decided.compareAndSet(false, true)) return;
        Scheduler.Task t = timer;
        if (t != null) t.cancel();
        if (cancelled) {
            entry.abandon();
            return;
        }
        if (ok) {
            serve();
        } else {
            entry.abandon();
            metrics.readAheadMisses.inc();
            NarStream s = normal.get();
            fallback = s;
            if (cancelled) { // the client left between the check above and the line before
                s.cancel();
                return;
            }
            s.start();
        }
    }

    private void serve() {
        byte[] bytes = entry.bytes();
        metrics.readAheadHits.inc();
        metrics.narBytes.inc(bytes.length);
        entry.served();
        handler.onHead(200, entry.headers());
        for (int off = 0; off < bytes.length && !cancelled; off += CHUNK) {
            handler.onData(ByteBuffer.wrap(bytes, off, Math.min(CHUNK, bytes.length - off)).slice());
        }
        if (!cancelled) handler.onComplete();
    }

    @Override
    public void release(int bytes) {
        NarStream s = fallback;
        if (s != null) s.release(bytes);
    }

    @Override
    public void cancel() {
        cancelled = true;
        NarStream s = fallback;
        if (s != null) {
            s.cancel();
        } else if (decided.compareAndSet(false, true)) {
            Scheduler.Task t = timer;
            if (t != null) t.cancel();
            entry.abandon();
        }
    }
}
