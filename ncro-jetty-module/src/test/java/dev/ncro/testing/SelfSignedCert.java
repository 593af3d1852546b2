package dev.ncro.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A self-signed certificate for {@code 127.0.0.1} and {@code localhost}, made with the JDK's
 * {@code keytool} (an EC key: cheap handshakes): the key store a {@link FakeCache} serves https
 * with, and a trust store holding only that certificate, for clients (as a file for
 * {@code javax.net.ssl.trustStore}, or as an {@link SSLContext}). Nothing is trusted blindly.
 */
public final class SelfSignedCert {
    public static final String PASSWORD = "changeit";

    private final Path keyStore;
    private final Path trustStore;

    private SelfSignedCert(Path keyStore, Path trustStore) {
        this.keyStore = keyStore;
        this.trustStore = trustStore;
    }

    /** Generates a new key pair and certificate, valid for two days, in a temporary directory. */
    public static SelfSignedCert generate() {
        try {
            Path dir = Files.createTempDirectory("ncro-tls");
            Path keys = dir.resolve("server.p12");
            Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                    "-genkeypair", "-alias", "fake-cache", "-keyalg", "EC", "-groupname", "secp256r1",
                    "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2",
                    "-storetype", "PKCS12", "-keystore", keys.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD)
                    .redirectErrorStream(true).start();
            byte[] output = p.getInputStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("keytool failed: " + new String(output, java.nio.charset.StandardCharsets.UTF_8));
            }
            KeyStore server = load(keys);
            KeyStore trust = KeyStore.getInstance("PKCS12");
            trust.load(null, null);
            trust.setCertificateEntry("fake-cache", server.getCertificate("fake-cache"));
            Path trusted = dir.resolve("trust.p12");
            try (OutputStream out = Files.newOutputStream(trusted)) {
                trust.store(out, PASSWORD.toCharArray());
            }
            keys.toFile().deleteOnExit();
            trusted.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
            return new SelfSignedCert(keys, trusted);
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("cannot make a self-signed certificate", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static KeyStore load(Path file) throws IOException, GeneralSecurityException {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(file)) {
            ks.load(in, PASSWORD.toCharArray());
        }
        return ks;
    }

    /** PKCS12 key store with the private key and certificate, password {@link #PASSWORD}. */
    public Path keyStore() {
        return keyStore;
    }

    /** PKCS12 trust store with only the certificate, password {@link #PASSWORD}. */
    public Path trustStore() {
        return trustStore;
    }

    /** A client context that trusts this certificate and nothing else. */
    public SSLContext clientContext() {
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(load(trustStore));
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, tmf.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
