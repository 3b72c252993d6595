/* Tests for the GLUE readers (datasets/glue.c).
 *
 * Two halves:
 *   - real data: every file of the shared glue_data copy under
 *     $BILORA_ASSETS/data/glue, with the row and label counts the data README
 *     gives (which match the official sizes) and spot checks of first/last
 *     rows taken from the files with sed/cut. If BILORA_ASSETS is set, a
 *     missing file is a failure: CI must not pass by finding nothing. If it
 *     is unset (a bare checkout), that half is left out with a note.
 *   - synthetic files written to a temporary folder: the quirks we must
 *     accept (BOM, CRLF, no final newline, CoLA's header-less files, MNLI's
 *     split names, QQP's layout) and the malformations we must refuse with a
 *     message naming the file and the line. */
#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets/glue.h"

/* ---- helpers ------------------------------------------------------------- */

/* The scratch folder of the synthetic tests, made in the parent process by
 * the unchecked fixture so that it is removed even when a test fails. */
static char g_tmp[256];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void tmp_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/bilora_glue_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_tmp, strerror(errno));
        abort();
    }
}

static void tmp_teardown(void)
{
    rm_tree(g_tmp);
}

/* Writes <tmp>/<case_name>/<task>/<file> with exactly len bytes and returns
 * the task folder in dir (what glue_load takes). */
static void write_bytes(char *dir, size_t dirlen, const char *case_name, const char *task,
                        const char *file, const char *content, size_t len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_tmp, case_name);
    mkdir(p, 0700);
    snprintf(dir, dirlen, "%s/%s/%s", g_tmp, case_name, task);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", p);
    ck_assert_uint_eq(fwrite(content, 1, len, f), len);
    fclose(f);
}

static void write_text(char *dir, size_t dirlen, const char *case_name, const char *task,
                       const char *file, const char *content)
{
    write_bytes(dir, dirlen, case_name, task, file, content, strlen(content));
}

static const GlueTaskInfo *task(const char *name)
{
    const GlueTaskInfo *t = glue_task_info(name);
    ck_assert_msg(t != NULL, "no task %s", name);
    return t;
}

/* Writes one file and checks that loading it fails with exactly
 * "<dir>/<file><expect_tail>", i.e. the path, then ":line: message". */
static void expect_error(const char *case_name, const char *task_name, const char *split,
                         const char *content, const char *expect_tail)
{
    char dir[512], file[64], want[1024], err[512] = "";
    snprintf(file, sizeof file, "%s.tsv", split);
    write_text(dir, sizeof dir, case_name, task_name, file, content);
    GlueSplit s;
    int rc = glue_load(dir, task(task_name), split, &s, err, sizeof err);
    ck_assert_msg(rc == -1, "%s: expected failure, loaded %d rows", case_name, s.n);
    ck_assert_ptr_null(s.ex); /* nothing left allocated on failure */
    ck_assert_int_eq(s.n, 0);
    snprintf(want, sizeof want, "%s/%s%s", dir, file, expect_tail);
    ck_assert_str_eq(err, want);
}

static void load_ok(const char *dir, const char *task_name, const char *split, GlueSplit *s)
{
    char err[512] = "";
    int rc = glue_load(dir, task(task_name), split, s, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
}

/* ---- task table ------------------------------------------------------------ */

START_TEST(test_task_info)
{
    static const char *const canon[] = {"CoLA", "SST-2", "MRPC", "STS-B", "QQP",
                                        "MNLI", "QNLI",  "RTE",  "WNLI"};
    for (int i = 0; i < 9; i++) {
        const GlueTaskInfo *t = glue_task_at(i);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, canon[i]);
        ck_assert_ptr_eq(glue_task_info(canon[i]), t);
    }
    ck_assert_ptr_null(glue_task_at(9));
    ck_assert_ptr_null(glue_task_at(-1));

    ck_assert_ptr_eq(glue_task_info("sst2"), glue_task_at(1));
    ck_assert_ptr_eq(glue_task_info("SST-2"), glue_task_at(1));
    ck_assert_ptr_eq(glue_task_info("sts-b"), glue_task_at(3));
    ck_assert_ptr_eq(glue_task_info("stsb"), glue_task_at(3));
    ck_assert_ptr_eq(glue_task_info("mnli-m"), glue_task_at(5));
    ck_assert_ptr_eq(glue_task_info("MNLI-MM"), glue_task_at(5));
    ck_assert_ptr_eq(glue_task_info("cola"), glue_task_at(0));
    ck_assert_ptr_null(glue_task_info("foo"));
    ck_assert_ptr_null(glue_task_info(""));
    ck_assert_ptr_null(glue_task_info(NULL));
    ck_assert_ptr_null(glue_task_info("a-name-much-longer-than-any-task-name-at-all"));

    const GlueTaskInfo *m = task("MNLI");
    ck_assert_int_eq(m->num_labels, 3);
    ck_assert_int_eq(m->num_dev_splits, 2);
    ck_assert_str_eq(m->dev_splits[0], "dev_matched");
    ck_assert_str_eq(m->dev_splits[1], "dev_mismatched");
    ck_assert_str_eq(m->label_names[0], "contradiction");
    ck_assert_str_eq(m->label_names[1], "entailment");
    ck_assert_str_eq(m->label_names[2], "neutral");
    const GlueTaskInfo *r = task("RTE");
    ck_assert_str_eq(r->label_names[0], "entailment");
    ck_assert_str_eq(r->label_names[1], "not_entailment");
    ck_assert_str_eq(task("QNLI")->label_names[1], "not_entailment");
    ck_assert_int_eq(task("STS-B")->is_regression, 1);
    ck_assert_int_eq(task("STS-B")->num_labels, 1);
    ck_assert_int_eq(task("CoLA")->is_regression, 0);
    ck_assert_ptr_null(task("CoLA")->label_names[0]);
    ck_assert_int_eq(task("WNLI")->num_dev_splits, 1);
    ck_assert_str_eq(task("WNLI")->dev_splits[0], "dev");
}
END_TEST

/* ---- real data --------------------------------------------------------------- */

typedef struct {
    const char *task, *split;
    int rows;
    int required;     /* in the shared copy; optional ones are checked if present */
    int count_class;  /* class whose count is checked, or -1 */
    int count;
} RealFile;

/* Row and label counts: /work/shared/data/README.md (they equal the official
 * GLUE sizes). The optional rows are the official sizes of the files the
 * shared copy lacks (too large for it), checked if someone adds them. */
static const RealFile REAL[] = {
    {"CoLA", "train", 8551, 1, 1, 6023},
    {"CoLA", "dev", 1043, 1, 1, 721},
    {"CoLA", "test", 1063, 1, -1, 0},
    {"SST-2", "train", 67349, 1, 1, 37569},
    {"SST-2", "dev", 872, 1, 1, 444},
    {"SST-2", "test", 1821, 1, -1, 0},
    {"MRPC", "train", 3668, 1, 1, 2474},
    {"MRPC", "dev", 408, 1, 1, 279},
    {"MRPC", "test", 1725, 1, -1, 0},
    {"STS-B", "train", 5749, 1, -1, 0},
    {"STS-B", "dev", 1500, 1, -1, 0},
    {"STS-B", "test", 1379, 1, -1, 0},
    {"QNLI", "dev", 5463, 1, 0, 2702}, /* entailment = class 0 */
    {"QNLI", "test", 5463, 1, -1, 0},
    {"RTE", "train", 2490, 1, 0, 1249},
    {"RTE", "dev", 277, 1, 0, 146},
    {"RTE", "test", 3000, 1, -1, 0},
    {"WNLI", "train", 635, 1, 1, 312},
    {"WNLI", "dev", 71, 1, 1, 31},
    {"WNLI", "test", 146, 1, -1, 0},
    {"QNLI", "train", 104743, 0, -1, 0},
    {"QQP", "train", 363846, 0, -1, 0},
    {"QQP", "dev", 40430, 0, -1, 0},
    {"QQP", "test", 390965, 0, -1, 0},
    {"MNLI", "train", 392702, 0, -1, 0},
    {"MNLI", "dev_matched", 9815, 0, -1, 0},
    {"MNLI", "dev_mismatched", 9832, 0, -1, 0},
    {"MNLI", "test_matched", 9796, 0, -1, 0},
    {"MNLI", "test_mismatched", 9847, 0, -1, 0},
};
#define N_REAL ((int)(sizeof REAL / sizeof REAL[0]))

static void real_dir(char *dir, size_t len, const char *task_name)
{
    snprintf(dir, len, "%s/data/glue/%s", getenv("BILORA_ASSETS"), task_name);
}

START_TEST(test_real_counts)
{
    const RealFile *rf = &REAL[_i];
    char dir[1024], path[1100], err[512] = "";
    real_dir(dir, sizeof dir, rf->task);
    snprintf(path, sizeof path, "%s/%s.tsv", dir, rf->split);
    if (!rf->required && access(path, F_OK) != 0)
        return; /* not in the shared copy; nothing to check */
    GlueSplit s;
    int rc = glue_load(dir, task(rf->task), rf->split, &s, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(s.n == rf->rows, "%s: %d rows, expected %d", path, s.n, rf->rows);
    int is_test = strncmp(rf->split, "test", 4) == 0;
    ck_assert_int_eq(s.labeled, !is_test);
    const GlueTaskInfo *t = task(rf->task);
    int count = 0;
    for (int i = 0; i < s.n; i++) {
        const GlueExample *e = &s.ex[i];
        ck_assert_ptr_nonnull(e->text_a);
        ck_assert_int_eq(e->text_b != NULL, strcmp(rf->task, "CoLA") && strcmp(rf->task, "SST-2"));
        if (is_test) {
            ck_assert_float_eq(e->label, -1.0f);
        } else if (t->is_regression) {
            ck_assert(e->label >= 0.0f && e->label <= 5.0f);
        } else {
            ck_assert(e->label == 0.0f || e->label == 1.0f || (t->num_labels == 3 && e->label == 2.0f));
        }
        count += e->label == (float)rf->count_class;
        /* one line per record; only header-less CoLA train/dev start at 1 */
        int has_header = strcmp(rf->task, "CoLA") != 0 || is_test;
        ck_assert_int_eq(e->line, i + 1 + has_header);
    }
    if (rf->count_class >= 0)
        ck_assert_msg(count == rf->count, "%s: %d rows of class %d, expected %d", path, count,
                      rf->count_class, rf->count);
    glue_split_free(&s);
    ck_assert_ptr_null(s.ex);
    ck_assert_int_eq(s.n, 0);
}
END_TEST

static void real_load(const char *task_name, const char *split, GlueSplit *s)
{
    char dir[1024];
    real_dir(dir, sizeof dir, task_name);
    load_ok(dir, task_name, split, s);
}

/* Expected texts below were read out of the files with sed -n / cut -f. */
START_TEST(test_real_spot_checks)
{
    GlueSplit s;

    real_load("CoLA", "train", &s);
    ck_assert_str_eq(s.ex[0].text_a,
                     "Our friends won't buy this analysis, let alone the next one we propose.");
    ck_assert_ptr_null(s.ex[0].text_b);
    ck_assert_float_eq(s.ex[0].label, 1.0f);
    ck_assert_int_eq(s.ex[0].line, 1);
    ck_assert_str_eq(s.ex[s.n - 1].text_a, "What all did you get for Christmas?");
    glue_split_free(&s);

    real_load("CoLA", "dev", &s); /* no newline after the last row */
    ck_assert_str_eq(s.ex[s.n - 1].text_a, "John talked to Bill about himself.");
    ck_assert_int_eq(s.ex[s.n - 1].line, 1043);
    glue_split_free(&s);

    real_load("CoLA", "test", &s); /* has a header, unlike train/dev */
    ck_assert_str_eq(s.ex[0].text_a, "Bill whistled past the house.");
    ck_assert_int_eq(s.ex[0].line, 2);
    ck_assert_float_eq(s.ex[0].label, -1.0f);
    ck_assert_int_eq(s.labeled, 0);
    glue_split_free(&s);

    real_load("SST-2", "train", &s); /* the trailing space is part of the text */
    ck_assert_str_eq(s.ex[0].text_a, "hide new secretions from the parental units ");
    ck_assert_float_eq(s.ex[0].label, 0.0f);
    glue_split_free(&s);

    real_load("MRPC", "train", &s); /* header with a BOM; quotes are plain text */
    ck_assert_str_eq(s.ex[0].text_a, "Amrozi accused his brother , whom he called \" the witness "
                                     "\" , of deliberately distorting his evidence .");
    ck_assert_str_eq(s.ex[0].text_b, "Referring to him as only \" the witness \" , Amrozi accused "
                                     "his brother of deliberately distorting his evidence .");
    ck_assert_float_eq(s.ex[0].label, 1.0f);
    ck_assert_int_eq(s.ex[0].line, 2);
    glue_split_free(&s);

    real_load("MRPC", "test", &s); /* a text that ends in a quote */
    {
        const char *a = s.ex[s.n - 1].text_a;
        const char *tail = "\" Re : That Movie . \"";
        ck_assert_uint_ge(strlen(a), strlen(tail));
        ck_assert_str_eq(a + strlen(a) - strlen(tail), tail);
        ck_assert_int_eq(strncmp(a, "Sobig.F spreads", 15), 0);
    }
    glue_split_free(&s);

    real_load("STS-B", "train", &s);
    ck_assert_str_eq(s.ex[0].text_a, "A plane is taking off.");
    ck_assert_str_eq(s.ex[0].text_b, "An air plane is taking off.");
    ck_assert_float_eq(s.ex[0].label, 5.0f);
    ck_assert_float_eq(s.ex[1].label, 3.8f);
    ck_assert_str_eq(s.ex[s.n - 1].text_a, "Putin spokesman: Doping charges appear unfounded");
    ck_assert_float_eq(s.ex[s.n - 1].label, 0.0f); /* written "0" */
    ck_assert_int_eq(s.ex[2049].line, 2051);
    ck_assert_float_eq(s.ex[2049].label, 2.11111111111111f); /* 16-character score */
    {
        /* Sum of the scores as float32, added in float64: computed with
         * numpy from the file (np.float32(list).astype(np.float64).sum()). */
        double sum = 0;
        for (int i = 0; i < s.n; i++)
            sum += s.ex[i].label;
        ck_assert_double_eq_tol(sum, 15528.043389335275, 1e-6);
    }
    glue_split_free(&s);

    real_load("STS-B", "dev", &s);
    {
        double sum = 0; /* same computation as above */
        for (int i = 0; i < s.n; i++)
            sum += s.ex[i].label;
        ck_assert_double_eq_tol(sum, 3545.861331090331, 1e-6);
    }
    glue_split_free(&s);

    real_load("STS-B", "test", &s);
    ck_assert_str_eq(s.ex[0].text_a, "A girl is styling her hair.");
    ck_assert_str_eq(s.ex[0].text_b, "A girl is brushing her hair.");
    glue_split_free(&s);

    real_load("QNLI", "dev", &s);
    /* one of the rows whose sentence starts with a stray quote: a quoting
     * TSV reader would swallow the following lines into it */
    ck_assert_int_eq(s.ex[694].line, 696);
    ck_assert_str_eq(s.ex[694].text_a, "Who discovered the Compton Effect?");
    ck_assert_int_eq(strncmp(s.ex[694].text_b, "\" Luis Walter Alvarez,", 22), 0);
    ck_assert_float_eq(s.ex[694].label, 1.0f); /* not_entailment */
    glue_split_free(&s);

    real_load("QNLI", "test", &s); /* UTF-8 passes through untouched (en dash) */
    ck_assert_str_eq(s.ex[s.n - 1].text_a, "Who fought in the great Northern war?");
    ck_assert_int_eq(strncmp(s.ex[s.n - 1].text_b, "In 1709\xE2\x80\x93" "13,", 12), 0);
    glue_split_free(&s);

    real_load("RTE", "train", &s);
    ck_assert_str_eq(s.ex[0].text_a, "No Weapons of Mass Destruction Found in Iraq Yet.");
    ck_assert_str_eq(s.ex[0].text_b, "Weapons of Mass Destruction Found in Iraq.");
    ck_assert_float_eq(s.ex[0].label, 1.0f); /* not_entailment */
    glue_split_free(&s);

    real_load("WNLI", "dev", &s);
    ck_assert_str_eq(s.ex[s.n - 1].text_b, "Eric was not particularly eager to see it.");
    ck_assert_float_eq(s.ex[s.n - 1].label, 0.0f);
    ck_assert_int_eq(s.ex[s.n - 1].line, 72);
    glue_split_free(&s);
}
END_TEST

START_TEST(test_real_sst2_speed)
{
    struct timespec t0, t1;
    GlueSplit s;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    real_load("SST-2", "train", &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ck_assert_int_eq(s.n, 67349);
    glue_split_free(&s);
    fprintf(stderr, "SST-2 train.tsv (67349 rows) loaded in %.3f s\n", secs);
    ck_assert_msg(secs < 1.0, "SST-2 train took %.3f s to load", secs);
}
END_TEST

/* ---- synthetic: what must load ---------------------------------------------- */

START_TEST(test_bom_crlf_no_final_newline)
{
    char dir[512];
    /* BOM, CRLF line ends, a field that starts with a quote and has no
     * closing one, and no newline after the last row */
    write_text(dir, sizeof dir, "bom_crlf", "RTE", "train.tsv",
               "\xEF\xBB\xBFindex\tsentence1\tsentence2\tlabel\r\n"
               "0\tA man sleeps.\tA person sleeps.\tentailment\r\n"
               "1\t\"Hello, he said.\tHe spoke.\tnot_entailment\r\n"
               "2\tLast.\tRow.\tentailment");
    GlueSplit s;
    load_ok(dir, "RTE", "train", &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.labeled, 1);
    ck_assert_str_eq(s.ex[0].text_a, "A man sleeps.");
    ck_assert_str_eq(s.ex[0].text_b, "A person sleeps.");
    ck_assert_float_eq(s.ex[0].label, 0.0f);
    ck_assert_str_eq(s.ex[1].text_a, "\"Hello, he said.");
    ck_assert_float_eq(s.ex[1].label, 1.0f);
    ck_assert_str_eq(s.ex[2].text_b, "Row.");
    ck_assert_int_eq(s.ex[2].line, 4);
    glue_split_free(&s);
    glue_split_free(&s); /* freeing twice is harmless */
}
END_TEST

START_TEST(test_trailing_blank_lines)
{
    char dir[512];
    write_text(dir, sizeof dir, "trailing", "SST-2", "train.tsv",
               "sentence\tlabel\ngood . \t1\nbad . \t0\n\n\r\n\n");
    GlueSplit s;
    load_ok(dir, "SST-2", "train", &s);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.ex[1].text_a, "bad . ");
    ck_assert_ptr_null(s.ex[1].text_b);
    glue_split_free(&s);
}
END_TEST

START_TEST(test_cola_headerless)
{
    char dir[512];
    write_text(dir, sizeof dir, "cola", "CoLA", "train.tsv",
               "gj04\t1\t\tThe dog barked.\n"
               "gj04\t0\t*\tBarked dog the.\n"
               "w_80\t1\t\tLast one.");
    GlueSplit s;
    load_ok(dir, "CoLA", "train", &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.ex[0].text_a, "The dog barked.");
    ck_assert_int_eq(s.ex[0].line, 1);
    ck_assert_float_eq(s.ex[1].label, 0.0f);
    ck_assert_str_eq(s.ex[2].text_a, "Last one.");
    ck_assert_int_eq(s.ex[2].line, 3);
    glue_split_free(&s);

    write_text(dir, sizeof dir, "cola", "CoLA", "test.tsv", "index\tsentence\n0\tIs this fine?\n");
    load_ok(dir, "CoLA", "test", &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.labeled, 0);
    ck_assert_float_eq(s.ex[0].label, -1.0f);
    ck_assert_str_eq(s.ex[0].text_a, "Is this fine?");
    glue_split_free(&s);

    /* a header where CoLA has none: its "label" cannot be a class */
    expect_error("cola_header", "CoLA", "train",
                 "source\tlabel\tmark\tsentence\ngj04\t1\t\tFine.\n",
                 ":1: expected an integer label from 0 to 1 in field 2, found 'label'");
}
END_TEST

/* MNLI rows: index promptID pairID genre s1_binary s2_binary s1_parse
 * s2_parse sentence1 sentence2 label1 [label2..label5] gold_label. */
#define MNLI_PRE "0\t1\t2\tfiction\t( a )\t( b )\t(ROOT a)\t(ROOT b)\t"

START_TEST(test_mnli_splits)
{
    char dir[512];
    const char *hdr12 = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                        "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\t"
                        "sentence2\tlabel1\tgold_label\n";
    const char *hdr16 = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                        "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\t"
                        "sentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n";
    const char *hdr10 = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                        "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\t"
                        "sentence2\n";
    char buf[2048];

    snprintf(buf, sizeof buf,
             "%s" MNLI_PRE "P one.\tH one.\tneutral\tneutral\n"
             MNLI_PRE "P two.\tH two.\tcontradiction\tcontradiction\n"
             MNLI_PRE "P three.\t\tentailment\tentailment\n",
             hdr12);
    write_text(dir, sizeof dir, "mnli", "MNLI", "train.tsv", buf);
    GlueSplit s;
    load_ok(dir, "MNLI", "train", &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_float_eq(s.ex[0].label, 2.0f); /* neutral */
    ck_assert_float_eq(s.ex[1].label, 0.0f); /* contradiction */
    ck_assert_float_eq(s.ex[2].label, 1.0f); /* entailment */
    ck_assert_str_eq(s.ex[1].text_a, "P two.");
    ck_assert_str_eq(s.ex[1].text_b, "H two.");
    ck_assert_str_eq(s.ex[2].text_b, ""); /* empty hypothesis: allowed for MNLI */
    glue_split_free(&s);

    /* dev: five annotator labels; gold_label (last) decides, not label1 */
    snprintf(buf, sizeof buf,
             "%s" MNLI_PRE "M p.\tM h.\tneutral\tentailment\tentailment\tentailment\tneutral\t"
             "entailment\n",
             hdr16);
    write_text(dir, sizeof dir, "mnli", "MNLI", "dev_matched.tsv", buf);
    load_ok(dir, "MNLI", "dev_matched", &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_float_eq(s.ex[0].label, 1.0f);
    ck_assert_str_eq(s.ex[0].text_a, "M p.");
    glue_split_free(&s);

    snprintf(buf, sizeof buf,
             "%s" MNLI_PRE "MM p.\tMM h.\tcontradiction\tcontradiction\tneutral\tcontradiction\t"
             "contradiction\tcontradiction\n" MNLI_PRE "MM p2.\tMM h2.\tneutral\tneutral\t"
             "neutral\tneutral\tneutral\tneutral\n",
             hdr16);
    write_text(dir, sizeof dir, "mnli", "MNLI", "dev_mismatched.tsv", buf);
    load_ok(dir, "MNLI", "dev_mismatched", &s);
    ck_assert_int_eq(s.n, 2);
    ck_assert_float_eq(s.ex[0].label, 0.0f);
    ck_assert_float_eq(s.ex[1].label, 2.0f);
    ck_assert_str_eq(s.ex[1].text_b, "MM h2.");
    glue_split_free(&s);

    snprintf(buf, sizeof buf, "%s" MNLI_PRE "T p.\tT h.\n", hdr10);
    write_text(dir, sizeof dir, "mnli", "MNLI", "test_matched.tsv", buf);
    write_text(dir, sizeof dir, "mnli", "MNLI", "test_mismatched.tsv", buf);
    load_ok(dir, "MNLI", "test_matched", &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.labeled, 0);
    ck_assert_str_eq(s.ex[0].text_b, "T h.");
    ck_assert_float_eq(s.ex[0].label, -1.0f);
    glue_split_free(&s);
    load_ok(dir, "MNLI", "test_mismatched", &s);
    ck_assert_int_eq(s.n, 1);
    glue_split_free(&s);

    /* the split names that do not exist for a task are refused by name */
    char err[512];
    ck_assert_int_eq(glue_load(dir, task("MNLI"), "dev", &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "MNLI has no split 'dev' (expected one of: train, dev_matched, "
                          "dev_mismatched, test_matched, test_mismatched)");
    ck_assert_int_eq(glue_load(dir, task("RTE"), "dev_matched", &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "RTE has no split 'dev_matched' (expected one of: train, dev, test)");

    /* "-" (no annotator consensus) is not a gold label */
    snprintf(buf, sizeof buf,
             "%s" MNLI_PRE "p\th\tneutral\tneutral\n" MNLI_PRE "p\th\tneutral\t-\n", hdr12);
    expect_error("mnli_bad", "MNLI", "train", buf,
                 ":3: expected a label in field 12 (one of 'contradiction', 'entailment', "
                 "'neutral'), found '-'");
}
END_TEST

START_TEST(test_qqp)
{
    char dir[512];
    write_text(dir, sizeof dir, "qqp", "QQP", "train.tsv",
               "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
               "10\t1\t2\tHow do I learn C?\tWhat is the best way to learn C?\t1\n"
               "11\t3\t4\tWhy is the sky blue?\tHow tall is Everest?\t0\n");
    write_text(dir, sizeof dir, "qqp", "QQP", "test.tsv",
               "id\tquestion1\tquestion2\n0\tIs it \"quoted\"?\tIt is.\n");
    GlueSplit s;
    load_ok(dir, "QQP", "train", &s);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.ex[0].text_a, "How do I learn C?");
    ck_assert_str_eq(s.ex[0].text_b, "What is the best way to learn C?");
    ck_assert_float_eq(s.ex[0].label, 1.0f);
    ck_assert_float_eq(s.ex[1].label, 0.0f);
    glue_split_free(&s);
    load_ok(dir, "QQP", "test", &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.ex[0].text_a, "Is it \"quoted\"?");
    ck_assert_str_eq(s.ex[0].text_b, "It is.");
    ck_assert_float_eq(s.ex[0].label, -1.0f);
    glue_split_free(&s);

    /* the header of a test file where train is asked for */
    expect_error("qqp_hdr", "QQP", "train", "id\tquestion1\tquestion2\n0\ta\tb\n",
                 ":1: expected a header line with 6 tab-separated fields, found 3");
}
END_TEST

START_TEST(test_stsb_scores)
{
    char dir[512];
    write_text(dir, sizeof dir, "stsb", "STS-B", "train.tsv",
               "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\t"
               "score\n"
               "0\tg\tf\t2012\t1\tnone\tnone\tA.\tB.\t5.000\n"
               "1\tg\tf\t2012\t2\tnone\tnone\tC.\tD.\t0\n"
               "2\tg\tf\t2012\t3\tnone\tnone\tE.\tF.\t3.33333333333333\n"
               "3\tg\tf\t2012\t4\tnone\tnone\tG.\tH.\t.5\n");
    GlueSplit s;
    load_ok(dir, "STS-B", "train", &s);
    ck_assert_int_eq(s.n, 4);
    ck_assert_float_eq(s.ex[0].label, 5.0f);
    ck_assert_float_eq(s.ex[1].label, 0.0f);
    ck_assert_float_eq(s.ex[2].label, 3.33333333333333f);
    ck_assert_float_eq(s.ex[3].label, 0.5f);
    ck_assert_str_eq(s.ex[3].text_a, "G.");
    ck_assert_str_eq(s.ex[3].text_b, "H.");
    glue_split_free(&s);
}
END_TEST

START_TEST(test_caller_task_copy)
{
    /* a GlueTaskInfo copied by the caller still finds its format by name */
    char dir[512], err[256];
    write_text(dir, sizeof dir, "copy", "WNLI", "dev.tsv",
               "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\t1\n");
    GlueTaskInfo mine = *task("WNLI");
    GlueSplit s;
    ck_assert_int_eq(glue_load(dir, &mine, "dev", &s, err, sizeof err), 0);
    ck_assert_int_eq(s.n, 1);
    glue_split_free(&s);
    mine.name = "nope";
    ck_assert_int_eq(glue_load(dir, &mine, "dev", &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown GLUE task 'nope'");
}
END_TEST

/* ---- synthetic: what must be refused ----------------------------------------- */

#define RTE_HDR "index\tsentence1\tsentence2\tlabel\n"
#define STSB_HDR "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
#define STSB_ROW(score) "0\tg\tf\t2012\t1\tnone\tnone\tA.\tB.\t" score "\n"

START_TEST(test_field_counts)
{
    expect_error("few", "RTE", "train", RTE_HDR "0\ta\tb\tentailment\n1\ta\tentailment\n",
                 ":3: expected 4 tab-separated fields, found 3");
    expect_error("many", "RTE", "train", RTE_HDR "0\ta\tb\tentailment\textra\n",
                 ":2: expected 4 tab-separated fields, found 5");
    expect_error("cola_few", "CoLA", "dev", "gj04\t1\t\tOk.\ngj04\t1\tOnly three.\n",
                 ":2: expected 4 tab-separated fields, found 3");
    /* a CRLF file whose label field would otherwise keep the '\r' */
    expect_error("crlf_few", "SST-2", "dev", "sentence\tlabel\r\nfine \t1\r\nno label\r\n",
                 ":3: expected 2 tab-separated fields, found 1");
}
END_TEST

START_TEST(test_bad_labels)
{
    expect_error("cola_range", "CoLA", "train", "gj04\t1\t\tOk.\ngj04\t2\t\tTwo?\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found '2'");
    expect_error("sst_float", "SST-2", "train", "sentence\tlabel\nok \t1.0\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found '1.0'");
    expect_error("sst_neg", "SST-2", "train", "sentence\tlabel\nok \t-1\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found '-1'");
    expect_error("sst_space", "SST-2", "train", "sentence\tlabel\nok \t 1\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found ' 1'");
    expect_error("sst_empty", "SST-2", "train", "sentence\tlabel\nok \t\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found ''");
    expect_error("mrpc_label", "MRPC", "dev",
                 "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nyes\t1\t2\ta\tb\n",
                 ":2: expected an integer label from 0 to 1 in field 1, found 'yes'");
    expect_error("wnli_big", "WNLI", "train", RTE_HDR "0\ta\tb\t10\n",
                 ":2: expected an integer label from 0 to 1 in field 4, found '10'");
    expect_error("rte_case", "RTE", "dev", RTE_HDR "0\ta\tb\tEntailment\n",
                 ":2: expected a label in field 4 (one of 'entailment', 'not_entailment'), "
                 "found 'Entailment'");
    expect_error("qnli_num", "QNLI", "dev", "index\tquestion\tsentence\tlabel\n0\tq?\ts.\t0\n",
                 ":2: expected a label in field 4 (one of 'entailment', 'not_entailment'), "
                 "found '0'");
    expect_error("stsb_high", "STS-B", "train", STSB_HDR STSB_ROW("5.5"),
                 ":2: expected a score between 0 and 5 in field 10, found '5.5'");
    expect_error("stsb_neg", "STS-B", "train", STSB_HDR STSB_ROW("-0.5"),
                 ":2: expected a score between 0 and 5 in field 10, found '-0.5'");
    expect_error("stsb_text", "STS-B", "dev", STSB_HDR STSB_ROW("abc"),
                 ":2: expected a score between 0 and 5 in field 10, found 'abc'");
    expect_error("stsb_exp", "STS-B", "dev", STSB_HDR STSB_ROW("1e0"),
                 ":2: expected a score between 0 and 5 in field 10, found '1e0'");
    expect_error("stsb_dot", "STS-B", "dev", STSB_HDR STSB_ROW("."),
                 ":2: expected a score between 0 and 5 in field 10, found '.'");
    expect_error("stsb_nan", "STS-B", "dev", STSB_HDR STSB_ROW("nan"),
                 ":2: expected a score between 0 and 5 in field 10, found 'nan'");
    /* long junk is quoted only in part */
    expect_error("long", "SST-2", "train",
                 "sentence\tlabel\nok \t0123456789012345678901234567890123456789XYZ\n",
                 ":2: expected an integer label from 0 to 1 in field 2, found "
                 "'0123456789012345678901234567890123456789'");
}
END_TEST

START_TEST(test_bad_structure)
{
    expect_error("blank_mid", "SST-2", "train", "sentence\tlabel\na \t1\n\nb \t0\n",
                 ":3: empty line (only allowed at the end of the file)");
    expect_error("empty_text", "RTE", "train", RTE_HDR "0\t\tb\tentailment\n",
                 ":2: expected a non-empty sentence in field 2");
    expect_error("empty_text_b", "MRPC", "train",
                 "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\t\n",
                 ":2: expected a non-empty sentence in field 5");
    expect_error("hdr_name", "STS-B", "train",
                 "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tscore\t"
                 "sentence2\n" STSB_ROW("1"),
                 ":1: expected header field 9 to be 'sentence2' (a STS-B train/dev file), "
                 "found 'score'");
    expect_error("test_as_train", "STS-B", "train",
                 "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                 "sentence2\n0\tg\tf\t2012\t1\tnone\tnone\tA.\tB.\n",
                 ":1: expected a header line with 10 tab-separated fields, found 9");
    expect_error("empty_file", "RTE", "dev", "", ": empty file, expected a header line");
    expect_error("header_only", "RTE", "dev", RTE_HDR, ": no data rows");
    expect_error("cola_empty", "CoLA", "train", "\n\n", ": no data rows");

    /* a NUL byte: a binary file or a broken copy */
    char dir[512], err[512], want[1024];
    static const char nul[] = "sentence\tlabel\nab\0c \t1\n";
    write_bytes(dir, sizeof dir, "nul", "SST-2", "train.tsv", nul, sizeof nul - 1);
    GlueSplit s;
    ck_assert_int_eq(glue_load(dir, task("SST-2"), "train", &s, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/train.tsv:2: unexpected NUL byte (not a text file?)", dir);
    ck_assert_str_eq(err, want);

    /* a missing file names the path it looked for */
    snprintf(dir, sizeof dir, "%s/nowhere/WNLI", g_tmp);
    ck_assert_int_eq(glue_load(dir, task("WNLI"), "train", &s, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/train.tsv: cannot open: No such file or directory", dir);
    ck_assert_str_eq(err, want);

    /* a too-small err buffer is truncated, never overrun */
    char tiny[8];
    ck_assert_int_eq(glue_load(dir, task("WNLI"), "train", &s, tiny, sizeof tiny), -1);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
}
END_TEST

static Suite *glue_suite(void)
{
    Suite *su = suite_create("glue");

    TCase *tc = tcase_create("synthetic");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_task_info);
    tcase_add_test(tc, test_bom_crlf_no_final_newline);
    tcase_add_test(tc, test_trailing_blank_lines);
    tcase_add_test(tc, test_cola_headerless);
    tcase_add_test(tc, test_mnli_splits);
    tcase_add_test(tc, test_qqp);
    tcase_add_test(tc, test_stsb_scores);
    tcase_add_test(tc, test_caller_task_copy);
    tcase_add_test(tc, test_field_counts);
    tcase_add_test(tc, test_bad_labels);
    tcase_add_test(tc, test_bad_structure);
    suite_add_tcase(su, tc);

    const char *assets = getenv("BILORA_ASSETS");
    if (assets && *assets) {
        TCase *real = tcase_create("real_data");
        tcase_set_timeout(real, 120);
        tcase_add_loop_test(real, test_real_counts, 0, N_REAL);
        tcase_add_test(real, test_real_spot_checks);
        tcase_add_test(real, test_real_sst2_speed);
        suite_add_tcase(su, real);
    } else {
        fprintf(stderr, "test_glue: BILORA_ASSETS is not set; real GLUE files not checked\n");
    }
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(glue_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
