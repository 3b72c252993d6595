/* The CUDA backend's elementwise, row and column ops, losses, AdamW and
 * reductions. Each mirrors the CPU reference (kernels/cpu/backend_cpu.c):
 * same formulas, same accumulate-vs-overwrite conventions, same aliasing
 * allowances (y may equal x where backend.h says so).
 *
 * Kernels are deliberately simple: grid-stride loops for elementwise work,
 * one block (or warp) per row for row reductions, 32-column tiles for
 * column reductions. Everything here is memory-bound; where a fused kernel
 * would pay, a comment says so.
 *
 * Arithmetic follows the CPU where it is cheap to: the CPU code has no FMA
 * (ISO C mode, -ffp-contract=off), and nvcc contracts a*b+c into FMA by
 * default, so the few update formulas whose results we want bit-identical
 * (axpy, scale_cols, adamw, mse) spell their roundings with __fmul_rn /
 * __fadd_rn, which the compiler never contracts. Reductions cannot be
 * bit-identical (a different summation order) and are tested to a
 * tolerance. */
#include "kernels/cuda/cuda_common.h"

#include <stdio.h>

/* ---- elementwise ---- */

/* Row-structured elementwise kernels run on a 2D grid: x over columns,
 * y over rows (grid-strided), so no thread divides a flat index by the row
 * length (a 64-bit division is dozens of instructions on the GPU). */
static dim3 rows_grid(size_t rows, int cols) {
    unsigned gx = (unsigned)((cols + CUDA_THREADS - 1) / CUDA_THREADS);
    size_t gy = rows < 65535 ? rows : 65535;
    return dim3(gx ? gx : 1, (unsigned)(gy ? gy : 1));
}
#define ROWS_LOOP(r, rows) for (size_t r = blockIdx.y; r < (rows); r += gridDim.y)
#define COL_INDEX(c, cols)                                                                         \
    const int c = blockIdx.x * blockDim.x + threadIdx.x;                                           \
    if (c >= (cols)) return

__global__ static void k_add_bias(float *y, const float *bias, size_t rows, int cols) {
    COL_INDEX(c, cols);
    const float bc = bias[c];
    ROWS_LOOP(r, rows) y[r * cols + c] += bc;
}
void cu_add_bias(float *y, const float *bias, int rows, int cols) {
    if (rows <= 0 || cols <= 0) return;
    k_add_bias<<<rows_grid(rows, cols), CUDA_THREADS>>>(y, bias, (size_t)rows, cols);
    CUDA_LAUNCH_CHECK("add_bias");
}

__global__ static void k_axpy(float *y, float a, const float *x, size_t n) {
    GRID_STRIDE_LOOP(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
}
void cu_axpy(float *y, float a, const float *x, size_t n) {
    if (!n) return;
    k_axpy<<<cuda_blocks(n), CUDA_THREADS>>>(y, a, x, n);
    CUDA_LAUNCH_CHECK("axpy");
}

__global__ static void k_scale(float *x, float a, size_t n) {
    GRID_STRIDE_LOOP(i, n) x[i] *= a;
}
void cu_scale(float *x, float a, size_t n) {
    if (!n) return;
    k_scale<<<cuda_blocks(n), CUDA_THREADS>>>(x, a, n);
    CUDA_LAUNCH_CHECK("scale");
}

__global__ static void k_scale_cols(float *y, const float *x, const float *s, size_t rows,
                                    int cols, int accumulate) {
    COL_INDEX(c, cols);
    const float sc = s[c];
    ROWS_LOOP(r, rows) {
        size_t i = r * cols + c;
        float t = __fmul_rn(x[i], sc);
        y[i] = accumulate ? __fadd_rn(y[i], t) : t;
    }
}
void cu_scale_cols(float *y, const float *x, const float *s, int rows, int cols, int accumulate) {
    if (rows <= 0 || cols <= 0) return;
    k_scale_cols<<<rows_grid(rows, cols), CUDA_THREADS>>>(y, x, s, (size_t)rows, cols, accumulate);
    CUDA_LAUNCH_CHECK("scale_cols");
}

/* GELU, erf form: x Φ(x), Φ(x) = (1 + erf(x/√2)) / 2. */
__global__ static void k_gelu_fwd(float *y, const float *x, size_t n) {
    GRID_STRIDE_LOOP(i, n) {
        float xi = x[i];
        y[i] = 0.5f * xi * (1.0f + erff(xi * 0.70710678118654752f));
    }
}
void cu_gelu_fwd(float *y, const float *x, size_t n) {
    if (!n) return;
    k_gelu_fwd<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, n);
    CUDA_LAUNCH_CHECK("gelu_fwd");
}

/* d/dx x Φ(x) = Φ(x) + x φ(x). dx may equal dy (the engine does that). */
__global__ static void k_gelu_bwd(float *dx, const float *x, const float *dy, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
    GRID_STRIDE_LOOP(i, n) {
        float xi = x[i];
        float cdf = 0.5f * (1.0f + erff(xi * 0.70710678118654752f));
        float pdf = inv_sqrt_2pi * expf(-0.5f * xi * xi);
        dx[i] = dy[i] * (cdf + xi * pdf);
    }
}
void cu_gelu_bwd(float *dx, const float *x, const float *dy, size_t n) {
    if (!n) return;
    k_gelu_bwd<<<cuda_blocks(n), CUDA_THREADS>>>(dx, x, dy, n);
    CUDA_LAUNCH_CHECK("gelu_bwd");
}

/* GELU, tanh form (GPT-2's "gelu_new"): x (1 + tanh u) / 2, u = k (x + c x³),
 * as x·p with p = σ(2u), q = 1 − p = σ(−2u) (the CPU backend's form: no
 * cancellation in 1 + tanh u where tanh u is near −1). */
#define GELU_TANH_K 0.7978845608028654f
#define GELU_TANH_C 0.044715f
__global__ static void k_gelu_tanh_fwd(float *y, const float *x, size_t n) {
    GRID_STRIDE_LOOP(i, n) {
        float xi = x[i];
        float u = GELU_TANH_K * (xi + GELU_TANH_C * xi * xi * xi);
        y[i] = xi / (1.0f + expf(-2.0f * u));
    }
}
void cu_gelu_tanh_fwd(float *y, const float *x, size_t n) {
    if (!n) return;
    k_gelu_tanh_fwd<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, n);
    CUDA_LAUNCH_CHECK("gelu_tanh_fwd");
}
/* d/dx = p (1 + 2 x q u'), u' = k (1 + 3 c x²); x clamped to [−20, 20] as
 * the CPU does it (beyond, the derivative is 1 or 0 in float, and x² would
 * overflow to inf, 0·inf = NaN). */
__global__ static void k_gelu_tanh_bwd(float *dx, const float *x, const float *dy, size_t n) {
    GRID_STRIDE_LOOP(i, n) {
        float xi = fminf(fmaxf(x[i], -20.0f), 20.0f);
        float u = GELU_TANH_K * (xi + GELU_TANH_C * xi * xi * xi);
        float p = 1.0f / (1.0f + expf(-2.0f * u)), q = 1.0f / (1.0f + expf(2.0f * u));
        float du = GELU_TANH_K * (1.0f + 3.0f * GELU_TANH_C * xi * xi);
        dx[i] = dy[i] * (p * (1.0f + 2.0f * xi * q * du));
    }
}
void cu_gelu_tanh_bwd(float *dx, const float *x, const float *dy, size_t n) {
    if (!n) return;
    k_gelu_tanh_bwd<<<cuda_blocks(n), CUDA_THREADS>>>(dx, x, dy, n);
    CUDA_LAUNCH_CHECK("gelu_tanh_bwd");
}

__global__ static void k_tanh_fwd(float *y, const float *x, size_t n) {
    GRID_STRIDE_LOOP(i, n) y[i] = tanhf(x[i]);
}
void cu_tanh_fwd(float *y, const float *x, size_t n) {
    if (!n) return;
    k_tanh_fwd<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, n);
    CUDA_LAUNCH_CHECK("tanh_fwd");
}

__global__ static void k_tanh_bwd(float *dx, const float *y, const float *dy, size_t n) {
    GRID_STRIDE_LOOP(i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
void cu_tanh_bwd(float *dx, const float *y, const float *dy, size_t n) {
    if (!n) return;
    k_tanh_bwd<<<cuda_blocks(n), CUDA_THREADS>>>(dx, y, dy, n);
    CUDA_LAUNCH_CHECK("tanh_bwd");
}

/* y = keep(seed, i) ? x * scale : 0, scale = 1/(1-p) computed once on the
 * host exactly as the CPU computes it, so kept values match bit for bit. */
__global__ static void k_dropout(float *y, const float *x, size_t n, float p, float scale,
                                 uint64_t seed) {
    GRID_STRIDE_LOOP(i, n) y[i] = dev_dropout_keep(seed, i, p) ? x[i] * scale : 0.0f;
}
void cu_dropout_fwd(float *y, const float *x, size_t n, float p, uint64_t seed) {
    if (!n) return;
    if (p <= 0.0f) {
        if (y != x) cuda_check(cudaMemcpy(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice), "dropout");
        return;
    }
    float scale = 1.0f / (1.0f - p);
    k_dropout<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, n, p, scale, seed);
    CUDA_LAUNCH_CHECK("dropout");
}
void cu_dropout_bwd(float *dx, const float *dy, size_t n, float p, uint64_t seed) {
    cu_dropout_fwd(dx, dy, n, p, seed);
}

/* ---- column reductions: out[c] += Σ_r term(r, c) ----
 * One block per 32 columns: 32 x COL_ROWS threads, thread (x, y) sums rows
 * y, y + COL_ROWS, ... of column x (a warp reads 32 consecutive floats of a
 * row), then the COL_ROWS partial sums are added in a fixed order. No
 * atomics, so the result is deterministic. With few columns (a bias of
 * 768) this is only 24 blocks: a second, row-split level would fill the
 * GPU better, or better still, fusing the bias gradient into the GEMM
 * epilogue that produces dy. Two outputs at once for layer norm. */
#define COL_ROWS 16

template <class Term>
__global__ static void k_colsum(float *out0, float *out1, int rows, int cols, Term term) {
    __shared__ float s0[COL_ROWS][33], s1[COL_ROWS][33];
    const int c = blockIdx.x * 32 + threadIdx.x;
    float a0 = 0.0f, a1 = 0.0f;
    if (c < cols)
        for (int r = threadIdx.y; r < rows; r += COL_ROWS) {
            float2 t = term(r, c);
            a0 += t.x;
            a1 += t.y;
        }
    s0[threadIdx.y][threadIdx.x] = a0;
    s1[threadIdx.y][threadIdx.x] = a1;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float t0 = 0.0f, t1 = 0.0f;
        for (int k = 0; k < COL_ROWS; k++) {
            t0 += s0[k][threadIdx.x];
            t1 += s1[k][threadIdx.x];
        }
        if (out0) out0[c] += t0;
        if (out1) out1[c] += t1;
    }
}
template <class Term> static void colsum(const char *op, float *out0, float *out1, int rows, int cols, Term t) {
    if (rows <= 0 || cols <= 0 || (!out0 && !out1)) return;
    dim3 block(32, COL_ROWS);
    k_colsum<<<(cols + 31) / 32, block>>>(out0, out1, rows, cols, t);
    CUDA_LAUNCH_CHECK(op);
}

struct TermRows {
    const float *dy;
    int cols;
    __device__ float2 operator()(int r, int c) const {
        return make_float2(dy[(size_t)r * cols + c], 0.0f);
    }
};
void cu_bias_grad(float *dbias, const float *dy, int rows, int cols) {
    colsum("bias_grad", dbias, (float *)NULL, rows, cols, TermRows{dy, cols});
}

struct TermDot {
    const float *a, *b;
    int cols;
    __device__ float2 operator()(int r, int c) const {
        size_t i = (size_t)r * cols + c;
        return make_float2(a[i] * b[i], 0.0f);
    }
};
void cu_col_dot(float *out, const float *a, const float *b, int rows, int cols) {
    colsum("col_dot", out, (float *)NULL, rows, cols, TermDot{a, b, cols});
}

/* Layer norm's parameter gradients: dγ += Σ_r dy x̂, dβ += Σ_r dy. */
struct TermLn {
    const float *dy, *x, *mean, *rstd;
    int cols;
    __device__ float2 operator()(int r, int c) const {
        size_t i = (size_t)r * cols + c;
        float d = dy[i];
        return make_float2(d * (x[i] - mean[r]) * rstd[r], d);
    }
};

/* ---- row reductions: one block per row ---- */

#define ROW_THREADS 256

/* out[r] = ‖x[r,:]‖, summed in double like the CPU (DoRA's norms feed a
 * division, so they are worth the extra digits). */
__global__ static void k_row_norms(float *out, const float *x, int cols) {
    __shared__ double shm[32];
    const float *xr = x + (size_t)blockIdx.x * cols;
    double s = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += (double)xr[c] * xr[c];
    s = block_sum(s, shm);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)sqrt(s);
}
void cu_row_norms(float *out, const float *x, int rows, int cols) {
    if (rows <= 0) return;
    k_row_norms<<<rows, ROW_THREADS>>>(out, x, cols < 0 ? 0 : cols);
    CUDA_LAUNCH_CHECK("row_norms");
}

/* Two passes over the row (mean, then the variance about it), as the CPU
 * does, in float; the row stays in L1/L2 between passes. y may equal x:
 * each thread reads its own elements before writing them, after both
 * reductions. A fused residual-add + dropout + layer norm kernel would save
 * two full passes over the activations per use. */
__global__ static void k_layernorm_fwd(float *y, float *mean, float *rstd, const float *x,
                                       const float *g, const float *b, int cols, float eps) {
    __shared__ float shm[32];
    const size_t r = blockIdx.x;
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
    const float m = block_sum(s, shm) / (float)cols;
    float v = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = xr[c] - m;
        v += d * d;
    }
    const float var = block_sum(v, shm) / (float)cols;
    const float rs = 1.0f / sqrtf(var + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - m) * rs * g[c] + b[c];
    if (threadIdx.x == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
}
void cu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int rows, int cols, float eps) {
    if (rows <= 0 || cols <= 0) return;
    k_layernorm_fwd<<<rows, ROW_THREADS>>>(y, mean, rstd, x, gamma, beta, cols, eps);
    CUDA_LAUNCH_CHECK("layernorm_fwd");
}

/* dx = rstd (γ dy − mean(γ dy) − x̂ mean(γ dy x̂)), one block per row. */
__global__ static void k_layernorm_bwd_dx(float *dx, const float *dy, const float *x,
                                          const float *mean, const float *rstd, const float *g,
                                          int cols) {
    __shared__ float shm[32];
    const size_t r = blockIdx.x;
    const float *xr = x + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    const float m = mean[r], s = rstd[r];
    float a = 0.0f, bsum = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float xh = (xr[c] - m) * s;
        float gd = g[c] * dyr[c];
        a += gd;
        bsum += gd * xh;
    }
    const float ma = block_sum(a, shm) / (float)cols;
    const float mb = block_sum(bsum, shm) / (float)cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float xh = (xr[c] - m) * s;
        dxr[c] = s * (g[c] * dyr[c] - ma - xh * mb);
    }
}
void cu_layernorm_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int rows, int cols) {
    if (rows <= 0 || cols <= 0) return;
    /* Parameter gradients first: they read dy, so dx may then overwrite it
     * (dx == dy works here, unlike on the CPU where it would corrupt dγ). */
    colsum("layernorm_bwd (dgamma, dbeta)", dgamma, dbeta, rows, cols,
           TermLn{dy, x, mean, rstd, cols});
    k_layernorm_bwd_dx<<<rows, ROW_THREADS>>>(dx, dy, x, mean, rstd, gamma, cols);
    CUDA_LAUNCH_CHECK("layernorm_bwd");
}

/* ---- embeddings ---- */

__global__ static void k_embedding_fwd(float *out, const int32_t *ids, const float *table,
                                       size_t n, int cols, int accumulate) {
    COL_INDEX(c, cols);
    ROWS_LOOP(r, n) {
        float t = table[(size_t)ids[r] * cols + c];
        size_t i = r * cols + c;
        out[i] = accumulate ? out[i] + t : t;
    }
}
void cu_embedding_fwd(float *out, const int32_t *ids, const float *table, int n, int cols,
                      int accumulate) {
    if (n <= 0 || cols <= 0) return;
    k_embedding_fwd<<<rows_grid(n, cols), CUDA_THREADS>>>(out, ids, table, (size_t)n, cols, accumulate);
    CUDA_LAUNCH_CHECK("embedding_fwd");
}

/* dtable[ids[i], :] += dout[i, :]. Rows repeat (every sequence has a
 * position 0), so the adds race: atomicAdd. The order of the adds, and so
 * the last bits of a repeated row's sum, varies from run to run; a
 * deterministic version would sort the ids and sum each run of equal ids. */
__global__ static void k_embedding_bwd(float *dtable, const float *dout, const int32_t *ids,
                                       size_t n, int cols) {
    COL_INDEX(c, cols);
    ROWS_LOOP(r, n) atomicAdd(&dtable[(size_t)ids[r] * cols + c], dout[r * cols + c]);
}
void cu_embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int n, int cols) {
    if (n <= 0 || cols <= 0 || !dtable) return;
    k_embedding_bwd<<<rows_grid(n, cols), CUDA_THREADS>>>(dtable, dout, ids, (size_t)n, cols);
    CUDA_LAUNCH_CHECK("embedding_bwd");
}

/* out[b,:] = x[b*T,:] (forward), or dx[b*T,:] += dout[b,:] (backward). */
__global__ static void k_gather_first(float *out, const float *x, size_t B, int T, int cols,
                                      int backward) {
    COL_INDEX(c, cols);
    ROWS_LOOP(b, B) {
        size_t xi = b * (size_t)T * cols + c, oi = b * cols + c;
        if (backward) out[xi] += x[oi]; /* out = dx, x = dout */
        else out[oi] = x[xi];
    }
}
void cu_gather_first(float *out, const float *x, int B, int T, int cols) {
    if (B <= 0 || cols <= 0) return;
    k_gather_first<<<rows_grid(B, cols), CUDA_THREADS>>>(out, x, (size_t)B, T, cols, 0);
    CUDA_LAUNCH_CHECK("gather_first");
}
void cu_gather_first_bwd(float *dx, const float *dout, int B, int T, int cols) {
    if (B <= 0 || cols <= 0) return;
    k_gather_first<<<rows_grid(B, cols), CUDA_THREADS>>>(dx, dout, (size_t)B, T, cols, 1);
    CUDA_LAUNCH_CHECK("gather_first_bwd");
}

/* ---- losses ---- */

/* One block per row; log-sum-exp in double as on the CPU, so a loss of a
 * few classes matches to the last bit or two. Ignored rows (label < 0 or
 * out of range) get loss 0 and gradient 0. With a vocabulary-sized row
 * (an LM head) the double exps cost: a float path with a fused softmax
 * would pay there. */
__global__ static void k_cross_entropy(float *loss, float *dlogits, const float *logits,
                                       const int32_t *labels, int classes, float grad_scale) {
    __shared__ float shf[32];
    __shared__ double shd[32];
    const size_t r = blockIdx.x;
    const float *z = logits + r * classes;
    float *dz = dlogits ? dlogits + r * classes : NULL;
    const int y = labels[r];
    if (y < 0 || y >= classes) { /* the whole block takes this branch */
        if (threadIdx.x == 0) loss[r] = 0.0f;
        if (dz)
            for (int c = threadIdx.x; c < classes; c += blockDim.x) dz[c] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < classes; c += blockDim.x) mx = fmaxf(mx, z[c]);
    mx = block_max(mx, shf);
    double s = 0.0;
    for (int c = threadIdx.x; c < classes; c += blockDim.x) s += exp((double)z[c] - mx);
    s = block_sum(s, shd);
    const double lse = mx + log(s);
    if (threadIdx.x == 0) loss[r] = (float)(lse - z[y]);
    if (dz)
        for (int c = threadIdx.x; c < classes; c += blockDim.x)
            dz[c] = grad_scale * ((float)exp((double)z[c] - lse) - (c == y ? 1.0f : 0.0f));
}
void cu_cross_entropy(float *loss, float *dlogits, const float *logits, const int32_t *labels,
                      int rows, int classes, float grad_scale) {
    if (rows <= 0) return;
    if (classes <= 0) {
        /* no classes: every label is out of range; the CPU writes loss 0 */
        cuda_check(cudaMemset(loss, 0, sizeof(float) * (size_t)rows), "cross_entropy");
        return;
    }
    int threads = classes <= 32 ? 32 : classes <= 1024 ? 128 : ROW_THREADS;
    k_cross_entropy<<<rows, threads>>>(loss, dlogits, logits, labels, classes, grad_scale);
    CUDA_LAUNCH_CHECK("cross_entropy");
}

__global__ static void k_mse(float *loss, float *dpred, const float *pred, const float *target,
                             size_t n, float grad_scale) {
    GRID_STRIDE_LOOP(i, n) {
        float d = __fsub_rn(pred[i], target[i]);
        loss[i] = __fmul_rn(d, d);
        if (dpred) dpred[i] = __fmul_rn(__fmul_rn(grad_scale, 2.0f), d);
    }
}
void cu_mse(float *loss, float *dpred, const float *pred, const float *target, int rows,
            float grad_scale) {
    if (rows <= 0) return;
    k_mse<<<cuda_blocks((size_t)rows), CUDA_THREADS>>>(loss, dpred, pred, target, (size_t)rows,
                                                       grad_scale);
    CUDA_LAUNCH_CHECK("mse");
}

/* ---- AdamW ----
 * The CPU's formula step by step, each rounding spelled out (no FMA), so
 * the same gradients give the same parameters on both backends. One launch
 * per tensor: a multi-tensor launch (one kernel for the whole group) would
 * save the per-tensor launch cost for models with many small adapters. */
__global__ static void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr,
                               float b1, float b2, float eps, float wd, float bc1, float bc2) {
    GRID_STRIDE_LOOP(i, n) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(1.0f - b1, gi));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(1.0f - b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        float mh = __fdiv_rn(mi, bc1), vh = __fdiv_rn(vi, bc2);
        float pi = p[i];
        pi = __fsub_rn(pi, __fmul_rn(__fmul_rn(lr, wd), pi));
        pi = __fsub_rn(pi, __fdiv_rn(__fmul_rn(lr, mh), __fadd_rn(__fsqrt_rn(vh), eps)));
        p[i] = pi;
    }
}
void cu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float weight_decay, float bc1, float bc2) {
    if (!n) return;
    k_adamw<<<cuda_blocks(n), CUDA_THREADS>>>(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay,
                                              bc1, bc2);
    CUDA_LAUNCH_CHECK("adamw");
}

/* ---- sum of squares, to the host ----
 * A fixed grid writes one double partial per block into ctx->partials; the
 * host adds them in block order. The grid depends only on n, so the result
 * is deterministic. */
__global__ static void k_sumsq(double *partials, const float *x, size_t n) {
    __shared__ double shm[32];
    double s = 0.0;
    GRID_STRIDE_LOOP(i, n) s += (double)x[i] * x[i];
    s = block_sum(s, shm);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}
double cu_sumsq(const float *x, size_t n) {
    if (!n) return 0.0;
    CudaContext *c = cuda_ctx();
    unsigned blocks = cuda_blocks(n);
    if (blocks > CUDA_PARTIALS) blocks = CUDA_PARTIALS;
    double h[CUDA_PARTIALS];
    {
        std::lock_guard<std::mutex> hold(c->lock);
        k_sumsq<<<blocks, CUDA_THREADS>>>(c->partials, x, n);
        CUDA_LAUNCH_CHECK("sumsq");
        cuda_check(cudaMemcpy(h, c->partials, sizeof(double) * blocks, cudaMemcpyDeviceToHost),
                   "sumsq");
    }
    double s = 0.0;
    for (unsigned i = 0; i < blocks; i++) s += h[i];
    return s;
}

/* ---- start-up probe ---- */
cudaError_t cu_probe_kernel_image(void) {
    cudaFuncAttributes attr;
    return cudaFuncGetAttributes(&attr, k_scale);
}
