package dev.ncro.bench.load;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

/**
 * One client's keep-alive HTTP/1.1 connection, blocking, GET only: what one Nix download
 * slot does, with nothing in between that could hide a fault. A body must end exactly as the
 * response said it would (Content-Length, or the last chunk); a connection that ends earlier
 * is a {@link ShortBodyException}, never a clean answer.
 *
 * <p>A reused connection that the server had already closed (no byte of the answer arrived)
 * is retried once on a fresh connection, as curl does; such retries are counted, so that a
 * server closing connections under load is visible rather than hidden.
 */
final class HttpConnection implements AutoCloseable {
    /** The body ended before the length the response announced. */
    static final class ShortBodyException extends IOException {
        ShortBodyException(String message) {
            super(message);
        }
    }

    /** The answer to one GET. {@code head} holds the first bytes of the body (for checks). */
    record Answer(int status, long bodyBytes, byte[] head, boolean patternOk) {
        String headText() {
            return new String(head, StandardCharsets.UTF_8);
        }
    }

    /** Checks a body against an expected byte sequence, chunk by chunk, as it arrives. */
    interface BodyCheck {
        /** @return false when {@code buf[off, off + len)} is not what body offset {@code position} should hold */
        boolean accept(long position, byte[] buf, int off, int len);
    }

    private static final class StaleConnectionException extends IOException {
        StaleConnectionException(Throwable cause) {
            super(cause);
        }
    }

    private final InetSocketAddress address;
    private final String hostHeader;
    private final int connectTimeoutMs;
    private final int readTimeoutMs;
    private final byte[] buffer = new byte[64 * 1024];
    private volatile Socket socket;
    private InputStream in;
    private OutputStream out;
    private int staleRetries;
    private int connects;

    HttpConnection(String host, int port, int connectTimeoutMs, int readTimeoutMs) {
        this.address = new InetSocketAddress(host, port);
        this.hostHeader = host + ":" + port;
        this.connectTimeoutMs = connectTimeoutMs;
        this.readTimeoutMs = readTimeoutMs;
    }

    int staleRetries() {
        return staleRetries;
    }

    int connects() {
        return connects;
    }

    /**
     * GETs {@code path}, reads the whole body and keeps its first {@code keepBytes} bytes.
     *
     * @param check null, or a check of every body byte (its result is {@link Answer#patternOk})
     */
    Answer get(String path, int keepBytes, BodyCheck check) throws IOException {
        boolean reused = socket != null;
        if (!reused) open();
        try {
            return exchange(path, keepBytes, check, reused);
        } catch (StaleConnectionException e) {
            close();
            staleRetries++;
            open();
            try {
                return exchange(path, keepBytes, check, false);
            } catch (IOException again) {
                close();
                throw again;
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    private void open() throws IOException {
        Socket s = new Socket();
        try {
            s.setTcpNoDelay(true);
            s.connect(address, connectTimeoutMs);
            s.setSoTimeout(readTimeoutMs);
        } catch (IOException e) {
            s.close();
            throw e;
        }
        socket = s;
        in = new BufferedInputStream(s.getInputStream(), 16 * 1024);
        out = s.getOutputStream();
        connects++;
    }

    private Answer exchange(String path, int keepBytes, BodyCheck check, boolean reused) throws IOException {
        String request = "GET " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nUser-Agent: ncro-load-bench\r\n"
                + "Accept: */*\r\n\r\n";
        String statusLine;
        try {
            out.write(request.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            statusLine = readLine(true);
        } catch (java.net.SocketTimeoutException e) {
            throw e;
        } catch (IOException e) {
            if (reused) throw new StaleConnectionException(e);
            throw e;
        }
        if (statusLine == null) {
            if (reused) throw new StaleConnectionException(null);
            throw new java.io.EOFException("connection closed before the status line");
        }
        if (!statusLine.startsWith("HTTP/1.") || statusLine.length() < 12) throw new IOException("bad status line: " + statusLine);
        int status = Integer.parseInt(statusLine.substring(9, 12));
        long contentLength = -1;
        boolean chunked = false;
        boolean close = statusLine.startsWith("HTTP/1.0");
        for (String line; !(line = readLine(false)).isEmpty(); ) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).trim();
            switch (name) {
                case "content-length" -> contentLength = Long.parseLong(value);
                case "transfer-encoding" -> chunked = value.toLowerCase(Locale.ROOT).contains("chunked");
                case "connection" -> close |= value.equalsIgnoreCase("close");
                default -> { }
            }
        }
        Body body = new Body(keepBytes, check);
        if (status == 204 || status == 304) {
            // no body
        } else if (chunked) {
            for (long size; (size = chunkSize()) > 0; ) {
                body.read(size, "chunk");
                if (!readLine(false).isEmpty()) throw new IOException("no CRLF after a chunk");
            }
            while (!readLine(false).isEmpty()) {
                // trailers
            }
        } else if (contentLength >= 0) {
            body.read(contentLength, "Content-Length " + contentLength);
        } else {
            body.readToEnd();
            close = true;
        }
        if (close) close();
        return new Answer(status, body.total, Arrays.copyOf(body.kept, body.keptLength), body.patternOk);
    }

    private long chunkSize() throws IOException {
        String line = readLine(false);
        int semi = line.indexOf(';');
        return Long.parseLong((semi < 0 ? line : line.substring(0, semi)).trim(), 16);
    }

    /** A CRLF- (or LF-) terminated line; at EOF null if {@code eofAllowed} and nothing was read. */
    private String readLine(boolean eofAllowed) throws IOException {
        StringBuilder sb = new StringBuilder(64);
        for (int c; ; ) {
            c = in.read();
            if (c < 0) {
                if (eofAllowed && sb.length() == 0) return null;
                throw new ShortBodyException("connection closed inside the response head or chunk framing");
            }
            if (c == '\n') break;
            if (sb.length() > 16 * 1024) throw new IOException("header line too long");
            sb.append((char) c);
        }
        int n = sb.length();
        if (n > 0 && sb.charAt(n - 1) == '\r') sb.setLength(n - 1);
        return sb.toString();
    }

    /** The body of one answer as it is read: counted, its head kept, optionally checked. */
    private final class Body {
        final byte[] kept;
        int keptLength;
        long total;
        boolean patternOk = true;
        final BodyCheck check;

        Body(int keepBytes, BodyCheck check) {
            this.kept = new byte[keepBytes];
            this.check = check;
        }

        void read(long length, String framing) throws IOException {
            long left = length;
            while (left > 0) {
                int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
                if (n < 0) {
                    throw new ShortBodyException("body ended after " + (total) + " bytes; " + framing + " promised "
                            + (total + left));
                }
                take(n);
                left -= n;
            }
        }

        void readToEnd() throws IOException {
            for (int n; (n = in.read(buffer)) >= 0; ) take(n);
        }

        private void take(int n) {
            if (keptLength < kept.length) {
                int k = Math.min(n, kept.length - keptLength);
                System.arraycopy(buffer, 0, kept, keptLength, k);
                keptLength += k;
            }
            if (check != null && patternOk) patternOk = check.accept(total, buffer, 0, n);
            total += n;
        }
    }

    @Override
    public void close() {
        Socket s = socket;
        socket = null;
        in = null;
        out = null;
        if (s != null) {
            try {
                s.close();
            } catch (IOException e) {
                // closing: nothing to do
            }
        }
    }
}
