package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Scrapes /metrics, parses the text format and checks that the counters moved with the traffic. */
class MetricsTest {
    private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? (\\S+)$");

    private final FakeCache a = FakeCache.start();
    private NcroUnderTest ncro;

    @AfterEach
    void stop() throws Exception {
        if (ncro != null) ncro.close();
        a.close();
    }

    /** name{labels} → value, for every sample line; comments checked for well-formedness. */
    private Map<String, Double> scrape() throws Exception {
        HttpResponse<byte[]> r = ncro.get("/metrics");
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("content-type").orElseThrow().startsWith("text/plain; version=0.0.4"));
        Map<String, Double> samples = new HashMap<>();
        for (String line : new String(r.body(), StandardCharsets.UTF_8).split("\n")) {
            if (line.isEmpty()) continue;
            if (line.startsWith("#")) {
                assertTrue(line.startsWith("# HELP ") || line.startsWith("# TYPE "), line);
                continue;
            }
            Matcher m = SAMPLE.matcher(line);
            assertTrue(m.matches(), "not a sample line: " + line);
            samples.put(m.group(1) + (m.group(2) == null ? "" : m.group(2)), Double.parseDouble(m.group(3)));
        }
        return samples;
    }

    private static double value(Map<String, Double> samples, String key) {
        Double v = samples.get(key);
        if (v == null) throw new AssertionError("no sample " + key + " in " + samples.keySet());
        return v;
    }

    @Test
    void countersMove_asRequestsGoThrough() throws Exception {
        String found = hash(70);
        String missing = hash(71);
        a.put("/" + found + ".narinfo", narinfo(found, "m", "nar/s2gcxmfn2bsr3211qwdwrsjs6gcaf2dq33036356cqmv5x9d6nq0.nar", 3)).put("/nar/s2gcxmfn2bsr3211qwdwrsjs6gcaf2dq33036356cqmv5x9d6nq0.nar", new byte[1000]);
        ncro = NcroUnderTest.start(config(null, a.uri(), 10));
        String up = "upstream=\"" + a.uri() + "\"";

        ncro.get("/" + found + ".narinfo"); // miss, race won by a
        ncro.get("/" + found + ".narinfo"); // hit
        ncro.get("/" + missing + ".narinfo"); // miss, 404
        ncro.get("/" + missing + ".narinfo"); // negative hit
        ncro.get("/nar/s2gcxmfn2bsr3211qwdwrsjs6gcaf2dq33036356cqmv5x9d6nq0.nar");
        assertEquals(200, ncro.send("HEAD", "/" + found + ".narinfo").statusCode()); // hit, HEAD
        assertEquals(404, ncro.send("HEAD", "/" + missing + ".narinfo").statusCode()); // negative hit, HEAD

        Map<String, Double> m = scrape();
        assertEquals(2, value(m, "ncro_narinfo_cache_hits_total"));
        assertEquals(2, value(m, "ncro_narinfo_cache_misses_total"));
        assertEquals(2, value(m, "ncro_narinfo_negative_cache_hits_total"));
        assertEquals(3, value(m, "ncro_narinfo_requests_total{status=\"200\"}"), "GETs and HEADs, each once");
        assertEquals(3, value(m, "ncro_narinfo_requests_total{status=\"404\"}"), "GETs and HEADs, each once");
        assertEquals(1, value(m, "ncro_upstream_race_wins_total{" + up + "}"));
        assertEquals(2, value(m, "ncro_upstream_latency_seconds_count{" + up + "}"));
        assertEquals(2, value(m, "ncro_race_wait_seconds_count"));
        assertEquals(1, value(m, "ncro_nar_requests_total"));
        assertEquals(1000, value(m, "ncro_nar_streamed_bytes_total"));
        assertEquals(0, value(m, "ncro_nar_streams_in_flight"));
        assertEquals(0, value(m, "ncro_upstream_state{" + up + "}"));
        assertEquals(0, value(m, "ncro_narinfo_singleflight_waiters_total"));
        ncro.engine.routes().flush().get();
        assertEquals(1, value(scrape(), "ncro_route_entries"));
        assertEquals(0, value(scrape(), "ncro_route_store_write_failing"), "the database takes writes");
    }
}
