/* Task metrics as GLUE reports them: accuracy; F1 (positive class 1) and
 * accuracy for MRPC and QQP; Matthews correlation for CoLA; Pearson and
 * Spearman (average ranks for ties) for STS-B. */
#ifndef BILORA_DATASETS_METRICS_H
#define BILORA_DATASETS_METRICS_H

#include "datasets/glue.h"

#define METRICS_MAX 4

typedef struct {
    int n;                          /* number of metrics filled */
    const char *name[METRICS_MAX];  /* "accuracy", "f1", "mcc", "pearson", "spearman" */
    double value[METRICS_MAX];
    int primary;                    /* index of the task's headline metric */
} MetricSet;

/* preds: predicted class index (as float) or predicted score (regression);
 * labels likewise. */
void glue_metrics(const GlueTaskInfo *task, const float *preds, const float *labels, int n,
                  MetricSet *out);

/* A language model's metric from its mean loss per scored token: perplexity
 * exp(loss), the headline. */
void lm_metrics(double mean_token_loss, MetricSet *out);

double metric_accuracy(const float *preds, const float *labels, int n);
double metric_f1(const float *preds, const float *labels, int n);
double metric_mcc(const float *preds, const float *labels, int n);
double metric_pearson(const float *x, const float *y, int n);
double metric_spearman(const float *x, const float *y, int n);

#endif
