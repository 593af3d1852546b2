package dev.ncro.trust;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class FiltersTest {
    private static final String TOP = "8hw9by54xj72m1fgzwvkj3ya48y20y3j";
    private static final String LEAF = "bihphjc5sij6qfda4z0gks08j57xwslx";

    private static Narinfo narinfo(String hash, String extra) throws Exception {
        try (InputStream in = FiltersTest.class.getResourceAsStream(hash + ".narinfo")) {
            String text = new String(in.readAllBytes(), StandardCharsets.UTF_8) + extra;
            return Narinfo.parse(text.getBytes(StandardCharsets.UTF_8), hash);
        }
    }

    private static Filters.Rule rule(String action, String field, String pattern) {
        return Filters.Rule.of(action, field, pattern);
    }

    @Test
    void fields_andWildcards() throws Exception {
        Narinfo top = narinfo(TOP, "Deriver: 0000000000000000000000000000000a-fixture-top.drv\n");
        assertNotNull(Filters.reject(top, List.of(rule("deny", "name", "fixture-*"))));
        assertNull(Filters.reject(top, List.of(rule("deny", "name", "fixture"))), "the whole value must match");
        assertNotNull(Filters.reject(top, List.of(rule("deny", "store_path", "/nix/store/*-fixture-top"))));
        assertNotNull(Filters.reject(top, List.of(rule("deny", "reference", "*-fixture-leaf"))), "any reference");
        assertNotNull(Filters.reject(top, List.of(rule("deny", "deriver", "*.drv"))));
        assertNull(Filters.reject(narinfo(LEAF, ""), List.of(rule("deny", "deriver", "*"))), "no Deriver: nothing to match");
        assertNotNull(Filters.reject(top, List.of(rule("deny", "name", "*top"))));
        assertNull(Filters.reject(top, List.of(rule("deny", "name", "fix.ure-top"))), "only * is special");
    }

    @Test
    void denyWins_andWithAllowRulesOneMustMatch() throws Exception {
        Narinfo top = narinfo(TOP, "");
        Narinfo leaf = narinfo(LEAF, "");
        List<Filters.Rule> rules = List.of(rule("allow", "name", "fixture-*"), rule("deny", "name", "*-top"));

        assertTrue(Filters.reject(top, rules).contains("deny name *-top"));
        assertNull(Filters.reject(leaf, rules));
        assertTrue(Filters.reject(leaf, List.of(rule("allow", "name", "firefox-*"))).contains("no allow filter"));
    }

    @Test
    void badRules_sayWhatIsWrong() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rule("permit", "name", "x")).getMessage().contains("allow or deny"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rule("deny", "hash", "x")).getMessage().contains("store_path"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rule("deny", "name", "")).getMessage().contains("empty"));
    }
}
