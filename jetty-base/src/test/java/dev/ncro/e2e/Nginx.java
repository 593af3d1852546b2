package dev.ncro.e2e;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A real TLS terminator: Debian's nginx, run in the foreground with a configuration, pid file,
 * logs and temp paths of its own in one directory, listening on 127.0.0.1 with a self-signed
 * certificate that {@link #selfSignedCertificate} makes with openssl.
 *
 * <p>The {@code location} block is the README's "Behind TLS termination" front, plus one line:
 * {@code proxy_bind 127.0.0.2}, so that the terminator connects to ncro from another address
 * than the client's and a log line shows which of the two it names.
 */
final class Nginx implements AutoCloseable {
    /** Debian installs it in /usr/sbin, which a non-root PATH often lacks. */
    private static final String NGINX = Files.isExecutable(Path.of("/usr/sbin/nginx")) ? "/usr/sbin/nginx" : "nginx";

    final int port;
    final Path dir;
    private final Process process;

    private Nginx(Path dir, int port, Process process) {
        this.dir = dir;
        this.port = port;
        this.process = process;
    }

    /** Skips the calling test when nginx or openssl is missing, unless NCRO_REQUIRE_NIX=1 makes that a failure. */
    static void requireOrSkip() {
        for (List<String> probe : List.of(List.of(NGINX, "-v"), List.of("openssl", "version"))) {
            boolean present;
            try {
                present = new ProcessBuilder(probe).redirectErrorStream(true).start().waitFor() == 0;
            } catch (IOException | InterruptedException e) {
                present = false;
            }
            if (present) continue;
            String msg = probe.get(0) + " is not on PATH: apt-get install -y nginx openssl";
            if ("1".equals(System.getenv("NCRO_REQUIRE_NIX"))) throw new AssertionError(msg + " (NCRO_REQUIRE_NIX=1)");
            Assumptions.abort(msg + "; skipping the TLS termination test");
        }
    }

    /** A key and a self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1): {@code [cert, key]}. */
    static Path[] selfSignedCertificate(Path dir) throws IOException, InterruptedException {
        Path cert = dir.resolve("nginx-cert.pem");
        Path key = dir.resolve("nginx-key.pem");
        run(dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", key.toString(), "-out", cert.toString());
        return new Path[] {cert, key};
    }

    /** nginx terminating TLS on 127.0.0.1:(free port) in front of ncro's plain HTTP on 127.0.0.1:{@code ncroPort}. */
    static Nginx start(Path dir, int ncroPort, Path cert, Path key) throws IOException, InterruptedException {
        Files.createDirectories(dir.resolve("temp"));
        int port = freePort();
        String conf = """
                worker_processes 1;
                pid %1$s/nginx.pid;
                error_log %1$s/error.log info;
                events { worker_connections 128; }
                http {
                    access_log %1$s/access.log;
                    client_body_temp_path %1$s/temp/body;
                    proxy_temp_path %1$s/temp/proxy;
                    fastcgi_temp_path %1$s/temp/fastcgi;
                    uwsgi_temp_path %1$s/temp/uwsgi;
                    scgi_temp_path %1$s/temp/scgi;

                    upstream ncro {
                        server 127.0.0.1:%2$d;
                        keepalive 16;
                    }
                    server {
                        listen 127.0.0.1:%3$d ssl;
                        ssl_certificate %4$s;
                        ssl_certificate_key %5$s;

                        location / {
                            proxy_pass http://ncro;
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                            proxy_set_header Host $http_host;
                            proxy_set_header Forwarded "for=\\"$remote_addr\\";proto=$scheme";
                            proxy_buffering off;
                            proxy_request_buffering off;
                            proxy_read_timeout 330s;
                            proxy_send_timeout 330s;
                            # the test's one addition: connect to ncro from another address than the client's
                            proxy_bind 127.0.0.2;
                        }
                    }
                }
                """.formatted(dir, ncroPort, port, cert, key);
        Path file = dir.resolve("nginx.conf");
        Files.writeString(file, conf);
        run(dir, NGINX, "-t", "-c", file.toString(), "-p", dir.toString(), "-g", "daemon off;");
        Process process = new ProcessBuilder(NGINX, "-c", file.toString(), "-p", dir.toString(), "-g", "daemon off;")
                .directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("stdout.log").toFile()).start();
        Nginx nginx = new Nginx(dir, port, process);
        nginx.awaitListening(Duration.ofSeconds(30));
        return nginx;
    }

    String url() {
        return "https://127.0.0.1:" + port;
    }

    /** nginx prints nothing when it is ready: its port is polled. */
    private void awaitListening(Duration max) throws IOException, InterruptedException {
        long until = System.nanoTime() + max.toNanos();
        while (process.isAlive() && System.nanoTime() < until) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return;
            } catch (IOException e) {
                Thread.sleep(20);
            }
        }
        String errors = Files.exists(dir.resolve("error.log")) ? Files.readString(dir.resolve("error.log")) : "";
        close();
        throw new AssertionError("nginx did not listen on 127.0.0.1:" + port + " within " + max + ":\n" + errors);
    }

    String errorLog() throws IOException {
        return Files.readString(dir.resolve("error.log"));
    }

    private static void run(Path dir, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " failed:\n" + out);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy(); // SIGTERM: nginx's fast shutdown, master and worker
        if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
    }
}
