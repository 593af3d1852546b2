package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.URI;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class UpstreamClientTest {
    @Test
    void connectTimeout_isTheUpstreamsOwn_byEndpoint_withDefaultPortsFilledIn() {
        UpstreamClient client = new UpstreamClient(Duration.ofSeconds(5), List.of(
                new Upstream(URI.create("https://A.example/cache"), 10, 0, Duration.ofSeconds(1), null),
                new Upstream(URI.create("https://a.example/other"), 10, 1, Duration.ofSeconds(2), null),
                new Upstream(URI.create("http://b.example:8080"), 10, 2, Duration.ofSeconds(3), null)));

        assertEquals(Duration.ofSeconds(1), client.connectTimeout("https", "a.example", 443), "shared host: the shortest");
        assertEquals(Duration.ofSeconds(3), client.connectTimeout("http", "b.example", 8080));
        assertEquals(Duration.ofSeconds(5), client.connectTimeout("http", "a.example", 80), "other endpoints: the global");
    }

    @Test
    void answerWithin_takesTheShorterOfOwnAndGlobal() {
        Upstream own = new Upstream(URI.create("http://a"), 10, 0, Duration.ofSeconds(5), Duration.ofMillis(200));
        Upstream none = new Upstream(URI.create("http://b"), 10, 0, Duration.ofSeconds(5), null);

        assertEquals(Duration.ofMillis(200), own.answerWithin(Duration.ofSeconds(5)));
        assertEquals(Duration.ofMillis(100), own.answerWithin(Duration.ofMillis(100)));
        assertEquals(Duration.ofSeconds(5), none.answerWithin(Duration.ofSeconds(5)));
    }
}
