package dev.ncro.route;

import dev.ncro.upstream.Upstream;
import java.util.Optional;

/**
 * Where a narinfo may be, as others (the mesh's peers) say, and what this node learned itself.
 * A hint names an upstream, never bytes: the lookup asks that upstream once and serves only
 * what it verified there itself, and falls back to the race when the hint is wrong.
 */
public interface RouteHints {
    /** The configured upstream a peer says holds {@code <hash>.narinfo}, if any. */
    Optional<Upstream> hint(String hash);

    /** This node fetched {@code <hash>.narinfo} from {@code upstream} and verified it. */
    void learned(String hash, Upstream upstream, double emaMs);

    /** Asking {@code upstream} as hinted did not give a narinfo this node could serve. */
    void refuted(String hash, Upstream upstream);

    /** No hints (no mesh). */
    RouteHints NONE = new RouteHints() {
        @Override
        public Optional<Upstream> hint(String hash) {
            return Optional.empty();
        }

        @Override
        public void learned(String hash, Upstream upstream, double emaMs) {}

        @Override
        public void refuted(String hash, Upstream upstream) {}
    };
}
