package dev.ncro.jetty;

import dev.ncro.api.NcroService;
import dev.ncro.config.ConfigException;
import dev.ncro.config.ConfigLoader;
import dev.ncro.config.Listen;
import dev.ncro.config.NcroConfig;
import dev.ncro.engine.Engine;
import java.nio.file.Path;
import java.util.Map;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.annotation.Name;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ncro Jetty module's root bean, created by {@code etc/ncro.xml} and added to the
 * {@code Server}. On construction it loads and validates the configuration (a bad one stops
 * Jetty's start with a message naming the key), points the HTTP connector at
 * {@code server.listen} and publishes the engine as the Server attribute
 * {@link NcroService#ATTRIBUTE}, from where {@code webapps/ncro.xml} hands it to the WAR.
 *
 * <p>It owns the engine as a managed bean, so the engine starts with the server and stops in
 * reverse order after the web application.
 */
public class NcroModule extends ContainerLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(NcroModule.class);

    private final Engine engine;

    /** Used by {@code etc/ncro.xml}: the environment is the process's. */
    public NcroModule(@Name("server") Server server, @Name("configProperty") String configProperty) {
        this(server, configProperty, System.getenv());
    }

    public NcroModule(Server server, String configProperty, Map<String, String> env) {
        ConfigLoader.Loaded loaded;
        try {
            loaded = ConfigLoader.load(env, configProperty);
        } catch (ConfigException e) {
            // one clear line before Jetty's stack trace of the failed XML
            LOG.error("ncro cannot start: {}", e.getMessage());
            throw e;
        }
        NcroConfig config = loaded.config();
        String unsupportedBackend = LoggingSetup.apply(config.logging().level(), config.logging().format());
        if (unsupportedBackend != null && !(config.logging().level().equals("info") && config.logging().format().equals("text"))) {
            LOG.warn("logging.level and logging.format need Logback (Jetty's logging-logback module); the backend is {}",
                    unsupportedBackend);
        }
        Listen listen = config.server().listen();
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector http) {
                http.setHost(listen.host());
                http.setPort(listen.port());
                http.setIdleTimeout(config.server().readTimeout().toMillis());
            }
        }
        engine = new Engine(config, databasePath(config.cache().dbPath()), java.time.InstantSource.system());
        addBean(engine, true);
        server.setAttribute(NcroService.ATTRIBUTE, engine);
        LOG.info("ncro configured from {}: listen {}, upstreams {}", loaded.source(), listen,
                engine.upstreams().stream().map(u -> u.name() + " (priority " + u.priority() + ")").toList());
    }

    /** A relative {@code cache.db_path} lives in the Jetty base, not wherever Jetty was started. */
    static Path databasePath(String configured) {
        Path path = Path.of(configured);
        String base = System.getProperty("jetty.base");
        return path.isAbsolute() || base == null ? path.toAbsolutePath() : Path.of(base).resolve(path).toAbsolutePath();
    }

    public Engine getEngine() {
        return engine;
    }
}
