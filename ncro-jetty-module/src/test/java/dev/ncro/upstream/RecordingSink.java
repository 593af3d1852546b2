package dev.ncro.upstream;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.hc.core5.http.EntityDetails;
import org.apache.hc.core5.http.HttpResponse;

/**
 * A {@link StreamingConsumer.Sink} that records what it was shown and, when {@code releasing},
 * releases every chunk at once (a fast client).
 */
class RecordingSink implements StreamingConsumer.Sink {
    final List<Integer> statuses = new CopyOnWriteArrayList<>();
    /** The protocol version of each response, as HttpComponents reports it. */
    final List<org.apache.hc.core5.http.ProtocolVersion> versions = new CopyOnWriteArrayList<>();
    final CountDownLatch head = new CountDownLatch(1);
    final CompletableFuture<Object> end = new CompletableFuture<>();
    private final ByteArrayOutputStream body = new ByteArrayOutputStream();
    private final boolean releasing;
    private UpstreamStream handle;
    private long unreleased;
    volatile String errorThread;

    RecordingSink(boolean releasing) {
        this.releasing = releasing;
    }

    @Override
    public boolean onResponse(HttpResponse response, EntityDetails entity) {
        statuses.add(response.getCode());
        if (response.getVersion() != null) versions.add(response.getVersion());
        head.countDown();
        return true;
    }

    @Override
    public void onData(ByteBuffer data) {
        int n = data.remaining();
        synchronized (body) {
            byte[] b = new byte[n];
            data.get(b);
            body.write(b, 0, n);
        }
        if (!releasing) return;
        UpstreamStream h;
        synchronized (this) {
            h = handle;
            if (h == null) unreleased += n; // data before stream() returned: released on attach
        }
        if (h != null) h.release(n);
    }

    /** The handle {@code stream()} returned; what arrived before it is released now. */
    UpstreamStream attach(UpstreamStream h) {
        long pending;
        synchronized (this) {
            handle = h;
            pending = unreleased;
            unreleased = 0;
        }
        if (releasing && pending > 0) h.release((int) pending);
        return h;
    }

    @Override
    public void onEnd() {
        end.complete("end");
    }

    @Override
    public void onError(Exception failure) {
        errorThread = Thread.currentThread().getName();
        end.complete(failure);
    }

    Object awaitEnd() throws Exception {
        return end.get(Outcome.WAIT_SECONDS, TimeUnit.SECONDS);
    }

    boolean awaitHead() throws InterruptedException {
        return head.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS);
    }

    String body() {
        synchronized (body) {
            return body.toString(StandardCharsets.UTF_8);
        }
    }

    long bytes() {
        synchronized (body) {
            return body.size();
        }
    }
}
