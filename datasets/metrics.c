/* GLUE task metrics, computed the way the reference tools compute them, so
 * that numbers printed here can be compared with published results:
 *
 *   accuracy                   fraction of exact class matches
 *   f1                         F1 of class 1, as sklearn's f1_score (binary)
 *   mcc                        sklearn's matthews_corrcoef (its multiclass
 *                              form, which equals the binary one for CoLA)
 *   pearson, spearman          scipy.stats pearsonr / spearmanr (ranks of
 *                              tied values averaged)
 *
 * Conventions for the edge cases, each copied from the reference:
 *   - F1 is 0 when there are no true and no predicted positives (sklearn's
 *     zero_division default gives 0 there too).
 *   - MCC is 0 when one side holds a single class (denominator 0).
 *   - Pearson and Spearman are NaN when either input is constant (scipy
 *     returns NaN and warns) and when an input holds a NaN.
 *   - Every metric is NaN for n <= 0: there is nothing to measure.
 * All sums run in double: STS-B scores are floats, and a float accumulator
 * over a 40k-row QQP dev set would lose digits that the UI shows. */
#include "datasets/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Class indices arrive as floats; round rather than truncate so that a
 * value like 0.9999999 coming out of a float pipeline still means class 1. */
static long cls(float v)
{
    return lrintf(v);
}

double metric_accuracy(const float *preds, const float *labels, int n)
{
    if (n <= 0)
        return NAN;
    long hit = 0;
    for (int i = 0; i < n; i++)
        hit += !isnan(preds[i]) && !isnan(labels[i]) && cls(preds[i]) == cls(labels[i]);
    return (double)hit / n;
}

double metric_f1(const float *preds, const float *labels, int n)
{
    if (n <= 0)
        return NAN;
    long tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < n; i++) {
        int p = !isnan(preds[i]) && cls(preds[i]) == 1;
        int t = !isnan(labels[i]) && cls(labels[i]) == 1;
        tp += p && t;
        fp += p && !t;
        fn += !p && t;
    }
    /* F1 = 2PR/(P+R) = 2tp / (2tp + fp + fn); written this way it needs no
     * special case when precision or recall alone is undefined. */
    long den = 2 * tp + fp + fn;
    return den == 0 ? 0.0 : (double)(2 * tp) / (double)den;
}

double metric_mcc(const float *preds, const float *labels, int n)
{
    if (n <= 0)
        return NAN;
    /* Per-class totals over the range of classes present. */
    long lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(preds[i]) || isnan(labels[i]))
            return NAN;
        long a = cls(preds[i]), b = cls(labels[i]);
        if (i == 0) {
            lo = hi = a;
        }
        lo = a < lo ? a : lo;
        lo = b < lo ? b : lo;
        hi = a > hi ? a : hi;
        hi = b > hi ? b : hi;
    }
    long k = hi - lo + 1;
    if (k > (1L << 20)) /* not class indices */
        return NAN;
    double *t_sum = calloc((size_t)k, sizeof *t_sum);
    double *p_sum = calloc((size_t)k, sizeof *p_sum);
    if (!t_sum || !p_sum) {
        free(t_sum);
        free(p_sum);
        return NAN;
    }
    double correct = 0;
    for (int i = 0; i < n; i++) {
        long a = cls(preds[i]), b = cls(labels[i]);
        p_sum[a - lo] += 1;
        t_sum[b - lo] += 1;
        correct += a == b;
    }
    /* Gorodkin's R_K, as sklearn writes it: covariances of the one-hot
     * prediction and truth indicators, from the confusion-matrix margins. */
    double s = n, tp = 0, pp = 0, tt = 0;
    for (long c = 0; c < k; c++) {
        tp += t_sum[c] * p_sum[c];
        pp += p_sum[c] * p_sum[c];
        tt += t_sum[c] * t_sum[c];
    }
    free(t_sum);
    free(p_sum);
    double cov_ytyp = correct * s - tp;
    double cov_ypyp = s * s - pp;
    double cov_ytyt = s * s - tt;
    if (cov_ypyp * cov_ytyt == 0.0)
        return 0.0;
    return cov_ytyp / sqrt(cov_ytyt * cov_ypyp);
}

/* Pearson's r of two double arrays, two-pass (means first) so that large
 * offsets do not cancel the variance away. */
static double pearson_d(const double *x, const double *y, int n)
{
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (isnan(sxy) || sxx == 0.0 || syy == 0.0)
        return NAN;
    double r = sxy / sqrt(sxx * syy);
    /* Rounding can push |r| a hair past 1; scipy clips too. */
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

double metric_pearson(const float *x, const float *y, int n)
{
    if (n <= 0)
        return NAN;
    double *xd = malloc(2 * (size_t)n * sizeof *xd);
    if (!xd)
        return NAN;
    double *yd = xd + n;
    for (int i = 0; i < n; i++) {
        xd[i] = x[i];
        yd[i] = y[i];
    }
    double r = pearson_d(xd, yd, n);
    free(xd);
    return r;
}

typedef struct {
    float v;
    int i;
} Keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const Keyed *p = a, *q = b;
    if (p->v < q->v)
        return -1;
    if (p->v > q->v)
        return 1;
    return (p->i > q->i) - (p->i < q->i); /* stable, so ties are deterministic */
}

/* 1-based ranks; a run of equal values all get the mean of the positions
 * they span (scipy.stats.rankdata's "average" method). */
static void average_ranks(const float *v, int n, Keyed *tmp, double *rank)
{
    for (int i = 0; i < n; i++) {
        tmp[i].v = v[i];
        tmp[i].i = i;
    }
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_keyed);
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && tmp[b].v == tmp[a].v)
            b++;
        /* positions a..b-1 (0-based) are ranks a+1..b; their mean: */
        double r = 0.5 * (double)(a + 1 + b);
        for (int j = a; j < b; j++)
            rank[tmp[j].i] = r;
        a = b;
    }
}

double metric_spearman(const float *x, const float *y, int n)
{
    if (n <= 0)
        return NAN;
    for (int i = 0; i < n; i++)
        if (isnan(x[i]) || isnan(y[i]))
            return NAN; /* NaN has no place in an order */
    double *rx = malloc(2 * (size_t)n * sizeof *rx);
    Keyed *tmp = malloc((size_t)n * sizeof *tmp);
    if (!rx || !tmp) {
        free(rx);
        free(tmp);
        return NAN;
    }
    double *ry = rx + n;
    average_ranks(x, n, tmp, rx);
    average_ranks(y, n, tmp, ry);
    double r = pearson_d(rx, ry, n);
    free(rx);
    free(tmp);
    return r;
}

static void put(MetricSet *out, const char *name, double value)
{
    if (out->n < METRICS_MAX) {
        out->name[out->n] = name;
        out->value[out->n] = value;
        out->n++;
    }
}

/* The headline metric always comes first (primary = 0); the others are the
 * ones GLUE or Hugging Face's run_glue print beside it. */
void glue_metrics(const GlueTaskInfo *task, const float *preds, const float *labels, int n,
                  MetricSet *out)
{
    memset(out, 0, sizeof *out);
    const GlueTaskInfo *t = task && task->name ? glue_task_info(task->name) : NULL;
    const char *name = t ? t->name : "";
    if (strcmp(name, "CoLA") == 0) {
        put(out, "mcc", metric_mcc(preds, labels, n));
        put(out, "accuracy", metric_accuracy(preds, labels, n));
    } else if (strcmp(name, "MRPC") == 0 || strcmp(name, "QQP") == 0) {
        put(out, "f1", metric_f1(preds, labels, n));
        put(out, "accuracy", metric_accuracy(preds, labels, n));
    } else if (strcmp(name, "STS-B") == 0) {
        put(out, "pearson", metric_pearson(preds, labels, n));
        put(out, "spearman", metric_spearman(preds, labels, n));
    } else {
        /* SST-2, MNLI (one call per dev split), QNLI, RTE, WNLI, and any
         * task we do not know: accuracy is always meaningful. */
        put(out, "accuracy", metric_accuracy(preds, labels, n));
    }
    out->primary = 0;
}

void lm_metrics(double mean_token_loss, MetricSet *out)
{
    memset(out, 0, sizeof(*out));
    out->n = 1;
    out->name[0] = "perplexity";
    out->value[0] = exp(mean_token_loss);
    out->primary = 0;
}
