package dev.ncro.upstream;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hc.core5.concurrent.FutureCallback;

/** Captures the one outcome of a {@link UpstreamClient#fetch}: how often, on which thread, what. */
final class Outcome implements FutureCallback<Fetched> {
    /** Generous bound for anything that should take milliseconds: a hung test fails, never a slow one. */
    static final long WAIT_SECONDS = 20;

    final CompletableFuture<Object> result = new CompletableFuture<>();
    final AtomicInteger calls = new AtomicInteger();
    volatile String thread;
    volatile long atNanos;

    private void record(Object what) {
        calls.incrementAndGet();
        thread = Thread.currentThread().getName();
        atNanos = System.nanoTime();
        result.complete(what);
    }

    @Override
    public void completed(Fetched fetched) {
        record(fetched);
    }

    @Override
    public void failed(Exception ex) {
        record(ex);
    }

    @Override
    public void cancelled() {
        record("cancelled");
    }

    Object await() throws Exception {
        return result.get(WAIT_SECONDS, TimeUnit.SECONDS);
    }

    Fetched fetched() throws Exception {
        Object o = await();
        if (o instanceof Fetched f) return f;
        throw new AssertionError("expected an answer, got " + o, o instanceof Throwable t ? t : null);
    }

    String body() throws Exception {
        return new String(fetched().body(), StandardCharsets.UTF_8);
    }

    Exception failure() throws Exception {
        Object o = await();
        if (o instanceof Exception e) return e;
        throw new AssertionError("expected a failure, got " + (o instanceof Fetched f ? "HTTP " + f.status() : o));
    }
}
