/* Adapters: an adapter wraps one frozen linear layer y = x W0ᵀ + b and adds
 * a trainable update. Forms (x̃ = dropout(x) on the adapter path):
 *
 *   lora: y = x W0ᵀ + b + s · (x̃ Aᵀ) Bᵀ
 *         A: r×in (Kaiming-uniform, as PEFT), B: out×r (zero), s = alpha/r.
 *   svd:  y = x W0ᵀ + b + s · (x̃ Qᵀ) diag(λ) Pᵀ          (AdaLoRA's layout)
 *         Q = lora_A: r×in, P = lora_B: out×r (both normal(0, 0.02), as
 *         PEFT's AdaLoRA), λ = f(lora_E) with f = identity ("real", E = 0),
 *         softmax ("softmax", E = 0 so λ = 1/r) or sigmoid ("sigmoid", E = 0
 *         so λ = 1/2). AdaLoRA starts at ΔW = 0 through λ = 0; the softmax
 *         and sigmoid forms cannot, so their ΔW starts small through P and Q.
 *         svd_init lora instead: Q as lora's A, P = 0 (real λ = 1).
 *   dora: y = c ⊙ (x W0ᵀ + s · (x̃ Aᵀ) Bᵀ) + b,  c = m / ‖W0 + s·B·A‖_row
 *         with the row norm treated as a constant in the backward pass
 *         (DoRA §4.3, as PEFT computes it); m = lora_magnitude_vector: out,
 *         initialised to the row norms of W0; A, B as lora.
 *
 * Regularizers (svd): R1 = ‖PᵀP − I‖²_F + ‖QQᵀ − I‖²_F; R2 = entropy of
 * sigmoid λ = −Σ λ log λ + (1−λ) log(1−λ).
 * Each form registers its tensors with a parameter group (params.h). */
#ifndef BILORA_ENGINE_ADAPTER_H
#define BILORA_ENGINE_ADAPTER_H

#include "engine/params.h"
#include "kernels/backend.h"

typedef enum { ADAPTER_LORA = 0, ADAPTER_SVD = 1, ADAPTER_DORA = 2 } AdapterForm;
typedef enum { LAMBDA_REAL = 0, LAMBDA_SOFTMAX = 1, LAMBDA_SIGMOID = 2 } LambdaParam;
/* How the svd form starts: adalora (P, Q ~ N(0, 0.02), E = 0, as PEFT's
 * AdaLoRA) or lora (Q Kaiming-uniform like LoRA's A, P = 0 like LoRA's B,
 * so ΔW = 0 for every λ while P's gradient is full-size from the first
 * step; real λ starts at 1, since λ = 0 would leave every gradient 0). */
typedef enum { SVD_INIT_ADALORA = 0, SVD_INIT_LORA = 1 } SvdInit;

extern const char *const ADAPTER_FORM_NAMES[3];  /* "lora", "svd", "dora" */
extern const char *const LAMBDA_PARAM_NAMES[3];  /* "real", "softmax", "sigmoid" */

typedef struct {
    AdapterForm form;
    LambdaParam lambda_param;
    SvdInit svd_init;
    int in, out, rank;
    float scale;      /* alpha / r */
    float dropout;    /* on the adapter's input */
    float *A, *B;     /* lora/dora: A r×in, B out×r; svd: Q = A, P = B */
    float *dA, *dB;
    float *E, *dE;    /* svd: λ's free vector [r] */
    float *m, *dm;    /* dora: magnitude [out] */
    const float *W0;  /* dora: the wrapped frozen weight [out,in] */
    /* activations and scratch, sized for the model's largest batch */
    float *xd;        /* dropped input [N,in]; NULL when dropout == 0 */
    float *xa;        /* x̃ Aᵀ [N,r] */
    float *dxa;       /* [N,r] */
    float *lam;       /* svd: λ [r] */
    float *Pl, *dPl;  /* svd: P diag(λ) and its gradient [out,r] */
    float *small;     /* [max(r*r, out, r)] scratch */
    float *V;         /* dora: W0 + s B A [out,in] */
    float *norm, *c;  /* dora: row norms of V, and m / norm [out] */
    float *z;         /* dora: x W0ᵀ + s·lora(x) before scaling [N,out] */
    float *dz;        /* dora: [N,out] */
    int norm_frozen;  /* dora: reuse the last row norms (the backward treats
                         them as constants; gradient checks freeze them too) */
} Adapter;

/* The adapter's share of a linear layer's forward: lora/svd add to y (which
 * holds x W0ᵀ + b); dora is called with y = x W0ᵀ (no bias) and turns it
 * into c ⊙ (y + lora) (the caller adds the bias after). */
void adapter_forward(const Backend *be, Adapter *ad, const float *x, float *y, int N, int train,
                     uint64_t seed);

/* Backward. For lora/svd, dy is the output gradient; for dora, dy is the
 * output gradient and *dy_base is set to the gradient the base matmul must
 * use (c ⊙ dy). Accumulates the adapter's parameter gradients and adds the
 * adapter path's input gradient into dx (when dx != NULL).
 * scratch_in: [N,in] floats (used only with dropout). */
void adapter_backward(const Backend *be, Adapter *ad, const float *x, const float *dy, float *dx,
                      int N, uint64_t seed, float *scratch_in);
/* dora: the gradient of the base path, c ⊙ dy, into ad->dz; returns it. */
const float *adapter_dora_scale_grad(const Backend *be, Adapter *ad, const float *dy, int N);

/* Host-side initialisation from a seeded generator (see the forms above).
 * dora reads W0 for m. */
void adapter_init(const Backend *be, Adapter *ad, uint64_t *rng);

/* R1 of an svd adapter; with gamma != 0 adds gamma·∂R1 to dA, dB. */
double adapter_orth_reg(const Backend *be, Adapter *ad, float gamma);
/* R2 of an svd adapter (sigmoid λ only, else 0); with gamma != 0 adds
 * gamma·∂R2/∂E to dE. */
double adapter_entropy_reg(const Backend *be, Adapter *ad, float gamma);

/* The adapter's current λ (svd) on the host, r floats. */
void adapter_lambda(const Backend *be, const Adapter *ad, float *out);

#endif
