/* GLUE readers for the glue_data layout (one folder per task, train.tsv,
 * dev.tsv, test.tsv; MNLI has dev_matched.tsv and dev_mismatched.tsv).
 *
 * TSV here means: split on newline and tab only, no quote handling. A UTF-8
 * BOM, CRLF line ends, a missing final newline and CoLA's header-less files
 * are normal. A malformed row is an error naming the file, the line and what
 * was expected. Fallible functions return 0 / -1 with a message in err. */
#ifndef BILORA_DATASETS_GLUE_H
#define BILORA_DATASETS_GLUE_H

#include <stddef.h>

typedef struct {
    const char *name;        /* canonical: "CoLA", "SST-2", "MRPC", "STS-B", "QQP",
                                "MNLI", "QNLI", "RTE", "WNLI" */
    int num_labels;          /* 1 for STS-B (regression) */
    int is_regression;
    const char *dev_splits[2]; /* "dev" / MNLI: "dev_matched", "dev_mismatched" */
    int num_dev_splits;
    const char *label_names[3]; /* textual labels in file order of class index
                                   (MNLI: contradiction, entailment, neutral;
                                    RTE/QNLI: entailment, not_entailment) or NULL */
} GlueTaskInfo;

typedef struct {
    char *text_a;
    char *text_b;   /* NULL for single-sentence tasks */
    float label;    /* class index, or the score for STS-B; -1 when unlabeled (test) */
    int line;       /* 1-based line in the file */
} GlueExample;

typedef struct {
    GlueExample *ex;
    int n;
    int labeled;    /* 0 for test files */
} GlueSplit;

/* Case-insensitive, also accepts "sst2", "sts-b", "stsb", "mnli-m" etc.
 * NULL when unknown. */
const GlueTaskInfo *glue_task_info(const char *name);

/* The nine tasks in GLUE's order (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI,
 * RTE, WNLI) for i = 0..8; NULL past the end. */
const GlueTaskInfo *glue_task_at(int i);

/* Reads task_dir/<split>.tsv. split: "train", "dev", "test"; for MNLI
 * "train", "dev_matched", "dev_mismatched", "test_matched",
 * "test_mismatched". Test splits give labeled = 0 and label -1. */
int glue_load(const char *task_dir, const GlueTaskInfo *task, const char *split,
              GlueSplit *out, char *err, size_t errlen);
/* Frees every text_a / text_b in s->ex[0..n) (each is its own allocation, so
 * examples may be reordered, or a caller may take one and set it NULL) and
 * the array itself. */
void glue_split_free(GlueSplit *s);

#endif
