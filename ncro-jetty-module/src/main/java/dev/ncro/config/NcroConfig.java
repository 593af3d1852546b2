package dev.ncro.config;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The ncro configuration, with the reference ncro's YAML schema. Instances come only from
 * {@link ConfigLoader}, which binds the YAML, applies the environment overrides and validates
 * every value once; after that the tree is read-only (fields have getters, no setters).
 *
 * <p>Keys are snake_case in YAML ({@code cache.mass_query.max_concurrent_races}); defaults
 * are the constants of {@link Defaults}.
 */
public final class NcroConfig {
    private Server server = new Server();
    private List<Upstream> upstreams = new ArrayList<>();
    private Cache cache = new Cache();
    private Health health = new Health();
    private Logging logging = new Logging();
    private Discovery discovery = new Discovery();
    private Mesh mesh = new Mesh();

    public Server server() { return server; }
    public List<Upstream> upstreams() { return List.copyOf(upstreams); }
    public Cache cache() { return cache; }
    public Health health() { return health; }
    public Logging logging() { return logging; }
    public Discovery discovery() { return discovery; }
    public Mesh mesh() { return mesh; }

    public static final class Server {
        private String listen = Defaults.LISTEN;
        private Duration readTimeout = Defaults.READ_TIMEOUT;
        private Duration writeTimeout = Defaults.WRITE_TIMEOUT;
        private int cachePriority = Defaults.CACHE_PRIORITY;
        private Duration connectTimeout = Defaults.CONNECT_TIMEOUT;
        private Duration firstByteTimeout = Defaults.FIRST_BYTE_TIMEOUT;
        private String netrcFile = "";

        /** How long a NAR request waits for one upstream's response head before trying the next. */
        public Duration firstByteTimeout() { return firstByteTimeout; }

        /** netrc file for upstream logins, used for upstreams without username/password; "" for none. */
        public String netrcFile() { return netrcFile; }

        public Listen listen() { return Listen.parse(listen); }
        /** Connect timeout to upstreams, unless an upstream sets its own. */
        public Duration connectTimeout() { return connectTimeout; }
        /** Idle timeout of client connections (the Jetty connector's). */
        public Duration readTimeout() { return readTimeout; }
        /** How long a NAR stream may make no progress before both sides are aborted. */
        public Duration writeTimeout() { return writeTimeout; }
        public int cachePriority() { return cachePriority; }
    }

    public static final class Upstream {
        private URI url;
        private int priority = Defaults.UPSTREAM_PRIORITY;
        private Timeout timeout = new Timeout();
        private String publicKey;
        private List<String> publicKeys = new ArrayList<>();
        private List<Filter> filters = new ArrayList<>();
        private String username;
        private String password;
        private List<String> redirectHosts = new ArrayList<>();

        /** Hosts this upstream may redirect to even when they resolve to non-public addresses. */
        public List<String> redirectHosts() {
            return redirectHosts == null ? List.of()
                    : redirectHosts.stream().map(h -> h.trim().toLowerCase(java.util.Locale.ROOT)).toList();
        }

        /** Basic-auth user, or null. */
        public String username() { return username; }

        /** Basic-auth password, or null. Never logged. */
        public String password() { return password; }

        /** The path filters, parsed (validated at load). */
        public List<dev.ncro.trust.Filters.Rule> filters() {
            return filters == null ? List.of() : filters.stream()
                    .map(f -> dev.ncro.trust.Filters.Rule.of(f.action, f.field, f.pattern)).toList();
        }

        public URI url() { return url; }

        /** public_key and public_keys together, parsed (validated at load). */
        public List<dev.ncro.trust.PublicKey> keys() {
            List<dev.ncro.trust.PublicKey> keys = new ArrayList<>();
            if (publicKey != null) keys.add(dev.ncro.trust.PublicKey.parse(publicKey));
            if (publicKeys != null) publicKeys.forEach(k -> keys.add(dev.ncro.trust.PublicKey.parse(k)));
            return keys;
        }
        /** This upstream's own timeouts; null members inherit the global ones. */
        public Timeout timeout() { return timeout; }
        /** Lower is preferred; upstreams of equal priority form one racing tier. */
        public int priority() { return priority; }
    }

    /** One path filter rule of an upstream. */
    public static final class Filter {
        private String action;
        private String field;
        private String pattern;
    }

    /**
     * Per-upstream timeouts: {@code connect}, {@code response} (how long one answer may take)
     * and {@code first_byte} (how long a NAR request waits for the response head).
     */
    public static final class Timeout {
        private Duration connect;
        private Duration response;
        private Duration firstByte;

        public Duration connect() { return connect; }
        public Duration response() { return response; }
        /** Null: {@code server.first_byte_timeout}. */
        public Duration firstByte() { return firstByte; }
    }

    public static final class Cache {
        private String dbPath = Defaults.DB_PATH;
        private long maxEntries = Defaults.MAX_ENTRIES;
        private Duration ttl = Defaults.TTL;
        private Duration negativeTtl = Defaults.NEGATIVE_TTL;
        private double latencyAlpha = Defaults.LATENCY_ALPHA;
        private Duration raceDeadline = Defaults.RACE_DEADLINE;
        private Sizes.ByteSize memoryBudget = new Sizes.ByteSize(Defaults.MEMORY_BUDGET);
        private MassQuery massQuery = new MassQuery();

        /** Heap for routes held in memory, in bytes. */
        public long memoryBudget() { return memoryBudget.bytes(); }

        public String dbPath() { return dbPath; }
        public long maxEntries() { return maxEntries; }
        public Duration ttl() { return ttl; }
        public Duration negativeTtl() { return negativeTtl; }
        public double latencyAlpha() { return latencyAlpha; }
        public Duration raceDeadline() { return raceDeadline; }
        public MassQuery massQuery() { return massQuery; }
    }

    public static final class MassQuery {
        private int maxConcurrentRaces = Defaults.MAX_CONCURRENT_RACES;
        private int perUpstreamMaxInflight = Defaults.PER_UPSTREAM_MAX_INFLIGHT;
        private Duration inMemoryNegativeTtl = Defaults.IN_MEMORY_NEGATIVE_TTL;
        private Duration upstreamCooldown = Defaults.UPSTREAM_COOLDOWN;
        private int perUpstreamMaxStreams = Defaults.PER_UPSTREAM_MAX_STREAMS;

        /** NAR streams to one upstream at once; more queue. */
        public int perUpstreamMaxStreams() { return perUpstreamMaxStreams; }
        public int maxConcurrentRaces() { return maxConcurrentRaces; }
        public int perUpstreamMaxInflight() { return perUpstreamMaxInflight; }
        public Duration inMemoryNegativeTtl() { return inMemoryNegativeTtl; }
        public Duration upstreamCooldown() { return upstreamCooldown; }
    }

    public static final class Health {
        private Duration probeInterval = Defaults.PROBE_INTERVAL;
        private Duration probeTimeout = Defaults.PROBE_TIMEOUT;

        /** Base interval between probes of one upstream. */
        public Duration probeInterval() { return probeInterval; }
        public Duration probeTimeout() { return probeTimeout; }
    }

    public static final class Logging {
        private String level = Defaults.LOG_LEVEL;
        private String format = Defaults.LOG_FORMAT;

        public String level() { return level; }
        public String format() { return format; }
    }

    public static final class Discovery {
        private boolean enabled;
        private String service = Defaults.DISCOVERY_SERVICE;
        private String domain = Defaults.DISCOVERY_DOMAIN;
        private int priority = Defaults.DISCOVERY_PRIORITY;

        public boolean enabled() { return enabled; }
    }

    public static final class Mesh {
        private boolean enabled;
        private String bindAddr = Defaults.MESH_BIND_ADDR;
        private List<Peer> peers = new ArrayList<>();
        private String privateKey = "";
        private Duration gossipInterval = Defaults.GOSSIP_INTERVAL;

        public boolean enabled() { return enabled; }
    }

    public static final class Peer {
        private String addr;
        private String publicKey;
    }

    // ---- validation, called once by ConfigLoader ----

    void overrideListen(String value) { server.listen = value; }
    void overrideDbPath(String value) { cache.dbPath = value; }
    void overrideLogLevel(String value) { logging.level = value; }

    void validate(Problems problems) {
        check(problems, "server.listen", () -> Listen.parse(server.listen));
        positive(problems, "server.read_timeout", server.readTimeout);
        positive(problems, "server.write_timeout", server.writeTimeout);
        positive(problems, "server.connect_timeout", server.connectTimeout);
        positive(problems, "server.first_byte_timeout", server.firstByteTimeout);
        if (server.netrcFile != null && !server.netrcFile.isEmpty() && !java.nio.file.Files.isReadable(java.nio.file.Path.of(server.netrcFile))) {
            problems.add("server.netrc_file", "cannot read " + server.netrcFile);
        }
        if (server.cachePriority < 0) problems.add("server.cache_priority", "must be 0 or more, got " + server.cachePriority);

        if (upstreams == null || upstreams.isEmpty()) {
            problems.add("upstreams", "at least one upstream is required");
        } else {
            List<URI> seen = new ArrayList<>();
            for (int i = 0; i < upstreams.size(); i++) {
                String key = "upstreams[" + i + "]";
                Upstream u = upstreams.get(i);
                if (u == null) { problems.add(key, "is empty"); continue; }
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
                if (u.publicKey != null) check(problems, key + ".public_key", () -> dev.ncro.trust.PublicKey.parse(u.publicKey));
                if (u.publicKeys != null) {
                    for (int k = 0; k < u.publicKeys.size(); k++) {
                        String text = u.publicKeys.get(k);
                        check(problems, key + ".public_keys[" + k + "]", () -> dev.ncro.trust.PublicKey.parse(text));
                    }
                }
                if ((u.username == null) != (u.password == null)) {
                    problems.add(key + (u.username == null ? ".username" : ".password"), "username and password go together");
                }
                if (u.filters != null) {
                    for (int f = 0; f < u.filters.size(); f++) {
                        Filter rule = u.filters.get(f);
                        if (rule == null) { problems.add(key + ".filters[" + f + "]", "is empty"); continue; }
                        check(problems, key + ".filters[" + f + "]", () -> dev.ncro.trust.Filters.Rule.of(rule.action, rule.field, rule.pattern));
                    }
                }
                if (u.timeout == null) {
                    u.timeout = new Timeout();
                } else {
                    if (u.timeout.connect != null) positive(problems, key + ".timeout.connect", u.timeout.connect);
                    if (u.timeout.response != null) positive(problems, key + ".timeout.response", u.timeout.response);
                    if (u.timeout.firstByte != null) positive(problems, key + ".timeout.first_byte", u.timeout.firstByte);
                }
                if (u.redirectHosts != null) {
                    for (int h = 0; h < u.redirectHosts.size(); h++) {
                        String host = u.redirectHosts.get(h);
                        if (host == null || !host.trim().matches("[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]")) {
                            problems.add(key + ".redirect_hosts[" + h + "]", "must be a host name or address, got '" + host + "'");
                        }
                    }
                }
            }
        }

        if (cache.dbPath == null || cache.dbPath.isBlank()) problems.add("cache.db_path", "must not be empty");
        if (cache.maxEntries < 1) problems.add("cache.max_entries", "must be at least 1, got " + cache.maxEntries);
        positive(problems, "cache.ttl", cache.ttl);
        positive(problems, "cache.negative_ttl", cache.negativeTtl);
        positive(problems, "cache.race_deadline", cache.raceDeadline);
        if (!(cache.latencyAlpha > 0 && cache.latencyAlpha <= 1)) {
            problems.add("cache.latency_alpha", "must be in (0, 1], got " + cache.latencyAlpha);
        }
        MassQuery mq = cache.massQuery;
        if (mq.maxConcurrentRaces < 1) problems.add("cache.mass_query.max_concurrent_races", "must be at least 1, got " + mq.maxConcurrentRaces);
        if (cache.memoryBudget == null || cache.memoryBudget.bytes() < 1024 * 1024) {
            problems.add("cache.memory_budget", "must be at least 1MiB, got " + cache.memoryBudget);
        }
        if (mq.perUpstreamMaxStreams < 1) problems.add("cache.mass_query.per_upstream_max_streams", "must be at least 1, got " + mq.perUpstreamMaxStreams);
        if (mq.perUpstreamMaxInflight < 1) problems.add("cache.mass_query.per_upstream_max_inflight", "must be at least 1, got " + mq.perUpstreamMaxInflight);
        positive(problems, "cache.mass_query.in_memory_negative_ttl", mq.inMemoryNegativeTtl);
        positive(problems, "cache.mass_query.upstream_cooldown", mq.upstreamCooldown);

        positive(problems, "health.probe_interval", health.probeInterval);
        positive(problems, "health.probe_timeout", health.probeTimeout);
        if (!List.of("trace", "debug", "info", "warn", "error").contains(logging.level)) {
            problems.add("logging.level", "must be one of trace, debug, info, warn, error; got '" + logging.level + "'");
        }
        if (!List.of("text", "json").contains(logging.format)) {
            problems.add("logging.format", "must be text or json, got '" + logging.format + "'");
        }
        if (discovery.enabled) problems.add("discovery.enabled", "mDNS discovery is not available in this version of ncro");
        if (mesh.enabled) problems.add("mesh.enabled", "the gossip mesh is not available in this version of ncro");
    }

    private static void positive(Problems problems, String key, Duration d) {
        if (d == null || d.isNegative() || d.isZero()) problems.add(key, "must be a positive duration");
    }

    private static void check(Problems problems, String key, Runnable r) {
        try {
            r.run();
        } catch (IllegalArgumentException e) {
            problems.add(key, e.getMessage());
        }
    }

    /** Collects every problem so one start-up reports them all. */
    static final class Problems {
        private final List<String> lines = new ArrayList<>();
        private final java.util.Set<String> keys = new java.util.HashSet<>();

        /** One problem per key: a value that could not be bound is not reported again by validation. */
        void add(String key, String message) {
            addLine(key, key + ": " + message);
        }

        void addLine(String key, String line) {
            if (keys.add(key)) lines.add(line);
        }

        List<String> lines() {
            return lines;
        }
    }
}
