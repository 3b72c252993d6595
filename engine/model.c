/* Encoder model: layout, weight loading, forward and backward.
 * See model.h for the math. */
#include "engine/model.h"

#include "engine/rng.h"
#include "engine/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const TARGET_NAMES[TARGET_COUNT] = {"query",     "key",          "value",
                                                "attention_output", "intermediate", "output"};

int targets_parse(const char *list, int *flags, char *err, size_t errlen) {
    *flags = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < TARGET_COUNT; i++)
            if (strlen(TARGET_NAMES[i]) == len && strncmp(p, TARGET_NAMES[i], len) == 0) {
                *flags |= 1 << i;
                found = 1;
            }
        if (!found && len) {
            snprintf(err, errlen,
                     "unknown adapter target '%.*s'; expected a comma-separated list of: query, "
                     "key, value, attention_output, intermediate, output",
                     (int)len, p);
            return -1;
        }
        if (!e) break;
        p = e + 1;
    }
    if (!*flags) {
        snprintf(err, errlen, "no adapter targets given");
        return -1;
    }
    return 0;
}

/* Encoder (post-LN): res1 = x + attn, h1 = LN1(res1), res2 = h1 + ffn,
 * out = LN2(res2). Decoder (pre-LN): h1 = LN1(x), res1 = x + attn,
 * h2 = LN2(res1), out = res1 + ffn. */
typedef struct {
    float *q, *k, *v, *probs, *ctx, *res1, *h1, *mean1, *rstd1;
    float *inter_pre, *inter_act, *res2, *h2, *out, *mean2, *rstd2;
} LayerActs;

/* Rows of the LM head's logits computed at once by default (x 50257
 * floats, twice: 100 MB). */
#define LM_CHUNK 256

struct ModelActs {
    int32_t *ids, *type_ids, *pos_ids, *labels_i;
    float *mask, *labels_f;
    float *emb_sum, *emb_ln, *emb_mean, *emb_rstd, *x0;
    LayerActs *L;
    float *hidden, *lnf_mean, *lnf_rstd; /* gpt2: ln_f of the last layer */
    int32_t *last_idx;                   /* gpt2 head: row b*T + last kept position */
    /* gpt2 LM head: the R scored positions (rows of the hidden states), their
     * target tokens, the gathered rows, logits and their gradient for one
     * chunk of lm_chunk rows [chunk, V], and dL/drows [R, C] */
    int32_t *lm_rows, *lm_targets;
    float *lm_x, *lm_logits, *lm_dlogits, *lm_loss, *lm_dx;
    float lm_scale;                      /* the last model_loss's grad_scale / R */
    /* head */
    float *first, *first_d, *pooled, *pooled_d, *logits, *dlogits, *loss_rows;
    /* backward scratch */
    float *tmp, *dx, *dh, *dres, *dbig, *dq, *dk, *dv, *dprobs, *dscratch;
    float *dfirst, *dpooled, *dpooled_pre;
};

/* ---- layout: a two-pass bump allocator over the four arenas ---- */

typedef struct {
    float *base;
    size_t used;
} Bump;

static float *take(Bump *b, size_t n) {
    float *p = b->base ? b->base + b->used : NULL;
    b->used += (n + 15) / 16 * 16; /* 64-byte aligned views */
    return p;
}

typedef struct {
    Model *m;
    Bump base, train, acts;
    int pass; /* 0: measure, 1: assign and register */
    int fail;
} Layout;

/* A base tensor: frozen unless train_base (then its gradient mirrors it). */
static float *base_tensor(Layout *L, const char *name, int ndim, int64_t d0, int64_t d1,
                          float **grad, int decay) {
    size_t n = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    size_t off = L->base.used;
    float *p = take(&L->base, n);
    float *g = NULL;
    if (L->pass && L->m->base_grad) g = L->m->base_grad + off;
    if (grad) *grad = g;
    if (L->pass)
        L->fail |= param_list_add(&L->m->params, name, p, g, ndim, d0, d1,
                                  L->m->train_base ? GROUP_LOWER : GROUP_FROZEN, decay);
    return p;
}

static float *train_tensor(Layout *L, const char *name, int ndim, int64_t d0, int64_t d1,
                           float **grad, ParamGroup group, int decay) {
    size_t n = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    size_t off = L->train.used;
    float *p = take(&L->train, n);
    float *g = L->pass ? L->m->train_grad + off : NULL;
    *grad = g;
    if (L->pass) L->fail |= param_list_add(&L->m->params, name, p, g, ndim, d0, d1, group, decay);
    return p;
}

static void base_linear(Layout *L, Linear *lin, const char *prefix, int in, int out) {
    char name[2 * PARAM_NAME_MAX];
    lin->in = in;
    lin->out = out;
    snprintf(name, sizeof(name), "%s.weight", prefix);
    lin->w = base_tensor(L, name, 2, out, in, &lin->dw, 1);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    lin->b = base_tensor(L, name, 1, out, 1, &lin->db, 0);
}

static void head_linear(Layout *L, Linear *lin, const char *prefix, int in, int out) {
    char name[2 * PARAM_NAME_MAX];
    lin->in = in;
    lin->out = out;
    snprintf(name, sizeof(name), "%s.weight", prefix);
    lin->w = train_tensor(L, name, 2, out, in, &lin->dw, GROUP_LOWER, 1);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    lin->b = train_tensor(L, name, 1, out, 1, &lin->db, GROUP_LOWER, 0);
    lin->adapter = NULL;
}

static void attach_adapter(Layout *L, Linear *lin, Adapter *ad, const char *prefix, size_t N) {
    Model *m = L->m;
    const AdapterOptions *o = &m->adapter;
    char name[2 * PARAM_NAME_MAX];
    ad->form = o->form;
    ad->lambda_param = o->lambda;
    ad->svd_init = o->svd_init;
    ad->in = lin->in;
    ad->out = lin->out;
    ad->rank = o->rank;
    ad->scale = o->alpha / (float)o->rank;
    ad->dropout = o->dropout;
    ad->W0 = lin->w;
    const int r = ad->rank;
    ParamGroup upper = o->bilevel ? GROUP_UPPER : GROUP_LOWER;
    /* names as PEFT writes them: lora_A/lora_B, AdaLoRA's lora_E, DoRA's
     * lora_magnitude_vector */
    snprintf(name, sizeof(name), "%s.lora_A", prefix);
    ad->A = train_tensor(L, name, 2, r, ad->in, &ad->dA, GROUP_LOWER, 1);
    snprintf(name, sizeof(name), "%s.lora_B", prefix);
    ad->B = train_tensor(L, name, 2, ad->out, r, &ad->dB, GROUP_LOWER, 1);
    if (ad->form == ADAPTER_SVD) {
        snprintf(name, sizeof(name), "%s.lora_E", prefix);
        ad->E = train_tensor(L, name, 1, r, 1, &ad->dE, upper, 0);
        ad->lam = take(&L->acts, r);
        ad->Pl = take(&L->acts, (size_t)ad->out * r);
        ad->dPl = take(&L->acts, (size_t)ad->out * r);
    }
    if (ad->form == ADAPTER_DORA) {
        snprintf(name, sizeof(name), "%s.lora_magnitude_vector", prefix);
        ad->m = train_tensor(L, name, 1, ad->out, 1, &ad->dm, upper, 0);
        ad->V = take(&L->acts, (size_t)ad->out * ad->in);
        ad->norm = take(&L->acts, ad->out);
        ad->c = take(&L->acts, ad->out);
        ad->z = take(&L->acts, N * ad->out);
        ad->dz = take(&L->acts, N * ad->out);
    }
    size_t small = (size_t)r * r;
    if ((size_t)ad->out > small) small = ad->out;
    ad->small = take(&L->acts, small);
    ad->xd = ad->dropout > 0.0f ? take(&L->acts, N * ad->in) : NULL;
    ad->xa = take(&L->acts, N * r);
    ad->dxa = take(&L->acts, N * r);
    lin->adapter = ad;
}

/* One layer's names: the prefix of layer l ("encoder.layer.%d" /
 * "h.%d"), the six linears' suffixes in TARGET order, and the two
 * LayerNorms'. */
typedef struct {
    const char *layer_fmt;
    const char *linear[TARGET_COUNT];
    const char *ln1, *ln2;
} LayerNames;

static const LayerNames ENCODER_NAMES = {
    "encoder.layer.%d",
    {"attention.self.query", "attention.self.key", "attention.self.value",
     "attention.output.dense", "intermediate.dense", "output.dense"},
    "attention.output.LayerNorm", "output.LayerNorm"};
/* GPT2Model's names without "transformer."; q, k and v are views of the
 * checkpoint's fused c_attn, named c_attn.q / c_attn.k / c_attn.v here. */
static const LayerNames DECODER_NAMES = {
    "h.%d",
    {"attn.c_attn.q", "attn.c_attn.k", "attn.c_attn.v", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"},
    "ln_1", "ln_2"};

int target_of_path(const char *path, int *layer, int *target) {
    const LayerNames *names[2] = {&ENCODER_NAMES, &DECODER_NAMES};
    for (int k = 0; k < 2; k++) {
        /* the layer prefix up to its number: "encoder.layer." / "h." */
        const char *fmt = names[k]->layer_fmt;
        size_t pre = (size_t)(strstr(fmt, "%d") - fmt);
        if (strncmp(path, fmt, pre) != 0) continue;
        char *end;
        long l = strtol(path + pre, &end, 10);
        if (end == path + pre || *end != '.') continue;
        for (int t = 0; t < TARGET_COUNT; t++)
            if (!strcmp(end + 1, names[k]->linear[t])) {
                *layer = (int)l;
                *target = t;
                return 0;
            }
    }
    return -1;
}

/* Registers layer l's linears, LayerNorms and adapters. */
static void layout_layer(Layout *L, int l, const LayerNames *nm) {
    Model *m = L->m;
    const int C = m->cfg.hidden_size, I = m->cfg.intermediate_size;
    const size_t N = (size_t)m->max_batch * m->max_seq;
    Layer *ly = &m->layers[l];
    Linear *lins[TARGET_COUNT] = {&ly->q, &ly->k, &ly->v, &ly->o, &ly->inter, &ly->out};
    const int in[TARGET_COUNT] = {C, C, C, C, C, I}, out[TARGET_COUNT] = {C, C, C, C, I, C};
    char lp[64], p[PARAM_NAME_MAX];
    snprintf(lp, sizeof(lp), nm->layer_fmt, l);
    for (int t = 0; t < TARGET_COUNT; t++) {
        snprintf(p, sizeof(p), "%s.%s", lp, nm->linear[t]);
        base_linear(L, lins[t], p, in[t], out[t]);
        lins[t]->adapter = NULL;
    }
    float **g[4] = {&ly->ln1_g, &ly->ln1_b, &ly->ln2_g, &ly->ln2_b};
    float **dg[4] = {&ly->dln1_g, &ly->dln1_b, &ly->dln2_g, &ly->dln2_b};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s.%s.%s", lp, i < 2 ? nm->ln1 : nm->ln2, i % 2 ? "bias" : "weight");
        *g[i] = base_tensor(L, p, 1, C, 1, dg[i], 0);
    }
    if (m->adapter.rank > 0)
        for (int t = 0; t < TARGET_COUNT; t++)
            if (m->adapter.targets & (1 << t)) {
                snprintf(p, sizeof(p), "%s.%s", lp, nm->linear[t]);
                attach_adapter(L, lins[t], &ly->adapters[t], p, N);
            }
}

static void layout(Layout *L) {
    Model *m = L->m;
    const ModelConfig *c = &m->cfg;
    const int C = c->hidden_size, I = c->intermediate_size, H = c->num_attention_heads;
    const size_t B = m->max_batch, T = m->max_seq, N = B * T;
    struct ModelActs *a = m->a;

    if (m->is_gpt2) {
        m->wte = base_tensor(L, "wte.weight", 2, c->vocab_size, C, &m->dwte, 0);
        m->wpe = base_tensor(L, "wpe.weight", 2, c->max_position_embeddings, C, &m->dwpe, 0);
        for (int l = 0; l < c->num_hidden_layers; l++) layout_layer(L, l, &DECODER_NAMES);
        m->lnf_g = base_tensor(L, "ln_f.weight", 1, C, 1, &m->dlnf_g, 0);
        m->lnf_b = base_tensor(L, "ln_f.bias", 1, C, 1, &m->dlnf_b, 0);
    } else {
        m->wte = base_tensor(L, "embeddings.word_embeddings.weight", 2, c->vocab_size, C, &m->dwte, 0);
        m->wpe = base_tensor(L, "embeddings.position_embeddings.weight", 2,
                             c->max_position_embeddings, C, &m->dwpe, 0);
        m->wtt = base_tensor(L, "embeddings.token_type_embeddings.weight", 2, c->type_vocab_size, C,
                             &m->dwtt, 0);
        m->emb_ln_g = base_tensor(L, "embeddings.LayerNorm.weight", 1, C, 1, &m->demb_ln_g, 0);
        m->emb_ln_b = base_tensor(L, "embeddings.LayerNorm.bias", 1, C, 1, &m->demb_ln_b, 0);
        for (int l = 0; l < c->num_hidden_layers; l++) layout_layer(L, l, &ENCODER_NAMES);
        if (!m->is_roberta) base_linear(L, &m->pooler, "pooler.dense", C, C);
    }
    if (m->num_labels > 0) {
        if (m->is_gpt2) { /* GPT2ForSequenceClassification: score, no bias */
            char name[2 * PARAM_NAME_MAX];
            Linear *lin = &m->head_out;
            lin->in = C;
            lin->out = m->num_labels;
            snprintf(name, sizeof(name), "score.weight");
            lin->w = train_tensor(L, name, 2, m->num_labels, C, &lin->dw, GROUP_LOWER, 1);
            lin->b = lin->db = NULL;
            lin->adapter = NULL;
        } else if (m->is_roberta) {
            head_linear(L, &m->head_dense, "classifier.dense", C, C);
            head_linear(L, &m->head_out, "classifier.out_proj", C, m->num_labels);
        } else {
            head_linear(L, &m->head_out, "classifier", C, m->num_labels);
        }
    }

    /* activations */
    a->ids = (int32_t *)take(&L->acts, N);
    a->type_ids = (int32_t *)take(&L->acts, N);
    a->pos_ids = (int32_t *)take(&L->acts, N);
    a->labels_i = (int32_t *)take(&L->acts, B);
    a->last_idx = (int32_t *)take(&L->acts, B);
    a->mask = take(&L->acts, N);
    a->labels_f = take(&L->acts, B);
    a->emb_sum = take(&L->acts, N * C);
    a->emb_ln = take(&L->acts, N * C);
    a->emb_mean = take(&L->acts, N);
    a->emb_rstd = take(&L->acts, N);
    a->x0 = take(&L->acts, N * C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        LayerActs *la = &a->L[l];
        la->q = take(&L->acts, N * C);
        la->k = take(&L->acts, N * C);
        la->v = take(&L->acts, N * C);
        la->probs = take(&L->acts, B * H * T * T);
        la->ctx = take(&L->acts, N * C);
        la->res1 = take(&L->acts, N * C);
        la->h1 = take(&L->acts, N * C);
        la->mean1 = take(&L->acts, N);
        la->rstd1 = take(&L->acts, N);
        la->inter_pre = take(&L->acts, N * I);
        la->inter_act = take(&L->acts, N * I);
        la->res2 = m->is_gpt2 ? NULL : take(&L->acts, N * C);
        la->h2 = m->is_gpt2 ? take(&L->acts, N * C) : NULL;
        la->out = take(&L->acts, N * C);
        la->mean2 = take(&L->acts, N);
        la->rstd2 = take(&L->acts, N);
    }
    if (m->is_gpt2) {
        a->hidden = take(&L->acts, N * C);
        a->lnf_mean = take(&L->acts, N);
        a->lnf_rstd = take(&L->acts, N);
    }
    size_t wide = (size_t)(I > C ? I : C);
    if (m->lm_head) {
        size_t V = (size_t)c->vocab_size;
        a->lm_rows = (int32_t *)take(&L->acts, N);
        a->lm_targets = (int32_t *)take(&L->acts, N);
        a->lm_x = take(&L->acts, N * C);
        size_t ch = N < (size_t)m->lm_chunk ? N : (size_t)m->lm_chunk;
        a->lm_logits = take(&L->acts, ch * V);
        a->lm_dlogits = take(&L->acts, ch * V);
        a->lm_loss = take(&L->acts, N);
        a->lm_dx = take(&L->acts, N * C);
    }
    a->first = take(&L->acts, B * C);
    a->first_d = take(&L->acts, B * C);
    a->pooled = take(&L->acts, B * C);
    a->pooled_d = take(&L->acts, B * C);
    a->logits = take(&L->acts, B * (m->num_labels > 0 ? m->num_labels : 1));
    a->dlogits = take(&L->acts, B * (m->num_labels > 0 ? m->num_labels : 1));
    a->loss_rows = take(&L->acts, B);
    a->tmp = take(&L->acts, N * wide);
    a->dx = take(&L->acts, N * C);
    a->dh = take(&L->acts, N * C);
    a->dres = take(&L->acts, N * C);
    a->dbig = take(&L->acts, N * I);
    a->dq = take(&L->acts, N * C);
    a->dk = take(&L->acts, N * C);
    a->dv = take(&L->acts, N * C);
    a->dprobs = take(&L->acts, B * H * T * T);
    a->dscratch = take(&L->acts, N * wide);
    a->dfirst = take(&L->acts, B * C);
    a->dpooled = take(&L->acts, B * C);
    a->dpooled_pre = take(&L->acts, B * C);
}

/* ---- loading ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Checkpoint tensors we knowingly do not use. */
static int ignorable(const char *name) {
    return strncmp(name, "cls.", 4) == 0 || strncmp(name, "lm_head.", 8) == 0 ||
           ends_with(name, "position_ids") || strstr(name, "pooler.") != NULL ||
           /* GPT-2's causal-mask buffers, in checkpoints before transformers 4.32 */
           ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
}

static int is_layernorm_weight(const Model *m, const char *name) {
    if (m->is_gpt2)
        return ends_with(name, ".weight") && (strstr(name, "ln_1.") || strstr(name, "ln_2.") ||
                                              strncmp(name, "ln_f.", 5) == 0);
    return ends_with(name, "LayerNorm.weight");
}

/* Find a tensor under the checkpoint's prefix, accepting TF-era LayerNorm
 * names (gamma/beta). */
static const StTensor *find_param(const SafeTensors *st, const char *prefix, const char *name) {
    char full[PARAM_NAME_MAX + 16];
    snprintf(full, sizeof(full), "%s%s", prefix, name);
    const StTensor *t = st_find(st, full);
    if (t) return t;
    if (ends_with(name, "LayerNorm.weight") || ends_with(name, "LayerNorm.bias")) {
        size_t n = strlen(full);
        char alt[PARAM_NAME_MAX + 16];
        if (ends_with(name, ".weight"))
            snprintf(alt, sizeof(alt), "%.*s.gamma", (int)(n - 7), full);
        else
            snprintf(alt, sizeof(alt), "%.*s.beta", (int)(n - 5), full);
        return st_find(st, alt);
    }
    return NULL;
}

static int shape_matches(const StTensor *t, const ParamTensor *p) {
    if (t->numel != (int64_t)p->numel) return 0;
    /* vectors: [n], or [n, 1] / [1, n] as AdaLoRA stores lora_E */
    if (p->ndim == 1) return t->ndim == 1 || (t->ndim == 2 && (t->shape[0] == 1 || t->shape[1] == 1));
    return t->ndim == 2 && t->shape[0] == p->shape[0] && t->shape[1] == p->shape[1];
}

static void init_normal(const Backend *be, float *dst, size_t n, double std, uint64_t *rng) {
    float *h = malloc(sizeof(float) * n);
    if (!h) return;
    for (size_t i = 0; i < n; i++) h[i] = (float)(rng_normal(rng) * std);
    be->upload(dst, h, sizeof(float) * n);
    free(h);
}

/* Hugging Face's _init_weights: normal(0, 0.02) matrices, zero biases,
 * LayerNorm 1/0; GPT-2 also scales its residual projections (c_proj) by
 * 1/√(2·n_layer). */
static void random_weights(Model *m, uint64_t *rng) {
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (strstr(p->name, ".lora_")) continue;
        if (m->is_gpt2 && p->ndim == 2 && ends_with(p->name, "c_proj.weight")) {
            init_normal(m->be, p->data, p->numel, 0.02 / sqrt(2.0 * m->cfg.num_hidden_layers), rng);
        } else if (is_layernorm_weight(m, p->name)) {
            float *h = malloc(sizeof(float) * p->numel);
            if (!h) return;
            for (size_t k = 0; k < p->numel; k++) h[k] = 1.0f;
            m->be->upload(p->data, h, sizeof(float) * p->numel);
            free(h);
        } else if (p->ndim == 2) {
            init_normal(m->be, p->data, p->numel, 0.02, rng);
        } else {
            m->be->zero(p->data, sizeof(float) * p->numel);
        }
    }
}

/* Where a GPT-2 parameter comes from in the checkpoint: its name (under the
 * prefix), the column block of c_attn it is (q 0, k 1, v 2; -1: whole), and
 * whether it is a Conv1D weight stored [in, out]. */
static void gpt2_source(const char *name, char *src, size_t cap, int *part, int *conv1d) {
    const char *s = strstr(name, "attn.c_attn.");
    *part = -1;
    *conv1d = 0;
    if (s) {
        const char *tail = s + strlen("attn.c_attn.");  /* "q.weight" */
        *part = tail[0] == 'q' ? 0 : tail[0] == 'k' ? 1 : 2;
        snprintf(src, cap, "%.*sattn.c_attn%s", (int)(s - name), name, tail + 1);
        *conv1d = ends_with(name, ".weight");
        return;
    }
    snprintf(src, cap, "%s", name);
    *conv1d = ends_with(name, ".weight") && (strstr(name, "c_proj.") || strstr(name, "c_fc."));
}

/* GPT-2 checkpoints (GPT2Model, or GPT2LMHeadModel with "transformer."):
 * Conv1D weights transposed to [out, in], c_attn split into q, k, v. */
static int load_weights_gpt2(Model *m, SafeTensors *st, const char *path, uint64_t *rng,
                             char *err, size_t errlen) {
    const char *prefix = st_find(st, "transformer.wte.weight") ? "transformer." : "";
    char *used = calloc(st->n ? st->n : 1, 1);
    float *host = NULL, *src_buf = NULL;
    size_t host_cap = 0, src_cap = 0;
    int rc = 0;
    if (!used) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int i = 0; i < m->params.n && rc == 0; i++) {
        ParamTensor *p = &m->params.t[i];
        if (strstr(p->name, ".lora_")) continue;
        if (strncmp(p->name, "score.", 6) == 0) {
            /* a GPT2ForSequenceClassification head with this label count is
             * loaded; otherwise a fresh one, as Hugging Face starts it */
            const StTensor *t = st_find(st, p->name);
            if (t && t->ndim == 2 && t->shape[0] == p->shape[0] && t->shape[1] == p->shape[1]) {
                float *buf = malloc(sizeof(float) * p->numel);
                if (!buf) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
                st_read_f32(st, t, buf);
                m->be->upload(p->data, buf, sizeof(float) * p->numel);
                free(buf);
                used[t - st->tensors] = 1;
            } else {
                init_normal(m->be, p->data, p->numel, 0.02, rng);
            }
            continue;
        }
        char name[PARAM_NAME_MAX + 16], full[PARAM_NAME_MAX + 32];
        int part, conv1d;
        gpt2_source(p->name, name, sizeof(name), &part, &conv1d);
        snprintf(full, sizeof(full), "%s%s", prefix, name);
        const StTensor *t = st_find(st, full);
        int64_t rows = p->shape[0], cols = p->ndim > 1 ? p->shape[1] : 1;
        /* expected checkpoint shape: Conv1D [in, out·parts]; vectors [out·parts] */
        int parts = part >= 0 ? 3 : 1;
        int ok = t != NULL;
        if (ok && p->ndim == 2 && conv1d)
            ok = t->ndim == 2 && t->shape[0] == cols && t->shape[1] == rows * parts;
        else if (ok && p->ndim == 2)
            ok = t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols;
        else if (ok)
            ok = t->ndim == 1 && t->shape[0] == rows * parts;
        if (!ok) {
            if (t)
                snprintf(err, errlen, "%s: tensor %s has shape [%lld x %lld], expected %s for config.json",
                         path, full, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 1),
                         conv1d ? "[in x out] (Conv1D)" : "the config's");
            else
                snprintf(err, errlen, "%s: tensor %s missing (a gpt2 checkpoint needs it)", path, full);
            rc = -1;
            break;
        }
        used[t - st->tensors] = 1;
        if ((size_t)t->numel > src_cap) {
            free(src_buf);
            src_cap = t->numel;
            src_buf = malloc(sizeof(float) * src_cap);
        }
        if (p->numel > host_cap) {
            free(host);
            host_cap = p->numel;
            host = malloc(sizeof(float) * host_cap);
        }
        if (!src_buf || !host) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
        st_read_f32(st, t, src_buf);
        if (p->ndim == 2 && conv1d) { /* ours[o][i] = ckpt[i][part·out + o] */
            int64_t ld = rows * parts, off = part >= 0 ? part * rows : 0;
            for (int64_t o = 0; o < rows; o++)
                for (int64_t k = 0; k < cols; k++) host[o * cols + k] = src_buf[k * ld + off + o];
        } else {
            int64_t off = part >= 0 ? part * rows : 0;
            memcpy(host, src_buf + off, sizeof(float) * p->numel);
        }
        m->be->upload(p->data, host, sizeof(float) * p->numel);
    }
    free(host);
    free(src_buf);
    if (rc == 0) {
        char unexpected[1024] = "";
        int n_unexpected = 0;
        for (int i = 0; i < st->n; i++) {
            if (used[i] || ignorable(st->tensors[i].name) ||
                strncmp(st->tensors[i].name, "score.", 6) == 0)
                continue;
            if (n_unexpected++ < 6) {
                size_t len = strlen(unexpected);
                snprintf(unexpected + len, sizeof(unexpected) - len, "%s%s", len ? ", " : "",
                         st->tensors[i].name);
            }
        }
        if (n_unexpected) {
            snprintf(err, errlen, "%s: %d unexpected tensor(s) for a gpt2 model with %d layers: %s",
                     path, n_unexpected, m->cfg.num_hidden_layers, unexpected);
            rc = -1;
        }
    }
    free(used);
    return rc;
}

static int load_weights(Model *m, const char *dir, uint64_t *rng, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    SafeTensors st;
    if (st_open(&st, path, err, errlen) != 0) return -1;
    if (m->is_gpt2) {
        int rc = load_weights_gpt2(m, &st, path, rng, err, errlen);
        st_close(&st);
        return rc;
    }
    const char *prefix = "";
    if (st_find(&st, "bert.embeddings.word_embeddings.weight")) prefix = "bert.";
    else if (st_find(&st, "roberta.embeddings.word_embeddings.weight")) prefix = "roberta.";
    char *used = calloc(st.n ? st.n : 1, 1);
    char missing[1024] = "", wrong[1024] = "";
    int n_missing = 0, n_wrong = 0;
    float *host = NULL;
    size_t host_cap = 0;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (strstr(p->name, ".lora_")) continue;
        int is_head = strncmp(p->name, "classifier", 10) == 0;
        int is_pooler = strncmp(p->name, "pooler.", 7) == 0;
        /* heads live at the top level, outside the base model's prefix */
        const StTensor *t = find_param(&st, is_head ? "" : prefix, p->name);
        if (t && !shape_matches(t, p)) {
            if (is_head) t = NULL; /* a head for another label count: start fresh */
            else {
                if (n_wrong++ < 4) {
                    size_t len = strlen(wrong);
                    snprintf(wrong + len, sizeof(wrong) - len, "%s%s [%lld x %lld] expected [%lld x %lld]",
                             len ? "; " : "", t->name, (long long)t->shape[0],
                             (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)p->shape[0],
                             (long long)p->shape[1]);
                }
                continue;
            }
        }
        if (!t) {
            if (is_head || is_pooler) {
                /* HF initialisation: normal(0, initializer_range) weights, zero bias */
                if (p->ndim == 2) init_normal(m->be, p->data, p->numel, 0.02, rng);
                else m->be->zero(p->data, sizeof(float) * p->numel);
                continue;
            }
            if (n_missing++ < 6) {
                size_t len = strlen(missing);
                snprintf(missing + len, sizeof(missing) - len, "%s%s%s", len ? ", " : "", prefix,
                         p->name);
            }
            continue;
        }
        used[t - st.tensors] = 1;
        if (p->numel > host_cap) {
            free(host);
            host_cap = p->numel;
            host = malloc(sizeof(float) * host_cap);
        }
        st_read_f32(&st, t, host);
        m->be->upload(p->data, host, sizeof(float) * p->numel);
    }
    free(host);
    char unexpected[1024] = "";
    int n_unexpected = 0;
    for (int i = 0; i < st.n; i++) {
        if (used[i] || ignorable(st.tensors[i].name)) continue;
        if (strncmp(st.tensors[i].name, "classifier", 10) == 0 && m->num_labels > 0) continue;
        if (strncmp(st.tensors[i].name, "classifier", 10) == 0 && m->num_labels == 0) continue;
        if (n_unexpected++ < 6) {
            size_t len = strlen(unexpected);
            snprintf(unexpected + len, sizeof(unexpected) - len, "%s%s", len ? ", " : "",
                     st.tensors[i].name);
        }
    }
    free(used);
    int rc = 0;
    if (n_wrong) {
        snprintf(err, errlen, "%s: %d tensor(s) with the wrong shape for config.json: %s", path,
                 n_wrong, wrong);
        rc = -1;
    } else if (n_missing) {
        snprintf(err, errlen, "%s: %d tensor(s) missing, e.g. %s", path, n_missing, missing);
        rc = -1;
    } else if (n_unexpected) {
        snprintf(err, errlen,
                 "%s: %d unexpected tensor(s) for a %s model with %d layers: %s", path,
                 n_unexpected, m->cfg.model_type, m->cfg.num_hidden_layers, unexpected);
        rc = -1;
    }
    st_close(&st);
    return rc;
}

int model_load(Model **out, const Backend *be, const ModelOptions *opt, char *err, size_t errlen) {
    *out = NULL;
    Model *m = calloc(1, sizeof(*m));
    if (!m) { snprintf(err, errlen, "out of memory"); return -1; }
    const char *src = opt->model_dir ? opt->model_dir : "(in-memory config)";
    if (opt->config) m->cfg = *opt->config;
    else if (model_config_load(&m->cfg, opt->model_dir, err, errlen) != 0) { free(m); return -1; }
    if (strcmp(m->cfg.model_type, "bert") != 0 && strcmp(m->cfg.model_type, "roberta") != 0 &&
        strcmp(m->cfg.model_type, "gpt2") != 0) {
        snprintf(err, errlen, "%s/config.json: model_type '%s' is not one this engine runs "
                 "(supported: bert, roberta, gpt2)", src, m->cfg.model_type);
        free(m);
        return -1;
    }
    if (strcmp(m->cfg.hidden_act, "gelu") == 0) m->gelu_tanh = 0;
    else if (strcmp(m->cfg.hidden_act, "gelu_new") == 0 ||
             strcmp(m->cfg.hidden_act, "gelu_pytorch_tanh") == 0) m->gelu_tanh = 1;
    else {
        snprintf(err, errlen, "%s/config.json: hidden_act '%s' is not supported (expected gelu, "
                 "gelu_new or gelu_pytorch_tanh)", src, m->cfg.hidden_act);
        free(m);
        return -1;
    }
    if (m->cfg.hidden_size % m->cfg.num_attention_heads != 0) {
        snprintf(err, errlen, "%s/config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                 src, m->cfg.hidden_size, m->cfg.num_attention_heads);
        free(m);
        return -1;
    }
    m->be = be;
    m->is_roberta = strcmp(m->cfg.model_type, "roberta") == 0;
    m->is_gpt2 = strcmp(m->cfg.model_type, "gpt2") == 0;
    m->num_labels = opt->num_labels;
    m->lm_head = opt->lm_head;
    m->lm_chunk = opt->lm_chunk > 0 ? opt->lm_chunk : LM_CHUNK;
    if (m->lm_head && (!m->is_gpt2 || m->num_labels != 0)) {
        snprintf(err, errlen, "%s: a language-model head needs a gpt2 model without a classification "
                 "head (model_type is %s)", src, m->cfg.model_type);
        free(m);
        return -1;
    }
    m->max_batch = opt->max_batch > 0 ? opt->max_batch : 1;
    m->max_seq = opt->max_seq > 0 ? opt->max_seq : 128;
    int pos_limit = m->cfg.max_position_embeddings - (m->is_roberta ? m->cfg.pad_token_id + 1 : 0);
    if (m->max_seq > pos_limit) {
        snprintf(err, errlen, "max sequence length %d exceeds the model's %d positions (%s/config.json)",
                 m->max_seq, pos_limit, src);
        free(m);
        return -1;
    }
    m->train_base = opt->train_base;
    m->adapter = opt->adapter;
    if (m->adapter.rank > 0 && m->adapter.targets == 0) m->adapter.targets = TARGET_QUERY | TARGET_VALUE;
    if (m->adapter.rank > 0 && m->adapter.form == ADAPTER_DORA && m->train_base) {
        snprintf(err, errlen, "DoRA adapters wrap frozen weights: train_base is not supported with them");
        free(m->layers);
        free(m);
        return -1;
    }
    m->layers = calloc(m->cfg.num_hidden_layers, sizeof(Layer));
    m->a = calloc(1, sizeof(struct ModelActs));
    if (m->a) m->a->L = calloc(m->cfg.num_hidden_layers, sizeof(LayerActs));
    if (!m->layers || !m->a || !m->a->L) {
        snprintf(err, errlen, "out of memory");
        model_free(m);
        return -1;
    }

    Layout L = {.m = m};
    layout(&L);
    m->base_numel = L.base.used;
    m->train_numel = L.train.used;
    m->acts_numel = L.acts.used;
    m->base = be->alloc(sizeof(float) * m->base_numel);
    m->base_grad = m->train_base ? be->alloc(sizeof(float) * m->base_numel) : NULL;
    m->train = be->alloc(sizeof(float) * (m->train_numel ? m->train_numel : 1));
    m->train_grad = be->alloc(sizeof(float) * (m->train_numel ? m->train_numel : 1));
    m->acts = be->alloc(sizeof(float) * m->acts_numel);
    if (!m->base || (m->train_base && !m->base_grad) || !m->train || !m->train_grad || !m->acts) {
        snprintf(err, errlen,
                 "out of memory allocating the model on %s: %.1f MB parameters, %.1f MB "
                 "activations for batch %d x sequence %d",
                 be->name, m->base_numel * 4.0 / 1e6, m->acts_numel * 4.0 / 1e6, m->max_batch,
                 m->max_seq);
        model_free(m);
        return -1;
    }
    Layout L2 = {.m = m, .pass = 1};
    L2.base.base = m->base;
    L2.train.base = m->train;
    L2.acts.base = m->acts;
    layout(&L2);
    if (L2.fail) {
        snprintf(err, errlen, "out of memory registering parameters");
        model_free(m);
        return -1;
    }
    uint64_t rng = rng_derive(opt->init_seed, 1);
    if (opt->random_init) {
        random_weights(m, &rng);
    } else if (load_weights(m, opt->model_dir, &rng, err, errlen) != 0) {
        model_free(m);
        return -1;
    }
    if (m->adapter.rank > 0)
        for (int l = 0; l < m->cfg.num_hidden_layers; l++)
            for (int t = 0; t < TARGET_COUNT; t++)
                if (m->adapter.targets & (1 << t)) adapter_init(be, &m->layers[l].adapters[t], &rng);
    *out = m;
    return 0;
}

void model_free(Model *m) {
    if (!m) return;
    if (m->be) {
        if (m->base) m->be->release(m->base);
        if (m->base_grad) m->be->release(m->base_grad);
        if (m->train) m->be->release(m->train);
        if (m->train_grad) m->be->release(m->train_grad);
        if (m->acts) m->be->release(m->acts);
    }
    param_list_free(&m->params);
    if (m->a) free(m->a->L);
    free(m->a);
    free(m->layers);
    free(m);
}

/* ---- forward / backward ---- */

static void linear_fwd(const Backend *be, Linear *l, const float *x, float *y, int N, int train,
                       uint64_t seed) {
    be->matmul(0, 1, N, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
    if (l->adapter && l->adapter->form == ADAPTER_DORA) {
        /* DoRA scales the base and LoRA paths together; the bias stays outside */
        adapter_forward(be, l->adapter, x, y, N, train, seed);
        if (l->b) be->add_bias(y, l->b, N, l->out);
        return;
    }
    if (l->b) be->add_bias(y, l->b, N, l->out);
    if (l->adapter) adapter_forward(be, l->adapter, x, y, N, train, seed);
}

/* dx = dy W (+= when accumulate); weight/bias/adapter gradients accumulate. */
static void linear_bwd(const Backend *be, Linear *l, const float *x, const float *dy, float *dx,
                       int accumulate, int N, uint64_t seed, float *scratch) {
    if (l->db) be->bias_grad(l->db, dy, N, l->out);
    if (l->adapter && l->adapter->form == ADAPTER_DORA) {
        /* the base path's gradient is c ⊙ dy (W0 itself is frozen under DoRA) */
        const float *dyb = adapter_dora_scale_grad(be, l->adapter, dy, N);
        if (dx)
            be->matmul(0, 0, N, l->in, l->out, 1.0f, dyb, l->out, l->w, l->in,
                       accumulate ? 1.0f : 0.0f, dx, l->in);
        adapter_backward(be, l->adapter, x, dy, dx, N, seed, scratch);
        return;
    }
    if (dx)
        be->matmul(0, 0, N, l->in, l->out, 1.0f, dy, l->out, l->w, l->in, accumulate ? 1.0f : 0.0f,
                   dx, l->in);
    if (l->dw) be->matmul(1, 0, l->out, l->in, N, 1.0f, dy, l->out, x, l->in, 1.0f, l->dw, l->in);
    if (l->adapter) adapter_backward(be, l->adapter, x, dy, dx, N, seed, scratch);
}

/* Distinct dropout seeds for every site of a step. */
static uint64_t site_seed(uint64_t step_seed, int layer, int site) {
    return rng_derive(step_seed, 1000 + (uint64_t)layer * 16 + (uint64_t)site);
}
enum { SITE_EMB, SITE_ATTN, SITE_ATTN_OUT, SITE_FFN_OUT, SITE_HEAD1, SITE_HEAD2, SITE_ADAPTER };

static void gelu_fwd(const Model *m, float *y, const float *x, size_t n) {
    if (m->gelu_tanh) m->be->gelu_tanh_fwd(y, x, n);
    else m->be->gelu_fwd(y, x, n);
}
static void gelu_bwd(const Model *m, float *dx, const float *x, const float *dy, size_t n) {
    if (m->gelu_tanh) m->be->gelu_tanh_bwd(dx, x, dy, n);
    else m->be->gelu_bwd(dx, x, dy, n);
}

/* The attention sub-block: res_out = resid + drop(Attn(in) Woᵀ + bo). */
static void attention_block(Model *m, int l, const float *in, const float *resid, float *res_out,
                            int causal, int B, int T, int train, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    Layer *ly = &m->layers[l];
    LayerActs *la = &a->L[l];
    const int N = B * T, C = c->hidden_size, H = c->num_attention_heads, D = C / H;
    const float hp = train ? c->hidden_dropout_prob : 0.0f;
    const float ap = train ? c->attention_probs_dropout_prob : 0.0f;
    uint64_t s_ad = site_seed(step_seed, l, SITE_ADAPTER);
    linear_fwd(be, &ly->q, in, la->q, N, train, s_ad + 0);
    linear_fwd(be, &ly->k, in, la->k, N, train, s_ad + 1);
    linear_fwd(be, &ly->v, in, la->v, N, train, s_ad + 2);
    be->attention_fwd(la->ctx, la->probs, la->q, la->k, la->v, C, a->mask, B, T, H, D, causal, ap,
                      site_seed(step_seed, l, SITE_ATTN));
    linear_fwd(be, &ly->o, la->ctx, a->tmp, N, train, s_ad + 3);
    be->dropout_fwd(res_out, a->tmp, (size_t)N * C, hp, site_seed(step_seed, l, SITE_ATTN_OUT));
    be->axpy(res_out, 1.0f, resid, (size_t)N * C);
}

/* The feed-forward sub-block: res_out = resid + drop(gelu(in Wiᵀ + bi) Wfᵀ + bf). */
static void ffn_block(Model *m, int l, const float *in, const float *resid, float *res_out, int N,
                      int train, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    Layer *ly = &m->layers[l];
    LayerActs *la = &a->L[l];
    const float hp = train ? c->hidden_dropout_prob : 0.0f;
    uint64_t s_ad = site_seed(step_seed, l, SITE_ADAPTER);
    linear_fwd(be, &ly->inter, in, la->inter_pre, N, train, s_ad + 4);
    gelu_fwd(m, la->inter_act, la->inter_pre, (size_t)N * c->intermediate_size);
    linear_fwd(be, &ly->out, la->inter_act, a->tmp, N, train, s_ad + 5);
    be->dropout_fwd(res_out, a->tmp, (size_t)N * c->hidden_size, hp,
                    site_seed(step_seed, l, SITE_FFN_OUT));
    be->axpy(res_out, 1.0f, resid, (size_t)N * c->hidden_size);
}

/* GPT-2: token + position embeddings, pre-LN layers with causal attention,
 * ln_f. Inputs (ids, pos_ids, mask) are already on the device. */
static void decoder_forward(Model *m, int B, int T, int train, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    const int N = B * T, C = c->hidden_size;
    const float hp = train ? c->hidden_dropout_prob : 0.0f;
    be->embedding_fwd(a->emb_sum, a->ids, m->wte, N, C, 0);
    be->embedding_fwd(a->emb_sum, a->pos_ids, m->wpe, N, C, 1);
    be->dropout_fwd(a->x0, a->emb_sum, (size_t)N * C, hp, site_seed(step_seed, 0, SITE_EMB));
    const float *x = a->x0;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        Layer *ly = &m->layers[l];
        LayerActs *la = &a->L[l];
        be->layernorm_fwd(la->h1, la->mean1, la->rstd1, x, ly->ln1_g, ly->ln1_b, N, C,
                          c->layer_norm_eps);
        attention_block(m, l, la->h1, x, la->res1, 1, B, T, train, step_seed);
        be->layernorm_fwd(la->h2, la->mean2, la->rstd2, la->res1, ly->ln2_g, ly->ln2_b, N, C,
                          c->layer_norm_eps);
        ffn_block(m, l, la->h2, la->res1, la->out, N, train, step_seed);
        x = la->out;
    }
    be->layernorm_fwd(a->hidden, a->lnf_mean, a->lnf_rstd, x, m->lnf_g, m->lnf_b, N, C,
                      c->layer_norm_eps);
}

/* dout (= a->dx) holds dLoss/d(hidden) = d ln_f output; walks down. */
static void decoder_backward(Model *m, float *dout, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    const int B = m->cur_B, T = m->cur_T, N = B * T, C = c->hidden_size, I = c->intermediate_size;
    const int H = c->num_attention_heads, D = C / H, L = c->num_hidden_layers;
    const float hp = c->hidden_dropout_prob, ap = c->attention_probs_dropout_prob;
    const size_t NC = (size_t)N * C;
    float *dx = dout;
    /* ln_f: dx becomes d(last layer's out) */
    be->layernorm_bwd(a->dres, m->dlnf_g, m->dlnf_b, dx, L > 0 ? a->L[L - 1].out : a->x0,
                      a->lnf_mean, a->lnf_rstd, m->lnf_g, N, C);
    be->copy(dx, a->dres, sizeof(float) * NC);
    for (int l = L - 1; l >= 0; l--) {
        Layer *ly = &m->layers[l];
        LayerActs *la = &a->L[l];
        const float *x = l > 0 ? a->L[l - 1].out : a->x0;
        uint64_t s_ad = site_seed(step_seed, l, SITE_ADAPTER);
        /* out = res1 + drop(mlp(LN2(res1))): dx is d out, and d res1 starts as it */
        be->dropout_bwd(a->dres, dx, NC, hp, site_seed(step_seed, l, SITE_FFN_OUT));
        linear_bwd(be, &ly->out, la->inter_act, a->dres, a->dbig, 0, N, s_ad + 5, a->dscratch);
        gelu_bwd(m, a->dbig, la->inter_pre, a->dbig, (size_t)N * I);
        linear_bwd(be, &ly->inter, la->h2, a->dbig, a->dh, 0, N, s_ad + 4, a->dscratch);
        be->layernorm_bwd(a->dres, ly->dln2_g, ly->dln2_b, a->dh, la->res1, la->mean2, la->rstd2,
                          ly->ln2_g, N, C);
        be->axpy(dx, 1.0f, a->dres, NC); /* dx = d res1 */
        /* res1 = x + drop(attn(LN1(x))) */
        be->dropout_bwd(a->dres, dx, NC, hp, site_seed(step_seed, l, SITE_ATTN_OUT));
        linear_bwd(be, &ly->o, la->ctx, a->dres, a->dh, 0, N, s_ad + 3, a->dscratch);
        be->attention_bwd(a->dq, a->dk, a->dv, a->dh, la->probs, la->q, la->k, la->v, C, B, T, H, D,
                          ap, site_seed(step_seed, l, SITE_ATTN), a->dprobs);
        /* layer 0 without train_base: nothing below wants d h1 (as in the encoder) */
        float *dh1 = l > 0 || m->train_base ? a->dh : NULL;
        linear_bwd(be, &ly->q, la->h1, a->dq, dh1, 0, N, s_ad + 0, a->dscratch);
        linear_bwd(be, &ly->k, la->h1, a->dk, dh1, 1, N, s_ad + 1, a->dscratch);
        linear_bwd(be, &ly->v, la->h1, a->dv, dh1, 1, N, s_ad + 2, a->dscratch);
        if (!dh1) break;
        be->layernorm_bwd(a->dres, ly->dln1_g, ly->dln1_b, a->dh, x, la->mean1, la->rstd1,
                          ly->ln1_g, N, C);
        be->axpy(dx, 1.0f, a->dres, NC); /* dx = d x */
    }
    if (!m->train_base) return;
    be->dropout_bwd(dx, dx, NC, hp, site_seed(step_seed, 0, SITE_EMB));
    be->embedding_bwd(m->dwte, dx, a->ids, N, C);
    be->embedding_bwd(m->dwpe, dx, a->pos_ids, N, C);
}

static int lm_head_forward(Model *m, const Batch *bt, char *err, size_t errlen);

int model_forward(Model *m, const Batch *bt, int train, uint64_t step_seed, char *err,
                  size_t errlen) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    const int B = bt->B, T = bt->T, N = B * T, C = c->hidden_size;
    if (B > m->max_batch || T > m->max_seq || B <= 0 || T <= 0) {
        snprintf(err, errlen, "batch %d x %d exceeds the model's allocation %d x %d", B, T,
                 m->max_batch, m->max_seq);
        return -1;
    }
    int32_t *pos = malloc(sizeof(int32_t) * N);
    if (!pos) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int b = 0; b < B; b++) {
        int run = 0;
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            int id = bt->ids[i];
            if (id < 0 || id >= c->vocab_size) {
                free(pos);
                snprintf(err, errlen, "token id %d at batch row %d position %d is outside the "
                         "vocabulary (size %d)", id, b, t, c->vocab_size);
                return -1;
            }
            if (bt->type_ids && !m->is_gpt2 &&
                (bt->type_ids[i] < 0 || bt->type_ids[i] >= c->type_vocab_size)) {
                free(pos);
                snprintf(err, errlen, "token type id %d at batch row %d is outside 0..%d",
                         bt->type_ids[i], b, c->type_vocab_size - 1);
                return -1;
            }
            if (m->is_roberta) {
                /* RoBERTa: positions count non-padding tokens from pad+1 */
                int keep = bt->mask ? bt->mask[i] != 0.0f : 1;
                run += keep;
                pos[i] = keep ? c->pad_token_id + run : c->pad_token_id;
            } else {
                pos[i] = t;
            }
        }
    }
    m->cur_B = B;
    m->cur_T = T;
    be->upload(a->ids, bt->ids, sizeof(int32_t) * N);
    be->upload(a->pos_ids, pos, sizeof(int32_t) * N);
    free(pos);
    if (bt->type_ids) be->upload(a->type_ids, bt->type_ids, sizeof(int32_t) * N);
    else be->zero(a->type_ids, sizeof(int32_t) * N);
    if (bt->mask) be->upload(a->mask, bt->mask, sizeof(float) * N);
    else {
        float *ones = malloc(sizeof(float) * N);
        if (!ones) { snprintf(err, errlen, "out of memory"); return -1; }
        for (int i = 0; i < N; i++) ones[i] = 1.0f;
        be->upload(a->mask, ones, sizeof(float) * N);
        free(ones);
    }

    const float hp = train ? c->hidden_dropout_prob : 0.0f;

    if (m->is_gpt2) {
        decoder_forward(m, B, T, train, step_seed);
        if (m->num_labels > 0) {
            /* GPT2ForSequenceClassification scores the last token: here the
             * last one the attention mask keeps (right padding) */
            int32_t idx[B];
            for (int b = 0; b < B; b++) {
                int last = T - 1;
                if (bt->mask)
                    while (last > 0 && bt->mask[b * T + last] == 0.0f) last--;
                idx[b] = b * T + last;
            }
            be->upload(a->last_idx, idx, sizeof(int32_t) * B);
            be->embedding_fwd(a->first, a->last_idx, a->hidden, B, C, 0);
            linear_fwd(be, &m->head_out, a->first, a->logits, B, train, 0);
        }
        if (m->lm_head) return lm_head_forward(m, bt, err, errlen);
        return 0;
    }

    /* embeddings */
    be->embedding_fwd(a->emb_sum, a->ids, m->wte, N, C, 0);
    be->embedding_fwd(a->emb_sum, a->pos_ids, m->wpe, N, C, 1);
    be->embedding_fwd(a->emb_sum, a->type_ids, m->wtt, N, C, 1);
    be->layernorm_fwd(a->emb_ln, a->emb_mean, a->emb_rstd, a->emb_sum, m->emb_ln_g, m->emb_ln_b, N,
                      C, c->layer_norm_eps);
    be->dropout_fwd(a->x0, a->emb_ln, (size_t)N * C, hp, site_seed(step_seed, 0, SITE_EMB));

    const float *x = a->x0;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        Layer *ly = &m->layers[l];
        LayerActs *la = &a->L[l];
        attention_block(m, l, x, x, la->res1, 0, B, T, train, step_seed);
        be->layernorm_fwd(la->h1, la->mean1, la->rstd1, la->res1, ly->ln1_g, ly->ln1_b, N, C,
                          c->layer_norm_eps);
        ffn_block(m, l, la->h1, la->h1, la->res2, N, train, step_seed);
        be->layernorm_fwd(la->out, la->mean2, la->rstd2, la->res2, ly->ln2_g, ly->ln2_b, N, C,
                          c->layer_norm_eps);
        x = la->out;
    }

    if (m->num_labels > 0) {
        const int L = c->num_hidden_layers;
        uint64_t s1 = site_seed(step_seed, L, SITE_HEAD1), s2 = site_seed(step_seed, L, SITE_HEAD2);
        be->gather_first(a->first, x, B, T, C);
        if (m->is_roberta) {
            be->dropout_fwd(a->first_d, a->first, (size_t)B * C, hp, s1);
            linear_fwd(be, &m->head_dense, a->first_d, a->pooled_d, B, train, 0);
        } else {
            linear_fwd(be, &m->pooler, a->first, a->pooled_d, B, train, 0);
        }
        be->tanh_fwd(a->pooled, a->pooled_d, (size_t)B * C);
        be->dropout_fwd(a->pooled_d, a->pooled, (size_t)B * C, hp, s2);
        linear_fwd(be, &m->head_out, a->pooled_d, a->logits, B, train, 0);
    }
    return 0;
}

/* GPT2LMHeadModel's head on the scored positions only: logits = x Eᵀ (tied
 * to wte, no bias) for the rows whose target is >= 0. */
static int lm_head_forward(Model *m, const Batch *bt, char *err, size_t errlen) {
    const Backend *be = m->be;
    struct ModelActs *a = m->a;
    const int N = bt->B * bt->T, C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    m->lm_rows = 0;
    if (!bt->targets) return 0; /* nothing scored (generation reads the hidden states) */
    int32_t *rows = malloc(sizeof(int32_t) * N), *tg = malloc(sizeof(int32_t) * N);
    if (!rows || !tg) {
        free(rows); free(tg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int R = 0;
    for (int i = 0; i < N; i++) {
        if (bt->targets[i] < 0) continue;
        if (bt->targets[i] >= V) {
            snprintf(err, errlen, "target token %d at batch row %d position %d is outside the "
                     "vocabulary (size %d)", bt->targets[i], i / bt->T, i % bt->T, V);
            free(rows); free(tg);
            return -1;
        }
        rows[R] = i;
        tg[R++] = bt->targets[i];
    }
    m->lm_rows = R;
    if (R > 0) {
        be->upload(a->lm_rows, rows, sizeof(int32_t) * R);
        be->upload(a->lm_targets, tg, sizeof(int32_t) * R);
        be->embedding_fwd(a->lm_x, a->lm_rows, a->hidden, R, C, 0);
    }
    free(rows);
    free(tg);
    return 0;
}

const float *model_hidden(const Model *m) {
    if (m->is_gpt2) return m->a->hidden;
    int L = m->cfg.num_hidden_layers;
    return L > 0 ? m->a->L[L - 1].out : m->a->x0;
}
const float *model_logits(const Model *m) { return m->a->logits; }

/* The mean cross-entropy over the scored tokens of the batch (as
 * GPT2LMHeadModel with labels); per_example: each row's mean over its own
 * scored tokens (0 when it has none). */
static double lm_loss(Model *m, const Batch *bt, float grad_scale, float *per_example) {
    const Backend *be = m->be;
    struct ModelActs *a = m->a;
    const int R = m->lm_rows, V = m->cfg.vocab_size, B = bt->B, T = bt->T;
    if (per_example) memset(per_example, 0, sizeof(float) * B);
    if (R == 0) return 0.0;
    float *rows = malloc(sizeof(float) * R);
    if (!rows) return NAN;
    const int C = m->cfg.hidden_size, grad = grad_scale != 0.0f;
    /* chunks of lm_chunk rows: logits = x Eᵀ, the cross-entropy and, for a
     * training loss, dL/dx = dlogits E into the lm_dx scratch (the backward
     * scatters it), so the [rows, V] buffers stay one chunk whatever the
     * batch. No gradient buffer is touched here. */
    a->lm_scale = grad_scale / (float)R;
    for (int r0 = 0; r0 < R; r0 += m->lm_chunk) {
        int n = R - r0 < m->lm_chunk ? R - r0 : m->lm_chunk;
        const float *x = a->lm_x + (size_t)r0 * C;
        be->matmul(0, 1, n, V, C, 1.0f, x, C, m->wte, C, 0.0f, a->lm_logits, V);
        be->cross_entropy(a->lm_loss + r0, grad ? a->lm_dlogits : NULL, a->lm_logits, a->lm_targets + r0, n, V,
                          a->lm_scale);
        if (grad)
            be->matmul(0, 0, n, C, V, 1.0f, a->lm_dlogits, V, m->wte, C, 0.0f, a->lm_dx + (size_t)r0 * C, C);
    }
    be->download(rows, a->lm_loss, sizeof(float) * R);
    double sum = 0.0;
    for (int r = 0; r < R; r++) sum += rows[r];
    if (per_example) { /* rows are in position order: row r of the batch's b-th sequence */
        int *cnt = calloc(B, sizeof(int));
        int k = 0;
        for (int i = 0; i < B * T && cnt; i++) {
            if (!bt->targets || bt->targets[i] < 0) continue;
            per_example[i / T] += rows[k++];
            cnt[i / T]++;
        }
        for (int b = 0; b < B && cnt; b++) if (cnt[b]) per_example[b] /= cnt[b];
        free(cnt);
    }
    free(rows);
    return sum / R;
}

int model_scored_tokens(const Model *m) { return m->lm_head ? m->lm_rows : 0; }

double model_loss(Model *m, const Batch *bt, float grad_scale, float *per_example) {
    const Backend *be = m->be;
    struct ModelActs *a = m->a;
    int B = bt->B;
    if (m->lm_head) return lm_loss(m, bt, grad_scale, per_example);
    float *rows = malloc(sizeof(float) * B);
    if (!rows) return NAN;
    float gs = grad_scale / (float)B;
    if (m->num_labels == 1) {
        be->upload(a->labels_f, bt->labels, sizeof(float) * B);
        be->mse(a->loss_rows, a->dlogits, a->logits, a->labels_f, B, gs);
    } else {
        int32_t *li = malloc(sizeof(int32_t) * B);
        if (!li) { free(rows); return NAN; }
        for (int b = 0; b < B; b++) li[b] = (int32_t)lrintf(bt->labels[b]);
        be->upload(a->labels_i, li, sizeof(int32_t) * B);
        free(li);
        be->cross_entropy(a->loss_rows, a->dlogits, a->logits, a->labels_i, B, m->num_labels, gs);
    }
    be->download(rows, a->loss_rows, sizeof(float) * B);
    double sum = 0.0;
    for (int b = 0; b < B; b++) sum += rows[b];
    if (per_example) memcpy(per_example, rows, sizeof(float) * B);
    free(rows);
    return sum / B;
}

void model_zero_grad(Model *m) {
    m->be->zero(m->train_grad, sizeof(float) * (m->train_numel ? m->train_numel : 1));
    if (m->base_grad) m->be->zero(m->base_grad, sizeof(float) * m->base_numel);
}

static void encoder_backward(Model *m, float *dout, uint64_t step_seed);

void model_backward(Model *m, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    const int B = m->cur_B, T = m->cur_T, C = c->hidden_size, L = c->num_hidden_layers;
    const float hp = c->hidden_dropout_prob;
    uint64_t s1 = site_seed(step_seed, L, SITE_HEAD1), s2 = site_seed(step_seed, L, SITE_HEAD2);
    if (m->lm_head) { /* logits = rows(hidden) Eᵀ: back to the scored rows, then scatter */
        /* model_loss left dL/drows in lm_dx; the head's dE (train_base only:
         * checks) takes the chunks' dlogits again */
        const int R = m->lm_rows, V = c->vocab_size;
        be->zero(a->dx, sizeof(float) * (size_t)B * T * C);
        if (R > 0) be->embedding_bwd(a->dx, a->lm_dx, a->lm_rows, R, C);
        for (int r0 = 0; m->dwte && r0 < R; r0 += m->lm_chunk) {
            int n = R - r0 < m->lm_chunk ? R - r0 : m->lm_chunk;
            const float *x = a->lm_x + (size_t)r0 * C;
            be->matmul(0, 1, n, V, C, 1.0f, x, C, m->wte, C, 0.0f, a->lm_logits, V);
            be->cross_entropy(a->lm_loss + r0, a->lm_dlogits, a->lm_logits, a->lm_targets + r0, n, V, a->lm_scale);
            be->matmul(1, 0, V, C, n, 1.0f, a->lm_dlogits, V, x, C, 1.0f, m->dwte, C);
        }
        decoder_backward(m, a->dx, step_seed);
        return;
    }
    if (m->is_gpt2) { /* logits = score(hidden[last]) */
        linear_bwd(be, &m->head_out, a->first, a->dlogits, a->dfirst, 0, B, 0, NULL);
        be->zero(a->dx, sizeof(float) * (size_t)B * T * C);
        be->embedding_bwd(a->dx, a->dfirst, a->last_idx, B, C);
        decoder_backward(m, a->dx, step_seed);
        return;
    }
    /* head: logits = out(drop(tanh(dense(...)))) */
    linear_bwd(be, &m->head_out, a->pooled_d, a->dlogits, a->dpooled, 0, B, 0, NULL);
    be->dropout_bwd(a->dpooled, a->dpooled, (size_t)B * C, hp, s2);
    be->tanh_bwd(a->dpooled_pre, a->pooled, a->dpooled, (size_t)B * C);
    if (m->is_roberta) {
        linear_bwd(be, &m->head_dense, a->first_d, a->dpooled_pre, a->dfirst, 0, B, 0, NULL);
        be->dropout_bwd(a->dfirst, a->dfirst, (size_t)B * C, hp, s1);
    } else {
        linear_bwd(be, &m->pooler, a->first, a->dpooled_pre, a->dfirst, 0, B, 0, NULL);
    }
    be->zero(a->dx, sizeof(float) * (size_t)B * T * C);
    be->gather_first_bwd(a->dx, a->dfirst, B, T, C);
    encoder_backward(m, a->dx, step_seed);
}

void model_backward_from_hidden(Model *m, const float *dhidden, uint64_t step_seed) {
    size_t n = (size_t)m->cur_B * m->cur_T * m->cfg.hidden_size;
    m->be->copy(m->a->dx, dhidden, sizeof(float) * n);
    if (m->is_gpt2) decoder_backward(m, m->a->dx, step_seed);
    else encoder_backward(m, m->a->dx, step_seed);
}

/* dout (= a->dx) holds dLoss/d(last hidden); walks the layers down. */
static void encoder_backward(Model *m, float *dout, uint64_t step_seed) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    struct ModelActs *a = m->a;
    const int B = m->cur_B, T = m->cur_T, N = B * T, C = c->hidden_size, I = c->intermediate_size;
    const int H = c->num_attention_heads, D = C / H;
    const float hp = c->hidden_dropout_prob, ap = c->attention_probs_dropout_prob;
    float *dx = dout;
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        Layer *ly = &m->layers[l];
        LayerActs *la = &a->L[l];
        const float *x = l > 0 ? a->L[l - 1].out : a->x0;
        uint64_t s_ad = site_seed(step_seed, l, SITE_ADAPTER);
        /* LN2: dres = LN2'(dx); the residual sends dres to h1 too */
        be->layernorm_bwd(a->dres, ly->dln2_g, ly->dln2_b, dx, la->res2, la->mean2, la->rstd2,
                          ly->ln2_g, N, C);
        be->copy(a->dh, a->dres, sizeof(float) * N * C);
        be->dropout_bwd(a->dres, a->dres, (size_t)N * C, hp, site_seed(step_seed, l, SITE_FFN_OUT));
        linear_bwd(be, &ly->out, la->inter_act, a->dres, a->dbig, 0, N, s_ad + 5, a->dscratch);
        gelu_bwd(m, a->dbig, la->inter_pre, a->dbig, (size_t)N * I);
        linear_bwd(be, &ly->inter, la->h1, a->dbig, a->dh, 1, N, s_ad + 4, a->dscratch);
        /* LN1 */
        be->layernorm_bwd(a->dres, ly->dln1_g, ly->dln1_b, a->dh, la->res1, la->mean1, la->rstd1,
                          ly->ln1_g, N, C);
        be->copy(dx, a->dres, sizeof(float) * N * C); /* residual path to x */
        be->dropout_bwd(a->dres, a->dres, (size_t)N * C, hp, site_seed(step_seed, l, SITE_ATTN_OUT));
        linear_bwd(be, &ly->o, la->ctx, a->dres, a->dh, 0, N, s_ad + 3, a->dscratch);
        be->attention_bwd(a->dq, a->dk, a->dv, a->dh, la->probs, la->q, la->k, la->v, C, B, T, H, D,
                          ap, site_seed(step_seed, l, SITE_ATTN), a->dprobs);
        /* below layer 0 only the embeddings are left: without train_base
         * nothing there wants dx, so its three matmuls are skipped */
        float *dxin = l > 0 || m->train_base ? dx : NULL;
        linear_bwd(be, &ly->q, x, a->dq, dxin, 1, N, s_ad + 0, a->dscratch);
        linear_bwd(be, &ly->k, x, a->dk, dxin, 1, N, s_ad + 1, a->dscratch);
        linear_bwd(be, &ly->v, x, a->dv, dxin, 1, N, s_ad + 2, a->dscratch);
    }
    if (!m->train_base) return;
    /* embeddings */
    be->dropout_bwd(dx, dx, (size_t)N * C, hp, site_seed(step_seed, 0, SITE_EMB));
    be->layernorm_bwd(a->dres, m->demb_ln_g, m->demb_ln_b, dx, a->emb_sum, a->emb_mean, a->emb_rstd,
                      m->emb_ln_g, N, C);
    be->embedding_bwd(m->dwte, a->dres, a->ids, N, C);
    be->embedding_bwd(m->dwpe, a->dres, a->pos_ids, N, C);
    be->embedding_bwd(m->dwtt, a->dres, a->type_ids, N, C);
}

/* ---- adapter files ---- */

/* Canonical name of a tensor in a LoRA/PEFT adapter file:
 *   base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight
 *   roberta.encoder.layer.0.attention.self.query.lora_A          (LoRA paper)
 *   ...query.lora_A.default.weight                                (PEFT in memory)
 *   classifier.modules_to_save.default.dense.weight               (PEFT head copy)
 * all map to "encoder.layer.0.attention.self.query.lora_A" / "classifier.dense.weight".
 * Returns 0 for names to skip (PEFT's original_module copies). */
static int canonical_adapter_name(const char *in, char *out, size_t cap) {
    const char *s = in;
    const char *prefixes[] = {"base_model.model.", "bert.", "roberta."};
    for (int i = 0; i < 3; i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0) s += strlen(prefixes[i]);
    if (strstr(s, ".original_module.")) return 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", s);
    char *p;
    if ((p = strstr(buf, ".modules_to_save.default"))) memmove(p, p + 24, strlen(p + 24) + 1);
    if ((p = strstr(buf, ".default"))) memmove(p, p + 8, strlen(p + 8) + 1);
    size_t n = strlen(buf);
    if (strstr(buf, ".lora_") && n > 7 && strcmp(buf + n - 7, ".weight") == 0) buf[n - 7] = 0;
    snprintf(out, cap, "%s", buf);
    return 1;
}

int model_load_adapter(Model *m, const char *path, char *err, size_t errlen) {
    SafeTensors st;
    if (st_open(&st, path, err, errlen) != 0) return -1;
    int rc = 0, loaded = 0;
    float *host = NULL;
    for (int i = 0; i < st.n && rc == 0; i++) {
        const StTensor *t = &st.tensors[i];
        char name[512];
        if (!canonical_adapter_name(t->name, name, sizeof(name))) continue;
        const ParamTensor *p = param_list_find(&m->params, name);
        if (!p || p->group == GROUP_FROZEN) {
            if (strstr(name, ".lora_"))
                snprintf(err, errlen,
                         "%s: tensor '%s' has no adapter to load into (this model has %s adapters "
                         "of rank %d; the file's targets must be among the model's --targets)",
                         path, t->name, m->adapter.rank ? "LoRA" : "no", m->adapter.rank);
            else
                snprintf(err, errlen, "%s: unexpected tensor '%s' (no trainable tensor '%s')",
                         path, t->name, name);
            rc = -1;
            break;
        }
        if (!shape_matches(t, p)) {
            snprintf(err, errlen, "%s: tensor '%s' has shape [%lld x %lld], expected [%lld x %lld]",
                     path, t->name, (long long)t->shape[0],
                     (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)p->shape[0],
                     (long long)p->shape[1]);
            rc = -1;
            break;
        }
        float *h = realloc(host, sizeof(float) * p->numel);
        if (!h) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
        host = h;
        st_read_f32(&st, t, host);
        m->be->upload(p->data, host, sizeof(float) * p->numel);
        loaded++;
    }
    free(host);
    if (rc == 0 && loaded == 0) {
        snprintf(err, errlen, "%s: no adapter tensors found", path);
        rc = -1;
    }
    st_close(&st);
    return rc;
}
