/* `bilora sessions` (list, rm, verify), `bilora resume NAME` and
 * `bilora export NAME`: saved runs from the command line. */
#include "engine/train.h"
#include "sessions/session.h"
#include "ui/commands.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- what a resumed run prints: the same lines and JSON events as
 * `bilora train` (these mirror cmd_train.c's callbacks, which are static
 * there; see the report of issue 6 for moving both into one header) ---- */

typedef struct {
    int json;
    int tty;
    long last_line_step;
} Out;

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void print_metrics(FILE *f, const MetricSet *m, int json) {
    for (int i = 0; i < m->n; i++) {
        if (json) fprintf(f, "%s\"%s\":%.6f", i ? "," : "", m->name[i], m->value[i]);
        else fprintf(f, " %s %.4f", m->name[i], m->value[i]);
    }
}

static void on_info(void *ctx, const char *msg) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"info\",\"message\":");
        json_string(stdout, msg);
        printf("}\n");
        fflush(stdout);
    } else {
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
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"step\",\"step\":%ld,\"phase\":%d,\"epoch\":%.4f,\"loss\":%.6f,"
               "\"lr\":%.6g,\"grad_norm\":%.4f,\"examples_per_s\":%.1f",
               s->step, s->phase, s->epoch, s->loss, s->lr, s->grad_norm, s->examples_per_s);
        if (isfinite(s->reg)) printf(",\"reg\":%.6g", s->reg);
        if (isfinite(s->upper_loss))
            printf(",\"upper_loss\":%.6f,\"upper_lr\":%.6g,\"hypergrad_norm\":%.6g", s->upper_loss,
                   s->upper_lr, s->hypergrad_norm);
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
    int line = o->tty || s->step == 1 || s->step == s->total_steps ||
               s->step - o->last_line_step >= (s->total_steps >= 20 ? s->total_steps / 20 : 1);
    if (!line) return;
    fprintf(stderr, "%s[%s] step %ld/%ld  epoch %.2f  loss %.4f", o->tty ? "\r" : "", bar, s->step,
            s->total_steps, s->epoch, s->loss);
    if (isfinite(s->upper_loss)) fprintf(stderr, "  upper %.4f", s->upper_loss);
    fprintf(stderr, "  lr %.2e  %.1f ex/s  ETA %s%s", s->lr, s->examples_per_s, eta, o->tty ? "   " : "\n");
    o->last_line_step = s->step;
}

static void on_eval(void *ctx, const EvalInfo *e) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"eval\",\"step\":%ld,\"split\":\"%s\",\"loss\":%.6f,\"examples\":%d,"
               "\"metrics\":{", e->step, e->split, e->loss, e->examples);
        print_metrics(stdout, &e->metrics, 1);
        printf("}}\n");
        fflush(stdout);
        return;
    }
    if (o->tty) fprintf(stderr, "\n");
    fprintf(stderr, "eval step %ld  %-5s loss %.4f ", e->step, e->split, e->loss);
    print_metrics(stderr, &e->metrics, 0);
    fprintf(stderr, "  (%d examples)\n", e->examples);
}

static void json_number(double v) {
    if (isfinite(v)) printf("%.6g", v);
    else printf("null");
}

static void on_spectrum(void *ctx, const SpectrumInfo *s) {
    Out *o = ctx;
    if (!o->json) {
        if (s->n == 0) return;
        double top = 0, bottom = INFINITY;
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->rows[i].n; j++) {
                double v = s->rows[i].values[j];
                if (v > top) top = v;
                if (v < bottom) bottom = v;
            }
        if (o->tty) fprintf(stderr, "\n");
        fprintf(stderr, "spectrum step %ld: %d matrices, singular values in [%.3g, %.3g]\n", s->step, s->n,
                bottom, top);
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
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"done\",\"steps\":%ld,\"seconds\":%.2f,\"train_loss\":%.6f,"
               "\"trainable_params\":%zu,\"upper_params\":%zu,\"total_params\":%zu",
               d->steps, d->seconds, d->final_train_loss, d->trainable_params, d->upper_params,
               d->total_params);
        printf(",\"train_eval_loss\":%.6f", d->last_train.loss);
        if (d->has_dev) {
            printf(",\"dev_loss\":%.6f,\"dev_metrics\":{", d->last_dev.loss);
            print_metrics(stdout, &d->last_dev.metrics, 1);
            printf("}");
        }
        printf("}\n");
        fflush(stdout);
        return;
    }
    fprintf(stderr, "done: %ld steps in %.1f s, final train loss %.4f", d->steps, d->seconds,
            d->final_train_loss);
    if (d->has_dev) {
        fprintf(stderr, "; dev loss %.4f", d->last_dev.loss);
        print_metrics(stderr, &d->last_dev.metrics, 0);
    }
    fprintf(stderr, "\n");
}

static void report_error(const Out *o, const char *cmd, const char *err) {
    if (o->tty && !o->json) fprintf(stderr, "\n");
    if (o->json) {
        printf("{\"event\":\"error\",\"message\":");
        json_string(stdout, err);
        printf("}\n");
        fflush(stdout);
    }
    fprintf(stderr, "bilora %s: %s\n", cmd, err);
}

/* ---- bilora sessions ---- */

static void print_root(FILE *f) {
    char root[4096], err[256];
    if (session_root(root, sizeof(root), err, sizeof(err)) == 0) fprintf(f, "Sessions live in %s", root);
    else fprintf(f, "%s", err);
    fprintf(f, " (BILORA_SESSIONS, else $XDG_DATA_HOME/bilora/sessions, else ~/.local/share/bilora/sessions).\n");
}

static void warn_line(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

static void fmt_local(char *out, size_t cap, int64_t t) {
    if (t <= 0) { snprintf(out, cap, "-"); return; }
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

static void iso_utc(char *out, size_t cap, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int sessions_list(int json) {
    SessionSummary *list;
    int n;
    char err[2048];
    if (session_list(NULL, &list, &n, warn_line, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora sessions: %s\n", err);
        return 1;
    }
    if (json) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            const SessionSummary *s = &list[i];
            cJSON *o = cJSON_CreateObject();
            char t[32];
            cJSON_AddStringToObject(o, "name", s->name);
            cJSON_AddStringToObject(o, "task", s->task);
            cJSON_AddStringToObject(o, "method", s->method);
            cJSON_AddStringToObject(o, "model", s->model);
            cJSON_AddNumberToObject(o, "step", (double)s->step);
            cJSON_AddNumberToObject(o, "total_steps", (double)s->total_steps);
            cJSON_AddStringToObject(o, "metric_name", s->metric_name);
            cJSON_AddStringToObject(o, "metric_split", s->metric_split);
            cJSON_AddItemToObject(o, "metric", isfinite(s->metric) ? cJSON_CreateNumber(s->metric) : cJSON_CreateNull());
            cJSON_AddItemToObject(o, "loss", isfinite(s->loss) ? cJSON_CreateNumber(s->loss) : cJSON_CreateNull());
            iso_utc(t, sizeof(t), s->created);
            cJSON_AddStringToObject(o, "created", t);
            iso_utc(t, sizeof(t), s->saved);
            cJSON_AddStringToObject(o, "saved", t);
            cJSON_AddBoolToObject(o, "interrupted_save", s->from_aside);
            cJSON_AddItemToArray(a, o);
        }
        char *text = cJSON_Print(a);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(a);
        free(list);
        return 0;
    }
    if (n == 0) {
        printf("No saved sessions. `bilora train ... --session NAME` saves one.\n");
        print_root(stdout);
        free(list);
        return 0;
    }
    int w = 4;
    for (int i = 0; i < n; i++) if ((int)strlen(list[i].name) > w) w = (int)strlen(list[i].name);
    printf("%-*s  %-6s %-8s %15s  %-22s %s\n", w, "NAME", "TASK", "METHOD", "STEP", "METRIC", "SAVED");
    for (int i = 0; i < n; i++) {
        const SessionSummary *s = &list[i];
        char step[40], metric[64], saved[32];
        snprintf(step, sizeof(step), "%ld/%ld", s->step, s->total_steps);
        if (isfinite(s->metric)) snprintf(metric, sizeof(metric), "%s %s %.4f", s->metric_split, s->metric_name, s->metric);
        else snprintf(metric, sizeof(metric), "-");
        fmt_local(saved, sizeof(saved), s->saved);
        printf("%-*s  %-6s %-8s %15s  %-22s %s%s\n", w, s->name, s->task, s->method, step, metric, saved,
               s->from_aside ? "  (recovered from an interrupted save)" : "");
    }
    free(list);
    return 0;
}

int cmd_sessions(int argc, char **argv) {
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: bilora sessions [--json]        list saved sessions (name, task, method, step, metric, date)\n"
               "       bilora sessions rm NAME...      delete sessions\n"
               "       bilora sessions verify NAME...  check session files (tensor table, CRC32s) without loading\n"
               "Save one with `bilora train ... --session NAME [--save-every N]`; continue it with\n"
               "`bilora resume NAME`; chart it with `bilora export NAME --svg FILE`.\n");
        print_root(stdout);
        return 0;
    }
    if (argc == 0) return sessions_list(0);
    if (argc == 1 && !strcmp(argv[0], "--json")) return sessions_list(1);
    char err[2048];
    if (!strcmp(argv[0], "rm") || !strcmp(argv[0], "verify")) {
        int rm = !strcmp(argv[0], "rm"), rc = 0;
        if (argc < 2) {
            fprintf(stderr, "bilora sessions %s: name a session (bilora sessions lists them)\n", argv[0]);
            return 2;
        }
        for (int i = 1; i < argc; i++) {
            long step;
            if (rm ? session_remove(NULL, argv[i], err, sizeof(err)) : session_verify(NULL, argv[i], &step, err, sizeof(err))) {
                fprintf(stderr, "bilora sessions %s: %s\n", argv[0], err);
                rc = 1;
            } else if (rm) {
                printf("removed session '%s'\n", argv[i]);
            } else {
                printf("session '%s': whole (saved at step %ld; every tensor's CRC32 verified)\n", argv[i], step);
            }
        }
        return rc;
    }
    fprintf(stderr, "bilora sessions: unexpected '%s' (see bilora sessions --help)\n", argv[0]);
    return 2;
}

/* ---- bilora resume ---- */

static void resume_help(void) {
    printf("usage: bilora resume NAME [--json] [--save-every N] [--save-as NAME2] [--no-save] [--SETTING VALUE ...]\n"
           "Continues a saved run exactly where it stopped (the same steps, losses and tensors as\n"
           "if it had never stopped), printing what `bilora train` prints, and saves it back to\n"
           "the session at the end.\n\nflags:\n"
           "  --json              JSON lines on stdout instead of a progress bar\n"
           "  --save-every N      also save every N steps (default: at the end only)\n"
           "  --save-as NAME2     save to another session, keeping NAME as it is\n"
           "  --no-save           run to the end without saving\n"
           "  --SETTING VALUE     change a live setting from here on, logged at the saved step:\n"
           "                      --lower-lr (--lr), --upper-lr, --lower-steps, --upper-steps, --gamma1,\n"
           "                      --gamma2, --hypergrad, --eval-every, --spectrum-every, --split-ratio,\n"
           "                      and --device (where it computes; bitwise equality holds on the same device).\n"
           "                      Settings that shape the run (rank, method, steps, seed, ...) are fixed.\n");
}

int cmd_resume(int argc, char **argv) {
    const char *name = NULL, *save_as = NULL;
    int json = 0, no_save = 0;
    long save_every = 0;
    SessionOverride ov[32];
    int n_ov = 0;
    char err[4096];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { resume_help(); return 0; }
        if (strncmp(a, "--", 2) != 0) {
            if (name) {
                fprintf(stderr, "bilora resume: one session at a time ('%s', then '%s')\n", name, a);
                return 2;
            }
            name = a;
            continue;
        }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--no-save")) { no_save = 1; continue; }
        /* --flag value or --flag=value */
        char flag[64];
        const char *eq = strchr(a, '='), *v;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof(flag)) { fprintf(stderr, "bilora resume: unknown flag '%s'\n", a); return 2; }
        memcpy(flag, a, len);
        flag[len] = 0;
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else { fprintf(stderr, "bilora resume: %s needs a value\n", flag); return 2; }
        if (!strcmp(flag, "--save-every")) {
            char *end;
            save_every = strtol(v, &end, 10);
            if (!*v || *end || save_every < 0) {
                fprintf(stderr, "bilora resume: --save-every: expected a step count >= 0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(flag, "--save-as")) {
            save_as = v;
        } else {
            if (session_override_allowed(flag, err, sizeof(err)) != 0) {
                fprintf(stderr, "bilora resume: %s\n", err);
                return 2;
            }
            if (n_ov == (int)(sizeof(ov) / sizeof(ov[0]))) { fprintf(stderr, "bilora resume: too many settings\n"); return 2; }
            ov[n_ov++] = (SessionOverride){flag, v};
        }
    }
    if (!name) {
        fprintf(stderr, "bilora resume: name a session (bilora sessions lists them; see --help)\n");
        return 2;
    }
    const char *target = no_save ? NULL : save_as ? save_as : name;
    if (target && session_name_check(target, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora resume: %s\n", err);
        return 2;
    }
    if (save_as && strcmp(save_as, name) && session_exists(NULL, save_as)) {
        fprintf(stderr, "bilora resume: --save-as %s: that session exists; pick another name or delete it "
                "(bilora sessions rm %s)\n", save_as, save_as);
        return 2;
    }
    Out o = {.json = json, .tty = !json && isatty(2)};
    TrainCallbacks cb = {.ctx = &o, .on_info = on_info, .on_step = on_step, .on_eval = on_eval,
                         .on_spectrum = on_spectrum, .on_done = on_done};
    Run *r;
    if (session_load(NULL, name, ov, n_ov, &cb, &r, err, sizeof(err)) != 0) {
        report_error(&o, "resume", err);
        return 1;
    }
    char msg[512];
    long step = run_step_index(r), total = run_total_steps(r);
    const TrainConfig *c = run_config(r);
    if (step >= total) {
        snprintf(msg, sizeof(msg), "session '%s' is complete (step %ld of %ld); nothing to resume", name, step, total);
        on_info(&o, msg);
        run_free(r);
        return 0;
    }
    snprintf(msg, sizeof(msg), "resuming session '%s' at step %ld of %ld (%s on %s)%s%s", name, step, total,
             c->method, c->task, target ? "; saving to " : "; not saving", target ? target : "");
    on_info(&o, msg);
    o.last_line_step = step;
    int rc = session_drive(r, NULL, target, save_every, err, sizeof(err));
    run_free(r);
    if (rc != 0) {
        report_error(&o, "resume", err);
        return 1;
    }
    return 0;
}

/* ---- bilora export ---- */

static int export_one(const cJSON *doc, const char *path, int svg, char *err, size_t errlen) {
    int to_stdout = !strcmp(path, "-");
    FILE *f = to_stdout ? stdout : fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = svg ? session_export_svg(doc, f, err, errlen) : session_export_csv(doc, f, err, errlen);
    if (to_stdout) fflush(stdout);
    else if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: writing failed", path);
        rc = -1;
    }
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *name = NULL, *csv = NULL, *svg = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bilora export NAME [--csv FILE] [--svg FILE]   (FILE '-': standard output)\n"
                   "  --csv FILE   the metric history: one row per training step (loss, upper_loss) and per\n"
                   "               evaluation (split, loss, the task's metric)\n"
                   "  --svg FILE   charts for slides and papers: the losses (with live changes marked), the\n"
                   "               task metric per evaluation split, and the singular-value heatmap of the\n"
                   "               adapters at the save\n");
            return 0;
        }
        if (!strcmp(a, "--csv") || !strcmp(a, "--svg")) {
            if (i + 1 >= argc) { fprintf(stderr, "bilora export: %s needs a file\n", a); return 2; }
            if (!strcmp(a, "--csv")) csv = argv[++i];
            else svg = argv[++i];
        } else if (!strncmp(a, "--csv=", 6)) {
            csv = a + 6;
        } else if (!strncmp(a, "--svg=", 6)) {
            svg = a + 6;
        } else if (strncmp(a, "--", 2) && !name) {
            name = a;
        } else {
            fprintf(stderr, "bilora export: unexpected '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!name || (!csv && !svg)) {
        fprintf(stderr, "bilora export: name a session and at least one of --csv FILE, --svg FILE\n");
        return 2;
    }
    char err[2048];
    cJSON *doc;
    if (session_read_json(NULL, name, &doc, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora export: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (csv && export_one(doc, csv, 0, err, sizeof(err)) != 0) rc = 1;
    if (!rc && svg && export_one(doc, svg, 1, err, sizeof(err)) != 0) rc = 1;
    cJSON_Delete(doc);
    if (rc) fprintf(stderr, "bilora export: %s\n", err);
    return rc;
}
