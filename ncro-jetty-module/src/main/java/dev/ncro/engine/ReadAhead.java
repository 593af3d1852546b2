package dev.ncro.engine;

import dev.ncro.api.NarRequest;
import dev.ncro.config.Defaults;
import dev.ncro.config.NcroConfig;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.upstream.StreamingConsumer;
import dev.ncro.upstream.Upstream;
import dev.ncro.upstream.UpstreamClient;
import dev.ncro.upstream.UpstreamStream;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.apache.hc.core5.http.EntityDetails;
import org.apache.hc.core5.http.Header;
import org.apache.hc.core5.http.HttpResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NAR read-ahead: NARs fetched into memory right after their narinfo was served, each kept
 * for one download.
 *
 * <p>Rules, all of which keep ncro from ever being worse than going without it:
 * <ul>
 *   <li>only a NAR whose FileSize (NarSize when uncompressed) is known and at most
 *       {@code readahead.max_nar_size}, fetched from the upstream whose narinfo named it when
 *       that upstream is also the first the normal stream would try;</li>
 *   <li>NARs not yet claimed hold at most {@code readahead.memory} bytes (their FileSize,
 *       reserved when the fetch starts); the oldest are dropped first, and each is dropped
 *       {@code readahead.ttl} after it started;</li>
 *   <li>an entry serves one download: {@link #claim} takes it out, so the next download of
 *       the same NAR goes to an upstream;</li>
 *   <li>a fetch takes one of its upstream's stream slots, and only while fewer than half of
 *       them are in use and no client waits for one: read-ahead yields to client streams;</li>
 *   <li>the bytes are served only if they are exactly FileSize bytes and, when the narinfo
 *       has a FileHash, hash to it; any failure leaves the download to the normal stream;</li>
 *   <li>{@link ReadAheadGuard} pauses read-ahead while too little of it was used.</li>
 * </ul>
 *
 * <p>Threads: {@link #consider} runs where the narinfo answer completes; a fetch's callbacks
 * run on HttpComponents' I/O threads (copying into the entry's array and hashing it as it
 * arrives: at most a few MiB); the map is guarded by this object's lock, and streams are
 * cancelled after it is released.
 */
final class ReadAhead {
    private static final Logger LOG = LoggerFactory.getLogger(ReadAhead.class);

    /** Request headers that ask for something other than the whole file: such a request takes the normal stream. */
    private static final Set<String> NOT_PLAIN = Set.of("range", "if-range", "if-none-match", "if-modified-since");

    private final NcroConfig.ReadAhead config;
    private final ReadAheadGuard guard;
    private final UpstreamClient client;
    private final Function<Upstream, AsyncLimiter> streamGates;
    private final NcroMetrics metrics;
    private final InstantSource clock;
    private final Duration stallTimeout;
    /** Told of an upstream that failed a read-ahead, so the download's own stream tries it last. */
    private final java.util.function.BiConsumer<String, Upstream> failedOn;
    /** Told of an answer that contradicts the narinfo (a length other than FileSize): the others first for that NAR. */
    private final java.util.function.BiConsumer<String, Upstream> contradictedOn;
    /** Whether ncro logs in to an upstream: its 403 is then a refused login, not a not-found. */
    private final java.util.function.Predicate<Upstream> hasLogin;
    /** Unclaimed entries by NAR target, oldest first. */
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();
    /** Candidates held back by the guard or busy stream slots, by NAR target, oldest first; see {@link #downloading}. */
    private final LinkedHashMap<String, Candidate> parked = new LinkedHashMap<>();
    /**
     * NARs a client downloaded with no read-ahead entry, and when (in {@link #order}): a held-back
     * candidate claimed since is not started.
     */
    private final LinkedHashMap<String, Long> streamedByClient = new LinkedHashMap<>();
    /** Orders candidates and claims: which came first, whatever the clock says. */
    private final java.util.concurrent.atomic.AtomicLong order = new java.util.concurrent.atomic.AtomicLong();
    private long reserved;
    /**
     * When each target was last considered, read without the lock: a narinfo served again and
     * again (many clients of one closure, a monitoring probe) is not considered again within
     * {@link #SETTLED_MS} — its read-ahead is in memory or in flight, held back, or just
     * failed (a NAR the upstream lacks is then asked for once a second at most, not on every
     * hit) — so the hot narinfo path takes no lock here. Forgotten as soon as a client
     * downloads or claims anything (which frees memory and stream slots and can make the
     * guard admit again), and whenever it grows past the parked limit.
     */
    private final Stamps settled;
    static final long SETTLED_MS = 1000;
    /** NARs a read-ahead found missing on their home upstream, and when: not read ahead again for a while. */
    private final Stamps lacking;

    ReadAhead(NcroConfig.ReadAhead config, ReadAheadGuard guard, UpstreamClient client,
            Function<Upstream, AsyncLimiter> streamGates, NcroMetrics metrics, InstantSource clock, Duration stallTimeout,
            java.util.function.BiConsumer<String, Upstream> failedOn, java.util.function.BiConsumer<String, Upstream> contradictedOn,
            java.util.function.Predicate<Upstream> hasLogin) {
        this.failedOn = failedOn;
        this.contradictedOn = contradictedOn;
        this.hasLogin = hasLogin;
        this.config = config;
        this.guard = guard;
        this.client = client;
        this.streamGates = streamGates;
        this.metrics = metrics;
        this.clock = clock;
        this.stallTimeout = stallTimeout;
        this.settled = new Stamps(clock);
        this.lacking = new Stamps(clock);
    }

    /** Whether {@code target} was considered less than {@link #SETTLED_MS} ago and nothing downloaded since. */
    boolean settledRecently(String target) {
        return settled.within(target, SETTLED_MS);
    }

    private void settle(String target) {
        settled.stamp(target);
    }

    boolean enabled() {
        return config.enabled();
    }

    ReadAheadGuard guard() {
        return guard;
    }

    /** Whether a NAR request asks for the whole file with no conditions: only those are answered from read-ahead. */
    static boolean plain(NarRequest request) {
        if (request.head()) return false;
        for (String name : request.headers().keySet()) {
            if (NOT_PLAIN.contains(name.toLowerCase(Locale.ROOT))) return false;
        }
        return true;
    }

    /**
     * A narinfo naming {@code target} was just served to a GET: read the NAR ahead if the
     * rules allow.
     *
     * @param fileSize the file's size from the narinfo, or -1 when unknown
     * @param sha256 the FileHash's digest, or null when the narinfo has none
     */
    void consider(String target, Upstream upstream, long fileSize, byte[] sha256) {
        if (!config.enabled() || fileSize < 0 || fileSize > config.maxNarSize()) return;
        if (lacking.within(target, Defaults.NAR_FAILURE_MEMORY.toMillis())) {
            settle(target);
            return;
        }
        Candidate candidate = new Candidate(target, upstream, fileSize, sha256, clock.millis(), order.incrementAndGet());
        boolean exists;
        synchronized (this) {
            exists = entries.containsKey(target);
        }
        if (!exists) {
            if (!guard.admit()) {
                park(candidate);
            } else if (!start(candidate)) {
                park(candidate); // no stream slot: a download, or a second, frees one
            }
        }
        settle(target);
    }

    /**
     * A client asked for a whole NAR: it downloads, so the candidates the guard (or busy stream
     * slots) held back since {@code readahead.ttl} are read ahead now, the newest first (a Nix
     * client downloads a closure's deepest paths first, and asked for their narinfos last).
     * Such a release passes the guard: it answers the guard's question — is anyone downloading?
     * — for the narinfos served just before. Those that still find no stream slot stay parked.
     */
    void downloading(String target) {
        if (!config.enabled()) return;
        // settled was cleared by the claim() this download made just before
        List<Candidate> released;
        synchronized (this) {
            parked.remove(target);
            if (parked.isEmpty()) return;
            expireParked();
            released = new ArrayList<>(parked.values());
            parked.clear();
        }
        java.util.Collections.reverse(released);
        List<Candidate> left = new ArrayList<>();
        for (Candidate c : released) {
            boolean fits;
            synchronized (this) {
                // released ones never evict each other: those that do not fit wait, parked
                fits = reserved + c.fileSize <= config.memory();
            }
            if (!fits || !start(c)) left.add(c);
        }
        if (left.isEmpty()) return;
        synchronized (this) {
            for (int i = left.size() - 1; i >= 0; i--) {
                Candidate c = left.get(i);
                if (!claimedSince(c)) parked.putIfAbsent(c.target, c);
            }
        }
    }

    /** Whether a client's download claimed {@code c}'s NAR since {@code c} was held back; under the lock. */
    private boolean claimedSince(Candidate c) {
        Long at = streamedByClient.get(c.target);
        return at != null && at > c.seq;
    }

    /** Keeps a candidate for a later {@link #downloading}; the oldest go past {@link Defaults#READAHEAD_MAX_PARKED}. */
    private void park(Candidate candidate) {
        synchronized (this) {
            if (entries.containsKey(candidate.target)) return;
            expireParked();
            parked.remove(candidate.target);
            parked.put(candidate.target, candidate);
            Iterator<Candidate> oldest = parked.values().iterator();
            while (parked.size() > Defaults.READAHEAD_MAX_PARKED && oldest.hasNext()) {
                oldest.next();
                oldest.remove();
            }
        }
    }

    /** Forgets parked candidates older than the TTL: their clients are long past downloading them. Under the lock. */
    private void expireParked() {
        long now = clock.millis();
        long ttl = config.ttl().toMillis();
        Iterator<Candidate> it = parked.values().iterator();
        while (it.hasNext() && now - it.next().parkedAt >= ttl) it.remove();
    }

    /** Candidates held back, for tests and the status of the guard. */
    synchronized int parkedCount() {
        expireParked();
        return parked.size();
    }

    /**
     * Starts reading {@code c} ahead when one of its upstream's stream slots is free below half
     * of them; false when none is (the caller may park it).
     */
    private boolean start(Candidate c) {
        String target = c.target;
        Upstream upstream = c.upstream;
        long fileSize = c.fileSize;
        byte[] sha256 = c.sha256;
        List<Entry> dropped = new ArrayList<>();
        Entry entry = null;
        AsyncLimiter gate = streamGates.apply(upstream);
        try {
            synchronized (this) {
                expire(dropped);
                if (entries.containsKey(target)) return true;
            }
            if (!gate.tryAcquireBelow(gate.permits() / 2)) return false;
            synchronized (this) {
                // a client that claimed it after it was held back streams it already
                if (entries.containsKey(target) || claimedSince(c)) {
                    gate.release();
                    return true;
                }
                // the oldest go first until the new one fits
                Iterator<Entry> oldest = entries.values().iterator();
                while (reserved + fileSize > config.memory() && oldest.hasNext()) {
                    Entry e = oldest.next();
                    oldest.remove();
                    reserved -= e.size;
                    dropped.add(e);
                }
                entry = new Entry(target, upstream, (int) fileSize, sha256, gate, clock.millis());
                entries.put(target, entry);
                reserved += fileSize;
            }
        } finally {
            dropped.forEach(e -> e.drop("dropped for newer read-ahead or expired"));
        }
        guard.fetched(fileSize);
        entry.start();
        return true;
    }

    /** A NAR that may be read ahead: what its narinfo said, and when. */
    private record Candidate(String target, Upstream upstream, long fileSize, byte[] sha256, long parkedAt, long seq) {}

    /** Takes the read-ahead entry for {@code target} out, for its one download; null if there is none. */
    Entry claim(String target) {
        settled.clear();
        List<Entry> dropped = new ArrayList<>();
        Entry entry;
        synchronized (this) {
            expire(dropped);
            entry = entries.remove(target);
            if (entry != null) reserved -= entry.size;
            parked.remove(target); // the client streams it now: a release must not fetch it again
            if (entry == null) {
                // nor one that had taken it out of `parked` just before (see downloading)
                streamedByClient.remove(target);
                streamedByClient.put(target, order.incrementAndGet());
                Iterator<Long> oldest = streamedByClient.values().iterator();
                while (streamedByClient.size() > Defaults.READAHEAD_MAX_PARKED && oldest.hasNext()) {
                    oldest.next();
                    oldest.remove();
                }
            }
        }
        dropped.forEach(e -> e.drop("expired unclaimed"));
        return entry;
    }

    /** Bytes reserved by entries not yet claimed (the metric {@code ncro_readahead_bytes}). */
    long bytes() {
        List<Entry> dropped = new ArrayList<>();
        long now;
        synchronized (this) {
            expire(dropped);
            now = reserved;
        }
        dropped.forEach(e -> e.drop("expired unclaimed"));
        return now;
    }

    /** Moves the expired entries out of the map into {@code dropped}; under the lock. */
    private void expire(List<Entry> dropped) {
        long now = clock.millis();
        long ttl = config.ttl().toMillis();
        Iterator<Entry> it = entries.values().iterator();
        while (it.hasNext()) {
            Entry e = it.next();
            if (now - e.startedAt < ttl) break; // oldest first: the rest are younger
            it.remove();
            reserved -= e.size;
            dropped.add(e);
        }
    }

    /** Drops every entry (the engine stops). */
    void clear() {
        List<Entry> dropped;
        settled.clear();
        synchronized (this) {
            parked.clear();
            streamedByClient.clear();
            dropped = new ArrayList<>(entries.values());
            entries.clear();
            reserved = 0;
        }
        dropped.forEach(e -> e.drop("stopping"));
    }

    /** One NAR read ahead: its fetch, its bytes, and whether they were verified. */
    final class Entry implements StreamingConsumer.Sink {
        final String target;
        final Upstream upstream;
        final int size;
        private final byte[] sha256;
        private final AsyncLimiter gate;
        final long startedAt;
        /** When the fetch started, for the first-byte deadline (the scheduler's time, not the clock's). */
        final long startedNanos = System.nanoTime();
        /** The upstream answered 200 with an acceptable head. */
        volatile boolean headed;
        /** Completes once: true when every byte arrived and was verified, false on any failure or drop. */
        final CompletableFuture<Boolean> done = new CompletableFuture<>();
        private final MessageDigest digest;
        private volatile List<Map.Entry<String, String>> headers = List.of();
        // written by the fetch's I/O thread before done completes, read after it
        private byte[] bytes;
        private int received;
        // guarded by this entry
        private UpstreamStream stream;
        private int unreleased;
        private boolean gateHeld = true;
        private boolean ended;

        Entry(String target, Upstream upstream, int size, byte[] sha256, AsyncLimiter gate, long startedAt) {
            this.target = target;
            this.upstream = upstream;
            this.size = size;
            this.sha256 = sha256;
            this.gate = gate;
            this.startedAt = startedAt;
            MessageDigest d = null;
            if (sha256 != null) {
                try {
                    d = MessageDigest.getInstance("SHA-256");
                } catch (NoSuchAlgorithmException e) {
                    throw new IllegalStateException(e);
                }
            }
            this.digest = d;
        }

        private void start() {
            UpstreamStream s;
            try {
                s = client.stream(upstream, upstream.resolve(target), false, Map.of(), stallTimeout, this);
            } catch (RuntimeException e) {
                fail("could not start: " + NarinfoRace.describe(e));
                return;
            }
            int grant;
            boolean over;
            synchronized (this) {
                stream = s;
                grant = unreleased;
                unreleased = 0;
                over = ended;
            }
            if (over) {
                if (!Boolean.TRUE.equals(done.getNow(null))) s.cancel();
            } else if (grant > 0) {
                s.release(grant);
            }
        }

        /** Status and the headers a streamed answer would pass on; valid once {@link #done} is true. */
        List<Map.Entry<String, String>> headers() {
            return headers;
        }

        /** The verified bytes; only once {@link #done} completed with true, and only for the one claimer. */
        byte[] bytes() {
            return bytes;
        }

        @Override
        public boolean onResponse(HttpResponse response, EntityDetails entity) {
            int status = response.getCode();
            if (NotFound.means(status, hasLogin.test(upstream))) {
                // the narinfo names a NAR this upstream lacks: nobody is served these bytes, but
                // the upstream is not sick (a failure would send every NAR elsewhere first)
                end("HTTP " + status, false, false);
                return false;
            }
            if (status != 200) {
                fail("HTTP " + status);
                return false;
            }
            // answers read-ahead cannot check against the narinfo, which the normal stream passes
            // on as they are: not an upstream failure (that would send every NAR elsewhere first)
            if (response.containsHeader("Content-Encoding")) {
                unusable("the answer has a Content-Encoding");
                return false;
            }
            if (entity != null && entity.getContentLength() >= 0 && entity.getContentLength() != size) {
                // not the file the narinfo describes, maybe: the download asks the others first
                // (this one stays a last resort), without cooling the upstream down for other NARs
                contradictedOn.accept(target, upstream);
                unusable("Content-Length " + entity.getContentLength() + " is not the narinfo's FileSize " + size);
                return false;
            }
            List<Map.Entry<String, String>> passed = new ArrayList<>();
            for (Header h : response.getHeaders()) {
                if (NarExchange.PASSED_RESPONSE_HEADERS.contains(h.getName().toLowerCase(Locale.ROOT))) {
                    passed.add(new AbstractMap.SimpleImmutableEntry<>(h.getName(), h.getValue()));
                }
            }
            if (passed.stream().noneMatch(h -> h.getKey().equalsIgnoreCase("Content-Length"))) {
                passed.add(new AbstractMap.SimpleImmutableEntry<>("Content-Length", Integer.toString(size)));
            }
            headers = List.copyOf(passed);
            bytes = new byte[size];
            headed = true;
            return true;
        }

        @Override
        public void onData(ByteBuffer data) {
            int n = data.remaining();
            if (done.isDone()) return;
            if (received + n > size) {
                fail("more than the narinfo's FileSize of " + size + " bytes");
                return;
            }
            data.get(bytes, received, n);
            if (digest != null) digest.update(bytes, received, n);
            received += n;
            metrics.readAheadFetchedBytes.inc(n);
            UpstreamStream s;
            synchronized (this) {
                s = stream;
                if (s == null) unreleased += n;
            }
            if (s != null) s.release(n);
        }

        @Override
        public void onEnd() {
            if (done.isDone()) return;
            if (received != size) {
                fail("body ended after " + received + " of " + size + " bytes");
            } else if (digest != null && !Arrays.equals(digest.digest(), sha256)) {
                fail("the bytes do not match the narinfo's FileHash");
            } else {
                finish();
                done.complete(true);
            }
        }

        @Override
        public void onError(Exception failure) {
            fail(NarinfoRace.describe(failure));
        }

        /** The fetch failed: nobody is served these bytes; a claimer falls back to the normal stream. */
        private void fail(String reason) {
            end(reason, true, true);
        }

        /** An answer read-ahead cannot use, from a healthy upstream: dropped as a failure is, nobody blamed. */
        private void unusable(String reason) {
            end(reason, true, false);
        }

        /**
         * Nobody is served these bytes; a claimer falls back to the normal stream. A failure
         * ({@code failed}) stops the fetch; one the upstream is to {@code blame} for is remembered
         * as a failed stream is (the download goes to the others first, the upstream cools down);
         * a not-found is not a failure and only counted.
         */
        private void end(String reason, boolean failed, boolean blame) {
            if (done.isDone()) return; // ended before (dropped, or a late error after a not-found)
            if (failed && blame) {
                LOG.info("NAR read-ahead of {} from {} failed: {}; its download takes the normal stream", target, upstream, reason);
                failedOn.accept(target, upstream);
            } else if (failed) {
                LOG.debug("NAR read-ahead of {} from {} not used: {}; its download takes the normal stream", target, upstream, reason);
                lacking.stamp(target); // the same answer next time: not read ahead again for a while
            } else {
                LOG.debug("NAR read-ahead of {}: {} answered {}; its download takes the normal stream", target, upstream, reason);
            }
            synchronized (ReadAhead.this) {
                if (entries.get(target) == this) {
                    entries.remove(target);
                    reserved -= size;
                }
            }
            if (failed) {
                abandon();
            } else {
                // the not-found's body is discarded to its end: the connection stays pooled
                if (done.complete(false)) finish();
                lacking.stamp(target);
                metrics.readAheadNotFound.inc(); // last: a test waiting on it sees the entry gone
            }
        }

        /** Dropped unclaimed (expired, evicted, stopping): its bytes were read for nothing. */
        void drop(String reason) {
            LOG.debug("NAR read-ahead of {} dropped: {}", target, reason);
            abandon();
        }

        /** Nobody will be served these bytes: the fetch stops and what it read counts as wasted. */
        void abandon() {
            boolean wasComplete = done.isDone() && done.getNow(false);
            if (!done.complete(false) && !wasComplete) return; // failed before: counted then
            metrics.readAheadWastedBytes.inc(wasComplete ? size : received);
            if (wasComplete) bytes = null; // else the I/O thread may still be writing: the entry goes with its last reference
            UpstreamStream s = finish();
            if (s != null && !wasComplete) s.cancel();
        }

        /** The fetch is over: its stream slot is given back once; the stream, if any, for cancelling. */
        private UpstreamStream finish() {
            boolean release;
            UpstreamStream s;
            synchronized (this) {
                ended = true;
                release = gateHeld;
                gateHeld = false;
                s = stream;
            }
            if (release) gate.release();
            return s;
        }

        /** The one client's download got the bytes. */
        void served() {
            guard.served(size);
            bytes = null;
        }
    }
}
