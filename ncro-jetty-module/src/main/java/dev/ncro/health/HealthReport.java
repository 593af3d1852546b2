package dev.ncro.health;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code /health} report: overall {@code ok} (every upstream active, routes persisted and
 * written), {@code degraded} (an upstream not active, routes only in memory, or route writes
 * failing) or {@code down} (every upstream down); each upstream's state and latency; the
 * route store's state. Never carries credentials: upstreams appear by their display name.
 */
public final class HealthReport {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One upstream as the report lists it. */
    public record Upstream(String name, int priority, UpstreamHealth.Snapshot health) {}

    /** The route store as the report shows it; {@code writeFailure} null while writes succeed. */
    public record Store(boolean persistent, String state, String writeFailure, long routes) {}

    private final String status;
    private final byte[] json;

    private HealthReport(String status, byte[] json) {
        this.status = status;
        this.json = json;
    }

    public static HealthReport of(List<Upstream> upstreams, Store store) {
        return of(upstreams, store, null);
    }

    /** @param mesh the mesh node's own report (its key, peers, rejections), or null without a mesh */
    public static HealthReport of(List<Upstream> upstreams, Store store, Map<String, Object> mesh) {
        List<Map<String, Object>> entries = new ArrayList<>();
        for (Upstream u : upstreams) {
            UpstreamHealth.Snapshot s = u.health();
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("url", u.name());
            entry.put("priority", u.priority());
            entry.put("state", s.state().label());
            entry.put("ema_latency_ms", Double.isNaN(s.emaMs()) ? null : Math.round(s.emaMs() * 100) / 100.0);
            entry.put("consecutive_failures", s.consecutiveFailures());
            entry.put("last_probe", s.lastProbeAt() == 0 ? null : Instant.ofEpochMilli(s.lastProbeAt()).toString());
            entries.add(entry);
        }
        String status = status(upstreams, store);
        Map<String, Object> routeStore = new LinkedHashMap<>();
        routeStore.put("persistent", store.persistent());
        routeStore.put("state", store.state());
        routeStore.put("write_failure", store.writeFailure());
        routeStore.put("routes", store.routes());
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("status", status);
        report.put("upstreams", entries);
        report.put("route_store", routeStore);
        if (mesh != null) report.put("mesh", mesh);
        try {
            return new HealthReport(status, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * {@code down} when every upstream is down; {@code ok} when every upstream is active and
     * routes are persisted and written; {@code degraded} otherwise.
     */
    public static String status(List<Upstream> upstreams, Store store) {
        long down = upstreams.stream().filter(u -> u.health().state() == UpstreamState.DOWN).count();
        boolean allActive = upstreams.stream().allMatch(u -> u.health().state() == UpstreamState.ACTIVE);
        if (down == upstreams.size()) return "down";
        return allActive && store.persistent() && store.writeFailure() == null ? "ok" : "degraded";
    }

    /** {@code ok}, {@code degraded} or {@code down}. */
    public String status() {
        return status;
    }

    /** 200, or 503 when down. */
    public int httpStatus() {
        return status.equals("down") ? 503 : 200;
    }

    public byte[] json() {
        return json;
    }
}
