package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Assumptions;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;

/**
 * The status page in a real browser: Debian's {@code chromium}, headless, driven through
 * {@code chromedriver} by Selenium, against ncro in the {@link BusyNcro} scenario. Checks that
 * the page renders under its own Content-Security-Policy (its inline styles apply, the console
 * stays free of errors), that its table lists every configured upstream with its state, that
 * the chart is drawn, and that the /health link works; writes a screenshot to
 * {@code target/status-page.png}.
 *
 * <p>Without chromium and chromedriver the test is skipped, unless {@code NCRO_REQUIRE_NIX=1}
 * (the CI flag, as for the Nix end-to-end tests) makes that a failure. Selenium is pointed at
 * the installed driver and browser, so its Selenium Manager never downloads anything.
 */
class StatusPageBrowserTest {
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path SCREENSHOT = Path.of("target", "status-page.png");

    @TempDir
    Path dir;

    private BusyNcro busy;
    private ChromeDriverService service;
    private ChromeDriver browser;

    @BeforeEach
    void startBrowser() throws Exception {
        requireOrSkip();
        System.setProperty("SE_OFFLINE", "true");
        System.setProperty("webdriver.chrome.driver", CHROMEDRIVER.toString());
        service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort()
                .withLogFile(dir.resolve("chromedriver.log").toFile()).build();
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--user-data-dir=" + Files.createDirectory(dir.resolve("chromium-profile")), "--window-size=900,820",
                "--force-device-scale-factor=1", "--lang=en-US");
        LoggingPreferences logs = new LoggingPreferences();
        logs.enable(LogType.BROWSER, Level.ALL);
        options.setCapability("goog:loggingPrefs", logs);
        browser = new ChromeDriver(service, options);
        browser.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(30));
    }

    /** Skips when the browser is missing, unless NCRO_REQUIRE_NIX=1 makes that a failure. */
    private static void requireOrSkip() {
        if (Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER)) return;
        String msg = "the browser test needs Debian's chromium and chromium-driver (" + CHROMIUM + ", " + CHROMEDRIVER
                + "): apt-get install -y chromium chromium-driver";
        if ("1".equals(System.getenv("NCRO_REQUIRE_NIX"))) throw new AssertionError(msg + " (NCRO_REQUIRE_NIX=1)");
        Assumptions.abort(msg + "; skipping the browser test");
    }

    @AfterEach
    void stop() throws Exception {
        if (browser != null) browser.quit();
        if (service != null) service.stop();
        if (busy != null) busy.close();
    }

    @Test
    void statusPage_rendersInChromium_listingEveryConfiguredUpstreamWithItsState() throws Exception {
        busy = new BusyNcro(dir).drive();

        browser.get(busy.ncro.uri("/").toString());

        assertEquals("ncro status: degraded", browser.getTitle());
        Map<String, String> states = new LinkedHashMap<>();
        for (WebElement row : browser.findElements(By.cssSelector("#upstreams tbody tr"))) {
            states.put(row.findElement(By.cssSelector("td.url")).getText(),
                    row.findElement(By.cssSelector(".state")).getDomProperty("textContent"));
        }
        assertEquals(Map.of(busy.a.uri().toString(), "active", busy.b.uri().toString(), "down"), states,
                "every configured upstream, with its state");
        WebElement down = browser.findElement(By.cssSelector("tr[data-upstream='" + busy.b.uri() + "'] .state"));
        assertEquals("DOWN", down.getText(), "the page's stylesheet applies (text-transform) under its CSP");
        assertEquals("rgba(254, 226, 226, 1)", down.getCssValue("background-color"), "and colours the state");

        WebElement chart = browser.findElement(By.cssSelector("svg.chart"));
        assertTrue(chart.isDisplayed() && chart.getSize().getWidth() > 600 && chart.getSize().getHeight() > 100,
                "the chart takes its room: " + chart.getSize());
        List<WebElement> lines = chart.findElements(By.tagName("polyline"));
        assertEquals(2, lines.size());
        assertTrue(lines.get(0).getSize().getWidth() > 300, "a's line spans the chart: " + lines.get(0).getSize());
        assertEquals(10, chart.findElements(By.cssSelector("circle.failed")).size(), "b's refused probes");
        List<LogEntry> errors = browser.manage().logs().get(LogType.BROWSER).getAll().stream()
                .filter(e -> e.getLevel().intValue() >= Level.WARNING.intValue()).toList();
        assertEquals(List.of(), errors, "no console errors: nothing refused by the CSP, nothing failed to load");

        // the viewport fitted to the page, so the screenshot holds all of it and no scroll bar
        int bottom = browser.findElement(By.tagName("footer")).getRect().getY()
                + browser.findElement(By.tagName("footer")).getRect().getHeight() + 40;
        browser.executeCdpCommand("Emulation.setDeviceMetricsOverride",
                Map.of("width", 900, "height", bottom, "deviceScaleFactor", 1, "mobile", false));
        Files.createDirectories(SCREENSHOT.getParent());
        Files.write(SCREENSHOT, browser.getScreenshotAs(OutputType.BYTES));
        byte[] png = Files.readAllBytes(SCREENSHOT);
        assertTrue(png.length > 10_000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "a screenshot: " + png.length + " bytes");

        browser.findElement(By.linkText("/health")).click();
        assertEquals(busy.ncro.uri("/health").toString(), browser.getCurrentUrl());
        assertTrue(browser.findElement(By.tagName("body")).getText().contains("\"status\" : \"degraded\""),
                "the /health link leads to the JSON report: " + browser.getPageSource());
    }
}
