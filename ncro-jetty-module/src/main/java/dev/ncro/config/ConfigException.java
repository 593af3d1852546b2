package dev.ncro.config;

/** A configuration that cannot be used. The message names the file or variable and the key. */
public final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }

    private ConfigException(String message, boolean writableStackTrace) {
        super(message, null, false, writableStackTrace);
    }

    /**
     * The same message with no stack trace and no cause, for a start-up that fails on a bad
     * file: whatever logs it prints the problems, not the frames of the code that found them.
     */
    public static ConfigException withoutTrace(ConfigException e) {
        return new ConfigException(e.getMessage(), false);
    }
}
