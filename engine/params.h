/* Trainable tensors and their parameter groups.
 *
 * Every trainable tensor belongs to a group: LOWER (trained on D1, or on all
 * data by single-level methods), UPPER (the bi-level methods' upper level) or
 * FROZEN. Optimizers and training loops work on groups, never on method
 * names. Names are canonical and prefix-free
 * ("encoder.layer.3.attention.self.query.lora_A", "classifier.weight"). */
#ifndef BILORA_ENGINE_PARAMS_H
#define BILORA_ENGINE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GROUP_FROZEN = 0, GROUP_LOWER = 1, GROUP_UPPER = 2 } ParamGroup;

#define PARAM_NAME_MAX 128

typedef struct {
    char name[PARAM_NAME_MAX];
    float *data;        /* backend memory */
    float *grad;        /* backend memory, same shape */
    size_t numel;
    int ndim;
    int64_t shape[2];
    ParamGroup group;
    int decay;          /* weight decay applies (matrices yes, biases/LN no) */
} ParamTensor;

typedef struct {
    ParamTensor *t;
    int n, cap;
} ParamList;

int param_list_add(ParamList *l, const char *name, float *data, float *grad, int ndim,
                   int64_t d0, int64_t d1, ParamGroup group, int decay);
void param_list_free(ParamList *l);
const ParamTensor *param_list_find(const ParamList *l, const char *name);
size_t param_list_numel(const ParamList *l, ParamGroup group);

#endif
