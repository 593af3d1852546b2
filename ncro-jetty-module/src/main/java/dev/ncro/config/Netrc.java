package dev.ncro.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A netrc file ({@code machine HOST login USER password PASS}, and {@code default}), as Nix
 * reads it for binary caches. {@code account} and {@code macdef} are skipped.
 */
public final class Netrc {
    /** A login for one host. */
    public record Login(String user, String password) {
        @Override
        public String toString() {
            return "Login[" + user + ", password hidden]"; // never print the secret
        }
    }

    private final Map<String, Login> machines = new HashMap<>();
    private Login fallback;

    public static Netrc parse(String text) {
        Netrc n = new Netrc();
        String[] tokens = text.trim().isEmpty() ? new String[0] : text.trim().split("\\s+");
        String machine = null;
        boolean isDefault = false;
        String user = null;
        String password = null;
        for (int i = 0; i < tokens.length; i++) {
            String t = tokens[i];
            switch (t) {
                case "machine", "default" -> {
                    n.put(machine, isDefault, user, password);
                    isDefault = t.equals("default");
                    machine = isDefault ? null : (i + 1 < tokens.length ? tokens[++i] : null);
                    user = null;
                    password = null;
                }
                case "login" -> user = i + 1 < tokens.length ? tokens[++i] : null;
                case "password" -> password = i + 1 < tokens.length ? tokens[++i] : null;
                case "account" -> i++;
                case "macdef" -> { return n; } // a macro runs to the end of the file here
                default -> { }
            }
        }
        n.put(machine, isDefault, user, password);
        return n;
    }

    public static Netrc read(Path file) throws IOException {
        return parse(Files.readString(file));
    }

    private void put(String machine, boolean isDefault, String user, String password) {
        if (user == null || password == null) return;
        if (isDefault) fallback = new Login(user, password);
        else if (machine != null) machines.putIfAbsent(machine.toLowerCase(java.util.Locale.ROOT), new Login(user, password));
    }

    /** The {@code machine} entry for this host only. */
    public Optional<Login> machine(String host) {
        return Optional.ofNullable(machines.get(host.toLowerCase(java.util.Locale.ROOT)));
    }

    /** The {@code default} entry, for any host. */
    public Optional<Login> fallback() {
        return Optional.ofNullable(fallback);
    }

    public Optional<Login> forHost(String host) {
        Login l = machines.get(host.toLowerCase(java.util.Locale.ROOT));
        return Optional.ofNullable(l != null ? l : fallback);
    }
}
