#include "tests/fixtures.h"

#include "engine/pretrain.h"
#include "engine/rng.h"
#include "engine/safetensors.h"

#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fixture_tmpdir(char *out) {
    const char *t = getenv("TMPDIR");
    snprintf(out, 256, "%s/bilora-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

void fixture_rmdir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

int fixture_assets(char *out, size_t cap) {
    const char *a = getenv("BILORA_ASSETS");
    if (!a || !*a) return -1;
    const char *colon = strchr(a, ':');
    size_t n = colon ? (size_t)(colon - a) : strlen(a);
    snprintf(out, cap, "%.*s", (int)n, a);
    return 0;
}

typedef struct {
    StWriteTensor *t;
    char **names;
    float **data;
    int n, cap;
} Tensors;

static void add(Tensors *ts, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1,
                double mean, double std, uint64_t *rng) {
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 64;
        ts->t = realloc(ts->t, sizeof(*ts->t) * ts->cap);
        ts->names = realloc(ts->names, sizeof(char *) * ts->cap);
        ts->data = realloc(ts->data, sizeof(float *) * ts->cap);
    }
    size_t n = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1);
    float *d = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) d[i] = (float)(mean + std * rng_normal(rng));
    char *nm = malloc(256);
    snprintf(nm, 256, "%s%s", prefix, name);
    ts->names[ts->n] = nm;
    ts->data[ts->n] = d;
    ts->t[ts->n] = (StWriteTensor){.name = nm, .data = d, .ndim = ndim, .shape = {d0, d1}};
    ts->n++;
}

int fixture_tiny_model(const char *dir, const TinyModel *s) {
    char path[512];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int pad = strcmp(s->model_type, "roberta") == 0 ? 1 : 0;
    fprintf(f,
            "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, "
            "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"intermediate_size\": %d, "
            "\"max_position_embeddings\": %d, \"type_vocab_size\": %d, \"layer_norm_eps\": 1e-12, "
            "\"hidden_act\": \"gelu\", \"hidden_dropout_prob\": %g, "
            "\"attention_probs_dropout_prob\": %g, \"pad_token_id\": %d}\n",
            s->model_type, s->vocab, s->hidden, s->layers, s->heads, s->intermediate, s->max_pos,
            s->type_vocab, s->hidden_dropout, s->attn_dropout, pad);
    fclose(f);
    uint64_t rng = s->seed;
    Tensors ts = {0};
    const char *p = s->prefix ? s->prefix : "";
    int C = s->hidden, I = s->intermediate;
    add(&ts, p, "embeddings.word_embeddings.weight", 2, s->vocab, C, 0, 0.5, &rng);
    add(&ts, p, "embeddings.position_embeddings.weight", 2, s->max_pos, C, 0, 0.5, &rng);
    add(&ts, p, "embeddings.token_type_embeddings.weight", 2, s->type_vocab, C, 0, 0.5, &rng);
    add(&ts, p, "embeddings.LayerNorm.weight", 1, C, 1, 1.0, 0.1, &rng);
    add(&ts, p, "embeddings.LayerNorm.bias", 1, C, 1, 0.0, 0.1, &rng);
    for (int l = 0; l < s->layers; l++) {
        char n[256];
        const char *lin[6] = {"attention.self.query", "attention.self.key", "attention.self.value",
                              "attention.output.dense", "intermediate.dense", "output.dense"};
        int ins[6] = {C, C, C, C, C, I}, outs[6] = {C, C, C, C, I, C};
        for (int k = 0; k < 6; k++) {
            snprintf(n, sizeof(n), "encoder.layer.%d.%s.weight", l, lin[k]);
            add(&ts, p, n, 2, outs[k], ins[k], 0, 0.3, &rng);
            snprintf(n, sizeof(n), "encoder.layer.%d.%s.bias", l, lin[k]);
            add(&ts, p, n, 1, outs[k], 1, 0, 0.1, &rng);
        }
        snprintf(n, sizeof(n), "encoder.layer.%d.attention.output.LayerNorm.weight", l);
        add(&ts, p, n, 1, C, 1, 1.0, 0.1, &rng);
        snprintf(n, sizeof(n), "encoder.layer.%d.attention.output.LayerNorm.bias", l);
        add(&ts, p, n, 1, C, 1, 0.0, 0.1, &rng);
        snprintf(n, sizeof(n), "encoder.layer.%d.output.LayerNorm.weight", l);
        add(&ts, p, n, 1, C, 1, 1.0, 0.1, &rng);
        snprintf(n, sizeof(n), "encoder.layer.%d.output.LayerNorm.bias", l);
        add(&ts, p, n, 1, C, 1, 0.0, 0.1, &rng);
    }
    if (strcmp(s->model_type, "bert") == 0) {
        add(&ts, p, "pooler.dense.weight", 2, C, C, 0, 0.3, &rng);
        add(&ts, p, "pooler.dense.bias", 1, C, 1, 0, 0.1, &rng);
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    char err[512];
    int rc = st_write_f32(path, ts.t, ts.n, NULL, err, sizeof(err));
    if (rc) fprintf(stderr, "fixture: %s\n", err);
    for (int i = 0; i < ts.n; i++) {
        free(ts.names[i]);
        free(ts.data[i]);
    }
    free(ts.t);
    free(ts.names);
    free(ts.data);
    return rc;
}

static const char *WORDS[] = {"good", "great", "fine", "nice", "bad", "awful", "poor", "sad",
                              "the", "movie", "was", "a", "film", "plot", "very", "not"};
#define NWORDS 16

int fixture_tiny_glue(const char *dir, int poison) {
    char path[512], cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/model' '%s/SST-2'", dir, dir);
    if (system(cmd) != 0) return -1;
    snprintf(path, sizeof(path), "%s/model", dir);
    TinyModel spec = {.model_type = "bert", .layers = 2, .hidden = 8, .heads = 2, .intermediate = 16,
                      .vocab = 5 + NWORDS, .max_pos = 16, .type_vocab = 2, .hidden_dropout = 0.1f,
                      .attn_dropout = 0.1f, .seed = 5};
    if (fixture_tiny_model(path, &spec) != 0) return -1;
    if (poison) {
        /* "the" (id 5 + 8) starts every sentence: NaN in its embedding */
        snprintf(path, sizeof(path), "%s/model/model.safetensors", dir);
        SafeTensors st;
        char err[256];
        if (st_open(&st, path, err, sizeof(err)) != 0) return -1;
        int n = st.n;
        StWriteTensor *w = calloc(n, sizeof(*w));
        float **bufs = calloc(n, sizeof(float *));
        for (int i = 0; i < n; i++) {
            const StTensor *t = &st.tensors[i];
            bufs[i] = malloc(sizeof(float) * t->numel);
            st_read_f32(&st, t, bufs[i]);
            if (!strcmp(t->name, "embeddings.word_embeddings.weight")) bufs[i][(5 + 8) * t->shape[1]] = NAN;
            w[i] = (StWriteTensor){.name = t->name, .data = bufs[i], .ndim = t->ndim,
                                   .shape = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}};
        }
        int rc = st_write_f32(path, w, n, NULL, err, sizeof(err));
        for (int i = 0; i < n; i++) free(bufs[i]);
        free(bufs);
        free(w);
        st_close(&st);
        if (rc) return -1;
    }
    snprintf(path, sizeof(path), "%s/model/vocab.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int i = 0; i < NWORDS; i++) fprintf(f, "%s\n", WORDS[i]);
    fclose(f);
    snprintf(path, sizeof(path), "%s/model/tokenizer_config.json", dir);
    f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"do_lower_case\": true}\n");
    fclose(f);
    const char *splits[2] = {"train", "dev"};
    int counts[2] = {96, 24};
    uint64_t rng = 11;
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof(path), "%s/SST-2/%s.tsv", dir, splits[s]);
        f = fopen(path, "w");
        if (!f) return -1;
        fprintf(f, "sentence\tlabel\n");
        for (int i = 0; i < counts[s]; i++) {
            int label = (int)rng_below(&rng, 2);
            int w = (int)rng_below(&rng, 4) + (label ? 0 : 4);
            fprintf(f, "the %s was %s %s\t%d\n", rng_below(&rng, 2) ? "movie" : "film",
                    rng_below(&rng, 2) ? "very" : "a", WORDS[w], label);
        }
        fclose(f);
    }
    return 0;
}

const char *fixture_ref_dir(void) {
    const char *r = getenv("BILORA_REF_DIR");
    return r && *r ? r : "build/reference";
}

float *fixture_read_f32(const SafeTensors *st, const char *name, int64_t *numel) {
    const StTensor *t = st_find(st, name);
    ck_assert_msg(t != NULL, "%s: no tensor %s", st->path, name);
    float *x = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    st_read_f32(st, t, x);
    if (numel) *numel = t->numel;
    return x;
}

void fixture_read_batch(const char *path, const char *made_by, Batch *out) {
    SafeTensors st;
    char err[1024];
    ck_assert_msg(st_open(&st, path, err, sizeof(err)) == 0, "%s (the reference is made by %s)", err, made_by);
    const StTensor *it = st_find(&st, "input_ids");
    ck_assert_msg(it && it->ndim == 2, "%s: input_ids is missing or not [B, T]", path);
    int B = (int)it->shape[0], T = (int)it->shape[1];
    float *ids = fixture_read_f32(&st, "input_ids", NULL), *types = fixture_read_f32(&st, "token_type_ids", NULL);
    memset(out, 0, sizeof(*out));
    out->B = B;
    out->T = T;
    out->mask = fixture_read_f32(&st, "attention_mask", NULL);
    out->labels = fixture_read_f32(&st, "labels", NULL);
    out->ids = malloc(sizeof(int32_t) * B * T);
    out->type_ids = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) {
        out->ids[i] = (int32_t)ids[i];
        out->type_ids[i] = (int32_t)types[i];
    }
    free(ids);
    free(types);
    st_close(&st);
}

int fixture_tiny_e2e(const char *dir, const char *tokdir, char *err, size_t errlen) {
    static const char *names[] = {"Alimentum", "Aromi", "Bibimbap House", "Blue Spice",
                                  "Clowns", "Cotto", "Giraffe", "Zizzi"};
    static const char *foods[] = {"Chinese", "English", "French", "Indian", "Italian", "Japanese"};
    char path[700];
    snprintf(path, sizeof path, "mkdir -p '%s/e2e'", dir);
    if (system(path) != 0) { snprintf(err, errlen, "mkdir %s/e2e failed", dir); return -1; }
    for (int split = 0; split < 2; split++) {
        snprintf(path, sizeof path, "%s/e2e/%s", dir, split == 0 ? "trainset.csv" : "devset.csv");
        FILE *f = fopen(path, "w");
        if (!f) { snprintf(err, errlen, "cannot write %s", path); return -1; }
        fprintf(f, "mr,ref\n");
        int n = split == 0 ? 64 : 16;
        for (int i = 0; i < n; i++) {
            int k = split == 0 ? i : 64 + 5 * i; /* dev: other pairings */
            const char *nm = names[k % 8], *fd = foods[(k / 8 + k) % 6];
            fprintf(f, "\"name[%s], food[%s]\",%s serves %s food.\n", nm, fd, nm, fd);
        }
        fclose(f);
    }
    char cfgpath[700];
    snprintf(cfgpath, sizeof cfgpath, "%s/gpt2-tiny.json", dir);
    FILE *f = fopen(cfgpath, "w");
    if (!f) { snprintf(err, errlen, "cannot write %s", cfgpath); return -1; }
    fprintf(f, "{\"model_type\": \"gpt2\", \"vocab_size\": 50257, \"n_embd\": 32, \"n_layer\": 2, "
               "\"n_head\": 2, \"n_positions\": 64, \"resid_pdrop\": 0.0, \"embd_pdrop\": 0.0, "
               "\"attn_pdrop\": 0.0, \"activation_function\": \"gelu_new\", "
               "\"layer_norm_epsilon\": 1e-5}\n");
    fclose(f);
    PretrainConfig c;
    pretrain_config_defaults(&c);
    c.arch[0] = 0;
    snprintf(c.config, sizeof c.config, "%s", cfgpath);
    snprintf(c.tokenizer, sizeof c.tokenizer, "%s", tokdir);
    snprintf(c.corpus[0], sizeof c.corpus[0], "%s/e2e", dir);
    c.n_corpus = 1;
    snprintf(c.out, sizeof c.out, "%s/gpt2", dir);
    c.steps = 60;
    c.batch_size = 8;
    c.seq_len = 32;
    c.lr = 1e-2f;
    c.holdout_ratio = 0.1f;
    c.dropout = -1.0f;
    c.checkpoint_every = 0;
    c.seed = 3;
    return pretrain_run(&c, NULL, err, errlen);
}
