/* GLUE readers for the glue_data layout. See glue.h for the contract and
 * /work/shared/data/README.md (the project's data notes) for the quirks the
 * real files have: a BOM on MRPC, no final newline on CoLA/dev.tsv, CoLA's
 * header-less train/dev, fields that begin with '"' (so no quote handling).
 *
 * Every file is read line by line with getline(), so MNLI's several-hundred-
 * megabyte train.tsv never has to sit in memory as one block. Each kept text
 * field is copied into its own allocation: callers may shuffle, reorder or
 * take ownership of individual examples, and glue_split_free() frees
 * whatever is left in the array. */
#include "datasets/glue.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- task table ---------------------------------------------------------- */

/* Field positions below are 0-based; messages print them 1-based, as a
 * person counting columns in a spreadsheet would. */
#define COL_NONE (-1) /* no such column (text_b of single-sentence tasks) */
#define COL_LAST (-2) /* the last field of the row (MNLI's gold_label) */

/* How one kind of file (labeled train/dev, or unlabeled test) is laid out. */
typedef struct {
    int has_header;
    int nfields;      /* exact field count of every row; 0 = whatever the
                         header has, at least min_fields (MNLI: train has 12
                         fields, dev 16, because dev keeps five annotator
                         labels) */
    int min_fields;
    int col_a, col_b, col_label;
    /* Expected header names of the columns we read, so that a file of the
     * wrong task or a reordered export fails loudly instead of training on
     * the wrong column. NULL where there is no header. */
    const char *name_a, *name_b, *name_label;
} Layout;

typedef struct {
    Layout labeled;   /* train and dev splits */
    Layout test;      /* test splits (no label column) */
    /* Empty texts: none of the files we could check (every GLUE task but QQP,
     * MNLI and QNLI's train) has one, so elsewhere an empty sentence means a
     * broken file. MNLI and QQP are allowed them because we could not check
     * those files and other loaders (jiant) had to cope with empty MNLI
     * hypotheses; the tokenizer handles an empty string fine. */
    int allow_empty_text;
} TaskFormat;

enum { T_COLA, T_SST2, T_MRPC, T_STSB, T_QQP, T_MNLI, T_QNLI, T_RTE, T_WNLI, T_COUNT };

static const GlueTaskInfo TASKS[T_COUNT] = {
    [T_COLA] = {"CoLA", 2, 0, {"dev", NULL}, 1, {NULL, NULL, NULL}},
    [T_SST2] = {"SST-2", 2, 0, {"dev", NULL}, 1, {NULL, NULL, NULL}},
    [T_MRPC] = {"MRPC", 2, 0, {"dev", NULL}, 1, {NULL, NULL, NULL}},
    [T_STSB] = {"STS-B", 1, 1, {"dev", NULL}, 1, {NULL, NULL, NULL}},
    [T_QQP] = {"QQP", 2, 0, {"dev", NULL}, 1, {NULL, NULL, NULL}},
    /* The order of transformers' MnliProcessor.get_labels(), which is what
     * checkpoints fine-tuned with run_glue's processors expect. */
    [T_MNLI] = {"MNLI", 3, 0, {"dev_matched", "dev_mismatched"}, 2,
                {"contradiction", "entailment", "neutral"}},
    /* Hugging Face datasets' glue/qnli and glue/rte ClassLabel order. */
    [T_QNLI] = {"QNLI", 2, 0, {"dev", NULL}, 1, {"entailment", "not_entailment", NULL}},
    [T_RTE] = {"RTE", 2, 0, {"dev", NULL}, 1, {"entailment", "not_entailment", NULL}},
    [T_WNLI] = {"WNLI", 2, 0, {"dev", NULL}, 1, {NULL, NULL, NULL}},
};

static const TaskFormat FORMATS[T_COUNT] = {
    /* CoLA train/dev: source, label, original mark (often empty), sentence;
     * no header. Its test.tsv, unlike the others, does have one. */
    [T_COLA] = {{0, 4, 4, 3, COL_NONE, 1, NULL, NULL, NULL},
                {1, 2, 2, 1, COL_NONE, COL_NONE, "sentence", NULL, NULL}, 0},
    [T_SST2] = {{1, 2, 2, 0, COL_NONE, 1, "sentence", NULL, "label"},
                {1, 2, 2, 1, COL_NONE, COL_NONE, "sentence", NULL, NULL}, 0},
    [T_MRPC] = {{1, 5, 5, 3, 4, 0, "#1 String", "#2 String", "Quality"},
                {1, 5, 5, 3, 4, COL_NONE, "#1 String", "#2 String", NULL}, 0},
    [T_STSB] = {{1, 10, 10, 7, 8, 9, "sentence1", "sentence2", "score"},
                {1, 9, 9, 7, 8, COL_NONE, "sentence1", "sentence2", NULL}, 0},
    [T_QQP] = {{1, 6, 6, 3, 4, 5, "question1", "question2", "is_duplicate"},
               {1, 3, 3, 1, 2, COL_NONE, "question1", "question2", NULL}, 1},
    [T_MNLI] = {{1, 0, 11, 8, 9, COL_LAST, "sentence1", "sentence2", "gold_label"},
                {1, 10, 10, 8, 9, COL_NONE, "sentence1", "sentence2", NULL}, 1},
    [T_QNLI] = {{1, 4, 4, 1, 2, 3, "question", "sentence", "label"},
                {1, 3, 3, 1, 2, COL_NONE, "question", "sentence", NULL}, 0},
    [T_RTE] = {{1, 4, 4, 1, 2, 3, "sentence1", "sentence2", "label"},
               {1, 3, 3, 1, 2, COL_NONE, "sentence1", "sentence2", NULL}, 0},
    [T_WNLI] = {{1, 4, 4, 1, 2, 3, "sentence1", "sentence2", "label"},
                {1, 3, 3, 1, 2, COL_NONE, "sentence1", "sentence2", NULL}, 0},
};

const GlueTaskInfo *glue_task_at(int i)
{
    return (i >= 0 && i < T_COUNT) ? &TASKS[i] : NULL;
}

/* Names are compared lowercased with '-' and '_' dropped, so "SST-2",
 * "sst2", "sts_b" and "MNLI-mm" all find their task. */
static int normalize_name(const char *in, char *out, size_t outlen)
{
    size_t k = 0;
    for (; *in; in++) {
        char c = *in;
        if (c == '-' || c == '_')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (k + 1 >= outlen)
            return -1;
        out[k++] = c;
    }
    out[k] = '\0';
    return 0;
}

const GlueTaskInfo *glue_task_info(const char *name)
{
    static const struct {
        const char *alias;
        int task;
    } aliases[] = {
        {"cola", T_COLA},          {"sst2", T_SST2},           {"sst", T_SST2},
        {"mrpc", T_MRPC},          {"stsb", T_STSB},           {"sts", T_STSB},
        {"qqp", T_QQP},            {"mnli", T_MNLI},           {"mnlim", T_MNLI},
        {"mnlimm", T_MNLI},        {"mnlimatched", T_MNLI},    {"mnlimismatched", T_MNLI},
        {"qnli", T_QNLI},          {"rte", T_RTE},             {"wnli", T_WNLI},
    };
    char key[32];
    if (!name || normalize_name(name, key, sizeof key) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(key, aliases[i].alias) == 0)
            return &TASKS[aliases[i].task];
    return NULL;
}

/* The caller may pass its own copy of a GlueTaskInfo; find ours by name. */
static int task_index(const GlueTaskInfo *task)
{
    if (task >= TASKS && task < TASKS + T_COUNT)
        return (int)(task - TASKS);
    if (!task || !task->name)
        return -1;
    const GlueTaskInfo *t = glue_task_info(task->name);
    return t ? (int)(t - TASKS) : -1;
}

/* ---- row parsing ---------------------------------------------------------- */

/* Labels and texts quoted in messages are cut to this many bytes, so that a
 * file with a missing newline does not put a megabyte into err. */
#define QUOTE_MAX 40

#define MAX_FIELDS 64 /* more than any GLUE file has (MNLI dev: 16) */

/* Splits line (NUL-terminated, no newline) on '\t' in place. Returns the
 * number of fields, which may exceed MAX_FIELDS (only the first MAX_FIELDS
 * are stored; the count is still right for the error message). */
static int split_tabs(char *line, char **fields)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n < MAX_FIELDS)
            fields[n] = p;
        n++;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* Strict non-negative decimal integer: digits only, no sign, no spaces. */
static int parse_class(const char *s, int num_labels, int *out)
{
    if (!*s)
        return -1;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v >= num_labels)
            return -1;
    }
    *out = (int)v;
    return 0;
}

/* A decimal score like "5.000", "3.8", "0" or ".5". Parsed by hand rather
 * than with strtod: strtod follows LC_NUMERIC, and a front end that calls
 * setlocale() for UTF-8 drawing could otherwise turn "3.800" into an error
 * under a locale whose decimal point is a comma. The digits are gathered as
 * an integer and divided by a power of ten once, which rounds correctly for
 * the short scores STS-B has. */
static int parse_score(const char *s, double *out)
{
    uint64_t mant = 0;
    int ndigits = 0, frac = 0, seen_point = 0;
    for (; *s; s++) {
        if (*s == '.' && !seen_point) {
            seen_point = 1;
        } else if (*s >= '0' && *s <= '9') {
            /* 18 digits fit in uint64_t; a real score has at most 5 */
            if (++ndigits > 18)
                return -1;
            mant = mant * 10 + (uint64_t)(*s - '0');
            frac += seen_point;
        } else {
            return -1;
        }
    }
    if (ndigits == 0)
        return -1;
    double scale = 1.0;
    for (int i = 0; i < frac; i++)
        scale *= 10.0;
    *out = (double)mant / scale;
    return 0;
}

static char *dup_text(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* State shared by the helpers of one glue_load call. */
typedef struct {
    const char *path;
    const GlueTaskInfo *info;
    const TaskFormat *fmt;
    const Layout *lay;
    int labeled;
    int nfields;     /* the exact count every row must have */
    int col_label;   /* resolved (COL_LAST replaced) */
    char *err;
    size_t errlen;
} Reader;

static int check_header(Reader *r, char **fields, int nf)
{
    const Layout *lay = r->lay;
    if (lay->nfields ? nf != lay->nfields : nf < lay->min_fields) {
        snprintf(r->err, r->errlen,
                 "%s:1: expected a header line with %s%d tab-separated fields, found %d",
                 r->path, lay->nfields ? "" : "at least ",
                 lay->nfields ? lay->nfields : lay->min_fields, nf);
        return -1;
    }
    r->nfields = nf;
    r->col_label = lay->col_label == COL_LAST ? nf - 1 : lay->col_label;
    const struct {
        int col;
        const char *name;
    } want[3] = {{lay->col_a, lay->name_a},
                 {lay->col_b, lay->name_b},
                 {r->col_label, lay->name_label}};
    for (int i = 0; i < 3; i++) {
        if (want[i].col < 0 || !want[i].name)
            continue;
        if (strcmp(fields[want[i].col], want[i].name) != 0) {
            snprintf(r->err, r->errlen,
                     "%s:1: expected header field %d to be '%s' (a %s %s file), found '%.*s'",
                     r->path, want[i].col + 1, want[i].name, r->info->name,
                     r->labeled ? "train/dev" : "test", QUOTE_MAX, fields[want[i].col]);
            return -1;
        }
    }
    return 0;
}

static int parse_label(Reader *r, int lineno, const char *field, float *out)
{
    const GlueTaskInfo *info = r->info;
    int col = r->col_label + 1;
    if (info->is_regression) {
        double v;
        if (parse_score(field, &v) != 0 || v < 0.0 || v > 5.0) {
            snprintf(r->err, r->errlen,
                     "%s:%d: expected a score between 0 and 5 in field %d, found '%.*s'",
                     r->path, lineno, col, QUOTE_MAX, field);
            return -1;
        }
        *out = (float)v;
        return 0;
    }
    if (info->label_names[0]) {
        for (int k = 0; k < info->num_labels; k++) {
            if (strcmp(field, info->label_names[k]) == 0) {
                *out = (float)k;
                return 0;
            }
        }
        char names[128] = "";
        for (int k = 0; k < info->num_labels; k++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s'%s'", k ? ", " : "",
                     info->label_names[k]);
        }
        snprintf(r->err, r->errlen, "%s:%d: expected a label in field %d (one of %s), found '%.*s'",
                 r->path, lineno, col, names, QUOTE_MAX, field);
        return -1;
    }
    int k;
    if (parse_class(field, info->num_labels, &k) != 0) {
        snprintf(r->err, r->errlen,
                 "%s:%d: expected an integer label from 0 to %d in field %d, found '%.*s'",
                 r->path, lineno, info->num_labels - 1, col, QUOTE_MAX, field);
        return -1;
    }
    *out = (float)k;
    return 0;
}

static int parse_row(Reader *r, int lineno, char **fields, int nf, GlueExample *ex)
{
    const Layout *lay = r->lay;
    if (nf != r->nfields) {
        snprintf(r->err, r->errlen, "%s:%d: expected %d tab-separated fields, found %d", r->path,
                 lineno, r->nfields, nf);
        return -1;
    }
    const int cols[2] = {lay->col_a, lay->col_b};
    for (int i = 0; i < 2; i++) {
        if (cols[i] >= 0 && fields[cols[i]][0] == '\0' && !r->fmt->allow_empty_text) {
            snprintf(r->err, r->errlen, "%s:%d: expected a non-empty sentence in field %d",
                     r->path, lineno, cols[i] + 1);
            return -1;
        }
    }
    float label = -1.0f;
    if (r->labeled && parse_label(r, lineno, fields[r->col_label], &label) != 0)
        return -1;
    ex->text_a = dup_text(fields[lay->col_a]);
    ex->text_b = lay->col_b >= 0 ? dup_text(fields[lay->col_b]) : NULL;
    ex->label = label;
    ex->line = lineno;
    if (!ex->text_a || (lay->col_b >= 0 && !ex->text_b)) {
        free(ex->text_a);
        free(ex->text_b);
        snprintf(r->err, r->errlen, "%s:%d: out of memory", r->path, lineno);
        return -1;
    }
    return 0;
}

/* Which splits a task has. Unknown names are refused with the list of valid
 * ones rather than silently opening some other file. */
static int resolve_split(int t, const char *split, int *is_test, char *err, size_t errlen)
{
    static const char *const plain[] = {"train", "dev", "test"};
    static const char *const mnli[] = {"train", "dev_matched", "dev_mismatched", "test_matched",
                                       "test_mismatched"};
    const char *const *names = t == T_MNLI ? mnli : plain;
    int n = t == T_MNLI ? 5 : 3;
    for (int i = 0; split && i < n; i++) {
        if (strcmp(split, names[i]) == 0) {
            *is_test = strncmp(split, "test", 4) == 0;
            return 0;
        }
    }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    }
    snprintf(err, errlen, "%s has no split '%s' (expected one of: %s)", TASKS[t].name,
             split ? split : "(null)", list);
    return -1;
}

int glue_load(const char *task_dir, const GlueTaskInfo *task, const char *split,
              GlueSplit *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int t = task_index(task);
    if (t < 0) {
        snprintf(err, errlen, "unknown GLUE task '%s'", task && task->name ? task->name : "(null)");
        return -1;
    }
    int is_test;
    if (resolve_split(t, split, &is_test, err, errlen) != 0)
        return -1;

    char path[4096];
    int plen = snprintf(path, sizeof path, "%s/%s.tsv", task_dir, split);
    if (plen < 0 || (size_t)plen >= sizeof path) {
        snprintf(err, errlen, "%s: path too long", task_dir);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }

    Reader r = {
        .path = path,
        .info = &TASKS[t],
        .fmt = &FORMATS[t],
        .lay = is_test ? &FORMATS[t].test : &FORMATS[t].labeled,
        .labeled = !is_test,
        .err = err,
        .errlen = errlen,
    };
    if (!r.lay->has_header) {
        r.nfields = r.lay->nfields;
        r.col_label = r.lay->col_label;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, first_empty = 0, header_done = !r.lay->has_header, ok = 1;
    GlueExample *ex = NULL;
    int n = 0, ex_cap = 0;
    char *fields[MAX_FIELDS];

    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        /* CRLF files (saved on Windows): the '\r' would otherwise end up in
         * the last field, i.e. in the label, and fail to parse there. */
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        char *text = line;
        if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3; /* MRPC's BOM; else the header reads "\ufeffQuality" */
            len -= 3;
        }
        if ((size_t)len != strlen(text)) {
            snprintf(err, errlen, "%s:%d: unexpected NUL byte (not a text file?)", path, lineno);
            ok = 0;
            break;
        }
        /* Blank lines are tolerated only as trailing padding at the end of
         * the file (editors add them); one in the middle means a row was
         * lost or split, and no real GLUE file has one. */
        if (len == 0) {
            if (!first_empty)
                first_empty = lineno;
            continue;
        }
        if (first_empty) {
            snprintf(err, errlen, "%s:%d: empty line (only allowed at the end of the file)", path,
                     first_empty);
            ok = 0;
            break;
        }
        int nf = split_tabs(text, fields);
        if (nf > MAX_FIELDS) {
            snprintf(err, errlen, "%s:%d: expected at most %d tab-separated fields, found %d",
                     path, lineno, MAX_FIELDS, nf);
            ok = 0;
            break;
        }
        if (!header_done) {
            if (check_header(&r, fields, nf) != 0) {
                ok = 0;
                break;
            }
            header_done = 1;
            continue;
        }
        if (n == ex_cap) {
            int new_cap = ex_cap ? 2 * ex_cap : 1024;
            GlueExample *grown = realloc(ex, (size_t)new_cap * sizeof *ex);
            if (!grown) {
                snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
                ok = 0;
                break;
            }
            ex = grown;
            ex_cap = new_cap;
        }
        if (parse_row(&r, lineno, fields, nf, &ex[n]) != 0) {
            ok = 0;
            break;
        }
        n++;
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        ok = 0;
    }
    /* A truncated download or a wrong path that happens to exist would
     * otherwise give a task with nothing to train or evaluate on. */
    if (ok && !header_done) {
        snprintf(err, errlen, "%s: empty file, expected a header line", path);
        ok = 0;
    } else if (ok && n == 0) {
        snprintf(err, errlen, "%s: no data rows", path);
        ok = 0;
    }
    free(line);
    fclose(f);

    out->ex = ex;
    out->n = n;
    out->labeled = !is_test;
    if (!ok) {
        glue_split_free(out);
        return -1;
    }
    return 0;
}

void glue_split_free(GlueSplit *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->ex[i].text_a);
        free(s->ex[i].text_b);
    }
    free(s->ex);
    s->ex = NULL;
    s->n = 0;
    s->labeled = 0;
}
