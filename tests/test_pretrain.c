/* Masked-LM pretraining: the masking recipe's statistics, finite-difference
 * checks of the MLM head + encoder gradient, the untrained loss (ln vocab),
 * a short run that lowers the held-out loss, the written Hugging Face
 * directory (names, reload, transformers' loss on the same batch), resume
 * equal to never stopping, GLUE corpora from the train split only, and the
 * refusals. Tokenizers are fixtures made here (a small WordPiece vocabulary);
 * the RoBERTa case uses roberta-base's tokenizer from BILORA_ASSETS when set. */
#include "engine/pretrain.h"

#include "datasets/tokenizer.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the repository root (the runner's working directory), for the venv */
static char start_cwd[PATH_MAX];

/* ---------------------------------------------------------------- fixtures */

static const char *const WORDS[] = {
    "the", "a", "cat", "dog", "bird", "fish", "cats", "dogs", "birds", "sees", "chases", "likes",
    "see", "chase", "like", "small", "big", "red", "green", "happy", "and", "but", "today",
    "quickly", "slowly", "house", "tree", "river", "in", "near", "on", "runs", "run", "sleeps",
    "sleep", ".", ",", "very",
};
#define N_WORDS (int)(sizeof(WORDS) / sizeof(WORDS[0]))
#define FILLER 150 /* unused vocabulary rows, so ln(vocab) is not tiny */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* A WordPiece tokenizer directory: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4,
 * the words, then filler tokens. Returns the vocabulary size. */
static int make_tokenizer(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 0; i < N_WORDS; i++) fprintf(f, "%s\n", WORDS[i]);
    for (int i = 0; i < FILLER; i++) fprintf(f, "filler%d\n", i);
    fclose(f);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    write_file(path, "{\"do_lower_case\": true, \"tokenizer_class\": \"BertTokenizer\", "
                     "\"model_max_length\": 512}\n");
    return 5 + N_WORDS + FILLER;
}

/* A toy language with structure an MLM can learn: agreement between the
 * subject's number and the verb, determiners before nouns, "." at the end. */
static void make_corpus(const char *path, int lines, uint64_t seed) {
    static const char *sg[] = {"cat", "dog", "bird", "fish"}, *pl[] = {"cats", "dogs", "birds"};
    static const char *vsg[] = {"sees", "chases", "likes"}, *vpl[] = {"see", "chase", "like"};
    static const char *adj[] = {"small", "big", "red", "green", "happy"};
    static const char *place[] = {"house", "tree", "river"}, *prep[] = {"in", "near", "on"};
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    uint64_t r = seed;
    for (int i = 0; i < lines; i++) {
        int plural = (int)rng_below(&r, 2);
        if (!plural) fprintf(f, "the %s %s %s a %s %s", adj[rng_below(&r, 5)], sg[rng_below(&r, 4)],
                             vsg[rng_below(&r, 3)], adj[rng_below(&r, 5)], sg[rng_below(&r, 4)]);
        else fprintf(f, "the %s %s the %s", pl[rng_below(&r, 3)], vpl[rng_below(&r, 3)],
                     pl[rng_below(&r, 3)]);
        if (rng_below(&r, 2)) fprintf(f, " %s the %s", prep[rng_below(&r, 3)], place[rng_below(&r, 3)]);
        fprintf(f, " .\n");
        if (rng_below(&r, 8) == 0) fprintf(f, "\n"); /* paragraph breaks are normal */
    }
    fclose(f);
}

/* config.json of a tiny encoder for the fixture vocabulary */
static void make_config(const char *path, const char *type, int vocab, float dropout) {
    int rob = strcmp(type, "roberta") == 0;
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": 32, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 64, "
             "\"max_position_embeddings\": %d, \"type_vocab_size\": %d, \"pad_token_id\": %d, "
             "\"layer_norm_eps\": 1e-12, \"hidden_dropout_prob\": %g, "
             "\"attention_probs_dropout_prob\": %g, \"hidden_act\": \"gelu\"}\n",
             type, vocab, rob ? 66 : 64, rob ? 1 : 2, rob ? 1 : 0, dropout, dropout);
    write_file(path, text);
}

typedef struct {
    char root[256], tok[512], corpus[512], config[512], out[512];
    int vocab;
} Fixture;

static void fixture_make(Fixture *fx, int lines) {
    fixture_tmpdir(fx->root);
    snprintf(fx->tok, sizeof fx->tok, "%s/tok", fx->root);
    mkdir(fx->tok, 0755);
    fx->vocab = make_tokenizer(fx->tok);
    snprintf(fx->corpus, sizeof fx->corpus, "%s/corpus.txt", fx->root);
    make_corpus(fx->corpus, lines, 5);
    snprintf(fx->config, sizeof fx->config, "%s/tiny.json", fx->root);
    make_config(fx->config, "bert", fx->vocab, 0.0f);
    snprintf(fx->out, sizeof fx->out, "%s/model", fx->root);
}

static void base_config(PretrainConfig *c, const Fixture *fx, long steps) {
    pretrain_config_defaults(c);
    c->arch[0] = 0;
    snprintf(c->config, sizeof c->config, "%s", fx->config);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s", fx->tok);
    snprintf(c->corpus[0], sizeof c->corpus[0], "%s", fx->corpus);
    c->n_corpus = 1;
    snprintf(c->out, sizeof c->out, "%s", fx->out);
    c->steps = steps;
    c->batch_size = 8;
    c->seq_len = 32;
    c->lr = 5e-3f;
    c->holdout_ratio = 0.1f;
    c->dropout = -1.0f; /* keep the fixture config's */
    c->checkpoint_every = 0;
    c->seed = 11;
}

/* Records what a run reports. */
typedef struct {
    double loss[512];
    long nsteps;
    double eval_loss[64];
    long eval_step[64];
    int nevals;
    PretrainDone done;
    char infos[8192];
} Log;

static void log_info(void *ctx, const char *m) {
    Log *l = ctx;
    size_t n = strlen(l->infos);
    snprintf(l->infos + n, sizeof l->infos - n, "%s\n", m);
}
static void log_step(void *ctx, const PretrainStep *s) {
    Log *l = ctx;
    if (s->step >= 1 && s->step <= 512) l->loss[s->step - 1] = s->loss;
    l->nsteps = s->step;
}
static void log_eval(void *ctx, const PretrainEval *e) {
    Log *l = ctx;
    if (l->nevals < 64) {
        l->eval_loss[l->nevals] = e->loss;
        l->eval_step[l->nevals++] = e->step;
    }
}
static void log_done(void *ctx, const PretrainDone *d) { ((Log *)ctx)->done = *d; }

static int run(const PretrainConfig *c, Log *log, char *err, size_t errlen) {
    memset(log, 0, sizeof(*log));
    PretrainCallbacks cb = {.ctx = log, .on_info = log_info, .on_step = log_step,
                            .on_eval = log_eval, .on_done = log_done};
    return pretrain_run(c, &cb, err, errlen);
}

/* ---------------------------------------------------------------- masking */

START_TEST(masking_statistics) {
    const int n = 128, V = 1000, MASK = 4, seqs = 4000;
    int32_t ids[128], orig[128], labels[128];
    uint8_t mk[128];
    uint64_t rng = 99;
    long maskable = 0, chosen = 0, to_mask = 0, to_random = 0, kept = 0;
    long first_pos = 0, last_pos = 0;
    for (int s = 0; s < seqs; s++) {
        /* [CLS] text [SEP] text [SEP] padding, the text's length varying */
        int len = 20 + (int)rng_below(&rng, n - 20);
        int mid = len / 2;
        int cand = 0;
        for (int i = 0; i < n; i++) {
            int special = i == 0 || i == mid || i == len - 1 || i >= len;
            ids[i] = i == 0 ? 2 : (i == mid || i == len - 1) ? 3 : i >= len ? 0
                                                                           : 10 + (int)rng_below(&rng, V - 10);
            orig[i] = ids[i];
            mk[i] = !special;
            cand += !special;
        }
        int k = mlm_mask_sequence(ids, labels, mk, n, 0.15f, MASK, V, &rng);
        int want = (int)lround(0.15 * cand);
        ck_assert_int_eq(k, want < 1 ? 1 : want);
        maskable += cand;
        int seen = 0;
        for (int i = 0; i < n; i++) {
            if (!mk[i]) {
                ck_assert_msg(labels[i] == -1 && ids[i] == orig[i], "special position %d changed", i);
                continue;
            }
            if (labels[i] < 0) {
                ck_assert_int_eq(ids[i], orig[i]);
                continue;
            }
            seen++;
            ck_assert_int_eq(labels[i], orig[i]);
            if (ids[i] == MASK) to_mask++;
            else if (ids[i] == orig[i]) kept++;
            else to_random++;
            if (i == 1) first_pos++;
            if (i == mid - 1) last_pos++;
        }
        ck_assert_int_eq(seen, k);
        chosen += k;
    }
    double frac = (double)chosen / maskable;
    ck_assert_msg(fabs(frac - 0.15) < 0.003, "chosen fraction %.4f", frac);
    double pm = (double)to_mask / chosen, pr = (double)to_random / chosen, pk = (double)kept / chosen;
    /* ~50k chosen tokens: the binomial standard deviation is ~0.002 */
    ck_assert_msg(fabs(pm - 0.8) < 0.01, "[MASK] fraction %.4f", pm);
    ck_assert_msg(fabs(pr - 0.1) < 0.01, "random fraction %.4f", pr);
    ck_assert_msg(fabs(pk - 0.1) < 0.01, "kept fraction %.4f", pk);
    /* positions are chosen uniformly: the first and the last text token of
     * segment A are picked as often as the average */
    ck_assert_msg(fabs((double)first_pos / seqs - 0.15) < 0.03, "first position %ld", first_pos);
    ck_assert_msg(fabs((double)last_pos / seqs - 0.15) < 0.03, "last position %ld", last_pos);

    /* edge cases: nothing maskable; one maskable token */
    uint8_t none[4] = {0, 0, 0, 0}, one[4] = {0, 0, 1, 0};
    int32_t x[4] = {2, 7, 8, 3}, lb[4];
    ck_assert_int_eq(mlm_mask_sequence(x, lb, none, 4, 0.15f, MASK, V, &rng), 0);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(lb[i], -1);
    ck_assert_int_eq(mlm_mask_sequence(x, lb, one, 4, 0.15f, MASK, V, &rng), 1);
    ck_assert_int_eq(lb[2], 8);
    ck_assert_int_eq(lb[0] + lb[1] + lb[3], -3);
}
END_TEST

/* ---------------------------------------------------------------- gradients */

static ModelConfig tiny_config(const char *type, float dropout) {
    int rob = strcmp(type, "roberta") == 0;
    ModelConfig c = {.vocab_size = 23, .hidden_size = 8, .num_hidden_layers = 2,
                     .num_attention_heads = 2, .intermediate_size = 12,
                     .max_position_embeddings = 20, .type_vocab_size = rob ? 1 : 2,
                     .pad_token_id = rob ? 1 : 0, .layer_norm_eps = 1e-12f,
                     .hidden_dropout_prob = dropout, .attention_probs_dropout_prob = dropout};
    snprintf(c.model_type, sizeof c.model_type, "%s", type);
    snprintf(c.hidden_act, sizeof c.hidden_act, "gelu");
    return c;
}

static double mlm_loss(Model *m, MlmHead *h, const Batch *b, const int32_t *labels, int train,
                       uint64_t seed, int backward) {
    double sum;
    int pred;
    char err[512];
    ck_assert_msg(mlm_batch_loss(m, h, b, labels, train, seed, backward, &sum, &pred, err,
                                 sizeof err) == 0, "%s", err);
    ck_assert_int_gt(pred, 0);
    return sum / pred;
}

/* Sets every tensor to values large enough that finite differences see
 * every path (Hugging Face's 0.02 would hide the head behind rounding). */
static void randomise(const ParamList *l, uint64_t seed) {
    uint64_t r = seed;
    for (int i = 0; i < l->n; i++) {
        ParamTensor *p = &l->t[i];
        int is_gain = strstr(p->name, "LayerNorm.weight") || strstr(p->name, "layer_norm.weight");
        for (size_t k = 0; k < p->numel; k++)
            p->data[k] = (float)(is_gain ? 1.0 + 0.2 * rng_normal(&r) : 0.4 * rng_normal(&r));
    }
}

/* Central differences against p->grad for 4 elements of every tensor of
 * `all`; the word embeddings (wte) are probed at an input row (the model
 * path) and a label row (the tied decoder path) besides random rows, wpe at
 * used positions. Returns how many elements were checked. */
static int fd_check(const ParamList *all, Model *m, MlmHead *h, const Batch *b,
                    const int32_t *ids, const int32_t *labels, uint64_t seed, const char *what) {
    int checked = 0;
    uint64_t pick = 9;
    const float eps = 1e-3f;
    for (int i = 0; i < all->n; i++) {
        ParamTensor *p = &all->t[i];
        int emb = strstr(p->name, "word_embeddings") || strcmp(p->name, "wte.weight") == 0;
        for (int s = 0; s < 4; s++) {
            size_t k = (size_t)rng_below(&pick, p->numel);
            if (emb && s == 0) k = (size_t)ids[2] * p->shape[1] + 1;
            if (emb && s == 1) k = (size_t)labels[4] * p->shape[1] + 3;
            if (strcmp(p->name, "wpe.weight") == 0) k = (size_t)s * p->shape[1] + s;
            float old = p->data[k];
            p->data[k] = old + eps;
            double lp = mlm_loss(m, h, b, labels, 1, seed, 0);
            p->data[k] = old - eps;
            double lm = mlm_loss(m, h, b, labels, 1, seed, 0);
            p->data[k] = old;
            double num = (lp - lm) / (2.0 * eps), an = p->grad[k];
            double tol = 2e-2 * fmax(fabs(num), fabs(an)) + 5e-4;
            ck_assert_msg(fabs(num - an) <= tol, "%s: %s[%zu] analytic %.6g numeric %.6g", what,
                          p->name, k, an, num);
            checked++;
        }
    }
    return checked;
}

static void grad_check(const char *type, float dropout) {
    ModelConfig cfg = tiny_config(type, dropout);
    int rob = strcmp(type, "roberta") == 0;
    ModelOptions o = {.config = &cfg, .random_init = 1, .train_base = 1, .num_labels = 0,
                      .max_batch = 3, .max_seq = 7, .init_seed = 3};
    Model *m;
    MlmHead *h;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mlm_head_create(&h, m, 8, 5, err, sizeof err) == 0, "%s", err);
    randomise(&m->params, 17);
    randomise(mlm_head_params(h), 19);
    int pad = rob ? 1 : 0;
    /* 3 sequences of 7, the last two padded; 6 predicted positions, one of
     * them a random replacement and one kept, as masking makes them */
    int32_t ids[21] = {2, 4, 7, 9, 4, 11, 3, 2, 8, 4, 3, 5, pad, pad, 2, 13, 17, 19, 4, 3, pad};
    int32_t types[21] = {0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0};
    float mask[21] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0};
    int32_t labels[21];
    for (int i = 0; i < 21; i++) labels[i] = -1;
    labels[1] = 6; labels[4] = 12; labels[5] = 11; labels[9] = 20; labels[16] = 22; labels[18] = 14;
    if (rob) for (int i = 0; i < 21; i++) types[i] = 0;
    Batch b = {.B = 3, .T = 7, .ids = ids, .type_ids = types, .mask = mask};

    /* all trained tensors: the model's (pooler excluded: no gradient path)
     * and the head's */
    ParamList all = {0};
    for (int i = 0; i < m->params.n; i++)
        if (strncmp(m->params.t[i].name, "pooler.", 7) != 0) {
            ParamTensor *p = &m->params.t[i];
            param_list_add(&all, p->name, p->data, p->grad, p->ndim, p->shape[0], p->shape[1],
                           p->group, p->decay);
        }
    for (int i = 0; i < mlm_head_params(h)->n; i++) {
        const ParamTensor *p = &mlm_head_params(h)->t[i];
        param_list_add(&all, p->name, p->data, p->grad, p->ndim, p->shape[0], p->shape[1],
                       p->group, p->decay);
    }
    const uint64_t seed = 77;
    model_zero_grad(m);
    mlm_head_zero_grad(h);
    mlm_loss(m, h, &b, labels, 1, seed, 1);
    char what[64];
    snprintf(what, sizeof what, "%s dropout %g", type, dropout);
    int checked = fd_check(&all, m, h, &b, ids, labels, seed, what);
    ck_assert_int_gt(checked, 150);
    /* the head's tensors are named as Hugging Face's checkpoints name them */
    ck_assert_ptr_nonnull(param_list_find(mlm_head_params(h),
                                          rob ? "lm_head.dense.weight"
                                              : "cls.predictions.transform.dense.weight"));
    ck_assert_ptr_nonnull(param_list_find(mlm_head_params(h),
                                          rob ? "lm_head.bias" : "cls.predictions.bias"));
    param_list_free(&all);
    mlm_head_free(h);
    model_free(m);
}

/* Causal LM (gpt2): the decoder and the tied LM head (logits = h Eᵀ), every
 * tensor, labels the next tokens of 3 sequences, padding ignored. */
static void grad_check_gpt2(float dropout) {
    ModelConfig cfg = tiny_config("bert", dropout);
    snprintf(cfg.model_type, sizeof cfg.model_type, "gpt2");
    snprintf(cfg.hidden_act, sizeof cfg.hidden_act, "gelu_new");
    cfg.type_vocab_size = 0;
    cfg.pad_token_id = -1;
    cfg.layer_norm_eps = 1e-5f;
    ModelOptions o = {.config = &cfg, .random_init = 1, .train_base = 1, .num_labels = 0,
                      .max_batch = 3, .max_seq = 7, .init_seed = 3};
    Model *m;
    MlmHead *h;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mlm_head_create(&h, m, 21, 5, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(mlm_head_params(h)->n, 0); /* tied: no tensors of its own */
    randomise(&m->params, 17);
    for (int i = 0; i < m->params.n; i++) { /* LayerNorm gains near 1 */
        ParamTensor *p = &m->params.t[i];
        if (p->ndim == 1 && strstr(p->name, "ln_") && strstr(p->name, ".weight"))
            for (size_t k = 0; k < p->numel; k++) p->data[k] += 1.0f;
    }
    int32_t ids[21] = {2, 4, 7, 9, 4, 11, 3, 2, 8, 4, 3, 5, 0, 0, 2, 13, 17, 19, 4, 3, 0};
    float mask[21] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0};
    int lens[3] = {7, 5, 6};
    int32_t labels[21];
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 7; t++)
            labels[b * 7 + t] = t + 1 < lens[b] ? ids[b * 7 + t + 1] : -1;
    Batch b = {.B = 3, .T = 7, .ids = ids, .mask = mask};
    const uint64_t seed = 77;
    model_zero_grad(m);
    mlm_loss(m, h, &b, labels, 1, seed, 1);
    char what[64];
    snprintf(what, sizeof what, "gpt2 dropout %g", dropout);
    int checked = fd_check(&m->params, m, h, &b, ids, labels, seed, what);
    ck_assert_int_gt(checked, 100);
    mlm_head_free(h);
    model_free(m);
}
START_TEST(grad_gpt2_causal_lm) {
    grad_check_gpt2(0.0f);
    grad_check_gpt2(0.1f);
}
END_TEST

START_TEST(grad_bert) { grad_check("bert", 0.0f); }
END_TEST
START_TEST(grad_bert_dropout) { grad_check("bert", 0.1f); }
END_TEST
START_TEST(grad_roberta) { grad_check("roberta", 0.0f); }
END_TEST

/* An untrained model (Hugging Face's initialisation) predicts nearly
 * uniformly: its MLM loss is ln(vocab). */
START_TEST(fresh_loss_is_ln_vocab) {
    const int V = 5000;
    ModelConfig cfg;
    char err[512];
    ck_assert_msg(pretrain_size_config(&cfg, "bert", "tiny", V, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.num_hidden_layers, 2);
    ck_assert_int_eq(cfg.hidden_size, 128);
    ck_assert_int_eq(cfg.intermediate_size, 512);
    ModelOptions o = {.config = &cfg, .random_init = 1, .train_base = 1, .max_batch = 4,
                      .max_seq = 64, .init_seed = 1};
    Model *m;
    MlmHead *h;
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mlm_head_create(&h, m, 64, 1, err, sizeof err) == 0, "%s", err);
    int32_t ids[256], types[256] = {0}, labels[256];
    float mask[256];
    uint8_t mk[64];
    uint64_t r = 3;
    for (int b = 0; b < 4; b++) {
        for (int t = 0; t < 64; t++) {
            ids[b * 64 + t] = t == 0 ? 101 : t == 63 ? 102 : 1000 + (int)rng_below(&r, V - 1000);
            mk[t] = t != 0 && t != 63;
            mask[b * 64 + t] = 1.0f;
        }
        mlm_mask_sequence(ids + b * 64, labels + b * 64, mk, 64, 0.15f, 103, V, &r);
    }
    Batch bt = {.B = 4, .T = 64, .ids = ids, .type_ids = types, .mask = mask};
    double loss = mlm_loss(m, h, &bt, labels, 0, 0, 0);
    ck_assert_msg(fabs(loss - log((double)V)) < 0.1, "fresh loss %.4f, ln(V) = %.4f", loss,
                  log((double)V));
    mlm_head_free(h);
    model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- runs */

START_TEST(short_run_lowers_heldout_loss) {
    Fixture fx;
    fixture_make(&fx, 600);
    PretrainConfig c;
    base_config(&c, &fx, 150);
    c.eval_every = 25;
    Log lg;
    char err[2048];
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(lg.nsteps, 150);
    ck_assert_int_ge(lg.nevals, 7);
    ck_assert_int_eq(lg.eval_step[0], 0);
    double first = lg.eval_loss[0], last = lg.eval_loss[lg.nevals - 1];
    /* the untrained model is at ln(vocab); the toy language is learnable */
    ck_assert_msg(fabs(first - log((double)fx.vocab)) < 0.3, "step-0 loss %.3f vs ln V %.3f", first,
                  log((double)fx.vocab));
    char curve[1024] = "";
    for (int i = 0; i < lg.nevals; i++)
        snprintf(curve + strlen(curve), sizeof curve - strlen(curve), " %ld:%.3f", lg.eval_step[i],
                 lg.eval_loss[i]);
    /* From ln(193) = 5.26 to the toy language's unigram entropy (~2.8) in a
     * few dozen steps; using the context comes later (transformers'
     * BertForMaskedLM, same sizes and schedule, plateaus there too). */
    ck_assert_msg(last < first - 2.0 && last < 3.0, "held-out loss by step:%s", curve);
    for (int i = 1; i < lg.nevals; i++)
        ck_assert_msg(lg.eval_loss[i] < first - 1.5, "held-out loss by step:%s", curve);
    ck_assert_msg(isfinite(lg.done.heldout_loss) && lg.done.heldout_loss == last, "done %.4f",
                  lg.done.heldout_loss);
    ck_assert_ptr_nonnull(strstr(lg.infos, "held out"));
    fixture_rmdir(fx.root);
}
END_TEST

/* A masked batch of two corpus sentences (as pairs) for the reload check. */
static void sample_batch(const Tokenizer *tok, Batch *b, int32_t *labels, int cap) {
    static const char *pairs[2][2] = {{"the big cat sees a small dog .", "the dogs like the cats ."},
                                      {"the birds chase the cats near the river .", NULL}};
    int32_t *ids[2], *types[2];
    int n[2], T = 0;
    char err[256];
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(tokenizer_encode(tok, pairs[i][0], pairs[i][1], 0, &ids[i], &types[i], &n[i],
                                       err, sizeof err) == 0, "%s", err);
        if (n[i] > T) T = n[i];
    }
    ck_assert_int_le(2 * T, cap);
    b->B = 2;
    b->T = T;
    b->ids = calloc(2 * T, sizeof(int32_t));
    b->type_ids = calloc(2 * T, sizeof(int32_t));
    b->mask = calloc(2 * T, sizeof(float));
    b->labels = NULL;
    uint64_t r = 1234;
    int pad = tokenizer_pad_id(tok);
    for (int i = 0; i < 2; i++) {
        uint8_t mk[128];
        for (int t = 0; t < T; t++) {
            int in = t < n[i];
            b->ids[i * T + t] = in ? ids[i][t] : pad;
            b->type_ids[i * T + t] = in ? types[i][t] : 0;
            b->mask[i * T + t] = in;
            int id = b->ids[i * T + t];
            mk[t] = in && id != tokenizer_cls_id(tok) && id != tokenizer_sep_id(tok);
        }
        /* 40%: more predicted positions make a sharper comparison */
        mlm_mask_sequence(b->ids + i * T, labels + i * T, mk, T, 0.4f, tokenizer_mask_id(tok),
                          tokenizer_vocab_size(tok), &r);
        free(ids[i]);
        free(types[i]);
    }
}

static void json_ints(FILE *f, const char *key, const int32_t *x, int B, int T, int label) {
    fprintf(f, "\"%s\": [", key);
    for (int b = 0; b < B; b++) {
        fprintf(f, "%s[", b ? ", " : "");
        for (int t = 0; t < T; t++) fprintf(f, "%s%d", t ? ", " : "", label && x[b * T + t] < 0 ? -100 : x[b * T + t]);
        fprintf(f, "]");
    }
    fprintf(f, "], ");
}

/* Checks a written directory: config, tensor names, tokenizer files, reload
 * by model_load (base model and with a classification head), the MLM head
 * from the file, and, where the project's venv exists, transformers'
 * AutoModelForMaskedLM on the same batch. */
static void check_written(const char *dir, const char *type, int layers) {
    int rob = strcmp(type, "roberta") == 0;
    char path[1024], err[2048];
    /* config.json: the masked-LM architecture */
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cJSON *cj = cJSON_Parse(text);
    ck_assert_ptr_nonnull(cj);
    const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "architectures"), 0);
    const char *want_arch = rob ? "RobertaForMaskedLM" : "BertForMaskedLM";
    ck_assert_msg(cJSON_IsString(arch) && strcmp(arch->valuestring, want_arch) == 0, "%s", text);
    cJSON_Delete(cj);
    ModelConfig mc;
    ck_assert_msg(model_config_load(&mc, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(mc.model_type, type);

    /* model.safetensors: exactly BertForMaskedLM's / RobertaForMaskedLM's names */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    const char *prefix = rob ? "roberta." : "bert.";
    const char *head[] = {"cls.predictions.bias", "cls.predictions.transform.dense.weight",
                          "cls.predictions.transform.dense.bias",
                          "cls.predictions.transform.LayerNorm.weight",
                          "cls.predictions.transform.LayerNorm.bias"};
    const char *rhead[] = {"lm_head.bias", "lm_head.dense.weight", "lm_head.dense.bias",
                           "lm_head.layer_norm.weight", "lm_head.layer_norm.bias"};
    for (int i = 0; i < 5; i++) ck_assert_ptr_nonnull(st_find(&st, rob ? rhead[i] : head[i]));
    for (int i = 0; i < st.n; i++) {
        const char *nm = st.tensors[i].name;
        int ok = strncmp(nm, prefix, strlen(prefix)) == 0 ||
                 strncmp(nm, rob ? "lm_head." : "cls.predictions.", rob ? 8 : 16) == 0;
        ck_assert_msg(ok, "unexpected tensor name %s", nm);
        ck_assert_msg(!strstr(nm, "pooler") && !strstr(nm, "decoder"), "%s is not in %s's file",
                      nm, want_arch);
    }
    /* 5 embedding tensors, 16 per layer, 5 head tensors */
    ck_assert_int_eq(st.n, 5 + 16 * layers + 5);
    ck_assert_ptr_nonnull(strstr(st.metadata_json ? st.metadata_json : "", "\"pt\""));
    st_close(&st);

    /* the tokenizer files came along */
    Tokenizer *tok;
    ck_assert_msg(tokenizer_load(&tok, dir, type, err, sizeof err) == 0, "%s", err);

    /* reload: as a base model for fine-tuning, and as the masked LM */
    Model *m;
    ModelOptions cls = {.model_dir = dir, .num_labels = 2, .max_batch = 2, .max_seq = 32,
                        .adapter = {.rank = 2, .form = ADAPTER_LORA, .alpha = 4,
                                    .targets = TARGET_QUERY | TARGET_VALUE}};
    ck_assert_msg(model_load(&m, backend_cpu(), &cls, err, sizeof err) == 0, "%s", err);
    model_free(m);
    ModelOptions base = {.model_dir = dir, .max_batch = 2, .max_seq = 64};
    ck_assert_msg(model_load(&m, backend_cpu(), &base, err, sizeof err) == 0, "%s", err);
    MlmHead *h;
    ck_assert_msg(mlm_head_create(&h, m, 128, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(mlm_head_load(h, path, err, sizeof err) == 0, "%s", err);
    Batch b;
    int32_t labels[128];
    sample_batch(tok, &b, labels, 128);
    double loss = mlm_loss(m, h, &b, labels, 0, 0, 0);
    ck_assert(isfinite(loss));

    const char *py = getenv("BILORA_PYTHON");
    char venv[PATH_MAX + 32];
    snprintf(venv, sizeof venv, "%s/.venv/bin/python", start_cwd);
    if (!py) py = venv;
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/tests/reference/check_pretrained.py", start_cwd);
    if (access(py, X_OK) != 0 || access(script, R_OK) != 0) {
        fprintf(stderr, "check_written: %s or %s not found, transformers check skipped\n", py,
                script);
    } else {
        char sample[1024];
        snprintf(sample, sizeof sample, "%s.sample.json", dir);
        FILE *sf = fopen(sample, "w");
        ck_assert_ptr_nonnull(sf);
        fprintf(sf, "{");
        json_ints(sf, "input_ids", b.ids, b.B, b.T, 0);
        json_ints(sf, "token_type_ids", b.type_ids, b.B, b.T, 0);
        int32_t am[128];
        for (int i = 0; i < b.B * b.T; i++) am[i] = b.mask[i] != 0.0f;
        json_ints(sf, "attention_mask", am, b.B, b.T, 0);
        json_ints(sf, "labels", labels, b.B, b.T, 1);
        fprintf(sf, "\"loss\": %.9g, \"architecture\": \"%s\", \"mask_id\": %d}\n", loss, want_arch,
                tokenizer_mask_id(tok));
        fclose(sf);
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, script, dir, sample);
        ck_assert_msg(system(cmd) == 0, "transformers disagrees with %s (see above): %s", dir, cmd);
        unlink(sample);
    }
    free(b.ids);
    free(b.type_ids);
    free(b.mask);
    mlm_head_free(h);
    model_free(m);
    tokenizer_free(tok);
}

START_TEST(written_directory_reloads) {
    Fixture fx;
    fixture_make(&fx, 200);
    PretrainConfig c;
    base_config(&c, &fx, 12);
    Log lg;
    char err[2048];
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(lg.done.out, fx.out);
    ck_assert_int_eq(lg.done.stopped, 0);
    check_written(fx.out, "bert", 2);
    /* no temporary or partial directories are left behind */
    char p[600];
    snprintf(p, sizeof p, "%s.partial", fx.out);
    ck_assert_int_ne(access(p, F_OK), 0);
    /* the provenance file records the curve */
    snprintf(p, sizeof p, "%s/bilora_pretrain.json", fx.out);
    ck_assert_int_eq(access(p, R_OK), 0);
    /* a second run will not silently replace the model... */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "--overwrite"), "%s", err);
    /* ...but will when asked */
    c.overwrite = 1;
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    check_written(fx.out, "bert", 2);
    /* --overwrite replaces a model directory only: a folder of the user's
     * (no config.json, or a subfolder) or a file is refused before any
     * step, and left exactly as it was */
    char user[600], f1[700], f2[700];
    snprintf(user, sizeof user, "%s/notes", fx.root);
    snprintf(f1, sizeof f1, "%s/sub", user);
    ck_assert_int_eq(mkdir(user, 0755), 0);
    ck_assert_int_eq(mkdir(f1, 0755), 0);
    snprintf(f1, sizeof f1, "%s/notes.txt", user);
    snprintf(f2, sizeof f2, "%s/sub/keep.txt", user);
    FILE *uf = fopen(f1, "w");
    fputs("important\n", uf);
    fclose(uf);
    uf = fopen(f2, "w");
    fputs("x\n", uf);
    fclose(uf);
    snprintf(c.out, sizeof c.out, "%s", user);
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a model directory") && strstr(err, "no config.json"), "%s", err);
    ck_assert_int_eq(lg.nsteps, 0);
    ck_assert_int_eq(access(f1, R_OK), 0);
    ck_assert_int_eq(access(f2, R_OK), 0);
    snprintf(f2, sizeof f2, "%s/config.json", user); /* config.json, but a subfolder too */
    uf = fopen(f2, "w");
    fputs("{}\n", uf);
    fclose(uf);
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "it holds sub"), "%s", err);
    ck_assert_int_eq(access(f1, R_OK), 0);
    snprintf(c.out, sizeof c.out, "%s", f1); /* a file */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "is not a directory"), "%s", err);
    ck_assert_int_eq(access(f1, R_OK), 0);
    printf("  refused: %s\n", err);
    fixture_rmdir(fx.root);
}
END_TEST

/* RoBERTa with its own byte-level BPE tokenizer (roberta-base's files from
 * the asset root), written as RobertaForMaskedLM. */
START_TEST(roberta_written_directory) {
    char assets[512], tokdir[700];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "roberta_written_directory: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(tokdir, sizeof tokdir, "%s/models/roberta-base", assets);
    char vj[800];
    snprintf(vj, sizeof vj, "%s/vocab.json", tokdir);
    if (access(vj, R_OK) != 0) {
        fprintf(stderr, "roberta_written_directory: %s missing, skipped\n", vj);
        return;
    }
    Fixture fx;
    fixture_make(&fx, 200);
    make_config(fx.config, "roberta", 50265, 0.0f);
    PretrainConfig c;
    base_config(&c, &fx, 4);
    snprintf(c.tokenizer, sizeof c.tokenizer, "%s", tokdir);
    Log lg;
    char err[2048];
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fabs(lg.eval_loss[0] - log(50265.0)) < 0.3, "step-0 loss %.3f",
                  lg.eval_loss[0]);
    check_written(fx.out, "roberta", 2);
    fixture_rmdir(fx.root);
}
END_TEST

/* gpt2 with GPT-2's own tokenizer (the asset root's files): causal-LM
 * pretraining from the toy corpus, written as GPT2LMHeadModel (names, fused
 * Conv1D c_attn), reloaded by model_load, and transformers'
 * GPT2LMHeadModel gives the same next-token loss on the same batch. */
START_TEST(gpt2_written_directory) {
    char assets[512], tokdir[700];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "gpt2_written_directory: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(tokdir, sizeof tokdir, "%s/models/gpt2", assets);
    Fixture fx;
    fixture_make(&fx, 200);
    write_file(fx.config, "{\"model_type\": \"gpt2\", \"vocab_size\": 50257, \"n_embd\": 32, "
                          "\"n_layer\": 2, \"n_head\": 2, \"n_positions\": 64, \"resid_pdrop\": 0.0, "
                          "\"embd_pdrop\": 0.0, \"attn_pdrop\": 0.0, \"activation_function\": "
                          "\"gelu_new\", \"layer_norm_epsilon\": 1e-5}\n");
    PretrainConfig c;
    base_config(&c, &fx, 20);
    snprintf(c.tokenizer, sizeof c.tokenizer, "%s", tokdir);
    c.eval_every = 10;
    Log lg;
    char err[2048];
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(lg.infos, "causal-LM head"));
    /* a fresh decoder predicts nearly uniformly over 50257 tokens; 20 steps
     * on the toy language take it well below */
    ck_assert_msg(fabs(lg.eval_loss[0] - log(50257.0)) < 0.3, "step-0 loss %.3f", lg.eval_loss[0]);
    ck_assert_msg(lg.eval_loss[lg.nevals - 1] < lg.eval_loss[0] - 2.0, "held-out %.3f -> %.3f",
                  lg.eval_loss[0], lg.eval_loss[lg.nevals - 1]);

    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", fx.out);
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    /* wte, wpe, 12 per layer, ln_f; every name under "transformer.", no lm_head (tied) */
    ck_assert_int_eq(st.n, 2 + 12 * 2 + 2);
    for (int i = 0; i < st.n; i++)
        ck_assert_msg(strncmp(st.tensors[i].name, "transformer.", 12) == 0, "%s", st.tensors[i].name);
    const StTensor *qkv = st_find(&st, "transformer.h.1.attn.c_attn.weight");
    ck_assert(qkv && qkv->ndim == 2 && qkv->shape[0] == 32 && qkv->shape[1] == 96);
    const StTensor *fc = st_find(&st, "transformer.h.0.mlp.c_fc.weight");
    ck_assert(fc && fc->shape[0] == 32 && fc->shape[1] == 128); /* Conv1D: [in, out] */
    st_close(&st);

    Tokenizer *tok;
    ck_assert_msg(tokenizer_load(&tok, fx.out, "gpt2", err, sizeof err) == 0, "%s", err);
    Model *m;
    ModelOptions base = {.model_dir = fx.out, .max_batch = 2, .max_seq = 32};
    ck_assert_msg(model_load(&m, backend_cpu(), &base, err, sizeof err) == 0, "%s", err);
    MlmHead *h;
    ck_assert_msg(mlm_head_create(&h, m, 64, 0, err, sizeof err) == 0, "%s", err);
    static const char *lines[2] = {"the big cat sees a small dog .", "the birds chase the cats ."};
    int32_t *ids[2], *types[2];
    int n[2], T = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(tokenizer_encode(tok, lines[i], NULL, 0, &ids[i], &types[i], &n[i], err,
                                       sizeof err) == 0, "%s", err);
        if (n[i] > T) T = n[i];
    }
    int32_t bid[64], labels[64], am[64];
    float mask[64];
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < T; t++) {
            int in = t < n[i];
            bid[i * T + t] = in ? ids[i][t] : tokenizer_pad_id(tok);
            mask[i * T + t] = am[i * T + t] = in;
            labels[i * T + t] = t + 1 < n[i] ? ids[i][t + 1] : -1;
        }
    Batch b = {.B = 2, .T = T, .ids = bid, .mask = mask};
    double loss = mlm_loss(m, h, &b, labels, 0, 0, 0);
    ck_assert(isfinite(loss));
    { /* the model's own LM head (data-to-text fine-tuning) on the same
         targets: the same loss, which transformers checks below */
        ModelOptions lo = base;
        lo.lm_head = 1;
        Model *lm;
        ck_assert_msg(model_load(&lm, backend_cpu(), &lo, err, sizeof err) == 0, "%s", err);
        Batch bt = b;
        bt.targets = labels;
        ck_assert_msg(model_forward(lm, &bt, 0, 0, err, sizeof err) == 0, "%s", err);
        double l2 = model_loss(lm, &bt, 0.0f, NULL);
        fprintf(stderr, "LM loss: pretraining head %.6f, fine-tuning head %.6f\n", loss, l2);
        ck_assert_msg(fabs(l2 - loss) <= 1e-6 * fabs(loss), "%.9g vs %.9g", l2, loss);
        model_free(lm);
    }

    const char *py = getenv("BILORA_PYTHON");
    char venv[PATH_MAX + 32], script[PATH_MAX + 64];
    snprintf(venv, sizeof venv, "%s/.venv/bin/python", start_cwd);
    if (!py) py = venv;
    snprintf(script, sizeof script, "%s/tests/reference/check_pretrained.py", start_cwd);
    if (access(py, X_OK) != 0) {
        fprintf(stderr, "gpt2_written_directory: %s not found, transformers check skipped\n", py);
    } else {
        char sample[1024];
        snprintf(sample, sizeof sample, "%s.sample.json", fx.out);
        FILE *sf = fopen(sample, "w");
        ck_assert_ptr_nonnull(sf);
        fprintf(sf, "{");
        json_ints(sf, "input_ids", bid, 2, T, 0);
        json_ints(sf, "attention_mask", am, 2, T, 0);
        /* transformers shifts the labels itself: the inputs, -100 at padding */
        int32_t hl[64];
        for (int i = 0; i < 2 * T; i++) hl[i] = am[i] ? bid[i] : -1;
        json_ints(sf, "labels", hl, 2, T, 1);
        fprintf(sf, "\"loss\": %.9g, \"architecture\": \"GPT2LMHeadModel\"}\n", loss);
        fclose(sf);
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, script, fx.out, sample);
        ck_assert_msg(system(cmd) == 0, "transformers disagrees with %s (see above): %s", fx.out, cmd);
        unlink(sample);
    }
    for (int i = 0; i < 2; i++) { free(ids[i]); free(types[i]); }
    mlm_head_free(h);
    model_free(m);
    tokenizer_free(tok);
    fixture_rmdir(fx.root);
}
END_TEST

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

START_TEST(resume_equals_uninterrupted) {
    Fixture fx;
    fixture_make(&fx, 60);
    make_config(fx.config, "bert", fx.vocab, 0.1f); /* dropout too: its seeds must resume */
    PretrainConfig c;
    base_config(&c, &fx, 10);
    c.eval_every = 3;
    c.batch_size = 4; /* ~16 training sequences: epochs end within the run */
    Log a, b1, b2;
    char err[2048];
    /* uninterrupted */
    snprintf(c.out, sizeof c.out, "%s/a", fx.root);
    ck_assert_msg(run(&c, &a, err, sizeof err) == 0, "%s", err);
    const char *tr = strstr(a.infos, " to train on");
    ck_assert_ptr_nonnull(tr);
    while (tr > a.infos && tr[-1] != ' ') tr--;
    ck_assert_msg(atoi(tr) < 4 * 10 / 2, "%s", a.infos); /* at least two epochs in 10 steps */
    /* interrupted after step 4, then resumed */
    snprintf(c.out, sizeof c.out, "%s/b", fx.root);
    c.stop_after = 4;
    ck_assert_msg(run(&c, &b1, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(b1.done.stopped, 1);
    ck_assert_int_eq(b1.nsteps, 4);
    ck_assert_msg(strstr(b1.infos, "checkpoint at step 4"), "%s", b1.infos);
    char p[700];
    snprintf(p, sizeof p, "%s/b.partial/state.safetensors", fx.root);
    ck_assert_int_eq(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/b", fx.root);
    ck_assert_int_ne(access(p, F_OK), 0); /* no model until the run finishes */

    /* without --resume the checkpoint is not silently discarded */
    c.stop_after = 0;
    ck_assert_int_eq(run(&c, &b2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "--resume"), "%s", err);
    /* other settings are refused, naming the difference */
    c.resume = 1;
    c.lr = 1e-2f;
    ck_assert_int_eq(run(&c, &b2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "lr=0.005") && strstr(err, "lr=0.01"), "%s", err);
    c.lr = 5e-3f;
    ck_assert_msg(run(&c, &b2, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(strstr(b2.infos, "resuming from"), "%s", b2.infos);
    ck_assert_int_eq(b2.nsteps, 10);
    for (int s = 0; s < 10; s++) {
        double got = s < 4 ? b1.loss[s] : b2.loss[s];
        ck_assert_msg(got == a.loss[s], "step %d: loss %.9g resumed vs %.9g uninterrupted", s + 1,
                      got, a.loss[s]);
    }
    ck_assert_msg(b2.done.heldout_loss == a.done.heldout_loss, "held-out %.9g vs %.9g",
                  b2.done.heldout_loss, a.done.heldout_loss);
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/a/model.safetensors", fx.root);
    snprintf(pb, sizeof pb, "%s/b/model.safetensors", fx.root);
    ck_assert_msg(files_equal(pa, pb), "resumed weights differ from the uninterrupted run's");
    snprintf(p, sizeof p, "%s/b.partial", fx.root);
    ck_assert_int_ne(access(p, F_OK), 0);
    fixture_rmdir(fx.root);
}
END_TEST

/* glue/TASK corpora: the train split's text_a and text_b, never dev/test. */
START_TEST(glue_corpus_train_split_only) {
    Fixture fx;
    fixture_make(&fx, 10);
    char d[700], p[800];
    snprintf(d, sizeof d, "%s/assets/data/glue/MRPC", fx.root);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(p, sizeof p, "%s/train.tsv", d);
    FILE *f = fopen(p, "w");
    fprintf(f, "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    for (int i = 0; i < 40; i++)
        fprintf(f, "%d\t%d\t%d\tthe cat sees a dog .\tthe dogs chase the cats near the river .\n",
                i % 2, i, i + 100);
    fclose(f);
    /* dev and test are unreadable garbage: touching them would fail the run */
    snprintf(p, sizeof p, "%s/dev.tsv", d);
    write_file(p, "not\ta\tGLUE\tfile\n");
    snprintf(p, sizeof p, "%s/test.tsv", d);
    write_file(p, "x\n");
    /* E2E: the train references only; dev and test garbage */
    snprintf(d, sizeof d, "%s/assets/data/e2e", fx.root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(p, sizeof p, "%s/trainset.csv", d);
    f = fopen(p, "w");
    fprintf(f, "mr,ref\n");
    for (int i = 0; i < 7; i++) fprintf(f, "\"name[A], food[Thai]\",\"the cat sees a dog .\"\n");
    fclose(f);
    snprintf(p, sizeof p, "%s/devset.csv", d);
    write_file(p, "garbage\n");
    snprintf(p, sizeof p, "%s/testset_w_refs.csv", d);
    write_file(p, "\"\n");
    snprintf(p, sizeof p, "%s/assets", fx.root);
    setenv("BILORA_ASSETS", p, 1);
    PretrainConfig c;
    base_config(&c, &fx, 2);
    snprintf(c.corpus[0], sizeof c.corpus[0], "glue/MRPC");
    snprintf(c.corpus[1], sizeof c.corpus[1], "%s", fx.corpus);
    snprintf(c.corpus[2], sizeof c.corpus[2], "e2e");
    c.n_corpus = 3;
    Log lg;
    char err[2048];
    ck_assert_msg(run(&c, &lg, err, sizeof err) == 0, "%s", err);
    /* 40 rows, two sentences each: 6 + 9 tokens */
    ck_assert_msg(strstr(lg.infos, "corpus glue/MRPC (GLUE train split") &&
                  strstr(lg.infos, "80 sentences, 600 tokens"), "%s", lg.infos);
    /* 7 references of 6 tokens; the meaning representations are not text */
    ck_assert_msg(strstr(lg.infos, "corpus e2e (E2E train references") &&
                  strstr(lg.infos, "7 sentences, 42 tokens"), "%s", lg.infos);
    fixture_rmdir(fx.root);
}
END_TEST

START_TEST(refusals) {
    Fixture fx;
    fixture_make(&fx, 20);
    PretrainConfig c;
    Log lg;
    char err[2048];
    base_config(&c, &fx, 2);
    c.config[0] = 0;
    snprintf(c.arch, sizeof c.arch, "gpt2"); /* with a WordPiece vocabulary: no <|endoftext|> */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "causal-LM") && strstr(err, "end-of-text"), "%s", err);

    base_config(&c, &fx, 2);
    snprintf(c.corpus[0], sizeof c.corpus[0], "%s/nope.txt", fx.root);
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "nope.txt") && strstr(err, "no such file"), "%s", err);

    base_config(&c, &fx, 2);
    snprintf(c.corpus[0], sizeof c.corpus[0], "e2e/dev"); /* only the train references */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "E2E") && strstr(err, "never pretrained on"), "%s", err);

    base_config(&c, &fx, 2);
    make_config(fx.config, "bert", 50, 0.0f); /* smaller than the tokenizer's vocabulary */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "vocab_size 50"), "%s", err);

    make_config(fx.config, "bert", fx.vocab, 0.0f);
    base_config(&c, &fx, 2);
    c.seq_len = 100; /* the fixture config has 64 positions */
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "--seq-len 100"), "%s", err);

    base_config(&c, &fx, 2);
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty.txt", fx.root);
    write_file(empty, "\n\n   \n");
    snprintf(c.corpus[0], sizeof c.corpus[0], "%s", empty);
    ck_assert_int_eq(run(&c, &lg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no text"), "%s", err);

    /* the size table, and --config with a file of any name */
    ModelConfig mc;
    ck_assert_int_eq(pretrain_size_config(&mc, "roberta", "small", 50265, err, sizeof err), 0);
    ck_assert_int_eq(mc.hidden_size, 512);
    ck_assert_int_eq(mc.num_attention_heads, 8);
    ck_assert_int_eq(mc.intermediate_size, 2048);
    ck_assert_int_eq(mc.max_position_embeddings, 514);
    ck_assert_int_eq(mc.pad_token_id, 1);
    ck_assert_int_eq(pretrain_size_config(&mc, "bert", "huge", 100, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "huge"), "%s", err);
    fixture_rmdir(fx.root);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pretrain");
    TCase *t = tcase_create("pretrain");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, masking_statistics);
    tcase_add_test(t, grad_bert);
    tcase_add_test(t, grad_bert_dropout);
    tcase_add_test(t, grad_roberta);
    tcase_add_test(t, grad_gpt2_causal_lm);
    tcase_add_test(t, fresh_loss_is_ln_vocab);
    tcase_add_test(t, short_run_lowers_heldout_loss);
    tcase_add_test(t, written_directory_reloads);
    tcase_add_test(t, roberta_written_directory);
    tcase_add_test(t, gpt2_written_directory);
    tcase_add_test(t, resume_equals_uninterrupted);
    tcase_add_test(t, glue_corpus_train_split_only);
    tcase_add_test(t, refusals);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    if (!getcwd(start_cwd, sizeof start_cwd)) snprintf(start_cwd, sizeof start_cwd, ".");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
