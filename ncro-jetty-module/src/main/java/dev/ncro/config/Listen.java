package dev.ncro.config;

/**
 * A listen address, {@code host:port}, {@code :port} (all interfaces) or {@code [v6]:port}.
 *
 * @param host the host to bind, or null for all interfaces
 * @param port 0..65535; 0 picks a free port
 */
public record Listen(String host, int port) {
    public static Listen parse(String text) {
        String s = text == null ? "" : text.trim();
        int colon = s.lastIndexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("expected host:port or :port, got '" + text + "'");
        }
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw new IllegalArgumentException("an IPv6 host must be in brackets, as [::1]:8080, got '" + text + "'");
        }
        int port;
        try {
            port = Integer.parseInt(s.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("port is not a number in '" + text + "'");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port " + port + " is out of range 0-65535");
        }
        return new Listen(host.isEmpty() ? null : host, port);
    }

    @Override
    public String toString() {
        String h = host == null ? "" : host.contains(":") ? "[" + host + "]" : host;
        return h + ":" + port;
    }
}
