package dev.ncro.mesh;

import dev.ncro.config.Listen;
import java.io.IOException;
import java.net.SocketAddress;

/**
 * How a node's packets travel: UDP ({@link UdpTransport}) in ncro, an in-memory network in the
 * simulation. A transport hands every datagram it receives to its {@link Receiver}, from one
 * thread of its own, in a buffer it reuses: the receiver must not keep it.
 */
public interface Transport extends AutoCloseable {
    interface Receiver {
        void receive(byte[] buffer, int off, int len, SocketAddress from);
    }

    interface Factory {
        Transport open(Listen bind, Receiver receiver) throws IOException;
    }

    /** A peer's {@code addr} ({@code host:port}) as this transport sends to it; may look a host name up. */
    SocketAddress resolve(String addr) throws IOException;

    void send(SocketAddress to, byte[] packet) throws IOException;

    SocketAddress localAddress();

    @Override
    void close();
}
