#include "engine/bilevel.h"

#include <math.h>
#include <stdio.h>

size_t group_gather(const Backend *be, const ParamList *l, ParamGroup g, int which, float *dst) {
    size_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const ParamTensor *p = &l->t[i];
        if (p->group != g) continue;
        be->copy(dst + off, which ? p->grad : p->data, sizeof(float) * p->numel);
        off += p->numel;
    }
    return off;
}

size_t group_scatter(const Backend *be, const ParamList *l, ParamGroup g, int which, const float *src) {
    size_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const ParamTensor *p = &l->t[i];
        if (p->group != g) continue;
        be->copy(which ? p->grad : p->data, src + off, sizeof(float) * p->numel);
        off += p->numel;
    }
    return off;
}

double model_orth_reg(Model *m, float gamma) {
    double r = 0;
    if (m->adapter.rank <= 0 || m->adapter.form != ADAPTER_SVD) return 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int t = 0; t < TARGET_COUNT; t++)
            if (m->adapter.targets & (1 << t)) r += adapter_orth_reg(m->be, &m->layers[l].adapters[t], gamma);
    return r;
}

double model_entropy_reg(Model *m, float gamma) {
    double r = 0;
    if (m->adapter.rank <= 0 || m->adapter.form != ADAPTER_SVD) return 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int t = 0; t < TARGET_COUNT; t++)
            if (m->adapter.targets & (1 << t))
                r += adapter_entropy_reg(m->be, &m->layers[l].adapters[t], gamma);
    return r;
}

static double mp_grad(void *ctx, int level, float *g_lower, float *g_upper) {
    ModelProblem *mp = ctx;
    Model *m = mp->m;
    char err[256];
    model_zero_grad(m);
    if (model_forward(m, mp->batch[level], mp->train, mp->seed[level], err, sizeof(err)) != 0) {
        fprintf(stderr, "bilevel: %s\n", err); /* sizes were checked when the batches were built */
        return NAN;
    }
    double loss = model_loss(m, mp->batch[level], 1.0f, NULL);
    model_backward(m, mp->seed[level]);
    if (level == 1 && mp->gamma1 != 0.0f) {
        mp->last_reg = model_orth_reg(m, mp->gamma1);
        loss += mp->gamma1 * mp->last_reg;
    }
    if (level == 2 && mp->gamma2 != 0.0f) {
        mp->last_reg = model_entropy_reg(m, mp->gamma2);
        loss += mp->gamma2 * mp->last_reg;
    }
    group_gather(m->be, &m->params, GROUP_LOWER, 1, g_lower);
    group_gather(m->be, &m->params, GROUP_UPPER, 1, g_upper);
    return loss;
}

static void mp_get_lower(void *ctx, float *dst) {
    ModelProblem *mp = ctx;
    group_gather(mp->m->be, &mp->m->params, GROUP_LOWER, 0, dst);
}

static void mp_set_lower(void *ctx, const float *src) {
    ModelProblem *mp = ctx;
    group_scatter(mp->m->be, &mp->m->params, GROUP_LOWER, 0, src);
}

void model_problem_bind(HyperProblem *pb, ModelProblem *mp) {
    pb->ctx = mp;
    pb->n_lower = param_list_numel(&mp->m->params, GROUP_LOWER);
    pb->n_upper = param_list_numel(&mp->m->params, GROUP_UPPER);
    pb->grad = mp_grad;
    pb->get_lower = mp_get_lower;
    pb->set_lower = mp_set_lower;
}
