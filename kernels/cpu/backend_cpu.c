/* The CPU backend: OpenBLAS cblas_sgemm for the matmuls, plain loops for the
 * rest. It is the reference implementation: clear over clever.
 *
 * Threading is OpenBLAS's alone. OpenMP loops around the attention GEMMs and
 * the elementwise ops were measured (bench/bench_lora, 2 cores) to make a
 * training step 2x slower: the OpenMP and OpenBLAS thread pools spin against
 * each other for the same cores. */
#include "kernels/backend.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = NULL;
    /* 64-byte alignment for vector loads; zero-filled like cudaMemset. */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded) != 0) return NULL;
    memset(p, 0, rounded);
    return p;
}
static void cpu_release(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (dst != src && bytes) memmove(dst, src, bytes);
}
static void cpu_zero(void *p, size_t bytes) { if (bytes) memset(p, 0, bytes); }

static void cpu_matmul(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_add_bias(float *y, const float *bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * cols;
        for (int c = 0; c < cols; c++) yr[c] += bias[c];
    }
}
static void cpu_bias_grad(float *db, const float *dy, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *d = dy + (size_t)r * cols;
        for (int c = 0; c < cols; c++) db[c] += d[c];
    }
}
static void cpu_axpy(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void cpu_scale_cols(float *y, const float *x, const float *s, int rows, int cols,
                           int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * cols;
        const float *xr = x + (size_t)r * cols;
        if (accumulate)
            for (int c = 0; c < cols; c++) yr[c] += xr[c] * s[c];
        else
            for (int c = 0; c < cols; c++) yr[c] = xr[c] * s[c];
    }
}
static void cpu_col_dot(float *out, const float *a, const float *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *ar = a + (size_t)r * cols, *br = b + (size_t)r * cols;
        for (int c = 0; c < cols; c++) out[c] += ar[c] * br[c];
    }
}
static void cpu_row_norms(float *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        double s = 0.0;
        for (int c = 0; c < cols; c++) s += (double)xr[c] * xr[c];
        out[r] = (float)sqrt(s);
    }
}
static void cpu_scale(float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

/* erf by Abramowitz & Stegun 7.1.28: 1 − q^−16 with q = 1 + a1 x + … +
 * a6 x⁶ for x ≥ 0, odd in x; the formula is within 3e-7. 1 − q^−16 is
 * computed as (q − 1)(q + 1)(q² + 1)(q⁴ + 1)(q⁸ + 1) / q^16, where q − 1 is
 * the polynomial without its 1: no cancellation near 0, where 1 − 1/q^16 in
 * float lost ~1e-6. Past |x| = 6 erf is 1 in float (and q^16 would
 * overflow). A polynomial, a division and squarings vectorise, where libm's
 * erff is a scalar call: it was 12% of a MiniLM training step. */
static inline float erf_as(float x) {
    float a = fabsf(x);
    a = a < 6.0f ? a : 6.0f;
    float s = a * (0.0705230784f + a * (0.0422820123f + a * (0.0092705272f +
                   a * (0.0001520143f + a * (0.0002765672f + a * 0.0000430638f)))));
    float q = 1.0f + s, q2 = q * q, q4 = q2 * q2, q8 = q4 * q4;
    return copysignf(s * (q + 1.0f) * (q2 + 1.0f) * (q4 + 1.0f) * (q8 + 1.0f) / (q8 * q8), x);
}

/* e^y: y = k ln2 + r with |r| ≤ ln2/2, e^r by its degree-6 Taylor
 * polynomial (relative error ≤ 2e-7), 2^k put into the float's exponent
 * bits; y is clamped to [−87, 88], where e^y is a normal float. Like erf_as
 * it vectorises where expf is a scalar libm call: GELU's backward and the
 * tanh GELU spent most of their time in expf and tanhf. */
static inline float exp_poly(float y) {
    y = y > -87.0f ? (y < 88.0f ? y : 88.0f) : -87.0f;
    float t = y * 1.44269504088896341f;
    float k = (float)(int32_t)(t + (t < 0.0f ? -0.5f : 0.5f)); /* nearest */
    float r = (y - k * 0.693145751953125f) - k * 1.428606820309417e-06f; /* ln2 in two parts */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
                     r * (0.008333334f + r * 0.0013888889f)))));
    union { int32_t i; float f; } two_k = {.i = ((int32_t)k + 127) << 23};
    return p * two_k.f;
}

/* GELU, erf form (BERT's "gelu"): x * Φ(x). */
static void cpu_gelu_fwd(float *restrict y, const float *restrict x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erf_as(x[i] * 0.70710678118654752f));
}
/* dx may equal dy (the engine calls it in place): element i reads dy[i]
 * before it writes dx[i], so the loop is still free of dependences. */
static void cpu_gelu_bwd(float *dx, const float *x, const float *dy, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float cdf = 0.5f * (1.0f + erf_as(xi * 0.70710678118654752f));
        float pdf = inv_sqrt_2pi * exp_poly(-0.5f * xi * xi);
        dx[i] = dy[i] * (cdf + xi * pdf);
    }
}
/* GELU, tanh form (GPT-2's "gelu_new"): x (1 + tanh u) / 2, u = k (x + c x³).
 * With p = (1 + tanh u) / 2 = σ(2u) and q = 1 − p = σ(−2u), each computed
 * from its own exponential: 1 + tanh u suffers cancellation where tanh u is
 * near −1 (x below about −3), which left the derivative there with only a
 * few correct bits. In this form every factor is accurate to rounding. */
#define GELU_TANH_K 0.7978845608028654f /* √(2/π) */
#define GELU_TANH_C 0.044715f
static void cpu_gelu_tanh_fwd(float *restrict y, const float *restrict x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float u = GELU_TANH_K * (xi + GELU_TANH_C * xi * xi * xi);
        y[i] = xi / (1.0f + exp_poly(-2.0f * u));
    }
}
/* d/dx = (1 + t) / 2 + x (1 − t²) k (1 + 3 c x²) / 2 = p (1 + 2 x q u');
 * x is clamped to [−20, 20] first: beyond it the derivative is 1 or 0 in
 * float, while exp_poly's clamp keeps q ≥ 6e-39 and x³ overflows, so the
 * unclamped term would grow without bound. dx may equal dy. */
static void cpu_gelu_tanh_bwd(float *dx, const float *x, const float *dy, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i] < -20.0f ? -20.0f : (x[i] > 20.0f ? 20.0f : x[i]);
        float u = GELU_TANH_K * (xi + GELU_TANH_C * xi * xi * xi);
        float p = 1.0f / (1.0f + exp_poly(-2.0f * u)), q = 1.0f / (1.0f + exp_poly(2.0f * u));
        float du = GELU_TANH_K * (1.0f + 3.0f * GELU_TANH_C * xi * xi);
        dx[i] = dy[i] * (p * (1.0f + 2.0f * xi * q * du));
    }
}
static void cpu_tanh_fwd(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void cpu_tanh_bwd(float *dx, const float *y, const float *dy, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
static void cpu_dropout_fwd(float *y, const float *x, size_t n, float p, uint64_t seed) {
    if (p <= 0.0f) { cpu_copy(y, x, n * sizeof(float)); return; }
    float s = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) y[i] = dropout_keep(seed, i, p) ? x[i] * s : 0.0f;
}
static void cpu_dropout_bwd(float *dx, const float *dy, size_t n, float p, uint64_t seed) {
    cpu_dropout_fwd(dx, dy, n, p, seed);
}

static void cpu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *g,
                              const float *b, int rows, int cols, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double m = 0.0;
        for (int c = 0; c < cols; c++) m += xr[c];
        m /= cols;
        double var = 0.0;
        for (int c = 0; c < cols; c++) { double d = xr[c] - m; var += d * d; }
        var /= cols;
        float s = (float)(1.0 / sqrt(var + eps));
        float mf = (float)m;
        for (int c = 0; c < cols; c++) yr[c] = (xr[c] - mf) * s * g[c] + b[c];
        mean[r] = mf;
        rstd[r] = s;
    }
}

/* dx = rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat)) */
static void cpu_layernorm_bwd(float *dx, float *dg, float *db, const float *dy, const float *x,
                              const float *mean, const float *rstd, const float *g, int rows,
                              int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols, *dyr = dy + (size_t)r * cols;
        float *dxr = dx + (size_t)r * cols;
        float m = mean[r], s = rstd[r];
        double a = 0.0, bsum = 0.0;
        for (int c = 0; c < cols; c++) {
            float xh = (xr[c] - m) * s;
            float gd = g[c] * dyr[c];
            a += gd;
            bsum += gd * xh;
        }
        float ma = (float)(a / cols), mb = (float)(bsum / cols);
        for (int c = 0; c < cols; c++) {
            float xh = (xr[c] - m) * s;
            dxr[c] = s * (g[c] * dyr[c] - ma - xh * mb);
        }
    }
    if (dg || db) {
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * cols, *dyr = dy + (size_t)r * cols;
            float m = mean[r], s = rstd[r];
            for (int c = 0; c < cols; c++) {
                if (dg) dg[c] += dyr[c] * (xr[c] - m) * s;
                if (db) db[c] += dyr[c];
            }
        }
    }
}

static void cpu_embedding_fwd(float *out, const int32_t *ids, const float *table, int n, int cols,
                              int accumulate) {
    for (int i = 0; i < n; i++) {
        const float *t = table + (size_t)ids[i] * cols;
        float *o = out + (size_t)i * cols;
        if (accumulate)
            for (int c = 0; c < cols; c++) o[c] += t[c];
        else
            memcpy(o, t, sizeof(float) * cols);
    }
}
static void cpu_embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int n,
                              int cols) {
    for (int i = 0; i < n; i++) {
        float *t = dtable + (size_t)ids[i] * cols;
        const float *d = dout + (size_t)i * cols;
        for (int c = 0; c < cols; c++) t[c] += d[c];
    }
}
static void cpu_gather_first(float *out, const float *x, int B, int T, int cols) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * cols, x + (size_t)b * T * cols, sizeof(float) * cols);
}
static void cpu_gather_first_bwd(float *dx, const float *dout, int B, int T, int cols) {
    for (int b = 0; b < B; b++) {
        float *d = dx + (size_t)b * T * cols;
        const float *s = dout + (size_t)b * cols;
        for (int c = 0; c < cols; c++) d[c] += s[c];
    }
}

/* Attention, one (batch, head) at a time: S = QKᵀ/√D, masked softmax,
 * dropout, O = P V. Scores and probs live in probs[b,h]. */
static void cpu_attention_fwd(float *out, float *probs, const float *q, const float *k,
                              const float *v, int ld, const float *key_mask, int B, int T, int H,
                              int D, int causal, float dropout_p, uint64_t seed) {
    const float scale = 1.0f / sqrtf((float)D);
    const int C = H * D;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *qb = q + (size_t)b * T * ld + h * D;
            const float *kb = k + (size_t)b * T * ld + h * D;
            const float *vb = v + (size_t)b * T * ld + h * D;
            float *P = probs + ((size_t)b * H + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, qb, ld, kb, ld,
                        0.0f, P, T);
            const float *mask = key_mask ? key_mask + (size_t)b * T : NULL;
            for (int i = 0; i < T; i++) {
                float *row = P + (size_t)i * T;
                int jmax = causal ? i + 1 : T;
                float mx = -INFINITY;
                for (int j = 0; j < jmax; j++)
                    if (!mask || mask[j] != 0.0f) mx = fmaxf(mx, row[j]);
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    float e = 0.0f;
                    if (j < jmax && (!mask || mask[j] != 0.0f) && mx > -INFINITY)
                        e = expf(row[j] - mx);
                    row[j] = e;
                    sum += e;
                }
                float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
                for (int j = 0; j < T; j++) row[j] *= inv;
            }
            float *ob = out + (size_t)b * T * C + h * D;
            if (dropout_p > 0.0f) {
                /* The dropped copy lives only for this product. */
                float *Pd = malloc(sizeof(float) * (size_t)T * T);
                uint64_t base = ((uint64_t)b * H + h) * (uint64_t)T * T;
                float s = 1.0f / (1.0f - dropout_p);
                for (size_t e = 0; e < (size_t)T * T; e++)
                    Pd[e] = dropout_keep(seed, base + e, dropout_p) ? P[e] * s : 0.0f;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, Pd, T, vb,
                            ld, 0.0f, ob, C);
                free(Pd);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, P, T, vb,
                            ld, 0.0f, ob, C);
            }
        }
    }
}

static void cpu_attention_bwd(float *dq, float *dk, float *dv, const float *dout,
                              const float *probs, const float *q, const float *k, const float *v,
                              int ld, int B, int T, int H, int D, float dropout_p, uint64_t seed,
                              float *scratch) {
    const float scale = 1.0f / sqrtf((float)D);
    const int C = H * D;
    const float ds = dropout_p > 0.0f ? 1.0f / (1.0f - dropout_p) : 1.0f;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *P = probs + ((size_t)b * H + h) * T * T;
            float *dP = scratch + ((size_t)b * H + h) * T * T;
            const float *dob = dout + (size_t)b * T * C + h * D;
            const float *qb = q + (size_t)b * T * ld + h * D;
            const float *kb = k + (size_t)b * T * ld + h * D;
            const float *vb = v + (size_t)b * T * ld + h * D;
            float *dqb = dq + (size_t)b * T * ld + h * D;
            float *dkb = dk + (size_t)b * T * ld + h * D;
            float *dvb = dv + (size_t)b * T * ld + h * D;
            uint64_t base = ((uint64_t)b * H + h) * (uint64_t)T * T;
            /* dV = Pdᵀ dO, with Pd the dropped probabilities (built in dP). */
            if (dropout_p > 0.0f) {
                for (size_t e = 0; e < (size_t)T * T; e++)
                    dP[e] = dropout_keep(seed, base + e, dropout_p) ? P[e] * ds : 0.0f;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, dP, T, dob, C,
                            0.0f, dvb, ld);
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, P, T, dob, C,
                            0.0f, dvb, ld);
            }
            /* dPd = dO Vᵀ, then through dropout, then softmax backward:
             * dS = P ⊙ (dP - Σ_j dP⊙P). */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dob, C, vb, ld,
                        0.0f, dP, T);
            for (int i = 0; i < T; i++) {
                float *dr = dP + (size_t)i * T;
                const float *pr = P + (size_t)i * T;
                if (dropout_p > 0.0f)
                    for (int j = 0; j < T; j++)
                        dr[j] = dropout_keep(seed, base + (size_t)i * T + j, dropout_p) ? dr[j] * ds
                                                                                         : 0.0f;
                double dot = 0.0;
                for (int j = 0; j < T; j++) dot += (double)dr[j] * pr[j];
                float fd = (float)dot;
                for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - fd);
            }
            /* dQ = scale dS K, dK = scale dSᵀ Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, scale, dP, T, kb, ld,
                        0.0f, dqb, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, scale, dP, T, qb, ld,
                        0.0f, dkb, ld);
        }
    }
}

static void cpu_cross_entropy(float *loss, float *dlogits, const float *logits,
                              const int32_t *labels, int rows, int classes, float grad_scale) {
    for (int r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * classes;
        float *dz = dlogits ? dlogits + (size_t)r * classes : NULL;
        int y = labels[r];
        if (y < 0 || y >= classes) {
            loss[r] = 0.0f;
            if (dz) memset(dz, 0, sizeof(float) * classes);
            continue;
        }
        float mx = z[0];
        for (int c = 1; c < classes; c++) mx = z[c] > mx ? z[c] : mx;
        /* One expf per logit (into dz when there is one), summed in double:
         * the MLM head's 30k-way softmax spent most of its time in exp. */
        double sum = 0.0;
        if (dz) {
            for (int c = 0; c < classes; c++) {
                dz[c] = expf(z[c] - mx);
                sum += dz[c];
            }
            float k = (float)(grad_scale / sum);
            for (int c = 0; c < classes; c++) dz[c] *= k;
            dz[y] -= grad_scale;
        } else {
            for (int c = 0; c < classes; c++) sum += expf(z[c] - mx);
        }
        loss[r] = (float)(mx + log(sum) - z[y]);
    }
}
static void cpu_mse(float *loss, float *dpred, const float *pred, const float *target, int rows,
                    float grad_scale) {
    for (int r = 0; r < rows; r++) {
        float d = pred[r] - target[r];
        loss[r] = d * d;
        if (dpred) dpred[r] = grad_scale * 2.0f * d;
    }
}

/* restrict and simd let the compiler vectorise the loop (divide and sqrt are exact in
 * SIMD, so the result is bit-for-bit the scalar one): the 30k-row embedding's
 * update took 15% of a tiny model's pretraining step as a scalar loop. */
static void cpu_adamw(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, size_t n, float lr, float b1, float b2, float eps,
                      float wd, float bc1, float bc2) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mh = m[i] / bc1, vh = v[i] / bc2;
        /* decoupled weight decay, as torch.optim.AdamW: p -= lr*wd*p first */
        p[i] -= lr * wd * p[i];
        p[i] -= lr * mh / (sqrtf(vh) + eps);
    }
}

static double cpu_sumsq(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static const Backend CPU_BACKEND = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .bias_grad = cpu_bias_grad,
    .axpy = cpu_axpy,
    .scale_cols = cpu_scale_cols,
    .col_dot = cpu_col_dot,
    .row_norms = cpu_row_norms,
    .scale = cpu_scale,
    .gelu_fwd = cpu_gelu_fwd,
    .gelu_bwd = cpu_gelu_bwd,
    .gelu_tanh_fwd = cpu_gelu_tanh_fwd,
    .gelu_tanh_bwd = cpu_gelu_tanh_bwd,
    .tanh_fwd = cpu_tanh_fwd,
    .tanh_bwd = cpu_tanh_bwd,
    .dropout_fwd = cpu_dropout_fwd,
    .dropout_bwd = cpu_dropout_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd = cpu_embedding_bwd,
    .gather_first = cpu_gather_first,
    .gather_first_bwd = cpu_gather_first_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .cross_entropy = cpu_cross_entropy,
    .mse = cpu_mse,
    .adamw = cpu_adamw,
    .sumsq = cpu_sumsq,
};

const Backend *backend_cpu(void) { return &CPU_BACKEND; }

void backend_cpu_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
int backend_cpu_threads(void) { return openblas_get_num_threads(); }
