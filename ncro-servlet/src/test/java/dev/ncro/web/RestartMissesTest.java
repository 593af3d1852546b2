package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * Done-when (e) under ordinary Nix concurrency (http-connections = 25): after a blip,
 * the upstream cools down; a miss then asks it only through tryRun (NarinfoRace.advance), so
 * every miss beyond per_upstream_max_inflight (8) answers 502 at once, although the upstream
 * is back and would answer 404.
 */
class RestartMissesTest extends TwoUpstreams {

    @Test
    void concurrentMissesRightAfterARestart_are404_not502() throws Exception {
        a.delay(Duration.ofMillis(300)); // an ordinary far upstream: answers in 300 ms
        ncro = NcroUnderTest.start(NcroUnderTest.config(null, a.uri(), 10) + "health:\n  probe_interval: 1h\n");

        a.restart(() -> {
            try {
                assertEquals(502, ncro.get("/" + hash(200) + ".narinfo").statusCode(), "during the gap");
                awaitFailedProbe(); // the traffic-triggered probe ran (and failed) while it was down
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });

        List<CompletableFuture<HttpResponse<byte[]>>> misses = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            String path = "/" + hash(300 + i) + ".narinfo";
            misses.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return ncro.get(path);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }));
        }
        Map<Integer, Integer> statuses = new TreeMap<>();
        for (CompletableFuture<HttpResponse<byte[]>> f : misses) statuses.merge(f.get().statusCode(), 1, Integer::sum);

        assertEquals(Map.of(404, 20), statuses, "20 concurrent misses right after the restart (a answers 404 to each)");
    }

    private void awaitFailedProbe() throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            JsonNode health = new ObjectMapper().readTree(ncro.get("/health").body());
            if (health.get("upstreams").get(0).get("consecutive_failures").asInt() >= 1) return;
            if (System.nanoTime() > until) throw new AssertionError("no failed probe: " + health);
            Thread.onSpinWait();
        }
    }
}
