package dev.ncro.web;

import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One INFO line on the logger {@code dev.ncro.access} for every request ncro answers, written
 * when its response is complete:
 *
 * <pre>127.0.0.1 https GET /0a1b….narinfo 200 12ms upstream https://cache.nixos.org</pre>
 *
 * <p>client address, scheme, method, path (never the query: a cache may put a token there),
 * status, time from the request reaching ncro to the response's end, and for a narinfo the
 * upstream whose answer was served. A NAR whose client connection was aborted (upstream
 * failure mid-body, client gone) says {@code aborted} after its status. The address and the
 * scheme are the request's: behind a TLS terminator, with Jetty's {@code forwarded} module,
 * they are the client's and its scheme, not the terminator's.
 *
 * <p>A request answered asynchronously starts through {@link #startAsync}, which registers the
 * line before anything can complete the request; one answered on its request thread (a narinfo
 * from memory) calls {@link #log} once its answer is written.
 * A 1000-path closure costs about 2000 lines; {@code <logger name="dev.ncro.access"
 * level="WARN"/>} in {@code resources/logback.xml} turns them off.
 */
final class AccessLog implements AsyncListener {
    static final Logger LOG = LoggerFactory.getLogger("dev.ncro.access");
    private static final String UPSTREAM = "dev.ncro.access.upstream";
    private static final String ABORTED = "dev.ncro.access.aborted";
    /** A path Jetty accepted can still be 8 KiB; the line keeps its start. */
    private static final int MAX_PATH = 200;

    private final long startNanos;
    private final String client;
    private final String scheme;
    private final String method;
    private final String path;

    private AccessLog(HttpServletRequest request, long startNanos) {
        this.startNanos = startNanos;
        client = request.getRemoteAddr();
        scheme = request.getScheme();
        method = request.getMethod();
        String uri = request.getRequestURI();
        path = uri.length() > MAX_PATH ? uri.substring(0, MAX_PATH) + "…" : uri;
    }

    /** {@link HttpServletRequest#startAsync()}, with the access line written when it completes. */
    static AsyncContext startAsync(HttpServletRequest request) {
        return startAsync(request, System.nanoTime());
    }

    /** {@link #startAsync(HttpServletRequest)} for a request ncro took up at {@code startNanos}. */
    static AsyncContext startAsync(HttpServletRequest request, long startNanos) {
        AsyncContext async = request.startAsync();
        if (LOG.isInfoEnabled()) async.addListener(new AccessLog(request, startNanos));
        return async;
    }

    /**
     * The line for a request answered on its own thread, without {@code startAsync}, once its
     * answer is written; {@code startNanos} is {@link System#nanoTime()} when ncro took it up.
     */
    static void log(HttpServletRequest request, int status, long startNanos) {
        if (LOG.isInfoEnabled()) new AccessLog(request, startNanos).write(request, status);
    }

    /** Names the upstream whose answer this request is given. */
    static void upstream(ServletRequest request, String upstream) {
        if (upstream != null) request.setAttribute(UPSTREAM, upstream);
    }

    /** Marks a request whose client connection was aborted rather than ended cleanly. */
    static void aborted(ServletRequest request) {
        request.setAttribute(ABORTED, Boolean.TRUE);
    }

    @Override
    public void onComplete(AsyncEvent event) {
        AsyncContext async = event.getAsyncContext();
        write(async.getRequest(), ((HttpServletResponse) async.getResponse()).getStatus());
    }

    private void write(ServletRequest request, int status) {
        Object upstream = request.getAttribute(UPSTREAM);
        long millis = (System.nanoTime() - startNanos) / 1_000_000;
        // one string, built here: cheaper than a message pattern with eight arguments
        StringBuilder line = new StringBuilder(96 + path.length());
        line.append(client).append(' ').append(scheme).append(' ').append(method).append(' ').append(path).append(' ')
                .append(status);
        if (request.getAttribute(ABORTED) != null) line.append(" aborted");
        line.append(' ').append(millis).append("ms");
        if (upstream != null) line.append(" upstream ").append(upstream);
        LOG.info(line.toString());
    }

    @Override
    public void onTimeout(AsyncEvent event) {}

    @Override
    public void onError(AsyncEvent event) {}

    @Override
    public void onStartAsync(AsyncEvent event) {}
}
