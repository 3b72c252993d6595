/* Asset search path: where models and task data are found.
 *
 * Order, first match wins:
 *   1. each root of BILORA_ASSETS (colon-separated): <root>/models/<name>,
 *      <root>/data/glue/<TASK>
 *   2. $BILORA_HOME, default $HOME/.cache/bilora, same layout
 *   3. models only: the Hugging Face hub cache ($HF_HUB_CACHE, else
 *      $HF_HOME/hub, else $HOME/.cache/huggingface/hub),
 *      models--ORG--NAME/snapshots/<rev>/
 * Environment variables are read on every call (no cached state), so tests
 * and long-running front ends see changes immediately. Every candidate tried
 * is remembered so a failure can list them all: the user's next move is
 * almost always "put it in one of those places". */
#include "engine/assets.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* Candidate places, for the not-found message. */
typedef struct {
    char *buf;
    size_t len, cap;
} Looked;

static void looked_add(Looked *l, const char *place) {
    size_t n = strlen(place) + 2;
    if (l->len + n + 1 > l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 512;
        while (nc < l->len + n + 1) nc *= 2;
        char *nb = realloc(l->buf, nc);
        if (!nb) return; /* the message just gets shorter */
        l->buf = nb;
        l->cap = nc;
    }
    l->len += (size_t)sprintf(l->buf + l->len, "%s%s", l->len ? ", " : "", place);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int has_file(const char *dir, const char *name) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p) return 0;
    return is_file(p);
}

/* The roots that hold models/ and data/: BILORA_ASSETS entries, then
 * BILORA_HOME (or its default). Written as NUL-separated strings into buf;
 * returns the count. */
static int asset_roots(char *buf, size_t cap, const char **roots, int max) {
    int n = 0;
    size_t used = 0;
    const char *env = getenv("BILORA_ASSETS");
    if (env) {
        const char *p = env;
        while (*p && n < max - 1) {
            const char *q = strchr(p, ':');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            /* Empty entries ("a::b", a trailing colon) are skipped rather than
             * read as the current directory: that would be a surprise. */
            if (len > 0 && used + len + 1 <= cap) {
                memcpy(buf + used, p, len);
                buf[used + len] = 0;
                roots[n++] = buf + used;
                used += len + 1;
            }
            if (!q) break;
            p = q + 1;
        }
    }
    const char *home = getenv("BILORA_HOME");
    const char *h = getenv("HOME");
    int w = -1;
    if (home && *home) w = snprintf(buf + used, cap - used, "%s", home);
    else if (h && *h) w = snprintf(buf + used, cap - used, "%s/.cache/bilora", h);
    if (w > 0 && (size_t)w < cap - used && n < max) roots[n++] = buf + used;
    return n;
}

/* The Hugging Face hub cache directory, as huggingface_hub resolves it. */
static int hub_cache(char *out, size_t cap) {
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v) return (size_t)snprintf(out, cap, "%s", v) < cap ? 0 : -1;
    v = getenv("HF_HOME");
    if (v && *v) return (size_t)snprintf(out, cap, "%s/hub", v) < cap ? 0 : -1;
    v = getenv("HOME");
    if (v && *v) return (size_t)snprintf(out, cap, "%s/.cache/huggingface/hub", v) < cap ? 0 : -1;
    return -1;
}

/* In <repo>/snapshots/, the revision holding a config.json (and, when
 * need_weights, a model.safetensors) with the newest modification time;
 * ties broken by name so the choice is deterministic. */
static int hub_snapshot(const char *repo, int need_weights, char *out, size_t cap) {
    char snaps[PATH_MAX];
    if ((size_t)snprintf(snaps, sizeof snaps, "%s/snapshots", repo) >= sizeof snaps) return -1;
    DIR *d = opendir(snaps);
    if (!d) return -1;
    struct dirent *e;
    char best[PATH_MAX] = "";
    struct timespec best_t = {0, 0};
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", snaps, e->d_name) >= sizeof p) continue;
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode) || !has_file(p, "config.json")) continue;
        if (need_weights && !has_file(p, "model.safetensors")) continue;
        int newer = !best[0] || sb.st_mtim.tv_sec > best_t.tv_sec ||
                    (sb.st_mtim.tv_sec == best_t.tv_sec &&
                     (sb.st_mtim.tv_nsec > best_t.tv_nsec ||
                      (sb.st_mtim.tv_nsec == best_t.tv_nsec && strcmp(p, best) > 0)));
        if (newer) {
            snprintf(best, sizeof best, "%s", p);
            best_t = sb.st_mtim;
        }
    }
    closedir(d);
    if (!best[0] || strlen(best) >= cap) return -1;
    snprintf(out, cap, "%s", best);
    return 0;
}

/* A name is taken as a filesystem path when it is written like one
 * (absolute, ./, ../, ~/) or when it names an existing directory; the
 * latter mirrors from_pretrained, which also prefers a local directory. */
static int looks_like_path(const char *s) {
    return s[0] == '/' || s[0] == '~' || strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 ||
           strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

/* Expands a leading "~/" (config files are not shell-expanded). */
static int expand_path(const char *s, char *out, size_t cap) {
    const char *h = getenv("HOME");
    if ((s[0] == '~' && (s[1] == '/' || s[1] == 0)) && h)
        return (size_t)snprintf(out, cap, "%s%s", h, s + 1) < cap ? 0 : -1;
    return (size_t)snprintf(out, cap, "%s", s) < cap ? 0 : -1;
}

static int put_out(const char *dir, char *out, size_t cap, char *err, size_t errlen) {
    if (strlen(dir) >= cap) {
        snprintf(err, errlen, "%s: path longer than the %zu-byte buffer", dir, cap);
        return -1;
    }
    snprintf(out, cap, "%s", dir);
    return 0;
}

int assets_find_model(const char *name, char *out_dir, size_t cap, char *err, size_t errlen) {
    if (!name || !*name) {
        snprintf(err, errlen, "no model given (a directory or a name such as bert-tiny)");
        return -1;
    }
    char path[PATH_MAX];
    if (expand_path(name, path, sizeof path) != 0) {
        snprintf(err, errlen, "model '%s': path too long", name);
        return -1;
    }
    /* A bare name that is also a folder here is that folder only when it
     * holds a model: an unrelated ./bert-tiny does not hide the real one. */
    if (looks_like_path(name) || (is_dir(path) && has_file(path, "config.json"))) {
        if (!is_dir(path)) {
            snprintf(err, errlen, "model directory %s does not exist", path);
            return -1;
        }
        if (!has_file(path, "config.json")) {
            snprintf(err, errlen, "model directory %s has no config.json", path);
            return -1;
        }
        return put_out(path, out_dir, cap, err, errlen);
    }

    /* "org/name": the hub keeps the org; asset roots are flat, by name. */
    const char *slash = strrchr(name, '/');
    const char *shortname = slash ? slash + 1 : name;
    if (!*shortname) {
        snprintf(err, errlen, "model '%s': empty name after '/'", name);
        return -1;
    }

    char rbuf[8192];
    const char *roots[64];
    int nr = asset_roots(rbuf, sizeof rbuf, roots, 64);
    Looked looked = {0};
    int rc = -1;
    char cand[PATH_MAX];
    for (int i = 0; i < nr; i++) {
        if ((size_t)snprintf(cand, sizeof cand, "%s/models/%s", roots[i], shortname) >= sizeof cand)
            continue;
        if (is_dir(cand) && has_file(cand, "config.json")) {
            rc = put_out(cand, out_dir, cap, err, errlen);
            goto done;
        }
        /* A directory without config.json is reported as such: it is most
         * likely a half-copied model, not a missing one. */
        if (is_dir(cand)) {
            char note[PATH_MAX + 32];
            snprintf(note, sizeof note, "%s (no config.json)", cand);
            looked_add(&looked, note);
        } else {
            looked_add(&looked, cand);
        }
    }

    char hub[PATH_MAX];
    if (hub_cache(hub, sizeof hub) == 0) {
        /* models--ORG--NAME; "/" becomes "--" as huggingface_hub does. */
        char repo[PATH_MAX];
        int w = snprintf(repo, sizeof repo, "%s/models--", hub);
        for (const char *p = name; *p && w > 0 && (size_t)w + 3 < sizeof repo; p++) {
            if (*p == '/') w += snprintf(repo + w, sizeof repo - (size_t)w, "--");
            else repo[w++] = *p, repo[w] = 0;
        }
        if (hub_snapshot(repo, 0, cand, sizeof cand) == 0) {
            rc = put_out(cand, out_dir, cap, err, errlen);
            goto done;
        }
        looked_add(&looked, repo);
    }
    snprintf(err, errlen, "model '%s' not found; looked in: %s%s (set BILORA_ASSETS or pass a directory)",
             name, is_dir(path) ? "./ (a folder without config.json), " : "",
             looked.buf ? looked.buf : "(no search roots: HOME is not set)");
done:
    free(looked.buf);
    return rc;
}

static const char *const GLUE_TASKS[] = {"CoLA", "SST-2", "MRPC", "STS-B", "QQP",
                                         "MNLI", "QNLI",  "RTE",  "WNLI"};
#define N_GLUE (sizeof GLUE_TASKS / sizeof GLUE_TASKS[0])

static int lower_ascii(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* Compares ignoring ASCII case and dashes, so "sst2", "SST-2" and "sst-2"
 * agree. */
static int task_eq(const char *a, const char *b) {
    for (;;) {
        while (*a == '-') a++;
        while (*b == '-') b++;
        if (!*a || !*b) return !*a && !*b;
        if (lower_ascii((unsigned char)*a) != lower_ascii((unsigned char)*b)) return 0;
        a++, b++;
    }
}

int assets_find_task(const char *name, char *out_dir, size_t cap, char *err, size_t errlen) {
    if (!name || !*name) {
        snprintf(err, errlen, "no task given (a directory or a GLUE task such as RTE)");
        return -1;
    }
    char path[PATH_MAX];
    if (expand_path(name, path, sizeof path) != 0) {
        snprintf(err, errlen, "task '%s': path too long", name);
        return -1;
    }
    /* likewise a folder here named like a task, unless it holds its TSVs */
    if (looks_like_path(name) || (is_dir(path) && (has_file(path, "train.tsv") || has_file(path, "dev.tsv") ||
                                                    has_file(path, "trainset.csv")))) {
        if (!is_dir(path)) {
            snprintf(err, errlen, "task directory %s does not exist", path);
            return -1;
        }
        return put_out(path, out_dir, cap, err, errlen);
    }

    /* "glue/RTE" and "RTE" mean the same; the directory uses GLUE's own
     * capitalisation whatever the user typed. Other names ("e2e") are looked
     * up as <root>/data/<name>. */
    const char *t = name;
    int glue_prefix = strncasecmp(t, "glue/", 5) == 0;
    if (glue_prefix) t += 5;
    const char *canon = NULL;
    for (size_t i = 0; i < N_GLUE; i++)
        if (task_eq(t, GLUE_TASKS[i])) canon = GLUE_TASKS[i];
    if (glue_prefix && !canon) {
        snprintf(err, errlen,
                 "unknown GLUE task '%s' (known: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, "
                 "WNLI)",
                 t);
        return -1;
    }

    char rbuf[8192];
    const char *roots[64];
    int nr = asset_roots(rbuf, sizeof rbuf, roots, 64);
    Looked looked = {0};
    char cand[PATH_MAX];
    int rc = -1;
    for (int i = 0; i < nr; i++) {
        int w = canon ? snprintf(cand, sizeof cand, "%s/data/glue/%s", roots[i], canon)
                      : snprintf(cand, sizeof cand, "%s/data/%s", roots[i], t);
        if (w < 0 || (size_t)w >= sizeof cand) continue;
        if (is_dir(cand)) {
            rc = put_out(cand, out_dir, cap, err, errlen);
            goto done;
        }
        looked_add(&looked, cand);
    }
    snprintf(err, errlen, "task '%s' not found; looked in: %s%s (set BILORA_ASSETS or pass a directory)",
             name, is_dir(path) ? "./ (a folder without train.tsv, dev.tsv or trainset.csv), " : "",
             looked.buf ? looked.buf : "(no search roots: HOME is not set)");
done:
    free(looked.buf);
    return rc;
}

/* ---- listing ---- */

/* Names already reported, so a model shadowed by an earlier root is listed
 * once, where assets_find_model would find it. */
typedef struct {
    char **v;
    int n, cap;
} Names;

static int names_has(const Names *s, const char *n) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], n) == 0) return 1;
    return 0;
}

static int names_add(Names *s, const char *n) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    char *d = strdup(n);
    if (!d) return -1;
    s->v[s->n++] = d;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted entry names of a directory (readdir order is arbitrary; listings
 * should be stable). Hidden entries are skipped. */
static int sorted_entries(const char *dir, Names *out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && names_add(out, e->d_name) != 0) break;
    closedir(d);
    qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 0;
}

static void names_free(Names *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

int assets_list_models(void (*fn)(const char *name, const char *dir, void *ctx), void *ctx) {
    char rbuf[8192];
    const char *roots[64];
    int nr = asset_roots(rbuf, sizeof rbuf, roots, 64);
    Names seen = {0};
    int count = 0;
    char dir[PATH_MAX];
    for (int i = 0; i < nr; i++) {
        char models[PATH_MAX];
        if ((size_t)snprintf(models, sizeof models, "%s/models", roots[i]) >= sizeof models) continue;
        Names ents = {0};
        if (sorted_entries(models, &ents) != 0) continue;
        for (int k = 0; k < ents.n; k++) {
            if ((size_t)snprintf(dir, sizeof dir, "%s/%s", models, ents.v[k]) >= sizeof dir) continue;
            if (!is_dir(dir) || !has_file(dir, "config.json") ||
                !has_file(dir, "model.safetensors") || names_has(&seen, ents.v[k]))
                continue;
            if (names_add(&seen, ents.v[k]) != 0) continue;
            if (fn) fn(ents.v[k], dir, ctx);
            count++;
        }
        names_free(&ents);
    }
    char hub[PATH_MAX];
    Names ents = {0};
    if (hub_cache(hub, sizeof hub) == 0 && sorted_entries(hub, &ents) == 0) {
        for (int k = 0; k < ents.n; k++) {
            const char *e = ents.v[k];
            if (strncmp(e, "models--", 8) != 0 || !e[8]) continue;
            /* models--org--name -> org/name (hub repo names cannot contain
             * "--", so the first one separates org and name). */
            char nm[PATH_MAX];
            snprintf(nm, sizeof nm, "%s", e + 8);
            char *sep = strstr(nm, "--");
            if (sep) {
                *sep = '/';
                memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
            }
            char repo[PATH_MAX];
            if ((size_t)snprintf(repo, sizeof repo, "%s/%s", hub, e) >= sizeof repo) continue;
            if (hub_snapshot(repo, 1, dir, sizeof dir) != 0) continue;
            /* Shadowed by a flat asset-root copy of the same short name? Then
             * assets_find_model would return that one; do not list twice. */
            const char *sl = strrchr(nm, '/');
            if (names_has(&seen, nm) || names_has(&seen, sl ? sl + 1 : nm)) continue;
            if (names_add(&seen, nm) != 0) continue;
            if (fn) fn(nm, dir, ctx);
            count++;
        }
    }
    names_free(&ents);
    names_free(&seen);
    return count;
}
