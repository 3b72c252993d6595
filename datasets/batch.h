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

/* A batch on the host: ids, token types, attention mask [B*T]; labels [B]. */
typedef struct {
    int B, T;
    int32_t *ids, *type_ids;
    float *mask;
    float *labels;
} Batch;

/* Builds the batch of examples idx[0..B-1], right-padded with pad_id to the
 * longest of them. The batch owns its arrays (batch_free). */
int batch_build(const EncodedSet *set, const int *idx, int B, int pad_id, Batch *out);
void batch_free(Batch *b);

#endif
