/* A run's exported state continues it exactly: N steps straight against
 * K steps + export + a fresh run + import + N−K steps (crossing epoch
 * boundaries, so reshuffles happen after the resume), with a live change
 * before K — bitwise-identical losses and final tensors, for lora, bilora
 * (darts), bidora (across its phase 2) and adalora. In memory; the files are
 * the sessions layer's business (test_session.c). */
#include "engine/train.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 30
#define K 13

typedef struct {
    int n;
    double loss[64], upper[64];
} Log;

static void on_step(void *ctx, const StepInfo *s) {
    Log *l = ctx;
    l->loss[l->n] = s->loss;
    l->upper[l->n] = s->upper_loss;
    l->n++;
}

static TrainConfig config(const char *dir, const char *method) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", dir);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.rank = 2;
    c.alpha = 4;
    c.batch_size = 8;
    c.steps = !strcmp(method, "bidora") ? N - 4 : N;
    c.phase2_steps = !strcmp(method, "bidora") ? 4 : 0;
    c.eval_every = 4;
    c.target_rank = 1;
    c.delta_t = 2;
    c.lora_dropout = 0.1f;
    return c;
}

static int mem_reader(void *ctx, const char *name, BlobType type, size_t count, void *dst, char *err,
                      size_t errlen) {
    const RunState *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->blobs[i].name, name)) {
            if (s->blobs[i].type != type || s->blobs[i].count != count) {
                snprintf(err, errlen, "blob %s: wrong type or size", name);
                return -1;
            }
            memcpy(dst, s->blobs[i].data, 4 * count);
            return 0;
        }
    snprintf(err, errlen, "blob %s missing", name);
    return -1;
}

static void change(Run *r) {
    char err[256];
    ck_assert_int_eq(run_set(r, "lower_lr", "0.002", err, sizeof(err)), 0);
    ck_assert_int_eq(run_set(r, "split_ratio", "0.6", err, sizeof(err)), 0);
}

static void exact_resume(const char *method) {
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, method);
    Log a = {0}, b = {0};
    TrainCallbacks ca = {.ctx = &a, .on_step = on_step}, cbb = {.ctx = &b, .on_step = on_step};
    /* straight */
    Run *r;
    ck_assert_msg(run_create(&r, &c, &ca, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < N; i++) {
        if (i == K - 2) change(r);
        ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    }
    RunState final_a;
    ck_assert_int_eq(run_state_export(r, &final_a, err, sizeof(err)), 0);
    run_free(r);
    /* K steps, export, a fresh run, import, the rest */
    ck_assert_msg(run_create(&r, &c, &cbb, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < K; i++) {
        if (i == K - 2) change(r);
        ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    }
    RunState mid;
    ck_assert_int_eq(run_state_export(r, &mid, err, sizeof(err)), 0);
    TrainConfig c0 = *run_initial_config(r);
    run_free(r);
    /* through text, as a session stores it */
    char *text = cJSON_PrintUnformatted(mid.json);
    cJSON *parsed = cJSON_Parse(text);
    free(text);
    ck_assert_msg(run_create(&r, &c0, &cbb, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(run_state_import(r, parsed, mem_reader, &mid, err, sizeof(err)) == 0, "%s", err);
    cJSON_Delete(parsed);
    ck_assert_int_eq(run_step_index(r), K);
    for (int i = K; i < N; i++) ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    RunState final_b;
    ck_assert_int_eq(run_state_export(r, &final_b, err, sizeof(err)), 0);
    run_free(r);
    ck_assert_int_eq(a.n, N);
    ck_assert_int_eq(b.n, N);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(a.loss[i] == b.loss[i], "%s step %d: loss %.9g vs resumed %.9g", method, i + 1,
                      a.loss[i], b.loss[i]);
        ck_assert(memcmp(&a.upper[i], &b.upper[i], sizeof(double)) == 0);
    }
    ck_assert_int_eq(final_a.n, final_b.n);
    for (int i = 0; i < final_a.n; i++) {
        ck_assert_str_eq(final_a.blobs[i].name, final_b.blobs[i].name);
        ck_assert_msg(final_a.blobs[i].count == final_b.blobs[i].count &&
                          memcmp(final_a.blobs[i].data, final_b.blobs[i].data, 4 * final_a.blobs[i].count) == 0,
                      "%s: final %s differs after resume", method, final_a.blobs[i].name);
    }
    run_state_free(&final_a);
    run_state_free(&final_b);
    run_state_free(&mid);
    fixture_rmdir(dir);
}

START_TEST(resume_lora) { exact_resume("lora"); }
END_TEST
START_TEST(resume_bilora_darts) { exact_resume("bilora"); }
END_TEST
START_TEST(resume_bidora_across_phase2) { exact_resume("bidora"); }
END_TEST
START_TEST(resume_adalora) { exact_resume("adalora"); }
END_TEST

START_TEST(config_json_round_trip) {
    TrainConfig c, d;
    train_config_defaults(&c);
    c.seed = 18446744073709551557ULL; /* needs all 64 bits */
    c.lower_lr = 3.3e-5f;
    snprintf(c.method, sizeof(c.method), "bidora");
    cJSON *j = train_config_to_json(&c);
    char *text = cJSON_Print(j);
    cJSON *p = cJSON_Parse(text);
    char err[256];
    ck_assert_msg(train_config_from_json(p, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert(memcmp(&c, &d, sizeof(c)) == 0);
    cJSON_AddNumberToObject(p, "learning_rate", 1);
    ck_assert_int_eq(train_config_from_json(p, &d, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "learning_rate"), "%s", err);
    free(text);
    cJSON_Delete(j);
    cJSON_Delete(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("run_state");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, resume_lora);
    tcase_add_test(tc, resume_bilora_darts);
    tcase_add_test(tc, resume_bidora_across_phase2);
    tcase_add_test(tc, resume_adalora);
    tcase_add_test(tc, config_json_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
