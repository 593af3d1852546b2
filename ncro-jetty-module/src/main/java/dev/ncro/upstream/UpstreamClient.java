package dev.ncro.upstream;

import dev.ncro.config.Defaults;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.NoRouteToHostException;
import java.net.PortUnreachableException;
import java.net.SocketException;
import java.net.URI;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.apache.hc.client5.http.auth.AuthCache;
import org.apache.hc.client5.http.auth.AuthScope;
import org.apache.hc.client5.http.auth.CredentialsProvider;
import org.apache.hc.client5.http.auth.UsernamePasswordCredentials;
import org.apache.hc.client5.http.config.ConnectionConfig;
import org.apache.hc.client5.http.config.RequestConfig;
import org.apache.hc.client5.http.config.TlsConfig;
import org.apache.hc.client5.http.impl.async.CloseableHttpAsyncClient;
import org.apache.hc.client5.http.impl.async.HttpAsyncClients;
import org.apache.hc.client5.http.impl.auth.BasicAuthCache;
import org.apache.hc.client5.http.impl.auth.BasicCredentialsProvider;
import org.apache.hc.client5.http.impl.auth.BasicScheme;
import org.apache.hc.client5.http.impl.auth.CredentialsProviderBuilder;
import org.apache.hc.client5.http.impl.nio.PoolingAsyncClientConnectionManager;
import org.apache.hc.client5.http.impl.nio.PoolingAsyncClientConnectionManagerBuilder;
import org.apache.hc.client5.http.protocol.HttpClientContext;
import org.apache.hc.client5.http.ssl.DefaultClientTlsStrategy;
import org.apache.hc.core5.concurrent.Cancellable;
import org.apache.hc.core5.concurrent.DefaultThreadFactory;
import org.apache.hc.core5.concurrent.FutureCallback;
import org.apache.hc.core5.http.ConnectionClosedException;
import org.apache.hc.core5.http.HttpHost;
import org.apache.hc.core5.http.NoHttpResponseException;
import org.apache.hc.core5.http.config.Http1Config;
import org.apache.hc.core5.http2.HttpVersionPolicy;
import org.apache.hc.core5.http2.config.H2Config;
import org.apache.hc.core5.io.CloseMode;
import org.apache.hc.core5.pool.PoolConcurrencyPolicy;
import org.apache.hc.core5.pool.PoolReusePolicy;
import org.apache.hc.core5.reactor.IOReactorConfig;
import org.apache.hc.core5.util.TimeValue;
import org.apache.hc.core5.util.Timeout;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * The HTTP client ncro talks to upstream caches with: HttpComponents 5 async, no cookies (they
 * would mix between clients), no automatic retries or redirects of the library's own, and a
 * {@code User-Agent} naming ncro.
 *
 * <h2>HTTP/2 and TLS</h2>
 * An {@code https} upstream that offers HTTP/2 in ALPN is spoken to in HTTP/2, one that does not
 * in HTTP/1.1; plain {@code http} is always HTTP/1.1. In the lookup pool an HTTP/2 connection
 * that is already open is shared by every concurrent lookup and probe of its upstream (streams
 * multiplexed on it) instead of each opening its own; HTTP/1.1 connections carry one exchange at
 * a time, up to the per-route limit. Stream-pool connections are never shared: each NAR has its
 * connection, HTTP/2 or not, and its backpressure is the stream's flow-control window. Servers
 * are trusted by the JVM's default trust store, which honours the standard
 * {@code javax.net.ssl.trustStore} system properties (a private CA); host names are verified.
 *
 * <h2>Two pools</h2>
 * Narinfo lookups and health probes ({@link #fetch}, {@link #request}) use one connection pool
 * and I/O reactor; NAR streams ({@link #stream}) another, sized generously because a slow NAR
 * reader keeps its upstream connection (backpressure) for as long as it reads. However many
 * streams a slow client holds, lookups and probes still get connections; the engine caps
 * streams per upstream itself ({@code cache.mass_query.per_upstream_max_streams}).
 *
 * <h2>Threads</h2>
 * The client owns, as beans started and stopped with it: a DNS executor ({@code ncro-dns-*}),
 * a callback executor ({@code ncro-upstream-*}) and a scheduler ({@code ncro-upstream-timer}),
 * plus the two HttpComponents reactors ({@code ncro-lookup-io-*}, {@code ncro-stream-io-*}).
 * Every call returns at once: the host is looked up first on the DNS executor (see
 * {@link HostCache}), then the exchange starts. No lookup ever runs on the caller's thread,
 * the timer or an I/O thread. {@link #fetch}/{@link #request} callbacks run on the callback
 * executor, never on the caller's thread; a {@link StreamingConsumer.Sink} hears the response
 * on the stream reactor's I/O thread, and failures before any response (DNS, a refused
 * redirect) on the callback executor.
 *
 * <h2>Redirects</h2>
 * Followed by this client for every kind of request, within {@link RedirectPolicy}; a refused
 * one fails the request with {@link RedirectRefusedException} (logged once at WARN, naming the
 * target host).
 *
 * <h2>Credentials</h2>
 * {@link #login} and {@link #loginOnChallenge} bind a user to one upstream (its base URL), not
 * to its origin: two caches behind one host and port (attic's {@code /cache1} and
 * {@code /cache2}) each send their own, and one there without a login sends none. A request
 * carries the login of the upstream it is for, and only to that upstream's origin (scheme, host,
 * port); requests to any other origin, redirect targets included, carry none.
 *
 * <h2>Stale connections</h2>
 * A pooled connection the upstream closed while it was idle fails the next request before any
 * response arrives (reset, {@code NoHttpResponseException}, {@code ConnectionClosedException}).
 * Such a GET or HEAD is sent once more, on another connection. Timeouts, refused connections and
 * any answer with a status are never retried here: the race and the NAR fall-through decide.
 */
public final class UpstreamClient extends ContainerLifeCycle {
    /** HttpComponents' HTTP/1.1 and HTTP/2 initial window; {@link StreamingConsumer} mirrors it. */
    static final int INITIAL_WINDOW = 64 * 1024;
    /** The stream client's session buffer, hence its largest body chunk. */
    static final int STREAM_BUFFER = 64 * 1024;
    static final String USER_AGENT = "ncro/0.1 (+https://github.com/ncro)";
    static final int STREAM_POOL_MAX_PER_ROUTE = Defaults.STREAM_POOL_MAX_PER_ROUTE;
    static final int STREAM_POOL_MAX_TOTAL = Defaults.STREAM_POOL_MAX_TOTAL;
    static final Duration DNS_TTL = Defaults.DNS_TTL;
    static final Duration DNS_FAILURE_TTL = Defaults.DNS_FAILURE_TTL;

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(UpstreamClient.class);

    private final Duration connectTimeout;
    private final Map<String, Duration> connectTimeouts = new ConcurrentHashMap<>();
    /** Logins by upstream ({@link #loginKey}): used only for that upstream's requests, on its origin. */
    private final Map<String, Login> logins = new ConcurrentHashMap<>();

    private final QueuedThreadPool dnsExecutor;
    private final QueuedThreadPool callbackExecutor;
    private final ScheduledExecutorScheduler scheduler;
    private final HostCache hosts;
    private final SSLContext tls;
    private volatile CloseableHttpAsyncClient lookups;
    private volatile CloseableHttpAsyncClient streams;
    private volatile PoolingAsyncClientConnectionManager lookupPool;
    private volatile PoolingAsyncClientConnectionManager streamPool;

    /** Credentials for one upstream on its origin, and the Basic scheme learned (or given) for it. */
    private record Login(CredentialsProvider credentials, AuthCache authCache) {}

    public UpstreamClient(Duration connectTimeout) {
        this(connectTimeout, List.of());
    }

    public UpstreamClient(Duration connectTimeout, List<Upstream> upstreams) {
        this(connectTimeout, upstreams, Resolver.SYSTEM);
    }

    /**
     * @param upstreams whose own connect timeouts apply to their endpoints (the shortest, if shared)
     * @param resolver host name lookups, run only on this client's own DNS threads
     */
    public UpstreamClient(Duration connectTimeout, List<Upstream> upstreams, Resolver resolver) {
        this(connectTimeout, upstreams, resolver, null);
    }

    /**
     * @param tls whom to trust (and how) on {@code https} connections; null for the JVM's default
     *     ({@code javax.net.ssl.trustStore} and friends, else the JDK's CA certificates)
     */
    public UpstreamClient(Duration connectTimeout, List<Upstream> upstreams, Resolver resolver, SSLContext tls) {
        this.connectTimeout = connectTimeout;
        this.tls = tls;
        for (Upstream u : upstreams) connectTimeouts.merge(u.endpoint(), u.connectTimeout(), (x, y) -> x.compareTo(y) <= 0 ? x : y);
        dnsExecutor = pool("ncro-dns", 8);
        callbackExecutor = pool("ncro-upstream", 16);
        scheduler = new ScheduledExecutorScheduler("ncro-upstream-timer", true);
        hosts = new HostCache(resolver, dnsExecutor, System::nanoTime, DNS_TTL, DNS_FAILURE_TTL);
        // started in this order, stopped in reverse
        addBean(dnsExecutor, true);
        addBean(callbackExecutor, true);
        addBean(scheduler, true);
    }

    private static QueuedThreadPool pool(String name, int maxThreads) {
        QueuedThreadPool pool = new QueuedThreadPool(maxThreads, 1);
        pool.setName(name);
        pool.setDaemon(true);
        pool.setReservedThreads(0);
        return pool;
    }

    /**
     * Sends credentials for this upstream only after its origin answers 401 with a challenge (a
     * netrc {@code default} entry: never preemptively, never to another origin, never for another
     * upstream). Once challenged, this upstream's later requests carry them from the start.
     */
    public void loginOnChallenge(Upstream upstream, String user, String password) {
        logins.put(loginKey(upstream), new Login(credentials(upstream, user, password), new BasicAuthCache()));
    }

    /**
     * Sends Basic credentials with every request made for this upstream, and only to its origin
     * (scheme, host, port); other upstreams on the same origin keep their own login, or none.
     */
    public void login(Upstream upstream, String user, String password) {
        BasicScheme basic = new BasicScheme();
        basic.initPreemptive(new UsernamePasswordCredentials(user, password.toCharArray()));
        AuthCache preemptive = new BasicAuthCache();
        preemptive.put(origin(upstream), basic);
        logins.put(loginKey(upstream), new Login(credentials(upstream, user, password), preemptive));
    }

    /** Which upstream a login is for: its endpoint and base path, not its priority or timeouts. */
    private static String loginKey(Upstream upstream) {
        String path = upstream.base().getRawPath();
        return upstream.endpoint() + (path == null ? "" : path);
    }

    private static CredentialsProvider credentials(Upstream upstream, String user, String password) {
        return CredentialsProviderBuilder.create().add(new AuthScope(origin(upstream)), user, password.toCharArray()).build();
    }

    private static HttpHost origin(Upstream upstream) {
        return new HttpHost(upstream.base().getScheme(), upstream.base().getHost(), upstream.port());
    }

    /** The connect timeout for connections to scheme://host:port. */
    Duration connectTimeout(String scheme, String host, int port) {
        return connectTimeouts.getOrDefault(Upstream.endpoint(scheme, host, port), connectTimeout);
    }

    @Override
    protected void doStart() throws Exception {
        super.doStart(); // executors and scheduler first: the reactors' work lands on them
        // lookups and probes multiplex on a shared HTTP/2 connection; a NAR stream has its own
        lookupPool = pool(Defaults.POOL_MAX_TOTAL, Defaults.POOL_MAX_PER_ROUTE, true);
        lookups = build("ncro-lookup-io", lookupPool, Http1Config.custom().setInitialWindowSize(INITIAL_WINDOW).build());
        streamPool = pool(STREAM_POOL_MAX_TOTAL, STREAM_POOL_MAX_PER_ROUTE, false);
        // NAR bodies arrive in chunks of up to the session buffer: 64 KiB, not the default 8 KiB
        streams = build("ncro-stream-io", streamPool, Http1Config.custom()
                .setInitialWindowSize(INITIAL_WINDOW).setBufferSize(STREAM_BUFFER).build());
    }

    /**
     * @param multiplex share a leased HTTP/2 connection between concurrent exchanges
     *     (HttpComponents' {@code H2SharingConnPool}); no effect on HTTP/1.1
     */
    private PoolingAsyncClientConnectionManager pool(int maxTotal, int maxPerRoute, boolean multiplex) {
        PoolingAsyncClientConnectionManagerBuilder builder = PoolingAsyncClientConnectionManagerBuilder.create();
        if (tls != null) builder.setTlsStrategy(new DefaultClientTlsStrategy(tls));
        return builder
                .setMaxConnTotal(maxTotal)
                .setMaxConnPerRoute(maxPerRoute)
                .setPoolConcurrencyPolicy(PoolConcurrencyPolicy.LAX)
                // last in, first out (as HttpComponents' default): under light traffic one warm
                // connection carries everything and the rest idle out; first in, first out would
                // hand each request the connection idle longest, the likeliest to be closed or
                // silently dropped, and at a trickle every request would pay a new handshake
                .setConnPoolPolicy(PoolReusePolicy.LIFO)
                // reads only what the DNS executor looked up: a lease satisfied on an I/O thread never blocks
                .setDnsResolver(hosts)
                .setConnectionConfigResolver(route -> ConnectionConfig.custom()
                        .setConnectTimeout(Timeout.of(connectTimeout(route.getTargetHost().getSchemeName(),
                                route.getTargetHost().getHostName(), route.getTargetHost().getPort())))
                        // HttpComponents validates only HTTP/2 connections, with a PING: one more
                        // round trip before the request. A connection that probes or lookups used
                        // within the probe interval is taken as it is; one the upstream closed in
                        // the meantime fails the request with a ConnectionClosedException (also
                        // for streams its GOAWAY refused), which is retried once on another
                        .setValidateAfterInactivity(TimeValue.of(Defaults.PROBE_INTERVAL.multipliedBy(2)))
                        .setTimeToLive(TimeValue.ofMinutes(5))
                        .build())
                // HTTP/2 where the upstream's ALPN offers it, else HTTP/1.1; plain http: HTTP/1.1
                .setDefaultTlsConfig(TlsConfig.custom().setVersionPolicy(HttpVersionPolicy.NEGOTIATE).build())
                .setMessageMultiplexing(multiplex)
                .build();
    }

    private CloseableHttpAsyncClient build(String threadName, PoolingAsyncClientConnectionManager pool, Http1Config http1) {
        CloseableHttpAsyncClient client = HttpAsyncClients.custom()
                .setConnectionManager(pool)
                .setHttp1Config(http1)
                // the same initial stream window on HTTP/2 (StreamingConsumer mirrors it); no pushes
                .setH2Config(H2Config.custom().setInitialWindowSize(INITIAL_WINDOW).setPushEnabled(false).build())
                .setIOReactorConfig(IOReactorConfig.custom()
                        .setIoThreadCount(Math.max(2, Runtime.getRuntime().availableProcessors()))
                        .setTcpNoDelay(true)
                        // timeouts are checked once per select loop: 1 s by default, too coarse
                        // for probe timeouts and cooldowns measured in hundreds of milliseconds
                        .setSelectInterval(TimeValue.ofMilliseconds(100))
                        .build())
                .setThreadFactory(new DefaultThreadFactory(threadName, true))
                .disableAutomaticRetries()
                // followed by this client, within RedirectPolicy
                .disableRedirectHandling()
                .disableCookieManagement()
                // with no provider the builder may consult system properties; credentials come per request
                .setDefaultCredentialsProvider(new BasicCredentialsProvider())
                .setUserAgent(USER_AGENT)
                .build();
        client.start();
        return client;
    }

    @Override
    protected void doStop() throws Exception {
        // the reactors first (they fail what is in flight), then scheduler and executors in reverse
        shutdown(streams);
        shutdown(lookups);
        streams = null;
        lookups = null;
        super.doStop();
    }

    private static void shutdown(CloseableHttpAsyncClient c) {
        if (c == null) return;
        c.initiateShutdown();
        try {
            c.awaitShutdown(TimeValue.ofSeconds(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        c.close(CloseMode.IMMEDIATE);
    }

    /**
     * GETs a small resource of {@code upstream} (a narinfo), reading at most {@code maxBytes}
     * of a 200 answer (after undoing any Content-Encoding; an unknown coding or a body that
     * decodes to more fails). Redirects are followed within the redirect policy; a refused one
     * fails with {@link RedirectRefusedException}. The callback runs exactly once, on this
     * client's callback executor, within {@code timeout} however slow DNS is.
     *
     * @param timeout for the whole exchange: lookup, redirects and retry included
     */
    public Cancellable fetch(Upstream upstream, URI uri, int maxBytes, Duration timeout, FutureCallback<Fetched> callback) {
        return request(upstream, "GET", uri, maxBytes, timeout, callback);
    }

    /**
     * Sends a body-less request ({@code GET} or {@code HEAD}) to {@code upstream}, reading a small
     * answer; as {@link #fetch}. Cancelling reports {@code cancelled()} at once; a request
     * already sent is left to finish unreported (within {@code timeout}) so its keep-alive
     * connection returns to the pool: a race's losers cost no new connection.
     */
    public Cancellable request(Upstream upstream, String method, URI uri, int maxBytes, Duration timeout,
            FutureCallback<Fetched> callback) {
        running(lookups);
        LookupExchange exchange = new LookupExchange(this, upstream, method, maxBytes, timeout, callback);
        exchange.start(uri);
        return exchange;
    }

    /**
     * Starts a streamed exchange with {@code upstream} on the stream pool (separate from the
     * pool of narinfo lookups and probes); the body flows into {@code sink} under its flow
     * control. Redirects are followed within the redirect policy, invisibly to the sink; a
     * refused one ends in {@link StreamingConsumer.Sink#onError} with a
     * {@link RedirectRefusedException}. The returned handle follows the current hop.
     *
     * @param headers end-to-end request headers to forward
     * @param idleTimeout how long the exchange may see no data before it fails (also the
     *     limit for the host lookup)
     */
    public UpstreamStream stream(Upstream upstream, URI uri, boolean head, Map<String, String> headers,
            Duration idleTimeout, StreamingConsumer.Sink sink) {
        running(streams);
        StreamExchange exchange = new StreamExchange(this, upstream, head, Map.copyOf(headers), idleTimeout, sink);
        exchange.start(uri);
        return exchange;
    }

    private static CloseableHttpAsyncClient running(CloseableHttpAsyncClient c) {
        if (c == null) throw new IllegalStateException("upstream client is not started");
        return c;
    }

    CloseableHttpAsyncClient lookups() {
        return running(lookups);
    }

    CloseableHttpAsyncClient streams() {
        return running(streams);
    }

    /** Idle keep-alive connections in the lookup or the stream pool; for tests and diagnostics. */
    int idleConnections(boolean streamPool) {
        PoolingAsyncClientConnectionManager pool = streamPool ? this.streamPool : lookupPool;
        return pool == null ? 0 : pool.getTotalStats().getAvailable();
    }

    Executor callbacks() {
        return callbackExecutor;
    }

    /** Runs {@code task} on the callback executor; inline only when the client is stopping. */
    void dispatch(Runnable task) {
        try {
            callbackExecutor.execute(task);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            task.run();
        }
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /**
     * The addresses of {@code host}, looked up on the DNS executor; fails with
     * {@link UnknownHostException} when the lookup does or takes longer than {@code within}.
     * Dependent stages must run async on {@link #callbacks()}: this may complete on the timer.
     */
    CompletableFuture<InetAddress[]> lookup(String host, Duration within) {
        CompletableFuture<InetAddress[]> lookup = hosts.lookup(host);
        if (lookup.isDone()) return lookup;
        CompletableFuture<InetAddress[]> result = new CompletableFuture<>();
        Scheduler.Task timer = scheduler.schedule(() -> result.completeExceptionally(
                new UnknownHostException(host + ": no address within " + within.toMillis() + " ms")),
                within.toNanos(), TimeUnit.NANOSECONDS);
        lookup.whenComplete((addresses, failure) -> {
            timer.cancel();
            if (failure != null) result.completeExceptionally(unwrap(failure));
            else result.complete(addresses);
        });
        return result;
    }

    /**
     * One hop's preparation, shared by lookups and streams: looks up the host of {@code uri}
     * (failing after {@code within}, or, when that is null, bounded by the caller's own
     * deadline), checks its addresses against the redirect policy when a redirect led there
     * outside the upstream's origin and {@code redirect_hosts}, then runs {@code send} on the callback
     * executor — or tells {@code failed} (lookup failure) or {@code refused} (a refused
     * redirect) instead. Nothing runs once {@code abandoned} says so.
     */
    void resolveThen(Upstream upstream, URI uri, boolean redirected, Duration within,
            java.util.function.BooleanSupplier abandoned, java.util.function.Consumer<Throwable> failed,
            java.util.function.Consumer<RedirectRefusedException> refused, Runnable send) {
        boolean checkAddresses = redirected && RedirectPolicy.needsAddressCheck(upstream, uri);
        CompletableFuture<InetAddress[]> addressesOf = within == null ? hosts.lookup(uri.getHost()) : lookup(uri.getHost(), within);
        addressesOf.whenCompleteAsync((addresses, failure) -> {
            if (abandoned.getAsBoolean()) return;
            if (failure != null) {
                failed.accept(unwrap(failure));
                return;
            }
            if (checkAddresses) {
                try {
                    RedirectPolicy.checkAddresses(upstream, uri, addresses);
                } catch (RedirectRefusedException e) {
                    refused.accept(e);
                    return;
                }
            }
            send.run();
        }, this::dispatch);
    }

    /**
     * Per-request state: the login of the upstream the request is for, only while it is on that
     * upstream's own origin (a redirect elsewhere carries none), and the timeouts.
     */
    HttpClientContext context(Upstream upstream, URI uri, Duration timeout) {
        HttpClientContext context = HttpClientContext.create();
        Login login = RedirectPolicy.sameOrigin(upstream, uri) ? logins.get(loginKey(upstream)) : null;
        if (login != null) {
            context.setCredentialsProvider(login.credentials());
            context.setAuthCache(login.authCache());
        } else {
            context.setCredentialsProvider(new BasicCredentialsProvider());
            context.setAuthCache(new BasicAuthCache());
        }
        context.setRequestConfig(RequestConfig.custom()
                .setResponseTimeout(Timeout.of(timeout))
                .setConnectionRequestTimeout(Timeout.of(timeout))
                .build());
        return context;
    }

    /** Logs a refused redirect, once per refusal; the message names the target host only. */
    static void logRefused(RedirectRefusedException e) {
        LOG.warn("{}", e.getMessage());
    }

    /**
     * Whether a failure before any response head means the upstream closed a pooled connection
     * while it was idle: worth one more try on another connection. Not a timeout, not a refused
     * or unreachable connection.
     */
    static boolean isStaleConnection(Throwable failure) {
        if (failure instanceof NoHttpResponseException || failure instanceof ConnectionClosedException) return true;
        return failure instanceof SocketException && !(failure instanceof ConnectException)
                && !(failure instanceof NoRouteToHostException) && !(failure instanceof PortUnreachableException);
    }

    static Throwable unwrap(Throwable failure) {
        return failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
    }
}
