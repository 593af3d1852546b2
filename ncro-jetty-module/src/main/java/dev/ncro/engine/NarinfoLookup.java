package dev.ncro.engine;

import dev.ncro.api.NarinfoAnswer;
import dev.ncro.health.UpstreamHealth;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.route.RouteHints;
import dev.ncro.route.RouteStore;
import dev.ncro.trust.Narinfo;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * A narinfo lookup from end to end: remembered routes first (memory, then SQLite); else one
 * race per hash however many clients ask at once (single-flight), at most
 * {@code max_concurrent_races} at a time; the winner remembered before anyone is answered.
 * The race policy — which upstreams are asked in which stage — lives in {@link #stages}.
 *
 * <p>A miss with a {@link RouteHints hint} (a mesh peer named an upstream) first asks that one
 * upstream alone, within half the race deadline, and takes its narinfo only through the same checks as
 * any race winner (parse, filters, that upstream's keys); a not-found, failure or rejection
 * there forgets the hint and runs the normal race in the time left: a wrong hint costs one
 * request, never a 404 or an unverified answer.
 */
final class NarinfoLookup {
    private static final byte[] REMEMBERED_NOT_FOUND =
            "not found in any upstream (remembered)\n".getBytes(StandardCharsets.UTF_8);

    private final Upstreams upstreams;
    private final RouteStore routes;
    private final UpstreamClient client;
    private final NcroMetrics metrics;
    private final Duration deadline;
    private final Duration cooldown;
    private final Scheduler scheduler;
    private final Executor executor;
    /** cache.mass_query.max_concurrent_races: further lookups queue for a slot. */
    private final AsyncLimiter races;
    /** Single-flight: the race in progress for each hash. */
    private final ConcurrentHashMap<String, CompletableFuture<NarinfoAnswer>> inflight = new ConcurrentHashMap<>();
    private final NarinfoRace.Observer observer = new Observer();
    /** Told of every upstream failure: probes it soon (see ProbeScheduler#suspect). */
    private final java.util.function.Consumer<Upstream> suspect;
    /** For how long a Down verdict stands (see UpstreamHealth#confirmedDown). */
    private final Duration probeInterval;
    private final Duration probeTimeout;
    private final RouteHints hints;

    NarinfoLookup(Upstreams upstreams, RouteStore routes, UpstreamClient client, NcroMetrics metrics,
            Duration deadline, Duration cooldown, int maxConcurrentRaces, Scheduler scheduler, Executor executor,
            java.util.function.Consumer<Upstream> suspect, Duration probeInterval, Duration probeTimeout, RouteHints hints) {
        this.hints = hints;
        this.suspect = suspect;
        this.probeInterval = probeInterval;
        this.probeTimeout = probeTimeout;
        this.upstreams = upstreams;
        this.routes = routes;
        this.client = client;
        this.metrics = metrics;
        this.deadline = deadline;
        this.cooldown = cooldown;
        this.scheduler = scheduler;
        this.executor = executor;
        this.races = new AsyncLimiter(maxConcurrentRaces, executor);
    }

    /** Never completes exceptionally: failures are 5xx answers. */
    CompletableFuture<NarinfoAnswer> lookup(String hash) {
        NarinfoAnswer remembered = remembered(hash);
        if (remembered != null) return CompletableFuture.completedFuture(remembered);
        metrics.narinfoCacheMisses.inc();
        CompletableFuture<NarinfoAnswer> mine = new CompletableFuture<>();
        CompletableFuture<NarinfoAnswer> running = inflight.putIfAbsent(hash, mine);
        if (running != null) {
            metrics.singleFlightWaiters.inc();
            return running.copy();
        }
        try {
            // a race that ended between the lookup above and putIfAbsent has remembered its answer
            remembered = remembered(hash);
            if (remembered != null) {
                inflight.remove(hash, mine);
                mine.complete(remembered);
            } else {
                race(hash, mine);
            }
        } catch (RuntimeException e) {
            // whatever failed, this hash must not stay registered with nobody to answer it
            inflight.remove(hash, mine);
            mine.complete(failed("narinfo lookup of " + hash + " could not start: " + NarinfoRace.describe(e)));
        }
        return mine.copy();
    }

    private static NarinfoAnswer failed(String message) {
        return new NarinfoAnswer(502, (message + "\n").getBytes(StandardCharsets.UTF_8), null);
    }

    /** An answer from the route store, or null when the store knows nothing usable. */
    private NarinfoAnswer remembered(String hash) {
        RouteStore.Lookup lookup = routes.lookup(hash);
        if (lookup instanceof RouteStore.Hit hit && upstreams.byBase(hit.route().upstream()) != null) {
            metrics.narinfoCacheHits.inc();
            return new NarinfoAnswer(200, hit.route().narinfo(), hit.route().upstream());
        }
        if (lookup instanceof RouteStore.NotFound) {
            metrics.narinfoNegativeHits.inc();
            return new NarinfoAnswer(404, REMEMBERED_NOT_FOUND, null);
        }
        return null;
    }

    /**
     * Starts a race for {@code hash}: its deadline runs from now; it begins asking once it
     * holds one of the max_concurrent_races slots, and frees it when it has its answer.
     */
    private void race(String hash, CompletableFuture<NarinfoAnswer> mine) {
        Upstream hinted = hints.hint(hash)
                .filter(u -> !upstreams.health(u).confirmedDown(probeInterval, probeTimeout)).orElse(null);
        if (hinted == null) {
            race(hash, mine, deadline);
            return;
        }
        // the peer tells where, this node checks what: one request to the hinted upstream,
        // within half the deadline, so that the race keeps the other half if the hint fails
        // (not the 1 s last-resort leash: a cold start's first request can take that long)
        long start = System.nanoTime();
        Duration leash = deadline.dividedBy(2);
        NarinfoRace check = new NarinfoRace(hash, client, leash, observer, upstreams::lookupGate, executor);
        check.result().whenComplete((answer, failure) -> {
            if (failure == null && answer.status() == 200) {
                metrics.meshHints.labelValues("verified").inc();
                inflight.remove(hash, mine);
                mine.complete(answer);
                return;
            }
            metrics.meshHints.labelValues("fallback").inc();
            hints.refuted(hash, hinted);
            Duration left = deadline.minusNanos(System.nanoTime() - start);
            try {
                race(hash, mine, left.isNegative() || left.isZero() ? Duration.ofMillis(1) : left);
            } catch (RuntimeException e) {
                inflight.remove(hash, mine);
                mine.complete(failed("narinfo lookup of " + hash + " could not start: " + NarinfoRace.describe(e)));
            }
        });
        check.armDeadline(scheduler);
        check.begin(List.of(List.of(hinted)), false, () -> { });
    }

    /** The race proper, with {@code deadline} left of the lookup's. */
    private void race(String hash, CompletableFuture<NarinfoAnswer> mine, Duration deadline) {
        long start = System.nanoTime();
        long joinsAtStart = routes.joins(); // an upstream joining during the race is not asked
        NarinfoRace race = new NarinfoRace(hash, client, deadline, observer, upstreams::lookupGate, executor);
        AtomicBoolean everyoneAsked = new AtomicBoolean();
        race.result().whenComplete((answerOrNull, failure) -> {
            NarinfoAnswer a = failure == null ? answerOrNull : failed("narinfo lookup failed: " + NarinfoRace.describe(failure));
            try {
                metrics.raceWait.observe((System.nanoTime() - start) / 1e9);
                // failures are never remembered, nor a not-found some upstream was not asked about
                if (a.status() == 404 && everyoneAsked.get()) routes.rememberNotFound(hash, joinsAtStart);
            } finally {
                inflight.remove(hash, mine); // only this race's entry, never a newer one
                mine.complete(a);
            }
        });
        race.armDeadline(scheduler);
        races.run(() -> {
            // the slot is given back when the race ends, or when it is down to asking cooling
            // upstreams on a short leash: a frozen one must not let misses crowd out lookups
            AtomicBoolean slotHeld = new AtomicBoolean(true);
            Runnable releaseSlot = () -> {
                if (slotHeld.compareAndSet(true, false)) races.release();
            };
            race.result().whenComplete((a, f) -> releaseSlot.run());
            List<Upstream> lastResort = new ArrayList<>();
            List<List<Upstream>> stages = stages(lastResort);
            everyoneAsked.set(stages.stream().mapToInt(List::size).sum() == upstreams.size());
            race.begin(stages, !lastResort.isEmpty(), releaseSlot);
        });
    }

    /**
     * The race policy. The stages of a race now: each tier's upstreams that are neither Down
     * nor cooling down, fastest first; then, as a last resort, those cooling down after a
     * recent failure and those whose Down state was restored from the database and not yet
     * confirmed by a probe — either may well have the path. Only upstreams confirmed Down in
     * this run are left out (they count as not having it). If that leaves nothing, every
     * upstream is tried rather than failing blind.
     *
     * @param lastResort filled with the last stage's members, if there is such a stage
     */
    private List<List<Upstream>> stages(List<Upstream> lastResort) {
        List<List<Upstream>> now = new ArrayList<>(upstreams.tiers().size() + 1);
        for (List<Upstream> tier : upstreams.tiers()) {
            List<Upstream> members = new ArrayList<>();
            for (Upstream u : upstreams.byLatency(tier)) {
                UpstreamHealth h = upstreams.health(u);
                if (h.raceable()) members.add(u);
                else if (!h.confirmedDown(probeInterval, probeTimeout)) lastResort.add(u);
                else suspect.accept(u); // left out as Down: have it probed soon, should it be back
            }
            if (!members.isEmpty()) now.add(members);
        }
        if (!lastResort.isEmpty()) now.add(lastResort);
        if (now.isEmpty()) {
            lastResort.clear();
            return upstreams.tiers();
        }
        return now;
    }

    /** What the races tell: winners are remembered, answers and failures go to health and metrics. */
    private final class Observer implements NarinfoRace.Observer {
        @Override
        public byte[] won(Upstream upstream, Narinfo narinfo, byte[] body, double latencyMs) {
            String url = narinfo.url();
            String pinned = url;
            byte[] served = body;
            Upstream home = upstream; // where the NAR lives
            if (url.contains("://")) {
                // an absolute NAR URL under a configured upstream becomes relative, so the NAR
                // comes through ncro from that upstream (URL is not signed: signatures hold);
                // any other absolute URL is served as is and never fetched or pinned by ncro
                Upstream owner = upstreams.owning(url);
                if (owner != null) {
                    pinned = url.substring(owner.base().toString().length() + 1);
                    served = Narinfo.withUrl(body, pinned);
                    home = owner;
                } else {
                    pinned = null;
                }
            }
            routes.remember(narinfo.hashPart(), home.base().toString(), served, pinned, latencyMs);
            metrics.raceWins.labelValues(upstream.name()).inc();
            // the mesh announces where this node found (and verified) the narinfo
            double ema = upstreams.health(upstream).emaMs();
            hints.learned(narinfo.hashPart(), upstream, Double.isNaN(ema) ? latencyMs : ema);
            return served;
        }

        @Override
        public void answered(Upstream upstream, int status, double latencyMs) {
            UpstreamHealth h = upstreams.health(upstream);
            h.sample(latencyMs);
            // an answer means it is back; a 5xx means it is still sick
            if (status >= 500) {
                h.cooldown(cooldown);
                suspect.accept(upstream);
            } else {
                h.answered();
            }
            metrics.upstreamLatency.labelValues(upstream.name()).observe(latencyMs / 1000);
        }

        @Override
        public void failed(Upstream upstream, Exception failure) {
            upstreams.health(upstream).cooldown(cooldown);
            suspect.accept(upstream);
        }

        @Override
        public String distrust(Upstream upstream, Narinfo narinfo) {
            return upstreams.distrust(upstream, narinfo);
        }

        @Override
        public String filtered(Upstream upstream, Narinfo narinfo) {
            return upstreams.filtered(upstream, narinfo);
        }

        @Override
        public boolean hasLogin(Upstream upstream) {
            return upstreams.hasLogin(upstream);
        }

        @Override
        public Duration lastResortTimeout(Upstream upstream) {
            return upstreams.lastResortTimeout(upstream);
        }
    }
}
