#include "ui/panels.h"

#include "ui/histogram.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void dash_layout(int w, int h, DashLayout *l) {
    memset(l, 0, sizeof(*l));
    if (w < DASH_MIN_W || h < DASH_MIN_H) {
        l->too_small = 1;
        return;
    }
    l->stats = grect(0, 0, w, 1);
    l->progress = grect(0, 1, w, 1);
    l->status = grect(0, h - 1, w, 1);
    /* The rows between: charts get what the log and the spectrum leave.
     * At 80x24 that is 10 / 6 / 5 (a chart of 5 plot rows, 3 matrices, 3
     * events); taller terminals grow all three, the charts most. */
    int rows = h - 3;
    int ev_h = gclamp(rows / 4, 5, 10);
    int sp_h = gclamp(rows * 3 / 10, 6, 14);
    int ch_h = rows - ev_h - sp_h;
    int left = w / 2, hist_w = w * 2 / 5;
    l->loss = grect(0, 2, left, ch_h);
    l->metric = grect(left, 2, w - left, ch_h);
    l->heat = grect(0, 2 + ch_h, w - hist_w, sp_h);
    l->hist = grect(w - hist_w, 2 + ch_h, hist_w, sp_h);
    l->log = grect(0, 2 + ch_h + sp_h, w, ev_h);
}

static const DashKey DASH_KEYS[] = {
    {"p", "p", "pause", "pause or resume the run", 1},
    {"n", "n", "step", "while paused: run one step", 0},
    {"e", "e", "eval", "evaluate on the dev set now", 2},
    {"s", "s", "smooth", "smoothing on or off (TensorBoard's EMA with bias correction)", 2},
    {"[ ]", "[ ]", "weight", "smoothing weight down / up by 0.05 (default 0.6)", 0},
    {"l", "l", "log", "log-scale y axis on or off", 2},
    {"\u2191\u2193", "up/dn", "matrix", "select the matrix the histogram shows", 2},
    {"t", "t", "tune", "settings form: hot ones apply live, cold ones need a new run", 2},
    {"w", "w", "save", "save a snapshot of the run", 2},
    {"c", "c", "compare", "compare mode: a second run on the same data and split", 2},
    {"?", "?", "help", "this help (any key closes it)", 1},
    {"q", "q", "quit", "quit (asks first when the run is not saved)", 1},
};

const DashKey *dash_keys(int *n) {
    *n = (int)(sizeof(DASH_KEYS) / sizeof(DASH_KEYS[0]));
    return DASH_KEYS;
}

void dash_format_eta(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e7) { snprintf(buf, cap, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

void dash_format_count(long v, char *buf, size_t cap) {
    char digits[32];
    snprintf(digits, sizeof(digits), "%ld", v < 0 ? -v : v);
    char out[48];
    size_t n = strlen(digits), k = 0;
    if (v < 0) out[k++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = 0;
    snprintf(buf, cap, "%s", out);
}

static void dash_format_rate(double r, char *buf, size_t cap) {
    if (!(r >= 0)) snprintf(buf, cap, "-- ex/s");
    else if (r >= 100) snprintf(buf, cap, "%.0f ex/s", r);
    else snprintf(buf, cap, "%.1f ex/s", r);
}

static void dash_format_mem(double b, char *buf, size_t cap) {
    if (!(b >= 0)) buf[0] = 0;
    else if (b >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(buf, cap, "%.0f MiB", b / (1024.0 * 1024));
}

static int dash_state_colour(const char *state) {
    if (!state) return GC_DEFAULT;
    if (!strcmp(state, "running") || !strcmp(state, "evaluating")) return GC_GREEN;
    if (!strcmp(state, "paused")) return GC_YELLOW;
    if (!strcmp(state, "done")) return GC_BLUE;
    return GC_RED;
}

/* A piece of a line in its own style. */
typedef struct {
    char text[96];
    Style st;
} DashSeg;

/* The pieces describing one run: state, step, epoch, rate, ETA. compact
 * (compare mode, two runs share the line): label, rate and ETA only; the
 * progress row shows each run's steps. */
static int dash_run_segs(const DashRun *r, int compact, const DrawOpts *o, DashSeg *s) {
    int n = 0;
    char a[32], b[32];
    const char *state = r->state ? r->state : "";
    snprintf(s[n].text, sizeof(s[n].text), "%s %s", o->unicode ? "\u25CF" : "*",
             compact && r->label ? r->label : state);
    s[n++].st = style_pick(o, compact ? r->colour : dash_state_colour(state), GA_BOLD, GA_BOLD);
    if (compact && strcmp(state, "running") != 0) { /* "evaluating", "paused", ... */
        snprintf(s[n].text, sizeof(s[n].text), "%s", state);
        s[n++].st = style_pick(o, dash_state_colour(state), 0, 0);
    }
    if (!compact) {
        dash_format_count(r->step, a, sizeof(a));
        dash_format_count(r->total_steps, b, sizeof(b));
        if (r->total_steps > 0) snprintf(s[n].text, sizeof(s[n].text), "step %s/%s", a, b);
        else snprintf(s[n].text, sizeof(s[n].text), "step %s", a);
        s[n++].st = gstyle(0, 0, 0);
        snprintf(s[n].text, sizeof(s[n].text), "epoch %.2f", r->epoch);
        s[n++].st = gstyle(0, 0, 0);
    }
    dash_format_rate(r->examples_per_s, s[n].text, sizeof(s[n].text));
    s[n++].st = gstyle(0, 0, 0);
    dash_format_eta(r->eta_s, a, sizeof(a));
    snprintf(s[n].text, sizeof(s[n].text), "ETA %s", a);
    s[n++].st = gstyle(0, 0, 0);
    return n;
}

void dash_stats(Grid *g, Rect r, const DashView *v, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    DashSeg segs[16];
    int n = 0;
    if (v->n_runs >= 2) {
        n = dash_run_segs(&v->runs[0], 1, o, segs);
        snprintf(segs[n].text, sizeof(segs[n].text), "%s", o->unicode ? "\u2502" : "|");
        segs[n++].st = style_pick(o, GC_DEFAULT, GA_DIM, 0);
        n += dash_run_segs(&v->runs[1], 1, o, segs + n);
    } else if (v->n_runs == 1) {
        n = dash_run_segs(&v->runs[0], 0, o, segs);
    }
    int x = r.x + 1;
    for (int i = 0; i < n; i++) {
        if (i) x += 2;
        x += grid_text(g, x, r.y, r.x + r.w - x, segs[i].st, segs[i].text);
    }
    /* Right: device and memory, when they fit beside. */
    char mem[32], right[160];
    dash_format_mem(v->mem_bytes, mem, sizeof(mem));
    snprintf(right, sizeof(right), "%s%s%s", v->device ? v->device : "",
             v->device && *mem ? (o->unicode ? " \u00B7 " : " - ") : "", mem);
    int rw = utf8_width(right);
    if (rw && r.x + r.w - 1 - rw >= x + 2)
        grid_text(g, r.x + r.w - 1 - rw, r.y, rw, style_pick(o, GC_DEFAULT, GA_DIM, 0), right);
}

void dash_bar(Grid *g, int x, int y, int w, double fraction, int colour, const DrawOpts *o) {
    if (w <= 0) return;
    if (!(fraction >= 0)) fraction = 0;
    if (fraction > 1) fraction = 1;
    Style fill = style_pick(o, colour, 0, 0), empty = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    if (!o->unicode) {
        int full = (int)floor(fraction * w + 1e-9);
        for (int i = 0; i < w; i++) grid_put(g, x + i, y, i < full ? '#' : '.', i < full ? fill : empty);
        return;
    }
    int eighths = (int)floor(fraction * w * 8 + 1e-9);
    for (int i = 0; i < w; i++) {
        int e = gclamp(eighths - i * 8, 0, 8);
        /* U+2588 is a full block; U+258F..U+2589 are 1/8..7/8 from the left. */
        if (e == 8) grid_put(g, x + i, y, 0x2588, fill);
        else if (e > 0) grid_put(g, x + i, y, 0x2590 - (uint32_t)e, fill);
        else grid_put(g, x + i, y, 0x2591, empty);
    }
}

/* "████░░░░  40%" into w cells from x; with a label (compare mode),
 * "lora ████░░░░ 1,200/3,000", as the stats line then has no room for
 * the steps. */
static void dash_run_bar(Grid *g, int x, int y, int w, const DashRun *run, const char *label, const DrawOpts *o) {
    char pct[48];
    double f = run->total_steps > 0 ? (double)run->step / (double)run->total_steps : 0;
    if (label) {
        char a[24], b[24];
        dash_format_count(run->step, a, sizeof(a));
        dash_format_count(run->total_steps, b, sizeof(b));
        snprintf(pct, sizeof(pct), "%s/%s", a, b);
    } else {
        snprintf(pct, sizeof(pct), "%3.0f%%", 100 * fmin(fmax(f, 0), 1));
    }
    int end = x + w;
    if (label && *label) {
        x += grid_text_fit(g, x, y, gmin(utf8_width(label), w / 3), style_pick(o, run->colour, GA_BOLD, GA_BOLD),
                           label, o->unicode);
        x++;
    }
    int pw = (int)strlen(pct);
    int bw = end - x - pw - 1;
    if (bw < 4) return;
    dash_bar(g, x, y, bw, f, run->colour ? run->colour : GC_GREEN, o);
    grid_text(g, x + bw + 1, y, pw, gstyle(0, 0, 0), pct);
}

void dash_progress(Grid *g, Rect r, const DashView *v, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    int x = r.x + 1, end = r.x + r.w - 1;
    if (v->title && *v->title) {
        int tw = gmin(utf8_width(v->title), (r.w - 2) / 2);
        x += grid_text_fit(g, x, r.y, tw, style_pick(o, GC_DEFAULT, GA_BOLD, 0), v->title, o->unicode) + 2;
    }
    if (v->n_runs >= 2) {
        int half = (end - x - 2) / 2;
        dash_run_bar(g, x, r.y, half, &v->runs[0], v->runs[0].label ? v->runs[0].label : "A", o);
        dash_run_bar(g, x + half + 2, r.y, end - x - half - 2, &v->runs[1], v->runs[1].label ? v->runs[1].label : "B", o);
    } else if (v->n_runs == 1) {
        DashRun one = v->runs[0];
        if (!one.colour) one.colour = GC_GREEN;
        dash_run_bar(g, x, r.y, end - x, &one, NULL, o);
    }
}

void dash_events(Grid *g, Rect r, const DashEvent *ev, int n, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (r.h <= 0 || r.w <= 0) return;
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    if (n <= 0) {
        grid_text(g, r.x + 1, r.y, r.w - 1, dim, "no events yet");
        return;
    }
    static const char *const TAGS[] = {"info", "eval", "set", "warn"};
    int first = gmax(0, n - r.h);
    for (int i = first; i < n; i++) {
        int y = r.y + (i - first), x = r.x;
        char step[32] = "";
        if (ev[i].step >= 0) dash_format_count(ev[i].step, step, sizeof(step));
        grid_textf(g, x, y, 8, dim, "%7s", step);
        x += 8;
        int k = gclamp((int)ev[i].kind, 0, 3);
        Style tag = k == DASH_EV_EVAL   ? style_pick(o, GC_GREEN, 0, 0)
                    : k == DASH_EV_CHANGE ? style_pick(o, GC_CYAN, 0, GA_UNDERLINE)
                    : k == DASH_EV_WARN   ? style_pick(o, GC_YELLOW, GA_BOLD, GA_BOLD)
                                          : dim;
        grid_text(g, x, y, 5, tag, TAGS[k]);
        x += 6;
        Style text = k == DASH_EV_WARN ? style_pick(o, GC_YELLOW, 0, GA_BOLD) : gstyle(0, 0, 0);
        grid_text_fit(g, x, y, r.x + r.w - x, text, ev[i].text ? ev[i].text : "", o->unicode);
    }
}

void dash_status(Grid *g, Rect r, const DashView *v, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (v->prompt) {
        Style q = style_pick_bg(o, GC_BLACK, GC_YELLOW, GA_BOLD);
        grid_fill(g, r, ' ', q);
        grid_text_fit(g, r.x + 1, r.y, r.w - 2, q, v->prompt, o->unicode);
        return;
    }
    int n;
    const DashKey *keys = dash_keys(&n);
    int paused = v->n_runs > 0 && v->runs[0].state && !strcmp(v->runs[0].state, "paused");
    /* Width of the always-shown keys, reserved before optional ones. */
    int must = 0;
    for (int i = 0; i < n; i++)
        if (keys[i].in_status == 1)
            must += utf8_width(o->unicode ? keys[i].key : keys[i].ascii_key) + 1 + utf8_width(keys[i].label) + 2;
    Style ks = style_pick_bg(o, GC_BLACK, GC_CYAN, 0), ls = gstyle(0, 0, 0);
    int x = r.x + 1, end = r.x + r.w;
    if (v->notice && v->notice[0]) {
        /* The notice takes the right end; optional keys give way to it. */
        int nw = gmin(utf8_width(v->notice), gmax(r.w - 2 - must, 0));
        if (nw > 0) {
            end -= nw + 2;
            grid_text_fit(g, end + 1, r.y, nw, style_pick(o, GC_GREEN, GA_BOLD, GA_BOLD), v->notice, o->unicode);
        }
    }
    for (int i = 0; i < n; i++) {
        if (!keys[i].in_status) continue;
        const char *key = o->unicode ? keys[i].key : keys[i].ascii_key;
        const char *label = paused && !strcmp(keys[i].key, "p") ? "resume" : keys[i].label;
        int w = utf8_width(key) + 1 + utf8_width(label) + 2;
        if (keys[i].in_status == 1) must -= w;
        else if (x + w + must > end) continue;
        x += grid_text(g, x, r.y, end - x, ks, key);
        x += grid_text(g, x, r.y, end - x, ls, " ");
        x += grid_text(g, x, r.y, end - x, ls, label);
        x += 2;
    }
}

void dash_help(Grid *g, const DrawOpts *o) {
    int n;
    const DashKey *keys = dash_keys(&n);
    static const char *const NOTES[] = {
        "Hot settings (learning rates, T1/T2, gamma1/2, hypergradient,",
        "intervals, split ratio) apply at the next step; the rest need",
        "a new run. Every change is logged with its step.",
    };
    int nn = (int)(sizeof(NOTES) / sizeof(NOTES[0]));
    int w = gmin(72, g->w - 4), h = gmin(n + nn + 5, g->h - 2);
    Rect box = grect((g->w - w) / 2, (g->h - h) / 2, w, h);
    grid_fill(g, box, ' ', gstyle(0, 0, 0));
    grid_box(g, box, style_pick(o, GC_CYAN, GA_BOLD, GA_BOLD), "Help", style_pick(o, GC_DEFAULT, GA_BOLD, 0),
             o->unicode);
    Rect in = grid_inner(box);
    int y = in.y + 1;
    for (int i = 0; i < n && y < in.y + in.h; i++, y++) {
        const char *key = o->unicode ? keys[i].key : keys[i].ascii_key;
        grid_text(g, in.x + 2, y, 6, style_pick(o, GC_CYAN, GA_BOLD, GA_BOLD), key);
        grid_text_fit(g, in.x + 9, y, in.w - 10, gstyle(0, 0, 0), keys[i].help, o->unicode);
    }
    y++;
    for (int i = 0; i < nn && y < in.y + in.h; i++, y++)
        grid_text_fit(g, in.x + 2, y, in.w - 3, style_pick(o, GC_DEFAULT, GA_DIM, 0), NOTES[i], o->unicode);
}

void dash_too_small(Grid *g, const DrawOpts *o) {
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    char now[64];
    const char *msg = "terminal too small (need 80x24)";
    snprintf(now, sizeof(now), "now %dx%d", g->w, g->h);
    int y = gmax(0, g->h / 2 - 1);
    int mw = utf8_width(msg), nw = utf8_width(now);
    grid_text_fit(g, gmax(0, (g->w - mw) / 2), y, g->w, style_pick(o, GC_YELLOW, GA_BOLD, GA_BOLD), msg, o->unicode);
    grid_text(g, gmax(0, (g->w - nw) / 2), y + 1, g->w, style_pick(o, GC_DEFAULT, GA_DIM, 0), now);
}

static void dash_panel(Grid *g, Rect r, const char *title, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    grid_box(g, r, style_pick(o, GC_BLUE, 0, 0), title, style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), o->unicode);
}

void dash_draw(Grid *g, const DashView *v, const DrawOpts *o) {
    DashLayout l;
    dash_layout(g->w, g->h, &l);
    if (l.too_small) {
        dash_too_small(g, o);
        return;
    }
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    dash_stats(g, l.stats, v, o);
    dash_progress(g, l.progress, v, o);

    /* Both charts share the x range, 0 to the longest run's total, so they
     * line up and fill from the left as the run goes. */
    long total = 0;
    for (int i = 0; i < v->n_runs && i < 2; i++) total = v->runs[i].total_steps > total ? v->runs[i].total_steps : total;
    char title[128], flags[64] = "";
    const char *sep = o->unicode ? " \u00B7 " : " - ";
    int k = 0;
    if (v->smoothing > 0) k += snprintf(flags + k, sizeof(flags) - (size_t)k, "%ssmooth %.2g", sep, v->smoothing);
    if (v->log_y) snprintf(flags + k, sizeof(flags) - (size_t)k, "%slog", sep);
    ChartSpec cs = {0};
    cs.smoothing = v->smoothing;
    cs.log_y = v->log_y;
    cs.x_lo = total > 0 ? 0 : NAN;
    cs.x_hi = total > 0 ? (double)total : NAN;
    cs.legend_values = 1;

    snprintf(title, sizeof(title), "Loss%s", flags);
    dash_panel(g, l.loss, title, o);
    cs.series = v->loss;
    cs.n_series = v->n_loss;
    chart_draw(g, grid_inner(l.loss), &cs, o);

    snprintf(title, sizeof(title), "Dev %s%s", v->metric_name ? v->metric_name : "metric", flags);
    dash_panel(g, l.metric, title, o);
    cs.series = v->metric;
    cs.n_series = v->n_metric;
    chart_draw(g, grid_inner(l.metric), &cs, o);

    const HeatmapSpec *sp = &v->spectrum;
    if (sp->rows > 0)
        snprintf(title, sizeof(title), "Singular values%s%d matrices %s r=%d", sep, sp->rows,
                 o->unicode ? "\u00D7" : "x", sp->cols);
    else
        snprintf(title, sizeof(title), "Singular values");
    dash_panel(g, l.heat, title, o);
    heatmap_draw(g, grid_inner(l.heat), sp, o);

    HistogramSpec hs = {0};
    hs.lo = NAN;
    hs.hi = NAN;
    hs.colour = GC_CYAN;
    /* Up to rank 32, one bar per index (a histogram of so few values is
     * all ones); past that, the distribution. */
    hs.by_index = sp->cols <= 32;
    int sel = sp->rows > 0 ? gclamp(sp->selected, 0, sp->rows - 1) : -1;
    if (sel >= 0 && sp->values) {
        hs.values = sp->values + (size_t)sel * (size_t)sp->cols;
        hs.n = sp->cols;
        const char *name = sp->row_names && sp->row_names[sel] ? sp->row_names[sel] : "?";
        snprintf(title, sizeof(title), "%s%s of %s", o->unicode ? "\u03C3" : "sigma",
                 hs.by_index ? "" : " histogram", name);
    } else {
        snprintf(title, sizeof(title), "%s of the selected matrix", o->unicode ? "\u03C3" : "sigma");
    }
    dash_panel(g, l.hist, title, o);
    histogram_draw(g, grid_inner(l.hist), &hs, o);

    dash_panel(g, l.log, "Events", o);
    dash_events(g, grid_inner(l.log), v->events, v->n_events, o);
    dash_status(g, l.status, v, o);
    if (v->show_help) dash_help(g, o);
}
