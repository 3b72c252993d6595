#include "engine/spectrum.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK, as OpenBLAS exports it (Fortran calling convention). */
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *info);

/* R (r×r, upper triangular, column-major) of the QR of a rows×r matrix given
 * column-major in a (overwritten). rows >= r required. */
static int qr_r(double *a, int rows, int r, double *R) {
    int lwork = -1, info = 0;
    double wq;
    double *tau = malloc(sizeof(double) * r);
    dgeqrf_(&rows, &r, a, &rows, tau, &wq, &lwork, &info);
    lwork = (int)wq;
    double *work = malloc(sizeof(double) * (lwork > 1 ? lwork : 1));
    dgeqrf_(&rows, &r, a, &rows, tau, work, &lwork, &info);
    for (int j = 0; j < r; j++)
        for (int i = 0; i < r; i++) R[i + j * r] = i <= j ? a[i + j * rows] : 0.0;
    free(tau);
    free(work);
    return info;
}

/* A rank above a side of the matrix (r > min(out, in)): the singular values
 * of the dense s·B·A (out×in), min(out, in) of them, then zeros up to r. */
static int dense_singular_values(const float *B, const float *A, int out, int in, int r, float s,
                                 float *sv) {
    double *w = malloc(sizeof(double) * out * in);
    int k = out < in ? out : in;
    double *sing = malloc(sizeof(double) * (k > 0 ? k : 1));
    if (!w || !sing) { free(w); free(sing); return -1; }
    for (int i = 0; i < out; i++) /* column-major */
        for (int j = 0; j < in; j++) {
            double acc = 0;
            for (int q = 0; q < r; q++) acc += (double)B[i * r + q] * A[q * in + j];
            w[i + j * out] = s * acc;
        }
    int lwork = -1, info = 0, one = 1;
    double wq, dummy;
    dgesvd_("N", "N", &out, &in, w, &out, sing, &dummy, &one, &dummy, &one, &wq, &lwork, &info);
    lwork = (int)wq;
    double *work = malloc(sizeof(double) * (lwork > 1 ? lwork : 1));
    if (work) dgesvd_("N", "N", &out, &in, w, &out, sing, &dummy, &one, &dummy, &one, work, &lwork, &info);
    for (int i = 0; i < r; i++) sv[i] = i < k ? (float)sing[i] : 0.0f;
    free(work); free(w); free(sing);
    return work && info == 0 ? 0 : -1;
}

int lowrank_singular_values(const float *B, const float *A, int out, int in, int r, float s,
                            float *sv) {
    if (out < r || in < r) return dense_singular_values(B, A, out, in, r, s, sv);
    double *b = malloc(sizeof(double) * out * r), *at = malloc(sizeof(double) * in * r);
    double *RB = malloc(sizeof(double) * r * r), *RA = malloc(sizeof(double) * r * r);
    double *core = malloc(sizeof(double) * r * r), *sing = malloc(sizeof(double) * r);
    /* column-major copies: B (out×r) and Aᵀ (in×r) */
    for (int i = 0; i < out; i++)
        for (int j = 0; j < r; j++) b[i + j * out] = B[i * r + j];
    for (int i = 0; i < in; i++)
        for (int j = 0; j < r; j++) at[i + j * in] = A[j * in + i];
    int info = qr_r(b, out, r, RB);
    info |= qr_r(at, in, r, RA);
    /* core = s · R_B R_Aᵀ */
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double acc = 0;
            for (int k = 0; k < r; k++) acc += RB[i + k * r] * RA[j + k * r];
            core[i + j * r] = s * acc;
        }
    int lwork = -1;
    double wq, dummy;
    int one = 1;
    dgesvd_("N", "N", &r, &r, core, &r, sing, &dummy, &one, &dummy, &one, &wq, &lwork, &info);
    lwork = (int)wq;
    double *work = malloc(sizeof(double) * (lwork > 1 ? lwork : 1));
    dgesvd_("N", "N", &r, &r, core, &r, sing, &dummy, &one, &dummy, &one, work, &lwork, &info);
    for (int i = 0; i < r; i++) sv[i] = (float)sing[i];
    free(work); free(b); free(at); free(RB); free(RA); free(core); free(sing);
    return info == 0 ? 0 : -1;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int spectrum_compute(Model *m, const float *m0, SpectrumInfo *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const AdapterOptions *o = &m->adapter;
    if (o->rank <= 0) return 0;
    int n = 0;
    for (int t = 0; t < TARGET_COUNT; t++) n += (o->targets >> t) & 1;
    n *= m->cfg.num_hidden_layers;
    out->rows = calloc(n ? n : 1, sizeof(SpectrumRow));
    if (!out->rows) { snprintf(err, errlen, "out of memory"); return -1; }
    const Backend *be = m->be;
    size_t m0_off = 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int t = 0; t < TARGET_COUNT; t++) {
            if (!(o->targets & (1 << t))) continue;
            Adapter *ad = &m->layers[l].adapters[t];
            SpectrumRow *row = &out->rows[out->n++];
            snprintf(row->name, sizeof(row->name), "L%d.%s", l, TARGET_NAMES[t]);
            row->n = ad->rank;
            row->values = malloc(sizeof(float) * ad->rank);
            row->orth = row->magnitude_change = row->direction_change = NAN;
            if (!row->values) { snprintf(err, errlen, "out of memory"); return -1; }
            if (ad->form == ADAPTER_SVD) {
                adapter_lambda(be, ad, row->values);
                for (int i = 0; i < ad->rank; i++) row->values[i] = fabsf(row->values[i]);
                qsort(row->values, ad->rank, sizeof(float), cmp_desc);
                row->orth = sqrt(fmax(adapter_orth_reg(be, ad, 0.0f), 0.0));
                continue;
            }
            size_t na = (size_t)ad->rank * ad->in, nb = (size_t)ad->out * ad->rank;
            float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
            if (!A || !B) { free(A); free(B); snprintf(err, errlen, "out of memory"); return -1; }
            be->download(A, ad->A, sizeof(float) * na);
            be->download(B, ad->B, sizeof(float) * nb);
            if (lowrank_singular_values(B, A, ad->out, ad->in, ad->rank, ad->scale, row->values) != 0)
                for (int i = 0; i < ad->rank; i++) row->values[i] = NAN;
            if (ad->form == ADAPTER_DORA) {
                float *mv = malloc(sizeof(float) * ad->out), *w = malloc(sizeof(float) * (size_t)ad->out * ad->in);
                if (mv && w) {
                    be->download(mv, ad->m, sizeof(float) * ad->out);
                    be->download(w, ad->W0, sizeof(float) * (size_t)ad->out * ad->in);
                    if (m0) {
                        double d = 0, n0 = 0;
                        for (int i = 0; i < ad->out; i++) {
                            double x = mv[i] - m0[m0_off + i];
                            d += x * x;
                            n0 += (double)m0[m0_off + i] * m0[m0_off + i];
                        }
                        row->magnitude_change = sqrt(d / (n0 > 0 ? n0 : 1));
                    }
                    double fw = 0, fd = 0;
                    for (size_t i = 0; i < (size_t)ad->out * ad->in; i++) fw += (double)w[i] * w[i];
                    for (int i = 0; i < ad->rank; i++) fd += (double)row->values[i] * row->values[i];
                    row->direction_change = sqrt(fd / (fw > 0 ? fw : 1));
                }
                free(mv);
                free(w);
                m0_off += ad->out;
            }
            free(A);
            free(B);
        }
    return 0;
}

void spectrum_free(SpectrumInfo *s) {
    for (int i = 0; i < s->n; i++) free(s->rows[i].values);
    free(s->rows);
    memset(s, 0, sizeof(*s));
}
