package dev.ncro.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.hc.core5.http.HttpResponse;
import org.apache.hc.core5.http.impl.BasicEntityDetails;
import org.apache.hc.core5.http.message.BasicHttpResponse;
import org.apache.hc.core5.http.nio.CapacityChannel;
import org.junit.jupiter.api.Test;

/**
 * The flow-control arithmetic, driven the way HttpComponents drives it: a window that starts
 * at the initial size, shrinks by what is delivered, and only grows by what the consumer grants.
 */
class StreamingConsumerTest {
    private static final int INITIAL = 64 * 1024;
    private static final int WINDOW = 128 * 1024;

    /** HttpComponents' side: delivers only while its window is open, like the reactor. */
    private static final class Reactor implements CapacityChannel {
        long window = INITIAL;
        long granted;

        @Override
        public void update(int increment) {
            window += increment;
            granted += increment;
        }
    }

    private static class Sink implements StreamingConsumer.Sink {
        final List<ByteBuffer> received = new ArrayList<>();
        boolean ended;

        @Override
        public boolean onResponse(HttpResponse response, org.apache.hc.core5.http.EntityDetails entity) {
            return response.getCode() == 200;
        }

        @Override
        public void onData(ByteBuffer data) {
            received.add(data);
        }

        @Override
        public void onEnd() {
            ended = true;
        }

        @Override
        public void onError(Exception failure) {
            throw new AssertionError(failure);
        }
    }

    /** A consumer whose response head (with a body of unknown length) has arrived. */
    private static StreamingConsumer started(Sink sink, int status) {
        StreamingConsumer consumer = new StreamingConsumer(sink, INITIAL, WINDOW);
        consumer.consumeResponse(new BasicHttpResponse(status), new BasicEntityDetails(-1, null), null, null);
        return consumer;
    }

    /** Delivers up to {@code bytes} in 8 KiB reads while the window is open; returns bytes delivered. */
    private static long pump(StreamingConsumer consumer, Reactor reactor, long bytes) throws Exception {
        long delivered = 0;
        while (delivered < bytes && reactor.window > 0) {
            int n = 8192;
            consumer.consume(ByteBuffer.allocate(n));
            reactor.window -= n;
            delivered += n;
            if (reactor.window <= 0) consumer.updateCapacity(reactor);
        }
        return delivered;
    }

    @Test
    void aClientThatNeverWrites_stopsTheUpstreamAtTheWindow() throws Exception {
        Sink sink = new Sink();
        StreamingConsumer consumer = started(sink, 200);
        Reactor reactor = new Reactor();

        long delivered = pump(consumer, reactor, 1L << 30);

        assertEquals(WINDOW, delivered, "reading stops once a window's worth is unreleased");
        assertEquals(WINDOW, consumer.outstanding());
        assertTrue(reactor.window <= 0);
    }

    @Test
    void releasingBytes_reopensTheWindow_andBufferingStaysBounded() throws Exception {
        Sink sink = new Sink();
        StreamingConsumer consumer = started(sink, 200);
        Reactor reactor = new Reactor();

        long total = 0;
        long maxOutstanding = 0;
        for (int round = 0; round < 1000; round++) {
            total += pump(consumer, reactor, 1L << 30);
            maxOutstanding = Math.max(maxOutstanding, consumer.outstanding());
            // the client writes half of what is queued
            int write = (int) (consumer.outstanding() / 2);
            consumer.release(write);
        }

        assertTrue(total > 50L * WINDOW, "data keeps flowing as the client writes: " + total);
        assertTrue(maxOutstanding <= WINDOW, "never more than a window unreleased: " + maxOutstanding);
    }

    @Test
    void aDiscardedBody_keepsTheWindowOpenByItself() throws Exception {
        Sink sink = new Sink();
        StreamingConsumer consumer = started(sink, 404);
        Reactor reactor = new Reactor();

        long delivered = pump(consumer, reactor, 4L * WINDOW);

        assertEquals(4L * WINDOW, delivered);
        assertEquals(0, consumer.outstanding());
        assertTrue(sink.received.isEmpty());
    }

    @Test
    void cancelDuringDelivery_failsTheExchangeFromConsume() throws Exception {
        StreamingConsumer[] self = new StreamingConsumer[1];
        Sink cancellingSink = new Sink() {
            @Override
            public void onData(ByteBuffer data) {
                self[0].cancel(); // as NarProxy does when its client write fails inside onData
            }
        };
        self[0] = started(cancellingSink, 200);

        org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> self[0].consume(ByteBuffer.allocate(100)));
        org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> self[0].consume(ByteBuffer.allocate(100)));
    }
}
