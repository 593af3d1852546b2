package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * ncro behind TLS, end to end, as the README's "Behind TLS termination" sets it up: a copy of
 * the assembled base with {@code --add-modules=forwarded} (RFC 7239 only) and
 * {@code --add-modules=https} (a PKCS12 keystore made with keytool), the stock distribution
 * running it, and a real nginx terminating TLS in front of its plain HTTP connector. The real
 * Nix client trusts the self-signed certificates through {@code NIX_SSL_CERT_FILE}.
 *
 * <p>nginx connects to ncro from 127.0.0.2 ({@code proxy_bind}) while the client is 127.0.0.1,
 * so a log line shows whose address it names.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NixBehindTlsTest {
    private static final String ACCESS = " dev.ncro.access - ";
    private static final String KEYSTORE_PASSWORD = "ncro-test-secret";

    private Path work;
    private Nix nix;
    private FakeCache cache;
    private JettyDistribution jetty;
    private Nginx nginx;
    private Path nginxCert;
    private Path jettyCert;
    private int httpsPort;
    private String publicKey;
    private String top;
    private String leaf;

    @BeforeAll
    void setUp(@TempDir Path tmp) throws Exception {
        Nix.requireOrSkip();
        Nginx.requireOrSkip();
        work = tmp;
        nix = new Nix(work);
        String src = "local?root=" + work.resolve("src");
        leaf = nix.makePath(src, "builtins.toFile \"tls-leaf\" \"behind the terminator\"");
        top = nix.makePath(src, "let leaf = builtins.toFile \"tls-leaf\" \"behind the terminator\"; in "
                + "builtins.toFile \"tls-top\" \"top refers to ${leaf}\"");
        publicKey = nix.keyPair("ncro-tls-1");
        nix.ok("nix", "store", "sign", "--store", src, "--key-file", work.resolve("ncro-tls-1.sk").toString(), "-r", top);
        nix.ok("nix", "copy", "--from", src, "--to", "file://" + work.resolve("cache") + "?compression=xz", top);
        cache = FakeCache.start().serveDirectory(work.resolve("cache"));
        Files.writeString(work.resolve("ncro.yaml"), "upstreams:\n  - url: " + cache.uri() + "\n");

        // the README's commands, on a copy of the assembled base (other tests share that one)
        Path base = JettyDistribution.copyBase(work.resolve("base"));
        Path keystore = base.resolve("etc/keystore.p12");
        jettyCert = work.resolve("jetty-cert.pem");
        String keytool = Path.of(ProcessHandle.current().info().command().orElseThrow()).resolveSibling("keytool").toString();
        nix.ok(keytool, "-genkeypair", "-alias", "ncro", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1", "-storetype", "PKCS12",
                "-keystore", keystore.toString(), "-storepass", KEYSTORE_PASSWORD);
        nix.ok(keytool, "-exportcert", "-rfc", "-alias", "ncro", "-keystore", keystore.toString(),
                "-storepass", KEYSTORE_PASSWORD, "-file", jettyCert.toString());
        // port 0: Jetty picks the TLS port (two free-port probes in a row can return the same port)
        JettyDistribution.configure(base, "--add-modules=forwarded,https", "jetty.httpConfig.forwardedOnly=true",
                "jetty.ssl.host=127.0.0.1", "jetty.ssl.port=0", "jetty.sslContext.keyStorePassword=" + KEYSTORE_PASSWORD);

        jetty = JettyDistribution.start(base, Map.of("NCRO_CONFIG", work.resolve("ncro.yaml").toString(),
                "NCRO_DB_PATH", work.resolve("routes.db").toString()));
        httpsPort = jetty.connectorPort("SSL");
        Path[] pem = Nginx.selfSignedCertificate(work);
        nginxCert = pem[0];
        nginx = Nginx.start(work.resolve("nginx"), jetty.port, pem[0], pem[1]);
    }

    @AfterAll
    void tearDown() throws Exception {
        if (nginx != null) nginx.close();
        if (jetty != null) jetty.close();
        if (cache != null) cache.close();
    }

    private static String hash(String storePath) {
        return storePath.substring("/nix/store/".length(), "/nix/store/".length() + 32);
    }

    private Nix.Result realise(String name, String substituter, Path trusted) throws Exception {
        nix.freshNarinfoCache(name);
        nix.trustCertificates(trusted);
        return nix.run("nix-store", "--store", work.resolve(name).toString(), "-r", top,
                "--option", "substituters", substituter, "--option", "trusted-public-keys", publicKey);
    }

    private List<String> accessLinesFrom(int mark) {
        List<String> lines = jetty.logLines();
        return lines.subList(mark, lines.size()).stream().filter(l -> l.contains(ACCESS)).toList();
    }

    @Test
    void throughNginx_theClosureRealisesOverHttps_andNcrosLogNamesTheClient_notTheTerminator() throws Exception {
        int mark = jetty.logLines().size();

        Nix.Result r = realise("via-nginx", nginx.url(), nginxCert);

        assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
        assertEquals("top refers to " + leaf,
                Files.readString(work.resolve("via-nginx/nix/store").resolve(top.substring(11))));
        for (String path : List.of(top, leaf)) {
            String line = jetty.awaitLogLine(mark, " GET /" + hash(path) + ".narinfo ", Duration.ofSeconds(10));
            assertTrue(line.contains(ACCESS + "127.0.0.1 https GET /" + hash(path) + ".narinfo 200 "),
                    "the client's address (127.0.0.1) and scheme (https), not the terminator's: " + line);
        }
        jetty.awaitLogLine(mark, " GET /nar/", Duration.ofSeconds(10));
        List<String> lines = accessLinesFrom(mark);
        assertTrue(lines.stream().filter(l -> l.contains(" GET /nar/")).allMatch(l -> l.contains(ACCESS + "127.0.0.1 https GET /nar/")),
                "NARs streamed through the terminator, logged with the client's address: " + lines);
        assertFalse(lines.stream().anyMatch(l -> l.contains("127.0.0.2")), "the terminator's address is in no line: " + lines);
    }

    @Test
    void withoutForwardingHeaders_theLogNamesTheConnectionsAddress_soTheTerminatorsWouldShow() throws Exception {
        int mark = jetty.logLines().size();
        try (Socket socket = new Socket()) {
            // what nginx does, without the Forwarded header it adds
            socket.bind(new InetSocketAddress("127.0.0.2", 0));
            socket.connect(new InetSocketAddress("127.0.0.1", jetty.port), 5000);
            OutputStream out = socket.getOutputStream();
            out.write("GET /nix-cache-info?control HTTP/1.1\r\nHost: ncro\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            String response = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
            assertTrue(response.startsWith("HTTP/1.1 200"), response);
        }
        String line = jetty.awaitLogLine(mark, " GET /nix-cache-info ", Duration.ofSeconds(10));
        assertTrue(line.contains(ACCESS + "127.0.0.2 http GET /nix-cache-info 200 "), line);
    }

    @Test
    void forwardingHeadersAClientSends_areReplacedByTheTerminator_andIgnoredByJetty() throws Exception {
        int mark = jetty.logLines().size();
        HttpClient client = HttpClient.newBuilder().sslContext(trusting(nginxCert)).build();
        HttpRequest spoofed = HttpRequest.newBuilder(URI.create(nginx.url() + "/spoofed-" + mark))
                .header("Forwarded", "for=198.51.100.7;proto=http")
                .header("X-Forwarded-For", "203.0.113.9")
                .header("X-Forwarded-Proto", "http")
                .header("X-Proxied-Https", "off")
                .timeout(Duration.ofSeconds(30)).build();

        HttpResponse<String> response = client.send(spoofed, HttpResponse.BodyHandlers.ofString());

        assertEquals(404, response.statusCode(), response.body());
        String line = jetty.awaitLogLine(mark, " GET /spoofed-" + mark + " ", Duration.ofSeconds(10));
        assertTrue(line.contains(ACCESS + "127.0.0.1 https GET /spoofed-" + mark + " 404 "),
                "nginx's Forwarded header, not the client's: " + line);
    }

    @Test
    void directHttps_fromJettysOwnTlsConnector_realisesTheClosure() throws Exception {
        int mark = jetty.logLines().size();

        Nix.Result r = realise("direct-https", "https://127.0.0.1:" + httpsPort, jettyCert);

        assertEquals(0, r.exit(), () -> r.output() + "\n--- jetty log ---\n" + jetty.log());
        assertEquals("behind the terminator", Files.readString(work.resolve("direct-https/nix/store").resolve(leaf.substring(11))));
        String line = jetty.awaitLogLine(mark, " GET /" + hash(top) + ".narinfo ", Duration.ofSeconds(10));
        assertTrue(line.contains(ACCESS + "127.0.0.1 https GET /" + hash(top) + ".narinfo 200 "), line);
    }

    private static SSLContext trusting(Path pem) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(pem)) {
            trust.setCertificateEntry("nginx", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        return context;
    }
}
