package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.ncro.config.Defaults;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.eclipse.jetty.http.HttpHeader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Logins belong to an upstream, not to its origin: two caches behind one host and port (attic's
 * {@code http://attic/cache1} and {@code http://attic/cache2}) each send their own user, and a
 * cache there without a login sends none. Real servers on 127.0.0.1; the test reads the
 * {@code Authorization} header each request actually carried.
 */
class UpstreamClientLoginTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    private final List<AutoCloseable> closing = new ArrayList<>();
    private UpstreamClient client;

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) client.stop();
        for (AutoCloseable c : closing) c.close();
    }

    private static String basic(String user, String password) {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    private ScriptedServer server(ScriptedServer.Script script) throws Exception {
        ScriptedServer s = ScriptedServer.start(script);
        closing.add(s);
        return s;
    }

    private static Upstream at(ScriptedServer s, String path, int order) {
        return new Upstream(URI.create(s.uri() + path), 10, order);
    }

    private void start(Upstream... upstreams) throws Exception {
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(upstreams), Resolver.SYSTEM);
        client.start();
    }

    private String fetch(Upstream upstream, String path) throws Exception {
        Outcome outcome = new Outcome();
        client.fetch(upstream, upstream.resolve(path), Defaults.NARINFO_MAX_BYTES, TIMEOUT, outcome);
        return outcome.body();
    }

    /** The Authorization header of the one request the server logged for {@code path}. */
    private static String authorizationOf(ScriptedServer s, String path) {
        List<ScriptedServer.Logged> hits = s.requests().stream().filter(l -> l.path().equals(path)).toList();
        assertEquals(1, hits.size(), path + " asked once");
        return hits.get(0).headers().get("authorization");
    }

    @Test
    void twoUpstreamsOnOneOrigin_eachSendTheirOwnLogin_andOneWithoutALoginSendsNone() throws Exception {
        ScriptedServer attic = server((request, response, callback) ->
                response.write(true, ByteBuffer.wrap("ok".getBytes(StandardCharsets.UTF_8)), callback));
        Upstream cache1 = at(attic, "/cache1", 0);
        Upstream cache2 = at(attic, "/cache2", 1);
        Upstream open = at(attic, "/open", 2);
        start(cache1, cache2, open);
        client.login(cache1, "alice", "a1");
        client.login(cache2, "bob", "b2"); // configured last: must not replace alice for cache1

        assertEquals("ok", fetch(cache1, "x.narinfo"));
        assertEquals("ok", fetch(cache2, "x.narinfo"));
        assertEquals("ok", fetch(open, "x.narinfo"));

        assertEquals(basic("alice", "a1"), authorizationOf(attic, "/cache1/x.narinfo"));
        assertEquals(basic("bob", "b2"), authorizationOf(attic, "/cache2/x.narinfo"));
        assertNull(authorizationOf(attic, "/open/x.narinfo"), "no login: no credentials, not a neighbour's");
    }

    @Test
    void aChallengedLogin_staysWithItsUpstream_notWithAnotherOnTheSameOrigin() throws Exception {
        String bob = basic("bob", "b2");
        ScriptedServer attic = server((request, response, callback) -> {
            String auth = request.getHeaders().get(HttpHeader.AUTHORIZATION);
            if (request.getHttpURI().getPath().startsWith("/private/") && !bob.equals(auth)) {
                response.setStatus(401);
                response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Basic realm=\"attic\"");
                response.write(true, ByteBuffer.allocate(0), callback);
            } else {
                response.write(true, ByteBuffer.wrap("ok".getBytes(StandardCharsets.UTF_8)), callback);
            }
        });
        Upstream open = at(attic, "/open", 0);
        Upstream priv = at(attic, "/private", 1);
        start(open, priv);
        client.loginOnChallenge(priv, "bob", "b2");

        assertEquals("ok", fetch(priv, "a.narinfo")); // challenged, then answered with bob
        assertEquals("ok", fetch(open, "b.narinfo"));
        assertEquals("ok", fetch(priv, "c.narinfo"));

        assertNull(authorizationOf(attic, "/open/b.narinfo"), "the open cache never carries bob's login");
        assertEquals(bob, authorizationOf(attic, "/private/c.narinfo"), "once challenged, bob goes from the start");
    }

    @Test
    void aSameOriginRedirect_keepsTheLoginOfTheUpstreamAsked() throws Exception {
        ScriptedServer attic = server((request, response, callback) -> {
            if (request.getHttpURI().getPath().equals("/cache1/x.narinfo")) {
                ScriptedServer.redirect(response, callback, 302, "/shared/x.narinfo");
            } else {
                response.write(true, ByteBuffer.wrap("ok".getBytes(StandardCharsets.UTF_8)), callback);
            }
        });
        Upstream cache1 = at(attic, "/cache1", 0);
        Upstream cache2 = at(attic, "/cache2", 1);
        start(cache1, cache2);
        client.login(cache1, "alice", "a1");
        client.login(cache2, "bob", "b2");

        assertEquals("ok", fetch(cache1, "x.narinfo"));

        assertEquals(basic("alice", "a1"), authorizationOf(attic, "/shared/x.narinfo"), "same origin: the asking upstream's login");
    }
}
