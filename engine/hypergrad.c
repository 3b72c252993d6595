#include "engine/hypergrad.h"

#include <math.h>
#include <string.h>

const char *const HYPERGRAD_NAMES[3] = {"first-order", "darts", "neumann"};

int hypergrad_parse(const char *name, HypergradMethod *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, HYPERGRAD_NAMES[i]) == 0) {
            *out = (HypergradMethod)i;
            return 0;
        }
    return -1;
}

int hyperwork_init(HyperWork *w, const Backend *be, size_t nl, size_t nu) {
    memset(w, 0, sizeof(*w));
    w->be = be;
    w->nl = nl;
    w->nu = nu;
    size_t L = sizeof(float) * (nl ? nl : 1), U = sizeof(float) * (nu ? nu : 1);
    float **lower[] = {&w->v, &w->p, &w->hvec, &w->Vt, &w->glp, &w->glm, &w->V0, &w->Vfd};
    float **upper[] = {&w->gu2, &w->gup, &w->gum, &w->mixed};
    for (size_t i = 0; i < sizeof(lower) / sizeof(lower[0]); i++)
        if (!(*lower[i] = be->alloc(L))) { hyperwork_free(w); return -1; }
    for (size_t i = 0; i < sizeof(upper) / sizeof(upper[0]); i++)
        if (!(*upper[i] = be->alloc(U))) { hyperwork_free(w); return -1; }
    return 0;
}

void hyperwork_free(HyperWork *w) {
    if (!w->be) return;
    float *all[] = {w->v, w->p, w->hvec, w->Vt, w->glp, w->glm, w->V0, w->Vfd,
                    w->gu2, w->gup, w->gum, w->mixed};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]) w->be->release(all[i]);
    memset(w, 0, sizeof(*w));
}

/* Central difference of ∇L1 along d at the point Vfd:
 *   out_lower = (∇_V L1(Vfd + εd) − ∇_V L1(Vfd − εd)) / (2ε)   (when non-NULL)
 *   out_upper = (∇_E L1(Vfd + εd) − ∇_E L1(Vfd − εd)) / (2ε)   (when non-NULL)
 * Leaves the lower parameters at Vfd − εd: the caller restores them. */
static void central_diff(const HyperProblem *pb, HyperWork *w, const float *d, double eps,
                         float *out_lower, float *out_upper) {
    const Backend *be = w->be;
    size_t nl = w->nl, nu = w->nu;
    float s = (float)(1.0 / (2.0 * eps));
    be->copy(w->Vt, w->Vfd, sizeof(float) * nl);
    be->axpy(w->Vt, (float)eps, d, nl);
    pb->set_lower(pb->ctx, w->Vt);
    pb->grad(pb->ctx, 1, w->glp, w->gup);
    be->copy(w->Vt, w->Vfd, sizeof(float) * nl);
    be->axpy(w->Vt, (float)-eps, d, nl);
    pb->set_lower(pb->ctx, w->Vt);
    pb->grad(pb->ctx, 1, w->glm, w->gum);
    if (out_lower) {
        be->copy(out_lower, w->glp, sizeof(float) * nl);
        be->axpy(out_lower, -1.0f, w->glm, nl);
        be->scale(out_lower, s, nl);
    }
    if (out_upper) {
        be->copy(out_upper, w->gup, sizeof(float) * nu);
        be->axpy(out_upper, -1.0f, w->gum, nu);
        be->scale(out_upper, s, nu);
    }
}

int hypergrad_compute(const HyperProblem *pb, const HypergradOptions *o, const float *fd_point,
                      float *out, HyperWork *w, double *loss2, double *norm_v) {
    w->neumann_growth = NAN;
    const Backend *be = w->be;
    size_t nl = w->nl, nu = w->nu;
    int evals = 0;
    /* ∇L2 at the current parameters: v = ∇_V L2, out = ∇_E L2 */
    double l2 = pb->grad(pb->ctx, 2, w->v, w->gu2);
    evals++;
    if (loss2) *loss2 = l2;
    double nv = sqrt(be->sumsq(w->v, nl));
    if (norm_v) *norm_v = nv;
    be->copy(out, w->gu2, sizeof(float) * nu);
    if (o->method == HYPERGRAD_FIRST_ORDER || nv == 0.0 || nl == 0) return evals;

    pb->get_lower(pb->ctx, w->V0); /* restored bit-exactly at the end */
    be->copy(w->Vfd, fd_point ? fd_point : w->V0, sizeof(float) * nl);
    if (o->method == HYPERGRAD_DARTS) {
        central_diff(pb, w, w->v, o->darts_radius / nv, NULL, w->mixed);
        evals += 2;
        float xi = o->darts_xi > 0.0f ? o->darts_xi : 1.0f;
        be->axpy(out, -xi, w->mixed, nu);
    } else {
        be->copy(w->p, w->v, sizeof(float) * nl);
        double n0 = sqrt(be->sumsq(w->v, nl));
        for (int k = 0; k < o->neumann_steps; k++) {
            double n = sqrt(be->sumsq(w->v, nl));
            if (n == 0.0) break;
            central_diff(pb, w, w->v, o->darts_radius / n, w->hvec, NULL); /* H v */
            evals += 2;
            be->axpy(w->v, -o->neumann_alpha, w->hvec, nl);
            be->axpy(w->p, 1.0f, w->v, nl);
        }
        if (o->neumann_steps > 0 && n0 > 0.0) w->neumann_growth = sqrt(be->sumsq(w->v, nl)) / n0;
        be->scale(w->p, o->neumann_alpha, nl);
        double np = sqrt(be->sumsq(w->p, nl));
        if (np > 0.0) {
            central_diff(pb, w, w->p, o->darts_radius / np, NULL, w->mixed);
            evals += 2;
            be->axpy(out, -1.0f, w->mixed, nu);
        }
    }
    pb->set_lower(pb->ctx, w->V0);
    return evals;
}
