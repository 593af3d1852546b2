package dev.ncro.web;

import static dev.ncro.web.NcroUnderTest.config;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ncro.testing.FakeCache;
import java.lang.management.ManagementFactory;
import java.util.Set;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.eclipse.jetty.jmx.MBeanContainer;
import org.junit.jupiter.api.Test;

/** Upstream health as Jetty JMX managed beans, as the base's jmx module exports them. */
class JmxTest {
    @Test
    void upstreamHealth_isExportedWithItsState() throws Exception {
        MBeanServer platform = ManagementFactory.getPlatformMBeanServer();
        try (FakeCache a = FakeCache.start(); NcroUnderTest ncro = NcroUnderTest.start(config(null, a.uri(), 10))) {
            MBeanContainer container = new MBeanContainer(platform);
            ncro.server.addEventListener(container);
            ncro.server.addBean(container);
            ncro.engine.probes().probeAll().get();

            Set<ObjectName> names = platform.queryNames(new ObjectName("dev.ncro.health:type=upstreamhealth,*"), null);
            assertEquals(1, names.size(), names.toString());
            ObjectName name = names.iterator().next();
            assertEquals(a.uri().toString(), platform.getAttribute(name, "upstream"));
            assertEquals("active", platform.getAttribute(name, "state"));
            assertEquals(0, platform.getAttribute(name, "consecutiveFailures"));
            container.destroy();
        }
    }
}
