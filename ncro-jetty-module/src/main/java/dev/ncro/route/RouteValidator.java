package dev.ncro.route;

/**
 * Re-checks a route that was stored earlier, before the route store serves it again.
 *
 * <p>Routes in SQLite outlive the configuration that admitted them: between two runs, or
 * while a route sat on disk after the in-memory front let it go, the operator may have
 * changed an upstream's public keys or path filters, or removed the upstream altogether. The
 * route store therefore hands every route it reads from the database to the validator before
 * it is used. A rejected route is answered as {@link RouteStore.Unknown} (the engine asks the
 * upstreams again) and deleted from the database.
 *
 * <p>Routes remembered in this run ({@link RouteStore#remember}) were checked by the engine
 * when they were learned and are not passed here again.
 *
 * <p>Called on the thread of the lookup; it must not block on the network.
 */
@FunctionalInterface
public interface RouteValidator {
    /** Accepts every route. */
    RouteValidator ACCEPT_ALL = route -> null;

    /**
     * @return null when the route may be served; otherwise why not, for the log (for example
     *     "no signature by a trusted key of upstream cache-a")
     */
    String reject(Route route);
}
