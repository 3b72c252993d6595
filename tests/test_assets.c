/* Tests for engine/assets: resolution order over BILORA_ASSETS roots,
 * BILORA_HOME (and its default), and a fake Hugging Face hub cache; explicit
 * directories; task-name canonicalisation; the not-found message; listing.
 * Every test sets the environment it needs (Check forks each test, so the
 * changes stay inside it). */
#include "engine/assets.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                rm_rf(p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static char tmpdir[256];
/* $BILORA_ASSETS as the test runner set it, before any test changed it. */
static char *orig_assets;

/* Paths inside tmpdir, built by P(). */
static char rootA[512], rootB[512], home[512], hub[512], userhome[512];

static void mkdirs(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void touch(const char *dir, const char *name) {
    char p[4096];
    mkdirs(dir);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{}", f);
    fclose(f);
}

/* A model directory: config.json, and model.safetensors when weights. */
static void make_model(const char *dir, int weights) {
    touch(dir, "config.json");
    if (weights) touch(dir, "model.safetensors");
}

static void set_mtime(const char *path, time_t t) {
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bilora_assets_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(rootA, sizeof rootA, "%s/rootA", tmpdir);
    snprintf(rootB, sizeof rootB, "%s/rootB", tmpdir);
    snprintf(home, sizeof home, "%s/bilora-home", tmpdir);
    snprintf(hub, sizeof hub, "%s/hf/hub", tmpdir);
    snprintf(userhome, sizeof userhome, "%s/user", tmpdir);
    mkdirs(rootA);
    mkdirs(rootB);
    mkdirs(home);
    mkdirs(hub);
    mkdirs(userhome);
    char env[2048];
    snprintf(env, sizeof env, "%s:%s", rootA, rootB);
    setenv("BILORA_ASSETS", env, 1);
    setenv("BILORA_HOME", home, 1);
    setenv("HF_HUB_CACHE", hub, 1);
    unsetenv("HF_HOME");
    setenv("HOME", userhome, 1);
}

static void teardown(void) { rm_rf(tmpdir); }

static void expect_model(const char *name, const char *want) {
    char out[4096], err[2048] = "";
    ck_assert_msg(assets_find_model(name, out, sizeof out, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_str_eq(out, want);
}

static void expect_task(const char *name, const char *want) {
    char out[4096], err[2048] = "";
    ck_assert_msg(assets_find_task(name, out, sizeof out, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_str_eq(out, want);
}

START_TEST(test_model_order) {
    char a[2048], b[2048], h[2048], snap[2048];
    snprintf(a, sizeof a, "%s/models/bert-tiny", rootA);
    snprintf(b, sizeof b, "%s/models/bert-tiny", rootB);
    snprintf(h, sizeof h, "%s/models/bert-tiny", home);
    snprintf(snap, sizeof snap, "%s/models--prajjwal1--bert-tiny/snapshots/abc", hub);

    /* Only in the hub cache: the snapshot; by "org/name" only (the hub
     * keeps the org in the folder name). */
    make_model(snap, 1);
    expect_model("prajjwal1/bert-tiny", snap);
    char out[4096], err[2048];
    ck_assert_int_eq(assets_find_model("bert-tiny", out, sizeof out, err, sizeof err), -1);
    /* BILORA_HOME beats the hub. */
    make_model(h, 0);
    expect_model("prajjwal1/bert-tiny", h);
    expect_model("bert-tiny", h);
    /* The second asset root beats BILORA_HOME, the first beats the second. */
    make_model(b, 0);
    expect_model("bert-tiny", b);
    make_model(a, 0);
    expect_model("bert-tiny", a);
    expect_model("prajjwal1/bert-tiny", a);
}
END_TEST

START_TEST(test_dir_without_config_is_skipped) {
    char a[2048], b[2048], out[4096], err[4096];
    snprintf(a, sizeof a, "%s/models/gpt2", rootA);
    snprintf(b, sizeof b, "%s/models/gpt2", rootB);
    touch(a, "vocab.json"); /* half-copied: no config.json */
    make_model(b, 0);
    expect_model("gpt2", b);
    rm_rf(b);
    ck_assert_int_eq(assets_find_model("gpt2", out, sizeof out, err, sizeof err), -1);
    char want[2200];
    snprintf(want, sizeof want, "%s (no config.json)", a);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
}
END_TEST

START_TEST(test_home_default_and_hf_env) {
    char h[2048], snap[2048];
    /* BILORA_HOME unset: $HOME/.cache/bilora. */
    unsetenv("BILORA_HOME");
    unsetenv("BILORA_ASSETS");
    snprintf(h, sizeof h, "%s/.cache/bilora/models/bert-mini", userhome);
    make_model(h, 0);
    expect_model("bert-mini", h);

    /* HF_HUB_CACHE unset: $HF_HOME/hub; both unset: ~/.cache/huggingface/hub. */
    unsetenv("HF_HUB_CACHE");
    char hfhome[512];
    snprintf(hfhome, sizeof hfhome, "%s/hfhome", tmpdir);
    setenv("HF_HOME", hfhome, 1);
    snprintf(snap, sizeof snap, "%s/hub/models--openai-community--gpt2/snapshots/r1", hfhome);
    make_model(snap, 0);
    expect_model("openai-community/gpt2", snap);
    unsetenv("HF_HOME");
    snprintf(snap, sizeof snap, "%s/.cache/huggingface/hub/models--gpt2/snapshots/r2", userhome);
    make_model(snap, 0);
    expect_model("gpt2", snap);
}
END_TEST

START_TEST(test_hub_newest_snapshot) {
    char repo[2048], s1[2200], s2[2200], s3[2200];
    snprintf(repo, sizeof repo, "%s/models--FacebookAI--roberta-base", hub);
    snprintf(s1, sizeof s1, "%s/snapshots/aaaa", repo);
    snprintf(s2, sizeof s2, "%s/snapshots/bbbb", repo);
    snprintf(s3, sizeof s3, "%s/snapshots/cccc", repo);
    make_model(s1, 1);
    make_model(s2, 1);
    touch(s3, "tokenizer.json"); /* newest, but no config.json */
    touch(repo, "refs-placeholder");
    time_t now = time(NULL);
    set_mtime(s1, now - 100);
    set_mtime(s2, now - 200);
    set_mtime(s3, now);
    expect_model("FacebookAI/roberta-base", s1);
    set_mtime(s2, now - 10);
    expect_model("FacebookAI/roberta-base", s2);
}
END_TEST

START_TEST(test_explicit_directory) {
    char d[2048], out[4096], err[2048];
    snprintf(d, sizeof d, "%s/somewhere/my-model", tmpdir);
    make_model(d, 0);
    expect_model(d, d); /* used as is, even though no root holds it */

    /* Relative paths are used as is too. */
    ck_assert_int_eq(chdir(tmpdir), 0);
    expect_model("./somewhere/my-model", "./somewhere/my-model");
    expect_model("somewhere/my-model", "somewhere/my-model");

    /* A directory without config.json is an error naming it. */
    snprintf(d, sizeof d, "%s/empty-model", tmpdir);
    mkdirs(d);
    ck_assert_int_eq(assets_find_model(d, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, d) && strstr(err, "no config.json"), "%s", err);
    /* A path that does not exist: said so. */
    snprintf(d, sizeof d, "%s/nope", tmpdir);
    ck_assert_int_eq(assets_find_model(d, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, d) && strstr(err, "does not exist"), "%s", err);

    /* "~/" expands to $HOME. */
    snprintf(d, sizeof d, "%s/mymodel", userhome);
    make_model(d, 0);
    expect_model("~/mymodel", d);

    /* Output buffer too small: an error, not a truncated path. */
    char tiny[8];
    ck_assert_int_eq(assets_find_model(d, tiny, sizeof tiny, err, sizeof err), -1);
    ck_assert_int_eq(assets_find_model("", out, sizeof out, err, sizeof err), -1);
}
END_TEST

START_TEST(test_model_not_found_lists_places) {
    char out[4096], err[4096];
    ck_assert_int_eq(assets_find_model("bert-tiny", out, sizeof out, err, sizeof err), -1);
    const char *fmt[] = {"%s/models/bert-tiny", "%s/models/bert-tiny", "%s/models/bert-tiny",
                         "%s/models--bert-tiny"};
    const char *roots[] = {rootA, rootB, home, hub};
    ck_assert_msg(strstr(err, "model 'bert-tiny' not found; looked in: ") == err, "%s", err);
    const char *prev = err;
    for (int i = 0; i < 4; i++) {
        char want[2048];
        snprintf(want, sizeof want, fmt[i], roots[i]);
        const char *at = strstr(prev, want);
        ck_assert_msg(at != NULL, "'%s' missing or out of order in: %s", want, err);
        prev = at + 1;
    }
    ck_assert_msg(strstr(err, "(set BILORA_ASSETS or pass a directory)"), "%s", err);

    /* org/name: the hub folder keeps the org. */
    ck_assert_int_eq(assets_find_model("prajjwal1/bert-tiny", out, sizeof out, err, sizeof err), -1);
    char want[2048];
    snprintf(want, sizeof want, "%s/models--prajjwal1--bert-tiny", hub);
    ck_assert_msg(strstr(err, want), "%s", err);
    snprintf(want, sizeof want, "%s/models/bert-tiny", rootA);
    ck_assert_msg(strstr(err, want), "%s", err);

    /* Empty entries in BILORA_ASSETS are ignored, not taken as ".". */
    char env[2048];
    snprintf(env, sizeof env, "::%s:", rootB);
    setenv("BILORA_ASSETS", env, 1);
    ck_assert_int_eq(assets_find_model("x", out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "looked in: /"), "%s", err);
    ck_assert_msg(!strstr(err, " models/x"), "%s", err);
}
END_TEST

START_TEST(test_tasks) {
    char d[2048];
    snprintf(d, sizeof d, "%s/data/glue/RTE", rootB);
    mkdirs(d);
    expect_task("RTE", d);
    expect_task("rte", d);
    expect_task("glue/RTE", d);
    expect_task("GLUE/rte", d);
    char a[2048];
    snprintf(a, sizeof a, "%s/data/glue/RTE", rootA);
    mkdirs(a);
    expect_task("rte", a); /* the first root wins */

    const char *forms[][2] = {{"sst2", "SST-2"}, {"SST-2", "SST-2"}, {"sst-2", "SST-2"},
                              {"cola", "CoLA"},  {"stsb", "STS-B"}, {"STS-B", "STS-B"},
                              {"mrpc", "MRPC"},  {"qqp", "QQP"},    {"mnli", "MNLI"},
                              {"qnli", "QNLI"},  {"wnli", "WNLI"}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        snprintf(d, sizeof d, "%s/data/glue/%s", home, forms[i][1]);
        mkdirs(d);
        expect_task(forms[i][0], d);
    }

    /* Non-GLUE names: <root>/data/<name>. */
    snprintf(d, sizeof d, "%s/data/e2e", rootA);
    mkdirs(d);
    expect_task("e2e", d);

    /* A directory is used as is. */
    snprintf(d, sizeof d, "%s/my-task", tmpdir);
    mkdirs(d);
    expect_task(d, d);

    char out[4096], err[4096];
    ck_assert_int_eq(assets_find_task("glue/bogus", out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown GLUE task 'bogus'") && strstr(err, "RTE"), "%s", err);

    /* Not found: every root, with GLUE's capitalisation. */
    rm_rf(rootA);
    rm_rf(rootB);
    ck_assert_int_eq(assets_find_task("rte", out, sizeof out, err, sizeof err), -1);
    char w[3][2048];
    snprintf(w[0], sizeof w[0], "%s/data/glue/RTE", rootA);
    snprintf(w[1], sizeof w[1], "%s/data/glue/RTE", rootB);
    snprintf(w[2], sizeof w[2], "%s/data/glue/RTE", home);
    ck_assert_msg(strstr(err, "task 'rte' not found; looked in: ") == err, "%s", err);
    for (int i = 0; i < 3; i++) ck_assert_msg(strstr(err, w[i]), "'%s' missing: %s", w[i], err);
    ck_assert_msg(strstr(err, "set BILORA_ASSETS or pass a directory"), "%s", err);
    snprintf(d, sizeof d, "%s/no-such-task-dir", tmpdir);
    ck_assert_int_eq(assets_find_task(d, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, d), "%s", err);

    /* A folder here named like the task hides it only when it holds task
     * files; otherwise the search path is used, and named when it fails. */
    ck_assert_int_eq(chdir(tmpdir), 0);
    mkdirs("MRPC");
    snprintf(d, sizeof d, "%s/data/glue/MRPC", home);
    mkdirs(d);
    expect_task("MRPC", d);
    rm_rf(d);
    ck_assert_int_eq(assets_find_task("MRPC", out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "./ (a folder without train.tsv"), "%s", err);
    touch("MRPC", "dev.tsv");
    expect_task("MRPC", "MRPC");
}
END_TEST

START_TEST(test_unrelated_local_folder) {
    /* ./bert-x without config.json does not hide the model on the search path */
    char d[2048], out[4096], err[4096];
    snprintf(d, sizeof d, "%s/models/bert-x", rootB);
    make_model(d, 0);
    ck_assert_int_eq(chdir(tmpdir), 0);
    mkdirs("bert-x");
    expect_model("bert-x", d);
    rm_rf(d);
    ck_assert_int_eq(assets_find_model("bert-x", out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "./ (a folder without config.json)"), "%s", err);
    make_model("bert-x", 0); /* now it is a model: used as is */
    expect_model("bert-x", "bert-x");
}
END_TEST

typedef struct {
    int n;
    char names[16][128];
    char dirs[16][2048];
} Listed;

static void collect(const char *name, const char *dir, void *ctx) {
    Listed *l = ctx;
    if (l->n < 16) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        snprintf(l->dirs[l->n], sizeof l->dirs[0], "%s", dir);
    }
    l->n++;
}

START_TEST(test_list_models) {
    char d[2048];
    snprintf(d, sizeof d, "%s/models/zeta", rootA);
    make_model(d, 1);
    snprintf(d, sizeof d, "%s/models/alpha", rootA);
    make_model(d, 1);
    snprintf(d, sizeof d, "%s/models/noweights", rootA);
    make_model(d, 0); /* config only: not listed */
    snprintf(d, sizeof d, "%s/models/alpha", rootB);
    make_model(d, 1); /* shadowed by rootA's alpha */
    snprintf(d, sizeof d, "%s/models/beta", home);
    make_model(d, 1);
    snprintf(d, sizeof d, "%s/models--org--gamma/snapshots/r1", hub);
    make_model(d, 1);
    snprintf(d, sizeof d, "%s/models--org--nowts/snapshots/r1", hub);
    make_model(d, 0);
    snprintf(d, sizeof d, "%s/datasets--org--set/snapshots/r1", hub);
    make_model(d, 1); /* a dataset repo, not a model */

    Listed l = {0};
    int n = assets_list_models(collect, &l);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(l.n, 4);
    const char *want[] = {"alpha", "zeta", "beta", "org/gamma"};
    for (int i = 0; i < 4; i++) ck_assert_str_eq(l.names[i], want[i]);
    snprintf(d, sizeof d, "%s/models/alpha", rootA);
    ck_assert_str_eq(l.dirs[0], d);
    snprintf(d, sizeof d, "%s/models--org--gamma/snapshots/r1", hub);
    ck_assert_str_eq(l.dirs[3], d);
    /* Every listed model resolves to the listed directory. */
    for (int i = 0; i < 4; i++) expect_model(l.names[i], l.dirs[i]);
    ck_assert_int_eq(assets_list_models(NULL, NULL), 4);
}
END_TEST

/* The shared assets themselves, when the runner points BILORA_ASSETS there. */
START_TEST(test_real_assets) {
    if (!orig_assets || !*orig_assets) {
        fprintf(stderr, "test_real_assets: BILORA_ASSETS not set, skipped\n");
        return;
    }
    setenv("BILORA_ASSETS", orig_assets, 1);
    char out[4096], err[4096], cfg[4200];
    ck_assert_msg(assets_find_model("bert-tiny", out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    ck_assert_int_eq(access(cfg, R_OK), 0);
    ck_assert_ptr_nonnull(strstr(out, "/models/bert-tiny"));
    ck_assert_msg(assets_find_model("prajjwal1/bert-tiny", out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(assets_find_model("roberta-base", out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(assets_find_task("rte", out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "/data/glue/RTE"));
    snprintf(cfg, sizeof cfg, "%s/train.tsv", out);
    ck_assert_int_eq(access(cfg, R_OK), 0);
    ck_assert_msg(assets_find_task("glue/SST-2", out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(assets_find_task("e2e", out, sizeof out, err, sizeof err) == 0, "%s", err);
    /* No base weights are shipped, so only stories260K has both files. */
    Listed l = {0};
    assets_list_models(collect, &l);
    int stories = 0;
    for (int i = 0; i < l.n && i < 16; i++) stories |= strcmp(l.names[i], "stories260K") == 0;
    ck_assert(stories);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("assets");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_model_order);
    tcase_add_test(tc, test_dir_without_config_is_skipped);
    tcase_add_test(tc, test_home_default_and_hf_env);
    tcase_add_test(tc, test_hub_newest_snapshot);
    tcase_add_test(tc, test_explicit_directory);
    tcase_add_test(tc, test_model_not_found_lists_places);
    tcase_add_test(tc, test_tasks);
    tcase_add_test(tc, test_unrelated_local_folder);
    tcase_add_test(tc, test_list_models);
    tcase_add_test(tc, test_real_assets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    const char *a = getenv("BILORA_ASSETS");
    orig_assets = a ? strdup(a) : NULL;
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(orig_assets);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
