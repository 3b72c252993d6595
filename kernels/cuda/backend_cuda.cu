/* The CUDA backend: the Backend table, its initialisation, memory and
 * matmul (cuBLAS). The other ops live in ops.cu and attention.cu.
 *
 * Initialisation happens once per process, on the first backend_cuda()
 * call: count devices, pick device 0 (CUDA_VISIBLE_DEVICES chooses which
 * GPU that is), check that this build carries machine code the device can
 * run, create the cuBLAS handle, allocate the reduction partials. A failure
 * is remembered with its reason, and every later call returns the same
 * NULL and reason: a machine without a GPU, or without the driver, asks
 * CUDA once. See cuda_common.h for the context and the error policy. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/backend_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one context (see cuda_common.h for why it is global). */
static CudaContext g_ctx;
static Backend g_table;
static char g_fail[512];
static int g_ok;
static std::once_flag g_once;

CudaContext *cuda_ctx(void) { return &g_ctx; }

void cuda_fatal(const char *op, const char *what) {
    fprintf(stderr, "bilora: CUDA error in %s: %s\n", op, what);
    fflush(stderr);
    abort();
}

void cuda_check(cudaError_t e, const char *op) {
    if (e == cudaSuccess) return;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    cuda_fatal(op, msg);
}

const char *cublas_status_text(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS could not allocate GPU memory";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value (a size or leading dimension)";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "not supported on this GPU";
    case CUBLAS_STATUS_MAPPING_ERROR: return "GPU memory mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "cuBLAS internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "unknown cuBLAS status";
    }
}

void *cuda_scratch_try(CudaContext *c, size_t bytes) {
    if (bytes <= c->scratch_bytes) return c->scratch;
    if (c->scratch) cuda_check(cudaFree(c->scratch), "scratch");
    c->scratch = NULL;
    c->scratch_bytes = 0;
    /* Round up so that slowly growing requests do not reallocate each time;
     * if that much is not there, the exact size may still be. */
    size_t want = bytes + bytes / 4 + 256;
    if (cudaMalloc(&c->scratch, want) != cudaSuccess) {
        (void)cudaGetLastError();
        want = bytes;
        if (cudaMalloc(&c->scratch, want) != cudaSuccess) {
            (void)cudaGetLastError();
            c->scratch = NULL;
            return NULL;
        }
    }
    c->scratch_bytes = want;
    return c->scratch;
}

void *cuda_scratch(CudaContext *c, size_t bytes, const char *op) {
    void *p = cuda_scratch_try(c, bytes);
    if (!p) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        char msg[256];
        snprintf(msg, sizeof(msg), "out of GPU memory for a %.1f MB scratch buffer (%.1f MB free of %.1f MB)",
                 bytes / 1e6, free_b / 1e6, total_b / 1e6);
        cuda_fatal(op, msg);
    }
    return p;
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
    /* Round to 256 bytes (cudaMalloc's alignment anyway) and never ask for
     * 0 bytes: the CPU backend returns a distinct pointer for 0, so do we. */
    size_t rounded = (bytes + 255) / 256 * 256;
    if (rounded == 0) rounded = 256;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, rounded);
    if (e != cudaSuccess) {
        /* Out of memory is not sticky: clear it so later calls see a clean
         * error state, and let the caller report the sizes it asked for. */
        (void)cudaGetLastError();
        return NULL;
    }
    if (cudaMemset(p, 0, rounded) != cudaSuccess) {
        (void)cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    return p;
}
static void cuda_release(void *p) {
    if (p) cuda_check(cudaFree(p), "release");
}
static void cuda_upload(void *dst, const void *host_src, size_t bytes) {
    if (bytes) cuda_check(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "upload");
}
static void cuda_download(void *host_dst, const void *src, size_t bytes) {
    if (bytes) cuda_check(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "download");
}
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d + bytes <= s || s + bytes <= d) {
        cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy");
        return;
    }
    /* Overlapping ranges (memmove semantics, as the CPU backend has):
     * device-to-device cudaMemcpy does not promise them, so go through the
     * scratch. Rare; no caller in the engine does this today. */
    CudaContext *c = cuda_ctx();
    std::lock_guard<std::mutex> hold(c->lock);
    void *tmp = cuda_scratch(c, bytes, "copy (overlapping)");
    cuda_check(cudaMemcpy(tmp, src, bytes, cudaMemcpyDeviceToDevice), "copy (overlapping)");
    cuda_check(cudaMemcpy(dst, tmp, bytes, cudaMemcpyDeviceToDevice), "copy (overlapping)");
}
static void cuda_zero(void *p, size_t bytes) {
    if (bytes) cuda_check(cudaMemset(p, 0, bytes), "zero");
}

/* ---- matmul ----
 * cuBLAS is column-major. A row-major M x N matrix with row stride ld is,
 * read column-major, its N x M transpose with leading dimension ld. So the
 * row-major C = op(A) op(B) is computed as the column-major
 * Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands and the sizes, keep each operand's
 * own transpose flag. */

void cuda_gemm(const char *op, int ta, int tb, int M, int N, int K, float alpha, const float *A,
               int lda, long long sa, const float *B, int ldb, long long sb, float beta, float *C,
               int ldc, long long sc, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    CudaContext *c = cuda_ctx();
    cublasStatus_t st;
    if (batch == 1)
        st = cublasSgemm(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N,
                         M, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
    else
        st = cublasSgemmStridedBatched(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                       ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, sb,
                                       A, lda, sa, &beta, C, ldc, sc, batch);
    if (st != CUBLAS_STATUS_SUCCESS) {
        char msg[384];
        snprintf(msg, sizeof(msg),
                 "cublasSgemm%s failed: %s (row-major op(A) %dx%d%s lda %d, op(B) %dx%d%s ldb %d, "
                 "C ldc %d, batch %d)",
                 batch > 1 ? "StridedBatched" : "", cublas_status_text(st), M, K, ta ? " (Aᵀ)" : "",
                 lda, K, N, tb ? " (Bᵀ)" : "", ldb, ldc, batch);
        cuda_fatal(op, msg);
    }
}

/* C *= beta over an M x N row-major block with stride ldc: the K == 0 case,
 * where op(A) op(B) is empty. beta == 0 writes zeros (BLAS: C is not read). */
__global__ static void k_scale_matrix(float *C, int M, int N, int ldc, float beta) {
    size_t n = (size_t)M * N;
    GRID_STRIDE_LOOP(i, n) {
        float *x = C + (i / N) * (size_t)ldc + (i % N);
        *x = beta == 0.0f ? 0.0f : *x * beta;
    }
}

static void cuda_matmul(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        k_scale_matrix<<<cuda_blocks((size_t)M * N), CUDA_THREADS>>>(C, M, N, ldc, beta);
        CUDA_LAUNCH_CHECK("matmul (K = 0)");
        return;
    }
    cuda_gemm("matmul", ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

/* ---- initialisation ---- */

static void fill_table(Backend *t) {
    memset(t, 0, sizeof(*t));
    t->name = "cuda";
    t->alloc = cuda_alloc;
    t->release = cuda_release;
    t->upload = cuda_upload;
    t->download = cuda_download;
    t->copy = cuda_copy;
    t->zero = cuda_zero;
    t->matmul = cuda_matmul;
    t->add_bias = cu_add_bias;
    t->bias_grad = cu_bias_grad;
    t->axpy = cu_axpy;
    t->scale_cols = cu_scale_cols;
    t->col_dot = cu_col_dot;
    t->row_norms = cu_row_norms;
    t->scale = cu_scale;
    t->gelu_fwd = cu_gelu_fwd;
    t->gelu_bwd = cu_gelu_bwd;
    t->gelu_tanh_fwd = cu_gelu_tanh_fwd;
    t->gelu_tanh_bwd = cu_gelu_tanh_bwd;
    t->tanh_fwd = cu_tanh_fwd;
    t->tanh_bwd = cu_tanh_bwd;
    t->dropout_fwd = cu_dropout_fwd;
    t->dropout_bwd = cu_dropout_bwd;
    t->layernorm_fwd = cu_layernorm_fwd;
    t->layernorm_bwd = cu_layernorm_bwd;
    t->embedding_fwd = cu_embedding_fwd;
    t->embedding_bwd = cu_embedding_bwd;
    t->gather_first = cu_gather_first;
    t->gather_first_bwd = cu_gather_first_bwd;
    t->attention_fwd = cu_attention_fwd;
    t->attention_bwd = cu_attention_bwd;
    t->cross_entropy = cu_cross_entropy;
    t->mse = cu_mse;
    t->adamw = cu_adamw;
    t->sumsq = cu_sumsq;
}

static int set_math_mode(CudaContext *c, int tf32) {
    cublasMath_t mode = tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
    if (cublasSetMathMode(c->blas, mode) != CUBLAS_STATUS_SUCCESS) return -1;
    c->tf32 = tf32 ? 1 : 0;
    return 0;
}

/* Fills g_fail and returns -1, or sets up g_ctx and returns 0. */
static int init_once(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        (void)cudaGetLastError();
        if (e == cudaErrorNoDevice) {
            snprintf(g_fail, sizeof(g_fail), "no CUDA device is present");
        } else if (e == cudaErrorInsufficientDriver && driver == 0) {
            snprintf(g_fail, sizeof(g_fail), "no NVIDIA driver is installed (no GPU on this machine?)");
        } else if (e == cudaErrorInsufficientDriver) {
            snprintf(g_fail, sizeof(g_fail),
                     "the NVIDIA driver supports CUDA %d.%d, older than this build's runtime %d.%d: "
                     "update the driver", driver / 1000, driver % 1000 / 10, runtime / 1000,
                     runtime % 1000 / 10);
        } else {
            snprintf(g_fail, sizeof(g_fail), "CUDA could not start: %s (%s)", cudaGetErrorString(e),
                     cudaGetErrorName(e));
        }
        return -1;
    }
    if (count <= 0) {
        snprintf(g_fail, sizeof(g_fail), "no CUDA device is present");
        return -1;
    }
    CudaContext *c = &g_ctx;
    c->device = 0;
    if ((e = cudaSetDevice(0)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&c->prop, 0)) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(g_fail, sizeof(g_fail), "CUDA device 0 could not be opened: %s",
                 cudaGetErrorString(e));
        return -1;
    }
    /* The build carries machine code for sm_80 and sm_90 (Makefile NVFLAGS);
     * on any other architecture family the kernels cannot launch, so say
     * so now rather than abort in the first op. */
    if ((e = cu_probe_kernel_image()) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(g_fail, sizeof(g_fail),
                 "%.200s (compute capability %d.%d) cannot run this build's kernels (%s): rebuild "
                 "with a -gencode for sm_%d%d in NVFLAGS",
                 c->prop.name, c->prop.major, c->prop.minor, cudaGetErrorString(e), c->prop.major,
                 c->prop.minor);
        return -1;
    }
    cublasStatus_t st = cublasCreate(&c->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(g_fail, sizeof(g_fail), "cuBLAS could not start on %.200s: %s", c->prop.name,
                 cublas_status_text(st));
        return -1;
    }
    /* The legacy default stream, shared by every host thread: see
     * cuda_common.h. */
    cublasSetStream(c->blas, 0);
    const char *env = getenv("BILORA_CUDA_TF32");
    if (set_math_mode(c, env && env[0] && strcmp(env, "0") != 0) != 0) {
        snprintf(g_fail, sizeof(g_fail), "cuBLAS refused the math mode on %.200s", c->prop.name);
        cublasDestroy(c->blas);
        return -1;
    }
    if (cudaMalloc(&c->partials, sizeof(double) * CUDA_PARTIALS) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(g_fail, sizeof(g_fail), "out of GPU memory on %.200s for %zu bytes at start-up",
                 c->prop.name, sizeof(double) * (size_t)CUDA_PARTIALS);
        cublasDestroy(c->blas);
        return -1;
    }
    fill_table(&g_table);
    return 0;
}

extern "C" const Backend *backend_cuda(char *err, size_t errlen) {
    std::call_once(g_once, [] { g_ok = init_once() == 0; });
    if (g_ok) {
        if (err && errlen) err[0] = '\0';
        return &g_table;
    }
    if (err && errlen) snprintf(err, errlen, "%s", g_fail);
    return NULL;
}

extern "C" int backend_cuda_set_tf32(int on) {
    if (!g_ok) return -1;
    CudaContext *c = cuda_ctx();
    int was = c->tf32;
    if (set_math_mode(c, on) != 0) cuda_fatal("backend_cuda_set_tf32", "cublasSetMathMode failed");
    return was;
}

extern "C" void backend_cuda_describe(char *out, unsigned long cap) {
    if (!out || !cap) return;
    out[0] = '\0';
    if (!g_ok) return;
    const cudaDeviceProp *p = &g_ctx.prop;
    snprintf(out, cap, "%.200s, sm_%d%d, %.1f GiB%s", p->name, p->major, p->minor,
             p->totalGlobalMem / (1024.0 * 1024.0 * 1024.0), g_ctx.tf32 ? ", TF32 matmuls" : "");
}

extern "C" void backend_cuda_sync(void) {
    if (g_ok) cuda_check(cudaDeviceSynchronize(), "sync");
}
