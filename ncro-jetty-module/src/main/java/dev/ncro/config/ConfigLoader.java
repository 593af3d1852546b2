package dev.ncro.config;

import com.fasterxml.jackson.annotation.JsonAutoDetect;
import com.fasterxml.jackson.annotation.PropertyAccessor;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonDeserializer;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Loads the configuration once, at start-up. Which file: {@code NCRO_CONFIG} if set, else the
 * Jetty property {@code ncro.config}, else the embedded {@code ncro-default.yaml}. Then the
 * environment overrides {@code NCRO_LISTEN}, {@code NCRO_DB_PATH} and {@code NCRO_LOG_LEVEL}
 * apply. Unknown keys and invalid values fail with a {@link ConfigException} naming each key.
 */
public final class ConfigLoader {
    public static final String EMBEDDED = "ncro-default.yaml";

    /** Environment variable → the key it overrides. */
    static final Map<String, String> ENV_OVERRIDES = orderedOverrides();

    /** A fixed order, so that the start-up line and error messages read the same every time. */
    private static Map<String, String> orderedOverrides() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("NCRO_LISTEN", "server.listen");
        m.put("NCRO_DB_PATH", "cache.db_path");
        m.put("NCRO_LOG_LEVEL", "logging.level");
        return java.util.Collections.unmodifiableMap(m);
    }

    private static final ObjectMapper YAML = JsonMapper.builder(new YAMLFactory())
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .visibility(PropertyAccessor.ALL, JsonAutoDetect.Visibility.NONE)
            .visibility(PropertyAccessor.FIELD, JsonAutoDetect.Visibility.ANY)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT) // priority: 1.5 is a mistake, not 1
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
            .addHandler(new UnknownKeys())
            .addModule(new SimpleModule().addDeserializer(Duration.class, new DurationDeserializer())
                    .addDeserializer(Sizes.ByteSize.class, new SizeDeserializer()))
            .build();

    /** A loaded configuration and where it came from, for the start-up log line. */
    public record Loaded(NcroConfig config, String source) {}

    private ConfigLoader() {}

    public static Loaded load(Map<String, String> env, String jettyProperty) {
        String fromEnv = env.get("NCRO_CONFIG");
        String chosen = fromEnv != null && !fromEnv.isBlank() ? fromEnv
                : jettyProperty != null && !jettyProperty.isBlank() ? jettyProperty : null;
        RawConfig config;
        String source;
        // every problem of the file, binding and validation alike, reported in one message
        RawConfig.Problems problems = new RawConfig.Problems();
        if (chosen == null) {
            source = "embedded " + EMBEDDED;
            try (InputStream in = ConfigLoader.class.getResourceAsStream(EMBEDDED)) {
                if (in == null) throw new ConfigException("the embedded " + EMBEDDED + " is missing from the ncro jar");
                config = bind(source, in.readAllBytes(), problems);
            } catch (IOException e) {
                throw new ConfigException("cannot read the embedded " + EMBEDDED + ": " + e, e);
            }
        } else {
            Path path = Path.of(chosen).toAbsolutePath();
            source = path.toString();
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(path);
            } catch (NoSuchFileException e) {
                throw new ConfigException("config file " + path + " does not exist"
                        + (fromEnv != null && !fromEnv.isBlank() ? " (named by NCRO_CONFIG)" : " (named by ncro.config)"));
            } catch (IOException e) {
                throw new ConfigException("cannot read config file " + path + ": " + e.getMessage(), e);
            }
            config = bind(source, bytes, problems);
        }
        Map<String, String> overridden = new LinkedHashMap<>();
        ENV_OVERRIDES.forEach((var, key) -> {
            String value = env.get(var);
            if (value == null || value.isEmpty()) return;
            overridden.put(key, var);
            switch (key) {
                case "server.listen" -> config.overrideListen(value);
                case "cache.db_path" -> config.overrideDbPath(value);
                default -> config.overrideLogLevel(value.toLowerCase(java.util.Locale.ROOT));
            }
        });
        problems.fromEnvironment(overridden.keySet());
        NcroConfig sealed = config.seal(problems);
        if (sealed == null) {
            String lines = problems.all().stream()
                    .map(p -> {
                        String var = overridden.get(p.key());
                        return "  " + (var == null ? p.text() : var + " (" + p.text() + ")");
                    })
                    .collect(Collectors.joining("\n"));
            throw new ConfigException("invalid ncro configuration in " + source + ":\n" + lines);
        }
        return new Loaded(sealed, source + (overridden.isEmpty() ? "" : " with " + String.join(", ", overridden.values())));
    }

    /**
     * Binds the YAML. Unknown keys and unreadable durations and sizes are recorded in
     * {@code problems} (with their line) and binding goes on, so that one start-up reports
     * them all; other mismatches end binding with a {@link ConfigException} at once.
     */
    static RawConfig bind(String source, byte[] yaml, RawConfig.Problems problems) {
        problems.lines(keyLines(yaml));
        try {
            if (isEmpty(yaml)) throw new ConfigException("config " + source + " is empty: it needs at least 'upstreams'");
            RawConfig config = YAML.readerFor(RawConfig.class).withAttribute(PROBLEMS, problems).readValue(yaml);
            if (config == null) throw new ConfigException("config " + source + " is empty");
            return config;
        } catch (UnrecognizedPropertyException e) {
            String known = e.getKnownPropertyIds() == null ? "" : e.getKnownPropertyIds().stream()
                    .map(String::valueOf).sorted().collect(Collectors.joining(", "));
            throw stopped(source, problems, "unknown key '" + path(e) + "'"
                    + (known.isEmpty() ? "" : " (expected one of: " + known + ")") + location(e));
        } catch (InvalidFormatException e) {
            throw stopped(source, problems, path(e) + ": invalid value '"
                    + e.getValue() + "' (expected " + typeName(e.getTargetType()) + ")" + location(e));
        } catch (MismatchedInputException e) {
            throw stopped(source, problems, path(e) + ": expected " + typeName(e.getTargetType()) + location(e));
        } catch (JsonMappingException e) {
            Throwable cause = e.getCause() instanceof IllegalArgumentException iae ? iae : e;
            throw stopped(source, problems, path(e) + ": "
                    + (cause == e ? e.getOriginalMessage() : cause.getMessage()) + location(e));
        } catch (JsonProcessingException e) {
            throw new ConfigException("config " + source + " is not valid YAML: " + e.getOriginalMessage() + location(e));
        } catch (IOException e) {
            throw new ConfigException("cannot read config " + source + ": " + e.getMessage(), e);
        }
    }

    /**
     * A value binding cannot get past ends it; the problems recorded before it (unknown keys,
     * unreadable durations) are reported with it, so that fixing one does not reveal the next.
     */
    private static ConfigException stopped(String source, RawConfig.Problems problems, String problem) {
        if (problems.lines().isEmpty()) return new ConfigException("config " + source + ": " + problem);
        return new ConfigException("invalid ncro configuration in " + source + ":\n"
                + problems.lines().stream().map(line -> "  " + line + "\n").collect(Collectors.joining())
                + "  " + problem + " (the rest of the file was not checked)");
    }

    /** Whether the file holds no YAML value at all: nothing, or only comments. */
    private static boolean isEmpty(byte[] yaml) {
        try (JsonParser p = YAML.getFactory().createParser(yaml)) {
            return p.nextToken() == null;
        } catch (IOException e) {
            return false; // binding reports it
        }
    }

    /**
     * The line of every key and list item of the file ({@code upstreams[0].priority} → 6), so
     * that problems found after binding name their line too. Empty when the file does not
     * parse; binding reports that.
     */
    private static Map<String, Integer> keyLines(byte[] yaml) {
        Map<String, Integer> lines = new java.util.HashMap<>();
        try (JsonParser p = YAML.getFactory().createParser(yaml)) {
            while (p.nextToken() != null) {
                String key = path(p.getParsingContext());
                if (!key.isEmpty()) lines.putIfAbsent(key, p.currentLocation().getLineNr());
            }
        } catch (IOException e) {
            // binding reports the same problem, with its line
        }
        return lines;
    }

    private static String path(JsonMappingException e) {
        StringBuilder sb = new StringBuilder();
        for (JsonMappingException.Reference ref : e.getPath()) {
            if (ref.getFieldName() != null) {
                if (sb.length() > 0) sb.append('.');
                sb.append(ref.getFieldName());
            } else if (ref.getIndex() >= 0) {
                sb.append('[').append(ref.getIndex()).append(']');
            }
        }
        return sb.length() == 0 ? "(top level)" : sb.toString();
    }

    private static String location(JsonProcessingException e) {
        return e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr();
    }

    private static String typeName(Class<?> type) {
        if (type == null) return "a value";
        if (type == int.class || type == Integer.class || type == long.class || type == Long.class) return "a whole number";
        if (type == double.class || type == Double.class) return "a number";
        if (type == boolean.class || type == Boolean.class) return "true or false";
        if (type == java.net.URI.class) return "a URL such as https://cache.example.org";
        if (type == String.class) return "a string";
        if (type == Duration.class) return "a duration such as 5s";
        if (type == Sizes.ByteSize.class) return "a size such as 64MiB";
        if (List.class.isAssignableFrom(type)) return "a list";
        return "a mapping";
    }

    private static final class SizeDeserializer extends JsonDeserializer<Sizes.ByteSize> {
        @Override
        public Sizes.ByteSize deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            if (!p.currentToken().isScalarValue()) {
                return (Sizes.ByteSize) ctxt.handleUnexpectedToken(Sizes.ByteSize.class, p);
            }
            try {
                return new Sizes.ByteSize(Sizes.parse(p.getValueAsString()));
            } catch (IllegalArgumentException e) {
                record(p, ctxt, e.getMessage());
                return null;
            }
        }
    }

    /** Where binding problems are collected: an attribute of the deserialization. */
    private static final String PROBLEMS = "ncro.problems";

    /** Records a problem at the parser's current key and goes on, or fails at once without a collector. */
    private static void record(JsonParser p, DeserializationContext ctxt, String message) throws JsonMappingException {
        Object problems = ctxt.getAttribute(PROBLEMS);
        if (!(problems instanceof RawConfig.Problems collected)) throw JsonMappingException.from(p, message);
        collected.add(path(p.getParsingContext()), message + " at line " + p.currentLocation().getLineNr());
    }

    /** The dotted key of a parsing context: {@code upstreams[0].timeout.connect}. */
    private static String path(com.fasterxml.jackson.core.JsonStreamContext context) {
        java.util.ArrayDeque<String> parts = new java.util.ArrayDeque<>();
        for (var c = context; c != null && !c.inRoot(); c = c.getParent()) {
            if (c.inObject() && c.getCurrentName() != null) parts.push("." + c.getCurrentName());
            else if (c.inArray()) parts.push("[" + Math.max(0, c.getCurrentIndex()) + "]");
        }
        String joined = String.join("", parts);
        return joined.startsWith(".") ? joined.substring(1) : joined;
    }

    /** Unknown keys are recorded, with the keys expected there, and skipped. */
    private static final class UnknownKeys extends com.fasterxml.jackson.databind.deser.DeserializationProblemHandler {
        @Override
        public boolean handleUnknownProperty(DeserializationContext ctxt, JsonParser p, JsonDeserializer<?> deserializer,
                Object beanOrClass, String propertyName) throws IOException {
            Object problems = ctxt.getAttribute(PROBLEMS);
            if (!(problems instanceof RawConfig.Problems collected)) return false;
            // at a list or mapping value the parser is already inside it: name the key, not its first item
            var context = p.currentToken() != null && p.currentToken().isStructStart()
                    ? p.getParsingContext().getParent() : p.getParsingContext();
            String key = path(context);
            String known = deserializer == null || deserializer.getKnownPropertyNames() == null ? ""
                    : deserializer.getKnownPropertyNames().stream().map(String::valueOf).sorted().collect(Collectors.joining(", "));
            collected.addLine(key, "unknown key '" + key + "'" + (known.isEmpty() ? "" : " (expected one of: " + known + ")")
                    + " at line " + p.currentLocation().getLineNr());
            p.skipChildren();
            return true;
        }
    }

    private static final class DurationDeserializer extends JsonDeserializer<Duration> {
        @Override
        public Duration deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            if (!p.currentToken().isScalarValue()) {
                return (Duration) ctxt.handleUnexpectedToken(Duration.class, p);
            }
            try {
                return Durations.parse(p.getValueAsString());
            } catch (IllegalArgumentException e) {
                record(p, ctxt, e.getMessage());
                return null;
            }
        }
    }
}
