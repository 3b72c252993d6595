/* Masked-LM pretraining of an encoder (and causal-LM pretraining of the
 * gpt2 decoder) from random initialisation, writing a Hugging Face model
 * directory (config.json, model.safetensors with BertForMaskedLM /
 * RobertaForMaskedLM / GPT2LMHeadModel names, tokenizer files).
 *
 * gpt2: every sentence is followed by <|endoftext|> and the stream is cut
 * into seq_len pieces; every position predicts the next token of its piece;
 * the head is the tied decoder alone (logits = h Eᵀ, GPT2LMHeadModel's
 * lm_head), so it has no tensors of its own. The rest of this comment is
 * about the encoders.
 *
 * The recipe is BERT's: of the non-special tokens of each sequence, 15% are
 * chosen (exactly round(15%), at least one, as BERT's create_pretraining_data
 * does); a chosen token becomes [MASK] with probability 0.8, a uniformly
 * random vocabulary token with 0.1, and stays itself with 0.1. The loss is
 * the cross-entropy of the MLM head at the chosen positions only, averaged
 * over them.
 *
 * The MLM head is Hugging Face's BertLMPredictionHead (RoBERTa's lm_head
 * has the same math under other names):
 *   t = x Wtᵀ + bt;  u = gelu(t);  z = LN(u; g, b)
 *   logits = z Eᵀ + bias          E = the word embeddings (tied decoder)
 * It runs only at the chosen positions (gathered first): the [rows, vocab]
 * decoder is the most expensive matmul of a step, and 85% of its rows would
 * carry no loss. The decoder's gradient goes into the model's dwte.
 *
 * Corpus entries: plain text files (each non-empty line a sentence; a line
 * may be a whole paragraph), or GLUE tasks ("glue/SST-2", "SST-2", or a task
 * directory) of which only the TRAIN split's text_a and text_b are read.
 * Sentences are packed, in order, into sequences of seq_len tokens:
 *   bert:    [CLS] A [SEP] B [SEP]    (token types 0 for A, 1 for B)
 *   roberta: <s> A </s></s> B </s>    (all type 0)
 * where A and B split the packed text at the sentence boundary nearest its
 * middle (so both token types are trained, as fine-tuning on pairs needs).
 * A seeded ~1% of the sequences is held out for the held-out MLM loss.
 *
 * Resumable: every checkpoint_every steps, <out>.partial/state.safetensors
 * holds every trained tensor, both AdamW moments, and in its metadata the
 * step, the optimizer's t, the data cursor and a fingerprint of the settings.
 * Masks and dropout are functions of (seed, step), the data order a function
 * of (seed, epoch), so restoring those gives exactly the run that never
 * stopped. */
#ifndef BILORA_ENGINE_PRETRAIN_H
#define BILORA_ENGINE_PRETRAIN_H

#include "datasets/batch.h"
#include "engine/model.h"
#include "engine/params.h"

#include <stddef.h>
#include <stdint.h>

#define PRETRAIN_MAX_CORPUS 32

typedef struct {
    char arch[16];          /* "bert" | "roberta" (masked LM) | "gpt2" (causal LM); with
                               config: empty, or config.json's model_type */
    char size[16];          /* "tiny" | "mini" | "small"; ignored when config is set */
    char config[1024];      /* config.json (or a directory holding one); overrides size */
    char tokenizer[1024];   /* directory with the tokenizer files */
    char corpus[PRETRAIN_MAX_CORPUS][1024];
    int n_corpus;
    char out[1024];         /* the model directory to write */
    long steps;
    int batch_size;
    int seq_len;
    float lr;
    float warmup_ratio;
    float weight_decay;
    float max_grad_norm;
    float mask_prob;        /* 0.15 */
    float holdout_ratio;    /* 0.01 */
    float dropout;          /* hidden and attention dropout (config.json); < 0: keep the config's */
    uint64_t seed;
    long eval_every;        /* 0: steps / 10 */
    long checkpoint_every;  /* 0: never (only --stop-after writes one) */
    long stop_after;        /* > 0: checkpoint after this step and return (resume later) */
    int resume;             /* continue from <out>.partial/ when it holds a checkpoint */
    int overwrite;          /* replace an existing out directory */
    char device[16];        /* "cpu" | "auto" */
} PretrainConfig;

void pretrain_config_defaults(PretrainConfig *c);

typedef struct {
    long step, total_steps;
    double loss;            /* mean over the step's predicted tokens */
    int predicted;          /* tokens the loss was taken over */
    float lr;
    double grad_norm;
    double tokens_per_s;    /* non-padding input tokens per second */
    double step_seconds;
    double elapsed_seconds; /* training time so far (this process) */
    double eta_seconds;     /* at this process's mean step time */
} PretrainStep;

typedef struct {
    long step;
    double loss;            /* held-out MLM loss, token-weighted */
    long predicted;         /* held-out tokens scored */
    int sequences;
} PretrainEval;

typedef struct {
    long steps;             /* the last step done */
    int stopped;            /* 1: stopped by stop_after, checkpoint left to resume */
    double seconds;         /* wall time of this process's run */
    double final_train_loss;
    double heldout_loss;    /* the last held-out loss (NAN when none) */
    size_t params;
    char out[4200];         /* where the model (or the checkpoint) was written */
} PretrainDone;

typedef struct {
    void *ctx;
    void (*on_info)(void *ctx, const char *message);
    void (*on_step)(void *ctx, const PretrainStep *s);
    void (*on_eval)(void *ctx, const PretrainEval *e);
    void (*on_done)(void *ctx, const PretrainDone *d);
} PretrainCallbacks;

/* Runs to completion (or to stop_after). Returns 0, or -1 with a message. */
int pretrain_run(const PretrainConfig *cfg, const PretrainCallbacks *cb, char *err, size_t errlen);

/* The model config of arch ("bert"/"roberta") and size ("tiny"/"mini"/"small")
 * for a vocabulary of vocab tokens: tiny 2 layers/128 hidden/2 heads/512 FFN,
 * mini 4/256/4/1024, small 4/512/8/2048; 512 positions (RoBERTa: 514, its
 * positions start after the padding id). */
int pretrain_size_config(ModelConfig *out, const char *arch, const char *size, int vocab,
                         char *err, size_t errlen);

/* ---- the pieces, exposed for tests ---- */

/* BERT masking of one sequence in place. ids[0..n) are the input ids;
 * maskable[i] != 0 marks positions that may be chosen (not special, not
 * padding). Chooses exactly max(1, round(prob * maskable count)) positions
 * (none when nothing is maskable), writes labels[i] = original id at chosen
 * positions and -1 elsewhere, and replaces chosen ids 80/10/10. Returns the
 * number chosen. */
int mlm_mask_sequence(int32_t *ids, int32_t *labels, const uint8_t *maskable, int n, float prob,
                      int mask_id, int vocab_size, uint64_t *rng);

typedef struct MlmHead MlmHead;

/* A head for model m (bert: cls.predictions.*, roberta: lm_head.*),
 * initialised as Hugging Face does (normal(0, 0.02) dense weight, zero
 * biases, LayerNorm 1/0), able to score up to max_rows positions at once. */
int mlm_head_create(MlmHead **out, Model *m, int max_rows, uint64_t seed, char *err, size_t errlen);
void mlm_head_free(MlmHead *h);
/* The head's tensors, named as in the Hugging Face checkpoint, group LOWER. */
const ParamList *mlm_head_params(const MlmHead *h);
int mlm_head_max_rows(const MlmHead *h);
void mlm_head_zero_grad(MlmHead *h);
/* Loads the head's tensors from a model.safetensors written by pretrain. */
int mlm_head_load(MlmHead *h, const char *safetensors_path, char *err, size_t errlen);

/* One MLM evaluation of a batch: the model's forward pass (train selects
 * dropout, seeded by step_seed), the head at every position with
 * labels[i] >= 0 (labels: host, B*T), and with backward != 0 the whole
 * backward pass, accumulating into the head's and the model's gradients.
 * *loss_sum gets the summed loss and *predicted the count (the mean is their
 * ratio; gradients are of the mean). */
int mlm_batch_loss(Model *m, MlmHead *h, const Batch *inputs, const int32_t *labels, int train,
                   uint64_t step_seed, int backward, double *loss_sum, int *predicted, char *err,
                   size_t errlen);

#endif
