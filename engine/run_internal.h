/* The inside of a Run, shared by the loop (train.c) and its state export
 * and import (run_state.c). Nothing outside engine/ includes this. */
#ifndef BILORA_ENGINE_RUN_INTERNAL_H
#define BILORA_ENGINE_RUN_INTERNAL_H

#include "datasets/batch.h"
#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "engine/bilevel.h"
#include "engine/hypergrad.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/train.h"

/* A stream of batches over a subset of the training set: reshuffled (seeded)
 * at every pass; the last batch of a pass may be short. */
typedef struct {
    int *idx, n, cursor;
    uint64_t rng;
    int shuffle;
} Stream;

typedef struct {
    long step;
    float loss, upper_loss;
} StepRecord;

typedef struct {
    long step;
    char split[16];
    float loss, metric;
    float more[METRICS_MAX - 1]; /* the other metrics, in train_metric_names' order */
    int n_more;
} EvalRecord;

struct Run {
    TrainConfig cfg;     /* current values (hot changes applied) */
    TrainConfig cfg0;    /* as created: what a resume recreates the run from */
    TrainCallbacks cb;
    const GlueTaskInfo *task; /* NULL for E2E (data-to-text: lm is set) */
    const char *task_name;    /* canonical: "SST-2", ..., "E2E" */
    int lm;                   /* data-to-text: a gpt2 with its LM head, scored on the references */
    /* E2E: the first eval_generate distinct dev meaning representations and
     * all their references (gen_refs[gen_start[i] .. gen_start[i+1])) */
    char **gen_mr, **gen_refs;
    int *gen_start, gen_n, gen_nrefs;
    Tokenizer *tok;
    GlueSplit train_raw, dev_raw[2];
    EncodedSet train, dev[2];
    int n_dev, pad;
    Model *model;
    int bilevel;
    AdamW opt_lower, opt_upper;
    HyperWork hw;
    HypergradOptions ho;
    Stream all, d1, d2;
    int *bidx, *b1idx;
    int n_train, n_te, *train_eval_idx, *dev_idx;
    long step, total, phase1_total, warmup, eval_every, spectrum_every;
    long epoch_steps;    /* global steps per epoch at creation: what eval_every 0 means */
    long spectrum_default; /* spectrum cadence at creation: what spectrum_every 0 means */
    int phase;
    double t0, t_last;
    float *init_lower;   /* bidora: the lower group's initial values (host) */
    float *m0;           /* dora forms: initial magnitudes (host) */
    /* adalora */
    float *ipt_avg, *unc_avg;  /* per trainable float of the adapters (host) */
    float *hyper;        /* bi-level: the hypergradient [upper] (backend) */
    double last_reg;     /* R1 of the last lower step */
    int warned_neumann;  /* the growing-series warning was given (not saved: a resume may say it again) */
    RunChange *changes;  /* the log of live changes */
    int n_changes, cap_changes;
    /* the metric history (what the charts need after a resume) */
    StepRecord *hist_steps;
    int n_hist_steps, cap_hist_steps;
    EvalRecord *hist_evals;
    int n_hist_evals, cap_hist_evals;
    DoneInfo done;
};

#endif
