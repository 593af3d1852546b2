package dev.ncro.web;

import dev.ncro.api.NcroService;
import dev.ncro.config.ConfigLoader;
import dev.ncro.engine.Engine;
import jakarta.servlet.DispatcherType;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.EnumSet;
import java.util.Map;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * ncro as the WAR runs it — the same filter and servlet, mapped as web.xml maps them, over a
 * real engine — in an embedded Jetty on 127.0.0.1, port 0.
 */
public final class NcroUnderTest implements AutoCloseable {
    final Server server;
    final Engine engine;
    private final ServerConnector connector;
    public final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    private final Path dir;

    private NcroUnderTest(String yaml, Path database, InstantSource clock) throws Exception {
        this(yaml, database, clock, dev.ncro.upstream.Resolver.SYSTEM);
    }

    private NcroUnderTest(String yaml, Path database, InstantSource clock, dev.ncro.upstream.Resolver resolver)
            throws Exception {
        dir = Files.createTempDirectory("ncro-test");
        Path file = dir.resolve("ncro.yaml");
        Files.writeString(file, yaml);
        engine = new Engine(ConfigLoader.load(Map.of("NCRO_CONFIG", file.toString()), null).config(),
                database != null ? database : dir.resolve("routes.db"), clock, resolver);
        server = new Server();
        connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        server.addBean(engine);
        ServletContextHandler context = new ServletContextHandler("/");
        context.setAttribute(NcroService.ATTRIBUTE, engine);
        FilterHolder filter = new FilterHolder(NcroFilter.class);
        filter.setAsyncSupported(true);
        context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST));
        ServletHolder nar = new ServletHolder(NarServlet.class);
        nar.setAsyncSupported(true);
        context.addServlet(nar, "/nar/*");
        server.setHandler(context);
        server.start();
    }

    /** ncro with a fresh route database of its own and the system clock. */
    public static NcroUnderTest start(String yaml) throws Exception {
        return new NcroUnderTest(yaml, null, InstantSource.system());
    }

    /** ncro with its own route database, the system clock, and host names looked up by {@code resolver}. */
    public static NcroUnderTest start(String yaml, dev.ncro.upstream.Resolver resolver) throws Exception {
        return new NcroUnderTest(yaml, null, InstantSource.system(), resolver);
    }

    /** ncro on the given route database file, with the given clock. */
    public static NcroUnderTest start(String yaml, Path database, InstantSource clock) throws Exception {
        return new NcroUnderTest(yaml, database, clock);
    }

    /**
     * A config with the given upstreams as (url, priority) pairs and extra YAML under cache.
     * NAR read-ahead is off: these tests count the requests upstreams receive and script their
     * NAR answers; {@code ReadAheadTest} writes its own configuration.
     */
    public static String config(String cacheYaml, Object... urlAndPriority) {
        StringBuilder sb = new StringBuilder("upstreams:\n");
        for (int i = 0; i < urlAndPriority.length; i += 2) {
            sb.append("  - url: ").append(urlAndPriority[i]).append("\n    priority: ").append(urlAndPriority[i + 1]).append('\n');
        }
        if (cacheYaml != null) sb.append("cache:\n").append(cacheYaml.indent(2));
        sb.append("readahead:\n  enabled: false\n");
        return sb.toString();
    }

    public dev.ncro.route.RouteStore routes() {
        return engine.routes();
    }

    public int port() {
        return connector.getLocalPort();
    }

    public URI uri(String path) {
        return URI.create("http://127.0.0.1:" + port() + path);
    }

    HttpResponse<byte[]> get(String path, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(30));
        if (headers.length > 0) b.headers(headers);
        return http.send(b.GET().build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    HttpResponse<byte[]> send(String method, String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(30))
                .method(method, HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    @Override
    public void close() throws Exception {
        server.stop();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
