package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.ConfigLoader;
import dev.ncro.config.NcroConfig;
import dev.ncro.testing.FakeClock;
import dev.ncro.upstream.Upstream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Preference among configured upstreams: tiers, then latency, ties to the operator's order. */
class UpstreamsTest {
    @TempDir
    Path dir;

    private Upstreams upstreams(String yaml) throws Exception {
        Path file = dir.resolve("ncro.yaml");
        Files.writeString(file, yaml);
        NcroConfig config = ConfigLoader.load(Map.of("NCRO_CONFIG", file.toString()), null).config();
        return new Upstreams(config, new FakeClock(), Runnable::run);
    }

    private static List<String> hosts(List<Upstream> order) {
        return order.stream().map(u -> u.base().getHost()).toList();
    }

    @Test
    void withinATier_latenciesWithinTenPercent_areATie_thatConfigurationOrderBreaks() throws Exception {
        Upstreams u = upstreams("upstreams:\n  - url: http://first\n  - url: http://second\n  - url: http://third\n");
        u.health(u.all().get(0)).sample(54); // listed first, 8 % slower than second: a tie
        u.health(u.all().get(1)).sample(50);
        u.health(u.all().get(2)).sample(80); // clearly slower

        assertEquals(List.of("first", "second", "third"), hosts(u.preference()));
    }

    @Test
    void withinATier_aClearlyFasterUpstream_goesFirst_whateverItsPlace() throws Exception {
        Upstreams u = upstreams("upstreams:\n  - url: http://first\n  - url: http://second\n");
        u.health(u.all().get(0)).sample(70);
        u.health(u.all().get(1)).sample(50);

        assertEquals(List.of("second", "first"), hosts(u.preference()));
    }

    @Test
    void tiers_comeBeforeLatency() throws Exception {
        Upstreams u = upstreams("upstreams:\n  - url: http://slowbutfirst\n    priority: 10\n"
                + "  - url: http://fastbutlater\n    priority: 20\n");
        u.health(u.all().get(0)).sample(500);
        u.health(u.all().get(1)).sample(5);

        assertEquals(List.of("slowbutfirst", "fastbutlater"), hosts(u.preference()));
    }

    private static final String DISCOVERY = "discovery:\n  enabled: true\n  priority: 20\n"
            + "  public_keys: [\"ncro-fixture-1:uTHtH9IV+DiKCc/GyErscsdg9YLIe1NUq4YYKBvKTxo=\"]\n";

    @Test
    void discoveredCache_joinsItsTier_andOnceRemoved_isNeverChosen_butItsRecordStays() throws Exception {
        Upstreams u = upstreams("upstreams:\n  - url: http://configured\n    priority: 10\n" + DISCOVERY);
        List<List<Upstream>> before = u.tiers();

        Upstream lan = u.addDiscovered(URI.create("http://10.0.0.7:5000/"));
        assertEquals(20, lan.priority());
        assertEquals(List.of("configured", "10.0.0.7"), hosts(u.preference()));
        assertSame(lan, u.byBase("http://10.0.0.7:5000"));
        assertEquals(1, before.size(), "a race's tiers, taken before, are not changed under it");
        assertNotNull(u.distrust(lan, dev.ncro.trust.Narinfo.parse(("StorePath: /nix/store/" + dev.ncro.testing.Narinfos.hash(1)
                + "-x\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:" + "0".repeat(52) + "\nNarSize: 1\n").getBytes(),
                dev.ncro.testing.Narinfos.hash(1))), "an unsigned narinfo from a discovered cache is distrusted");

        assertTrue(u.removeDiscovered(lan));
        assertEquals(List.of("configured"), hosts(u.preference()));
        assertNull(u.byBase("http://10.0.0.7:5000"), "its routes read as unknown");
        assertNull(u.owning("http://10.0.0.7:5000/nar/x.nar"));
        assertNotNull(u.health(lan), "work under way still finds its health");
        assertNotNull(u.lookupGate(lan));

        assertSame(lan, u.addDiscovered(URI.create("http://10.0.0.7:5000")), "a returning cache gets its record back");
        assertNull(u.addDiscovered(URI.create("http://10.0.0.7:5000")), "already in");
    }

    @Test
    void discovery_neverReplacesOrRemovesAConfiguredUpstream() throws Exception {
        Upstreams u = upstreams("upstreams:\n  - url: http://configured:8080\n" + DISCOVERY);
        assertNull(u.addDiscovered(URI.create("http://configured:8080")));
        assertFalse(u.removeDiscovered(u.all().get(0)));
        assertEquals(1, u.size());
    }
}
