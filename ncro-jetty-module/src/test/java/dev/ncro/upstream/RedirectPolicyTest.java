package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.Defaults;
import java.net.InetAddress;
import java.net.URI;
import java.time.Duration;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RedirectPolicyTest {
    private static final Upstream HTTPS = upstream("https://cache.example.org/sub", Set.of());
    private static final Upstream HTTP = upstream("http://cache.example.org:8080", Set.of("mirror.internal", "10.1.2.3"));

    private static Upstream upstream(String base, Set<String> redirectHosts) {
        return new Upstream(URI.create(base), 10, 0, Duration.ofSeconds(1), null, Duration.ofSeconds(1), redirectHosts);
    }

    private static InetAddress[] ip(String... literals) throws Exception {
        InetAddress[] out = new InetAddress[literals.length];
        for (int i = 0; i < literals.length; i++) out[i] = InetAddress.getByName(literals[i]);
        return out;
    }

    @Test
    void sameOrigin_needsSchemeHostAndPort_withDefaultPortsFilledIn() {
        assertTrue(RedirectPolicy.sameOrigin(HTTPS, URI.create("https://CACHE.example.org:443/nar/x")));
        assertTrue(RedirectPolicy.sameOrigin(HTTPS, URI.create("https://cache.example.org/other/path")));
        assertFalse(RedirectPolicy.sameOrigin(HTTPS, URI.create("https://cache.example.org:8443/nar/x")), "another port");
        assertFalse(RedirectPolicy.sameOrigin(HTTPS, URI.create("http://cache.example.org/nar/x")), "another scheme");
        assertFalse(RedirectPolicy.sameOrigin(HTTPS, URI.create("https://cdn.example.org/nar/x")), "another host");
        assertFalse(RedirectPolicy.sameOrigin(HTTP, URI.create("http://cache.example.org/x")), "the default port is not 8080");
    }

    @Test
    void crossOriginRedirect_needsTheAddressCheck_sameOriginAndListedHostsDoNot() {
        assertFalse(RedirectPolicy.needsAddressCheck(HTTPS, URI.create("https://cache.example.org/nar/x")));
        assertTrue(RedirectPolicy.needsAddressCheck(HTTPS, URI.create("https://cdn.example.org/nar/x")));
        assertTrue(RedirectPolicy.needsAddressCheck(HTTPS, URI.create("https://cache.example.org:444/nar/x")));
        assertFalse(RedirectPolicy.needsAddressCheck(HTTP, URI.create("http://Mirror.Internal:9000/nar/x")),
                "listed in redirect_hosts, any port, host without case");
        assertFalse(RedirectPolicy.needsAddressCheck(HTTP, URI.create("http://10.1.2.3/x")));
    }

    @Test
    void httpsToHttp_isRefused_evenToTheSameHost() {
        var e = assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.check(HTTPS,
                URI.create("https://cache.example.org/sub/x.narinfo"), URI.create("http://cache.example.org/sub/x.narinfo"), 1));
        assertTrue(e.getMessage().contains("downgrade"), e.getMessage());
        assertDoesNotThrow(() -> RedirectPolicy.check(HTTP, URI.create("http://cache.example.org:8080/x"),
                URI.create("https://cdn.example.org/x"), 1), "an upgrade is fine");
    }

    @Test
    void privateLoopbackAndReservedAddresses_areRefused_publicOnesFollowed() throws Exception {
        URI target = URI.create("https://cdn.example.org/nar/x?token=secret");
        for (String internal : new String[] {"127.0.0.1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
                "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "255.255.255.255",
                "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "::ffff:10.0.0.1", "::10.0.0.1", "64:ff9b::a00:1"}) {
            var e = assertThrows(RedirectRefusedException.class,
                    () -> RedirectPolicy.checkAddresses(HTTPS, target, ip(internal)), internal);
            assertTrue(e.getMessage().contains("cdn.example.org"), "names the target host: " + e.getMessage());
            assertFalse(e.getMessage().contains("secret"), "nothing of the query: " + e.getMessage());
        }
        assertThrows(RedirectRefusedException.class,
                () -> RedirectPolicy.checkAddresses(HTTPS, target, ip("93.184.216.34", "10.0.0.1")),
                "every address must be public, not just one");
        assertDoesNotThrow(() -> RedirectPolicy.checkAddresses(HTTPS, target, ip("93.184.216.34", "2606:4700::6810:84e5",
                "100.128.0.1", "172.32.0.1", "64:ff9b::5db8:d822")));
        assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.checkAddresses(HTTPS, target, new InetAddress[0]));
    }

    @Test
    void hopLimit_isMaxRedirects() {
        URI from = URI.create("https://cache.example.org/a");
        URI to = URI.create("https://cache.example.org/b");
        assertDoesNotThrow(() -> RedirectPolicy.check(HTTPS, from, to, Defaults.MAX_REDIRECTS));
        var e = assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.check(HTTPS, from, to, Defaults.MAX_REDIRECTS + 1));
        assertTrue(e.getMessage().contains("more than " + Defaults.MAX_REDIRECTS), e.getMessage());
    }

    @Test
    void relativeLocation_resolvesAgainstTheUrlThatAnswered() throws Exception {
        URI current = URI.create("https://cache.example.org/sub/nar/abc.nar.xz?x=1");
        assertEquals(URI.create("https://cache.example.org/sub/nar/def.nar.xz"), RedirectPolicy.target(current, "def.nar.xz"));
        assertEquals(URI.create("https://cache.example.org/blobs/abc"), RedirectPolicy.target(current, "/blobs/abc"));
        assertEquals(URI.create("https://cdn.example.org/abc?sig=1"), RedirectPolicy.target(current, "//cdn.example.org/abc?sig=1"));
        assertEquals(URI.create("http://other:81/x"), RedirectPolicy.target(current, " http://other:81/x "));
        assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.target(current, "http://bad host/"));
    }

    @Test
    void otherSchemesAndUserInfo_areRefused_withoutEchoingCredentials() {
        URI from = URI.create("https://cache.example.org/a");
        assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.check(HTTPS, from, URI.create("file:///etc/passwd"), 1));
        assertThrows(RedirectRefusedException.class, () -> RedirectPolicy.check(HTTPS, from, URI.create("ftp://cdn.example.org/x"), 1));
        var e = assertThrows(RedirectRefusedException.class,
                () -> RedirectPolicy.check(HTTPS, from, URI.create("https://user:hunter2@cdn.example.org/x"), 1));
        assertFalse(e.getMessage().contains("hunter2"), e.getMessage());
        assertTrue(e.getMessage().contains("cdn.example.org"), e.getMessage());
    }

    @Test
    void redirectStatuses_areTheFiveWithALocation() {
        for (int s : new int[] {301, 302, 303, 307, 308}) assertTrue(RedirectPolicy.isRedirect(s), "" + s);
        for (int s : new int[] {200, 300, 304, 305, 306, 404}) assertFalse(RedirectPolicy.isRedirect(s), "" + s);
    }
}
