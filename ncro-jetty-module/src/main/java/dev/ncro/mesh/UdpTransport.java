package dev.ncro.mesh;

import dev.ncro.config.Listen;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The mesh over UDP: one socket, one listener thread ({@code ncro-mesh-listener}) that
 * receives into a single reused buffer of {@link WireFormat#MAX_PACKET} + 1 bytes (a datagram
 * that fills it is longer than a packet may be) and hands each datagram to the receiver. The
 * listener catches everything a receiver throws: one bad packet never ends it.
 */
public final class UdpTransport implements Transport {
    private static final Logger LOG = LoggerFactory.getLogger(UdpTransport.class);
    /** Asked of the kernel so that a burst of announcements from many peers is queued, not dropped. */
    private static final int RECEIVE_BUFFER = 4 * 1024 * 1024;

    public static final Factory FACTORY = UdpTransport::new;

    private final DatagramChannel channel;
    private final Thread listener;
    private volatile boolean closed;

    private UdpTransport(Listen bind, Receiver receiver) throws IOException {
        channel = DatagramChannel.open();
        try {
            channel.setOption(StandardSocketOptions.SO_RCVBUF, RECEIVE_BUFFER);
            channel.bind(bind.host() == null ? new InetSocketAddress(bind.port()) : new InetSocketAddress(bind.host(), bind.port()));
        } catch (IOException e) {
            channel.close();
            throw new IOException("mesh.bind_addr " + bind + ": " + e.getMessage(), e);
        }
        listener = new Thread(() -> listen(receiver), "ncro-mesh-listener");
        listener.setDaemon(true);
        listener.start();
    }

    private void listen(Receiver receiver) {
        ByteBuffer buffer = ByteBuffer.allocate(WireFormat.MAX_PACKET + 1);
        while (!closed) {
            try {
                buffer.clear();
                SocketAddress from = channel.receive(buffer);
                if (from == null) continue;
                receiver.receive(buffer.array(), 0, buffer.position(), from);
            } catch (ClosedChannelException e) {
                return;
            } catch (Throwable t) {
                if (closed) return;
                LOG.warn("mesh listener: a packet could not be handled", t);
            }
        }
    }

    @Override
    public SocketAddress resolve(String addr) throws IOException {
        Listen parsed;
        try {
            parsed = Listen.parse(addr);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage());
        }
        InetSocketAddress a = new InetSocketAddress(parsed.host() == null ? "127.0.0.1" : parsed.host(), parsed.port());
        if (a.isUnresolved()) throw new IOException("cannot resolve " + parsed.host());
        return a;
    }

    @Override
    public void send(SocketAddress to, byte[] packet) throws IOException {
        channel.send(ByteBuffer.wrap(packet), to);
    }

    @Override
    public SocketAddress localAddress() {
        try {
            return channel.getLocalAddress();
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            channel.close();
        } catch (IOException e) {
            // closing anyway
        }
        try {
            listener.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
