/* Masked-LM pretraining: masking, the MLM head (forward and backward, on the
 * backend), corpus packing, checkpoints and the Hugging Face output
 * directory. See pretrain.h for the recipe. */
#include "engine/pretrain.h"

#include "datasets/e2e.h"

#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "engine/assets.h"
#include "engine/model_config.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Seeds of the run's independent random streams (rng_derive purposes). */
enum {
    PURPOSE_HOLDOUT = 11,      /* which sequences are held out */
    PURPOSE_EVAL_MASK = 12,    /* the held-out sequences' fixed masks */
    PURPOSE_HEAD_INIT = 13,    /* the MLM head's initial weights */
};
#define PURPOSE_STEP_DROPOUT 1000003ULL /* + step: dropout seed of a step (as train.c) */
#define PURPOSE_STEP_MASK 3000017ULL    /* + step: the masks of a step's batch */
#define PURPOSE_EPOCH_ORDER 5000011ULL  /* + epoch: the order of an epoch's sequences */

void pretrain_config_defaults(PretrainConfig *c) {
    memset(c, 0, sizeof(*c));
    snprintf(c->arch, sizeof(c->arch), "bert");
    snprintf(c->size, sizeof(c->size), "mini");
    c->steps = 0;
    c->batch_size = 32;
    c->seq_len = 128;
    c->lr = 1e-3f;
    c->warmup_ratio = 0.06f;
    c->weight_decay = 0.01f;
    c->max_grad_norm = 1.0f;
    c->mask_prob = 0.15f;
    c->holdout_ratio = 0.01f;
    c->dropout = 0.1f;
    c->seed = 42;
    c->eval_every = 0;
    c->checkpoint_every = 100;
    snprintf(c->device, sizeof(c->device), "cpu");
}

int pretrain_size_config(ModelConfig *out, const char *arch, const char *size, int vocab,
                         char *err, size_t errlen) {
    static const struct { const char *name; int layers, hidden, heads, ffn; } SIZES[] = {
        {"tiny", 2, 128, 2, 512},
        {"mini", 4, 256, 4, 1024},
        {"small", 4, 512, 8, 2048},
    };
    int rob = strcmp(arch, "roberta") == 0, gpt = strcmp(arch, "gpt2") == 0;
    if (!rob && !gpt && strcmp(arch, "bert") != 0) {
        snprintf(err, errlen, "--arch '%s': expected bert, roberta or gpt2", arch);
        return -1;
    }
    for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++) {
        if (strcmp(size, SIZES[i].name) != 0) continue;
        memset(out, 0, sizeof(*out));
        snprintf(out->model_type, sizeof(out->model_type), "%s", arch);
        out->vocab_size = vocab;
        out->num_hidden_layers = SIZES[i].layers;
        out->hidden_size = SIZES[i].hidden;
        out->num_attention_heads = SIZES[i].heads;
        out->intermediate_size = SIZES[i].ffn;
        /* RoBERTa numbers positions from pad_token_id + 1: 512 usable
         * positions need 514 rows, as roberta-base has. */
        out->max_position_embeddings = rob ? 514 : 512;
        out->type_vocab_size = rob ? 1 : 2;
        out->pad_token_id = rob ? 1 : 0;
        out->layer_norm_eps = rob ? 1e-5f : 1e-12f;
        out->hidden_dropout_prob = 0.1f;
        out->attention_probs_dropout_prob = 0.1f;
        snprintf(out->hidden_act, sizeof(out->hidden_act), "gelu");
        if (gpt) { /* GPT2Config's defaults for everything but the size */
            out->max_position_embeddings = 1024;
            out->type_vocab_size = 0;
            out->pad_token_id = -1;
            out->layer_norm_eps = 1e-5f;
            snprintf(out->hidden_act, sizeof(out->hidden_act), "gelu_new");
        }
        return 0;
    }
    snprintf(err, errlen, "--size '%s': expected tiny (2 layers, hidden 128), mini (4, 256) or "
             "small (4, 512)", size);
    return -1;
}

/* ================================================================ masking */

int mlm_mask_sequence(int32_t *ids, int32_t *labels, const uint8_t *maskable, int n, float prob,
                      int mask_id, int vocab_size, uint64_t *rng) {
    int cand_n = 0;
    for (int i = 0; i < n; i++) {
        labels[i] = -1;
        cand_n += maskable[i] != 0;
    }
    if (cand_n == 0) return 0;
    int *cand = malloc(sizeof(int) * cand_n);
    if (!cand) return -1;
    cand_n = 0;
    for (int i = 0; i < n; i++)
        if (maskable[i]) cand[cand_n++] = i;
    /* An exact count per sequence, as BERT's create_pretraining_data: the
     * loss always has its 15%, and the head's row budget is known. */
    int k = (int)lround((double)prob * cand_n);
    if (k < 1) k = 1;
    if (k > cand_n) k = cand_n;
    for (int j = 0; j < k; j++) { /* partial Fisher-Yates: cand[0..k) is a uniform k-subset */
        int r = j + (int)rng_below(rng, (uint64_t)(cand_n - j));
        int t = cand[j]; cand[j] = cand[r]; cand[r] = t;
        int pos = cand[j];
        labels[pos] = ids[pos];
        double u = rng_uniform(rng);
        if (u < 0.8) ids[pos] = mask_id;
        else if (u < 0.9) ids[pos] = (int32_t)rng_below(rng, (uint64_t)vocab_size);
        /* else: unchanged, but still predicted */
    }
    free(cand);
    return k;
}

/* ================================================================ MLM head */

struct MlmHead {
    Model *m;
    const Backend *be;
    int H, V, max_rows, max_tokens;
    int tied_only;  /* gpt2: logits = x Eᵀ, GPT2LMHeadModel's lm_head (no transform, no bias) */
    float eps;
    float *params, *grads;
    size_t numel;
    float *w, *b, *g, *beta, *bias;       /* dense [H,H], [H]; LayerNorm [H], [H]; bias [V] */
    float *dw, *db, *dg, *dbeta, *dbias;
    ParamList list;
    /* activations on the backend, for max_rows gathered positions */
    int32_t *rows, *labels;
    float *x, *t, *u, *z, *mean, *rstd, *logits, *dlogits, *loss, *dz, *dxr, *dhidden;
    float *host_loss;
    int32_t *host_rows, *host_labels;
};

static void head_release(MlmHead *h) {
    const Backend *be = h->be;
    void *bufs[] = {h->params, h->grads, h->rows, h->labels, h->x, h->t, h->u, h->z, h->mean,
                    h->rstd, h->logits, h->dlogits, h->loss, h->dz, h->dxr, h->dhidden};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        if (bufs[i]) be->release(bufs[i]);
}

void mlm_head_free(MlmHead *h) {
    if (!h) return;
    head_release(h);
    param_list_free(&h->list);
    free(h->host_loss);
    free(h->host_rows);
    free(h->host_labels);
    free(h);
}

int mlm_head_create(MlmHead **out, Model *m, int max_rows, uint64_t seed, char *err, size_t errlen) {
    *out = NULL;
    if (!m->is_gpt2 && strcmp(m->cfg.hidden_act, "gelu") != 0) {
        snprintf(err, errlen, "the MLM head supports hidden_act \"gelu\" (erf form) only; the "
                 "config has \"%s\"", m->cfg.hidden_act);
        return -1;
    }
    MlmHead *h = calloc(1, sizeof(*h));
    if (!h) { snprintf(err, errlen, "out of memory"); return -1; }
    const Backend *be = m->be;
    h->m = m;
    h->be = be;
    h->H = m->cfg.hidden_size;
    h->V = m->cfg.vocab_size;
    h->eps = m->cfg.layer_norm_eps;
    h->max_rows = max_rows > 0 ? max_rows : 1;
    h->max_tokens = m->max_batch * m->max_seq;
    h->tied_only = m->is_gpt2;
    const size_t H = (size_t)h->H, V = (size_t)h->V, R = (size_t)h->max_rows;
    h->numel = H * H + 3 * H + V; /* unused (and not listed) when tied_only */
    h->params = be->alloc(sizeof(float) * h->numel);
    h->grads = be->alloc(sizeof(float) * h->numel);
    h->rows = be->alloc(sizeof(int32_t) * R);
    h->labels = be->alloc(sizeof(int32_t) * R);
    h->x = be->alloc(sizeof(float) * R * H);
    h->t = be->alloc(sizeof(float) * R * H);
    h->u = be->alloc(sizeof(float) * R * H);
    h->z = be->alloc(sizeof(float) * R * H);
    h->dz = be->alloc(sizeof(float) * R * H);
    h->dxr = be->alloc(sizeof(float) * R * H);
    h->mean = be->alloc(sizeof(float) * R);
    h->rstd = be->alloc(sizeof(float) * R);
    h->loss = be->alloc(sizeof(float) * R);
    h->logits = be->alloc(sizeof(float) * R * V);
    h->dlogits = be->alloc(sizeof(float) * R * V);
    h->dhidden = be->alloc(sizeof(float) * (size_t)h->max_tokens * H);
    h->host_loss = malloc(sizeof(float) * R);
    h->host_rows = malloc(sizeof(int32_t) * (size_t)h->max_tokens);
    h->host_labels = malloc(sizeof(int32_t) * (size_t)h->max_tokens);
    if (!h->params || !h->grads || !h->rows || !h->labels || !h->x || !h->t || !h->u || !h->z ||
        !h->dz || !h->dxr || !h->mean || !h->rstd || !h->loss || !h->logits || !h->dlogits ||
        !h->dhidden || !h->host_loss || !h->host_rows || !h->host_labels) {
        snprintf(err, errlen, "out of memory for the MLM head (%d rows x %d vocabulary: %.1f MB "
                 "of logits)", h->max_rows, h->V, 2.0 * R * V * 4 / 1e6);
        mlm_head_free(h);
        return -1;
    }
    float *p = h->params, *gp = h->grads;
    h->w = p; h->dw = gp; p += H * H; gp += H * H;
    h->b = p; h->db = gp; p += H; gp += H;
    h->g = p; h->dg = gp; p += H; gp += H;
    h->beta = p; h->dbeta = gp; p += H; gp += H;
    h->bias = p; h->dbias = gp;

    /* Hugging Face's names: BertForMaskedLM keeps its head under
     * cls.predictions, RobertaForMaskedLM under lm_head. The decoder is
     * tied to the word embeddings and is not a tensor of its own. */
    int rob = m->is_roberta;
    struct { const char *name; float *d, *g; int ndim; int64_t d0, d1; int decay; } T[] = {
        {rob ? "lm_head.dense.weight" : "cls.predictions.transform.dense.weight", h->w, h->dw, 2,
         h->H, h->H, 1},
        {rob ? "lm_head.dense.bias" : "cls.predictions.transform.dense.bias", h->b, h->db, 1, h->H,
         1, 0},
        {rob ? "lm_head.layer_norm.weight" : "cls.predictions.transform.LayerNorm.weight", h->g,
         h->dg, 1, h->H, 1, 0},
        {rob ? "lm_head.layer_norm.bias" : "cls.predictions.transform.LayerNorm.bias", h->beta,
         h->dbeta, 1, h->H, 1, 0},
        {rob ? "lm_head.bias" : "cls.predictions.bias", h->bias, h->dbias, 1, h->V, 1, 0},
    };
    for (size_t i = 0; i < (h->tied_only ? 0 : sizeof(T) / sizeof(T[0])); i++)
        if (param_list_add(&h->list, T[i].name, T[i].d, T[i].g, T[i].ndim, T[i].d0, T[i].d1,
                           GROUP_LOWER, T[i].decay) != 0) {
            snprintf(err, errlen, "out of memory");
            mlm_head_free(h);
            return -1;
        }

    /* Hugging Face's _init_weights: normal(0, 0.02) for the dense weight,
     * zeros for biases, LayerNorm gain 1. */
    float *host = malloc(sizeof(float) * h->numel);
    if (!host) { snprintf(err, errlen, "out of memory"); mlm_head_free(h); return -1; }
    uint64_t rng = rng_derive(seed, PURPOSE_HEAD_INIT);
    memset(host, 0, sizeof(float) * h->numel);
    for (size_t i = 0; i < H * H; i++) host[i] = (float)(0.02 * rng_normal(&rng));
    for (size_t i = 0; i < H; i++) host[H * H + H + i] = 1.0f;
    be->upload(h->params, host, sizeof(float) * h->numel);
    free(host);
    be->zero(h->grads, sizeof(float) * h->numel);
    *out = h;
    return 0;
}

const ParamList *mlm_head_params(const MlmHead *h) { return &h->list; }
int mlm_head_max_rows(const MlmHead *h) { return h->max_rows; }
void mlm_head_zero_grad(MlmHead *h) { h->be->zero(h->grads, sizeof(float) * h->numel); }

int mlm_head_load(MlmHead *h, const char *path, char *err, size_t errlen) {
    SafeTensors st;
    if (st_open(&st, path, err, errlen) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < h->list.n && rc == 0; i++) {
        const ParamTensor *p = &h->list.t[i];
        const StTensor *t = st_find(&st, p->name);
        if (!t) {
            snprintf(err, errlen, "%s: no tensor '%s' (the MLM head of a %s model)", path, p->name,
                     h->m->cfg.model_type);
            rc = -1;
        } else if (t->numel != (int64_t)p->numel || t->ndim != p->ndim) {
            snprintf(err, errlen, "%s: tensor '%s' has %lld elements in %d dimension(s), expected "
                     "%zu in %d", path, p->name, (long long)t->numel, t->ndim, p->numel, p->ndim);
            rc = -1;
        } else {
            float *buf = malloc(sizeof(float) * p->numel);
            if (!buf) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
            st_read_f32(&st, t, buf);
            h->be->upload(p->data, buf, sizeof(float) * p->numel);
            free(buf);
        }
    }
    st_close(&st);
    return rc;
}

/* The head over the gathered rows; with grad, also dlogits (of the mean). */
static void head_forward(MlmHead *h, const float *hidden, int R, int grad) {
    const Backend *be = h->be;
    const int H = h->H, V = h->V;
    /* Gathering rows of the hidden states is an embedding lookup with the
     * hidden states as the table and the positions as the ids. */
    be->embedding_fwd(h->x, h->rows, hidden, R, H, 0);
    if (h->tied_only) { /* GPT-2: the hidden states (after ln_f) meet Eᵀ directly */
        be->matmul(0, 1, R, V, H, 1.0f, h->x, H, h->m->wte, H, 0.0f, h->logits, V);
        be->cross_entropy(h->loss, grad ? h->dlogits : NULL, h->logits, h->labels, R, V,
                          1.0f / (float)R);
        return;
    }
    be->matmul(0, 1, R, H, H, 1.0f, h->x, H, h->w, H, 0.0f, h->t, H);
    be->add_bias(h->t, h->b, R, H);
    be->gelu_fwd(h->u, h->t, (size_t)R * H);
    be->layernorm_fwd(h->z, h->mean, h->rstd, h->u, h->g, h->beta, R, H, h->eps);
    /* the tied decoder: logits = z Eᵀ + bias */
    be->matmul(0, 1, R, V, H, 1.0f, h->z, H, h->m->wte, H, 0.0f, h->logits, V);
    be->add_bias(h->logits, h->bias, R, V);
    be->cross_entropy(h->loss, grad ? h->dlogits : NULL, h->logits, h->labels, R, V,
                      1.0f / (float)R);
}

/* Accumulates the head's gradients and dwte; leaves dL/dhidden ([N,H]) in
 * h->dhidden. */
static void head_backward(MlmHead *h, int R, int N) {
    const Backend *be = h->be;
    const int H = h->H, V = h->V;
    Model *m = h->m;
    if (h->tied_only) {
        if (m->dwte) be->matmul(1, 0, V, H, R, 1.0f, h->dlogits, V, h->x, H, 1.0f, m->dwte, H);
        be->matmul(0, 0, R, H, V, 1.0f, h->dlogits, V, m->wte, H, 0.0f, h->dxr, H);
        be->zero(h->dhidden, sizeof(float) * (size_t)N * H);
        be->embedding_bwd(h->dhidden, h->dxr, h->rows, R, H);
        return;
    }
    be->bias_grad(h->dbias, h->dlogits, R, V);
    if (m->dwte) /* dE += dlogitsᵀ z */
        be->matmul(1, 0, V, H, R, 1.0f, h->dlogits, V, h->z, H, 1.0f, m->dwte, H);
    be->matmul(0, 0, R, H, V, 1.0f, h->dlogits, V, m->wte, H, 0.0f, h->dz, H);
    /* du lands in dxr, then dt in dz (dz itself is spent by then) */
    be->layernorm_bwd(h->dxr, h->dg, h->dbeta, h->dz, h->u, h->mean, h->rstd, h->g, R, H);
    be->gelu_bwd(h->dz, h->t, h->dxr, (size_t)R * H);
    be->matmul(1, 0, H, H, R, 1.0f, h->dz, H, h->x, H, 1.0f, h->dw, H);
    be->bias_grad(h->db, h->dz, R, H);
    be->matmul(0, 0, R, H, H, 1.0f, h->dz, H, h->w, H, 0.0f, h->dxr, H);
    /* scatter the rows back: the embedding backward with the same ids */
    be->zero(h->dhidden, sizeof(float) * (size_t)N * H);
    be->embedding_bwd(h->dhidden, h->dxr, h->rows, R, H);
}

int mlm_batch_loss(Model *m, MlmHead *h, const Batch *inputs, const int32_t *labels, int train,
                   uint64_t step_seed, int backward, double *loss_sum, int *predicted, char *err,
                   size_t errlen) {
    *loss_sum = 0.0;
    *predicted = 0;
    if (h->m != m) {
        snprintf(err, errlen, "mlm_batch_loss: the head belongs to another model");
        return -1;
    }
    const int N = inputs->B * inputs->T;
    if (N > h->max_tokens) {
        snprintf(err, errlen, "batch %d x %d exceeds the head's allocation of %d tokens", inputs->B,
                 inputs->T, h->max_tokens);
        return -1;
    }
    int R = 0;
    for (int i = 0; i < N; i++) {
        if (labels[i] < 0) continue;
        if (labels[i] >= h->V) {
            snprintf(err, errlen, "label %d at position %d is outside the vocabulary (%d)",
                     labels[i], i, h->V);
            return -1;
        }
        h->host_rows[R] = i;
        h->host_labels[R] = labels[i];
        R++;
    }
    if (R > h->max_rows) {
        snprintf(err, errlen, "%d predicted positions exceed the MLM head's %d rows", R,
                 h->max_rows);
        return -1;
    }
    if (model_forward(m, inputs, train, step_seed, err, errlen) != 0) return -1;
    if (R == 0) return 0; /* nothing to predict: zero loss, zero gradient */
    h->be->upload(h->rows, h->host_rows, sizeof(int32_t) * R);
    h->be->upload(h->labels, h->host_labels, sizeof(int32_t) * R);
    head_forward(h, model_hidden(m), R, backward);
    h->be->download(h->host_loss, h->loss, sizeof(float) * R);
    double s = 0.0;
    for (int r = 0; r < R; r++) s += h->host_loss[r];
    *loss_sum = s;
    *predicted = R;
    if (backward) {
        head_backward(h, R, N);
        model_backward_from_hidden(m, h->dhidden, step_seed);
    }
    return 0;
}

/* ================================================================ helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void info(const PretrainCallbacks *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void info(const PretrainCallbacks *cb, const char *fmt, ...) {
    if (!cb || !cb->on_info) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cb->on_info(cb->ctx, buf);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* mkdir -p */
static int make_dirs(const char *path, char *err, size_t errlen) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes a directory of plain files (what this module writes: no subfolders). */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[PATH_MAX];
            if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p) unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int write_file_atomic(const char *path, const char *data, size_t len, char *err,
                             size_t errlen) {
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *read_text(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static int copy_file(const char *src, const char *dst, char *err, size_t errlen) {
    FILE *in = fopen(src, "rb");
    if (!in) {
        snprintf(err, errlen, "%s: cannot open: %s", src, strerror(errno));
        return -1;
    }
    FILE *out = fopen(dst, "wb");
    if (!out) {
        snprintf(err, errlen, "%s: cannot create: %s", dst, strerror(errno));
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t r;
    int ok = 1;
    while ((r = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, r, out) != r) { ok = 0; break; }
    if (ferror(in)) ok = 0;
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) ok = 0;
    if (fclose(out) != 0) ok = 0;
    fclose(in);
    if (!ok) {
        snprintf(err, errlen, "copying %s to %s failed: %s", src, dst, strerror(errno));
        return -1;
    }
    return 0;
}

/* ================================================================ corpus */

/* Every sentence of the corpus, tokenized without specials, end to end. */
typedef struct {
    int32_t *tok;
    size_t n, cap;
    size_t *end;            /* end[i]: one past sentence i's last token */
    size_t n_sent, cap_sent;
} TokStream;

static int stream_add(TokStream *s, const Tokenizer *tok, const char *text, const char *where,
                      char *err, size_t errlen) {
    int32_t *ids = NULL;
    int n = 0;
    char e2[512];
    if (tokenizer_encode_plain(tok, text, &ids, &n, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s: %s", where, e2);
        return -1;
    }
    if (n == 0) { free(ids); return 0; }
    if (s->n + (size_t)n > s->cap) {
        size_t nc = s->cap ? s->cap : 1 << 16;
        while (nc < s->n + (size_t)n) nc *= 2;
        int32_t *t = realloc(s->tok, sizeof(int32_t) * nc);
        if (!t) { free(ids); snprintf(err, errlen, "out of memory"); return -1; }
        s->tok = t;
        s->cap = nc;
    }
    if (s->n_sent == s->cap_sent) {
        size_t nc = s->cap_sent ? s->cap_sent * 2 : 4096;
        size_t *e = realloc(s->end, sizeof(size_t) * nc);
        if (!e) { free(ids); snprintf(err, errlen, "out of memory"); return -1; }
        s->end = e;
        s->cap_sent = nc;
    }
    memcpy(s->tok + s->n, ids, sizeof(int32_t) * n);
    s->n += (size_t)n;
    s->end[s->n_sent++] = s->n;
    free(ids);
    return 0;
}

static int add_text_file(TokStream *s, const Tokenizer *tok, const char *path, char *err,
                         size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "--corpus %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errlen, "--corpus %s line %ld: a NUL byte: this is not a text file",
                     path, lineno);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        const char *p = line;
        if (lineno == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
            (unsigned char)p[2] == 0xBF)
            p += 3; /* UTF-8 byte-order mark */
        char where[PATH_MAX + 64];
        snprintf(where, sizeof where, "--corpus %s line %ld", path, lineno);
        if (stream_add(s, tok, p, where, err, errlen) != 0) { rc = -1; break; }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "--corpus %s: read error", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

static int add_glue_task(TokStream *s, const Tokenizer *tok, const char *dir,
                         const GlueTaskInfo *task, char *err, size_t errlen) {
    GlueSplit sp;
    /* the TRAIN split only: dev and test text must stay unseen */
    if (glue_load(dir, task, "train", &sp, err, errlen) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < sp.n && rc == 0; i++) {
        char where[PATH_MAX + 64];
        snprintf(where, sizeof where, "%s/train.tsv line %d", dir, sp.ex[i].line);
        rc = stream_add(s, tok, sp.ex[i].text_a, where, err, errlen);
        if (rc == 0 && sp.ex[i].text_b) rc = stream_add(s, tok, sp.ex[i].text_b, where, err, errlen);
    }
    glue_split_free(&sp);
    return rc;
}

/* The E2E training set's references (trainset.csv only: dev and test text
 * must stay unseen). The meaning representations are attribute lists, not
 * text, and each repeats over ~8 references: they are left out. */
static int add_e2e(TokStream *s, const Tokenizer *tok, const char *dir, char *err, size_t errlen) {
    E2ESplit sp;
    if (e2e_load(dir, "train", &sp, err, errlen) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < sp.n && rc == 0; i++) {
        char where[PATH_MAX + 64];
        snprintf(where, sizeof where, "%s/trainset.csv line %d", dir, sp.ex[i].line);
        rc = stream_add(s, tok, sp.ex[i].ref, where, err, errlen);
    }
    e2e_split_free(&sp);
    return rc;
}

/* One --corpus entry: a text file, a GLUE task directory, or a task name. */
static int add_corpus(TokStream *s, const Tokenizer *tok, const char *name,
                      const PretrainCallbacks *cb, char *err, size_t errlen) {
    size_t before_tok = s->n, before_sent = s->n_sent;
    char dir[PATH_MAX];
    const GlueTaskInfo *task = NULL;
    const char *kind;
    char e2e_probe[PATH_MAX + 32];
    snprintf(e2e_probe, sizeof e2e_probe, "%s/trainset.csv", name);
    if (is_file(name)) {
        if (add_text_file(s, tok, name, err, errlen) != 0) return -1;
        kind = "text";
    } else if (strcmp(name, "e2e") == 0 || (is_dir(name) && is_file(e2e_probe))) {
        char e2[2048];
        if (strcmp(name, "e2e") == 0) {
            if (assets_find_task("e2e", dir, sizeof dir, e2, sizeof e2) != 0) {
                snprintf(err, errlen, "--corpus e2e: %s (bilora fetch e2e downloads it)", e2);
                return -1;
            }
        } else {
            snprintf(dir, sizeof dir, "%s", name);
        }
        if (add_e2e(s, tok, dir, err, errlen) != 0) return -1;
        kind = "E2E train references";
        info(cb, "corpus %s (%s, %s): %zu sentences, %zu tokens", name, kind, dir,
             s->n_sent - before_sent, s->n - before_tok);
        return 0;
    } else {
        if (is_dir(name)) {
            const char *base = strrchr(name, '/');
            base = base && base[1] ? base + 1 : name;
            task = glue_task_info(base);
            char tsv[PATH_MAX + 16];
            snprintf(tsv, sizeof tsv, "%s/train.tsv", name);
            if (!task || !is_file(tsv)) {
                snprintf(err, errlen, "--corpus %s: a directory, but not a GLUE task folder "
                         "(named after its task, holding train.tsv)", name);
                return -1;
            }
            snprintf(dir, sizeof dir, "%s", name);
        } else {
            const char *tn = strncmp(name, "glue/", 5) == 0 ? name + 5 : name;
            if (strncmp(name, "e2e/", 4) == 0) {
                snprintf(err, errlen, "--corpus %s: E2E is one corpus, \"e2e\" (its train "
                         "references); dev and test text are never pretrained on", name);
                return -1;
            }
            task = glue_task_info(tn);
            if (!task) {
                snprintf(err, errlen, "--corpus %s: no such file, and not a GLUE task name "
                         "(glue/SST-2 style: CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI)", name);
                return -1;
            }
            char e2[2048];
            if (assets_find_task(task->name, dir, sizeof dir, e2, sizeof e2) != 0) {
                snprintf(err, errlen, "--corpus %s: %s", name, e2);
                return -1;
            }
        }
        if (add_glue_task(s, tok, dir, task, err, errlen) != 0) return -1;
        kind = "GLUE train split";
    }
    info(cb, "corpus %s (%s%s%s): %zu sentences, %zu tokens", name, kind, task ? ", " : "",
         task ? dir : "", s->n_sent - before_sent, s->n - before_tok);
    return 0;
}

/* The packed sequences: ids and token types, each sequence at off[i]. */
typedef struct {
    int32_t *ids, *types;
    size_t *off;
    int *len;
    int n;
    size_t total;
} Packed;

static void packed_free(Packed *p) {
    free(p->ids);
    free(p->types);
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof(*p));
}

/* Packs the sentence stream, in order, into sequences of at most seq_len
 * tokens (see pretrain.h for the two templates). A sentence longer than the
 * room left continues in the next sequence: no text is dropped. */
static int pack(const TokStream *s, int seq_len, int rob, int cls, int sep, Packed *out,
                char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const int specials = rob ? 4 : 3;
    const int room = seq_len - specials;
    /* every sequence but the last is full */
    size_t max_seqs = s->n / (size_t)room + 2;
    out->off = malloc(sizeof(size_t) * max_seqs);
    out->len = malloc(sizeof(int) * max_seqs);
    int *bounds = malloc(sizeof(int) * (size_t)room);
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)room);
    size_t cap = s->n + max_seqs * (size_t)specials;
    out->ids = malloc(sizeof(int32_t) * cap);
    out->types = malloc(sizeof(int32_t) * cap);
    if (!out->off || !out->len || !bounds || !buf || !out->ids || !out->types) {
        free(bounds);
        free(buf);
        packed_free(out);
        snprintf(err, errlen, "out of memory packing %zu tokens", s->n);
        return -1;
    }
    size_t sent = 0, pos = 0; /* the next token: sentence sent, absolute position pos */
    size_t w = 0;
    while (sent < s->n_sent && (size_t)out->n < max_seqs) {
        int filled = 0, nb = 0;
        while (filled < room && sent < s->n_sent) {
            size_t left = s->end[sent] - pos;
            size_t take = left < (size_t)(room - filled) ? left : (size_t)(room - filled);
            memcpy(buf + filled, s->tok + pos, sizeof(int32_t) * take);
            filled += (int)take;
            pos += take;
            if (pos == s->end[sent]) {
                sent++;
                if (filled < room && sent < s->n_sent) bounds[nb++] = filled;
            }
        }
        if (filled == 0) break;
        /* A|B split: the sentence boundary nearest the middle, else the middle */
        int split = filled;
        if (nb > 0) {
            split = bounds[0];
            for (int i = 1; i < nb; i++)
                if (abs(2 * bounds[i] - filled) < abs(2 * split - filled)) split = bounds[i];
        } else if (filled >= 2) {
            split = filled / 2;
        }
        size_t start = w;
        out->ids[w] = cls; out->types[w++] = 0;
        for (int i = 0; i < split; i++) { out->ids[w] = buf[i]; out->types[w++] = 0; }
        out->ids[w] = sep; out->types[w++] = 0;
        if (split < filled) {
            int tb = rob ? 0 : 1;
            if (rob) { out->ids[w] = sep; out->types[w++] = 0; }
            for (int i = split; i < filled; i++) { out->ids[w] = buf[i]; out->types[w++] = tb; }
            out->ids[w] = sep; out->types[w++] = tb;
        }
        out->off[out->n] = start;
        out->len[out->n] = (int)(w - start);
        out->n++;
    }
    out->total = w;
    free(bounds);
    free(buf);
    return 0;
}

/* Causal-LM packing (gpt2): every sentence followed by the end-of-text
 * token, the stream cut into sequences of seq_len tokens (GPT-2's
 * run_clm grouping); a last piece shorter than 2 tokens has nothing to
 * predict and is dropped. */
static int pack_causal(const TokStream *s, int seq_len, int eos, Packed *out, char *err,
                       size_t errlen) {
    memset(out, 0, sizeof(*out));
    size_t total = s->n + s->n_sent;
    size_t max_seqs = total / (size_t)seq_len + 2;
    out->ids = malloc(sizeof(int32_t) * (total ? total : 1));
    out->types = calloc(total ? total : 1, sizeof(int32_t));
    out->off = malloc(sizeof(size_t) * max_seqs);
    out->len = malloc(sizeof(int) * max_seqs);
    if (!out->ids || !out->types || !out->off || !out->len) {
        packed_free(out);
        snprintf(err, errlen, "out of memory packing %zu tokens", s->n);
        return -1;
    }
    size_t w = 0, pos = 0;
    for (size_t k = 0; k < s->n_sent; k++) {
        for (; pos < s->end[k]; pos++) out->ids[w++] = s->tok[pos];
        out->ids[w++] = eos;
    }
    for (size_t o = 0; o < w; o += (size_t)seq_len) {
        size_t len = w - o < (size_t)seq_len ? w - o : (size_t)seq_len;
        if (len < 2) break;
        out->off[out->n] = o;
        out->len[out->n] = (int)len;
        out->n++;
    }
    out->total = w;
    return 0;
}

/* Causal-LM labels of one sequence: the next token, none after the last. */
static void causal_labels(const int32_t *ids, int32_t *labels, int len) {
    for (int t = 0; t + 1 < len; t++) labels[t] = ids[t + 1];
    if (len > 0) labels[len - 1] = -1;
}

/* ================================================================ the run */

typedef struct {
    Tokenizer *tok;
    TokStream stream;
    Packed seqs;
    int *train_idx, *held_idx;
    int n_train, n_held;
    int32_t *held_ids, *held_labels;   /* fixed masks, laid out as seqs */
    uint8_t *special;                  /* [vocab]: never masked */
    ModelConfig mc;
    Model *model;
    MlmHead *head;
    ParamList params;                  /* the model's trained tensors + the head's */
    AdamW opt;
    int *order;                        /* this epoch's order of train_idx */
    long epoch, cursor;
    char partial[PATH_MAX];
    char tok_dir[PATH_MAX];            /* --tokenizer, resolved */
    char fingerprint[4096];
    char history[8192];                /* "step:loss,..." of the held-out evaluations */
    double prior_seconds;              /* training time of earlier (resumed) processes */
    int causal;                        /* gpt2: next-token labels, no masking */
} Run;

static void run_free(Run *r) {
    adamw_free(&r->opt);
    mlm_head_free(r->head);
    model_free(r->model);
    param_list_free(&r->params);
    tokenizer_free(r->tok);
    free(r->stream.tok);
    free(r->stream.end);
    packed_free(&r->seqs);
    free(r->train_idx);
    free(r->held_idx);
    free(r->held_ids);
    free(r->held_labels);
    free(r->special);
    free(r->order);
}

static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

/* The order of epoch e is a function of (seed, e), so a resumed run needs
 * only (epoch, cursor) to continue the same stream. */
static void epoch_order(Run *r, uint64_t seed) {
    memcpy(r->order, r->train_idx, sizeof(int) * r->n_train);
    uint64_t rng = rng_derive(seed, PURPOSE_EPOCH_ORDER + (uint64_t)r->epoch);
    shuffle(r->order, r->n_train, &rng);
}

/* Reads a config.json given as a file of any name or as a directory. */
static int load_config_arg(ModelConfig *mc, const char *arg, char *err, size_t errlen) {
    if (is_dir(arg)) return model_config_load(mc, arg, err, errlen);
    if (!is_file(arg)) {
        snprintf(err, errlen, "--config %s: no such file or directory", arg);
        return -1;
    }
    const char *base = strrchr(arg, '/');
    if (strcmp(base ? base + 1 : arg, "config.json") == 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", base ? (int)(base - arg) : 1, base ? arg : ".");
        if (!dir[0]) snprintf(dir, sizeof dir, "/");
        return model_config_load(mc, dir, err, errlen);
    }
    /* model_config_load reads <dir>/config.json: give it one */
    char tmp[] = "/tmp/bilora-config-XXXXXX";
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "--config %s: cannot make a temporary directory: %s", arg,
                 strerror(errno));
        return -1;
    }
    char dst[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/config.json", tmp);
    int rc = copy_file(arg, dst, err, errlen);
    if (rc == 0) {
        rc = model_config_load(mc, tmp, err, errlen);
        if (rc != 0) { /* name the user's file, not the temporary copy */
            char e2[1024];
            snprintf(e2, sizeof e2, "%s", err);
            char *p = strstr(e2, dst);
            if (p) snprintf(err, errlen, "--config %s%s", arg, p + strlen(dst));
        }
    }
    remove_flat_dir(tmp);
    return rc;
}

static int setup_model_config(Run *r, const PretrainConfig *c, char *err, size_t errlen) {
    int vocab = tokenizer_vocab_size(r->tok);
    if (c->config[0]) {
        if (load_config_arg(&r->mc, c->config, err, errlen) != 0) return -1;
        if (c->arch[0] && strcmp(c->arch, r->mc.model_type) != 0) {
            snprintf(err, errlen, "--arch %s disagrees with --config %s (model_type %s)", c->arch,
                     c->config, r->mc.model_type);
            return -1;
        }
        if (r->mc.vocab_size < vocab) {
            snprintf(err, errlen, "--config %s: vocab_size %d is smaller than the tokenizer's "
                     "vocabulary (%d ids in %s)", c->config, r->mc.vocab_size, vocab, r->tok_dir);
            return -1;
        }
        r->mc.num_labels = 0;
    } else if (pretrain_size_config(&r->mc, c->arch, c->size, vocab, err, errlen) != 0) {
        return -1;
    }
    if (c->dropout >= 0.0f) {
        if (c->dropout >= 1.0f) {
            snprintf(err, errlen, "--dropout %g: expected a probability in [0, 1)", c->dropout);
            return -1;
        }
        r->mc.hidden_dropout_prob = c->dropout;
        r->mc.attention_probs_dropout_prob = c->dropout;
    }
    return 0;
}

static void build_fingerprint(Run *r, const PretrainConfig *c) {
    const ModelConfig *m = &r->mc;
    int n = snprintf(r->fingerprint, sizeof r->fingerprint,
                     "model_type=%s layers=%d hidden=%d heads=%d ffn=%d vocab=%d positions=%d "
                     "types=%d dropout=%g/%g seq_len=%d batch_size=%d steps=%ld lr=%g "
                     "warmup_ratio=%g weight_decay=%g max_grad_norm=%g mask_prob=%g "
                     "holdout_ratio=%g seed=%llu sequences=%d tokens=%zu corpus=",
                     m->model_type, m->num_hidden_layers, m->hidden_size, m->num_attention_heads,
                     m->intermediate_size, m->vocab_size, m->max_position_embeddings,
                     m->type_vocab_size, m->hidden_dropout_prob, m->attention_probs_dropout_prob,
                     c->seq_len, c->batch_size, c->steps, c->lr, c->warmup_ratio, c->weight_decay,
                     c->max_grad_norm, c->mask_prob, c->holdout_ratio,
                     (unsigned long long)c->seed, r->seqs.n, r->stream.n);
    for (int i = 0; i < c->n_corpus && n > 0 && (size_t)n < sizeof r->fingerprint; i++)
        n += snprintf(r->fingerprint + n, sizeof r->fingerprint - n, "%s%s", i ? "," : "",
                      c->corpus[i]);
}

/* The first field where two fingerprints differ, for a resume refusal. */
static void fingerprint_diff(const char *a, const char *b, char *out, size_t cap) {
    const char *pa = a, *pb = b;
    while (*pa && *pb) {
        const char *ea = strchr(pa, ' '), *eb = strchr(pb, ' ');
        size_t la = ea ? (size_t)(ea - pa) : strlen(pa), lb = eb ? (size_t)(eb - pb) : strlen(pb);
        if (la != lb || strncmp(pa, pb, la) != 0) {
            snprintf(out, cap, "the checkpoint has %.*s where this run has %.*s", (int)la, pa,
                     (int)lb, pb);
            return;
        }
        if (!ea || !eb) break;
        pa = ea + 1;
        pb = eb + 1;
    }
    snprintf(out, cap, "the settings differ");
}

/* What may be at --out, checked before any training: nothing, or with
 * --overwrite a model directory (config.json, plain files only: what this
 * module writes). Anything else is the user's and is never moved or
 * deleted. */
static int check_out(const PretrainConfig *c, char *err, size_t errlen) {
    struct stat sb;
    if (lstat(c->out, &sb) != 0) return 0;
    if (!c->overwrite) {
        snprintf(err, errlen, "--out %s already exists; pass --overwrite to replace the model there, or "
                 "pick another --out", c->out);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "--out %s is not a directory: --overwrite replaces a model directory only",
                 c->out);
        return -1;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/config.json", c->out);
    int has_config = access(p, F_OK) == 0;
    DIR *d = opendir(c->out);
    if (!d) {
        snprintf(err, errlen, "--out %s: %s", c->out, strerror(errno));
        return -1;
    }
    struct dirent *e;
    char sub[256] = "";
    while ((e = readdir(d)) && !sub[0]) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat fs;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", c->out, e->d_name) < sizeof p && lstat(p, &fs) == 0 &&
            !S_ISREG(fs.st_mode))
            snprintf(sub, sizeof sub, "%s", e->d_name);
    }
    closedir(d);
    if (!has_config || sub[0]) {
        snprintf(err, errlen, "--out %s is not a model directory (%s%s): --overwrite replaces only a "
                 "model that pretrain or fetch wrote; remove it yourself or pick another --out", c->out,
                 has_config ? "it holds " : "no config.json", has_config ? sub : "");
        return -1;
    }
    return 0;
}

static int setup(Run *r, const PretrainConfig *c, const PretrainCallbacks *cb, char *err,
                 size_t errlen) {
    if (c->arch[0] && strcmp(c->arch, "bert") != 0 && strcmp(c->arch, "roberta") != 0 &&
        strcmp(c->arch, "gpt2") != 0) {
        snprintf(err, errlen, "--arch '%s': expected bert, roberta or gpt2", c->arch);
        return -1;
    }
    if (strcmp(c->device, "cpu") != 0 && strcmp(c->device, "auto") != 0 && strcmp(c->device, "cuda") != 0) {
        snprintf(err, errlen, "--device '%s': expected auto, cpu or cuda", c->device);
        return -1;
    }
    if (!c->tokenizer[0] || !c->out[0] || c->n_corpus <= 0) {
        snprintf(err, errlen, "--tokenizer, --corpus and --out are required");
        return -1;
    }
    if (check_out(c, err, errlen) != 0) return -1;
    if (c->steps <= 0 || c->batch_size <= 0 || c->seq_len < 8 || !(c->lr > 0.0f) ||
        !(c->mask_prob > 0.0f && c->mask_prob < 1.0f) ||
        !(c->holdout_ratio >= 0.0f && c->holdout_ratio <= 0.5f) || c->warmup_ratio < 0.0f ||
        c->warmup_ratio > 1.0f || c->eval_every < 0 || c->checkpoint_every < 0) {
        snprintf(err, errlen, "invalid settings: need --steps > 0, --batch-size > 0, --seq-len >= "
                 "8, --lr > 0, --mask-prob in (0,1), --holdout-ratio in [0,0.5], --warmup-ratio "
                 "in [0,1], --eval-every and --checkpoint-every >= 0");
        return -1;
    }
    /* the model type decides the tokenizer's special tokens */
    const char *type = c->arch[0] ? c->arch : "bert";
    ModelConfig probe;
    if (c->config[0] && load_config_arg(&probe, c->config, err, errlen) == 0) type = probe.model_type;
    /* a directory, or a model name on the asset path (bert-mini) */
    if (is_dir(c->tokenizer)) {
        snprintf(r->tok_dir, sizeof r->tok_dir, "%s", c->tokenizer);
    } else {
        char e2[2048];
        if (assets_find_model(c->tokenizer, r->tok_dir, sizeof r->tok_dir, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "--tokenizer %s: %s", c->tokenizer, e2);
            return -1;
        }
    }
    if (tokenizer_load(&r->tok, r->tok_dir, type, err, errlen) != 0) return -1;
    int cls = tokenizer_cls_id(r->tok), sep = tokenizer_sep_id(r->tok);
    int mask = tokenizer_mask_id(r->tok), pad = tokenizer_pad_id(r->tok);
    r->causal = strcmp(type, "gpt2") == 0;
    if (r->causal && (sep < 0 || pad < 0)) {
        snprintf(err, errlen, "--tokenizer %s: causal-LM pretraining needs an end-of-text token "
                 "(<|endoftext|>); this tokenizer has none", c->tokenizer);
        return -1;
    }
    if (!r->causal && (cls < 0 || sep < 0 || mask < 0 || pad < 0)) {
        snprintf(err, errlen, "--tokenizer %s: masked-LM pretraining needs [CLS]/<s>, [SEP]/</s>, "
                 "[PAD]/<pad> and [MASK]/<mask> tokens; this tokenizer lacks %s", c->tokenizer,
                 cls < 0 ? "the classification token" : sep < 0 ? "the separator"
                 : mask < 0 ? "the mask token" : "the padding token");
        return -1;
    }
    if (setup_model_config(r, c, err, errlen) != 0) return -1;
    const int rob = strcmp(r->mc.model_type, "roberta") == 0;
    int pos_limit = r->mc.max_position_embeddings - (rob ? r->mc.pad_token_id + 1 : 0);
    if (c->seq_len > pos_limit) {
        snprintf(err, errlen, "--seq-len %d exceeds the model's %d positions", c->seq_len,
                 pos_limit);
        return -1;
    }

    for (int i = 0; i < c->n_corpus; i++)
        if (add_corpus(&r->stream, r->tok, c->corpus[i], cb, err, errlen) != 0) return -1;
    if (r->stream.n == 0) {
        snprintf(err, errlen, "the corpus has no text (%d source(s), every line empty)", c->n_corpus);
        return -1;
    }
    if (r->causal ? pack_causal(&r->stream, c->seq_len, sep, &r->seqs, err, errlen) != 0
                  : pack(&r->stream, c->seq_len, rob, cls, sep, &r->seqs, err, errlen) != 0)
        return -1;
    if (r->seqs.n < 2) {
        snprintf(err, errlen, "the corpus is too small: its %zu tokens make %d sequence(s) of "
                 "--seq-len %d; at least 2 are needed (one to train on, one held out)",
                 r->stream.n, r->seqs.n, c->seq_len);
        return -1;
    }

    /* held-out split: a seeded sample of whole sequences */
    int n = r->seqs.n;
    r->n_held = (int)lround((double)c->holdout_ratio * n);
    if (r->n_held < 1) r->n_held = 1;
    if (r->n_held > n - 1) r->n_held = n - 1;
    r->n_train = n - r->n_held;
    int *all = malloc(sizeof(int) * n);
    r->train_idx = malloc(sizeof(int) * r->n_train);
    r->held_idx = malloc(sizeof(int) * r->n_held);
    r->order = malloc(sizeof(int) * r->n_train);
    r->special = calloc((size_t)r->mc.vocab_size, 1);
    r->held_ids = malloc(sizeof(int32_t) * r->seqs.total);
    r->held_labels = malloc(sizeof(int32_t) * r->seqs.total);
    if (!all || !r->train_idx || !r->held_idx || !r->order || !r->special || !r->held_ids ||
        !r->held_labels) {
        free(all);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) all[i] = i;
    uint64_t hr = rng_derive(c->seed, PURPOSE_HOLDOUT);
    shuffle(all, n, &hr);
    memcpy(r->held_idx, all, sizeof(int) * r->n_held);
    memcpy(r->train_idx, all + r->n_held, sizeof(int) * r->n_train);
    free(all);

    /* Never masked: the template's tokens and padding, wherever they occur
     * (a corpus line may spell "[SEP]" itself). [UNK] is text and is masked,
     * as Hugging Face's collator does. */
    int specials[] = {cls, sep, pad, mask};
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
        if (specials[i] >= 0 && specials[i] < r->mc.vocab_size) r->special[specials[i]] = 1;

    /* the held-out masks are drawn once, so every evaluation scores the same task */
    uint64_t er = rng_derive(c->seed, PURPOSE_EVAL_MASK);
    uint8_t *mk = malloc((size_t)c->seq_len);
    if (!mk) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int k = 0; k < r->n_held; k++) {
        int s = r->held_idx[k];
        size_t o = r->seqs.off[s];
        int len = r->seqs.len[s];
        memcpy(r->held_ids + o, r->seqs.ids + o, sizeof(int32_t) * len);
        if (r->causal) {
            causal_labels(r->held_ids + o, r->held_labels + o, len);
            continue;
        }
        for (int i = 0; i < len; i++) mk[i] = !r->special[r->seqs.ids[o + i]];
        if (mlm_mask_sequence(r->held_ids + o, r->held_labels + o, mk, len, c->mask_prob, mask,
                              r->mc.vocab_size, &er) < 0) {
            free(mk);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    free(mk);
    info(cb, "packed %zu tokens into %d sequences of up to %d tokens: %d to train on, %d held out "
         "(seed %llu)", r->stream.n, n, c->seq_len, r->n_train, r->n_held,
         (unsigned long long)c->seed);

    ModelOptions mo = {.num_labels = 0, .max_batch = c->batch_size, .max_seq = c->seq_len,
                       .train_base = 1, .init_seed = c->seed, .random_init = 1, .config = &r->mc};
    const Backend *be = backend_select(c->device, err, errlen);
    if (!be) return -1;
    err[0] = 0;
    if (model_load(&r->model, be, &mo, err, errlen) != 0) return -1;
    /* the head's row budget: the most positions a batch can have chosen */
    int per_seq = r->causal ? c->seq_len : (int)lround((double)c->mask_prob * c->seq_len);
    if (per_seq < 1) per_seq = 1;
    if (mlm_head_create(&r->head, r->model, c->batch_size * per_seq, c->seed, err, errlen) != 0)
        return -1;
    /* The trained tensors: every base tensor but the pooler (BertForMaskedLM
     * has none; masked-LM gives it no gradient), and the head. */
    const ParamList *mp = &r->model->params;
    for (int i = 0; i < mp->n; i++) {
        const ParamTensor *p = &mp->t[i];
        if (strncmp(p->name, "pooler.", 7) == 0 || p->group == GROUP_FROZEN) continue;
        if (param_list_add(&r->params, p->name, p->data, p->grad, p->ndim, p->shape[0], p->shape[1],
                           GROUP_LOWER, p->decay) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    const ParamList *hp = mlm_head_params(r->head);
    for (int i = 0; i < hp->n; i++) {
        const ParamTensor *p = &hp->t[i];
        if (param_list_add(&r->params, p->name, p->data, p->grad, p->ndim, p->shape[0], p->shape[1],
                           GROUP_LOWER, p->decay) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (adamw_init(&r->opt, r->model->be, &r->params, GROUP_LOWER, c->weight_decay, err, errlen) != 0)
        return -1;
    info(cb, "model %s: %d layers, hidden %d, %d heads, FFN %d, vocabulary %d: %zu parameters "
         "(random init, seed %llu), %s head over up to %d positions per step, device %s",
         r->mc.model_type, r->mc.num_hidden_layers, r->mc.hidden_size, r->mc.num_attention_heads,
         r->mc.intermediate_size, r->mc.vocab_size, param_list_numel(&r->params, GROUP_LOWER),
         (unsigned long long)c->seed, r->causal ? "causal-LM" : "MLM", mlm_head_max_rows(r->head),
         r->model->be->name);
    build_fingerprint(r, c);
    return 0;
}

/* A batch of sequences idx[0..nb): right-padded to the longest, the ids a
 * copy (masking rewrites them). */
static int build_batch(const Run *r, const int32_t *ids_src, const int *idx, int nb, int pad,
                       Batch *bt) {
    int T = 0;
    for (int i = 0; i < nb; i++) if (r->seqs.len[idx[i]] > T) T = r->seqs.len[idx[i]];
    memset(bt, 0, sizeof(*bt));
    bt->B = nb;
    bt->T = T;
    size_t N = (size_t)nb * T;
    bt->ids = malloc(sizeof(int32_t) * N);
    bt->type_ids = malloc(sizeof(int32_t) * N);
    bt->mask = malloc(sizeof(float) * N);
    if (!bt->ids || !bt->type_ids || !bt->mask) { batch_free(bt); return -1; }
    for (int b = 0; b < nb; b++) {
        size_t o = r->seqs.off[idx[b]];
        int len = r->seqs.len[idx[b]];
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            int in = t < len;
            bt->ids[i] = in ? ids_src[o + t] : pad;
            bt->type_ids[i] = in ? r->seqs.types[o + t] : 0;
            bt->mask[i] = in ? 1.0f : 0.0f;
        }
    }
    return 0;
}

/* The held-out MLM loss: eval mode, fixed masks, token-weighted mean. */
static int evaluate(Run *r, const PretrainConfig *c, PretrainEval *ev, char *err, size_t errlen) {
    int pad = tokenizer_pad_id(r->tok);
    double sum = 0.0;
    long count = 0;
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)c->batch_size * c->seq_len);
    if (!labels) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = 0;
    for (int s = 0; s < r->n_held && rc == 0; s += c->batch_size) {
        int nb = r->n_held - s < c->batch_size ? r->n_held - s : c->batch_size;
        Batch bt;
        if (build_batch(r, r->held_ids, r->held_idx + s, nb, pad, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        for (int b = 0; b < nb; b++) {
            size_t o = r->seqs.off[r->held_idx[s + b]];
            int len = r->seqs.len[r->held_idx[s + b]];
            for (int t = 0; t < bt.T; t++)
                labels[(size_t)b * bt.T + t] = t < len ? r->held_labels[o + t] : -1;
        }
        double ls;
        int pr;
        rc = mlm_batch_loss(r->model, r->head, &bt, labels, 0, 0, 0, &ls, &pr, err, errlen);
        sum += ls;
        count += pr;
        batch_free(&bt);
    }
    free(labels);
    ev->loss = count ? sum / count : NAN;
    ev->predicted = count;
    ev->sequences = r->n_held;
    return rc;
}

/* ---- checkpoint: <out>.partial/state.safetensors ---- */

static int checkpoint_save(Run *r, long step, double seconds, char *err, size_t errlen) {
    if (make_dirs(r->partial, err, errlen) != 0) return -1;
    const Backend *be = r->model->be;
    const ParamList *pl = &r->params;
    int nt = pl->n * 3;
    StWriteTensor *ts = calloc((size_t)nt, sizeof(*ts));
    char (*names)[PARAM_NAME_MAX + 16] = calloc((size_t)nt, sizeof(*names));
    size_t total = 0;
    for (int i = 0; i < pl->n; i++) total += pl->t[i].numel;
    float *host = malloc(sizeof(float) * total * 3);
    if (!ts || !names || !host) {
        free(ts); free(names); free(host);
        snprintf(err, errlen, "out of memory writing a checkpoint");
        return -1;
    }
    size_t off = 0;
    for (int i = 0; i < pl->n; i++) {
        const ParamTensor *p = &pl->t[i];
        float *dw = host + off, *dm = host + total + off, *dv = host + 2 * total + off;
        be->download(dw, p->data, sizeof(float) * p->numel);
        be->download(dm, r->opt.m + off, sizeof(float) * p->numel);
        be->download(dv, r->opt.v + off, sizeof(float) * p->numel);
        const float *src[3] = {dw, dm, dv};
        const char *pre[3] = {"", "adamw.m.", "adamw.v."};
        for (int k = 0; k < 3; k++) {
            snprintf(names[3 * i + k], sizeof names[0], "%s%s", pre[k], p->name);
            ts[3 * i + k] = (StWriteTensor){.name = names[3 * i + k], .data = src[k],
                                            .ndim = p->ndim, .shape = {p->shape[0], p->shape[1]}};
        }
        off += p->numel;
    }
    char s_step[32], s_t[32], s_epoch[32], s_cursor[32], s_sec[32];
    snprintf(s_step, sizeof s_step, "%ld", step);
    snprintf(s_t, sizeof s_t, "%ld", r->opt.t);
    snprintf(s_epoch, sizeof s_epoch, "%ld", r->epoch);
    snprintf(s_cursor, sizeof s_cursor, "%ld", r->cursor);
    snprintf(s_sec, sizeof s_sec, "%.3f", seconds);
    const char *meta[] = {"format", "bilora-pretrain-checkpoint", "step", s_step, "adamw_t", s_t,
                          "data_epoch", s_epoch, "data_cursor", s_cursor, "seconds", s_sec,
                          "history", r->history, "fingerprint", r->fingerprint, NULL};
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/state.safetensors", r->partial);
    int rc = st_write_f32(path, ts, nt, meta, err, errlen);
    free(ts);
    free(names);
    free(host);
    return rc;
}

static const char *meta_get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Restores weights, moments, step and data cursor. Returns the step. */
static long checkpoint_load(Run *r, char *err, size_t errlen) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/state.safetensors", r->partial);
    SafeTensors st;
    if (st_open(&st, path, err, errlen) != 0) return -1;
    long step = -1;
    cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
    const char *fmt = meta ? meta_get(meta, "format") : NULL;
    const char *fp = meta ? meta_get(meta, "fingerprint") : NULL;
    const char *s_step = meta ? meta_get(meta, "step") : NULL;
    const char *s_t = meta ? meta_get(meta, "adamw_t") : NULL;
    const char *s_ep = meta ? meta_get(meta, "data_epoch") : NULL;
    const char *s_cu = meta ? meta_get(meta, "data_cursor") : NULL;
    const char *s_sec = meta ? meta_get(meta, "seconds") : NULL;
    const char *hist = meta ? meta_get(meta, "history") : NULL;
    if (!fmt || strcmp(fmt, "bilora-pretrain-checkpoint") != 0 || !fp || !s_step || !s_t || !s_ep ||
        !s_cu) {
        snprintf(err, errlen, "%s: not a pretraining checkpoint (its metadata lacks format, step, "
                 "adamw_t, data_epoch, data_cursor or fingerprint)", path);
        goto done;
    }
    if (strcmp(fp, r->fingerprint) != 0) {
        char d[1024];
        fingerprint_diff(fp, r->fingerprint, d, sizeof d);
        snprintf(err, errlen, "%s was written by a run with other settings (%s); resume with the "
                 "same flags and corpus, or delete %s to start over", path, d, r->partial);
        goto done;
    }
    const Backend *be = r->model->be;
    size_t off = 0;
    float *buf = NULL;
    for (int i = 0; i < r->params.n; i++) {
        const ParamTensor *p = &r->params.t[i];
        const char *pre[3] = {"", "adamw.m.", "adamw.v."};
        float *dst[3] = {p->data, r->opt.m + off, r->opt.v + off};
        float *nb = realloc(buf, sizeof(float) * p->numel);
        if (!nb) { snprintf(err, errlen, "out of memory"); free(buf); goto done; }
        buf = nb;
        for (int k = 0; k < 3; k++) {
            char name[PARAM_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s%s", pre[k], p->name);
            const StTensor *t = st_find(&st, name);
            if (!t || t->numel != (int64_t)p->numel) {
                snprintf(err, errlen, "%s: tensor '%s' %s", path, name,
                         t ? "has the wrong size" : "is missing");
                free(buf);
                goto done;
            }
            st_read_f32(&st, t, buf);
            be->upload(dst[k], buf, sizeof(float) * p->numel);
        }
        off += p->numel;
    }
    free(buf);
    step = strtol(s_step, NULL, 10);
    r->opt.t = strtol(s_t, NULL, 10);
    r->epoch = strtol(s_ep, NULL, 10);
    r->cursor = strtol(s_cu, NULL, 10);
    r->prior_seconds = s_sec ? strtod(s_sec, NULL) : 0.0;
    snprintf(r->history, sizeof r->history, "%s", hist ? hist : "");
done:
    cJSON_Delete(meta);
    st_close(&st);
    return step;
}

/* ---- the output directory ---- */

static const char *const TOKENIZER_FILES[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "vocab.json", "merges.txt", "added_tokens.json",
};

static int write_provenance(Run *r, const PretrainConfig *c, const char *dir, long steps,
                            double seconds, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    if (!o) { snprintf(err, errlen, "out of memory"); return -1; }
    cJSON_AddStringToObject(o, "made_by", r->causal ? "bilora pretrain (causal LM from random initialisation)"
                                                    : "bilora pretrain (masked LM from random initialisation)");
    cJSON_AddStringToObject(o, "model_type", r->mc.model_type);
    cJSON_AddStringToObject(o, "size", c->config[0] ? "custom" : c->size);
    cJSON_AddStringToObject(o, "tokenizer", r->tok_dir);
    cJSON *corp = cJSON_AddArrayToObject(o, "corpus");
    for (int i = 0; corp && i < c->n_corpus; i++)
        cJSON_AddItemToArray(corp, cJSON_CreateString(c->corpus[i]));
    cJSON_AddNumberToObject(o, "corpus_tokens", (double)r->stream.n);
    cJSON_AddNumberToObject(o, "train_sequences", r->n_train);
    cJSON_AddNumberToObject(o, "heldout_sequences", r->n_held);
    cJSON_AddNumberToObject(o, "steps", (double)steps);
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddNumberToObject(o, "seq_len", c->seq_len);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    if (!r->causal) cJSON_AddNumberToObject(o, "mask_prob", c->mask_prob); /* gpt2 predicts every next token */
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "train_seconds", seconds);
    cJSON *hist = cJSON_AddArrayToObject(o, "heldout_loss");
    for (const char *p = r->history; hist && *p;) {
        char *end;
        long st = strtol(p, &end, 10);
        if (*end != ':') break;
        double l = strtod(end + 1, &end);
        cJSON *pt = cJSON_CreateArray();
        cJSON_AddItemToArray(pt, cJSON_CreateNumber((double)st));
        cJSON_AddItemToArray(pt, cJSON_CreateNumber(l));
        cJSON_AddItemToArray(hist, pt);
        p = *end == ',' ? end + 1 : end;
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) { snprintf(err, errlen, "out of memory"); return -1; }
    char path[PATH_MAX + 192];
    snprintf(path, sizeof path, "%s/bilora_pretrain.json", dir);
    int rc = write_file_atomic(path, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* model_config_save names the bare encoder class; this directory holds the
 * masked-LM model, which is what AutoModelForMaskedLM reads. */
static int set_architecture(const char *dir, const char *arch, char *err, size_t errlen) {
    char path[PATH_MAX + 192];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_text(path, err, errlen);
    if (!text) return -1;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) { snprintf(err, errlen, "%s: not valid JSON after writing it", path); return -1; }
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(arch));
    if (cJSON_GetObjectItemCaseSensitive(o, "architectures"))
        cJSON_ReplaceItemInObjectCaseSensitive(o, "architectures", a);
    else
        cJSON_AddItemToObject(o, "architectures", a);
    char *out = cJSON_Print(o);
    cJSON_Delete(o);
    if (!out) { snprintf(err, errlen, "out of memory"); return -1; }
    size_t n = strlen(out);
    char *nl = realloc(out, n + 2);
    if (nl) { out = nl; out[n++] = '\n'; out[n] = 0; }
    int rc = write_file_atomic(path, out, n, err, errlen);
    free(out);
    return rc;
}

/* Builds the directory at <out>.tmp-<pid> and renames it into place, so a
 * crash never leaves a half-written model where a finished one is expected. */
/* GPT2LMHeadModel's file: "transformer." names, Conv1D weights [in, out],
 * q/k/v fused back into c_attn ([C, 3C] and [3C]); lm_head is tied to wte
 * and, as save_pretrained does, not stored. */
static int write_gpt2_weights(Run *r, const char *path, char *err, size_t errlen) {
    const ParamList *pl = &r->params;
    const Backend *be = r->model->be;
    StWriteTensor *ts = calloc((size_t)pl->n, sizeof(*ts));
    char (*names)[PARAM_NAME_MAX + 32] = calloc((size_t)pl->n, sizeof(*names));
    float **bufs = calloc((size_t)pl->n, sizeof(float *));
    int n = 0, rc = -1;
    if (!ts || !names || !bufs) goto done;
    for (int i = 0; i < pl->n; i++) {
        const ParamTensor *p = &pl->t[i];
        const char *qkv = strstr(p->name, "attn.c_attn.");
        if (qkv && qkv[strlen("attn.c_attn.")] != 'q') continue; /* k, v: fused with q */
        int64_t rows = p->shape[0], cols = p->ndim > 1 ? p->shape[1] : 1;
        int conv1d = p->ndim == 2 && (qkv || strstr(p->name, "c_proj.") || strstr(p->name, "c_fc."));
        int parts = qkv ? 3 : 1;
        float *out = malloc(sizeof(float) * p->numel * parts);
        float *tmp = malloc(sizeof(float) * p->numel);
        if (!out || !tmp) { free(out); free(tmp); goto done; }
        bufs[n] = out;
        for (int part = 0; part < parts; part++) {
            const ParamTensor *src = p;
            if (part > 0) { /* the k / v sibling of this q */
                char sib[PARAM_NAME_MAX];
                snprintf(sib, sizeof sib, "%s", p->name);
                sib[qkv - p->name + strlen("attn.c_attn.")] = part == 1 ? 'k' : 'v';
                src = param_list_find(pl, sib);
                if (!src) { free(tmp); snprintf(err, errlen, "no %s to fuse into c_attn", sib); goto done; }
            }
            be->download(tmp, src->data, sizeof(float) * src->numel);
            if (conv1d) { /* file[i][part·rows + o] = ours[o][i] */
                for (int64_t o = 0; o < rows; o++)
                    for (int64_t k = 0; k < cols; k++) out[k * rows * parts + part * rows + o] = tmp[o * cols + k];
            } else {
                memcpy(out + part * p->numel, tmp, sizeof(float) * p->numel);
            }
        }
        free(tmp);
        if (qkv)
            snprintf(names[n], sizeof names[0], "transformer.%.*sattn.c_attn%s", (int)(qkv - p->name),
                     p->name, qkv + strlen("attn.c_attn.q"));
        else
            snprintf(names[n], sizeof names[0], "transformer.%s", p->name);
        ts[n] = (StWriteTensor){.name = names[n], .data = out, .ndim = p->ndim};
        if (p->ndim == 2) { ts[n].shape[0] = conv1d ? cols : rows; ts[n].shape[1] = conv1d ? rows * parts : cols; }
        else ts[n].shape[0] = rows * parts;
        n++;
    }
    {
        const char *meta[] = {"format", "pt", NULL};
        rc = st_write_f32(path, ts, n, meta, err, errlen);
    }
done:
    if (rc != 0 && !err[0]) snprintf(err, errlen, "out of memory writing the model");
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    free(names);
    return rc;
}

static int write_model_dir(Run *r, const PretrainConfig *c, long steps, double seconds, char *err,
                           size_t errlen) {
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", c->out, (long)getpid());
    remove_flat_dir(tmp);
    if (make_dirs(tmp, err, errlen) != 0) return -1;
    const int rob = r->model->is_roberta;
    if (model_config_save(&r->mc, tmp, err, errlen) != 0 ||
        set_architecture(tmp, r->causal ? "GPT2LMHeadModel" : rob ? "RobertaForMaskedLM"
                                                            : "BertForMaskedLM", err, errlen) != 0)
        goto fail;

    if (r->causal) {
        char path[PATH_MAX + 192];
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        err[0] = 0;
        if (write_gpt2_weights(r, path, err, errlen) != 0) goto fail;
    } else
    /* the weights, named as BertForMaskedLM / RobertaForMaskedLM save them */
    {
        const ParamList *pl = &r->params;
        StWriteTensor *ts = calloc((size_t)pl->n, sizeof(*ts));
        char (*names)[PARAM_NAME_MAX + 16] = calloc((size_t)pl->n, sizeof(*names));
        size_t total = 0;
        for (int i = 0; i < pl->n; i++) total += pl->t[i].numel;
        float *host = malloc(sizeof(float) * total);
        if (!ts || !names || !host) {
            free(ts); free(names); free(host);
            snprintf(err, errlen, "out of memory writing the model");
            goto fail;
        }
        const ParamList *hp = mlm_head_params(r->head);
        size_t off = 0;
        for (int i = 0; i < pl->n; i++) {
            const ParamTensor *p = &pl->t[i];
            int is_head = param_list_find(hp, p->name) != NULL;
            snprintf(names[i], sizeof names[0], "%s%s", is_head ? "" : rob ? "roberta." : "bert.",
                     p->name);
            r->model->be->download(host + off, p->data, sizeof(float) * p->numel);
            ts[i] = (StWriteTensor){.name = names[i], .data = host + off, .ndim = p->ndim,
                                    .shape = {p->shape[0], p->shape[1]}};
            off += p->numel;
        }
        /* transformers refuses safetensors files whose format is not "pt" */
        const char *meta[] = {"format", "pt", NULL};
        char path[PATH_MAX + 192];
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        int rc = st_write_f32(path, ts, pl->n, meta, err, errlen);
        free(ts);
        free(names);
        free(host);
        if (rc != 0) goto fail;
    }
    {
        int copied = 0;
        for (size_t i = 0; i < sizeof(TOKENIZER_FILES) / sizeof(TOKENIZER_FILES[0]); i++) {
            char src[PATH_MAX + 64], dst[PATH_MAX + 192];
            snprintf(src, sizeof src, "%s/%s", r->tok_dir, TOKENIZER_FILES[i]);
            if (!is_file(src)) continue;
            snprintf(dst, sizeof dst, "%s/%s", tmp, TOKENIZER_FILES[i]);
            if (copy_file(src, dst, err, errlen) != 0) goto fail;
            copied++;
        }
        if (!copied) {
            snprintf(err, errlen, "--tokenizer %s: no tokenizer file to copy", c->tokenizer);
            goto fail;
        }
    }
    if (write_provenance(r, c, tmp, steps, seconds, err, errlen) != 0) goto fail;

    {
        char old[PATH_MAX + 64] = "";
        struct stat sb;
        if (lstat(c->out, &sb) == 0) {
            if (!c->overwrite) {
                snprintf(err, errlen, "%s already exists (the finished model is left in %s); "
                         "pass --overwrite to replace it", c->out, tmp);
                return -1;
            }
            snprintf(old, sizeof old, "%s.old-%ld", c->out, (long)getpid());
            if (rename(c->out, old) != 0) {
                snprintf(err, errlen, "cannot move the existing %s aside: %s", c->out,
                         strerror(errno));
                goto fail;
            }
        }
        if (rename(tmp, c->out) != 0) {
            int e = errno;
            if (old[0]) rename(old, c->out);
            snprintf(err, errlen, "cannot move %s to %s: %s", tmp, c->out, strerror(e));
            goto fail;
        }
        if (old[0]) remove_flat_dir(old);
    }
    return 0;
fail:
    remove_flat_dir(tmp);
    return -1;
}

static void history_add(Run *r, long step, double loss) {
    size_t n = strlen(r->history);
    if (n + 40 < sizeof r->history)
        snprintf(r->history + n, sizeof r->history - n, "%s%ld:%.6f", n ? "," : "", step, loss);
}

int pretrain_run(const PretrainConfig *c, const PretrainCallbacks *cb, char *err, size_t errlen) {
    Run r;
    memset(&r, 0, sizeof(r));
    if ((size_t)snprintf(r.partial, sizeof r.partial, "%s.partial", c->out) >= sizeof r.partial) {
        snprintf(err, errlen, "--out %s: path too long", c->out);
        return -1;
    }
    struct stat sb;
    if (c->out[0] && lstat(c->out, &sb) == 0 && !c->overwrite) {
        snprintf(err, errlen, "--out %s already exists; pass --overwrite to replace it, or choose "
                 "another directory", c->out);
        return -1;
    }
    if (setup(&r, c, cb, err, errlen) != 0) { run_free(&r); return -1; }
    Model *m = r.model;
    const Backend *be = m->be;
    const int B = c->batch_size;
    const long total = c->steps;
    const long warmup = (long)(c->warmup_ratio * total);
    const long eval_every = c->eval_every > 0 ? c->eval_every : (total >= 10 ? total / 10 : 1);
    const int pad = tokenizer_pad_id(r.tok), mask_id = tokenizer_mask_id(r.tok);

    long start = 0;
    char state[PATH_MAX + 32];
    snprintf(state, sizeof state, "%s/state.safetensors", r.partial);
    if (is_file(state)) {
        if (!c->resume) {
            snprintf(err, errlen, "%s holds a checkpoint of an unfinished run; pass --resume to "
                     "continue it, or delete %s to start over", state, r.partial);
            run_free(&r);
            return -1;
        }
        start = checkpoint_load(&r, err, errlen);
        if (start < 0) { run_free(&r); return -1; }
        if (start > total) {
            snprintf(err, errlen, "%s is at step %ld, past --steps %ld", state, start, total);
            run_free(&r);
            return -1;
        }
        info(cb, "resuming from %s at step %ld of %ld (epoch %ld, %.0f s of training before)",
             state, start, total, r.epoch, r.prior_seconds);
    } else if (c->resume) {
        info(cb, "no checkpoint at %s: starting from step 0", state);
    }
    epoch_order(&r, c->seed);

    PretrainDone done;
    memset(&done, 0, sizeof(done));
    done.params = param_list_numel(&r.params, GROUP_LOWER);
    done.heldout_loss = NAN;
    done.final_train_loss = NAN;
    snprintf(done.out, sizeof done.out, "%s", c->out);
    int rc = 0;
    double t0 = now_s();
    double train_time = 0.0; /* this process's training time, evaluations excluded */
    if (start == 0) {
        /* step 0: the untrained model, ≈ ln(vocab): the curve's anchor */
        PretrainEval ev = {.step = 0};
        if (evaluate(&r, c, &ev, err, errlen) != 0) { run_free(&r); return -1; }
        history_add(&r, 0, ev.loss);
        done.heldout_loss = ev.loss;
        if (cb && cb->on_eval) cb->on_eval(cb->ctx, &ev);
    }
    int *bidx = malloc(sizeof(int) * B);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)B * c->seq_len);
    uint8_t *mk = malloc((size_t)c->seq_len);
    if (!bidx || !labels || !mk) {
        free(bidx); free(labels); free(mk);
        snprintf(err, errlen, "out of memory");
        run_free(&r);
        return -1;
    }
    long step = start;
    while (step < total && rc == 0) {
        step++;
        double ts = now_s();
        /* B sequences from the epoch stream; an epoch's end continues into
         * the next epoch's order, so every batch is full */
        for (int i = 0; i < B; i++) {
            if (r.cursor == r.n_train) {
                r.epoch++;
                r.cursor = 0;
                epoch_order(&r, c->seed);
            }
            bidx[i] = r.order[r.cursor++];
        }
        Batch bt;
        if (build_batch(&r, r.seqs.ids, bidx, B, pad, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        uint64_t mrng = rng_derive(c->seed, PURPOSE_STEP_MASK + (uint64_t)step);
        long tokens = 0;
        for (int b = 0; b < B && rc == 0; b++) {
            int len = r.seqs.len[bidx[b]];
            int32_t *row = bt.ids + (size_t)b * bt.T;
            tokens += len;
            for (int t = len; t < bt.T; t++) labels[(size_t)b * bt.T + t] = -1;
            if (r.causal) {
                causal_labels(row, labels + (size_t)b * bt.T, len);
                continue;
            }
            for (int t = 0; t < len; t++) mk[t] = !r.special[row[t]];
            if (mlm_mask_sequence(row, labels + (size_t)b * bt.T, mk, len, c->mask_prob, mask_id,
                                  r.mc.vocab_size, &mrng) < 0) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            }
            for (int t = len; t < bt.T; t++) labels[(size_t)b * bt.T + t] = -1;
        }
        if (rc != 0) { batch_free(&bt); break; }
        uint64_t step_seed = rng_derive(c->seed, PURPOSE_STEP_DROPOUT + (uint64_t)step);
        model_zero_grad(m);
        mlm_head_zero_grad(r.head);
        double lsum;
        int pred;
        rc = mlm_batch_loss(m, r.head, &bt, labels, 1, step_seed, 1, &lsum, &pred, err, errlen);
        batch_free(&bt);
        if (rc != 0) break;
        double loss = pred ? lsum / pred : 0.0;
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss became %f at step %ld (lr %g); stopping instead of training "
                     "on garbage", loss, step, c->lr);
            rc = -1;
            break;
        }
        double gn = clip_grad_norm(be, &r.params, GROUP_LOWER, c->max_grad_norm);
        float lr = lr_linear_schedule(c->lr, step - 1, warmup, total);
        adamw_step(&r.opt, lr);
        done.final_train_loss = loss;
        double te = now_s();
        train_time += te - ts;
        long done_here = step - start;
        PretrainStep si = {.step = step, .total_steps = total, .loss = loss, .predicted = pred,
                           .lr = lr, .grad_norm = gn, .tokens_per_s = tokens / (te - ts),
                           .step_seconds = te - ts, .elapsed_seconds = train_time,
                           .eta_seconds = train_time / done_here * (total - step)};
        if (cb && cb->on_step) cb->on_step(cb->ctx, &si);

        if (step % eval_every == 0 || step == total) {
            PretrainEval ev = {.step = step};
            if (evaluate(&r, c, &ev, err, errlen) != 0) { rc = -1; break; }
            history_add(&r, step, ev.loss);
            done.heldout_loss = ev.loss;
            if (cb && cb->on_eval) cb->on_eval(cb->ctx, &ev);
        }
        int stop_here = c->stop_after > 0 && step == c->stop_after && step < total;
        if (step < total &&
            (stop_here || (c->checkpoint_every > 0 && step % c->checkpoint_every == 0))) {
            double tc = now_s();
            if (checkpoint_save(&r, step, r.prior_seconds + train_time, err, errlen) != 0) {
                rc = -1;
                break;
            }
            info(cb, "checkpoint at step %ld written to %s (%.1f s); --resume continues from it",
                 step, r.partial, now_s() - tc);
        }
        if (stop_here) {
            done.stopped = 1;
            snprintf(done.out, sizeof done.out, "%s", r.partial);
            break;
        }
    }
    free(bidx);
    free(labels);
    free(mk);
    done.steps = step;
    if (rc == 0 && !done.stopped) {
        if (write_model_dir(&r, c, step, r.prior_seconds + train_time, err, errlen) != 0) {
            rc = -1;
        } else {
            /* the finished model supersedes the checkpoint */
            remove_flat_dir(r.partial);
            info(cb, "wrote %s (config.json, model.safetensors, tokenizer files)", c->out);
        }
    }
    done.seconds = now_s() - t0;
    if (rc == 0 && cb && cb->on_done) cb->on_done(cb->ctx, &done);
    run_free(&r);
    return rc;
}
