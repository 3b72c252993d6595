/* Private to kernels/cuda/: what the CUDA backend's translation units share.
 * Included only by .cu files (it pulls in the CUDA headers).
 *
 * State. The Backend table's functions take no context argument, so the
 * backend keeps one process-wide context (CudaContext), created once by the
 * first successful backend_cuda() and never destroyed: the cuBLAS handle,
 * the precision setting, and two small device buffers some ops need
 * (a grow-only scratch and the reduction partials). That is the only mutable
 * global state, and CUDA is why: cuBLAS needs a handle and the ops need
 * temporary device memory that must not be allocated on every call.
 *
 * Streams. Everything runs on the legacy default stream, which all host
 * threads share, so work is ordered in the order it is enqueued. The ops
 * that use the shared scratch hold ctx->lock while they enqueue their whole
 * sequence (write scratch ... read scratch), so another thread's use of the
 * scratch lands after it in the stream.
 *
 * Errors. alloc reports out-of-memory by returning NULL (the caller knows
 * the sizes and says so). Any other CUDA or cuBLAS failure inside an op is
 * a bug or a lost device: the ops return void and the CUDA context is
 * unusable after such faults, so cuda_fatal prints the op, the sizes and
 * CUDA's reason, and aborts. */
#ifndef BILORA_KERNELS_CUDA_COMMON_H
#define BILORA_KERNELS_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <mutex>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "kernels/backend.h"
}

struct CudaContext {
    int device;
    cudaDeviceProp prop;
    cublasHandle_t blas;
    int tf32;               /* cuBLAS may use TF32 tensor cores (off: full fp32) */
    std::mutex lock;        /* guards scratch and partials (see above) */
    void *scratch;          /* grow-only; see cuda_scratch */
    size_t scratch_bytes;
    double *partials;       /* CUDA_PARTIALS doubles, for sumsq */
    std::mutex ptrs_lock;   /* guards ptrs; taken after lock where both are held */
    const float **ptrs;     /* grow-only device pointer arrays for attention's batched GEMMs */
    size_t ptrs_cap;        /* entries in ptrs */
};

#define CUDA_PARTIALS 1024

/* The context; only valid after backend_cuda() succeeded (the ops are only
 * reachable through the table it returns). */
CudaContext *cuda_ctx(void);

/* Prints "bilora: CUDA error in <op>: <what>" and aborts. */
[[noreturn]] void cuda_fatal(const char *op, const char *what);
/* cuda_fatal when e is not cudaSuccess, with CUDA's name and text for it. */
void cuda_check(cudaError_t e, const char *op);
/* After a kernel launch: catches bad launch configurations at once. Faults
 * inside the kernel surface at the next synchronising call. */
#define CUDA_LAUNCH_CHECK(op) cuda_check(cudaGetLastError(), (op))
/* cuBLAS's status in words, for error messages. */
const char *cublas_status_text(cublasStatus_t s);

/* At least `bytes` of device scratch; the caller holds ctx->lock until the
 * work that uses it is enqueued. Grows by cudaFree + cudaMalloc (cudaFree
 * waits for the device, so queued users of the old buffer finish first).
 * cuda_scratch_try returns NULL when the GPU is out of memory (callers can
 * then work in smaller pieces); cuda_scratch makes that fatal, naming the
 * size. */
void *cuda_scratch_try(CudaContext *c, size_t bytes);
void *cuda_scratch(CudaContext *c, size_t bytes, const char *op);

/* Row-major strided-batched GEMM on the context's handle:
 * C_i = alpha op(A_i) op(B_i) + beta C_i, i < batch, X_i = X + i * strideX.
 * batch 1 with zero strides is a plain GEMM. */
void cuda_gemm(const char *op, int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, long long stride_a, const float *B, int ldb,
               long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch);

/* ---- launch geometry ---- */

#define CUDA_THREADS 256

/* Blocks for a grid-stride loop over n elements: enough to fill the GPU,
 * capped so the grid size stays legal for any n. */
static inline unsigned cuda_blocks(size_t n) {
    size_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    const size_t cap = 65535u * 16u;
    if (b > cap) b = cap;
    if (b == 0) b = 1;
    return (unsigned)b;
}

#define GRID_STRIDE_LOOP(i, n)                                                                     \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
         i += (size_t)gridDim.x * blockDim.x)

/* ---- the dropout RNG, on the device ----
 * A copy of dropout_hash/dropout_keep from kernels/backend.h (which are
 * host-only C): the same splitmix64 finaliser, the same 24 high bits, the
 * same float comparison, so a seed gives bit-identical masks on both
 * backends. tests/test_cuda_backend.c checks that. */
__device__ __forceinline__ uint64_t dev_dropout_hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
__device__ __forceinline__ bool dev_dropout_keep(uint64_t seed, uint64_t i, float p) {
    float u = (float)(dev_dropout_hash(seed, i) >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

/* ---- reductions inside a warp / a block ----
 * Blocks are a multiple of 32 threads. block_sum's result is the same in
 * every thread; `shm` is 32 elements of shared memory, reusable after. */
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <typename T> __device__ T block_sum(T v, T *shm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) shm[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = lane < nwarps ? shm[lane] : (T)0;
        w = warp_sum(w);
        if (lane == 0) shm[0] = w;
    }
    __syncthreads();
    T r = shm[0];
    __syncthreads();
    return r;
}
__device__ inline float block_max(float v, float *shm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    if (lane == 0) shm[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < nwarps ? shm[lane] : -INFINITY;
        w = warp_max(w);
        if (lane == 0) shm[0] = w;
    }
    __syncthreads();
    float r = shm[0];
    __syncthreads();
    return r;
}

/* ---- the ops, one definition each (ops.cu, attention.cu) ---- */
void cu_add_bias(float *y, const float *bias, int rows, int cols);
void cu_bias_grad(float *dbias, const float *dy, int rows, int cols);
void cu_axpy(float *y, float a, const float *x, size_t n);
void cu_scale_cols(float *y, const float *x, const float *s, int rows, int cols, int accumulate);
void cu_col_dot(float *out, const float *a, const float *b, int rows, int cols);
void cu_row_norms(float *out, const float *x, int rows, int cols);
void cu_scale(float *x, float a, size_t n);
void cu_gelu_fwd(float *y, const float *x, size_t n);
void cu_gelu_bwd(float *dx, const float *x, const float *dy, size_t n);
void cu_gelu_tanh_fwd(float *y, const float *x, size_t n);
void cu_gelu_tanh_bwd(float *dx, const float *x, const float *dy, size_t n);
void cu_tanh_fwd(float *y, const float *x, size_t n);
void cu_tanh_bwd(float *dx, const float *y, const float *dy, size_t n);
void cu_dropout_fwd(float *y, const float *x, size_t n, float p, uint64_t seed);
void cu_dropout_bwd(float *dx, const float *dy, size_t n, float p, uint64_t seed);
void cu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int rows, int cols, float eps);
void cu_layernorm_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int rows, int cols);
void cu_embedding_fwd(float *out, const int32_t *ids, const float *table, int n, int cols,
                      int accumulate);
void cu_embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int n, int cols);
void cu_gather_first(float *out, const float *x, int B, int T, int cols);
void cu_gather_first_bwd(float *dx, const float *dout, int B, int T, int cols);
void cu_attention_fwd(float *out, float *probs, const float *q, const float *k, const float *v,
                      int ld, const float *key_mask, int B, int T, int H, int D, int causal,
                      float dropout_p, uint64_t seed);
void cu_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                      const float *q, const float *k, const float *v, int ld, int B, int T, int H,
                      int D, float dropout_p, uint64_t seed, float *scratch);
void cu_cross_entropy(float *loss, float *dlogits, const float *logits, const int32_t *labels,
                      int rows, int classes, float grad_scale);
void cu_mse(float *loss, float *dpred, const float *pred, const float *target, int rows,
            float grad_scale);
void cu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float weight_decay, float bc1, float bc2);
double cu_sumsq(const float *x, size_t n);

/* A kernel of ops.cu, for backend_cuda's check that this build carries
 * code the device can run. */
cudaError_t cu_probe_kernel_image(void);

#endif
