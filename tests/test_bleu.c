/* BLEU (datasets/bleu.c) against sacreBLEU, the reference the E2E numbers
 * are compared with: the 13a tokenization of awkward lines, and corpus
 * scores (with their n-gram counts, brevity penalty and lengths) for
 * multi-reference sets built from the real E2E dev references, plus the
 * edge cases: an empty hypothesis, no match at all, hypotheses shorter than
 * 4 tokens (no 4-grams), variable numbers of references. sacreBLEU runs in
 * the project's .venv (BILORA_PYTHON overrides). */
#include "datasets/bleu.h"
#include "datasets/e2e.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char start_cwd[PATH_MAX];

typedef struct {
    const char *hyps[128];
    const char *refs[1024];
    int start[129];
    int n, nr;
} Case;

static void add(Case *c, const char *hyp, const char *const *refs, int nrefs) {
    c->start[c->n] = c->nr;
    c->hyps[c->n++] = hyp;
    for (int k = 0; k < nrefs; k++) c->refs[c->nr++] = refs[k];
    c->start[c->n] = c->nr;
}

/* Runs sacrebleu on the case (and the lines to tokenize); NULL when there
 * is no Python with sacrebleu (the test says it skipped). */
static cJSON *sacrebleu_says(const Case *c, const char *const *lines, int nl) {
    const char *py = getenv("BILORA_PYTHON");
    char venv[PATH_MAX + 32], script[PATH_MAX + 64], path[512], cmd[3 * PATH_MAX + 600];
    snprintf(venv, sizeof venv, "%s/.venv/bin/python", start_cwd);
    if (!py) py = venv;
    if (access(py, X_OK) != 0) return NULL;
    snprintf(script, sizeof script, "%s/tests/reference/check_bleu.py", start_cwd);
    char dir[256];
    fixture_tmpdir(dir);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *j = cJSON_CreateObject(), *hy = cJSON_AddArrayToObject(j, "hyps"),
          *rf = cJSON_AddArrayToObject(j, "refs"), *ln = cJSON_AddArrayToObject(j, "lines");
    for (int i = 0; i < c->n; i++) {
        cJSON_AddItemToArray(hy, cJSON_CreateString(c->hyps[i]));
        cJSON *r = cJSON_CreateArray();
        for (int k = c->start[i]; k < c->start[i + 1]; k++) cJSON_AddItemToArray(r, cJSON_CreateString(c->refs[k]));
        cJSON_AddItemToArray(rf, r);
    }
    for (int i = 0; i < nl; i++) cJSON_AddItemToArray(ln, cJSON_CreateString(lines[i]));
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", py, script, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
    out[len] = 0;
    int rc = pclose(p);
    fixture_rmdir(dir);
    ck_assert_msg(rc == 0, "%s failed (is sacrebleu in the venv? scripts/setup-python.sh): %s", cmd, out);
    cJSON *res = cJSON_Parse(out);
    ck_assert_msg(res != NULL, "sacrebleu printed: %s", out);
    free(out);
    return res;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(x), "no number '%s'", k);
    return x->valuedouble;
}

static void compare(const Case *c, const char *what, const cJSON *ref) {
    BleuScore s;
    char err[256];
    ck_assert_msg(bleu_corpus(c->hyps, c->n, c->refs, c->start, &s, err, sizeof err) == 0, "%s", err);
    double want = num(ref, "score");
    printf("  %s: BLEU %.6f (sacrebleu %.6f), bp %.4f, lengths %ld/%ld\n", what, s.score, want, s.bp,
           s.sys_len, s.ref_len);
    ck_assert_msg(fabs(s.score - want) <= 1e-9 * fmax(1.0, want), "%s: %.12g vs %.12g", what, s.score, want);
    ck_assert_msg(fabs(s.bp - num(ref, "bp")) <= 1e-12, "%s: bp", what);
    ck_assert_int_eq(s.sys_len, (long)num(ref, "sys_len"));
    ck_assert_int_eq(s.ref_len, (long)num(ref, "ref_len"));
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(ref, "counts"),
                *tt = cJSON_GetObjectItemCaseSensitive(ref, "totals"),
                *pr = cJSON_GetObjectItemCaseSensitive(ref, "precisions");
    for (int k = 0; k < BLEU_ORDER; k++) {
        ck_assert_int_eq(s.correct[k], (long)cJSON_GetArrayItem(cn, k)->valuedouble);
        ck_assert_int_eq(s.total[k], (long)cJSON_GetArrayItem(tt, k)->valuedouble);
        ck_assert_msg(fabs(s.precisions[k] - cJSON_GetArrayItem(pr, k)->valuedouble) <= 1e-9,
                      "%s: precision %d", what, k + 1);
    }
}

START_TEST(tokenize_13a_and_edge_cases) {
    static const char *lines[] = {
        "Prices start at \xC2\xA3" "30.  ", "It's a 5-star pub, near Caf\xC3\xA9 Adriatic.",
        "a.. b,,c .d", "1,000.5 and 3-4 or 10-", "&amp; &quot;x&quot; <skipped> end-\nline\tend",
        "(parens) [brackets] {braces} ~tilde` ^caret_ @at /slash \\back |bar",
        "", "   ", "The Vaults is a pub.It is near Caf\xC3\xA9 Adriatic,which is 5 out of 5.",
        /* Unicode spaces split as Python's str.split() does: no-break,
         * ideographic, em space, a trailing one stripped */
        "a\xC2\xA0" "b\xE3\x80\x80" "c.\xE2\x80\x83" "d\x1f" "e \xC2\xA0",
    };
    int nl = (int)(sizeof(lines) / sizeof(lines[0]));
    Case c = {0};
    const char *r1[] = {"The cat sat on the mat.", "A cat was sitting on the mat."};
    const char *r2[] = {"There is a dog in the garden."};
    const char *r3[] = {"Zizzi is a cheap pub.", "Zizzi, a pub, is cheap.", "A cheap pub: Zizzi."};
    add(&c, "The cat sat on a mat.", r1, 2);
    add(&c, "", r2, 1);               /* empty hypothesis */
    add(&c, "Zizzi pub", r3, 3);      /* no 3- or 4-grams */
    cJSON *ref = sacrebleu_says(&c, lines, nl);
    if (!ref) {
        fprintf(stderr, "tokenize_13a_and_edge_cases: no Python with sacrebleu, skipped\n");
        return;
    }
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(ref, "tokens");
    for (int i = 0; i < nl; i++) {
        char *t = bleu_tokenize_13a(lines[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strcmp(t, cJSON_GetArrayItem(toks, i)->valuestring) == 0, "line %d: '%s' vs sacrebleu '%s'",
                      i, t, cJSON_GetArrayItem(toks, i)->valuestring);
        free(t);
    }
    compare(&c, "mixed", ref);
    cJSON_Delete(ref);
    /* a generated text cut inside a character is tokenized, not refused */
    char *broken = bleu_tokenize_13a("Caf\xC3 serves food.\xE2\x80");
    ck_assert_ptr_nonnull(broken);
    ck_assert_str_eq(broken, "Caf\xC3 serves food . \xE2\x80");
    free(broken);
    /* nothing matches: 0, as sacrebleu's early return */
    Case z = {0};
    add(&z, "xyzzy plugh", r2, 1);
    ref = sacrebleu_says(&z, NULL, 0);
    compare(&z, "no match", ref);
    cJSON_Delete(ref);
    /* a hypothesis without references is refused */
    int st[2] = {0, 0};
    const char *h[] = {"x"};
    BleuScore s;
    char err[128];
    ck_assert_int_eq(bleu_corpus(h, 1, NULL, st, &s, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no reference"));
}
END_TEST

/* The real dev references: the first 60 meaning representations, each
 * "generated" as a reference of the next one (partial overlap) or its own
 * first reference cut short (brevity), scored against all its own. */
START_TEST(e2e_dev_corpus) {
    char assets[512], dir[700], err[1024];
    if (fixture_assets(assets, sizeof assets) != 0) {
        fprintf(stderr, "e2e_dev_corpus: BILORA_ASSETS unset, skipped\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s/data/e2e", assets);
    E2ESplit s;
    ck_assert_msg(e2e_load(dir, "dev", &s, err, sizeof err) == 0, "%s", err);
    int gs[128], ng = 0;
    for (int i = 0; i < s.n && ng < 61; i++)
        if (i == 0 || strcmp(s.ex[i].mr, s.ex[i - 1].mr) != 0) gs[ng++] = i;
    ck_assert_int_eq(ng, 61);
    gs[ng] = s.n;
    static char cut[60][512];
    Case c = {0};
    const char *refs[64];
    for (int g = 0; g < 60; g++) {
        int nr = 0;
        for (int i = gs[g]; i < gs[g + 1] && nr < 16; i++) refs[nr++] = s.ex[i].ref;
        const char *hyp = s.ex[gs[g + 1]].ref;
        if (g % 3 == 2) { /* the first reference's first half */
            snprintf(cut[g], sizeof cut[g], "%.*s", (int)strlen(s.ex[gs[g]].ref) / 2, s.ex[gs[g]].ref);
            hyp = cut[g];
        }
        add(&c, hyp, refs, nr);
    }
    cJSON *ref = sacrebleu_says(&c, NULL, 0);
    if (!ref) {
        fprintf(stderr, "e2e_dev_corpus: no Python with sacrebleu, skipped\n");
        e2e_split_free(&s);
        return;
    }
    compare(&c, "E2E dev, 60 MRs", ref);
    cJSON_Delete(ref);
    e2e_split_free(&s);
}
END_TEST

int main(void) {
    if (!getcwd(start_cwd, sizeof start_cwd)) snprintf(start_cwd, sizeof start_cwd, ".");
    Suite *s = suite_create("bleu");
    TCase *t = tcase_create("sacrebleu");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, tokenize_13a_and_edge_cases);
    tcase_add_test(t, e2e_dev_corpus);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
