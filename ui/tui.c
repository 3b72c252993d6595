/* The workbench's loop: screens, keys, and the trainers behind them.
 *
 * One thread draws and reads keys; each run trains in its own thread
 * (engine/trainer.h). The loop reads the trainers' published views every
 * ~100 ms and redraws only when a view changed, a key came or the
 * terminal was resized, so an idle dashboard costs nothing and a busy one
 * at most ten frames a second. Commands go through trainer_send, which
 * only queues: no key ever waits on a training step. */
#define _DEFAULT_SOURCE /* SIGWINCH is not in POSIX 2008 */

#include "sessions/session.h"
#include "ui/tui.h"

#include "engine/assets.h"
#include "ui/form.h"
#include "ui/options.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { SCR_PICKER, SCR_FORM, SCR_DASH, SCR_SESSIONS } ScreenId;
typedef enum { PROMPT_NONE, PROMPT_QUIT, PROMPT_COMPARE, PROMPT_FIND, PROMPT_NEW_RUN } PromptKind;

typedef struct {
    Trainer *t;
    TrainerView *view, *next;   /* the latest read, and the buffer for the next */
    char label[16];             /* its method */
    int colour;
    char init[FORM_MAX_FIELDS][FORM_VALUE_LEN]; /* the form's values when it started */
    const Form *form;           /* to find a key's field in init */
    long saved_step;            /* the step of the last confirmed snapshot; -1: none */
    double started, ended;      /* wall clock (now_s) at start and when it ended; 0: not yet */
    int confirmations;          /* snapshot confirmations seen in its log */
    char last_confirmation[256]; /* the latest of them */
    char session[SESSION_NAME_MAX + 1]; /* opened from this saved session: w saves back to it */
    long opening;               /* > 0: loading that session, saved at step opening − 1 */
} RunSlot;

typedef struct {
    DrawOpts o;
    TuiScreen *scr;
    Grid g;
    TuiAssets assets;
    int scanned;
    Picker picker;
    Form form;
    ScreenId screen;
    int tuning;                 /* the form was opened from the dashboard */
    RunSlot run[2];
    int n_runs;
    TuiDashBuf *buf;
    double smooth_weight;
    int smooth_on, log_y, selected, help;
    PromptKind prompt;
    char prompt_text[320];
    char find[64];
    TuiEvent ui_events[TUI_UI_EVENTS];
    int n_ui_events;
    char title[320];
    int quit, dirty;
    int quit_when_saved;        /* the quit prompt's w: quit once every run's save is confirmed */
    /* the session browser (o in the picker) */
    SessionSummary *sessions;
    int n_sessions, sess_sel;
    char sess_root[1024];
    char sess_msg[1200];        /* why the list could not be read, or a run not opened */
    /* A confirmation in the status line ("saved session 's1' at step
     * 120"), kept NOTICE_SECONDS: the event log may scroll it away at once
     * when evaluations come fast. */
    char notice[200];
    double notice_until;
#define NOTICE_SECONDS 5.0
    /* --stats: what the UI cost */
    int stats;
    long frames;
    double draw_seconds, started_at;
} App;

/* The task's canonical name ("sst2" -> "SST-2", "e2e" -> "E2E"), as the
 * form's choices spell it; an unknown name as it is (the form says why). */
static const char *canonical_task(const char *t) {
    const char *c = t ? train_task_name(t) : NULL;
    return c ? c : t;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- runs ---------------------------------------------------------------- */

static int run_active(const RunSlot *r) {
    TrainerState s = r->view->state;
    return s == TRAINER_STARTING || s == TRAINER_RUNNING || s == TRAINER_PAUSED;
}

static int any_active(const App *a) {
    for (int i = 0; i < a->n_runs; i++)
        if (run_active(&a->run[i])) return 1;
    return 0;
}

/* A run holds something worth keeping once it has taken a step that no
 * snapshot covers. */
static int unsaved(const App *a) {
    for (int i = 0; i < a->n_runs; i++)
        if (a->run[i].view->step > 0 && a->run[i].view->step > a->run[i].saved_step) return 1;
    return 0;
}

static void ui_event(App *a, DashEventKind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ui_event(App *a, DashEventKind kind, const char *fmt, ...) {
    if (a->n_ui_events == TUI_UI_EVENTS) {
        memmove(a->ui_events, a->ui_events + 1, sizeof(a->ui_events[0]) * (TUI_UI_EVENTS - 1));
        a->n_ui_events--;
    }
    TuiEvent *e = &a->ui_events[a->n_ui_events++];
    e->step = a->n_runs ? a->run[0].view->step : -1;
    e->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(e->text, sizeof(e->text), fmt, ap) >= (int)sizeof(e->text))
    { /* cut: say so, at a character boundary */
        size_t k = sizeof(e->text) - 4;
        while (k > 0 && ((unsigned char)e->text[k] & 0xC0) == 0x80) k--;
        memcpy(e->text + k, "...", 4);
    }
    va_end(ap);
}

/* The form's text -> a TrainConfig, through the same flag parser the
 * headless `bilora train` uses, then the engine's own checks (which know
 * the rules that span fields). method: NULL, or a method to use instead. */
static int config_from_form(const Form *f, const char *method, TrainConfig *c, char *err, size_t errlen) {
    train_config_defaults(c);
    Option opts[] = {
        {"--model", OPT_STR, c->model, sizeof(c->model), ""},
        {"--task", OPT_STR, c->task, sizeof(c->task), ""},
        {"--data", OPT_STR, c->data, sizeof(c->data), ""},
        {"--method", OPT_STR, c->method, sizeof(c->method), ""},
        {"--device", OPT_STR, c->device, sizeof(c->device), ""},
        {"--seed", OPT_U64, &c->seed, 0, ""},
        {"--rank", OPT_INT, &c->rank, 0, ""},
        {"--alpha", OPT_FLOAT, &c->alpha, 0, ""},
        {"--lora-dropout", OPT_FLOAT, &c->lora_dropout, 0, ""},
        {"--targets", OPT_STR, c->targets, sizeof(c->targets), ""},
        {"--lambda", OPT_STR, c->lambda, sizeof(c->lambda), ""},
        {"--svd-init", OPT_STR, c->svd_init, sizeof(c->svd_init), ""},
        {"--lower-lr", OPT_FLOAT, &c->lower_lr, 0, ""},
        {"--upper-lr", OPT_FLOAT, &c->upper_lr, 0, ""},
        {"--lower-weight-decay", OPT_FLOAT, &c->lower_weight_decay, 0, ""},
        {"--upper-weight-decay", OPT_FLOAT, &c->upper_weight_decay, 0, ""},
        {"--warmup-ratio", OPT_FLOAT, &c->warmup_ratio, 0, ""},
        {"--max-grad-norm", OPT_FLOAT, &c->max_grad_norm, 0, ""},
        {"--batch-size", OPT_INT, &c->batch_size, 0, ""},
        {"--max-seq-len", OPT_INT, &c->max_seq_len, 0, ""},
        {"--epochs", OPT_INT, &c->epochs, 0, ""},
        {"--steps", OPT_LONG, &c->steps, 0, ""},
        {"--eval-every", OPT_LONG, &c->eval_every, 0, ""},
        {"--spectrum-every", OPT_LONG, &c->spectrum_every, 0, ""},
        {"--eval-train-examples", OPT_INT, &c->eval_train_examples, 0, ""},
        {"--eval-generate", OPT_INT, &c->eval_generate, 0, ""},
        {"--overfit-batch", OPT_INT, &c->overfit_batch, 0, ""},
        {"--split-ratio", OPT_FLOAT, &c->split_ratio, 0, ""},
        {"--lower-steps", OPT_INT, &c->lower_steps, 0, ""},
        {"--upper-steps", OPT_INT, &c->upper_steps, 0, ""},
        {"--gamma1", OPT_FLOAT, &c->gamma1, 0, ""},
        {"--gamma2", OPT_FLOAT, &c->gamma2, 0, ""},
        {"--hypergrad", OPT_STR, c->hypergrad, sizeof(c->hypergrad), ""},
        {"--darts-radius", OPT_FLOAT, &c->darts_radius, 0, ""},
        {"--darts-xi", OPT_FLOAT, &c->darts_xi, 0, ""},
        {"--neumann-steps", OPT_INT, &c->neumann_steps, 0, ""},
        {"--neumann-alpha", OPT_FLOAT, &c->neumann_alpha, 0, ""},
        {"--phase2-steps", OPT_LONG, &c->phase2_steps, 0, ""},
        {"--phase2-lr", OPT_FLOAT, &c->phase2_lr, 0, ""},
        {"--target-rank", OPT_INT, &c->target_rank, 0, ""},
        {"--tinit", OPT_FLOAT, &c->tinit, 0, ""},
        {"--tfinal", OPT_FLOAT, &c->tfinal, 0, ""},
        {"--delta-t", OPT_INT, &c->delta_t, 0, ""},
    };
    char flags[FORM_MAX_FIELDS][48];
    char *argv[2 * FORM_MAX_FIELDS];
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        snprintf(flags[i], sizeof(flags[i]), "--%s", f->fields[i].name);
        argv[n++] = flags[i];
        argv[n++] = (char *)(method && !strcmp(f->fields[i].name, "method") ? method : f->value[i]);
    }
    if (options_parse(opts, (int)(sizeof(opts) / sizeof(opts[0])), n, argv, err, errlen) != 0) return -1;
    if (!c->model[0]) {
        snprintf(err, errlen, "model is required: pick one (esc goes back to the picker)");
        return -1;
    }
    return train_config_check(c, err, errlen);
}

static const char *slot_initial(void *ctx, const char *key) {
    RunSlot *r = ctx;
    char flag[48];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof(flag); i++) flag[i] = key[i] == '_' ? '-' : key[i];
    flag[i] = 0;
    int k = form_index(r->form, flag);
    return k < 0 ? NULL : r->init[k];
}

/* Starts a run in slot i. SIGWINCH is blocked while the thread is made,
 * so it (and the OpenMP threads it makes) inherit the mask and the
 * signal reaches the thread that draws. */
static int start_slot(App *a, int i, const char *method, char *err, size_t errlen) {
    TrainConfig c;
    if (config_from_form(&a->form, method, &c, err, errlen) != 0) return -1;
    RunSlot *r = &a->run[i];
    memset(r, 0, sizeof(*r));
    r->view = trainer_view_new();
    r->next = trainer_view_new();
    if (!r->view || !r->next) {
        trainer_view_free(r->view);
        trainer_view_free(r->next);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = trainer_start(&r->t, &c, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) trainer_set_snapshot(r->t, session_snapshot, NULL); /* w saves a session */
    if (rc != 0) {
        trainer_view_free(r->view);
        trainer_view_free(r->next);
        memset(r, 0, sizeof(*r));
        return -1;
    }
    trainer_read(r->t, r->view);
    r->started = now_s();
    snprintf(r->label, sizeof(r->label), "%s", c.method);
    r->saved_step = -1;
    r->form = &a->form;
    for (int k = 0; k < a->form.n; k++) snprintf(r->init[k], FORM_VALUE_LEN, "%s", a->form.value[k]);
    return 0;
}

static void set_title(App *a) {
    const char *dot = a->o.unicode ? " \u00B7 " : " - ";
    const char *model = form_get(&a->form, "model"), *task = form_get(&a->form, "task");
    /* A model given as a directory is named by its last component. */
    const char *slash = model ? strrchr(model, '/') : NULL;
    if (slash && slash[1]) model = slash + 1;
    if (a->n_runs == 2)
        snprintf(a->title, sizeof(a->title), "%s%s%s", model ? model : "", dot, task ? task : "");
    else
        snprintf(a->title, sizeof(a->title), "%s%s%s%s%s", model ? model : "", dot, task ? task : "", dot,
                 a->n_runs ? a->run[0].label : "");
}

static void colour_runs(App *a) {
    a->run[0].colour = a->n_runs == 2 ? GC_BLUE : GC_GREEN;
    a->run[1].colour = GC_MAGENTA;
}

/* The dashboard, after its runs started. */
static void show_dashboard(App *a) {
    colour_runs(a);
    set_title(a);
    a->screen = SCR_DASH;
    a->tuning = 0;
    a->form.running = 1;
    a->selected = 0;
}

/* "WHAT at step N" (N < 0: WHAT alone) in the status line for NOTICE_SECONDS. */
static void show_notice(App *a, const char *what, long step) {
    char count[32] = "";
    if (step >= 0) dash_format_count(step, count, sizeof(count));
    snprintf(a->notice, sizeof(a->notice), "%s%s%s", what, step >= 0 ? " at step " : "", count);
    a->notice_until = now_s() + NOTICE_SECONDS;
}

/* The first run, and with compare a second on the same data and split
 * (same seed, same split ratio; only the method differs). */
static int start_runs(App *a, const char *compare, char *err, size_t errlen) {
    if (start_slot(a, 0, NULL, err, errlen) != 0) return -1;
    a->n_runs = 1;
    if (compare && *compare) {
        if (start_slot(a, 1, compare, err, errlen) != 0) {
            char first[512];
            snprintf(first, sizeof(first), "%s", err);
            snprintf(err, errlen, "the %s run of the comparison: %s", compare, first);
            /* The first run goes on alone; the log says why. */
            ui_event(a, DASH_EV_WARN, "%s", err);
        } else {
            a->n_runs = 2;
        }
    }
    show_dashboard(a);
    return 0;
}

/* The loader trainer_start_loaded calls on the run's thread: ctx is the
 * slot's session name, which lives until the slot is stopped and joined. */
static int load_session(void *ctx, const TrainCallbacks *cb, Run **out, char *err, size_t errlen) {
    return session_load(NULL, (const char *)ctx, NULL, 0, cb, out, err, errlen);
}

/* Opens saved session s on the dashboard: the run loads in the trainer's
 * thread (a bad session shows as a failed run with the reason), and w
 * saves back to the same name. */
static int start_loaded(App *a, const SessionSummary *s, char *err, size_t errlen) {
    RunSlot *r = &a->run[0];
    memset(r, 0, sizeof(*r));
    snprintf(r->session, sizeof(r->session), "%s", s->name);
    r->view = trainer_view_new();
    r->next = trainer_view_new();
    if (!r->view || !r->next) {
        trainer_view_free(r->view);
        trainer_view_free(r->next);
        memset(r, 0, sizeof(*r));
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = trainer_start_loaded(&r->t, load_session, r->session, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        trainer_view_free(r->view);
        trainer_view_free(r->next);
        memset(r, 0, sizeof(*r));
        return -1;
    }
    trainer_set_snapshot(r->t, session_snapshot, NULL);
    trainer_read(r->t, r->view);
    r->started = now_s();
    snprintf(r->label, sizeof(r->label), "%s", s->method);
    r->saved_step = s->step; /* what is on disk already */
    r->form = &a->form;
    form_set(&a->form, "model", s->model);
    form_set(&a->form, "task", canonical_task(s->task));
    form_set(&a->form, "method", s->method);
    for (int k = 0; k < a->form.n; k++) snprintf(r->init[k], FORM_VALUE_LEN, "%s", a->form.value[k]);
    a->n_runs = 1;
    show_dashboard(a);
    /* it loads in the trainer's thread: poll_runs says how that went */
    r->opening = s->step + 1;
    ui_event(a, DASH_EV_INFO, "opening session '%s' (saved at step %ld)...", s->name, s->step);
    return 0;
}

/* The form shows a run's settings: every field from c (its JSON key is
 * the field's name with '_' for '-'); model, task and method are kept. */
static void form_from_config(Form *f, const TrainConfig *c) {
    cJSON *j = train_config_to_json(c);
    if (!j) return;
    int running = f->running;
    f->running = 0; /* filling, not tuning: nothing is locked or "applied" */
    for (int i = 0; i < f->n; i++) {
        const char *name = f->fields[i].name;
        if (!strcmp(name, "model") || !strcmp(name, "task") || !strcmp(name, "method")) continue;
        char key[64], val[FORM_VALUE_LEN];
        snprintf(key, sizeof(key), "%s", name);
        for (char *q = key; *q; q++)
            if (*q == '-') *q = '_';
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
        if (cJSON_IsString(v)) snprintf(val, sizeof(val), "%s", v->valuestring);
        else if (cJSON_IsNumber(v)) snprintf(val, sizeof(val), "%.9g", v->valuedouble);
        else if (cJSON_IsBool(v)) snprintf(val, sizeof(val), "%s", cJSON_IsTrue(v) ? "1" : "0");
        else continue;
        form_set(f, name, val);
    }
    f->running = running;
    f->message[0] = 0;
    cJSON_Delete(j);
}

/* The outcome of opening a session, once its run has loaded or failed. */
static void opened(App *a, RunSlot *r) {
    long step = r->opening - 1;
    r->opening = 0;
    if (r->view->state == TRAINER_FAILED) {
        ui_event(a, DASH_EV_WARN, "could not open session '%s': %s", r->session, r->view->message);
        return;
    }
    /* the form (t tune, r new run) shows the session's settings, live
     * changes included, not the defaults */
    form_from_config(&a->form, &r->view->config);
    for (int k = 0; k < a->form.n; k++) snprintf(r->init[k], FORM_VALUE_LEN, "%s", a->form.value[k]);
    ui_event(a, DASH_EV_INFO, "opened session '%s' (saved at step %ld); w saves back to it", r->session, step);
    char what[SESSION_NAME_MAX + 32];
    snprintf(what, sizeof(what), "opened session '%s'", r->session);
    show_notice(a, what, step);
}

static void stop_runs(App *a) {
    for (int i = 0; i < a->n_runs; i++) {
        char err[256];
        trainer_send(a->run[i].t, &(TrainerCmd){.kind = CMD_STOP}, err, sizeof(err));
    }
    for (int i = 0; i < a->n_runs; i++) {
        trainer_join(a->run[i].t);
        trainer_view_free(a->run[i].view);
        trainer_view_free(a->run[i].next);
        memset(&a->run[i], 0, sizeof(a->run[i]));
    }
    a->n_runs = 0;
    a->form.running = 0;
    a->n_ui_events = 0;
}

static void send_all(App *a, TrainerCmdKind kind, const char *value) {
    for (int i = 0; i < a->n_runs; i++) {
        if (!run_active(&a->run[i])) continue;
        TrainerCmd c = {.kind = kind};
        if (value) snprintf(c.value, sizeof(c.value), "%s", value);
        char err[256];
        if (trainer_send(a->run[i].t, &c, err, sizeof(err)) != 0) ui_event(a, DASH_EV_WARN, "%s", err);
    }
}

/* Whether a log line confirms a snapshot: the trainer logs
 * "step N: saved session 'NAME'" after session_snapshot succeeded. */
static int snapshot_confirmed(const char *line) { return strstr(line, ": saved session '") != NULL; }

/* Shows "saved session 'NAME' at step N" from a confirmation line. */
static void notice_saved(App *a, const char *line) {
    const char *what = strstr(line, "saved session '");
    long step = -1;
    if (sscanf(line, "step %ld:", &step) != 1) step = -1;
    show_notice(a, what, step);
}

/* Reads every trainer; 1 when anything they published changed. */
static int poll_runs(App *a) {
    int changed = 0;
    for (int i = 0; i < a->n_runs; i++) {
        RunSlot *r = &a->run[i];
        trainer_read(r->t, r->next);
        /* (a load that failed at once may already be in the first view read) */
        if (memcmp(r->next, r->view, sizeof(*r->view)) == 0) {
            if (r->opening && r->view->state != TRAINER_STARTING) {
                opened(a, r);
                changed = 1;
            }
            continue;
        }
        TrainerView *t = r->view;
        r->view = r->next;
        r->next = t;
        changed = 1;
        if (r->opening && r->view->state != TRAINER_STARTING) opened(a, r);
        if (!run_active(r) && !r->ended) r->ended = now_s();
        int conf = 0, last = -1;
        for (int k = 0; k < r->view->n_events && k < EVENTS_MAX; k++)
            if (snapshot_confirmed(r->view->events[k])) {
                conf++;
                last = k;
            }
        /* New: more of them, or a different latest one (older ones
         * scroll out of the view's ring). */
        if (conf > r->confirmations || (last >= 0 && strcmp(r->view->events[last], r->last_confirmation) != 0)) {
            snprintf(r->last_confirmation, sizeof(r->last_confirmation), "%s", r->view->events[last]);
            r->saved_step = r->view->step;
            notice_saved(a, r->view->events[last]);
        }
        r->confirmations = conf;
    }
    /* the tune form knows whether a run still goes (it ends while the form
     * is open: hot changes are then no longer "applied at the next step") */
    if (a->tuning && changed) a->form.running = any_active(a);
    return changed;
}

static void snapshot(App *a) {
    if (!a->n_runs) return;
    char name[64];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    for (int i = 0; i < a->n_runs; i++) {
        const char *task = form_get(&a->form, "task");
        if (a->run[i].session[0]) snprintf(name, sizeof(name), "%s", a->run[i].session);
        else {
            snprintf(name, sizeof(name), "%s-%s-%s", task ? task : "run", a->run[i].label, stamp);
            /* later saves of this run update the same session, not a new one each time */
            snprintf(a->run[i].session, sizeof(a->run[i].session), "%s", name);
        }
        TrainerCmd c = {.kind = CMD_SNAPSHOT};
        snprintf(c.value, sizeof(c.value), "%s", name);
        char err[256];
        if (trainer_send(a->run[i].t, &c, err, sizeof(err)) != 0) ui_event(a, DASH_EV_WARN, "snapshot: %s", err);
    }
}

/* ---- drawing ------------------------------------------------------------- */

static double resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size, res;
    int ok = fscanf(f, "%ld %ld", &size, &res) == 2;
    fclose(f);
    return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) : -1;
}

static void draw_dash(App *a) {
    TuiDashIn in;
    memset(&in, 0, sizeof(in));
    for (int i = 0; i < a->n_runs; i++) {
        in.runs[i].view = a->run[i].view;
        in.runs[i].label = a->run[i].label;
        in.runs[i].colour = a->run[i].colour;
        in.runs[i].initial = slot_initial;
        in.runs[i].ctx = &a->run[i];
    }
    in.n_runs = a->n_runs;
    in.title = a->title;
    in.device = a->n_runs ? a->run[0].view->config.device : "";
    in.mem_bytes = resident_bytes();
    in.smoothing = a->smooth_on ? a->smooth_weight : 0;
    in.log_y = a->log_y;
    in.selected = a->selected;
    in.ui_events = a->ui_events;
    in.n_ui_events = a->n_ui_events;
    in.prompt = a->prompt != PROMPT_NONE ? a->prompt_text : NULL;
    in.notice = a->notice[0] ? a->notice : NULL;
    in.show_help = a->help;
    in.unicode = a->o.unicode;
    /* The log box's inner width less the step and tag columns (panels.c). */
    in.log_width = a->g.w - 2 - 14;
    DashView v;
    tui_dash_build(a->buf, &in, &v);
    dash_draw(&a->g, &v, &a->o);
}

/* "bilora running  step 120/3,000" per run, for the tune form's title row. */
static void runs_summary(const App *a, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < a->n_runs && k < cap; i++) {
        const TrainerView *v = a->run[i].view;
        char s[32], t[32];
        dash_format_count(v->step, s, sizeof(s));
        dash_format_count(v->total_steps, t, sizeof(t));
        k += (size_t)snprintf(buf + k, cap - k, "%s%s %s  step %s/%s", i ? "   " : "", a->run[i].label,
                              TRAINER_STATE_NAMES[gclamp((int)v->state, 0, 5)], s, t);
    }
}

static void draw_prompt(App *a, Rect r) {
    DashView v;
    memset(&v, 0, sizeof(v));
    v.prompt = a->prompt_text;
    dash_status(&a->g, r, &v, &a->o);
}

static void draw_form(App *a) {
    Grid *g = &a->g;
    if (g->w < DASH_MIN_W || g->h < DASH_MIN_H) {
        dash_too_small(g, &a->o);
        return;
    }
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    char left[400], right[200];
    const char *dot = a->o.unicode ? " \u00B7 " : " - ";
    if (a->tuning) {
        snprintf(left, sizeof(left), "tune%s%s", dot, a->title);
        runs_summary(a, right, sizeof(right));
    } else {
        const char *m = form_get(&a->form, "model"), *t = form_get(&a->form, "task"),
                   *me = form_get(&a->form, "method");
        snprintf(left, sizeof(left), "set up the run%s%s%s%s%s%s", dot, m && *m ? m : "(no model)", dot, t, dot, me);
        snprintf(right, sizeof(right), "%s", "every flag of bilora train");
    }
    tui_title_row(g, 0, left, right, &a->o);
    form_draw(&a->form, g, grect(0, 1, g->w, g->h - 2), &a->o);
    Rect status = grect(0, g->h - 1, g->w, 1);
    if (a->prompt != PROMPT_NONE) {
        draw_prompt(a, status);
        return;
    }
    int u = a->o.unicode;
    if (a->form.editing) {
        const char *keys[] = {u ? "\u23CE" : "enter", "apply", "esc", "cancel", "^U", "clear",
                              u ? "\u2190\u2192" : "left/right", "cursor"};
        tui_status_keys(g, status, keys, 4, &a->o);
    } else if (a->tuning) {
        const char *keys[] = {u ? "\u2191\u2193" : "up/dn", "field", u ? "\u23CE" : "enter", "edit",
                              u ? "\u2190\u2192" : "left/right", "choice", "/", "find",
                              "esc", "dashboard", "r", any_active(a) ? "stop, set up anew" : "new run"};
        tui_status_keys(g, status, keys, 6, &a->o);
    } else {
        const char *keys[] = {u ? "\u2191\u2193" : "up/dn", "field", u ? "\u23CE" : "enter", "edit",
                              u ? "\u2190\u2192" : "left/right", "choice", "/", "find", "r", "run",
                              "c", "compare", "esc", "picker", "q", "quit"};
        tui_status_keys(g, status, keys, 8, &a->o);
    }
}

/* ---- the session browser ------------------------------------------------ */

static void scan_assets(App *a);

static void list_warn(void *ctx, const char *message) {
    App *a = ctx;
    if (!a->sess_msg[0]) tui_copy(a->sess_msg, sizeof(a->sess_msg), message);
}

/* Reads the saved sessions (session_list) and shows the browser. */
static void open_sessions(App *a) {
    free(a->sessions);
    a->sessions = NULL;
    a->n_sessions = 0;
    a->sess_msg[0] = 0;
    char err[1024];
    if (session_root(a->sess_root, sizeof(a->sess_root), err, sizeof(err)) != 0) {
        a->sess_root[0] = 0;
        tui_copy(a->sess_msg, sizeof(a->sess_msg), err);
    } else if (session_list(NULL, &a->sessions, &a->n_sessions, list_warn, a, err, sizeof(err)) != 0) {
        a->sessions = NULL;
        a->n_sessions = 0;
        tui_copy(a->sess_msg, sizeof(a->sess_msg), err);
    }
    a->sess_sel = gclamp(a->sess_sel, 0, gmax(0, a->n_sessions - 1));
    a->screen = SCR_SESSIONS;
}

static void draw_sessions(App *a) {
    Grid *g = &a->g;
    const DrawOpts *o = &a->o;
    if (g->w < DASH_MIN_W || g->h < DASH_MIN_H) {
        dash_too_small(g, o);
        return;
    }
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    char right[1100];
    snprintf(right, sizeof(right), "in %s", a->sess_root[0] ? a->sess_root : "(no sessions root)");
    tui_title_row(g, 0, o->unicode ? "bilora \u00B7 saved runs" : "bilora - saved runs", right, o);
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0), bold = style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD);
    Style code = style_pick(o, GC_CYAN, 0, 0);
    int x = 2, w = g->w - 4, y = 2;
    char line[2400];
    if (a->n_sessions == 0) {
        grid_text(g, x, y++, w, bold, "No saved sessions.");
        y++;
        grid_text(g, x, y++, w, dim, "Sessions are kept in");
        grid_text_fit(g, x + 2, y++, w - 2, code, a->sess_root[0] ? a->sess_root : "(unknown)", o->unicode);
        grid_text(g, x, y++, w, dim, "(BILORA_SESSIONS, else $XDG_DATA_HOME/bilora/sessions).");
        y++;
        grid_text(g, x, y++, w, dim, "w on the dashboard saves the run; from the shell:");
        grid_text(g, x + 2, y++, w - 2, code, "bilora train ... --session NAME");
    } else {
        /* the name column as wide as the longest name (default names are 27) */
        int nw = 24;
        for (int i = 0; i < a->n_sessions; i++) {
            int l = (int)strlen(a->sessions[i].name);
            if (l > nw) nw = l;
        }
        if (nw > 48) nw = 48;
        snprintf(line, sizeof(line), "  %-*s %-6s %-7s %15s %-16s %s", nw, "name", "task", "method", "step", "metric",
                 "saved");
        grid_text(g, 0, y++, g->w, bold, line);
        int rows = g->h - 3 - y;
        int first = a->n_sessions <= rows ? 0 : gclamp(a->sess_sel - rows / 2, 0, a->n_sessions - rows);
        for (int i = first; i < a->n_sessions && y < g->h - 3; i++, y++) {
            const SessionSummary *s = &a->sessions[i];
            char step[24], total[24], st[56], metric[48], date[32] = "";
            dash_format_count(s->step, step, sizeof(step));
            dash_format_count(s->total_steps, total, sizeof(total));
            snprintf(st, sizeof(st), "%s/%s", step, total);
            if (isfinite(s->metric)) snprintf(metric, sizeof(metric), "%.8s %.4f", s->metric_name, s->metric);
            else snprintf(metric, sizeof(metric), "-");
            time_t t = (time_t)s->saved;
            struct tm tm;
            if (localtime_r(&t, &tm)) strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
            snprintf(line, sizeof(line), "  %-*.*s %-6.6s %-7.7s %15s %-16.16s %s%s", nw, nw, s->name, s->task,
                     s->method, st, metric, date, s->from_aside ? " (interrupted save)" : "");
            int sel = i == a->sess_sel;
            grid_clear(g, grect(0, y, g->w, 1), sel ? style_pick(o, GC_DEFAULT, GA_REVERSE, 0) : gstyle(0, 0, 0));
            grid_text(g, 0, y, g->w, sel ? style_pick(o, GC_DEFAULT, GA_REVERSE, 0) : gstyle(0, 0, 0), line);
            if (sel) grid_put(g, 0, y, o->unicode ? 0x25B8 : '>', style_pick(o, GC_DEFAULT, GA_REVERSE, 0));
        }
        if (a->sess_sel < a->n_sessions)
            grid_text_fit(g, 1, g->h - 3, g->w - 2, dim, a->sessions[a->sess_sel].model, o->unicode);
    }
    if (a->sess_msg[0]) grid_text_fit(g, 1, g->h - 2, g->w - 2, style_pick(o, GC_RED, GA_BOLD, GA_BOLD), a->sess_msg, o->unicode);
    const char *uni[] = {"\u2191\u2193", "choose", "\u23CE", "open", "esc", "back", "r", "read again", "q", "quit"};
    const char *asc[] = {"up/dn", "choose", "enter", "open", "esc", "back", "r", "read again", "q", "quit"};
    tui_status_keys(g, grect(0, g->h - 1, g->w, 1), o->unicode ? uni : asc, 5, o);
}

static void sessions_key(App *a, const TuiKey *k) {
    uint32_t ch = k->code == TK_CHAR ? k->ch : 0;
    int n = a->n_sessions;
    if (ch == 'q') a->quit = 1;
    else if (ch == 'r') open_sessions(a);
    else if (k->code == TK_ESC || k->code == TK_LEFT || k->code == TK_BACKSPACE || ch == 'h') {
        if (!a->scanned) scan_assets(a);
        a->screen = SCR_PICKER;
    } else if (k->code == TK_UP || ch == 'k') a->sess_sel = gclamp(a->sess_sel - 1, 0, gmax(0, n - 1));
    else if (k->code == TK_DOWN || ch == 'j') a->sess_sel = gclamp(a->sess_sel + 1, 0, gmax(0, n - 1));
    else if (k->code == TK_PGUP) a->sess_sel = gclamp(a->sess_sel - 10, 0, gmax(0, n - 1));
    else if (k->code == TK_PGDN) a->sess_sel = gclamp(a->sess_sel + 10, 0, gmax(0, n - 1));
    else if ((k->code == TK_ENTER || k->code == TK_RIGHT || ch == 'l') && a->sess_sel < n) {
        char err[1024];
        if (start_loaded(a, &a->sessions[a->sess_sel], err, sizeof(err)) != 0) {
            char msg[1100];
            snprintf(msg, sizeof(msg), "could not open: %s", err);
            tui_copy(a->sess_msg, sizeof(a->sess_msg), msg);
        }
    }
}

static void render(App *a) {
    double t0 = now_s();
    int w, h;
    screen_size(a->scr, &w, &h);
    if (w != a->g.w || h != a->g.h || !a->g.cells) {
        grid_free(&a->g);
        if (grid_init(&a->g, gmax(w, 1), gmax(h, 1)) != 0) return;
    }
    switch (a->screen) {
    case SCR_PICKER: picker_draw(&a->g, &a->picker, &a->assets, &a->o); break;
    case SCR_FORM: draw_form(a); break;
    case SCR_DASH: draw_dash(a); break;
    case SCR_SESSIONS: draw_sessions(a); break;
    }
    screen_blit(a->scr, &a->g);
    a->frames++;
    a->draw_seconds += now_s() - t0;
}

/* ---- keys ---------------------------------------------------------------- */

static int method_index(const char *name) {
    int n;
    const TuiMethod *m = tui_methods(&n);
    for (int i = 0; i < n; i++)
        if (name && !strcmp(m[i].name, name)) return i;
    return -1;
}

static void ask(App *a, PromptKind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ask(App *a, PromptKind kind, const char *fmt, ...) {
    a->prompt = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->prompt_text, sizeof(a->prompt_text), fmt, ap);
    va_end(ap);
}

static void ask_compare(App *a) {
    int n;
    const TuiMethod *m = tui_methods(&n);
    const char *current = a->n_runs ? a->run[0].label : form_get(&a->form, "method");
    char list[200];
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof(list); i++)
        if (!current || strcmp(m[i].name, current) != 0)
            k += (size_t)snprintf(list + k, sizeof(list) - k, " %d %s ", i + 1, m[i].name);
    ask(a, PROMPT_COMPARE, "Compare %s with:%s  esc: cancel", current ? current : "", list);
}

static void ask_quit(App *a) {
    /* name the run that is unsaved (in compare mode it may be the second) */
    int k = 0;
    for (int i = 0; i < a->n_runs; i++)
        if (a->run[i].view->step > 0 && a->run[i].view->step > a->run[i].saved_step) {
            k = i;
            break;
        }
    long step = a->n_runs ? a->run[k].view->step : 0;
    if (a->n_runs == 2)
        ask(a, PROMPT_QUIT, "Quit and discard the unsaved %s run (step %ld)?  y: quit  n: stay  w: save first",
            a->run[k].label, step);
    else
        ask(a, PROMPT_QUIT, "Quit and discard the unsaved run (step %ld)?  y: quit  n: stay  w: save first", step);
}

/* Starts the comparison chosen at the prompt: from the setup form both
 * runs, from the dashboard a second run beside the first. */
static void compare_chosen(App *a, const char *method) {
    char err[1024];
    const char *current = a->n_runs ? a->run[0].label : form_get(&a->form, "method");
    if (current && !strcmp(method, current)) return;
    if (a->n_runs == 0) {
        if (start_runs(a, method, err, sizeof(err)) != 0) {
            tui_copy(a->form.message, sizeof(a->form.message), err);
            a->form.message_is_error = 1;
        }
        return;
    }
    if (a->n_runs == 2) return;
    if (start_slot(a, 1, method, err, sizeof(err)) != 0) {
        ui_event(a, DASH_EV_WARN, "compare: %s", err);
        return;
    }
    a->n_runs = 2;
    colour_runs(a);
    set_title(a);
    ui_event(a, DASH_EV_INFO, "compare: %s started on the same data and split", method);
}

/* A prompt's answer. */
static void prompt_key(App *a, const TuiKey *k) {
    PromptKind p = a->prompt;
    if (p == PROMPT_FIND) {
        if (k->code == TK_ESC) a->prompt = PROMPT_NONE;
        else if (k->code == TK_BACKSPACE) {
            size_t n = strlen(a->find);
            while (n > 0 && ((unsigned char)a->find[n - 1] & 0xC0) == 0x80) n--;
            if (n > 0) a->find[n - 1] = 0;
        } else if (k->code == TK_CHAR && strlen(a->find) + strlen(k->text) < sizeof(a->find)) {
            strcat(a->find, k->text);
        } else if (k->code == TK_ENTER) {
            /* A field whose name starts with the text, else one holding it. */
            int hit = -1;
            for (int i = 0; i < a->form.n && hit < 0; i++)
                if (!strncmp(a->form.fields[i].name, a->find, strlen(a->find))) hit = i;
            for (int i = 0; i < a->form.n && hit < 0; i++)
                if (strstr(a->form.fields[i].name, a->find)) hit = i;
            a->prompt = PROMPT_NONE;
            if (hit >= 0) form_move(&a->form, hit - a->form.selected);
            else {
                snprintf(a->form.message, sizeof(a->form.message), "no setting matches '%s'", a->find);
                a->form.message_is_error = 1;
            }
            return;
        }
        if (a->prompt == PROMPT_FIND) ask(a, PROMPT_FIND, "find setting: %s", a->find);
        return;
    }
    a->prompt = PROMPT_NONE;
    int yes = k->code == TK_CHAR && (k->ch == 'y' || k->ch == 'Y');
    if (p == PROMPT_QUIT) {
        if (yes) a->quit = 1;
        else if (k->code == TK_CHAR && k->ch == 'w') {
            snapshot(a);
            a->quit_when_saved = 1; /* "save first", then quit: when the save is confirmed */
        }
    } else if (p == PROMPT_NEW_RUN) {
        if (yes) {
            stop_runs(a);
            a->tuning = 0;
            a->screen = SCR_FORM;
            snprintf(a->form.message, sizeof(a->form.message), "%s",
                     "the run was stopped; change any setting, then r runs anew");
            a->form.message_is_error = 0;
        }
    } else if (p == PROMPT_COMPARE) {
        int n;
        const TuiMethod *m = tui_methods(&n);
        if (k->code == TK_CHAR && k->ch >= '1' && k->ch < (uint32_t)('1' + n)) compare_chosen(a, m[k->ch - '1'].name);
    }
}

/* Sends a hot setting the user just changed to every live run. */
static void apply_live(App *a) {
    const FieldSpec *fs = &a->form.fields[a->form.selected];
    if (!(fs->flags & FIELD_HOT)) return;
    TrainerCmd c = {.kind = CMD_SET};
    size_t i = 0;
    for (; fs->name[i] && i + 1 < sizeof(c.key); i++) c.key[i] = fs->name[i] == '-' ? '_' : fs->name[i];
    c.key[i] = 0;
    snprintf(c.value, sizeof(c.value), "%s", a->form.value[a->form.selected]);
    for (int r = 0; r < a->n_runs; r++) {
        if (!run_active(&a->run[r])) continue;
        char err[512];
        if (trainer_send(a->run[r].t, &c, err, sizeof(err)) != 0) {
            tui_copy(a->form.message, sizeof(a->form.message), err);
            a->form.message_is_error = 1;
        }
    }
}

/* Looks for assets, with a "looking" frame while it reads (big tasks take
 * a moment to count). */
static void scan_assets(App *a) {
    if (a->g.cells) {
        picker_draw_scanning(&a->g, &a->o);
        screen_blit(a->scr, &a->g);
    }
    tui_assets_scan(&a->assets);
    a->scanned = 1;
}

static void form_key(App *a, const TuiKey *k) {
    Form *f = &a->form;
    if (f->editing) {
        switch (k->code) {
        case TK_ENTER:
            if (form_edit_commit(f) == 1 && a->n_runs && f->running) apply_live(a);
            break;
        case TK_ESC: form_edit_cancel(f); break;
        case TK_BACKSPACE: form_edit_backspace(f); break;
        case TK_DELETE:
            if (f->edit[f->cursor]) {
                form_edit_right(f);
                form_edit_backspace(f);
            }
            break;
        case TK_LEFT: form_edit_left(f); break;
        case TK_RIGHT: form_edit_right(f); break;
        case TK_HOME: while (f->cursor > 0) form_edit_left(f); break;
        case TK_END: f->cursor = (int)strlen(f->edit); break;
        case TK_CLEAR_LINE:
            f->cursor = (int)strlen(f->edit);
            while (f->cursor > 0) form_edit_backspace(f);
            break;
        case TK_CHAR: form_edit_insert(f, k->text); break;
        default: break;
        }
        return;
    }
    uint32_t ch = k->code == TK_CHAR ? k->ch : 0;
    if (k->code == TK_UP || ch == 'k') form_move(f, -1);
    else if (k->code == TK_DOWN || ch == 'j') form_move(f, 1);
    else if (k->code == TK_PGUP) form_move(f, -10);
    else if (k->code == TK_PGDN) form_move(f, 10);
    else if (k->code == TK_HOME) form_move(f, -f->n);
    else if (k->code == TK_END) form_move(f, f->n);
    else if (k->code == TK_ENTER) form_edit_begin(f);
    else if (k->code == TK_LEFT || k->code == TK_RIGHT || ch == ' ') {
        if (form_cycle(f, k->code == TK_LEFT ? -1 : 1) == 1 && a->n_runs && f->running) apply_live(a);
    } else if (ch == '/') {
        a->find[0] = 0;
        ask(a, PROMPT_FIND, "find setting: ");
    } else if (k->code == TK_ESC || ch == 'q') {
        if (a->tuning) a->screen = SCR_DASH;
        else if (ch == 'q') a->quit = 1;
        else {
            /* Back to the picker, which a run started from flags never
             * needed: look for assets now. */
            if (!a->scanned) scan_assets(a);
            a->screen = SCR_PICKER;
            a->picker.stage = picker_usable(&a->assets) ? 2 : 0;
        }
    } else if (ch == 'r') {
        if (a->n_runs) {
            if (any_active(a) || unsaved(a))
                ask(a, PROMPT_NEW_RUN, "Stop %s and set up a new one?  y: yes  other keys: stay",
                    unsaved(a) ? "the unsaved run" : "the run");
            else {
                TuiKey yes = {.code = TK_CHAR, .ch = 'y'};
                a->prompt = PROMPT_NEW_RUN;
                prompt_key(a, &yes);
            }
            return;
        }
        char err[1024];
        if (start_runs(a, NULL, err, sizeof(err)) != 0) {
            tui_copy(f->message, sizeof(f->message), err);
            f->message_is_error = 1;
        }
    } else if (ch == 'c' && !a->n_runs) {
        ask_compare(a);
    }
}

static void picker_key(App *a, const TuiKey *k) {
    Picker *p = &a->picker;
    uint32_t ch = k->code == TK_CHAR ? k->ch : 0;
    if (ch == 'q') {
        a->quit = 1;
        return;
    }
    if (ch == 'o') {
        open_sessions(a);
        return;
    }
    if (ch == 'r') {
        scan_assets(a);
        p->sel[0] = gclamp(p->sel[0], 0, gmax(0, a->assets.n_models - 1));
        p->sel[1] = gclamp(p->sel[1], 0, gmax(0, a->assets.n_tasks - 1));
        return;
    }
    /* Left or Esc on the first list goes back to the form it came from. */
    int back = k->code == TK_LEFT || k->code == TK_BACKSPACE || k->code == TK_ESC || ch == 'h';
    if (back && (p->stage == 0 || !picker_usable(&a->assets))) {
        const char *m = form_get(&a->form, "model");
        if (m && *m) a->screen = SCR_FORM;
        return;
    }
    if (!picker_usable(&a->assets)) return;
    int nm;
    const TuiMethod *m = tui_methods(&nm);
    int n = p->stage == 0 ? a->assets.n_models : p->stage == 1 ? a->assets.n_tasks : nm;
    if (k->code == TK_UP || ch == 'k') p->sel[p->stage] = gclamp(p->sel[p->stage] - 1, 0, n - 1);
    else if (k->code == TK_DOWN || ch == 'j') p->sel[p->stage] = gclamp(p->sel[p->stage] + 1, 0, n - 1);
    else if (k->code == TK_PGUP) p->sel[p->stage] = gclamp(p->sel[p->stage] - 10, 0, n - 1);
    else if (k->code == TK_PGDN) p->sel[p->stage] = gclamp(p->sel[p->stage] + 10, 0, n - 1);
    else if (k->code == TK_LEFT || k->code == TK_BACKSPACE || k->code == TK_ESC || ch == 'h') {
        if (p->stage > 0) p->stage--;
    } else if (k->code == TK_ENTER || k->code == TK_RIGHT || ch == 'l') {
        /* a model whose config cannot be read cannot train: the line below
         * the lists says why, and the cursor stays */
        if (p->stage == 0 && !a->assets.models[p->sel[0]].type[0]) return;
        /* E2E with an encoder: the line below the lists says why */
        if (p->stage == 1 && !picker_task_fits(&a->assets, p->sel[0], p->sel[1])) return;
        if (p->stage < 2) {
            p->stage++;
            return;
        }
        form_set(&a->form, "model", a->assets.models[p->sel[0]].name);
        form_set(&a->form, "task", a->assets.tasks[p->sel[1]].name);
        form_set(&a->form, "method", m[p->sel[2]].name);
        a->form.message[0] = 0;
        a->screen = SCR_FORM;
        a->tuning = 0;
    }
}

static void dash_key(App *a, const TuiKey *k) {
    uint32_t ch = k->code == TK_CHAR ? k->ch : 0;
    const TrainerView *v0 = a->run[0].view;
    switch (ch) {
    case 'p':
        if (v0->state == TRAINER_RUNNING) send_all(a, CMD_PAUSE, NULL);
        else if (v0->state == TRAINER_PAUSED) send_all(a, CMD_RESUME, NULL);
        else if (a->n_runs == 2 && a->run[1].view->state == TRAINER_RUNNING) send_all(a, CMD_PAUSE, NULL);
        else if (a->n_runs == 2 && a->run[1].view->state == TRAINER_PAUSED) send_all(a, CMD_RESUME, NULL);
        else ui_event(a, DASH_EV_INFO, "nothing to pause: the run is %s", TRAINER_STATE_NAMES[gclamp((int)v0->state, 0, 5)]);
        return;
    case 'n': {
        int sent = 0;
        for (int i = 0; i < a->n_runs; i++)
            if (a->run[i].view->state == TRAINER_PAUSED) {
                char err[256];
                trainer_send(a->run[i].t, &(TrainerCmd){.kind = CMD_STEP_ONCE}, err, sizeof(err));
                sent = 1;
            }
        if (!sent) ui_event(a, DASH_EV_INFO, "n steps once while paused (p pauses)");
        return;
    }
    case 'e': send_all(a, CMD_EVAL, NULL); return;
    case 's': a->smooth_on = !a->smooth_on; return;
    case '[': a->smooth_weight = fmax(0.0, a->smooth_weight - 0.05); a->smooth_on = a->smooth_weight > 0; return;
    case ']': a->smooth_weight = fmin(0.95, a->smooth_weight + 0.05); a->smooth_on = 1; return;
    case 'l': a->log_y = !a->log_y; return;
    case 't':
        a->form.running = any_active(a);
        a->form.message[0] = 0;
        a->screen = SCR_FORM;
        a->tuning = 1;
        return;
    case 'w': snapshot(a); return;
    case 'c':
        if (a->n_runs == 2) ui_event(a, DASH_EV_INFO, "already comparing %s with %s", a->run[0].label, a->run[1].label);
        else ask_compare(a);
        return;
    case '?': a->help = 1; return;
    case 'q':
        if (unsaved(a)) ask_quit(a);
        else a->quit = 1;
        return;
    default: break;
    }
    TuiDashIn in;
    memset(&in, 0, sizeof(in));
    for (int i = 0; i < a->n_runs; i++) in.runs[i].view = a->run[i].view;
    in.n_runs = a->n_runs;
    int rows = tui_dash_rows(&in);
    if (k->code == TK_UP) a->selected = gclamp(a->selected - 1, 0, gmax(0, rows - 1));
    else if (k->code == TK_DOWN) a->selected = gclamp(a->selected + 1, 0, gmax(0, rows - 1));
}

static void handle_key(App *a, const TuiKey *k) {
    if (k->code == TK_RESIZE) return;
    a->quit_when_saved = 0; /* any key after "save first" (a failed save, say) takes it back */
    /* ^C quits from anywhere; with an unsaved run it asks, and a second
     * ^C at the question means it. */
    if (k->code == TK_INTERRUPT) {
        if (a->prompt == PROMPT_QUIT || !unsaved(a)) a->quit = 1;
        else {
            a->help = 0;
            ask_quit(a);
        }
        return;
    }
    if (a->prompt != PROMPT_NONE) {
        prompt_key(a, k);
        return;
    }
    if (a->screen == SCR_DASH && a->help) {
        a->help = 0; /* any key closes the help */
        return;
    }
    switch (a->screen) {
    case SCR_PICKER: picker_key(a, k); break;
    case SCR_FORM: form_key(a, k); break;
    case SCR_DASH: dash_key(a, k); break;
    case SCR_SESSIONS: sessions_key(a, k); break;
    }
}

/* ---- flags --------------------------------------------------------------- */

static void usage(FILE *out, const Form *f) {
    fprintf(out,
            "usage: bilora [tui] [flags]\n"
            "The workbench: pick a model, a task (GLUE, or E2E for a gpt2) and a method, set the run up, and watch it\n"
            "train (losses, dev metric, singular values, events); tune hot settings live.\n"
            "With --model and --task the picker is skipped and the run starts at once.\n\n"
            "workbench flags:\n"
            "  --compare METHOD       a second run beside the first: same data, split and settings\n"
            "  --ascii                ASCII drawing even in a UTF-8 terminal\n"
            "  --no-colour            no colours (also: NO_COLOR set and not empty)\n"
            "  --stats                on exit, print the frames drawn and what drawing cost\n\n"
            "run flags (those of bilora train; also editable on the setup screen):\n");
    for (int i = 0; i < f->n; i++)
        fprintf(out, "  --%-20s %s (default: %s)\n", f->fields[i].name, f->fields[i].help,
                *f->fields[i].def ? f->fields[i].def : "none");
    fprintf(out, "\nModels and data are looked for on BILORA_ASSETS, then ~/.cache/bilora, then the\n"
                 "Hugging Face cache (see bilora --help).\n");
}

typedef struct {
    int ascii, mono, stats, help;
    int task_named;             /* --task or --data given */
    char compare[16];
} Flags;

static int parse_flags(Form *f, Flags *fl, int argc, char **argv, char *err, size_t errlen) {
    memset(fl, 0, sizeof(*fl));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fl->help = 1;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (flags start with --; see --help)", a);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - a - 2 : (long)strlen(a + 2)), a + 2);
        int *sw = !strcmp(name, "ascii") ? &fl->ascii
                  : !strcmp(name, "no-colour") || !strcmp(name, "no-color") ? &fl->mono
                  : !strcmp(name, "stats") ? &fl->stats : NULL;
        if (sw) { /* switches take no value: "--stats=no" is not a way to say no */
            if (eq) {
                snprintf(err, errlen, "--%s is a switch and takes no value (got '%s')", name, eq + 1);
                return -1;
            }
            *sw = 1;
            continue;
        }
        /* the aliases `bilora train` accepts */
        if (!strcmp(name, "lr")) snprintf(name, sizeof(name), "lower-lr");
        if (!strcmp(name, "weight-decay")) snprintf(name, sizeof(name), "lower-weight-decay");
        if (strcmp(name, "compare") != 0 && form_index(f, name) < 0) {
            snprintf(err, errlen, "unknown flag '--%s' (see --help)", name);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", name);
                return -1;
            }
            value = argv[++i];
        }
        if (!strcmp(name, "compare")) {
            if (method_index(value) < 0) {
                snprintf(err, errlen, "--compare: '%s' is not a method (lora, dora, svd, adalora, bilora, bidora)", value);
                return -1;
            }
            snprintf(fl->compare, sizeof(fl->compare), "%s", value);
            continue;
        }
        if (!strcmp(name, "task") || !strcmp(name, "data")) fl->task_named = 1;
        if (!strcmp(name, "task")) value = canonical_task(value); /* "sst2", "e2e" as train takes them */
        if (form_set(f, name, value) < 0) {
            snprintf(err, errlen, "--%s", f->message);
            f->message[0] = 0;
            return -1;
        }
    }
    return 0;
}

/* Points the picker at what the flags named, where it is on the list. */
static void picker_preselect(App *a) {
    const char *m = form_get(&a->form, "model"), *t = form_get(&a->form, "task"), *me = form_get(&a->form, "method");
    if (m && *m) tui_assets_add_model(&a->assets, m); /* --model DIR: not on the asset path */
    for (int i = 0; i < a->assets.n_models; i++)
        if (m && !strcmp(a->assets.models[i].name, m)) a->picker.sel[0] = i;
    for (int i = 0; i < a->assets.n_tasks; i++)
        if (t && !strcmp(a->assets.tasks[i].name, t)) a->picker.sel[1] = i;
    a->picker.sel[2] = gmax(0, method_index(me));
}

/* ---- the loop ------------------------------------------------------------ */

/* What the UI cost, and each run's pace, so a run watched here can be
 * held against the same run headless (`bilora train`). */
static void print_stats(const App *a, double seconds) {
    fprintf(stderr, "bilora tui: %ld frames in %.1f s (%.1f per second), %.2f ms per frame, %.2f%% of one core\n",
            a->frames, seconds, seconds > 0 ? (double)a->frames / seconds : 0,
            a->frames ? 1e3 * a->draw_seconds / (double)a->frames : 0,
            seconds > 0 ? 100 * a->draw_seconds / seconds : 0);
    for (int i = 0; i < a->n_runs; i++) {
        const RunSlot *r = &a->run[i];
        const TrainerView *v = r->view;
        double wall = (r->ended ? r->ended : now_s()) - r->started;
        fprintf(stderr, "bilora tui: run %s: %s after %ld of %ld steps, %.2f s from start (%.2f s in steps), "
                "%.1f steps/s, last %.0f examples/s\n",
                r->label, TRAINER_STATE_NAMES[gclamp((int)v->state, 0, 5)], v->step, v->total_steps, wall,
                v->elapsed_seconds, wall > 0 ? (double)v->step / wall : 0, v->examples_per_s);
    }
}

int cmd_tui(int argc, char **argv) {
    App *a = calloc(1, sizeof(*a));
    if (!a) {
        fprintf(stderr, "bilora: out of memory\n");
        return 1;
    }
    char err[2048];
    int n_fields;
    const FieldSpec *fields = form_train_fields(&n_fields);
    if (form_init(&a->form, fields, n_fields, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora tui: %s\n", err);
        free(a);
        return 1;
    }
    Flags fl;
    if (parse_flags(&a->form, &fl, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora tui: %s\n", err);
        free(a);
        return 2;
    }
    if (fl.help) {
        usage(stdout, &a->form);
        free(a);
        return 0;
    }
    /* With a model and a task named, the run starts at once: check them
     * (and every other setting) before the screen is taken over, so a
     * mistake reads as a plain message in the shell. */
    const char *model = form_get(&a->form, "model"), *task = form_get(&a->form, "task");
    /* The task has a default (RTE): only a task the user named counts. */
    int direct = model && *model && fl.task_named;
    if (direct) {
        TrainConfig c;
        char dir[1024];
        const char *data = form_get(&a->form, "data");
        if (config_from_form(&a->form, NULL, &c, err, sizeof(err)) != 0 ||
            assets_find_model(model, dir, sizeof(dir), err, sizeof(err)) != 0 ||
            (!(data && *data) && assets_find_task(task, dir, sizeof(dir), err, sizeof(err)) != 0)) {
            fprintf(stderr, "bilora tui: %s\n", err);
            free(a);
            return 2;
        }
        if (fl.compare[0] && !strcmp(fl.compare, c.method)) {
            fprintf(stderr, "bilora tui: --compare %s: the run already uses %s; compare with another method\n",
                    fl.compare, c.method);
            free(a);
            return 2;
        }
    }

    a->buf = tui_dash_buf_new();
    if (!a->buf || screen_open(&a->scr, fl.ascii, fl.mono, &a->o, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora tui: %s\n", a->buf ? err : "out of memory");
        tui_dash_buf_free(a->buf);
        free(a);
        return 2;
    }
    a->smooth_weight = 0.6;
    a->smooth_on = 1;
    a->stats = fl.stats;
    a->started_at = now_s();

    if (direct) {
        if (start_runs(a, fl.compare, err, sizeof(err)) != 0) {
            screen_close(a->scr);
            fprintf(stderr, "bilora tui: %s\n", err);
            tui_dash_buf_free(a->buf);
            free(a);
            return 2;
        }
    } else {
        int w, h;
        screen_size(a->scr, &w, &h);
        if (grid_init(&a->g, gmax(w, 1), gmax(h, 1)) != 0) memset(&a->g, 0, sizeof(a->g));
        scan_assets(a);
        picker_preselect(a);
        a->screen = SCR_PICKER;
    }

    a->dirty = 1;
    double next_poll = 0;
    while (!a->quit) {
        double t = now_s();
        if (a->n_runs && t >= next_poll) {
            if (poll_runs(a)) a->dirty = 1;
            next_poll = t + 0.1;
            if (a->quit_when_saved && !unsaved(a)) a->quit = 1;
        }
        if (a->notice[0] && t >= a->notice_until) {
            a->notice[0] = 0;
            a->dirty = 1;
        }
        if (a->dirty) {
            render(a);
            a->dirty = 0;
        }
        /* Without a run nothing changes by itself: wait for keys, waking
         * now and then only to notice a resize. */
        int timeout = a->n_runs ? gclamp((int)((next_poll - now_s()) * 1000) + 1, 0, 100) : 250;
        TuiKey k;
        if (screen_key(a->scr, timeout, &k)) {
            handle_key(a, &k);
            a->dirty = 1;
        }
    }

    double seconds = now_s() - a->started_at;
    if (a->n_runs) {
        snprintf(a->prompt_text, sizeof(a->prompt_text), "stopping the run...");
        a->prompt = PROMPT_QUIT;
        render(a);
        for (int i = 0; i < a->n_runs; i++) {
            char e[256];
            trainer_send(a->run[i].t, &(TrainerCmd){.kind = CMD_STOP}, e, sizeof(e));
        }
    }
    screen_close(a->scr);
    if (a->stats) print_stats(a, seconds);
    stop_runs(a);
    grid_free(&a->g);
    tui_assets_free(&a->assets);
    free(a->sessions);
    tui_dash_buf_free(a->buf);
    free(a);
    return 0;
}
