package dev.ncro.discovery;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.config.NcroConfig;
import dev.ncro.upstream.Upstream;
import java.net.SocketException;
import java.net.URI;
import java.util.List;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.junit.jupiter.api.Test;

/**
 * Discovery on a host with no network interface at all (a network namespace with nothing up:
 * the JDK then throws "No network interfaces configured"): ncro starts, browses nothing, says
 * so in the log, and stops.
 */
class DiscoveryLifecycleTest {
    @Test
    void noNetworkInterfaces_startsAndStopsAllTheSame() throws Exception {
        ScheduledExecutorScheduler timer = new ScheduledExecutorScheduler();
        timer.start();
        try {
            NcroConfig.Discovery c = new NcroConfig.Discovery(true, "_nix-serve._tcp", "local", 20, List.of(), true);
            Discovery d = new Discovery(c, new Discovery.Registry() {
                @Override
                public Upstream found(URI base) {
                    throw new AssertionError("nothing can be found");
                }

                @Override
                public void lost(Upstream u) {}

                @Override
                public void peer(String k, String a) {}

                @Override
                public void peerGone(String k) {}
            }, Runnable::run, timer, "ncro-test", () -> {
                throw new SocketException("No network interfaces configured");
            });
            d.start();
            assertTrue(d.isRunning());
            assertTrue(d.found().isEmpty());
            d.stop();
            assertTrue(d.isStopped());
        } finally {
            timer.stop();
        }
    }
}
