package dev.ncro.config;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Byte sizes as written in the configuration: {@code 65536}, {@code 512KiB}, {@code 64MiB}, {@code 1GiB}. */
public final class Sizes {
    private static final Pattern SIZE = Pattern.compile("(\\d{1,15})\\s*(B|KiB|MiB|GiB)?");

    private Sizes() {}

    /** A size in bytes, as a configuration value (YAML: a whole number or a string with a unit). */
    public record ByteSize(long bytes) {
        @Override
        public String toString() {
            return format(bytes);
        }
    }

    /** @throws IllegalArgumentException with a message suitable for an operator */
    public static long parse(String text) {
        String s = text == null ? "" : text.trim();
        Matcher m = SIZE.matcher(s);
        if (!m.matches()) {
            throw new IllegalArgumentException("expected a size such as 65536, 512KiB, 64MiB or 1GiB, got '" + text + "'");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "B" : m.group(2);
        int shift = switch (unit) {
            case "KiB" -> 10;
            case "MiB" -> 20;
            case "GiB" -> 30;
            default -> 0;
        };
        if (n > (Long.MAX_VALUE >> shift)) throw new IllegalArgumentException("size '" + text + "' is too large");
        return n << shift;
    }

    /** Renders a size the way {@link #parse} reads it. */
    public static String format(long bytes) {
        if (bytes > 0 && bytes % (1L << 30) == 0) return (bytes >> 30) + "GiB";
        if (bytes > 0 && bytes % (1L << 20) == 0) return (bytes >> 20) + "MiB";
        if (bytes > 0 && bytes % (1L << 10) == 0) return (bytes >> 10) + "KiB";
        return Long.toString(bytes);
    }
}
