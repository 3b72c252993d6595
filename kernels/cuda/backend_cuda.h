/* Private to the CUDA backend and the programs that check or measure it
 * (tests/test_cuda_backend.c, bench/bench_cuda.c): knobs that are not part of
 * the Backend table. Plain C, no CUDA headers; only meaningful in builds
 * with -DBILORA_CUDA (the definitions live in kernels/cuda/backend_cuda.cu).
 *
 * The engine does not call these: precision is chosen once per process,
 * by BILORA_CUDA_TF32=1 in the environment (read when backend_cuda() first
 * succeeds), or by these calls before a run starts. */
#ifndef BILORA_KERNELS_CUDA_BACKEND_CUDA_H
#define BILORA_KERNELS_CUDA_BACKEND_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

/* Matmuls (cuBLAS) may use TF32 tensor cores when on != 0 (inputs rounded
 * to a 10-bit mantissa: relative errors ~1e-3); 0 restores full fp32, the
 * default. Returns the previous setting; -1 when the backend is not
 * initialised (call backend_cuda() first). */
int backend_cuda_set_tf32(int on);

/* The device's name and compute capability ("NVIDIA H100 80GB HBM3, sm_90,
 * 79.1 GiB") into out; "" when the backend is not initialised. */
void backend_cuda_describe(char *out, unsigned long cap);

/* Waits until the GPU has finished all queued work (for timing). */
void backend_cuda_sync(void);

#ifdef __cplusplus
}
#endif

#endif
