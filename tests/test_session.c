/* Sessions on disk.
 *
 * Exact resume through files: N steps straight against K steps + save +
 * load + N−K steps, with live changes before K (lora, bilora with darts,
 * bidora across its phase 2) — bitwise-identical losses and final tensors.
 * Bad inputs each get a clear error and change nothing: a truncated or
 * corrupted state.bin, a newer format version, a base model or data file
 * changed or missing, names that escape the root. A crash test kills a
 * saving process with SIGKILL at random moments, many times; after every
 * kill the session loads and is one of the states that were saved. The
 * exports: the CSV's rows, and an SVG that parses as XML and holds its
 * charts. */
#include "engine/safetensors.h"
#include "engine/train.h"
#include "engine/trainer.h"
#include "sessions/session.h"
#include "tests/fixtures.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 30
#define K 13

/* ---- fixtures ---- */

typedef struct {
    int n;
    double loss[64], upper[64];
    long spec_step;            /* the last spectrum the run reported */
    int spec_n;
    char spec_name[16][SPECTRUM_NAME];
    float spec_values[16][8];
    double spec_orth[16], spec_mag[16];
    int n_evals, n_specs;
    long eval_step[64], spec_steps[64]; /* when it evaluated (dev) and reported spectra */
} Log;

static void on_eval(void *ctx, const EvalInfo *e) {
    Log *l = ctx;
    if (strcmp(e->split, "train") != 0 && l->n_evals < 64) l->eval_step[l->n_evals++] = e->step;
}

static void on_step(void *ctx, const StepInfo *s) {
    Log *l = ctx;
    if (l->n < 64) {
        l->loss[l->n] = s->loss;
        l->upper[l->n] = s->upper_loss;
    }
    l->n++;
}

static void on_spectrum(void *ctx, const SpectrumInfo *s) {
    Log *l = ctx;
    if (l->n_specs < 64) l->spec_steps[l->n_specs++] = s->step;
    l->spec_step = s->step;
    l->spec_n = s->n < 16 ? s->n : 16;
    for (int i = 0; i < l->spec_n; i++) {
        snprintf(l->spec_name[i], SPECTRUM_NAME, "%s", s->rows[i].name);
        for (int j = 0; j < s->rows[i].n && j < 8; j++) l->spec_values[i][j] = s->rows[i].values[j];
        l->spec_orth[i] = s->rows[i].orth;
        l->spec_mag[i] = s->rows[i].magnitude_change;
    }
}

static TrainConfig config(const char *dir, const char *method) {
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", dir);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.rank = 2;
    c.alpha = 4;
    c.batch_size = 8;
    c.steps = !strcmp(method, "bidora") ? N - 4 : N;
    c.phase2_steps = !strcmp(method, "bidora") ? 4 : 0;
    c.eval_every = 4;
    c.lora_dropout = 0.1f;
    return c;
}

static void change(Run *r) {
    char err[256];
    ck_assert_int_eq(run_set(r, "lower_lr", "0.002", err, sizeof(err)), 0);
    ck_assert_int_eq(run_set(r, "split_ratio", "0.6", err, sizeof(err)), 0);
    /* 0: back to the cadences as created (every epoch; the spectrum with
     * the evaluations first planned): the resumed run must agree */
    ck_assert_int_eq(run_set(r, "eval_every", "0", err, sizeof(err)), 0);
    ck_assert_int_eq(run_set(r, "spectrum_every", "0", err, sizeof(err)), 0);
}

static void root_of(const char *dir, char *root) { snprintf(root, 300, "%s/sessions", dir); }

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n + 1);
    *len = fread(b, 1, n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* What a failed operation must leave alone: both files of the session and
 * the list of names in the root. */
typedef struct {
    unsigned char *json, *bin;
    size_t json_len, bin_len;
    char listing[2048];
} Disk;

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void listing(const char *root, char *out, size_t cap) {
    out[0] = 0;
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    char names[64][256];
    int n = 0;
    while ((e = readdir(d)) && n < 64) snprintf(names[n++], sizeof(names[0]), "%.255s", e->d_name);
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 1);
        strncat(out, " ", cap - strlen(out) - 1);
    }
}

static void disk_take(Disk *d, const char *root, const char *name) {
    char p[600];
    snprintf(p, sizeof(p), "%s/%s/session.json", root, name);
    d->json = slurp(p, &d->json_len);
    snprintf(p, sizeof(p), "%s/%s/state.bin", root, name);
    d->bin = slurp(p, &d->bin_len);
    listing(root, d->listing, sizeof(d->listing));
}

static void disk_same(Disk *before, const char *root, const char *name) {
    Disk now;
    disk_take(&now, root, name);
    ck_assert_msg(before->json_len == now.json_len && !memcmp(before->json, now.json, now.json_len),
                  "session.json changed");
    ck_assert_msg(before->bin_len == now.bin_len && !memcmp(before->bin, now.bin, now.bin_len),
                  "state.bin changed");
    ck_assert_str_eq(before->listing, now.listing);
    free(now.json);
    free(now.bin);
    free(before->json);
    free(before->bin);
}

/* A lora session "s" saved after 5 steps. */
static void prepare(char *dir, char *root) {
    char err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    TrainConfig c = config(dir, "lora");
    Run *r;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < 5; i++) ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "s", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
}

static void expect_load_fails(const char *root, const char *name, const char *want1, const char *want2) {
    char err[2048];
    Run *r = (Run *)1;
    ck_assert_int_eq(session_load(root, name, NULL, 0, NULL, &r, err, sizeof(err)), -1);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, want1) && (!want2 || strstr(err, want2)), "error lacks '%s'/'%s': %s", want1,
                  want2 ? want2 : "", err);
    printf("  refused as it should: %s\n", err);
    fflush(stdout);
}

/* ---- exact resume through files ---- */

/* model_dir: NULL for the fixture encoder, else that model */
static void exact_resume_on(const char *method, const char *model_dir) {
    char dir[256], root[300], err[2048];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    TrainConfig c = config(dir, method);
    if (model_dir) snprintf(c.model, sizeof(c.model), "%s", model_dir);
    Log a = {0}, b = {0};
    TrainCallbacks ca = {.ctx = &a, .on_step = on_step, .on_eval = on_eval, .on_spectrum = on_spectrum};
    TrainCallbacks cbb = {.ctx = &b, .on_step = on_step, .on_eval = on_eval, .on_spectrum = on_spectrum};
    /* straight */
    Run *r;
    ck_assert_msg(run_create(&r, &c, &ca, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < N; i++) {
        if (i == K - 2) change(r);
        ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    }
    RunState final_a;
    ck_assert_int_eq(run_state_export(r, &final_a, err, sizeof(err)), 0);
    /* the stored spectrum equals what the run reported at the same step */
    ck_assert_msg(session_save(root, "straight", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    cJSON *doc;
    ck_assert_msg(session_read_json(root, "straight", &doc, err, sizeof(err)) == 0, "%s", err);
    const cJSON *spec = cJSON_GetObjectItem(doc, "spectrum");
    ck_assert_int_eq((long)cJSON_GetObjectItem(spec, "step")->valuedouble, a.spec_step);
    const cJSON *rows = cJSON_GetObjectItem(spec, "rows");
    ck_assert_int_eq(cJSON_GetArraySize(rows), a.spec_n);
    for (int i = 0; i < a.spec_n; i++) {
        const cJSON *row = cJSON_GetArrayItem(rows, i);
        ck_assert_str_eq(cJSON_GetObjectItem(row, "name")->valuestring, a.spec_name[i]);
        for (int j = 0; j < c.rank; j++)
            ck_assert_msg((float)cJSON_GetArrayItem(cJSON_GetObjectItem(row, "values"), j)->valuedouble ==
                              a.spec_values[i][j], "%s: spectrum %s[%d] differs", method, a.spec_name[i], j);
        const cJSON *o = cJSON_GetObjectItem(row, "orth"), *m = cJSON_GetObjectItem(row, "magnitude_change");
        ck_assert_int_eq(o != NULL, isfinite(a.spec_orth[i]));
        if (o) ck_assert_double_eq_tol(o->valuedouble, a.spec_orth[i], 1e-9);
        ck_assert_int_eq(m != NULL, isfinite(a.spec_mag[i]));
        if (m) ck_assert_double_eq_tol(m->valuedouble, a.spec_mag[i], 1e-9);
    }
    cJSON_Delete(doc);
    /* K steps, save, drop the run; load, the rest */
    ck_assert_msg(run_create(&r, &c, &cbb, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < K; i++) {
        if (i == K - 2) change(r);
        ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    }
    ck_assert_msg(session_save(root, "mid", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_msg(session_load(root, "mid", NULL, 0, &cbb, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step_index(r), K);
    ck_assert_str_eq(run_config(r)->method, method);
    int nch;
    run_changes(r, &nch);
    ck_assert_int_eq(nch, 4); /* the change log came back */
    /* a loaded run saves to the same bytes (nothing lost or reordered) */
    ck_assert_msg(session_save(root, "mid-again", r, err, sizeof(err)) == 0, "%s", err);
    char p1[600], p2[600];
    size_t l1, l2;
    snprintf(p1, sizeof(p1), "%s/mid/state.bin", root);
    snprintf(p2, sizeof(p2), "%s/mid-again/state.bin", root);
    unsigned char *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    ck_assert_msg(l1 == l2 && !memcmp(b1, b2, l1), "%s: re-saving a loaded run changed state.bin", method);
    free(b1);
    free(b2);
    for (int i = K; i < N; i++) ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    RunState final_b;
    ck_assert_int_eq(run_state_export(r, &final_b, err, sizeof(err)), 0);
    run_free(r);
    ck_assert_int_eq(a.n, N);
    ck_assert_int_eq(b.n, N);
    /* evaluations and spectra on the same steps (cadences recomputed alike) */
    ck_assert_int_eq(a.n_evals, b.n_evals);
    ck_assert_int_eq(a.n_specs, b.n_specs);
    for (int i = 0; i < a.n_evals; i++) ck_assert_int_eq(a.eval_step[i], b.eval_step[i]);
    for (int i = 0; i < a.n_specs; i++) ck_assert_int_eq(a.spec_steps[i], b.spec_steps[i]);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(a.loss[i] == b.loss[i], "%s step %d: loss %.9g vs resumed %.9g", method, i + 1, a.loss[i],
                      b.loss[i]);
        ck_assert(memcmp(&a.upper[i], &b.upper[i], sizeof(double)) == 0);
    }
    ck_assert_int_eq(final_a.n, final_b.n);
    size_t floats = 0;
    for (int i = 0; i < final_a.n; i++) {
        ck_assert_str_eq(final_a.blobs[i].name, final_b.blobs[i].name);
        ck_assert_msg(final_a.blobs[i].count == final_b.blobs[i].count &&
                          memcmp(final_a.blobs[i].data, final_b.blobs[i].data, 4 * final_a.blobs[i].count) == 0,
                      "%s: final %s differs after resume", method, final_a.blobs[i].name);
        floats += final_a.blobs[i].count;
    }
    printf("exact resume %-6s: %d steps straight vs %d + save + load + %d: %d losses%s and %d tensors "
           "(%zu values) bitwise identical\n", method, N, K, N - K, N,
           isfinite(a.upper[N - 5]) ? " (and upper losses)" : "", final_a.n, floats);
    fflush(stdout);
    run_state_free(&final_a);
    run_state_free(&final_b);
    fixture_rmdir(dir);
}

static void exact_resume(const char *method) { exact_resume_on(method, NULL); }

START_TEST(resume_lora) { exact_resume("lora"); }
END_TEST
START_TEST(resume_bilora_darts) { exact_resume("bilora"); }
END_TEST
/* the GPT-2 decoder with its score head (the reference generator's
 * GPT2ForSequenceClassification), through a bi-level run */
START_TEST(resume_gpt2_bilora) {
    char model[1024];
    snprintf(model, sizeof(model), "%s/models/gpt2-cls-random", fixture_ref_dir());
    if (access(model, R_OK) != 0) ck_abort_msg("%s missing: run tests/reference/gen_hf_models.py", model);
    exact_resume_on("bilora", model);
}
END_TEST
START_TEST(resume_bidora_across_phase2) { exact_resume("bidora"); }
END_TEST

/* ---- bad inputs: a clear error, nothing changed ---- */

START_TEST(truncated_state) {
    char dir[256], root[300], p[600];
    prepare(dir, root);
    snprintf(p, sizeof(p), "%s/s/state.bin", root);
    size_t n;
    unsigned char *b = slurp(p, &n);
    spit(p, b, n - 100);
    free(b);
    Disk d;
    disk_take(&d, root, "s");
    char want[128];
    snprintf(want, sizeof(want), "state.bin is truncated (%zu of %zu bytes)", n - 100, n);
    expect_load_fails(root, "s", want, "is incomplete");
    long step;
    char err[1024];
    ck_assert_int_eq(session_verify(root, "s", &step, err, sizeof(err)), -1);
    disk_same(&d, root, "s");
    fixture_rmdir(dir);
}
END_TEST

START_TEST(corrupted_state) {
    char dir[256], root[300], p[600], err[1024];
    prepare(dir, root);
    /* flip one byte inside the classifier's weights */
    cJSON *doc;
    ck_assert_int_eq(session_read_json(root, "s", &doc, err, sizeof(err)), 0);
    long off = -1;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "tensors"))
        if (!strcmp(cJSON_GetObjectItem(t, "name")->valuestring, "param.classifier.weight"))
            off = (long)cJSON_GetObjectItem(t, "offset")->valuedouble;
    cJSON_Delete(doc);
    ck_assert_int_ge(off, 0);
    snprintf(p, sizeof(p), "%s/s/state.bin", root);
    size_t n;
    unsigned char *b = slurp(p, &n);
    b[off + 5] ^= 0x10;
    spit(p, b, n);
    free(b);
    Disk d;
    disk_take(&d, root, "s");
    expect_load_fails(root, "s", "param.classifier.weight", "CRC32");
    disk_same(&d, root, "s");
    fixture_rmdir(dir);
}
END_TEST

START_TEST(newer_format_version) {
    char dir[256], root[300], p[600], err[1024];
    prepare(dir, root);
    cJSON *doc;
    ck_assert_int_eq(session_read_json(root, "s", &doc, err, sizeof(err)), 0);
    cJSON_ReplaceItemInObject(doc, "format_version", cJSON_CreateNumber(99));
    char *text = cJSON_Print(doc);
    snprintf(p, sizeof(p), "%s/s/session.json", root);
    spit(p, text, strlen(text));
    free(text);
    cJSON_Delete(doc);
    Disk d;
    disk_take(&d, root, "s");
    expect_load_fails(root, "s", "newer bilora", "99");
    SessionSummary *list;
    int n;
    ck_assert_int_eq(session_list(root, &list, &n, NULL, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 0); /* listed as unreadable, not as a session */
    free(list);
    /* nor is it overwritten by a save of an older format */
    disk_same(&d, root, "s");
    fixture_rmdir(dir);
}
END_TEST

/* A session records the build that saved it; opening it in another build
 * says so (exactness holds within one build), in the same build says nothing. */
static void collect_info(void *ctx, const char *m) {
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 4096 - n, "%s\n", m);
}
START_TEST(other_build_is_named) {
    char dir[256], root[300], p[600], err[1024];
    prepare(dir, root);
    cJSON *doc;
    ck_assert_int_eq(session_read_json(root, "s", &doc, err, sizeof(err)), 0);
    const cJSON *b = cJSON_GetObjectItem(doc, "build");
    ck_assert_msg(cJSON_IsString(b) && b->valuestring[0], "session.json has no build");
    char info[4096] = "";
    TrainCallbacks cb = {.ctx = info, .on_info = collect_info};
    Run *r;
    ck_assert_msg(session_load(root, "s", NULL, 0, &cb, &r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_msg(!strstr(info, "was saved by bilora"), "%s", info);
    cJSON_ReplaceItemInObject(doc, "build", cJSON_CreateString("0123abc"));
    char *text = cJSON_Print(doc);
    snprintf(p, sizeof(p), "%s/s/session.json", root);
    spit(p, text, strlen(text));
    free(text);
    cJSON_Delete(doc);
    info[0] = 0;
    ck_assert_msg(session_load(root, "s", NULL, 0, &cb, &r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_msg(strstr(info, "was saved by bilora 0123abc") && strstr(info, "last bits"), "%s", info);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(base_model_changed) {
    char dir[256], root[300], p[600], err[1024];
    prepare(dir, root);
    /* rewrite model.safetensors: same names and shapes, one weight moved */
    snprintf(p, sizeof(p), "%s/model/model.safetensors", dir);
    SafeTensors st;
    ck_assert_int_eq(st_open(&st, p, err, sizeof(err)), 0);
    StWriteTensor *w = calloc(st.n, sizeof(*w));
    float **bufs = calloc(st.n, sizeof(float *));
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.tensors[i];
        bufs[i] = malloc(sizeof(float) * t->numel);
        st_read_f32(&st, t, bufs[i]);
        if (!strcmp(t->name, "embeddings.word_embeddings.weight")) bufs[i][7] += 0.25f;
        w[i] = (StWriteTensor){.name = t->name, .data = bufs[i], .ndim = t->ndim,
                               .shape = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}};
    }
    ck_assert_int_eq(st_write_f32(p, w, st.n, NULL, err, sizeof(err)), 0);
    for (int i = 0; i < st.n; i++) free(bufs[i]);
    free(bufs);
    free(w);
    st_close(&st);
    Disk d;
    disk_take(&d, root, "s");
    expect_load_fails(root, "s", p, "changed on disk");
    disk_same(&d, root, "s");
    fixture_rmdir(dir);
}
END_TEST

START_TEST(data_file_missing) {
    char dir[256], root[300], p[600], q[600];
    prepare(dir, root);
    snprintf(p, sizeof(p), "%s/SST-2/dev.tsv", dir);
    snprintf(q, sizeof(q), "%s/SST-2/dev.tsv.away", dir);
    ck_assert_int_eq(rename(p, q), 0);
    Disk d;
    disk_take(&d, root, "s");
    expect_load_fails(root, "s", p, "missing");
    disk_same(&d, root, "s");
    /* back in place, but edited: refused as changed data */
    size_t n;
    unsigned char *b = slurp(q, &n);
    b[n / 2] = b[n / 2] == 'a' ? 'b' : 'a';
    spit(p, b, n);
    free(b);
    disk_take(&d, root, "s");
    expect_load_fails(root, "s", "dev.tsv", "changed on disk");
    disk_same(&d, root, "s");
    fixture_rmdir(dir);
}
END_TEST

START_TEST(names_that_escape) {
    char dir[256], root[300], err[1024], p[600];
    prepare(dir, root);
    TrainConfig c = config(dir, "lora");
    Run *r;
    ck_assert_int_eq(run_create(&r, &c, NULL, err, sizeof(err)), 0);
    char longname[80];
    memset(longname, 'x', 65);
    longname[65] = 0;
    const char *bad[] = {"../x", "a/b", "", ".hidden", "..", "/abs", "tab\there", longname};
    Disk d;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        disk_take(&d, root, "s");
        ck_assert_int_eq(session_save(root, bad[i], r, err, sizeof(err)), -1);
        printf("  name '%s' refused: %s\n", bad[i], err);
        Run *x = NULL;
        ck_assert_int_eq(session_load(root, bad[i], NULL, 0, NULL, &x, err, sizeof(err)), -1);
        ck_assert_int_eq(session_remove(root, bad[i], err, sizeof(err)), -1);
        disk_same(&d, root, "s");
    }
    /* nothing appeared next to the root */
    snprintf(p, sizeof(p), "%s/x", dir);
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_int_eq(session_name_check("run 1 (lr=1e-4)", err, sizeof(err)), 0);
    run_free(r);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(aside_copy_is_found) {
    /* the moment between "old copy moved aside" and "new copy renamed in" */
    char dir[256], root[300], p[600], q[600], err[1024];
    prepare(dir, root);
    snprintf(p, sizeof(p), "%s/s", root);
    snprintf(q, sizeof(q), "%s/.s.old", root);
    ck_assert_int_eq(rename(p, q), 0);
    long step;
    ck_assert_msg(session_verify(root, "s", &step, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(step, 5);
    SessionSummary *list;
    int n;
    ck_assert_int_eq(session_list(root, &list, &n, NULL, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(list[0].name, "s");
    ck_assert_int_eq(list[0].from_aside, 1);
    free(list);
    Run *r;
    ck_assert_msg(session_load(root, "s", NULL, 0, NULL, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step_index(r), 5);
    ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    /* the next save completes the interrupted one and tidies up */
    ck_assert_msg(session_save(root, "s", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_int_ne(access(q, F_OK), 0);
    ck_assert_int_eq(session_verify(root, "s", &step, err, sizeof(err)), 0);
    ck_assert_int_eq(step, 6);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(resume_overrides) {
    char dir[256], root[300], err[1024];
    prepare(dir, root);
    Disk d;
    disk_take(&d, root, "s");
    Run *r;
    SessionOverride cold[] = {{"rank", "4"}};
    ck_assert_int_eq(session_load(root, "s", cold, 1, NULL, &r, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "rank") && strstr(err, "fixed when a run is created"), "%s", err);
    printf("  override refused: %s\n", err);
    SessionOverride steps[] = {{"--steps", "100"}};
    ck_assert_int_eq(session_load(root, "s", steps, 1, NULL, &r, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "schedule"), "%s", err);
    printf("  override refused: %s\n", err);
    SessionOverride badval[] = {{"lower_lr", "-1"}};
    ck_assert_int_eq(session_load(root, "s", badval, 1, NULL, &r, err, sizeof(err)), -1);
    printf("  override refused: %s\n", err);
    disk_same(&d, root, "s");
    SessionOverride hot[] = {{"--eval-every", "2"}, {"lr", "0.001"}, {"device", "cpu"}};
    ck_assert_msg(session_load(root, "s", hot, 3, NULL, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_config(r)->eval_every, 2);
    ck_assert_float_eq(run_config(r)->lower_lr, 0.001f);
    int n;
    const RunChange *ch = run_changes(r, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(ch[0].key, "eval_every");
    ck_assert_int_eq(ch[0].step, 6); /* takes effect at the next step */
    run_free(r);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(list_and_remove) {
    char dir[256], root[300], err[1024];
    prepare(dir, root);
    TrainConfig c = config(dir, "bilora");
    c.steps = 8;
    ck_assert_msg(session_train(&c, NULL, root, "b-run", 3, err, sizeof(err)) == 0, "%s", err);
    /* a new run does not replace a saved one */
    Disk d;
    disk_take(&d, root, "b-run");
    ck_assert_int_eq(session_train(&c, NULL, root, "b-run", 3, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "exists") && strstr(err, "bilora resume b-run"), "%s", err);
    disk_same(&d, root, "b-run");
    SessionSummary *list;
    int n;
    ck_assert_int_eq(session_list(root, &list, &n, NULL, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(list[0].name, "b-run");
    ck_assert_str_eq(list[0].method, "bilora");
    ck_assert_str_eq(list[0].task, "SST-2");
    ck_assert_int_eq(list[0].step, 8);
    ck_assert_int_eq(list[0].total_steps, 8);
    ck_assert_str_eq(list[0].metric_name, "accuracy");
    ck_assert_str_eq(list[0].metric_split, "dev");
    ck_assert(isfinite(list[0].metric));
    ck_assert(list[0].saved >= list[0].created && list[0].created > 0);
    ck_assert_str_eq(list[1].name, "s");
    ck_assert_int_eq(list[1].step, 5);
    ck_assert(isfinite(list[1].metric)); /* evaluated at step 4 */
    free(list);
    ck_assert_int_eq(session_remove(root, "s", err, sizeof(err)), 0);
    ck_assert_int_eq(session_remove(root, "s", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "no session named 's'"), "%s", err);
    ck_assert_int_eq(session_list(root, &list, &n, NULL, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 1);
    free(list);
    char l[2048];
    listing(root, l, sizeof(l));
    ck_assert_str_eq(l, ". .. .b-run.lock b-run ");
    fixture_rmdir(dir);
}
END_TEST

START_TEST(relative_paths_resume_elsewhere) {
    /* a run started with relative paths resumes from another directory */
    char dir[256], root[300], err[2048];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    ck_assert_int_eq(chdir(dir), 0);
    TrainConfig c = config(".", "lora");
    snprintf(c.model, sizeof(c.model), "model");
    snprintf(c.data, sizeof(c.data), "SST-2");
    Run *r;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "rel", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_int_eq(chdir("/"), 0);
    ck_assert_msg(session_load(root, "rel", NULL, 0, NULL, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step_index(r), 1);
    ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "rel", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    SessionSummary sm;
    ck_assert_int_eq(session_summary(root, "rel", &sm, err, sizeof(err)), 0);
    ck_assert_int_eq(sm.step, 2);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(model_by_name_resumes) {
    /* a run whose base model and data were named (found on the BILORA_ASSETS
     * search path, as `bilora train --model all-minilm-l6-v2 --task MRPC`
     * does) resumes from any directory */
    char dir[256], root[300], p[600], q[600], err[2048];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    snprintf(p, sizeof(p), "%s/models", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/model", dir);
    snprintf(q, sizeof(q), "%s/models/tiny-encoder", dir);
    ck_assert_int_eq(rename(p, q), 0);
    snprintf(p, sizeof(p), "%s/data", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/data/glue", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/SST-2", dir);
    snprintf(q, sizeof(q), "%s/data/glue/SST-2", dir);
    ck_assert_int_eq(rename(p, q), 0);
    ck_assert_int_eq(setenv("BILORA_ASSETS", dir, 1), 0);
    TrainConfig c = config(dir, "lora");
    snprintf(c.model, sizeof(c.model), "tiny-encoder");
    c.data[0] = 0; /* the task's data from the search path too */
    Run *r;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "named", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    ck_assert_int_eq(chdir("/"), 0);
    ck_assert_msg(session_load(root, "named", NULL, 0, NULL, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step_index(r), 1);
    ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    run_free(r);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(unwritable_root_fails_before_training) {
    /* the save at the end would fail: say so before the run, not after */
    char dir[256], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    TrainConfig c = config(dir, "lora");
    c.steps = 1000000; /* would run for minutes if it started */
    time_t t0 = time(NULL);
    ck_assert_int_eq(session_train(&c, NULL, "/proc/no-sessions-here", "x", 0, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "/proc/no-sessions-here"), "%s", err);
    ck_assert(time(NULL) - t0 < 5);
    printf("  refused: %s\n", err);
    if (geteuid() != 0) { /* root writes anywhere: the mode check only holds for others */
        char ro[400];
        snprintf(ro, sizeof(ro), "%s/ro", dir);
        ck_assert_int_eq(mkdir(ro, 0555), 0);
        ck_assert_int_eq(session_train(&c, NULL, ro, "x", 0, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "not writable"), "%s", err);
    }
    fixture_rmdir(dir);
}
END_TEST

START_TEST(missing_state_is_named) {
    char dir[256], root[300], p[600], err[2048];
    prepare(dir, root);
    snprintf(p, sizeof(p), "%s/s/state.bin", root);
    ck_assert_int_eq(unlink(p), 0);
    long step;
    ck_assert_int_eq(session_verify(root, "s", &step, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "state.bin is missing") && strstr(err, "sessions rm s"), "%s", err);
    expect_load_fails(root, "s", "state.bin is missing", NULL);
    fixture_rmdir(dir);
}
END_TEST

/* A session opened in the trainer (what the TUI's o does) shows its past:
 * every saved step's loss and every evaluation, before the run goes on. */
typedef struct { const char *root; } LoadCtx;
static int load_named_s(void *ctx, const TrainCallbacks *cb, Run **out, char *err, size_t errlen) {
    return session_load(((LoadCtx *)ctx)->root, "s", NULL, 0, cb, out, err, errlen);
}
START_TEST(opened_session_shows_its_history) {
    char dir[256], root[300], err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    TrainConfig c = config(dir, "bilora");
    c.steps = 10;
    Run *r;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < 10; i++) ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "s", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    LoadCtx lc = {root};
    Trainer *t;
    ck_assert_msg(trainer_start_loaded(&t, load_named_s, &lc, err, sizeof(err)) == 0, "%s", err);
    TrainerView *v = trainer_view_new();
    for (int i = 0; i < 4000; i++) {
        trainer_read(t, v);
        if (v->state == TRAINER_DONE || v->state == TRAINER_FAILED) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(v->state == TRAINER_DONE, "%s", v->message);
    ck_assert_int_eq(v->step, 10);
    ck_assert_int_eq(v->loss.n, 10);        /* every step's loss */
    ck_assert_int_eq(v->loss.step[0], 1);
    ck_assert_int_eq(v->upper_loss.n, 10);  /* and the upper loss */
    ck_assert_int_eq(v->dev_loss.n, 3);     /* evaluations at 4, 8 and the end */
    ck_assert_int_eq(v->dev_loss.step[2], 10);
    ck_assert_str_eq(v->metric_name, "accuracy");
    ck_assert(v->epoch > 0);
    trainer_join(t);
    trainer_view_free(v);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(trainer_snapshot) {
    /* CMD_SNAPSHOT saves from the run's own thread at a step boundary */
    char dir[256], root[300], err[2048];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    TrainConfig c = config(dir, "bilora");
    c.steps = 100000;
    Trainer *t;
    ck_assert_msg(trainer_start(&t, &c, err, sizeof(err)) == 0, "%s", err);
    trainer_set_snapshot(t, session_snapshot, root);
    TrainerView *v = trainer_view_new();
    struct timespec tick = {0, 10000000};
    do {
        nanosleep(&tick, NULL);
        trainer_read(t, v);
    } while (v->step < 5 && v->state != TRAINER_FAILED);
    TrainerCmd cmd = {.kind = CMD_SNAPSHOT};
    snprintf(cmd.value, sizeof(cmd.value), "from-tui");
    ck_assert_int_eq(trainer_send(t, &cmd, err, sizeof(err)), 0);
    snprintf(cmd.value, sizeof(cmd.value), "../escape");
    ck_assert_int_eq(trainer_send(t, &cmd, err, sizeof(err)), 0);
    ck_assert_int_eq(trainer_send(t, &(TrainerCmd){.kind = CMD_STOP}, err, sizeof(err)), 0);
    do {
        nanosleep(&tick, NULL);
        trainer_read(t, v);
    } while (v->state == TRAINER_RUNNING || v->state == TRAINER_STARTING);
    int saved = 0, refused = 0;
    for (int i = 0; i < v->n_events && i < EVENTS_MAX; i++) {
        saved |= strstr(v->events[i], "saved session 'from-tui'") != NULL;
        refused |= strstr(v->events[i], "snapshot failed") && strstr(v->events[i], "../escape");
    }
    ck_assert(saved && refused);
    trainer_join(t);
    trainer_view_free(v);
    long step;
    ck_assert_msg(session_verify(root, "from-tui", &step, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_ge(step, 5);
    Run *r;
    ck_assert_msg(session_load(root, "from-tui", NULL, 0, NULL, &r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(run_step_index(r), step);
    run_free(r);
    fixture_rmdir(dir);
}
END_TEST

/* ---- the crash test ---- */

#define KILLS 40
#define CRASH_NAME "crash"

/* The saving process: continues the session if there is one, then steps
 * and saves forever, announcing each save before ("A step") and after
 * ("D step") on the pipe. */
static void saver(const char *dir, const char *root, int wfd) {
    char err[2048], line[64];
    TrainConfig c = config(dir, "lora");
    c.steps = 1000000;
    c.eval_every = 1000000;
    c.spectrum_every = 1000000;
    Run *r;
    long step;
    if (session_verify(root, CRASH_NAME, &step, err, sizeof(err)) == 0) {
        if (session_load(root, CRASH_NAME, NULL, 0, NULL, &r, err, sizeof(err)) != 0) goto fail;
    } else if (run_create(&r, &c, NULL, err, sizeof(err)) != 0) {
        goto fail;
    }
    for (;;) {
        if (run_step(r, err, sizeof(err)) < 0) goto fail;
        int n = snprintf(line, sizeof(line), "A %ld\n", run_step_index(r));
        if (write(wfd, line, n) != n) _exit(4);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (session_save(root, CRASH_NAME, r, err, sizeof(err)) != 0) goto fail;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        n = snprintf(line, sizeof(line), "D %ld %ld\n", run_step_index(r),
                     (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
        if (write(wfd, line, n) != n) _exit(4);
    }
fail:
    dprintf(wfd, "E %s\n", err);
    _exit(3);
}

/* A separate process does the full load (run_create and all), so the test
 * process itself never starts OpenMP threads before it forks. */
static long load_in_child(const char *root, char *err, size_t errlen) {
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        Run *r;
        char e[2048];
        if (session_load(root, CRASH_NAME, NULL, 0, NULL, &r, e, sizeof(e)) != 0) {
            dprintf(p[1], "E %s\n", e);
            _exit(1);
        }
        dprintf(p[1], "S %ld\n", run_step_index(r));
        _exit(0);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[2100] = "";
    if (!fgets(line, sizeof(line), f)) snprintf(line, sizeof(line), "E the loader died");
    fclose(f);
    int status;
    waitpid(pid, &status, 0);
    if (line[0] == 'S') return atol(line + 2);
    snprintf(err, errlen, "%.2000s", line + 2);
    return -1;
}

START_TEST(crash_during_saves) {
    char dir[256], root[300], err[2048];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    uint64_t rng = (uint64_t)time(NULL) * 2654435761u + 1;
    long prev = -1;
    int kills = 0, clean = 0, mid_save = 0, mid_old = 0, mid_new = 0;
    long saves = 0, save_us = 0;
    for (int k = 0; k < KILLS; k++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(p[0]);
            saver(dir, root, p[1]);
        }
        close(p[1]);
        FILE *f = fdopen(p[0], "r");
        char line[2100];
        long last_attempt = -1, last_done = -1;
        /* wait until it saves (the first time: until one save is whole) */
        while (fgets(line, sizeof(line), f)) {
            ck_assert_msg(line[0] != 'E', "saver failed: %s", line + 2);
            if (line[0] == 'A') last_attempt = atol(line + 2);
            if (line[0] == 'D') last_done = atol(line + 2), saves++;
            if (prev < 0 ? last_done >= 0 : last_attempt >= 0) break;
        }
        /* then a random moment within the next few saves (one takes
         * about 5 ms here: five fsyncs) */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        struct timespec ts = {0, (long)(rng % 40000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        kills++;
        while (fgets(line, sizeof(line), f)) {
            ck_assert_msg(line[0] != 'E', "saver failed: %s", line + 2);
            if (line[0] == 'A') last_attempt = atol(line + 2);
            if (line[0] == 'D') {
                char *end;
                last_done = strtol(line + 2, &end, 10);
                save_us += strtol(end, NULL, 10);
                saves++;
            }
        }
        fclose(f);
        /* the session is whole (table and CRC32s) and one of the saved states */
        long step;
        ck_assert_msg(session_verify(root, CRASH_NAME, &step, err, sizeof(err)) == 0, "kill %d: %s", k + 1, err);
        long before = last_done >= 0 ? last_done : prev; /* the last state surely on disk */
        int interrupted = last_attempt > before;
        ck_assert_msg(step == before || (interrupted && step == last_attempt),
                      "kill %d: the session is at step %ld; saved %ld, interrupted %ld", k + 1, step, before,
                      last_attempt);
        if (interrupted) {
            mid_save++;
            if (step == last_attempt) mid_new++;
            else mid_old++;
        }
        long loaded = load_in_child(root, err, sizeof(err));
        ck_assert_msg(loaded == step, "kill %d: loading failed or disagrees (%ld vs %ld): %s", k + 1, loaded, step,
                      err);
        clean++;
        prev = step;
    }
    /* a last clean save removes what the killed saves left behind */
    pid_t pid = fork();
    if (pid == 0) {
        Run *r;
        char e[2048];
        if (session_load(root, CRASH_NAME, NULL, 0, NULL, &r, e, sizeof(e)) != 0 ||
            run_step(r, e, sizeof(e)) < 0 || session_save(root, CRASH_NAME, r, e, sizeof(e)) != 0)
            _exit(1);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char l[2048];
    listing(root, l, sizeof(l));
    ck_assert_str_eq(l, ". .. .crash.lock crash ");
    printf("crash test: %d kills (SIGKILL at random moments during repeated saves; %d landed inside a save: "
           "%d left the previous snapshot, %d the new one), %d clean loads, every one a saved state; "
           "the run advanced to step %ld over %ld completed saves (%.1f ms each on average)\n",
           kills, mid_save, mid_old, mid_new, clean, prev, saves, saves ? save_us / 1000.0 / saves : 0.0);
    fflush(stdout);
    fixture_rmdir(dir);
}
END_TEST

/* ---- exports ---- */

START_TEST(export_csv_and_svg) {
    char dir[256], root[300], err[2048], path[600];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    root_of(dir, root);
    TrainConfig c = config(dir, "bilora");
    c.steps = 12;
    Log a = {0};
    TrainCallbacks cb = {.ctx = &a, .on_step = on_step};
    Run *r;
    ck_assert_int_eq(run_create(&r, &c, &cb, err, sizeof(err)), 0);
    for (int i = 0; i < 12; i++) {
        if (i == 6) ck_assert_int_eq(run_set(r, "upper_lr", "0.01", err, sizeof(err)), 0);
        ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    }
    ck_assert_int_eq(session_save(root, "charts", r, err, sizeof(err)), 0);
    run_free(r);
    cJSON *doc;
    ck_assert_int_eq(session_read_json(root, "charts", &doc, err, sizeof(err)), 0);
    const cJSON *evals = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "state"), "history_evals");
    int n_evals = cJSON_GetArraySize(evals), n_metric = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, evals) n_metric += cJSON_IsNumber(cJSON_GetArrayItem(e, 3));
    ck_assert_int_ge(n_evals, 3);
    /* CSV: a header, 12 step rows with the run's losses, the evaluations */
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(session_export_csv(doc, f, err, sizeof(err)), 0);
    fclose(f);
    char *save, *ln = strtok_r(buf, "\n", &save);
    ck_assert_str_eq(ln, "kind,step,split,loss,upper_loss,accuracy");
    int steps = 0, ev = 0, dev_rows = 0;
    long last = 0;
    while ((ln = strtok_r(NULL, "\n", &save))) {
        char kind[8], split[16];
        long step;
        if (!strncmp(ln, "step,", 5)) {
            double loss, upper;
            ck_assert_int_eq(sscanf(ln, "step,%ld,,%lf,%lf,", &step, &loss, &upper), 3);
            ck_assert_int_eq(step, steps + 1);
            /* the history holds floats; 9 digits give them back */
            ck_assert((float)loss == (float)a.loss[steps]);
            ck_assert((float)upper == (float)a.upper[steps]);
            steps++;
        } else {
            ck_assert_int_eq(sscanf(ln, "%7[^,],%ld,%15[^,],", kind, &step, split), 3);
            ck_assert_str_eq(kind, "eval");
            ck_assert_int_eq(step % 4, 0);
            dev_rows += !strcmp(split, "dev");
            ev++;
        }
        ck_assert_int_ge(step, last);
        last = step;
    }
    ck_assert_int_eq(steps, 12);
    ck_assert_int_eq(ev, n_evals);
    ck_assert_int_eq(dev_rows, 3);
    free(buf);
    /* SVG: well-formed, with the charts and one heatmap cell per value */
    snprintf(path, sizeof(path), "%s/charts.svg", dir);
    f = fopen(path, "w");
    ck_assert_int_eq(session_export_svg(doc, f, err, sizeof(err)), 0);
    fclose(f);
    cJSON_Delete(doc);
    unsigned char *svg = slurp(path, &len);
    ck_assert(!strncmp((char *)svg, "<?xml", 5));
    ck_assert(strstr((char *)svg, "</svg>\n"));
    int cells = 0, points = 0, changes = 0;
    for (char *q = (char *)svg; (q = strstr(q, "class=\"heat-cell\"")); q++) cells++;
    for (char *q = (char *)svg; (q = strstr(q, "class=\"metric-point\"")); q++) points++;
    for (char *q = (char *)svg; (q = strstr(q, "class=\"change\"")); q++) changes++;
    ck_assert_int_eq(cells, 4 * 2); /* 2 layers × (query, value), rank 2 */
    ck_assert_int_eq(points, n_metric);
    ck_assert_int_eq(changes, 1);
    ck_assert(strstr((char *)svg, "class=\"loss-train\""));
    ck_assert(strstr((char *)svg, "class=\"loss-upper\""));
    ck_assert(strstr((char *)svg, "class=\"colorbar\""));
    free(svg);
    char cmd[900];
    if (system("command -v python3 >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof(cmd), "python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); "
                 "assert d.documentElement.tagName == \"svg\"' '%s'", path);
        ck_assert_msg(system(cmd) == 0, "%s is not well-formed XML", path);
    }
    fixture_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, resume_lora);
    tcase_add_test(tc, resume_bilora_darts);
    tcase_add_test(tc, resume_gpt2_bilora);
    tcase_add_test(tc, resume_bidora_across_phase2);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad inputs");
    tcase_set_timeout(bad, 120);
    tcase_add_test(bad, truncated_state);
    tcase_add_test(bad, corrupted_state);
    tcase_add_test(bad, newer_format_version);
    tcase_add_test(bad, other_build_is_named);
    tcase_add_test(bad, base_model_changed);
    tcase_add_test(bad, data_file_missing);
    tcase_add_test(bad, names_that_escape);
    tcase_add_test(bad, aside_copy_is_found);
    tcase_add_test(bad, resume_overrides);
    tcase_add_test(bad, list_and_remove);
    tcase_add_test(bad, relative_paths_resume_elsewhere);
    tcase_add_test(bad, model_by_name_resumes);
    tcase_add_test(bad, unwritable_root_fails_before_training);
    tcase_add_test(bad, missing_state_is_named);
    tcase_add_test(bad, trainer_snapshot);
    tcase_add_test(bad, opened_session_shows_its_history);
    suite_add_tcase(s, bad);
    TCase *crash = tcase_create("crash");
    tcase_set_timeout(crash, 600);
    tcase_add_test(crash, crash_during_saves);
    suite_add_tcase(s, crash);
    TCase *ex = tcase_create("export");
    tcase_set_timeout(ex, 120);
    tcase_add_test(ex, export_csv_and_svg);
    suite_add_tcase(s, ex);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
