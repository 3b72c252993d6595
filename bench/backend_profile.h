/* A timing wrapper around a Backend, for benchmarks: every op synchronises
 * the device before and after and adds its wall time to its op's total, so a
 * training step can be split into where its time goes (matmul, attention,
 * layer norm, ...). The synchronisations expose each launch's latency, so the
 * profiled step is slower than the real one: read the shares, not the sum.
 * Matmuls also count their FLOPs, for the achieved TFLOP/s of the matmuls
 * alone. Header-only: bench/ builds each .c into its own program. */
#ifndef BILORA_BENCH_BACKEND_PROFILE_H
#define BILORA_BENCH_BACKEND_PROFILE_H

#include "kernels/backend.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
    PROF_MATMUL, PROF_ATTN_FWD, PROF_ATTN_BWD, PROF_LAYERNORM_FWD, PROF_LAYERNORM_BWD, PROF_GELU,
    PROF_DROPOUT, PROF_BIAS, PROF_EMBEDDING, PROF_LOSS, PROF_ADAMW, PROF_SUMSQ, PROF_UPLOAD,
    PROF_DOWNLOAD, PROF_COPY, PROF_ZERO, PROF_OTHER, PROF_N
};
static const char *const PROF_NAMES[PROF_N] = {
    "matmul (cuBLAS)", "attention fwd", "attention bwd", "layer norm fwd", "layer norm bwd",
    "gelu fwd+bwd", "dropout fwd+bwd", "bias add + bias grad", "embedding", "loss", "adamw",
    "sumsq (grad norm)", "upload (host->device)", "download (device->host)", "copy (device)",
    "zero", "other elementwise"};

static Backend g_prof_real, g_prof;
static void (*g_prof_sync)(void);
static double g_prof_s[PROF_N], g_prof_matmul_flops, g_prof_bytes[PROF_N];
static long g_prof_calls[PROF_N];

static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double prof_begin(void) {
    g_prof_sync();
    return prof_now();
}
static void prof_end(int op, double t0) {
    g_prof_sync();
    g_prof_s[op] += prof_now() - t0;
    g_prof_calls[op]++;
}

#define PROF_WRAP(op, name, params, args)                                                       \
    static void prof_##name params {                                                            \
        double t0 = prof_begin();                                                               \
        g_prof_real.name args;                                                                  \
        prof_end(op, t0);                                                                       \
    }
/* memory ops also count their bytes */
#define PROF_WRAP_MEM(op, name, params, args, bytes)                                            \
    static void prof_##name params {                                                            \
        double t0 = prof_begin();                                                               \
        g_prof_real.name args;                                                                  \
        prof_end(op, t0);                                                                       \
        g_prof_bytes[op] += (double)(bytes);                                                    \
    }
PROF_WRAP_MEM(PROF_UPLOAD, upload, (void *d, const void *s, size_t n), (d, s, n), n)
PROF_WRAP_MEM(PROF_DOWNLOAD, download, (void *d, const void *s, size_t n), (d, s, n), n)
PROF_WRAP_MEM(PROF_COPY, copy, (void *d, const void *s, size_t n), (d, s, n), n)
PROF_WRAP_MEM(PROF_ZERO, zero, (void *p, size_t n), (p, n), n)
#undef PROF_WRAP_MEM
PROF_WRAP(PROF_BIAS, add_bias, (float *y, const float *b, int r, int c), (y, b, r, c))
PROF_WRAP(PROF_BIAS, bias_grad, (float *d, const float *dy, int r, int c), (d, dy, r, c))
PROF_WRAP(PROF_OTHER, axpy, (float *y, float a, const float *x, size_t n), (y, a, x, n))
PROF_WRAP(PROF_OTHER, scale_cols, (float *y, const float *x, const float *s, int r, int c, int acc),
          (y, x, s, r, c, acc))
PROF_WRAP(PROF_OTHER, col_dot, (float *o, const float *a, const float *b, int r, int c), (o, a, b, r, c))
PROF_WRAP(PROF_OTHER, row_norms, (float *o, const float *x, int r, int c), (o, x, r, c))
PROF_WRAP(PROF_OTHER, scale, (float *x, float a, size_t n), (x, a, n))
PROF_WRAP(PROF_GELU, gelu_fwd, (float *y, const float *x, size_t n), (y, x, n))
PROF_WRAP(PROF_GELU, gelu_bwd, (float *dx, const float *x, const float *dy, size_t n), (dx, x, dy, n))
PROF_WRAP(PROF_GELU, gelu_tanh_fwd, (float *y, const float *x, size_t n), (y, x, n))
PROF_WRAP(PROF_GELU, gelu_tanh_bwd, (float *dx, const float *x, const float *dy, size_t n), (dx, x, dy, n))
PROF_WRAP(PROF_OTHER, tanh_fwd, (float *y, const float *x, size_t n), (y, x, n))
PROF_WRAP(PROF_OTHER, tanh_bwd, (float *dx, const float *y, const float *dy, size_t n), (dx, y, dy, n))
PROF_WRAP(PROF_DROPOUT, dropout_fwd, (float *y, const float *x, size_t n, float p, uint64_t s),
          (y, x, n, p, s))
PROF_WRAP(PROF_DROPOUT, dropout_bwd, (float *dx, const float *dy, size_t n, float p, uint64_t s),
          (dx, dy, n, p, s))
PROF_WRAP(PROF_LAYERNORM_FWD, layernorm_fwd,
          (float *y, float *mean, float *rstd, const float *x, const float *g, const float *b, int r,
           int c, float eps),
          (y, mean, rstd, x, g, b, r, c, eps))
PROF_WRAP(PROF_LAYERNORM_BWD, layernorm_bwd,
          (float *dx, float *dg, float *db, const float *dy, const float *x, const float *mean,
           const float *rstd, const float *g, int r, int c),
          (dx, dg, db, dy, x, mean, rstd, g, r, c))
PROF_WRAP(PROF_EMBEDDING, embedding_fwd,
          (float *o, const int32_t *ids, const float *t, int n, int c, int acc), (o, ids, t, n, c, acc))
PROF_WRAP(PROF_EMBEDDING, embedding_bwd, (float *d, const float *dout, const int32_t *ids, int n, int c),
          (d, dout, ids, n, c))
PROF_WRAP(PROF_OTHER, gather_first, (float *o, const float *x, int B, int T, int c), (o, x, B, T, c))
PROF_WRAP(PROF_OTHER, gather_first_bwd, (float *d, const float *o, int B, int T, int c), (d, o, B, T, c))
PROF_WRAP(PROF_ATTN_FWD, attention_fwd,
          (float *out, float *probs, const float *q, const float *k, const float *v, int ld,
           const float *km, int B, int T, int H, int D, int causal, float p, uint64_t seed),
          (out, probs, q, k, v, ld, km, B, T, H, D, causal, p, seed))
PROF_WRAP(PROF_ATTN_BWD, attention_bwd,
          (float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
           const float *k, const float *v, int ld, int B, int T, int H, int D, float p, uint64_t seed,
           float *scratch),
          (dq, dk, dv, dout, probs, q, k, v, ld, B, T, H, D, p, seed, scratch))
PROF_WRAP(PROF_LOSS, cross_entropy,
          (float *l, float *dl, const float *lg, const int32_t *lb, int r, int c, float gs),
          (l, dl, lg, lb, r, c, gs))
PROF_WRAP(PROF_LOSS, mse, (float *l, float *dp, const float *p, const float *t, int r, float gs),
          (l, dp, p, t, r, gs))
PROF_WRAP(PROF_ADAMW, adamw,
          (float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
           float eps, float wd, float bc1, float bc2),
          (p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2))
#undef PROF_WRAP

static void prof_matmul(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    double t0 = prof_begin();
    g_prof_real.matmul(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_end(PROF_MATMUL, t0);
    g_prof_matmul_flops += 2.0 * M * N * K;
}
static double prof_sumsq(const float *x, size_t n) {
    double t0 = prof_begin();
    double r = g_prof_real.sumsq(x, n);
    prof_end(PROF_SUMSQ, t0);
    return r;
}

/* The profiling table for `real`; sync waits for the device. */
static const Backend *backend_profile(const Backend *real, void (*sync)(void)) {
    g_prof_real = *real;
    g_prof = *real;
    g_prof_sync = sync;
#define P(name) g_prof.name = prof_##name
    P(upload); P(download); P(copy); P(zero); P(matmul); P(add_bias); P(bias_grad); P(axpy);
    P(scale_cols); P(col_dot); P(row_norms); P(scale); P(gelu_fwd); P(gelu_bwd); P(gelu_tanh_fwd);
    P(gelu_tanh_bwd); P(tanh_fwd); P(tanh_bwd); P(dropout_fwd); P(dropout_bwd); P(layernorm_fwd);
    P(layernorm_bwd); P(embedding_fwd); P(embedding_bwd); P(gather_first); P(gather_first_bwd);
    P(attention_fwd); P(attention_bwd); P(cross_entropy); P(mse); P(adamw); P(sumsq);
#undef P
    return &g_prof;
}

static void backend_profile_reset(void) {
    memset(g_prof_s, 0, sizeof(g_prof_s));
    memset(g_prof_calls, 0, sizeof(g_prof_calls));
    memset(g_prof_bytes, 0, sizeof(g_prof_bytes));
    g_prof_matmul_flops = 0;
}

/* Per step: ms and share of each op class over `steps` profiled steps. */
static void backend_profile_print(const char *title, int steps) {
    double total = 0;
    for (int i = 0; i < PROF_N; i++) total += g_prof_s[i];
    printf("\n%s: where a step's time goes (each op synchronised; %d steps)\n", title, steps);
    printf("  %-22s %9s %7s %8s\n", "op", "ms/step", "share", "calls");
    for (int i = 0; i < PROF_N; i++) {
        if (!g_prof_calls[i]) continue;
        printf("  %-22s %9.2f %6.1f%% %8ld", PROF_NAMES[i], g_prof_s[i] * 1e3 / steps,
               100.0 * g_prof_s[i] / total, g_prof_calls[i] / steps);
        if (i == PROF_MATMUL && g_prof_s[i] > 0)
            printf("   %.1f TFLOP/s in the matmuls alone", g_prof_matmul_flops / g_prof_s[i] / 1e12);
        if (g_prof_bytes[i] > 0)
            printf("   %.1f MB/step", g_prof_bytes[i] / steps / 1e6);
        printf("\n");
    }
    printf("  %-22s %9.2f\n", "sum", total * 1e3 / steps);
}

#endif
