package dev.ncro.engine;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;

/**
 * At most {@code permits} tasks hold a permit at once; the rest wait in arrival order. A
 * limit of load by queueing, never by failing. Every task that ran must {@link #release()}
 * exactly once.
 *
 * <p>A queued task is started on {@code executor}, never inline in {@code release()}: the
 * releasing thread is often inside another race's callback, and running a stranger's task
 * there would nest locks that other threads take in the opposite order.
 */
final class AsyncLimiter {
    private final int permits;
    private final Executor executor;
    private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
    private int used;

    AsyncLimiter(int permits, Executor executor) {
        this.permits = permits;
        this.executor = executor;
    }

    /** Runs {@code task} now on this thread if a permit is free, else queues it. */
    void run(Runnable task) {
        synchronized (this) {
            if (used >= permits) {
                waiting.add(task);
                return;
            }
            used++;
        }
        task.run();
    }

    /**
     * Takes a permit only if fewer than {@code below} are in use and nobody waits: for work
     * that must yield to the tasks this limiter queues (NAR read-ahead). True when taken; the
     * caller must then {@link #release()} it.
     */
    synchronized boolean tryAcquireBelow(int below) {
        if (used >= Math.min(below, permits) || !waiting.isEmpty()) return false;
        used++;
        return true;
    }

    /** Returns a permit, handing it straight to the oldest waiting task if there is one. */
    void release() {
        Runnable next;
        synchronized (this) {
            next = waiting.poll();
            if (next == null) {
                used--;
                return;
            }
        }
        executor.execute(next);
    }

    /** Takes a task that is still waiting out of the queue; false when it already has a permit. */
    synchronized boolean withdraw(Runnable task) {
        return waiting.removeFirstOccurrence(task);
    }

    int permits() {
        return permits;
    }

    synchronized int queued() {
        return waiting.size();
    }

    synchronized int inUse() {
        return used;
    }
}
