/* The dashboard's DashView, built from what the trainers published: their
 * series (long steps, float values) become the charts' doubles, their
 * spectra the heatmap's rows, their event lines the log's kinds and steps.
 * Rebuilt from scratch every frame: nothing here remembers a previous
 * frame, so what is drawn is always exactly what the trainers hold. */
#include "ui/tui.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_PER_RUN 4

TuiDashBuf *tui_dash_buf_new(void) {
    TuiDashBuf *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->cap = (size_t)2 * SERIES_PER_RUN * SERIES_MAX;
    b->x = malloc(sizeof(double) * b->cap);
    b->y = malloc(sizeof(double) * b->cap);
    if (!b->x || !b->y) {
        tui_dash_buf_free(b);
        return NULL;
    }
    return b;
}

void tui_dash_buf_free(TuiDashBuf *b) {
    if (!b) return;
    free(b->x);
    free(b->y);
    free(b);
}

/* Copies a published series into the buffer; returns a chart series over
 * it (n = 0 when the buffer is full, which the sizes above rule out). */
static ChartSeries series_from(TuiDashBuf *b, const Series *s, const char *name, int colour, int mono, char ascii) {
    ChartSeries c = {name, NULL, NULL, 0, colour, mono, ascii};
    int n = gclamp(s->n, 0, SERIES_MAX);
    if (b->used + (size_t)n > b->cap) return c;
    double *x = b->x + b->used, *y = b->y + b->used;
    for (int i = 0; i < n; i++) {
        x[i] = (double)s->step[i];
        y[i] = (double)s->value[i];
    }
    b->used += (size_t)n;
    c.x = x;
    c.y = y;
    c.n = n;
    return c;
}

static int is_bilevel(const char *method) { return !strcmp(method, "bilora") || !strcmp(method, "bidora"); }

/* "lower_lr" -> "lower-lr": the flag's spelling, which is what the form
 * and the user call it. */
static void flag_name(const char *key, char *out, size_t cap) {
    size_t i = 0;
    for (; key[i] && i + 1 < cap; i++) out[i] = key[i] == '_' ? '-' : key[i];
    out[i] = 0;
}

static long parse_step_prefix(const char *s, const char **rest) {
    if (strncmp(s, "step ", 5) != 0) return -1;
    char *end;
    long v = strtol(s + 5, &end, 10);
    if (end == s + 5 || end[0] != ':' || end[1] != ' ') return -1;
    *rest = end + 2;
    return v;
}

DashEventKind tui_event_parse(const char *line, long *step, const char **text, char *out_key, size_t keycap,
                              char *out_value, size_t valcap) {
    if (keycap) out_key[0] = 0;
    if (valcap) out_value[0] = 0;
    *step = -1;
    *text = line;
    const char *rest;
    long s = parse_step_prefix(line, &rest);
    if (s >= 0) {
        *step = s;
        *text = rest;
        /* "lower_lr = 1e-4": a live change (keys are TrainConfig fields,
         * lower case with underscores and digits). */
        size_t k = strspn(rest, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (k > 0 && strncmp(rest + k, " = ", 3) == 0) {
            if (keycap) snprintf(out_key, keycap, "%.*s", (int)k, rest);
            if (valcap) snprintf(out_value, valcap, "%s", rest + k + 3);
            return DASH_EV_CHANGE;
        }
        if (strstr(rest, " loss ")) return DASH_EV_EVAL;
        return DASH_EV_INFO;
    }
    /* "paused at step 12": the step goes to the step column. */
    static const char *const AT[] = {"paused", "resumed", "stopped"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(AT[i]);
        if (!strncmp(line, AT[i], n) && !strncmp(line + n, " at step ", 9)) {
            *step = strtol(line + n + 9, NULL, 10);
            return DASH_EV_INFO;
        }
    }
    if (!strncmp(line, "refused:", 8) || !strncmp(line, "paused:", 7) || !strncmp(line, "failed:", 7) ||
        strstr(line, "failed") || strstr(line, "not available"))
        return DASH_EV_WARN;
    return DASH_EV_INFO;
}

/* One event for the log, in the buffer's next slot. */
typedef struct {
    long step, sort_step;
    int order;
    DashEventKind kind;
    int slot;           /* index into b->ev_text */
} Pending;

static int pending_cmp(const void *pa, const void *pb) {
    const Pending *a = pa, *b = pb;
    if (a->sort_step != b->sort_step) return a->sort_step < b->sort_step ? -1 : 1;
    return a->order - b->order;
}

/* The value a live change replaced: the previous change of the same key
 * in the run's change log, else the value the run started with (unless
 * the published log was cut, when the start value may not be the one
 * replaced). NULL when not known. */
static const char *old_value(const TuiRunIn *r, const char *key, long step, const char *value) {
    const TrainerView *v = r->view;
    int j = -1;
    for (int i = 0; i < v->n_changes; i++)
        if (v->changes[i].step == step && !strcmp(v->changes[i].key, key) && !strcmp(v->changes[i].value, value))
            j = i;
    if (j < 0) return NULL;
    for (int i = j - 1; i >= 0; i--)
        if (!strcmp(v->changes[i].key, key)) return v->changes[i].value;
    if (v->n_changes >= CHANGES_MAX || !r->initial) return NULL;
    return r->initial(r->ctx, key);
}

/* "lora: text" in compare mode (which run said it), else the text. */
static void event_text(char *dst, size_t cap, const char *label, const char *text) {
    size_t k = 0;
    if (label) {
        tui_copy(dst, cap, label);
        k = strlen(dst);
        if (k + 2 < cap) {
            dst[k++] = ':';
            dst[k++] = ' ';
        }
    }
    tui_copy(dst + k, cap - k, text);
}

typedef struct {
    TuiDashBuf *b;
    Pending pend[sizeof(((TuiDashBuf *)0)->events) / sizeof(((TuiDashBuf *)0)->events[0])];
    int n, order;
} EventList;

/* Adds an event ("label: text"). A warning wider than the log (a failure
 * naming a file and what was expected) wraps onto up to four lines, at
 * spaces where it can: it is the one line the user must read whole. */
static void add_event(EventList *el, DashEventKind kind, long step, long sort_step, const char *label,
                      const char *text, int width) {
    int cap = (int)(sizeof(el->pend) / sizeof(el->pend[0]));
    char full[1200];
    event_text(full, sizeof(full), label, text);
    const char *p = full;
    for (int line = 0; *p && el->n < cap; line++) {
        size_t len = strlen(p);
        if (kind == DASH_EV_WARN && width >= 20 && line < 3 && utf8_width(p) > width) {
            /* the longest prefix that fits, cut at its last space */
            size_t i = 0, cut = 0;
            int w = 0;
            while (p[i]) {
                uint32_t cp;
                int nb = utf8_decode(p + i, strlen(p + i), &cp);
                if (w + cp_width(cp) > width) break;
                w += cp_width(cp);
                i += (size_t)nb;
                if (cp == ' ') cut = i;
            }
            len = cut > (size_t)width / 2 ? cut : i;
        }
        Pending *q = &el->pend[el->n];
        q->slot = el->n;
        q->kind = kind;
        q->step = line ? -1 : step;
        q->sort_step = sort_step;
        q->order = el->order++;
        size_t room = sizeof(el->b->ev_text[0]) - 1;
        size_t n = len < room ? len : room;
        while (n < len && n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80) n--;
        memcpy(el->b->ev_text[el->n], p, n);
        el->b->ev_text[el->n][n] = 0;
        el->n++;
        p += len;
        while (*p == ' ') p++;
        if (kind != DASH_EV_WARN) break;
    }
}

int tui_dash_rows(const TuiDashIn *in) {
    int rows = 0;
    for (int i = 0; i < in->n_runs && i < 2; i++)
        if (in->runs[i].view) rows += gclamp(in->runs[i].view->spectrum_rows, 0, SPEC_ROWS_MAX);
    return rows;
}

void tui_dash_build(TuiDashBuf *b, const TuiDashIn *in, DashView *v) {
    memset(v, 0, sizeof(*v));
    b->used = 0;
    int nr = gclamp(in->n_runs, 0, 2), compare = nr == 2;
    const char *arrow = in->unicode ? " \u2192 " : " -> ";
    v->title = in->title;
    v->device = in->device;
    v->mem_bytes = in->mem_bytes;
    v->smoothing = in->smoothing;
    v->log_y = in->log_y;
    v->prompt = in->prompt;
    v->notice = in->notice;
    v->show_help = in->show_help;
    v->n_runs = nr;
    snprintf(b->metric_name, sizeof(b->metric_name), "metric");

    int nl = 0, nm = 0, rows = 0, cols = 0;
    for (int r = 0; r < nr; r++) {
        const TuiRunIn *ri = &in->runs[r];
        const TrainerView *tv = ri->view;
        if (!tv) continue;
        DashRun *run = &v->runs[r];
        run->label = ri->label;
        snprintf(b->state[r], sizeof(b->state[r]), "%s",
                 tv->state == TRAINER_RUNNING && tv->evaluating ? "evaluating"
                                                                : TRAINER_STATE_NAMES[gclamp((int)tv->state, 0, 5)]);
        run->state = b->state[r];
        run->step = tv->step;
        run->total_steps = tv->total_steps;
        run->epoch = tv->epoch;
        int started = tv->step > 0 && tv->state != TRAINER_STARTING;
        run->examples_per_s = started ? tv->examples_per_s : -1;
        run->eta_s = started && tv->state == TRAINER_RUNNING ? tv->eta_seconds : -1;
        run->colour = compare ? ri->colour : GC_GREEN;
        if (tv->metric_name[0]) snprintf(b->metric_name, sizeof(b->metric_name), "%s", tv->metric_name);

        if (!compare) {
            int bi = is_bilevel(tv->config.method);
            b->loss[nl++] = series_from(b, &tv->loss, bi ? "lower" : "train", GC_CYAN, 0, '*');
            if (bi) b->loss[nl++] = series_from(b, &tv->upper_loss, "upper", GC_MAGENTA, GA_UNDERLINE, '+');
            b->loss[nl++] = series_from(b, &tv->dev_loss, "dev", GC_YELLOW, GA_BOLD, 'o');
            b->metric[nm++] = series_from(b, &tv->dev_metric, "dev", GC_YELLOW, GA_BOLD, 'o');
        } else {
            /* Two runs: each run's colour, training thin, dev bold; the
             * second run also underlined so the colour-free mode keeps
             * them apart. Upper losses are left out: eight curves in a
             * 38-column chart read as noise. */
            int second = r == 1;
            snprintf(b->names[2 * r], sizeof(b->names[0]), "%s", ri->label);
            snprintf(b->names[2 * r + 1], sizeof(b->names[0]), "%s dev", ri->label);
            b->loss[nl++] = series_from(b, &tv->loss, b->names[2 * r], ri->colour, second ? GA_UNDERLINE : 0,
                                        second ? '+' : '.');
            b->loss[nl++] = series_from(b, &tv->dev_loss, b->names[2 * r + 1], ri->colour,
                                        GA_BOLD | (second ? GA_UNDERLINE : 0), second ? '#' : 'o');
            b->metric[nm++] = series_from(b, &tv->dev_metric, b->names[2 * r], ri->colour,
                                          second ? GA_UNDERLINE : 0, second ? '#' : 'o');
        }

        /* Spectrum rows, the second run's after the first's. */
        int n = gclamp(tv->spectrum_rows, 0, SPEC_ROWS_MAX);
        for (int i = 0; i < n; i++) {
            if (compare) snprintf(b->spec_names[rows + i], sizeof(b->spec_names[0]), "%s %s", ri->label, tv->spectrum_names[i]);
            else snprintf(b->spec_names[rows + i], sizeof(b->spec_names[0]), "%s", tv->spectrum_names[i]);
            b->spec_ptr[rows + i] = b->spec_names[rows + i];
        }
        rows += n;
        cols = gmax(cols, gclamp(tv->spectrum_cols, 0, SPEC_VALUES_MAX));
    }
    int row = 0;
    for (int r = 0; r < nr; r++) {
        const TrainerView *tv = in->runs[r].view;
        if (!tv) continue;
        int n = gclamp(tv->spectrum_rows, 0, SPEC_ROWS_MAX);
        for (int i = 0; i < n; i++, row++)
            for (int k = 0; k < cols; k++)
                b->spec[(size_t)row * (size_t)cols + (size_t)k] =
                    k < tv->spectrum_cols && k < SPEC_VALUES_MAX ? (double)tv->spectrum[i][k] : NAN;
    }
    v->loss = b->loss;
    v->n_loss = nl;
    v->metric = b->metric;
    v->n_metric = nm;
    v->metric_name = b->metric_name;
    v->spectrum.row_names = b->spec_ptr;
    v->spectrum.values = b->spec;
    v->spectrum.rows = rows;
    v->spectrum.cols = cols;
    v->spectrum.selected = rows > 0 ? gclamp(in->selected, 0, rows - 1) : -1;

    /* Events: each run's lines read into kind and step, the UI's own
     * lines added, all merged by step (a line without a step stays after
     * the one before it). */
    EventList el = {b, {{0}}, 0, 0};
    for (int r = 0; r < nr; r++) {
        const TuiRunIn *ri = &in->runs[r];
        const TrainerView *tv = ri->view;
        if (!tv) continue;
        const char *label = compare ? ri->label : NULL;
        long last = -1;
        int saw_message = 0;
        for (int i = 0; i < tv->n_events && i < EVENTS_MAX; i++) {
            long step;
            const char *text;
            char key[32], value[64];
            DashEventKind kind = tui_event_parse(tv->events[i], &step, &text, key, sizeof(key), value, sizeof(value));
            if (tv->message[0] && strstr(tv->events[i], tv->message)) saw_message = 1;
            char body[200];
            if (kind == DASH_EV_CHANGE) {
                char flag[40];
                flag_name(key, flag, sizeof(flag));
                const char *old = old_value(ri, key, step, value);
                if (old) snprintf(body, sizeof(body), "%s %s%s%s (live)", flag, old, arrow, value);
                else snprintf(body, sizeof(body), "%s = %s (live)", flag, value);
                text = body;
            } else if (kind == DASH_EV_EVAL && !strncmp(text, "train loss ", 11) && i + 1 < tv->n_events &&
                       i + 1 < EVENTS_MAX) {
                /* An evaluation logs the training sample, then dev, at one
                 * step: one line for both ("dev loss 0.54, accuracy 0.79 ·
                 * train loss 0.53") leaves the log room for other news. */
                long s2;
                const char *t2;
                if (tui_event_parse(tv->events[i + 1], &s2, &t2, NULL, 0, NULL, 0) == DASH_EV_EVAL && s2 == step &&
                    !strncmp(t2, "dev", 3)) {
                    size_t lw = strcspn(text + 11, ",");
                    snprintf(body, sizeof(body), "%.120s%strain loss %.*s", t2, in->unicode ? " \u00B7 " : " - ",
                             (int)(lw < 16 ? lw : 16), text + 11);
                    text = body;
                    i++;
                }
            } else if (kind == DASH_EV_INFO && step >= 0 && strstr(text, " at step ")) {
                /* "paused at step 12": the step column has the number. */
                tui_copy(body, sizeof(body), text);
                *strstr(body, " at step ") = 0;
                text = body;
            }
            add_event(&el, kind, step, step >= 0 ? step : last, label, text, in->log_width);
            if (step >= 0) last = step;
        }
        /* A run that failed before its first step has a message and no
         * event saying so. */
        if (tv->message[0] && !saw_message && (tv->state == TRAINER_FAILED || tv->state == TRAINER_PAUSED))
            add_event(&el, DASH_EV_WARN, tv->step > 0 ? tv->step : -1, last > tv->step ? last : tv->step, label,
                      tv->message, in->log_width);
    }
    for (int i = 0; i < in->n_ui_events; i++)
        add_event(&el, in->ui_events[i].kind, in->ui_events[i].step, in->ui_events[i].step, NULL,
                  in->ui_events[i].text, in->log_width);
    Pending *pend = el.pend;
    int np = el.n;
    qsort(pend, (size_t)np, sizeof(pend[0]), pending_cmp);
    for (int i = 0; i < np; i++) {
        b->events[i].step = pend[i].step;
        b->events[i].kind = pend[i].kind;
        b->events[i].text = b->ev_text[pend[i].slot];
    }
    v->events = b->events;
    v->n_events = np;
}
