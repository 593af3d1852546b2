package dev.ncro.engine;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.config.Defaults;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.route.RouteStore;
import dev.ncro.trust.Narinfo;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reference read-ahead: when a narinfo is served to a client, the store paths it references
 * that ncro knows nothing about (no route, no remembered not-found) are looked up in the
 * background, and their references in turn, {@code readahead.reference_depth} levels down. A
 * Nix client asks for a path's references only once it has the path's narinfo, level by level;
 * these lookups run ahead of it, so that its next levels are answered from memory.
 *
 * <p>Limits, so that it never takes from clients: at most half of
 * {@code cache.mass_query.max_concurrent_races} reference lookups run at once (each also takes
 * a race slot like any lookup, so clients' lookups always find the other half), at most
 * {@link dev.ncro.config.Defaults#READAHEAD_MAX_QUEUED_REFERENCES} wait (more are not queued:
 * the client asks for them itself), and a hash already being looked up or queued is not asked
 * twice. A lookup that fails or finds nothing ends there: nothing is retried, and a failure is
 * not remembered, so the client's own request races again.
 *
 * <p>Threads: {@link #served} is called where a lookup completes; it only queues. Lookups are
 * started, and their answers parsed, on the engine's executor.
 */
final class ReferenceReadAhead {
    private static final Logger LOG = LoggerFactory.getLogger(ReferenceReadAhead.class);

    private final Function<String, CompletableFuture<NarinfoAnswer>> lookup;
    private final RouteStore routes;
    private final Executor executor;
    private final NcroMetrics metrics;
    private final int depth;
    private final int maxRunning;
    private final int maxQueued;

    // guarded by this
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final Set<String> queued = new HashSet<>();
    /** Narinfos whose references were walked lately, and at which level (the nearest counts). */
    private final Cache<String, Integer> walked;
    private int running;

    private record Pending(String hash, int level) {}

    /**
     * @param lookup the engine's narinfo lookup (single-flight, race slots, route memory)
     * @param depth levels of references to look up (0: none)
     * @param maxRunning reference lookups at once
     */
    ReferenceReadAhead(Function<String, CompletableFuture<NarinfoAnswer>> lookup, RouteStore routes, Executor executor,
            NcroMetrics metrics, int depth, int maxRunning, int maxQueued, Duration walkedFor) {
        if (maxRunning < 1) throw new IllegalArgumentException("maxRunning must be at least 1, got " + maxRunning);
        this.lookup = lookup;
        this.routes = routes;
        this.executor = executor;
        this.metrics = metrics;
        this.depth = depth;
        this.maxRunning = maxRunning;
        this.maxQueued = maxQueued;
        this.walked = Caffeine.newBuilder().expireAfterWrite(walkedFor).maximumSize(Defaults.READAHEAD_MAX_WALKED).build();
    }

    /** A narinfo was answered 200 to a client's GET: look up its references. Never throws. */
    void served(String hash, byte[] narinfo) {
        // a narinfo served again (many clients, one closure) was walked already: no task at all
        if (depth <= 0 || !firstWalk(hash, 1)) return;
        try {
            executor.execute(() -> references(hash, narinfo, 1));
        } catch (RuntimeException e) { // the engine is stopping: the client's answer must not fail for it
            LOG.debug("no reference read-ahead for {}: {}", hash, e.toString());
        }
    }

    /**
     * Whether the references of {@code hash} at {@code level} are to be walked: not when they
     * were walked within the last {@code readahead.ttl} at that level or nearer.
     */
    private boolean firstWalk(String hash, int level) {
        Integer known = walked.getIfPresent(hash); // the hot path: a read, no lock
        if (known != null && known <= level) return false;
        boolean[] first = {false};
        walked.asMap().compute(hash, (h, before) -> {
            if (before != null && before <= level) return before;
            first[0] = true;
            return level;
        });
        return first[0];
    }

    /**
     * Queues the unknown references of this narinfo at {@code level}, then starts what may run;
     * references ncro knows are walked through (their own references are the level below), so
     * the look-ahead stays {@code depth} levels ahead of the client.
     */
    private void references(String hash, byte[] body, int level) {
        List<String> refs;
        try {
            refs = Narinfo.parse(body, hash).references();
        } catch (RuntimeException e) {
            LOG.debug("no reference read-ahead for {}: {}", hash, e.toString());
            return;
        }
        for (String ref : refs) {
            String refHash = ref.substring(Narinfo.STORE_DIR.length(), Narinfo.STORE_DIR.length() + 32);
            if (refHash.equals(hash)) continue;
            RouteStore.Lookup route = routes.lookup(refHash);
            if (route instanceof RouteStore.Hit hit) {
                if (level < depth && firstWalk(refHash, level + 1)) references(refHash, hit.route().narinfo(), level + 1);
                continue;
            }
            if (!(route instanceof RouteStore.Unknown)) continue;
            synchronized (this) {
                if (queue.size() >= maxQueued) {
                    metrics.referenceLookups.labelValues("dropped").inc();
                    continue;
                }
                if (!queued.add(refHash)) continue;
                queue.add(new Pending(refHash, level));
            }
        }
        pump();
    }

    /** Starts queued lookups while fewer than {@code maxRunning} run. */
    private void pump() {
        while (true) {
            Pending next;
            synchronized (this) {
                if (running >= maxRunning || queue.isEmpty()) return;
                next = queue.poll();
                running++;
            }
            CompletableFuture<NarinfoAnswer> answer;
            try {
                answer = lookup.apply(next.hash);
            } catch (RuntimeException e) {
                answer = CompletableFuture.failedFuture(e);
            }
            answer.whenCompleteAsync((a, failure) -> {
                synchronized (this) {
                    running--;
                    queued.remove(next.hash);
                }
                boolean found = failure == null && a.found();
                metrics.referenceLookups.labelValues(found ? "found" : failure == null && a.status() == 404 ? "not_found" : "failed").inc();
                if (found && next.level < depth && firstWalk(next.hash, next.level + 1)) {
                    references(next.hash, a.body(), next.level + 1);
                } else {
                    pump();
                }
            }, executor);
        }
    }

    /** Reference lookups queued or running now. */
    synchronized int pending() {
        return queue.size() + running;
    }
}
