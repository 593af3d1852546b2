package dev.ncro.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.testing.FakeCache;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The module distribution installed the way the README tells an operator to: a fresh Jetty
 * base made from the stock jetty-home with nothing but {@code --add-modules=http,<env>-deploy},
 * the archive unpacked into it, {@code --add-modules=ncro}, a start, and the real Nix client
 * realising a signed closure through it: in an ee11 base (Jetty 12.1's default environment)
 * and in an ee10 base ({@code ncro.environment=ee10}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DistributionInstallTest {
    static final Path ARCHIVE = Path.of(System.getProperty("ncro.distribution", "target/ncro-jetty-module.tar.gz"));

    private FaultFixture fixture;
    private FaultFixture.Closure closure;
    private FakeCache upstream;

    @BeforeAll
    void setUp(@TempDir Path tmp) throws Exception {
        Nix.requireOrSkip();
        assertTrue(Files.isRegularFile(ARCHIVE), "run through Maven (mvn verify): no distribution " + ARCHIVE);
        fixture = new FaultFixture(tmp).smallClosures();
        closure = fixture.closures("dist").get("dist");
        upstream = fixture.upstream(Duration.ZERO);
    }

    @AfterAll
    void tearDown() throws Exception {
        if (fixture != null) fixture.close();
    }

    @Test
    void anEe11Base_addModulesNcro_deploysInEe11_andNixRealisesAClosureThroughIt() throws Exception {
        installAndRealise("ee11", "--add-modules=ncro");
    }

    @Test
    void anEe10Base_addModulesNcroWithEnvironmentEe10_deploysInEe10_withoutEe11_andNixRealisesAClosure() throws Exception {
        Path base = installAndRealise("ee10", "--add-modules=ncro", "ncro.environment=ee10");

        assertTrue(Files.readString(base.resolve("start.d/ncro.ini")).lines().anyMatch(l -> l.equals("ncro.environment=ee10")),
                "the choice is kept in start.d/ncro.ini");
        assertFalse(Files.exists(base.resolve("start.d/ee11-deploy.ini")), "ee11 was not enabled beside ee10");
    }

    @Test
    void theArchive_holdsABaseFragment_withNoJettyJarsNoServletApi_andNoEngineInTheWar() throws Exception {
        Nix.Result listing = fixture.nix.run("tar", "tzf", ARCHIVE.toString());
        assertEquals(0, listing.exit(), listing::output);
        List<String> entries = listing.output().lines().filter(e -> !e.endsWith("/")).toList();

        for (String expected : List.of("modules/ncro.mod", "modules/ncro/engine.mod", "modules/ncro/ee10.mod",
                "modules/ncro/ee11.mod", "modules/ncro/ee10.d/ncro.xml", "modules/ncro/ee10.d/ncro.properties",
                "modules/ncro/ee11.d/ncro.xml", "modules/ncro/ee11.d/ncro.properties", "etc/ncro.xml", "webapps/ncro.war")) {
            assertTrue(entries.contains(expected), expected + " in " + entries);
        }
        List<String> jars = entries.stream().filter(e -> e.startsWith("lib/ncro/")).toList();
        assertTrue(jars.stream().anyMatch(j -> j.matches("lib/ncro/ncro-jetty-module-.*\\.jar")), "the engine jar: " + jars);
        assertTrue(jars.stream().noneMatch(j -> j.contains("jetty-") && !j.contains("ncro-jetty-module")
                || j.contains("servlet-api") || j.contains("slf4j-api") || j.contains("logback")),
                "jetty-home and the base's logging provide these: " + jars);
        assertTrue(entries.stream().allMatch(e -> e.startsWith("modules/") || e.startsWith("etc/") || e.startsWith("lib/ncro/")
                || e.equals("webapps/ncro.war")), "nothing else, and no webapps/ncro.xml (the module copies the one for the environment): " + entries);

        Path war = fixture.work.resolve("war-check");
        Files.createDirectories(war);
        assertEquals(0, fixture.nix.run("tar", "xzf", ARCHIVE.toString(), "-C", war.toString(), "webapps/ncro.war").exit());
        try (ZipFile zip = new ZipFile(war.resolve("webapps/ncro.war").toFile())) {
            List<String> lib = zip.stream().map(e -> e.getName()).filter(n -> n.startsWith("WEB-INF/lib/") && n.endsWith(".jar")).toList();
            assertEquals(List.of(), lib, "the engine and the Servlet API come from the server class path, never WEB-INF/lib");
        }
    }

    /**
     * Makes a base with {@code --add-modules=http,<environment>-deploy}, unpacks the archive into
     * it, runs start.jar with {@code addNcro}, starts it and realises {@link #closure} through it.
     */
    private Path installAndRealise(String environment, String... addNcro) throws Exception {
        Path base = Files.createDirectories(fixture.work.resolve("base-" + environment));
        upstream.clearLog();
        long t0 = System.nanoTime();
        ok(JettyDistribution.command(base, "--add-modules=http," + environment + "-deploy"));
        Nix.Result unpacked = fixture.nix.run("tar", "xzf", ARCHIVE.toString(), "-C", base.toString());
        assertEquals(0, unpacked.exit(), unpacked::output);
        String added = ok(JettyDistribution.command(base, addNcro));

        // every property etc/ncro.xml reads is in the ini-template, commented out with its default
        String ini = Files.readString(base.resolve("start.d/ncro.ini"));
        Map<String, String> properties = propertiesReadBy(base.resolve("etc/ncro.xml"));
        assertFalse(properties.isEmpty());
        properties.forEach((name, fallback) -> assertTrue(ini.contains("# " + name + "=" + fallback + "\n"),
                name + "=" + fallback + " in start.d/ncro.ini:\n" + ini));
        assertTrue(ini.contains("ncro.environment="), ini);
        assertTrue(added.contains("copy ${jetty.base}/modules/ncro/" + environment + ".d/ncro.xml to ${jetty.base}/webapps/ncro.xml"), added);
        assertTrue(Files.readString(base.resolve("webapps/ncro.xml")).contains("\"org.eclipse.jetty." + environment + ".webapp.WebAppContext\""));
        assertTrue(Files.readString(base.resolve("webapps/ncro.properties")).lines().anyMatch(l -> l.equals("environment=" + environment)));
        long installed = System.nanoTime();

        Path config = fixture.config("ncro-" + environment, Duration.ofSeconds(30), Duration.ofSeconds(5), upstream);
        JettyDistribution ncro = fixture.ncro(base, config, base.resolve("routes.db"));
        long started = System.nanoTime();
        assertTrue(ncro.log().contains("Started oeje" + environment.substring(2) + "w.WebAppContext@"),
                "deployed in " + environment + ":\n" + ncro.log());

        JettyDistribution.Answer info = ncro.get("/nix-cache-info");
        assertEquals(200, info.status(), info.body());
        assertTrue(info.body().contains("StoreDir: /nix/store"), info.body());
        JettyDistribution.Answer health = ncro.get("/health");
        assertEquals(200, health.status(), health.body());
        assertEquals("active", ncro.health(upstream.uri()).path("state").asText(), health.body());

        Nix.Timed r = fixture.realise(ncro, "client-" + environment, closure.top(), Duration.ofSeconds(60));
        assertEquals(0, r.exit(), () -> FaultFixture.explain(r, ncro));
        fixture.assertRealised("client-" + environment, closure);
        assertTrue(upstream.requests().stream().anyMatch(l -> l.path().startsWith("/nar/")), "the NARs came through ncro");
        System.out.printf("%s: install %d ms, start %d ms, realise %d ms%n", environment, (installed - t0) / 1_000_000,
                (started - installed) / 1_000_000, r.millis());
        ncro.close();
        return base;
    }

    private static String ok(JettyDistribution.Exit exit) {
        assertEquals(0, exit.status(), exit::output);
        return exit.output();
    }

    private static final Pattern PROPERTY = Pattern.compile("<Property name=\"([^\"]+)\" default=\"([^\"]*)\"");

    /** The properties an XML reads, with their defaults, in order. */
    private static Map<String, String> propertiesReadBy(Path xml) throws Exception {
        Map<String, String> found = new LinkedHashMap<>();
        Matcher m = PROPERTY.matcher(Files.readString(xml));
        while (m.find()) found.put(m.group(1), m.group(2));
        return found;
    }
}
