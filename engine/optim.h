/* AdamW over one parameter group, with the schedule and clipping helpers
 * the training loops share. The moments are one backend allocation per
 * optimizer, laid out in parameter-list order. */
#ifndef BILORA_ENGINE_OPTIM_H
#define BILORA_ENGINE_OPTIM_H

#include "engine/params.h"
#include "kernels/backend.h"

typedef struct {
    const Backend *be;
    const ParamList *params;
    ParamGroup group;
    float beta1, beta2, eps, weight_decay;
    long t;            /* steps taken */
    float *m, *v;      /* moments, numel(group) each */
    size_t numel;
} AdamW;

int adamw_init(AdamW *o, const Backend *be, const ParamList *params, ParamGroup group,
               float weight_decay, char *err, size_t errlen);
void adamw_free(AdamW *o);
/* One update of every tensor in the group with learning rate lr. */
void adamw_step(AdamW *o, float lr);

/* Global L2 norm of the group's gradients. */
double grad_norm(const Backend *be, const ParamList *params, ParamGroup group);
/* Scales the group's gradients so their norm is at most max_norm (> 0);
 * returns the norm before clipping. */
double clip_grad_norm(const Backend *be, const ParamList *params, ParamGroup group, double max_norm);

/* Linear warm-up over warmup steps, then linear decay to 0 at total. */
float lr_linear_schedule(float base_lr, long step, long warmup, long total);

#endif
