package dev.ncro.api;

import java.util.concurrent.CompletableFuture;

/**
 * What the web layer asks of the ncro engine. Plain Java on purpose: the engine lives on
 * the server classpath ({@code lib/ncro/}), the web application in its own class loader, and
 * only the types of this package cross between them.
 *
 * <p>The engine publishes itself as the Jetty {@code Server} attribute {@link #ATTRIBUTE};
 * the context XML ({@code webapps/ncro.xml}) copies it into the web application's context
 * attributes under the same name.
 *
 * <p>No method blocks on the network: answers come back through futures and callbacks.
 */
public interface NcroService {
    /** Server and context attribute under which the engine is published. */
    String ATTRIBUTE = "dev.ncro.api.NcroService";

    /** The body of {@code /nix-cache-info}. */
    String cacheInfo();

    /**
     * {@code /health}: JSON with the overall status ({@code ok}, {@code degraded} or
     * {@code down}), each upstream's state and latency, and the route store's state.
     * Status 200 when ok or degraded, 503 when down.
     */
    Answer health();

    /** {@code /metrics}: the Prometheus text exposition. */
    Answer metrics();

    /**
     * What the engine is doing now, for the status page at {@code /}: upstreams, routes,
     * lookups, NAR streams, each upstream's recent latency. Built from memory only (no
     * network, no database query), so it is cheap enough to answer on a request thread.
     */
    Status status();

    /**
     * Looks up {@code <hash>.narinfo}. The future never completes exceptionally: failures are
     * answers with a 5xx status, because Nix treats a 404 as "not here" for an hour.
     *
     * @param hash the 32-character nix32 hash part, already validated by the caller
     */
    CompletableFuture<NarinfoAnswer> narinfo(String hash);

    /**
     * Looks up {@code <hash>.narinfo} for a GET or, with {@code head}, a HEAD request. Only a
     * GET answered 200 may start a NAR read-ahead: a HEAD is a check, not a download to come.
     *
     * @param hash the 32-character nix32 hash part, already validated by the caller
     */
    default CompletableFuture<NarinfoAnswer> narinfo(String hash, boolean head) {
        return narinfo(hash);
    }

    /**
     * Prepares streaming a NAR (or any other file URL a narinfo named) from the upstream that
     * served its narinfo. Nothing is sent until {@link NarStream#start()}, so the caller holds
     * the stream before any handler callback; those come from I/O threads (see {@link NarHandler}).
     *
     * @return the stream's flow control: the caller grants more data with
     *     {@link NarStream#release(int)} as it writes, and cancels on client disconnect
     */
    NarStream nar(NarRequest request, NarHandler handler);

    /**
     * Whether a live route's narinfo named exactly this file URL (relative to the cache root,
     * query included): the web layer then passes it on even if it is not in one of the usual
     * NAR forms, since ncro itself told the client to fetch it here.
     */
    default boolean namesNar(String target) {
        return false;
    }
}
