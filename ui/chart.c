#include "ui/chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ema_init(Ema *e, double weight) {
    e->weight = weight < 0 ? 0 : weight >= 1 ? 0.999 : weight;
    e->acc = 0;
    e->k = 0;
}

double ema_push(Ema *e, double v) {
    if (!isfinite(v)) return NAN;
    e->acc = e->weight * e->acc + (1.0 - e->weight) * v;
    e->k++;
    /* The accumulator starts at 0, so after k samples its weights sum to
     * 1 − w^k, not 1; dividing by that sum is TensorBoard's debiasing. */
    double debias = 1.0 - pow(e->weight, (double)e->k);
    return debias > 0 ? e->acc / debias : v;
}

void chart_smooth(const double *y, int n, double weight, double *out) {
    Ema e;
    ema_init(&e, weight);
    for (int i = 0; i < n; i++) out[i] = ema_push(&e, y[i]);
}

/* 10^k, computed so that negative powers are correctly rounded: 3 / 10 is
 * the double nearest 0.3, 3 * 0.1 is not, and tick labels would show it. */
static double chart_scale(double m, int k) { return k >= 0 ? m * pow(10.0, k) : m / pow(10.0, -k); }

/* The one-value case: room around the value, so it sits mid-axis. */
static void chart_widen(double *lo, double *hi) {
    if (*hi < *lo) { double t = *lo; *lo = *hi; *hi = t; }
    if (*hi - *lo <= 1e-12 * fmax(1.0, fmax(fabs(*lo), fabs(*hi)))) {
        double d = *lo != 0 ? fabs(*lo) * 0.1 : 1.0;
        *lo -= d;
        *hi += d;
    }
}

/* Walks the nice steps from small to large and stops at the first whose
 * tick count (covering or within [lo, hi]) is at most max_ticks. */
static int chart_nice(double lo, double hi, int max_ticks, int within, double *out, int cap, double *step) {
    if (step) *step = 0;
    if (!isfinite(lo) || !isfinite(hi) || cap < 2) return 0;
    if (max_ticks < 2) max_ticks = 2;
    chart_widen(&lo, &hi);
    double raw = (hi - lo) / (max_ticks - 1);
    int k0 = (int)floor(log10(raw)) - 1;
    static const int M[3] = {1, 2, 5};
    for (int k = k0; k <= k0 + 5; k++) {
        for (int j = 0; j < 3; j++) {
            double s = chart_scale(M[j], k);
            double a = within ? ceil(lo / s - 1e-9) : floor(lo / s + 1e-9);
            double b = within ? floor(hi / s + 1e-9) : ceil(hi / s - 1e-9);
            double count = b - a + 1;
            if (count > max_ticks || count > cap) continue;
            if (within && count < 1) break; /* larger steps only have fewer */
            for (int i = 0; i < (int)count; i++) out[i] = chart_scale((a + i) * M[j], k);
            if (step) *step = s;
            return (int)count;
        }
    }
    out[0] = lo;
    out[1] = hi;
    if (step) *step = hi - lo;
    return 2;
}

int chart_ticks(double lo, double hi, int max_ticks, double *out, int cap, double *step) {
    return chart_nice(lo, hi, max_ticks, 0, out, cap, step);
}

int chart_ticks_within(double lo, double hi, int max_ticks, double *out, int cap, double *step) {
    return chart_nice(lo, hi, max_ticks, 1, out, cap, step);
}

/* Counts (and writes, when out) the ticks m·10^e inside [lo, hi] for m in
 * mant (n_mant of them) and e a multiple of every_k. */
static int chart_log_set(double lo, double hi, const int *mant, int n_mant, int every_k, double *out, int cap) {
    int e0 = (int)floor(log10(lo)), e1 = (int)floor(log10(hi));
    int n = 0;
    for (int e = e0; e <= e1; e++) {
        if (((e % every_k) + every_k) % every_k) continue;
        for (int j = 0; j < n_mant; j++) {
            double t = chart_scale(mant[j], e);
            if (t < lo * (1 - 1e-9) || t > hi * (1 + 1e-9)) continue;
            if (out && n < cap) out[n] = t;
            n++;
        }
    }
    return n;
}

int chart_log_ticks(double lo, double hi, int max_ticks, double *out, int cap, double *linear_step) {
    if (linear_step) *linear_step = 0;
    if (!(lo > 0) || !(hi > 0) || !isfinite(lo) || !isfinite(hi)) return 0;
    if (hi < lo) { double t = lo; lo = hi; hi = t; }
    if (max_ticks < 2) max_ticks = 2;
    static const int ALL[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, ONE25[3] = {1, 2, 5}, ONE[1] = {1};
    struct { const int *m; int n, every; } sets[] = {
        {ALL, 9, 1}, {ONE25, 3, 1}, {ONE, 1, 1}, {ONE, 1, 2}, {ONE, 1, 5}, {ONE, 1, 10}, {ONE, 1, 20}, {ONE, 1, 50},
    };
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        int n = chart_log_set(lo, hi, sets[i].m, sets[i].n, sets[i].every, NULL, 0);
        if (n < 2) break; /* sparser sets only have fewer */
        if (n <= max_ticks && n <= cap) return chart_log_set(lo, hi, sets[i].m, sets[i].n, sets[i].every, out, cap);
    }
    /* Less than a "1..9" pair inside: linear ticks. */
    double s;
    int n = chart_ticks_within(lo, hi, max_ticks, out, cap, &s);
    if (linear_step) *linear_step = s;
    return n;
}

/* "1.50" -> "1.5", "2.00" -> "2": for k-suffixed and exponent labels,
 * where the unit already says the scale. */
static void chart_strip_zeros(char *s) {
    char *dot = strchr(s, '.');
    if (!dot) return;
    char *end = s + strlen(s) - 1;
    while (end > dot && *end == '0') *end-- = 0;
    if (end == dot) *end = 0;
}

void chart_tick_label(double v, double step, char *buf, size_t cap) {
    if (!isfinite(v)) { snprintf(buf, cap, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"); return; }
    step = fabs(step);
    double a = fabs(v);
    if (!(step > 0)) step = a > 0 ? a : 1;
    if (a < step * 1e-6) { snprintf(buf, cap, "0"); return; }
    if (a >= 1000 && step >= 100 && a < 1e12) {
        double unit = a >= 1e6 && step >= 1e5 ? 1e6 : 1e3;
        int dec = gmax(0, -(int)floor(log10(step / unit) + 1e-9));
        char num[64];
        snprintf(num, sizeof(num), "%.*f", gmin(dec, 6), v / unit);
        chart_strip_zeros(num);
        snprintf(buf, cap, "%s%c", num, unit == 1e6 ? 'M' : 'k');
        return;
    }
    if (a < 1e-3 || a >= 1e12) {
        /* Significant digits: as many as separate this tick from the next. */
        int sig = (int)floor(log10(a) + 1e-9) - (int)floor(log10(step) + 1e-9) + 1;
        sig = gclamp(sig, 1, 4);
        char num[64];
        snprintf(num, sizeof(num), "%.*e", sig - 1, v);
        char *e = strchr(num, 'e');
        char exp[16];
        int ex = e ? (int)strtol(e + 1, NULL, 10) : 0;
        if (e) *e = 0;
        chart_strip_zeros(num);
        snprintf(exp, sizeof(exp), "e%d", ex);
        snprintf(buf, cap, "%s%s", num, exp);
        return;
    }
    int dec = gclamp(-(int)floor(log10(step) + 1e-9), 0, 6);
    snprintf(buf, cap, "%.*f", dec, v);
}

/* ---- drawing ---------------------------------------------------------- */

/* The plot area in dots: Braille gives 2 x 4 dots per cell, ASCII one. */
typedef struct {
    Grid *g;
    Rect plot;
    int unicode;
    int dpx, dpy;          /* dots per cell across and down */
    int dots_w, dots_h;
    double xlo, xhi;
    double ylo, yhi;       /* in axis units: log10 of the value on a log axis */
    int log_y;
} ChartCanvas;

static double chart_axis_y(const ChartCanvas *cv, double v) { return cv->log_y ? log10(v) : v; }

/* A sample the chart can place: finite, positive on a log axis, inside
 * the x range. */
static int chart_usable(const ChartCanvas *cv, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return 0;
    if (cv->log_y && !(y > 0)) return 0;
    double tol = (cv->xhi - cv->xlo) * 1e-9;
    return x >= cv->xlo - tol && x <= cv->xhi + tol;
}

static int chart_dot_x(const ChartCanvas *cv, double x) {
    if (!(cv->xhi > cv->xlo)) return 0;
    double t = (x - cv->xlo) / (cv->xhi - cv->xlo);
    return gclamp((int)lround(t * (cv->dots_w - 1)), 0, cv->dots_w - 1);
}

static int chart_dot_y(const ChartCanvas *cv, double v) {
    double t = (chart_axis_y(cv, v) - cv->ylo) / (cv->yhi - cv->ylo);
    return gclamp((int)lround((1.0 - t) * (cv->dots_h - 1)), 0, cv->dots_h - 1);
}

static void chart_dot(ChartCanvas *cv, int dx, int dy, Style st, char glyph) {
    Cell *c = grid_at(cv->g, cv->plot.x + dx / cv->dpx, cv->plot.y + dy / cv->dpy);
    if (!c) return;
    if (cv->unicode) {
        /* Dots of every series in a cell add up; the cell takes the
         * colour of the last one drawn, which is why raw series are drawn
         * first and smoothed ones on top. */
        uint32_t bit = braille_bit(dx % 2, dy % 4);
        c->cp = (c->cp >= BRAILLE_BASE && c->cp <= BRAILLE_BASE + 0xFF) ? (c->cp | bit) : (BRAILLE_BASE | bit);
    } else {
        c->cp = (unsigned char)glyph;
    }
    c->st = st;
}

/* Bresenham: every dot between the two samples, so a curve stays
 * connected however steeply it moves between neighbouring columns. */
static void chart_line(ChartCanvas *cv, int x0, int y0, int x1, int y1, Style st, char glyph) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        chart_dot(cv, x0, y0, st, glyph);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

static double chart_x_of(const ChartSeries *s, int i) { return s->x ? s->x[i] : (double)i; }

static void chart_plot(ChartCanvas *cv, const ChartSeries *s, double smoothing, Style st, char glyph) {
    Ema e;
    ema_init(&e, smoothing);
    int have = 0, px = 0, py = 0;
    for (int i = 0; i < s->n; i++) {
        double x = chart_x_of(s, i), v = s->y[i];
        if (smoothing > 0) v = ema_push(&e, v);
        if (!chart_usable(cv, x, v)) { have = 0; continue; }
        int dx = chart_dot_x(cv, x), dy = chart_dot_y(cv, v);
        if (have) chart_line(cv, px, py, dx, dy, st, glyph);
        else chart_dot(cv, dx, dy, st, glyph);
        have = 1;
        px = dx;
        py = dy;
    }
}

static char chart_glyph(const ChartSeries *s, int i) {
    static const char DEFAULTS[] = "*+ox#@";
    return s->ascii ? s->ascii : DEFAULTS[i % 6];
}

/* The legend row: "━ lower 0.177  ━ dev 0.511". When that does not fit,
 * the same tighter ("━lower 0.177 ━dev 0.511"), then names only, then
 * names cut to equal shares of the row, so every series keeps its key. */
static void chart_legend(Grid *g, Rect r, const ChartSpec *c, const DrawOpts *o) {
    int n = gmin(c->n_series, 8);
    if (n <= 0) return;
    char values[8][32];
    for (int i = 0; i < n; i++) {
        const ChartSeries *s = &c->series[i];
        values[i][0] = 0;
        for (int k = s->n - 1; k >= 0 && c->legend_values; k--)
            if (isfinite(s->y[k])) {
                snprintf(values[i], sizeof(values[i]), " %.3g", s->y[k]);
                break;
            }
    }
    int level = 0;
    for (; level < 3; level++) {
        int with_values = level < 2 && c->legend_values, tight = level >= 1, total = 0;
        for (int i = 0; i < n; i++)
            total += (i ? (tight ? 1 : 2) : 0) + (tight ? 1 : 2) +
                     utf8_width(c->series[i].name ? c->series[i].name : "") + (with_values ? utf8_width(values[i]) : 0);
        if (total <= r.w) break;
    }
    int with_values = level < 2 && c->legend_values, tight = level >= 1;
    int share = level == 3 ? gmax(2, (r.w - (n - 1)) / n) : r.w; /* cells per entry, glyph included */
    int x = r.x;
    for (int i = 0; i < n && x < r.x + r.w; i++) {
        const ChartSeries *s = &c->series[i];
        if (i) x += tight ? 1 : 2;
        int start = x, end = gmin(r.x + r.w, start + share);
        Style mark = style_pick(o, s->colour, GA_BOLD, s->mono_attr);
        x += grid_put(g, x, r.y, o->unicode ? 0x2501 : (uint32_t)chart_glyph(s, i), mark);
        if (!tight) x++;
        x += grid_text_fit(g, x, r.y, end - x, style_pick(o, GC_DEFAULT, 0, s->mono_attr), s->name ? s->name : "",
                           o->unicode);
        if (with_values) x += grid_text(g, x, r.y, end - x, style_pick(o, s->colour, 0, 0), values[i]);
    }
}

void chart_draw(Grid *g, Rect r, const ChartSpec *c, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (r.w < 4 || r.h < 1) return;
    chart_legend(g, grect(r.x, r.y, r.w, 1), c, o);
    if (r.h < 3) return;

    ChartCanvas cv = {0};
    cv.g = g;
    cv.unicode = o->unicode;
    cv.log_y = c->log_y;
    cv.dpx = o->unicode ? 2 : 1;
    cv.dpy = o->unicode ? 4 : 1;

    /* x range: the caller's, or the data's. */
    double xlo = INFINITY, xhi = -INFINITY;
    for (int i = 0; i < c->n_series; i++)
        for (int k = 0; k < c->series[i].n; k++) {
            double x = chart_x_of(&c->series[i], k), y = c->series[i].y[k];
            if (!isfinite(x) || !isfinite(y) || (c->log_y && !(y > 0))) continue;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
        }
    if (isfinite(c->x_lo)) xlo = c->x_lo;
    if (isfinite(c->x_hi)) xhi = c->x_hi;
    if (xlo == xhi) xhi = xlo + 1;
    cv.xlo = xlo;
    cv.xhi = xhi;

    /* y range from the raw samples: the smoothed curve, a weighted mean of
     * them, stays inside it, and the axis does not jump when smoothing is
     * toggled. */
    double ylo = INFINITY, yhi = -INFINITY;
    if (isfinite(xlo) && isfinite(xhi))
        for (int i = 0; i < c->n_series; i++)
            for (int k = 0; k < c->series[i].n; k++) {
                double x = chart_x_of(&c->series[i], k), y = c->series[i].y[k];
                if (!chart_usable(&cv, x, y)) continue;
                ylo = fmin(ylo, y);
                yhi = fmax(yhi, y);
            }

    int label_row = r.h >= 5;                 /* room for x tick labels */
    int ph = r.h - 2 - label_row;             /* plot rows */
    Rect body = grect(r.x, r.y + 1, r.w, r.h - 1);
    Style axis = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    if (!isfinite(ylo)) {
        /* Say why the chart is empty: no samples yet, or none a log axis
         * can show. */
        int any = 0;
        for (int i = 0; i < c->n_series && !any; i++)
            for (int k = 0; k < c->series[i].n && !any; k++) any = isfinite(c->series[i].y[k]);
        const char *msg = c->empty_text ? c->empty_text : any && c->log_y ? "nothing above 0 for a log scale"
                                                                          : "no data yet";
        int w = utf8_width(msg);
        grid_text(g, body.x + gmax(0, (body.w - w) / 2), body.y + (body.h - 1) / 2, body.w, axis, msg);
        return;
    }

    /* y ticks, then the label column's width. */
    double yt[16], ystep = 0;
    int max_y = gclamp(ph / 2 + 1, 2, 7), nyt;
    /* A margin of a few percent, so the extremes do not run along the
     * frame, and nice ticks inside. */
    if (c->log_y) {
        double l0 = log10(ylo), l1 = log10(yhi);
        chart_widen(&l0, &l1);
        double pad = (l1 - l0) * 0.04;
        cv.ylo = l0 - pad;
        cv.yhi = l1 + pad;
        nyt = chart_log_ticks(pow(10, cv.ylo), pow(10, cv.yhi), max_y, yt, 16, &ystep);
    } else {
        chart_widen(&ylo, &yhi);
        double pad = (yhi - ylo) * 0.04;
        cv.ylo = ylo - pad;
        cv.yhi = yhi + pad;
        nyt = chart_ticks_within(cv.ylo, cv.yhi, max_y, yt, 16, &ystep);
    }
    char ylab[16][24];
    int lw = 1;
    for (int i = 0; i < nyt; i++) {
        chart_tick_label(yt[i], c->log_y && ystep == 0 ? yt[i] : ystep, ylab[i], sizeof(ylab[i]));
        lw = gmax(lw, utf8_width(ylab[i]));
    }
    lw = gmin(lw, r.w / 3);
    int ax = r.x + lw;                        /* the y axis column */
    cv.plot = grect(ax + 1, r.y + 1, r.w - lw - 1, ph);
    if (cv.plot.w < 1 || ph < 1) return;
    cv.dots_w = cv.plot.w * cv.dpx;
    cv.dots_h = ph * cv.dpy;

    /* y axis with its ticks and labels. */
    grid_vline(g, ax, cv.plot.y, ph, o->unicode ? 0x2502 : '|', axis);
    int last_row = -1;
    for (int i = nyt - 1; i >= 0; i--) {      /* top to bottom */
        double v = yt[i];
        int row = chart_dot_y(&cv, v) / cv.dpy;
        if (row == last_row) continue;
        last_row = row;
        int w = utf8_width(ylab[i]);
        grid_text(g, ax - gmin(w, lw), cv.plot.y + row, lw, axis, ylab[i]);
        grid_put(g, ax, cv.plot.y + row, o->unicode ? 0x2524 : '+', axis);
    }

    /* x axis, its ticks under the plot and labels below, each centred on
     * its tick and left out where it would touch its neighbour. */
    int xrow = cv.plot.y + ph;
    grid_put(g, ax, xrow, o->unicode ? 0x2514 : '+', axis);
    grid_hline(g, ax + 1, xrow, cv.plot.w, o->unicode ? 0x2500 : '-', axis);
    double xt[16], xstep = 0;
    int nxt = chart_ticks_within(xlo, xhi, gclamp(cv.plot.w / 8, 2, 12), xt, 16, &xstep);
    int next_free = r.x;
    for (int i = 0; i < nxt; i++) {
        double tol = (xhi - xlo) * 1e-9;
        if (xt[i] < xlo - tol || xt[i] > xhi + tol) continue;
        int col = cv.plot.x + chart_dot_x(&cv, xt[i]) / cv.dpx;
        grid_put(g, col, xrow, o->unicode ? 0x252C : '+', axis);
        if (!label_row) continue;
        char lab[24];
        chart_tick_label(xt[i], xstep, lab, sizeof(lab));
        int w = utf8_width(lab);
        int start = gclamp(col - w / 2, r.x, r.x + r.w - w);
        if (start < next_free) continue;
        grid_text(g, start, xrow + 1, w, axis, lab);
        next_free = start + w + 1;
    }

    /* Raw series faintly first, smoothed ones over them. */
    int smooth = c->smoothing > 0;
    if (smooth)
        for (int i = 0; i < c->n_series; i++)
            chart_plot(&cv, &c->series[i], 0, style_pick(o, c->series[i].colour, GA_DIM, 0), '.');
    for (int i = 0; i < c->n_series; i++) {
        const ChartSeries *s = &c->series[i];
        chart_plot(&cv, s, smooth ? c->smoothing : 0, style_pick(o, s->colour, 0, s->mono_attr), chart_glyph(s, i));
    }
}
