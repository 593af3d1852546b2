package dev.ncro.bench;

import static dev.ncro.testing.Narinfos.narinfo;

import dev.ncro.testing.FakeCache;
import dev.ncro.testing.SelfSignedCert;
import dev.ncro.web.NcroUnderTest;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * Cold narinfo lookups against https upstreams (Jetty, a self-signed certificate, delayed 20,
 * 50 and 80 ms, all holding every path), once speaking HTTP/1.1 only and once offering HTTP/2 in
 * ALPN. ncro trusts the certificate the standard way: {@code javax.net.ssl.trustStore}.
 *
 * <p>Targets: p50 and p99 at most 1.15 × the winner's round trip + 5 ms, the winner's round trip
 * being a direct GET to the 20 ms upstream over the same protocol on a warm connection (its p50);
 * and TLS handshakes, counted by each upstream, no more than one per connection-pool slot the
 * lookups needed, not one per lookup: at most the most requests the upstream saw waiting at once,
 * or, when a connection is held a moment longer on the client's side than the upstream sees the
 * request waiting (the answer in transit, the connection on its way back to the pool), no
 * connection closed during the run: each handshake then opened a pool slot still in use.
 */
final class TlsBench {
    private static final int[] DELAYS_MS = {20, 50, 80};

    private TlsBench() {}

    static void run(int lookups) throws Exception {
        SelfSignedCert cert = SelfSignedCert.generate();
        // how an operator trusts a private CA: ncro's client and the JDK's both honour these
        System.setProperty("javax.net.ssl.trustStore", cert.trustStore().toString());
        System.setProperty("javax.net.ssl.trustStorePassword", SelfSignedCert.PASSWORD);
        System.setProperty("javax.net.ssl.trustStoreType", "PKCS12");
        int warmup = Integer.getInteger("bench.warmup", 200);
        for (boolean h2 : new boolean[] {false, true}) once(cert, h2, lookups, warmup);
    }

    private static void once(SelfSignedCert cert, boolean h2, int lookups, int warmup) throws Exception {
        String protocol = h2 ? "HTTP/2 (ALPN)" : "HTTP/1.1";
        FakeCache[] caches = new FakeCache[DELAYS_MS.length];
        try {
            for (int i = 0; i < caches.length; i++) caches[i] = FakeCache.startHttps(cert, h2).delay(Duration.ofMillis(DELAYS_MS[i]));
            for (int i = 0; i < warmup + lookups; i++) {
                String h = Bench.routeHash(5000 + i);
                String info = narinfo(h, "p" + i, "nar/p" + i + ".nar.xz", 1234);
                for (FakeCache c : caches) c.put("/" + h + ".narinfo", info);
            }
            FakeCache fastest = caches[0];
            // the winner's round trip: the same GETs straight to the fastest upstream, warm connection
            HttpClient direct = HttpClient.newBuilder()
                    .version(h2 ? HttpClient.Version.HTTP_2 : HttpClient.Version.HTTP_1_1).build();
            double[] rtt = new double[lookups];
            for (int i = 0; i < warmup + lookups; i++) {
                HttpRequest request = HttpRequest.newBuilder(fastest.uri().resolve("/" + Bench.routeHash(5000 + i) + ".narinfo")).build();
                long t0 = System.nanoTime();
                direct.send(request, HttpResponse.BodyHandlers.ofByteArray());
                if (i >= warmup) rtt[i - warmup] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(rtt);
            // the direct client's connection would otherwise idle out during ncro's run and be
            // counted as one of ncro's connections closed
            for (FakeCache c : caches) c.dropConnections();
            int[] handshakesBefore = new int[caches.length];
            int[] closedBefore = new int[caches.length];
            for (int i = 0; i < caches.length; i++) {
                handshakesBefore[i] = caches[i].handshakes();
                closedBefore[i] = caches[i].closedConnections();
            }
            for (FakeCache c : caches) c.clearLog();
            int[][] protocolsBefore = new int[caches.length][];
            for (int i = 0; i < caches.length; i++) protocolsBefore[i] = overEach(caches[i]);

            try (NcroUnderTest ncro = NcroUnderTest.start(NcroUnderTest.config(null,
                    caches[2].uri(), 10, caches[1].uri(), 10, caches[0].uri(), 10))) {
                double[] ms = new double[lookups];
                int[] handshakesAfterWarmup = new int[caches.length];
                for (int i = 0; i < warmup + lookups; i++) {
                    if (i == warmup) for (int k = 0; k < caches.length; k++) handshakesAfterWarmup[k] = caches[k].handshakes();
                    double t = Bench.lookup(ncro, 5000 + i);
                    if (i >= warmup) ms[i - warmup] = t;
                }
                Arrays.sort(ms);
                double winner = pct(rtt, 50);
                double target = 1.15 * winner + 5;
                System.out.printf("TLS upstreams over %s, delayed %s ms, %d cold lookups after %d warm-up:%n",
                        protocol, Arrays.toString(DELAYS_MS).replaceAll("[\\[\\] ]", "").replace(',', '/'), lookups, warmup);
                System.out.printf("  through ncro: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms%n",
                        pct(ms, 50), pct(ms, 90), pct(ms, 99), ms[ms.length - 1]);
                System.out.printf("  winner's round trip (direct to the %d ms upstream): p50 %.2f ms  p99 %.2f ms%n",
                        DELAYS_MS[0], winner, pct(rtt, 99));
                System.out.printf("  p50 %.3fx, p99 %.3fx the winner's round trip; target <= 1.15x + 5 ms = %.2f ms: p50 %s, p99 %s%n",
                        pct(ms, 50) / winner, pct(ms, 99) / winner, target,
                        pct(ms, 50) <= target ? "MET" : "MISSED", pct(ms, 99) <= target ? "MET" : "MISSED");
                double target99 = 1.15 * pct(rtt, 99) + 5;
                System.out.printf("  percentile for percentile: p99 %.3fx the direct p99; target <= 1.15x + 5 ms = %.2f ms: %s%n",
                        pct(ms, 99) / pct(rtt, 99), target99, pct(ms, 99) <= target99 ? "MET" : "MISSED");
                for (int k = 0; k < caches.length; k++) {
                    FakeCache c = caches[k];
                    int all = c.handshakes() - handshakesBefore[k];
                    int measured = c.handshakes() - handshakesAfterWarmup[k];
                    int slots = Math.max(1, c.maxConcurrentRequests());
                    int closed = c.closedConnections() - closedBefore[k];
                    // a connection never closed holds its pool slot: its handshake was that slot's only one
                    String verdict = all <= slots ? "MET (<= one per request the upstream saw waiting at once)"
                            : closed == 0 ? "MET (no connection closed: one handshake per pool slot the client opened)"
                            : "MISSED";
                    System.out.printf("  %d ms upstream: %d TLS handshakes for %d requests over %s (%d during the %d measured lookups);"
                            + " at most %d requests waiting at once; %d connections closed: %s%n",
                            DELAYS_MS[k], all, c.requests().size(), requestProtocol(c, protocolsBefore[k]), measured, lookups, slots,
                            closed, verdict);
                }
            }
        } finally {
            for (FakeCache c : caches) if (c != null) c.close();
        }
    }

    private static final List<String> PROTOCOLS = List.of("HTTP/1.1", "HTTP/2.0");

    private static int[] overEach(FakeCache c) {
        return PROTOCOLS.stream().mapToInt(c::requestsOver).toArray();
    }

    /** Which protocols the requests since {@code before} came over. */
    private static String requestProtocol(FakeCache c, int[] before) {
        int[] now = overEach(c);
        List<String> seen = new java.util.ArrayList<>();
        for (int i = 0; i < now.length; i++) if (now[i] > before[i]) seen.add(PROTOCOLS.get(i));
        return String.join(" and ", seen);
    }

    private static double pct(double[] sorted, int p) {
        return Bench.pct(sorted, p);
    }
}
