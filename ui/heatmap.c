#include "ui/heatmap.h"

#include <math.h>
#include <stdio.h>

static const uint32_t HEAT_BLOCKS[5] = {' ', 0x2591, 0x2592, 0x2593, 0x2588};
static const char HEAT_ASCII[] = " .:-=+*#%@";
#define HEAT_ASCII_LEVELS 10

int heatmap_level(double v, double vmax, int levels) {
    if (!isfinite(v) || !(v > 0) || !(vmax > 0) || levels < 2) return 0;
    double t = v / vmax;
    if (t > 1) t = 1;
    /* (0, 1/(L-1)] -> 1, ..., ((L-2)/(L-1), 1] -> L-1 */
    int k = (int)ceil(t * (levels - 1) - 1e-9);
    return gclamp(k, 1, levels - 1);
}

/* Colour of a shade, by its place on the scale: a heat ramp. */
static int heat_colour(int level, int levels) {
    double t = (double)level / (levels - 1);
    return t <= 0.25 ? GC_BLUE : t <= 0.5 ? GC_CYAN : t <= 0.75 ? GC_YELLOW : GC_RED;
}

static void heat_shade(Grid *g, int x, int y, int w, int level, const DrawOpts *o) {
    int levels = o->unicode ? 5 : HEAT_ASCII_LEVELS;
    uint32_t cp = o->unicode ? HEAT_BLOCKS[level] : (uint32_t)HEAT_ASCII[level];
    Style st = level ? style_pick(o, heat_colour(level, levels), 0, 0) : gstyle(0, 0, 0);
    for (int i = 0; i < w; i++) grid_put(g, x + i, y, cp, st);
}

void heatmap_draw(Grid *g, Rect r, const HeatmapSpec *h, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (r.w < 8 || r.h < 1) return;
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    if (h->rows <= 0 || h->cols <= 0 || !h->values) {
        grid_text(g, r.x + gmax(0, (r.w - 11) / 2), r.y + (r.h - 1) / 2, r.w, dim, "no data yet");
        return;
    }
    int levels = o->unicode ? 5 : HEAT_ASCII_LEVELS;

    double vmax = 0;
    for (int i = 0; i < h->rows * h->cols; i++)
        if (isfinite(h->values[i]) && h->values[i] > vmax) vmax = h->values[i];

    /* Label column: as wide as the longest name, at most a third of r. */
    int lw = 1;
    for (int i = 0; i < h->rows; i++) lw = gmax(lw, utf8_width(h->row_names && h->row_names[i] ? h->row_names[i] : ""));
    lw = gmin(lw, gmax(4, r.w / 3));
    int x0 = r.x + lw + 1, avail = r.x + r.w - x0;
    if (avail < 1) return;
    /* Up to 5 cells per index when there is room (wider cells read
     * better); fewer cells than indices: groups of indices per cell. */
    int group = (h->cols + avail - 1) / avail;
    int ncell = (h->cols + group - 1) / group;
    int cw = gclamp(avail / ncell, 1, 5);

    /* Rows: the header (when at least 4 rows of matrices remain under
     * it, or all of them fit), the matrices, the legend (unless r has a
     * single row). */
    int legend = r.h >= 2;
    int header = r.h - legend - 1 >= gmin(h->rows, 4);
    int body_y = r.y + header, body_h = r.h - header - legend;

    if (header) {
        int next_free = x0;
        for (int c = 0; c < ncell; c++) {
            char lab[16];
            snprintf(lab, sizeof(lab), "%d", c * group + 1);
            int x = x0 + c * cw;
            if (x < next_free) continue;
            int w = grid_text(g, x, r.y, r.x + r.w - x, dim, lab);
            next_free = x + w + 1;
        }
    }

    int first = 0;
    if (h->rows > body_h) {
        int sel = gclamp(h->selected, 0, h->rows - 1);
        first = gclamp(sel - body_h / 2, 0, h->rows - body_h);
    }
    for (int row = 0; row < body_h && first + row < h->rows; row++) {
        int i = first + row, y = body_y + row;
        const char *name = h->row_names && h->row_names[i] ? h->row_names[i] : "";
        Style ls = i == h->selected ? style_pick(o, GC_DEFAULT, GA_REVERSE | GA_BOLD, 0) : gstyle(0, 0, 0);
        grid_text_fit(g, r.x, y, lw, ls, name, o->unicode);
        for (int c = 0; c < ncell; c++) {
            double sum = 0;
            int n = 0;
            for (int k = c * group; k < (c + 1) * group && k < h->cols; k++) {
                double v = h->values[(size_t)i * (size_t)h->cols + (size_t)k];
                if (isfinite(v)) { sum += v; n++; }
            }
            int x = x0 + c * cw;
            if (!n) {
                /* A missing index, unlike a zero, is marked. */
                Style ms = style_pick(o, GC_DEFAULT, GA_DIM, 0);
                for (int j = 0; j < cw; j++) grid_put(g, x + j, y, o->unicode ? 0x00B7 : ' ', ms);
                continue;
            }
            heat_shade(g, x, y, cw, heatmap_level(sum / n, vmax, levels), o);
        }
    }

    if (!legend) return;
    /* Legend: "0 ░▒▓█ 2.31", and where rows are hidden, which are shown. */
    int y = r.y + r.h - 1, x = r.x;
    x += grid_text(g, x, y, r.x + r.w - x, dim, "0 ");
    for (int k = 1; k < levels && x < r.x + r.w; k++) {
        heat_shade(g, x, y, 1, k, o);
        x++;
    }
    char max_s[32];
    snprintf(max_s, sizeof(max_s), " %.3g", vmax);
    x += grid_text(g, x, y, r.x + r.w - x, dim, max_s);
    if (h->rows > body_h) {
        char pos[48];
        int last = gmin(first + body_h, h->rows);
        snprintf(pos, sizeof(pos), "rows %d-%d of %d", first + 1, last, h->rows);
        int w = utf8_width(pos);
        if (r.x + r.w - w > x + 1) grid_text(g, r.x + r.w - w, y, w, dim, pos);
    }
}
