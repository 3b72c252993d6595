/* The CUDA backend against the CPU reference, op by op and as a whole model.
 *
 * Without a usable device (no GPU, no driver, or a build without CUDA) this
 * prints "test_cuda_backend: skipped: <reason>" and runs one test: device
 * selection falls back to the CPU under "auto" and refuses "cuda" with a
 * message. CI stays green and the skip is visible.
 *
 * With a device, every op runs on both backends on the same random inputs,
 * at awkward sizes (not multiples of 32, batch 1, T = 300). Outputs that an
 * op overwrites are poisoned with NaN first, so an element the GPU fails to
 * write shows up; outputs an op accumulates into start from random values,
 * so overwrite-instead-of-add shows up. NaN or Inf never passes.
 *
 * An element passes when |gpu − cpu| <= rtol · (|cpu| + floor · max|cpu|),
 * and the tensor when ‖gpu − cpu‖ / ‖cpu‖ <= nrm. The floor is there for
 * elements near zero, where a relative error is meaningless (cancellation
 * in a dot product, GELU's 1 + erf(x) for x ≪ 0). Thresholds, fp32:
 *   one rounding per element (axpy, bias, dropout, embeddings, AdamW)
 *                      rtol 1e-5, floor 1e-3, nrm 1e-6 (expected exact)
 *   erf/exp/tanh       rtol 1e-5, floor 1e-1, nrm 1e-6 (libm vs CUDA, ~2 ulp)
 *   reductions, matmul rtol 1e-4, floor 1e-2, nrm 1e-5 (summation order)
 *   TF32 matmul        rtol 1e-2, floor 1e-1, nrm 2e-3 (10-bit mantissa)
 *   dropout masks      bit-exact (the same counter-based hash on both)
 *   whole model        loss 1e-5 relative; gradients rtol 1e-3, floor 1e-2,
 *                      nrm 1e-4 (two layers of chained float roundings)
 * Each comparison prints its worst element as a fraction of what it was
 * allowed, so thresholds can be revisited with evidence.
 *
 * Check runs these in one process (CK_NOFORK): a CUDA context does not
 * survive fork(). */
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "kernels/backend.h"
#ifdef BILORA_CUDA
#include "kernels/cuda/backend_cuda.h"
#endif

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double rtol, floor, nrm;
} Tol;

static const Tol TOL_ELEM = {1e-5, 1e-3, 1e-6};
static const Tol TOL_TRANSC = {1e-5, 1e-1, 1e-6};
static const Tol TOL_REDUCE = {1e-4, 1e-2, 1e-5};
static const Tol TOL_MODEL = {1e-3, 1e-2, 1e-4};

static const Backend *gpu(void) {
    const Backend *be = backend_cuda(NULL, 0);
    ck_assert_ptr_nonnull(be);
    return be;
}

/* ---- host and device buffers ---- */

static float *randv(size_t n, double std, uint64_t *rng) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(rng));
    return x;
}
static float *nanv(size_t n) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}
/* A copy of host data in backend memory. */
static void *put(const Backend *be, const void *host, size_t bytes) {
    void *p = be->alloc(bytes);
    ck_assert_msg(p != NULL, "%s: alloc of %zu bytes failed", be->name, bytes);
    if (host && bytes) be->upload(p, host, bytes);
    return p;
}
static float *putf(const Backend *be, const float *host, size_t n) {
    return put(be, host, sizeof(float) * n);
}
/* n floats of NaN in backend memory: the poisoned output of an op. */
static float *poisoned(const Backend *be, size_t n) {
    float *h = nanv(n);
    float *p = putf(be, h, n);
    free(h);
    return p;
}
static float *get(const Backend *be, const float *p, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    if (n) be->download(h, p, sizeof(float) * n);
    return h;
}

/* Compares n floats of the GPU's result with the CPU's (both on the host). */
static void expect_close(const char *what, const float *got, const float *want, size_t n, Tol t) {
    double maxabs = 0.0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(want[i]), "%s: the CPU reference has %g at element %zu", what,
                      want[i], i);
        if (fabs(want[i]) > maxabs) maxabs = fabs(want[i]);
    }
    const double floor_abs = t.floor * (maxabs > 0 ? maxabs : 1.0);
    double worst = 0.0, num = 0.0, den = 0.0;
    size_t worst_i = 0, exact = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(got[i]), "%s: element %zu is %g on the GPU (CPU %.9g): unwritten or "
                      "overflowed", what, i, got[i], want[i]);
        double d = fabs((double)got[i] - want[i]);
        double allowed = t.rtol * (fabs(want[i]) + floor_abs);
        double ratio = d / allowed;
        if (ratio > worst) { worst = ratio; worst_i = i; }
        num += d * d;
        den += (double)want[i] * want[i];
        exact += got[i] == want[i];
    }
    double nrel = den > 0 ? sqrt(num / den) : sqrt(num);
    printf("  %-46s n %-8zu worst %.2f of allowed, norm rel %.1e (limit %.0e), %zu exact\n", what,
           n, worst, nrel, t.nrm, exact);
    ck_assert_msg(worst <= 1.0, "%s: element %zu GPU %.9g CPU %.9g, |diff| %.3g > %.3g", what,
                  worst_i, got[worst_i], want[worst_i],
                  fabs((double)got[worst_i] - want[worst_i]),
                  t.rtol * (fabs(want[worst_i]) + floor_abs));
    ck_assert_msg(nrel <= t.nrm, "%s: norm-wise relative error %.3g > %.3g", what, nrel, t.nrm);
}

/* Downloads n floats from each backend's buffer and compares them. */
static void expect_same(const char *what, const float *dgpu, const float *dcpu, size_t n, Tol t) {
    float *g = get(gpu(), dgpu, n), *c = get(backend_cpu(), dcpu, n);
    expect_close(what, g, c, n, t);
    free(g);
    free(c);
}

static void expect_bit_exact(const char *what, const float *dgpu, const float *dcpu, size_t n) {
    float *g = get(gpu(), dgpu, n), *c = get(backend_cpu(), dcpu, n);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(memcmp(&g[i], &c[i], sizeof(float)) == 0,
                      "%s: element %zu GPU %.9g CPU %.9g (must be bit-identical)", what, i, g[i], c[i]);
        kept += c[i] != 0.0f;
    }
    printf("  %-46s n %-8zu bit-exact (%zu nonzero)\n", what, n, kept);
    free(g);
    free(c);
}

/* A pair of buffers holding the same data, one per backend. */
typedef struct {
    float *c, *g;
    size_t n;
} Pair;
static Pair pair_of(const float *host, size_t n) {
    Pair p = {putf(backend_cpu(), host, n), putf(gpu(), host, n), n};
    return p;
}
static Pair pair_rand(size_t n, double std, uint64_t *rng) {
    float *h = randv(n, std, rng);
    Pair p = pair_of(h, n);
    free(h);
    return p;
}
static Pair pair_poisoned(size_t n) {
    Pair p = {poisoned(backend_cpu(), n), poisoned(gpu(), n), n};
    return p;
}
static void pair_free(Pair *p) {
    backend_cpu()->release(p->c);
    gpu()->release(p->g);
}

/* ---- memory ---- */

START_TEST(memory_ops) {
    const Backend *g = gpu();
    /* zero-filled, odd sizes, and 0 bytes still a distinct pointer */
    size_t n = 1001;
    float *p = g->alloc(sizeof(float) * n + 3);
    ck_assert_ptr_nonnull(p);
    float *h = get(g, p, n);
    for (size_t i = 0; i < n; i++) ck_assert_msg(h[i] == 0.0f, "alloc not zero-filled at %zu", i);
    void *z = g->alloc(0);
    ck_assert_ptr_nonnull(z);
    g->release(z);
    g->release(NULL);
    /* upload / copy / download / zero round trip */
    for (size_t i = 0; i < n; i++) h[i] = (float)i;
    g->upload(p, h, sizeof(float) * n);
    float *q = g->alloc(sizeof(float) * n);
    g->copy(q, p, sizeof(float) * n);
    /* overlapping copy: memmove semantics, as on the CPU */
    g->copy(q + 1, q, sizeof(float) * (n - 1));
    float *back = get(g, q, n);
    ck_assert(back[0] == 0.0f);
    for (size_t i = 1; i < n; i++) ck_assert_msg(back[i] == (float)(i - 1), "overlapping copy at %zu", i);
    g->zero(q + 10, sizeof(float) * 5);
    free(back);
    back = get(g, q, n);
    for (size_t i = 10; i < 15; i++) ck_assert(back[i] == 0.0f);
    ck_assert(back[15] == 14.0f && back[9] == 8.0f);
    /* an allocation no GPU has: NULL, and the backend keeps working */
    void *huge = g->alloc((size_t)1 << 52);
    ck_assert_ptr_null(huge);
    g->upload(p, h, sizeof(float) * n);
    free(back);
    back = get(g, p, n);
    ck_assert(back[n - 1] == (float)(n - 1));
    free(back);
    free(h);
    g->release(p);
    g->release(q);
}
END_TEST

/* ---- matmul ---- */

static void matmul_case(int ta, int tb, int M, int N, int K, float alpha, float beta, Tol tol,
                        const char *label) {
    uint64_t rng = (uint64_t)(M * 131 + N * 17 + K + ta * 7 + tb * 3);
    /* padded strides: every leading dimension is larger than it must be */
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    Pair A = pair_rand(na, 1, &rng), B = pair_rand(nb, 1, &rng);
    Pair C = beta == 0.0f ? pair_poisoned(nc) : pair_rand(nc, 1, &rng);
    backend_cpu()->matmul(ta, tb, M, N, K, alpha, A.c, lda, B.c, ldb, beta, C.c, ldc);
    gpu()->matmul(ta, tb, M, N, K, alpha, A.g, lda, B.g, ldb, beta, C.g, ldc);
    float *g = get(gpu(), C.g, nc), *c = get(backend_cpu(), C.c, nc);
    /* compare the M x N block; the padding must be untouched (NaN stays NaN) */
    float *gb = malloc(sizeof(float) * (size_t)M * N), *cb = malloc(sizeof(float) * (size_t)M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t e = (size_t)i * ldc + j;
            if (j < N) {
                gb[(size_t)i * N + j] = g[e];
                cb[(size_t)i * N + j] = c[e];
            } else {
                ck_assert_msg(memcmp(&g[e], &c[e], sizeof(float)) == 0,
                              "matmul wrote into the padding of C at row %d column %d", i, j);
            }
        }
    char what[128];
    snprintf(what, sizeof(what), "matmul%s %c%c %dx%dx%d b%g", label, ta ? 'T' : 'N', tb ? 'T' : 'N',
             M, N, K, beta);
    expect_close(what, gb, cb, (size_t)M * N, tol);
    free(g); free(c); free(gb); free(cb);
    pair_free(&A); pair_free(&B); pair_free(&C);
}

START_TEST(matmul_fp32) {
    static const int shapes[][3] = {{1, 37, 300}, {67, 45, 129}, {300, 1, 33}, {5, 7, 1}, {128, 96, 64}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                matmul_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.7f, 0.0f, TOL_REDUCE, "");
                matmul_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.5f, TOL_REDUCE, "");
            }
    /* K = 0: C = beta C */
    matmul_case(0, 0, 3, 4, 0, 1.0f, 0.5f, TOL_ELEM, "");
}
END_TEST

START_TEST(matmul_tf32) {
#ifdef BILORA_CUDA
    const Tol TOL_TF32 = {1e-2, 1e-1, 2e-3};
    int was = backend_cuda_set_tf32(1);
    ck_assert_int_ge(was, 0);
    matmul_case(0, 1, 67, 45, 129, 1.0f, 0.0f, TOL_TF32, " tf32");
    matmul_case(1, 0, 256, 200, 513, 1.0f, 0.5f, TOL_TF32, " tf32");
    backend_cuda_set_tf32(was);
#else
    ck_abort_msg("unreachable: a build without CUDA has no device suite");
#endif
}
END_TEST

/* ---- elementwise ---- */

START_TEST(elementwise_ops) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 42;
    static const size_t sizes[] = {1, 100003};
    for (size_t si = 0; si < 2; si++) {
        size_t n = sizes[si];
        char what[96];
        Pair x = pair_rand(n, 2, &rng), dy = pair_rand(n, 1, &rng);
#define OUT_CASE(label, tol, call)                                                                 \
        do {                                                                                       \
            Pair y = pair_poisoned(n);                                                             \
            { const Backend *be = C; float *Y = y.c, *X = x.c, *DY = dy.c; (void)X; (void)DY; call; } \
            { const Backend *be = G; float *Y = y.g, *X = x.g, *DY = dy.g; (void)X; (void)DY; call; } \
            snprintf(what, sizeof(what), "%s n=%zu", label, n);                                    \
            expect_same(what, y.g, y.c, n, tol);                                                   \
            pair_free(&y);                                                                         \
        } while (0)
        OUT_CASE("gelu_fwd", TOL_TRANSC, be->gelu_fwd(Y, X, n));
        OUT_CASE("gelu_bwd", TOL_TRANSC, be->gelu_bwd(Y, X, DY, n));
        OUT_CASE("gelu_tanh_fwd", TOL_TRANSC, be->gelu_tanh_fwd(Y, X, n));
        OUT_CASE("gelu_tanh_bwd", TOL_TRANSC, be->gelu_tanh_bwd(Y, X, DY, n));
        OUT_CASE("tanh_fwd", TOL_TRANSC, be->tanh_fwd(Y, X, n));
        OUT_CASE("tanh_bwd", TOL_ELEM, be->tanh_bwd(Y, X, DY, n));
        /* in place and accumulating ops start from the same random y */
        Pair y = pair_rand(n, 1, &rng);
        C->axpy(y.c, -0.3f, x.c, n);
        G->axpy(y.g, -0.3f, x.g, n);
        snprintf(what, sizeof(what), "axpy n=%zu", n);
        expect_same(what, y.g, y.c, n, TOL_ELEM);
        C->scale(y.c, 1.7f, n);
        G->scale(y.g, 1.7f, n);
        snprintf(what, sizeof(what), "scale n=%zu", n);
        expect_same(what, y.g, y.c, n, TOL_ELEM);
        /* in place: dx == dy, as the engine calls gelu_bwd */
        C->gelu_bwd(y.c, x.c, y.c, n);
        G->gelu_bwd(y.g, x.g, y.g, n);
        snprintf(what, sizeof(what), "gelu_bwd in place n=%zu", n);
        expect_same(what, y.g, y.c, n, TOL_TRANSC);
        pair_free(&y);
        /* dropout: masks and values bit-identical, out of place and in place */
        static const float ps[] = {0.1f, 0.5f, 0.0f};
        for (int k = 0; k < 3; k++) {
            uint64_t seed = 0x1234567ULL + (uint64_t)k * 977;
            Pair d = pair_poisoned(n);
            C->dropout_fwd(d.c, x.c, n, ps[k], seed);
            G->dropout_fwd(d.g, x.g, n, ps[k], seed);
            snprintf(what, sizeof(what), "dropout_fwd p=%.1f n=%zu", ps[k], n);
            expect_bit_exact(what, d.g, d.c, n);
            C->dropout_bwd(d.c, d.c, n, ps[k], seed);
            G->dropout_bwd(d.g, d.g, n, ps[k], seed);
            snprintf(what, sizeof(what), "dropout_bwd in place p=%.1f n=%zu", ps[k], n);
            expect_bit_exact(what, d.g, d.c, n);
            pair_free(&d);
        }
        pair_free(&x);
        pair_free(&dy);
    }
}
END_TEST

START_TEST(row_col_ops) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 7;
    static const int shapes[][2] = {{1, 1}, {300, 77}, {37, 301}, {4099, 33}};
    for (size_t s = 0; s < 4; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        char what[96];
        Pair x = pair_rand(n, 1, &rng), b = pair_rand(cols, 1, &rng), sc = pair_rand(cols, 1, &rng);
        /* add_bias accumulates into y */
        Pair y = pair_rand(n, 1, &rng);
        C->add_bias(y.c, b.c, rows, cols);
        G->add_bias(y.g, b.g, rows, cols);
        snprintf(what, sizeof(what), "add_bias %dx%d", rows, cols);
        expect_same(what, y.g, y.c, n, TOL_ELEM);
        /* bias_grad and col_dot accumulate into a random vector */
        Pair acc = pair_rand(cols, 1, &rng);
        C->bias_grad(acc.c, x.c, rows, cols);
        G->bias_grad(acc.g, x.g, rows, cols);
        snprintf(what, sizeof(what), "bias_grad %dx%d", rows, cols);
        expect_same(what, acc.g, acc.c, cols, TOL_REDUCE);
        C->col_dot(acc.c, x.c, y.c, rows, cols);
        G->col_dot(acc.g, x.g, y.g, rows, cols);
        snprintf(what, sizeof(what), "col_dot %dx%d", rows, cols);
        expect_same(what, acc.g, acc.c, cols, TOL_REDUCE);
        pair_free(&acc);
        /* scale_cols: overwrite (poisoned), accumulate, and in place */
        Pair z = pair_poisoned(n);
        C->scale_cols(z.c, x.c, sc.c, rows, cols, 0);
        G->scale_cols(z.g, x.g, sc.g, rows, cols, 0);
        snprintf(what, sizeof(what), "scale_cols %dx%d", rows, cols);
        expect_same(what, z.g, z.c, n, TOL_ELEM);
        C->scale_cols(z.c, x.c, sc.c, rows, cols, 1);
        G->scale_cols(z.g, x.g, sc.g, rows, cols, 1);
        snprintf(what, sizeof(what), "scale_cols accumulate %dx%d", rows, cols);
        expect_same(what, z.g, z.c, n, TOL_ELEM);
        C->scale_cols(z.c, z.c, sc.c, rows, cols, 0);
        G->scale_cols(z.g, z.g, sc.g, rows, cols, 0);
        snprintf(what, sizeof(what), "scale_cols in place %dx%d", rows, cols);
        expect_same(what, z.g, z.c, n, TOL_ELEM);
        pair_free(&z);
        /* row_norms overwrite */
        Pair rn = pair_poisoned(rows);
        C->row_norms(rn.c, x.c, rows, cols);
        G->row_norms(rn.g, x.g, rows, cols);
        snprintf(what, sizeof(what), "row_norms %dx%d", rows, cols);
        expect_same(what, rn.g, rn.c, rows, TOL_ELEM);
        pair_free(&rn);
        pair_free(&x); pair_free(&b); pair_free(&sc); pair_free(&y);
    }
}
END_TEST

START_TEST(layernorm_ops) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 99;
    static const int shapes[][2] = {{1, 5}, {301, 77}, {33, 1000}, {300, 768}};
    for (size_t s = 0; s < 4; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        char what[96];
        /* inputs with a mean far from zero: the two-pass variance matters */
        float *hx = randv(n, 2, &rng);
        for (size_t i = 0; i < n; i++) hx[i] += 3.0f;
        Pair x = pair_of(hx, n);
        free(hx);
        Pair g = pair_rand(cols, 1, &rng), b = pair_rand(cols, 1, &rng);
        Pair y = pair_poisoned(n), mean = pair_poisoned(rows), rstd = pair_poisoned(rows);
        C->layernorm_fwd(y.c, mean.c, rstd.c, x.c, g.c, b.c, rows, cols, 1e-5f);
        G->layernorm_fwd(y.g, mean.g, rstd.g, x.g, g.g, b.g, rows, cols, 1e-5f);
        snprintf(what, sizeof(what), "layernorm_fwd y %dx%d", rows, cols);
        expect_same(what, y.g, y.c, n, TOL_REDUCE);
        snprintf(what, sizeof(what), "layernorm_fwd mean %dx%d", rows, cols);
        expect_same(what, mean.g, mean.c, rows, TOL_REDUCE);
        snprintf(what, sizeof(what), "layernorm_fwd rstd %dx%d", rows, cols);
        expect_same(what, rstd.g, rstd.c, rows, TOL_REDUCE);
        /* backward from the CPU's saved statistics, so both see one input */
        float *hm = get(C, mean.c, rows), *hr = get(C, rstd.c, rows);
        G->upload(mean.g, hm, sizeof(float) * rows);
        G->upload(rstd.g, hr, sizeof(float) * rows);
        free(hm); free(hr);
        Pair dy = pair_rand(n, 1, &rng), dx = pair_poisoned(n);
        Pair dg = pair_rand(cols, 1, &rng), db = pair_rand(cols, 1, &rng);
        C->layernorm_bwd(dx.c, dg.c, db.c, dy.c, x.c, mean.c, rstd.c, g.c, rows, cols);
        G->layernorm_bwd(dx.g, dg.g, db.g, dy.g, x.g, mean.g, rstd.g, g.g, rows, cols);
        snprintf(what, sizeof(what), "layernorm_bwd dx %dx%d", rows, cols);
        expect_same(what, dx.g, dx.c, n, TOL_REDUCE);
        snprintf(what, sizeof(what), "layernorm_bwd dgamma (accumulated) %dx%d", rows, cols);
        expect_same(what, dg.g, dg.c, cols, TOL_REDUCE);
        snprintf(what, sizeof(what), "layernorm_bwd dbeta (accumulated) %dx%d", rows, cols);
        expect_same(what, db.g, db.c, cols, TOL_REDUCE);
        /* frozen gamma/beta: NULL gradients are skipped */
        Pair dx2 = pair_poisoned(n);
        C->layernorm_bwd(dx2.c, NULL, NULL, dy.c, x.c, mean.c, rstd.c, g.c, rows, cols);
        G->layernorm_bwd(dx2.g, NULL, NULL, dy.g, x.g, mean.g, rstd.g, g.g, rows, cols);
        snprintf(what, sizeof(what), "layernorm_bwd frozen dx %dx%d", rows, cols);
        expect_same(what, dx2.g, dx2.c, n, TOL_REDUCE);
        pair_free(&dx2);
        pair_free(&x); pair_free(&g); pair_free(&b); pair_free(&y); pair_free(&mean);
        pair_free(&rstd); pair_free(&dy); pair_free(&dx); pair_free(&dg); pair_free(&db);
    }
}
END_TEST

/* ---- embeddings and gathers ---- */

START_TEST(embedding_ops) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 5;
    const int vocab = 53, cols = 301, n = 300;
    int32_t ids[300];
    for (int i = 0; i < n; i++) ids[i] = (int32_t)rng_below(&rng, vocab); /* with repeats */
    ids[0] = ids[1] = ids[2] = vocab - 1;
    int32_t *idc = put(C, ids, sizeof(ids)), *idg = put(G, ids, sizeof(ids));
    Pair table = pair_rand((size_t)vocab * cols, 1, &rng);
    Pair out = pair_poisoned((size_t)n * cols);
    C->embedding_fwd(out.c, idc, table.c, n, cols, 0);
    G->embedding_fwd(out.g, idg, table.g, n, cols, 0);
    expect_same("embedding_fwd", out.g, out.c, out.n, TOL_ELEM);
    C->embedding_fwd(out.c, idc, table.c, n, cols, 1);
    G->embedding_fwd(out.g, idg, table.g, n, cols, 1);
    expect_same("embedding_fwd accumulate", out.g, out.c, out.n, TOL_ELEM);
    Pair dout = pair_rand((size_t)n * cols, 1, &rng);
    C->embedding_bwd(table.c, dout.c, idc, n, cols);
    G->embedding_bwd(table.g, dout.g, idg, n, cols);
    /* repeated ids add several rows: a short reduction, in atomic order */
    expect_same("embedding_bwd (accumulated, repeated ids)", table.g, table.c, table.n, TOL_REDUCE);
    pair_free(&out); pair_free(&dout); pair_free(&table);
    C->release(idc);
    G->release(idg);

    const int B = 3, T = 300, D = 77;
    Pair x = pair_rand((size_t)B * T * D, 1, &rng), first = pair_poisoned((size_t)B * D);
    C->gather_first(first.c, x.c, B, T, D);
    G->gather_first(first.g, x.g, B, T, D);
    expect_same("gather_first B=3 T=300", first.g, first.c, first.n, TOL_ELEM);
    C->gather_first_bwd(x.c, first.c, B, T, D);
    G->gather_first_bwd(x.g, first.g, B, T, D);
    expect_same("gather_first_bwd (accumulated)", x.g, x.c, x.n, TOL_ELEM);
    pair_free(&x); pair_free(&first);
}
END_TEST

/* ---- attention ---- */

typedef struct {
    int B, T, H, D, fused, causal;
    float p;
    int mask; /* 0 none, 1 padded tails, 2 one sequence fully masked */
} AttnCase;

static void attention_case(AttnCase a) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = (uint64_t)(a.B * 1000 + a.T * 10 + a.H);
    const int Cw = a.H * a.D, N = a.B * a.T;
    /* fused: q, k, v side by side in one [N, 3C] buffer (ld = 3C); else
     * three buffers with padded rows (ld = C + 5) */
    const int ld = a.fused ? 3 * Cw : Cw + 5;
    const size_t nbuf = (size_t)N * ld;
    Pair qkv[3];
    for (int i = 0; i < 3; i++) qkv[i] = pair_rand(a.fused && i ? 0 : nbuf, 1.5, &rng);
    const float *qc = qkv[0].c, *kc = a.fused ? qkv[0].c + Cw : qkv[1].c,
                *vc = a.fused ? qkv[0].c + 2 * Cw : qkv[2].c;
    const float *qg = qkv[0].g, *kg = a.fused ? qkv[0].g + Cw : qkv[1].g,
                *vg = a.fused ? qkv[0].g + 2 * Cw : qkv[2].g;
    float *hm = malloc(sizeof(float) * N);
    for (int b = 0; b < a.B; b++)
        for (int t = 0; t < a.T; t++) {
            float keep = 1.0f;
            if (a.mask == 1) keep = t < a.T - (b * 7 + 3) % a.T ? 1.0f : 0.0f;
            if (a.mask == 2) keep = b == 1 ? 0.0f : (t < a.T - 2 ? 1.0f : 0.0f);
            hm[b * a.T + t] = keep;
        }
    Pair mask = pair_of(hm, N);
    free(hm);
    const float *mc = a.mask ? mask.c : NULL, *mg = a.mask ? mask.g : NULL;
    const size_t np = (size_t)a.B * a.H * a.T * a.T;
    Pair out = pair_poisoned((size_t)N * Cw), probs = pair_poisoned(np);
    const uint64_t seed = 0xA77E17ULL;
    C->attention_fwd(out.c, probs.c, qc, kc, vc, ld, mc, a.B, a.T, a.H, a.D, a.causal, a.p, seed);
    G->attention_fwd(out.g, probs.g, qg, kg, vg, ld, mg, a.B, a.T, a.H, a.D, a.causal, a.p, seed);
    char what[128], tag[80];
    snprintf(tag, sizeof(tag), "B%d T%d H%d D%d%s%s p%.2f m%d", a.B, a.T, a.H, a.D,
             a.fused ? " fused" : "", a.causal ? " causal" : "", a.p, a.mask);
    snprintf(what, sizeof(what), "attention_fwd probs %s", tag);
    expect_same(what, probs.g, probs.c, np, TOL_REDUCE);
    snprintf(what, sizeof(what), "attention_fwd out %s", tag);
    expect_same(what, out.g, out.c, out.n, TOL_REDUCE);

    /* backward from the CPU's probs on both, with the same dout */
    float *hp = get(C, probs.c, np);
    G->upload(probs.g, hp, sizeof(float) * np);
    free(hp);
    Pair dout = pair_rand((size_t)N * Cw, 1, &rng);
    Pair dbuf[3], scratch = pair_poisoned(np);
    for (int i = 0; i < 3; i++) dbuf[i] = pair_poisoned(a.fused && i ? 0 : nbuf);
    float *dqc = dbuf[0].c, *dkc = a.fused ? dbuf[0].c + Cw : dbuf[1].c,
          *dvc = a.fused ? dbuf[0].c + 2 * Cw : dbuf[2].c;
    float *dqg = dbuf[0].g, *dkg = a.fused ? dbuf[0].g + Cw : dbuf[1].g,
          *dvg = a.fused ? dbuf[0].g + 2 * Cw : dbuf[2].g;
    C->attention_bwd(dqc, dkc, dvc, dout.c, probs.c, qc, kc, vc, ld, a.B, a.T, a.H, a.D, a.p, seed,
                     scratch.c);
    G->attention_bwd(dqg, dkg, dvg, dout.g, probs.g, qg, kg, vg, ld, a.B, a.T, a.H, a.D, a.p, seed,
                     scratch.g);
    static const char *names[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; i++) {
        /* the [N, C] block of each gradient, at column offset i*C of the
         * fused buffer or 0 of its own; a padded buffer's padding must stay
         * NaN (unwritten) */
        const Pair *buf = a.fused ? &dbuf[0] : &dbuf[i];
        const size_t off = a.fused ? (size_t)i * Cw : 0;
        float *g = get(G, buf->g, nbuf), *c = get(C, buf->c, nbuf);
        float *gb = malloc(sizeof(float) * (size_t)N * Cw), *cb = malloc(sizeof(float) * (size_t)N * Cw);
        for (int r = 0; r < N; r++)
            for (int col = 0; col < Cw; col++) {
                gb[(size_t)r * Cw + col] = g[(size_t)r * ld + off + col];
                cb[(size_t)r * Cw + col] = c[(size_t)r * ld + off + col];
            }
        if (!a.fused)
            for (int r = 0; r < N; r++)
                for (int col = Cw; col < ld; col++)
                    ck_assert_msg(isnan(g[(size_t)r * ld + col]),
                                  "attention_bwd wrote %s's row padding (row %d column %d)",
                                  names[i], r, col);
        snprintf(what, sizeof(what), "attention_bwd %s %s", names[i], tag);
        expect_close(what, gb, cb, (size_t)N * Cw, TOL_REDUCE);
        free(g); free(c); free(gb); free(cb);
    }
    for (int i = 0; i < 3; i++) { pair_free(&qkv[i]); pair_free(&dbuf[i]); }
    pair_free(&mask); pair_free(&out); pair_free(&probs); pair_free(&dout); pair_free(&scratch);
}

START_TEST(attention_ops) {
    attention_case((AttnCase){.B = 1, .T = 300, .H = 3, .D = 17, .fused = 1, .p = 0.1f, .mask = 1});
    attention_case((AttnCase){.B = 3, .T = 37, .H = 2, .D = 24, .causal = 1});
    attention_case((AttnCase){.B = 2, .T = 45, .H = 4, .D = 8, .p = 0.25f, .mask = 2});
    attention_case((AttnCase){.B = 4, .T = 128, .H = 12, .D = 64, .fused = 1, .p = 0.1f, .mask = 1});
    attention_case((AttnCase){.B = 2, .T = 1, .H = 1, .D = 3, .causal = 1, .mask = 1});
}
END_TEST

/* ---- losses, optimizer, reductions ---- */

START_TEST(loss_ops) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 3;
    static const int shapes[][2] = {{37, 3}, {5, 1001}, {1, 2}, {64, 50257}};
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], classes = shapes[s][1];
        int32_t *lab = malloc(sizeof(int32_t) * rows);
        for (int r = 0; r < rows; r++) lab[r] = (int32_t)rng_below(&rng, classes);
        if (rows > 3) { lab[1] = -1; lab[2] = classes; } /* ignored rows */
        int32_t *lc = put(C, lab, sizeof(int32_t) * rows), *lg = put(G, lab, sizeof(int32_t) * rows);
        Pair z = pair_rand((size_t)rows * classes, 3, &rng);
        Pair loss = pair_poisoned(rows), dz = pair_poisoned(z.n);
        C->cross_entropy(loss.c, dz.c, z.c, lc, rows, classes, 0.25f);
        G->cross_entropy(loss.g, dz.g, z.g, lg, rows, classes, 0.25f);
        char what[96];
        snprintf(what, sizeof(what), "cross_entropy loss %dx%d", rows, classes);
        expect_same(what, loss.g, loss.c, rows, TOL_ELEM);
        snprintf(what, sizeof(what), "cross_entropy dlogits %dx%d", rows, classes);
        expect_same(what, dz.g, dz.c, z.n, TOL_ELEM);
        Pair loss2 = pair_poisoned(rows);
        C->cross_entropy(loss2.c, NULL, z.c, lc, rows, classes, 1.0f);
        G->cross_entropy(loss2.g, NULL, z.g, lg, rows, classes, 1.0f);
        snprintf(what, sizeof(what), "cross_entropy loss only %dx%d", rows, classes);
        expect_same(what, loss2.g, loss2.c, rows, TOL_ELEM);
        pair_free(&z); pair_free(&loss); pair_free(&dz); pair_free(&loss2);
        C->release(lc);
        G->release(lg);
        free(lab);
    }
    for (int rows = 1; rows <= 301; rows += 300) {
        Pair pred = pair_rand(rows, 1, &rng), target = pair_rand(rows, 1, &rng);
        Pair loss = pair_poisoned(rows), dp = pair_poisoned(rows);
        C->mse(loss.c, dp.c, pred.c, target.c, rows, 0.5f);
        G->mse(loss.g, dp.g, pred.g, target.g, rows, 0.5f);
        expect_same("mse loss", loss.g, loss.c, rows, TOL_ELEM);
        expect_same("mse dpred", dp.g, dp.c, rows, TOL_ELEM);
        pair_free(&pred); pair_free(&target); pair_free(&loss); pair_free(&dp);
    }
}
END_TEST

START_TEST(adamw_op) {
    const Backend *C = backend_cpu(), *G = gpu();
    uint64_t rng = 21;
    const size_t n = 10007;
    Pair p = pair_rand(n, 0.1, &rng), g = pair_rand(n, 1e-2, &rng), m = pair_rand(n, 1e-3, &rng);
    float *hv = randv(n, 1e-4, &rng);
    for (size_t i = 0; i < n; i++) hv[i] = hv[i] * hv[i];
    Pair v = pair_of(hv, n);
    free(hv);
    for (int t = 1; t <= 3; t++) {
        float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.999f, (float)t);
        C->adamw(p.c, g.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2);
        G->adamw(p.g, g.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2);
    }
    expect_same("adamw p (3 steps)", p.g, p.c, n, TOL_ELEM);
    expect_same("adamw m", m.g, m.c, n, TOL_ELEM);
    expect_same("adamw v", v.g, v.c, n, TOL_ELEM);
    pair_free(&p); pair_free(&g); pair_free(&m); pair_free(&v);
}
END_TEST

START_TEST(sumsq_op) {
    uint64_t rng = 8;
    static const size_t sizes[] = {1, 1000, 1000003, 20000001};
    for (int s = 0; s < 4; s++) {
        Pair x = pair_rand(sizes[s], 1, &rng);
        double c = backend_cpu()->sumsq(x.c, x.n), g = gpu()->sumsq(x.g, x.n);
        double g2 = gpu()->sumsq(x.g, x.n);
        printf("  sumsq n=%-9zu cpu %.17g gpu %.17g\n", sizes[s], c, g);
        ck_assert_msg(fabs(g - c) <= 1e-9 * c, "sumsq n=%zu: GPU %.17g CPU %.17g", sizes[s], g, c);
        ck_assert_msg(g == g2, "sumsq is not deterministic: %.17g then %.17g", g, g2);
        pair_free(&x);
    }
    ck_assert(gpu()->sumsq(NULL, 0) == 0.0);
}
END_TEST

START_TEST(select_with_device) {
    char err[512];
    ck_assert_ptr_eq(backend_select("auto", err, sizeof(err)), gpu());
    ck_assert_str_eq(err, "");
    ck_assert_ptr_eq(backend_select("cuda", err, sizeof(err)), gpu());
    ck_assert_ptr_eq(backend_select("cpu", err, sizeof(err)), backend_cpu());
    ck_assert_ptr_null(backend_select("tpu", err, sizeof(err)));
    ck_assert_msg(strstr(err, "tpu") && strstr(err, "auto, cpu or cuda"), "%s", err);
    ck_assert_str_eq(gpu()->name, "cuda");
}
END_TEST

/* ---- the whole model on both backends ---- */

static ModelConfig small_config(const char *type) {
    ModelConfig c;
    memset(&c, 0, sizeof(c));
    snprintf(c.model_type, sizeof(c.model_type), "%s", type);
    c.vocab_size = 61;
    c.hidden_size = 40;   /* 4 heads of 10: nothing a multiple of 32 */
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.intermediate_size = 70;
    c.max_position_embeddings = 48;
    c.type_vocab_size = strcmp(type, "bert") == 0 ? 2 : 1;
    c.pad_token_id = strcmp(type, "bert") == 0 ? 0 : 1;
    c.layer_norm_eps = 1e-5f;
    c.hidden_dropout_prob = 0.1f;
    c.attention_probs_dropout_prob = 0.1f;
    snprintf(c.hidden_act, sizeof(c.hidden_act), "gelu");
    c.num_labels = 3;
    return c;
}

/* Same random values into the tensors whose name contains part, on both. */
static void randomise_both(Model *mc, Model *mg, const char *part, uint64_t seed, double mean,
                           double std) {
    uint64_t rng = seed;
    for (int i = 0; i < mc->params.n; i++) {
        ParamTensor *pc = &mc->params.t[i], *pg = &mg->params.t[i];
        if (!strstr(pc->name, part)) continue;
        float *h = malloc(sizeof(float) * pc->numel);
        for (size_t k = 0; k < pc->numel; k++) h[k] = (float)(mean + std * rng_normal(&rng));
        mc->be->upload(pc->data, h, sizeof(float) * pc->numel);
        mg->be->upload(pg->data, h, sizeof(float) * pg->numel);
        free(h);
    }
}

static void model_case(const char *type, AdapterForm form, int bilevel) {
    ModelConfig cfg = small_config(type);
    const int B = 3, T = 19;
    ModelOptions o = {.num_labels = 3, .max_batch = B, .max_seq = T,
                      .adapter = {.rank = 4, .alpha = 8, .dropout = 0.1f, .form = form,
                                  .bilevel = bilevel, .targets = TARGET_QUERY | TARGET_VALUE |
                                                                 TARGET_INTERMEDIATE},
                      .init_seed = 11, .random_init = 1, .config = &cfg};
    char err[512];
    Model *mc, *mg;
    ck_assert_msg(model_load(&mc, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(model_load(&mg, gpu(), &o, err, sizeof(err)) == 0, "cuda: %s", err);
    ck_assert_int_eq(mc->params.n, mg->params.n);
    /* LoRA starts at B = 0, which would hide A's gradient */
    randomise_both(mc, mg, "lora_B", 5, 0.0, 0.3);
    randomise_both(mc, mg, "lora_E", 6, 0.0, 0.5);
    randomise_both(mc, mg, "lora_magnitude_vector", 7, 1.0, 0.3);

    int32_t ids[3 * 19], types[3 * 19];
    float mask[3 * 19], labels[3] = {0, 2, 1};
    uint64_t rng = 17;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int i = b * T + t, len = T - 6 * b; /* 19, 13, 7 tokens */
            ids[i] = t < len ? 3 + (int32_t)rng_below(&rng, cfg.vocab_size - 3) : cfg.pad_token_id;
            types[i] = cfg.type_vocab_size > 1 && t > len / 2 ? 1 : 0;
            mask[i] = t < len ? 1.0f : 0.0f;
        }
    Batch bt = {.B = B, .T = T, .ids = ids, .type_ids = types, .mask = mask, .labels = labels};
    char what[160];
    double loss_c = 0, loss_g = 0;
    AdamW oc, og;
    ck_assert_msg(adamw_init(&oc, backend_cpu(), &mc->params, GROUP_LOWER, 0.01f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(adamw_init(&og, gpu(), &mg->params, GROUP_LOWER, 0.01f, err, sizeof(err)) == 0, "%s", err);
    for (int step = 0; step < 2; step++) {
        uint64_t seed = 1000 + (uint64_t)step;
        Model *ms[2] = {mc, mg};
        double losses[2];
        for (int k = 0; k < 2; k++) {
            model_zero_grad(ms[k]);
            ck_assert_msg(model_forward(ms[k], &bt, 1, seed, err, sizeof(err)) == 0, "%s", err);
            losses[k] = model_loss(ms[k], &bt, 1.0f, NULL);
            model_backward(ms[k], seed);
        }
        loss_c = losses[0];
        loss_g = losses[1];
        printf("  model %s %s step %d: loss cpu %.9g gpu %.9g\n", type, ADAPTER_FORM_NAMES[form],
               step, loss_c, loss_g);
        ck_assert_msg(isfinite(loss_g) && fabs(loss_g - loss_c) <= 1e-5 * fabs(loss_c),
                      "%s %s step %d: loss GPU %.9g CPU %.9g", type, ADAPTER_FORM_NAMES[form], step,
                      loss_g, loss_c);
        for (int i = 0; i < mc->params.n; i++) {
            const ParamTensor *pc = &mc->params.t[i], *pg = &mg->params.t[i];
            ck_assert_str_eq(pc->name, pg->name);
            if (pc->group == GROUP_FROZEN) continue;
            snprintf(what, sizeof(what), "%s %s step %d grad %s", type, ADAPTER_FORM_NAMES[form],
                     step, pc->name);
            expect_same(what, pg->grad, pc->grad, pc->numel, TOL_MODEL);
        }
        /* one optimizer step on each (clipping goes through sumsq), then
         * the next step's loss must agree too */
        clip_grad_norm(backend_cpu(), &mc->params, GROUP_LOWER, 1.0);
        clip_grad_norm(gpu(), &mg->params, GROUP_LOWER, 1.0);
        adamw_step(&oc, 1e-3f);
        adamw_step(&og, 1e-3f);
    }
    /* evaluation mode (no dropout) after the updates */
    ck_assert(model_forward(mc, &bt, 0, 0, err, sizeof(err)) == 0);
    ck_assert(model_forward(mg, &bt, 0, 0, err, sizeof(err)) == 0);
    loss_c = model_loss(mc, &bt, 1.0f, NULL);
    loss_g = model_loss(mg, &bt, 1.0f, NULL);
    ck_assert_msg(fabs(loss_g - loss_c) <= 1e-4 * fabs(loss_c), "eval loss after 2 steps: GPU %.9g CPU %.9g",
                  loss_g, loss_c);
    snprintf(what, sizeof(what), "%s %s logits after 2 steps", type, ADAPTER_FORM_NAMES[form]);
    expect_same(what, model_logits(mg), model_logits(mc), (size_t)B * 3, TOL_MODEL);
    adamw_free(&oc);
    adamw_free(&og);
    model_free(mc);
    model_free(mg);
}

START_TEST(model_lora_roberta) { model_case("roberta", ADAPTER_LORA, 0); }
END_TEST
START_TEST(model_svd_bert) { model_case("bert", ADAPTER_SVD, 1); }
END_TEST
START_TEST(model_dora_roberta) { model_case("roberta", ADAPTER_DORA, 0); }
END_TEST

/* ---- without a device ---- */

START_TEST(no_device_falls_back) {
    char why[512], err[1024];
    ck_assert_ptr_null(backend_cuda(why, sizeof(why)));
    ck_assert_msg(strlen(why) > 10, "backend_cuda gave no reason: '%s'", why);
    const Backend *be = backend_select("auto", err, sizeof(err));
    ck_assert_ptr_eq(be, backend_cpu());
    ck_assert_msg(strstr(err, "CPU") && strstr(err, why), "auto fell back without saying why: '%s'", err);
    ck_assert_ptr_null(backend_select("cuda", err, sizeof(err)));
    ck_assert_msg(strstr(err, "cuda") && strstr(err, why), "cuda refused without a reason: '%s'", err);
    ck_assert_ptr_eq(backend_select("cpu", err, sizeof(err)), backend_cpu());
    ck_assert_str_eq(err, "");
    ck_assert_ptr_null(backend_select("gpu0", err, sizeof(err)));
    ck_assert_msg(strstr(err, "unknown device 'gpu0'"), "%s", err);
}
END_TEST

static Suite *device_suite(void) {
    Suite *s = suite_create("cuda_backend");
    TCase *ops = tcase_create("ops");
    tcase_add_test(ops, memory_ops);
    tcase_add_test(ops, matmul_fp32);
    tcase_add_test(ops, matmul_tf32);
    tcase_add_test(ops, elementwise_ops);
    tcase_add_test(ops, row_col_ops);
    tcase_add_test(ops, layernorm_ops);
    tcase_add_test(ops, embedding_ops);
    tcase_add_test(ops, attention_ops);
    tcase_add_test(ops, loss_ops);
    tcase_add_test(ops, adamw_op);
    tcase_add_test(ops, sumsq_op);
    tcase_add_test(ops, select_with_device);
    suite_add_tcase(s, ops);
    TCase *model = tcase_create("model");
    tcase_add_test(model, model_lora_roberta);
    tcase_add_test(model, model_svd_bert);
    tcase_add_test(model, model_dora_roberta);
    suite_add_tcase(s, model);
    return s;
}

static Suite *no_device_suite(void) {
    Suite *s = suite_create("cuda_backend (no device)");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, no_device_falls_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    char why[512];
    const Backend *be = backend_cuda(why, sizeof(why));
    Suite *s;
    if (!be) {
        printf("test_cuda_backend: skipped: %s\n", why);
        s = no_device_suite();
    } else {
        char desc[512] = "";
#ifdef BILORA_CUDA
        backend_cuda_describe(desc, sizeof(desc));
#endif
        printf("test_cuda_backend: on %s\n", desc);
        s = device_suite();
    }
    fflush(stdout);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
