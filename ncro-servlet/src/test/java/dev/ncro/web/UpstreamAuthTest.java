package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Upstream logins are sent to their upstream only, and appear nowhere else. */
class UpstreamAuthTest extends TwoUpstreams {
    private static final String SECRET = "s3cr3t-pw";
    private static final String BASIC = "Basic " + Base64.getEncoder().encodeToString(("alice:" + SECRET).getBytes(StandardCharsets.UTF_8));

    @TempDir
    Path dir;

    private String body(HttpResponse<byte[]> r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    @Test
    void basicCredentials_goToTheirUpstreamOnly_preemptively_andNeverShow() throws Exception {
        String h = hash(80);
        String nar = "nar/" + hash(81) + hash(82).substring(0, 20) + ".nar";
        a.put("/" + h + ".narinfo", narinfo(h, "auth", nar, 2)).put("/" + nar, "ok".getBytes(StandardCharsets.UTF_8));
        b.status("/" + hash(83) + ".narinfo", 401);
        ncro = NcroUnderTest.start("upstreams:\n"
                + "  - url: " + a.uri() + "\n    username: alice\n    password: " + SECRET + "\n"
                + "  - url: " + b.uri() + "\n");

        HttpResponse<byte[]> info = ncro.get("/" + h + ".narinfo");
        assertEquals(200, info.statusCode(), body(info));
        HttpResponse<byte[]> narAnswer = ncro.get("/" + nar);
        assertEquals(200, narAnswer.statusCode(), body(narAnswer) + "; a saw " + a.requests() + "; b saw " + b.requests());
        HttpResponse<byte[]> failing = ncro.get("/" + hash(83) + ".narinfo");

        assertTrue(a.requests().stream().allMatch(l -> BASIC.equals(l.headers().get("authorization"))),
                "every request to a carries the login, without waiting for a 401: " + a.requests());
        assertTrue(b.requests().stream().allMatch(l -> l.headers().get("authorization") == null), "b never sees it");
        assertEquals(1, a.count("/" + h + ".narinfo"), "one round trip, no challenge");
        for (String page : new String[] {body(failing), body(ncro.get("/health")), body(ncro.get("/metrics"))}) {
            assertFalse(page.contains(SECRET), page);
            assertFalse(page.contains(BASIC.substring(6)), page);
        }
    }

    @Test
    void cachesSharingOneHostAndPort_eachSendTheirOwnLogin_andOneWithoutSendsNone() throws Exception {
        String h = hash(86);
        a.put("/cache2/" + h + ".narinfo", narinfo(h, "attic", "nar/" + hash(87) + ".nar", 2));
        ncro = NcroUnderTest.start("upstreams:\n"
                + "  - url: " + a.uri() + "/cache1\n    username: alice\n    password: " + SECRET + "\n"
                + "  - url: " + a.uri() + "/cache2\n    username: bob\n    password: other-pw\n"
                + "  - url: " + a.uri() + "/open\n");

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertEquals(404, ncro.get("/" + hash(88) + ".narinfo").statusCode());

        String bob = "Basic " + Base64.getEncoder().encodeToString("bob:other-pw".getBytes(StandardCharsets.UTF_8));
        for (String[] expect : new String[][] {{"/cache1/", BASIC}, {"/cache2/", bob}, {"/open/", null}}) {
            var asked = a.requests().stream().filter(l -> l.path().startsWith(expect[0])).toList();
            assertFalse(asked.isEmpty(), expect[0] + " was asked");
            assertTrue(asked.stream().allMatch(l -> java.util.Objects.equals(expect[1], l.headers().get("authorization"))),
                    expect[0] + " carries " + (expect[1] == null ? "no login" : "its own login") + ": " + asked);
        }
    }

    @Test
    void netrcFile_suppliesTheLogin_byHost() throws Exception {
        String h = hash(84);
        a.put("/" + h + ".narinfo", narinfo(h, "netrc", "nar/" + hash(85) + ".nar", 2));
        Path netrc = dir.resolve("netrc");
        Files.writeString(netrc, "machine 127.0.0.1 login alice password " + SECRET + "\n");
        ncro = NcroUnderTest.start("server:\n  netrc_file: " + netrc + "\nupstreams:\n  - url: " + a.uri() + "\n");

        assertEquals(200, ncro.get("/" + h + ".narinfo").statusCode());
        assertEquals(BASIC, a.requests().get(0).headers().get("authorization"));
    }

    @Test
    void usernameWithoutPassword_isAConfigError() {
        String msg = org.junit.jupiter.api.Assertions.assertThrows(dev.ncro.config.ConfigException.class,
                () -> NcroUnderTest.start("upstreams:\n  - url: " + a.uri() + "\n    username: alice\n")).getMessage();
        assertTrue(msg.contains("upstreams[0].username: has no password beside it") && msg.contains("at line 3"), msg);
    }
}
