package dev.ncro.route;

import dev.ncro.health.UpstreamHealth;
import dev.ncro.health.UpstreamState;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.HashMap;
import java.util.Map;

/**
 * The {@code health} table: one snapshot per upstream, so that a restarted ncro starts from
 * what it last knew about each upstream (a restored state is re-probed at once by the
 * engine). It lives in the route database only because that file is already there; nothing
 * here touches routes.
 */
final class HealthTable {
    private HealthTable() {}

    static void create(Statement s) throws SQLException {
        s.execute("CREATE TABLE IF NOT EXISTS health (upstream TEXT PRIMARY KEY, state TEXT NOT NULL,"
                + " ema_ms REAL, failures INTEGER NOT NULL, last_probe INTEGER NOT NULL)");
    }

    /** Replaces the upstream's snapshot; runs on the writer, inside its batch's transaction. */
    static void write(Connection c, UpstreamHealth.Snapshot snap) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT OR REPLACE INTO health (upstream, state, ema_ms, failures, last_probe) VALUES (?, ?, ?, ?, ?)")) {
            ps.setString(1, snap.upstream());
            ps.setString(2, snap.state().name());
            if (Double.isNaN(snap.emaMs())) ps.setNull(3, Types.REAL);
            else ps.setDouble(3, snap.emaMs());
            ps.setInt(4, snap.consecutiveFailures());
            ps.setLong(5, snap.lastProbeAt());
            ps.executeUpdate();
        }
    }

    /** Every snapshot, by upstream name; rows in a state this version does not know are skipped. */
    static Map<String, UpstreamHealth.Snapshot> readAll(Connection c) throws SQLException {
        Map<String, UpstreamHealth.Snapshot> all = new HashMap<>();
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SELECT upstream, state, ema_ms, failures, last_probe FROM health")) {
            while (rs.next()) {
                double ema = rs.getDouble(3);
                if (rs.wasNull()) ema = Double.NaN;
                UpstreamState state;
                try {
                    state = UpstreamState.valueOf(rs.getString(2));
                } catch (IllegalArgumentException e) {
                    continue; // written by another version
                }
                all.put(rs.getString(1), new UpstreamHealth.Snapshot(rs.getString(1), state, ema, rs.getInt(4), rs.getLong(5), 0));
            }
        }
        return all;
    }
}
