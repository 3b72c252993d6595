#include "engine/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int param_list_add(ParamList *l, const char *name, float *data, float *grad, int ndim,
                   int64_t d0, int64_t d1, ParamGroup group, int decay) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        ParamTensor *t = realloc(l->t, sizeof(*t) * cap);
        if (!t) return -1;
        l->t = t;
        l->cap = cap;
    }
    ParamTensor *p = &l->t[l->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->data = data;
    p->grad = grad;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    p->group = group;
    p->decay = decay;
    return 0;
}

void param_list_free(ParamList *l) {
    free(l->t);
    memset(l, 0, sizeof(*l));
}

const ParamTensor *param_list_find(const ParamList *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

size_t param_list_numel(const ParamList *l, ParamGroup group) {
    size_t n = 0;
    for (int i = 0; i < l->n; i++)
        if (l->t[i].group == group) n += l->t[i].numel;
    return n;
}
