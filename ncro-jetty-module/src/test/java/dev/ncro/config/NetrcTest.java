package dev.ncro.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class NetrcTest {
    @Test
    void machines_default_andSkippedTokens() {
        Netrc n = Netrc.parse("""
                machine cache.example.org login alice password a1
                machine Other.Example
                  login bob
                  account ignored
                  password b2
                default login anon password guest
                """);

        assertEquals(Optional.of(new Netrc.Login("alice", "a1")), n.forHost("cache.example.org"));
        assertEquals(Optional.of(new Netrc.Login("bob", "b2")), n.forHost("other.example"));
        assertEquals(Optional.of(new Netrc.Login("anon", "guest")), n.forHost("elsewhere"));
        assertFalse(Netrc.parse("machine x login only-user").forHost("x").isPresent(), "no password: no login");
        assertFalse(new Netrc.Login("u", "secret").toString().contains("secret"));
        assertTrue(Netrc.parse("").forHost("x").isEmpty());
    }
}
