package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * An upstream that redirects, through the real servlet, engine and client: a redirect into
 * ncro's own network (another port on 127.0.0.1) is refused and never turns into a not-found,
 * unless the upstream's {@code redirect_hosts} lists that host; credentials stay with the
 * upstream's origin either way.
 */
class RedirectTest {
    private static final String SECRET = "TOP-SECRET internal answer";
    private static final String PASSWORD = "s3cr3t-pw";
    private static final String BASIC = "Basic " + Base64.getEncoder().encodeToString(("alice:" + PASSWORD).getBytes(StandardCharsets.UTF_8));

    /** An upstream whose answers are scripted per path: a redirect, or a body. */
    private static final class RedirectingUpstream implements AutoCloseable {
        final Map<String, String> redirects = new ConcurrentHashMap<>();
        final Map<String, String> files = new ConcurrentHashMap<>();
        final List<Map<String, String>> requests = new CopyOnWriteArrayList<>();
        private final Server server = new Server();
        private final ServerConnector connector = new ServerConnector(server, 1, 1);

        RedirectingUpstream() throws Exception {
            connector.setHost("127.0.0.1");
            connector.setPort(0);
            server.addConnector(connector);
            server.setHandler(new Handler.Abstract() {
                @Override
                public boolean handle(Request request, Response response, Callback callback) {
                    Map<String, String> headers = new ConcurrentHashMap<>();
                    request.getHeaders().forEach(f -> headers.put(f.getName().toLowerCase(Locale.ROOT), f.getValue()));
                    headers.put(":path", request.getHttpURI().getPath());
                    requests.add(headers);
                    String path = request.getHttpURI().getPath();
                    String location = redirects.get(path);
                    String body = files.get(path);
                    if (location != null) {
                        response.setStatus(302);
                        response.getHeaders().put(HttpHeader.LOCATION, location);
                        body = "moved";
                    } else if (body == null) {
                        response.setStatus(404);
                        body = "not here";
                    }
                    response.write(true, ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)), callback);
                    return true;
                }
            });
            server.start();
        }

        URI uri() {
            return URI.create("http://127.0.0.1:" + connector.getLocalPort());
        }

        @Override
        public void close() throws Exception {
            server.stop();
        }
    }

    private final FakeCache internal = FakeCache.start().put("/secret", SECRET);
    private RedirectingUpstream upstream;
    private NcroUnderTest ncro;

    @AfterEach
    void tearDown() throws Exception {
        if (ncro != null) ncro.close();
        if (upstream != null) upstream.close();
        internal.close();
    }

    private String secretUrl() {
        return internal.uri() + "/secret";
    }

    private static String body(HttpResponse<byte[]> r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    @Test
    void narRedirectToAnotherPortOnLoopback_isRefused_andTheSecretNeverReachesTheClient() throws Exception {
        upstream = new RedirectingUpstream();
        String nar = "nar/" + hash(90) + ".nar";
        upstream.redirects.put("/" + nar, secretUrl());
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + upstream.uri() + "\n");

        HttpResponse<byte[]> r = ncro.get("/" + nar);

        assertTrue(r.statusCode() >= 500, "a failure of that upstream, never a not-found: " + r.statusCode());
        assertFalse(body(r).contains(SECRET), body(r));
        assertTrue(internal.requests().isEmpty(), "ncro never asked the internal server: " + internal.requests());
        assertEquals(1, upstream.requests.stream().filter(h -> h.get(":path").startsWith("/nar/")).count(),
                "asked once (a probe of /nix-cache-info may follow the failure)");
    }

    @Test
    void narRedirectToAListedHost_isFollowed_withoutTheUpstreamsCredentials() throws Exception {
        upstream = new RedirectingUpstream();
        String nar = "nar/" + hash(91) + ".nar";
        upstream.redirects.put("/" + nar, secretUrl());
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + upstream.uri() + "\n"
                + "    username: alice\n    password: " + PASSWORD + "\n"
                + "    redirect_hosts: [\"127.0.0.1\"]\n");

        HttpResponse<byte[]> r = ncro.get("/" + nar);

        assertEquals(200, r.statusCode());
        assertEquals(SECRET, body(r));
        assertEquals(BASIC, upstream.requests.get(0).get("authorization"), "the upstream gets its login");
        assertEquals(1, internal.requests().size());
        assertNull(internal.requests().get(0).headers().get("authorization"), "the redirect target, another origin, does not");
    }

    @Test
    void narinfoRedirectToAnotherPort_isRefused_with502Not404() throws Exception {
        upstream = new RedirectingUpstream();
        String h = hash(92);
        upstream.redirects.put("/" + h + ".narinfo", internal.uri() + "/" + h + ".narinfo");
        internal.put("/" + h + ".narinfo", narinfo(h, "internal", "nar/" + hash(93) + ".nar", 5));
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + upstream.uri() + "\n");

        HttpResponse<byte[]> r = ncro.get("/" + h + ".narinfo");

        assertEquals(502, r.statusCode(), body(r));
        assertTrue(body(r).contains("127.0.0.1"), "names the refused target: " + body(r));
        assertTrue(internal.requests().isEmpty());
    }

    @Test
    void sameOriginRedirect_isFollowed_forNarinfoAndNar() throws Exception {
        upstream = new RedirectingUpstream();
        String h = hash(94);
        String nar = "nar/" + hash(95) + ".nar";
        upstream.redirects.put("/" + h + ".narinfo", "/moved/" + h + ".narinfo");
        upstream.files.put("/moved/" + h + ".narinfo", narinfo(h, "moved", nar, 5));
        upstream.redirects.put("/" + nar, upstream.uri() + "/blobs/" + hash(95));
        upstream.files.put("/blobs/" + hash(95), "bytes");
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + upstream.uri() + "\n");

        HttpResponse<byte[]> info = ncro.get("/" + h + ".narinfo");
        HttpResponse<byte[]> r = ncro.get("/" + nar);

        assertEquals(200, info.statusCode(), body(info));
        assertTrue(body(info).contains("StorePath: /nix/store/" + h + "-moved"), body(info));
        assertEquals(200, r.statusCode(), body(r));
        assertEquals("bytes", body(r));
    }
}
