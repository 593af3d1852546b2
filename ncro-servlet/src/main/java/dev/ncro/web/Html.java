package dev.ncro.web;

/** Text into HTML: everything the status page shows goes through {@link #escape}. */
final class Html {
    private Html() {}

    /**
     * Escapes {@code text} for an element's content or a quoted attribute value: {@code & < > " '}
     * become entities, and control characters (which HTML forbids) become U+FFFD. Null is
     * the empty string.
     */
    static String escape(String text) {
        if (text == null) return "";
        StringBuilder out = new StringBuilder(text.length() + 16);
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f ? '\uFFFD' : c);
            }
        }
        return out.toString();
    }
}
