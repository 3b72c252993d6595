/* One fine-tuning run on a GLUE task or on E2E (data-to-text, a gpt2): data, model, optimizers and the loop,
 * for every method: lora, dora, svd, adalora (single level) and bilora,
 * bidora (bi-level). Front ends fill a TrainConfig (the field names are the
 * CLI flags with '-' for '_', and the JSON keys), then either call train_run
 * (to completion) or drive a Run step by step (the trainer thread does). */
#ifndef BILORA_ENGINE_TRAIN_H
#define BILORA_ENGINE_TRAIN_H

#include "datasets/metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char model[1024];       /* directory or name on the asset path */
    char task[64];          /* GLUE task name, or "e2e" */
    char data[1024];        /* task directory; empty: found on the asset path */
    char method[16];        /* lora | dora | svd | adalora | bilora | bidora */
    int rank;
    float alpha;
    float lora_dropout;
    char targets[128];      /* "query,value" */
    char lambda[16];        /* svd forms: auto | real | softmax | sigmoid */
    char svd_init[16];      /* svd forms: adalora | lora */
    float lower_lr;         /* (--lr) the lower level / single-level learning rate */
    float upper_lr;
    float lower_weight_decay; /* (--weight-decay) */
    float upper_weight_decay;
    float warmup_ratio;
    float max_grad_norm;
    int batch_size;
    int max_seq_len;
    int epochs;
    long steps;             /* > 0 overrides epochs (global steps for bi-level methods) */
    long eval_every;        /* 0: at the end of every epoch */
    long spectrum_every;    /* 0: with every evaluation */
    int eval_train_examples;/* training examples scored at each evaluation */
    int eval_generate;      /* E2E: distinct dev meaning representations generated (greedy) at
                               each evaluation and scored by BLEU against all their references
                               (0: none) */
    uint64_t seed;
    char device[16];        /* "cpu" */
    int overfit_batch;      /* > 0: train on a fixed first batch of this many examples */
    /* bi-level */
    float split_ratio;      /* |D1| / |D| */
    int lower_steps;        /* T1 */
    int upper_steps;        /* T2 */
    float gamma1;           /* R1 weight (orthogonality of P, Q) */
    float gamma2;           /* R2 weight (entropy of sigmoid λ) */
    char hypergrad[16];     /* first-order | darts | neumann */
    float darts_radius;
    float darts_xi;         /* <= 0: no factor (Betty) */
    int neumann_steps;
    float neumann_alpha;
    long phase2_steps;      /* bidora: direction retraining with m fixed */
    float phase2_lr;
    /* adalora */
    int target_rank;        /* average rank kept at the end */
    float tinit, tfinal;    /* fractions of the steps: warm-up / final fine-tuning */
    int delta_t;            /* steps between budget reallocations */
} TrainConfig;

void train_config_defaults(TrainConfig *c);
/* A task's canonical name: "sst2" -> "SST-2", "data/e2e" -> "E2E"; NULL when
 * it is no task (front ends store this spelling, so sessions list alike). */
const char *train_task_name(const char *task);
/* The metrics a run of this config reports, the headline first (MRPC: f1,
 * accuracy; E2E: perplexity, and bleu with --eval-generate); the count. */
int train_metric_names(const TrainConfig *c, const char **names, int cap);
/* The settings with a non-default value that this method (and, bi-level,
 * this hypergradient) does not use, as "--upper-lr 0.001, --lambda softmax";
 * empty when none. A run says so in an info line. */
void train_config_unused(const TrainConfig *c, char *out, size_t cap);
/* Fills method-dependent defaults left at "auto" and checks every value;
 * -1 with a message naming the flag and the allowed range. */
int train_config_check(TrainConfig *c, char *err, size_t errlen);

typedef struct {
    long step, total_steps;
    int phase;              /* 1; bidora's direction retraining is 2 */
    double epoch;           /* fractional passes: over the training set, D1 for bi-level
                               phase 1, all of D again from 0 in bidora's phase 2 */
    double loss;            /* L1: the lower / single-level task loss */
    double reg;             /* R1 (svd forms; NAN otherwise), weighted by gamma1 in training */
    double upper_loss;      /* L2 (bi-level methods; NAN otherwise) */
    double hypergrad_norm;  /* ‖hypergradient‖ (bi-level; NAN otherwise) */
    float lr, upper_lr;
    double grad_norm;
    double examples_per_s;
    double step_seconds;    /* wall time of this step */
} StepInfo;

typedef struct {
    long step;
    const char *split;      /* "train" or "dev" (MNLI: "dev_matched", ...) */
    double loss;
    MetricSet metrics;
    int examples;
} EvalInfo;

#define SPECTRUM_NAME 32
typedef struct {
    char name[SPECTRUM_NAME];   /* "L3.query" */
    int n;                      /* values in this matrix (rank; adalora: kept) */
    float *values;              /* descending */
    double orth;                /* svd: ‖PᵀP−I‖ + ‖QQᵀ−I‖ (else NAN) */
    double magnitude_change;    /* dora: ‖m − m0‖ / ‖m0‖ (else NAN) */
    double direction_change;    /* dora: ‖BA‖_F·s / ‖W0‖_F (else NAN) */
} SpectrumRow;

typedef struct {
    long step;
    int n;
    SpectrumRow *rows;
} SpectrumInfo;

typedef struct {
    long steps;
    double seconds;
    double final_train_loss;
    EvalInfo last_dev, last_train;
    int has_dev;
    size_t trainable_params, total_params, upper_params;
} DoneInfo;

typedef struct {
    void *ctx;
    void (*on_info)(void *ctx, const char *message);   /* set-up lines (data sizes, model) */
    void (*on_step)(void *ctx, const StepInfo *s);
    void (*on_eval)(void *ctx, const EvalInfo *e);
    void (*on_spectrum)(void *ctx, const SpectrumInfo *s);
    void (*on_done)(void *ctx, const DoneInfo *d);
} TrainCallbacks;

typedef struct Run Run;

/* A live change of a hot setting, logged with the step it took effect. */
typedef struct {
    long step;
    char key[32];      /* the TrainConfig field: "lower_lr", "split_ratio", ... */
    char value[32];
} RunChange;

#define RUN_DIVERGED 2  /* run_step: the loss became NaN/inf (update skipped) */

int run_create(Run **out, const TrainConfig *cfg, const TrainCallbacks *cb, char *err, size_t errlen);
/* Calls the run's on_step and on_eval once for every step and evaluation in
 * its history, in order (a loaded run's past, for a front end that draws
 * curves): losses and the headline metric, as recorded; 0 s per step. */
void run_replay_history(Run *r);
/* 1 when run_step at this step evaluates (the train subset and dev): a
 * front end can say so, since an evaluation takes longer than a step. */
int run_evaluates_at(const Run *r, long step);
/* A line for the run's on_info callback (what a driver did: "saved session"). */
void run_info(Run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One global step (and its evaluation when due). 1 when the run is
 * complete, 0 to go on, RUN_DIVERGED when the loss became non-finite (err
 * names the step and the last live change), -1 on error (err filled). */
int run_step(Run *r, char *err, size_t errlen);
/* Emits on_done. */
void run_finish(Run *r);
void run_free(Run *r);

/* Hot settings change at the next step boundary: lower_lr, upper_lr,
 * lower_steps, upper_steps, gamma1, gamma2, hypergrad, eval_every,
 * spectrum_every, split_ratio (re-splits D1/D2 with the run's seed). Any
 * other key is cold (needs a new run) and refused. Each change is logged. */
int run_param_is_hot(const char *key);
int run_set(Run *r, const char *key, const char *value, char *err, size_t errlen);
const RunChange *run_changes(const Run *r, int *n);
int run_evaluate_now(Run *r, char *err, size_t errlen);
/* E2E runs: the greedy continuation of a meaning representation with the
 * run's model as it is now ("MR ||" prompt, up to the run's sequence
 * allocation or the end token; valid UTF-8, control characters as spaces),
 * what --eval-generate scores. *text malloc'd. -1 for a GLUE run. */
int run_generate(Run *r, const char *input, char **text, char *err, size_t errlen);
long run_step_index(const Run *r);
long run_total_steps(const Run *r);
const TrainConfig *run_config(const Run *r);          /* current values */
const TrainConfig *run_initial_config(const Run *r);  /* as created (a resume starts from it) */

/* ---- state: everything needed to continue a run exactly ----
 * A run's state is a JSON object (counters, PRNG states, cursors, the change
 * log, the metric history) plus named binary blobs (every trainable tensor,
 * both optimizers' moments, the data orders, ...). The sessions layer stores
 * them; run_state_import on a freshly created run with the same config
 * continues it bit for bit. */
typedef enum { BLOB_F32 = 0, BLOB_I32 = 1 } BlobType;
typedef struct {
    char name[160];
    BlobType type;
    size_t count;       /* elements */
    void *data;         /* host memory owned by the RunState */
} StateBlob;

struct cJSON;
typedef struct {
    struct cJSON *json; /* owned */
    StateBlob *blobs;
    int n;
} RunState;

int run_state_export(Run *r, RunState *out, char *err, size_t errlen);
void run_state_free(RunState *s);
/* get_blob copies blob `name` (of the given type and count) into dst, or
 * fails with a message. */
typedef int (*BlobReader)(void *ctx, const char *name, BlobType type, size_t count, void *dst,
                          char *err, size_t errlen);
int run_state_import(Run *r, const struct cJSON *json, BlobReader get_blob, void *ctx, char *err,
                     size_t errlen);

/* The configuration as JSON (keys = TrainConfig field names) and back;
 * unknown keys and wrong types are errors naming the key. */
struct cJSON *train_config_to_json(const TrainConfig *c);
int train_config_from_json(const struct cJSON *j, TrainConfig *c, char *err, size_t errlen);

/* Runs to completion. Returns 0, or -1 with a message in err. */
int train_run(const TrainConfig *cfg, const TrainCallbacks *cb, char *err, size_t errlen);

/* Splits n examples into D1 (round(ratio·n), at least 1) and D2 (the rest,
 * at least 1 when n >= 2) by a seeded shuffle. d1/d2 hold n ints. */
void split_d1_d2(int n, float ratio, uint64_t seed, int *d1, int *n1, int *d2, int *n2);

#endif
