/* The background trainer: commands at step boundaries, live changes logged
 * with their step, cold settings refused, pause on a non-finite loss naming
 * the step, reads that never block. Also run under ThreadSanitizer by
 * `make tsan`. */
#include "engine/trainer.h"
#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void nap(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads until pred holds or ~20 s pass. */
static int wait_for(Trainer *t, TrainerView *v, int (*pred)(const TrainerView *)) {
    for (int i = 0; i < 4000; i++) {
        trainer_read(t, v);
        if (pred(v)) return 1;
        nap(5);
    }
    return 0;
}
static int started(const TrainerView *v) { return v->state != TRAINER_STARTING && v->step >= 2; }
static int paused(const TrainerView *v) { return v->state == TRAINER_PAUSED; }
static int finished(const TrainerView *v) {
    return v->state == TRAINER_DONE || v->state == TRAINER_FAILED || v->state == TRAINER_STOPPED;
}

static TrainConfig config(const char *dir, const char *method, long steps) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", dir);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.rank = 2;
    c.alpha = 4;
    c.batch_size = 8;
    c.steps = steps;
    c.eval_every = 5;
    return c;
}

START_TEST(commands_apply_at_step_boundaries) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "bilora", 400);
    Trainer *t;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, started));
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_PAUSE}, err, sizeof(err)), 0);
    ck_assert(wait_for(t, v, paused));
    long at = v->step;
    nap(100);
    trainer_read(t, v);
    ck_assert_int_eq(v->step, at); /* paused means no steps */
    /* hot changes land at the next step and are logged with it */
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "lower_lr", .value = "1e-4"}, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "split_ratio", .value = "0.5"}, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "hypergrad", .value = "neumann"}, err, sizeof(err)), 0);
    /* cold settings are refused with a reason */
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "rank", .value = "4"}, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "needs a new run"), "%s", err);
    /* a bad value is refused inside the run, reported in the view */
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "split_ratio", .value = "1.5"}, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_STEP_ONCE}, err, sizeof(err)), 0);
    for (int i = 0; i < 2000; i++) {
        trainer_read(t, v);
        if (v->step == at + 1 && v->n_changes == 3) break;
        nap(5);
    }
    ck_assert_int_eq(v->step, at + 1);
    ck_assert_int_eq(v->state, TRAINER_PAUSED);
    ck_assert_int_eq(v->n_changes, 3);
    ck_assert_str_eq(v->changes[0].key, "lower_lr");
    ck_assert_int_eq(v->changes[0].step, at + 1);
    ck_assert(fabsf(v->config.lower_lr - 1e-4f) < 1e-10f);
    ck_assert(fabsf(v->config.split_ratio - 0.5f) < 1e-7f);
    ck_assert_str_eq(v->config.hypergrad, "neumann");
    ck_assert_msg(strstr(v->message, "split_ratio"), "%s", v->message);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_RESUME}, err, sizeof(err)), 0);
    nap(50);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_STOP}, err, sizeof(err)), 0);
    ck_assert(wait_for(t, v, finished));
    ck_assert_int_eq(v->state, TRAINER_STOPPED);
    ck_assert_int_gt(v->loss.n, 2);
    ck_assert_int_gt(v->upper_loss.n, 2);
    trainer_join(t);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(runs_to_done_with_curves) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "lora", 20);
    Trainer *t;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, finished));
    ck_assert_msg(v->state == TRAINER_DONE, "%s", v->message);
    ck_assert_int_eq(v->step, 20);
    ck_assert_int_eq(v->loss.n, 20);
    ck_assert_int_eq(v->dev_loss.n, 4);
    ck_assert_int_eq(v->spectrum_rows, 4);
    ck_assert_str_eq(v->metric_name, "accuracy");
    trainer_join(t);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

/* A finished run stays open: it can still be saved (the TUI's w, and its
 * quit prompt's "save first") and evaluated; commands that would step it
 * are answered, not queued for nobody; trainer_join ends it without a
 * CMD_STOP. */
static int saved_at_step(void *ctx, const char *name, Run *r, char *err, size_t errlen) {
    (void)name; (void)err; (void)errlen;
    *(long *)ctx = run_step_index(r);
    return 0;
}
static int has_event(const TrainerView *v, const char *what) {
    int n = v->n_events < EVENTS_MAX ? v->n_events : EVENTS_MAX;
    for (int i = 0; i < n; i++)
        if (strstr(v->events[i], what)) return 1;
    return 0;
}
START_TEST(finished_run_can_still_be_saved) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "lora", 12);
    Trainer *t;
    long saved = -1;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    trainer_set_snapshot(t, saved_at_step, &saved);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, finished));
    ck_assert_msg(v->state == TRAINER_DONE, "%s", v->message);
    int evals = v->dev_loss.n;
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_SNAPSHOT, .value = "after"}, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_EVAL}, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_PAUSE}, err, sizeof(err)), 0);
    for (int i = 0; i < 4000 && !(has_event(v, "saved session 'after'") && has_event(v, "the run is complete") &&
                                  v->dev_loss.n > evals); i++) {
        nap(5);
        trainer_read(t, v);
    }
    ck_assert_int_eq(saved, 12);
    ck_assert_msg(has_event(v, "step 12: saved session 'after'"), "no save event");
    ck_assert_msg(has_event(v, "the run is complete"), "pause after the end was not answered");
    ck_assert_int_gt(v->dev_loss.n, evals);
    ck_assert_int_eq(v->state, TRAINER_DONE);
    trainer_join(t); /* returns: the lingering run ends here */
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

/* A step that ends with an evaluation is announced before it starts (the
 * TUI shows "evaluating": commands sent then wait for it). */
START_TEST(evaluation_is_announced) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "lora", 40);
    c.eval_every = 2;
    Trainer *t;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    int seen = 0;
    for (int i = 0; i < 4000 && !seen; i++) {
        trainer_read(t, v);
        if (v->state == TRAINER_RUNNING && v->evaluating) {
            seen = 1;
            /* announced before the step: the view's step is the one before an evaluating one */
            ck_assert_int_eq((v->step + 1) % 2, 0);
        }
        if (v->state == TRAINER_DONE) break;
        nap(1);
    }
    ck_assert_msg(seen, "no evaluation was announced");
    ck_assert(wait_for(t, v, finished));
    ck_assert_int_eq(v->evaluating, 0);
    trainer_join(t);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(nan_loss_pauses_naming_the_step) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 1), 0);
    TrainConfig c = config(dir, "lora", 50);
    Trainer *t;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, paused));
    ck_assert_msg(strstr(v->message, "non-finite at step 1"), "%s", v->message);
    ck_assert_msg(strstr(v->message, "no live change so far"), "%s", v->message);
    trainer_send(t, &(TrainerCmd){.kind = CMD_STOP}, err, sizeof(err));
    ck_assert(wait_for(t, v, finished));
    trainer_join(t);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(bad_config_fails_before_starting) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "nope");
    Trainer *t;
    char err[512];
    ck_assert_int_eq(trainer_start(&t, &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--method 'nope'"), "%s", err);
    /* a missing model fails in the thread and shows as FAILED with the reason */
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "/nonexistent/model");
    snprintf(c.task, sizeof(c.task), "RTE");
    ck_assert_int_eq(trainer_start(&t, &c, err, sizeof(err)), 0);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, finished));
    ck_assert_int_eq(v->state, TRAINER_FAILED);
    ck_assert_msg(strstr(v->message, "/nonexistent/model"), "%s", v->message);
    trainer_join(t);
    trainer_view_free(v);
}
END_TEST

/* A run handed over by a loader (what a saved session's is): created and
 * stepped 5 times in the loader, then driven by the trainer as usual. */
static int load_stepped(void *ctx, const TrainCallbacks *cb, Run **out, char *err, size_t errlen) {
    if (run_create(out, (const TrainConfig *)ctx, cb, err, errlen) != 0) return -1;
    for (int i = 0; i < 5; i++)
        if (run_step(*out, err, errlen) != 0) {
            run_free(*out);
            *out = NULL;
            return -1;
        }
    return 0;
}

static int load_refused(void *ctx, const TrainCallbacks *cb, Run **out, char *err, size_t errlen) {
    (void)ctx;
    (void)cb;
    *out = NULL;
    snprintf(err, errlen, "session 'x': state.bin CRC mismatch");
    return -1;
}

START_TEST(starts_from_a_loaded_run) {
    char dir[256], err[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "lora", 20);
    Trainer *t;
    ck_assert_msg(trainer_start_loaded(&t, load_stepped, &c, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    ck_assert(wait_for(t, v, finished));
    ck_assert_msg(v->state == TRAINER_DONE, "%s", v->message);
    ck_assert_int_eq(v->step, 20);
    ck_assert_int_eq(v->total_steps, 20);
    ck_assert_int_eq(v->loss.n, 20);
    ck_assert_str_eq(v->config.method, "lora"); /* run_config of the loaded run */
    ck_assert_int_eq(v->config.rank, 2);
    trainer_join(t);
    /* a loader's failure shows as FAILED with its reason */
    ck_assert_int_eq(trainer_start_loaded(&t, load_refused, NULL, err, sizeof(err)), 0);
    ck_assert(wait_for(t, v, finished));
    ck_assert_int_eq(v->state, TRAINER_FAILED);
    ck_assert_msg(strstr(v->message, "CRC mismatch"), "%s", v->message);
    trainer_join(t);
    ck_assert_int_eq(trainer_start_loaded(&t, NULL, NULL, err, sizeof(err)), -1);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("thread");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, commands_apply_at_step_boundaries);
    tcase_add_test(tc, runs_to_done_with_curves);
    tcase_add_test(tc, finished_run_can_still_be_saved);
    tcase_add_test(tc, evaluation_is_announced);
    tcase_add_test(tc, nan_loss_pauses_naming_the_step);
    tcase_add_test(tc, bad_config_fails_before_starting);
    tcase_add_test(tc, starts_from_a_loaded_run);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
