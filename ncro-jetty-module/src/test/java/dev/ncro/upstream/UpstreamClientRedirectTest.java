package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Defaults;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.util.Callback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Redirects and credentials through the real client against real servers on 127.0.0.1. */
class UpstreamClientRedirectTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final String BASIC = "Basic " + Base64.getEncoder().encodeToString("alice:s3cret".getBytes(StandardCharsets.UTF_8));

    private final List<AutoCloseable> closing = new ArrayList<>();
    private UpstreamClient client;

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) client.stop();
        for (AutoCloseable c : closing) c.close();
    }

    private ScriptedServer server(ScriptedServer.Script script) throws Exception {
        ScriptedServer s = ScriptedServer.start(script);
        closing.add(s);
        return s;
    }

    private ScriptedServer secret() throws Exception {
        ScriptedServer s = ScriptedServer.answering(200, "the secret");
        closing.add(s);
        return s;
    }

    private static Upstream upstream(ScriptedServer s, Set<String> redirectHosts) {
        return new Upstream(s.uri(), 10, 0, Duration.ofSeconds(2), null, Duration.ofSeconds(2), redirectHosts);
    }

    private UpstreamClient start(Upstream... upstreams) throws Exception {
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(upstreams), Resolver.SYSTEM);
        client.start();
        return client;
    }

    private Outcome fetch(Upstream upstream, String path) {
        Outcome outcome = new Outcome();
        client.fetch(upstream, upstream.resolve(path), Defaults.NARINFO_MAX_BYTES, TIMEOUT, outcome);
        return outcome;
    }

    @Test
    void relativeSameOriginRedirect_isFollowed() throws Exception {
        ScriptedServer origin = server((request, response, callback) -> {
            if (request.getHttpURI().getPath().equals("/sub/a.narinfo")) ScriptedServer.redirect(response, callback, 302, "b.narinfo");
            else response.write(true, ByteBuffer.wrap("here".getBytes(StandardCharsets.UTF_8)), callback);
        });
        Upstream u = new Upstream(URI.create(origin.uri() + "/sub"), 10, 0);
        start(u);

        Outcome outcome = fetch(u, "a.narinfo");

        assertEquals("here", outcome.body());
        assertEquals(List.of("/sub/a.narinfo", "/sub/b.narinfo"), origin.requests().stream().map(ScriptedServer.Logged::path).toList());
        assertEquals(1, outcome.calls.get());
    }

    @Test
    void redirectToAnotherPortOnLoopback_isRefused_andTheTargetIsNeverAsked() throws Exception {
        ScriptedServer internal = secret();
        ScriptedServer origin = server((request, response, callback) ->
                ScriptedServer.redirect(response, callback, 302, "http://127.0.0.1:" + internal.port() + "/secret"));
        Upstream u = upstream(origin, Set.of());
        start(u);

        Exception failure = fetch(u, "x.narinfo").failure();

        assertInstanceOf(RedirectRefusedException.class, failure);
        assertTrue(failure.getMessage().contains("127.0.0.1"), failure.getMessage());
        assertTrue(internal.requests().isEmpty(), "the internal server was never asked");
    }

    @Test
    void redirectToAListedHost_isFollowed_butCredentialsStayWithTheOrigin() throws Exception {
        ScriptedServer target = secret();
        ScriptedServer origin = server((request, response, callback) ->
                ScriptedServer.redirect(response, callback, 307, "http://127.0.0.1:" + target.port() + "/blob"));
        Upstream u = upstream(origin, Set.of("127.0.0.1"));
        start(u);
        client.login(u, "alice", "s3cret");

        assertEquals("the secret", fetch(u, "x.narinfo").body());

        assertEquals(BASIC, origin.requests().get(0).headers().get("authorization"), "the origin gets its login");
        assertEquals(1, target.requests().size());
        assertNull(target.requests().get(0).headers().get("authorization"), "another port is another origin");
    }

    @Test
    void login_goesToItsOriginOnly_neverToAnotherPortOfTheSameHost() throws Exception {
        ScriptedServer a = ScriptedServer.answering(200, "a");
        ScriptedServer b = ScriptedServer.answering(200, "b");
        closing.add(a);
        closing.add(b);
        Upstream ua = upstream(a, Set.of());
        Upstream ub = upstream(b, Set.of());
        start(ua, ub);
        client.login(ua, "alice", "s3cret");

        assertEquals("a", fetch(ua, "x.narinfo").body());
        assertEquals("b", fetch(ub, "x.narinfo").body());
        Outcome wrongOrigin = new Outcome();
        client.fetch(ua, URI.create(b.uri() + "/y.narinfo"), 1024, TIMEOUT, wrongOrigin);
        assertEquals("b", wrongOrigin.body());

        assertEquals(BASIC, a.requests().get(0).headers().get("authorization"));
        assertTrue(b.requests().stream().allMatch(l -> l.headers().get("authorization") == null), "b never sees it");
    }

    @Test
    void loginOnChallenge_sendsNothingUntilTheOriginAnswers401() throws Exception {
        ScriptedServer origin = server((request, response, callback) -> {
            if (!BASIC.equals(request.getHeaders().get(HttpHeader.AUTHORIZATION))) {
                response.setStatus(401);
                response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Basic realm=\"cache\"");
                response.write(true, ByteBuffer.allocate(0), callback);
            } else {
                response.write(true, ByteBuffer.wrap("private".getBytes(StandardCharsets.UTF_8)), callback);
            }
        });
        Upstream u = upstream(origin, Set.of());
        start(u);
        client.loginOnChallenge(u, "alice", "s3cret");

        assertEquals("private", fetch(u, "x.narinfo").body());

        assertEquals("private", fetch(u, "y.narinfo").body());

        assertNull(origin.requests().get(0).headers().get("authorization"), "not preemptive");
        assertEquals(BASIC, origin.requests().get(1).headers().get("authorization"), "after the challenge");
        assertEquals(3, origin.requests().size(), "once challenged, that origin gets them from the start");
        assertEquals(BASIC, origin.requests().get(2).headers().get("authorization"));
    }

    @Test
    void endlessRedirects_failAfterMaxRedirectsHops() throws Exception {
        ScriptedServer origin = server((request, response, callback) -> ScriptedServer.redirect(response, callback, 301, "/again"));
        Upstream u = upstream(origin, Set.of());
        start(u);

        Exception failure = fetch(u, "x.narinfo").failure();

        assertInstanceOf(RedirectRefusedException.class, failure);
        assertEquals(Defaults.MAX_REDIRECTS + 1, origin.requests().size(), "the request and five redirects");
    }

    @Test
    void streamRedirect_isInvisibleToTheSink_andReleaseFollowsTheCurrentHop() throws Exception {
        int size = 2 * 1024 * 1024; // far beyond the stream window: only released bytes let it flow
        ScriptedServer origin = server((request, response, callback) -> {
            if (request.getHttpURI().getPath().equals("/nar/a.nar")) {
                ScriptedServer.redirect(response, callback, 302, "/blobs/a");
            } else {
                response.getHeaders().put(HttpHeader.CONTENT_LENGTH, size);
                response.write(true, ByteBuffer.wrap(new byte[size]), callback);
            }
        });
        Upstream u = upstream(origin, Set.of());
        start(u);
        RecordingSink sink = new RecordingSink(true);

        sink.attach(client.stream(u, u.resolve("nar/a.nar"), false, Map.of(), TIMEOUT, sink));

        assertEquals("end", sink.awaitEnd());
        assertEquals(List.of(200), sink.statuses, "the 302 never reached the sink");
        assertEquals(size, sink.bytes());
    }

    @Test
    void streamRedirectToLoopback_endsInOnError_withTheTargetNeverAsked() throws Exception {
        ScriptedServer internal = secret();
        ScriptedServer origin = server((request, response, callback) ->
                ScriptedServer.redirect(response, callback, 302, "http://127.0.0.1:" + internal.port() + "/secret"));
        Upstream u = upstream(origin, Set.of());
        start(u);
        RecordingSink sink = new RecordingSink(true);

        sink.attach(client.stream(u, u.resolve("nar/a.nar"), false, Map.of(), TIMEOUT, sink));

        assertInstanceOf(RedirectRefusedException.class, sink.awaitEnd());
        assertTrue(sink.statuses.isEmpty());
        assertTrue(internal.requests().isEmpty());
    }

    @Test
    void cancelAfterARedirect_closesTheCurrentHopsConnection() throws Exception {
        CountDownLatch writeFailed = new CountDownLatch(1);
        ScriptedServer origin = server((request, response, callback) -> {
            if (request.getHttpURI().getPath().equals("/nar/a.nar")) {
                ScriptedServer.redirect(response, callback, 302, "/blobs/a");
                return;
            }
            // writes until the client's window and the socket buffers are full, then waits
            new Callback() {
                @Override
                public void succeeded() {
                    response.write(false, ByteBuffer.wrap(new byte[16 * 1024]), this);
                }

                @Override
                public void failed(Throwable x) {
                    writeFailed.countDown();
                    callback.failed(x);
                }
            }.succeeded();
        });
        Upstream u = upstream(origin, Set.of());
        start(u);
        RecordingSink sink = new RecordingSink(false); // a client that never writes

        // an idle timeout far beyond the wait below: only cancel() can close the connection in time
        UpstreamStream stream = client.stream(u, u.resolve("nar/a.nar"), false, Map.of(), Duration.ofMinutes(5), sink);
        assertTrue(sink.awaitHead());
        stream.cancel();

        assertTrue(writeFailed.await(Outcome.WAIT_SECONDS, TimeUnit.SECONDS), "the upstream connection was closed");
        assertEquals(List.of(200), sink.statuses);
    }
}
