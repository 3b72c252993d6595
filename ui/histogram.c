#include "ui/histogram.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int histogram_count(const double *v, int n, double lo, double hi, int bins, int *counts) {
    if (bins <= 0) return 0;
    memset(counts, 0, (size_t)bins * sizeof(int));
    if (!(hi > lo)) return 0;
    int counted = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || v[i] < lo || v[i] > hi) continue;
        int b = (int)floor((v[i] - lo) / (hi - lo) * bins);
        counts[gclamp(b, 0, bins - 1)]++;
        counted++;
    }
    return counted;
}

uint32_t histogram_glyph(int eighths, int unicode) {
    eighths = gclamp(eighths, 0, 8);
    if (unicode) return eighths ? 0x2580 + (uint32_t)eighths : ' '; /* U+2581..U+2588 */
    /* ASCII has no eighths: a low stub, a half, a full cell. */
    return eighths == 0 ? ' ' : eighths <= 3 ? '_' : eighths <= 6 ? '=' : '#';
}

/* The bars from the bottom row up: e eighths of bar in cells x..x+w-1. */
static void hist_bar(Grid *g, int x, int w, int bottom, int rows, int e, Style st, int unicode) {
    for (int row = 0; row < rows; row++) {
        int fill = gclamp(e - row * 8, 0, 8);
        if (!fill) break;
        uint32_t cp = histogram_glyph(fill, unicode);
        for (int j = 0; j < w; j++) grid_put(g, x + j, bottom - row, cp, st);
    }
}

/* Bar height in eighths: a non-empty bar always shows at least one. */
static int hist_eighths(double v, double vmax, int rows) {
    if (!(v > 0) || !(vmax > 0)) return 0;
    int e = (int)lround(v / vmax * rows * 8);
    return gclamp(e, 1, rows * 8);
}

/* Left axis: top label at the first row, "0" at the last bar row. */
static void hist_axis(Grid *g, int ax, int y, int rows, int lw, const char *top, const DrawOpts *o) {
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    grid_vline(g, ax, y, rows, o->unicode ? 0x2502 : '|', dim);
    grid_text(g, ax - utf8_width(top), y, lw, dim, top);
    grid_put(g, ax, y, o->unicode ? 0x2524 : '+', dim);
    if (rows >= 2) {
        grid_text(g, ax - 1, y + rows - 1, 1, dim, "0");
        grid_put(g, ax, y + rows - 1, o->unicode ? 0x2524 : '+', dim);
    }
}

static void hist_by_index(Grid *g, Rect r, const HistogramSpec *h, const DrawOpts *o) {
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    Style bar = style_pick(o, h->colour ? h->colour : GC_CYAN, 0, 0);
    double vmax = 0;
    for (int i = 0; i < h->n; i++)
        if (isfinite(h->values[i]) && h->values[i] > vmax) vmax = h->values[i];
    if (isfinite(h->hi) && h->hi > 0) vmax = h->hi;
    char top[24];
    snprintf(top, sizeof(top), "%.3g", vmax);
    int lw = utf8_width(top), rows = r.h - 1;
    int ax = r.x + lw, px = ax + 1, pw = r.x + r.w - px;
    hist_axis(g, ax, r.y, rows, lw, top, o);
    int bw = pw / h->n, gap = bw >= 2;
    int bottom = r.y + rows - 1;
    for (int i = 0; i < h->n; i++) {
        int x = px + i * bw;
        if (!isfinite(h->values[i])) {
            /* A missing index (a pruned rank) is marked, not drawn as 0. */
            for (int j = 0; j < bw - gap; j++) grid_put(g, x + j, bottom, o->unicode ? 0x00B7 : ' ', dim);
            continue;
        }
        hist_bar(g, x, bw - gap, bottom, rows, hist_eighths(h->values[i], vmax, rows), bar, o->unicode);
    }
    /* Indices under the bars: the last one always, the others where they
     * fit without touching their neighbours or the last. */
    char lab[16];
    int lastw = snprintf(lab, sizeof(lab), "%d", h->n);
    int last_x = px + (h->n - 1) * bw + gmax(0, (bw - gap - lastw) / 2);
    int next_free = px;
    for (int i = 0; i < h->n; i++) {
        int w = snprintf(lab, sizeof(lab), "%d", i + 1);
        int x = i == h->n - 1 ? last_x : px + i * bw + gmax(0, (bw - gap - w) / 2);
        if (x < next_free || (i < h->n - 1 && x + w + 1 > last_x)) continue;
        grid_text(g, x, r.y + r.h - 1, r.x + r.w - x, dim, lab);
        next_free = x + w + 1;
    }
}

void histogram_draw(Grid *g, Rect r, const HistogramSpec *h, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (r.w < 6 || r.h < 2) return;
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);

    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < h->n; i++)
        if (isfinite(h->values[i])) {
            lo = fmin(lo, h->values[i]);
            hi = fmax(hi, h->values[i]);
        }
    if (!isfinite(lo)) {
        grid_text(g, r.x + gmax(0, (r.w - 11) / 2), r.y + (r.h - 1) / 2, r.w, dim, "no data yet");
        return;
    }
    if (h->by_index) {
        char top[24];
        int lw = snprintf(top, sizeof(top), "%.3g", hi);
        if (h->n <= r.w - lw - 1) {
            hist_by_index(g, r, h, o);
            return;
        }
    }
    /* Singular values are >= 0: start the axis at 0 so a spectrum that
     * collapses toward 0 shows as bars moving left. */
    lo = fmin(lo, 0.0);
    if (isfinite(h->lo)) lo = h->lo;
    if (isfinite(h->hi)) hi = h->hi;
    if (!(hi > lo)) hi = lo + 1;

    int bars_h = r.h - 1;                       /* last row: the range */
    /* Count axis: as wide as the number of values, which no count
     * exceeds, so the layout does not depend on the binning. */
    int counts[256], n_fin = 0;
    char top[16];
    for (int i = 0; i < h->n; i++) n_fin += isfinite(h->values[i]) != 0;
    snprintf(top, sizeof(top), "%d", n_fin);
    int lw = (int)strlen(top);
    int ax = r.x + lw, px = ax + 1, pw = r.x + r.w - px;
    if (pw < 2) return;

    int bins = h->bins > 0 ? h->bins : gclamp(pw / 2, 1, 16);
    bins = gclamp(bins, 1, gmin(pw, 256));
    histogram_count(h->values, h->n, lo, hi, bins, counts);
    int maxc = 0;
    for (int b = 0; b < bins; b++) maxc = gmax(maxc, counts[b]);
    snprintf(top, sizeof(top), "%d", maxc);

    hist_axis(g, ax, r.y, bars_h, lw, top, o);

    Style bar = style_pick(o, h->colour ? h->colour : GC_CYAN, 0, 0);
    int bw = pw / bins;                         /* cells per bin */
    int gap = bw >= 2;                          /* a gap between bars reads better */
    for (int b = 0; b < bins; b++)
        hist_bar(g, px + b * bw, bw - gap, r.y + bars_h - 1, bars_h, hist_eighths(counts[b], maxc, bars_h), bar,
                 o->unicode);

    /* The range under the bars: lo at the left, hi at the right end of the
     * last bar, the middle between when there is room. */
    char a[24], z[24], m[24];
    snprintf(a, sizeof(a), "%.3g", lo);
    snprintf(z, sizeof(z), "%.3g", hi);
    snprintf(m, sizeof(m), "%.3g", (lo + hi) / 2);
    int y = r.y + r.h - 1, right = px + bins * bw;
    int aw = utf8_width(a), zw = utf8_width(z), mw = utf8_width(m);
    grid_text(g, px, y, aw, dim, a);
    int zx = gmax(px + aw + 1, right - zw);
    grid_text(g, zx, y, r.x + r.w - zx, dim, z);
    int mx = px + (right - px) / 2 - mw / 2;
    if (mx > px + aw + 1 && mx + mw < zx) grid_text(g, mx, y, mw, dim, m);
}
