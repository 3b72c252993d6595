/* The training loop: the D1/D2 split, the spectrum's singular values, and
 * short runs of every method on a small synthetic SST-2-layout task with a
 * tiny model built here (determinism, events, phases). */
#include "engine/spectrum.h"
#include "engine/train.h"
#include "engine/rng.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(split_is_disjoint_covering_and_seeded) {
    int n = 1001;
    int *d1 = malloc(sizeof(int) * n), *d2 = malloc(sizeof(int) * n), *seen = calloc(n, sizeof(int));
    int *e1 = malloc(sizeof(int) * n), *e2 = malloc(sizeof(int) * n);
    float ratios[] = {0.8f, 0.5f, 0.1f, 0.99f};
    for (int k = 0; k < 4; k++) {
        int n1, n2;
        split_d1_d2(n, ratios[k], 7, d1, &n1, d2, &n2);
        ck_assert_int_eq(n1 + n2, n);
        ck_assert_int_eq(n1, (int)lround(ratios[k] * n));
        memset(seen, 0, sizeof(int) * n);
        for (int i = 0; i < n1; i++) seen[d1[i]]++;
        for (int i = 0; i < n2; i++) seen[d2[i]]++;
        for (int i = 0; i < n; i++) ck_assert_msg(seen[i] == 1, "example %d in %d parts", i, seen[i]);
        int m1, m2;
        split_d1_d2(n, ratios[k], 7, e1, &m1, e2, &m2); /* same seed: same split */
        ck_assert(m1 == n1 && memcmp(d1, e1, sizeof(int) * n1) == 0);
        split_d1_d2(n, ratios[k], 8, e1, &m1, e2, &m2); /* another seed: another split */
        ck_assert(memcmp(d1, e1, sizeof(int) * n1) != 0);
    }
    int n1, n2;
    split_d1_d2(2, 0.99f, 1, d1, &n1, d2, &n2); /* both parts non-empty */
    ck_assert(n1 == 1 && n2 == 1);
    free(d1); free(d2); free(seen); free(e1); free(e2);
}
END_TEST

START_TEST(lowrank_singular_values_are_exact) {
    /* B = U diag(σ), A = Vᵀ with orthonormal U (6×3), V (5×3): σ(s·BA) = s·σ */
    const int out = 6, in = 5, r = 3;
    float U[6 * 3] = {0}, Vt[3 * 5] = {0}, B[6 * 3], sv[3];
    /* orthonormal columns by construction: permuted unit vectors with signs */
    U[0 * 3 + 0] = 1; U[2 * 3 + 1] = -1; U[5 * 3 + 2] = 1;
    Vt[0 * 5 + 4] = 1; Vt[1 * 5 + 1] = 1; Vt[2 * 5 + 0] = -1;
    float sigma[3] = {0.5f, 3.0f, 1.25f};
    for (int i = 0; i < out; i++)
        for (int j = 0; j < r; j++) B[i * r + j] = U[i * r + j] * sigma[j];
    ck_assert_int_eq(lowrank_singular_values(B, Vt, out, in, r, 2.0f, sv), 0);
    ck_assert(fabsf(sv[0] - 6.0f) < 1e-5f && fabsf(sv[1] - 2.5f) < 1e-5f && fabsf(sv[2] - 1.0f) < 1e-5f);
    /* a random pair against the Frobenius norm: Σσ² = ‖s·BA‖²_F */
    uint64_t rng = 3;
    float Br[6 * 3], Ar[3 * 5];
    for (int i = 0; i < 18; i++) Br[i] = (float)rng_normal(&rng);
    for (int i = 0; i < 15; i++) Ar[i] = (float)rng_normal(&rng);
    ck_assert_int_eq(lowrank_singular_values(Br, Ar, out, in, r, 1.5f, sv), 0);
    double f = 0, s2 = 0;
    for (int i = 0; i < out; i++)
        for (int j = 0; j < in; j++) {
            double acc = 0;
            for (int k = 0; k < r; k++) acc += (double)Br[i * r + k] * Ar[k * in + j];
            f += 2.25 * acc * acc;
        }
    for (int i = 0; i < r; i++) s2 += (double)sv[i] * sv[i];
    ck_assert(fabs(f - s2) < 1e-4 * f);
    ck_assert(sv[0] >= sv[1] && sv[1] >= sv[2]);
    /* a rank above the matrix's sides (r = 5 > out = 3): B = [I3 0], A's rows
     * orthogonal with norms 4, 2, 1, ... → s·BA's singular values s·(4, 2, 1),
     * then zeros (it was all NaN) */
    float Bw[3 * 5] = {0}, Aw[5 * 4] = {0}, sw[5];
    for (int i = 0; i < 3; i++) Bw[i * 5 + i] = 1;
    Aw[0 * 4 + 2] = 2; Aw[1 * 4 + 0] = -4; Aw[2 * 4 + 3] = 1; Aw[3 * 4 + 1] = 7; Aw[4 * 4 + 1] = 3;
    ck_assert_int_eq(lowrank_singular_values(Bw, Aw, 3, 4, 5, 0.5f, sw), 0);
    ck_assert(fabsf(sw[0] - 2.0f) < 1e-5f && fabsf(sw[1] - 1.0f) < 1e-5f && fabsf(sw[2] - 0.5f) < 1e-5f);
    ck_assert(sw[3] == 0.0f && sw[4] == 0.0f);
}
END_TEST

/* ---- short runs on a synthetic task ---- */

typedef struct {
    int steps, evals, spectra, phase2, upper;
    double losses[64];
    double last_dev_loss;
} Log;

static void on_step(void *ctx, const StepInfo *s) {
    Log *l = ctx;
    if (l->steps < 64) l->losses[l->steps] = s->loss;
    l->steps++;
    l->phase2 += s->phase == 2;
    l->upper += isfinite(s->upper_loss) && isfinite(s->hypergrad_norm);
}
static void on_eval(void *ctx, const EvalInfo *e) {
    Log *l = ctx;
    l->evals++;
    if (!strcmp(e->split, "dev")) l->last_dev_loss = e->loss;
}
static void on_spectrum(void *ctx, const SpectrumInfo *s) {
    Log *l = ctx;
    l->spectra++;
    ck_assert_int_eq(s->n, 2 * 2); /* 2 layers x query,value */
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->rows[i].n; j++) ck_assert(isfinite(s->rows[i].values[j]));
}

/* The defaults on the fixture's model and SST-2 data in dir. */
static TrainConfig fixture_config(const char *dir, const char *method) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", dir);
    snprintf(c.method, sizeof(c.method), "%s", method);
    return c;
}

static void run_method(const char *dir, const char *method, const char *hypergrad, Log *log) {
    TrainConfig c = fixture_config(dir, method);
    snprintf(c.hypergrad, sizeof(c.hypergrad), "%s", hypergrad);
    c.rank = 2;
    c.alpha = 4;
    c.batch_size = 8;
    c.steps = 6;
    c.eval_every = 3;
    c.lower_lr = 5e-3f;
    c.phase2_steps = 2;
    c.target_rank = 1;
    c.delta_t = 1;
    memset(log, 0, sizeof(*log));
    TrainCallbacks cb = {.ctx = log, .on_step = on_step, .on_eval = on_eval, .on_spectrum = on_spectrum};
    char err[1024];
    ck_assert_msg(train_run(&c, &cb, err, sizeof(err)) == 0, "%s: %s", method, err);
}

START_TEST(every_method_runs_and_is_deterministic) {
    char dir[256];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    const char *methods[] = {"lora", "dora", "svd", "adalora", "bilora", "bidora"};
    for (int i = 0; i < 6; i++) {
        Log a, b;
        int bilevel = i >= 4;
        run_method(dir, methods[i], "darts", &a);
        int expect = 6 + (i == 5 ? 2 : 0);
        ck_assert_msg(a.steps == expect, "%s: %d steps", methods[i], a.steps);
        ck_assert_int_eq(a.phase2, i == 5 ? 2 : 0);
        ck_assert_int_eq(a.upper, bilevel ? 6 : 0);
        ck_assert_int_ge(a.evals, 4);
        ck_assert_int_ge(a.spectra, 2);
        run_method(dir, methods[i], "darts", &b);
        for (int k = 0; k < a.steps; k++)
            ck_assert_msg(a.losses[k] == b.losses[k], "%s step %d: %.9g vs %.9g (not deterministic)",
                          methods[i], k + 1, a.losses[k], b.losses[k]);
        ck_assert(a.last_dev_loss == b.last_dev_loss);
    }
    Log n, f;
    run_method(dir, "bilora", "neumann", &n);
    run_method(dir, "bilora", "first-order", &f);
    ck_assert_int_eq(n.upper, 6);
    ck_assert_int_eq(f.upper, 6);
    fixture_rmdir(dir);
}
END_TEST

/* AdaLoRA's budget is in the model that is evaluated and saved: at the
 * last step exactly target_rank triplets per adapter on average are kept
 * (λ = 0 for the rest). Masking before the optimizer step let Adam's
 * momentum move the pruned λ off 0 again: no zeros at all. */
typedef struct { int zeros, values, n_ad; } Spec;
static void count_zeros(void *ctx, const SpectrumInfo *s) {
    Spec *sp = ctx;
    sp->zeros = sp->values = 0;
    sp->n_ad = s->n;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->rows[i].n; j++) {
            sp->values++;
            sp->zeros += s->rows[i].values[j] == 0.0f;
        }
}
START_TEST(adalora_budget_is_in_the_model) {
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = fixture_config(dir, "adalora");
    c.rank = 4;
    c.target_rank = 1;
    c.tinit = 0;
    c.tfinal = 0.3f;
    c.delta_t = 1;
    c.steps = 10;
    c.batch_size = 8;
    c.eval_every = 100;
    Spec sp = {0};
    TrainCallbacks cb = {.ctx = &sp, .on_spectrum = count_zeros};
    Run *r;
    ck_assert_msg(run_create(&r, &c, &cb, err, sizeof(err)) == 0, "%s", err);
    int rc;
    while ((rc = run_step(r, err, sizeof(err))) == 0) {}
    ck_assert_msg(rc == 1, "%s", err);
    run_free(r);
    ck_assert_int_gt(sp.n_ad, 0);
    /* the final budget: 1 of 4 kept per adapter on average */
    int kept = sp.values - sp.zeros;
    printf("  adalora at the end: %d of %d λ kept over %d adapters (budget %d)\n", kept, sp.values, sp.n_ad,
           sp.n_ad * c.target_rank);
    ck_assert_int_eq(sp.values, sp.n_ad * c.rank);
    ck_assert_int_eq(kept, sp.n_ad * c.target_rank);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(bilevel_needs_two_examples) {
    /* --overfit-batch 1 left D2 empty: a bi-level run read past its stream (a crash) */
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = fixture_config(dir, "bilora");
    c.overfit_batch = 1;
    c.steps = 2;
    Run *r;
    ck_assert_int_eq(run_create(&r, &c, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "at least 2 training examples") && strstr(err, "--overfit-batch 1"), "%s", err);
    c.overfit_batch = 2; /* one each: runs */
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step(r, err, sizeof(err)), 0);
    run_free(r);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    TrainConfig c;
    char err[512];
    train_config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "qlora");
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--method 'qlora'"), "%s", err);
    train_config_defaults(&c);
    c.split_ratio = 1.0f;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--split-ratio"), "%s", err);
    train_config_defaults(&c);
    snprintf(c.hypergrad, sizeof(c.hypergrad), "implicit");
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--hypergrad 'implicit'"), "%s", err);
    train_config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "adalora");
    c.target_rank = 99;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    /* counts: negative ones used to fall back to epochs or fail later as
     * "out of memory" */
    train_config_defaults(&c);
    c.steps = -3;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--steps -3"), "%s", err);
    train_config_defaults(&c);
    c.steps = 99999999999L;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    train_config_defaults(&c);
    c.eval_train_examples = -5;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "--eval-train-examples -5"), "%s", err);
    train_config_defaults(&c);
    c.overfit_batch = -1;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    train_config_defaults(&c);
    c.steps = 10;
    c.epochs = -2;
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), -1);
    train_config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "bilora");
    ck_assert_int_eq(train_config_check(&c, err, sizeof(err)), 0);
    ck_assert_str_eq(c.lambda, "softmax"); /* auto resolves per method */
}
END_TEST

START_TEST(bad_text_names_its_file) {
    /* invalid UTF-8 in dev.tsv: the error names the file and the line */
    char dir[256], path[600], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    snprintf(path, sizeof(path), "%s/SST-2/dev.tsv", dir);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "caf\xe9 the\t1\n");
    fclose(f);
    TrainConfig c = fixture_config(dir, "lora");
    c.steps = 2;
    Run *r;
    ck_assert_int_eq(run_create(&r, &c, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "SST-2/dev.tsv") && strstr(err, "line 26") && strstr(err, "UTF-8"), "%s", err);
    printf("  refused: %s\n", err);
    fixture_rmdir(dir);
}
END_TEST

/* E2E data-to-text fine-tuning on a tiny GPT-2: the loss is the mean over
 * the reference tokens, lora learns the toy task (the dev loss falls), the
 * evaluation's perplexity is exp(loss), every method runs (bi-level ones
 * with their D1/D2 split) and repeats exactly, and an encoder is refused. */
typedef struct { double loss[64]; int n; double dev_loss[8], dev_ppl[8], dev_bleu[8]; int ndev; char info[4096]; } LmLog;
static void lm_info(void *ctx, const char *msg) {
    LmLog *l = ctx;
    if (strstr(msg, "generated for")) snprintf(l->info, sizeof l->info, "%s", msg);
}
static void lm_step(void *ctx, const StepInfo *s) {
    LmLog *l = ctx;
    if (l->n < 64) l->loss[l->n++] = s->loss;
}
static void lm_eval(void *ctx, const EvalInfo *e) {
    LmLog *l = ctx;
    ck_assert_int_eq(e->metrics.n, strcmp(e->split, "dev") == 0 && l->info[0] ? 2 : 1);
    ck_assert_int_eq(e->metrics.primary, 0);
    ck_assert_str_eq(e->metrics.name[0], "perplexity");
    ck_assert_msg(fabs(e->metrics.value[0] - exp(e->loss)) <= 1e-6 * exp(e->loss) /* floats in a replayed history */, "%g vs exp(%g)",
                  e->metrics.value[0], e->loss);
    if (strcmp(e->split, "dev") == 0 && l->ndev < 8) {
        l->dev_loss[l->ndev] = e->loss;
        l->dev_bleu[l->ndev] = e->metrics.n > 1 ? e->metrics.value[1] : NAN;
        if (e->metrics.n > 1) ck_assert_str_eq(e->metrics.name[1], "bleu");
        l->dev_ppl[l->ndev++] = e->metrics.value[0];
    }
}
static int state_reader(void *ctx, const char *name, BlobType type, size_t count, void *dst, char *err,
                        size_t errlen) {
    const RunState *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->blobs[i].name, name) && s->blobs[i].type == type && s->blobs[i].count == count) {
            memcpy(dst, s->blobs[i].data, 4 * count);
            return 0;
        }
    snprintf(err, errlen, "blob %s missing", name);
    return -1;
}

static TrainConfig e2e_config(const char *dir, const char *method, long steps) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/gpt2", dir);
    snprintf(c.task, sizeof(c.task), "e2e");
    snprintf(c.data, sizeof(c.data), "%s/e2e", dir);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.batch_size = 8;
    c.max_seq_len = 40;
    c.steps = steps;
    c.eval_every = steps;
    c.lower_lr = 1e-2f;
    c.upper_lr = 1e-2f;
    c.phase2_steps = 2;
    return c;
}
START_TEST(e2e_data_to_text) {
    char assets[512], tokdir[700], dir[256], err[2048];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "e2e_data_to_text: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(tokdir, sizeof tokdir, "%s/models/gpt2", assets);
    fixture_tmpdir(dir);
    ck_assert_msg(fixture_tiny_e2e(dir, tokdir, err, sizeof err) == 0, "%s", err);
    /* lora learns the toy references: dev loss at step 0 (no steps) vs 40 */
    LmLog l0 = {0}, l1 = {0};
    TrainCallbacks cb0 = {.ctx = &l0, .on_step = lm_step, .on_eval = lm_eval, .on_info = lm_info};
    TrainConfig c = e2e_config(dir, "lora", 1);
    c.eval_generate = 6;
    c.lower_lr = 1e-9f; /* one step that changes nothing: the untrained adapters' dev loss */
    ck_assert_msg(train_run(&c, &cb0, err, sizeof err) == 0, "%s", err);
    TrainCallbacks cb1 = {.ctx = &l1, .on_step = lm_step, .on_eval = lm_eval, .on_info = lm_info};
    c = e2e_config(dir, "lora", 40);
    c.eval_generate = 6;
    ck_assert_msg(train_run(&c, &cb1, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(l0.ndev, 1);
    ck_assert_int_eq(l1.ndev, 1);
    fprintf(stderr, "  e2e lora: dev loss %.4f (perplexity %.1f) untrained, %.4f (%.1f) after 40 steps\n",
           l0.dev_loss[0], l0.dev_ppl[0], l1.dev_loss[0], l1.dev_ppl[0]);
    ck_assert_msg(l1.dev_loss[0] < l0.dev_loss[0] - 1.0, "dev loss %.4f -> %.4f", l0.dev_loss[0],
                  l1.dev_loss[0]);
    /* BLEU of greedy continuations of 6 dev inputs (datasets/bleu.c is
     * checked against sacrebleu in test_bleu, lm_generate against
     * transformers in test_forward_hf): the trained adapters change the text
     * (this toy's copying is beyond 40 steps of a 32-wide model, so no
     * direction is asserted), and greedy generation repeats exactly */
    fprintf(stderr, "  e2e lora: BLEU %.2f untrained, %.2f after 40 steps\n  %s\n", l0.dev_bleu[0],
            l1.dev_bleu[0], l1.info);
    ck_assert(l0.dev_bleu[0] >= 0 && l0.dev_bleu[0] <= 100 && l1.dev_bleu[0] >= 0 && l1.dev_bleu[0] <= 100);
    ck_assert_msg(l1.dev_bleu[0] != l0.dev_bleu[0], "BLEU %.2f both", l0.dev_bleu[0]);
    ck_assert_ptr_nonnull(strstr(l1.info, "generated for 6 dev inputs"));
    ck_assert_ptr_nonnull(strstr(l1.info, "\"name["));
    LmLog l2 = {0};
    TrainCallbacks cb2 = {.ctx = &l2, .on_step = lm_step, .on_eval = lm_eval, .on_info = lm_info};
    ck_assert_msg(train_run(&c, &cb2, err, sizeof err) == 0, "%s", err);
    ck_assert(l2.dev_bleu[0] == l1.dev_bleu[0] && !strcmp(l2.info, l1.info));
    const char *methods[] = {"dora", "svd", "adalora", "bilora", "bidora"};
    for (int i = 0; i < 5; i++) {
        LmLog a = {0}, b = {0};
        TrainCallbacks ca = {.ctx = &a, .on_step = lm_step, .on_eval = lm_eval};
        TrainCallbacks cb = {.ctx = &b, .on_step = lm_step, .on_eval = lm_eval};
        c = e2e_config(dir, methods[i], 3);
        ck_assert_msg(train_run(&c, &ca, err, sizeof err) == 0, "%s: %s", methods[i], err);
        ck_assert_msg(train_run(&c, &cb, err, sizeof err) == 0, "%s: %s", methods[i], err);
        ck_assert_int_eq(a.n, 3 + (i == 4 ? 2 : 0));
        for (int k = 0; k < a.n; k++) {
            ck_assert_msg(isfinite(a.loss[k]) && a.loss[k] == b.loss[k], "%s step %d: %.9g vs %.9g",
                          methods[i], k + 1, a.loss[k], b.loss[k]);
        }
    }
    /* BLEU is in the run's history: exported, imported through text and
     * replayed for a front end, with the perplexity */
    {
        Run *ra, *rb;
        TrainConfig c2 = e2e_config(dir, "lora", 2);
        c2.eval_every = 1;
        c2.eval_generate = 2;
        const char *names[METRICS_MAX];
        ck_assert_int_eq(train_metric_names(&c2, names, METRICS_MAX), 2);
        ck_assert(!strcmp(names[0], "perplexity") && !strcmp(names[1], "bleu"));
        LmLog la = {0};
        TrainCallbacks cba = {.ctx = &la, .on_step = lm_step, .on_eval = lm_eval, .on_info = lm_info};
        ck_assert_msg(run_create(&ra, &c2, &cba, err, sizeof err) == 0, "%s", err);
        while (run_step(ra, err, sizeof err) == 0) {}
        /* run_generate (bilora generate --session) gives the sample the last
         * evaluation showed: "MR" -> "TEXT" */
        char mr[256], want[1024], *got;
        const char *q = strstr(la.info, "e.g. \""), *arrow = q ? strstr(q, "\" -> \"") : NULL;
        ck_assert_msg(q && arrow, "%s", la.info);
        snprintf(mr, sizeof mr, "%.*s", (int)(arrow - q - 6), q + 6);
        snprintf(want, sizeof want, "%s", arrow + 6);
        want[strlen(want) - 1] = 0; /* the closing quote */
        ck_assert_msg(run_generate(ra, mr, &got, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(got, want);
        free(got);
        RunState st;
        ck_assert_int_eq(run_state_export(ra, &st, err, sizeof err), 0);
        char *text = cJSON_PrintUnformatted(st.json);
        cJSON *parsed = cJSON_Parse(text);
        free(text);
        LmLog lr = {0};
        snprintf(lr.info, sizeof lr.info, "replay"); /* expect 2 metrics on dev rows */
        TrainCallbacks cbr = {.ctx = &lr, .on_step = lm_step, .on_eval = lm_eval};
        ck_assert_msg(run_create(&rb, &c2, &cbr, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(run_state_import(rb, parsed, state_reader, &st, err, sizeof err) == 0, "%s", err);
        run_replay_history(rb);
        ck_assert_int_eq(lr.ndev, 2);
        ck_assert(isfinite(lr.dev_bleu[0]) && isfinite(lr.dev_bleu[1]));
        cJSON_Delete(parsed);
        run_state_free(&st);
        run_free(ra);
        run_free(rb);
    }
    /* generation runs to --max-seq-len whatever the longest example: a long
     * training record does not change the untrained model's BLEU */
    {
        char path[600];
        snprintf(path, sizeof path, "%s/e2e/trainset.csv", dir);
        FILE *f = fopen(path, "a");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "\"name[Zizzi], food[Thai]\",Zizzi serves Thai food in a long long long long long long long "
                   "long long long long long long long long long long room.\n");
        fclose(f);
        LmLog l3 = {0};
        TrainCallbacks cb3 = {.ctx = &l3, .on_step = lm_step, .on_eval = lm_eval, .on_info = lm_info};
        c = e2e_config(dir, "lora", 1);
        c.lower_lr = 1e-9f;
        c.eval_generate = 6;
        ck_assert_msg(train_run(&c, &cb3, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(l3.dev_bleu[0] == l0.dev_bleu[0], "BLEU %.4f with a long train record, %.4f without",
                      l3.dev_bleu[0], l0.dev_bleu[0]);
        /* a dev file with no records is refused, naming it */
        snprintf(path, sizeof path, "%s/e2e/devset.csv", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("mr,ref\n", f);
        fclose(f);
        Run *r0;
        ck_assert_int_eq(run_create(&r0, &c, NULL, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "devset.csv has no records"), "%s", err);
    }
    /* an encoder cannot generate text */
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    c = e2e_config(dir, "lora", 2);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    Run *r;
    ck_assert_int_eq(run_create(&r, &c, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "needs a gpt2") && strstr(err, "bert"), "%s", err);
    printf("  refused: %s\n", err);
    fixture_rmdir(dir);
}
END_TEST

/* Settings the method does not use are named once, not silently ignored:
 * bi-level flags on lora, darts' radius under neumann, adalora's budget on
 * svd; the defaults, or flags that apply, say nothing. */
static void keep_note(void *ctx, const char *msg) {
    if (!strncmp(msg, "note: ", 6)) snprintf(ctx, 512, "%s", msg);
}
START_TEST(unused_settings_are_named) {
    char dir[256], err[1024], note[512];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    static const struct { const char *method, *want; } cases[] = {
        {"lora", "note: --upper-lr 0.001, --lambda softmax have no effect with --method lora"},
        {"bilora", "note: --darts-radius 0.1 has no effect with --method bilora and --hypergrad neumann"},
        {"svd", "note: --target-rank 2 has no effect with --method svd"},
        {"bilora", ""},
        {"adalora", ""},
        {"lora", ""}, /* lambda "real": what a saved lora config holds ("auto" resolved) */
        {"svd", "note: --gamma2 0.5 has no effect with --method svd"}, /* R2: bilora's upper level */
        {"bidora", "note: --phase2-lr 0.01 has no effect with --method bidora and --hypergrad darts"},
    };
    for (int i = 0; i < 8; i++) {
        TrainConfig c = fixture_config(dir, cases[i].method);
        c.steps = 1;
        c.eval_every = 100;
        if (i == 0) { c.upper_lr = 1e-3f; snprintf(c.lambda, sizeof c.lambda, "softmax"); }
        if (i == 1) { snprintf(c.hypergrad, sizeof c.hypergrad, "neumann"); c.darts_radius = 0.1f; }
        if (i == 2) c.target_rank = 2;
        if (i == 3) { c.upper_lr = 1e-3f; snprintf(c.lambda, sizeof c.lambda, "sigmoid"); c.gamma2 = 0.1f; }
        if (i == 4) { c.target_rank = 2; c.gamma1 = 0.5f; }
        if (i == 5) snprintf(c.lambda, sizeof c.lambda, "real");
        if (i == 6) { snprintf(c.lambda, sizeof c.lambda, "sigmoid"); c.gamma2 = 0.5f; }
        if (i == 7) c.phase2_lr = 0.01f; /* with --phase2-steps 0 */
        note[0] = 0;
        TrainCallbacks cb = {.ctx = note, .on_info = keep_note};
        Run *r;
        ck_assert_msg(run_create(&r, &c, &cb, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(!strcmp(note, cases[i].want), "%s: '%s', want '%s'", cases[i].method, note, cases[i].want);
        if (i == 0) { /* a GLUE run has nothing to generate */
            char *text;
            ck_assert_int_eq(run_generate(r, "name[X]", &text, err, sizeof err), -1);
            ck_assert_msg(strstr(err, "needs an E2E"), "%s", err);
        }
        run_free(r);
    }
    fixture_rmdir(dir);
}
END_TEST

/* The epoch counts whole passes: 96 examples in batches of 40 are passes of
 * 40 + 40 + 16, so step 3 ends the first pass at 1.0 (step x batch / n
 * said 1.25), and phase 2 of bidora counts again from 0. */
static void keep_epoch(void *ctx, const StepInfo *s) {
    double *e = ctx;
    if (s->step <= 8) e[s->step - 1] = s->epoch;
}
START_TEST(epochs_count_whole_passes) {
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    double e[8] = {0};
    TrainConfig c = fixture_config(dir, "lora");
    c.steps = 4;
    c.batch_size = 40;
    c.eval_every = 100;
    TrainCallbacks cb = {.ctx = e, .on_step = keep_epoch};
    ck_assert_msg(train_run(&c, &cb, err, sizeof err) == 0, "%s", err);
    const double want[4] = {40.0 / 96, 80.0 / 96, 1.0, 1.0 + 40.0 / 96};
    for (int i = 0; i < 4; i++) ck_assert_msg(fabs(e[i] - want[i]) < 1e-12, "step %d: epoch %.6f, want %.6f", i + 1, e[i], want[i]);
    /* bidora: D1 = 77 of 96 (ratio 0.8): 2 batches a pass; then phase 2 over all 96 */
    c = fixture_config(dir, "bidora");
    c.steps = 2;
    c.phase2_steps = 3;
    c.batch_size = 40;
    c.eval_every = 100;
    memset(e, 0, sizeof e);
    ck_assert_msg(train_run(&c, &cb, err, sizeof err) == 0, "%s", err);
    const double want2[5] = {40.0 / 77, 1.0, 40.0 / 96, 80.0 / 96, 1.0};
    for (int i = 0; i < 5; i++) ck_assert_msg(fabs(e[i] - want2[i]) < 1e-12, "bidora step %d: epoch %.6f, want %.6f", i + 1, e[i], want2[i]);
    fixture_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, split_is_disjoint_covering_and_seeded);
    tcase_add_test(tc, lowrank_singular_values_are_exact);
    tcase_add_test(tc, every_method_runs_and_is_deterministic);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, bad_text_names_its_file);
    tcase_add_test(tc, adalora_budget_is_in_the_model);
    tcase_add_test(tc, bilevel_needs_two_examples);
    tcase_add_test(tc, e2e_data_to_text);
    tcase_add_test(tc, unused_settings_are_named);
    tcase_add_test(tc, epochs_count_whole_passes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
