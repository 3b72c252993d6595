/* A model's config.json, read into one struct for bert, roberta and gpt2.
 * GPT-2's names (n_embd, n_layer, n_head, n_inner, n_positions,
 * layer_norm_epsilon, activation_function) map onto the same fields.
 * A config with no model_type (roberta-base's 2019 file) falls back on the
 * directory name, then on "bert". Missing required fields are errors naming
 * the file and the field. */
#ifndef BILORA_ENGINE_MODEL_CONFIG_H
#define BILORA_ENGINE_MODEL_CONFIG_H

#include <stddef.h>

typedef struct {
    char model_type[32];        /* "bert", "roberta", "gpt2" */
    int vocab_size;
    int hidden_size;
    int num_hidden_layers;
    int num_attention_heads;
    int intermediate_size;      /* gpt2: n_inner or 4*n_embd */
    int max_position_embeddings;
    int type_vocab_size;        /* gpt2: 0 */
    int pad_token_id;           /* bert 0, roberta 1 when absent; gpt2 -1 */
    float layer_norm_eps;
    float hidden_dropout_prob;  /* gpt2: resid_pdrop */
    float attention_probs_dropout_prob; /* gpt2: attn_pdrop */
    char hidden_act[32];        /* "gelu", "gelu_new", ... */
    int num_labels;             /* from num_labels or id2label, 0 when absent */
} ModelConfig;

int model_config_load(ModelConfig *cfg, const char *model_dir, char *err, size_t errlen);
/* Writes config.json for cfg into model_dir (Hugging Face field names). */
int model_config_save(const ModelConfig *cfg, const char *model_dir, char *err, size_t errlen);

#endif
