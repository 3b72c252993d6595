/* Finite-difference checks of every backward op of the CPU backend.
 * Each check: L = Σ w ⊙ f(x) for a fixed random w; the analytic gradient
 * from the _bwd op (seeded with dy = w) must match central differences
 * (ε = 1e-3, float32 forward, loss summed in double) to a relative error
 * of 1e-2 per element, or 2e-4 absolute for elements near zero. */
#include "engine/rng.h"
#include "kernels/backend.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-3f

static float *randv(size_t n, double std, uint64_t *rng) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(rng));
    return x;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Compare analytic vs numeric; returns worst violation (> 0 fails). */
static void expect_close(const char *what, const float *analytic, const double *numeric, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double a = analytic[i], f = numeric[i];
        double tol = 1e-2 * fmax(fabs(a), fabs(f)) + 2e-4;
        ck_assert_msg(fabs(a - f) <= tol, "%s: element %zu analytic %.6g numeric %.6g", what, i, a, f);
    }
}

typedef double (*LossFn)(void *ctx);

/* numeric gradient of loss w.r.t. x[0..n) */
static void numeric_grad(double *g, float *x, size_t n, LossFn fn, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        float old = x[i];
        x[i] = old + EPS;
        double lp = fn(ctx);
        x[i] = old - EPS;
        double lm = fn(ctx);
        x[i] = old;
        g[i] = (lp - lm) / (2.0 * EPS);
    }
}

/* ---- layernorm ---- */
typedef struct { const Backend *be; float *x, *g, *b, *y, *mean, *rstd, *w; int rows, cols; } LnCtx;
static double ln_loss(void *p) {
    LnCtx *c = p;
    c->be->layernorm_fwd(c->y, c->mean, c->rstd, c->x, c->g, c->b, c->rows, c->cols, 1e-5f);
    return dot(c->y, c->w, (size_t)c->rows * c->cols);
}
START_TEST(layernorm_grad) {
    const Backend *be = backend_cpu();
    uint64_t rng = 11;
    int rows = 3, cols = 7;
    size_t n = (size_t)rows * cols;
    LnCtx c = {be, randv(n, 1, &rng), randv(cols, 1, &rng), randv(cols, 1, &rng), calloc(n, 4),
               calloc(rows, 4), calloc(rows, 4), randv(n, 1, &rng), rows, cols};
    ln_loss(&c);
    float *dx = calloc(n, 4), *dg = calloc(cols, 4), *db = calloc(cols, 4);
    be->layernorm_bwd(dx, dg, db, c.w, c.x, c.mean, c.rstd, c.g, rows, cols);
    double *num = calloc(n, sizeof(double));
    numeric_grad(num, c.x, n, ln_loss, &c);
    expect_close("layernorm dx", dx, num, n);
    numeric_grad(num, c.g, cols, ln_loss, &c);
    expect_close("layernorm dgamma", dg, num, cols);
    numeric_grad(num, c.b, cols, ln_loss, &c);
    expect_close("layernorm dbeta", db, num, cols);
    free(dx); free(dg); free(db); free(num);
    free(c.x); free(c.g); free(c.b); free(c.y); free(c.mean); free(c.rstd); free(c.w);
}
END_TEST

/* ---- elementwise: gelu, tanh, dropout ---- */
typedef struct { const Backend *be; float *x, *y, *w; size_t n; int op; float p; } EwCtx;
static double ew_loss(void *q) {
    EwCtx *c = q;
    if (c->op == 0) c->be->gelu_fwd(c->y, c->x, c->n);
    else if (c->op == 1) c->be->tanh_fwd(c->y, c->x, c->n);
    else if (c->op == 3) c->be->gelu_tanh_fwd(c->y, c->x, c->n);
    else c->be->dropout_fwd(c->y, c->x, c->n, c->p, 1234);
    return dot(c->y, c->w, c->n);
}
START_TEST(elementwise_grad) {
    const Backend *be = backend_cpu();
    uint64_t rng = 12;
    size_t n = 40;
    for (int op = 0; op < 4; op++) {
        EwCtx c = {be, randv(n, 2, &rng), calloc(n, 4), randv(n, 1, &rng), n, op, 0.3f};
        ew_loss(&c);
        float *dx = calloc(n, 4);
        if (op == 0) be->gelu_bwd(dx, c.x, c.w, n);
        else if (op == 1) be->tanh_bwd(dx, c.y, c.w, n);
        else if (op == 3) be->gelu_tanh_bwd(dx, c.x, c.w, n);
        else be->dropout_bwd(dx, c.w, n, c.p, 1234);
        double *num = calloc(n, sizeof(double));
        numeric_grad(num, c.x, n, ew_loss, &c);
        expect_close(op == 0 ? "gelu" : op == 1 ? "tanh" : op == 3 ? "gelu_tanh" : "dropout", dx,
                     num, n);
        if (op == 2) { /* dropout really drops about p of the elements */
            int zeros = 0;
            for (size_t i = 0; i < n; i++) zeros += c.y[i] == 0.0f;
            ck_assert_int_gt(zeros, 2);
            ck_assert_int_lt(zeros, 30);
        }
        free(dx); free(num); free(c.x); free(c.y); free(c.w);
    }
}
END_TEST

/* The CPU GELUs use polynomial erf and exp (they vectorise; libm's are
 * scalar calls): every float-valued x on a fine grid over [−12, 12], and
 * the extremes, against the formulas in double precision: |ours − exact|
 * ≤ 5e-7·max(1, |x|) for both forms and both directions (A&S 7.1.28's erf
 * is within 3e-7; seen: 4.1e-7, 4.5e-7, 1.1e-7, 4.0e-7). The erf's old
 * 1 − 1/q^16 lost 8.7e-7 in GELU's derivative near 0. */
START_TEST(gelu_accuracy) {
    const Backend *be = backend_cpu();
    size_t n = 240001 + 8;
    float *x = malloc(n * 4), *y = malloc(n * 4), *one = malloc(n * 4);
    for (size_t i = 0; i + 8 < n; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(n - 9);
    x[n - 8] = -88.0f; x[n - 7] = 88.0f; x[n - 6] = -1e4f; x[n - 5] = 1e4f;
    x[n - 4] = -1e13f; x[n - 3] = 1e13f; x[n - 2] = -1e20f; x[n - 1] = 1e20f; /* x³ overflows */
    for (size_t i = 0; i < n; i++) one[i] = 1.0f;
    const double k = sqrt(2.0 / 3.14159265358979323846), c = 0.044715;
    for (int op = 0; op < 4; op++) {
        if (op == 0) be->gelu_fwd(y, x, n);
        else if (op == 1) be->gelu_bwd(y, x, one, n);
        else if (op == 2) be->gelu_tanh_fwd(y, x, n);
        else be->gelu_tanh_bwd(y, x, one, n);
        double worst = 0.0, at = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = x[i], want;
            if (op == 0) want = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
            else if (op == 1) want = 0.5 * (1.0 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
            else {
                double t = tanh(k * (v + c * v * v * v));
                want = op == 2 ? 0.5 * v * (1.0 + t)
                               : 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * c * v * v);
            }
            ck_assert_msg(isfinite(y[i]), "op %d: x = %g gives %g", op, v, y[i]);
            /* derivatives far out are exactly 1 or 0, whatever |x| */
            if ((op & 1) && fabs(v) >= 20.0)
                ck_assert_msg(fabs(y[i] - want) < 1e-6, "op %d: x = %g gives %g, want %g", op, v, y[i], want);
            double e = fabs(y[i] - want) / fmax(1.0, fabs(v));
            if (e > worst) worst = e, at = v;
        }
        printf("  %-13s worst |error|/max(1,|x|) %.2e at x = %g\n",
               (const char *[]){"gelu", "gelu'", "gelu_tanh", "gelu_tanh'"}[op], worst, at);
        ck_assert_msg(worst < 5e-7, "op %d: error %.3g at x = %g", op, worst, at);
    }
    /* The tanh form's left tail, relatively: for x ≤ −2 its value and
     * derivative are tiny, and 1 + tanh u (tanh u near −1) cancels. The
     * reference takes 1 + tanh u = 2σ(2u) and 1 − tanh u = 2σ(−2u) in
     * double; ours must be within 5e-7·max(1, |2u|) relative wherever the
     * exact value is a normal float. (The factor is the conditioning: e^{2u}
     * turns u's float rounding into a relative error of about |2u|·6e-8.
     * The cancelling form was off by up to 2x near x = −5, which the CUDA
     * backend's comparison found.) */
    for (int op = 2; op < 4; op++) {
        if (op == 2) be->gelu_tanh_fwd(y, x, n);
        else be->gelu_tanh_bwd(y, x, one, n);
        double worst = 0.0, at = 0.0;
        for (size_t i = 0; i + 8 < n && x[i] <= -2.0f; i++) {
            double v = x[i], u = k * (v + c * v * v * v);
            double p = 1.0 / (1.0 + exp(-2.0 * u)), q = 1.0 / (1.0 + exp(2.0 * u));
            double want = op == 2 ? v * p : p * (1.0 + 2.0 * v * q * k * (1.0 + 3.0 * c * v * v));
            if (fabs(want) < 1e-30) continue;
            double e = fabs(y[i] - want) / fabs(want) / fmax(1.0, fabs(2.0 * u));
            if (e > worst) worst = e, at = v;
        }
        printf("  %-13s x <= -2: worst relative error / max(1, |2u|) %.2e at x = %g\n",
               op == 2 ? "gelu_tanh" : "gelu_tanh'", worst, at);
        ck_assert_msg(worst < 5e-7, "op %d: relative error %.3g (over max(1, |2u|)) at x = %g", op, worst, at);
    }
    free(x); free(y); free(one);
}
END_TEST

/* ---- matmul (all transposes) through its own adjoint ---- */
START_TEST(matmul_all_transposes) {
    const Backend *be = backend_cpu();
    uint64_t rng = 13;
    int M = 5, N = 4, K = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *A = randv(M * K, 1, &rng), *B = randv(K * N, 1, &rng), *C = randv(M * N, 1, &rng);
            float *C0 = malloc(sizeof(float) * M * N);
            memcpy(C0, C, sizeof(float) * M * N);
            be->matmul(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, C, N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[k * M + i] : A[i * K + k];
                        double b = tb ? B[j * K + k] : B[k * N + j];
                        s += a * b;
                    }
                    double want = 0.5 * s + 2.0 * C0[i * N + j];
                    ck_assert_msg(fabs(want - C[i * N + j]) < 1e-5, "matmul ta=%d tb=%d", ta, tb);
                }
            free(A); free(B); free(C); free(C0);
        }
}
END_TEST

/* ---- attention ---- */
typedef struct {
    const Backend *be;
    float *q, *k, *v, *out, *probs, *mask, *w;
    int B, T, H, D, causal;
    float p;
} AttCtx;
static double att_loss(void *z) {
    AttCtx *c = z;
    c->be->attention_fwd(c->out, c->probs, c->q, c->k, c->v, c->H * c->D, c->mask, c->B, c->T, c->H,
                         c->D, c->causal, c->p, 99);
    return dot(c->out, c->w, (size_t)c->B * c->T * c->H * c->D);
}
static void attention_case(int causal, float p, int with_mask) {
    const Backend *be = backend_cpu();
    uint64_t rng = 14;
    int B = 2, T = 5, H = 2, D = 3, C = H * D;
    size_t n = (size_t)B * T * C;
    float mask[10] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    AttCtx c = {be, randv(n, 1, &rng), randv(n, 1, &rng), randv(n, 1, &rng), calloc(n, 4),
                calloc((size_t)B * H * T * T, 4), with_mask ? mask : NULL, randv(n, 1, &rng),
                B, T, H, D, causal, p};
    att_loss(&c);
    /* masked keys get exactly zero probability */
    if (with_mask)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
                ck_assert(c.probs[((size_t)0 * H + h) * T * T + i * T + 3] == 0.0f);
    float *dq = calloc(n, 4), *dk = calloc(n, 4), *dv = calloc(n, 4);
    float *scratch = calloc((size_t)B * H * T * T, 4);
    be->attention_bwd(dq, dk, dv, c.w, c.probs, c.q, c.k, c.v, C, B, T, H, D, p, 99, scratch);
    double *num = calloc(n, sizeof(double));
    numeric_grad(num, c.q, n, att_loss, &c);
    expect_close("attention dq", dq, num, n);
    numeric_grad(num, c.k, n, att_loss, &c);
    expect_close("attention dk", dk, num, n);
    numeric_grad(num, c.v, n, att_loss, &c);
    expect_close("attention dv", dv, num, n);
    free(dq); free(dk); free(dv); free(scratch); free(num);
    free(c.q); free(c.k); free(c.v); free(c.out); free(c.probs); free(c.w);
}
START_TEST(attention_grad_masked) { attention_case(0, 0.0f, 1); }
END_TEST
START_TEST(attention_grad_causal) { attention_case(1, 0.0f, 0); }
END_TEST
START_TEST(attention_grad_dropout) { attention_case(0, 0.25f, 1); }
END_TEST

/* ---- embeddings, gather ---- */
START_TEST(embedding_and_gather_grad) {
    const Backend *be = backend_cpu();
    uint64_t rng = 15;
    int V = 6, C = 4, n = 5;
    int32_t ids[5] = {1, 3, 1, 5, 0};
    float *table = randv((size_t)V * C, 1, &rng), *out = calloc((size_t)n * C, 4);
    float *w = randv((size_t)n * C, 1, &rng), *dt = calloc((size_t)V * C, 4);
    be->embedding_fwd(out, ids, table, n, C, 0);
    be->embedding_bwd(dt, w, ids, n, C);
    /* linear op: d/dtable[v,c] of Σ w⊙out = Σ_{i: ids[i]=v} w[i,c] */
    for (int v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int i = 0; i < n; i++) if (ids[i] == v) s += w[i * C + c];
            ck_assert(fabs(s - dt[v * C + c]) < 1e-6);
        }
    for (int i = 0; i < n; i++) ck_assert(out[i * C + 2] == table[ids[i] * C + 2]);
    float *x = randv(2 * 3 * C, 1, &rng), *first = calloc(2 * C, 4), *dx = calloc(2 * 3 * C, 4);
    be->gather_first(first, x, 2, 3, C);
    ck_assert(first[C + 1] == x[3 * C + 1]);
    be->gather_first_bwd(dx, first, 2, 3, C);
    ck_assert(dx[3 * C + 1] == x[3 * C + 1] && dx[C] == 0.0f);
    free(table); free(out); free(w); free(dt); free(x); free(first); free(dx);
}
END_TEST

/* ---- losses ---- */
typedef struct { const Backend *be; float *z, *loss; int32_t *y; float *t; int rows, classes; } CeCtx;
static double ce_loss(void *p) {
    CeCtx *c = p;
    if (c->classes > 1) c->be->cross_entropy(c->loss, NULL, c->z, c->y, c->rows, c->classes, 1.0f);
    else c->be->mse(c->loss, NULL, c->z, c->t, c->rows, 1.0f);
    double s = 0;
    for (int r = 0; r < c->rows; r++) s += c->loss[r];
    return s / c->rows;
}
START_TEST(loss_grads) {
    const Backend *be = backend_cpu();
    uint64_t rng = 16;
    int rows = 4, classes = 3;
    int32_t y[4] = {0, 2, -1, 1}; /* -1: ignored */
    CeCtx c = {be, randv(rows * classes, 2, &rng), calloc(rows, 4), y, NULL, rows, classes};
    float *dz = calloc(rows * classes, 4);
    be->cross_entropy(c.loss, dz, c.z, y, rows, classes, 1.0f / rows);
    ck_assert(c.loss[2] == 0.0f && dz[2 * classes] == 0.0f);
    double *num = calloc(rows * classes, sizeof(double));
    numeric_grad(num, c.z, rows * classes, ce_loss, &c);
    expect_close("cross_entropy", dz, num, rows * classes);
    float t[4] = {0.5f, 1.0f, -2.0f, 3.0f};
    CeCtx m = {be, randv(rows, 1, &rng), calloc(rows, 4), NULL, t, rows, 1};
    float *dp = calloc(rows, 4);
    be->mse(m.loss, dp, m.z, t, rows, 1.0f / rows);
    numeric_grad(num, m.z, rows, ce_loss, &m);
    expect_close("mse", dp, num, rows);
    free(dz); free(num); free(c.z); free(c.loss); free(m.z); free(m.loss); free(dp);
}
END_TEST

/* ---- AdamW against the closed form of its first step ---- */
START_TEST(adamw_first_step) {
    const Backend *be = backend_cpu();
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.1f, -0.3f, 0.0f}, m[3] = {0}, v[3] = {0};
    float lr = 0.01f, wd = 0.1f;
    be->adamw(p, g, m, v, 3, lr, 0.9f, 0.999f, 1e-8f, wd, 1.0f - 0.9f, 1.0f - 0.999f);
    /* step 1: m̂ = g, v̂ = g², update = g/(|g|+eps) = sign(g) */
    ck_assert(fabsf(p[0] - (1.0f * (1 - lr * wd) - lr)) < 1e-6f);
    ck_assert(fabsf(p[1] - (-2.0f * (1 - lr * wd) + lr)) < 1e-6f);
    ck_assert(fabsf(p[2] - 0.5f * (1 - lr * wd)) < 1e-6f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("backend_grad");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, layernorm_grad);
    tcase_add_test(tc, elementwise_grad);
    tcase_add_test(tc, gelu_accuracy);
    tcase_add_test(tc, matmul_all_transposes);
    tcase_add_test(tc, attention_grad_masked);
    tcase_add_test(tc, attention_grad_causal);
    tcase_add_test(tc, attention_grad_dropout);
    tcase_add_test(tc, embedding_and_gather_grad);
    tcase_add_test(tc, loss_grads);
    tcase_add_test(tc, adamw_first_step);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
