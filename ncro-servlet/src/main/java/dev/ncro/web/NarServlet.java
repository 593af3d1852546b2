package dev.ncro.web;

import dev.ncro.api.NarRequest;
import dev.ncro.api.NarStream;
import dev.ncro.api.NcroService;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/**
 * Streams NARs (and any other file a narinfo's URL names) from the upstream that served the
 * narinfo. The request's path and query go upstream exactly as the client sent them. The
 * exchange runs asynchronously: see {@link NarProxy} for the flow control.
 */
public final class NarServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;

    private transient NcroService ncro;

    @Override
    public void init() throws ServletException {
        ncro = Services.lookup(getServletContext());
    }

    @Override
    protected void service(HttpServletRequest clientRequest, HttpServletResponse clientResponse) {
        String path = clientRequest.getRequestURI().substring(clientRequest.getContextPath().length() + 1);
        String query = clientRequest.getQueryString();
        String target = query == null ? path : path + "?" + query;
        Map<String, String> headers = new HashMap<>();
        for (String name : Collections.list(clientRequest.getHeaderNames())) {
            headers.put(name, clientRequest.getHeader(name));
        }
        boolean head = "HEAD".equals(clientRequest.getMethod());

        AsyncContext async = AccessLog.startAsync(clientRequest);
        // no container timeout: the engine's idle timeout bounds a stalled upstream, and a
        // slow client only slows the upstream down (backpressure)
        async.setTimeout(0);
        NarProxy proxy = new NarProxy(async, clientResponse, head);
        NarStream stream = ncro.nar(new NarRequest(target, head, headers), proxy);
        proxy.attach(stream);
        stream.start();
    }
}
