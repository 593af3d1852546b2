package dev.ncro.upstream;

import dev.ncro.config.Defaults;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.Set;

/**
 * Which upstream redirects ncro follows. Binary caches do redirect (NARs to a CDN or an object
 * store), so redirects are followed, but an upstream must not be able to make ncro fetch from
 * inside its own network and hand the answer to a client (server-side request forgery).
 *
 * <ul>
 *   <li>301, 302, 303, 307 and 308 with a {@code Location} are redirects; a relative
 *       {@code Location} is resolved against the URL that answered.
 *   <li>At most {@link Defaults#MAX_REDIRECTS} hops per request.
 *   <li>Only {@code http} and {@code https}; never from {@code https} to {@code http}; never a
 *       target carrying user information.
 *   <li>A target on the upstream's own origin (scheme, host and port as configured) is always
 *       followed.
 *   <li>A target on another origin is followed when its host is listed in the upstream's
 *       {@code redirect_hosts}, or when every address the host resolves to is public: not
 *       loopback, link-local, private (10/8, 172.16/12, 192.168/16), shared (CGNAT 100.64/10),
 *       unique-local (fc00::/7), unspecified, multicast or otherwise reserved.
 *   <li>Credentials go only to the upstream's own origin ({@link #sameOrigin}).
 * </ul>
 *
 * <p>Pure functions; the client calls them, resolving the target's host (off the caller's
 * thread) only when the address check is needed. A refusal is a {@link RedirectRefusedException}
 * whose message names the target host and nothing else of the URL.
 */
final class RedirectPolicy {
    private static final Set<Integer> REDIRECTS = Set.of(301, 302, 303, 307, 308);

    private RedirectPolicy() {}

    /** Whether {@code status} is a redirect ncro follows (when it carries a Location). */
    static boolean isRedirect(int status) {
        return REDIRECTS.contains(status);
    }

    /** The URL a {@code Location} header names, resolved against {@code current}. */
    static URI target(URI current, String location) throws RedirectRefusedException {
        URI target;
        try {
            target = current.resolve(new URI(location.trim()));
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw new RedirectRefusedException("redirect from " + current.getHost() + " has a malformed Location");
        }
        return target;
    }

    /**
     * Where a redirect leads, once the checks that need no address have passed: {@link #target}
     * then {@link #check}. The address check comes with the hop's host lookup.
     */
    static URI next(Upstream upstream, URI current, String location, int hop) throws RedirectRefusedException {
        URI target = target(current, location);
        check(upstream, current, target, hop);
        return target;
    }

    /**
     * The checks that need no address: hop count, scheme, downgrade, user information.
     *
     * @param hop the number of this redirect within the request, starting at 1
     */
    static void check(Upstream upstream, URI current, URI target, int hop) throws RedirectRefusedException {
        String host = target.getHost() == null ? null : hostPort(target);
        if (hop > Defaults.MAX_REDIRECTS) {
            throw refused(upstream, host, "more than " + Defaults.MAX_REDIRECTS + " redirects");
        }
        String scheme = target.getScheme() == null ? "" : target.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw refused(upstream, host, "scheme is neither http nor https");
        }
        if (host == null || host.isEmpty()) {
            throw refused(upstream, "(no host)", "the Location has no host");
        }
        if (scheme.equals("http") && "https".equalsIgnoreCase(current.getScheme())) {
            throw refused(upstream, host, "it would downgrade https to http");
        }
        if (target.getRawUserInfo() != null) {
            throw refused(upstream, host, "the Location carries user information");
        }
    }

    /** Whether following {@code target} needs its host's addresses checked. */
    static boolean needsAddressCheck(Upstream upstream, URI target) {
        return !sameOrigin(upstream, target) && !upstream.redirectHosts().contains(host(target));
    }

    /** Refuses a target whose host resolved to any address that is not public. */
    static void checkAddresses(Upstream upstream, URI target, InetAddress[] addresses) throws RedirectRefusedException {
        if (addresses == null || addresses.length == 0) {
            throw refused(upstream, hostPort(target), "its host has no address");
        }
        for (InetAddress a : addresses) {
            if (!isPublic(a)) {
                throw refused(upstream, hostPort(target), "it resolves to the non-public address " + a.getHostAddress()
                        + " (list the host in redirect_hosts to allow it)");
            }
        }
    }

    /** Same scheme, host (without case) and port (default filled in) as the upstream's base URL. */
    static boolean sameOrigin(Upstream upstream, URI uri) {
        if (uri.getScheme() == null || uri.getHost() == null) return false;
        String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
        int port = uri.getPort() >= 0 ? uri.getPort() : scheme.equals("https") ? 443 : 80;
        return Upstream.endpoint(scheme, uri.getHost(), port).equals(
                Upstream.endpoint(upstream.base().getScheme().toLowerCase(Locale.ROOT), upstream.base().getHost(), upstream.port()));
    }

    /** A host as {@code redirect_hosts} lists it: lower case, IPv6 without brackets. */
    static String host(URI uri) {
        String h = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
        return h.startsWith("[") && h.endsWith("]") ? h.substring(1, h.length() - 1) : h;
    }

    /** An address on the public internet: reachable by anyone, so nothing ncro's network hides. */
    static boolean isPublic(InetAddress a) {
        if (a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress() || a.isAnyLocalAddress()
                || a.isMulticastAddress()) {
            return false;
        }
        byte[] b = a.getAddress();
        if (a instanceof Inet4Address) {
            int b0 = b[0] & 0xff;
            int b1 = b[1] & 0xff;
            return b0 != 0 // "this network"
                    && !(b0 == 100 && (b1 & 0xc0) == 64) // shared address space (CGNAT) 100.64/10
                    && !(b0 == 192 && b1 == 0 && (b[2] & 0xff) == 0) // IETF protocol assignments
                    && !(b0 == 198 && (b1 & 0xfe) == 18) // benchmarking 198.18/15
                    && b0 < 240; // reserved and broadcast
        }
        if (a instanceof Inet6Address) {
            if ((b[0] & 0xfe) == 0xfc) return false; // unique-local fc00::/7
            // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) carry an IPv4 address: judge that
            boolean compatible = true;
            for (int i = 0; i < 12; i++) compatible &= b[i] == 0;
            boolean nat64 = b[0] == 0x00 && b[1] == 0x64 && (b[2] & 0xff) == 0xff && (b[3] & 0xff) == 0x9b;
            for (int i = 4; i < 12 && nat64; i++) nat64 = b[i] == 0;
            if (compatible || nat64) {
                try {
                    return isPublic(InetAddress.getByAddress(new byte[] {b[12], b[13], b[14], b[15]}));
                } catch (java.net.UnknownHostException e) {
                    return false; // cannot happen for four bytes
                }
            }
            return true;
        }
        return false;
    }

    /** host:port of a target, for messages: never its path, query or user information. */
    private static String hostPort(URI target) {
        return target.getPort() >= 0 ? target.getHost() + ":" + target.getPort() : target.getHost();
    }

    private static RedirectRefusedException refused(Upstream upstream, String host, String why) {
        return new RedirectRefusedException("redirect from " + upstream.name() + " to " + host + " refused: " + why);
    }
}
