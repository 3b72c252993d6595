/* Choosing a backend by name (--device auto|cpu|cuda), and the stand-in for
 * backend_cuda in builds without the CUDA backend (compiled without
 * -DBILORA_CUDA), so every caller can ask for CUDA and get a reason. */
#include "kernels/backend.h"

#include <stdio.h>
#include <string.h>

#ifndef BILORA_CUDA
const Backend *backend_cuda(char *err, size_t errlen) {
    if (err && errlen)
        snprintf(err, errlen,
                 "this build has no CUDA backend (nvcc was not found at build time, or CUDA=0)");
    return NULL;
}
#endif

const Backend *backend_select(const char *device, char *err, size_t errlen) {
    char why[512];
    if (err && errlen) err[0] = '\0';
    if (!device || !*device || strcmp(device, "auto") == 0) {
        const Backend *be = backend_cuda(why, sizeof(why));
        if (be) return be;
        if (err && errlen) snprintf(err, errlen, "device auto: using the CPU: %s", why);
        return backend_cpu();
    }
    if (strcmp(device, "cpu") == 0) return backend_cpu();
    if (strcmp(device, "cuda") == 0) {
        const Backend *be = backend_cuda(why, sizeof(why));
        if (!be && err && errlen)
            snprintf(err, errlen, "device cuda is not available: %s (--device cpu or auto runs on "
                     "the CPU)", why);
        return be;
    }
    if (err && errlen)
        snprintf(err, errlen, "unknown device '%s' (expected auto, cpu or cuda)", device);
    return NULL;
}
