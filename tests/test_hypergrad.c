/* Hypergradients that can fail:
 *
 * 1. darts = the derivative of the one-step unrolled objective. On a tiny
 *    model built here (BERT, 1 layer, hidden 8, svd adapters rank 2 on
 *    query/value: the lower level is P, Q and the head, the upper level λ's
 *    free vector), with ξ = the lower learning rate and the finite
 *    difference taken at the lower parameters before the SGD step,
 *        darts(E) = d/dE L2(V − ξ ∇_V L1(V, E), E)
 *    exactly, up to finite-difference error. The right side is computed
 *    independently by central differences over E (h = 1e-2, float32).
 *    Tolerance: 1% of the largest component + 2e-6 absolute; the test
 *    first checks that the second-order term is large enough (> 10% of
 *    the first-order hypergradient) for the comparison to mean something.
 * 2. neumann → the implicit-function-theorem value as K grows, on a
 *    quadratic lower level with a closed-form solution: error after K terms
 *    shrinks like ‖I − αA‖^(K+1); at K = 40 below 1e-4 relative. */
#include "engine/bilevel.h"
#include "engine/hypergrad.h"
#include "engine/rng.h"
#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. darts vs the unrolled objective on a tiny model ---- */

static Batch make_batch(int32_t *ids, float *mask, float *labels, int32_t *types) {
    Batch b = {.B = 2, .T = 5, .ids = ids, .type_ids = types, .mask = mask, .labels = labels};
    return b;
}

/* L2 after one SGD step of the lower level from V0 at upper value E. */
static double unrolled(Model *m, ModelProblem *mp, HyperProblem *pb, const float *V0, float xi,
                       float *gl, float *gu) {
    pb->set_lower(mp, V0);
    pb->grad(mp, 1, gl, gu);
    float *V = malloc(sizeof(float) * pb->n_lower);
    for (size_t i = 0; i < pb->n_lower; i++) V[i] = V0[i] - xi * gl[i];
    pb->set_lower(mp, V);
    free(V);
    char err[128];
    model_forward(m, mp->batch[2], 0, 0, err, sizeof(err));
    return model_loss(m, mp->batch[2], 1.0f, NULL);
}

START_TEST(darts_equals_unrolled_derivative) {
    char dir[256];
    fixture_tmpdir(dir);
    TinyModel spec = {.model_type = "bert", .layers = 1, .hidden = 8, .heads = 2,
                      .intermediate = 8, .vocab = 17, .max_pos = 8, .type_vocab = 2, .seed = 21};
    ck_assert_int_eq(fixture_tiny_model(dir, &spec), 0);
    ModelOptions o = {.model_dir = dir, .num_labels = 2, .max_batch = 2, .max_seq = 5,
                      .adapter = {.rank = 2, .alpha = 2, .form = ADAPTER_SVD, .lambda = LAMBDA_SOFTMAX,
                                  .bilevel = 1, .targets = TARGET_QUERY | TARGET_VALUE},
                      .init_seed = 4};
    Model *m;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    /* make λ and P, Q matter: larger adapters than the 0.02 init */
    uint64_t rng = 8;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        double std = strstr(p->name, "lora_E") ? 1.0 : strstr(p->name, "lora_") ? 0.7 : 0.0;
        if (std > 0) for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(std * rng_normal(&rng));
    }
    int32_t ids1[10] = {1, 4, 5, 6, 2, 1, 7, 2, 0, 0}, ids2[10] = {1, 9, 3, 3, 2, 1, 11, 12, 13, 2};
    int32_t types[10] = {0};
    float m1[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, m2[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    float y1[2] = {0, 1}, y2[2] = {1, 0};
    Batch b1 = make_batch(ids1, m1, y1, types), b2 = make_batch(ids2, m2, y2, types);
    ModelProblem mp = {.m = m, .batch = {NULL, &b1, &b2}, .train = 0};
    HyperProblem pb;
    model_problem_bind(&pb, &mp);
    ck_assert(pb.n_lower > 50 && pb.n_upper == 4);
    size_t nl = pb.n_lower, nu = pb.n_upper;
    float *V0 = malloc(4 * nl), *gl = malloc(4 * nl), *gu = malloc(4 * nu), *E = malloc(4 * nu);
    float *hyper = malloc(4 * nu), *first = malloc(4 * nu);
    pb.get_lower(&mp, V0);
    group_gather(m->be, &m->params, GROUP_UPPER, 0, E);
    const float xi = 0.5f;
    /* the lower SGD step, then the hypergradient with the FD at V0 */
    unrolled(m, &mp, &pb, V0, xi, gl, gu);
    HyperWork w;
    ck_assert_int_eq(hyperwork_init(&w, m->be, nl, nu), 0);
    HypergradOptions ho = {.method = HYPERGRAD_DARTS, .darts_radius = 0.01f, .darts_xi = xi};
    hypergrad_compute(&pb, &ho, V0, hyper, &w, NULL, NULL);
    ho.method = HYPERGRAD_FIRST_ORDER;
    hypergrad_compute(&pb, &ho, NULL, first, &w, NULL, NULL);
    /* independent: central differences of the unrolled objective over E */
    double scale = 0, second = 0;
    double numeric[8];
    for (size_t j = 0; j < nu; j++) {
        const float h = 1e-2f;
        float old = E[j];
        E[j] = old + h;
        group_scatter(m->be, &m->params, GROUP_UPPER, 0, E);
        double lp = unrolled(m, &mp, &pb, V0, xi, gl, gu);
        E[j] = old - h;
        group_scatter(m->be, &m->params, GROUP_UPPER, 0, E);
        double lm = unrolled(m, &mp, &pb, V0, xi, gl, gu);
        E[j] = old;
        group_scatter(m->be, &m->params, GROUP_UPPER, 0, E);
        numeric[j] = (lp - lm) / (2.0 * h);
        scale = fmax(scale, fabs(numeric[j]));
        second = fmax(second, fabs(hyper[j] - first[j]));
    }
    ck_assert_msg(second > 0.1 * scale, "second-order term too small to test (%.3g vs %.3g)", second, scale);
    for (size_t j = 0; j < nu; j++) {
        fprintf(stderr, "darts[%zu] = % .6f   unrolled FD = % .6f   first-order = % .6f\n", j,
                hyper[j], numeric[j], first[j]);
        ck_assert_msg(fabs(hyper[j] - numeric[j]) <= 0.01 * scale + 2e-6,
                      "E[%zu]: darts %.6g, unrolled %.6g", j, hyper[j], numeric[j]);
    }
    /* the lower parameters were restored exactly */
    float *Vnow = malloc(4 * nl), *Vstep = malloc(4 * nl);
    unrolled(m, &mp, &pb, V0, xi, gl, gu);
    pb.get_lower(&mp, Vstep);
    ho.method = HYPERGRAD_DARTS;
    hypergrad_compute(&pb, &ho, V0, hyper, &w, NULL, NULL);
    pb.get_lower(&mp, Vnow);
    ck_assert(memcmp(Vnow, Vstep, 4 * nl) == 0);
    hyperwork_free(&w);
    free(V0); free(gl); free(gu); free(E); free(hyper); free(first); free(Vnow); free(Vstep);
    model_free(m);
    fixture_rmdir(dir);
}
END_TEST

/* ---- 2. neumann on a quadratic lower level ---- */

#define NV 3
#define NE 2
typedef struct {
    float V[NV], E[NE];
    double A[NV][NV], Bm[NV][NE], t[NV], c;
} Quad;

/* L1 = ½ VᵀAV − Vᵀ B E ; L2 = ½‖V − t‖² + ½ c ‖E‖² */
static double quad_grad(void *ctx, int level, float *gl, float *gu) {
    Quad *q = ctx;
    double loss = 0;
    if (level == 1) {
        for (int i = 0; i < NV; i++) {
            double av = 0, be = 0;
            for (int j = 0; j < NV; j++) av += q->A[i][j] * q->V[j];
            for (int j = 0; j < NE; j++) be += q->Bm[i][j] * q->E[j];
            gl[i] = (float)(av - be);
            loss += 0.5 * q->V[i] * av - q->V[i] * be;
        }
        for (int j = 0; j < NE; j++) {
            double s = 0;
            for (int i = 0; i < NV; i++) s += q->Bm[i][j] * q->V[i];
            gu[j] = (float)-s;
        }
    } else {
        for (int i = 0; i < NV; i++) {
            gl[i] = (float)(q->V[i] - q->t[i]);
            loss += 0.5 * gl[i] * gl[i];
        }
        for (int j = 0; j < NE; j++) {
            gu[j] = (float)(q->c * q->E[j]);
            loss += 0.5 * q->c * q->E[j] * q->E[j];
        }
    }
    return loss;
}
static void quad_get(void *ctx, float *dst) { memcpy(dst, ((Quad *)ctx)->V, sizeof(float) * NV); }
static void quad_set(void *ctx, const float *src) { memcpy(((Quad *)ctx)->V, src, sizeof(float) * NV); }

START_TEST(neumann_approaches_implicit_function_value) {
    /* A = QΛQᵀ-like SPD with eigenvalues in (0.3, 1.2): ‖I − A‖ < 1 */
    Quad q = {.A = {{1.0, 0.2, 0.0}, {0.2, 0.7, 0.1}, {0.0, 0.1, 0.5}},
              .Bm = {{1.0, 0.5}, {-0.3, 0.8}, {0.6, -0.4}},
              .t = {0.3, -0.2, 0.5}, .c = 0.1, .E = {0.7, -0.4}};
    /* V = V*(E) = A⁻¹ B E, solved by Gauss-Seidel in double */
    double V[NV] = {0}, rhs[NV];
    for (int i = 0; i < NV; i++) rhs[i] = q.Bm[i][0] * q.E[0] + q.Bm[i][1] * q.E[1];
    for (int it = 0; it < 500; it++)
        for (int i = 0; i < NV; i++) {
            double s = rhs[i];
            for (int j = 0; j < NV; j++) if (j != i) s -= q.A[i][j] * V[j];
            V[i] = s / q.A[i][i];
        }
    for (int i = 0; i < NV; i++) q.V[i] = (float)V[i];
    /* IFT: hyper = cE + Bᵀ A⁻¹ (V − t) */
    double u[NV] = {0}, r2[NV];
    for (int i = 0; i < NV; i++) r2[i] = V[i] - q.t[i];
    for (int it = 0; it < 500; it++)
        for (int i = 0; i < NV; i++) {
            double s = r2[i];
            for (int j = 0; j < NV; j++) if (j != i) s -= q.A[i][j] * u[j];
            u[i] = s / q.A[i][i];
        }
    double ift[NE];
    for (int j = 0; j < NE; j++) {
        ift[j] = q.c * q.E[j];
        for (int i = 0; i < NV; i++) ift[j] += q.Bm[i][j] * u[i];
    }
    HyperProblem pb = {.ctx = &q, .n_lower = NV, .n_upper = NE, .grad = quad_grad,
                       .get_lower = quad_get, .set_lower = quad_set};
    HyperWork w;
    ck_assert_int_eq(hyperwork_init(&w, backend_cpu(), NV, NE), 0);
    double prev = INFINITY;
    int ks[] = {0, 1, 2, 5, 10, 20, 40};
    for (size_t k = 0; k < sizeof(ks) / sizeof(ks[0]); k++) {
        HypergradOptions o = {.method = HYPERGRAD_NEUMANN, .darts_radius = 0.01f,
                              .neumann_steps = ks[k], .neumann_alpha = 1.0f};
        float h[NE];
        hypergrad_compute(&pb, &o, NULL, h, &w, NULL, NULL);
        double e = 0, n = 0;
        for (int j = 0; j < NE; j++) {
            e += (h[j] - ift[j]) * (h[j] - ift[j]);
            n += ift[j] * ift[j];
        }
        e = sqrt(e / n);
        fprintf(stderr, "neumann K=%2d: relative error to the IFT hypergradient %.2e\n", ks[k], e);
        ck_assert_msg(e < prev + 1e-6, "K=%d: error %.3g did not shrink (%.3g)", ks[k], e, prev);
        prev = e;
    }
    ck_assert_msg(prev < 1e-4, "K=40 error %.3g", prev);
    ck_assert_msg(w.neumann_growth < 1.0, "converging series reported growth %.3g", w.neumann_growth);
    /* α = 5: ‖I − αA‖ > 1 (A's largest eigenvalue is above 1), so the terms
     * grow; the work says so (the run warns) */
    HypergradOptions big = {.method = HYPERGRAD_NEUMANN, .darts_radius = 0.01f, .neumann_steps = 5,
                            .neumann_alpha = 5.0f};
    float hb[NE];
    hypergrad_compute(&pb, &big, NULL, hb, &w, NULL, NULL);
    fprintf(stderr, "neumann α=5, K=5: last term / first %.3g\n", w.neumann_growth);
    ck_assert_msg(w.neumann_growth > 10.0, "diverging series reported growth %.3g", w.neumann_growth);
    /* first-order ignores the implicit term and is far off */
    HypergradOptions fo = {.method = HYPERGRAD_FIRST_ORDER};
    float h[NE];
    hypergrad_compute(&pb, &fo, NULL, h, &w, NULL, NULL);
    ck_assert(fabs(h[0] - ift[0]) > 0.05);
    hyperwork_free(&w);
}
END_TEST

int main(void) {
    Suite *s = suite_create("hypergrad");
    TCase *tc = tcase_create("hypergrad");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, darts_equals_unrolled_derivative);
    tcase_add_test(tc, neumann_approaches_implicit_function_value);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
