/* One LoRA training step against PyTorch + PEFT (tests/reference/
 * gen_hf_lora_grads.py): same base weights, same adapter and head values
 * (loaded from PEFT's own adapter_model.safetensors, which also checks the
 * name mapping), same batch. The loss and logits must agree to 1e-4
 * relative, and every trainable tensor's gradient to 1e-3 relative to that
 * tensor's largest gradient. */
#include "engine/model.h"
#include "engine/safetensors.h"

#include "tests/fixtures.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void peft_step(const char *base) {
    char dir[1024], model_dir[1024], path[1200], err[1024];
    snprintf(dir, sizeof(dir), "%s/lora_grads/%s", fixture_ref_dir(), base);
    snprintf(model_dir, sizeof(model_dir), "%s/models/%s", fixture_ref_dir(), base);
    SafeTensors grads;
    Batch bt;
    snprintf(path, sizeof(path), "%s/batch.safetensors", dir);
    fixture_read_batch(path, "tests/reference/gen_hf_lora_grads.py", &bt);
    int B = bt.B, T = bt.T;
    snprintf(path, sizeof(path), "%s/grads.safetensors", dir);
    ck_assert_msg(st_open(&grads, path, err, sizeof(err)) == 0, "%s", err);
    ModelOptions mo = {.model_dir = model_dir, .num_labels = 3, .max_batch = B, .max_seq = T,
                       .adapter = {.rank = 4, .alpha = 8, .targets = TARGET_QUERY | TARGET_VALUE}};
    Model *m;
    ck_assert_msg(model_load(&m, backend_cpu(), &mo, err, sizeof(err)) == 0, "%s", err);
    m->cfg.hidden_dropout_prob = 0.0f; /* the reference trains with dropout 0 */
    m->cfg.attention_probs_dropout_prob = 0.0f;
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    ck_assert_msg(model_load_adapter(m, path, err, sizeof(err)) == 0, "%s", err);
    model_zero_grad(m);
    ck_assert_msg(model_forward(m, &bt, 1, 1, err, sizeof(err)) == 0, "%s", err);
    double loss = model_loss(m, &bt, 1.0f, NULL);
    model_backward(m, 1);
    float *want_loss = fixture_read_f32(&grads, "loss", NULL);
    ck_assert_msg(fabs(loss - want_loss[0]) <= 1e-4 * fabs(want_loss[0]), "%s loss %.7f, PEFT %.7f",
                  base, loss, want_loss[0]);
    float *want_logits = fixture_read_f32(&grads, "logits", NULL), got_logits[64];
    m->be->download(got_logits, model_logits(m), sizeof(float) * B * 3);
    for (int i = 0; i < B * 3; i++)
        ck_assert_msg(fabs(got_logits[i] - want_logits[i]) < 1e-4 * (1 + fabs(want_logits[i])),
                      "%s logit %d: %g vs PEFT %g", base, i, got_logits[i], want_logits[i]);
    int compared = 0;
    double worst = 0;
    for (int i = 0; i < grads.n; i++) {
        const char *gname = grads.tensors[i].name;
        size_t len = strlen(gname);
        if (len < 5 || strcmp(gname + len - 5, ".grad") != 0) continue;
        /* map PEFT's name to ours the way the adapter loader does */
        char pname[512];
        snprintf(pname, sizeof(pname), "%.*s", (int)(len - 5), gname);
        const char *s = pname;
        if (!strncmp(s, "base_model.model.", 17)) s += 17;
        if (!strncmp(s, "bert.", 5)) s += 5;
        if (!strncmp(s, "roberta.", 8)) s += 8;
        char ours[512];
        snprintf(ours, sizeof(ours), "%s", s);
        size_t ol = strlen(ours);
        if (strstr(ours, ".lora_") && ol > 7 && !strcmp(ours + ol - 7, ".weight")) ours[ol - 7] = 0;
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
        worst = fmax(worst, diff / scale);
        compared++;
        free(want);
    }
    ck_assert_int_ge(compared, 10);
    fprintf(stderr, "%s: loss %.6f (PEFT %.6f), %d gradients, worst relative difference %.2e\n", base,
            loss, want_loss[0], compared, worst);
    free(want_loss); free(want_logits);
    batch_free(&bt);
    model_free(m);
    st_close(&grads);
}

START_TEST(bert_lora_step_matches_peft) { peft_step("bert-mini-random"); }
END_TEST
START_TEST(roberta_lora_step_matches_peft) { peft_step("roberta-2l-random"); }
END_TEST

int main(void) {
    Suite *s = suite_create("lora_peft");
    TCase *tc = tcase_create("peft");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bert_lora_step_matches_peft);
    tcase_add_test(tc, roberta_lora_step_matches_peft);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
