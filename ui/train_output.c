/* What a headless run prints (bilora train, bilora resume): a progress bar
 * and readable lines on stderr, or JSON events on stdout. */
#include "ui/train_output.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* On a terminal the bar is one line redrawn in place; any other line first
 * erases it (the next step draws it again below), so lines never land on
 * the bar's tail and no blank lines are left between them. */
static void clear_bar(TrainOutput *o) {
    if (o->tty && o->bar_open) fprintf(stderr, "\r\033[K");
    o->bar_open = 0;
}

/* ,"key":value in fmt, or null where the number is not finite: JSON has
 * no NaN (a metric undefined on a one-example dev set, a diverged norm). */
static void jnum(const char *key, const char *fmt, double v) {
    printf(",\"%s\":", key);
    if (isfinite(v)) printf(fmt, v);
    else printf("null");
}

static void print_metrics(FILE *f, const MetricSet *m, int json) {
    for (int i = 0; i < m->n; i++) {
        if (json) {
            fprintf(f, "%s\"%s\":", i ? "," : "", m->name[i]);
            if (isfinite(m->value[i])) fprintf(f, "%.6f", m->value[i]);
            else fprintf(f, "null");
        } else {
            fprintf(f, " %s %.4f", m->name[i], m->value[i]);
        }
    }
}

static void on_info(void *ctx, const char *msg) {
    TrainOutput *o = ctx;
    if (o->json) {
        printf("{\"event\":\"info\",\"message\":\"");
        for (const char *p = msg; *p; p++) {
            if (*p == '"' || *p == '\\') putchar('\\');
            putchar(*p);
        }
        printf("\"}\n");
        fflush(stdout);
    } else {
        clear_bar(o);
        fprintf(stderr, "%s\n", msg);
    }
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, cap, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static void on_step(void *ctx, const StepInfo *s) {
    TrainOutput *o = ctx;
    if (o->json) {
        printf("{\"event\":\"step\",\"step\":%ld,\"phase\":%d", s->step, s->phase);
        jnum("epoch", "%.4f", s->epoch);
        jnum("loss", "%.6f", s->loss);
        jnum("lr", "%.6g", s->lr);
        jnum("grad_norm", "%.6g", s->grad_norm);
        jnum("examples_per_s", "%.1f", s->examples_per_s);
        jnum("step_seconds", "%.4f", s->step_seconds);
        if (isfinite(s->reg)) jnum("reg", "%.6g", s->reg);
        if (isfinite(s->upper_loss) || isfinite(s->hypergrad_norm)) {
            jnum("upper_loss", "%.6f", s->upper_loss);
            jnum("upper_lr", "%.6g", s->upper_lr);
            jnum("hypergrad_norm", "%.6g", s->hypergrad_norm);
        }
        printf("}\n");
        fflush(stdout);
        return;
    }
    char eta[32];
    fmt_eta(eta, sizeof(eta), (double)(s->total_steps - s->step) * s->step_seconds);
    int width = 30, filled = (int)(width * (double)s->step / s->total_steps);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    if (o->tty) {
        char line[256];
        int n = snprintf(line, sizeof(line), "[%s] step %ld/%ld  epoch %.2f  loss %.4f", bar, s->step,
                         s->total_steps, s->epoch, s->loss);
        if (isfinite(s->upper_loss) && n < (int)sizeof(line))
            n += snprintf(line + n, sizeof(line) - n, "  upper %.4f", s->upper_loss);
        if (n < (int)sizeof(line))
            snprintf(line + n, sizeof(line) - n, "  lr %.2e  %.1f ex/s  ETA %s", s->lr, s->examples_per_s, eta);
        /* a line wider than the terminal would wrap, and \r could not redraw it */
        struct winsize ws;
        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && strlen(line) >= ws.ws_col)
            line[ws.ws_col - 1] = 0;
        fprintf(stderr, "\r%s\033[K", line);
        o->bar_open = 1;
    } else if (s->step == 1 || s->step == s->total_steps ||
               s->step - o->last_line_step >= (s->total_steps >= 20 ? s->total_steps / 20 : 1)) {
        fprintf(stderr, "[%s] step %ld/%ld  epoch %.2f  loss %.4f", bar, s->step, s->total_steps,
                s->epoch, s->loss);
        if (isfinite(s->upper_loss)) fprintf(stderr, "  upper %.4f", s->upper_loss);
        fprintf(stderr, "  lr %.2e  %.1f ex/s  ETA %s\n", s->lr, s->examples_per_s, eta);
        o->last_line_step = s->step;
    }
}

static void on_eval(void *ctx, const EvalInfo *e) {
    TrainOutput *o = ctx;
    if (o->json) {
        printf("{\"event\":\"eval\",\"step\":%ld,\"split\":\"%s\"", e->step, e->split);
        jnum("loss", "%.6f", e->loss);
        printf(",\"examples\":%d,\"metrics\":{", e->examples);
        print_metrics(stdout, &e->metrics, 1);
        printf("}}\n");
        fflush(stdout);
        return;
    }
    clear_bar(o);
    fprintf(stderr, "eval step %ld  %-5s loss %.4f ", e->step, e->split, e->loss);
    print_metrics(stderr, &e->metrics, 0);
    fprintf(stderr, "  (%d examples)\n", e->examples);
}

static void json_number(double v) {
    if (isfinite(v)) printf("%.6g", v);
    else printf("null");
}

static void on_spectrum(void *ctx, const SpectrumInfo *s) {
    TrainOutput *o = ctx;
    if (!o->json) {
        if (s->n == 0) return;
        /* one readable line: the largest and smallest value over matrices */
        double top = 0, bottom = INFINITY;
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->rows[i].n; j++) {
                double v = s->rows[i].values[j];
                if (v > top) top = v;
                if (v < bottom) bottom = v;
            }
        clear_bar(o);
        fprintf(stderr, "spectrum step %ld: %d matrices, singular values in [%.3g, %.3g]\n", s->step,
                s->n, bottom, top);
        return;
    }
    printf("{\"event\":\"spectrum\",\"step\":%ld,\"matrices\":[", s->step);
    for (int i = 0; i < s->n; i++) {
        const SpectrumRow *r = &s->rows[i];
        printf("%s{\"name\":\"%s\",\"values\":[", i ? "," : "", r->name);
        for (int j = 0; j < r->n; j++) {
            if (j) printf(",");
            json_number(r->values[j]);
        }
        printf("]");
        if (isfinite(r->orth)) printf(",\"orth\":%.6g", r->orth);
        if (isfinite(r->magnitude_change)) printf(",\"magnitude_change\":%.6g", r->magnitude_change);
        if (isfinite(r->direction_change)) printf(",\"direction_change\":%.6g", r->direction_change);
        printf("}");
    }
    printf("]}\n");
    fflush(stdout);
}

static void on_done(void *ctx, const DoneInfo *d) {
    TrainOutput *o = ctx;
    if (o->json) {
        printf("{\"event\":\"done\",\"steps\":%ld", d->steps);
        jnum("seconds", "%.2f", d->seconds);
        jnum("train_loss", "%.6f", d->final_train_loss);
        printf(",\"trainable_params\":%zu,\"upper_params\":%zu,\"total_params\":%zu", d->trainable_params,
               d->upper_params, d->total_params);
        jnum("train_eval_loss", "%.6f", d->last_train.loss);
        if (d->has_dev) {
            jnum("dev_loss", "%.6f", d->last_dev.loss);
            printf(",\"dev_metrics\":{");
            print_metrics(stdout, &d->last_dev.metrics, 1);
            printf("}");
        }
        printf("}\n");
        fflush(stdout);
        return;
    }
    clear_bar(o);
    fprintf(stderr, "done: %ld steps in %.1f s, final train loss %.4f", d->steps, d->seconds,
            d->final_train_loss);
    if (d->has_dev) {
        fprintf(stderr, "; dev loss %.4f", d->last_dev.loss);
        print_metrics(stderr, &d->last_dev.metrics, 0);
    }
    fprintf(stderr, "\n");
}

TrainCallbacks train_output_callbacks(TrainOutput *o) {
    return (TrainCallbacks){.ctx = o, .on_info = on_info, .on_step = on_step, .on_eval = on_eval,
                            .on_spectrum = on_spectrum, .on_done = on_done};
}

void train_output_info(TrainOutput *o, const char *message) { on_info(o, message); }

void train_output_error(TrainOutput *o, const char *command, const char *err) {
    clear_bar(o);
    if (o->json) {
        printf("{\"event\":\"error\",\"message\":\"");
        for (const char *p = err; *p; p++) {
            if (*p == '"' || *p == '\\') putchar('\\');
            putchar(*p);
        }
        printf("\"}\n");
        fflush(stdout);
    }
    fprintf(stderr, "bilora %s: %s\n", command, err);
}
