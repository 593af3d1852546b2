package dev.ncro.config;

import dev.ncro.trust.Filters;
import dev.ncro.trust.PublicKey;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The ncro configuration, sealed: every value checked once and parsed into its own type
 * (listen address, keys, filter rules, the netrc), per-upstream timeouts already resolved
 * against the server-wide ones, and nothing that can change afterwards. Instances come from
 * {@link ConfigLoader}, which binds the YAML (the reference ncro's schema, snake_case keys),
 * applies the environment overrides and reports every problem of the file at once.
 * Defaults are the constants of {@link Defaults}.
 */
public record NcroConfig(Server server, List<Upstream> upstreams, Cache cache, Health health, Logging logging,
        Discovery discovery, Mesh mesh, ReadAhead readAhead) {

    /** Sealed whoever builds it: the lists are copied, so no caller keeps a handle on them. */
    public NcroConfig {
        upstreams = List.copyOf(upstreams);
    }

    /**
     * @param readTimeout idle timeout of client connections (the Jetty connector's)
     * @param writeTimeout how long a NAR stream may make no progress before both sides are aborted
     * @param connectTimeout connect timeout to upstreams, unless an upstream sets its own
     * @param firstByteTimeout how long a NAR request waits for one upstream's response head
     *     before trying the next, unless an upstream sets its own
     * @param netrc logins for upstreams without username/password ({@code server.netrc_file})
     */
    public record Server(Listen listen, Duration readTimeout, Duration writeTimeout, int cachePriority,
            Duration connectTimeout, Duration firstByteTimeout, Optional<Netrc> netrc) {}

    /**
     * @param priority lower is preferred; upstreams of equal priority form one racing tier
     * @param keys {@code public_key} and {@code public_keys} together
     * @param username Basic-auth user
     * @param password Basic-auth password; never logged (see {@link #toString})
     * @param redirectHosts hosts it may redirect to even when they resolve to non-public addresses
     */
    public record Upstream(URI url, int priority, Timeout timeout, List<PublicKey> keys, List<Filters.Rule> filters,
            Optional<String> username, Optional<String> password, Set<String> redirectHosts) {
        public Upstream {
            keys = List.copyOf(keys);
            filters = List.copyOf(filters);
            redirectHosts = Set.copyOf(redirectHosts);
        }

        @Override
        public String toString() {
            return "Upstream[" + url + ", priority " + priority + (username.isPresent() ? ", with login" : "") + "]";
        }
    }

    /**
     * An upstream's timeouts, the server-wide ones filled in where it sets none.
     *
     * @param response how long one of its answers may take; empty: the race deadline (narinfo)
     *     or the write timeout (NAR) bounds it
     * @param firstByte how long a NAR request waits for its response head
     */
    public record Timeout(Duration connect, Optional<Duration> response, Duration firstByte) {}

    /** @param memoryBudget heap for routes held in memory, in bytes */
    public record Cache(String dbPath, long maxEntries, Duration ttl, Duration negativeTtl, double latencyAlpha,
            Duration raceDeadline, long memoryBudget, MassQuery massQuery) {}

    /** @param perUpstreamMaxStreams NAR streams to one upstream at once; more queue */
    public record MassQuery(int maxConcurrentRaces, int perUpstreamMaxInflight, Duration inMemoryNegativeTtl,
            Duration upstreamCooldown, int perUpstreamMaxStreams) {}

    /** @param probeInterval base interval between probes of one upstream */
    public record Health(Duration probeInterval, Duration probeTimeout) {}

    public record Logging(String level, String format) {}

    /**
     * @param service the mDNS service type browsed and advertised, like {@code _nix-serve._tcp}
     * @param publicKeys a discovered cache's narinfos are served only when signed by one of these
     * @param advertise announce this node's HTTP port (and mesh port and key) under {@code service}
     */
    public record Discovery(boolean enabled, String service, String domain, int priority,
            List<dev.ncro.trust.PublicKey> publicKeys, boolean advertise) {
        public Discovery {
            publicKeys = List.copyOf(publicKeys);
        }

        /** The fully qualified type JmDNS expects: {@code _nix-serve._tcp.local.} */
        public String type() {
            return service + "." + domain + ".";
        }
    }

    /**
     * @param privateKey path of the node's ed25519 seed file (created, mode 0600, if missing);
     *     empty: an ephemeral key
     * @param gossipInterval how often routes are announced; the replay window is twice this
     * @param acceptAnyPeer accept packets signed by keys not in {@code peers}
     */
    public record Mesh(boolean enabled, Listen bindAddr, List<Peer> peers, String privateKey, Duration gossipInterval,
            boolean acceptAnyPeer) {
        public Mesh {
            peers = List.copyOf(peers);
        }
    }

    /**
     * NAR read-ahead.
     *
     * @param maxNarSize only NARs whose FileSize is at most this are read ahead, in bytes
     * @param memory bytes of NARs read ahead and not yet claimed; the oldest are dropped first
     * @param ttl how long a NAR read ahead waits for its one download
     * @param referenceDepth how many levels of a served narinfo's references are looked up in
     *     the background (0: none)
     * @param headStart whether a NAR over {@code maxNarSize} gets a head start: its stream opened
     *     when its narinfo is served, paused after one window until its download takes it over
     */
    public record ReadAhead(boolean enabled, long maxNarSize, long memory, Duration ttl, int referenceDepth,
            boolean headStart) {
        /** Read-ahead off (for engines built in code). */
        public static final ReadAhead OFF = new ReadAhead(false, Defaults.READAHEAD_MAX_NAR_SIZE,
                Defaults.READAHEAD_MEMORY, Defaults.READAHEAD_TTL, 0, false);
    }

    /** @param publicKey the peer's ed25519 public key, 64 lower-case hex characters */
    public record Peer(String addr, String publicKey) {}
}
