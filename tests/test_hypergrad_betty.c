/* Hypergradients against Betty (betty-ml 0.1.1, the bi-level library the
 * BiLoRA paper used), on a tiny nonlinear bi-level problem mirrored from
 * tests/reference/gen_betty_hypergrad.py (which drives Betty's Engine with
 * two ImplicitProblems and stores what Betty hands the upper optimizer):
 *
 *   V (lower, 37): a 2-layer tanh MLP  f(x) = w2·tanh(W1 (x⊙s) + b1) + b2,
 *                  flattened W1 [6×4] row-major, b1 [6], w2 [6], b2 [1]
 *   E (upper, 5):  s [4] per-feature input scales, rho [1] (log weight decay)
 *   L1 = mean_D1 bce(f, y) + ½ e^rho (‖W1‖² + ‖w2‖²)     (D1: 16 rows)
 *   L2 = mean_D2 bce(f, y)                                (D2: 12 rows)
 *   bce(f, y) = softplus(f) − y f
 *
 * The losses and gradients are written here by hand (double accumulations,
 * float at the HyperProblem interface), then hypergrad_compute runs each
 * method with the same V, E and batches as Betty:
 *   darts          radius 0.01, no ξ   (Betty: darts_alpha = 0.01)
 *   neumann K1 α1  (Betty's defaults neumann_iterations = 1, alpha = 1)
 *   neumann K3 α.5
 * Tolerances:
 *   - the port of the problem (L1, L2, ∇L1, ∇L2 vs float64 autograd rounded
 *     to float32): losses 1e-6 relative, gradients 1e-5 of each vector's
 *     largest entry + 1e-6 absolute (V is at L1's minimizer: ∇_V L1 ≈ 0);
 *   - the hypergradient: max |ours − Betty| ≤ 1e-3 × max |Betty|, and the
 *     implicit part alone (hyper − ∇_E L2) to 2e-3 of its own largest entry:
 *     float32 finite differences (perturbations of norm 0.01 on parameters
 *     of size ~1, gradients rounded to float) against Betty's float64 (darts:
 *     the same central difference; neumann: exact Hessian-vector products).
 * The reference file is made by the generator; a missing file is a failure. */
#include "engine/hypergrad.h"
#include "engine/safetensors.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D 4
#define H 6
#define N1 16
#define N2 12
#define NL (H * D + H + H + 1)
#define NU (D + 1)

typedef struct {
    float V[NL], E[NU];
    float x1[N1 * D], y1[N1], x2[N2 * D], y2[N2];
} Tiny;

/* Loss and gradients of level 1 (D1, with the weight decay) or 2 (D2). */
static double tiny_grad(void *ctx, int level, float *gl, float *gu) {
    const Tiny *t = ctx;
    const float *W1 = t->V, *b1 = t->V + H * D, *w2 = b1 + H, *b2 = w2 + H;
    const float *s = t->E;
    const double rho = t->E[D];
    const float *x = level == 1 ? t->x1 : t->x2, *y = level == 1 ? t->y1 : t->y2;
    const int n = level == 1 ? N1 : N2;
    double dW1[H * D] = {0}, db1[H] = {0}, dw2[H] = {0}, db2 = 0, ds[D] = {0}, loss = 0;
    for (int i = 0; i < n; i++) {
        double xs[D], a[H], f = b2[0];
        for (int k = 0; k < D; k++) xs[k] = (double)x[i * D + k] * s[k];
        for (int j = 0; j < H; j++) {
            double z = b1[j];
            for (int k = 0; k < D; k++) z += (double)W1[j * D + k] * xs[k];
            a[j] = tanh(z);
            f += (double)w2[j] * a[j];
        }
        loss += fmax(f, 0.0) + log1p(exp(-fabs(f))) - y[i] * f;
        double df = (1.0 / (1.0 + exp(-f)) - y[i]) / n;
        db2 += df;
        for (int j = 0; j < H; j++) {
            dw2[j] += df * a[j];
            double dz = df * w2[j] * (1.0 - a[j] * a[j]);
            db1[j] += dz;
            for (int k = 0; k < D; k++) {
                dW1[j * D + k] += dz * xs[k];
                ds[k] += dz * W1[j * D + k] * x[i * D + k];
            }
        }
    }
    loss /= n;
    double drho = 0;
    if (level == 1) {
        double lam = exp(rho), sq = 0;
        for (int j = 0; j < H * D; j++) { dW1[j] += lam * W1[j]; sq += (double)W1[j] * W1[j]; }
        for (int j = 0; j < H; j++) { dw2[j] += lam * w2[j]; sq += (double)w2[j] * w2[j]; }
        loss += 0.5 * lam * sq;
        drho = 0.5 * lam * sq;
    }
    for (int j = 0; j < H * D; j++) gl[j] = (float)dW1[j];
    for (int j = 0; j < H; j++) {
        gl[H * D + j] = (float)db1[j];
        gl[H * D + H + j] = (float)dw2[j];
    }
    gl[NL - 1] = (float)db2;
    for (int k = 0; k < D; k++) gu[k] = (float)ds[k];
    gu[D] = (float)drho;
    return loss;
}
static void tiny_get(void *ctx, float *dst) { memcpy(dst, ((Tiny *)ctx)->V, sizeof(float) * NL); }
static void tiny_set(void *ctx, const float *src) { memcpy(((Tiny *)ctx)->V, src, sizeof(float) * NL); }

static const char *ref_path(char *buf, size_t cap) {
    const char *r = getenv("BILORA_REF_DIR");
    snprintf(buf, cap, "%s/betty/hypergrad.safetensors", r && *r ? r : "build/reference");
    return buf;
}

static void read_exact(const SafeTensors *st, const char *name, float *dst, int64_t n) {
    const StTensor *t = st_find(st, name);
    ck_assert_msg(t != NULL, "%s: no tensor '%s' (regenerate with tests/reference/gen_betty_hypergrad.py)",
                  st->path, name);
    ck_assert_msg(t->numel == n, "%s: '%s' has %lld values, expected %lld", st->path, name,
                  (long long)t->numel, (long long)n);
    st_read_f32(st, t, dst);
}

static SafeTensors ref;
static Tiny tiny;
static HyperProblem pb;
static HyperWork work;

static void setup(void) {
    char path[1024], err[1024];
    ref_path(path, sizeof(path));
    ck_assert_msg(st_open(&ref, path, err, sizeof(err)) == 0,
                  "%s\n(the Betty reference is made by: .venv/bin/python "
                  "tests/reference/gen_betty_hypergrad.py $BILORA_REF_DIR; scripts/run-tests.sh runs it)",
                  err);
    read_exact(&ref, "V", tiny.V, NL);
    read_exact(&ref, "E", tiny.E, NU);
    read_exact(&ref, "x1", tiny.x1, N1 * D);
    read_exact(&ref, "y1", tiny.y1, N1);
    read_exact(&ref, "x2", tiny.x2, N2 * D);
    read_exact(&ref, "y2", tiny.y2, N2);
    pb = (HyperProblem){.ctx = &tiny, .n_lower = NL, .n_upper = NU, .grad = tiny_grad,
                        .get_lower = tiny_get, .set_lower = tiny_set};
    ck_assert_int_eq(hyperwork_init(&work, backend_cpu(), NL, NU), 0);
}

static void teardown(void) {
    hyperwork_free(&work);
    st_close(&ref);
}

/* max |a − b| / max |b| */
static double rel_max(const float *a, const float *b, int n, double *scale_out) {
    double scale = 0, diff = 0;
    for (int i = 0; i < n; i++) {
        scale = fmax(scale, fabs(b[i]));
        diff = fmax(diff, fabs((double)a[i] - b[i]));
    }
    if (scale_out) *scale_out = scale;
    return scale > 0 ? diff / scale : diff;
}

START_TEST(problem_port_matches_autograd) {
    float gl[NL], gu[NU], want_l[NL], want_u[NU], want_loss[1];
    const char *names[2][3] = {{"loss1", "grad_V_L1", "grad_E_L1"}, {"loss2", "grad_V_L2", "grad_E_L2"}};
    for (int level = 1; level <= 2; level++) {
        double loss = tiny_grad(&tiny, level, gl, gu);
        read_exact(&ref, names[level - 1][0], want_loss, 1);
        read_exact(&ref, names[level - 1][1], want_l, NL);
        read_exact(&ref, names[level - 1][2], want_u, NU);
        double sl, su, rl = rel_max(gl, want_l, NL, &sl), ru = rel_max(gu, want_u, NU, &su);
        fprintf(stderr, "L%d = %.7f (autograd %.7f); grad_V max|diff| %.1e of %.2g, grad_E %.1e of %.2g\n",
                level, loss, want_loss[0], rl * sl, sl, ru * su, su);
        ck_assert_msg(fabs(loss - want_loss[0]) <= 1e-6 * fabs(want_loss[0]), "L%d %.8g vs %.8g", level,
                      loss, want_loss[0]);
        /* V sits at L1's minimizer, so grad_V L1 is ~0: an absolute floor of 1e-6 */
        ck_assert_msg(rl * sl <= 1e-5 * sl + 1e-6, "grad_V L%d: max |diff| %.3g of %.3g", level, rl * sl, sl);
        ck_assert_msg(ru * su <= 1e-5 * su + 1e-6, "grad_E L%d: max |diff| %.3g of %.3g", level, ru * su, su);
    }
}
END_TEST

static void compare(const char *label, const HypergradOptions *o, const char *ref_name) {
    float got[NU], want[NU], direct[NU], V0[NL], V1[NL];
    read_exact(&ref, ref_name, want, NU);
    read_exact(&ref, "grad_E_L2", direct, NU);
    tiny_get(&tiny, V0);
    double loss2 = 0, norm_v = 0;
    int evals = hypergrad_compute(&pb, o, NULL, got, &work, &loss2, &norm_v);
    tiny_get(&tiny, V1);
    ck_assert_msg(memcmp(V0, V1, sizeof(V0)) == 0, "%s: lower parameters not restored", label);
    double scale, rel = rel_max(got, want, NU, &scale);
    float imp_got[NU], imp_want[NU];
    for (int k = 0; k < NU; k++) {
        imp_got[k] = got[k] - direct[k];
        imp_want[k] = want[k] - direct[k];
    }
    double iscale, irel = rel_max(imp_got, imp_want, NU, &iscale);
    fprintf(stderr, "%-16s (%d gradient evaluations)\n", label, evals);
    for (int k = 0; k < NU; k++)
        fprintf(stderr, "  E[%d] %-4s ours % .7f  Betty % .7f  diff % .1e   (implicit part % .7f)\n", k,
                k < D ? "s" : "rho", got[k], want[k], got[k] - want[k], imp_want[k]);
    fprintf(stderr, "  max|diff| / max|Betty| = %.2e; implicit part: %.2e of %.3g\n", rel, irel, iscale);
    ck_assert_msg(rel <= 1e-3, "%s: hypergradient differs from Betty by %.3g of its scale %.3g", label, rel,
                  scale);
    if (o->method != HYPERGRAD_FIRST_ORDER) {
        ck_assert_msg(iscale > 1e-3, "%s: Betty's implicit term is too small to test (%.3g)", label, iscale);
        ck_assert_msg(irel <= 2e-3, "%s: implicit term differs from Betty's by %.3g of its scale %.3g", label,
                      irel, iscale);
    }
}

START_TEST(first_order_matches) {
    HypergradOptions o = {.method = HYPERGRAD_FIRST_ORDER};
    compare("first-order", &o, "grad_E_L2");
}
END_TEST

START_TEST(darts_matches_betty) {
    HypergradOptions o = {.method = HYPERGRAD_DARTS, .darts_radius = 0.01f, .darts_xi = 0.0f,
                          .neumann_steps = 1, .neumann_alpha = 1.0f};
    compare("darts", &o, "hyper.darts");
}
END_TEST

START_TEST(neumann_defaults_match_betty) {
    HypergradOptions o = {.method = HYPERGRAD_NEUMANN, .darts_radius = 0.01f, .neumann_steps = 1,
                          .neumann_alpha = 1.0f};
    compare("neumann K=1 a=1", &o, "hyper.neumann_k1_a1");
}
END_TEST

START_TEST(neumann_k3_matches_betty) {
    HypergradOptions o = {.method = HYPERGRAD_NEUMANN, .darts_radius = 0.01f, .neumann_steps = 3,
                          .neumann_alpha = 0.5f};
    compare("neumann K=3 a=0.5", &o, "hyper.neumann_k3_a0.5");
}
END_TEST

int main(void) {
    Suite *s = suite_create("hypergrad_betty");
    TCase *tc = tcase_create("betty");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, problem_port_matches_autograd);
    tcase_add_test(tc, first_order_matches);
    tcase_add_test(tc, darts_matches_betty);
    tcase_add_test(tc, neumann_defaults_match_betty);
    tcase_add_test(tc, neumann_k3_matches_betty);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
