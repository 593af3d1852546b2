package dev.ncro.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    private ConfigLoader.Loaded load(String yaml, Map<String, String> env) throws Exception {
        Path file = dir.resolve("ncro.yaml");
        Files.writeString(file, yaml);
        java.util.HashMap<String, String> all = new java.util.HashMap<>(env);
        all.put("NCRO_CONFIG", file.toString());
        return ConfigLoader.load(all, null);
    }

    private String error(String yaml) {
        return assertThrows(ConfigException.class, () -> load(yaml, Map.of())).getMessage();
    }

    @Test
    void embeddedDefault_isCacheNixosOrgOnPort8080() {
        NcroConfig c = ConfigLoader.load(Map.of(), null).config();

        assertEquals(URI.create("https://cache.nixos.org"), c.upstreams().get(0).url());
        assertEquals(10, c.upstreams().get(0).priority());
        assertEquals("cache.nixos.org-1", c.upstreams().get(0).keys().get(0).name(), "checked out of the box");
        assertEquals(new Listen(null, 8080), c.server().listen());
        assertEquals(30, c.server().cachePriority());
        assertEquals(Defaults.RACE_DEADLINE, c.cache().raceDeadline());
        assertEquals(Defaults.TTL, c.cache().ttl());
    }

    @Test
    void fullReferenceSchema_isAccepted() throws Exception {
        NcroConfig c = load("""
                server:
                  listen: "127.0.0.1:9000"
                  read_timeout: 10s
                  write_timeout: 2m
                  cache_priority: 25
                upstreams:
                  - url: https://a.example/cache/
                    priority: 5
                  - url: http://b.example
                cache:
                  db_path: /tmp/x.db
                  max_entries: 10
                  ttl: 1h30m
                  negative_ttl: 10m
                  latency_alpha: 0.5
                  race_deadline: 750ms
                  mass_query:
                    max_concurrent_races: 4
                    per_upstream_max_inflight: 2
                    in_memory_negative_ttl: 5s
                    upstream_cooldown: 15s
                logging:
                  level: debug
                  format: json
                discovery:
                  enabled: false
                  service: _nix-serve._tcp
                  domain: local
                  priority: 20
                mesh:
                  enabled: false
                  bind_addr: 0.0.0.0:7946
                  peers: [{addr: "10.0.0.1:7946", public_key: "AB00000000000000000000000000000000000000000000000000000000000000"}]
                  private_key: ""
                  gossip_interval: 30s
                  accept_any_peer: true
                """, Map.of()).config();

        assertEquals(new Listen("127.0.0.1", 9000), c.server().listen());
        assertEquals(Duration.ofMinutes(90), c.cache().ttl());
        assertEquals(Duration.ofMillis(750), c.cache().raceDeadline());
        assertEquals(Defaults.UPSTREAM_PRIORITY, c.upstreams().get(1).priority());
        assertEquals("json", c.logging().format());
        assertEquals(List.of(new NcroConfig.Peer("10.0.0.1:7946", "ab" + "0".repeat(62))), c.mesh().peers(),
                "peer keys are kept in one (lower) case");
        assertEquals(new Listen("0.0.0.0", 7946), c.mesh().bindAddr());
        assertTrue(c.mesh().acceptAnyPeer());
    }

    @Test
    void theSealedConfiguration_cannotBeChanged_andNeverPrintsAPassword() throws Exception {
        NcroConfig c = load("""
                upstreams:
                  - url: https://a.example
                    username: alice
                    password: s3cret-pw
                    redirect_hosts: [CDN.Example]
                """, Map.of()).config();

        assertThrows(UnsupportedOperationException.class, () -> c.upstreams().add(c.upstreams().get(0)));
        assertThrows(UnsupportedOperationException.class, () -> c.upstreams().get(0).redirectHosts().add("x"));
        assertThrows(UnsupportedOperationException.class, () -> c.upstreams().get(0).keys().clear());
        assertEquals(java.util.Set.of("cdn.example"), c.upstreams().get(0).redirectHosts());
        assertFalse(c.toString().contains("s3cret-pw"), c.toString());
        NcroConfig.Upstream nixos = ConfigLoader.load(Map.of(), null).config().upstreams().get(0);
        byte[] key = nixos.keys().get(0).key();
        java.util.Arrays.fill(key, (byte) 0);
        assertFalse(java.util.Arrays.equals(key, nixos.keys().get(0).key()), "the sealed key's bytes cannot be overwritten");
    }

    @Test
    void theNetrcFile_isReadOnce_atLoad_andAnUnreadableOneIsAProblemOfTheFile() throws Exception {
        Path netrc = dir.resolve("netrc");
        java.nio.file.Files.writeString(netrc, "machine a.example login bob password pw\n");
        NcroConfig c = load("server:\n  netrc_file: " + netrc + "\nupstreams:\n  - url: https://a.example\n", Map.of()).config();
        java.nio.file.Files.delete(netrc);

        assertEquals("bob", c.server().netrc().orElseThrow().machine("a.example").orElseThrow().user(),
                "parsed at load: deleting the file afterwards changes nothing");
        String msg = error("server:\n  netrc_file: " + netrc + "\nupstreams:\n  - url: https://a.example\n");
        assertTrue(msg.contains("server.netrc_file: cannot read " + netrc + ": no such file at line 2"), msg);
    }

    @Test
    void unknownKey_namesTheKeyAndItsPlace() {
        String msg = error("upstreams:\n  - url: http://a\n    priorty: 3\n");
        assertTrue(msg.contains("unknown key 'upstreams[0].priorty'"), msg);
        assertTrue(msg.contains("priority"), "lists the known keys: " + msg);
    }

    @Test
    void invalidValues_nameTheirKeys() {
        assertTrue(error("upstreams:\n  - url: http://a\n    priority: high\n").contains("upstreams[0].priority"));
        assertTrue(error("upstreams:\n  - url: http://a\ncache:\n  ttl: soon\n").contains("cache.ttl"));
        assertTrue(error("upstreams:\n  - url: ftp://a\n").contains("upstreams[0].url"));
        assertTrue(error("upstreams: []\n").contains("upstreams: at least one"));
        assertTrue(error("upstreams:\n  - url: http://a\nserver:\n  listen: nowhere\n").contains("server.listen"));
        assertTrue(error("upstreams:\n  - url: http://a\ncache:\n  latency_alpha: 2\n").contains("cache.latency_alpha"));
        assertTrue(error("upstreams:\n  - url: http://a\nmesh:\n  peers: [{addr: nowhere, public_key: \"" + "0".repeat(64) + "\"}]\n")
                .contains("mesh.peers[0].addr"));
        assertTrue(error("upstreams:\n  - url: http://a\nmesh:\n  peers: [{addr: \"h:1\", public_key: abc}]\n")
                .contains("mesh.peers[0].public_key"));
        assertTrue(error("upstreams:\n  - url: http://a\ndiscovery:\n  enabled: true\n").contains("discovery.public_keys"));
        assertTrue(error("upstreams:\n  - url: http://a\ndiscovery:\n  public_keys: [nonsense]\n").contains("discovery.public_keys[0]"));
        assertTrue(error("upstreams:\n  - url: http://a\ndiscovery:\n  service: nix-serve\n").contains("discovery.service"));
        assertTrue(error("upstreams:\n  - url: http://user:pw@a\n").contains("credentials"));
    }

    @Test
    void allProblems_areReportedAtOnce() {
        String msg = error("upstreams:\n  - url: http://a\n    priority: -1\ncache:\n  max_entries: 0\n");
        assertTrue(msg.contains("upstreams[0].priority") && msg.contains("cache.max_entries"), msg);
    }

    @Test
    void environment_overridesKeys_andBadValuesNameTheVariable() throws Exception {
        ConfigLoader.Loaded l = load("upstreams:\n  - url: http://a\n",
                Map.of("NCRO_LISTEN", "[::1]:7000", "NCRO_DB_PATH", "/tmp/y.db", "NCRO_LOG_LEVEL", "WARN"));
        assertEquals(new Listen("::1", 7000), l.config().server().listen());
        assertEquals("/tmp/y.db", l.config().cache().dbPath());
        assertEquals("warn", l.config().logging().level());

        String msg = assertThrows(ConfigException.class,
                () -> load("upstreams:\n  - url: http://a\n", Map.of("NCRO_LISTEN", "8080"))).getMessage();
        assertTrue(msg.contains("NCRO_LISTEN"), msg);
    }

    @Test
    void missingFile_saysWhichSettingNamedIt() {
        String msg = assertThrows(ConfigException.class,
                () -> ConfigLoader.load(Map.of(), dir.resolve("nope.yaml").toString())).getMessage();
        assertTrue(msg.contains("nope.yaml") && msg.contains("ncro.config"), msg);
    }

    @Test
    void listen_allForms() {
        assertNull(Listen.parse(":8080").host());
        assertEquals(new Listen("0.0.0.0", 1), Listen.parse("0.0.0.0:1"));
        assertThrows(IllegalArgumentException.class, () -> Listen.parse("::1:80"));
        assertThrows(IllegalArgumentException.class, () -> Listen.parse(":70000"));
    }

    @Test
    void durations_roundTrip() {
        assertEquals(Duration.ofMillis(3_723_004), Durations.parse("1h2m3s4ms"));
        assertEquals("5s", Durations.format(Duration.ofSeconds(5)));
        assertEquals("300ms", Durations.format(Duration.ofMillis(300)));
        assertThrows(IllegalArgumentException.class, () -> Durations.parse("5"));
        assertThrows(IllegalArgumentException.class, () -> Durations.parse("-5s"));
    }

    @Test
    void perUpstreamTimeouts_overrideTheGlobalOnes() throws Exception {
        NcroConfig c = load("""
                server:
                  connect_timeout: 3s
                upstreams:
                  - url: https://a.example
                    timeout:
                      connect: 1s
                      response: 10s
                  - url: https://b.example
                """, Map.of()).config();

        assertEquals(Duration.ofSeconds(3), c.server().connectTimeout());
        assertEquals(Duration.ofSeconds(1), c.upstreams().get(0).timeout().connect());
        assertEquals(java.util.Optional.of(Duration.ofSeconds(10)), c.upstreams().get(0).timeout().response());
        assertEquals(Duration.ofSeconds(3), c.upstreams().get(1).timeout().connect(), "sealed: the server-wide one filled in");
        assertEquals(java.util.Optional.empty(), c.upstreams().get(1).timeout().response());
        assertEquals(Defaults.FIRST_BYTE_TIMEOUT, c.upstreams().get(1).timeout().firstByte());
        assertTrue(error("upstreams:\n  - url: http://a\n    timeout:\n      connect: 0s\n").contains("upstreams[0].timeout.connect"));
    }

    @Test
    void aFileWithFourMistakes_reportsAllFour_inOneMessage_eachWithItsLine() {
        String msg = error("upstreams:\n"
                + "  - url: ftp://a\n"
                + "    priority: -1\n"
                + "    colour: blue\n"
                + "cache:\n"
                + "  ttl: 5 minutes\n");

        assertTrue(msg.contains("unknown key 'upstreams[0].colour'") && msg.contains("at line 4"), msg);
        assertTrue(msg.contains("upstreams[0].url: must be an absolute http:// or https:// URL, got 'ftp://a' at line 2"), msg);
        assertTrue(msg.contains("upstreams[0].priority: must be 0 or more, got -1 at line 3"), msg);
        assertEquals(5, msg.split("\n").length, "a heading and one line per problem: " + msg);
        assertTrue(msg.contains("cache.ttl: expected a duration such as 250ms") && msg.contains("at line 6"), msg);
        assertEquals(1, msg.split("cache.ttl").length - 1, "the unreadable duration is reported once: " + msg);
    }

    @Test
    void unusualValues_areProblemsNamingTheirKeyAndLine_neverACrash() {
        String u = "upstreams:\n  - url: https://a.example\n";
        assertTrue(error(u + "logging:\n  level:\n").contains("logging.level: must be one of"), "no NullPointerException");
        assertTrue(error(u + "logging:\n  format:\n").contains("logging.format: must be text or json"));
        String huge = error(u + "cache:\n  ttl: 9999999999999999999999h\n");
        assertTrue(huge.contains("cache.ttl: duration '9999999999999999999999h' is too large at line 4"), huge);
        String overflow = error(u + "cache:\n  ttl: 999999999999999999h\n");
        assertTrue(overflow.contains("cache.ttl: duration '999999999999999999h' is too large at line 4"), overflow);
        String fraction = error("upstreams:\n  - url: https://a.example\n    priority: 1.5\n");
        assertTrue(fraction.contains("upstreams[0].priority") && fraction.contains("at line 3"), "not truncated to 1: " + fraction);
        String list = error(u + "extra: [1, 2]\n");
        assertTrue(list.contains("unknown key 'extra'"), "the key, not its first item: " + list);
        assertTrue(error("").contains("is empty"));
        assertTrue(error("# nothing but a comment\n").contains("is empty"));
        String url = error("upstreams:\n  - url: 'http://a b'\n");
        assertTrue(url.contains("expected a URL"), url);
    }

    @Test
    void aMissingPartner_isReportedAtTheKeyTheFileHas_withItsLine() {
        String msg = error("upstreams:\n  - url: https://a.example\n    username: bob\n");
        assertTrue(msg.contains("upstreams[0].username: has no password beside it") && msg.contains("at line 3"), msg);
        String peer = error("upstreams:\n  - url: https://a.example\nmesh:\n  peers:\n    - addr: h:1\n");
        assertTrue(peer.contains("mesh.peers[0].public_key: must be 64 hex characters (an ed25519 public key) at line 5"),
                "the line of the peer that lacks it: " + peer);
    }

    @Test
    void aValueFromTheEnvironment_isNotGivenTheLineOfTheFilesValue() {
        String msg = assertThrows(ConfigException.class, () -> load("server:\n  listen: :8080\nupstreams:\n  - url: http://a\n",
                Map.of("NCRO_LISTEN", "8080"))).getMessage();
        assertTrue(msg.contains("NCRO_LISTEN (server.listen: expected host:port or :port, got '8080')"), msg);
        assertFalse(msg.contains("line 2"), "line 2 holds the file's value, which is fine: " + msg);
    }

    @Test
    void aValueBindingCannotGetPast_isReportedWithTheProblemsFoundBeforeIt() {
        String msg = error("server:\n  colour: blue\nupstreams:\n  - url: http://a\n    priority: high\n");
        assertTrue(msg.contains("unknown key 'server.colour'") && msg.contains("at line 2"), msg);
        assertTrue(msg.contains("upstreams[0].priority: expected a whole number at line 5"), msg);
    }

    @Test
    void theRecords_copyWhatTheyAreBuiltWith() {
        java.util.List<String> hosts = new java.util.ArrayList<>(List.of("cdn.example"));
        java.util.List<dev.ncro.trust.PublicKey> keys = new java.util.ArrayList<>();
        NcroConfig.Upstream u = new NcroConfig.Upstream(URI.create("https://a.example"), 1,
                new NcroConfig.Timeout(Duration.ofSeconds(1), java.util.Optional.empty(), Duration.ofSeconds(1)), keys,
                new java.util.ArrayList<>(), java.util.Optional.empty(), java.util.Optional.empty(), new java.util.HashSet<>(hosts));
        keys.add(null);
        assertTrue(u.keys().isEmpty(), "an embedder's list is not the record's");
        assertThrows(UnsupportedOperationException.class, () -> u.redirectHosts().clear());
    }
}
