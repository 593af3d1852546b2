package dev.ncro.bench.closure;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;

/**
 * The closure the benchmark realises, made by the real Nix client: text paths written with
 * {@code builtins.toFile} whose contents name other paths (so they reference them), in
 * {@link #LEVELS} levels below one top path; every path signed by every cache's key in a source
 * store, copied once with {@code nix copy} (zstd) into one binary cache directory, and then
 * split into one directory per cache holding 1–3 caches' worth of each path, each cache's
 * narinfos carrying only its own signature, as independent caches would.
 *
 * <p>Sizes are mixed: most paths are a line, some are 0.3–2 MiB and {@link #BIG} are over
 * 4 MiB compressed (the read-ahead limit), one of them on the deepest reference chain. The
 * layout is drawn from a fixed seed, so every run benchmarks the same closure.
 */
final class ClosureFixture {
    /** Paths per level, top first: 30 paths, reference depth 6. */
    static final int[] LEVELS = {1, 3, 5, 6, 7, 8};
    /** Lines of 64 hex digits in a path over 4 MiB once compressed (zstd keeps about half of hex). */
    static final int BIG_LINES = 150_000;
    static final int BIG = 4;
    static final int MEDIUM = 6;

    /** One store path of the closure: where it sits, what it references, which caches hold it. */
    record Node(String id, int level, List<String> refs, List<Integer> holders, int lines) {}

    final Path work;
    final NixClient nix;
    final Map<String, Node> nodes = new LinkedHashMap<>();
    /** Store path by node id, once made. */
    final Map<String, String> storePaths = new LinkedHashMap<>();
    /** The compressed NAR size (FileSize) of each node. */
    final Map<String, Long> fileSizes = new LinkedHashMap<>();
    /** {@code /nar/...} request path → file size, for counting what caches sent. */
    final Map<String, Long> narFiles = new LinkedHashMap<>();
    final List<String> publicKeys = new ArrayList<>();
    final List<Path> cacheDirs = new ArrayList<>();

    ClosureFixture(Path work, NixClient nix, int caches) {
        this.work = work;
        this.nix = nix;
        layout(caches);
    }

    /** The reference graph and holders, drawn from a fixed seed. */
    private void layout(int caches) {
        Random random = new Random(12);
        List<List<String>> byLevel = new ArrayList<>();
        for (int level = 0; level < LEVELS.length; level++) {
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < LEVELS[level]; i++) ids.add("l" + level + "n" + i);
            byLevel.add(ids);
        }
        List<String> all = byLevel.stream().flatMap(List::stream).toList();
        // sizes: one big path on the chain l0n0 → l1n0 → … (the deepest chain), others spread
        List<String> big = new ArrayList<>(List.of("l2n0", "l1n2", "l4n3", "l5n5"));
        List<String> medium = new ArrayList<>(List.of("l1n1", "l2n3", "l3n1", "l3n4", "l4n0", "l5n2"));
        // every path is referenced by one of the level above (the j-th below by the (j mod n)-th
        // above), so each lies on a chain of its level's depth; then 0–2 more references one level
        // down and, now and then, one two levels down
        Map<String, List<String>> refsOf = new LinkedHashMap<>();
        for (String id : all) refsOf.put(id, new ArrayList<>());
        for (int level = 0; level + 1 < LEVELS.length; level++) {
            List<String> above = byLevel.get(level);
            List<String> below = byLevel.get(level + 1);
            for (int j = 0; j < below.size(); j++) refsOf.get(above.get(j % above.size())).add(below.get(j));
            for (String id : above) {
                List<String> refs = refsOf.get(id);
                int extra = random.nextInt(3);
                for (int k = 0; k < extra; k++) {
                    String r = below.get(random.nextInt(below.size()));
                    if (!refs.contains(r)) refs.add(r);
                }
                if (level + 2 < LEVELS.length && random.nextInt(3) == 0) {
                    List<String> twoBelow = byLevel.get(level + 2);
                    String r = twoBelow.get(random.nextInt(twoBelow.size()));
                    if (!refs.contains(r)) refs.add(r);
                }
            }
        }
        for (int level = LEVELS.length - 1; level >= 0; level--) {
            for (String id : byLevel.get(level)) {
                List<String> refs = refsOf.get(id);
                List<Integer> holders = new ArrayList<>();
                int count = 1 + random.nextInt(3);
                while (holders.size() < count) {
                    int c = random.nextInt(caches);
                    if (!holders.contains(c)) holders.add(c);
                }
                holders.sort(null);
                int lines = big.contains(id) ? BIG_LINES + 5_000 * big.indexOf(id)
                        : medium.contains(id) ? 10_000 + 10_000 * medium.indexOf(id)
                        : 1 + random.nextInt(40);
                nodes.put(id, new Node(id, level, List.copyOf(refs), List.copyOf(holders), lines));
            }
        }
        // every path below the top must be reachable; the layout above guarantees it, this checks it
        if (closureOf("l0n0").size() != all.size()) throw new IllegalStateException("layout leaves paths unreachable");
        // the cache that is slowest must be the only holder of some path, as in a real fleet
        nodes.computeIfPresent("l3n2", (k, n) -> new Node(n.id(), n.level(), n.refs(), List.of(caches - 1), n.lines()));
    }

    private java.util.Set<String> closureOf(String id) {
        java.util.Set<String> seen = new java.util.LinkedHashSet<>();
        java.util.ArrayDeque<String> todo = new java.util.ArrayDeque<>(List.of(id));
        while (!todo.isEmpty()) {
            String n = todo.pop();
            if (seen.add(n)) todo.addAll(nodes.get(n).refs());
        }
        return seen;
    }

    /** Makes, signs and copies the closure; writes one directory per cache. */
    void make(int caches) throws IOException, InterruptedException {
        String src = "local?root=" + work.resolve("src");
        StringBuilder expr = new StringBuilder("let\n");
        for (Node n : nodes.values()) {
            String body;
            String refs = n.refs().stream().map(r -> "${" + r + "}").collect(Collectors.joining(" "));
            if (n.lines() > 1) {
                body = "(builtins.concatStringsSep \"\\n\" ([\"" + refs + "\"] ++ builtins.genList (i: builtins.hashString \"sha256\" \""
                        + n.id() + "-${toString i}\") " + n.lines() + "))";
            } else {
                body = "\"" + n.id() + " " + refs + "\"";
            }
            expr.append("  ").append(n.id()).append(" = builtins.toFile \"ncro-closure-").append(n.id()).append("\" ")
                    .append(body).append(";\n");
        }
        expr.append("in [ ").append(String.join(" ", nodes.keySet())).append(" ]");
        String json = nix.ok("nix-instantiate", "--store", src, "--read-write-mode", "--eval", "--strict", "--json", "-E",
                expr.toString());
        String last = json.strip().lines().reduce((a, b) -> b).orElseThrow();
        List<String> made = List.of(last.replaceAll("[\\[\\]\"]", "").split(","));
        List<String> ids = List.copyOf(nodes.keySet());
        for (int i = 0; i < ids.size(); i++) storePaths.put(ids.get(i), made.get(i));
        for (int c = 0; c < caches; c++) {
            String name = "ncro-closure-cache" + c + "-1";
            publicKeys.add(nix.keyPair(name));
            nix.ok("nix", "store", "sign", "--store", src, "--key-file", work.resolve(name + ".sk").toString(), "-r", top());
        }
        Path all = work.resolve("all");
        nix.ok("nix", "copy", "--from", src, "--to", "file://" + all + "?compression=zstd", top());
        for (int c = 0; c < caches; c++) {
            Path dir = work.resolve("cache" + c);
            Files.createDirectories(dir.resolve("nar"));
            cacheDirs.add(dir);
        }
        for (Node n : nodes.values()) {
            String hash = hash(storePaths.get(n.id()));
            String narinfo = Files.readString(all.resolve(hash + ".narinfo"));
            String url = field(narinfo, "URL");
            long size = Long.parseLong(field(narinfo, "FileSize"));
            fileSizes.put(n.id(), size);
            narFiles.put("/" + url, size);
            for (int c : n.holders()) {
                String own = "Sig: ncro-closure-cache" + c + "-1:";
                String signed = narinfo.lines().filter(l -> !l.startsWith("Sig: ") || l.startsWith(own))
                        .collect(Collectors.joining("\n", "", "\n"));
                Path dir = cacheDirs.get(c);
                Files.writeString(dir.resolve(hash + ".narinfo"), signed);
                Path nar = dir.resolve(url);
                if (!Files.exists(nar)) Files.createLink(nar, all.resolve(url));
            }
        }
    }

    String top() {
        return storePaths.get("l0n0");
    }

    /**
     * The critical-path bound: the most, over reference chains from the top, of the sum of
     * each path's fastest holder's delay. A client that asks for a path only after reading its
     * referrer's narinfo can never finish the narinfo phase sooner than this.
     */
    long criticalPathMillis(long[] delays) {
        Map<String, Long> memo = new LinkedHashMap<>();
        return chain("l0n0", delays, memo);
    }

    private long chain(String id, long[] delays, Map<String, Long> memo) {
        Long known = memo.get(id);
        if (known != null) return known;
        Node n = nodes.get(id);
        long own = n.holders().stream().mapToLong(c -> delays[c]).min().orElseThrow();
        long below = 0;
        for (String r : n.refs()) below = Math.max(below, chain(r, delays, memo));
        memo.put(id, own + below);
        return own + below;
    }

    /** The sum, over NARs larger than {@code limit}, of their fastest holder's delay. */
    long bigNarDelayMillis(long[] delays, long limit) {
        return nodes.values().stream().filter(n -> fileSizes.get(n.id()) > limit)
                .mapToLong(n -> n.holders().stream().mapToLong(c -> delays[c]).min().orElseThrow()).sum();
    }

    long totalFileSize() {
        return fileSizes.values().stream().mapToLong(Long::longValue).sum();
    }

    /** One line per size class: how many paths and how many bytes. */
    String sizeSummary() {
        long over = fileSizes.values().stream().filter(s -> s > 4L << 20).count();
        long mid = fileSizes.values().stream().filter(s -> s > 100_000 && s <= 4L << 20).count();
        long small = fileSizes.size() - over - mid;
        return String.format("%d paths, depth %d; compressed NARs: %d over 4 MiB, %d of 0.1-4 MiB, %d small; %.1f MiB in all",
                nodes.size(), LEVELS.length, over, mid, small, totalFileSize() / 1048576.0);
    }

    static String hash(String storePath) {
        return storePath.substring("/nix/store/".length(), "/nix/store/".length() + 32);
    }

    private static String field(String narinfo, String name) {
        return narinfo.lines().filter(l -> l.startsWith(name + ": ")).findFirst()
                .orElseThrow(() -> new IllegalStateException("narinfo without " + name + ":\n" + narinfo))
                .substring(name.length() + 2);
    }
}
