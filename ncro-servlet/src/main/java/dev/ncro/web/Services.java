package dev.ncro.web;

import dev.ncro.api.NcroService;
import jakarta.servlet.ServletContext;
import jakarta.servlet.ServletException;

/** Finds the engine the context XML handed to this web application. */
final class Services {
    private Services() {}

    static NcroService lookup(ServletContext context) throws ServletException {
        Object service = context.getAttribute(NcroService.ATTRIBUTE);
        if (service instanceof NcroService ncro) return ncro;
        if (service != null) {
            // the API class came from two class loaders: the engine jar is also in WEB-INF/lib
            throw new ServletException("context attribute " + NcroService.ATTRIBUTE + " is a "
                    + service.getClass().getName() + " from another class loader; dev.ncro.api must come only from lib/ncro/");
        }
        throw new ServletException("context attribute " + NcroService.ATTRIBUTE
                + " is not set: enable the ncro Jetty module and deploy with webapps/ncro.xml");
    }
}
