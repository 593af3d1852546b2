package dev.ncro.bench.load;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's nginx ({@code /usr/sbin/nginx}) as the yardstick: a master and one worker per core,
 * on 127.0.0.1 only, with a prefix of its own under the run's work directory (config, pid, logs,
 * cache and temp files), in the foreground ({@code daemon off}) so that {@link #close} stops
 * exactly the process started here. The access log is on, to a file, as ncro's is.
 */
final class Nginx implements AutoCloseable {
    static final Path BINARY = Path.of("/usr/sbin/nginx");

    final int port;
    final String name;
    private final Process process;

    private Nginx(String name, Path prefix, String server) throws IOException {
        this.name = name;
        port = freePort();
        Files.createDirectories(prefix.resolve("logs"));
        String conf = """
                daemon off;
                master_process on;
                worker_processes auto;
                user root;
                pid %1$s/nginx.pid;
                error_log %1$s/logs/error.log warn;
                events { worker_connections 4096; }
                http {
                    types { text/x-nix-narinfo narinfo; application/x-nix-nar nar; }
                    default_type application/octet-stream;
                    access_log %1$s/logs/access.log;
                    sendfile on;
                    tcp_nopush on;
                    keepalive_requests 1000000;
                    client_body_temp_path %1$s/client_body;
                    proxy_temp_path %1$s/proxy_temp;
                    fastcgi_temp_path %1$s/fastcgi_temp;
                    uwsgi_temp_path %1$s/uwsgi_temp;
                    scgi_temp_path %1$s/scgi_temp;
                    %3$s
                    server {
                        listen 127.0.0.1:%2$d;
                        %4$s
                    }
                }
                """;
        String[] parts = server.split("\n---\n", 2);
        String http = parts.length == 2 ? parts[0] : "";
        String inServer = parts.length == 2 ? parts[1] : parts[0];
        Path file = prefix.resolve("nginx.conf");
        Files.writeString(file, conf.formatted(prefix, port, http, inServer));
        process = new ProcessBuilder(BINARY.toString(), "-p", prefix.toString(), "-c", file.toString())
                .redirectErrorStream(true).redirectOutput(prefix.resolve("logs/stdout.log").toFile()).start();
    }

    /** nginx serving the files under {@code root}. */
    static Nginx staticFiles(Path prefix, Path root) throws Exception {
        return started(new Nginx("nginx static", prefix, "location / { root " + root + "; }"));
    }

    /**
     * nginx as a caching reverse proxy in front of {@code upstream} (200s and 404s kept 10 min).
     * The fake upstream sets a cookie (tests check that ncro never passes one on); nginx would
     * cache nothing with it, and no binary cache sets one, so it is ignored and hidden.
     */
    static Nginx proxyCache(Path prefix, String upstream) throws Exception {
        return proxy("nginx proxy_cache", prefix, upstream,
                "proxy_cache_path " + prefix + "/cache levels=1:2 keys_zone=ncro:10m max_size=1g inactive=60m use_temp_path=off;",
                "proxy_cache ncro; proxy_cache_valid 200 404 10m; proxy_ignore_headers Set-Cookie; proxy_hide_header Set-Cookie;");
    }

    /** nginx as a streaming reverse proxy ({@code proxy_buffering off}) in front of {@code upstream}. */
    static Nginx streamingProxy(Path prefix, String upstream) throws Exception {
        return proxy("nginx proxy", prefix, upstream, "", "proxy_buffering off;");
    }

    /** A reverse proxy with keep-alive connections to {@code upstream}, plus the given directives. */
    private static Nginx proxy(String name, Path prefix, String upstream, String http, String location) throws Exception {
        return started(new Nginx(name, prefix, """
                %s
                upstream cache { server %s; keepalive 32; }
                ---
                location / {
                    proxy_pass http://cache;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    %s
                }
                """.formatted(http, hostPort(upstream), location)));
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    private static String hostPort(String url) {
        return url.replaceFirst("^http://", "").replaceFirst("/.*$", "");
    }

    private static Nginx started(Nginx nginx) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (!nginx.process.isAlive()) break;
            try (Socket s = new Socket("127.0.0.1", nginx.port)) {
                return nginx;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        nginx.close();
        throw new IllegalStateException(nginx.name + " did not start (exit " + (nginx.process.isAlive() ? "-" : nginx.process.exitValue()) + ")");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** CPU time used so far by the master and its workers. */
    java.time.Duration cpu() {
        return java.util.stream.Stream.concat(java.util.stream.Stream.of(process.toHandle()), process.descendants())
                .map(p -> p.info().totalCpuDuration().orElse(java.time.Duration.ZERO))
                .reduce(java.time.Duration.ZERO, java.time.Duration::plus);
    }

    @Override
    public void close() {
        List<ProcessHandle> workers = process.descendants().toList();
        process.destroy(); // SIGTERM: nginx's fast shutdown, workers included
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        workers.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }
}
