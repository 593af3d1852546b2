package dev.ncro.jetty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** logging.level and logging.format applied to a real Logback context, as the base runs it. */
class LogbackSetupTest {
    private final LoggerContext context = new LoggerContext();
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    LogbackSetupTest() {
        context.setMDCAdapter(new ch.qos.logback.classic.util.LogbackMDCAdapter()); // as logback's own initialisation does
        PatternLayoutEncoder encoder = new PatternLayoutEncoder();
        encoder.setContext(context);
        encoder.setPattern("%msg%n");
        encoder.start();
        OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();
        appender.setContext(context);
        appender.setEncoder(encoder);
        appender.setOutputStream(out);
        appender.start();
        context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(appender);
    }

    @Test
    void json_writesOneJsonObjectPerLine_atTheConfiguredLevel() throws Exception {
        LogbackSetup.apply(context, "warn", "json");

        context.getLogger("dev.ncro.test").info("not shown at warn");
        context.getLogger("dev.ncro.test").warn("upstream {} is now down", "http://a");

        String[] lines = out.toString(StandardCharsets.UTF_8).trim().split("\n");
        assertEquals(1, lines.length, out.toString(StandardCharsets.UTF_8));
        JsonNode line = new ObjectMapper().readTree(lines[0]);
        assertEquals("WARN", line.get("level").asText());
        assertEquals("dev.ncro.test", line.get("loggerName").asText());
        assertEquals("upstream http://a is now down", line.get("formattedMessage").asText(), lines[0]);
    }

    @Test
    void text_isOneReadableLine() {
        LogbackSetup.apply(context, "debug", "text");

        context.getLogger("dev.ncro.test").debug("route store: sqlite /var/lib/ncro/ncro.db");

        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("DEBUG") && text.contains("dev.ncro.test - route store: sqlite"), text);
        assertEquals(1, text.trim().split("\n").length);
    }
}
