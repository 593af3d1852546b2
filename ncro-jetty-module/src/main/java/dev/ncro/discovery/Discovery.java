package dev.ncro.discovery;

import dev.ncro.config.NcroConfig;
import dev.ncro.upstream.Upstream;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.function.Supplier;
import javax.jmdns.JmDNS;
import javax.jmdns.ServiceEvent;
import javax.jmdns.ServiceInfo;
import javax.jmdns.ServiceListener;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * mDNS discovery ({@code discovery.enabled}): browses {@code discovery.service} (by default
 * {@code _nix-serve._tcp.local.}, the type binary caches announce) on every up, multicast
 * capable, non-loopback IPv4 interface, and hands each resolved cache to the {@link Registry}
 * as {@code http://<address>:<port>}; when the service goes away (goodbye packet or expired
 * record) the registry is told to drop it. A service announcing {@code ncro=1} is another
 * ncro: never an upstream, but offered to the mesh as a peer ({@code mesh_key},
 * {@code mesh_port}), which takes it only as {@code mesh.accept_any_peer} allows. With {@code discovery.advertise} it also announces
 * this node under the same type: its HTTP port, and with the mesh on its mesh port and public
 * key as TXT records ({@code ncro=1}, {@code mesh_port}, {@code mesh_key}).
 *
 * <p>Trust is not decided here: anyone on the LAN can announce anything, so the registry
 * serves a discovered cache's narinfos only when signed by {@code discovery.public_keys}.
 * This node never registers itself: a service at one of its own addresses and its own HTTP
 * port, or under its own instance name, is skipped.
 *
 * <p>Threads: JmDNS's own; its callbacks only hand the event to {@code executor}. Registering
 * (which waits for mDNS probing) and closing (which sends goodbyes) run on a thread of this
 * bean's own, never on a request path.
 */
public final class Discovery extends AbstractLifeCycle {
    private static final Logger LOG = LoggerFactory.getLogger(Discovery.class);

    /** Where discovered caches go: the engine's upstream registry. */
    public interface Registry {
        /** @return the upstream now serving from {@code base}, or null when it is not taken (already known) */
        Upstream found(URI base);

        void lost(Upstream upstream);

        /** Another ncro announcing its mesh socket ({@code addr} is host:port) and key. */
        void peer(String publicKeyHex, String addr);

        void peerGone(String publicKeyHex);
    }

    /** What this node announces; the ports are known only once the server has bound them. */
    public record Advert(int httpPort, int meshPort, String meshKeyHex) {}

    /** How long a resolved service without a TXT record waits for one before it counts as a plain cache. */
    static final java.time.Duration TXT_WAIT = java.time.Duration.ofSeconds(1);

    private final NcroConfig.Discovery config;
    private final Registry registry;
    private final Executor executor;
    private final org.eclipse.jetty.util.thread.Scheduler timer;
    private final String instanceName;
    private final List<JmDNS> responders = new ArrayList<>();
    /** Discovered services by qualified name: those that became upstreams. */
    private final Map<String, Upstream> found = new ConcurrentHashMap<>();
    /** Resolved services whose TXT record has not arrived yet, by qualified name. */
    private final Map<String, ServiceInfo> pending = new ConcurrentHashMap<>();
    /** Discovered ncros by qualified name: their mesh keys. */
    private final Map<String, String> meshKeys = new ConcurrentHashMap<>();
    private final Set<InetAddress> ownAddresses = Collections.newSetFromMap(new ConcurrentHashMap<>());
    private volatile int ownHttpPort = -1;
    private volatile Supplier<Advert> advert;

    /**
     * @param executor where resolved and removed services are handled
     * @param timer fires the wait for a late TXT record (and hands the work to {@code executor})
     * @param instanceName this node's mDNS instance name (unique on the LAN: a random suffix)
     */
    public Discovery(NcroConfig.Discovery config, Registry registry, Executor executor,
            org.eclipse.jetty.util.thread.Scheduler timer, String instanceName) {
        this(config, registry, executor, timer, instanceName, NetworkInterface::getNetworkInterfaces);
    }

    /** Where the interfaces to browse on are listed (tests give a host without any). */
    interface Interfaces {
        java.util.Enumeration<NetworkInterface> list() throws SocketException;
    }

    private final Interfaces interfaces;

    Discovery(NcroConfig.Discovery config, Registry registry, Executor executor,
            org.eclipse.jetty.util.thread.Scheduler timer, String instanceName, Interfaces interfaces) {
        this.interfaces = interfaces;
        this.config = config;
        this.registry = registry;
        this.executor = executor;
        this.timer = timer;
        this.instanceName = instanceName;
    }

    /** Announces this node once started; called when the server has bound its ports. */
    public void advertise(Supplier<Advert> what) {
        this.advert = what;
        if (isRunning() && config.advertise()) background("ncro-mdns-advertise", this::register);
    }

    @Override
    protected void doStart() throws Exception {
        for (InetAddress address : interfaceAddresses()) {
            ownAddresses.add(address);
            try {
                JmDNS jmdns = JmDNS.create(address, instanceName.replace(' ', '-'));
                responders.add(jmdns);
                jmdns.addServiceListener(config.type(), new Listener(jmdns));
                LOG.info("mDNS discovery browses {} on {}", config.type(), address.getHostAddress());
            } catch (IOException e) {
                LOG.warn("mDNS discovery cannot use {}: {}", address.getHostAddress(), e.toString());
            }
        }
        if (responders.isEmpty()) LOG.warn("mDNS discovery found no up, multicast-capable IPv4 interface: nothing is browsed");
        if (advert != null && config.advertise()) background("ncro-mdns-advertise", this::register);
    }

    @Override
    protected void doStop() {
        List<JmDNS> closing = new ArrayList<>(responders);
        responders.clear();
        found.clear();
        meshKeys.clear();
        pending.clear();
        // goodbyes are sent by close(), which waits on them: off the stopping thread
        background("ncro-mdns-close", () -> closing.forEach(j -> {
            try {
                j.unregisterAllServices();
                j.close();
            } catch (IOException | RuntimeException e) {
                LOG.debug("closing mDNS on {}: {}", j, e.toString());
            }
        }));
    }

    private void register() {
        Advert a;
        try {
            a = advert.get();
        } catch (RuntimeException e) {
            LOG.warn("mDNS advertisement skipped: {}", e.toString());
            return;
        }
        ownHttpPort = a.httpPort();
        Map<String, String> txt = new LinkedHashMap<>();
        txt.put("ncro", "1");
        if (a.meshPort() > 0) txt.put("mesh_port", String.valueOf(a.meshPort()));
        if (a.meshKeyHex() != null) txt.put("mesh_key", a.meshKeyHex());
        for (JmDNS jmdns : List.copyOf(responders)) {
            try {
                ServiceInfo info = ServiceInfo.create(config.type(), instanceName, a.httpPort(), 0, 0, txt);
                jmdns.registerService(info);
                LOG.info("mDNS: advertised {} as {} port {} on {}", config.type(), info.getName(), a.httpPort(),
                        jmdns.getInetAddress().getHostAddress());
            } catch (IOException | RuntimeException e) {
                LOG.warn("mDNS advertisement on {} failed: {}", jmdns, e.toString());
            }
        }
    }

    /** The discovered services that became upstreams, by instance name. */
    public Map<String, Upstream> found() {
        return Map.copyOf(found);
    }

    private final class Listener implements ServiceListener {
        private final JmDNS jmdns;

        Listener(JmDNS jmdns) {
            this.jmdns = jmdns;
        }

        @Override
        public void serviceAdded(ServiceEvent event) {
            // asks for SRV, TXT and addresses; the answer arrives as serviceResolved
            jmdns.requestServiceInfo(event.getType(), event.getName());
        }

        @Override
        public void serviceRemoved(ServiceEvent event) {
            String name = event.getInfo().getQualifiedName();
            executor.execute(() -> gone(name, event.getName()));
        }

        @Override
        public void serviceResolved(ServiceEvent event) {
            ServiceInfo info = event.getInfo();
            executor.execute(() -> resolved(info));
        }
    }

    /**
     * JmDNS reports a service resolved as soon as it has its address and port, often before
     * its TXT record: a service whose TXT is still empty is decided {@link #TXT_WAIT} later
     * (or at once when its TXT arrives), so that another ncro ({@code ncro=1}) is never taken
     * for a plain cache.
     */
    private void resolved(ServiceInfo info) {
        if (!isRunning()) return;
        String name = info.getQualifiedName();
        byte[] txt = info.getTextBytes();
        if (txt == null || txt.length <= 1) {
            if (pending.putIfAbsent(name, info) == null) {
                timer.schedule(() -> executor.execute(() -> {
                    ServiceInfo waited = pending.remove(name);
                    if (waited != null) decide(waited);
                }), TXT_WAIT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            }
            return;
        }
        pending.remove(name);
        decide(info);
    }

    /** Short and without I/O: the registry only swaps its snapshot and schedules a probe. */
    private synchronized void decide(ServiceInfo info) {
        if (!isRunning()) return;
        String name = info.getQualifiedName();
        if (found.containsKey(name) || meshKeys.containsKey(name)) return;
        InetAddress address = pick(info);
        if (address == null || info.getPort() <= 0) return;
        if (info.getName().equals(instanceName)
                || info.getPort() == ownHttpPort && ownAddresses.contains(address)) {
            LOG.debug("mDNS: {} is this node", name);
            return;
        }
        String host = address instanceof Inet6Address ? "[" + address.getHostAddress().replaceAll("%.*", "") + "]"
                : address.getHostAddress();
        if ("1".equals(info.getPropertyString("ncro"))) {
            // another ncro: not an upstream (two ncros asking each other for what neither has
            // would wait on each other's races until the deadline); a mesh peer, if trusted
            String key = info.getPropertyString("mesh_key");
            String meshPort = info.getPropertyString("mesh_port");
            if (key != null && meshPort != null && meshPort.matches("[0-9]{1,5}") && meshKeys.putIfAbsent(name, key) == null) {
                registry.peer(key, host + ":" + meshPort);
            }
            return;
        }
        URI base = URI.create("http://" + host + ":" + info.getPort());
        Upstream upstream = registry.found(base);
        if (upstream != null) {
            found.put(name, upstream);
            LOG.info("mDNS: discovered cache {} at {}: upstream at priority {} (narinfos must be signed by discovery.public_keys)",
                    info.getName(), base, upstream.priority());
        }
    }

    private synchronized void gone(String name, String shown) {
        pending.remove(name);
        String key = meshKeys.remove(name);
        if (key != null) registry.peerGone(key);
        Upstream gone = found.remove(name);
        if (gone != null) {
            LOG.warn("mDNS: discovered cache {} ({}) went away: no longer used", shown, gone);
            registry.lost(gone);
        }
    }

    /** An IPv4 address if the service has one (link-local IPv6 would need its zone). */
    private static InetAddress pick(ServiceInfo info) {
        Inet4Address[] v4 = info.getInet4Addresses();
        if (v4.length > 0) return v4[0];
        for (Inet6Address a : info.getInet6Addresses()) if (!a.isLinkLocalAddress()) return a;
        return null;
    }

    /**
     * The addresses to browse on; none (logged) when the host has no usable interface or they
     * cannot be listed (a network namespace with no interface up): ncro starts all the same.
     */
    private List<InetAddress> interfaceAddresses() {
        Set<InetAddress> out = new HashSet<>();
        java.util.Enumeration<NetworkInterface> all;
        try {
            all = interfaces.list();
        } catch (SocketException | RuntimeException e) {
            LOG.warn("mDNS discovery cannot list network interfaces: {}", e.toString());
            return List.of();
        }
        if (all == null) return List.of();
        for (NetworkInterface ni : Collections.list(all)) {
            try {
                if (!ni.isUp() || ni.isLoopback() || !ni.supportsMulticast()) continue;
            } catch (SocketException e) {
                LOG.warn("mDNS discovery skips interface {}: {}", ni.getName(), e.toString());
                continue;
            }
            for (InetAddress a : Collections.list(ni.getInetAddresses())) if (a instanceof Inet4Address) out.add(a);
        }
        return new ArrayList<>(out);
    }

    private static void background(String name, Runnable task) {
        Thread t = new Thread(() -> {
            try {
                task.run();
            } catch (RuntimeException e) {
                LOG.warn("{}: {}", name, e.toString());
            }
        }, name);
        t.setDaemon(true);
        t.start();
    }
}
