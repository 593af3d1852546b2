package dev.ncro.bench.load;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Every request one client loop made: when it started (ms from the phase's zero, negative
 * during warm-up), how long it took, its kind and its outcome (an HTTP status, or one of the
 * negative {@code FAILED_*} codes when no whole answer arrived). Written by one thread, read
 * after it ended.
 */
final class Samples {
    static final short IO_ERROR = -1;
    static final short TIMEOUT = -2;
    static final short SHORT_BODY = -3;
    static final short WRONG_BODY = -4;
    static final short REFUSED = -5;

    static String outcomeName(int outcome) {
        return switch (outcome) {
            case IO_ERROR -> "I/O error";
            case TIMEOUT -> "client timeout";
            case SHORT_BODY -> "short body";
            case WRONG_BODY -> "wrong body";
            case REFUSED -> "refused";
            default -> Integer.toString(outcome);
        };
    }

    /** One failed request worth showing: what, when, how. */
    record Failure(double atSeconds, Workload.Kind kind, String target, String outcome, double latencyMs, String detail) {}

    private static final int MAX_FAILURES_KEPT = 20;

    private int n;
    private int[] startMs = new int[1024];
    private int[] latencyUs = new int[1024];
    private byte[] kind = new byte[1024];
    private short[] outcome = new short[1024];
    private int[] bodyBytes = new int[1024];
    final List<Failure> failures = new ArrayList<>();

    void add(int startMs, long latencyNanos, Workload.Kind kind, short outcome, long bodyBytes) {
        if (n == this.startMs.length) {
            int size = n * 2;
            this.startMs = Arrays.copyOf(this.startMs, size);
            this.latencyUs = Arrays.copyOf(this.latencyUs, size);
            this.kind = Arrays.copyOf(this.kind, size);
            this.outcome = Arrays.copyOf(this.outcome, size);
            this.bodyBytes = Arrays.copyOf(this.bodyBytes, size);
        }
        this.startMs[n] = startMs;
        this.latencyUs[n] = (int) Math.min(Integer.MAX_VALUE, latencyNanos / 1000);
        this.kind[n] = (byte) kind.ordinal();
        this.outcome[n] = outcome;
        this.bodyBytes[n] = (int) Math.min(Integer.MAX_VALUE, bodyBytes);
        n++;
    }

    void failed(Failure failure) {
        if (failures.size() < MAX_FAILURES_KEPT) failures.add(failure);
    }

    int size() {
        return n;
    }

    int startMs(int i) {
        return startMs[i];
    }

    double latencyMs(int i) {
        return latencyUs[i] / 1000.0;
    }

    Workload.Kind kind(int i) {
        return Workload.Kind.values()[kind[i]];
    }

    short outcome(int i) {
        return outcome[i];
    }

    int bodyBytes(int i) {
        return bodyBytes[i];
    }
}
