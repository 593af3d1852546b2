package dev.ncro.bench.load;

import dev.ncro.bench.Bench;
import dev.ncro.testing.FakeCache;
import dev.ncro.testing.Narinfos;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The store paths of the load run and the mix of requests a client makes. Every path exists
 * (a narinfo and a NAR) on every cache it is installed on; misses are hashes no cache has.
 * NARs are generated as they are sent ({@link FakeCache#putGenerated}), so their bodies are
 * {@link FakeCache#PATTERN} repeated and every byte a client reads can be checked.
 *
 * <p>A client requests, by the weights of {@link Mix}: the narinfo of a path nobody has asked
 * for yet (cold: ncro must race the upstreams), the narinfo of a path asked before (warm:
 * ncro answers from memory), the narinfo of a hash nobody has (a miss: 404 expected), or the
 * NAR of a path whose narinfo was already answered (as Nix only fetches a NAR it has the
 * narinfo of).
 */
final class Workload {
    enum Kind {
        NARINFO_COLD("narinfo cold"), NARINFO_WARM("narinfo warm"), NARINFO_MISS("narinfo miss"), NAR("NAR");

        final String label;

        Kind(String label) {
            this.label = label;
        }

        /** Whether the path exists on every upstream (so anything but a whole 200 is an error). */
        boolean exists() {
            return this != NARINFO_MISS;
        }
    }

    /** Percent weights of the kinds, in {@link Kind} order. */
    record Mix(int cold, int warm, int miss, int nar) {
        static Mix parse(String s) {
            int[] w = Arrays.stream(s.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray();
            if (w.length != 4 || Arrays.stream(w).sum() != 100 || Arrays.stream(w).anyMatch(x -> x < 0)) {
                throw new IllegalArgumentException("load.mix must be four percentages cold,warm,miss,nar summing to 100: " + s);
            }
            return new Mix(w[0], w[1], w[2], w[3]);
        }

        Kind pick(int percent) {
            if (percent < cold) return Kind.NARINFO_COLD;
            if (percent < cold + warm) return Kind.NARINFO_WARM;
            if (percent < cold + warm + miss) return Kind.NARINFO_MISS;
            return Kind.NAR;
        }

        @Override
        public String toString() {
            return cold + "% narinfo cold, " + warm + "% narinfo warm, " + miss + "% narinfo miss, " + nar + "% NAR";
        }
    }

    /** NAR sizes and their percent weights: most NARs are small, a few are large. */
    static final int[] NAR_SIZES = {4 << 10, 64 << 10, 512 << 10, 4 << 20};
    static final int[] NAR_SIZE_WEIGHTS = {50, 30, 15, 5};

    /** Miss hashes are {@link Bench#routeHash} of indices from here on: never a path's. */
    private static final long MISS_BASE = 1L << 24;

    final int paths;

    Workload(int paths) {
        if (paths <= 0 || paths >= MISS_BASE) throw new IllegalArgumentException("load.paths out of range: " + paths);
        this.paths = paths;
    }

    static String hash(int path) {
        return Bench.routeHash(path);
    }

    /** {@code nar/<52 chars>.nar}: ncro's NAR grammar, distinct per path. */
    static String narUrl(int path) {
        return "nar/" + Bench.routeHash(path) + Bench.routeHash(path + MISS_BASE / 2).substring(0, 20) + ".nar";
    }

    static int narSize(int path) {
        int r = (int) Math.floorMod(path * 0x9E3779B1L >>> 7, 100L);
        for (int i = 0; i < NAR_SIZES.length; i++) {
            if (r < NAR_SIZE_WEIGHTS[i]) return NAR_SIZES[i];
            r -= NAR_SIZE_WEIGHTS[i];
        }
        return NAR_SIZES[NAR_SIZES.length - 1];
    }

    static String narinfo(int path) {
        return Narinfos.narinfo(hash(path), "load-" + path, narUrl(path), narSize(path));
    }

    /** Puts every path's narinfo and NAR on each cache (the narinfo bytes shared between them). */
    void install(FakeCache... caches) {
        for (int i = 0; i < paths; i++) {
            byte[] info = narinfo(i).getBytes(StandardCharsets.UTF_8);
            for (FakeCache c : caches) {
                c.put("/" + hash(i) + ".narinfo", info);
                c.putGenerated("/" + narUrl(i), narSize(i));
            }
        }
    }

    /** Average NAR size over the paths, in bytes. */
    double meanNarSize() {
        double sum = 0;
        for (int i = 0; i < NAR_SIZES.length; i++) sum += NAR_SIZES[i] * (double) NAR_SIZE_WEIGHTS[i] / 100;
        return sum;
    }

    /** What one request is for. {@code path} is a path index, or the miss index for a miss. */
    record Request(Kind kind, long path) {
        String target() {
            return switch (kind) {
                case NARINFO_COLD, NARINFO_WARM -> "/" + hash((int) path) + ".narinfo";
                case NARINFO_MISS -> "/" + Bench.routeHash(path) + ".narinfo";
                case NAR -> "/" + narUrl((int) path);
            };
        }
    }

    /**
     * Which paths have been asked for, shared by the clients of one phase. A cold request takes
     * the next path nobody asked for; a path becomes warm once its narinfo was answered 200.
     */
    final class Cursor {
        private final Mix mix;
        private final AtomicInteger nextCold = new AtomicInteger();
        private final AtomicIntegerArray answered = new AtomicIntegerArray(paths);
        private final AtomicLong nextMiss = new AtomicLong(MISS_BASE);
        private final AtomicLong coldExhausted = new AtomicLong();

        Cursor(Mix mix) {
            this.mix = mix;
        }

        Request next(SplittableRandom random) {
            Kind kind = mix.pick(random.nextInt(100));
            if (kind == Kind.NARINFO_MISS) return new Request(kind, nextMiss.getAndIncrement());
            if (kind != Kind.NARINFO_COLD) {
                int asked = Math.min(nextCold.get(), paths);
                for (int tries = 0; asked > 0 && tries < 8; tries++) {
                    int p = random.nextInt(asked);
                    if (answered.get(p) == 1) return new Request(kind, p);
                }
                // nothing answered yet (the first instants): ask a cold one instead
            }
            int p = nextCold.getAndIncrement();
            if (p < paths) return new Request(Kind.NARINFO_COLD, p);
            coldExhausted.incrementAndGet();
            return new Request(Kind.NARINFO_WARM, random.nextInt(paths));
        }

        /** The narinfo of {@code path} was answered 200: from now on it is warm. */
        void answered(int path) {
            answered.set(path, 1);
        }

        /** Cold requests that found every path already asked for (made warm instead). */
        long coldExhausted() {
            return coldExhausted.get();
        }

        int coldAsked() {
            return Math.min(nextCold.get(), paths);
        }
    }
}
