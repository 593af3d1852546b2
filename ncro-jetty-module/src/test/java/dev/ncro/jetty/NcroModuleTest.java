package dev.ncro.jetty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.api.NcroService;
import dev.ncro.config.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NcroModuleTest {
    @TempDir
    Path dir;

    private Map<String, String> env(String yaml) throws Exception {
        Path file = dir.resolve("ncro.yaml");
        Files.writeString(file, yaml);
        return Map.of("NCRO_CONFIG", file.toString(), "NCRO_DB_PATH", dir.resolve("ncro.db").toString());
    }

    @Test
    void constructing_doesNoWork_startingConfiguresTheConnectorAndPublishesTheEngine_stoppingWithdrawsIt() throws Exception {
        Server server = new Server();
        ServerConnector http = new ServerConnector(server);
        server.addConnector(http);
        // an unusable file: construction must not read it (etc/ncro.xml builds the bean early)
        NcroModule module = new NcroModule(server, null, env("upstreams: [{url: ftp://x}]\n"));
        assertNull(module.getEngine());
        assertNull(server.getAttribute(NcroService.ATTRIBUTE));

        int port;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Files.writeString(dir.resolve("ncro.yaml"), "server:\n  listen: 127.0.0.1:" + port + "\n  read_timeout: 7s\n"
                + "upstreams:\n  - url: http://127.0.0.1:9\n");
        server.addBean(module, true);
        server.start();
        try {
            assertTrue(module.getEngine().isRunning());
            assertSame(module.getEngine(), server.getAttribute(NcroService.ATTRIBUTE));
            assertEquals("127.0.0.1", http.getHost());
            assertEquals(7000, http.getIdleTimeout());
            assertEquals(port, http.getLocalPort(), "set before Jetty opened its connectors");
        } finally {
            server.stop();
        }
        assertNull(module.getEngine());
        assertNull(server.getAttribute(NcroService.ATTRIBUTE));
    }

    @Test
    void aFileWithSeveralMistakes_failsTheStart_withEveryProblem_andNoStackTrace() throws Exception {
        Server server = new Server();
        server.addConnector(new ServerConnector(server));
        server.addBean(new NcroModule(server, null, env("""
                server:
                  colour: blue
                upstreams:
                  - url: ftp://cache.example.org
                    priority: -3
                cache:
                  ttl: 5 minutes
                """)), true);

        Throwable thrown = assertThrows(Throwable.class, server::start);
        ConfigException e = thrown instanceof ConfigException ce ? ce : (ConfigException) thrown.getCause();
        try {
            assertEquals(0, e.getStackTrace().length, "the problem is the file, not the code");
            assertNull(e.getCause());
            for (String expected : new String[] {"unknown key 'server.colour'", "upstreams[0].url", "upstreams[0].priority",
                    "cache.ttl"}) {
                assertTrue(e.getMessage().contains(expected), e.getMessage());
            }
            assertFalse(server.isStarted());
        } finally {
            server.stop();
        }
    }

    @Test
    void theListenAddress_goesToThePlainHttpConnector_notToAnHttpsOne() throws Exception {
        Server server = new Server();
        ServerConnector http = new ServerConnector(server);
        server.addConnector(http);
        ServerConnector https = new ServerConnector(server,
                new org.eclipse.jetty.server.SslConnectionFactory(new org.eclipse.jetty.util.ssl.SslContextFactory.Server(), "http/1.1"),
                new org.eclipse.jetty.server.HttpConnectionFactory());
        https.setPort(8443);
        server.addConnector(https);
        int port;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Map<String, String> env = env("upstreams:\n  - url: http://127.0.0.1:9\n");
        java.util.HashMap<String, String> all = new java.util.HashMap<>(env);
        all.put("NCRO_LISTEN", "127.0.0.1:" + port);
        server.addBean(new NcroModule(server, null, all), true);
        try {
            server.start(); // the https connector has no keystore: whether it starts does not matter here
        } catch (Exception expected) {
            // configured before the connectors open, so the ports below are already set
        } finally {
            server.stop();
        }
        assertEquals(port, http.getPort());
        assertEquals(8443, https.getPort(), "both on server.listen: the second bind fails");
    }
}
