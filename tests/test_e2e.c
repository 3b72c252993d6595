/* The E2E NLG reader (datasets/e2e.c): the real files on the asset path
 * (record counts of the official release, first and last records), and
 * synthetic files for the CSV quirks we must accept (quoted commas, doubled
 * quotes, BOM, CRLF, no final newline) and the malformations we must refuse
 * with the file and the line named. */
#include "datasets/e2e.h"
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
    tcase_add_test(t, quirks_accepted);
    tcase_add_test(t, malformed_refused);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
