/* Adapters: an adapter wraps one frozen linear layer y = x Wᵀ + b and adds
 * a trainable update. Forms:
 *   lora: y += s · (drop(x) Aᵀ) Bᵀ,  A: r×in (Kaiming-uniform, as PEFT),
 *         B: out×r (zero), s = alpha / r.
 * Each form registers its tensors with a parameter group (params.h). */
#ifndef BILORA_ENGINE_ADAPTER_H
#define BILORA_ENGINE_ADAPTER_H

#include "engine/params.h"
#include "kernels/backend.h"

typedef enum { ADAPTER_LORA = 0 } AdapterForm;

typedef struct {
    AdapterForm form;
    int in, out, rank;
    float scale;      /* alpha / r */
    float dropout;    /* on the adapter's input */
    float *A, *B;     /* parameters (backend memory) */
    float *dA, *dB;   /* gradients */
    /* activations, sized for the model's largest batch */
    float *xd;        /* dropped input [N,in]; NULL when dropout == 0 */
    float *xa;        /* x Aᵀ [N,r] */
    float *dxa;       /* scratch [N,r] */
} Adapter;

/* y += adapter(x). x: [N,in], y: [N,out]. train selects dropout. */
void adapter_forward(const Backend *be, Adapter *ad, const float *x, float *y, int N, int train,
                     uint64_t seed);
/* Given dy, accumulates dA, dB and adds the input gradient into dx.
 * scratch_in: [N,in] floats (used only with dropout). */
void adapter_backward(const Backend *be, Adapter *ad, const float *x, const float *dy, float *dx,
                      int N, uint64_t seed, float *scratch_in);

/* Host-side initialisation of A (Kaiming-uniform with a = √5, as
 * nn.Linear and PEFT do: bound 1/√in) from a seeded generator; B = 0. */
void adapter_init(const Backend *be, Adapter *ad, uint64_t *rng);

#endif
