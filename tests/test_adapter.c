/* Adapter forms on their own: the regularizers' gradients by central finite
 * differences (relative 1e-2 + 1e-4 absolute, float32 with ε = 1e-3), the
 * λ parameterisations, and DoRA's initial magnitude. The forms' forward and
 * backward inside a model are checked in test_model.c. */
#include "engine/adapter.h"
#include "engine/rng.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Adapter ad;
    float *mem;
} Bench;

static void make(Bench *b, AdapterForm form, LambdaParam lp, int in, int out, int r) {
    memset(b, 0, sizeof(*b));
    size_t n = 4 * ((size_t)r * in + (size_t)out * r + r + out) + (size_t)r * r + out + 4 * (size_t)out * in + 64;
    b->mem = calloc(n, sizeof(float));
    float *p = b->mem;
    Adapter *a = &b->ad;
    a->form = form; a->lambda_param = lp; a->in = in; a->out = out; a->rank = r; a->scale = 2.0f;
    a->A = p; p += r * in; a->dA = p; p += r * in;
    a->B = p; p += out * r; a->dB = p; p += out * r;
    a->E = p; p += r; a->dE = p; p += r;
    a->m = p; p += out; a->dm = p; p += out;
    a->small = p; p += (r * r > out ? r * r : out);
    a->V = p; p += out * in;
    float *w0 = p; p += out * in;
    uint64_t rng = 3;
    for (int i = 0; i < out * in; i++) w0[i] = (float)rng_normal(&rng);
    a->W0 = w0;
    for (int i = 0; i < r * in; i++) a->A[i] = (float)(0.5 * rng_normal(&rng));
    for (int i = 0; i < out * r; i++) a->B[i] = (float)(0.5 * rng_normal(&rng));
    for (int i = 0; i < r; i++) a->E[i] = (float)rng_normal(&rng);
}

static void check_fd(const char *what, float *x, const float *g, int n, double (*f)(Adapter *),
                     Adapter *a) {
    for (int i = 0; i < n; i++) {
        float old = x[i];
        x[i] = old + 1e-3f;
        double p = f(a);
        x[i] = old - 1e-3f;
        double m = f(a);
        x[i] = old;
        double num = (p - m) / 2e-3;
        ck_assert_msg(fabs(num - g[i]) <= 1e-2 * fmax(fabs(num), fabs(g[i])) + 1e-4,
                      "%s[%d]: analytic %.6g numeric %.6g", what, i, g[i], num);
    }
}

static double orth(Adapter *a) { return adapter_orth_reg(backend_cpu(), a, 0.0f); }
static double entropy(Adapter *a) { return adapter_entropy_reg(backend_cpu(), a, 0.0f); }

START_TEST(orthogonality_regularizer_gradient) {
    Bench b;
    make(&b, ADAPTER_SVD, LAMBDA_REAL, 7, 5, 3);
    double v = adapter_orth_reg(backend_cpu(), &b.ad, 1.0f);
    ck_assert(v > 0);
    check_fd("dR1/dQ", b.ad.A, b.ad.dA, 3 * 7, orth, &b.ad);
    check_fd("dR1/dP", b.ad.B, b.ad.dB, 5 * 3, orth, &b.ad);
    /* orthonormal rows/columns give R1 = 0 */
    memset(b.ad.A, 0, sizeof(float) * 21);
    memset(b.ad.B, 0, sizeof(float) * 15);
    for (int i = 0; i < 3; i++) { b.ad.A[i * 7 + i] = 1; b.ad.B[i * 3 + i] = 1; }
    ck_assert(fabs(orth(&b.ad)) < 1e-12);
    free(b.mem);
}
END_TEST

START_TEST(entropy_regularizer_gradient) {
    Bench b;
    make(&b, ADAPTER_SVD, LAMBDA_SIGMOID, 4, 4, 6);
    double h = adapter_entropy_reg(backend_cpu(), &b.ad, 1.0f);
    ck_assert(h > 0 && h < 6 * log(2.0) + 1e-9);
    check_fd("dR2/dE", b.ad.E, b.ad.dE, 6, entropy, &b.ad);
    /* λ = 1/2 everywhere is the maximum, r·ln 2 */
    memset(b.ad.E, 0, sizeof(float) * 6);
    ck_assert(fabs(entropy(&b.ad) - 6 * log(2.0)) < 1e-6);
    /* other parameterisations have no R2 */
    b.ad.lambda_param = LAMBDA_SOFTMAX;
    ck_assert(entropy(&b.ad) == 0.0);
    free(b.mem);
}
END_TEST

START_TEST(lambda_parameterisations) {
    Bench b;
    make(&b, ADAPTER_SVD, LAMBDA_SOFTMAX, 4, 4, 5);
    float lam[5];
    adapter_lambda(backend_cpu(), &b.ad, lam);
    double s = 0;
    for (int i = 0; i < 5; i++) { ck_assert(lam[i] > 0); s += lam[i]; }
    ck_assert(fabs(s - 1.0) < 1e-6);
    uint64_t rng = 1;
    adapter_init(backend_cpu(), &b.ad, &rng); /* E = 0: softmax gives 1/r */
    adapter_lambda(backend_cpu(), &b.ad, lam);
    for (int i = 0; i < 5; i++) ck_assert(fabsf(lam[i] - 0.2f) < 1e-7f);
    b.ad.lambda_param = LAMBDA_SIGMOID;
    adapter_lambda(backend_cpu(), &b.ad, lam);
    for (int i = 0; i < 5; i++) ck_assert(fabsf(lam[i] - 0.5f) < 1e-7f);
    b.ad.lambda_param = LAMBDA_REAL; /* AdaLoRA: ΔW starts at 0 through λ = 0 */
    adapter_lambda(backend_cpu(), &b.ad, lam);
    for (int i = 0; i < 5; i++) ck_assert(lam[i] == 0.0f);
    free(b.mem);
}
END_TEST

/* --svd-init lora: Q drawn as LoRA's A (Kaiming-uniform, |q| <= 1/sqrt(in)),
 * P = 0 so ΔW = s·P·diag(λ)·Q = 0, and λ nonzero for every
 * parameterisation (real starts at 1), so P's gradient s·dYᵀ·X·Qᵀ·diag(λ)
 * is full-size from the first step. */
START_TEST(svd_lora_init) {
    const LambdaParam lps[3] = {LAMBDA_REAL, LAMBDA_SOFTMAX, LAMBDA_SIGMOID};
    const float want[3] = {1.0f, 0.25f, 0.5f};
    for (int k = 0; k < 3; k++) {
        Bench b;
        make(&b, ADAPTER_SVD, lps[k], 16, 6, 4);
        b.ad.svd_init = SVD_INIT_LORA;
        uint64_t rng = 7;
        adapter_init(backend_cpu(), &b.ad, &rng);
        for (int i = 0; i < 6 * 4; i++) ck_assert(b.ad.B[i] == 0.0f);
        double qmax = 0;
        for (int i = 0; i < 4 * 16; i++) qmax = fmax(qmax, fabs(b.ad.A[i]));
        ck_assert_msg(qmax > 0.05 && qmax <= 0.25 + 1e-7, "max |Q| %g: expected Kaiming-uniform, bound 1/4", qmax);
        float lam[4];
        adapter_lambda(backend_cpu(), &b.ad, lam);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(fabsf(lam[i] - want[k]) < 1e-6f, "%s λ[%d] = %g, expected %g", LAMBDA_PARAM_NAMES[k], i,
                          lam[i], want[k]);
        free(b.mem);
    }
}
END_TEST

START_TEST(dora_magnitude_starts_at_row_norms) {
    Bench b;
    make(&b, ADAPTER_DORA, LAMBDA_REAL, 6, 4, 2);
    uint64_t rng = 1;
    adapter_init(backend_cpu(), &b.ad, &rng);
    for (int o = 0; o < 4; o++) {
        double s = 0;
        for (int i = 0; i < 6; i++) s += (double)b.ad.W0[o * 6 + i] * b.ad.W0[o * 6 + i];
        ck_assert(fabs(b.ad.m[o] - sqrt(s)) < 1e-5);
    }
    for (int i = 0; i < 4 * 2; i++) ck_assert(b.ad.B[i] == 0.0f); /* ΔW starts at 0 */
    free(b.mem);
}
END_TEST

int main(void) {
    Suite *s = suite_create("adapter");
    TCase *tc = tcase_create("forms");
    tcase_add_test(tc, orthogonality_regularizer_gradient);
    tcase_add_test(tc, entropy_regularizer_gradient);
    tcase_add_test(tc, lambda_parameterisations);
    tcase_add_test(tc, dora_magnitude_starts_at_row_norms);
    tcase_add_test(tc, svd_lora_init);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
