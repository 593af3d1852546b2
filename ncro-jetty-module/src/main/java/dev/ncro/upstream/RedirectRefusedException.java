package dev.ncro.upstream;

import java.io.IOException;

/** An upstream redirected where ncro will not follow; a failure of that upstream, never a not-found. */
final class RedirectRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    public RedirectRefusedException(String message) {
        super(message);
    }
}
