package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** cache.mass_query limits: load is queued, never failed. */
class LoadLimitTest {
    private final FakeCache a = FakeCache.start().delay(Duration.ofMillis(100));
    private NcroUnderTest ncro;

    @AfterEach
    void stop() throws Exception {
        if (ncro != null) ncro.close();
        a.close();
    }

    private void fortyLookups(int base) throws Exception {
        for (int i = 0; i < 40; i++) a.put("/" + hash(base + i) + ".narinfo", narinfo(hash(base + i), "p" + i, "nar/p" + i + ".nar", 1));
        List<CompletableFuture<HttpResponse<byte[]>>> answers = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            answers.add(ncro.http.sendAsync(HttpRequest.newBuilder(ncro.uri("/" + hash(base + i) + ".narinfo")).build(),
                    HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (var answer : answers) assertEquals(200, answer.get().statusCode(), "queued, not failed");
    }

    @Test
    void perUpstreamMaxInflight_capsConcurrentRequestsToOneUpstream() throws Exception {
        ncro = NcroUnderTest.start(config("mass_query:\n  per_upstream_max_inflight: 3\n  max_concurrent_races: 64", a.uri(), 10));

        fortyLookups(200);

        assertTrue(a.maxConcurrentRequests() <= 3, "at most 3 at once, saw " + a.maxConcurrentRequests());
        assertEquals(3, a.maxConcurrentRequests(), "and the limit was used");
    }

    @Test
    void maxConcurrentRaces_capsRacesInFlight() throws Exception {
        ncro = NcroUnderTest.start(config("mass_query:\n  per_upstream_max_inflight: 64\n  max_concurrent_races: 2", a.uri(), 10));

        fortyLookups(300);

        assertEquals(2, a.maxConcurrentRequests(), "one upstream: requests in flight = races in flight");
    }
}
