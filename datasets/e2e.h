/* The E2E NLG Challenge data (Novikova et al. 2017): CSV files with a header
 * "mr,ref", one (meaning representation, human reference) pair per record:
 *   trainset.csv, devset.csv, testset_w_refs.csv
 * in one folder (data/e2e/ on the asset path). Parsed with libcsv (RFC 4180:
 * quoted fields, doubled quotes); a UTF-8 BOM and CRLF line ends are normal.
 * A malformed record is an error naming the file, the line and what was
 * expected. Fallible functions return 0 / -1 with a message in err. */
#ifndef BILORA_DATASETS_E2E_H
#define BILORA_DATASETS_E2E_H

#include <stddef.h>

typedef struct {
    char *mr;   /* "name[The Vaults], eatType[pub], ..." */
    char *ref;  /* the human-written sentence(s) */
    int line;   /* 1-based line where the record ends */
} E2EExample;

typedef struct {
    E2EExample *ex;
    int n;
} E2ESplit;

/* The task name: "E2E" when name is "e2e" or "data/e2e" in any case, else
 * NULL (the front ends' --task e2e). */
const char *e2e_task_name(const char *name);
/* The file of a split: train trainset.csv, dev devset.csv, test
 * testset_w_refs.csv; NULL for anything else. */
const char *e2e_split_file(const char *split);

/* Reads dir/<file> for split "train" (trainset.csv), "dev" (devset.csv) or
 * "test" (testset_w_refs.csv). */
int e2e_load(const char *dir, const char *split, E2ESplit *out, char *err, size_t errlen);
void e2e_split_free(E2ESplit *s);

#endif
