package dev.ncro.jetty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The base's standard-output appender: lines are written in batches, each line whole, flushed
 * by its timer (called here directly: its interval is set out of reach) and on stop, and the
 * process's standard output is never closed by it. logging.format swaps its encoder.
 */
class BufferedStdoutAppenderTest {
    /** What reached "standard output", one entry per write call. */
    private final List<String> writes = new ArrayList<>();
    private boolean closed;
    private final ByteArrayOutputStream stdout = new ByteArrayOutputStream() {
        @Override
        public synchronized void write(byte[] b, int off, int len) {
            writes.add(new String(b, off, len, StandardCharsets.UTF_8));
            super.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            closed = true;
        }
    };
    private final LoggerContext context = new LoggerContext();
    private final BufferedStdoutAppender appender = new BufferedStdoutAppender();

    BufferedStdoutAppenderTest() {
        context.setMDCAdapter(new ch.qos.logback.classic.util.LogbackMDCAdapter());
        PatternLayoutEncoder encoder = new PatternLayoutEncoder();
        encoder.setContext(context);
        encoder.setPattern("%msg%n");
        encoder.start();
        appender.setContext(context);
        appender.setEncoder(encoder);
        appender.setTarget(stdout);
        appender.setFlushMillis(3_600_000);
        appender.setBufferSize(100); // two access lines fit, a burst of five does not
        appender.start();
        context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(appender);
    }

    @AfterEach
    void stop() {
        appender.stop(); // also withdraws its shutdown hook
    }

    @Test
    void linesGoOutInBatches_eachLineWhole_onTheFlushAndWhenTheBufferFills() {
        context.getLogger("dev.ncro.access").info("127.0.0.1 http GET /a.narinfo 200 0ms");
        context.getLogger("dev.ncro.access").info("127.0.0.1 http GET /b.narinfo 200 0ms");
        assertEquals(List.of(), writes, "nothing written before the flush");

        appender.flushPending();
        assertEquals(List.of("127.0.0.1 http GET /a.narinfo 200 0ms\n127.0.0.1 http GET /b.narinfo 200 0ms\n"), writes,
                "one write for both lines");
        appender.flushPending();
        assertEquals(1, writes.size(), "nothing pending: no empty write");

        for (int i = 0; i < 5; i++) context.getLogger("dev.ncro.access").info("line {} of a burst longer than the buffer", i);
        assertFalse(writes.size() == 1, "a full buffer is written without waiting for the timer");
        appender.flushPending();
        for (String w : writes) assertTrue(w.endsWith("\n"), "never half a line: " + writes);
        assertEquals(7, String.join("", writes).split("\n").length);
    }

    @Test
    void stop_writesWhatIsLeft_andLeavesStandardOutputOpen() {
        context.getLogger("dev.ncro.test").info("the last line before shutdown");
        assertEquals(List.of(), writes, "still buffered");

        appender.stop();

        assertEquals("the last line before shutdown\n", stdout.toString(StandardCharsets.UTF_8));
        assertFalse(closed, "standard output stays open for the rest of the process");
    }

    @Test
    void aWarningIsWrittenAtOnce_withWhatCameBeforeIt_asIsEveryLineOnceShuttingDown() {
        context.getLogger("dev.ncro.test").info("before");
        context.getLogger("dev.ncro.jetty.NcroModule").error("ncro cannot start: invalid ncro configuration");
        assertEquals(List.of("before\nncro cannot start: invalid ncro configuration\n"), writes, "no flush needed");

        context.getLogger("dev.ncro.test").info("buffered");
        appender.shuttingDown();
        context.getLogger("dev.ncro.test").info("Stopped Server");

        assertEquals(List.of("before\nncro cannot start: invalid ncro configuration\n", "buffered\n", "Stopped Server\n"), writes);
    }

    @Test
    void aFailedWrite_dropsThatBatch_andLoggingGoesOn() {
        BufferedStdoutAppender broken = new BufferedStdoutAppender();
        List<String> out = new ArrayList<>();
        boolean[] failNext = {true};
        broken.setContext(context);
        broken.setEncoder(appender.getEncoder());
        broken.setTarget(new java.io.OutputStream() {
            @Override
            public void write(int b) {
                throw new UnsupportedOperationException();
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                if (failNext[0]) {
                    failNext[0] = false;
                    throw new IOException("Broken pipe");
                }
                out.add(new String(b, off, len, StandardCharsets.UTF_8));
            }
        });
        broken.start();
        try {
            ch.qos.logback.classic.Logger logger = context.getLogger("dev.ncro.broken");
            logger.setAdditive(false);
            logger.addAppender(broken);
            logger.warn("lost to the broken pipe");
            logger.warn("written once the pipe works");

            assertTrue(broken.isStarted(), "a failed write does not stop logging");
            assertEquals(List.of("written once the pipe works\n"), out);
        } finally {
            broken.stop();
        }
    }

    @Test
    void loggingFormat_swapsItsEncoder() {
        LogbackSetup.apply(context, "info", "json");
        context.getLogger("dev.ncro.test").info("as json");
        appender.flushPending();

        assertTrue(stdout.toString(StandardCharsets.UTF_8).startsWith("{"), stdout.toString(StandardCharsets.UTF_8));
    }
}
