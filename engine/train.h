/* One fine-tuning run on a GLUE task: data, model, optimizer and the loop.
 * Front ends fill a TrainConfig (the field names are the CLI flags and the
 * JSON keys), then call train_run with callbacks that receive each step and
 * evaluation as it happens. */
#ifndef BILORA_ENGINE_TRAIN_H
#define BILORA_ENGINE_TRAIN_H

#include "datasets/metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char model[1024];       /* directory or name on the asset path */
    char task[64];          /* GLUE task name */
    char data[1024];        /* task directory; empty: found on the asset path */
    char method[16];        /* "lora" */
    int rank;
    float alpha;
    float lora_dropout;
    char targets[128];      /* "query,value" */
    float lr;
    float weight_decay;
    float warmup_ratio;
    float max_grad_norm;
    int batch_size;
    int max_seq_len;
    int epochs;
    long steps;             /* > 0 overrides epochs */
    long eval_every;        /* 0: at the end of every epoch */
    int eval_train_examples;/* training examples scored at each evaluation */
    uint64_t seed;
    char device[16];        /* "cpu" */
    int overfit_batch;      /* > 0: train on a fixed first batch of this many examples */
} TrainConfig;

void train_config_defaults(TrainConfig *c);

typedef struct {
    long step, total_steps;
    double epoch;           /* fractional */
    double loss;
    float lr;
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

typedef struct {
    long steps;
    double seconds;
    double final_train_loss;
    EvalInfo last_dev;
    int has_dev;
    size_t trainable_params, total_params;
} DoneInfo;

typedef struct {
    void *ctx;
    void (*on_info)(void *ctx, const char *message);   /* set-up lines (data sizes, model) */
    void (*on_step)(void *ctx, const StepInfo *s);
    void (*on_eval)(void *ctx, const EvalInfo *e);
    void (*on_done)(void *ctx, const DoneInfo *d);
} TrainCallbacks;

/* Runs to completion. Returns 0, or -1 with a message in err. */
int train_run(const TrainConfig *cfg, const TrainCallbacks *cb, char *err, size_t errlen);

#endif
