package dev.ncro.web;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The front door's hand-written narinfo path check agrees with the rule it replaced. */
class NarinfoPathTest {
    private static final Pattern RULE = Pattern.compile("/[0-9abcdfghijklmnpqrsvwxyz]{32}\\.narinfo");

    @Test
    void agreesWithTheNix32Rule() {
        String hash = "0c8vfqw8ljyqdjm2wkwylqjmn4mfr5xc";
        String[] paths = {
            "/" + hash + ".narinfo",
            "/" + hash.replace('0', 'e') + ".narinfo", // e, o, u, t are not nix32
            "/" + hash.replace('0', 'o') + ".narinfo",
            "/" + hash.replace('0', 'u') + ".narinfo",
            "/" + hash.replace('0', 't') + ".narinfo",
            "/" + hash.toUpperCase() + ".narinfo",
            "/" + hash.replace('0', 'é') + ".narinfo",
            "/" + hash.replace('0', '\u0130') + ".narinfo",
            "/" + hash.substring(1) + ".narinfo",
            "/" + hash + "a.narinfo",
            "/" + hash + ".narinfoo",
            "/" + hash + ".narinf",
            "/" + hash + "xnarinfo",
            "x" + hash + ".narinfo",
            "//" + hash.substring(1) + ".narinfo",
            "/" + hash + ".nar",
            "/nar/" + hash + ".narinfo",
            "",
            "/",
        };
        for (String p : paths) assertEquals(RULE.matcher(p).matches(), NcroFilter.isNarinfoPath(p), p);
        // every single character in every position of the hash
        for (int i = 1; i <= 32; i++) {
            for (char c = 0; c < 300; c++) {
                String p = "/" + hash.substring(0, i - 1) + c + hash.substring(i) + ".narinfo";
                assertEquals(RULE.matcher(p).matches(), NcroFilter.isNarinfoPath(p), p);
            }
        }
    }
}
