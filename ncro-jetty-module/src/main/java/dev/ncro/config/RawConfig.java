package dev.ncro.config;

import dev.ncro.trust.Filters;
import dev.ncro.trust.PublicKey;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The configuration file as YAML binds it: mutable, every value as written, defaults from
 * {@link Defaults}. Only {@link ConfigLoader} sees it; {@link #seal} checks every value once,
 * collecting every problem, and turns the tree into the immutable {@link NcroConfig}.
 */
final class RawConfig {
    private Server server = new Server();
    private List<Upstream> upstreams = new ArrayList<>();
    private Cache cache = new Cache();
    private Health health = new Health();
    private Logging logging = new Logging();
    private Discovery discovery = new Discovery();
    private Mesh mesh = new Mesh();
    private ReadAhead readahead = new ReadAhead();

    static final class Server {
        private String listen = Defaults.LISTEN;
        private Duration readTimeout = Defaults.READ_TIMEOUT;
        private Duration writeTimeout = Defaults.WRITE_TIMEOUT;
        private int cachePriority = Defaults.CACHE_PRIORITY;
        private Duration connectTimeout = Defaults.CONNECT_TIMEOUT;
        private Duration firstByteTimeout = Defaults.FIRST_BYTE_TIMEOUT;
        private String netrcFile = "";
    }

    static final class Upstream {
        private URI url;
        private int priority = Defaults.UPSTREAM_PRIORITY;
        private Timeout timeout = new Timeout();
        private String publicKey;
        private List<String> publicKeys = new ArrayList<>();
        private List<Filter> filters = new ArrayList<>();
        private String username;
        private String password;
        private List<String> redirectHosts = new ArrayList<>();
    }

    /** One path filter rule of an upstream. */
    static final class Filter {
        private String action;
        private String field;
        private String pattern;
    }

    /**
     * Per-upstream timeouts: {@code connect}, {@code response} (how long one answer may take)
     * and {@code first_byte} (how long a NAR request waits for the response head).
     */
    static final class Timeout {
        private Duration connect;
        private Duration response;
        private Duration firstByte;
    }

    static final class Cache {
        private String dbPath = Defaults.DB_PATH;
        private long maxEntries = Defaults.MAX_ENTRIES;
        private Duration ttl = Defaults.TTL;
        private Duration negativeTtl = Defaults.NEGATIVE_TTL;
        private double latencyAlpha = Defaults.LATENCY_ALPHA;
        private Duration raceDeadline = Defaults.RACE_DEADLINE;
        private Sizes.ByteSize memoryBudget = new Sizes.ByteSize(Defaults.MEMORY_BUDGET);
        private MassQuery massQuery = new MassQuery();
    }

    static final class MassQuery {
        private int maxConcurrentRaces = Defaults.MAX_CONCURRENT_RACES;
        private int perUpstreamMaxInflight = Defaults.PER_UPSTREAM_MAX_INFLIGHT;
        private Duration inMemoryNegativeTtl = Defaults.IN_MEMORY_NEGATIVE_TTL;
        private Duration upstreamCooldown = Defaults.UPSTREAM_COOLDOWN;
        private int perUpstreamMaxStreams = Defaults.PER_UPSTREAM_MAX_STREAMS;
    }

    static final class Health {
        private Duration probeInterval = Defaults.PROBE_INTERVAL;
        private Duration probeTimeout = Defaults.PROBE_TIMEOUT;
    }

    static final class Logging {
        private String level = Defaults.LOG_LEVEL;
        private String format = Defaults.LOG_FORMAT;
    }

    static final class Discovery {
        private boolean enabled;
        private String service = Defaults.DISCOVERY_SERVICE;
        private String domain = Defaults.DISCOVERY_DOMAIN;
        private int priority = Defaults.DISCOVERY_PRIORITY;
        private List<String> publicKeys = new ArrayList<>();
        private boolean advertise = Defaults.DISCOVERY_ADVERTISE;
    }

    static final class Mesh {
        private boolean enabled;
        private String bindAddr = Defaults.MESH_BIND_ADDR;
        private List<Peer> peers = new ArrayList<>();
        private String privateKey = "";
        private Duration gossipInterval = Defaults.GOSSIP_INTERVAL;
        private boolean acceptAnyPeer = Defaults.MESH_ACCEPT_ANY_PEER;
    }

    static final class ReadAhead {
        private boolean enabled = Defaults.READAHEAD_ENABLED;
        private Sizes.ByteSize maxNarSize = new Sizes.ByteSize(Defaults.READAHEAD_MAX_NAR_SIZE);
        private Sizes.ByteSize memory = new Sizes.ByteSize(Defaults.READAHEAD_MEMORY);
        private Duration ttl = Defaults.READAHEAD_TTL;
        private int referenceDepth = Defaults.READAHEAD_REFERENCE_DEPTH;
        private boolean headStart = Defaults.READAHEAD_HEAD_START;
    }

    static final class Peer {
        private String addr;
        private String publicKey;
    }

    // ---- overrides from the environment, then one check that seals the tree ----

    void overrideListen(String value) { server.listen = value; }
    void overrideDbPath(String value) { cache.dbPath = value; }
    void overrideLogLevel(String value) { logging.level = value; }

    /**
     * Checks every value, records each problem under its key, and returns the immutable
     * configuration, or null when there was any problem (binding problems included).
     */
    NcroConfig seal(Problems problems) {
        // a section written with no value ("server:") is an empty one
        if (server == null) server = new Server();
        if (cache == null) cache = new Cache();
        if (health == null) health = new Health();
        if (logging == null) logging = new Logging();
        if (discovery == null) discovery = new Discovery();
        if (mesh == null) mesh = new Mesh();
        if (readahead == null) readahead = new ReadAhead();
        NcroConfig.Server sealedServer = sealServer(problems);
        List<NcroConfig.Upstream> sealedUpstreams = sealUpstreams(problems, sealedServer);
        NcroConfig.Cache sealedCache = sealCache(problems);
        positive(problems, "health.probe_interval", health.probeInterval);
        positive(problems, "health.probe_timeout", health.probeTimeout);
        if (logging.level == null || !List.of("trace", "debug", "info", "warn", "error").contains(logging.level)) {
            problems.add("logging.level", "must be one of trace, debug, info, warn, error; got '" + logging.level + "'");
        }
        if (logging.format == null || !List.of("text", "json").contains(logging.format)) {
            problems.add("logging.format", "must be text or json, got '" + logging.format + "'");
        }
        NcroConfig.Discovery sealedDiscovery = sealDiscovery(problems);
        NcroConfig.Mesh sealedMesh = sealMesh(problems);
        NcroConfig.ReadAhead sealedReadAhead = sealReadAhead(problems);
        if (!problems.lines().isEmpty()) return null;
        return new NcroConfig(sealedServer, sealedUpstreams, sealedCache,
                new NcroConfig.Health(health.probeInterval, health.probeTimeout),
                new NcroConfig.Logging(logging.level, logging.format), sealedDiscovery, sealedMesh, sealedReadAhead);
    }

    private NcroConfig.Server sealServer(Problems problems) {
        Listen listen = parse(problems, "server.listen", () -> Listen.parse(server.listen));
        positive(problems, "server.read_timeout", server.readTimeout);
        positive(problems, "server.write_timeout", server.writeTimeout);
        positive(problems, "server.connect_timeout", server.connectTimeout);
        positive(problems, "server.first_byte_timeout", server.firstByteTimeout);
        if (server.cachePriority < 0) problems.add("server.cache_priority", "must be 0 or more, got " + server.cachePriority);
        Netrc netrc = null;
        if (server.netrcFile != null && !server.netrcFile.isEmpty()) {
            try {
                netrc = Netrc.read(Path.of(server.netrcFile));
            } catch (IOException | RuntimeException e) {
                problems.add("server.netrc_file", "cannot read " + server.netrcFile
                        + (e instanceof java.nio.file.NoSuchFileException ? ": no such file" : ": " + e.getMessage()));
            }
        }
        return new NcroConfig.Server(listen, server.readTimeout, server.writeTimeout, server.cachePriority,
                server.connectTimeout, server.firstByteTimeout, Optional.ofNullable(netrc));
    }

    private List<NcroConfig.Upstream> sealUpstreams(Problems problems, NcroConfig.Server sealedServer) {
        if (upstreams == null || upstreams.isEmpty()) {
            problems.add("upstreams", "at least one upstream is required");
            return List.of();
        }
        List<NcroConfig.Upstream> sealed = new ArrayList<>();
        List<URI> seen = new ArrayList<>();
        for (int i = 0; i < upstreams.size(); i++) {
            String key = "upstreams[" + i + "]";
            Upstream u = upstreams.get(i);
            if (u == null) {
                problems.add(key, "is empty");
                continue;
            }
            if (u.url == null) {
                problems.add(key + ".url", "is required");
            } else {
                String scheme = u.url.getScheme();
                if (scheme == null || !(scheme.equals("http") || scheme.equals("https")) || u.url.getHost() == null) {
                    problems.add(key + ".url", "must be an absolute http:// or https:// URL, got '" + u.url + "'");
                } else if (u.url.getRawQuery() != null || u.url.getRawFragment() != null) {
                    problems.add(key + ".url", "must not carry a query or fragment, got '" + u.url + "'");
                } else if (u.url.getRawUserInfo() != null) {
                    problems.add(key + ".url", "must not carry credentials in the URL");
                } else if (seen.contains(u.url)) {
                    problems.add(key + ".url", "duplicates another upstream: " + u.url);
                }
                seen.add(u.url);
            }
            if (u.priority < 0) problems.add(key + ".priority", "must be 0 or more, got " + u.priority);
            List<PublicKey> keys = new ArrayList<>();
            if (u.publicKey != null) keys.add(parse(problems, key + ".public_key", () -> PublicKey.parse(u.publicKey)));
            if (u.publicKeys != null) {
                for (int k = 0; k < u.publicKeys.size(); k++) {
                    String text = u.publicKeys.get(k);
                    keys.add(parse(problems, key + ".public_keys[" + k + "]", () -> PublicKey.parse(text)));
                }
            }
            if ((u.username == null) != (u.password == null)) {
                // reported at the one the file has, so that the message carries its line
                problems.add(key + (u.username != null ? ".username" : ".password"), u.username != null
                        ? "has no password beside it (username and password go together)"
                        : "has no username beside it (username and password go together)");
            }
            List<Filters.Rule> rules = new ArrayList<>();
            if (u.filters != null) {
                for (int f = 0; f < u.filters.size(); f++) {
                    Filter rule = u.filters.get(f);
                    if (rule == null) {
                        problems.add(key + ".filters[" + f + "]", "is empty");
                        continue;
                    }
                    rules.add(parse(problems, key + ".filters[" + f + "]", () -> Filters.Rule.of(rule.action, rule.field, rule.pattern)));
                }
            }
            Timeout t = u.timeout == null ? new Timeout() : u.timeout;
            if (t.connect != null) positive(problems, key + ".timeout.connect", t.connect);
            if (t.response != null) positive(problems, key + ".timeout.response", t.response);
            if (t.firstByte != null) positive(problems, key + ".timeout.first_byte", t.firstByte);
            LinkedHashSet<String> hosts = new LinkedHashSet<>();
            if (u.redirectHosts != null) {
                for (int h = 0; h < u.redirectHosts.size(); h++) {
                    String host = u.redirectHosts.get(h);
                    if (host == null || !host.trim().matches("[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]")) {
                        problems.add(key + ".redirect_hosts[" + h + "]", "must be a host name or address, got '" + host + "'");
                    } else {
                        hosts.add(host.trim().toLowerCase(Locale.ROOT));
                    }
                }
            }
            sealed.add(new NcroConfig.Upstream(u.url, u.priority,
                    new NcroConfig.Timeout(t.connect != null ? t.connect : sealedServer.connectTimeout(),
                            Optional.ofNullable(t.response),
                            t.firstByte != null ? t.firstByte : sealedServer.firstByteTimeout()),
                    keys.stream().filter(java.util.Objects::nonNull).toList(),
                    rules.stream().filter(java.util.Objects::nonNull).toList(),
                    Optional.ofNullable(u.username), Optional.ofNullable(u.password), hosts));
        }
        return sealed;
    }

    private NcroConfig.Cache sealCache(Problems problems) {
        if (cache.dbPath == null || cache.dbPath.isBlank()) problems.add("cache.db_path", "must not be empty");
        if (cache.maxEntries < 1) problems.add("cache.max_entries", "must be at least 1, got " + cache.maxEntries);
        positive(problems, "cache.ttl", cache.ttl);
        positive(problems, "cache.negative_ttl", cache.negativeTtl);
        positive(problems, "cache.race_deadline", cache.raceDeadline);
        if (!(cache.latencyAlpha > 0 && cache.latencyAlpha <= 1)) {
            problems.add("cache.latency_alpha", "must be in (0, 1], got " + cache.latencyAlpha);
        }
        if (cache.memoryBudget == null || cache.memoryBudget.bytes() < 1024 * 1024) {
            problems.add("cache.memory_budget", "must be at least 1MiB, got " + cache.memoryBudget);
        }
        MassQuery mq = cache.massQuery == null ? new MassQuery() : cache.massQuery;
        String m = "cache.mass_query.";
        if (mq.maxConcurrentRaces < 1) problems.add(m + "max_concurrent_races", "must be at least 1, got " + mq.maxConcurrentRaces);
        if (mq.perUpstreamMaxStreams < 1) problems.add(m + "per_upstream_max_streams", "must be at least 1, got " + mq.perUpstreamMaxStreams);
        if (mq.perUpstreamMaxInflight < 1) problems.add(m + "per_upstream_max_inflight", "must be at least 1, got " + mq.perUpstreamMaxInflight);
        positive(problems, m + "in_memory_negative_ttl", mq.inMemoryNegativeTtl);
        positive(problems, m + "upstream_cooldown", mq.upstreamCooldown);
        return new NcroConfig.Cache(cache.dbPath, cache.maxEntries, cache.ttl, cache.negativeTtl, cache.latencyAlpha,
                cache.raceDeadline, cache.memoryBudget == null ? 0 : cache.memoryBudget.bytes(),
                new NcroConfig.MassQuery(mq.maxConcurrentRaces, mq.perUpstreamMaxInflight, mq.inMemoryNegativeTtl,
                        mq.upstreamCooldown, mq.perUpstreamMaxStreams));
    }

    private NcroConfig.Discovery sealDiscovery(Problems problems) {
        if (discovery.priority < 0) problems.add("discovery.priority", "must be 0 or more, got " + discovery.priority);
        List<PublicKey> keys = new ArrayList<>();
        List<String> texts = discovery.publicKeys == null ? List.of() : discovery.publicKeys;
        for (int k = 0; k < texts.size(); k++) {
            String text = texts.get(k);
            keys.add(parse(problems, "discovery.public_keys[" + k + "]", () -> PublicKey.parse(text)));
        }
        // anyone on the LAN can announce a cache: only narinfos signed by a key named here are served from it
        if (discovery.enabled && texts.isEmpty()) {
            problems.add("discovery.public_keys", "must name at least one key when discovery is enabled:"
                    + " a discovered cache's narinfos are served only when signed by one of them");
        }
        if (discovery.service == null || !discovery.service.matches("_[A-Za-z0-9-]+\\._(tcp|udp)")) {
            problems.add("discovery.service", "must be an mDNS service type like _nix-serve._tcp, got " + discovery.service);
        }
        return new NcroConfig.Discovery(discovery.enabled, discovery.service, discovery.domain, discovery.priority,
                keys.stream().filter(java.util.Objects::nonNull).toList(), discovery.advertise);
    }

    private NcroConfig.Mesh sealMesh(Problems problems) {
        Listen bind = parse(problems, "mesh.bind_addr", () -> Listen.parse(mesh.bindAddr));
        positive(problems, "mesh.gossip_interval", mesh.gossipInterval);
        List<NcroConfig.Peer> peers = new ArrayList<>();
        if (mesh.peers != null) {
            for (int i = 0; i < mesh.peers.size(); i++) {
                Peer peer = mesh.peers.get(i);
                String key = "mesh.peers[" + i + "]";
                if (peer == null) {
                    problems.add(key, "is empty");
                    continue;
                }
                if (peer.addr == null || peer.addr.isBlank()) {
                    problems.add(key + ".addr", "is required (host:port)");
                } else {
                    Listen addr = parse(problems, key + ".addr", () -> Listen.parse(peer.addr));
                    if (addr != null && (addr.host() == null || addr.port() == 0)) {
                        problems.add(key + ".addr", "must be host:port with a host and a port, got '" + peer.addr + "'");
                    }
                }
                if (peer.publicKey == null || !peer.publicKey.matches("[0-9A-Fa-f]{64}")) {
                    problems.add(key + ".public_key", "must be 64 hex characters (an ed25519 public key)");
                }
                peers.add(new NcroConfig.Peer(peer.addr, peer.publicKey == null ? "" : peer.publicKey.toLowerCase(Locale.ROOT)));
            }
        }
        return new NcroConfig.Mesh(mesh.enabled, bind, peers, mesh.privateKey == null ? "" : mesh.privateKey,
                mesh.gossipInterval, mesh.acceptAnyPeer);
    }

    private NcroConfig.ReadAhead sealReadAhead(Problems problems) {
        long maxNarSize = readahead.maxNarSize == null ? 0 : readahead.maxNarSize.bytes();
        long memory = readahead.memory == null ? 0 : readahead.memory.bytes();
        if (maxNarSize < 1) problems.add("readahead.max_nar_size", "must be at least 1 byte, got " + readahead.maxNarSize);
        if (memory < 1) {
            problems.add("readahead.memory", "must be at least 1 byte, got " + readahead.memory);
        } else if (maxNarSize > memory) {
            problems.add("readahead.max_nar_size", "must not exceed readahead.memory (" + readahead.memory
                    + "), got " + readahead.maxNarSize);
        }
        positive(problems, "readahead.ttl", readahead.ttl);
        if (readahead.referenceDepth < 0 || readahead.referenceDepth > Defaults.READAHEAD_MAX_REFERENCE_DEPTH) {
            problems.add("readahead.reference_depth", "must be 0 (off) to " + Defaults.READAHEAD_MAX_REFERENCE_DEPTH
                    + ", got " + readahead.referenceDepth);
        }
        return new NcroConfig.ReadAhead(readahead.enabled, maxNarSize, memory, readahead.ttl, readahead.referenceDepth,
                readahead.headStart);
    }

    private static void positive(Problems problems, String key, Duration d) {
        if (d == null || d.isNegative() || d.isZero()) problems.add(key, "must be a positive duration");
    }

    /** The parsed value, or null with the problem recorded under {@code key}. */
    private static <T> T parse(Problems problems, String key, java.util.function.Supplier<T> parser) {
        try {
            return parser.get();
        } catch (IllegalArgumentException e) {
            problems.add(key, e.getMessage());
            return null;
        }
    }

    /** Collects every problem so one start-up reports them all. */
    static final class Problems {
        /** One problem: the key it concerns and the line the operator reads. */
        record Problem(String key, String text) {}

        private final List<Problem> problems = new ArrayList<>();
        private final java.util.Set<String> keys = new java.util.HashSet<>();
        private java.util.Map<String, Integer> keyLines = java.util.Map.of();
        private java.util.Set<String> fromEnvironment = java.util.Set.of();

        /** Where each key of the file is, for problems found after binding. */
        void lines(java.util.Map<String, Integer> keyLines) {
            this.keyLines = keyLines;
        }

        /** Keys whose value comes from the environment, not the file: no line of the file is theirs. */
        void fromEnvironment(java.util.Set<String> keys) {
            this.fromEnvironment = java.util.Set.copyOf(keys);
        }

        /**
         * One problem per key: a value that could not be bound is not reported again by
         * validation. The key's line is added when the file has the key (or, for a required
         * key that is missing, the enclosing one) and the message does not name a line already.
         */
        void add(String key, String message) {
            Integer line = fromEnvironment.contains(key) ? null : lineOf(key);
            addLine(key, key + ": " + message + (line == null || message.contains(" at line ") ? "" : " at line " + line));
        }

        private Integer lineOf(String key) {
            for (String k = key; !k.isEmpty(); k = k.substring(0, Math.max(0, Math.max(k.lastIndexOf('.'), k.lastIndexOf('['))))) {
                Integer line = keyLines.get(k);
                if (line != null) return line;
            }
            return null;
        }

        void addLine(String key, String line) {
            if (keys.add(key)) problems.add(new Problem(key, line));
        }

        List<Problem> all() {
            return List.copyOf(problems);
        }

        List<String> lines() {
            return problems.stream().map(Problem::text).toList();
        }
    }
}
