package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.DeflaterOutputStream;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream;
import org.eclipse.jetty.http.HttpHeader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/**
 * Narinfos served with a {@code Content-Encoding} (S3 caches written with
 * {@code narinfo-compression}) reach the caller decoded, within the size limit, from a real
 * server through the real client.
 */
class ContentDecodingTest {
    private static final String NARINFO = "StorePath: /nix/store/0c8vfqw8ljyqdjm2wkwylqjmn4mfr5xc-hello\nURL: nar/x.nar.xz\n"
            + "Compression: xz\nNarHash: sha256:1\nNarSize: 1\nReferences: \n";
    private static final int LIMIT = 64 * 1024;

    private record Served(String encoding, byte[] body) {}

    private final Map<String, Served> files = new ConcurrentHashMap<>();
    private ScriptedServer server;
    private UpstreamClient client;
    private Upstream upstream;

    @BeforeEach
    void setUp() throws Exception {
        server = ScriptedServer.start((request, response, callback) -> {
            Served s = files.get(request.getHttpURI().getPath());
            if (s == null) {
                response.setStatus(404);
                response.getHeaders().put(HttpHeader.CONTENT_ENCODING, "gzip"); // garbage, never decoded
                response.write(true, ByteBuffer.wrap("no such file".getBytes(StandardCharsets.UTF_8)), callback);
                return;
            }
            response.getHeaders().put(HttpHeader.CONTENT_ENCODING, s.encoding());
            response.write(true, ByteBuffer.wrap(s.body()), callback);
        });
        upstream = new Upstream(server.uri(), 10, 0);
        client = new UpstreamClient(Duration.ofSeconds(2), List.of(upstream));
        client.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        client.stop();
        server.close();
    }

    private interface Encoder {
        OutputStream wrap(OutputStream out) throws IOException;
    }

    private static byte[] encode(byte[] plain, Encoder encoder) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (OutputStream out = encoder.wrap(bytes)) {
            out.write(plain);
        }
        return bytes.toByteArray();
    }

    private Outcome fetch(String path) {
        Outcome outcome = new Outcome();
        client.fetch(upstream, upstream.resolve(path.substring(1)), LIMIT, Duration.ofSeconds(10), outcome);
        return outcome;
    }

    private void serves(String encoding, Encoder encoder) throws Exception {
        String path = "/" + encoding.replace(',', '-').replace(' ', '_') + ".narinfo";
        files.put(path, new Served(encoding, encode(NARINFO.getBytes(StandardCharsets.UTF_8), encoder)));
        assertEquals(NARINFO, fetch(path).body(), encoding);
    }

    @Test
    void gzip_isDecoded() throws Exception {
        serves("gzip", GZIPOutputStream::new);
        serves("x-gzip", GZIPOutputStream::new);
    }

    @Test
    void xz_isDecoded() throws Exception {
        serves("xz", out -> new XZOutputStream(out, new LZMA2Options()));
    }

    @Test
    void zstd_isDecoded() throws Exception {
        serves("zstd", io.airlift.compress.zstd.ZstdOutputStream::new);
    }

    @Test
    void bzip2AndDeflate_areDecoded() throws Exception {
        serves("bzip2", BZip2CompressorOutputStream::new);
        serves("deflate", DeflaterOutputStream::new);
    }

    @Test
    void stackedCodings_areUndoneLastFirst() throws Exception {
        // xz applied first, gzip last: gzip is outermost on the wire
        serves("xz, gzip", out -> new XZOutputStream(new GZIPOutputStream(out), new LZMA2Options()));
    }

    @Test
    void identity_isLeftAsIs() throws Exception {
        serves("identity", out -> out);
    }

    @Test
    void unknownCoding_failsNamingIt_neverANotFound() throws Exception {
        files.put("/c.narinfo", new Served("compress", new byte[] {1, 2, 3}));

        Exception failure = fetch("/c.narinfo").failure();

        assertTrue(failure.getMessage().contains("unsupported Content-Encoding 'compress'"), failure.getMessage());
    }

    @Test
    void decompressionBomb_failsLikeAnOversizedBody() throws Exception {
        files.put("/bomb.narinfo", new Served("gzip", encode(new byte[10 * 1024 * 1024], GZIPOutputStream::new)));
        assertTrue(files.get("/bomb.narinfo").body().length < LIMIT, "small on the wire");

        Exception failure = fetch("/bomb.narinfo").failure();

        assertTrue(failure.getMessage().contains(LIMIT + "-byte limit"), failure.getMessage());
    }

    @Test
    void corruptBody_failsTheUpstream() throws Exception {
        files.put("/bad.narinfo", new Served("xz", "not xz at all".getBytes(StandardCharsets.UTF_8)));

        Exception failure = fetch("/bad.narinfo").failure();

        assertTrue(failure.getMessage().contains("cannot decode Content-Encoding xz"), failure.getMessage());
    }

    @Test
    void headWithAnEncoding_isAnAnswer_notADecodingFailure() throws Exception {
        files.put("/nix-cache-info", new Served("xz", encode("StoreDir: /nix/store\n".getBytes(StandardCharsets.UTF_8),
                out -> new XZOutputStream(out, new LZMA2Options()))));
        Outcome outcome = new Outcome();
        client.request(upstream, "HEAD", upstream.resolve("nix-cache-info"), LIMIT, Duration.ofSeconds(10), outcome);

        assertEquals(200, outcome.fetched().status());
    }

    @Test
    void notFoundWithAnEncoding_isPassedOnUndecoded() throws Exception {
        Fetched answer = fetch("/missing.narinfo").fetched();

        assertEquals(404, answer.status());
        assertFalse(answer.body().length == 0);
    }

    @Test
    void brotli_isDecoded() throws Exception {
        // no brotli encoder in Java: a hand-made stream, one uncompressed meta-block (RFC 7932 9.2)
        byte[] hello = {0x40, 0x00, 0x10, 'h', 'e', 'l', 'l', 'o', 0x03};
        files.put("/br.narinfo", new Served("br", hello));

        assertEquals("hello", fetch("/br.narinfo").body());
    }

    @Test
    void codingNames_areCaseFree_andListedFirstAppliedFirst() {
        assertEquals(List.of("gzip", "xz"), ContentDecoding.codings("XZ, identity ,Gzip"));
    }
}
