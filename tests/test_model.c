/* The encoder model: finite-difference gradient checks of the whole
 * forward/backward (LoRA tensors, head and, with train_base, every base
 * weight), loading errors, the real LoRA adapter, and overfitting. */
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static TinyModel tiny(const char *type, const char *prefix, float dropout) {
    TinyModel t = {.model_type = type, .layers = 2, .hidden = 8, .heads = 2, .intermediate = 12,
                   .vocab = 23, .max_pos = 20, .type_vocab = strcmp(type, "bert") == 0 ? 2 : 1,
                   .hidden_dropout = dropout, .attn_dropout = dropout, .prefix = prefix, .seed = 7};
    return t;
}

/* A batch of 3 sequences of length 6, the last two padded. */
static Batch small_batch(int classes) {
    static int32_t ids[18] = {2, 5, 7, 9, 11, 3, 2, 8, 4, 3, 1, 1, 2, 13, 17, 19, 3, 1};
    static int32_t types[18] = {0};
    static float mask[18] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0};
    static float labels_c[3] = {0, 2, 1}, labels_r[3] = {0.5f, -1.0f, 2.0f};
    Batch b = {.B = 3, .T = 6, .ids = ids, .type_ids = types, .mask = mask,
               .labels = classes == 1 ? labels_r : labels_c};
    return b;
}

static double loss_at(Model *m, const Batch *b, uint64_t seed) {
    char err[256];
    ck_assert_msg(model_forward(m, b, 1, seed, err, sizeof(err)) == 0, "%s", err);
    return model_loss(m, b, 1.0f, NULL);
}

/* Randomises every LoRA B (LoRA starts at B = 0, which would hide A's gradient). */
static void randomise_named(Model *m, const char *part, uint64_t seed, double mean, double std) {
    uint64_t rng = seed;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (!strstr(p->name, part)) continue;
        for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(mean + std * rng_normal(&rng));
    }
}

static void randomise_lora_b(Model *m, uint64_t seed) {
    uint64_t rng = seed;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (!strstr(p->name, "lora_B")) continue;
        for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(0.3 * rng_normal(&rng));
    }
}

/* Central differences against the analytic gradient already in p->grad,
 * for 4 elements of every trainable tensor; embedding tables are probed at
 * rows the batch uses (the others have zero gradient). Returns the count. */
typedef double (*LossAt)(void *ctx);
static int fd_check_params(Model *m, const Batch *b, LossAt loss, void *ctx, double abs_tol,
                           const char *what) {
    int checked = 0;
    uint64_t pick = 9;
    const float eps = 1e-3f;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (p->group == GROUP_FROZEN) continue;
        for (int s = 0; s < 4; s++) {
            size_t k = (size_t)rng_below(&pick, p->numel);
            if (strstr(p->name, "word_embeddings") || strcmp(p->name, "wte.weight") == 0)
                k = (size_t)b->ids[s % (b->B * b->T)] * p->shape[1] + s % p->shape[1];
            if (strcmp(p->name, "wpe.weight") == 0) k = (size_t)(s % b->T) * p->shape[1] + s;
            float old = p->data[k];
            p->data[k] = old + eps;
            double lp = loss(ctx);
            p->data[k] = old - eps;
            double lm = loss(ctx);
            p->data[k] = old;
            double num = (lp - lm) / (2.0 * eps), an = p->grad[k];
            double tol = 2e-2 * fmax(fabs(num), fabs(an)) + abs_tol;
            ck_assert_msg(fabs(num - an) <= tol, "%s: %s[%zu] analytic %.6g numeric %.6g", what,
                          p->name, k, an, num);
            checked++;
        }
    }
    return checked;
}

typedef struct { Model *m; const Batch *b; uint64_t seed; const float *w; } LossCtx;
static double head_loss_at(void *q) {
    LossCtx *c = q;
    return loss_at(c->m, c->b, c->seed);
}

static void grad_check_form(const char *type, const char *prefix, int classes, float dropout,
                            int train_base, AdapterForm form, LambdaParam lambda) {
    char dir[256];
    fixture_tmpdir(dir);
    TinyModel spec = tiny(type, prefix, dropout);
    ck_assert_int_eq(fixture_tiny_model(dir, &spec), 0);
    ModelOptions o = {.model_dir = dir, .num_labels = classes, .max_batch = 3, .max_seq = 6,
                      .adapter = {.rank = 2, .alpha = 4, .dropout = dropout, .form = form,
                               .lambda = lambda, .bilevel = form != ADAPTER_LORA,
                               .targets = TARGET_QUERY | TARGET_VALUE | TARGET_OUTPUT |
                                          TARGET_INTERMEDIATE | TARGET_KEY | TARGET_ATTENTION_OUTPUT},
                      .train_base = train_base, .init_seed = 3};
    Model *m;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    randomise_lora_b(m, 5);
    randomise_named(m, "lora_E", 6, 0.0, 0.5);
    randomise_named(m, "lora_magnitude_vector", 7, 1.0, 0.3);
    Batch b = small_batch(classes);
    const uint64_t seed = 77;
    model_zero_grad(m);
    loss_at(m, &b, seed);
    model_backward(m, seed);
    /* DoRA's backward treats ‖W0 + sBA‖ as a constant (DoRA §4.3): the
     * numeric derivative must hold it constant too */
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int t = 0; t < TARGET_COUNT; t++) m->layers[l].adapters[t].norm_frozen = 1;
    char what[128];
    snprintf(what, sizeof what, "%s %s", type, classes == 1 ? "regression" : "classification");
    LossCtx lc = {m, &b, seed, NULL};
    int checked = fd_check_params(m, &b, head_loss_at, &lc, 5e-4, what);
    ck_assert_int_gt(checked, train_base ? 150 : 40);
    model_free(m);
    fixture_rmdir(dir);
}

static void grad_check(const char *type, const char *prefix, int classes, float dropout,
                       int train_base) {
    grad_check_form(type, prefix, classes, dropout, train_base, ADAPTER_LORA, LAMBDA_REAL);
}

START_TEST(grad_svd_forms) {
    grad_check_form("bert", "", 3, 0.1f, 0, ADAPTER_SVD, LAMBDA_REAL);
    grad_check_form("roberta", "", 1, 0.0f, 0, ADAPTER_SVD, LAMBDA_SOFTMAX);
    grad_check_form("bert", "", 3, 0.0f, 1, ADAPTER_SVD, LAMBDA_SIGMOID);
}
END_TEST
START_TEST(grad_dora) {
    grad_check_form("bert", "", 3, 0.0f, 0, ADAPTER_DORA, LAMBDA_REAL);
    grad_check_form("roberta", "", 3, 0.1f, 0, ADAPTER_DORA, LAMBDA_REAL);
}
END_TEST

/* The decoder (GPT-2): the loss is a fixed random projection of the hidden
 * states (after ln_f), Σ w·h, so dL/dh = w enters model_backward_from_hidden.
 * Padding in the batch exercises the key mask on top of the causal one. */
static double gpt2_loss(Model *m, const Batch *b, const float *w, uint64_t seed) {
    char err[256];
    ck_assert_msg(model_forward(m, b, 1, seed, err, sizeof(err)) == 0, "%s", err);
    const float *h = model_hidden(m);
    double s = 0;
    for (int i = 0; i < b->B * b->T * m->cfg.hidden_size; i++) s += (double)w[i] * h[i];
    return s;
}
static double proj_loss_at(void *q) {
    LossCtx *c = q;
    return gpt2_loss(c->m, c->b, c->w, c->seed);
}
/* classes 0: the projection loss on the hidden states; > 0: the
 * GPT2ForSequenceClassification head on the last kept token; -1: the tied
 * LM head (GPT2LMHeadModel) on the scored targets of a data-to-text batch */
static void grad_check_gpt2(float dropout, int train_base, AdapterForm form, int classes) {
    ModelConfig c = {.vocab_size = 23, .hidden_size = 8, .num_hidden_layers = 2,
                     .num_attention_heads = 2, .intermediate_size = 12,
                     .max_position_embeddings = 20, .type_vocab_size = 0, .pad_token_id = -1,
                     .layer_norm_eps = 1e-5f, .hidden_dropout_prob = dropout,
                     .attention_probs_dropout_prob = dropout};
    snprintf(c.model_type, sizeof(c.model_type), "gpt2");
    snprintf(c.hidden_act, sizeof(c.hidden_act), "gelu_new");
    ModelOptions o = {.config = &c, .random_init = 1, .max_batch = 3, .max_seq = 6,
                      .num_labels = classes > 0 ? classes : 0, .lm_head = classes < 0,
                      .lm_chunk = 4, /* 9 scored rows: chunks of 4, 4 and 1 */
                      .adapter = {.rank = 2, .alpha = 4, .dropout = dropout, .form = form,
                                  .lambda = LAMBDA_SOFTMAX, .bilevel = form != ADAPTER_LORA,
                                  .targets = TARGET_QUERY | TARGET_VALUE | TARGET_OUTPUT |
                                             TARGET_INTERMEDIATE | TARGET_KEY |
                                             TARGET_ATTENTION_OUTPUT},
                      .train_base = train_base, .init_seed = 3};
    Model *m;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    ck_assert(m->is_gpt2 && m->gelu_tanh);
    randomise_lora_b(m, 5);
    randomise_named(m, "lora_E", 6, 0.0, 0.5);
    randomise_named(m, "lora_magnitude_vector", 7, 1.0, 0.3);
    randomise_named(m, "ln_", 8, 1.0, 0.2); /* LayerNorms away from 1/0 */
    /* weights of O(1/√in), embeddings of O(1): HF's 0.02 leaves every signal
     * tiny and the pre-LN LayerNorms amplify finite-difference steps */
    uint64_t wr = 10;
    for (int i = 0; i < m->params.n; i++) {
        ParamTensor *p = &m->params.t[i];
        if (p->ndim != 2 || strstr(p->name, ".lora_")) continue;
        double std = strstr(p->name, "wte") || strstr(p->name, "wpe") ? 1.0 : 1.0 / sqrt((double)p->shape[1]);
        for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(std * rng_normal(&wr));
    }
    Batch b = small_batch(classes > 0 ? classes : 3);
    /* prompts of 2, 1 and 3 tokens; each row predicts its next kept token
     * after the prompt; padding and the prompts are not scored */
    int32_t targets[18] = {-1, 7, 9, 11, 3, -1, 8, 4, 3, -1, -1, -1, -1, -1, 19, 3, -1, -1};
    if (classes < 0) b.targets = targets;
    const int n = b.B * b.T * c.hidden_size;
    float *w = malloc(sizeof(float) * n);
    uint64_t rng = 11;
    for (int i = 0; i < n; i++) w[i] = (float)rng_normal(&rng);
    const uint64_t seed = 77;
    model_zero_grad(m);
    if (classes != 0) {
        loss_at(m, &b, seed);
        model_backward(m, seed);
    } else {
        gpt2_loss(m, &b, w, seed);
        model_backward_from_hidden(m, w, seed);
    }
    for (int l = 0; l < c.num_hidden_layers; l++)
        for (int t = 0; t < TARGET_COUNT; t++) m->layers[l].adapters[t].norm_frozen = 1;
    char what[128];
    snprintf(what, sizeof what, "gpt2 (dropout %g, train_base %d, form %d, classes %d)", dropout,
             train_base, (int)form, classes);
    LossCtx lc = {m, &b, seed, w};
    /* with O(1/√in) weights the losses are large (the projection sums 144
     * float32 outputs; MSE of O(10) predictions): ~1e-3 of rounding noise */
    if (classes < 0) ck_assert_int_eq(model_scored_tokens(m), 9);
    int checked = fd_check_params(m, &b, classes != 0 ? head_loss_at : proj_loss_at, &lc, 3e-3,
                                  what);
    ck_assert_int_gt(checked, train_base ? 150 : 40);
    free(w);
    model_free(m);
}
START_TEST(grad_gpt2) {
    grad_check_gpt2(0.0f, 1, ADAPTER_LORA, 0);  /* every base weight and every LoRA tensor */
    grad_check_gpt2(0.1f, 1, ADAPTER_LORA, 0);  /* with dropout everywhere */
    grad_check_gpt2(0.0f, 0, ADAPTER_SVD, 0);
    grad_check_gpt2(0.0f, 0, ADAPTER_DORA, 0);
    grad_check_gpt2(0.0f, 1, ADAPTER_LORA, 3);  /* the classification head, padded rows */
    grad_check_gpt2(0.1f, 0, ADAPTER_SVD, 1);   /* regression (MSE) through the head */
    grad_check_gpt2(0.0f, 1, ADAPTER_LORA, -1); /* the tied LM head: wte from both ends */
    grad_check_gpt2(0.1f, 0, ADAPTER_DORA, -1); /* data-to-text fine-tuning with DoRA */
}
END_TEST

START_TEST(grad_bert_lora) { grad_check("bert", "", 3, 0.0f, 0); }
END_TEST
START_TEST(grad_bert_full_with_dropout) { grad_check("bert", "bert.", 3, 0.1f, 1); }
END_TEST
START_TEST(grad_roberta_full) { grad_check("roberta", "roberta.", 3, 0.0f, 1); }
END_TEST
START_TEST(grad_roberta_regression_dropout) { grad_check("roberta", "", 1, 0.1f, 0); }
END_TEST

/* Loading errors name the tensor. */
START_TEST(load_errors_name_tensors) {
    char dir[256];
    fixture_tmpdir(dir);
    TinyModel spec = tiny("bert", "", 0);
    ck_assert_int_eq(fixture_tiny_model(dir, &spec), 0);
    /* rewrite the checkpoint without one tensor and with an unknown one */
    char path[512];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    SafeTensors st;
    char err[1024];
    ck_assert_int_eq(st_open(&st, path, err, sizeof(err)), 0);
    StWriteTensor *w = calloc(st.n + 1, sizeof(*w));
    float **bufs = calloc(st.n, sizeof(float *));
    int n = 0;
    for (int i = 0; i < st.n; i++) {
        if (strcmp(st.tensors[i].name, "encoder.layer.1.attention.self.key.weight") == 0) continue;
        bufs[i] = malloc(sizeof(float) * st.tensors[i].numel);
        st_read_f32(&st, &st.tensors[i], bufs[i]);
        w[n] = (StWriteTensor){.name = st.tensors[i].name, .data = bufs[i], .ndim = st.tensors[i].ndim,
                               .shape = {st.tensors[i].shape[0], st.tensors[i].shape[1]}};
        n++;
    }
    ck_assert_int_eq(st_write_f32(path, w, n, NULL, err, sizeof(err)), 0);
    ModelOptions o = {.model_dir = dir, .num_labels = 2, .max_batch = 1, .max_seq = 4};
    Model *m;
    ck_assert_int_eq(model_load(&m, backend_cpu(), &o, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "missing") && strstr(err, "encoder.layer.1.attention.self.key.weight"),
                  "%s", err);
    /* an unexpected tensor */
    float extra[4] = {0};
    w[n++] = (StWriteTensor){.name = "encoder.layer.1.attention.self.key.weight",
                             .data = NULL, .ndim = 0};
    n--; /* restore the key weight from the original */
    for (int i = 0; i < st.n; i++)
        if (strcmp(st.tensors[i].name, "encoder.layer.1.attention.self.key.weight") == 0) {
            bufs[i] = malloc(sizeof(float) * st.tensors[i].numel);
            st_read_f32(&st, &st.tensors[i], bufs[i]);
            w[n++] = (StWriteTensor){.name = st.tensors[i].name, .data = bufs[i], .ndim = 2,
                                     .shape = {st.tensors[i].shape[0], st.tensors[i].shape[1]}};
        }
    w[n++] = (StWriteTensor){.name = "encoder.layer.7.mystery.weight", .data = extra, .ndim = 1,
                             .shape = {4}};
    ck_assert_int_eq(st_write_f32(path, w, n, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(model_load(&m, backend_cpu(), &o, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "unexpected") && strstr(err, "encoder.layer.7.mystery.weight"), "%s", err);
    /* a shape that disagrees with config.json */
    n--;
    float wrong[8 * 5];
    memset(wrong, 0, sizeof(wrong));
    for (int i = 0; i < n; i++)
        if (strcmp(w[i].name, "encoder.layer.0.attention.self.query.weight") == 0) {
            w[i].data = wrong;
            w[i].shape[0] = 8;
            w[i].shape[1] = 5;
        }
    ck_assert_int_eq(st_write_f32(path, w, n, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(model_load(&m, backend_cpu(), &o, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "wrong shape") && strstr(err, "query.weight"), "%s", err);
    for (int i = 0; i < st.n; i++) free(bufs[i]);
    free(bufs);
    free(w);
    st_close(&st);
    fixture_rmdir(dir);
}
END_TEST

/* LoRA + head overfit a fixed small batch: loss to near zero. */
START_TEST(lora_overfits_fixed_batch) {
    char dir[256];
    fixture_tmpdir(dir);
    TinyModel spec = tiny("roberta", "", 0.0f);
    spec.hidden = 16;
    spec.intermediate = 32;
    ck_assert_int_eq(fixture_tiny_model(dir, &spec), 0);
    ModelOptions o = {.model_dir = dir, .num_labels = 3, .max_batch = 3, .max_seq = 6,
                      .adapter = {.rank = 4, .alpha = 8, .targets = TARGET_QUERY | TARGET_VALUE},
                      .init_seed = 1};
    Model *m;
    char err[512];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    AdamW opt;
    ck_assert_int_eq(adamw_init(&opt, m->be, &m->params, GROUP_LOWER, 0.0f, err, sizeof(err)), 0);
    Batch b = small_batch(3);
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        model_zero_grad(m);
        last = loss_at(m, &b, (uint64_t)step);
        if (step == 0) first = last;
        model_backward(m, (uint64_t)step);
        adamw_step(&opt, 1e-2f);
    }
    ck_assert_msg(first > 0.5 && last < 0.02, "loss %.4f -> %.4f", first, last);
    adamw_free(&opt);
    model_free(m);
    fixture_rmdir(dir);
}
END_TEST

/* The LoRA paper's released RoBERTa-base MNLI adapter loads onto a model of
 * roberta-base's shape (names mapped, shapes checked), and ΔW = 2·B·A of
 * layer 0's query has the Frobenius norm the asset README states (9.63). */
START_TEST(real_lora_adapter_loads) {
    char assets[1024];
    if (fixture_assets(assets, sizeof(assets)) != 0) {
        fprintf(stderr, "real_lora_adapter_loads: skipped, BILORA_ASSETS is not set\n");
        return;
    }
    char adapter[1200];
    snprintf(adapter, sizeof(adapter), "%s/models/lora-roberta-base-mnli/adapter_model.safetensors",
             assets);
    FILE *f = fopen(adapter, "rb");
    ck_assert_msg(f != NULL, "BILORA_ASSETS is set but %s is missing", adapter);
    fclose(f);
    char dir[256];
    fixture_tmpdir(dir);
    /* roberta-base's hidden size and depth; small vocab and FFN keep the
     * fixture light (the adapter touches neither) */
    TinyModel spec = {.model_type = "roberta", .layers = 12, .hidden = 768, .heads = 12,
                      .intermediate = 64, .vocab = 50, .max_pos = 40, .type_vocab = 1, .seed = 1};
    ck_assert_int_eq(fixture_tiny_model(dir, &spec), 0);
    ModelOptions o = {.model_dir = dir, .num_labels = 3, .max_batch = 1, .max_seq = 8,
                      .adapter = {.rank = 8, .alpha = 16, .targets = TARGET_QUERY | TARGET_VALUE}};
    Model *m;
    char err[1024];
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(model_load_adapter(m, adapter, err, sizeof(err)) == 0, "%s", err);
    const ParamTensor *A = param_list_find(&m->params, "encoder.layer.0.attention.self.query.lora_A");
    const ParamTensor *B = param_list_find(&m->params, "encoder.layer.0.attention.self.query.lora_B");
    ck_assert(A && B);
    double fro = 0;
    for (int i = 0; i < 768; i++)
        for (int j = 0; j < 768; j++) {
            double s = 0;
            for (int r = 0; r < 8; r++) s += (double)B->data[i * 8 + r] * A->data[r * 768 + j];
            fro += (2.0 * s) * (2.0 * s);
        }
    ck_assert_msg(fabs(sqrt(fro) - 9.63) < 0.01, "|dW|_F = %.4f, expected 9.63", sqrt(fro));
    const ParamTensor *head = param_list_find(&m->params, "classifier.out_proj.weight");
    ck_assert(head && head->shape[0] == 3 && head->shape[1] == 768);
    model_free(m);
    /* wrong rank: shapes checked, the error names the tensor */
    o.adapter.rank = 4;
    o.adapter.alpha = 8;
    ck_assert_msg(model_load(&m, backend_cpu(), &o, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(model_load_adapter(m, adapter, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "lora_A") && strstr(err, "expected [4 x 768]"), "%s", err);
    model_free(m);
    fixture_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("encoder");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, grad_bert_lora);
    tcase_add_test(tc, grad_gpt2);
    tcase_add_test(tc, grad_svd_forms);
    tcase_add_test(tc, grad_dora);
    tcase_add_test(tc, grad_bert_full_with_dropout);
    tcase_add_test(tc, grad_roberta_full);
    tcase_add_test(tc, grad_roberta_regression_dropout);
    tcase_add_test(tc, load_errors_name_tensors);
    tcase_add_test(tc, lora_overfits_fixed_batch);
    tcase_add_test(tc, real_lora_adapter_loads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
