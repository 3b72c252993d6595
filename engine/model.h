/* A transformer (the bert and roberta encoders, the gpt2 decoder) built from
 * a Hugging Face model directory: config.json + model.safetensors.
 *
 * One allocation holds all base parameters, with named views into it (the
 * llm.c habit); trainable tensors (head, adapters) live in a second one,
 * activations in a third. Forward and backward are explicit, layer by layer,
 * against the backend table: no general autograd.
 *
 * Post-LN encoder layer (BERT/RoBERTa):
 *   a  = Attn(x);  h = LN1(x + drop(a Woᵀ + bo))
 *   f  = gelu(h Wiᵀ + bi);  y = LN2(h + drop(f Wfᵀ + bf))
 * Sequence-classification head on the first token:
 *   bert:    pooled = tanh(Wp x0 + bp) (frozen base pooler); logits = Wc drop(pooled) + bc
 *   roberta: h = tanh(Wd drop(x0) + bd); logits = Wo drop(h) + bo
 *
 * Pre-LN decoder layer (GPT-2), causal attention, gelu_new:
 *   r = x + drop(Attn(LN1(x)) Woᵀ + bo);  y = r + drop(gelu(LN2(r) Wiᵀ + bi) Wfᵀ + bf)
 * and a final LayerNorm (ln_f) gives the hidden states. Checkpoints store
 * GPT-2's Conv1D weights as [in, out] and q, k, v fused in c_attn; the loader
 * transposes and splits them into the same Linear [out, in] layers as the
 * encoders, so adapters, optimizers and the backend see one layout. */
#ifndef BILORA_ENGINE_MODEL_H
#define BILORA_ENGINE_MODEL_H

#include "engine/adapter.h"
#include "engine/model_config.h"
#include "engine/params.h"
#include "datasets/batch.h"
#include "kernels/backend.h"

#include <stdint.h>

/* Linear layers an adapter can target (bit flags). */
enum {
    TARGET_QUERY = 1 << 0,
    TARGET_KEY = 1 << 1,
    TARGET_VALUE = 1 << 2,
    TARGET_ATTENTION_OUTPUT = 1 << 3,
    TARGET_INTERMEDIATE = 1 << 4,
    TARGET_OUTPUT = 1 << 5,
};
#define TARGET_COUNT 6
extern const char *const TARGET_NAMES[TARGET_COUNT];
/* "query,value" -> flags; -1 and a message on an unknown name. */
int targets_parse(const char *list, int *flags, char *err, size_t errlen);
/* An adapted linear's path ("encoder.layer.3.attention.self.query",
 * "h.3.attn.c_attn.q") -> its layer and TARGET index; -1 when it is neither
 * naming's. */
int target_of_path(const char *path, int *layer, int *target);

typedef struct {
    float *w, *b;     /* [out,in], [out] */
    float *dw, *db;   /* NULL when frozen */
    int in, out;
    Adapter *adapter; /* NULL when none */
} Linear;

typedef struct {
    Linear q, k, v, o, inter, out;
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    float *dln1_g, *dln1_b, *dln2_g, *dln2_b;
    Adapter adapters[TARGET_COUNT];
} Layer;

typedef struct {
    int rank;          /* 0: no adapters */
    AdapterForm form;  /* lora, svd or dora */
    float alpha;       /* scale s = alpha / rank */
    float dropout;     /* on the adapter's input */
    int targets;       /* TARGET_* flags */
    LambdaParam lambda;/* svd: how λ comes from its free vector */
    SvdInit svd_init;  /* svd: how P, Q and λ start */
    int bilevel;       /* svd's λ / dora's m go to GROUP_UPPER, not GROUP_LOWER */
} AdapterOptions;

typedef struct {
    const char *model_dir;
    int num_labels;    /* 0: no head; 1: regression */
    int lm_head;       /* gpt2, num_labels 0: GPT2LMHeadModel's head (tied to wte), its
                          loss on Batch.targets (data-to-text fine-tuning) */
    int lm_chunk;      /* LM head: scored rows per logits chunk (0: 256); the memory is
                          2 x chunk x vocab floats whatever the batch */
    int max_batch, max_seq;
    AdapterOptions adapter;
    int train_base;    /* gradients for the base weights too (checks, pretraining) */
    uint64_t init_seed;
    int random_init;   /* no model.safetensors: initialise as Hugging Face does
                          (normal(0, 0.02) weights, zero biases, LayerNorm 1/0) */
    const ModelConfig *config; /* use this config instead of model_dir/config.json */
} ModelOptions;

typedef struct Model {
    ModelConfig cfg;
    const Backend *be;
    int num_labels, max_batch, max_seq, train_base;
    int is_roberta;
    int is_gpt2;
    int lm_head;                  /* the tied LM head scores Batch.targets */
    int lm_rows;                  /* positions scored by the last forward */
    int lm_chunk;                 /* rows of logits computed at once */
    int gelu_tanh;                /* hidden_act gelu_new: the tanh form */
    AdapterOptions adapter;

    /* base parameters: one allocation, named views */
    float *base, *base_grad;      /* base_grad NULL unless train_base */
    size_t base_numel;
    float *wte, *wpe, *wtt, *emb_ln_g, *emb_ln_b;
    float *dwte, *dwpe, *dwtt, *demb_ln_g, *demb_ln_b;
    Layer *layers;
    Linear pooler;                /* bert only */
    float *lnf_g, *lnf_b, *dlnf_g, *dlnf_b; /* gpt2: the final ln_f */

    /* trainable: head + adapters, one allocation */
    float *train, *train_grad;
    size_t train_numel;
    Linear head_dense;            /* roberta: classifier.dense */
    Linear head_out;              /* bert: classifier; roberta: classifier.out_proj */

    ParamList params;             /* every trainable tensor with its group */

    /* activations, one allocation, sized for max_batch x max_seq */
    float *acts;
    size_t acts_numel;
    struct ModelActs *a;
    int cur_B, cur_T;
} Model;

int model_load(Model **out, const Backend *be, const ModelOptions *opt, char *err, size_t errlen);
void model_free(Model *m);

/* Forward pass; train selects dropout (seeded by step_seed). Leaves the last
 * hidden states in model_hidden() and, with a head, logits in
 * model_logits() ([B, num_labels], backend memory). */
int model_forward(Model *m, const Batch *batch, int train, uint64_t step_seed, char *err,
                  size_t errlen);
const float *model_hidden(const Model *m);
const float *model_logits(const Model *m);

/* Loss of the last forward against batch->labels (mean over the batch:
 * cross-entropy, or MSE when num_labels == 1; with the LM head, the mean
 * cross-entropy over the tokens batch->targets scores, computed in chunks
 * of lm_chunk rows); also seeds the backward pass
 * with dloss/dlogits scaled by grad_scale. per_example (host, B floats) may
 * be NULL. */
double model_loss(Model *m, const Batch *batch, float grad_scale, float *per_example);

/* Language-model head: tokens the last forward scored (0 otherwise). */
int model_scored_tokens(const Model *m);

/* Backward pass of the last training forward: accumulates into every
 * trainable gradient (call model_zero_grad first). */
void model_backward(Model *m, uint64_t step_seed);
void model_zero_grad(Model *m);

/* Backward from an arbitrary gradient of the last hidden states
 * (dhidden: [B*T, H], backend memory), skipping the head. */
void model_backward_from_hidden(Model *m, const float *dhidden, uint64_t step_seed);

/* Loads a LoRA adapter file (PEFT's adapter_model.safetensors naming, or the
 * LoRA paper's plain names) onto the model's adapters and head: names mapped,
 * shapes checked, unknown tensors named in the error. */
int model_load_adapter(Model *m, const char *path, char *err, size_t errlen);

#endif
