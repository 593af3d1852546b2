package dev.ncro.jetty;

import org.slf4j.ILoggerFactory;
import org.slf4j.LoggerFactory;

/**
 * Applies the configuration's {@code logging.level} and {@code logging.format} to the logging
 * backend. The ncro base runs Logback (Jetty's {@code logging-logback} module); with another
 * backend the settings cannot be applied, and the caller logs that.
 */
final class LoggingSetup {
    private LoggingSetup() {}

    /** @return the backend's class name when the settings could not be applied, else null */
    static String apply(String level, String format) {
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        // compare by name: Logback's classes must not be touched unless Logback is the backend
        if (factory.getClass().getName().equals("ch.qos.logback.classic.LoggerContext")) {
            LogbackSetup.apply((ch.qos.logback.classic.LoggerContext) factory, level, format);
            return null;
        }
        return factory.getClass().getName();
    }

    /**
     * Writes out log lines still buffered (the base's {@link BufferedStdoutAppender}): before
     * the process halts, which runs no shutdown hook and stops no appender.
     */
    static void flush() {
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        if (factory.getClass().getName().equals("ch.qos.logback.classic.LoggerContext")) {
            LogbackSetup.flush((ch.qos.logback.classic.LoggerContext) factory);
        }
    }
}
