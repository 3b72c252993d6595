#include "engine/adapter.h"

#include "engine/rng.h"

#include <math.h>
#include <stdlib.h>

void adapter_forward(const Backend *be, Adapter *ad, const float *x, float *y, int N, int train,
                     uint64_t seed) {
    const float *xin = x;
    if (ad->dropout > 0.0f && train) {
        be->dropout_fwd(ad->xd, x, (size_t)N * ad->in, ad->dropout, seed);
        xin = ad->xd;
    }
    /* xa = x Aᵀ : [N,r];  y += s · xa Bᵀ */
    be->matmul(0, 1, N, ad->rank, ad->in, 1.0f, xin, ad->in, ad->A, ad->in, 0.0f, ad->xa, ad->rank);
    be->matmul(0, 1, N, ad->out, ad->rank, ad->scale, ad->xa, ad->rank, ad->B, ad->rank, 1.0f, y,
               ad->out);
}

void adapter_backward(const Backend *be, Adapter *ad, const float *x, const float *dy, float *dx,
                      int N, uint64_t seed, float *scratch_in) {
    int dropped = ad->dropout > 0.0f && ad->xd != NULL;
    const float *xin = dropped ? ad->xd : x;
    /* dB += s · dyᵀ xa : [out,r] */
    be->matmul(1, 0, ad->out, ad->rank, N, ad->scale, dy, ad->out, ad->xa, ad->rank, 1.0f, ad->dB,
               ad->rank);
    /* dxa = s · dy B : [N,r] */
    be->matmul(0, 0, N, ad->rank, ad->out, ad->scale, dy, ad->out, ad->B, ad->rank, 0.0f, ad->dxa,
               ad->rank);
    /* dA += dxaᵀ xin : [r,in] */
    be->matmul(1, 0, ad->rank, ad->in, N, 1.0f, ad->dxa, ad->rank, xin, ad->in, 1.0f, ad->dA,
               ad->in);
    if (!dx) return;
    if (dropped) {
        be->matmul(0, 0, N, ad->in, ad->rank, 1.0f, ad->dxa, ad->rank, ad->A, ad->in, 0.0f,
                   scratch_in, ad->in);
        be->dropout_bwd(scratch_in, scratch_in, (size_t)N * ad->in, ad->dropout, seed);
        be->axpy(dx, 1.0f, scratch_in, (size_t)N * ad->in);
    } else {
        be->matmul(0, 0, N, ad->in, ad->rank, 1.0f, ad->dxa, ad->rank, ad->A, ad->in, 1.0f, dx,
                   ad->in);
    }
}

void adapter_init(const Backend *be, Adapter *ad, uint64_t *rng) {
    size_t n = (size_t)ad->rank * ad->in;
    float *h = malloc(sizeof(float) * n);
    if (!h) return;
    /* kaiming_uniform_(a=√5) on a [r, in] weight: bound = 1/√in */
    double bound = 1.0 / sqrt((double)ad->in);
    for (size_t i = 0; i < n; i++) h[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
    be->upload(ad->A, h, sizeof(float) * n);
    free(h);
    be->zero(ad->B, sizeof(float) * (size_t)ad->out * ad->rank);
}
