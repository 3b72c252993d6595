/* The numeric primitives, one interface, two backends (cpu, cuda).
 *
 * Engine code is written once against `const Backend *be` and runs on both.
 * All pointers passed to the ops are backend memory (from be->alloc); the
 * host sees it only through upload/download. Matrices are row-major.
 * The CPU backend is the reference that the CUDA backend is tested against.
 *
 * Conventions: "_fwd" ops overwrite their output; "_bwd" ops overwrite the
 * input gradient (dx) and ACCUMULATE into parameter gradients (dg, db,
 * dtable, dbias), so a caller zeroes parameter gradients once per step.
 * A NULL parameter-gradient pointer means "frozen: skip".
 *
 * Dropout is counter-based: the mask of element i is a hash of (seed, i),
 * so the backward pass regenerates it and no mask is stored. */
#ifndef BILORA_KERNELS_BACKEND_H
#define BILORA_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct Backend Backend;

struct Backend {
    const char *name;

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes);              /* zero-filled; NULL on failure */
    void (*release)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);

    /* ---- matmul: C = alpha * op(A) @ op(B) + beta * C, row-major.
     * op(A) is M x K, op(B) is K x N; lda/ldb/ldc are row strides of the
     * stored matrices. ---- */
    void (*matmul)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);

    /* ---- elementwise and row ops ---- */
    void (*add_bias)(float *y, const float *bias, int rows, int cols);   /* y[r,:] += bias */
    void (*bias_grad)(float *dbias, const float *dy, int rows, int cols); /* dbias += Σ_r dy[r,:] */
    void (*axpy)(float *y, float a, const float *x, size_t n);           /* y += a*x */
    /* y[r,c] = x[r,c]·s[c] (y += when accumulate); y may equal x */
    void (*scale_cols)(float *y, const float *x, const float *s, int rows, int cols, int accumulate);
    void (*col_dot)(float *out, const float *a, const float *b, int rows, int cols); /* out[c] += Σ_r a·b */
    void (*row_norms)(float *out, const float *x, int rows, int cols);  /* out[r] = ‖x[r,:]‖ */
    void (*scale)(float *x, float a, size_t n);
    void (*gelu_fwd)(float *y, const float *x, size_t n);               /* erf form */
    void (*gelu_bwd)(float *dx, const float *x, const float *dy, size_t n);
    /* tanh form (GPT-2's "gelu_new"): x (1 + tanh(√(2/π)(x + 0.044715 x³))) / 2 */
    void (*gelu_tanh_fwd)(float *y, const float *x, size_t n);
    void (*gelu_tanh_bwd)(float *dx, const float *x, const float *dy, size_t n);
    void (*tanh_fwd)(float *y, const float *x, size_t n);
    void (*tanh_bwd)(float *dx, const float *y, const float *dy, size_t n); /* y = tanh(x) */
    /* y = x * keep / (1-p); p == 0 copies. y may equal x. */
    void (*dropout_fwd)(float *y, const float *x, size_t n, float p, uint64_t seed);
    void (*dropout_bwd)(float *dx, const float *dy, size_t n, float p, uint64_t seed);

    /* ---- layer norm over the last dimension ---- */
    void (*layernorm_fwd)(float *y, float *mean, float *rstd, const float *x,
                          const float *gamma, const float *beta, int rows, int cols, float eps);
    void (*layernorm_bwd)(float *dx, float *dgamma, float *dbeta, const float *dy,
                          const float *x, const float *mean, const float *rstd,
                          const float *gamma, int rows, int cols);

    /* ---- embeddings: out[i,:] (+)= table[ids[i],:] ---- */
    void (*embedding_fwd)(float *out, const int32_t *ids, const float *table, int n, int cols,
                          int accumulate);
    void (*embedding_bwd)(float *dtable, const float *dout, const int32_t *ids, int n, int cols);
    /* out[b,:] = x[b*T + 0, :]: the first token of each sequence */
    void (*gather_first)(float *out, const float *x, int B, int T, int cols);
    void (*gather_first_bwd)(float *dx, const float *dout, int B, int T, int cols); /* dx += */

    /* ---- multi-head attention ----
     * q, k, v: [B*T rows, H*D cols] with row stride ld (so a fused qkv
     * buffer works). key_mask: [B*T] 1 = attend, 0 = padding, or NULL.
     * causal: mask keys after the query. probs: [B,H,T,T] softmax, saved
     * before attention dropout. out: [B*T, H*D], row stride H*D. */
    void (*attention_fwd)(float *out, float *probs, const float *q, const float *k,
                          const float *v, int ld, const float *key_mask, int B, int T,
                          int H, int D, int causal, float dropout_p, uint64_t seed);
    /* dq, dk, dv overwritten (row stride ld); scratch: B*H*T*T floats. */
    void (*attention_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                          const float *q, const float *k, const float *v, int ld, int B, int T,
                          int H, int D, float dropout_p, uint64_t seed, float *scratch);

    /* ---- losses. loss[r] per row; dlogits = grad_scale * dloss/dlogits.
     * labels < 0 are ignored (loss 0, gradient 0). ---- */
    void (*cross_entropy)(float *loss, float *dlogits, const float *logits, const int32_t *labels,
                          int rows, int classes, float grad_scale);
    void (*mse)(float *loss, float *dpred, const float *pred, const float *target, int rows,
                float grad_scale);

    /* ---- optimizer: AdamW with decoupled weight decay.
     * bc1 = 1 - beta1^t, bc2 = 1 - beta2^t. ---- */
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float bc1, float bc2);

    /* ---- reductions (result to the host) ---- */
    double (*sumsq)(const float *x, size_t n);
};

const Backend *backend_cpu(void);
/* Threads of the CPU backend's matmuls (OpenBLAS's pool; OPENBLAS_NUM_THREADS
 * or OMP_NUM_THREADS set the default). */
void backend_cpu_set_threads(int n);
int backend_cpu_threads(void);

/* The CUDA backend (kernels/cuda/), or NULL with the reason in err: no
 * device, no driver, a device this build has no code for, or a build
 * without CUDA (nvcc absent at build time, or CUDA=0). The first call
 * initialises CUDA on device 0 (CUDA_VISIBLE_DEVICES picks which GPU);
 * later calls return the same answer. */
const Backend *backend_cuda(char *err, size_t errlen);
/* device: "auto" (CUDA when a device is usable, else the CPU), "cpu" or
 * "cuda". NULL with a message on an unknown name or when "cuda" is not
 * usable. On success err holds a note for the user, or is empty: when
 * "auto" falls back to the CPU it says why, in one line. */
const Backend *backend_select(const char *device, char *err, size_t errlen);

/* The counter-based dropout RNG shared by every backend: keep element i of
 * a tensor dropped with probability p under seed. */
static inline uint64_t dropout_hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline int dropout_keep(uint64_t seed, uint64_t i, float p) {
    /* 24 high bits -> uniform in [0,1) */
    float u = (float)(dropout_hash(seed, i) >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

#endif
