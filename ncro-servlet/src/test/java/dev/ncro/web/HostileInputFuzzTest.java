package dev.ncro.web;

import static dev.ncro.testing.Narinfos.hash;
import static dev.ncro.testing.Narinfos.narinfo;
import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * 10,000 generated hostile requests, sent raw (a real client would refuse to send most of
 * them). ncro must never answer 5xx for its own reasons (the upstreams are healthy), never
 * send an upstream anything outside the allowed forms, and keep serving.
 */
class HostileInputFuzzTest extends TwoUpstreams {
    private static final int REQUESTS = 10_000;
    private static final String NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";
    /** Everything an upstream may ever receive from ncro. */
    private static final Pattern ALLOWED_UPSTREAM = Pattern.compile(
            "/nix-cache-info|/[0-9abcdfghijklmnpqrsvwxyz]{32}\\.narinfo"
            + "|/nar/[0-9a-z]{32,64}(-[0-9a-z]{32,64})?\\.nar(\\.[a-z0-9]{1,6})?"
            + "(\\?[a-z][a-z0-9_]{0,15}=([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,128}"
            + "(&[a-z][a-z0-9_]{0,15}=([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,128}){0,3})?");

    private final Random random = new Random(Long.getLong("fuzz.seed", 20261123L));

    private String pick(String... options) {
        return options[random.nextInt(options.length)];
    }

    private String nix32(int n) {
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) sb.append(NIX32.charAt(random.nextInt(32)));
        return sb.toString();
    }

    private String junk(int n) {
        StringBuilder sb = new StringBuilder(n);
        String chars = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-._~%/\\?#[]@!$&'()*+,;=:\"<>{}|^` \t";
        for (int i = 0; i < n; i++) sb.append(chars.charAt(random.nextInt(chars.length())));
        return sb.toString();
    }

    private String target() {
        String h = nix32(32);
        return switch (random.nextInt(22)) {
            case 0 -> "/" + h + ".narinfo";
            case 1 -> "/" + h.toUpperCase() + ".narinfo";
            case 2 -> "/" + nix32(31 + random.nextInt(3) * 1) + "e.narinfo";
            case 3 -> "/../" + h + ".narinfo";
            case 4 -> "/nar/../" + h + ".narinfo";
            case 5 -> "/nar/%2e%2e/%2e%2e/etc/passwd";
            case 6 -> "/nar/" + nix32(52) + ".nar.xz" + pick("", "?hash=" + h, "?url=http://169.254.169.254/", "?a=b&c=d&e=f&g=h&i=j");
            case 7 -> "/nar/" + nix32(52) + "%2F..%2F" + h + ".nar";
            case 8 -> "/nar//" + nix32(52) + ".nar";
            case 9 -> "//evil.example/nar/" + nix32(52) + ".nar";
            case 10 -> "http://evil.example/" + h + ".narinfo";
            case 11 -> "/nar/" + nix32(52) + ".nar\\..\\..\\windows";
            case 12 -> "/" + junk(1 + random.nextInt(60));
            case 13 -> "/nar/" + junk(1 + random.nextInt(60));
            case 14 -> "/" + "a".repeat(5_000 + random.nextInt(20_000));
            case 15 -> "/nar/" + nix32(52) + ".nar%00.xz";
            case 16 -> "/nix-cache-info" + pick("", "?x=1", "/../", "%20");
            case 17 -> "/nar/" + nix32(52) + ".nar.xz#fragment";
            case 18 -> "/" + h + ".narinfo?" + junk(10);
            case 19 -> "/%6e%61%72/" + nix32(52) + ".nar";
            case 20 -> "/nar/\u00e9\u00e8" + nix32(50) + ".nar";
            default -> "*";
        };
    }

    private String request() {
        String method = pick("GET", "GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE",
                "CONNECT", "PATCH", "PROPFIND", "G\u00c9T", "get", "FOO");
        StringBuilder sb = new StringBuilder();
        sb.append(method).append(' ').append(target()).append(' ').append(pick("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/9.9", ""))
                .append("\r\nHost: ").append(pick("localhost", "evil.example", "", "127.0.0.1:1")).append("\r\n");
        switch (random.nextInt(10)) {
            case 0 -> { for (int i = 0; i < 300; i++) sb.append("X-Flood-").append(i).append(": ").append("v".repeat(100)).append("\r\n"); }
            case 1 -> sb.append("X-Big: ").append("b".repeat(20_000 + random.nextInt(50_000))).append("\r\n");
            case 2 -> sb.append("Range: ").append(pick("bytes=-1", "bytes=999999999999-", "bytes=5-2", "lines=1-2", "bytes=0-0,1-1,2-2")).append("\r\n");
            case 3 -> sb.append("Content-Length: 5\r\n\r\nhello");
            case 4 -> sb.append("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n");
            case 5 -> sb.append("Authorization: Basic ").append(junk(20)).append("\r\nCookie: ").append(junk(30)).append("\r\n");
            case 6 -> sb.append("Bad Header Without Colon\r\n");
            case 7 -> sb.append("If-None-Match: ").append(junk(10)).append("\r\nAccept-Encoding: ").append(pick("gzip", "br", "*", junk(5))).append("\r\n");
            default -> { }
        }
        if (sb.indexOf("\r\n\r\n") < 0) sb.append("Connection: close\r\n\r\n");
        return sb.toString();
    }

    /** Sends one raw request; returns the status, or 0 when the server closed without one. */
    private int send(String request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", ncro.port())) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            try {
                out.write(request.getBytes(StandardCharsets.UTF_8));
                out.flush();
                s.shutdownOutput();
            } catch (IOException e) {
                // the server may close early on garbage (a flood it stopped reading): read what it said
            }
            InputStream in = s.getInputStream();
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            try {
                for (int c; (c = in.read()) >= 0 && c != '\n'; ) line.write(c);
            } catch (IOException e) {
                // reset by the server: no status
            }
            String status = line.toString(StandardCharsets.ISO_8859_1);
            return status.startsWith("HTTP/1.") && status.length() >= 12 ? Integer.parseInt(status.substring(9, 12)) : 0;
        }
    }

    @Test
    void tenThousandHostileRequests_noOwn5xx_nothingOutsideTheAllowedForms_stillServing() throws Exception {
        String good = hash(900);
        a.put("/" + good + ".narinfo", narinfo(good, "good", "nar/" + nix32(52) + ".nar", 1));
        ncro = NcroUnderTest.start(config(null, a.uri(), 10, b.uri(), 10));

        Map<Integer, Integer> statuses = new TreeMap<>();
        int fivexx = 0;
        int versionNotSupported = 0;
        StringBuilder examples = new StringBuilder();
        for (int i = 0; i < REQUESTS; i++) {
            String request = request();
            int status = send(request);
            statuses.merge(status, 1, Integer::sum);
            String requestLine = request.substring(0, request.indexOf("\r\n"));
            boolean badVersion = !(requestLine.endsWith(" HTTP/1.1") || requestLine.endsWith(" HTTP/1.0"));
            if (status == 505 && badVersion) {
                versionNotSupported++; // the protocol's answer to "HTTP/9.9", not a failure of ncro's
            } else if (status >= 500) {
                fivexx++;
                if (examples.length() < 2000) examples.append(status).append(" <- ").append(request, 0, Math.min(200, request.length())).append('\n');
            }
        }
        List<FakeCache.Logged> forwarded = new java.util.ArrayList<>(a.requests());
        forwarded.addAll(b.requests());
        List<String> outside = forwarded.stream().map(FakeCache.Logged::target)
                .filter(t -> !ALLOWED_UPSTREAM.matcher(t).matches()).distinct().limit(20).toList();

        System.out.printf("fuzz: %d requests; ncro answered by status %s (0 = connection closed without a status;"
                + " %d of the 505s answered an unsupported HTTP version); 5xx of ncro's own: %d;"
                + " %d requests reached upstreams, %d outside the allowed forms%n",
                REQUESTS, statuses, versionNotSupported, fivexx, forwarded.size(), outside.size());

        assertEquals(0, fivexx, "ncro answered 5xx with healthy upstreams:\n" + examples);
        assertTrue(outside.isEmpty(), "forwarded outside the allowed forms: " + outside);
        assertEquals(200, ncro.get("/" + good + ".narinfo").statusCode(), "still serving");
    }
}
