package dev.ncro.testing;

import java.io.IOException;
import java.io.InputStream;

/** For upstreams scripted on a raw socket, where a fault needs bytes no HTTP server would send. */
public final class RawHttp {
    private RawHttp() {}

    /** Reads a request head up to and including its blank line (or to the end of the stream). */
    public static String readHead(InputStream in) throws IOException {
        StringBuilder sb = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            sb.append((char) c);
            if (sb.length() >= 4 && sb.substring(sb.length() - 4).equals("\r\n\r\n")) break;
        }
        return sb.toString();
    }
}
