package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ncro.config.ConfigLoader;
import dev.ncro.config.NcroConfig;
import dev.ncro.testing.FakeClock;
import dev.ncro.upstream.Upstream;
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
}
