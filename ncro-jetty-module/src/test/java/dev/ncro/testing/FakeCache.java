package dev.ncro.testing;

import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.alpn.server.ALPNServerConnectionFactory;
import org.eclipse.jetty.http2.server.HTTP2ServerConnectionFactory;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.ssl.SslHandshakeListener;
import org.eclipse.jetty.server.ConnectionFactory;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.IteratingCallback;
import org.eclipse.jetty.util.ssl.SslContextFactory;

/**
 * A scriptable binary cache: a real Jetty server on 127.0.0.1, port 0, serving files from
 * memory, from a directory (as {@code nix copy --to file://} writes it) or generated on the
 * fly (for NARs larger than memory). Each path — or every path under a prefix, such as
 * {@code /nar/}, or {@code /} for everything, probes included — can be scripted to answer a
 * status, hang before the head, reset the connection after some bytes or a fraction of the
 * body; a delay can be set for the whole cache; the whole cache can freeze ({@link #hangAll})
 * or restart ({@link #restart}). Every request is logged as it arrives, whatever the script
 * then does with it, so tests check what the upstream actually received.
 *
 * <p>{@link #startHttps} serves https instead, with a {@link SelfSignedCert}, speaking HTTP/1.1
 * only or also HTTP/2 (offered in ALPN); it counts TLS handshakes and connections.
 */
public final class FakeCache implements AutoCloseable {
    /** What the cache received, and when it arrived ({@link System#nanoTime()}). */
    public record Logged(String method, String target, Map<String, String> headers, long arrivedNanos) {
        public String path() {
            int q = target.indexOf('?');
            return q < 0 ? target : target.substring(0, q);
        }
    }

    private sealed interface Script permits Status, Hang, ResetAfter, ResetHalfWay {}
    private record Status(int code) implements Script {}
    private record Hang() implements Script {}
    private record ResetAfter(long bytes) implements Script {}
    /** Resets after {@code fraction} of the bytes this response would carry (of the range, for a Range request). */
    private record ResetHalfWay(double fraction) implements Script {}

    /** Generated bodies repeat this pattern: byte {@code i} of a body is {@code PATTERN[i % CHUNK]}. */
    public static final int CHUNK = 64 * 1024;
    public static final byte[] PATTERN = new byte[CHUNK];

    static {
        for (int i = 0; i < CHUNK; i++) PATTERN[i] = (byte) (i * 31 + 7);
    }

    private final Server server;
    private final ServerConnector connector;
    private final Map<String, byte[]> files = new ConcurrentHashMap<>();
    private final Map<String, Long> generated = new ConcurrentHashMap<>();
    private final Map<String, Script> scripts = new ConcurrentHashMap<>();
    /** Scripts for every path under a prefix; an exact path's script wins, then the longest prefix. */
    private final Map<String, Script> prefixScripts = new ConcurrentHashMap<>();
    private final List<Logged> log = new CopyOnWriteArrayList<>();
    private final List<Callback> hanging = new CopyOnWriteArrayList<>();
    private final java.util.Set<String> chunked = ConcurrentHashMap.newKeySet();
    /** Extra headers on every file it serves (200, 206 and their HEADs), in the order added. */
    private final List<Map.Entry<String, String>> extraHeaders = new CopyOnWriteArrayList<>();
    private final java.util.concurrent.Semaphore abortedWrites = new java.util.concurrent.Semaphore(0);
    /** Body bytes of answers under {@code /nar/} whose write completed (handed to the kernel). */
    private final java.util.concurrent.atomic.AtomicLong narBytesWritten = new java.util.concurrent.atomic.AtomicLong();
    private volatile Path directory;
    private volatile boolean hangAll;
    private volatile boolean refuseHead;
    private final java.util.concurrent.atomic.AtomicInteger active = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.atomic.AtomicInteger maxActive = new java.util.concurrent.atomic.AtomicInteger();
    private int fixedPort;
    private volatile Duration delay = Duration.ZERO;
    private final boolean https;
    private final java.util.concurrent.atomic.AtomicInteger handshakes = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.atomic.AtomicInteger closedConnections = new java.util.concurrent.atomic.AtomicInteger();
    private final Map<String, java.util.concurrent.atomic.AtomicInteger> protocols = new ConcurrentHashMap<>();

    private FakeCache() {
        this("127.0.0.1", 0);
    }

    private FakeCache(String host, int port) {
        this(host, port, null, false);
    }

    private FakeCache(String host, int port, SelfSignedCert cert, boolean h2) {
        server = new Server();
        https = cert != null;
        connector = new ServerConnector(server, 1, 1, https ? tls(cert, h2) : new ConnectionFactory[] {new HttpConnectionFactory()});
        connector.addBean(new Connection.Listener() {
            @Override
            public void onOpened(Connection connection) {
                // the TLS layer's connection when there is one: one per TCP connection
                if (!https || connection instanceof org.eclipse.jetty.io.ssl.SslConnection) connections.incrementAndGet();
            }

            @Override
            public void onClosed(Connection connection) {
                if (!https || connection instanceof org.eclipse.jetty.io.ssl.SslConnection) closedConnections.incrementAndGet();
            }
        });
        connector.addBean(new SslHandshakeListener() {
            @Override
            public void handshakeSucceeded(Event event) {
                handshakes.incrementAndGet();
            }
        });
        connector.setHost(host);
        connector.setPort(port);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                FakeCache.this.handle(request, response, callback);
                return true;
            }
        });
    }

    /** TLS with {@code cert}, then HTTP/2 if the client's ALPN asks for it (when {@code h2}), else HTTP/1.1. */
    private static ConnectionFactory[] tls(SelfSignedCert cert, boolean h2) {
        SslContextFactory.Server ssl = new SslContextFactory.Server();
        ssl.setKeyStorePath(cert.keyStore().toString());
        ssl.setKeyStorePassword(SelfSignedCert.PASSWORD);
        ssl.setKeyStoreType("PKCS12");
        HttpConfiguration config = new HttpConfiguration();
        config.addCustomizer(new SecureRequestCustomizer(false));
        HttpConnectionFactory http1 = new HttpConnectionFactory(config);
        if (!h2) return new ConnectionFactory[] {new SslConnectionFactory(ssl, http1.getProtocol()), http1};
        ALPNServerConnectionFactory alpn = new ALPNServerConnectionFactory();
        alpn.setDefaultProtocol(http1.getProtocol());
        return new ConnectionFactory[] {new SslConnectionFactory(ssl, alpn.getProtocol()), alpn,
                new HTTP2ServerConnectionFactory(config), http1};
    }

    /**
     * Starts serving https on 127.0.0.1 with {@code cert}: HTTP/1.1 only, or, when {@code h2},
     * HTTP/2 to clients whose ALPN asks for it and HTTP/1.1 to the others.
     */
    public static FakeCache startHttps(SelfSignedCert cert, boolean h2) {
        return start(new FakeCache("127.0.0.1", 0, cert, h2));
    }

    /** Starts serving, with a {@code /nix-cache-info} as every binary cache has one. */
    public static FakeCache start() {
        return start(new FakeCache());
    }

    /** Serves on {@code host}:{@code port} (such as every address, for a cache in a network namespace). */
    public static FakeCache startOn(String host, int port) {
        return start(new FakeCache(host, port));
    }

    private static FakeCache start(FakeCache cache) {
        cache.put("/nix-cache-info", "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
        try {
            cache.server.start();
        } catch (Exception e) {
            throw new IllegalStateException("cannot start fake cache", e);
        }
        return cache;
    }

    public URI uri() {
        return URI.create((https ? "https" : "http") + "://127.0.0.1:" + port());
    }

    public int port() {
        int p = connector.getLocalPort();
        return p > 0 ? p : fixedPort;
    }

    /** @param path absolute request path such as {@code /abc.narinfo} */
    public FakeCache put(String path, byte[] body) {
        files.put(path, body);
        return this;
    }

    public FakeCache put(String path, String body) {
        return put(path, body.getBytes(StandardCharsets.UTF_8));
    }

    /** A body of {@code size} bytes of a fixed pattern, generated as it is sent. */
    public FakeCache putGenerated(String path, long size) {
        generated.put(path, size);
        return this;
    }

    /** Serves files below {@code dir} (a binary cache written by {@code nix copy}). */
    public FakeCache serveDirectory(Path dir) {
        directory = dir;
        return this;
    }

    public FakeCache delay(Duration d) {
        delay = d;
        return this;
    }

    public FakeCache status(String path, int code) {
        scripts.put(path, new Status(code));
        return this;
    }

    public FakeCache hang(String path) {
        scripts.put(path, new Hang());
        return this;
    }

    /** Sends the head and the first {@code bytes} bytes, then aborts the connection. */
    public FakeCache resetAfter(String path, long bytes) {
        scripts.put(path, new ResetAfter(bytes));
        return this;
    }

    /** Every path starting with {@code prefix} ({@code "/"}: everything, probes included) answers {@code code}. */
    public FakeCache statusUnder(String prefix, int code) {
        prefixScripts.put(prefix, new Status(code));
        return this;
    }

    /** Every path starting with {@code prefix} is accepted and never answered (no head, no byte). */
    public FakeCache hangUnder(String prefix) {
        prefixScripts.put(prefix, new Hang());
        return this;
    }

    /**
     * Every path starting with {@code prefix} sends its head and {@code fraction} of the body it
     * would send (0.5: half-way; of the requested range, for a Range request), then aborts the
     * connection. A Content-Length is sent as usual, so the client sees the body end early.
     */
    public FakeCache resetUnder(String prefix, double fraction) {
        if (!(fraction >= 0 && fraction < 1)) throw new IllegalArgumentException("fraction must be in [0, 1): " + fraction);
        prefixScripts.put(prefix, new ResetHalfWay(fraction));
        return this;
    }

    /** The script for a request path: the exact path's, else the longest matching prefix's, else null. */
    private Script scriptFor(String path) {
        Script exact = scripts.get(path);
        if (exact != null) return exact;
        String best = null;
        for (String prefix : prefixScripts.keySet()) {
            if (path.startsWith(prefix) && (best == null || prefix.length() > best.length())) best = prefix;
        }
        return best == null ? null : prefixScripts.get(best);
    }

    /**
     * Adds a header to every file it serves from now on (200, 206, and their HEADs), sent as
     * given: hop-by-hop ones too ({@code Connection}, {@code Keep-Alive}, {@code Proxy-Authenticate}),
     * as a misbehaving cache or a CDN in front of one would send them. A name may be added more
     * than once. Every file answer also carries {@code Set-Cookie: upstream=secret}.
     */
    public FakeCache header(String name, String value) {
        extraHeaders.add(Map.entry(name, value));
        return this;
    }

    /** Sends this path without Content-Length (chunked), as some caches do. */
    public FakeCache chunked(String path) {
        chunked.add(path);
        return this;
    }

    /**
     * Waits until a response body could not be written because the peer (ncro) went away.
     * Event-driven: returns as soon as the failed write happens, false after {@code max}.
     */
    public boolean awaitAbortedWrite(Duration max) throws InterruptedException {
        return abortedWrites.tryAcquire(max.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Every request from now on hangs (accepted, never answered), probes included. */
    public FakeCache hangAll(boolean on) {
        hangAll = on;
        return this;
    }

    /** Answers every HEAD with 405, as some caches and CDNs do. */
    public FakeCache refuseHead(boolean on) {
        refuseHead = on;
        return this;
    }

    /** Stops listening: connections to its port are refused until {@link #resume()}. */
    public void refuseConnections() {
        fixedPort = port();
        try {
            server.stop();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Listens again on the same port. */
    public void resume() {
        connector.setPort(fixedPort);
        try {
            server.start();
        } catch (Exception e) {
            throw new IllegalStateException("cannot listen again on port " + fixedPort, e);
        }
    }

    /**
     * A restart: stops listening (open connections closed, new ones refused), runs
     * {@code whileDown}, and listens again on the same port.
     *
     * @return how long the port refused connections
     */
    public Duration restart(Runnable whileDown) {
        long t0 = System.nanoTime();
        refuseConnections();
        try {
            whileDown.run();
        } finally {
            resume();
        }
        return Duration.ofNanos(System.nanoTime() - t0);
    }

    /**
     * The most requests that were waiting for an answer at once, from arrival until the cache
     * starts answering. The client cannot have finished with a request before that, so an
     * overlap here was real concurrency on the client's side.
     */
    /** Body bytes of answers under {@code /nar/} written so far (each write counted once it completed). */
    public long narBytesWritten() {
        return narBytesWritten.get();
    }

    public int maxConcurrentRequests() {
        return maxActive.get();
    }

    /** TLS handshakes completed so far (https only). */
    public int handshakes() {
        return handshakes.get();
    }

    /** Connections accepted so far. */
    public int connections() {
        return connections.get();
    }

    /**
     * Closes every open connection (another client's, before the one being measured starts) and
     * returns once each is counted as closed.
     */
    public void dropConnections() throws InterruptedException {
        connector.getConnectedEndPoints().forEach(org.eclipse.jetty.io.EndPoint::close);
        long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while ((closedConnections.get() < connections.get() || !connector.getConnectedEndPoints().isEmpty())
                && System.nanoTime() < until) {
            Thread.sleep(1);
        }
    }

    /** Connections closed so far, by either side. */
    public int closedConnections() {
        return closedConnections.get();
    }

    /** Requests that arrived over {@code protocol} ({@code "HTTP/1.1"}, {@code "HTTP/2.0"}). */
    public int requestsOver(String protocol) {
        java.util.concurrent.atomic.AtomicInteger n = protocols.get(protocol);
        return n == null ? 0 : n.get();
    }

    /** Forgets every script, exact and prefix (already hanging requests stay hanging). */
    public FakeCache clearScripts() {
        scripts.clear();
        prefixScripts.clear();
        return this;
    }

    public List<Logged> requests() {
        return List.copyOf(log);
    }

    public long count(String path) {
        return log.stream().filter(l -> l.path().equals(path)).count();
    }

    public void clearLog() {
        log.clear();
    }

    /** Requests still hanging, not answered. */
    public int hangingCount() {
        return hanging.size();
    }

    @Override
    public void close() {
        hanging.forEach(cb -> cb.failed(new IOException("fake cache stopping")));
        try {
            server.stop();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private void handle(Request request, Response response, Callback callback) {
        maxActive.accumulateAndGet(active.incrementAndGet(), Math::max);
        Map<String, String> headers = new ConcurrentHashMap<>();
        request.getHeaders().forEach(f -> headers.put(f.getName().toLowerCase(java.util.Locale.ROOT), f.getValue()));
        String target = request.getHttpURI().getPathQuery();
        protocols.computeIfAbsent(request.getConnectionMetaData().getProtocol(),
                k -> new java.util.concurrent.atomic.AtomicInteger()).incrementAndGet();
        log.add(new Logged(request.getMethod(), target, headers, System.nanoTime()));
        Duration d = delay;
        if (d.isZero()) {
            respond(request, response, callback);
        } else {
            server.getScheduler().schedule(() -> respond(request, response, callback), d.toNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private void respond(Request request, Response response, Callback callback) {
        String path = request.getHttpURI().getPath();
        Script script = scriptFor(path);
        // no longer waiting: from here on the answer is on its way (a hung request stays counted)
        if (!hangAll && !(script instanceof Hang)) active.decrementAndGet();
        if (hangAll || script instanceof Hang) {
            hanging.add(callback);
            return;
        }
        if (refuseHead && request.getMethod().equals("HEAD")) {
            response.setStatus(405);
            callback.succeeded();
            return;
        }
        if (script instanceof Status s) {
            response.setStatus(s.code());
            Content.Sink.write(response, true, "scripted " + s.code() + "\n", callback);
            return;
        }
        boolean head = request.getMethod().equals("HEAD");
        Long size = generated.get(path);
        byte[] body = size == null ? file(path) : null;
        if (size == null && body == null) {
            response.setStatus(HttpStatus.NOT_FOUND_404);
            Content.Sink.write(response, true, "not found\n", callback);
            return;
        }
        long total = size != null ? size : body.length;
        long from = 0;
        long to = total;
        String range = request.getHeaders().get(HttpHeader.RANGE);
        if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
            from = Long.parseLong(range.substring(6, range.length() - 1));
            if (from >= total) {
                response.setStatus(416);
                response.getHeaders().put(HttpHeader.CONTENT_RANGE, "bytes */" + total);
                callback.succeeded();
                return;
            }
            response.setStatus(206);
            response.getHeaders().put(HttpHeader.CONTENT_RANGE, "bytes " + from + "-" + (total - 1) + "/" + total);
        }
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, path.endsWith(".narinfo") ? "text/x-nix-narinfo" : "application/x-nix-nar");
        response.getHeaders().put(HttpHeader.ACCEPT_RANGES, "bytes");
        response.getHeaders().put(HttpHeader.ETAG, "\"" + Long.toHexString(total) + "\"");
        response.getHeaders().put("Set-Cookie", "upstream=secret");
        for (Map.Entry<String, String> h : extraHeaders) response.getHeaders().add(h.getKey(), h.getValue());
        if (!chunked.contains(path)) response.getHeaders().put(HttpHeader.CONTENT_LENGTH, to - from);
        if (head) {
            callback.succeeded();
            return;
        }
        long resetAt = script instanceof ResetAfter r ? r.bytes()
                : script instanceof ResetHalfWay h ? from + (long) ((to - from) * h.fraction()) : -1;
        new Writer(response, callback, body, from, to, resetAt, abortedWrites, path.startsWith("/nar/") ? narBytesWritten : null)
                .iterate();
    }

    private byte[] file(String path) {
        byte[] body = files.get(path);
        Path dir = directory;
        if (body == null && dir != null && !path.contains("..")) {
            Path p = dir.resolve(path.substring(1));
            if (Files.isRegularFile(p)) {
                try {
                    body = Files.readAllBytes(p);
                } catch (IOException e) {
                    return null;
                }
            }
        }
        return body;
    }

    /** Writes [from, to) in 64 KiB chunks, from memory or generated; optionally resets. */
    private static final class Writer extends IteratingCallback {
        private final Response response;
        private final Callback callback;
        private final byte[] body;
        private final long to;
        private final long resetAt;
        private final ByteBuffer pattern;
        private long position;
        private boolean done;

        private final java.util.concurrent.Semaphore aborted;
        private final java.util.concurrent.atomic.AtomicLong written;
        private int pending;

        Writer(Response response, Callback callback, byte[] body, long from, long to, long resetAt,
                java.util.concurrent.Semaphore aborted, java.util.concurrent.atomic.AtomicLong written) {
            this.aborted = aborted;
            this.written = written;
            this.response = response;
            this.callback = callback;
            this.body = body;
            this.position = from;
            this.to = to;
            this.resetAt = resetAt;
            this.pattern = ByteBuffer.wrap(PATTERN).asReadOnlyBuffer();
        }

        @Override
        protected Action process() {
            // called again once the previous write completed
            if (written != null) written.addAndGet(pending);
            pending = 0;
            if (done) {
                callback.succeeded();
                return Action.SUCCEEDED;
            }
            if (resetAt >= 0 && position >= resetAt) {
                callback.failed(new IOException("scripted reset"));
                return Action.SUCCEEDED;
            }
            if (position >= to) {
                done = true;
                response.write(true, null, this);
                return Action.SCHEDULED;
            }
            long end = Math.min(to, position + CHUNK);
            if (resetAt >= 0) end = Math.min(end, resetAt);
            ByteBuffer chunk;
            if (body != null) {
                chunk = ByteBuffer.wrap(body, (int) position, (int) (end - position));
            } else {
                int offset = (int) (position % CHUNK);
                int n = (int) Math.min(end - position, CHUNK - offset);
                chunk = pattern.duplicate().position(offset).limit(offset + n).slice();
            }
            position += chunk.remaining();
            pending = chunk.remaining();
            response.write(false, chunk, this);
            return Action.SCHEDULED;
        }

        @Override
        protected void onCompleteSuccess() {}

        @Override
        protected void onCompleteFailure(Throwable cause) {
            aborted.release();
            callback.failed(cause);
        }
    }
}
