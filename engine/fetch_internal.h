/* Shared between the engine/fetch*.c files; not a public interface. */
#ifndef BILORA_ENGINE_FETCH_INTERNAL_H
#define BILORA_ENGINE_FETCH_INTERNAL_H

#include "engine/fetch.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* The options with every default and environment variable resolved, so the
 * rest of the code never reads the environment. */
typedef struct {
    char home[PATH_MAX];
    char hub[1024], pypi[1024], glue[1024], mrpc[1024], mrpc_ids[1024], e2e[1024];
    char token[1024];     /* HF_TOKEN, sent only to the hub */
    int force, retries, backoff_ms;
    long connect_timeout_s, stall_timeout_s;
    FILE *msg, *prog;
    FetchProgress mode;   /* AUTO resolved to BAR or LINES */
} FetchCtx;

/* Why a transfer failed; callers turn some of these into softer outcomes
 * (an optional file's 404) and the rest into the user's error. */
typedef enum {
    FE_OK = 0,
    FE_NOT_FOUND, /* HTTP 404 */
    FE_NETWORK,   /* could not resolve or connect: no network, wrong address */
    FE_DISK,      /* ENOSPC or another write error on the destination */
    FE_CHECKSUM,  /* sha256 (or size) differs from what the source published */
    FE_DROPPED,   /* the transfer broke off, retries exhausted; .part kept */
    FE_HTTP,      /* another HTTP error status */
    FE_OTHER,
} FetchErr;

typedef struct {
    const char *url;
    const char *dest;    /* final path; written as dest.part */
    const char *label;   /* name on the progress line */
    const char *sha256;  /* expected lower-case hex, or NULL */
    int64_t size;        /* expected size, or -1 */
    int hub;             /* a hub URL: send HF_TOKEN, read X-Linked-Etag */
    const char *via;     /* the variable that sets this address, for the no-network hint */
    /* out */
    char sha256_seen[65]; /* digest the file was verified against ("" if none) */
    int64_t bytes;        /* final size */
    int resumed;          /* some attempt resumed from a .part */
} Download;

int fetch_ctx_init(FetchCtx *c, const FetchOptions *o, char *err, size_t errlen);

FetchErr fetch_download(const FetchCtx *c, Download *d, char *err, size_t errlen);

/* GET into memory (NUL-terminated), for JSON listings; *status gets the
 * final HTTP status. Fails with FE_NOT_FOUND on 404. */
FetchErr fetch_get_memory(const FetchCtx *c, const char *url, int hub, const char *via, char **body,
                          size_t *len, char *err, size_t errlen);

/* snprintf, through a function so GCC's -Wformat-truncation (an error
 * under -Werror) does not flag every path built from the asset root: those
 * are bounded where the root is chosen (fetch_ctx_init refuses one longer
 * than PATH_MAX - 512) and names are capped at 200 characters, and the
 * places where truncation would matter check the result as with snprintf. */
int fetch_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Filesystem helpers. */
int fetch_mkdirs(const char *path, char *err, size_t errlen);
void fetch_rm_rf(const char *path);
int fetch_is_dir(const char *p);
int fetch_is_file(const char *p);
/* Renames a finished staging directory onto final (replacing an existing
 * one only after the new one is in place). */
int fetch_place_dir(const char *staging, const char *final, char *err, size_t errlen);
/* Human-readable size: "83.5 MB". */
void fetch_human(double bytes, char *out, size_t cap);

/* A zip's entries under prefix (a folder inside the archive, "" for the
 * root) extracted into dest (created), each via FILE.part; flat: only the
 * folder's direct files. check, when given, sees each file's sha256 and size
 * and may refuse it. Entries named with "..", absolute paths, and macOS
 * metadata are skipped or refused. Returns the number of files, or -1. */
typedef int (*FetchZipCheck)(void *ctx, const char *entry, const uint8_t sha[32], uint64_t size,
                             char *err, size_t errlen);
int fetch_zip_extract(const char *zip_path, const char *prefix, int flat, const char *dest,
                      FetchZipCheck check, void *ctx, char *err, size_t errlen);
/* The one folder every entry of the zip sits in ("SST-2/"), or "" when
 * there is none. */
int fetch_zip_top_dir(const char *zip_path, char *out, size_t cap, char *err, size_t errlen);

int fetch_pypi(const FetchCtx *c, const char *name, char *err, size_t errlen);

#endif
