package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * the README row "an upstream answering 5xx … a NAR goes to the next upstream, and it
 * cools down" (upstream_cooldown 15 s: "NARs try it last"). The failure also triggers a probe at
 * once (ProbeScheduler.suspect); HEAD /nix-cache-info still answers 200, and
 * UpstreamHealth.probeSucceeded sets cooldownUntil = 0, so the cooldown lasts one probe round
 * trip and the next NAR goes to the sick upstream first again.
 */
class NarCooldownTest extends TwoUpstreams {

    @Test
    void upstreamFailingNars_staysCooledForUpstreamCooldown_evenWhenItsCacheInfoProbeSucceeds() throws Exception {
        String nar1 = "/nar/" + hash(400) + ".nar";
        String nar2 = "/nar/" + hash(401) + ".nar";
        a.statusUnder("/nar/", 500);
        b.put(nar1, "one").put(nar2, "two");
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10, b.uri(), 20)
                + "health:\n  probe_interval: 1h\n");

        assertEquals(200, ncro.get(nar1).statusCode());
        assertEquals(1, a.count(nar1), "a (preferred) was tried first and answered 500");
        awaitProbeOf(a); // the failure got a probed at once; its /nix-cache-info is fine

        assertEquals(200, ncro.get(nar2).statusCode());
        assertEquals(0, a.count(nar2), "within upstream_cooldown (15 s) a NAR tries the failing upstream last");
    }

    private void awaitProbeOf(dev.ncro.testing.FakeCache cache) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            JsonNode health = new ObjectMapper().readTree(ncro.get("/health").body());
            for (JsonNode u : health.get("upstreams")) {
                if (u.get("url").asText().equals(cache.uri().toString()) && !u.get("last_probe").isNull()) return;
            }
            if (System.nanoTime() > until) throw new AssertionError("no probe of " + cache.uri() + ": " + health);
            Thread.onSpinWait();
        }
    }
}
