/* `bilora sessions` (list, rm, verify), `bilora resume NAME` and
 * `bilora export NAME`: saved runs from the command line. */
#include "engine/train.h"
#include "sessions/session.h"
#include "ui/commands.h"
#include "ui/train_output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    char ov_keys[32][64]; /* the flags' names, one buffer each: ov[i].key points here */
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
            memcpy(ov_keys[n_ov], flag, len + 1);
            ov[n_ov] = (SessionOverride){ov_keys[n_ov], v};
            n_ov++;
        }
    }
    if (!name) {
        fprintf(stderr, "bilora resume: name a session (bilora sessions lists them; see --help)\n");
        return 2;
    }
    if (no_save && save_as) {
        fprintf(stderr, "bilora resume: --no-save and --save-as %s contradict each other; give one\n", save_as);
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
    TrainOutput o = {.json = json, .tty = isatty(2)};
    TrainCallbacks cb = train_output_callbacks(&o);
    char msg[512];
    SessionSummary sm;
    /* a complete run is said so before minutes of loading the model and data */
    if (session_summary(NULL, name, &sm, err, sizeof(err)) == 0 && sm.total_steps > 0 &&
        sm.step >= sm.total_steps) {
        snprintf(msg, sizeof(msg), "session '%s' is complete (step %ld of %ld); nothing to resume", name,
                 sm.step, sm.total_steps);
        train_output_info(&o, msg);
        return 0;
    }
    Run *r;
    if (session_load(NULL, name, ov, n_ov, &cb, &r, err, sizeof(err)) != 0) {
        train_output_error(&o, "resume", err);
        return 1;
    }
    long step = run_step_index(r), total = run_total_steps(r);
    const TrainConfig *c = run_config(r);
    if (step >= total) {
        snprintf(msg, sizeof(msg), "session '%s' is complete (step %ld of %ld); nothing to resume", name, step, total);
        train_output_info(&o, msg);
        run_free(r);
        return 0;
    }
    snprintf(msg, sizeof(msg), "resuming session '%s' at step %ld of %ld (%s on %s)%s%s", name, step, total,
             c->method, c->task, target ? "; saving to " : "; not saving", target ? target : "");
    train_output_info(&o, msg);
    int n_ch;
    const RunChange *ch = run_changes(r, &n_ch);
    for (int i = 0; i < n_ch; i++)
        if (ch[i].step > step) { /* this resume's settings (earlier ones are in the session's log) */
            snprintf(msg, sizeof(msg), "from step %ld: %s = %s", ch[i].step, ch[i].key, ch[i].value);
            train_output_info(&o, msg);
        }
    o.last_line_step = step;
    session_catch_interrupts(); /* Ctrl-C saves at the step boundary, then stops */
    int rc = session_drive(r, NULL, target, save_every, err, sizeof(err));
    run_free(r);
    if (rc == SESSION_INTERRUPTED) {
        train_output_info(&o, err);
        return 130;
    }
    if (rc != 0) {
        train_output_error(&o, "resume", err);
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
    if (csv && svg && (!strcmp(csv, svg))) {
        fprintf(stderr, "bilora export: --csv and --svg both name '%s'; one of them at a time on stdout, "
                "or two files\n", csv);
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
