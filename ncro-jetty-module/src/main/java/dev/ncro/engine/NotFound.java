package dev.ncro.engine;

/**
 * Which upstream answers mean "this cache does not have it", as Nix reads them for HTTP
 * binary caches: 404 and 410, and 403 — unless ncro logs in to that upstream, where a 403
 * means the login was refused (expired credentials must not hide paths for an hour).
 */
final class NotFound {
    private NotFound() {}

    static boolean means(int status, boolean hasLogin) {
        return status == 404 || status == 410 || (status == 403 && !hasLogin);
    }
}
