package dev.ncro.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * docs/configuration.md cannot drift from the configuration: its table must list exactly the
 * keys {@link RawConfig} binds, each with the default the binding starts from.
 */
class ConfigurationDocTest {
    private static final Path DOC = Path.of("../docs/configuration.md");
    private static final Pattern ROW = Pattern.compile("^\\| `([a-z_.\\[\\]]+)` \\| ([^|]+) \\|", Pattern.MULTILINE);

    @Test
    void everyKeyAndDefault_isTheOneTheConfigurationBindsWith() throws Exception {
        Map<String, String> expected = new LinkedHashMap<>();
        walk("", new RawConfig(), expected);
        Map<String, String> documented = new LinkedHashMap<>();
        Matcher m = ROW.matcher(Files.readString(DOC));
        while (m.find()) documented.put(m.group(1), m.group(2).trim());

        TreeSet<String> missing = new TreeSet<>(expected.keySet());
        missing.removeAll(documented.keySet());
        TreeSet<String> unknown = new TreeSet<>(documented.keySet());
        unknown.removeAll(expected.keySet());
        assertTrue(missing.isEmpty() && unknown.isEmpty(),
                "docs/configuration.md: keys missing " + missing + ", keys that do not exist " + unknown);

        List<String> wrong = new ArrayList<>();
        expected.forEach((key, value) -> {
            String doc = documented.get(key);
            boolean ok = value == null
                    // no default: "—" (with a reason), or the key it inherits from
                    ? doc.startsWith("—") || doc.matches("`[a-z_.]+`") && expected.containsKey(doc.replace("`", ""))
                    : doc.equals("`" + value + "`");
            if (!ok) wrong.add(key + ": documented " + doc + ", binds " + (value == null ? "nothing" : "`" + value + "`"));
        });
        assertEquals(List.of(), wrong, "docs/configuration.md defaults");
    }

    /** Every leaf key under {@code prefix}, with its default rendered as the file would write it (null: none). */
    private static void walk(String prefix, Object section, Map<String, String> out) throws Exception {
        for (Field f : section.getClass().getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic()) continue;
            f.setAccessible(true);
            String key = prefix + snake(f.getName());
            Object value = f.get(section);
            Class<?> type = f.getType();
            if (isSection(type)) {
                walk(key + ".", value, out);
            } else if (List.class.isAssignableFrom(type) && f.getGenericType() instanceof ParameterizedType p
                    && p.getActualTypeArguments()[0] instanceof Class<?> element && isSection(element)) {
                var constructor = element.getDeclaredConstructor();
                constructor.setAccessible(true);
                walk(key + "[].", constructor.newInstance(), out);
                if (element != RawConfig.Upstream.class) out.put(key, null); // the list itself, documented too
            } else {
                out.put(key, render(value));
            }
        }
    }

    private static boolean isSection(Class<?> type) {
        return type.getEnclosingClass() == RawConfig.class;
    }

    private static String render(Object value) {
        if (value == null) return null;
        if (value instanceof String s) return s.isEmpty() ? null : s;
        if (value instanceof Collection<?> c) return c.isEmpty() ? null : c.toString();
        if (value instanceof Duration d) return Durations.format(d);
        if (value instanceof Sizes.ByteSize b) return Sizes.format(b.bytes());
        return String.valueOf(value);
    }

    private static String snake(String camel) {
        return camel.replaceAll("([A-Z])", "_$1").toLowerCase(java.util.Locale.ROOT);
    }
}
