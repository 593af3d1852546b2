package dev.ncro.upstream;

import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * Turns a host name into addresses. May block (it is a DNS lookup): {@link UpstreamClient}
 * calls it only on a thread of its own, never on a timer, I/O or request thread.
 */
@FunctionalInterface
public interface Resolver {
    InetAddress[] resolve(String host) throws UnknownHostException;

    /** The JVM's resolver (InetAddress, with its own cache). */
    Resolver SYSTEM = InetAddress::getAllByName;
}
