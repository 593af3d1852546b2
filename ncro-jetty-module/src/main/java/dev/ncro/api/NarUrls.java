package dev.ncro.api;

import java.util.regex.Pattern;

/**
 * The NAR (file) URL forms real caches write, relative to the cache root: {@code
 * nar/<filehash>.nar.<ext>} (nix copy, cache.nixos.org), {@code nar/<narhash>.nar} with a query
 * such as {@code ?hash=<hash>} (harmonia), {@code nar/<hash>-<narhash>.nar} (nix-serve-ng).
 * Hashes in nix32 or lowercase hex. Such a name is the file's content address, so any upstream
 * holding it holds the same file; a URL in another form is asked of the upstream that named it.
 */
public final class NarUrls {
    /** A usual NAR path, without the leading slash and without the query. */
    public static final Pattern USUAL = Pattern.compile("nar/[0-9a-z]{32,64}(?:-[0-9a-z]{32,64})?\\.nar(?:\\.[a-z0-9]{1,6})?");

    private NarUrls() {}

    /** Whether a NAR target ({@code nar/…}, query included or not) is in one of the usual forms. */
    public static boolean usualForm(String target) {
        int q = target.indexOf('?');
        return USUAL.matcher(q < 0 ? target : target.substring(0, q)).matches();
    }
}
