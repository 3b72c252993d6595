/* The dora and svd adapter forms against PEFT 0.10's DoRA and AdaLoRA layers
 * (tests/reference/gen_peft_forms.py): one training step of
 * BertForSequenceClassification (bert-mini-random, 3 labels, dropout 0) with
 * r = 4, alpha = 8 adapters on query and value, loaded from PEFT's own
 * adapter_model.safetensors (which also checks the name mapping: lora_A,
 * lora_B, AdaLoRA's lora_E [r, 1], DoRA's lora_magnitude_vector), on the
 * batch of test_lora_peft (RTE dev, first 4 rows).
 *
 * Tolerances: loss 1e-4 relative, logits 1e-4 × (1 + |logit|), every
 * trainable tensor's gradient 1e-3 of that tensor's largest gradient. The
 * reference also records how far the adapters move the logits (0.1 to 0.3),
 * so agreement to 1e-4 means the adapter path itself agrees.
 *
 * The dora step loads PEFT's file with model_load_adapter; the svd step
 * copies its tensors by mapped name and element count (AdaLoRA saves lora_E
 * as [r, 1], the svd form's vector is [r]), and adalora_file_loads checks
 * that model_load_adapter takes that file as it is.
 *
 * Known, accepted difference: PEFT's AdaLoRA scales by alpha / (ranknum +
 * 1e-5) = 8 / 4.00001, the svd form by alpha / r = 2 exactly: 2.5e-6
 * relative on the adapter path, far below the tolerances. */
#include "engine/model.h"
#include "engine/safetensors.h"

#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEFT's saved name -> ours, as model_load_adapter maps it. */
static void our_name(const char *peft, char *out, size_t cap) {
    const char *s = peft;
    if (!strncmp(s, "base_model.model.", 17)) s += 17;
    if (!strncmp(s, "bert.", 5)) s += 5;
    snprintf(out, cap, "%s", s);
    size_t ol = strlen(out);
    if (strstr(out, ".lora_") && ol > 7 && !strcmp(out + ol - 7, ".weight")) out[ol - 7] = 0;
}

static const char *kind_of(const char *name) {
    const char *kinds[] = {"lora_A", "lora_B", "lora_E", "lora_magnitude_vector", "classifier"};
    for (int i = 0; i < 5; i++)
        if (strstr(name, kinds[i])) return kinds[i];
    return "other";
}

/* Copies every tensor of PEFT's adapter file into the trainable tensor of the
 * same (mapped) name, by element count: the test's own loader, so that the
 * numeric comparison does not depend on model_load_adapter's shape rules
 * (checked separately by adalora_file_loads). */
static void copy_adapter_by_name(Model *m, const char *path) {
    char err[1024];
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < st.n; i++) {
        char ours[512];
        our_name(st.tensors[i].name, ours, sizeof(ours));
        const ParamTensor *p = param_list_find(&m->params, ours);
        ck_assert_msg(p != NULL, "%s: no trainable tensor for %s (%s)", path, st.tensors[i].name, ours);
        ck_assert_int_eq(st.tensors[i].numel, (int64_t)p->numel);
        float *h = fixture_read_f32(&st, st.tensors[i].name, NULL);
        m->be->upload(p->data, h, sizeof(float) * p->numel);
        free(h);
    }
    st_close(&st);
}

static void peft_form_step(const char *form, AdapterForm af, int engine_loader) {
    char dir[1024], model_dir[1024], path[1200], err[1024];
    snprintf(dir, sizeof(dir), "%s/peft_forms/%s", fixture_ref_dir(), form);
    snprintf(model_dir, sizeof(model_dir), "%s/models/bert-mini-random", fixture_ref_dir());
    SafeTensors grads;
    Batch bt;
    snprintf(path, sizeof(path), "%s/batch.safetensors", dir);
    fixture_read_batch(path, "tests/reference/gen_peft_forms.py", &bt);
    int B = bt.B, T = bt.T;
    snprintf(path, sizeof(path), "%s/grads.safetensors", dir);
    ck_assert_msg(st_open(&grads, path, err, sizeof(err)) == 0, "%s", err);
    ModelOptions mo = {.model_dir = model_dir, .num_labels = 3, .max_batch = B, .max_seq = T,
                       .adapter = {.form = af, .lambda = LAMBDA_REAL, .rank = 4, .alpha = 8,
                                   .targets = TARGET_QUERY | TARGET_VALUE}};
    Model *m;
    ck_assert_msg(model_load(&m, backend_cpu(), &mo, err, sizeof(err)) == 0, "%s", err);
    m->cfg.hidden_dropout_prob = 0.0f; /* the reference trains with dropout 0 */
    m->cfg.attention_probs_dropout_prob = 0.0f;
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if (engine_loader) ck_assert_msg(model_load_adapter(m, path, err, sizeof(err)) == 0, "%s", err);
    else copy_adapter_by_name(m, path);
    model_zero_grad(m);
    ck_assert_msg(model_forward(m, &bt, 1, 1, err, sizeof(err)) == 0, "%s", err);
    double loss = model_loss(m, &bt, 1.0f, NULL);
    model_backward(m, 1);

    float *want_loss = fixture_read_f32(&grads, "loss", NULL), *effect = fixture_read_f32(&grads, "adapter_effect", NULL);
    float *want_logits = fixture_read_f32(&grads, "logits", NULL), got_logits[64];
    ck_assert_int_le(B * 3, 64);
    m->be->download(got_logits, model_logits(m), sizeof(float) * B * 3);
    double worst_logit = 0;
    for (int i = 0; i < B * 3; i++) worst_logit = fmax(worst_logit, fabs(got_logits[i] - want_logits[i]));
    fprintf(stderr, "%s: loss %.7f (PEFT %.7f, rel %.1e); max |logit diff| %.2e (the adapters move the "
            "logits by %.3g)\n", form, loss, want_loss[0], fabs(loss - want_loss[0]) / fabs(want_loss[0]),
            worst_logit, effect[0]);
    ck_assert_msg(fabs(loss - want_loss[0]) <= 1e-4 * fabs(want_loss[0]), "%s loss %.7f, PEFT %.7f", form,
                  loss, want_loss[0]);
    for (int i = 0; i < B * 3; i++)
        ck_assert_msg(fabs(got_logits[i] - want_logits[i]) < 1e-4 * (1 + fabs(want_logits[i])),
                      "%s logit %d: %g vs PEFT %g", form, i, got_logits[i], want_logits[i]);

    const char *kinds[] = {"lora_A", "lora_B", "lora_E", "lora_magnitude_vector", "classifier"};
    double worst_kind[5] = {0};
    int n_kind[5] = {0}, compared = 0;
    for (int i = 0; i < grads.n; i++) {
        const char *gname = grads.tensors[i].name;
        size_t len = strlen(gname);
        if (len < 5 || strcmp(gname + len - 5, ".grad") != 0) continue;
        char pname[512], ours[512];
        snprintf(pname, sizeof(pname), "%.*s", (int)(len - 5), gname);
        our_name(pname, ours, sizeof(ours));
        const ParamTensor *p = param_list_find(&m->params, ours);
        ck_assert_msg(p != NULL, "no trainable tensor for %s (%s)", gname, ours);
        int64_t n;
        float *want = fixture_read_f32(&grads, gname, &n);
        ck_assert_int_eq(n, (int64_t)p->numel);
        double scale = 0, diff = 0;
        for (int64_t k = 0; k < n; k++) {
            scale = fmax(scale, fabs(want[k]));
            diff = fmax(diff, fabs(want[k] - p->grad[k]));
        }
        ck_assert_msg(scale > 0, "%s: reference gradient is zero", gname);
        ck_assert_msg(diff <= 1e-3 * scale, "%s: max |diff| %.3g vs max |grad| %.3g", gname, diff, scale);
        const char *kind = kind_of(gname);
        for (int k = 0; k < 5; k++)
            if (!strcmp(kind, kinds[k])) {
                worst_kind[k] = fmax(worst_kind[k], diff / scale);
                n_kind[k]++;
            }
        compared++;
        free(want);
    }
    ck_assert_int_eq(compared, grads.n - 3); /* every .grad; not loss, logits, adapter_effect */
    ck_assert_int_eq(n_kind[0], 8);
    ck_assert_int_eq(n_kind[1], 8);
    ck_assert_int_eq(n_kind[af == ADAPTER_SVD ? 2 : 3], 8);
    for (int k = 0; k < 5; k++)
        if (n_kind[k])
            fprintf(stderr, "  %-22s %2d gradients, worst max|diff|/max|grad| %.2e\n", kinds[k], n_kind[k],
                    worst_kind[k]);
    free(want_loss); free(effect); free(want_logits);
    batch_free(&bt);
    model_free(m);
    st_close(&grads);
}

START_TEST(dora_step_matches_peft) { peft_form_step("dora", ADAPTER_DORA, 1); }
END_TEST
START_TEST(svd_step_matches_peft_adalora) { peft_form_step("adalora", ADAPTER_SVD, 0); }
END_TEST

/* model_load_adapter takes PEFT's AdaLoRA file as PEFT writes it: lora_E is
 * saved as [r, 1] (a column), the svd form's λ vector is [r]; every value
 * lands in the tensor of the mapped name. */
START_TEST(adalora_file_loads) {
    char dir[1024], model_dir[1024], path[1200], err[1024];
    snprintf(dir, sizeof(dir), "%s/peft_forms/adalora", fixture_ref_dir());
    snprintf(model_dir, sizeof(model_dir), "%s/models/bert-mini-random", fixture_ref_dir());
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    ModelOptions mo = {.model_dir = model_dir, .num_labels = 3, .max_batch = 1, .max_seq = 8,
                       .adapter = {.form = ADAPTER_SVD, .lambda = LAMBDA_REAL, .rank = 4, .alpha = 8,
                                   .targets = TARGET_QUERY | TARGET_VALUE}};
    Model *m;
    ck_assert_msg(model_load(&m, backend_cpu(), &mo, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(model_load_adapter(m, path, err, sizeof(err)) == 0, "%s", err);
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < st.n; i++) {
        char ours[512];
        our_name(st.tensors[i].name, ours, sizeof(ours));
        const ParamTensor *p = param_list_find(&m->params, ours);
        ck_assert_msg(p != NULL, "no trainable tensor for %s", st.tensors[i].name);
        float *want = fixture_read_f32(&st, st.tensors[i].name, NULL), *got = malloc(sizeof(float) * p->numel);
        m->be->download(got, p->data, sizeof(float) * p->numel);
        ck_assert_msg(memcmp(got, want, sizeof(float) * p->numel) == 0, "%s: loaded values differ",
                      st.tensors[i].name);
        free(want);
        free(got);
    }
    st_close(&st);
    model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("forms_peft");
    TCase *tc = tcase_create("peft");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, dora_step_matches_peft);
    tcase_add_test(tc, svd_step_matches_peft_adalora);
    tcase_add_test(tc, adalora_file_loads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
