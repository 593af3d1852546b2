package dev.ncro.upstream;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.hc.core5.concurrent.Cancellable;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.apache.hc.core5.http.nio.support.AsyncRequestBuilder;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * One small request ({@link UpstreamClient#request}) across its lookup, redirects and one
 * stale-connection retry, under one deadline. Whatever happens, the callback hears exactly one
 * outcome, on the client's callback executor: {@link #done} decides which.
 */
final class LookupExchange implements Cancellable {
    private final UpstreamClient client;
    private final Upstream upstream;
    private final String method;
    private final int maxBytes;
    private final Duration timeout;
    private final FutureCallback<Fetched> callback;
    private final long deadlineNanos;
    private final AtomicBoolean done = new AtomicBoolean();
    private volatile Scheduler.Task deadline;
    /** The HttpComponents exchange of the current hop, once sent. */
    private volatile Future<Fetched> current;
    private volatile boolean expired;

    LookupExchange(UpstreamClient client, Upstream upstream, String method, int maxBytes, Duration timeout,
            FutureCallback<Fetched> callback) {
        this.client = client;
        this.upstream = upstream;
        this.method = method;
        this.maxBytes = maxBytes;
        this.timeout = timeout;
        this.callback = callback;
        this.deadlineNanos = System.nanoTime() + timeout.toNanos();
    }

    void start(URI uri) {
        deadline = client.scheduler().schedule(this::expire, timeout.toNanos(), TimeUnit.NANOSECONDS);
        hop(uri, 0);
    }

    /**
     * Looks up the host of {@code uri} (and checks its addresses for a redirect), then sends.
     * The exchange's own deadline bounds the lookup: a hung one ends as its TimeoutException.
     */
    private void hop(URI uri, int redirects) {
        client.resolveThen(upstream, uri, redirects > 0, null, done::get, this::fail, this::refuse, () -> send(uri, redirects, false));
    }

    private void send(URI uri, int redirects, boolean retry) {
        BoundedBodyConsumer consumer = new BoundedBodyConsumer(maxBytes);
        try {
            current = client.lookups().execute(AsyncRequestBuilder.create(method).setUri(uri).build(), consumer, null,
                    client.context(upstream, uri, remaining()), new FutureCallback<>() {
                        @Override
                        public void completed(Fetched answer) {
                            answered(uri, redirects, consumer, answer);
                        }

                        @Override
                        public void failed(Exception ex) {
                            if (!retry && idempotent() && !consumer.headArrived() && !done.get()
                                    && UpstreamClient.isStaleConnection(ex)) {
                                // the upstream closed an idle pooled connection: once more on another
                                client.dispatch(() -> send(uri, redirects, true));
                            } else {
                                fail(ex);
                            }
                        }

                        @Override
                        public void cancelled() {
                            fail(new IOException("request to " + upstream.name() + " was cancelled"));
                        }
                    });
        } catch (RuntimeException e) {
            fail(e); // the client is stopping
            return;
        }
        if (expired) current.cancel(true); // the deadline passed while this hop was being sent
    }

    private void answered(URI uri, int redirects, BoundedBodyConsumer consumer, Fetched answer) {
        if (done.get()) return;
        String location = consumer.location();
        if (RedirectPolicy.isRedirect(answer.status()) && location != null) {
            try {
                hop(RedirectPolicy.next(upstream, uri, location, redirects + 1), redirects + 1);
            } catch (RedirectRefusedException e) {
                refuse(e);
            }
            return;
        }
        byte[] body = answer.body();
        // a HEAD answer (a probe) has no body to decode, whatever its headers say
        if (answer.status() == 200 && !method.equals("HEAD") && body.length > 0) {
            try {
                body = ContentDecoding.decode(consumer.contentEncoding(), body, maxBytes);
            } catch (IOException e) {
                fail(new IOException(upstream.name() + ": " + e.getMessage(), e));
                return;
            }
        }
        Fetched fetched = new Fetched(answer.status(), body);
        if (finish()) client.dispatch(() -> callback.completed(fetched));
    }

    private void refuse(RedirectRefusedException e) {
        if (done.get()) return;
        UpstreamClient.logRefused(e);
        fail(e);
    }

    private void fail(Throwable failure) {
        Exception ex = failure instanceof Exception e ? e : new IOException(failure);
        if (finish()) client.dispatch(() -> callback.failed(ex));
    }

    private void expire() {
        if (!finish()) return;
        expired = true;
        Future<Fetched> f = current;
        if (f != null) f.cancel(true); // the upstream is stuck: this exchange is not worth finishing
        client.dispatch(() -> callback.failed(new TimeoutException(
                "no answer from " + upstream.name() + " within " + timeout.toMillis() + " ms")));
    }

    /**
     * Reports {@code cancelled()} at once (on the callback executor). A request already sent
     * runs on to its answer (at most {@code maxBytes}) or its timeout, unreported: an answer read
     * to its end leaves the keep-alive connection in the pool instead of costing the next lookup
     * a new one (and a TLS handshake). The connection is held at most until that timeout.
     */
    @Override
    public boolean cancel() {
        if (!finish()) return false;
        client.dispatch(callback::cancelled);
        return true;
    }

    private boolean idempotent() {
        return method.equals("GET") || method.equals("HEAD");
    }

    /** Claims the one outcome; true for the caller that may report it. */
    private boolean finish() {
        if (!done.compareAndSet(false, true)) return false;
        Scheduler.Task t = deadline;
        if (t != null) t.cancel();
        return true;
    }

    private Duration remaining() {
        long left = deadlineNanos - System.nanoTime();
        return Duration.ofNanos(Math.max(left, TimeUnit.MILLISECONDS.toNanos(1)));
    }
}
