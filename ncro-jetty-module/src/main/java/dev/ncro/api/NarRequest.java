package dev.ncro.api;

import java.util.Map;

/**
 * A client's request for a file named by a narinfo's {@code URL:} field.
 *
 * @param target the request path relative to the cache root, with its query string kept
 *     exactly as sent (for example {@code nar/1abc.nar.xz} or {@code nar/x.nar?hash=y})
 * @param head true for HEAD: the upstream is asked with HEAD and no body is streamed
 * @param headers the end-to-end request headers to forward (Range, If-Range, conditionals,
 *     Accept-Encoding); names in any case
 */
public record NarRequest(String target, boolean head, Map<String, String> headers) {
    public NarRequest {
        headers = Map.copyOf(headers);
    }
}
