package dev.ncro.web;

import dev.ncro.api.Answer;
import dev.ncro.api.NarUrls;
import dev.ncro.api.NarinfoAnswer;
import dev.ncro.api.NcroService;
import dev.ncro.trust.Nix32;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.FilterChain;
import jakarta.servlet.FilterConfig;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * The front door: every request is classified here, cheapest and hottest first.
 * <ol>
 *   <li>methods other than GET and HEAD: 405;</li>
 *   <li>{@code /<hash>.narinfo} with a 32-character nix32 hash: answered here; from memory on
 *       the request thread, otherwise asynchronously from the engine's race;</li>
 *   <li>{@code /nix-cache-info}, {@code /health}, {@code /metrics}, and the status page at
 *       exactly {@code /}: answered here;</li>
 *   <li>{@code /nar/...} in one of the {@link #NAR} forms, or any other {@code /nar/} path a
 *       served narinfo named ({@link #NAMED_NAR}): passed to the NAR servlet;</li>
 *   <li>anything else: 404, without touching an upstream.</li>
 * </ol>
 */
public final class NcroFilter extends HttpFilter {
    private static final long serialVersionUID = 1L;

    /** {@code /<hash>.narinfo}: a slash, 32 nix32 characters, {@code .narinfo}. */
    private static final int NARINFO_PATH_LENGTH = 1 + 32 + ".narinfo".length();
    /** Nix's base-32 alphabet ({@link Nix32#ALPHABET}: no e, o, u, t), as a table for the check. */
    private static final boolean[] IS_NIX32 = new boolean[128];

    static {
        for (char c : Nix32.ALPHABET.toCharArray()) IS_NIX32[c] = true;
    }
    /** The usual NAR URL forms ({@link NarUrls#USUAL}), from the context root. */
    static final Pattern NAR = Pattern.compile("/" + NarUrls.USUAL.pattern());
    /**
     * Any other file path under {@code /nar/} of plain segments (no {@code ..}, no empty
     * segment): passed on only when a narinfo ncro served named it ({@link NcroService#namesNar}).
     */
    static final Pattern NAMED_NAR = Pattern.compile("/nar(?:/(?!\\.\\.?/)(?!\\.\\.?$)[A-Za-z0-9._+-]{1,200}){1,4}");
    /**
     * A NAR URL's query, forwarded byte for byte: up to four {@code key=value} pairs, values of
     * unreserved characters or percent-encoded octets (a cache may name a NAR by an encoded
     * hash or token). Nothing here can leave the query: no raw {@code /?#} or spaces.
     */
    static final Pattern NAR_QUERY = Pattern.compile(
            "[a-z][a-z0-9_]{0,15}=(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,128}"
            + "(?:&[a-z][a-z0-9_]{0,15}=(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,128}){0,3}");

    /** Safety net only: the engine answers within its race deadline. */
    private static final long NARINFO_ASYNC_TIMEOUT_MS = 120_000;

    private transient NcroService ncro;

    @Override
    public void init(FilterConfig config) throws ServletException {
        super.init(config);
        ncro = Services.lookup(config.getServletContext());
    }

    @Override
    protected void doFilter(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        String method = request.getMethod();
        boolean head = "HEAD".equals(method);
        if (!head && !"GET".equals(method)) {
            response.setHeader("Allow", "GET, HEAD");
            plain(request, 405, "method " + method + " is not allowed; ncro answers GET and HEAD", false);
            return;
        }
        String path = request.getRequestURI().substring(request.getContextPath().length());
        if (isNarinfoPath(path)) {
            if (request.getQueryString() != null) {
                plain(request, 400, "a narinfo request takes no query string", head);
                return;
            }
            narinfo(request, response, path.substring(1, 33), head);
        } else if (path.equals("/nix-cache-info")) {
            SmallResponse.send(AccessLog.startAsync(request), 200, "text/x-nix-cache-info",
                    ncro.cacheInfo().getBytes(StandardCharsets.UTF_8), head);
        } else if (path.equals("/health")) {
            answer(request, response, ncro.health(), head);
        } else if (path.equals("/metrics")) {
            answer(request, response, ncro.metrics(), head);
        } else if (path.equals("/")) {
            statusPage(request, response, head);
        } else if (NAR.matcher(path).matches() || namedByANarinfo(path, request.getQueryString())) {
            String query = request.getQueryString();
            if (query != null && !NAR_QUERY.matcher(query).matches()) {
                plain(request, 400, "malformed query on a NAR request", head);
                return;
            }
            chain.doFilter(request, response);
        } else {
            plain(request, 404, "not a binary cache path: " + path, head);
        }
    }

    /**
     * Whether {@code path} is {@code /<hash>.narinfo} with a 32-character nix32 hash: the
     * hottest check of all, by hand (a regex here cost the hot path a few percent).
     */
    static boolean isNarinfoPath(String path) {
        if (path.length() != NARINFO_PATH_LENGTH || path.charAt(0) != '/' || !path.endsWith(".narinfo")) return false;
        for (int i = 1; i <= 32; i++) {
            char c = path.charAt(i);
            if (c >= 128 || !IS_NIX32[c]) return false;
        }
        return true;
    }

    /** A NAR URL outside the usual forms that a served narinfo named: refusing it would be a 404 for a NAR an upstream holds. */
    private boolean namedByANarinfo(String path, String query) {
        if (!NAMED_NAR.matcher(path).matches()) return false;
        if (query != null && !NAR_QUERY.matcher(query).matches()) return false;
        return ncro.namesNar(path.substring(1) + (query == null ? "" : "?" + query));
    }

    private void narinfo(HttpServletRequest request, HttpServletResponse response, String hash, boolean head) {
        long startNanos = System.nanoTime();
        CompletableFuture<NarinfoAnswer> lookup = ncro.narinfo(hash, head);
        if (lookup.isDone() && !lookup.isCompletedExceptionally()) {
            // the hot path, a hit from memory: the same answer as below, without startAsync
            NarinfoAnswer answer = lookup.join();
            AccessLog.upstream(request, answer.upstream());
            SmallResponse.sendNow(response, answer.status(), contentType(answer), answer.body(), head);
            AccessLog.log(request, answer.status(), startNanos);
            return;
        }
        AsyncContext async = AccessLog.startAsync(request, startNanos);
        async.setTimeout(NARINFO_ASYNC_TIMEOUT_MS);
        AtomicBoolean answered = new AtomicBoolean();
        async.addListener(new AsyncListener() {
            @Override
            public void onTimeout(AsyncEvent event) {
                if (answered.compareAndSet(false, true)) {
                    SmallResponse.sendText(async, 504, "narinfo lookup for " + hash + " timed out", head);
                }
            }

            @Override
            public void onComplete(AsyncEvent event) {}

            @Override
            public void onError(AsyncEvent event) {}

            @Override
            public void onStartAsync(AsyncEvent event) {}
        });
        lookup.whenComplete((answer, failure) -> {
            if (!answered.compareAndSet(false, true)) return;
            if (failure != null) {
                SmallResponse.sendText(async, 502, "narinfo lookup for " + hash + " failed inside ncro (see its log)", head);
                request.getServletContext().log("narinfo lookup for " + hash + " failed", failure);
            } else {
                AccessLog.upstream(request, answer.upstream());
                SmallResponse.send(async, answer.status(), contentType(answer), answer.body(), head);
            }
        });
    }

    private static String contentType(NarinfoAnswer answer) {
        return answer.found() ? "text/x-nix-narinfo" : SmallResponse.TEXT;
    }

    /** /health and /metrics: live state, never to be cached. */
    private static void answer(HttpServletRequest request, HttpServletResponse response, Answer answer, boolean head) {
        response.setHeader("Cache-Control", "no-store");
        SmallResponse.send(AccessLog.startAsync(request), answer.status(), answer.contentType(), answer.body(), head);
    }

    /**
     * The status page: rendered here from the engine's in-memory snapshot (no network, no
     * database), never cached, and with a policy that lets it load nothing and run no script.
     */
    private void statusPage(HttpServletRequest request, HttpServletResponse response, boolean head) {
        response.setHeader("Cache-Control", "no-store");
        response.setHeader("Content-Security-Policy", StatusPage.CSP);
        response.setHeader("X-Content-Type-Options", "nosniff");
        SmallResponse.send(AccessLog.startAsync(request), 200, StatusPage.CONTENT_TYPE, StatusPage.render(ncro.status()), head);
    }

    /** A short plain-text answer; every small answer goes out through {@link SmallResponse}. */
    private static void plain(HttpServletRequest request, int status, String text, boolean head) {
        SmallResponse.sendText(AccessLog.startAsync(request), status, text, head);
    }
}
