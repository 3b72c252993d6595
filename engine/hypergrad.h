/* Hypergradients of a bi-level problem
 *     min_E  L2(V*(E), E)   s.t.  V*(E) = argmin_V L1(V, E)
 * from first-order gradients only (DESIGN.md, "The method in one screen"):
 *
 *   first-order: ∇_E L2 at the current V.
 *   darts:       v = ∇_V L2; ε = radius/‖v‖; g± = ∇_E L1(V ± ε v);
 *                hyper = ∇_E L2 − ξ (g+ − g−)/(2ε)   (Betty: ξ = 1, i.e. no
 *                learning-rate factor; darts_xi > 0 applies DARTS's ξ).
 *   neumann:     p ≈ H⁻¹ v, H = ∇²_VV L1, by K Neumann terms: p = v; repeat K:
 *                v ← v − α H v, p ← p + v; then p ← α p; each H x a central
 *                difference of ∇_V L1 at V ± ε x; hyper = ∇_E L2 −
 *                (∇_E L1(V + ε p) − ∇_E L1(V − ε p))/(2ε).
 *
 * The problem is given as callbacks, so the same code runs on a model (the
 * trainer) and on small closed-form problems (the tests). All vectors are
 * backend memory. The lower parameters are restored bit-exactly afterwards. */
#ifndef BILORA_ENGINE_HYPERGRAD_H
#define BILORA_ENGINE_HYPERGRAD_H

#include "kernels/backend.h"

#include <stddef.h>

typedef enum { HYPERGRAD_FIRST_ORDER = 0, HYPERGRAD_DARTS = 1, HYPERGRAD_NEUMANN = 2 } HypergradMethod;
extern const char *const HYPERGRAD_NAMES[3]; /* "first-order", "darts", "neumann" */
int hypergrad_parse(const char *name, HypergradMethod *out);

typedef struct {
    void *ctx;
    size_t n_lower, n_upper;
    /* Gradients of objective `level` (1: L1 on its batch, 2: L2 on its
     * batch) at the current parameters into g_lower [n_lower] and g_upper
     * [n_upper]; returns the objective's value. */
    double (*grad)(void *ctx, int level, float *g_lower, float *g_upper);
    void (*get_lower)(void *ctx, float *dst);
    void (*set_lower)(void *ctx, const float *src);
} HyperProblem;

typedef struct {
    HypergradMethod method;
    float darts_radius;   /* 0.01, as Betty */
    float darts_xi;       /* <= 0: no factor (Betty); > 0: DARTS's ξ */
    int neumann_steps;    /* K, Betty's default 1 */
    float neumann_alpha;  /* α, Betty's default 1.0 */
} HypergradOptions;

typedef struct {
    const Backend *be;
    size_t nl, nu;
    /* lower-sized */
    float *v, *p, *hvec, *Vt, *glp, *glm, *V0, *Vfd;
    /* upper-sized */
    float *gu2, *gup, *gum, *mixed;
    /* neumann: ‖(I − αH)^K v‖ / ‖v‖ of the last call, the size of its last
     * term against its first (> 1: the series grows, α is too large for
     * this H); NAN for the other methods or K = 0 */
    double neumann_growth;
} HyperWork;

int hyperwork_init(HyperWork *w, const Backend *be, size_t n_lower, size_t n_upper);
void hyperwork_free(HyperWork *w);

/* Writes the hypergradient into out [n_upper]. fd_point: the lower
 * parameters at which the second-order finite differences are taken (NULL:
 * the current ones). *loss2 gets L2 at the current parameters; *norm_v the
 * norm of ∇_V L2. Returns the number of gradient evaluations used. */
int hypergrad_compute(const HyperProblem *pb, const HypergradOptions *o, const float *fd_point,
                      float *out, HyperWork *w, double *loss2, double *norm_v);

#endif
