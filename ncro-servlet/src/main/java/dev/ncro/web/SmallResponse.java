package dev.ncro.web;

import jakarta.servlet.AsyncContext;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Writes a small, complete answer (a narinfo, an error text) on an async request with Servlet
 * non-blocking output, then completes the request. No thread waits on the client socket.
 *
 * <p>{@link #sendNow} writes the same status, headers and bytes on the request thread, for an
 * answer that is ready when the request arrives (a narinfo from memory): a few KiB fit in the
 * connection's output buffer and socket send buffer, so the write does not wait on the client
 * in practice, and the request pays no async dispatch, listener or {@link WriteListener}.
 */
final class SmallResponse implements WriteListener {
    static final String TEXT = "text/plain; charset=utf-8";

    private final AsyncContext async;
    private final ServletOutputStream out;
    private final byte[] body;
    private boolean written;

    private SmallResponse(AsyncContext async, ServletOutputStream out, byte[] body) {
        this.async = async;
        this.out = out;
        this.body = body;
    }

    static void send(AsyncContext async, int status, String contentType, byte[] body, boolean head) {
        HttpServletResponse response = (HttpServletResponse) async.getResponse();
        try {
            head(response, status, contentType, body);
            if (head || body.length == 0) {
                async.complete();
                return;
            }
            ServletOutputStream out = response.getOutputStream();
            out.setWriteListener(new SmallResponse(async, out, body));
        } catch (IOException | IllegalStateException e) {
            async.complete();
        }
    }

    /**
     * The answer written on the calling (request) thread, without {@code startAsync}; the
     * response completes when the filter returns. A client gone mid-write only loses its answer.
     */
    static void sendNow(HttpServletResponse response, int status, String contentType, byte[] body, boolean head) {
        try {
            head(response, status, contentType, body);
            if (!head && body.length > 0) response.getOutputStream().write(body);
        } catch (IOException | IllegalStateException e) {
            // the client is gone: nothing to answer; the container closes the exchange
        }
    }

    /** Status and headers, the same for both ways of sending. */
    private static void head(HttpServletResponse response, int status, String contentType, byte[] body) {
        response.setStatus(status);
        response.setContentType(contentType);
        response.setContentLength(body.length);
    }

    static void sendText(AsyncContext async, int status, String text, boolean head) {
        send(async, status, TEXT, (text + "\n").getBytes(StandardCharsets.UTF_8), head);
    }

    @Override
    public void onWritePossible() throws IOException {
        if (!written) {
            written = true;
            out.write(body);
        }
        // false: the write is pending and this method runs again once it is done
        if (out.isReady()) async.complete();
    }

    @Override
    public void onError(Throwable t) {
        async.complete();
    }
}
