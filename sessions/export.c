/* Exports of a saved session: the metric history as CSV, and the charts as
 * a hand-written SVG for slides and papers (no scripts, no CSS: attributes
 * only, so every viewer and slide tool draws the same thing). */
#include "sessions/session.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the session's series ---- */

typedef struct {
    int n;
    double *x, *y;
} Series;

typedef struct {
    char split[16];
    Series loss, metric;
} EvalSplit;

typedef struct {
    const char *name, *task, *method, *model, *metric_name, *saved;
    long step, total;
    Series loss, upper;         /* per training step */
    int n_splits;
    EvalSplit splits[4];        /* "train", "dev", MNLI's two dev splits */
    const cJSON *changes;       /* [{step, key, value}] */
    const cJSON *spectrum;      /* {step, rows: [{name, values}]} or NULL */
} History;

static const char *str_or(const cJSON *j, const char *key, const char *dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(x) ? x->valuestring : dflt;
}

static double num_or(const cJSON *j, double dflt) { return cJSON_IsNumber(j) ? j->valuedouble : dflt; }

static int series_alloc(Series *s, int n) {
    s->n = 0;
    s->x = malloc(sizeof(double) * (n ? n : 1));
    s->y = malloc(sizeof(double) * (n ? n : 1));
    return s->x && s->y ? 0 : -1;
}

static void series_free(Series *s) {
    free(s->x);
    free(s->y);
}

static void history_free(History *h) {
    series_free(&h->loss);
    series_free(&h->upper);
    for (int i = 0; i < h->n_splits; i++) {
        series_free(&h->splits[i].loss);
        series_free(&h->splits[i].metric);
    }
}

static int history_of(const cJSON *doc, History *h, char *err, size_t errlen) {
    memset(h, 0, sizeof(*h));
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(doc, "summary");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(state, "history_steps");
    const cJSON *he = cJSON_GetObjectItemCaseSensitive(state, "history_evals");
    if (!cJSON_IsArray(hs) || !cJSON_IsArray(he) || !cJSON_IsObject(sum)) {
        snprintf(err, errlen, "session.json has no metric history (state.history_steps, "
                 "state.history_evals, summary)");
        return -1;
    }
    h->name = str_or(doc, "name", "session");
    h->task = str_or(sum, "task", "?");
    h->method = str_or(sum, "method", "?");
    h->model = str_or(sum, "model", "?");
    h->metric_name = str_or(sum, "metric_name", "metric");
    h->saved = str_or(doc, "saved", "");
    h->step = (long)num_or(cJSON_GetObjectItemCaseSensitive(sum, "step"), 0);
    h->total = (long)num_or(cJSON_GetObjectItemCaseSensitive(sum, "total_steps"), 0);
    h->changes = cJSON_GetObjectItemCaseSensitive(state, "changes");
    h->spectrum = cJSON_GetObjectItemCaseSensitive(doc, "spectrum");
    int n = cJSON_GetArraySize(hs), ne = cJSON_GetArraySize(he);
    if (series_alloc(&h->loss, n) || series_alloc(&h->upper, n)) goto oom;
    const cJSON *row;
    cJSON_ArrayForEach(row, hs) {
        if (cJSON_GetArraySize(row) != 3) continue;
        double x = num_or(cJSON_GetArrayItem(row, 0), NAN);
        h->loss.x[h->loss.n] = h->upper.x[h->upper.n] = x;
        h->loss.y[h->loss.n++] = num_or(cJSON_GetArrayItem(row, 1), NAN);
        h->upper.y[h->upper.n++] = num_or(cJSON_GetArrayItem(row, 2), NAN);
    }
    cJSON_ArrayForEach(row, he) {
        const cJSON *sp = cJSON_GetArrayItem(row, 1);
        if (cJSON_GetArraySize(row) < 4 || !cJSON_IsString(sp)) continue;
        int k = 0;
        while (k < h->n_splits && strcmp(h->splits[k].split, sp->valuestring)) k++;
        if (k == h->n_splits) {
            if (k == 4) continue;
            EvalSplit *e = &h->splits[h->n_splits++];
            snprintf(e->split, sizeof(e->split), "%s", sp->valuestring);
            if (series_alloc(&e->loss, ne) || series_alloc(&e->metric, ne)) goto oom;
        }
        EvalSplit *e = &h->splits[k];
        double x = num_or(cJSON_GetArrayItem(row, 0), NAN);
        e->loss.x[e->loss.n] = e->metric.x[e->metric.n] = x;
        e->loss.y[e->loss.n++] = num_or(cJSON_GetArrayItem(row, 2), NAN);
        e->metric.y[e->metric.n++] = num_or(cJSON_GetArrayItem(row, 3), NAN);
    }
    return 0;
oom:
    history_free(h);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ---- CSV ---- */

static void csv_num(FILE *f, double v) {
    /* %.9g: the history holds floats, and 9 digits give them back exactly */
    if (isfinite(v)) fprintf(f, "%.9g", v);
}

static void csv_text(FILE *f, const char *s) {
    /* quoted only when needed (RFC 4180) */
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int session_export_csv(const cJSON *session, FILE *f, char *err, size_t errlen) {
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(session, "state");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(state, "history_steps");
    const cJSON *he = cJSON_GetObjectItemCaseSensitive(state, "history_evals");
    if (!cJSON_IsArray(hs) || !cJSON_IsArray(he)) {
        snprintf(err, errlen, "session.json has no metric history");
        return -1;
    }
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(session, "summary");
    const char *metric = str_or(sum, "metric_name", "metric");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(sum, "metric_names");
    int nm = cJSON_IsArray(names) && cJSON_GetArraySize(names) > 0 ? cJSON_GetArraySize(names) : 1;
    fprintf(f, "kind,step,split,loss,upper_loss");
    for (int k = 0; k < nm; k++) { /* every metric, the headline first */
        const cJSON *nk = cJSON_IsArray(names) ? cJSON_GetArrayItem(names, k) : NULL;
        fputc(',', f);
        csv_text(f, cJSON_IsString(nk) ? nk->valuestring : metric);
    }
    fputc('\n', f);
    /* in step order: each step's row, then the evaluations made at it */
    const cJSON *s = hs->child, *e = he->child;
    while (s || e) {
        double ss = s ? num_or(cJSON_GetArrayItem(s, 0), INFINITY) : INFINITY;
        double es = e ? num_or(cJSON_GetArrayItem(e, 0), INFINITY) : INFINITY;
        if (s && ss <= es) {
            fprintf(f, "step,%.0f,,", ss);
            csv_num(f, num_or(cJSON_GetArrayItem(s, 1), NAN));
            fputc(',', f);
            csv_num(f, num_or(cJSON_GetArrayItem(s, 2), NAN));
            for (int k = 0; k < nm; k++) fputc(',', f);
            fputc('\n', f);
            s = s->next;
        } else {
            const cJSON *sp = cJSON_GetArrayItem(e, 1);
            fprintf(f, "eval,%.0f,", es);
            csv_text(f, cJSON_IsString(sp) ? sp->valuestring : "");
            fputc(',', f);
            csv_num(f, num_or(cJSON_GetArrayItem(e, 2), NAN));
            fputs(",", f);
            for (int k = 0; k < nm; k++) { /* a train row may have fewer (E2E: no bleu) */
                fputc(',', f);
                csv_num(f, num_or(cJSON_GetArrayItem(e, 3 + k), NAN));
            }
            fputc('\n', f);
            e = e->next;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "writing the CSV failed");
        return -1;
    }
    return 0;
}

/* ---- SVG ---- */

#define W 960.0
#define FONT "Helvetica, Arial, sans-serif"

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* A plot area with its data ranges. */
typedef struct {
    double x, y, w, h;           /* pixels */
    double x0, x1, y0, y1;       /* data */
    double xstep, ystep;         /* tick spacing */
} Frame;

static double px(const Frame *fr, double v) { return fr->x + (v - fr->x0) / (fr->x1 - fr->x0) * fr->w; }
static double py(const Frame *fr, double v) { return fr->y + fr->h - (v - fr->y0) / (fr->y1 - fr->y0) * fr->h; }

/* 1, 2 or 5 times a power of ten, about range/target. */
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static void fmt_tick(char *buf, size_t cap, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0.00" */
    snprintf(buf, cap, "%.*f", dec > 8 ? 8 : dec, v);
}

/* y range over the finite values of the series, widened to whole ticks. */
static void fit_y(Frame *fr, const Series *const *ss, int n, double lo_floor) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ss[i]->n; j++) {
            double v = ss[i]->y[j];
            if (!isfinite(v)) continue;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (!isfinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-12) {
        double pad = fabs(hi) > 1e-12 ? fabs(hi) * 0.1 : 0.5;
        lo -= pad;
        hi += pad;
    }
    if (isfinite(lo_floor) && lo >= lo_floor && lo - (hi - lo) * 0.05 < lo_floor) lo = lo_floor;
    fr->ystep = nice_step(hi - lo, 5);
    fr->y0 = floor(lo / fr->ystep) * fr->ystep;
    fr->y1 = ceil(hi / fr->ystep) * fr->ystep;
    if (fr->y1 <= fr->y0) fr->y1 = fr->y0 + fr->ystep;
}

static void fit_x(Frame *fr, const History *h) {
    double hi = (double)(h->total > h->step ? h->total : h->step);
    for (int i = 0; i < h->loss.n; i++) if (h->loss.x[i] > hi) hi = h->loss.x[i];
    if (hi < 1) hi = 1;
    fr->xstep = nice_step(hi, 8);
    if (fr->xstep < 1) fr->xstep = 1;
    fr->x0 = 0;
    fr->x1 = ceil(hi / fr->xstep) * fr->xstep;
}

static void axes(FILE *f, const Frame *fr, const char *title, const char *xlabel, const char *ylabel) {
    fprintf(f, "<g class=\"axes\">\n");
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fbfbfb\" stroke=\"none\"/>\n",
            fr->x, fr->y, fr->w, fr->h);
    char buf[64];
    for (double v = fr->y0; v <= fr->y1 + fr->ystep * 1e-6; v += fr->ystep) {
        double y = py(fr, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\" stroke-width=\"1\"/>\n",
                fr->x, y, fr->x + fr->w, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\" stroke-width=\"1\"/>\n",
                fr->x - 5, y, fr->x, y);
        fmt_tick(buf, sizeof(buf), v, fr->ystep);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", fr->x - 8,
                y + 4, buf);
    }
    for (double v = fr->x0; v <= fr->x1 + fr->xstep * 1e-6; v += fr->xstep) {
        double x = px(fr, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eeeeee\" stroke-width=\"1\"/>\n",
                x, fr->y, x, fr->y + fr->h);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\" stroke-width=\"1\"/>\n",
                x, fr->y + fr->h, x, fr->y + fr->h + 5);
        fmt_tick(buf, sizeof(buf), v, fr->xstep);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", x,
                fr->y + fr->h + 18, buf);
    }
    /* the axis lines on top of the grid */
    fprintf(f, "<polyline points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"none\" stroke=\"#444\" stroke-width=\"1.2\"/>\n",
            fr->x, fr->y, fr->x, fr->y + fr->h, fr->x + fr->w, fr->y + fr->h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", fr->x, fr->y - 12);
    xml_text(f, title);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">", fr->x + fr->w / 2,
            fr->y + fr->h + 38);
    xml_text(f, xlabel);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">", fr->x - 52, fr->y + fr->h / 2, fr->x - 52, fr->y + fr->h / 2);
    xml_text(f, ylabel);
    fprintf(f, "</text>\n</g>\n");
}

/* A line through the finite points, broken where values are missing. */
static void line(FILE *f, const Frame *fr, const Series *s, const char *cls, const char *color, double width,
                 double opacity) {
    int open = 0;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->y[i]) || !isfinite(s->x[i])) {
            if (open) fprintf(f, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open)
            fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                    "stroke-opacity=\"%.2f\" stroke-linejoin=\"round\" points=\"", cls, color, width, opacity);
        fprintf(f, "%s%.1f,%.1f", open ? " " : "", px(fr, s->x[i]), py(fr, s->y[i]));
        open = 1;
    }
    if (open) fprintf(f, "\"/>\n");
}

static void dots(FILE *f, const Frame *fr, const Series *s, const char *cls, const char *color) {
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->y[i]) && isfinite(s->x[i]))
            fprintf(f, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", cls,
                    px(fr, s->x[i]), py(fr, s->y[i]), color);
}

/* TensorBoard's smoothing: a debiased exponential moving average. */
static void smooth(const Series *in, Series *out, double w) {
    double acc = 0, norm = 0;
    out->n = in->n;
    for (int i = 0; i < in->n; i++) {
        out->x[i] = in->x[i];
        if (!isfinite(in->y[i])) { out->y[i] = NAN; continue; }
        acc = acc * w + (1 - w) * in->y[i];
        norm = norm * w + (1 - w);
        out->y[i] = acc / norm;
    }
}

/* At most this many points per drawn line: more is invisible at 960 px
 * and only makes the file heavy. */
#define MAX_POINTS 1500

/* Every k-th point (and the last), k chosen to stay under MAX_POINTS. */
static int thin(const Series *in, Series *out) {
    int k = (in->n + MAX_POINTS - 1) / MAX_POINTS;
    if (k < 1) k = 1;
    if (series_alloc(out, in->n / k + 2) != 0) return -1;
    for (int i = 0; i < in->n; i += k) {
        out->x[out->n] = in->x[i];
        out->y[out->n++] = in->y[i];
    }
    if (in->n && (in->n - 1) % k) {
        out->x[out->n] = in->x[in->n - 1];
        out->y[out->n++] = in->y[in->n - 1];
    }
    return 0;
}

/* A per-step loss: short series as they are; longer ones faint, with a
 * bold smoothed line whose span grows with the run (about 1/60 of it), so
 * a 30-step and a 30000-step run both read as a trend. */
static void noisy_line(FILE *f, const Frame *fr, const Series *s, const char *cls, const char *color) {
    if (s->n < 20) {
        line(f, fr, s, cls, color, 2.0, 1.0);
        return;
    }
    Series sm, raw, smt;
    if (series_alloc(&sm, s->n) != 0) return;
    double span = s->n / 60.0 < 5 ? 5 : s->n / 60.0;
    smooth(s, &sm, 1 - 2 / (span + 1));
    if (thin(s, &raw) == 0) {
        char c[48];
        snprintf(c, sizeof(c), "%s-raw", cls);
        line(f, fr, &raw, c, color, 1.0, 0.25);
        series_free(&raw);
    }
    if (thin(&sm, &smt) == 0) {
        line(f, fr, &smt, cls, color, 2.0, 1.0);
        series_free(&smt);
    }
    series_free(&sm);
}

typedef struct {
    const char *label, *color;
    int dashed, dot;
} LegendEntry;

static void legend(FILE *f, const Frame *fr, const LegendEntry *e, int n) {
    if (n == 0) return;
    double wmax = 0;
    for (int i = 0; i < n; i++) if (strlen(e[i].label) * 6.6 > wmax) wmax = strlen(e[i].label) * 6.6;
    double bw = wmax + 46, bh = 10 + 18 * n, x = fr->x + fr->w - bw - 8, y = fr->y + 8;
    fprintf(f, "<g class=\"legend\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
            "fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n", x, y, bw, bh);
    for (int i = 0; i < n; i++) {
        double ly = y + 14 + 18 * i;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
                x + 8, ly, x + 32, ly, e[i].color, e[i].dashed ? " stroke-dasharray=\"5 3\"" : "");
        if (e[i].dot) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 20, ly, e[i].color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", x + 38, ly + 4);
        xml_text(f, e[i].label);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}

static const char *split_color(const char *split) {
    if (!strcmp(split, "train")) return "#2ca02c";
    if (!strcmp(split, "dev_mismatched")) return "#9467bd";
    return "#d62728";
}

static void no_data(FILE *f, const Frame *fr, const char *what) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#888888\" text-anchor=\"middle\">%s</text>\n",
            fr->x + fr->w / 2, fr->y + fr->h / 2, what);
}

static void loss_chart(FILE *f, const History *h, double top) {
    Frame fr = {.x = 80, .y = top + 30, .w = W - 110, .h = 250};
    fit_x(&fr, h);
    const Series *ss[6];
    int n = 0;
    ss[n++] = &h->loss;
    ss[n++] = &h->upper;
    for (int i = 0; i < h->n_splits; i++) ss[n++] = &h->splits[i].loss;
    fit_y(&fr, ss, n, 0.0);
    axes(f, &fr, "Loss", "step", "loss");
    /* live changes: where the run's settings moved */
    const cJSON *c;
    double prev = NAN;
    int same = 0; /* earlier changes at this step: their labels sit left of this one */
    cJSON_ArrayForEach(c, h->changes) {
        double s = num_or(cJSON_GetObjectItemCaseSensitive(c, "step"), NAN);
        if (!isfinite(s) || s < fr.x0 || s > fr.x1) continue;
        same = s == prev ? same + 1 : 0;
        prev = s;
        double x = px(&fr, s);
        fprintf(f, "<line class=\"change\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777777\" "
                "stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\n", x, fr.y, x, fr.y + fr.h);
        /* the label runs up from the axis: the legend sits top right */
        double ly = fr.y + fr.h - 4;
        double lx = x - 3 - 12.0 * same;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555555\" transform=\"rotate(-90 %.1f %.1f)\">",
                lx, ly, lx, ly);
        char flag[64]; /* the flag's spelling, as the CLI and the TUI show it */
        snprintf(flag, sizeof(flag), "%s", str_or(c, "key", "?"));
        for (char *q = flag; *q; q++)
            if (*q == '_') *q = '-';
        xml_text(f, flag);
        fputs(" = ", f);
        xml_text(f, str_or(c, "value", "?"));
        fprintf(f, "</text>\n");
    }
    LegendEntry le[8];
    int nl = 0;
    int has_loss = 0, has_upper = 0;
    for (int i = 0; i < h->loss.n; i++) has_loss |= isfinite(h->loss.y[i]);
    for (int i = 0; i < h->upper.n; i++) has_upper |= isfinite(h->upper.y[i]);
    /* the upper level first, so the training loss draws on top */
    if (has_upper) {
        noisy_line(f, &fr, &h->upper, "loss-upper", "#ff7f0e");
        le[nl++] = (LegendEntry){"upper-level loss (D2)", "#ff7f0e", 0, 0};
    }
    if (has_loss) {
        noisy_line(f, &fr, &h->loss, "loss-train", "#1f77b4");
        le[nl++] = (LegendEntry){"training loss (lower level)", "#1f77b4", 0, 0};
    }
    if (has_loss && h->loss.n >= 20)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#666666\">per step: faint; "
                "exponential moving average: bold</text>\n", fr.x + 60, fr.y - 12);
    char labels[4][40];
    for (int i = 0; i < h->n_splits; i++) {
        const char *col = split_color(h->splits[i].split);
        line(f, &fr, &h->splits[i].loss, "loss-eval", col, 1.5, 1.0);
        dots(f, &fr, &h->splits[i].loss, "loss-eval-point", col);
        snprintf(labels[i], sizeof(labels[i]), "eval loss: %s", h->splits[i].split);
        le[nl++] = (LegendEntry){labels[i], col, 0, 1};
    }
    if (!has_loss) no_data(f, &fr, "no training steps yet");
    legend(f, &fr, le, nl);
}

static void metric_chart(FILE *f, const History *h, double top) {
    Frame fr = {.x = 80, .y = top + 30, .w = W - 110, .h = 220};
    fit_x(&fr, h);
    const Series *ss[4];
    int n = 0;
    for (int i = 0; i < h->n_splits; i++) ss[n++] = &h->splits[i].metric;
    fit_y(&fr, ss, n, NAN);
    char title[64];
    snprintf(title, sizeof(title), "Task metric (%s)", h->metric_name);
    axes(f, &fr, title, "step", h->metric_name);
    LegendEntry le[4];
    char labels[4][40];
    int any = 0;
    for (int i = 0; i < h->n_splits; i++) {
        const char *col = split_color(h->splits[i].split);
        line(f, &fr, &h->splits[i].metric, "metric-line", col, 2.0, 1.0);
        dots(f, &fr, &h->splits[i].metric, "metric-point", col);
        snprintf(labels[i], sizeof(labels[i]), "%s", h->splits[i].split);
        le[i] = (LegendEntry){labels[i], col, 0, 1};
        any |= h->splits[i].metric.n > 0;
    }
    if (!any) no_data(f, &fr, "no evaluation yet");
    legend(f, &fr, le, h->n_splits);
}

/* viridis, sampled at five stops and interpolated in RGB */
static void colormap(double t, char *out) {
    static const unsigned char STOPS[5][3] = {
        {0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 4;
    int i = p >= 4 ? 3 : (int)p;
    double u = p - i;
    int rgb[3];
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * u);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static double heatmap_height(const cJSON *spec) {
    int rows = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "rows"));
    double cell = rows <= 24 ? 22 : rows <= 48 ? 14 : 9;
    return 30 + rows * cell + 70;
}

static void heatmap(FILE *f, const cJSON *spec, const char *method, double top) {
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(spec, "rows");
    int nr = cJSON_GetArraySize(rows), nc = 0;
    double vmax = 0;
    const cJSON *r, *v;
    cJSON_ArrayForEach(r, rows) {
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(r, "values");
        if (cJSON_GetArraySize(vals) > nc) nc = cJSON_GetArraySize(vals);
        cJSON_ArrayForEach(v, vals) if (cJSON_IsNumber(v) && v->valuedouble > vmax) vmax = v->valuedouble;
    }
    if (nc == 0) return;
    if (vmax <= 0) vmax = 1;
    double ch = nr <= 24 ? 22 : nr <= 48 ? 14 : 9;
    double x0 = 130, y0 = top + 30, avail = W - x0 - 110;
    double cw = avail / nc > 48 ? 48 : avail / nc;
    double font = ch >= 14 ? 11 : 8;
    char title[160];
    int svd = !strcmp(method, "bilora") || !strcmp(method, "svd") || !strcmp(method, "adalora");
    snprintf(title, sizeof(title), "Singular values per adapted matrix at step %.0f%s",
             num_or(cJSON_GetObjectItemCaseSensitive(spec, "step"), 0), svd ? " (|λ|)" : " (of s·B·A)");
    fprintf(f, "<g class=\"heatmap\">\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", x0,
            y0 - 12);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    int i = 0;
    char col[8];
    cJSON_ArrayForEach(r, rows) {
        double y = y0 + i * ch;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"end\">", x0 - 6, y + ch / 2 + font / 3,
                font);
        xml_text(f, str_or(r, "name", "?"));
        fprintf(f, "</text>\n");
        int j = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(r, "values")) {
            int ok = cJSON_IsNumber(v);
            if (ok) colormap(v->valuedouble / vmax, col);
            fprintf(f, "<rect class=\"heat-cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>", x0 + j * cw, y, cw, ch, ok ? col : "#dddddd");
            xml_text(f, str_or(r, "name", "?"));
            if (ok) fprintf(f, " σ%d = %.6g</title></rect>\n", j + 1, v->valuedouble);
            else fprintf(f, " σ%d: not finite</title></rect>\n", j + 1);
            j++;
        }
        i++;
    }
    double yb = y0 + nr * ch;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", x0, y0,
            nc * cw, nr * ch);
    int every = nc <= 16 ? 1 : nc <= 32 ? 2 : 4;
    for (int j = 0; j < nc; j++)
        if (j % every == 0 || j == nc - 1)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n",
                    x0 + (j + 0.5) * cw, yb + 16, j + 1);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">singular value index "
            "(descending)</text>\n", x0 + nc * cw / 2, yb + 36);
    /* the colour scale */
    double bx = x0 + nc * cw + 30, bh = nr * ch, bw = 16;
    fprintf(f, "<defs><linearGradient id=\"viridis\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
    for (int s = 0; s <= 8; s++) {
        colormap(s / 8.0, col);
        fprintf(f, "<stop offset=\"%.3f\" stop-color=\"%s\"/>\n", s / 8.0, col);
    }
    fprintf(f, "</linearGradient></defs>\n");
    fprintf(f, "<rect class=\"colorbar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#viridis)\" "
            "stroke=\"#444\"/>\n", bx, y0, bw, bh);
    double step = nice_step(vmax, bh >= 120 ? 4 : 2);
    char buf[32];
    for (double t = 0; t <= vmax * (1 + 1e-9); t += step) {
        double y = y0 + bh - t / vmax * bh;
        fmt_tick(buf, sizeof(buf), t, step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", bx + bw, y, bx + bw + 4, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n", bx + bw + 7, y + 4, buf);
    }
    fprintf(f, "</g>\n");
}

int session_export_svg(const cJSON *session, FILE *f, char *err, size_t errlen) {
    History h;
    if (history_of(session, &h, err, errlen) != 0) return -1;
    const cJSON *spec = h.spectrum;
    int has_spec = cJSON_IsObject(spec) && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "rows")) > 0;
    double loss_top = 70, metric_top = loss_top + 340, heat_top = metric_top + 310;
    double height = has_spec ? heat_top + heatmap_height(spec) : heat_top;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"%s\" fill=\"#222222\">\n", W, height, W, height, FONT);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    fprintf(f, "<text x=\"20\" y=\"30\" font-size=\"20\" font-weight=\"bold\">");
    xml_text(f, h.name);
    fprintf(f, ": ");
    xml_text(f, h.method);
    fprintf(f, " on ");
    xml_text(f, h.task);
    fprintf(f, "</text>\n<text x=\"20\" y=\"52\" font-size=\"12\" fill=\"#555555\">model ");
    xml_text(f, h.model);
    fprintf(f, " · step %ld of %ld", h.step, h.total);
    if (*h.saved) {
        fprintf(f, " · saved ");
        xml_text(f, h.saved);
    }
    fprintf(f, "</text>\n");
    loss_chart(f, &h, loss_top);
    metric_chart(f, &h, metric_top);
    if (has_spec) heatmap(f, spec, h.method, heat_top);
    fprintf(f, "</svg>\n");
    history_free(&h);
    if (ferror(f)) {
        snprintf(err, errlen, "writing the SVG failed");
        return -1;
    }
    return 0;
}
