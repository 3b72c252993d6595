#include "engine/adapter.h"

#include "engine/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const ADAPTER_FORM_NAMES[3] = {"lora", "svd", "dora"};
const char *const LAMBDA_PARAM_NAMES[3] = {"real", "softmax", "sigmoid"};

/* λ = f(E) on the host: r is small (≤ a few hundred). */
static void lambda_of(LambdaParam p, const float *e, float *lam, int r) {
    if (p == LAMBDA_REAL) {
        memcpy(lam, e, sizeof(float) * r);
    } else if (p == LAMBDA_SIGMOID) {
        for (int i = 0; i < r; i++) lam[i] = 1.0f / (1.0f + expf(-e[i]));
    } else {
        float mx = e[0];
        for (int i = 1; i < r; i++) mx = fmaxf(mx, e[i]);
        double s = 0;
        for (int i = 0; i < r; i++) s += exp((double)e[i] - mx);
        for (int i = 0; i < r; i++) lam[i] = (float)(exp((double)e[i] - mx) / s);
    }
}

/* dE from dλ through f (host). */
static void lambda_backward(LambdaParam p, const float *lam, const float *dlam, float *de, int r) {
    if (p == LAMBDA_REAL) {
        memcpy(de, dlam, sizeof(float) * r);
    } else if (p == LAMBDA_SIGMOID) {
        for (int i = 0; i < r; i++) de[i] = dlam[i] * lam[i] * (1.0f - lam[i]);
    } else {
        double dot = 0;
        for (int i = 0; i < r; i++) dot += (double)dlam[i] * lam[i];
        for (int i = 0; i < r; i++) de[i] = lam[i] * (dlam[i] - (float)dot);
    }
}

/* Adds a host vector into a backend vector: dst += h. */
static void add_host(const Backend *be, float *dst, const float *h, int n, float *scratch) {
    be->upload(scratch, h, sizeof(float) * n);
    be->axpy(dst, 1.0f, scratch, (size_t)n);
}

void adapter_lambda(const Backend *be, const Adapter *ad, float *out) {
    float *e = malloc(sizeof(float) * ad->rank);
    if (!e) return;
    be->download(e, ad->E, sizeof(float) * ad->rank);
    lambda_of(ad->lambda_param, e, out, ad->rank);
    free(e);
}

void adapter_forward(const Backend *be, Adapter *ad, const float *x, float *y, int N, int train,
                     uint64_t seed) {
    const int r = ad->rank;
    const float *xin = x;
    if (ad->dropout > 0.0f && train) {
        be->dropout_fwd(ad->xd, x, (size_t)N * ad->in, ad->dropout, seed);
        xin = ad->xd;
    }
    /* xa = x̃ Aᵀ : [N,r] (for svd, A is Q) */
    be->matmul(0, 1, N, r, ad->in, 1.0f, xin, ad->in, ad->A, ad->in, 0.0f, ad->xa, r);
    if (ad->form == ADAPTER_SVD) {
        float *lam = malloc(sizeof(float) * r);
        if (!lam) return;
        adapter_lambda(be, ad, lam);
        be->upload(ad->lam, lam, sizeof(float) * r);
        free(lam);
        /* P' = P diag(λ); y += s · xa P'ᵀ */
        be->scale_cols(ad->Pl, ad->B, ad->lam, ad->out, r, 0);
        be->matmul(0, 1, N, ad->out, r, ad->scale, ad->xa, r, ad->Pl, r, 1.0f, y, ad->out);
        return;
    }
    be->matmul(0, 1, N, ad->out, r, ad->scale, ad->xa, r, ad->B, r, 1.0f, y, ad->out);
    if (ad->form == ADAPTER_DORA) {
        /* y holds z = x W0ᵀ + s·lora; norms of V = W0 + s B A, detached */
        if (!ad->norm_frozen) {
            be->copy(ad->V, ad->W0, sizeof(float) * (size_t)ad->out * ad->in);
            be->matmul(0, 0, ad->out, ad->in, r, ad->scale, ad->B, r, ad->A, ad->in, 1.0f, ad->V,
                       ad->in);
            be->row_norms(ad->norm, ad->V, ad->out, ad->in);
        }
        float *h = malloc(sizeof(float) * 2 * ad->out);
        if (!h) return;
        be->download(h, ad->m, sizeof(float) * ad->out);
        be->download(h + ad->out, ad->norm, sizeof(float) * ad->out);
        for (int o = 0; o < ad->out; o++) h[o] = h[o] / fmaxf(h[ad->out + o], 1e-12f);
        be->upload(ad->c, h, sizeof(float) * ad->out);
        free(h);
        be->copy(ad->z, y, sizeof(float) * (size_t)N * ad->out);
        be->scale_cols(y, ad->z, ad->c, N, ad->out, 0);
    }
}

const float *adapter_dora_scale_grad(const Backend *be, Adapter *ad, const float *dy, int N) {
    be->scale_cols(ad->dz, dy, ad->c, N, ad->out, 0);
    return ad->dz;
}

void adapter_backward(const Backend *be, Adapter *ad, const float *x, const float *dy, float *dx,
                      int N, uint64_t seed, float *scratch_in) {
    const int r = ad->rank;
    int dropped = ad->dropout > 0.0f && ad->xd != NULL;
    const float *xin = dropped ? ad->xd : x;
    const float *g = dy; /* gradient at the adapter's output */
    if (ad->form == ADAPTER_DORA) {
        /* dm_o = Σ_n dy·z / ‖V_o‖ ; the LoRA path sees c ⊙ dy */
        float *h = malloc(sizeof(float) * 2 * ad->out);
        if (!h) return;
        float *tmp = ad->small;
        be->zero(tmp, sizeof(float) * ad->out);
        be->col_dot(tmp, dy, ad->z, N, ad->out);
        be->download(h, tmp, sizeof(float) * ad->out);
        be->download(h + ad->out, ad->norm, sizeof(float) * ad->out);
        for (int o = 0; o < ad->out; o++) h[o] /= fmaxf(h[ad->out + o], 1e-12f);
        add_host(be, ad->dm, h, ad->out, tmp);
        free(h);
        g = ad->dz; /* set by adapter_dora_scale_grad before the base backward */
    }
    if (ad->form == ADAPTER_SVD) {
        /* dP' = s·gᵀ xa; dP += dP' diag(λ); dλ_j = Σ_o dP'_oj P_oj */
        be->matmul(1, 0, ad->out, r, N, ad->scale, g, ad->out, ad->xa, r, 0.0f, ad->dPl, r);
        be->scale_cols(ad->dB, ad->dPl, ad->lam, ad->out, r, 1);
        be->zero(ad->small, sizeof(float) * r);
        be->col_dot(ad->small, ad->dPl, ad->B, ad->out, r);
        float *h = malloc(sizeof(float) * 3 * r);
        if (!h) return;
        be->download(h, ad->small, sizeof(float) * r);
        be->download(h + r, ad->lam, sizeof(float) * r);
        lambda_backward(ad->lambda_param, h + r, h, h + 2 * r, r);
        add_host(be, ad->dE, h + 2 * r, r, ad->small);
        free(h);
        /* dxa = s·g P' */
        be->matmul(0, 0, N, r, ad->out, ad->scale, g, ad->out, ad->Pl, r, 0.0f, ad->dxa, r);
    } else {
        /* dB += s·gᵀ xa ; dxa = s·g B */
        be->matmul(1, 0, ad->out, r, N, ad->scale, g, ad->out, ad->xa, r, 1.0f, ad->dB, r);
        be->matmul(0, 0, N, r, ad->out, ad->scale, g, ad->out, ad->B, r, 0.0f, ad->dxa, r);
    }
    /* dA += dxaᵀ x̃ */
    be->matmul(1, 0, r, ad->in, N, 1.0f, ad->dxa, r, xin, ad->in, 1.0f, ad->dA, ad->in);
    if (!dx) return;
    if (dropped) {
        be->matmul(0, 0, N, ad->in, r, 1.0f, ad->dxa, r, ad->A, ad->in, 0.0f, scratch_in, ad->in);
        be->dropout_bwd(scratch_in, scratch_in, (size_t)N * ad->in, ad->dropout, seed);
        be->axpy(dx, 1.0f, scratch_in, (size_t)N * ad->in);
    } else {
        be->matmul(0, 0, N, ad->in, r, 1.0f, ad->dxa, r, ad->A, ad->in, 1.0f, dx, ad->in);
    }
}

static void upload_normal(const Backend *be, float *dst, size_t n, double std, uint64_t *rng) {
    float *h = malloc(sizeof(float) * n);
    if (!h) return;
    for (size_t i = 0; i < n; i++) h[i] = (float)(rng_normal(rng) * std);
    be->upload(dst, h, sizeof(float) * n);
    free(h);
}

void adapter_init(const Backend *be, Adapter *ad, uint64_t *rng) {
    size_t na = (size_t)ad->rank * ad->in, nb = (size_t)ad->out * ad->rank;
    if (ad->form == ADAPTER_SVD && ad->svd_init == SVD_INIT_ADALORA) {
        upload_normal(be, ad->A, na, 0.02, rng);
        upload_normal(be, ad->B, nb, 0.02, rng);
        be->zero(ad->E, sizeof(float) * ad->rank);
        return;
    }
    float *h = malloc(sizeof(float) * na);
    if (!h) return;
    /* kaiming_uniform_(a=√5) on a [r, in] weight: bound = 1/√in */
    double bound = 1.0 / sqrt((double)ad->in);
    for (size_t i = 0; i < na; i++) h[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
    be->upload(ad->A, h, sizeof(float) * na);
    free(h);
    be->zero(ad->B, sizeof(float) * nb);
    if (ad->form == ADAPTER_DORA) be->row_norms(ad->m, ad->W0, ad->out, ad->in);
    if (ad->form == ADAPTER_SVD) { /* svd_init lora: Q as LoRA's A, P = 0 */
        float *e = malloc(sizeof(float) * ad->rank);
        if (!e) return;
        for (int i = 0; i < ad->rank; i++) e[i] = ad->lambda_param == LAMBDA_REAL ? 1.0f : 0.0f;
        be->upload(ad->E, e, sizeof(float) * ad->rank);
        free(e);
    }
}

/* ‖G − I‖² and, with gamma, d += gamma·4·M(G − I) or 4(G − I)M.
 * G = PᵀP (for P out×r) or QQᵀ (for Q r×in); r×r on the host. */
static double orth_term(const Backend *be, const float *M, float *dM, int rows, int cols,
                        int gram_of_columns, int r, float gamma, float *scratch) {
    /* gram_of_columns: M is rows×r, G = MᵀM; else M is r×cols, G = MMᵀ */
    if (gram_of_columns) be->matmul(1, 0, r, r, rows, 1.0f, M, r, M, r, 0.0f, scratch, r);
    else be->matmul(0, 1, r, r, cols, 1.0f, M, cols, M, cols, 0.0f, scratch, r);
    float *g = malloc(sizeof(float) * r * r);
    if (!g) return NAN;
    be->download(g, scratch, sizeof(float) * r * r);
    double v = 0;
    for (int i = 0; i < r; i++) g[i * r + i] -= 1.0f;
    for (int i = 0; i < r * r; i++) v += (double)g[i] * g[i];
    if (gamma != 0.0f) {
        be->upload(scratch, g, sizeof(float) * r * r);
        if (gram_of_columns) /* d(‖PᵀP−I‖²)/dP = 4 P (PᵀP − I) */
            be->matmul(0, 0, rows, r, r, 4.0f * gamma, M, r, scratch, r, 1.0f, dM, r);
        else /* d(‖QQᵀ−I‖²)/dQ = 4 (QQᵀ − I) Q */
            be->matmul(0, 0, r, cols, r, 4.0f * gamma, scratch, r, M, cols, 1.0f, dM, cols);
    }
    free(g);
    return v;
}

double adapter_orth_reg(const Backend *be, Adapter *ad, float gamma) {
    if (ad->form != ADAPTER_SVD) return 0.0;
    double v = orth_term(be, ad->B, ad->dB, ad->out, 0, 1, ad->rank, gamma, ad->small);
    v += orth_term(be, ad->A, ad->dA, 0, ad->in, 0, ad->rank, gamma, ad->small);
    return v;
}

double adapter_entropy_reg(const Backend *be, Adapter *ad, float gamma) {
    if (ad->form != ADAPTER_SVD || ad->lambda_param != LAMBDA_SIGMOID) return 0.0;
    int r = ad->rank;
    float *e = malloc(sizeof(float) * 2 * r);
    if (!e) return NAN;
    be->download(e, ad->E, sizeof(float) * r);
    double h = 0;
    for (int i = 0; i < r; i++) {
        double l = 1.0 / (1.0 + exp(-(double)e[i]));
        double a = l > 1e-12 ? l * log(l) : 0.0, b = l < 1 - 1e-12 ? (1 - l) * log(1 - l) : 0.0;
        h -= a + b;
        /* dH/dE = dH/dλ · λ(1−λ) = log((1−λ)/λ)·λ(1−λ) = −E·λ(1−λ) */
        e[r + i] = (float)(gamma * -(double)e[i] * l * (1 - l));
    }
    if (gamma != 0.0f) add_host(be, ad->dE, e + r, r, ad->small);
    free(e);
    return h;
}
