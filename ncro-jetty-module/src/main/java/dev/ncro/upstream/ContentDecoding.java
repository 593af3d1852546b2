package dev.ncro.upstream;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.brotli.dec.BrotliInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * Undoes the {@code Content-Encoding} of a small answer (a narinfo). S3 caches written with
 * {@code narinfo-compression} store narinfos compressed and serve them with
 * {@code Content-Encoding: xz} (or gzip, zstd, br, bzip2) whatever the request asked; Nix's
 * curl decodes them, so ncro must too.
 *
 * <p>Codings: {@code gzip}/{@code x-gzip}, {@code deflate} (zlib or raw), {@code xz},
 * {@code bzip2}/{@code x-bzip2}, {@code br}, {@code zstd}; {@code identity} is a no-op; several
 * codings are undone last first. The output is capped: a body that decodes to more than the
 * limit (a decompression bomb) fails like an oversized body. An unknown coding fails with a
 * message naming it; it is never taken for a not-found.
 */
final class ContentDecoding {
    /** Memory an xz stream may ask for (its dictionary); narinfos need a few KiB. */
    private static final int XZ_MEMORY_LIMIT_KIB = 64 * 1024;

    private ContentDecoding() {}

    /**
     * @param contentEncoding the header's value, or null
     * @param maxBytes the most bytes the decoded body may have
     */
    static byte[] decode(String contentEncoding, byte[] body, int maxBytes) throws IOException {
        List<String> codings = codings(contentEncoding);
        byte[] out = body;
        for (String coding : codings) {
            try (InputStream in = decoder(coding, new ByteArrayInputStream(out))) {
                out = readAtMost(in, maxBytes, coding);
            } catch (IOException | RuntimeException e) {
                if (e instanceof UnsupportedEncodingException || e instanceof TooLargeException) throw (IOException) e;
                throw new IOException("cannot decode Content-Encoding " + coding + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** The codings to undo, in the order to undo them. */
    static List<String> codings(String contentEncoding) {
        List<String> codings = new ArrayList<>();
        if (contentEncoding == null) return codings;
        for (String c : contentEncoding.split(",")) {
            String coding = c.trim().toLowerCase(Locale.ROOT);
            if (!coding.isEmpty() && !coding.equals("identity")) codings.add(coding);
        }
        Collections.reverse(codings); // applied first, listed first
        return codings;
    }

    private static InputStream decoder(String coding, ByteArrayInputStream in) throws IOException {
        return switch (coding) {
            case "gzip", "x-gzip" -> new GZIPInputStream(in);
            case "deflate" -> new InflaterInputStream(in, new Inflater(!isZlib(in)));
            case "xz" -> new XZInputStream(in, XZ_MEMORY_LIMIT_KIB);
            case "bzip2", "x-bzip2" -> new BZip2CompressorInputStream(in, true);
            case "br" -> new BrotliInputStream(in);
            case "zstd" -> new io.airlift.compress.zstd.ZstdInputStream(in);
            default -> throw new UnsupportedEncodingException("unsupported Content-Encoding '" + coding
                    + "' (ncro decodes gzip, deflate, xz, bzip2, br and zstd)");
        };
    }

    /** HTTP's "deflate" is zlib-wrapped, but some servers send raw deflate: tell them apart. */
    private static boolean isZlib(ByteArrayInputStream in) {
        in.mark(2);
        int b0 = in.read();
        int b1 = in.read();
        in.reset();
        return b0 >= 0 && b1 >= 0 && (b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0;
    }

    private static byte[] readAtMost(InputStream in, int maxBytes, String coding) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(Math.min(maxBytes, 4096));
        byte[] buffer = new byte[8192];
        int n;
        while ((n = in.read(buffer)) != -1) {
            if (out.size() + n > maxBytes) {
                throw new TooLargeException("answer decodes (" + coding + ") to more than the " + maxBytes + "-byte limit");
            }
            out.write(buffer, 0, n);
        }
        return out.toByteArray();
    }

    /** A coding ncro has no decoder for. */
    static final class UnsupportedEncodingException extends IOException {
        private static final long serialVersionUID = 1L;

        UnsupportedEncodingException(String message) {
            super(message);
        }
    }

    private static final class TooLargeException extends IOException {
        private static final long serialVersionUID = 1L;

        TooLargeException(String message) {
            super(message);
        }
    }
}
