/* Tests for datasets/tokenizer: ids identical to the Hugging Face peers.
 *
 * Environment:
 *   BILORA_ASSETS   the shared assets (models/, data/glue/). When unset,
 *                   ../shared (relative to the working directory, the
 *                   repository root under scripts/run-tests.sh) is tried,
 *                   and the asset-based tests are skipped if it is absent.
 *                   When set, missing assets or reference files FAIL.
 *   BILORA_REF_DIR  where tests/reference/gen_tokens.py wrote tokens/
 *                   (default build/reference). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets/tokenizer.h"

/* ------------------------------------------------------------ helpers */

static const char *assets_dir(void) {
    const char *a = getenv("BILORA_ASSETS");
    return a && *a ? a : "../shared";
}

static int assets_required(void) {
    const char *a = getenv("BILORA_ASSETS");
    return a && *a;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1: go on; 0: skip (assets absent and not asked for). Fails when they
 * were asked for (BILORA_ASSETS set) but are not there. */
static int have_assets(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/models", assets_dir());
    if (is_dir(p)) return 1;
    ck_assert_msg(!assets_required(), "BILORA_ASSETS=%s has no models/ directory", assets_dir());
    fprintf(stderr, "note: no assets at %s (set BILORA_ASSETS); skipping\n", assets_dir());
    return 0;
}

static Tokenizer *load_model(const char *model, const char *type) {
    char dir[4096], err[1024];
    snprintf(dir, sizeof dir, "%s/models/%s", assets_dir(), model);
    Tokenizer *t = NULL;
    int rc = tokenizer_load(&t, dir, type, err, sizeof err);
    ck_assert_msg(rc == 0, "tokenizer_load(%s, %s): %s", dir, type ? type : "NULL", err);
    return t;
}

static void format_ids(char *buf, size_t cap, const int32_t *v, int n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", (int)v[i]);
}

/* Encodes and compares with the expected ids (and type ids when given). */
static void expect_encoding(const Tokenizer *t, const char *a, const char *b, int max_len,
                            const int32_t *want, int nwant, const int32_t *want_types) {
    int32_t *ids, *types;
    int n;
    char err[1024], got[4096], exp[4096];
    ck_assert_msg(tokenizer_encode(t, a, b, max_len, &ids, &types, &n, err, sizeof err) == 0,
                  "encode \"%s\": %s", a, err);
    format_ids(got, sizeof got, ids, n);
    format_ids(exp, sizeof exp, want, nwant);
    ck_assert_msg(n == nwant && memcmp(ids, want, (size_t)n * sizeof *ids) == 0,
                  "\"%s\"%s%s%s: expected [%s], got [%s]", a, b ? " / \"" : "", b ? b : "",
                  b ? "\"" : "", exp, got);
    if (want_types) {
        format_ids(got, sizeof got, types, n);
        format_ids(exp, sizeof exp, want_types, nwant);
        ck_assert_msg(memcmp(types, want_types, (size_t)n * sizeof *types) == 0,
                      "\"%s\": type ids: expected [%s], got [%s]", a, exp, got);
    }
    free(ids);
    free(types);
}

#define EXPECT(t, a, b, max_len, ...)                                                      \
    do {                                                                                   \
        const int32_t want_[] = {__VA_ARGS__};                                             \
        expect_encoding(t, a, b, max_len, want_, (int)(sizeof want_ / sizeof *want_), NULL); \
    } while (0)

/* Parses "1 2 3" into v (cap entries); returns the count or -1. */
static int parse_ids(const char *s, int32_t *v, int cap) {
    int n = 0;
    while (*s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || n == cap) return -1;
        v[n++] = (int32_t)x;
        s = end;
        while (*s == ' ') s++;
    }
    return n;
}

/* ------------------------------------------- (1) the reference files */

/* Compares every line of one reference file; returns the line count. */
static int compare_file(const Tokenizer *t, const char *path, int max_len, int *mismatches,
                        char *first, size_t firstcap) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    enum { MAXN = 8192 };
    static int32_t want[MAXN], want_types[MAXN];
    while ((got = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (got > 0 && line[got - 1] == '\n') line[--got] = '\0';
        char *field[4];
        int nf = 0;
        char *p = line;
        field[nf++] = p;
        while (nf < 4 && (p = strchr(p, '\t'))) {
            *p++ = '\0';
            field[nf++] = p;
        }
        ck_assert_msg(nf == 4 && !strchr(field[3], '\t'),
                      "%s: line %d: expected 4 tab-separated fields", path, lineno);
        int nw = parse_ids(field[2], want, MAXN);
        int nt = parse_ids(field[3], want_types, MAXN);
        ck_assert_msg(nw >= 0 && nw == nt, "%s: line %d: bad id lists", path, lineno);
        const char *b = field[1][0] ? field[1] : NULL;
        int32_t *ids, *types;
        int n;
        char err[1024];
        int rc = tokenizer_encode(t, field[0], b, max_len, &ids, &types, &n, err, sizeof err);
        ck_assert_msg(rc == 0, "%s: line %d: encode failed: %s", path, lineno, err);
        int same = n == nw && memcmp(ids, want, (size_t)n * sizeof *ids) == 0 &&
                   memcmp(types, want_types, (size_t)n * sizeof *types) == 0;
        if (!same && (*mismatches)++ == 0) {
            char e1[2048], g1[2048], e2[1024], g2[1024];
            format_ids(e1, sizeof e1, want, nw);
            format_ids(g1, sizeof g1, ids, n);
            format_ids(e2, sizeof e2, want_types, nw);
            format_ids(g2, sizeof g2, types, n);
            snprintf(first, firstcap,
                     "%.500s: line %d: text_a \"%.200s\" text_b \"%.200s\"\n  expected ids [%s]\n"
                     "  got      ids [%s]\n  expected types [%s]\n  got      types [%s]",
                     path, lineno, field[0], b ? b : "", e1, g1, e2, g2);
        }
        free(ids);
        free(types);
    }
    free(line);
    fclose(f);
    return lineno;
}

static const char *const REF_MODELS[] = {"bert-tiny", "roberta-base", "gpt2"};
static const char *const REF_FILES[] = {
    "CoLA.tsv",  "CoLA.max32.tsv",  "SST-2.tsv", "SST-2.max32.tsv", "MRPC.tsv",
    "MRPC.max32.tsv", "STS-B.tsv", "STS-B.max32.tsv", "RTE.tsv", "RTE.max32.tsv",
    "edge.tsv", "edge.max11.tsv", "edge.max12.tsv"};

START_TEST(test_reference_files) {
    if (!have_assets()) return;
    const char *ref = getenv("BILORA_REF_DIR");
    if (!ref || !*ref) ref = "build/reference";
    char tokdir[4096], path[8192];
    snprintf(tokdir, sizeof tokdir, "%s/tokens", ref);
    /* every expected file must be there: a generator that silently wrote
     * nothing must not turn into a passing test */
    for (size_t m = 0; m < sizeof REF_MODELS / sizeof *REF_MODELS; m++)
        for (size_t k = 0; k < sizeof REF_FILES / sizeof *REF_FILES; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", tokdir, REF_MODELS[m], REF_FILES[k]);
            ck_assert_msg(access(path, R_OK) == 0,
                          "missing reference file %s (run: BILORA_ASSETS=%s .venv/bin/python "
                          "tests/reference/gen_tokens.py %s)", path, assets_dir(), ref);
        }
    DIR *d = opendir(tokdir);
    ck_assert_msg(d != NULL, "%s: %s", tokdir, strerror(errno));
    struct dirent *e;
    int files = 0, total_lines = 0, total_bad = 0;
    char report[8192] = "";
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char mdir[4400], mt[64] = "";
        snprintf(mdir, sizeof mdir, "%s/%s", tokdir, e->d_name);
        if (!is_dir(mdir)) continue;
        snprintf(path, sizeof path, "%s/model_type", mdir);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "%s: cannot open: %s", path, strerror(errno));
        ck_assert_msg(fgets(mt, sizeof mt, f) != NULL, "%s: empty", path);
        fclose(f);
        mt[strcspn(mt, "\r\n")] = '\0';
        Tokenizer *t = load_model(e->d_name, mt);
        DIR *fd = opendir(mdir);
        ck_assert(fd != NULL);
        struct dirent *fe;
        while ((fe = readdir(fd))) {
            size_t len = strlen(fe->d_name);
            if (len < 5 || strcmp(fe->d_name + len - 4, ".tsv") != 0) continue;
            int max_len = 0;
            const char *mx = strstr(fe->d_name, ".max");
            if (mx) max_len = atoi(mx + 4);
            snprintf(path, sizeof path, "%s/%s", mdir, fe->d_name);
            int bad = 0;
            char first[8192] = "";
            int lines = compare_file(t, path, max_len, &bad, first, sizeof first);
            printf("  %s/%s: %d lines, %s\n", e->d_name, fe->d_name, lines,
                   bad ? "MISMATCHES" : "all identical");
            if (bad) {
                fprintf(stderr, "%d of %d lines differ; first:\n%s\n", bad, lines, first);
                if (!report[0]) snprintf(report, sizeof report, "%s", first);
            }
            files++;
            total_lines += lines;
            total_bad += bad;
        }
        closedir(fd);
        tokenizer_free(t);
    }
    closedir(d);
    printf("  reference: %d files, %d encodings compared, %d differ\n", files, total_lines,
           total_bad);
    ck_assert_msg(total_bad == 0, "%d encodings differ from Hugging Face; first: %s", total_bad,
                  report);
}
END_TEST

/* ------------------------------------------------- (2) known ids */

START_TEST(test_known_ids) {
    if (!have_assets()) return;
    /* the ids shared/models/README.md records */
    Tokenizer *bert = load_model("bert-tiny", "bert");
    EXPECT(bert, "the capital of france is [MASK] .", NULL, 0, 101, 1996, 3007, 1997, 2605, 2003,
           103, 1012, 102);
    ck_assert_int_eq(tokenizer_kind(bert), TOKENIZER_WORDPIECE);
    ck_assert_int_eq(tokenizer_vocab_size(bert), 30522);
    ck_assert_int_eq(tokenizer_pad_id(bert), 0);
    ck_assert_int_eq(tokenizer_unk_id(bert), 100);
    ck_assert_int_eq(tokenizer_cls_id(bert), 101);
    ck_assert_int_eq(tokenizer_sep_id(bert), 102);
    ck_assert_int_eq(tokenizer_mask_id(bert), 103);
    ck_assert_str_eq(tokenizer_id_to_token(bert, 2605), "france");
    ck_assert_ptr_null(tokenizer_id_to_token(bert, 30522));
    ck_assert_ptr_null(tokenizer_id_to_token(bert, -1));
    {
        /* pair template: type 1 for b and its [SEP] */
        static const int32_t ids[] = {101, 7592, 102, 2088, 102};
        static const int32_t types[] = {0, 0, 0, 1, 1};
        expect_encoding(bert, "Hello", "world", 0, ids, 5, types);
    }
    tokenizer_free(bert);

    Tokenizer *rob = load_model("roberta-base", "roberta");
    EXPECT(rob, "Hello world", NULL, 0, 0, 31414, 232, 2);
    ck_assert_int_eq(tokenizer_kind(rob), TOKENIZER_BPE);
    ck_assert_int_eq(tokenizer_vocab_size(rob), 50265);
    ck_assert_int_eq(tokenizer_cls_id(rob), 0);
    ck_assert_int_eq(tokenizer_pad_id(rob), 1);
    ck_assert_int_eq(tokenizer_sep_id(rob), 2);
    ck_assert_int_eq(tokenizer_unk_id(rob), 3);
    ck_assert_int_eq(tokenizer_mask_id(rob), 50264);
    {
        static const int32_t ids[] = {0, 31414, 2, 2, 8331, 2};
        static const int32_t types[] = {0, 0, 0, 0, 0, 0};
        expect_encoding(rob, "Hello", "world", 0, ids, 6, types);
    }
    tokenizer_free(rob);
    /* model_type NULL: roberta-base's old config.json has none; the <s> in
     * its vocabulary picks the roberta template */
    rob = load_model("roberta-base", NULL);
    EXPECT(rob, "Hello world", NULL, 0, 0, 31414, 232, 2);
    tokenizer_free(rob);

    Tokenizer *gpt = load_model("gpt2", "gpt2");
    EXPECT(gpt, "Hello world", NULL, 0, 15496, 995);
    EXPECT(gpt, "name[The Eagle], eatType[coffee shop] || The Eagle is a coffee shop.", NULL, 0,
           3672, 58, 464, 18456, 4357, 4483, 6030, 58, 1073, 5853, 6128, 60, 8614, 383, 18456,
           318, 257, 6891, 6128, 13);
    ck_assert_int_eq(tokenizer_vocab_size(gpt), 50257);
    ck_assert_int_eq(tokenizer_cls_id(gpt), -1);
    ck_assert_int_eq(tokenizer_mask_id(gpt), -1);
    ck_assert_int_eq(tokenizer_sep_id(gpt), 50256);
    ck_assert_int_eq(tokenizer_pad_id(gpt), 50256);
    ck_assert_str_eq(tokenizer_id_to_token(gpt, 50256), "<|endoftext|>");
    {
        int32_t *ids;
        int n;
        char err[512];
        ck_assert_int_eq(tokenizer_encode_plain(gpt, "Hello world", &ids, &n, err, sizeof err), 0);
        ck_assert_int_eq(n, 2);
        ck_assert_int_eq(ids[0], 15496);
        free(ids);
        ck_assert_int_eq(tokenizer_encode_plain(gpt, "", &ids, &n, err, sizeof err), 0);
        ck_assert_int_eq(n, 0);
        free(ids);
    }
    tokenizer_free(gpt);
}
END_TEST

/* The gpt2 directory's tokenizer.json (old format) and its vocab.json +
 * merges.txt must give the same tokenizer. */
START_TEST(test_gpt2_json_equals_txt) {
    if (!have_assets()) return;
    char tmp[] = "/tmp/bilora_tok_XXXXXX", src[4096], dst[8192];
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    const char *names[] = {"vocab.json", "merges.txt"};
    char cwd[2048] = "";
    /* symlinks resolve relative to their own folder: make the path absolute */
    if (assets_dir()[0] != '/') ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s%s%.1500s/models/gpt2/%s", cwd, cwd[0] ? "/" : "",
                 assets_dir(), names[i]);
        snprintf(dst, sizeof dst, "%s/%s", tmp, names[i]);
        ck_assert_msg(symlink(src, dst) == 0, "symlink %s: %s", dst, strerror(errno));
    }
    char err[1024];
    Tokenizer *a = load_model("gpt2", "gpt2"), *b = NULL;
    ck_assert_msg(tokenizer_load(&b, tmp, "gpt2", err, sizeof err) == 0, "%s", err);
    const char *texts[] = {"Hello world", "  lots   of\tspace\n\n", "It's 3.14159 o'clock!",
                           "naïve café — “quoted” 北京 🥺"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        int32_t *ia, *ib;
        int na, nb;
        ck_assert(tokenizer_encode_plain(a, texts[k], &ia, &na, err, sizeof err) == 0);
        ck_assert(tokenizer_encode_plain(b, texts[k], &ib, &nb, err, sizeof err) == 0);
        ck_assert_msg(na == nb && memcmp(ia, ib, (size_t)na * sizeof *ia) == 0,
                      "tokenizer.json and vocab.json+merges.txt differ on \"%s\"", texts[k]);
        free(ia);
        free(ib);
    }
    tokenizer_free(a);
    tokenizer_free(b);
    for (int i = 0; i < 2; i++) {
        snprintf(dst, sizeof dst, "%s/%s", tmp, names[i]);
        unlink(dst);
    }
    rmdir(tmp);
}
END_TEST

/* -------------------------------------------------- (3) bad inputs */

static void write_file(const char *dir, const char *name, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void remove_files(const char *dir) {
    const char *names[] = {"tokenizer.json", "vocab.json", "merges.txt", "vocab.txt",
                           "tokenizer_config.json", "config.json"};
    char p[4096];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

/* tokenizer_load must fail, set *out to NULL, and say something containing
 * each of the given fragments. */
static void expect_load_error(const char *dir, const char *type, const char *frag1,
                              const char *frag2) {
    Tokenizer *t = (Tokenizer *)&t; /* garbage, to see it reset */
    char err[1024] = "";
    int rc = tokenizer_load(&t, dir, type, err, sizeof err);
    ck_assert_msg(rc == -1, "tokenizer_load(%s) should fail", dir);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, frag1) != NULL, "error \"%s\" should mention \"%s\"", err, frag1);
    if (frag2)
        ck_assert_msg(strstr(err, frag2) != NULL, "error \"%s\" should mention \"%s\"", err,
                      frag2);
}

static const char TINY_VOCAB[] = "{\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3}";

START_TEST(test_bad_inputs) {
    char tmp[] = "/tmp/bilora_tok_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/does-not-exist", tmp);
    expect_load_error(missing, "bert", missing, "No such file");
    expect_load_error(tmp, "bert", tmp, "no tokenizer files");
    expect_load_error(tmp, "llama", "llama", "expected bert, roberta or gpt2");

    /* truncated JSON: the message names the file and where it stopped */
    write_file(tmp, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,\n");
    expect_load_error(tmp, "gpt2", "tokenizer.json: line ", "truncated?");
    write_file(tmp, "tokenizer.json", "{\"model\": 3}");
    expect_load_error(tmp, "gpt2", "tokenizer.json", "\"model\"");
    write_file(tmp, "tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    expect_load_error(tmp, "gpt2", "tokenizer.json", "Unigram");
    write_file(tmp, "tokenizer.json",
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]},"
               " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_load_error(tmp, "gpt2", "tokenizer.json: model.merges[0]", "'ab' is not in the vocabulary");
    write_file(tmp, "tokenizer.json",
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
               "\"merges\": [\"a b\", \"ab\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_load_error(tmp, "gpt2", "model.merges[1]", "expected");
    write_file(tmp, "tokenizer.json",
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []},"
               " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_load_error(tmp, "gpt2", "model.vocab", "'a'");
    write_file(tmp, "tokenizer.json",
               "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[CLS]\": 0}}, "
               "\"pre_tokenizer\": {\"type\": \"Whitespace\"}}");
    expect_load_error(tmp, "bert", "tokenizer.json", "Whitespace");
    remove_files(tmp);

    /* vocab.json + merges.txt */
    write_file(tmp, "vocab.json", TINY_VOCAB);
    expect_load_error(tmp, "gpt2", "merges.txt is missing", NULL);
    write_file(tmp, "merges.txt", "#version: 0.2\na b\nabc\n");
    expect_load_error(tmp, "gpt2", "merges.txt: line 3", "malformed merge 'abc'");
    write_file(tmp, "merges.txt", "#version: 0.2\na b c\n");
    expect_load_error(tmp, "gpt2", "merges.txt: line 2", "two tokens");
    write_file(tmp, "merges.txt", "a b\n\nab c\n");
    expect_load_error(tmp, "gpt2", "merges.txt: line 2", "empty line");
    write_file(tmp, "merges.txt", "a x\n");
    expect_load_error(tmp, "gpt2", "merges.txt: line 1", "'x' is not in the vocabulary");
    write_file(tmp, "vocab.json", "[1, 2]");
    expect_load_error(tmp, "gpt2", "vocab.json", "expected an object");
    write_file(tmp, "vocab.json", "{\"a\": -4}");
    expect_load_error(tmp, "gpt2", "vocab.json", "integer id");
    write_file(tmp, "vocab.json", "");
    expect_load_error(tmp, "gpt2", "vocab.json", "invalid JSON");
    /* a roberta template needs <s> and </s> */
    write_file(tmp, "vocab.json", TINY_VOCAB);
    write_file(tmp, "merges.txt", "#version: 0.2\na b\n\n\n");
    expect_load_error(tmp, "roberta", "needs <s> and </s>", NULL);
    remove_files(tmp);

    /* vocab.txt */
    write_file(tmp, "vocab.txt", "");
    expect_load_error(tmp, "bert", "vocab.txt", "empty vocabulary");
    write_file(tmp, "vocab.txt", "[PAD]\n[UNK]\nhello\n");
    expect_load_error(tmp, "bert", "needs [CLS] and [SEP]", NULL);
    write_file(tmp, "tokenizer_config.json", "{\"do_lower_case\": tru");
    write_file(tmp, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
    expect_load_error(tmp, "bert", "tokenizer_config.json", "invalid JSON");
    remove_files(tmp);
    rmdir(tmp);
}
END_TEST

/* A tiny hand-made WordPiece vocabulary: checks the rules without assets,
 * plus the encode-time errors. */
START_TEST(test_small_wordpiece) {
    char tmp[] = "/tmp/bilora_tok_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    /* ids: [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4 un5 ##aff6 ##able7 ,8 aff9 able10 ##s11 */
    write_file(tmp, "vocab.txt",
               "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\n,\naff\nable\n##s\n");
    Tokenizer *t;
    char err[1024];
    ck_assert_msg(tokenizer_load(&t, tmp, "bert", err, sizeof err) == 0, "%s", err);
    EXPECT(t, "UnAffable", NULL, 0, 2, 5, 6, 7, 3);           /* lower-cased, ## pieces */
    EXPECT(t, "unaffables,able", NULL, 0, 2, 5, 6, 7, 11, 8, 10, 3);
    EXPECT(t, "unx able", NULL, 0, 2, 1, 10, 3);              /* one bad piece: whole word [UNK] */
    EXPECT(t, "[MASK]able [mask]", NULL, 0, 2, 4, 10, 1, 1, 1, 3); /* [mask] is not special */
    EXPECT(t, "", NULL, 0, 2, 3);
    EXPECT(t, "able able able", "aff aff", 5, 2, 10, 3, 9, 3); /* budget 2: 1 + 1 */
    EXPECT(t, "able able able", "aff", 6, 2, 10, 10, 3, 9, 3); /* budget 3: short b kept whole */

    int32_t *ids, *types;
    int n;
    ck_assert_int_eq(tokenizer_encode(t, "able", "aff", 2, &ids, &types, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "special tokens") != NULL, "%s", err);
    ck_assert_int_eq(tokenizer_encode(t, "ab\xC3(", NULL, 0, &ids, &types, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "UTF-8") != NULL, "%s", err);
    ck_assert_int_eq(tokenizer_encode(t, "ok", "\xED\xA0\x80", 0, &ids, &types, &n, err,
                                      sizeof err), -1); /* a surrogate */
    ck_assert_msg(strstr(err, "text_b") != NULL, "%s", err);
    tokenizer_free(t);

    /* cased: tokenizer_config.json turns lower-casing (and so accent
     * stripping) off */
    write_file(tmp, "tokenizer_config.json", "{\"do_lower_case\": false}");
    ck_assert_msg(tokenizer_load(&t, tmp, "bert", err, sizeof err) == 0, "%s", err);
    EXPECT(t, "UnAffable unaffable", NULL, 0, 2, 1, 5, 6, 7, 3);
    tokenizer_free(t);
    remove_files(tmp);
    rmdir(tmp);
}
END_TEST

/* A tiny byte-level BPE in both tokenizer.json merge formats: old "a b"
 * strings (tokenizers < 0.20, like the shared gpt2 file) and new arrays. */
START_TEST(test_small_bpe_formats) {
    char tmp[] = "/tmp/bilora_tok_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    /* "\u0120" is GPT-2's stand-in for the space byte */
    const char *vocab = "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 4}";
    const char *merges[2] = {"\"merges\": [\"a b\", \"\\u0120 ab\"]",
                             "\"merges\": [[\"a\", \"b\"], [\"\\u0120\", \"ab\"]]"};
    char json[1024], err[1024];
    for (int f = 0; f < 2; f++)
        for (int prefix = 0; prefix < 2; prefix++) {
            snprintf(json, sizeof json,
                     "{\"model\": {%s%s, %s}, \"normalizer\": null, \"pre_tokenizer\": "
                     "{\"type\": \"ByteLevel\", \"add_prefix_space\": %s}}",
                     f ? "\"type\": \"BPE\", " : "", vocab, merges[f], prefix ? "true" : "false");
            write_file(tmp, "tokenizer.json", json);
            Tokenizer *t;
            ck_assert_msg(tokenizer_load(&t, tmp, "gpt2", err, sizeof err) == 0, "%s", err);
            if (prefix) EXPECT(t, "ab ab", NULL, 0, 4, 4);
            else EXPECT(t, "ab ab", NULL, 0, 2, 4);
            EXPECT(t, "ab", "ab", 0, 2 + 2 * prefix, 2 + 2 * prefix); /* gpt2: no specials */
            int32_t *ids;
            int n;
            ck_assert_int_eq(tokenizer_encode_plain(t, "abc", &ids, &n, err, sizeof err), -1);
            ck_assert_msg(strstr(err, "byte 0x63") != NULL, "%s", err);
            tokenizer_free(t);
        }
    remove_files(tmp);
    rmdir(tmp);
}
END_TEST

/* ----------------------------- (4) accents, CJK, control characters */

/* Expected ids obtained from the Hugging Face peers (transformers 4.40.2 /
 * tokenizers 0.19.1: BertTokenizerFast, RobertaTokenizerFast,
 * GPT2TokenizerFast on the shared model directories), hardcoded here so the
 * test holds even without the generated reference files. */
START_TEST(test_unicode_cases) {
    if (!have_assets()) return;
    Tokenizer *bert = load_model("bert-tiny", "bert");
    Tokenizer *rob = load_model("roberta-base", "roberta");
    Tokenizer *gpt = load_model("gpt2", "gpt2");
    const char *accents = "Héllo Wörld ÀÉÎÕÜ naïve café";
    EXPECT(bert, accents, NULL, 0, 101, 7592, 2088, 29347, 3695, 2226, 15743, 7668, 102);
    EXPECT(rob, accents, NULL, 0, 0, 725, 1140, 9905, 305, 17920, 4779, 952, 7471, 23791, 3849,
           12736, 3849, 15722, 3849, 48, 39300, 26059, 2);
    EXPECT(gpt, accents, NULL, 0, 39, 2634, 18798, 370, 30570, 335, 6184, 222, 38351, 127, 236, 127,
           243, 127, 250, 41492, 40304);
    const char *cjk = "北京欢迎你 hello世界";
    EXPECT(bert, cjk, NULL, 0, 101, 1781, 1755, 100, 100, 100, 7592, 1745, 100, 102);
    EXPECT(rob, cjk, NULL, 0, 0, 48418, 6800, 46499, 11582, 37127, 11582, 7258, 48145, 12736,
           47856, 21402, 20760, 46015, 25448, 49127, 14285, 2);
    EXPECT(gpt, cjk, NULL, 0, 44293, 245, 12859, 105, 162, 105, 95, 32573, 236, 19526, 254, 23748,
           10310, 244, 45911, 234);
    /* BEL, U+FFFD, zero-width space, tab, NBSP, LINE SEPARATOR, NEL, VT */
    const char *ctl = "a\x07" "b\xEF\xBF\xBD" "c\xE2\x80\x8B" "d\te\xC2\xA0" "f\xE2\x80\xA8"
                      "g\xC2\x85" "h\x0Bi";
    EXPECT(bert, ctl, NULL, 0, 101, 5925, 2094, 1041, 1042, 1043, 4048, 102);
    EXPECT(rob, ctl, NULL, 0, 0, 102, 50115, 428, 21955, 438, 13635, 417, 50117, 242, 50141, 506,
           17, 11423, 571, 4056, 5782, 298, 50119, 118, 2);
    EXPECT(gpt, ctl, NULL, 0, 64, 195, 65, 4210, 66, 9525, 67, 197, 68, 1849, 69, 447, 101, 70, 126,
           227, 71, 199, 72);
    const char *casing = "İstanbul ΣΑΣ ﬁ";
    EXPECT(bert, casing, NULL, 0, 101, 9960, 1173, 14608, 29733, 1984, 102);
    EXPECT(gpt, casing, NULL, 0, 128, 108, 24179, 7377, 96, 138, 239, 138, 96, 27332, 105, 223);
    const char *combining = "e\xCC\x81 a\xCC\x88"; /* e + U+0301, a + U+0308 */
    EXPECT(bert, combining, NULL, 0, 101, 1041, 1037, 102);
    EXPECT(rob, combining, NULL, 0, 0, 242, 44025, 10172, 10, 44025, 23133, 2);
    /* RoBERTa's <mask> takes the space before it */
    EXPECT(rob, "Hello <mask> there", NULL, 0, 0, 31414, 50264, 89, 2);
    EXPECT(gpt, "x <|endoftext|> y", NULL, 0, 87, 220, 50256, 331);
    tokenizer_free(bert);
    tokenizer_free(rob);
    tokenizer_free(gpt);
}
END_TEST

/* ------------------------------ whole SST-2 train, serial and parallel */

/* Reads column 0 of SST-2's train.tsv (header, GLUE TSV rules). */
static char **read_sst2_train(int *n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/data/glue/SST-2/train.tsv", assets_dir());
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    char **v = NULL, *line = NULL;
    size_t cap = 0;
    int k = 0, vcap = 0, lineno = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) != -1) {
        if (lineno++ == 0) continue;
        line[strcspn(line, "\t\r\n")] = '\0';
        if (!line[0]) continue;
        if (k == vcap) {
            vcap = vcap ? vcap * 2 : 1024;
            v = realloc(v, (size_t)vcap * sizeof *v);
            ck_assert_ptr_nonnull(v);
        }
        v[k++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n = k;
    return v;
}

/* Decoding: byte-level BPE is lossless, so decode(encode(s)) == s for every
 * SST-2 train sentence with gpt2's and roberta's tokenizers (specials
 * skipped); WordPiece joins "##" pieces back into words. */
START_TEST(test_decode_round_trip) {
    if (!have_assets()) return;
    int n;
    char **texts = read_sst2_train(&n);
    const char *models[][2] = {{"gpt2", "gpt2"}, {"roberta-base", "roberta"}};
    for (int m = 0; m < 2; m++) {
        Tokenizer *t = load_model(models[m][0], models[m][1]);
        for (int i = 0; i < n; i += 7) {
            int32_t *ids, *types;
            int k;
            char err[512];
            ck_assert_msg(tokenizer_encode(t, texts[i], NULL, 0, &ids, &types, &k, err, sizeof err) == 0,
                          "%s", err);
            char *back = tokenizer_decode(t, ids, k, 1, err, sizeof err);
            ck_assert_msg(back != NULL, "%s", err);
            ck_assert_msg(strcmp(back, texts[i]) == 0, "%s: \"%s\" decoded as \"%s\"", models[m][0],
                          texts[i], back);
            free(back);
            free(ids);
            free(types);
        }
        /* specials kept when asked; an id outside the vocabulary refused */
        int32_t eos[2] = {50256, 15496};
        char err[512];
        if (m == 0) {
            char *s = tokenizer_decode(t, eos, 2, 0, err, sizeof err);
            ck_assert_str_eq(s, "<|endoftext|>Hello");
            free(s);
        }
        int32_t bad[1] = {60000};
        ck_assert_ptr_null(tokenizer_decode(t, bad, 1, 1, err, sizeof err));
        ck_assert_msg(strstr(err, "60000") && strstr(err, "outside the vocabulary"), "%s", err);
        tokenizer_free(t);
    }
    Tokenizer *bert = load_model("bert-tiny", "bert");
    int32_t *ids, *types;
    int k;
    char err[512];
    ck_assert(tokenizer_encode(bert, "The unbelievably tiresome cat", NULL, 0, &ids, &types, &k, err,
                               sizeof err) == 0);
    ck_assert_int_gt(k, 6); /* [CLS], pieces with ##, [SEP] */
    char *s = tokenizer_decode(bert, ids, k, 1, err, sizeof err);
    ck_assert_str_eq(s, "the unbelievably tiresome cat");
    free(s);
    free(ids);
    free(types);
    tokenizer_free(bert);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}
END_TEST

START_TEST(test_sst2_train_throughput) {
    if (!have_assets()) return;
    int n;
    char **texts = read_sst2_train(&n);
    ck_assert_int_gt(n, 60000);
    const char *models[][2] = {{"bert-tiny", "bert"}, {"roberta-base", "roberta"}, {"gpt2", "gpt2"}};
    for (int m = 0; m < 3; m++) {
        Tokenizer *t = load_model(models[m][0], models[m][1]);
        long *sums = calloc((size_t)n, sizeof *sums);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long total = 0;
        for (int i = 0; i < n; i++) {
            int32_t *ids, *types;
            int k;
            char err[512];
            ck_assert_msg(tokenizer_encode(t, texts[i], NULL, 128, &ids, &types, &k, err,
                                           sizeof err) == 0, "%s", err);
            for (int j = 0; j < k; j++) sums[i] += ids[j] * (j + 1);
            total += k;
            free(ids);
            free(types);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("  SST-2 train, %s: %d sentences, %ld tokens, %.3f s\n", models[m][0], n, total,
               secs);
        /* a const Tokenizer is shared by threads: same ids in parallel */
        int bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(dynamic, 256)
        for (int i = 0; i < n; i++) {
            int32_t *ids, *types;
            int k;
            char err[512];
            long s = 0;
            if (tokenizer_encode(t, texts[i], NULL, 128, &ids, &types, &k, err, sizeof err) != 0) {
                bad++;
                continue;
            }
            for (int j = 0; j < k; j++) s += ids[j] * (j + 1);
            bad += s != sums[i];
            free(ids);
            free(types);
        }
        ck_assert_msg(bad == 0, "%s: %d sentences encode differently in parallel", models[m][0],
                      bad);
        free(sums);
        tokenizer_free(t);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_reference_files);
    tcase_add_test(tc, test_known_ids);
    tcase_add_test(tc, test_gpt2_json_equals_txt);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_small_wordpiece);
    tcase_add_test(tc, test_small_bpe_formats);
    tcase_add_test(tc, test_unicode_cases);
    tcase_add_test(tc, test_decode_round_trip);
    tcase_add_test(tc, test_sst2_train_throughput);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tokenizer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
