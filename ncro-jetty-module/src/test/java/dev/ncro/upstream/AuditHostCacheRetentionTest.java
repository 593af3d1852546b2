package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Audit: HostCache sweeps expired {@code answers} above 1024 hosts, but {@code lastGood} (what
 * HttpComponents connects to) is never swept. An upstream that redirects each NAR to a new host
 * name grows it by one entry per request, for ever (and keeps answering for hosts long expired).
 */
class AuditHostCacheRetentionTest {
    @Test
    void addressesOfHostsLongExpired_areNotRetainedForever() throws Exception {
        AtomicLong now = new AtomicLong();
        Resolver resolver = host -> new InetAddress[] {InetAddress.getByAddress(host, new byte[] {93, (byte) 184, 0, 1})};
        HostCache cache = new HostCache(resolver, Runnable::run, now::get, Duration.ofSeconds(30), Duration.ofSeconds(2));

        for (int i = 0; i < 5000; i++) cache.lookup("h" + i + ".cdn.example").get();
        now.addAndGet(Duration.ofHours(1).toNanos()); // every answer long expired
        for (int i = 0; i < 2000; i++) cache.lookup("later" + i + ".cdn.example").get(); // sweeps run

        assertThrows(UnknownHostException.class, () -> cache.resolve("h0.cdn.example"),
                "an hour-old host is still held (lastGood is never swept)");
    }
}
