/* Text continuation by a decoder (gpt2): the tied LM head on the last
 * position, logits = h_T Eᵀ, then greedy (temperature 0) or sampled (softmax
 * of logits / temperature over the top_k best, 0 = all) next tokens, one
 * full forward per token (no KV cache: for short continuations and tests). */
#ifndef BILORA_ENGINE_GENERATE_H
#define BILORA_ENGINE_GENERATE_H

#include "engine/model.h"

#include <stdint.h>

typedef struct {
    int max_new;        /* tokens to add at most */
    float temperature;  /* 0: greedy */
    int top_k;          /* sampling: keep the k best (0: all) */
    uint64_t seed;      /* sampling */
    int eos_id;         /* stop after generating it (-1: never) */
} GenerateOptions;

/* Appends up to o->max_new tokens to prompt[0..n_prompt); *out (malloc'd)
 * receives the new tokens only, *n_out their count (eos included when it
 * ended the text). The model must be a gpt2 without a classification head,
 * loaded with max_seq >= n_prompt + max_new. */
int lm_generate(Model *m, const int32_t *prompt, int n_prompt, const GenerateOptions *o,
                int32_t **out, int *n_out, char *err, size_t errlen);

#endif
