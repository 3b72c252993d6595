/* The fine-tuning loop for every method. A global step is, for
 *   single-level methods (lora, dora, svd, adalora): one AdamW step on the
 *     LOWER group with a batch of the whole training set;
 *   bi-level methods (bilora, bidora): T1 lower steps on D1 batches, then
 *     T2 upper steps on D2 batches with the hypergradient (hypergrad.h);
 *     bidora then retrains the direction (A, B restarted from their initial
 *     values) on all of D with the learned magnitude fixed (phase 2). */
#include "engine/train.h"

#include "datasets/batch.h"
#include "datasets/bleu.h"
#include "datasets/e2e.h"
#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "engine/assets.h"
#include "engine/bilevel.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/run_internal.h"
#include "engine/spectrum.h"

#include <math.h>
#include <stdarg.h>
#include <utf8proc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "lora");
    c->rank = 8;
    c->alpha = 16.0f;
    c->lora_dropout = 0.0f;
    snprintf(c->targets, sizeof(c->targets), "query,value");
    snprintf(c->lambda, sizeof(c->lambda), "auto");
    snprintf(c->svd_init, sizeof(c->svd_init), "adalora");
    c->lower_lr = 5e-4f;
    c->upper_lr = 5e-3f;
    c->lower_weight_decay = 0.01f;
    c->upper_weight_decay = 0.0f;
    c->warmup_ratio = 0.06f;
    c->max_grad_norm = 1.0f;
    c->batch_size = 32;
    c->max_seq_len = 128;
    c->epochs = 3;
    c->eval_train_examples = 512;
    c->eval_generate = 0;
    c->seed = 42;
    snprintf(c->device, sizeof(c->device), "cpu");
    c->split_ratio = 0.8f;
    c->lower_steps = 1;
    c->upper_steps = 1;
    c->gamma1 = 0.1f;
    c->gamma2 = 0.0f;
    snprintf(c->hypergrad, sizeof(c->hypergrad), "darts");
    c->darts_radius = 0.01f;
    c->darts_xi = 0.0f;
    c->neumann_steps = 1;
    c->neumann_alpha = 1.0f;
    c->phase2_steps = 0;
    c->phase2_lr = 5e-4f;
    c->target_rank = 4;
    c->tinit = 0.1f;
    c->tfinal = 0.2f;
    c->delta_t = 10;
}

static const char *const METHODS[] = {"lora", "dora", "svd", "adalora", "bilora", "bidora"};

static int is_bilevel(const char *method) {
    return strcmp(method, "bilora") == 0 || strcmp(method, "bidora") == 0;
}

/* Appends "--flag value" to out (", "-separated). */
static void add_unused(char *out, size_t cap, const char *flag, const char *value) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s %s", n ? ", " : "", flag, value);
}

const char *train_task_name(const char *task) {
    const GlueTaskInfo *g = glue_task_info(task);
    return g ? g->name : e2e_task_name(task);
}

int train_metric_names(const TrainConfig *c, const char **names, int cap) {
    MetricSet ms;
    float zero = 0.0f;
    const GlueTaskInfo *g = glue_task_info(c->task);
    if (g) glue_metrics(g, &zero, &zero, 1, &ms);
    else if (e2e_task_name(c->task)) {
        lm_metrics(0.0, &ms);
        if (c->eval_generate > 0 && ms.n < METRICS_MAX) ms.name[ms.n++] = "bleu";
    } else return 0;
    int n = 0;
    for (int k = -1; k < ms.n && n < cap; k++) {
        if (k == ms.primary) continue;
        names[n++] = ms.name[k < 0 ? ms.primary : k];
    }
    return n;
}

void train_config_unused(const TrainConfig *c, char *out, size_t cap) {
    TrainConfig d;
    train_config_defaults(&d);
    out[0] = 0;
    const char *m = c->method;
    int bilevel = is_bilevel(m);
    int svd = !strcmp(m, "svd") || !strcmp(m, "adalora") || !strcmp(m, "bilora");
    char v[64];
#define UNUSED_F(cond, field, flag)                                                                \
    if ((cond) && c->field != d.field) { snprintf(v, sizeof v, "%g", (double)c->field); add_unused(out, cap, flag, v); }
#define UNUSED_S(cond, field, flag)                                                                \
    if ((cond) && strcmp(c->field, d.field) != 0) add_unused(out, cap, flag, c->field);
    UNUSED_F(!bilevel, upper_lr, "--upper-lr");
    UNUSED_F(!bilevel, upper_weight_decay, "--upper-weight-decay");
    UNUSED_F(!bilevel, split_ratio, "--split-ratio");
    UNUSED_F(!bilevel, lower_steps, "--lower-steps");
    UNUSED_F(!bilevel, upper_steps, "--upper-steps");
    UNUSED_S(!bilevel, hypergrad, "--hypergrad");
    UNUSED_F(!bilevel || strcmp(c->hypergrad, "darts") != 0, darts_radius, "--darts-radius");
    UNUSED_F(!bilevel || strcmp(c->hypergrad, "darts") != 0, darts_xi, "--darts-xi");
    UNUSED_F(!bilevel || strcmp(c->hypergrad, "neumann") != 0, neumann_steps, "--neumann-steps");
    UNUSED_F(!bilevel || strcmp(c->hypergrad, "neumann") != 0, neumann_alpha, "--neumann-alpha");
    /* lambda "auto" resolves to "real" outside the svd forms: a resumed
     * run's saved config holds that, and it is no setting of the user's */
    UNUSED_S(!svd && strcmp(c->lambda, "real") != 0, lambda, "--lambda");
    UNUSED_S(!svd, svd_init, "--svd-init");
    UNUSED_F(!svd, gamma1, "--gamma1");
    UNUSED_F(strcmp(m, "bilora") != 0, gamma2, "--gamma2"); /* R2 is in bilora's upper level only */
    UNUSED_F(strcmp(m, "adalora") != 0, target_rank, "--target-rank");
    UNUSED_F(strcmp(m, "adalora") != 0, tinit, "--tinit");
    UNUSED_F(strcmp(m, "adalora") != 0, tfinal, "--tfinal");
    UNUSED_F(strcmp(m, "adalora") != 0, delta_t, "--delta-t");
    UNUSED_F(strcmp(m, "bidora") != 0, phase2_steps, "--phase2-steps");
    UNUSED_F(strcmp(m, "bidora") != 0 || c->phase2_steps == 0, phase2_lr, "--phase2-lr");
#undef UNUSED_F
#undef UNUSED_S
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int train_config_check(TrainConfig *c, char *err, size_t errlen) {
    int known = 0;
    for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++) known |= !strcmp(c->method, METHODS[i]);
    CHECK(known, "--method '%s' is unknown; expected lora, dora, svd, adalora, bilora or bidora", c->method);
    if (!strcmp(c->lambda, "auto"))
        snprintf(c->lambda, sizeof(c->lambda), "%s", !strcmp(c->method, "bilora") ? "softmax" : "real");
    CHECK(!strcmp(c->lambda, "real") || !strcmp(c->lambda, "softmax") || !strcmp(c->lambda, "sigmoid"),
          "--lambda '%s': expected auto, real, softmax or sigmoid", c->lambda);
    CHECK(!strcmp(c->svd_init, "adalora") || !strcmp(c->svd_init, "lora"),
          "--svd-init '%s': expected adalora or lora", c->svd_init);
    HypergradMethod hm;
    CHECK(hypergrad_parse(c->hypergrad, &hm) == 0,
          "--hypergrad '%s': expected first-order, darts or neumann", c->hypergrad);
    CHECK(c->rank >= 1 && c->rank <= 1024, "--rank %d: expected 1..1024", c->rank);
    CHECK(c->alpha > 0, "--alpha must be > 0");
    CHECK(c->lora_dropout >= 0 && c->lora_dropout < 1, "--lora-dropout must be in [0, 1)");
    CHECK(c->lower_lr > 0 && c->lower_lr < 10, "--lower-lr %g: expected (0, 10)", c->lower_lr);
    CHECK(c->upper_lr > 0 && c->upper_lr < 10, "--upper-lr %g: expected (0, 10)", c->upper_lr);
    CHECK(c->lower_weight_decay >= 0 && c->upper_weight_decay >= 0, "weight decays must be >= 0");
    CHECK(c->warmup_ratio >= 0 && c->warmup_ratio < 1, "--warmup-ratio must be in [0, 1)");
    CHECK(c->max_grad_norm >= 0, "--max-grad-norm must be >= 0 (0: off)");
    CHECK(c->batch_size >= 1 && c->batch_size <= 4096, "--batch-size %d: expected 1..4096", c->batch_size);
    CHECK(c->max_seq_len >= 8 && c->max_seq_len <= 4096, "--max-seq-len %d: expected 8..4096", c->max_seq_len);
    CHECK(c->steps >= 0 && c->steps <= 100000000L, "--steps %ld: expected 1..1e8 (0: use --epochs)", c->steps);
    CHECK(c->epochs >= 0 && c->epochs <= 10000, "--epochs %d: expected 1..10000", c->epochs);
    CHECK(c->steps > 0 || c->epochs > 0, "need --steps or --epochs > 0");
    CHECK(c->eval_train_examples >= 0, "--eval-train-examples %d: expected >= 0 (0: none)",
          c->eval_train_examples);
    CHECK(c->overfit_batch >= 0, "--overfit-batch %d: expected >= 0 (0: off)", c->overfit_batch);
    CHECK(c->eval_generate >= 0, "--eval-generate %d: expected >= 0 (0: none)", c->eval_generate);
    CHECK(c->eval_generate == 0 || e2e_task_name(c->task),
          "--eval-generate applies to the data-to-text task E2E, not to %s (a GLUE task)", c->task);
    CHECK(c->eval_every >= 0 && c->spectrum_every >= 0, "--eval-every and --spectrum-every must be >= 0");
    CHECK(c->split_ratio > 0 && c->split_ratio < 1, "--split-ratio %g: expected (0, 1)", c->split_ratio);
    CHECK(c->lower_steps >= 1 && c->lower_steps <= 1000, "--lower-steps: expected 1..1000");
    CHECK(c->upper_steps >= 1 && c->upper_steps <= 1000, "--upper-steps: expected 1..1000");
    CHECK(c->gamma1 >= 0 && c->gamma2 >= 0, "--gamma1 and --gamma2 must be >= 0");
    CHECK(c->darts_radius > 0, "--darts-radius must be > 0");
    CHECK(c->darts_xi >= 0, "--darts-xi %g: expected >= 0 (0: no factor, i.e. 1, as Betty)", c->darts_xi);
    CHECK(c->neumann_steps >= 0 && c->neumann_steps <= 100, "--neumann-steps: expected 0..100");
    CHECK(c->neumann_alpha > 0, "--neumann-alpha must be > 0");
    CHECK(c->phase2_steps >= 0 && c->phase2_lr > 0, "--phase2-steps >= 0 and --phase2-lr > 0");
    CHECK(strcmp(c->method, "adalora") != 0 || (c->target_rank >= 0 && c->target_rank <= c->rank),
          "--target-rank %d: expected 0..--rank (%d)", c->target_rank, c->rank);
    CHECK(c->tinit >= 0 && c->tfinal >= 0 && c->tinit + c->tfinal < 1, "--tinit + --tfinal must be < 1");
    CHECK(c->delta_t >= 1, "--delta-t must be >= 1");
    CHECK(!strcmp(c->device, "cpu") || !strcmp(c->device, "auto") || !strcmp(c->device, "cuda"),
          "--device '%s': expected auto, cpu or cuda", c->device);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void info(const TrainCallbacks *cb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(const TrainCallbacks *cb, const char *fmt, ...) {
    if (!cb || !cb->on_info) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cb->on_info(cb->ctx, buf);
}

/* Passes over n examples after `batches` batches of B: a pass is ceil(n/B)
 * batches, its last one short (stream_next), so a whole pass reads 1.0. */
static double passes(long batches, int B, int n) {
    if (n <= 0) return 0.0;
    long per = (n + B - 1) / B, whole = batches / per, k = batches % per;
    double part = (double)k * B < n ? (double)k * B / n : 1.0;
    return (double)whole + part;
}

/* Fractional passes at a step: bi-level phase 1 over D1; bidora's phase 2
 * starts its own count over all of D (it restarts A, B from their initial
 * values). */
static double epoch_at(const Run *r, long step, int phase) {
    const TrainConfig *cfg = &r->cfg;
    return r->bilevel && phase == 1 ? passes(step * cfg->lower_steps, cfg->batch_size, r->d1.n)
           : phase == 2             ? passes(step - r->phase1_total, cfg->batch_size, r->n_train)
                                    : passes(step, cfg->batch_size, r->n_train);
}

int run_evaluates_at(const Run *r, long step) {
    return step % r->eval_every == 0 || step == r->total || step == r->phase1_total;
}

void run_replay_history(Run *r) {
    const char *names[METRICS_MAX];
    int nn = train_metric_names(&r->cfg0, names, METRICS_MAX); /* the headline first */
    for (int i = 0; i < r->n_hist_steps && r->cb.on_step; i++) {
        const StepRecord *h = &r->hist_steps[i];
        StepInfo si = {.step = h->step, .total_steps = r->total, .loss = h->loss, .upper_loss = h->upper_loss,
                       .phase = h->step > r->phase1_total ? 2 : 1, .reg = NAN, .hypergrad_norm = NAN,
                       .grad_norm = NAN};
        si.epoch = epoch_at(r, h->step, si.phase);
        r->cb.on_step(r->cb.ctx, &si);
    }
    for (int i = 0; i < r->n_hist_evals && r->cb.on_eval; i++) {
        const EvalRecord *h = &r->hist_evals[i];
        EvalInfo e = {.step = h->step, .split = h->split, .loss = h->loss};
        if (nn) {
            e.metrics.n = 1;
            e.metrics.name[0] = names[0];
            e.metrics.value[0] = h->metric;
            for (int k = 0; k < h->n_more && k + 1 < nn; k++) {
                e.metrics.name[e.metrics.n] = names[k + 1];
                e.metrics.value[e.metrics.n++] = h->more[k];
            }
        }
        r->cb.on_eval(r->cb.ctx, &e);
    }
}

void run_info(Run *r, const char *fmt, ...) {
    if (!r->cb.on_info) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    r->cb.on_info(r->cb.ctx, buf);
}

static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

void split_d1_d2(int n, float ratio, uint64_t seed, int *d1, int *n1, int *d2, int *n2) {
    int *all = malloc(sizeof(int) * (n > 0 ? n : 1));
    if (!all) { *n1 = *n2 = 0; return; }
    for (int i = 0; i < n; i++) all[i] = i;
    uint64_t rng = rng_derive(seed, 4);
    shuffle(all, n, &rng);
    int k = (int)lround((double)ratio * n);
    if (k < 1) k = 1;
    if (n >= 2 && k > n - 1) k = n - 1;
    if (k > n) k = n;
    memcpy(d1, all, sizeof(int) * k);
    memcpy(d2, all + k, sizeof(int) * (n - k));
    *n1 = k;
    *n2 = n - k;
    free(all);
}

static int stream_next(Stream *s, int *out, int B) {
    int nb = 0;
    if (s->n <= 0) return 0; /* nothing to draw (callers check before building a batch) */
    while (nb < B) {
        if (s->cursor == s->n) {
            s->cursor = 0;
            if (s->shuffle) shuffle(s->idx, s->n, &s->rng);
            if (nb > 0) break;
        }
        out[nb++] = s->idx[s->cursor++];
    }
    return nb;
}

void run_free(Run *r) {
    if (!r) return;
    adamw_free(&r->opt_lower);
    adamw_free(&r->opt_upper);
    hyperwork_free(&r->hw);
    if (r->hyper) r->model->be->release(r->hyper); /* before the model (and its backend pointer) goes */
    model_free(r->model);
    encoded_set_free(&r->train);
    glue_split_free(&r->train_raw);
    for (int i = 0; i < r->n_dev; i++) {
        encoded_set_free(&r->dev[i]);
        glue_split_free(&r->dev_raw[i]);
    }
    tokenizer_free(r->tok);
    free(r->all.idx); free(r->d1.idx); free(r->d2.idx);
    free(r->bidx); free(r->b1idx);
    free(r->train_eval_idx); free(r->dev_idx);
    free(r->init_lower); free(r->m0);
    free(r->ipt_avg); free(r->unc_avg);
    free(r->changes);
    free(r->hist_steps);
    free(r->hist_evals);
    for (int i = 0; i < r->gen_n; i++) free(r->gen_mr[i]);
    for (int i = 0; i < r->gen_nrefs; i++) free(r->gen_refs[i]);
    free(r->gen_mr); free(r->gen_refs); free(r->gen_start);
    free(r);
}

/* Scores examples idx[0..n) (in batches, eval mode): mean loss and metrics. */
/* Data-to-text: the mean loss per scored reference token and its perplexity. */
static int evaluate_lm(Run *r, const EncodedSet *set, const int *idx, int n, EvalInfo *out, char *err,
                       size_t errlen) {
    Model *m = r->model;
    int B = r->cfg.batch_size;
    double loss_sum = 0.0;
    long tokens = 0;
    for (int s = 0; s < n; s += B) {
        int nb = n - s < B ? n - s : B;
        Batch bt;
        if (batch_build(set, idx + s, nb, r->pad, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int rc = model_forward(m, &bt, 0, 0, err, errlen);
        if (rc == 0) {
            int k = model_scored_tokens(m);
            loss_sum += model_loss(m, &bt, 0.0f, NULL) * k;
            tokens += k;
        }
        batch_free(&bt);
        if (rc != 0) return -1;
    }
    out->loss = tokens ? loss_sum / tokens : NAN;
    out->examples = n;
    lm_metrics(out->loss, &out->metrics);
    return 0;
}

/* A generated text as valid UTF-8 (what `tokenizers` decodes: a broken
 * byte sequence becomes U+FFFD) with control characters as spaces, fit for
 * BLEU and for a terminal line. */
static char *clean_text(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s; *p;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, -1, &cp);
        if (k < 1) { memcpy(o, "\xEF\xBF\xBD", 3); o += 3; p++; continue; }
        if (cp < 0x20 || cp == 0x7F) *o++ = ' ';
        else { memcpy(o, p, (size_t)k); o += k; }
        p += k;
    }
    *o = 0;
    return out;
}

/* E2E: greedy continuations of the kept dev meaning representations,
 * scored by corpus BLEU against all their references (a second metric, as
 * sacreBLEU computes it); the first continuation is shown as a sample. */
int run_generate(Run *r, const char *input, char **text_out, char *err, size_t errlen) {
    *text_out = NULL;
    if (!r->lm) {
        snprintf(err, errlen, "generation needs an E2E (data-to-text) run; this one is %s", r->task_name);
        return -1;
    }
    Model *m = r->model;
    const int eos = tokenizer_sep_id(r->tok);
    int32_t *p = NULL, *out = NULL;
    int np = 0, n_out = 0, rc;
    if ((rc = encode_data_to_text_prompt(r->tok, input, &p, &np, err, errlen)) != 0) return -1;
    GenerateOptions go = {.max_new = m->max_seq - np, .temperature = 0.0f, .eos_id = eos};
    if (go.max_new >= 1 && np >= 1) rc = lm_generate(m, p, np, &go, &out, &n_out, err, errlen);
    free(p);
    if (rc != 0) return -1;
    if (n_out > 0 && out[n_out - 1] == eos) n_out--;
    char *raw = n_out > 0 ? tokenizer_decode(r->tok, out, n_out, 1, err, errlen) : strdup("");
    free(out);
    if (!raw) return -1;
    char *text = clean_text(raw);
    free(raw);
    if (!text) { snprintf(err, errlen, "out of memory"); return -1; }
    size_t lead = strspn(text, " ");
    memmove(text, text + lead, strlen(text + lead) + 1);
    *text_out = text;
    return 0;
}

static int generate_bleu(Run *r, EvalInfo *ev, char *err, size_t errlen) {
    char **hyps = calloc(r->gen_n, sizeof(char *));
    if (!hyps) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = 0;
    for (int g = 0; g < r->gen_n && rc == 0; g++) rc = run_generate(r, r->gen_mr[g], &hyps[g], err, errlen);
    BleuScore bs;
    if (rc == 0 && (rc = bleu_corpus((const char *const *)hyps, r->gen_n, (const char *const *)r->gen_refs,
                                     r->gen_start, &bs, err, errlen)) == 0) {
        if (ev->metrics.n < METRICS_MAX) {
            ev->metrics.name[ev->metrics.n] = "bleu";
            ev->metrics.value[ev->metrics.n++] = bs.score;
        }
        info(&r->cb, "step %ld: generated for %d dev inputs, BLEU %.2f (brevity %.3f); e.g. \"%s\" -> \"%s\"",
             r->step, r->gen_n, bs.score, bs.bp, r->gen_mr[0], hyps[0]);
    }
    for (int g = 0; g < r->gen_n; g++) free(hyps[g]);
    free(hyps);
    return rc;
}

static int evaluate(Run *r, const EncodedSet *set, const int *idx, int n, EvalInfo *out, char *err,
                    size_t errlen) {
    if (r->lm) return evaluate_lm(r, set, idx, n, out, err, errlen);
    Model *m = r->model;
    int B = r->cfg.batch_size;
    float *preds = malloc(sizeof(float) * (n ? n : 1));
    float *labels = malloc(sizeof(float) * (n ? n : 1));
    float *logits = malloc(sizeof(float) * (size_t)B * m->num_labels);
    if (!preds || !labels || !logits) {
        free(preds); free(labels); free(logits);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double loss_sum = 0.0;
    int rc = 0;
    for (int s = 0; s < n && rc == 0; s += B) {
        int nb = n - s < B ? n - s : B;
        Batch bt;
        if (batch_build(set, idx + s, nb, r->pad, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (model_forward(m, &bt, 0, 0, err, errlen) != 0) { batch_free(&bt); rc = -1; break; }
        loss_sum += model_loss(m, &bt, 0.0f, NULL) * nb;
        m->be->download(logits, model_logits(m), sizeof(float) * nb * m->num_labels);
        for (int b = 0; b < nb; b++) {
            labels[s + b] = bt.labels[b];
            if (m->num_labels == 1) {
                preds[s + b] = logits[b];
            } else {
                int best = 0;
                for (int c = 1; c < m->num_labels; c++)
                    if (logits[b * m->num_labels + c] > logits[b * m->num_labels + best]) best = c;
                preds[s + b] = (float)best;
            }
        }
        batch_free(&bt);
    }
    if (rc == 0) {
        out->loss = n ? loss_sum / n : 0.0;
        out->examples = n;
        glue_metrics(r->task, preds, labels, n, &out->metrics);
    }
    free(preds);
    free(labels);
    free(logits);
    return rc;
}

/* The first n distinct meaning representations of the dev split (file
 * order) with every reference each has, for generation and BLEU. */
static int collect_generation_set(Run *r, const E2ESplit *dev, int n) {
    if (n > dev->n) n = dev->n; /* at most one per record */
    r->gen_mr = calloc(n ? n : 1, sizeof(char *));
    r->gen_refs = calloc(dev->n ? dev->n : 1, sizeof(char *));
    r->gen_start = calloc((size_t)n + 1, sizeof(int));
    int *group = malloc(sizeof(int) * (dev->n ? dev->n : 1));
    if (!r->gen_mr || !r->gen_refs || !r->gen_start || !group) { free(group); return -1; }
    for (int i = 0; i < dev->n; i++) { /* which kept MR each record belongs to (-1: none) */
        group[i] = -1;
        for (int g = 0; g < r->gen_n; g++)
            if (!strcmp(r->gen_mr[g], dev->ex[i].mr)) { group[i] = g; break; }
        if (group[i] < 0 && r->gen_n < n) {
            if (!(r->gen_mr[r->gen_n] = strdup(dev->ex[i].mr))) { free(group); return -1; }
            group[i] = r->gen_n++;
        }
    }
    for (int g = 0; g < r->gen_n; g++) { /* references grouped by MR */
        r->gen_start[g] = r->gen_nrefs;
        for (int i = 0; i < dev->n; i++)
            if (group[i] == g && !(r->gen_refs[r->gen_nrefs++] = strdup(dev->ex[i].ref))) {
                free(group);
                return -1;
            }
    }
    r->gen_start[r->gen_n] = r->gen_nrefs;
    free(group);
    return 0;
}

/* E2E: train and dev records encoded as "MR ||" prompts and " REF<eos>"
 * completions (batch.h); the loss is on the completions. */
static int setup_e2e(Run *r, const char *dir, char *err, size_t errlen) {
    int eos = tokenizer_sep_id(r->tok);
    if (eos < 0) {
        snprintf(err, errlen, "the model's tokenizer has no end-of-text token for E2E's completions");
        return -1;
    }
    r->n_dev = 1;
    for (int i = 0; i < 2; i++) {
        const char *split = i == 0 ? "train" : "dev";
        E2ESplit sp;
        if (e2e_load(dir, split, &sp, err, errlen) != 0) return -1;
        const char **mr = malloc(sizeof(char *) * (sp.n ? sp.n : 1));
        const char **ref = malloc(sizeof(char *) * (sp.n ? sp.n : 1));
        int *line = malloc(sizeof(int) * (sp.n ? sp.n : 1));
        int rc = -1;
        if (!mr || !ref || !line) snprintf(err, errlen, "out of memory");
        else {
            for (int k = 0; k < sp.n; k++) { mr[k] = sp.ex[k].mr; ref[k] = sp.ex[k].ref; line[k] = sp.ex[k].line; }
            char e2[1024];
            rc = encode_data_to_text(r->tok, mr, ref, line, sp.n, r->cfg.max_seq_len, eos,
                                     i == 0 ? &r->train : &r->dev[0], e2, sizeof(e2));
            if (rc != 0) snprintf(err, errlen, "%s/%s: %s", dir, e2e_split_file(split), e2);
            if (rc == 0 && sp.n == 0) {
                snprintf(err, errlen, "%s/%s has no records after its header (expected mr,ref rows)", dir,
                         e2e_split_file(split));
                rc = -1;
            }
            if (rc == 0 && i == 1 && r->cfg.eval_generate > 0 &&
                (rc = collect_generation_set(r, &sp, r->cfg.eval_generate)) != 0)
                snprintf(err, errlen, "out of memory");
        }
        free(mr); free(ref); free(line);
        e2e_split_free(&sp);
        if (rc != 0) return -1;
    }
    return 0;
}

static int setup_data(Run *r, char *err, size_t errlen) {
    const TrainConfig *cfg = &r->cfg;
    /* the device first: a missing GPU fails before minutes of loading */
    const Backend *be = backend_select(cfg->device, err, errlen);
    if (!be) return -1;
    if (err[0]) info(&r->cb, "%s", err); /* auto fell back to the CPU: say why */
    err[0] = 0;
    r->task = glue_task_info(cfg->task);
    r->task_name = r->task ? r->task->name : e2e_task_name(cfg->task);
    r->lm = !r->task && r->task_name;
    if (!r->task_name) {
        snprintf(err, errlen, "unknown task '%s'; GLUE tasks: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, "
                 "QNLI, RTE, WNLI; data-to-text (a gpt2 model): E2E", cfg->task);
        return -1;
    }
    char model_dir[4096], data_dir[4096];
    if (assets_find_model(cfg->model, model_dir, sizeof(model_dir), err, errlen) != 0) return -1;
    if (cfg->data[0]) snprintf(data_dir, sizeof(data_dir), "%s", cfg->data);
    else if (assets_find_task(r->lm ? "e2e" : r->task->name, data_dir, sizeof(data_dir), err, errlen) != 0)
        return -1;
    ModelConfig mc;
    if (model_config_load(&mc, model_dir, err, errlen) != 0) return -1;
    if (r->lm && strcmp(mc.model_type, "gpt2") != 0) {
        snprintf(err, errlen, "task E2E is data-to-text generation: it needs a gpt2 (decoder) model, and "
                 "%s is a %s encoder", model_dir, mc.model_type);
        return -1;
    }
    if (tokenizer_load(&r->tok, model_dir, mc.model_type, err, errlen) != 0) return -1;
    r->pad = tokenizer_pad_id(r->tok);
    if (r->lm) {
        if (setup_e2e(r, data_dir, err, errlen) != 0) return -1;
    } else {
        if (glue_load(data_dir, r->task, "train", &r->train_raw, err, errlen) != 0) return -1;
        r->n_dev = r->task->num_dev_splits;
        for (int i = 0; i < r->n_dev; i++)
            if (glue_load(data_dir, r->task, r->task->dev_splits[i], &r->dev_raw[i], err, errlen) != 0)
                return -1;
        for (int i = -1; i < r->n_dev; i++) { /* train, then each dev split; an error names the file */
            char e2[1024];
            if (encode_glue(r->tok, i < 0 ? &r->train_raw : &r->dev_raw[i], cfg->max_seq_len,
                            i < 0 ? &r->train : &r->dev[i], e2, sizeof(e2)) != 0) {
                snprintf(err, errlen, "%s/%s.tsv: %s", data_dir, i < 0 ? "train" : r->task->dev_splits[i], e2);
                return -1;
            }
        }
    }
    if (r->train.n < 2) {
        snprintf(err, errlen, "%s/%s has %d example(s); need at least 2", data_dir,
                 r->lm ? e2e_split_file("train") : "train.tsv", r->train.n);
        return -1;
    }
    info(&r->cb, "task %s: %d train / %d %s examples from %s (longest %d tokens, %d at the %d limit)",
         r->task_name, r->train.n, r->dev[0].n, r->lm ? "dev" : r->task->dev_splits[0], data_dir,
         r->train.longest, r->train.truncated, cfg->max_seq_len);

    int targets;
    if (targets_parse(cfg->targets, &targets, err, errlen) != 0) return -1;
    int max_seq = r->train.longest;
    for (int i = 0; i < r->n_dev; i++) if (r->dev[i].longest > max_seq) max_seq = r->dev[i].longest;
    /* generation continues up to --max-seq-len (not to the longest example,
     * which would make BLEU depend on the training set), within the model's
     * positions */
    if (r->lm && cfg->eval_generate > 0)
        max_seq = cfg->max_seq_len < mc.max_position_embeddings ? cfg->max_seq_len : mc.max_position_embeddings;
    AdapterForm form = ADAPTER_LORA;
    if (!strcmp(cfg->method, "dora") || !strcmp(cfg->method, "bidora")) form = ADAPTER_DORA;
    if (!strcmp(cfg->method, "svd") || !strcmp(cfg->method, "adalora") || !strcmp(cfg->method, "bilora"))
        form = ADAPTER_SVD;
    LambdaParam lp = !strcmp(cfg->lambda, "softmax") ? LAMBDA_SOFTMAX
                     : !strcmp(cfg->lambda, "sigmoid") ? LAMBDA_SIGMOID : LAMBDA_REAL;
    ModelOptions mo = {
        .model_dir = model_dir,
        .num_labels = r->lm ? 0 : r->task->num_labels,
        .lm_head = r->lm,
        .max_batch = cfg->batch_size,
        .max_seq = max_seq,
        .adapter = {.rank = cfg->rank, .form = form, .alpha = cfg->alpha, .dropout = cfg->lora_dropout,
                    .targets = targets, .lambda = lp, .bilevel = r->bilevel,
                    .svd_init = !strcmp(cfg->svd_init, "lora") ? SVD_INIT_LORA : SVD_INIT_ADALORA},
        .init_seed = cfg->seed,
    };
    if (model_load(&r->model, be, &mo, err, errlen) != 0) return -1;
    Model *m = r->model;
    size_t lower = param_list_numel(&m->params, GROUP_LOWER), upper = param_list_numel(&m->params, GROUP_UPPER);
    info(&r->cb, "model %s (%s, %d layers, hidden %d): %zu parameters, %zu trainable (%.3f%%: %zu "
         "lower, %zu upper); %s r=%d alpha=%g on %s; device %s",
         model_dir, m->cfg.model_type, m->cfg.num_hidden_layers, m->cfg.hidden_size,
         m->base_numel + lower + upper, lower + upper,
         100.0 * (lower + upper) / (double)(m->base_numel + lower + upper), lower, upper, cfg->method,
         cfg->rank, cfg->alpha, cfg->targets, m->be->name);
    r->done.trainable_params = lower + upper;
    r->done.upper_params = upper;
    r->done.total_params = m->base_numel + lower + upper;
    return 0;
}

int run_create(Run **out, const TrainConfig *cfg_in, const TrainCallbacks *cb, char *err, size_t errlen) {
    *out = NULL;
    Run *r = calloc(1, sizeof(*r));
    if (!r) { snprintf(err, errlen, "out of memory"); return -1; }
    r->cfg = *cfg_in;
    if (cb) r->cb = *cb;
    char unused[512];
    train_config_unused(&r->cfg, unused, sizeof unused); /* before "auto" values are resolved */
    if (train_config_check(&r->cfg, err, errlen) != 0) { free(r); return -1; }
    r->cfg0 = r->cfg;
    if (unused[0])
        info(&r->cb, "note: %s %s no effect with --method %s%s%s", unused, strchr(unused, ',') ? "have" : "has",
             r->cfg.method, is_bilevel(r->cfg.method) ? " and --hypergrad " : "",
             is_bilevel(r->cfg.method) ? r->cfg.hypergrad : "");
    const TrainConfig *cfg = &r->cfg;
    r->bilevel = is_bilevel(cfg->method);
    if (setup_data(r, err, errlen) != 0) { run_free(r); return -1; }
    Model *m = r->model;
    const Backend *be = m->be;
    const int B = cfg->batch_size;

    r->n_train = r->train.n;
    if (cfg->overfit_batch > 0 && cfg->overfit_batch < r->n_train) r->n_train = cfg->overfit_batch;
    if (r->bilevel && r->n_train < 2) { /* D1 and D2 each need an example */
        snprintf(err, errlen, "%s needs at least 2 training examples (one for D1, one for D2); "
                 "--overfit-batch %d leaves %d", cfg->method, cfg->overfit_batch, r->n_train);
        return -1;
    }
    int shuffle_on = cfg->overfit_batch <= 0;
    uint64_t data_rng = rng_derive(cfg->seed, 2);
    r->all = (Stream){.idx = malloc(sizeof(int) * r->n_train), .n = r->n_train, .rng = data_rng,
                      .shuffle = shuffle_on};
    r->d1 = (Stream){.idx = malloc(sizeof(int) * r->n_train), .rng = rng_derive(cfg->seed, 5),
                     .shuffle = shuffle_on};
    r->d2 = (Stream){.idx = malloc(sizeof(int) * r->n_train), .rng = rng_derive(cfg->seed, 6),
                     .shuffle = shuffle_on};
    r->bidx = malloc(sizeof(int) * B);
    r->b1idx = malloc(sizeof(int) * B);
    if (!r->all.idx || !r->d1.idx || !r->d2.idx || !r->bidx || !r->b1idx) goto oom;
    for (int i = 0; i < r->n_train; i++) r->all.idx[i] = i;
    if (shuffle_on) shuffle(r->all.idx, r->n_train, &r->all.rng);
    split_d1_d2(r->n_train, cfg->split_ratio, cfg->seed, r->d1.idx, &r->d1.n, r->d2.idx, &r->d2.n);
    if (shuffle_on) {
        shuffle(r->d1.idx, r->d1.n, &r->d1.rng);
        shuffle(r->d2.idx, r->d2.n, &r->d2.rng);
    }
    if (r->bilevel)
        info(&r->cb, "split: D1 %d / D2 %d examples (ratio %g, seed %llu); dev untouched", r->d1.n,
             r->d2.n, cfg->split_ratio, (unsigned long long)cfg->seed);
    if (r->bilevel && !strcmp(cfg->method, "bilora") && cfg->rank == 1 && !strcmp(cfg->lambda, "softmax"))
        info(&r->cb, "note: with --rank 1 the softmax λ is the constant 1, so the upper level has nothing to "
             "learn; --lambda sigmoid or real gives it a free value");

    /* the training examples scored at each evaluation: a fixed seeded sample */
    r->n_te = cfg->eval_train_examples < r->train.n ? cfg->eval_train_examples : r->train.n;
    if (cfg->overfit_batch > 0) r->n_te = r->n_train;
    r->train_eval_idx = malloc(sizeof(int) * (r->train.n > 0 ? r->train.n : 1));
    int dev_max = 1;
    for (int d = 0; d < r->n_dev; d++) if (r->dev[d].n > dev_max) dev_max = r->dev[d].n;
    r->dev_idx = malloc(sizeof(int) * dev_max);
    if (!r->train_eval_idx || !r->dev_idx) goto oom;
    for (int i = 0; i < r->train.n; i++) r->train_eval_idx[i] = i;
    if (shuffle_on) {
        uint64_t erng = rng_derive(cfg->seed, 3);
        shuffle(r->train_eval_idx, r->train.n, &erng);
    }

    long steps_per_epoch = ((r->bilevel ? r->d1.n : r->n_train) + B - 1) / B;
    if (r->bilevel) steps_per_epoch = (steps_per_epoch + cfg->lower_steps - 1) / cfg->lower_steps;
    r->phase1_total = cfg->steps > 0 ? cfg->steps : steps_per_epoch * cfg->epochs;
    r->total = r->phase1_total + (!strcmp(cfg->method, "bidora") ? cfg->phase2_steps : 0);
    r->warmup = (long)(cfg->warmup_ratio * r->phase1_total);
    r->epoch_steps = steps_per_epoch;
    r->eval_every = cfg->eval_every > 0 ? cfg->eval_every : steps_per_epoch;
    r->spectrum_default = r->eval_every;
    r->spectrum_every = cfg->spectrum_every > 0 ? cfg->spectrum_every : r->spectrum_default;
    r->phase = 1;

    if (adamw_init(&r->opt_lower, be, &m->params, GROUP_LOWER, cfg->lower_weight_decay, err, errlen) != 0 ||
        adamw_init(&r->opt_upper, be, &m->params, GROUP_UPPER, cfg->upper_weight_decay, err, errlen) != 0) {
        run_free(r);
        return -1;
    }
    if (r->bilevel) {
        size_t nl = param_list_numel(&m->params, GROUP_LOWER), nu = param_list_numel(&m->params, GROUP_UPPER);
        if (hyperwork_init(&r->hw, be, nl, nu) != 0) goto oom;
        if (!(r->hyper = be->alloc(sizeof(float) * (nu ? nu : 1)))) goto oom;
        hypergrad_parse(cfg->hypergrad, &r->ho.method);
        r->ho.darts_radius = cfg->darts_radius;
        r->ho.darts_xi = cfg->darts_xi;
        r->ho.neumann_steps = cfg->neumann_steps;
        r->ho.neumann_alpha = cfg->neumann_alpha;
        r->init_lower = malloc(sizeof(float) * (nl ? nl : 1));
        if (!r->init_lower) goto oom;
        float *tmp = be->alloc(sizeof(float) * (nl ? nl : 1));
        if (!tmp) goto oom;
        group_gather(be, &m->params, GROUP_LOWER, 0, tmp);
        be->download(r->init_lower, tmp, sizeof(float) * nl);
        be->release(tmp);
    }
    if (m->adapter.form == ADAPTER_DORA) {
        size_t n = 0;
        for (int i = 0; i < m->params.n; i++)
            if (strstr(m->params.t[i].name, "lora_magnitude_vector")) n += m->params.t[i].numel;
        r->m0 = malloc(sizeof(float) * (n ? n : 1));
        if (!r->m0) goto oom;
        size_t off = 0;
        for (int i = 0; i < m->params.n; i++)
            if (strstr(m->params.t[i].name, "lora_magnitude_vector")) {
                be->download(r->m0 + off, m->params.t[i].data, sizeof(float) * m->params.t[i].numel);
                off += m->params.t[i].numel;
            }
    }
    if (!strcmp(cfg->method, "adalora")) {
        size_t n = param_list_numel(&m->params, GROUP_LOWER);
        r->ipt_avg = calloc(n ? n : 1, sizeof(float));
        r->unc_avg = calloc(n ? n : 1, sizeof(float));
        if (!r->ipt_avg || !r->unc_avg) goto oom;
    }
    r->t0 = r->t_last = now_s();
    *out = r;
    return 0;
oom:
    snprintf(err, errlen, "out of memory setting up the run");
    run_free(r);
    return -1;
}

/* ---- AdaLoRA: importance-score rank allocation (PEFT's RankAllocator) ----
 * s(w) = Ī(w)·Ū(w), Ī = EMA(|w·∇w|, β1 = 0.85), Ū = EMA(|I − Ī|, β2 = 0.85);
 * a triplet's score is s(λ_i) + mean_j s(Q_ij) + mean_j s(P_ji). The budget
 * (total kept triplets) stays at rank·n for the first tinit of the steps,
 * falls cubically to target_rank·n, and is held for the last tfinal; every
 * delta_t steps the λ_i below the budget's threshold are set to 0. */
static void adalora_update(Run *r) {
    Model *m = r->model;
    const Backend *be = m->be;
    const float b1 = 0.85f, b2 = 0.85f;
    size_t off = 0;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (p->group != GROUP_LOWER) continue;
        if (strstr(p->name, ".lora_")) {
            float *w = malloc(sizeof(float) * p->numel), *g = malloc(sizeof(float) * p->numel);
            if (w && g) {
                be->download(w, p->data, sizeof(float) * p->numel);
                be->download(g, p->grad, sizeof(float) * p->numel);
                for (size_t k = 0; k < p->numel; k++) {
                    float ipt = fabsf(w[k] * g[k]);
                    float *ia = &r->ipt_avg[off + k], *ua = &r->unc_avg[off + k];
                    *ia = b1 * *ia + (1 - b1) * ipt;
                    *ua = b2 * *ua + (1 - b2) * fabsf(ipt - *ia);
                }
            }
            free(w);
            free(g);
        }
        off += p->numel;
    }
    long T = r->phase1_total, t = r->step;
    long ti = (long)(r->cfg.tinit * T), tf = (long)(r->cfg.tfinal * T);
    if (t <= ti || (t % r->cfg.delta_t != 0 && t < T - tf)) return;
    int n_ad = 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int k = 0; k < TARGET_COUNT; k++) n_ad += (m->adapter.targets >> k) & 1;
    int R = m->adapter.rank;
    double init_b = (double)R * n_ad, target_b = (double)r->cfg.target_rank * n_ad;
    double budget;
    if (t >= T - tf) budget = target_b;
    else {
        double frac = 1.0 - (double)(t - ti) / (double)(T - tf - ti);
        budget = target_b + (init_b - target_b) * frac * frac * frac;
    }
    /* triplet scores */
    float *scores = malloc(sizeof(float) * (size_t)R * n_ad);
    if (!scores) return;
    int a = 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int k = 0; k < TARGET_COUNT; k++) {
            if (!(m->adapter.targets & (1 << k))) continue;
            Adapter *ad = &m->layers[l].adapters[k];
            /* find the offsets of this adapter's A, B, E in the lower vector */
            size_t o = 0, oa = 0, ob = 0, oe = 0;
            for (int i = 0; i < m->params.n; i++) {
                ParamTensor *p = &m->params.t[i];
                if (p->group != GROUP_LOWER) continue;
                if (p->data == ad->A) oa = o;
                if (p->data == ad->B) ob = o;
                if (p->data == ad->E) oe = o;
                o += p->numel;
            }
            for (int j = 0; j < R; j++) {
                double sa = 0, sb = 0;
                for (int c = 0; c < ad->in; c++) {
                    size_t q = oa + (size_t)j * ad->in + c;
                    sa += r->ipt_avg[q] * r->unc_avg[q];
                }
                for (int c = 0; c < ad->out; c++) {
                    size_t q = ob + (size_t)c * R + j;
                    sb += r->ipt_avg[q] * r->unc_avg[q];
                }
                size_t qe = oe + j;
                scores[a * R + j] = (float)(r->ipt_avg[qe] * r->unc_avg[qe] + sa / ad->in + sb / ad->out);
            }
            a++;
        }
    int keep = (int)budget, total = R * n_ad;
    if (keep < total) {
        float *sorted = malloc(sizeof(float) * total);
        if (sorted) {
            memcpy(sorted, scores, sizeof(float) * total);
            /* threshold: the (total-keep)-th smallest score */
            for (int i = 1; i < total; i++) {
                float v = sorted[i];
                int j = i - 1;
                while (j >= 0 && sorted[j] > v) { sorted[j + 1] = sorted[j]; j--; }
                sorted[j + 1] = v;
            }
            float thr = sorted[total - keep - 1];
            a = 0;
            for (int l = 0; l < m->cfg.num_hidden_layers; l++)
                for (int k = 0; k < TARGET_COUNT; k++) {
                    if (!(m->adapter.targets & (1 << k))) continue;
                    Adapter *ad = &m->layers[l].adapters[k];
                    float *e = malloc(sizeof(float) * R);
                    if (e) {
                        be->download(e, ad->E, sizeof(float) * R);
                        for (int j = 0; j < R; j++)
                            if (scores[a * R + j] <= thr) e[j] = 0.0f;
                        be->upload(ad->E, e, sizeof(float) * R);
                        free(e);
                    }
                    a++;
                }
            free(sorted);
        }
    }
    free(scores);
}

static int publish_spectrum(Run *r, char *err, size_t errlen) {
    if (!r->cb.on_spectrum) return 0;
    SpectrumInfo s;
    if (spectrum_compute(r->model, r->m0, &s, err, errlen) != 0) { spectrum_free(&s); return -1; }
    s.step = r->step;
    r->cb.on_spectrum(r->cb.ctx, &s);
    spectrum_free(&s);
    return 0;
}

static void record_eval(Run *r, const EvalInfo *e) {
    if (r->n_hist_evals == r->cap_hist_evals) {
        int cap = r->cap_hist_evals ? 2 * r->cap_hist_evals : 64;
        EvalRecord *h = realloc(r->hist_evals, sizeof(*h) * cap);
        if (!h) return;
        r->hist_evals = h;
        r->cap_hist_evals = cap;
    }
    EvalRecord *x = &r->hist_evals[r->n_hist_evals++];
    x->step = e->step;
    snprintf(x->split, sizeof(x->split), "%s", e->split);
    x->loss = (float)e->loss;
    x->metric = e->metrics.n ? (float)e->metrics.value[e->metrics.primary] : NAN;
    x->n_more = 0;
    for (int k = 0; k < e->metrics.n && x->n_more < METRICS_MAX - 1; k++)
        if (k != e->metrics.primary) x->more[x->n_more++] = (float)e->metrics.value[k];
}

static int run_evaluations(Run *r, char *err, size_t errlen) {
    EvalInfo ev;
    memset(&ev, 0, sizeof(ev));
    ev.step = r->step;
    ev.split = "train";
    if (r->n_te > 0) { /* --eval-train-examples 0: no train-subset evaluation, not a loss of 0 */
        if (evaluate(r, &r->train, r->train_eval_idx, r->n_te, &ev, err, errlen) != 0) return -1;
        if (r->cb.on_eval) r->cb.on_eval(r->cb.ctx, &ev);
        record_eval(r, &ev);
        r->done.last_train = ev;
    } else {
        r->done.last_train.loss = NAN;
    }
    for (int d = 0; d < r->n_dev && r->cfg.overfit_batch <= 0; d++) {
        EvalInfo dv;
        memset(&dv, 0, sizeof(dv));
        dv.step = r->step;
        dv.split = r->lm ? "dev" : r->task->dev_splits[d];
        for (int i = 0; i < r->dev[d].n; i++) r->dev_idx[i] = i;
        if (evaluate(r, &r->dev[d], r->dev_idx, r->dev[d].n, &dv, err, errlen) != 0) return -1;
        if (r->lm && r->gen_n > 0 && generate_bleu(r, &dv, err, errlen) != 0) return -1;
        if (r->cb.on_eval) r->cb.on_eval(r->cb.ctx, &dv);
        record_eval(r, &dv);
        if (d == 0) { r->done.last_dev = dv; r->done.has_dev = 1; }
    }
    return 0;
}

/* One single-level step on a batch from stream s: returns the loss. */
static double lower_step(Run *r, Stream *s, float lr, uint64_t seed, int *idx_out, int *nb_out,
                         double *gn, char *err, size_t errlen) {
    Model *m = r->model;
    int nb = stream_next(s, r->bidx, r->cfg.batch_size);
    if (idx_out) memcpy(idx_out, r->bidx, sizeof(int) * nb);
    if (nb_out) *nb_out = nb;
    Batch bt;
    if (batch_build(&r->train, r->bidx, nb, r->pad, &bt) != 0) {
        snprintf(err, errlen, "out of memory");
        return NAN;
    }
    model_zero_grad(m);
    if (model_forward(m, &bt, 1, seed, err, errlen) != 0) { batch_free(&bt); return NAN; }
    double loss = model_loss(m, &bt, 1.0f, NULL);
    batch_free(&bt);
    model_backward(m, seed);
    /* R1's gradient joins the task loss's; the reported loss stays the task loss */
    if (r->cfg.gamma1 > 0 && m->adapter.form == ADAPTER_SVD && r->phase == 1)
        r->last_reg = model_orth_reg(m, r->cfg.gamma1);
    *gn = clip_grad_norm(m->be, &m->params, GROUP_LOWER, r->cfg.max_grad_norm);
    if (isfinite(loss) && isfinite(*gn)) { /* a non-finite gradient is not applied either */
        adamw_step(&r->opt_lower, lr);
        /* after the step, as PEFT's update_and_allocate: importance from
         * the stepped weights and this step's gradients, then the pruned λ
         * set to 0, so the model evaluated and saved has the budget's rank
         * (masked before the step, Adam's momentum moved them off 0 again) */
        if (!strcmp(r->cfg.method, "adalora")) adalora_update(r);
    }
    return loss;
}

int run_step(Run *r, char *err, size_t errlen) {
    err[0] = 0;
    if (r->step >= r->total) return 1;
    const TrainConfig *cfg = &r->cfg;
    Model *m = r->model;
    const Backend *be = m->be;
    r->step++;
    if (r->phase == 1 && r->step > r->phase1_total) {
        /* bidora phase 2: A, B restart from their initial values; m stays */
        r->phase = 2;
        float *tmp = be->alloc(sizeof(float) * r->hw.nl);
        if (!tmp) { snprintf(err, errlen, "out of memory"); return -1; }
        be->upload(tmp, r->init_lower, sizeof(float) * r->hw.nl);
        /* restore only the adapters' A and B, keep the head */
        size_t off = 0;
        for (int i = 0; i < m->params.n; i++) {
            ParamTensor *p = &m->params.t[i];
            if (p->group != GROUP_LOWER) continue;
            if (strstr(p->name, ".lora_A") || strstr(p->name, ".lora_B"))
                be->copy(p->data, tmp + off, sizeof(float) * p->numel);
            off += p->numel;
        }
        be->release(tmp);
        adamw_free(&r->opt_lower);
        if (adamw_init(&r->opt_lower, be, &m->params, GROUP_LOWER, cfg->lower_weight_decay, err, errlen) != 0)
            return -1;
        info(&r->cb, "bidora phase 2: direction (A, B) restarted from its initial values, trained on "
             "all %d examples for %ld steps with the learned magnitude fixed", r->n_train,
             cfg->phase2_steps);
    }
    uint64_t seed = rng_derive(cfg->seed, 1000003ULL + (uint64_t)r->step * 64);
    StepInfo si = {.step = r->step, .total_steps = r->total, .phase = r->phase,
                   .upper_loss = NAN, .hypergrad_norm = NAN, .upper_lr = NAN};
    int examples = 0;
    double gn = 0;
    if (r->phase == 2) {
        long t2 = r->step - r->phase1_total - 1;
        si.lr = lr_linear_schedule(cfg->phase2_lr, t2, (long)(cfg->warmup_ratio * cfg->phase2_steps),
                                   cfg->phase2_steps);
        int nb;
        si.loss = lower_step(r, &r->all, si.lr, seed, NULL, &nb, &gn, err, errlen);
        examples = nb;
    } else if (!r->bilevel) {
        si.lr = lr_linear_schedule(cfg->lower_lr, r->step - 1, r->warmup, r->phase1_total);
        int nb;
        si.loss = lower_step(r, &r->all, si.lr, seed, NULL, &nb, &gn, err, errlen);
        examples = nb;
    } else {
        si.lr = lr_linear_schedule(cfg->lower_lr, r->step - 1, r->warmup, r->phase1_total);
        si.upper_lr = lr_linear_schedule(cfg->upper_lr, r->step - 1, r->warmup, r->phase1_total);
        int n1 = 0;
        for (int k = 0; k < cfg->lower_steps; k++) {
            si.loss = lower_step(r, &r->d1, si.lr, seed + 1 + k, r->b1idx, &n1, &gn, err, errlen);
            examples += n1;
            if (!isfinite(si.loss) || !isfinite(gn)) break;
        }
        Batch b1, b2;
        if (isfinite(si.loss) && isfinite(gn) && batch_build(&r->train, r->b1idx, n1, r->pad, &b1) == 0) {
            for (int k = 0; k < cfg->upper_steps; k++) {
                int n2 = stream_next(&r->d2, r->bidx, cfg->batch_size);
                examples += n2;
                if (batch_build(&r->train, r->bidx, n2, r->pad, &b2) != 0) break;
                ModelProblem mp = {.m = m, .batch = {NULL, &b1, &b2},
                                   .seed = {0, seed + 1 + cfg->lower_steps - 1, seed + 32 + k},
                                   .train = 1, .gamma1 = cfg->gamma1, .gamma2 = cfg->gamma2};
                if (m->adapter.form != ADAPTER_SVD) mp.gamma1 = mp.gamma2 = 0;
                HyperProblem pb;
                model_problem_bind(&pb, &mp);
                /* the hypergradient lands in the upper group's gradients */
                double l2;
                hypergrad_compute(&pb, &r->ho, NULL, r->hyper, &r->hw, &l2, NULL);
                if (r->hw.neumann_growth > 1.0 && !r->warned_neumann) {
                    r->warned_neumann = 1; /* once per run: the log, not a flood */
                    info(&r->cb, "step %ld: the neumann series grows (its last term is %.3g× its first): "
                         "--neumann-alpha %g is too large for this model's lower-level curvature, and the "
                         "hypergradient is dominated by its largest eigenvector; try a smaller alpha",
                         r->step, r->hw.neumann_growth, cfg->neumann_alpha);
                }
                group_scatter(be, &m->params, GROUP_UPPER, 1, r->hyper);
                si.upper_loss = l2;
                si.hypergrad_norm = clip_grad_norm(be, &m->params, GROUP_UPPER, cfg->max_grad_norm);
                if (isfinite(l2) && isfinite(si.hypergrad_norm)) adamw_step(&r->opt_upper, si.upper_lr);
                batch_free(&b2);
            }
            batch_free(&b1);
        }
    }
    if (err[0]) return -1; /* a real failure (allocation, batch), not divergence */
    int up = r->bilevel && r->phase == 1;
    const char *bad = !isfinite(si.loss)                     ? "the lower loss"
                      : !isfinite(gn)                        ? "the lower gradient"
                      : up && !isfinite(si.upper_loss)       ? "the upper loss"
                      : up && !isfinite(si.hypergrad_norm)   ? "the hypergradient"
                                                             : NULL;
    if (bad) {
        const RunChange *last = r->n_changes ? &r->changes[r->n_changes - 1] : NULL;
        char lastc[160] = "no live change so far";
        if (last) snprintf(lastc, sizeof(lastc), "last change: %s = %s at step %ld", last->key, last->value, last->step);
        snprintf(err, errlen, "%s became non-finite at step %ld (lower lr %g, upper lr %g; %s); "
                 "the step's update was skipped", bad, r->step, si.lr, si.upper_lr, lastc);
        return RUN_DIVERGED;
    }
    double t = now_s();
    si.grad_norm = gn;
    si.reg = m->adapter.form == ADAPTER_SVD ? r->last_reg : NAN;
    si.epoch = epoch_at(r, r->step, r->phase);
    si.examples_per_s = examples / (t - r->t_last);
    si.step_seconds = t - r->t_last;
    r->t_last = t;
    if (r->cb.on_step) r->cb.on_step(r->cb.ctx, &si);
    if (r->n_hist_steps == r->cap_hist_steps) {
        int cap = r->cap_hist_steps ? 2 * r->cap_hist_steps : 256;
        StepRecord *h = realloc(r->hist_steps, sizeof(*h) * cap);
        if (h) { r->hist_steps = h; r->cap_hist_steps = cap; }
    }
    if (r->n_hist_steps < r->cap_hist_steps)
        r->hist_steps[r->n_hist_steps++] = (StepRecord){r->step, (float)si.loss, (float)si.upper_loss};
    r->done.final_train_loss = si.loss;
    r->done.steps = r->step;
    if (run_evaluates_at(r, r->step)) {
        if (run_evaluations(r, err, errlen) != 0) return -1;
    }
    if (r->step % r->spectrum_every == 0 || r->step == r->total)
        if (publish_spectrum(r, err, errlen) != 0) return -1;
    r->t_last = now_s(); /* evaluation time is not training throughput */
    return r->step >= r->total ? 1 : 0;
}

void run_finish(Run *r) {
    r->done.seconds = now_s() - r->t0;
    if (r->cb.on_done) r->cb.on_done(r->cb.ctx, &r->done);
}

int train_run(const TrainConfig *cfg, const TrainCallbacks *cb, char *err, size_t errlen) {
    Run *r;
    err[0] = 0;
    if (run_create(&r, cfg, cb, err, errlen) != 0) return -1;
    int rc;
    while ((rc = run_step(r, err, errlen)) == 0) {}
    if (rc == RUN_DIVERGED) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "; stopping instead of training on garbage");
    }
    if (rc == 1) run_finish(r);
    run_free(r);
    return rc == 1 ? 0 : -1;
}

/* ---- live changes ---- */

long run_step_index(const Run *r) { return r->step; }
long run_total_steps(const Run *r) { return r->total; }
const TrainConfig *run_config(const Run *r) { return &r->cfg; }
const TrainConfig *run_initial_config(const Run *r) { return &r->cfg0; }
const RunChange *run_changes(const Run *r, int *n) {
    *n = r->n_changes;
    return r->changes;
}

static const char *const HOT[] = {"lower_lr", "upper_lr", "lower_steps", "upper_steps", "gamma1",
                                  "gamma2", "hypergrad", "eval_every", "spectrum_every",
                                  "split_ratio"};

int run_param_is_hot(const char *key) {
    for (size_t i = 0; i < sizeof(HOT) / sizeof(HOT[0]); i++)
        if (!strcmp(key, HOT[i])) return 1;
    return 0;
}

static int parse_num(const char *key, const char *text, double lo, double hi, double *out, char *err,
                     size_t errlen) {
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !isfinite(v) || v < lo || v > hi) {
        snprintf(err, errlen, "%s: expected a number in [%g, %g], got '%s'", key, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Re-splits D1/D2 with the run's seed and the new ratio; the streams
 * restart their passes. */
static void resplit(Run *r) {
    split_d1_d2(r->n_train, r->cfg.split_ratio, r->cfg.seed, r->d1.idx, &r->d1.n, r->d2.idx, &r->d2.n);
    r->d1.cursor = r->d2.cursor = 0;
    if (r->d1.shuffle) {
        shuffle(r->d1.idx, r->d1.n, &r->d1.rng);
        shuffle(r->d2.idx, r->d2.n, &r->d2.rng);
    }
}

int run_set(Run *r, const char *key, const char *text, char *err, size_t errlen) {
    if (!run_param_is_hot(key)) {
        snprintf(err, errlen, "%s cannot change during a run (it needs a new run); live settings: "
                 "lower_lr, upper_lr, lower_steps, upper_steps, gamma1, gamma2, hypergrad, "
                 "eval_every, spectrum_every, split_ratio", key);
        return -1;
    }
    TrainConfig *c = &r->cfg;
    double v = 0;
    if (!strcmp(key, "hypergrad")) {
        HypergradMethod hm;
        if (hypergrad_parse(text, &hm) != 0) {
            snprintf(err, errlen, "hypergrad: expected first-order, darts or neumann, got '%s'", text);
            return -1;
        }
        snprintf(c->hypergrad, sizeof(c->hypergrad), "%s", text);
        r->ho.method = hm;
    } else if (!strcmp(key, "lower_lr") || !strcmp(key, "upper_lr")) {
        if (parse_num(key, text, 1e-9, 10, &v, err, errlen)) return -1;
        *(!strcmp(key, "lower_lr") ? &c->lower_lr : &c->upper_lr) = (float)v;
    } else if (!strcmp(key, "lower_steps") || !strcmp(key, "upper_steps")) {
        if (parse_num(key, text, 1, 1000, &v, err, errlen)) return -1;
        *(!strcmp(key, "lower_steps") ? &c->lower_steps : &c->upper_steps) = (int)v;
    } else if (!strcmp(key, "gamma1") || !strcmp(key, "gamma2")) {
        if (parse_num(key, text, 0, 1e6, &v, err, errlen)) return -1;
        *(!strcmp(key, "gamma1") ? &c->gamma1 : &c->gamma2) = (float)v;
    } else if (!strcmp(key, "eval_every") || !strcmp(key, "spectrum_every")) {
        /* 0: what it means at creation (every epoch; the spectrum with the
         * evaluations as first planned), so a resume recomputes the same */
        if (parse_num(key, text, 0, 1e9, &v, err, errlen)) return -1;
        if (!strcmp(key, "eval_every")) {
            c->eval_every = (long)v;
            r->eval_every = v > 0 ? (long)v : r->epoch_steps;
        } else {
            c->spectrum_every = (long)v;
            r->spectrum_every = v > 0 ? (long)v : r->spectrum_default;
        }
    } else if (!strcmp(key, "split_ratio")) {
        if (parse_num(key, text, 1e-6, 1 - 1e-6, &v, err, errlen)) return -1;
        c->split_ratio = (float)v;
        resplit(r);
    }
    if (r->n_changes == r->cap_changes) {
        int cap = r->cap_changes ? 2 * r->cap_changes : 16;
        RunChange *nc = realloc(r->changes, sizeof(*nc) * cap);
        if (!nc) { snprintf(err, errlen, "out of memory"); return -1; }
        r->changes = nc;
        r->cap_changes = cap;
    }
    RunChange *ch = &r->changes[r->n_changes++];
    ch->step = r->step + 1; /* takes effect at the next step */
    snprintf(ch->key, sizeof(ch->key), "%s", key);
    snprintf(ch->value, sizeof(ch->value), "%s", text);
    return 0;
}

int run_evaluate_now(Run *r, char *err, size_t errlen) { return run_evaluations(r, err, errlen); }
