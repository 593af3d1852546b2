package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Narinfo signatures checked per upstream, with narinfos the real Nix client signed. */
class TrustTest extends TwoUpstreams {
    private static final String LEAF = "bihphjc5sij6qfda4z0gks08j57xwslx";

    private static String fixture(String name) throws IOException {
        try (InputStream in = TrustTest.class.getResourceAsStream("/dev/ncro/trust/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private String config() throws IOException {
        String key = fixture("ncro-fixture-1.pk").trim();
        return "upstreams:\n"
                + "  - url: " + a.uri() + "\n    public_key: \"" + key + "\"\n"
                + "  - url: " + b.uri() + "\n    public_keys: [\"" + key + "\"]\n";
    }

    private static String tampered(String narinfo) {
        return narinfo.replace("NarSize: 120", "NarSize: 121");
    }

    @Test
    void storedRoute_isCheckedAgainstTheKeysOfTheNextRun_notServedOnTrust(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        String honest = fixture(LEAF + ".narinfo");
        a.put("/" + LEAF + ".narinfo", tampered(honest)); // passes only while nobody checks
        java.nio.file.Path db = dir.resolve("routes.db");
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + a.uri() + "\n", db, java.time.InstantSource.system());
        assertEquals(200, ncro.get("/" + LEAF + ".narinfo").statusCode(), "no keys: served unchecked, and remembered");
        ncro.routes().flush().get();
        ncro.close();
        a.clearLog();

        String key = fixture("ncro-fixture-1.pk").trim();
        ncro = NcroUnderTest.start("upstreams:\n  - url: " + a.uri() + "\n    public_key: \"" + key + "\"\n", db,
                java.time.InstantSource.system());
        var r = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(502, r.statusCode(), "the stored narinfo fails the new key, and so does a fresh one");
        assertEquals(1, a.count("/" + LEAF + ".narinfo"), "the stored route was dropped and the upstream asked again");
    }

    @Test
    void fastestUpstreamWithABadSignature_losesToTheHonestOne() throws Exception {
        String honest = fixture(LEAF + ".narinfo");
        a.put("/" + LEAF + ".narinfo", tampered(honest));
        b.delay(Duration.ofMillis(100)).put("/" + LEAF + ".narinfo", honest);
        ncro = NcroUnderTest.start(config());

        HttpResponse<byte[]> r = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(200, r.statusCode());
        assertEquals(honest, new String(r.body(), StandardCharsets.UTF_8));
    }

    @Test
    void onlyABadSignature_is502_neverCachedOrServed() throws Exception {
        a.put("/" + LEAF + ".narinfo", tampered(fixture(LEAF + ".narinfo")));
        ncro = NcroUnderTest.start(config());

        HttpResponse<byte[]> first = ncro.get("/" + LEAF + ".narinfo");
        HttpResponse<byte[]> second = ncro.get("/" + LEAF + ".narinfo");

        assertEquals(502, first.statusCode());
        assertTrue(new String(first.body(), StandardCharsets.UTF_8).contains("does not match"));
        assertEquals(502, second.statusCode());
        assertEquals(2, a.count("/" + LEAF + ".narinfo"), "nothing was remembered");
    }

    @Test
    void badKeyInConfig_stopsStartWithTheKeyNamed() {
        String msg = org.junit.jupiter.api.Assertions.assertThrows(dev.ncro.config.ConfigException.class,
                () -> NcroUnderTest.start("upstreams:\n  - url: http://x\n    public_keys: [\"k:AAAA\"]\n")).getMessage();
        assertTrue(msg.contains("upstreams[0].public_keys[0]"), msg);
    }

    @Test
    void filteredWinner_isSkipped_andTheNextUpstreamServes_orItIsANotFound() throws Exception {
        String leaf = fixture(LEAF + ".narinfo");
        a.put("/" + LEAF + ".narinfo", leaf);
        String filtered = "upstreams:\n"
                + "  - url: " + a.uri() + "\n    filters:\n      - {action: deny, field: name, pattern: \"fixture-*\"}\n"
                + "  - url: " + b.uri() + "\n";
        ncro = NcroUnderTest.start(filtered);
        assertEquals(404, ncro.get("/" + LEAF + ".narinfo").statusCode(), "a's filter hides it, b has none: not found");
        ncro.close();

        b.clearLog();
        b.delay(Duration.ofMillis(100)).put("/" + LEAF + ".narinfo", leaf);
        ncro = NcroUnderTest.start(filtered);
        HttpResponse<byte[]> r = ncro.get("/" + LEAF + ".narinfo");
        assertEquals(200, r.statusCode(), "the faster a is filtered out; b serves");
        assertEquals(1, b.count("/" + LEAF + ".narinfo"));
    }
}
