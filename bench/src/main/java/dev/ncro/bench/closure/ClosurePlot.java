package dev.ncro.bench.closure;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * The closure benchmark's plot: for each mode a pair of bars, Nix alone and through ncro, in
 * seconds, and the critical-path bound as a dashed line. Drawn with headless AWT (the
 * benchmark JVM runs with {@code -Djava.awt.headless=true}), written with ImageIO.
 */
final class ClosurePlot {
    /** One mode: its label and the two median times in milliseconds. */
    record Bar(String label, long directMillis, long ncroMillis) {}

    private static final Color DIRECT = new Color(0x9e9e9e);
    private static final Color NCRO = new Color(0x1f77b4);
    private static final int WIDTH = 960;
    private static final int HEIGHT = 520;
    private static final int LEFT = 70;
    private static final int RIGHT = 20;
    private static final int TOP = 60;
    private static final int BOTTOM = 70;

    private ClosurePlot() {}

    static void write(Path png, String title, List<Bar> bars, long boundMillis) throws IOException {
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
            g.drawString(title, LEFT, 25);

            long max = bars.stream().mapToLong(b -> Math.max(b.directMillis(), b.ncroMillis())).max().orElse(1);
            double top = niceCeiling(max / 1000.0);
            int plotHeight = HEIGHT - TOP - BOTTOM;
            int plotWidth = WIDTH - LEFT - RIGHT;
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            // y axis: five grid lines, in seconds
            for (int i = 0; i <= 5; i++) {
                double value = top * i / 5;
                int y = TOP + plotHeight - (int) Math.round(plotHeight * value / top);
                g.setColor(new Color(0xe0e0e0));
                g.drawLine(LEFT, y, WIDTH - RIGHT, y);
                g.setColor(Color.DARK_GRAY);
                g.drawString(String.format("%.1f s", value), 15, y + 4);
            }
            int group = plotWidth / bars.size();
            int barWidth = group / 3;
            for (int i = 0; i < bars.size(); i++) {
                Bar bar = bars.get(i);
                int x = LEFT + i * group + group / 6;
                drawBar(g, x, bar.directMillis(), top, plotHeight, barWidth, DIRECT);
                drawBar(g, x + barWidth, bar.ncroMillis(), top, plotHeight, barWidth, NCRO);
                g.setColor(Color.BLACK);
                int labelWidth = g.getFontMetrics().stringWidth(bar.label());
                g.drawString(bar.label(), LEFT + i * group + (group - labelWidth) / 2, HEIGHT - BOTTOM + 18);
            }
            int boundY = TOP + plotHeight - (int) Math.round(plotHeight * boundMillis / 1000.0 / top);
            g.setColor(new Color(0xd62728));
            g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 4}, 0));
            g.drawLine(LEFT, boundY, WIDTH - RIGHT, boundY);
            // legend
            int ly = HEIGHT - 25;
            g.setColor(DIRECT);
            g.fillRect(LEFT, ly - 10, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString("Nix alone (substituters = the caches)", LEFT + 18, ly);
            g.setColor(NCRO);
            g.fillRect(LEFT + 300, ly - 10, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString("through ncro (substituters = ncro)", LEFT + 318, ly);
            // the bound's label goes in the legend: on the line it would hide bars
            g.setColor(new Color(0xd62728));
            g.drawLine(LEFT + 580, ly - 4, LEFT + 610, ly - 4);
            g.setColor(Color.BLACK);
            g.drawString(String.format("critical-path bound (narinfo phase) %.2f s", boundMillis / 1000.0), LEFT + 618, ly);
        } finally {
            g.dispose();
        }
        Files.createDirectories(png.toAbsolutePath().getParent());
        ImageIO.write(image, "png", png.toFile());
    }

    private static void drawBar(Graphics2D g, int x, long millis, double top, int plotHeight, int width, Color color) {
        int h = (int) Math.round(plotHeight * millis / 1000.0 / top);
        g.setColor(color);
        g.fillRect(x, TOP + plotHeight - h, width - 4, h);
        g.setColor(Color.BLACK);
        String text = String.format("%.2f", millis / 1000.0);
        g.drawString(text, x + (width - 4 - g.getFontMetrics().stringWidth(text)) / 2, TOP + plotHeight - h - 4);
    }

    /** The smallest of 1, 2, 2.5, 5 × 10^k not below {@code value}. */
    private static double niceCeiling(double value) {
        double magnitude = Math.pow(10, Math.floor(Math.log10(Math.max(value, 0.001))));
        for (double step : new double[] {1, 2, 2.5, 5, 10}) {
            if (step * magnitude >= value) return step * magnitude;
        }
        return 10 * magnitude;
    }
}
