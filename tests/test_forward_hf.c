/* The encoder against Hugging Face transformers itself: for each model that
 * tests/reference/gen_hf_models.py built (random weights in the real HF
 * layout: BertModel with bert-mini's shape, a 2-layer roberta-base, a
 * prefixed BertForSequenceClassification, and an F16 checkpoint), the last
 * hidden states of every reference line must agree to a relative error
 * below 1e-4 (max |ours - theirs| / max |theirs| per line), the token ids
 * must be identical, and the classifier's logits must agree too. One model
 * also goes through the `bilora forward` command end to end. */
#include "datasets/tokenizer.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails unless the reference exists: CI must not pass silently without it. */
static void need_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "reference file %s is missing (run scripts/run-tests.sh, which runs "
                             "tests/reference/gen_hf_models.py first)", path);
    fclose(f);
}

static double rel_err(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / (scale > 0 ? scale : 1);
}

static void compare_model(const char *name, int with_head) {
    char model_dir[1024], lines_path[1024], ref_path[1024];
    snprintf(model_dir, sizeof(model_dir), "%s/models/%s", fixture_ref_dir(), name);
    snprintf(lines_path, sizeof(lines_path), "%s/forward/%s.txt", fixture_ref_dir(), name);
    snprintf(ref_path, sizeof(ref_path), "%s/forward/%s.safetensors", fixture_ref_dir(), name);
    need_file(lines_path);
    need_file(ref_path);
    char err[1024];
    ModelConfig mc;
    ck_assert_msg(model_config_load(&mc, model_dir, err, sizeof(err)) == 0, "%s", err);
    Tokenizer *tok;
    ck_assert_msg(tokenizer_load(&tok, model_dir, mc.model_type, err, sizeof(err)) == 0, "%s", err);
    SafeTensors ref;
    ck_assert_msg(st_open(&ref, ref_path, err, sizeof(err)) == 0, "%s", err);
    ModelOptions mo = {.model_dir = model_dir, .max_batch = 1, .max_seq = 200,
                       .num_labels = with_head ? 2 : 0};
    Model *m;
    ck_assert_msg(model_load(&m, backend_cpu(), &mo, err, sizeof(err)) == 0, "%s", err);
    FILE *f = fopen(lines_path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int i = 0;
    double worst = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *b = strchr(line, '\t');
        if (b) *b++ = 0;
        int32_t *ids, *types;
        int n;
        ck_assert_msg(tokenizer_encode(tok, line, b, 0, &ids, &types, &n, err, sizeof(err)) == 0, "%s", err);
        char key[64];
        snprintf(key, sizeof(key), "ids.%d", i);
        const StTensor *rt = st_find(&ref, key);
        ck_assert_msg(rt != NULL, "%s: no %s", ref_path, key);
        ck_assert_int_eq(rt->numel, n);
        float *want_ids = malloc(sizeof(float) * n);
        st_read_f32(&ref, rt, want_ids);
        for (int k = 0; k < n; k++)
            ck_assert_msg((int)want_ids[k] == ids[k], "%s line %d token %d: id %d, HF %d", name, i, k,
                          ids[k], (int)want_ids[k]);
        free(want_ids);
        Batch bt = {.B = 1, .T = n, .ids = ids, .type_ids = types};
        ck_assert_msg(model_forward(m, &bt, 0, 0, err, sizeof(err)) == 0, "%s", err);
        snprintf(key, sizeof(key), "hidden.%d", i);
        rt = st_find(&ref, key);
        ck_assert(rt && rt->numel == (int64_t)n * mc.hidden_size);
        float *want = malloc(sizeof(float) * rt->numel), *got = malloc(sizeof(float) * rt->numel);
        st_read_f32(&ref, rt, want);
        m->be->download(got, model_hidden(m), sizeof(float) * rt->numel);
        double e = rel_err(got, want, rt->numel);
        ck_assert_msg(e < 1e-4, "%s line %d: hidden states relative error %.3g", name, i, e);
        worst = fmax(worst, e);
        if (with_head) {
            snprintf(key, sizeof(key), "logits.%d", i);
            rt = st_find(&ref, key);
            ck_assert_msg(rt && rt->numel == 2, "%s: no %s", ref_path, key);
            float wl[2], gl[2];
            st_read_f32(&ref, rt, wl);
            m->be->download(gl, model_logits(m), sizeof(gl));
            e = rel_err(gl, wl, 2);
            ck_assert_msg(e < 1e-4, "%s line %d: logits (%g, %g) vs HF (%g, %g)", name, i, gl[0],
                          gl[1], wl[0], wl[1]);
        }
        free(want);
        free(got);
        free(ids);
        free(types);
        i++;
    }
    ck_assert_int_gt(i, 5);
    fprintf(stderr, "%s: %d lines, worst relative error %.2e\n", name, i, worst);
    free(line);
    fclose(f);
    model_free(m);
    st_close(&ref);
    tokenizer_free(tok);
}

START_TEST(bert_mini_shape) { compare_model("bert-mini-random", 0); }
END_TEST
START_TEST(roberta_two_layers) { compare_model("roberta-2l-random", 0); }
END_TEST
START_TEST(bert_prefixed_classifier) { compare_model("bert-tiny-cls-random", 1); }
END_TEST
START_TEST(bert_f16_checkpoint) { compare_model("bert-mini-random-f16", 0); }
END_TEST
/* the decoder: pre-LN, causal attention, gelu_new, Conv1D weights split and
 * transposed at load, ln_f */
START_TEST(gpt2_two_layers) { compare_model("gpt2-2l-random", 0); }
END_TEST
/* A reference model loaded for a test, with its reference tensors open. */
static Model *open_reference(const char *name, int max_batch, int max_seq, int labels,
                             SafeTensors *ref) {
    char model_dir[1024], ref_path[1024], err[1024];
    snprintf(model_dir, sizeof(model_dir), "%s/models/%s", fixture_ref_dir(), name);
    snprintf(ref_path, sizeof(ref_path), "%s/forward/%s.safetensors", fixture_ref_dir(), name);
    need_file(ref_path);
    ck_assert_msg(st_open(ref, ref_path, err, sizeof(err)) == 0, "%s", err);
    ModelOptions mo = {.model_dir = model_dir, .max_batch = max_batch, .max_seq = max_seq,
                       .num_labels = labels};
    Model *m;
    ck_assert_msg(model_load(&m, backend_cpu(), &mo, err, sizeof(err)) == 0, "%s", err);
    return m;
}

/* Greedy generation: the same 12 tokens as GPT2LMHeadModel.generate. */
START_TEST(gpt2_greedy_generation) {
    char err[1024];
    SafeTensors ref;
    Model *m = open_reference("gpt2-2l-random", 1, 128, 0, &ref);
    GenerateOptions go = {.max_new = 12, .temperature = 0.0f, .eos_id = 50256};
    int lines = 0;
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof(key), "ids.%d", i);
        const StTensor *t = st_find(&ref, key);
        snprintf(key, sizeof(key), "generate.%d", i);
        const StTensor *g = st_find(&ref, key);
        ck_assert_msg(t && g, "gpt2-2l-random reference: no %s", key);
        float *fi = malloc(sizeof(float) * t->numel), *fg = malloc(sizeof(float) * g->numel);
        st_read_f32(&ref, t, fi);
        st_read_f32(&ref, g, fg);
        int32_t prompt[128];
        for (int k = 0; k < t->numel; k++) prompt[k] = (int32_t)fi[k];
        int32_t *out;
        int n;
        ck_assert_msg(lm_generate(m, prompt, (int)t->numel, &go, &out, &n, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_int_eq(n, (int)g->numel);
        for (int k = 0; k < n; k++)
            ck_assert_msg(out[k] == (int32_t)fg[k], "line %d token %d: %d, transformers %d", i, k,
                          out[k], (int)fg[k]);
        free(out);
        /* sampling from the top 1 is greedy whatever the temperature */
        GenerateOptions top1 = {.max_new = 12, .temperature = 1.5f, .top_k = 1, .seed = 9,
                                .eos_id = 50256};
        ck_assert_msg(lm_generate(m, prompt, (int)t->numel, &top1, &out, &n, err, sizeof(err)) == 0,
                      "%s", err);
        for (int k = 0; k < n; k++) ck_assert_int_eq(out[k], (int32_t)fg[k]);
        free(out); free(fi); free(fg);
        lines++;
    }
    ck_assert_int_eq(lines, 4);
    /* an encoder, or a prompt too long for the allocation, is refused */
    int32_t one = 50256, *out;
    int n;
    GenerateOptions big = {.max_new = 200, .eos_id = -1};
    ck_assert_int_eq(lm_generate(m, &one, 1, &big, &out, &n, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "allocation"), "%s", err);
    model_free(m);
    st_close(&ref);
}
END_TEST

/* GPT2ForSequenceClassification: score (no bias) on the last token */
START_TEST(gpt2_classifier) { compare_model("gpt2-cls-random", 1); }
END_TEST

/* Right padding does not move the GPT-2 head: two reference lines batched
 * together, the shorter padded with <|endoftext|>, give each line's logits
 * as transformers computed them for the line alone. */
START_TEST(gpt2_classifier_padded_batch) {
    char err[1024];
    SafeTensors ref;
    Model *m = open_reference("gpt2-cls-random", 2, 64, 2, &ref);
    const int lines[2] = {1, 0}; /* "The capital of France is Paris." and "Hello world" */
    int n[2], T = 0;
    float *ids[2];
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "ids.%d", lines[i]);
        const StTensor *t = st_find(&ref, key);
        ck_assert(t != NULL);
        n[i] = (int)t->numel;
        ids[i] = malloc(sizeof(float) * n[i]);
        st_read_f32(&ref, t, ids[i]);
        if (n[i] > T) T = n[i];
    }
    ck_assert_int_ne(n[0], n[1]);
    int32_t bid[128];
    float mask[128];
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < T; t++) {
            bid[i * T + t] = t < n[i] ? (int32_t)ids[i][t] : 50256;
            mask[i * T + t] = t < n[i];
        }
    Batch bt = {.B = 2, .T = T, .ids = bid, .mask = mask};
    ck_assert_msg(model_forward(m, &bt, 0, 0, err, sizeof(err)) == 0, "%s", err);
    float got[4];
    m->be->download(got, model_logits(m), sizeof(got));
    for (int i = 0; i < 2; i++) {
        char key[32];
        float want[2];
        snprintf(key, sizeof(key), "logits.%d", lines[i]);
        st_read_f32(&ref, st_find(&ref, key), want);
        double e = rel_err(got + 2 * i, want, 2);
        ck_assert_msg(e < 1e-4, "row %d (line %d, %d of %d tokens): logits (%g, %g) vs HF alone (%g, %g)",
                      i, lines[i], n[i], T, got[2 * i], got[2 * i + 1], want[0], want[1]);
        free(ids[i]);
    }
    model_free(m);
    st_close(&ref);
}
END_TEST

/* `bilora forward` end to end: the command's output file equals the reference. */
/* `bilora generate --json` end to end: the first four reference lines give
 * the ids transformers' greedy generate gave. */
START_TEST(generate_command) {
    char cmd[4096], ref_path[1024], err[512];
    snprintf(ref_path, sizeof(ref_path), "%s/forward/gpt2-2l-random.safetensors", fixture_ref_dir());
    need_file(ref_path);
    need_file("./bilora");
    snprintf(cmd, sizeof(cmd), "head -n 4 %s/forward/gpt2-2l-random.txt | ./bilora generate --model "
             "%s/models/gpt2-2l-random --max-new-tokens 12 --json 2>&1", fixture_ref_dir(),
             fixture_ref_dir());
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    SafeTensors ref;
    ck_assert_msg(st_open(&ref, ref_path, err, sizeof(err)) == 0, "%s", err);
    char line[8192];
    int i = 0;
    while (fgets(line, sizeof(line), p)) {
        cJSON *o = cJSON_Parse(line);
        ck_assert_msg(o != NULL, "not JSON: %s", line);
        const cJSON *ids = cJSON_GetObjectItem(o, "ids");
        char key[32];
        snprintf(key, sizeof(key), "generate.%d", i);
        const StTensor *g = st_find(&ref, key);
        ck_assert(g && cJSON_GetArraySize(ids) == g->numel);
        float want[64];
        st_read_f32(&ref, g, want);
        for (int k = 0; k < g->numel; k++)
            ck_assert_int_eq((int)cJSON_GetArrayItem(ids, k)->valuedouble, (int)want[k]);
        ck_assert(cJSON_IsString(cJSON_GetObjectItem(o, "text")));
        cJSON_Delete(o);
        i++;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(i, 4);
    st_close(&ref);
}
END_TEST

START_TEST(forward_command) {
    char tmp[256], cmd[4096], out[512], ref_path[1024];
    fixture_tmpdir(tmp);
    snprintf(out, sizeof(out), "%s/hidden.safetensors", tmp);
    snprintf(ref_path, sizeof(ref_path), "%s/forward/roberta-2l-random.safetensors", fixture_ref_dir());
    need_file(ref_path);
    need_file("./bilora");
    snprintf(cmd, sizeof(cmd), "./bilora forward --model %s/models/roberta-2l-random --out %s < "
             "%s/forward/roberta-2l-random.txt 2>/dev/null", fixture_ref_dir(), out, fixture_ref_dir());
    ck_assert_int_eq(system(cmd), 0);
    char err[512];
    SafeTensors a, b;
    ck_assert_msg(st_open(&a, out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(st_open(&b, ref_path, err, sizeof(err)) == 0, "%s", err);
    int hidden = 0;
    for (int i = 0; i < b.n; i++) {
        if (strncmp(b.tensors[i].name, "hidden.", 7) != 0) continue;
        const StTensor *t = st_find(&a, b.tensors[i].name);
        ck_assert_msg(t && t->numel == b.tensors[i].numel, "%s missing or wrong size", b.tensors[i].name);
        float *x = malloc(4 * t->numel), *y = malloc(4 * t->numel);
        st_read_f32(&a, t, x);
        st_read_f32(&b, &b.tensors[i], y);
        ck_assert(rel_err(x, y, t->numel) < 1e-4);
        free(x);
        free(y);
        hidden++;
    }
    ck_assert_int_eq(hidden, a.n);
    st_close(&a);
    st_close(&b);
    fixture_rmdir(tmp);
}
END_TEST

int main(void) {
    Suite *s = suite_create("forward_hf");
    TCase *tc = tcase_create("transformers");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bert_mini_shape);
    tcase_add_test(tc, roberta_two_layers);
    tcase_add_test(tc, bert_prefixed_classifier);
    tcase_add_test(tc, bert_f16_checkpoint);
    tcase_add_test(tc, gpt2_two_layers);
    tcase_add_test(tc, gpt2_classifier);
    tcase_add_test(tc, gpt2_greedy_generation);
    tcase_add_test(tc, gpt2_classifier_padded_batch);
    tcase_add_test(tc, forward_command);
    tcase_add_test(tc, generate_command);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
