package dev.ncro.jetty;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Log lines to standard output (journald, a container's log, a redirected file), written in
 * batches: each line goes into a buffer (64 KiB) that is written out when it fills and at most
 * {@link #setFlushMillis flushMillis} (100 ms) after its first line, and when logging stops; a
 * WARN or ERROR line is written at once, as is every line once the JVM is shutting down.
 * A console appender makes one locked write system call per line, which at tens of thousands of
 * requests a second is most of what an access line costs; nginx's {@code access_log ... buffer=
 * flush=} makes the same trade. A line is never split between two of this appender's writes
 * (though a batch larger than a pipe's atomic size may interleave with another writer to the
 * same pipe). A process killed outright (SIGKILL) loses at most the last {@code flushMillis} of
 * INFO lines; a write that fails (standard output closed) drops its batch, as {@code System.out}
 * would.
 *
 * <p>Used by the ncro Jetty base's {@code resources/logback.xml}; {@code logging.format}
 * swaps its encoder like any output stream appender's.
 */
public class BufferedStdoutAppender extends OutputStreamAppender<ILoggingEvent> {
    private int flushMillis = 100;
    private int bufferSize = 64 * 1024;
    private ScheduledExecutorService flusher;
    /** Where the batches go: a test's stream, or (null) the process's standard output. */
    private OutputStream target;
    private boolean writeFailed;
    /** Whether the buffer may hold lines not yet written (set after each line, cleared by a flush). */
    private volatile boolean pending;
    /** Once the JVM is shutting down: every line is written at once (no later flush is sure to run). */
    private volatile boolean immediate;
    private Thread shutdownHook;

    public void setFlushMillis(int flushMillis) {
        this.flushMillis = flushMillis;
    }

    public void setBufferSize(int bufferSize) {
        this.bufferSize = bufferSize;
    }

    /** For tests: write the batches here instead of standard output. */
    void setTarget(OutputStream target) {
        this.target = target;
    }

    @Override
    public void start() {
        if (isStarted()) return;
        OutputStream base = target != null ? target : new FileOutputStream(FileDescriptor.out);
        // closing the appender must not close the process's standard output, and a failed write
        // (a closed pipe) drops that batch, as System.out would, rather than stop all logging
        OutputStream stdout = new FilterOutputStream(base) {
            @Override
            public void write(byte[] b, int off, int len) {
                try {
                    out.write(b, off, len);
                } catch (IOException e) {
                    if (!writeFailed) {
                        writeFailed = true;
                        addError("writing to standard output failed; such batches are dropped", e);
                    }
                }
            }

            @Override
            public void flush() {
                try {
                    out.flush();
                } catch (IOException e) {
                    // as write
                }
            }

            @Override
            public void close() {
                flush();
            }
        };
        setOutputStream(new BufferedOutputStream(stdout, bufferSize));
        setImmediateFlush(false);
        super.start();
        if (!isStarted()) return; // refused (no encoder): nothing to flush, nothing to leave behind
        flusher = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ncro-log-flush");
            t.setDaemon(true);
            return t;
        });
        flusher.scheduleWithFixedDelay(() -> {
            try {
                flushPending();
            } catch (RuntimeException e) {
                addError("flushing the log failed", e); // and the next interval tries again
            }
        }, flushMillis, flushMillis, TimeUnit.MILLISECONDS);
        Thread hook = new Thread(this::shuttingDown, "ncro-log-flush-at-exit");
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            shutdownHook = hook;
        } catch (IllegalStateException e) {
            immediate = true; // started while the JVM is shutting down
        }
    }

    @Override
    protected void subAppend(ILoggingEvent event) {
        super.subAppend(event);
        pending = true; // after the line is in: a flush that misses it runs again next interval
        // a warning or an error is written at once, with whatever was logged before it: it may
        // be the last line before the process halts (a configuration refused: exit 78)
        if (immediate || event.getLevel().isGreaterOrEqual(Level.WARN)) flushPending();
    }

    /**
     * The JVM is shutting down (its hook): from now on each line is written at once, and what is
     * buffered now is written. A line appended concurrently is written either by this flush or,
     * seeing {@link #immediate} after its own write, by itself.
     */
    void shuttingDown() {
        immediate = true;
        flushPending();
    }

    /** Writes out what the buffer holds, if anything. */
    void flushPending() {
        streamWriteLock.lock();
        try {
            if (!pending || getOutputStream() == null) return;
            pending = false;
            getOutputStream().flush();
        } catch (IOException e) {
            addStatus(new ch.qos.logback.core.status.ErrorStatus("flushing standard output failed", this, e));
        } finally {
            streamWriteLock.unlock();
        }
    }

    @Override
    public void stop() {
        ScheduledExecutorService f = flusher;
        flusher = null;
        if (f != null) f.shutdownNow();
        Thread hook = shutdownHook;
        shutdownHook = null;
        if (hook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // stopped by a shutdown in progress: the hook runs or ran anyway
            }
        }
        flushPending();
        super.stop();
    }
}
