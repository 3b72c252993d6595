/* The background trainer: a pthread that owns the Run, a command queue and
 * a published view, both under one mutex held only for short copies. */
#include "engine/trainer.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const TRAINER_STATE_NAMES[6] = {"starting", "running", "paused", "done", "failed",
                                            "stopped"};

#define QUEUE_MAX 64

struct Trainer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a command arrived */
    TrainConfig cfg;
    TrainerCmd queue[QUEUE_MAX];
    int q_head, q_len;
    TrainerView *shared;        /* published: read under mu */
    TrainerView *local;         /* the run thread's working copy */
    int joined;
    int closing;                /* trainer_join was called: stop at the next command boundary */
    TrainerSnapshotFn snapshot; /* set under mu */
    void *snapshot_ctx;
    TrainerLoadFn load;         /* set: the thread loads the run instead of run_create */
    void *load_ctx;
};

static void series_add(Series *s, long step, double v) {
    if (!isfinite(v)) return;
    if (s->n == SERIES_MAX) { /* thin 2:1, keeping the newest */
        for (int i = 0; i < SERIES_MAX / 2; i++) {
            s->step[i] = s->step[2 * i + 1];
            s->value[i] = s->value[2 * i + 1];
        }
        s->n = SERIES_MAX / 2;
    }
    s->step[s->n] = step;
    s->value[s->n] = (float)v;
    s->n++;
}

static void event(TrainerView *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void event(TrainerView *v, const char *fmt, ...) {
    if (v->n_events == EVENTS_MAX) {
        memmove(v->events[0], v->events[1], sizeof(v->events[0]) * (EVENTS_MAX - 1));
        v->n_events--;
    }
    va_list ap;
    va_start(ap, fmt);
    char *e = v->events[v->n_events++];
    if (vsnprintf(e, sizeof(v->events[0]), fmt, ap) >= (int)sizeof(v->events[0]))
    { /* cut: say so, at a character boundary */
        size_t k = sizeof(v->events[0]) - 4;
        while (k > 0 && ((unsigned char)e[k] & 0xC0) == 0x80) k--;
        memcpy(e + k, "...", 4);
    }
    va_end(ap);
}

/* ---- callbacks from the run (run thread, into the local view) ---- */

static void cb_info(void *ctx, const char *msg) { event(((Trainer *)ctx)->local, "%s", msg); }

static void cb_step(void *ctx, const StepInfo *s) {
    TrainerView *v = ((Trainer *)ctx)->local;
    v->step = s->step;
    v->total_steps = s->total_steps;
    v->phase = s->phase;
    v->epoch = s->epoch;
    v->examples_per_s = s->examples_per_s;
    v->eta_seconds = (s->total_steps - s->step) * s->step_seconds;
    v->elapsed_seconds += s->step_seconds;
    series_add(&v->loss, s->step, s->loss);
    series_add(&v->upper_loss, s->step, s->upper_loss);
    series_add(&v->hypergrad_norm, s->step, s->hypergrad_norm);
}

static void cb_eval(void *ctx, const EvalInfo *e) {
    TrainerView *v = ((Trainer *)ctx)->local;
    const char *mname = e->metrics.n ? e->metrics.name[e->metrics.primary] : "";
    double mval = e->metrics.n ? e->metrics.value[e->metrics.primary] : NAN;
    if (!strcmp(e->split, "train")) {
        series_add(&v->train_eval_loss, e->step, e->loss);
    } else if (!strcmp(e->split, "dev") || !strcmp(e->split, "dev_matched")) {
        series_add(&v->dev_loss, e->step, e->loss);
        series_add(&v->dev_metric, e->step, mval);
        snprintf(v->metric_name, sizeof(v->metric_name), "%s", mname);
    }
    char ms[160] = ""; /* every metric, the headline first (MRPC: f1 and accuracy; E2E: perplexity, bleu) */
    for (int k = -1; k < e->metrics.n; k++) {
        if (k == e->metrics.primary) continue;
        int i = k < 0 ? e->metrics.primary : k;
        if (i < 0 || i >= e->metrics.n) continue;
        size_t used = strlen(ms);
        snprintf(ms + used, sizeof(ms) - used, ", %s %.4f", e->metrics.name[i], e->metrics.value[i]);
    }
    event(v, "step %ld: %s loss %.4f%s", e->step, e->split, e->loss, ms);
}

static void cb_spectrum(void *ctx, const SpectrumInfo *s) {
    TrainerView *v = ((Trainer *)ctx)->local;
    v->spectrum_step = s->step;
    v->spectrum_rows = s->n < SPEC_ROWS_MAX ? s->n : SPEC_ROWS_MAX;
    v->spectrum_cols = 0;
    for (int i = 0; i < v->spectrum_rows; i++) {
        snprintf(v->spectrum_names[i], SPECTRUM_NAME, "%s", s->rows[i].name);
        int n = s->rows[i].n < SPEC_VALUES_MAX ? s->rows[i].n : SPEC_VALUES_MAX;
        if (n > v->spectrum_cols) v->spectrum_cols = n;
        for (int j = 0; j < SPEC_VALUES_MAX; j++) v->spectrum[i][j] = j < n ? s->rows[i].values[j] : NAN;
    }
}

static void cb_done(void *ctx, const DoneInfo *d) {
    TrainerView *v = ((Trainer *)ctx)->local;
    v->trainable_params = d->trainable_params;
    v->total_params = d->total_params;
    event(v, "done: %ld steps in %.1f s", d->steps, d->seconds);
}

static void publish(Trainer *t, Run *r) {
    TrainerView *v = t->local;
    if (r) {
        v->config = *run_config(r);
        int n;
        const RunChange *c = run_changes(r, &n);
        int first = n > CHANGES_MAX ? n - CHANGES_MAX : 0;
        v->n_changes = n - first;
        memcpy(v->changes, c + first, sizeof(RunChange) * v->n_changes);
    }
    pthread_mutex_lock(&t->mu);
    memcpy(t->shared, v, sizeof(*v));
    pthread_mutex_unlock(&t->mu);
}

/* Applies queued commands. Returns the commands' effect on the loop. */
typedef struct {
    int stop, step_once, eval;
    int closing; /* trainer_join is waiting */
} Pending;

static void apply_commands(Trainer *t, Run *r, Pending *p) {
    TrainerCmd cmds[QUEUE_MAX];
    int n = 0;
    pthread_mutex_lock(&t->mu);
    TrainerSnapshotFn snapshot = t->snapshot;
    void *snapshot_ctx = t->snapshot_ctx;
    p->closing = t->closing;
    while (t->q_len > 0) {
        cmds[n++] = t->queue[t->q_head];
        t->q_head = (t->q_head + 1) % QUEUE_MAX;
        t->q_len--;
    }
    pthread_mutex_unlock(&t->mu);
    TrainerView *v = t->local;
    for (int i = 0; i < n; i++) {
        char err[512];
        if (v->state == TRAINER_DONE && cmds[i].kind != CMD_STOP && cmds[i].kind != CMD_EVAL &&
            cmds[i].kind != CMD_SNAPSHOT) {
            event(v, "the run is complete (step %ld): only saving and evaluating remain", v->step);
            continue;
        }
        switch (cmds[i].kind) {
        case CMD_PAUSE:
            if (v->state == TRAINER_RUNNING) v->state = TRAINER_PAUSED;
            event(v, "paused at step %ld", v->step);
            break;
        case CMD_RESUME:
            if (v->state == TRAINER_PAUSED) v->state = TRAINER_RUNNING;
            v->message[0] = 0;
            event(v, "resumed at step %ld", v->step);
            break;
        case CMD_STOP: p->stop = 1; break;
        case CMD_STEP_ONCE: p->step_once = 1; break;
        case CMD_EVAL: p->eval = 1; break;
        case CMD_SNAPSHOT:
            if (!snapshot) {
                event(v, "snapshot '%s' refused: this front end saves no sessions", cmds[i].value);
            } else if (snapshot(snapshot_ctx, cmds[i].value, r, err, sizeof(err)) == 0) {
                event(v, "step %ld: saved session '%s'", v->step, cmds[i].value);
            } else {
                event(v, "snapshot failed: %s", err);
                snprintf(v->message, sizeof(v->message), "%s", err);
            }
            break;
        case CMD_SET:
            if (run_set(r, cmds[i].key, cmds[i].value, err, sizeof(err)) == 0)
                event(v, "step %ld: %s = %s", v->step + 1, cmds[i].key, cmds[i].value);
            else {
                event(v, "refused: %s", err);
                snprintf(v->message, sizeof(v->message), "%s", err);
            }
            break;
        }
    }
}

static void *thread_main(void *arg) {
    Trainer *t = arg;
    TrainerView *v = t->local;
    char err[1024] = "";
    TrainCallbacks cb = {.ctx = t, .on_info = cb_info, .on_step = cb_step, .on_eval = cb_eval,
                         .on_spectrum = cb_spectrum, .on_done = cb_done};
    Run *r = NULL;
    int made = t->load ? t->load(t->load_ctx, &cb, &r, err, sizeof(err))
                       : run_create(&r, &t->cfg, &cb, err, sizeof(err));
    if (made != 0 || !r) {
        if (made == 0) snprintf(err, sizeof(err), "the loader returned no run");
        if (r) run_free(r);
        v->state = TRAINER_FAILED;
        snprintf(v->message, sizeof(v->message), "%s", err);
        publish(t, NULL);
        return NULL;
    }
    /* a loaded run's curves start at its first step (unless the loader's
     * own steps already reported them) */
    if (t->load && v->loss.n == 0 && v->dev_loss.n == 0) run_replay_history(r);
    v->state = TRAINER_RUNNING;
    v->total_steps = run_total_steps(r);
    v->step = run_step_index(r); /* a loaded run starts where it was saved */
    publish(t, r);
    for (;;) {
        Pending p = {0};
        apply_commands(t, r, &p);
        if (p.stop) {
            v->state = TRAINER_STOPPED;
            event(v, "stopped at step %ld", v->step);
            break;
        }
        if (p.eval && run_evaluate_now(r, err, sizeof(err)) != 0) event(v, "evaluation failed: %s", err);
        if (v->state == TRAINER_PAUSED && !p.step_once) {
            if (p.closing) { /* joined while paused: nothing would resume it */
                v->state = TRAINER_STOPPED;
                event(v, "stopped at step %ld", v->step);
                break;
            }
            publish(t, r);
            pthread_mutex_lock(&t->mu);
            if (t->q_len == 0 && !t->closing) pthread_cond_wait(&t->cv, &t->mu);
            pthread_mutex_unlock(&t->mu);
            continue;
        }
        /* an evaluation takes seconds: say so before, so commands sent
         * meanwhile are known to wait for it */
        v->evaluating = run_evaluates_at(r, run_step_index(r) + 1);
        if (v->evaluating) publish(t, r);
        int rc = run_step(r, err, sizeof(err));
        v->evaluating = 0;
        if (rc == RUN_DIVERGED) {
            v->state = TRAINER_PAUSED;
            snprintf(v->message, sizeof(v->message), "%s", err);
            event(v, "paused: %s", err);
        } else if (rc < 0) {
            v->state = TRAINER_FAILED;
            snprintf(v->message, sizeof(v->message), "%s", err);
            event(v, "failed: %s", err);
            publish(t, r);
            break;
        } else if (rc == 1) {
            run_finish(r);
            v->state = TRAINER_DONE;
            publish(t, r);
            /* A finished run stays open until stop or join: it can still be
             * saved (w, and the quit prompt's "save first") and evaluated. */
            for (;;) {
                Pending q = {0};
                apply_commands(t, r, &q);
                if (q.stop || q.closing) break;
                if (q.eval && run_evaluate_now(r, err, sizeof(err)) != 0) event(v, "evaluation failed: %s", err);
                publish(t, r);
                pthread_mutex_lock(&t->mu);
                if (t->q_len == 0 && !t->closing) pthread_cond_wait(&t->cv, &t->mu);
                pthread_mutex_unlock(&t->mu);
            }
            break;
        }
        publish(t, r);
    }
    publish(t, r);
    run_free(r);
    return NULL;
}

static int trainer_spawn(Trainer *t, Trainer **out, char *err, size_t errlen);

int trainer_start(Trainer **out, const TrainConfig *cfg, char *err, size_t errlen) {
    *out = NULL;
    Trainer *t = calloc(1, sizeof(*t));
    if (!t) { snprintf(err, errlen, "out of memory"); return -1; }
    t->cfg = *cfg;
    if (train_config_check(&t->cfg, err, errlen) != 0) { free(t); return -1; }
    return trainer_spawn(t, out, err, errlen);
}

int trainer_start_loaded(Trainer **out, TrainerLoadFn load, void *ctx, char *err, size_t errlen) {
    *out = NULL;
    if (!load) { snprintf(err, errlen, "no loader given"); return -1; }
    Trainer *t = calloc(1, sizeof(*t));
    if (!t) { snprintf(err, errlen, "out of memory"); return -1; }
    t->load = load;
    t->load_ctx = ctx;
    return trainer_spawn(t, out, err, errlen);
}

/* Allocates the views and starts the thread; frees t on failure. */
static int trainer_spawn(Trainer *t, Trainer **out, char *err, size_t errlen) {
    t->shared = trainer_view_new();
    t->local = trainer_view_new();
    if (!t->shared || !t->local) {
        trainer_view_free(t->shared);
        trainer_view_free(t->local);
        free(t);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->local->config = t->cfg;
    t->local->state = TRAINER_STARTING;
    memcpy(t->shared, t->local, sizeof(*t->local));
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        snprintf(err, errlen, "could not start the trainer thread");
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        trainer_view_free(t->shared);
        trainer_view_free(t->local);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void trainer_set_snapshot(Trainer *t, TrainerSnapshotFn fn, void *ctx) {
    pthread_mutex_lock(&t->mu);
    t->snapshot = fn;
    t->snapshot_ctx = ctx;
    pthread_mutex_unlock(&t->mu);
}

int trainer_send(Trainer *t, const TrainerCmd *cmd, char *err, size_t errlen) {
    if (cmd->kind == CMD_SET && !run_param_is_hot(cmd->key)) {
        snprintf(err, errlen, "%s needs a new run (only lower_lr, upper_lr, lower_steps, upper_steps, "
                 "gamma1, gamma2, hypergrad, eval_every, spectrum_every, split_ratio change live)",
                 cmd->key);
        return -1;
    }
    pthread_mutex_lock(&t->mu);
    if (t->q_len == QUEUE_MAX) {
        pthread_mutex_unlock(&t->mu);
        snprintf(err, errlen, "the trainer's command queue is full");
        return -1;
    }
    t->queue[(t->q_head + t->q_len) % QUEUE_MAX] = *cmd;
    t->q_len++;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void trainer_read(Trainer *t, TrainerView *out) {
    pthread_mutex_lock(&t->mu);
    memcpy(out, t->shared, sizeof(*out));
    pthread_mutex_unlock(&t->mu);
}

void trainer_join(Trainer *t) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->closing = 1; /* a finished or paused run waits for commands: this ends the wait */
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    trainer_view_free(t->shared);
    trainer_view_free(t->local);
    free(t);
}

TrainerView *trainer_view_new(void) { return calloc(1, sizeof(TrainerView)); }
void trainer_view_free(TrainerView *v) { free(v); }
