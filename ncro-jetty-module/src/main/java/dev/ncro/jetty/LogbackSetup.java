package dev.ncro.jetty;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.encoder.Encoder;
import java.util.Iterator;

/**
 * Applies {@code logging.level} and {@code logging.format} to Logback, the backend of the
 * ncro Jetty base. Only loaded when Logback is the SLF4J backend (see {@link LoggingSetup}).
 */
final class LogbackSetup {
    static final String TEXT_PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [%thread] %logger{36} - %msg%n";

    private LogbackSetup() {}

    static void apply(LoggerContext context, String level, String format) {
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.setLevel(Level.toLevel(level, Level.INFO));
        // HttpComponents logs request headers (Authorization: upstream credentials) and wire
        // bytes at debug: never, whatever logging.level says
        context.getLogger("org.apache.hc.client5.http.headers").setLevel(Level.INFO);
        context.getLogger("org.apache.hc.client5.http.wire").setLevel(Level.INFO);
        for (Iterator<Appender<ILoggingEvent>> it = root.iteratorForAppenders(); it.hasNext(); ) {
            if (it.next() instanceof OutputStreamAppender<ILoggingEvent> out) {
                // swapped in place: stopping an appender can drop its stream (only a console
                // appender reopens one), and each event is encoded with the current encoder
                out.setEncoder(format.equals("json") ? json(context) : text(context));
            }
        }
    }

    /** Flushes every {@link BufferedStdoutAppender} of the context, wherever it is attached. */
    static void flush(LoggerContext context) {
        for (Logger logger : context.getLoggerList()) {
            for (Iterator<Appender<ILoggingEvent>> it = logger.iteratorForAppenders(); it.hasNext(); ) {
                if (it.next() instanceof BufferedStdoutAppender buffered) buffered.flushPending();
            }
        }
    }

    private static Encoder<ILoggingEvent> json(LoggerContext context) {
        JsonEncoder encoder = new JsonEncoder();
        encoder.setContext(context);
        encoder.setWithFormattedMessage(true); // what happened, not the template and its arguments
        encoder.setWithMessage(false);
        encoder.setWithArguments(false);
        encoder.setWithContext(false);
        encoder.start();
        return encoder;
    }

    private static Encoder<ILoggingEvent> text(LoggerContext context) {
        PatternLayoutEncoder encoder = new PatternLayoutEncoder();
        encoder.setContext(context);
        encoder.setPattern(TEXT_PATTERN);
        encoder.start();
        return encoder;
    }
}
