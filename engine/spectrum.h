/* What the workbench draws of the adapters: for every adapted matrix its
 * current singular values — λ for svd forms; for lora/dora the true
 * singular values of s·B·A, from the r×r core R_B·R_Aᵀ after QR of B and Aᵀ
 * and a small SVD (LAPACK dgeqrf + dgesvd) — plus ‖PᵀP−I‖_F + ‖QQᵀ−I‖_F for
 * svd forms and DoRA's magnitude and direction change. */
#ifndef BILORA_ENGINE_SPECTRUM_H
#define BILORA_ENGINE_SPECTRUM_H

#include "engine/model.h"
#include "engine/train.h"

/* m0: DoRA's initial magnitudes, all adapters concatenated in layer/target
 * order (host), or NULL. Fills out (rows malloc'ed; spectrum_free). */
int spectrum_compute(Model *m, const float *m0, SpectrumInfo *out, char *err, size_t errlen);
void spectrum_free(SpectrumInfo *s);

/* Singular values (descending) of s·B·A, B: out×r, A: r×in, host memory:
 * r of them (past min(out, in), when r exceeds it, zeros). */
int lowrank_singular_values(const float *B, const float *A, int out, int in, int r, float s,
                            float *sv);

#endif
