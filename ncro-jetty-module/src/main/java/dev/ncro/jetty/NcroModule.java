package dev.ncro.jetty;

import dev.ncro.api.NcroService;
import dev.ncro.config.ConfigException;
import dev.ncro.config.ConfigLoader;
import dev.ncro.config.Listen;
import dev.ncro.config.NcroConfig;
import dev.ncro.engine.Engine;
import java.nio.file.Path;
import java.time.InstantSource;
import java.util.Map;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.annotation.Name;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.component.LifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ncro Jetty module's root bean, created by {@code etc/ncro.xml} and added to the
 * {@code Server} before the deployment scanner ({@code [before]} in
 * {@code modules/ncro/engine.mod}), so it starts before the web application is deployed and
 * stops after it.
 *
 * <p>Construction only records its arguments. When the server starts, before it opens its
 * connectors (a {@link LifeCycle.Listener#lifeCycleStarting} of the server: Jetty binds
 * ports before it starts its beans), the configuration is loaded and sealed, its logging
 * settings applied and the HTTP connector pointed at {@code server.listen}. {@link #doStart}
 * then creates and starts the engine as a managed bean and publishes it as the Server
 * attribute {@link NcroService#ATTRIBUTE}, from where {@code webapps/ncro.xml} hands it to
 * the WAR. Each start reads the file again. Every connector gets {@code server.read_timeout}
 * as its idle timeout; a TLS connector (Jetty's ssl/https modules) keeps its own address.
 *
 * <p>A configuration that cannot be used fails the start with one ERROR line listing every
 * problem of the file (key, line, what was expected) and a {@link ConfigException} that
 * carries no stack trace: the problem is the file, not the code.
 */
public class NcroModule extends ContainerLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(NcroModule.class);

    private final Server server;
    private final String configProperty;
    private final Map<String, String> env;
    private final boolean exitOnConfigError;
    private volatile ConfigLoader.Loaded loaded;
    private volatile Engine engine;

    /**
     * Used by {@code etc/ncro.xml}: the environment is the process's.
     *
     * @param exitOnConfigError end the process with {@link #EXIT_CONFIG} after reporting a
     *     configuration that cannot be used, rather than have {@code start.jar} print the
     *     failed start's stack traces (twice) and its usage text under the report
     */
    public NcroModule(@Name("server") Server server, @Name("configProperty") String configProperty,
            @Name("exitOnConfigError") boolean exitOnConfigError) {
        this(server, configProperty, System.getenv(), exitOnConfigError);
    }

    /** For embedding and tests: a bad configuration fails {@link #start} with a {@link ConfigException}. */
    public NcroModule(Server server, String configProperty, Map<String, String> env) {
        this(server, configProperty, env, false);
    }

    private NcroModule(Server server, String configProperty, Map<String, String> env, boolean exitOnConfigError) {
        this.server = server;
        this.configProperty = configProperty;
        this.env = Map.copyOf(env);
        this.exitOnConfigError = exitOnConfigError;
        server.addEventListener(new LifeCycle.Listener() {
            @Override
            public void lifeCycleStarting(LifeCycle event) {
                configure();
            }
        });
    }

    /** The exit status of a start refused for its configuration: sysexits' EX_CONFIG. */
    public static final int EXIT_CONFIG = 78;

    /** Loads the configuration and applies what must be in place before the connectors open. */
    private void configure() {
        ConfigLoader.Loaded config;
        try {
            config = ConfigLoader.load(env, configProperty);
        } catch (ConfigException e) {
            LOG.error("ncro cannot start: {}", e.getMessage());
            if (exitOnConfigError) {
                LoggingSetup.flush(); // the report above may still be in the log's buffer
                System.out.flush();
                System.err.flush();
                // halt, not exit: Jetty's shutdown hook would wait for this very start to finish
                Runtime.getRuntime().halt(EXIT_CONFIG);
            }
            throw ConfigException.withoutTrace(e);
        }
        NcroConfig.Logging logging = config.config().logging();
        String unsupportedBackend = LoggingSetup.apply(logging.level(), logging.format());
        if (unsupportedBackend != null && !(logging.level().equals("info") && logging.format().equals("text"))) {
            LOG.warn("logging.level and logging.format need Logback (Jetty's logging-logback module); the backend is {}",
                    unsupportedBackend);
        }
        Listen listen = config.config().server().listen();
        int applied = 0;
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector network) {
                network.setIdleTimeout(config.config().server().readTimeout().toMillis());
                // the plain HTTP connector (the http module's); a TLS one keeps jetty.ssl.host and
                // jetty.ssl.port, or both would bind server.listen and the second fail
                if (network.getConnectionFactory(SslConnectionFactory.class) == null) {
                    network.setHost(listen.host());
                    network.setPort(listen.port());
                    applied++;
                }
            }
        }
        if (applied == 0) {
            LOG.warn("server.listen {} is not applied: the server has no plain HTTP ServerConnector (Jetty's http module);"
                    + " its connectors keep their own addresses", listen);
        }
        loaded = config;
    }

    @Override
    protected void doStart() throws Exception {
        if (loaded == null) configure(); // started on its own, not by the server
        NcroConfig config = loaded.config();
        Listen listen = config.server().listen();
        Engine created = new Engine(config, databasePath(config.cache().dbPath()), InstantSource.system());
        addBean(created, true);
        engine = created;
        server.setAttribute(NcroService.ATTRIBUTE, created);
        LOG.info("ncro configured from {}: listen {}, upstreams {}", loaded.source(), listen,
                created.upstreams().stream().map(u -> u.name() + " (priority " + u.priority() + ")").toList());
        try {
            super.doStart();
            created.advertise(this::httpPort);
        } catch (Throwable failed) {
            // a failed start runs no doStop: withdraw the engine, or the next start adds a second
            engine = null;
            loaded = null;
            server.removeAttribute(NcroService.ATTRIBUTE);
            removeBean(created);
            try {
                created.stop();
            } catch (Exception e) {
                failed.addSuppressed(e);
            }
            throw failed;
        }
    }

    @Override
    protected void doStop() throws Exception {
        super.doStop();
        Engine stopped = engine;
        engine = null;
        loaded = null;
        if (stopped != null) {
            server.removeAttribute(NcroService.ATTRIBUTE);
            removeBean(stopped);
        }
    }

    /**
     * The port the plain HTTP connector has bound (known once the server has opened it; the
     * advertisement asks for it then), or server.listen's port.
     */
    private int httpPort() {
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector network && network.getConnectionFactory(SslConnectionFactory.class) == null
                    && network.getLocalPort() > 0) {
                return network.getLocalPort();
            }
        }
        var config = loaded;
        return config == null ? 0 : config.config().server().listen().port();
    }

    /** A relative {@code cache.db_path} lives in the Jetty base, not wherever Jetty was started. */
    static Path databasePath(String configured) {
        Path path = Path.of(configured);
        String base = System.getProperty("jetty.base");
        return path.isAbsolute() || base == null ? path.toAbsolutePath() : Path.of(base).resolve(path).toAbsolutePath();
    }

    /** The running engine; null before start and after stop. */
    public Engine getEngine() {
        return engine;
    }
}
