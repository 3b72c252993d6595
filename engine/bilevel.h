/* The bi-level problem of a model: L1 = C(D1 batch) + γ1·R1 over the LOWER
 * group, L2 = C(D2 batch) + γ2·R2 over the UPPER group, exposed as a
 * HyperProblem (hypergrad.h), plus helpers that move a parameter group's
 * values or gradients to and from one flat vector. */
#ifndef BILORA_ENGINE_BILEVEL_H
#define BILORA_ENGINE_BILEVEL_H

#include "engine/hypergrad.h"
#include "engine/model.h"

typedef struct {
    Model *m;
    const Batch *batch[3];  /* [1]: the D1 batch, [2]: the D2 batch */
    uint64_t seed[3];       /* dropout seeds of the two objectives */
    int train;              /* dropout on */
    float gamma1, gamma2;
    double last_reg;        /* the regularizer's value in the last call */
} ModelProblem;

void model_problem_bind(HyperProblem *pb, ModelProblem *mp);

/* Regularizers over every adapter: R1 (svd orthogonality) and R2 (sigmoid
 * λ entropy); with gamma != 0 their gradients are added. */
double model_orth_reg(Model *m, float gamma);
double model_entropy_reg(Model *m, float gamma);

/* which: 0 = values, 1 = gradients. Returns the number of floats moved. */
size_t group_gather(const Backend *be, const ParamList *l, ParamGroup g, int which, float *dst);
size_t group_scatter(const Backend *be, const ParamList *l, ParamGroup g, int which, const float *src);

#endif
