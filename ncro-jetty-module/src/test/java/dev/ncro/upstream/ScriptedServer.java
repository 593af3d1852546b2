package dev.ncro.upstream;

import java.net.URI;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;

/**
 * A Jetty server on 127.0.0.1, port 0, answering with whatever {@link Script} the test gives,
 * and logging what it received (method, path, headers) so tests can check what the upstream
 * actually saw: credentials, for one.
 */
final class ScriptedServer implements AutoCloseable {
    /** Answers one request; must complete the callback (or keep it, to hang). */
    @FunctionalInterface
    interface Script {
        void answer(Request request, Response response, Callback callback) throws Exception;
    }

    record Logged(String method, String path, Map<String, String> headers) {}

    private final Server server = new Server();
    private final ServerConnector connector = new ServerConnector(server, 1, 1);
    private final List<Logged> log = new CopyOnWriteArrayList<>();
    private final List<Callback> held = new CopyOnWriteArrayList<>();

    private ScriptedServer(Script script) {
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) throws Exception {
                Map<String, String> headers = new ConcurrentHashMap<>();
                request.getHeaders().forEach(f -> headers.put(f.getName().toLowerCase(Locale.ROOT), f.getValue()));
                log.add(new Logged(request.getMethod(), request.getHttpURI().getPathQuery(), headers));
                script.answer(request, response, callback);
                return true;
            }
        });
    }

    static ScriptedServer start(Script script) throws Exception {
        ScriptedServer s = new ScriptedServer(script);
        s.server.start();
        return s;
    }

    /** Answers every request with {@code status} and {@code body}. */
    static ScriptedServer answering(int status, String body) throws Exception {
        return start((request, response, callback) -> {
            response.setStatus(status);
            response.write(true, ByteBuffer.wrap(body.getBytes(java.nio.charset.StandardCharsets.UTF_8)), callback);
        });
    }

    /** A script that redirects with {@code status} to {@code location}. */
    static void redirect(Response response, Callback callback, int status, String location) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.LOCATION, location);
        response.write(true, ByteBuffer.wrap("moved\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII)), callback);
    }

    /** Keeps {@code callback} uncompleted until the server stops: the exchange hangs. */
    void hold(Callback callback) {
        held.add(callback);
    }

    URI uri() {
        return URI.create("http://127.0.0.1:" + connector.getLocalPort());
    }

    int port() {
        return connector.getLocalPort();
    }

    List<Logged> requests() {
        return log;
    }

    @Override
    public void close() {
        held.forEach(cb -> cb.failed(new java.io.IOException("server stopping")));
        try {
            server.stop();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
