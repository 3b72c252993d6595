/* The E2E NLG reader (datasets/e2e.c): the real files on the asset path
 * (record counts of the official release, first and last records), and
 * synthetic files for the CSV quirks we must accept (quoted commas, doubled
 * quotes, BOM, CRLF, no final newline) and the malformations we must refuse
 * with the file and the line named. */
#include "datasets/batch.h"
#include "datasets/e2e.h"
#include "datasets/tokenizer.h"
#include "tests/fixtures.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(real_files) {
    char assets[512], dir[700], err[1024];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "real_files: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s/data/e2e", assets);
    static const struct { const char *split; int n; } want[] = {
        {"train", 42061}, {"dev", 4672}, {"test", 4693}}; /* the E2E release's sizes */
    for (int i = 0; i < 3; i++) {
        E2ESplit s;
        ck_assert_msg(e2e_load(dir, want[i].split, &s, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(s.n, want[i].n);
        if (i == 0) {
            ck_assert_str_eq(s.ex[0].mr, "name[The Vaults], eatType[pub], priceRange[more than £30], "
                                         "customer rating[5 out of 5], near[Café Adriatic]");
            ck_assert_str_eq(s.ex[0].ref, "The Vaults pub near Café Adriatic has a 5 star rating.  "
                                          "Prices start at £30.");
            ck_assert_int_eq(s.ex[0].line, 2);
            /* a quoted ref with commas in it */
            ck_assert_str_eq(s.ex[1].ref, "Close to Café Brazil, The Cambridge Blue pub serves "
                                          "delicious Tuscan Beef for the cheap price of £10.50. "
                                          "Delicious Pub food.");
            ck_assert_str_eq(s.ex[s.n - 1].ref, "Aromi is an English restaurant in the city centre.");
        }
        e2e_split_free(&s);
    }
}
END_TEST

/* Fine-tuning examples of the real records with GPT-2's tokenizer: the
 * sequence is "MR ||" + " REF" + <|endoftext|>, decodes back to that text,
 * and scores exactly the reference and the end token (position t predicts
 * token t+1); a cut keeps the prompt and counts the example truncated; a
 * limit that leaves no room for the reference names the record's line. */
START_TEST(data_to_text_encoding) {
    char assets[512], dir[700], tokdir[700], err[1024];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "data_to_text_encoding: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s/data/e2e", assets);
    snprintf(tokdir, sizeof tokdir, "%s/models/gpt2", assets);
    Tokenizer *tok;
    ck_assert_msg(tokenizer_load(&tok, tokdir, "gpt2", err, sizeof err) == 0, "%s", err);
    int eos = tokenizer_sep_id(tok);
    ck_assert_int_eq(eos, 50256);
    E2ESplit s;
    ck_assert_msg(e2e_load(dir, "dev", &s, err, sizeof err) == 0, "%s", err);
    const char *mr[2] = {s.ex[0].mr, s.ex[1].mr}, *ref[2] = {s.ex[0].ref, s.ex[1].ref};
    int line[2] = {s.ex[0].line, s.ex[1].line};
    EncodedSet es;
    ck_assert_msg(encode_data_to_text(tok, mr, ref, line, 2, 0, eos, &es, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(es.n, 2);
    ck_assert_int_eq(es.truncated, 0);
    for (int i = 0; i < 2; i++) {
        const EncodedExample *e = &es.ex[i];
        char *text = tokenizer_decode(tok, e->ids, e->n, 0, err, sizeof err);
        ck_assert_msg(text, "%s", err);
        char want[4096];
        snprintf(want, sizeof want, "%s || %s<|endoftext|>", mr[i], ref[i]);
        ck_assert_str_eq(text, want);
        free(text);
        int32_t *p;
        int np;
        ck_assert(encode_data_to_text_prompt(tok, mr[i], &p, &np, err, sizeof err) == 0);
        ck_assert_int_eq(np, e->prompt_n);
        for (int t = 0; t < np; t++) ck_assert_int_eq(p[t], e->ids[t]);
        free(p);
        int scored = 0;
        for (int t = 0; t < e->n; t++) {
            int want_t = t >= np - 1 && t + 1 < e->n ? e->ids[t + 1] : -1;
            ck_assert_msg(e->targets[t] == want_t, "record %d position %d: target %d, want %d", i, t,
                          e->targets[t], want_t);
            scored += e->targets[t] >= 0;
        }
        ck_assert_int_eq(scored, e->n - np); /* the reference's tokens and the end token */
        ck_assert_int_eq(e->targets[e->n - 2], eos);
    }
    /* cut three tokens into the first reference */
    int np0 = es.ex[0].prompt_n, n0 = es.ex[0].n;
    int32_t full[512];
    memcpy(full, es.ex[0].ids, sizeof(int32_t) * n0);
    encoded_set_free(&es);
    ck_assert_msg(encode_data_to_text(tok, mr, ref, line, 1, np0 + 3, eos, &es, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(es.ex[0].n, np0 + 3);
    ck_assert_int_eq(es.truncated, 1);
    ck_assert_int_eq(es.longest, np0 + 3);
    for (int t = 0; t < np0 + 3; t++) {
        ck_assert_int_eq(es.ex[0].ids[t], full[t]);
        ck_assert_int_eq(es.ex[0].targets[t], t >= np0 - 1 ? full[t + 1] : -1);
    }
    encoded_set_free(&es);
    /* one reference token still fits (two targets: it and its successor) */
    ck_assert_msg(encode_data_to_text(tok, mr, ref, line, 1, np0 + 1, eos, &es, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(es.ex[0].n, np0 + 1);
    ck_assert_int_eq(es.ex[0].targets[np0 - 1], full[np0]);
    ck_assert_int_eq(es.ex[0].targets[np0], full[np0 + 1]);
    encoded_set_free(&es);
    ck_assert(encode_data_to_text(tok, mr, ref, line, 1, np0, eos, &es, err, sizeof err) != 0);
    char want[128];
    snprintf(want, sizeof want, "record at line %d", line[0]);
    ck_assert_msg(strstr(err, want) && strstr(err, "--max-seq-len"), "%s", err);
    e2e_split_free(&s);
    tokenizer_free(tok);
}
END_TEST

START_TEST(quirks_accepted) {
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    write_file(dir, "trainset.csv",
               "\xEF\xBB\xBFmr,ref\r\n"
               "\"name[A], food[Thai]\",\"She said \"\"great\"\", twice.\"\r\n"
               "name[B],Plain text.\r\n"
               "\r\n"
               "\"name[C]\",\"Two\nlines.\""); /* a newline inside quotes, no final newline */
    E2ESplit s;
    ck_assert_msg(e2e_load(dir, "train", &s, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.ex[0].mr, "name[A], food[Thai]");
    ck_assert_str_eq(s.ex[0].ref, "She said \"great\", twice.");
    ck_assert_int_eq(s.ex[0].line, 2);
    ck_assert_str_eq(s.ex[1].ref, "Plain text.");
    ck_assert_str_eq(s.ex[2].ref, "Two\nlines.");
    ck_assert_int_eq(s.ex[2].line, 6);
    e2e_split_free(&s);
    fixture_rmdir(dir);
}
END_TEST

static void expect_refusal(const char *text, const char *split, const char *want1,
                           const char *want2) {
    char dir[256], err[1024] = "";
    fixture_tmpdir(dir);
    if (text) write_file(dir, strcmp(split, "dev") == 0 ? "devset.csv" : "trainset.csv", text);
    E2ESplit s;
    ck_assert_int_eq(e2e_load(dir, split, &s, err, sizeof err), -1);
    ck_assert_int_eq(s.n, 0);
    ck_assert_msg(strstr(err, want1) && (!want2 || strstr(err, want2)), "message: %s", err);
    fixture_rmdir(dir);
}

START_TEST(malformed_refused) {
    expect_refusal("mr,text\nname[A],x\n", "train", "line 1", "mr,ref");
    expect_refusal("mr,ref\nname[A],x,extra\n", "train", "line 2", "3 field(s), expected 2");
    expect_refusal("mr,ref\nname[A],x\nname[B]\n", "train", "line 3", "1 field(s)");
    expect_refusal("mr,ref\nname[A],\n", "train", "line 2", "empty ref");
    expect_refusal("mr,ref\nname[A],\"   \"\n", "train", "line 2", "empty ref"); /* only spaces */
    expect_refusal("mr,ref\n\" \t\",A ref.\n", "train", "line 2", "empty mr");
    expect_refusal("mr,ref\nname[A],\"open quote\n", "dev", "devset.csv", "ends inside a quoted");
    expect_refusal("mr,ref\nname[A],ab\"c\"d\n", "train", "line 2", NULL);
    expect_refusal("", "train", "empty file", NULL);
    expect_refusal(NULL, "train", "trainset.csv", "No such file");
    expect_refusal(NULL, "validation", "expected train, dev or test", NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("e2e");
    TCase *t = tcase_create("e2e");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, real_files);
    tcase_add_test(t, data_to_text_encoding);
    tcase_add_test(t, quirks_accepted);
    tcase_add_test(t, malformed_refused);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
