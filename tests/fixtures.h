/* Fixtures the tests make: temporary directories and small random models in
 * the real Hugging Face layout (config.json + model.safetensors). */
#ifndef BILORA_TESTS_FIXTURES_H
#define BILORA_TESTS_FIXTURES_H

#include "datasets/batch.h"
#include "engine/safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR; out must hold 256 bytes. */
void fixture_tmpdir(char *out);
/* rm -rf of a fixture directory */
void fixture_rmdir(const char *dir);

typedef struct {
    const char *model_type;  /* "bert" or "roberta" */
    int layers, hidden, heads, intermediate, vocab, max_pos, type_vocab;
    float hidden_dropout, attn_dropout;
    const char *prefix;      /* "" or "bert." / "roberta." */
    uint64_t seed;
} TinyModel;

/* Writes config.json and model.safetensors with random weights (LayerNorm
 * gains near 1, everything else small noise) into dir. Returns 0. */
int fixture_tiny_model(const char *dir, const TinyModel *spec);

/* A tiny BERT (2 layers, hidden 8, word-level vocabulary) in dir/model and
 * a synthetic sentiment task in SST-2's layout in dir/SST-2 (96 train, 24
 * dev). poison: put NaN into the embedding of a word every example uses. */
int fixture_tiny_glue(const char *dir, int poison);

/* A toy data-to-text task in E2E's layout in dir/e2e (trainset.csv: 64
 * records, devset.csv: 16; "name[N], food[F]" -> "N serves F food.") and a
 * tiny GPT-2 (2 layers, hidden 32, GPT-2's tokenizer from tokdir) in
 * dir/gpt2, written by a few steps of `pretrain` on the train references,
 * so the model directory is the real GPT2LMHeadModel layout. Returns 0, or
 * -1 with a message in err. */
int fixture_tiny_e2e(const char *dir, const char *tokdir, char *err, size_t errlen);

/* Where the reference generators wrote their outputs: $BILORA_REF_DIR,
 * else build/reference. */
const char *fixture_ref_dir(void);

/* A tensor of a reference file read as fp32 (malloc'ed); fails the running
 * Check test when it is absent. numel may be NULL. */
float *fixture_read_f32(const SafeTensors *st, const char *name, int64_t *numel);

/* A reference batch file (input_ids, token_type_ids, attention_mask,
 * labels; made_by names its generator for the error) read into out, whose
 * arrays batch_free releases. Fails the running Check test on a missing
 * file or tensor. */
void fixture_read_batch(const char *path, const char *made_by, Batch *out);

/* The first root of BILORA_ASSETS into out; -1 when unset. */
int fixture_assets(char *out, size_t cap);

#endif
