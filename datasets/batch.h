/* Tokenized examples and padded batches: the datasets layer's output, the
 * model's input. */
#ifndef BILORA_DATASETS_BATCH_H
#define BILORA_DATASETS_BATCH_H

#include "datasets/glue.h"
#include "datasets/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *ids, *type_ids;
    int n;
    float label;
    int32_t *targets; /* language modelling: the token each position predicts, -1
                         where none is scored (the prompt); NULL for GLUE */
    int prompt_n;     /* language modelling: tokens of the prompt (the rest is the
                         completion the loss is taken on) */
} EncodedExample;

typedef struct {
    EncodedExample *ex;
    int n;
    int longest;      /* longest encoded length */
    int truncated;    /* examples cut to max_len */
} EncodedSet;

/* Tokenizes every example of a GLUE split (pairs where text_b is set). */
int encode_glue(const Tokenizer *tok, const GlueSplit *split, int max_len, EncodedSet *out,
                char *err, size_t errlen);
void encoded_set_free(EncodedSet *s);

/* Data-to-text examples for a decoder (E2E NLG): the prompt is the meaning
 * representation and the separator, "MR ||", the completion " REF" and the
 * end-of-text token; targets score the completion only, as the LoRA paper's
 * GPT-2 E2E set-up does. Over max_len, the completion's tail is cut (and
 * counted truncated); a prompt that leaves no room for a completion token is
 * an error naming the record's line. mr[i], ref[i], line[i] for i < n. */
int encode_data_to_text(const Tokenizer *tok, const char *const *mr, const char *const *ref,
                        const int *line, int n, int max_len, int eos_id, EncodedSet *out,
                        char *err, size_t errlen);
/* The prompt of a meaning representation, as encode_data_to_text builds it
 * (for generation); *ids malloc'd. */
int encode_data_to_text_prompt(const Tokenizer *tok, const char *mr, int32_t **ids, int *n,
                               char *err, size_t errlen);

/* A batch on the host: ids, token types, attention mask [B*T]; labels [B];
 * for language modelling, targets [B*T] (-1: not scored), else NULL. */
typedef struct {
    int B, T;
    int32_t *ids, *type_ids;
    float *mask;
    float *labels;
    int32_t *targets;
} Batch;

/* Builds the batch of examples idx[0..B-1], right-padded with pad_id to the
 * longest of them. The batch owns its arrays (batch_free). */
int batch_build(const EncodedSet *set, const int *idx, int B, int pad_id, Batch *out);
void batch_free(Batch *b);

#endif
