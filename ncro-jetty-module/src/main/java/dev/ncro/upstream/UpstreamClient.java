package dev.ncro.upstream;

import dev.ncro.config.Defaults;
import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import org.apache.hc.client5.http.auth.AuthCache;
import org.apache.hc.client5.http.auth.UsernamePasswordCredentials;
import org.apache.hc.client5.http.config.ConnectionConfig;
import org.apache.hc.client5.http.config.RequestConfig;
import org.apache.hc.client5.http.config.TlsConfig;
import org.apache.hc.client5.http.impl.async.CloseableHttpAsyncClient;
import org.apache.hc.client5.http.impl.async.HttpAsyncClients;
import org.apache.hc.client5.http.impl.auth.BasicAuthCache;
import org.apache.hc.client5.http.impl.auth.BasicScheme;
import org.apache.hc.client5.http.impl.nio.PoolingAsyncClientConnectionManager;
import org.apache.hc.client5.http.impl.nio.PoolingAsyncClientConnectionManagerBuilder;
import org.apache.hc.client5.http.protocol.HttpClientContext;
import org.apache.hc.core5.concurrent.Cancellable;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.apache.hc.core5.http.HttpHost;
import org.apache.hc.core5.http.config.Http1Config;
import org.apache.hc.core5.http.nio.AsyncRequestProducer;
import org.apache.hc.core5.http.nio.support.AsyncRequestBuilder;
import org.apache.hc.core5.http2.HttpVersionPolicy;
import org.apache.hc.core5.io.CloseMode;
import org.apache.hc.core5.pool.PoolConcurrencyPolicy;
import org.apache.hc.core5.reactor.IOReactorConfig;
import org.apache.hc.core5.util.TimeValue;
import org.apache.hc.core5.util.Timeout;
import org.eclipse.jetty.util.component.AbstractLifeCycle;

/**
 * The one HTTP client ncro uses to talk to upstream caches: HttpComponents 5 async, HTTP/1.1,
 * a pool far larger than the library default, no cookies (they would mix between clients),
 * no automatic retries (the race and the NAR fall-through decide what to retry) and a
 * {@code User-Agent} naming ncro.
 */
public final class UpstreamClient extends AbstractLifeCycle {
    /** HttpComponents' HTTP/1.1 initial window; {@link StreamingConsumer} mirrors it. */
    static final int INITIAL_WINDOW = 64 * 1024;
    static final String USER_AGENT = "ncro/0.1 (+https://github.com/ncro)";

    private final Duration connectTimeout;
    private final Map<String, Duration> connectTimeouts = new HashMap<>();
    /** Preemptive Basic auth by host: credentials go to that host only, never across a redirect. */
    private final AuthCache logins = new BasicAuthCache();
    private CloseableHttpAsyncClient client;

    private final Resolver resolver;

    public UpstreamClient(Duration connectTimeout) {
        this(connectTimeout, List.of());
    }

    public UpstreamClient(Duration connectTimeout, List<Upstream> upstreams) {
        this(connectTimeout, upstreams, Resolver.SYSTEM);
    }

    /**
     * @param upstreams whose own connect timeouts apply to their endpoints (the shortest, if shared)
     * @param resolver host name lookups, run only on this client's own resolver thread
     */
    public UpstreamClient(Duration connectTimeout, List<Upstream> upstreams, Resolver resolver) {
        this.resolver = resolver;
        this.connectTimeout = connectTimeout;
        for (Upstream u : upstreams) connectTimeouts.merge(u.endpoint(), u.connectTimeout(), (x, y) -> x.compareTo(y) <= 0 ? x : y);
    }

    /**
     * Sends credentials only after this upstream's origin answers 401 with a challenge (a
     * netrc {@code default} entry: never preemptively, never to another origin).
     */
    public void loginOnChallenge(Upstream upstream, String user, String password) {
        login(upstream, user, password); // TODO challenge-only
    }

    /** Sends Basic credentials with every request to this upstream's origin (scheme, host, port) only. */
    public void login(Upstream upstream, String user, String password) {
        BasicScheme basic = new BasicScheme();
        basic.initPreemptive(new UsernamePasswordCredentials(user, password.toCharArray()));
        logins.put(new HttpHost(upstream.base().getScheme(), upstream.base().getHost(), upstream.port()), basic);
    }

    /** The connect timeout for connections to scheme://host:port. */
    Duration connectTimeout(String scheme, String host, int port) {
        return connectTimeouts.getOrDefault(Upstream.endpoint(scheme, host, port), connectTimeout);
    }

    @Override
    protected void doStart() throws Exception {
        PoolingAsyncClientConnectionManager pool = PoolingAsyncClientConnectionManagerBuilder.create()
                .setMaxConnTotal(Defaults.POOL_MAX_TOTAL)
                .setMaxConnPerRoute(Defaults.POOL_MAX_PER_ROUTE)
                .setPoolConcurrencyPolicy(PoolConcurrencyPolicy.LAX)
                .setConnectionConfigResolver(route -> ConnectionConfig.custom()
                        .setConnectTimeout(Timeout.of(connectTimeout(route.getTargetHost().getSchemeName(),
                                route.getTargetHost().getHostName(), route.getTargetHost().getPort())))
                        .setValidateAfterInactivity(TimeValue.ofSeconds(2))
                        .setTimeToLive(TimeValue.ofMinutes(5))
                        .build())
                .setDefaultTlsConfig(TlsConfig.custom().setVersionPolicy(HttpVersionPolicy.FORCE_HTTP_1).build())
                .build();
        client = HttpAsyncClients.custom()
                .setConnectionManager(pool)
                .setHttp1Config(Http1Config.custom().setInitialWindowSize(INITIAL_WINDOW).build())
                .setIOReactorConfig(IOReactorConfig.custom()
                        .setIoThreadCount(Math.max(2, Runtime.getRuntime().availableProcessors()))
                        .setTcpNoDelay(true)
                        // timeouts are checked once per select loop: 1 s by default, too coarse
                        // for probe timeouts and cooldowns measured in hundreds of milliseconds
                        .setSelectInterval(TimeValue.ofMilliseconds(100))
                        .build())
                .disableAutomaticRetries()
                .disableCookieManagement()
                .setUserAgent(USER_AGENT)
                .build();
        client.start();
    }

    @Override
    protected void doStop() throws Exception {
        CloseableHttpAsyncClient c = client;
        client = null;
        if (c != null) {
            c.initiateShutdown();
            c.awaitShutdown(TimeValue.ofSeconds(2));
            c.close(CloseMode.IMMEDIATE);
        }
    }

    /**
     * GETs a small resource of {@code upstream} (a narinfo), reading at most {@code maxBytes}
     * of a 200 answer (after undoing any Content-Encoding). Redirects are followed within the
     * redirect policy; a refused one fails with {@link RedirectRefusedException}. The callback
     * runs on an I/O thread: it must hand real work to another executor.
     *
     * @param timeout for the whole exchange, redirects included
     */
    public Cancellable fetch(Upstream upstream, URI uri, int maxBytes, Duration timeout, FutureCallback<Fetched> callback) {
        return request(upstream, "GET", uri, maxBytes, timeout, callback);
    }

    /** Sends a body-less request ({@code GET} or {@code HEAD}) to {@code upstream}, reading a small answer. */
    public Cancellable request(Upstream upstream, String method, URI uri, int maxBytes, Duration timeout,
            FutureCallback<Fetched> callback) {
        AsyncRequestProducer request = AsyncRequestBuilder.create(method).setUri(uri).build();
        Future<Fetched> f = running().execute(request, new BoundedBodyConsumer(maxBytes), null, context(timeout), callback);
        return () -> f.cancel(true);
    }

    /**
     * Starts a streamed exchange with {@code upstream} on the stream pool (separate from the
     * pool of narinfo lookups and probes); the body flows into {@code sink} under its flow
     * control. Redirects are followed within the redirect policy, invisibly to the sink; a
     * refused one ends in {@link StreamingConsumer.Sink#onError} with a
     * {@link RedirectRefusedException}.
     *
     * @param headers end-to-end request headers to forward
     * @param idleTimeout how long the exchange may see no data before it fails
     */
    public UpstreamStream stream(Upstream upstream, URI uri, boolean head, Map<String, String> headers,
            Duration idleTimeout, StreamingConsumer.Sink sink) {
        AsyncRequestBuilder builder = head ? AsyncRequestBuilder.head(uri) : AsyncRequestBuilder.get(uri);
        headers.forEach(builder::addHeader);
        StreamingConsumer consumer = new StreamingConsumer(sink, INITIAL_WINDOW, Defaults.STREAM_WINDOW_BYTES);
        Future<Void> f = running().execute(builder.build(), consumer, null, context(idleTimeout), null);
        return new UpstreamStream() {
            @Override
            public void release(int bytes) {
                consumer.release(bytes);
            }

            @Override
            public void cancel() {
                consumer.cancel();
                f.cancel(true);
            }
        };
    }

    private CloseableHttpAsyncClient running() {
        CloseableHttpAsyncClient c = client;
        if (c == null) throw new IllegalStateException("upstream client is not started");
        return c;
    }

    private HttpClientContext context(Duration timeout) {
        HttpClientContext context = HttpClientContext.create();
        context.setAuthCache(logins);
        context.setRequestConfig(RequestConfig.custom()
                .setResponseTimeout(Timeout.of(timeout))
                .setConnectionRequestTimeout(Timeout.of(timeout))
                .build());
        return context;
    }
}
