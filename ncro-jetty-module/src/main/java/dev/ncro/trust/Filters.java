package dev.ncro.trust;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * An upstream's path filters: rules {@code {action: allow|deny, field, pattern}} where the
 * field is {@code name} (the store path's name), {@code store_path}, {@code reference} (any
 * reference; full store paths) or {@code deriver} (full store path of the .drv), and the
 * pattern matches the whole value with {@code *} for any run of characters. A matching deny
 * wins; when there are allow rules, one of them must match.
 */
public final class Filters {
    public enum Field { NAME, STORE_PATH, REFERENCE, DERIVER }

    public record Rule(boolean allow, Field field, String pattern, Pattern regex) {
        public static Rule of(String action, String field, String pattern) {
            boolean allow = switch (action == null ? "" : action) {
                case "allow" -> true;
                case "deny" -> false;
                default -> throw new IllegalArgumentException("action must be allow or deny, got '" + action + "'");
            };
            Field f;
            try {
                f = Field.valueOf((field == null ? "" : field).toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("field must be name, store_path, reference or deriver, got '" + field + "'");
            }
            if (pattern == null || pattern.isEmpty()) throw new IllegalArgumentException("pattern must not be empty");
            return new Rule(allow, f, pattern, Pattern.compile(globToRegex(pattern)));
        }

        private static String globToRegex(String glob) {
            String[] parts = glob.split("\\*", -1);
            List<String> quoted = new ArrayList<>();
            for (String p : parts) quoted.add(Pattern.quote(p));
            return String.join(".*", quoted);
        }

        boolean matches(Narinfo n) {
            return switch (field) {
                case NAME -> regex.matcher(n.storePath().substring(Narinfo.STORE_DIR.length() + 33)).matches();
                case STORE_PATH -> regex.matcher(n.storePath()).matches();
                case REFERENCE -> n.references().stream().anyMatch(r -> regex.matcher(r).matches());
                case DERIVER -> n.field("Deriver") != null
                        && regex.matcher(Narinfo.STORE_DIR + n.field("Deriver")).matches();
            };
        }

        @Override
        public String toString() {
            return (allow ? "allow " : "deny ") + field.name().toLowerCase(Locale.ROOT) + " " + pattern;
        }
    }

    private Filters() {}

    /** @return null when the narinfo passes, else which rule (or lack of one) rejected it */
    public static String reject(Narinfo narinfo, List<Rule> rules) {
        boolean anyAllow = false;
        boolean allowed = false;
        for (Rule rule : rules) {
            if (rule.allow()) {
                anyAllow = true;
                if (!allowed && rule.matches(narinfo)) allowed = true;
            } else if (rule.matches(narinfo)) {
                return "filter '" + rule + "' denies " + narinfo.storePath();
            }
        }
        return anyAllow && !allowed ? "no allow filter matches " + narinfo.storePath() : null;
    }
}
