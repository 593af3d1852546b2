package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Start-up of the stock distribution as an operator meets it, with a configuration that has mistakes. */
class DistributionStartupTest {
    @TempDir
    Path dir;

    @Test
    void aConfigWithFourMistakes_isReportedInOneError_eachWithItsLine_thenExit78_withNoStackTrace() throws Exception {
        Path config = dir.resolve("ncro.yaml");
        Files.writeString(config, """
                server:
                  colour: blue
                upstreams:
                  - url: ftp://cache.example.org
                    priority: -3
                cache:
                  ttl: 5 minutes
                """);

        JettyDistribution.Exit exit = JettyDistribution.runToExit(Map.of("NCRO_CONFIG", config.toString(),
                "NCRO_DB_PATH", dir.resolve("ncro.db").toString()));

        String out = exit.output();
        assertEquals(78, exit.status(), out);
        assertTrue(out.contains("ERROR [main] dev.ncro.jetty.NcroModule - ncro cannot start: invalid ncro configuration in "
                + config), out);
        assertTrue(out.contains("unknown key 'server.colour'") && out.contains("at line 2"), out);
        assertTrue(out.contains("upstreams[0].url: must be an absolute http:// or https:// URL, got 'ftp://cache.example.org' at line 4"), out);
        assertTrue(out.contains("upstreams[0].priority: must be 0 or more, got -3 at line 5"), out);
        assertTrue(out.contains("cache.ttl: expected a duration") && out.contains("at line 7"), out);
        assertFalse(out.contains("\tat ") || out.contains("Exception") || out.contains("Usage:"), "no stack trace, no usage text:\n" + out);
    }
}
