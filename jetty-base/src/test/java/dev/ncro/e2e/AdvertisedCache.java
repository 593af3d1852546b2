package dev.ncro.e2e;

import dev.ncro.testing.FakeCache;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Map;
import javax.jmdns.JmDNS;
import javax.jmdns.ServiceInfo;

/**
 * A binary cache on the LAN, as {@code nix-serve} with an Avahi service file would be: a
 * {@link FakeCache} on every address at {@code args[0]}, announced over mDNS as
 * {@code _nix-serve._tcp.local.} from the first non-loopback IPv4 interface, and beside it
 * "other ncro" at {@code args[0] + 1}, announced as ncro announces itself, and an empty cache at
 * {@code args[0] + 2}, not announced (it answers 404 to every narinfo and NAR). Serves the
 * Nix-signed fixtures of the trust tests ({@code args[1..]}: hashes whose Sig lines are
 * stripped). Run inside a network namespace by {@link DiscoveryNetnsTest}; prints
 * {@code ADVERTISED} once announced, withdraws the announcement (mDNS goodbye) on the stdin
 * line {@code withdraw} and prints {@code WITHDRAWN}; exits when stdin closes.
 */
public final class AdvertisedCache {
    static final String TOP = "8hw9by54xj72m1fgzwvkj3ya48y20y3j";
    static final String MID = "zhn3p8w1gy34555fmrdvbk6mqrjkl8yi";
    static final String LEAF = "bihphjc5sij6qfda4z0gks08j57xwslx";

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        java.util.Set<String> unsigned = java.util.Arrays.stream(args).skip(1).collect(java.util.stream.Collectors.toSet());
        FakeCache cache = FakeCache.startOn("0.0.0.0", port);
        // another ncro, as ncro announces itself (ncro=1): it holds the same narinfos, but must
        // never become an upstream
        FakeCache otherNcro = FakeCache.startOn("0.0.0.0", port + 1);
        // a cache a configured upstream may point at: up, holding nothing
        FakeCache empty = FakeCache.startOn("0.0.0.0", port + 2);
        for (String hash : new String[] {TOP, MID, LEAF}) {
            String text = fixture(hash + ".narinfo");
            if (unsigned.contains(hash)) text = text.replaceAll("(?m)^Sig: .*\\n", "");
            cache.put("/" + hash + ".narinfo", text);
            otherNcro.put("/" + hash + ".narinfo", fixture(hash + ".narinfo"));
        }
        InetAddress address = null;
        for (NetworkInterface ni : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (!ni.isUp() || ni.isLoopback()) continue;
            for (InetAddress a : Collections.list(ni.getInetAddresses())) if (a instanceof Inet4Address) address = a;
        }
        if (address == null) throw new IllegalStateException("no non-loopback IPv4 interface");
        JmDNS jmdns = JmDNS.create(address, "lan-cache");
        jmdns.registerService(ServiceInfo.create("_nix-serve._tcp.local.", "lan cache", port, 0, 0, Map.of("path", "/")));
        jmdns.registerService(ServiceInfo.create("_nix-serve._tcp.local.", "other ncro", port + 1, 0, 0,
                Map.of("ncro", "1", "mesh_port", "7946", "mesh_key", "ab".repeat(32))));
        System.out.println("ADVERTISED " + address.getHostAddress() + ":" + port);
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.equals("withdraw")) {
                jmdns.unregisterAllServices();
                System.out.println("WITHDRAWN");
                System.out.flush();
            }
        }
        jmdns.close();
        cache.close();
        otherNcro.close();
        empty.close();
        System.exit(0);
    }

    private static String fixture(String name) throws Exception {
        try (InputStream in = AdvertisedCache.class.getResourceAsStream("/dev/ncro/trust/" + name)) {
            if (in == null) throw new IllegalStateException("no fixture " + name + " on the classpath");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
