package dev.ncro.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ncro.api.NarHandler;
import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.metrics.NcroMetrics;
import dev.ncro.testing.FakeClock;
import dev.ncro.upstream.Upstream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The hand-over of a head start's stream, with the stream scripted: the test delivers the
 * upstream's events itself, before and after the download takes the stream over, on a direct
 * executor.
 */
class HeadStartsTest {
    private static final String TARGET = "nar/1abc.nar.xz";
    private final FakeClock clock = new FakeClock();
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler();
    private final NcroMetrics metrics = new NcroMetrics();
    private final Upstream upstream = new Upstream(URI.create("http://127.0.0.1:1/"), 10, 0);
    private final List<Scripted> opened = new ArrayList<>();
    private HeadStarts headStarts;
    private ReadAheadGuard guard;

    /** A stream whose events the test sends; it records what its user did with it. */
    private final class Scripted implements NarStream {
        final NarHandler handler;
        final String target;
        boolean started;
        boolean cancelled;
        int released;

        Scripted(NarRequest request, NarHandler handler) {
            this.target = request == null ? null : request.target();
            this.handler = handler;
        }

        @Override
        public void start() {
            started = true;
        }

        @Override
        public void release(int bytes) {
            released += bytes;
        }

        @Override
        public void cancel() {
            cancelled = true;
        }
    }

    /** What the client's handler was told, in order. */
    private static final class Client implements NarHandler {
        final List<String> events = new ArrayList<>();
        int bytes;

        @Override
        public void onHead(int status, List<Map.Entry<String, String>> headers) {
            events.add("head " + status);
        }

        @Override
        public void onData(ByteBuffer data) {
            events.add("data " + data.remaining());
            bytes += data.remaining();
        }

        @Override
        public void onComplete() {
            events.add("complete");
        }

        @Override
        public void onFailure(int status, String reason) {
            events.add("failure " + status);
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        scheduler.start();
        guard = new ReadAheadGuard(clock, Duration.ofMinutes(5), 4 << 20);
        headStarts = new HeadStarts(true, Duration.ofSeconds(30), Duration.ofSeconds(300), guard, u -> new AsyncLimiter(64, Runnable::run), metrics,
                clock, scheduler, Runnable::run);
    }

    @AfterEach
    void tearDown() throws Exception {
        scheduler.stop();
    }

    private Scripted open(NarRequest request, NarHandler handler) {
        Scripted s = new Scripted(request, handler);
        opened.add(s);
        return s;
    }

    private Scripted started() {
        headStarts.downloading("nar/other.nar.xz"); // a client downloads: head starts open at once
        headStarts.consider(TARGET, upstream, this::open);
        assertEquals(1, opened.size());
        Scripted s = opened.get(0);
        assertTrue(s.started);
        return s;
    }

    private NarStream claim(Client client) {
        return headStarts.claim(new NarRequest(TARGET, false, Map.of()), client, () -> open(null, client));
    }

    @Test
    void eventsBeforeTheTakeOver_reachTheClientInOrder_thenTheLiveOnes() {
        Scripted s = started();
        s.handler.onHead(200, List.of());
        s.handler.onData(ByteBuffer.allocate(100));
        s.handler.onData(ByteBuffer.allocate(50));

        Client client = new Client();
        NarStream taken = claim(client);
        assertNotNull(taken);
        assertEquals(List.of(), client.events, "nothing before start");
        taken.start();
        s.handler.onData(ByteBuffer.allocate(25));
        s.handler.onComplete();
        taken.release(175);

        assertEquals(List.of("head 200", "data 100", "data 50", "data 25", "complete"), client.events);
        assertEquals(175, s.released, "the client's releases reach the stream");
        assertEquals(1, opened.size(), "no second stream");
        assertEquals(1.0, metrics.headStarts.labelValues("taken").get());
    }

    @Test
    void failureAfterTheTakeOver_beforeAnyHead_isNotPassedOn_aFreshStreamServes() {
        Scripted s = started();
        Client client = new Client();
        NarStream taken = claim(client);
        assertNotNull(taken);
        taken.start();

        s.handler.onFailure(502, "every upstream failed");

        assertEquals(2, opened.size(), "a fresh normal stream");
        Scripted fresh = opened.get(1);
        assertTrue(fresh.started);
        assertTrue(s.cancelled);
        assertEquals(List.of(), client.events, "the head start's failure never reached the client");
        fresh.handler.onHead(200, List.of());
        fresh.handler.onData(ByteBuffer.allocate(10));
        taken.release(10);
        assertEquals(10, fresh.released, "releases go to the stream that delivered");
        assertEquals(List.of("head 200", "data 10"), client.events);
    }

    @Test
    void failureBeforeTheTakeOver_leavesTheDownloadToTheNormalStream_andGivesEveryHeldByteBack() {
        Scripted s = started();
        s.handler.onHead(200, List.of());
        s.handler.onData(ByteBuffer.allocate(300));
        s.handler.onFailure(502, "reset mid-body");

        assertNull(claim(new Client()));
        assertTrue(s.cancelled);
        assertEquals(300, s.released);
        assertEquals(1.0, metrics.headStarts.labelValues("failed").get());
    }

    @Test
    void expired_isCancelled_andGivesEveryHeldByteBack_andALateByteToo() {
        Scripted s = started();
        s.handler.onHead(200, List.of());
        s.handler.onData(ByteBuffer.allocate(64));
        clock.advance(Duration.ofSeconds(10));

        assertNull(claim(new Client()));
        assertTrue(s.cancelled);
        assertEquals(64, s.released);
        s.handler.onData(ByteBuffer.allocate(8)); // already on its way when the cancel came
        assertEquals(72, s.released);
        assertEquals(1.0, metrics.headStarts.labelValues("expired").get());
    }

    @Test
    void aNarinfoServedAgainWithinASecond_startsNoSecondHeadStart_andOneLaterDoesOnceTaken() {
        started();
        headStarts.consider(TARGET, upstream, this::open);
        assertEquals(1, opened.size());

        Client client = new Client();
        claim(client).start();
        clock.advance(Duration.ofSeconds(1));
        headStarts.consider(TARGET, upstream, this::open);
        assertEquals(2, opened.size());
    }

    @Test
    void beforeAnyDownload_nothingOpens_theFirstDownloadStartsThem() {
        headStarts.consider(TARGET, upstream, this::open);
        assertEquals(0, opened.size(), "a client that only queries opens no stream");

        headStarts.downloading("nar/leaf.nar.xz");
        assertEquals(1, opened.size());
        assertEquals(TARGET, opened.get(0).target);
        clock.advance(Duration.ofSeconds(10)); // the last download longer ago than the TTL
        headStarts.consider("nar/later.nar.xz", upstream, this::open);
        assertEquals(1, opened.size());
    }

    @Test
    void busyUpstream_getsNoHeadStart() {
        AsyncLimiter busy = new AsyncLimiter(4, Runnable::run);
        assertTrue(busy.tryAcquireBelow(4));
        assertTrue(busy.tryAcquireBelow(4));
        HeadStarts h = new HeadStarts(true, Duration.ofSeconds(30), Duration.ofSeconds(300), new ReadAheadGuard(clock, Duration.ofMinutes(5), 4 << 20),
                u -> busy, metrics, clock, scheduler, Runnable::run);
        h.downloading("nar/other.nar.xz");
        h.consider(TARGET, upstream, this::open);
        assertEquals(0, opened.size(), "half of the upstream's stream slots in use");
    }

    @Test
    void heldBackByThePausedGuard_startsWhenAClientDownloads_newestFirst_withinTheTtl() {
        headStarts.downloading("nar/earlier.nar.xz");
        guard.fetched(5 << 20); // nothing of it served: paused
        headStarts.consider("nar/old.nar.xz", upstream, this::open);
        clock.advance(Duration.ofSeconds(10)); // past the head starts' limit
        headStarts.consider("nar/a.nar.xz", upstream, this::open);
        headStarts.consider("nar/b.nar.xz", upstream, this::open);
        headStarts.consider(TARGET, upstream, this::open);
        assertEquals(0, opened.size(), "the guard holds them back");

        headStarts.downloading(TARGET); // the client streams this one itself

        List<String> targets = new ArrayList<>();
        for (Scripted s : opened) targets.add(s.target);
        assertEquals(List.of("nar/b.nar.xz", "nar/a.nar.xz"), targets, "newest first; the one past the limit forgotten");
        assertEquals(2, headStarts.waitingCount());
    }

    @Test
    void downloadGoneBeforeItsStart_getsNothing_andNoFreshStreamStartsForIt() {
        Scripted s = started();
        s.handler.onHead(200, List.of());
        s.handler.onData(ByteBuffer.allocate(40));
        Client client = new Client();
        NarStream taken = claim(client);
        taken.cancel(); // the client left before start()
        taken.start();
        s.handler.onFailure(502, "reset");

        assertEquals(List.of(), client.events);
        assertTrue(s.cancelled);
        assertEquals(40, s.released, "the queued bytes given back");
        assertEquals(1, opened.size(), "no fresh stream for a client that left");
    }

    @Test
    void upstreamWithAShortStallLimit_getsHeadStartsThatEndWithinHalfOfIt() {
        Upstream quick = new Upstream(URI.create("http://127.0.0.1:2/"), 10, 1, Duration.ofSeconds(1), Duration.ofSeconds(4));
        headStarts.downloading("nar/other.nar.xz");
        headStarts.consider(TARGET, quick, this::open);
        assertEquals(1, opened.size());
        clock.advance(Duration.ofSeconds(2)); // half of its 4 s stall limit

        assertNull(claim(new Client()));
        assertTrue(opened.get(0).cancelled);
        assertEquals(1.0, metrics.headStarts.labelValues("expired").get());
    }
}
