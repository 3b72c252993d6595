/* Multi-head attention on the GPU, unfused: cuBLAS strided-batched GEMMs
 * for the products, our kernels for the masked softmax, its backward and
 * the attention dropout. The math and the layouts are the CPU reference's
 * (kernels/cpu/backend_cpu.c): probs is [B,H,T,T], saved before dropout;
 * the dropout mask of probs element e (its linear index in [B,H,T,T]) is
 * dropout_keep(seed, e, p), regenerated in the backward.
 *
 * Head h of batch b is a T x D block at q + b*T*ld + h*D with row stride
 * ld. Heads are D floats apart and batches T*ld apart: each stride is
 * uniform on its own but (b, h) together is not one stride, so each product
 * is one pointer-array batched GEMM over all B*H blocks (heads_gemm; the
 * arrays are written on the device by a small kernel, into a grow-only
 * buffer of the context). Looping a strided-batched GEMM over the heads
 * instead made 12 small launches per product, and attention took a quarter
 * of a RoBERTa-base LoRA step on an H100. A fused (flash-style) kernel
 * would not write the T x T scores to memory at all: that is where the time
 * goes at long sequences, and the next step.
 *
 * With attention dropout, the forward needs the dropped probabilities for
 * P·V while probs must keep the undropped ones: they go to the backend's
 * scratch (B*H*T*T floats, or H*T*T when the GPU is short of memory;
 * grown once, kept). */
#include "kernels/cuda/cuda_common.h"

/* Masked softmax in place over the rows of S = probs, one warp per row
 * (row = (b*H + h)*T + i). Keys with key_mask 0, and with causal keys after
 * the query, get probability 0; a row with no key left is all zeros. */
__global__ static void k_attn_softmax(float *P, const float *key_mask, size_t rows, int H, int T,
                                      int causal) {
    const size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warps leave together */
    const int lane = threadIdx.x & 31;
    const int i = (int)(row % T);
    const size_t b = row / T / H;
    float *p = P + row * T;
    const float *mask = key_mask ? key_mask + b * T : NULL;
    const int jmax = causal ? i + 1 : T;
    float mx = -INFINITY;
    for (int j = lane; j < jmax; j += 32)
        if (!mask || mask[j] != 0.0f) mx = fmaxf(mx, p[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float e = 0.0f;
        if (j < jmax && (!mask || mask[j] != 0.0f) && mx > -INFINITY) e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int j = lane; j < T; j += 32) p[j] *= inv;
}

/* out[e] = keep(seed, base + e) ? P[e] * scale : 0 */
__global__ static void k_attn_dropout(float *out, const float *P, size_t n, uint64_t base, float p,
                                      float scale, uint64_t seed) {
    GRID_STRIDE_LOOP(e, n) out[e] = dev_dropout_keep(seed, base + e, p) ? P[e] * scale : 0.0f;
}

/* Softmax backward through the dropout, in place over dP, one warp per row:
 * dPd (= dO Vᵀ) → dP = dPd ⊙ keep / (1-p) → dS = P ⊙ (dP − Σ_j dP⊙P). */
__global__ static void k_attn_softmax_bwd(float *dP, const float *P, size_t rows, int T, float p,
                                          float scale, uint64_t seed) {
    const size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int lane = threadIdx.x & 31;
    float *dr = dP + row * T;
    const float *pr = P + row * T;
    const uint64_t base = (uint64_t)row * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float d = dr[j];
        if (p > 0.0f) d = dev_dropout_keep(seed, base + j, p) ? d * scale : 0.0f;
        dr[j] = d;
        dot += d * pr[j];
    }
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) dr[j] = pr[j] * (dr[j] - dot);
}

#define WARPS_PER_BLOCK 8

static unsigned row_blocks(size_t rows) {
    return (unsigned)((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK);
}

/* An operand of the per-(batch, head) products: block (b, h) starts at
 * p + b*sb + h*sh, rows ld apart. */
struct Opd {
    const float *p;
    int ld;
    long long sb, sh;
};

/* The three pointer arrays of a batched product: block z = b*nh + h of
 * operand k starts at base[k] + b*sb[k] + h*sh[k]. */
struct PtrArgs {
    const float *base[3];
    long long sb[3], sh[3];
};
__global__ static void k_heads_ptrs(const float **out, PtrArgs a, int nb, int nh) {
    const int z = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = nb * nh;
    if (z >= n) return;
    const long long b = z / nh, h = z % nh;
    for (int k = 0; k < 3; k++) out[(size_t)k * n + z] = a.base[k] + b * a.sb[k] + h * a.sh[k];
}

/* C_(b,h) = alpha op(A_(b,h)) op(B_(b,h)) + beta C_(b,h) for every batch b
 * and head h: one cublasSgemmBatched over the nb*nh blocks (row-major, so
 * as cuda_gemm does it, Cᵀ = op(B)ᵀ op(A)ᵀ in cuBLAS's column-major terms).
 * If the pointer arrays cannot be allocated, each head is a
 * strided-batched GEMM over the batches instead. */
static void heads_gemm(const char *op, int ta, int tb, int M, int N, int K, float alpha, Opd A,
                       Opd B, float beta, Opd C, int nb, int nh) {
    CudaContext *c = cuda_ctx();
    const size_t n = (size_t)nb * nh;
    std::lock_guard<std::mutex> hold(c->ptrs_lock);
    if (c->ptrs_cap < 3 * n) {
        if (c->ptrs) cuda_check(cudaFree(c->ptrs), op);
        c->ptrs = NULL;
        c->ptrs_cap = 0;
        cudaError_t e = cudaMalloc((void **)&c->ptrs, 3 * n * sizeof(float *));
        if (e == cudaSuccess) {
            c->ptrs_cap = 3 * n;
        } else {
            /* out of memory: the looped form below needs none; any other
             * error is an earlier fault surfacing, and fatal here */
            if (e != cudaErrorMemoryAllocation) cuda_check(e, op);
            (void)cudaGetLastError();
            c->ptrs = NULL;
        }
    }
    if (!c->ptrs) {
        float *cp = (float *)C.p;
        for (int h = 0; h < nh; h++)
            cuda_gemm(op, ta, tb, M, N, K, alpha, A.p + h * A.sh, A.ld, A.sb, B.p + h * B.sh, B.ld,
                      B.sb, beta, cp + h * C.sh, C.ld, C.sb, nb);
        return;
    }
    PtrArgs pa = {{A.p, B.p, C.p}, {A.sb, B.sb, C.sb}, {A.sh, B.sh, C.sh}};
    k_heads_ptrs<<<(unsigned)((n + 255) / 256), 256>>>(c->ptrs, pa, nb, nh);
    CUDA_LAUNCH_CHECK(op);
    const float **pa_ = c->ptrs, **pb_ = c->ptrs + n;
    float **pc_ = (float **)(c->ptrs + 2 * n);
    cublasStatus_t st = cublasSgemmBatched(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, pb_,
                                           B.ld, pa_, A.ld, &beta, pc_, C.ld, (int)n);
    if (st != CUBLAS_STATUS_SUCCESS) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cublasSgemmBatched failed: %s (%dx%dx%d, batch %zu)",
                 cublas_status_text(st), M, N, K, n);
        cuda_fatal(op, msg);
    }
}

void cu_attention_fwd(float *out, float *probs, const float *q, const float *k, const float *v,
                      int ld, const float *key_mask, int B, int T, int H, int D, int causal,
                      float dropout_p, uint64_t seed) {
    if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
    const float scale = 1.0f / sqrtf((float)D);
    const int C = H * D;
    const long long TT = (long long)T * T, xsb = (long long)T * ld, osb = (long long)T * C;
    const Opd Q = {q, ld, xsb, D}, K = {k, ld, xsb, D}, V = {v, ld, xsb, D};
    const Opd P = {probs, T, H * TT, TT}, O = {out, C, osb, D};
    /* S = scale Q Kᵀ into probs */
    heads_gemm("attention_fwd (QKᵀ)", 0, 1, T, T, D, scale, Q, K, 0.0f, P, B, H);
    const size_t rows = (size_t)B * H * T;
    k_attn_softmax<<<row_blocks(rows), WARPS_PER_BLOCK * 32>>>(probs, key_mask, rows, H, T, causal);
    CUDA_LAUNCH_CHECK("attention_fwd (softmax)");
    if (dropout_p <= 0.0f) {
        heads_gemm("attention_fwd (PV)", 0, 0, T, D, T, 1.0f, P, V, 0.0f, O, B, H);
        return;
    }
    /* P·V with the dropped probabilities, built in the scratch (same layout
     * as probs): all batches at once, or, if the GPU has no room for that,
     * one batch at a time. A fused kernel would apply the mask while
     * loading P and need no copy. */
    const size_t per_b = (size_t)H * TT;
    const float ds = 1.0f / (1.0f - dropout_p);
    CudaContext *c = cuda_ctx();
    std::lock_guard<std::mutex> hold(c->lock);
    int chunk = B;
    float *pd = (float *)cuda_scratch_try(c, per_b * B * sizeof(float));
    if (!pd) {
        chunk = 1;
        pd = (float *)cuda_scratch(c, per_b * sizeof(float), "attention_fwd (dropout)");
    }
    for (int b0 = 0; b0 < B; b0 += chunk) {
        const int nb = B - b0 < chunk ? B - b0 : chunk;
        const size_t n = per_b * nb;
        k_attn_dropout<<<cuda_blocks(n), CUDA_THREADS>>>(pd, probs + per_b * b0, n, per_b * b0,
                                                          dropout_p, ds, seed);
        CUDA_LAUNCH_CHECK("attention_fwd (dropout)");
        const Opd Pd = {pd, T, H * TT, TT};
        const Opd Vb = {v + xsb * b0, ld, xsb, D}, Ob = {out + osb * b0, C, osb, D};
        heads_gemm("attention_fwd (PV)", 0, 0, T, D, T, 1.0f, Pd, Vb, 0.0f, Ob, nb, H);
    }
}

void cu_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                      const float *q, const float *k, const float *v, int ld, int B, int T, int H,
                      int D, float dropout_p, uint64_t seed, float *scratch) {
    if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
    const float scale = 1.0f / sqrtf((float)D);
    const float ds = dropout_p > 0.0f ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const int C = H * D;
    const long long TT = (long long)T * T, xsb = (long long)T * ld, osb = (long long)T * C;
    const size_t n = (size_t)B * H * TT;
    const Opd Q = {q, ld, xsb, D}, K = {k, ld, xsb, D}, V = {v, ld, xsb, D};
    const Opd dQ = {dq, ld, xsb, D}, dK = {dk, ld, xsb, D}, dV = {dv, ld, xsb, D};
    const Opd dO = {dout, C, osb, D}, S = {scratch, T, H * TT, TT};
    /* dV = Pdᵀ dO, Pd the dropped probabilities (built in the scratch) */
    Opd Pd = {probs, T, H * TT, TT};
    if (dropout_p > 0.0f) {
        k_attn_dropout<<<cuda_blocks(n), CUDA_THREADS>>>(scratch, probs, n, 0, dropout_p, ds, seed);
        CUDA_LAUNCH_CHECK("attention_bwd (dropout)");
        Pd = S;
    }
    heads_gemm("attention_bwd (dV)", 1, 0, T, D, T, 1.0f, Pd, dO, 0.0f, dV, B, H);
    /* dPd = dO Vᵀ into the scratch (every dV product has read it by now:
     * one stream, in order) */
    heads_gemm("attention_bwd (dO Vᵀ)", 0, 1, T, T, D, 1.0f, dO, V, 0.0f, S, B, H);
    const size_t rows = (size_t)B * H * T;
    k_attn_softmax_bwd<<<row_blocks(rows), WARPS_PER_BLOCK * 32>>>(scratch, probs, rows, T,
                                                                   dropout_p, ds, seed);
    CUDA_LAUNCH_CHECK("attention_bwd (softmax)");
    /* dQ = scale dS K, dK = scale dSᵀ Q */
    heads_gemm("attention_bwd (dQ)", 0, 0, T, D, T, scale, S, K, 0.0f, dQ, B, H);
    heads_gemm("attention_bwd (dK)", 1, 0, T, D, T, scale, S, Q, 0.0f, dK, B, H);
}
