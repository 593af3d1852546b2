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
            response.setStatus(status);
            response.setContentType(contentType);
            response.setContentLength(body.length);
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
