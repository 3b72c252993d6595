#include "engine/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int adamw_init(AdamW *o, const Backend *be, const ParamList *params, ParamGroup group,
               float weight_decay, char *err, size_t errlen) {
    memset(o, 0, sizeof(*o));
    o->be = be;
    o->params = params;
    o->group = group;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = weight_decay;
    o->numel = param_list_numel(params, group);
    size_t bytes = sizeof(float) * (o->numel ? o->numel : 1);
    o->m = be->alloc(bytes);
    o->v = be->alloc(bytes);
    if (!o->m || !o->v) {
        snprintf(err, errlen, "out of memory for optimizer moments (%zu parameters)", o->numel);
        adamw_free(o);
        return -1;
    }
    return 0;
}

void adamw_free(AdamW *o) {
    if (o->be) {
        if (o->m) o->be->release(o->m);
        if (o->v) o->be->release(o->v);
    }
    o->m = o->v = NULL;
}

void adamw_step(AdamW *o, float lr) {
    o->t++;
    float bc1 = 1.0f - powf(o->beta1, (float)o->t);
    float bc2 = 1.0f - powf(o->beta2, (float)o->t);
    size_t off = 0;
    for (int i = 0; i < o->params->n; i++) {
        const ParamTensor *p = &o->params->t[i];
        if (p->group != o->group) continue;
        o->be->adamw(p->data, p->grad, o->m + off, o->v + off, p->numel, lr, o->beta1, o->beta2,
                     o->eps, p->decay ? o->weight_decay : 0.0f, bc1, bc2);
        off += p->numel;
    }
}

double grad_norm(const Backend *be, const ParamList *params, ParamGroup group) {
    double s = 0.0;
    for (int i = 0; i < params->n; i++)
        if (params->t[i].group == group) s += be->sumsq(params->t[i].grad, params->t[i].numel);
    return sqrt(s);
}

double clip_grad_norm(const Backend *be, const ParamList *params, ParamGroup group, double max_norm) {
    double norm = grad_norm(be, params, group);
    if (max_norm > 0.0 && norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < params->n; i++)
            if (params->t[i].group == group) be->scale(params->t[i].grad, s, params->t[i].numel);
    }
    return norm;
}

float lr_linear_schedule(float base_lr, long step, long warmup, long total) {
    /* step counts from 0, as transformers' get_linear_schedule_with_warmup */
    if (warmup > 0 && step < warmup) return base_lr * (float)step / (float)warmup;
    if (total <= warmup) return base_lr;
    double f = (double)(total - step) / (double)(total - warmup);
    return base_lr * (float)(f > 0.0 ? f : 0.0);
}
