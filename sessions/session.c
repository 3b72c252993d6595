/* Sessions on disk: names and the root, the atomic save, the checked load,
 * listing and removal, and the headless drive loop. The layout and the
 * crash-safety argument are in session.h. */
#include "sessions/session.h"

#include "build/version.h"

#include "datasets/e2e.h"
#include "datasets/glue.h"
#include "datasets/metrics.h"
#include "engine/assets.h"
#include "engine/safetensors.h"
#include "sessions/session_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define PATH_CAP 4096
#define STATE_FILE "state.bin"
#define JSON_FILE "session.json"

/* Files besides model.safetensors that decide what a model computes: the
 * architecture and the tokenizer (a changed vocabulary re-encodes every
 * example). Those present at the save are fingerprinted. */
static const char *const MODEL_FILES[] = {"config.json",     "vocab.txt",  "vocab.json",
                                          "merges.txt",      "tokenizer.json",
                                          "tokenizer_config.json", "special_tokens_map.json"};

/* ---- small helpers ---- */

static uint32_t crc_of(const void *data, size_t n) {
    /* zlib's crc32 takes 32-bit lengths: feed it in chunks */
    uLong c = crc32(0L, Z_NULL, 0);
    const unsigned char *p = data;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

static void hex32(char *out, uint32_t v) { snprintf(out, 9, "%08" PRIx32, v); }

static int parse_hex32(const cJSON *j, uint32_t *v) {
    if (!cJSON_IsString(j) || strlen(j->valuestring) != 8) return -1;
    char *end;
    unsigned long x = strtoul(j->valuestring, &end, 16);
    if (*end) return -1;
    *v = (uint32_t)x;
    return 0;
}

static void add_u64_str(cJSON *j, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddStringToObject(j, key, buf);
}

static int get_u64_str(const cJSON *j, const char *key, uint64_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(x) || !*x->valuestring) return -1;
    char *end;
    *v = strtoull(x->valuestring, &end, 10);
    return *end ? -1 : 0;
}

static const char *json_str(const cJSON *j, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int json_num(const cJSON *j, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x)) return -1;
    *v = x->valuedouble;
    return 0;
}

static void iso_time(char *out, size_t cap, time_t t) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *host_byte_order(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one ? "little" : "big";
}

static int write_full(int fd, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync then close; *fd is -1 afterwards either way. */
static int close_synced(int *fd) {
    int rc = fsync(*fd);
    int e = errno;
    if (close(*fd) != 0 && rc == 0) rc = -1, e = errno;
    *fd = -1;
    errno = e;
    return rc;
}

/* snprintf at the end of a buffer that may already be full. */
static void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* The whole of an open file into memory (*len bytes, NUL-terminated). */
static int read_fd(int fd, unsigned char **out, size_t *len) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    size_t cap = (size_t)st.st_size + 1, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n + 1 >= cap) {
            unsigned char *b = realloc(buf, cap * 2);
            if (!b) { free(buf); return -1; }
            buf = b;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0) {
            if (errno == EINTR) continue;
            free(buf);
            return -1;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "sessions root %s: path too long", path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create the sessions directory %s: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "sessions root %s is not a directory", path);
        return -1;
    }
    return 0;
}

/* Two paths name the same directory. */
static int same_dir(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* ---- root and names ---- */

int session_root(char *out, size_t cap, char *err, size_t errlen) {
    const char *s = getenv("BILORA_SESSIONS");
    int n;
    if (s && *s) n = snprintf(out, cap, "%s", s);
    else if ((s = getenv("XDG_DATA_HOME")) && s[0] == '/') /* the spec ignores relative values */
        n = snprintf(out, cap, "%s/bilora/sessions", s);
    else if ((s = getenv("HOME")) && *s) n = snprintf(out, cap, "%s/.local/share/bilora/sessions", s);
    else {
        snprintf(err, errlen, "no place for sessions: set BILORA_SESSIONS (or HOME)");
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "sessions root path is too long");
        return -1;
    }
    return 0;
}

static int root_of(const char *root, char *out, size_t cap, char *err, size_t errlen) {
    if (root && *root) {
        if (snprintf(out, cap, "%s", root) >= (int)cap) {
            snprintf(err, errlen, "sessions root path is too long");
            return -1;
        }
        return 0;
    }
    return session_root(out, cap, err, errlen);
}

int session_name_check(const char *name, char *err, size_t errlen) {
    if (!name || !*name) {
        snprintf(err, errlen, "a session name cannot be empty");
        return -1;
    }
    size_t n = strlen(name);
    if (n > SESSION_NAME_MAX) {
        snprintf(err, errlen, "session name '%.24s...' is %zu characters long; at most %d", name, n,
                 SESSION_NAME_MAX);
        return -1;
    }
    if (name[0] == '.') {
        snprintf(err, errlen, "session name '%s' starts with '.': such names are reserved for the "
                 "working copies of saves (and '..' would leave the sessions directory)", name);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p == '/') {
            snprintf(err, errlen, "session name '%s' contains '/': a name is one directory inside "
                     "the sessions root", name);
            return -1;
        }
        if (*p < 0x20 || *p >= 0x7f) {
            snprintf(err, errlen, "session name contains a non-printable or non-ASCII byte (0x%02x) "
                     "at position %d; use letters, digits and punctuation", *p,
                     (int)(p - (const unsigned char *)name) + 1);
            return -1;
        }
    }
    return 0;
}

static void aside_name(char *out, size_t cap, const char *name) { snprintf(out, cap, ".%s.old", name); }
static void lock_name(char *out, size_t cap, const char *name) { snprintf(out, cap, ".%s.lock", name); }

/* ---- directories ---- */

static int exists_dir(int rootfd, const char *name) {
    struct stat st;
    return fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Removes a session directory: it holds plain files only, so this never
 * recurses (a subdirectory means it is not ours, and it stays). */
static int remove_dir(int rootfd, const char *name) {
    int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); return -1; }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            if (unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT) rc = -1;
    closedir(d);
    if (rc == 0 && unlinkat(rootfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) rc = -1;
    return rc;
}

/* Leftovers of saves whose process died: .NAME.tmp.<pid>.XXXXXX with the
 * pid gone. Called under the name's lock, so no live save of this name by
 * another process is in flight. */
static void remove_stale_tmp(int rootfd, const char *name) {
    char pre[SESSION_NAME_MAX + 8];
    snprintf(pre, sizeof(pre), ".%s.tmp.", name);
    size_t np = strlen(pre);
    int fd = dup(rootfd);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); return; }
    char found[16][SESSION_NAME_MAX + 40];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 16) {
        if (strncmp(e->d_name, pre, np) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        if (end == e->d_name + np || *end != '.' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t len = strlen(e->d_name);
        if (len >= sizeof(found[0])) continue;
        memcpy(found[n++], e->d_name, len + 1);
    }
    closedir(d);
    for (int i = 0; i < n; i++) remove_dir(rootfd, found[i]);
}

/* Saves (and removals) of one name, one at a time across processes: a
 * record lock on .NAME.lock, released when the fd closes or the holder
 * dies. Returns the fd to close, or -1. */
static int lock_session(int rootfd, const char *name, char *err, size_t errlen) {
    char ln[SESSION_NAME_MAX + 8];
    lock_name(ln, sizeof(ln), name);
    int fd = openat(rootfd, ln, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "session '%s': cannot open its lock file: %s", name, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    while (fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR) continue;
        snprintf(err, errlen, "session '%s': cannot lock it: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- file fingerprints: what makes a resume refuse changed inputs ---- */

typedef struct {
    uint64_t size;
    uint32_t crc;           /* CRC32 of the whole file */
    uint64_t mtime_ns, ino; /* only to reuse a previous CRC when the file is untouched */
} FileId;

/* cached: the previous save's fingerprint of the same file, reused when
 * size, mtime and inode agree (a model file is read once per session, not
 * once per save). */
static int file_id(const char *path, FileId *id, const FileId *cached, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    id->size = (uint64_t)st.st_size;
    id->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    id->ino = (uint64_t)st.st_ino;
    if (cached && cached->size == id->size && cached->mtime_ns == id->mtime_ns && cached->ino == id->ino) {
        id->crc = cached->crc;
        close(fd);
        return 0;
    }
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) { close(fd); snprintf(err, errlen, "out of memory"); return -1; }
    uLong c = crc32(0L, Z_NULL, 0);
    for (;;) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (k == 0) break;
        c = crc32(c, buf, (uInt)k);
    }
    free(buf);
    close(fd);
    id->crc = (uint32_t)c;
    return 0;
}

/* dir (PATH_CAP bytes) made absolute, so a resume finds it from anywhere
 * (joined to the working directory: realpath is XSI, outside our POSIX
 * 2008 baseline, and an absolute path is all that is needed). */
static int absolute(char *dir, char *err, size_t errlen) {
    if (dir[0] == '/') return 0;
    char cwd[PATH_CAP], buf[PATH_CAP];
    const char *rel = dir[0] == '.' && dir[1] == '/' ? dir + 2 : dir;
    if (!getcwd(cwd, sizeof(cwd)) || snprintf(buf, sizeof(buf), "%s/%s", cwd, rel) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "%s: cannot make the path absolute", dir);
        return -1;
    }
    memcpy(dir, buf, strlen(buf) + 1);
    return 0;
}

static cJSON *file_id_json(const char *file, const FileId *id) {
    cJSON *j = cJSON_CreateObject();
    char h[9];
    cJSON_AddStringToObject(j, "path", file);
    cJSON_AddNumberToObject(j, "size", (double)id->size);
    hex32(h, id->crc);
    cJSON_AddStringToObject(j, "crc32", h);
    add_u64_str(j, "mtime_ns", id->mtime_ns);
    add_u64_str(j, "inode", id->ino);
    return j;
}

/* The recorded fingerprint of `file` in a files array, or -1. */
static int file_id_from(const cJSON *files, const char *file, FileId *id) {
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const char *p = json_str(f, "path");
        double size;
        if (!p || strcmp(p, file) || json_num(f, "size", &size) ||
            parse_hex32(cJSON_GetObjectItemCaseSensitive(f, "crc32"), &id->crc))
            continue;
        id->size = (uint64_t)size;
        if (get_u64_str(f, "mtime_ns", &id->mtime_ns)) id->mtime_ns = 0;
        if (get_u64_str(f, "inode", &id->ino)) id->ino = 0;
        return 0;
    }
    return -1;
}

static const cJSON *files_of(const cJSON *doc, const char *section) {
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, section), "files");
}

/* The base model's identity: its directory, model.safetensors (size, the
 * FNV-1a of its header from st_open, CRC32) and the other defining files. */
static cJSON *model_identity(const TrainConfig *cfg, const cJSON *prev, char *err, size_t errlen) {
    char dir[PATH_CAP], path[PATH_CAP + 64];
    if (assets_find_model(cfg->model, dir, sizeof(dir), err, errlen) != 0 || absolute(dir, err, errlen) != 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    SafeTensors st;
    if (st_open(&st, path, err, errlen) != 0) return NULL;
    char hh[17];
    snprintf(hh, sizeof(hh), "%016" PRIx64, st.header_hash);
    size_t header_len = st.header_len;
    st_close(&st);
    const cJSON *pf = files_of(prev, "model");
    FileId id, old;
    if (file_id(path, &id, file_id_from(pf, "model.safetensors", &old) == 0 ? &old : NULL, err, errlen))
        return NULL;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", cfg->model);
    cJSON_AddStringToObject(m, "dir", dir);
    cJSON *files = cJSON_AddArrayToObject(m, "files");
    cJSON *w = file_id_json("model.safetensors", &id);
    cJSON_AddStringToObject(w, "header_fnv1a64", hh);
    cJSON_AddNumberToObject(w, "header_len", (double)header_len);
    cJSON_AddItemToArray(files, w);
    for (size_t i = 0; i < sizeof(MODEL_FILES) / sizeof(MODEL_FILES[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, MODEL_FILES[i]);
        if (access(path, F_OK) != 0) continue;
        if (file_id(path, &id, file_id_from(pf, MODEL_FILES[i], &old) == 0 ? &old : NULL, err, errlen)) {
            cJSON_Delete(m);
            return NULL;
        }
        cJSON_AddItemToArray(files, file_id_json(MODEL_FILES[i], &id));
    }
    return m;
}

static int data_dir_of(const TrainConfig *cfg, char *dir, size_t cap, char *err, size_t errlen) {
    const GlueTaskInfo *t = glue_task_info(cfg->task);
    if (!t && !e2e_task_name(cfg->task)) {
        snprintf(err, errlen, "unknown task '%s'", cfg->task);
        return -1;
    }
    if (cfg->data[0]) {
        snprintf(dir, cap, "%s", cfg->data);
        return 0;
    }
    return assets_find_task(t ? t->name : "e2e", dir, cap, err, errlen);
}

/* The task and its data files (train and the dev splits the run reads). */
static cJSON *data_identity(const TrainConfig *cfg, const cJSON *prev, char *err, size_t errlen) {
    const GlueTaskInfo *t = glue_task_info(cfg->task);
    char dir[PATH_CAP], path[PATH_CAP + 64], file[64];
    if (data_dir_of(cfg, dir, sizeof(dir), err, errlen) != 0 || absolute(dir, err, errlen) != 0) return NULL;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "task", t ? t->name : e2e_task_name(cfg->task));
    cJSON_AddStringToObject(d, "dir", dir);
    cJSON *files = cJSON_AddArrayToObject(d, "files");
    const cJSON *pf = files_of(prev, "data");
    for (int i = -1; i < (t ? t->num_dev_splits : 1); i++) {
        if (t) snprintf(file, sizeof(file), "%s.tsv", i < 0 ? "train" : t->dev_splits[i]);
        else snprintf(file, sizeof(file), "%s", e2e_split_file(i < 0 ? "train" : "dev"));
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        FileId id, old;
        if (file_id(path, &id, file_id_from(pf, file, &old) == 0 ? &old : NULL, err, errlen)) {
            cJSON_Delete(d);
            return NULL;
        }
        cJSON_AddItemToArray(files, file_id_json(file, &id));
    }
    return d;
}

/* Compares the files recorded under doc[section] with those in dir now:
 * 0, or -1 naming the file and what changed. */
static int check_files(const char *sname, const char *what, const char *dir, const cJSON *files,
                       const char *saved_dir, char *err, size_t errlen) {
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0) {
        snprintf(err, errlen, "session '%s': session.json records no %s files", sname, what);
        return -1;
    }
    char moved[PATH_CAP + 64] = "";
    if (saved_dir && !same_dir(saved_dir, dir))
        snprintf(moved, sizeof(moved), " (saved from %s)", saved_dir);
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const char *file = json_str(f, "path");
        FileId want, now;
        if (!file || strchr(file, '/') || file_id_from(files, file, &want) != 0) {
            snprintf(err, errlen, "session '%s': a %s file entry in session.json is malformed", sname, what);
            return -1;
        }
        char path[PATH_CAP + 64], e2[512];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (access(path, F_OK) != 0) {
            snprintf(err, errlen, "session '%s': %s file %s is missing%s; the run was saved with it "
                     "(restore it to resume)", sname, what, path, moved);
            return -1;
        }
        if (file_id(path, &now, NULL, e2, sizeof(e2)) != 0) {
            snprintf(err, errlen, "session '%s': cannot read %s file %s", sname, what, e2);
            return -1;
        }
        char changes[700] = "";
        if (now.size != want.size)
            append(changes, sizeof(changes), "size %" PRIu64 " -> %" PRIu64 " bytes; ", want.size, now.size);
        const char *hh = json_str(f, "header_fnv1a64");
        if (hh) {
            SafeTensors st;
            if (st_open(&st, path, e2, sizeof(e2)) != 0) {
                append(changes, sizeof(changes), "no longer a valid safetensors file (%s); ", e2);
            } else {
                char h[17];
                snprintf(h, sizeof(h), "%016" PRIx64, st.header_hash);
                if (strcmp(h, hh))
                    append(changes, sizeof(changes),
                           "tensor header (names, shapes, offsets) differs: FNV-1a %s -> %s; ", hh, h);
                st_close(&st);
            }
        }
        if (now.crc != want.crc)
            append(changes, sizeof(changes), "contents differ: CRC32 %08" PRIx32 " -> %08" PRIx32 "; ",
                   want.crc, now.crc);
        size_t n = strlen(changes);
        if (n) {
            if (n >= 2 && changes[n - 2] == ';') changes[n - 2] = 0;
            snprintf(err, errlen, "session '%s': %s file %s changed on disk since the save%s: %s. "
                     "Resuming would continue the run on different %s; restore the file, or start a new run",
                     sname, what, path, moved, changes, !strcmp(what, "base model") ? "weights" : "data");
            return -1;
        }
    }
    return 0;
}

/* ---- the document ---- */

static void primary_metric(const char *task, char *out, size_t cap) {
    const GlueTaskInfo *t = glue_task_info(task);
    snprintf(out, cap, "metric");
    if (!t && e2e_task_name(task)) snprintf(out, cap, "perplexity");
    if (!t) return;
    /* the metric set's names and primary index do not depend on the values */
    float p[2] = {0, 1}, l[2] = {0, 1};
    MetricSet ms;
    memset(&ms, 0, sizeof(ms));
    glue_metrics(t, p, l, 2, &ms);
    if (ms.n > 0 && ms.primary >= 0 && ms.primary < ms.n) snprintf(out, cap, "%s", ms.name[ms.primary]);
}

static cJSON *summary_json(const TrainConfig *c0, const cJSON *state, long step, long total) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "task", c0->task);
    cJSON_AddStringToObject(s, "method", c0->method);
    cJSON_AddStringToObject(s, "model", c0->model);
    cJSON_AddNumberToObject(s, "step", (double)step);
    cJSON_AddNumberToObject(s, "total_steps", (double)total);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(state, "history_steps");
    int n = cJSON_GetArraySize(hs);
    const cJSON *last = n ? cJSON_GetArrayItem(cJSON_GetArrayItem(hs, n - 1), 1) : NULL;
    cJSON_AddItemToObject(s, "loss", cJSON_IsNumber(last) ? cJSON_CreateNumber(last->valuedouble) : cJSON_CreateNull());
    char name[32];
    primary_metric(c0->task, name, sizeof(name));
    cJSON_AddStringToObject(s, "metric_name", name);
    const char *names[METRICS_MAX];
    int nn = train_metric_names(c0, names, METRICS_MAX);
    cJSON *mn = cJSON_AddArrayToObject(s, "metric_names"); /* every metric, the headline first */
    for (int k = 0; k < nn; k++) cJSON_AddItemToArray(mn, cJSON_CreateString(names[k]));
    /* the last evaluation on held-out data (not the "train" split) */
    const cJSON *he = cJSON_GetObjectItemCaseSensitive(state, "history_evals");
    const cJSON *best = NULL;
    for (int i = cJSON_GetArraySize(he) - 1; i >= 0 && !best; i--) {
        const cJSON *e = cJSON_GetArrayItem(he, i), *sp = cJSON_GetArrayItem(e, 1);
        if (cJSON_IsString(sp) && strcmp(sp->valuestring, "train")) best = e;
    }
    const cJSON *mv = best ? cJSON_GetArrayItem(best, 3) : NULL;
    cJSON_AddStringToObject(s, "metric_split", best ? cJSON_GetArrayItem(best, 1)->valuestring : "");
    cJSON_AddItemToObject(s, "metric", cJSON_IsNumber(mv) ? cJSON_CreateNumber(mv->valuedouble) : cJSON_CreateNull());
    return s;
}

/* Adapter matrices have a meaningful 2-D shape (lora_A r×in, lora_B out×r);
 * every other blob is stored flat. */
static void add_shape(cJSON *e, const StateBlob *b, int rank) {
    cJSON *sh = cJSON_AddArrayToObject(e, "shape");
    size_t len = strlen(b->name);
    int a = len > 7 && !strcmp(b->name + len - 7, ".lora_A"), bb = len > 7 && !strcmp(b->name + len - 7, ".lora_B");
    if (rank > 0 && (a || bb) && b->count % (size_t)rank == 0) {
        double other = (double)(b->count / (size_t)rank);
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(a ? rank : other));
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(a ? other : rank));
    } else {
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)b->count));
    }
}

/* Two initial configurations describe the same run: equal but for where
 * the model and data were found and the device (a resume may change
 * those). */
static int same_run(const cJSON *a, const cJSON *b) {
    if (!a || !b) return 0;
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    static const char *const WHERE[] = {"model", "data", "device"};
    for (int i = 0; i < 3; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, WHERE[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(y, WHERE[i]);
    }
    int eq = cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

/* session.json, built before the lock is taken. Takes st->json. */
static cJSON *build_doc(Run *r, RunState *st, const cJSON *prev, const char *name, time_t now,
                        char *err, size_t errlen) {
    const TrainConfig *c0 = run_initial_config(r);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "format_version", SESSION_FORMAT_VERSION);
    cJSON_AddStringToObject(doc, "program", "bilora");
    cJSON_AddStringToObject(doc, "build", BILORA_BUILD);
    cJSON_AddStringToObject(doc, "name", name);
    /* the creation time survives re-saves of the same run (the same
     * initial configuration) under this name */
    cJSON *config = train_config_to_json(c0);
    double c;
    time_t created = now;
    if (prev && json_num(prev, "created_unix", &c) == 0 &&
        same_run(cJSON_GetObjectItemCaseSensitive(prev, "config"), config))
        created = (time_t)c;
    char ts[32];
    iso_time(ts, sizeof(ts), created);
    cJSON_AddStringToObject(doc, "created", ts);
    cJSON_AddNumberToObject(doc, "created_unix", (double)created);
    iso_time(ts, sizeof(ts), now);
    cJSON_AddStringToObject(doc, "saved", ts);
    cJSON_AddNumberToObject(doc, "saved_unix", (double)now);
    cJSON_AddStringToObject(doc, "byte_order", host_byte_order());
    cJSON *model = model_identity(c0, prev, err, errlen);
    cJSON *data = model ? data_identity(c0, prev, err, errlen) : NULL;
    if (!model || !data) {
        cJSON_Delete(model);
        cJSON_Delete(config);
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON_AddItemToObject(doc, "summary",
                          summary_json(c0, st->json, run_step_index(r), run_total_steps(r)));
    cJSON_AddItemToObject(doc, "config", config);
    cJSON_AddItemToObject(doc, "model", model);
    cJSON_AddItemToObject(doc, "data", data);
    cJSON *tensors = cJSON_AddArrayToObject(doc, "tensors");
    size_t off = 0;
    for (int i = 0; i < st->n; i++) {
        const StateBlob *b = &st->blobs[i];
        cJSON *e = cJSON_CreateObject();
        char h[9];
        cJSON_AddStringToObject(e, "name", b->name);
        cJSON_AddStringToObject(e, "dtype", b->type == BLOB_I32 ? "I32" : "F32");
        cJSON_AddNumberToObject(e, "count", (double)b->count);
        add_shape(e, b, c0->rank);
        cJSON_AddNumberToObject(e, "offset", (double)off);
        hex32(h, crc_of(b->data, 4 * b->count));
        cJSON_AddStringToObject(e, "crc32", h);
        cJSON_AddItemToArray(tensors, e);
        off += 4 * b->count;
    }
    cJSON_AddNumberToObject(doc, "state_bytes", (double)off);
    cJSON *spec = session_spectrum_from_state(st, run_config(r), run_step_index(r));
    if (spec) cJSON_AddItemToObject(doc, "spectrum", spec);
    cJSON_AddItemToObject(doc, "state", st->json);
    st->json = NULL;
    return doc;
}

/* ---- reading ---- */

typedef struct {
    cJSON *doc;
    unsigned char *bin;     /* state.bin, when asked for */
    size_t bin_len;
    int from_aside;
} Snapshot;

static void snapshot_free(Snapshot *s) {
    cJSON_Delete(s->doc);
    free(s->bin);
    memset(s, 0, sizeof(*s));
}

/* 1: a file vanished under us (a concurrent save swapped the directories):
 * worth another try. */
static int read_once(int rootfd, const char *name, int with_state, Snapshot *out, const char *rootdir,
                     char *err, size_t errlen) {
    char aside[SESSION_NAME_MAX + 8];
    aside_name(aside, sizeof(aside), name);
    int from_aside = 0;
    int dfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (dfd < 0 && errno == ENOENT) {
        /* a save was interrupted between moving the old copy aside and
         * renaming the new one in: the aside copy is the complete one */
        dfd = openat(rootfd, aside, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        from_aside = 1;
        if (dfd < 0 && errno == ENOENT) {
            snprintf(err, errlen, "no session named '%s' in %s (bilora sessions lists them)", name, rootdir);
            return -1;
        }
    }
    if (dfd < 0) {
        snprintf(err, errlen, "session '%s' in %s: %s", name, rootdir, strerror(errno));
        return -1;
    }
    int fd = openat(dfd, JSON_FILE, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        close(dfd);
        if (e == ENOENT) return 1;
        snprintf(err, errlen, "session '%s': %s: %s", name, JSON_FILE, strerror(e));
        return -1;
    }
    unsigned char *text;
    size_t len;
    int rc = read_fd(fd, &text, &len);
    close(fd);
    if (rc != 0) {
        close(dfd);
        snprintf(err, errlen, "session '%s': cannot read %s: %s", name, JSON_FILE, strerror(errno));
        return -1;
    }
    if (with_state) {
        fd = openat(dfd, STATE_FILE, O_RDONLY);
        if (fd < 0) {
            int e = errno;
            close(dfd);
            free(text);
            if (e == ENOENT) return 1;
            snprintf(err, errlen, "session '%s': %s: %s", name, STATE_FILE, strerror(e));
            return -1;
        }
        rc = read_fd(fd, &out->bin, &out->bin_len);
        close(fd);
        if (rc != 0) {
            close(dfd);
            free(text);
            snprintf(err, errlen, "session '%s': cannot read %s: %s", name, STATE_FILE, strerror(errno));
            return -1;
        }
    }
    close(dfd);
    out->doc = cJSON_ParseWithLength((const char *)text, len);
    free(text);
    out->from_aside = from_aside;
    if (!out->doc) {
        snprintf(err, errlen, "session '%s': %s is not valid JSON", name, JSON_FILE);
        snapshot_free(out);
        return -1;
    }
    double v;
    if (json_num(out->doc, "format_version", &v) != 0 || v < 1) {
        snprintf(err, errlen, "session '%s': %s has no \"format_version\" (not a bilora session?)", name,
                 JSON_FILE);
        snapshot_free(out);
        return -1;
    }
    if (v > SESSION_FORMAT_VERSION) {
        snprintf(err, errlen, "session '%s' was saved by a newer bilora (format_version %g; this build "
                 "reads up to %d): update bilora to open it", name, v, SESSION_FORMAT_VERSION);
        snapshot_free(out);
        return -1;
    }
    return 0;
}

static int read_snapshot(const char *root, const char *name, int with_state, Snapshot *out,
                         char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    char rootdir[PATH_CAP];
    if (session_name_check(name, err, errlen) != 0 || root_of(root, rootdir, sizeof(rootdir), err, errlen) != 0)
        return -1;
    int rootfd = open(rootdir, O_RDONLY | O_DIRECTORY);
    if (rootfd < 0) {
        if (errno == ENOENT) snprintf(err, errlen, "no session named '%s': %s does not exist", name, rootdir);
        else snprintf(err, errlen, "sessions root %s: %s", rootdir, strerror(errno));
        return -1;
    }
    int rc = 1;
    for (int attempt = 0; attempt < 8 && rc == 1; attempt++) rc = read_once(rootfd, name, with_state, out, rootdir, err, errlen);
    if (rc == 1) {
        /* a save moves files in and out: retried above. A state.bin that
         * stays missing beside its session.json is not a save in progress. */
        char p[PATH_CAP + 300];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", name, JSON_FILE);
        int has_json = fstatat(rootfd, p, &st, 0) == 0;
        snprintf(p, sizeof(p), "%s/%s", name, STATE_FILE);
        if (has_json && fstatat(rootfd, p, &st, 0) != 0 && errno == ENOENT)
            snprintf(err, errlen, "session '%s': %s/%s/%s is missing (deleted?); without its tensors the run "
                     "cannot continue: delete it with `bilora sessions rm %s`", name, rootdir, name, STATE_FILE,
                     name);
        else
            snprintf(err, errlen, "session '%s' kept changing while being read (a save in progress?)", name);
    }
    close(rootfd);
    return rc == 0 ? 0 : -1;
}

typedef struct {
    char name[160];
    BlobType type;
    size_t count, offset;
} TableEntry;

/* Checks the tensors table against state.bin: every blob inside the file,
 * the file exactly as long as the table says, every CRC32 right. */
static int verify_table(const char *sname, const Snapshot *s, TableEntry **out, int *n_out, char *err,
                        size_t errlen) {
    const cJSON *doc = s->doc;
    const char *bo = json_str(doc, "byte_order");
    if (!bo || strcmp(bo, host_byte_order())) {
        snprintf(err, errlen, "session '%s': state.bin is %s-endian, this machine is %s-endian", sname,
                 bo ? bo : "of unknown byte order", host_byte_order());
        return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "tensors");
    double total;
    if (!cJSON_IsArray(t) || json_num(doc, "state_bytes", &total) != 0) {
        snprintf(err, errlen, "session '%s': session.json has no tensors table", sname);
        return -1;
    }
    int n = cJSON_GetArraySize(t);
    TableEntry *e = calloc(n ? n : 1, sizeof(*e));
    uint32_t *crcs = calloc(n ? n : 1, sizeof(*crcs));
    if (!e || !crcs) { free(e); free(crcs); snprintf(err, errlen, "out of memory"); return -1; }
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, t) {
        const char *name = json_str(x, "name"), *dt = json_str(x, "dtype");
        double count, off;
        if (!name || !dt || (strcmp(dt, "F32") && strcmp(dt, "I32")) || json_num(x, "count", &count) ||
            json_num(x, "offset", &off) || count < 0 || off < 0 ||
            parse_hex32(cJSON_GetObjectItemCaseSensitive(x, "crc32"), &crcs[i]) ||
            strlen(name) >= sizeof(e[i].name)) {
            snprintf(err, errlen, "session '%s': tensors table entry %d is malformed (expected name, "
                     "dtype F32|I32, count, offset, crc32)", sname, i);
            goto fail;
        }
        snprintf(e[i].name, sizeof(e[i].name), "%s", name);
        e[i].type = !strcmp(dt, "I32") ? BLOB_I32 : BLOB_F32;
        e[i].count = (size_t)count;
        e[i].offset = (size_t)off;
        i++;
    }
    if ((size_t)total != s->bin_len) {
        if (s->bin_len < (size_t)total) {
            for (i = 0; i < n; i++)
                if (e[i].offset + 4 * e[i].count > s->bin_len) break;
            snprintf(err, errlen, "session '%s': state.bin is truncated (%zu of %.0f bytes): blob '%s' "
                     "(offset %zu, %zu bytes) is incomplete", sname, s->bin_len, total,
                     i < n ? e[i].name : "?", i < n ? e[i].offset : 0, i < n ? 4 * e[i].count : 0);
        } else {
            snprintf(err, errlen, "session '%s': state.bin is %zu bytes but its table describes %.0f: it "
                     "does not belong to this session.json", sname, s->bin_len, total);
        }
        goto fail;
    }
    for (i = 0; i < n; i++) {
        if (e[i].offset + 4 * e[i].count > s->bin_len) {
            snprintf(err, errlen, "session '%s': blob '%s' lies past the end of state.bin", sname, e[i].name);
            goto fail;
        }
        uint32_t c = crc_of(s->bin + e[i].offset, 4 * e[i].count);
        if (c != crcs[i]) {
            snprintf(err, errlen, "session '%s': state.bin is corrupted: blob '%s' (offset %zu, %zu "
                     "bytes) fails its CRC32 check (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                     sname, e[i].name, e[i].offset, 4 * e[i].count, crcs[i], c);
            goto fail;
        }
    }
    free(crcs);
    *out = e;
    *n_out = n;
    return 0;
fail:
    free(crcs);
    free(e);
    return -1;
}

typedef struct {
    const char *sname;
    const TableEntry *e;
    int n;
    const unsigned char *bin;
} BlobSource;

static int blob_from_file(void *ctx, const char *name, BlobType type, size_t count, void *dst,
                          char *err, size_t errlen) {
    const BlobSource *s = ctx;
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->e[i].name, name)) continue;
        if (s->e[i].type != type || s->e[i].count != count) {
            snprintf(err, errlen, "session '%s': blob '%s' holds %zu %s values, the run expects %zu %s "
                     "(the configuration, model or data differ from the save)", s->sname, name,
                     s->e[i].count, s->e[i].type == BLOB_I32 ? "I32" : "F32", count,
                     type == BLOB_I32 ? "I32" : "F32");
            return -1;
        }
        memcpy(dst, s->bin + s->e[i].offset, 4 * count);
        return 0;
    }
    snprintf(err, errlen, "session '%s': state.bin has no blob '%s', which the run needs", s->sname, name);
    return -1;
}

/* ---- save ---- */

int session_save(const char *root, const char *name, Run *r, char *err, size_t errlen) {
    char rootdir[PATH_CAP], e2[1024];
    if (session_name_check(name, err, errlen) != 0 || root_of(root, rootdir, sizeof(rootdir), err, errlen) != 0 ||
        mkdir_p(rootdir, err, errlen) != 0)
        return -1;
    /* the previous snapshot, if any: its creation time and file fingerprints */
    Snapshot prev;
    int have_prev = read_snapshot(rootdir, name, 0, &prev, e2, sizeof(e2)) == 0;
    RunState st;
    if (run_state_export(r, &st, err, errlen) != 0) {
        if (have_prev) snapshot_free(&prev);
        return -1;
    }
    cJSON *doc = build_doc(r, &st, have_prev ? prev.doc : NULL, name, time(NULL), e2, sizeof(e2));
    if (have_prev) snapshot_free(&prev);
    if (!doc) {
        snprintf(err, errlen, "session '%s': %s", name, e2);
        run_state_free(&st);
        return -1;
    }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) {
        snprintf(err, errlen, "session '%s': out of memory", name);
        run_state_free(&st);
        return -1;
    }

    int rc = -1, rootfd = -1, lockfd = -1, tmpfd = -1, fd = -1;
    char tmp[PATH_CAP + 128], aside[SESSION_NAME_MAX + 8];
    const char *tmpbase = NULL;
    aside_name(aside, sizeof(aside), name);
    rootfd = open(rootdir, O_RDONLY | O_DIRECTORY);
    if (rootfd < 0) {
        snprintf(err, errlen, "sessions root %s: %s", rootdir, strerror(errno));
        goto out;
    }
    if ((lockfd = lock_session(rootfd, name, err, errlen)) < 0) goto out;
    remove_stale_tmp(rootfd, name);
    /* 1. the new snapshot, complete and on disk, under a hidden name */
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld.XXXXXX", rootdir, name, (long)getpid());
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "session '%s': cannot create a working directory in %s: %s", name, rootdir,
                 strerror(errno));
        goto out;
    }
    tmpbase = strrchr(tmp, '/') + 1;
    if ((tmpfd = open(tmp, O_RDONLY | O_DIRECTORY)) < 0) goto io_error;
    if ((fd = openat(tmpfd, STATE_FILE, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) goto io_error;
    for (int i = 0; i < st.n; i++)
        if (write_full(fd, st.blobs[i].data, 4 * st.blobs[i].count) != 0) goto io_error;
    if (close_synced(&fd) != 0) goto io_error;
    if ((fd = openat(tmpfd, JSON_FILE, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) goto io_error;
    if (write_full(fd, text, strlen(text)) != 0) goto io_error;
    if (close_synced(&fd) != 0) goto io_error;
    if (fsync(tmpfd) != 0) goto io_error;
    /* 2. the old snapshot aside (a stale aside copy first: NAME is whole) */
    if (exists_dir(rootfd, name)) {
        if (remove_dir(rootfd, aside) != 0) {
            snprintf(err, errlen, "session '%s': cannot remove the old copy %s/%s: %s", name, rootdir, aside,
                     strerror(errno));
            goto out;
        }
        if (renameat(rootfd, name, rootfd, aside) != 0 || fsync(rootfd) != 0) goto io_error;
    }
    /* 3. the new one in; from here on NAME is the new snapshot */
    if (renameat(rootfd, tmpbase, rootfd, name) != 0) {
        int e = errno;
        renameat(rootfd, aside, rootfd, name); /* tidy; the aside copy is whole anyway */
        errno = e;
        goto io_error;
    }
    tmpbase = NULL;
    if (fsync(rootfd) != 0) goto io_error;
    /* 4. the old copy goes (a failure here leaves a stale copy, no harm) */
    remove_dir(rootfd, aside);
    rc = 0;
    goto out;
io_error:
    snprintf(err, errlen, "session '%s': writing %s failed: %s", name, rootdir, strerror(errno));
out:
    if (fd >= 0) close(fd);
    if (tmpfd >= 0) close(tmpfd);
    if (tmpbase && rootfd >= 0) remove_dir(rootfd, tmpbase);
    if (lockfd >= 0) close(lockfd);
    if (rootfd >= 0) close(rootfd);
    free(text);
    run_state_free(&st);
    return rc;
}

int session_snapshot(void *ctx, const char *name, Run *r, char *err, size_t errlen) {
    return session_save(ctx, name, r, err, errlen);
}

/* ---- overrides ---- */

/* "--lower-lr" / "lower-lr" / "lr" -> "lower_lr" */
static void normalize_key(const char *key, char *out, size_t cap) {
    while (*key == '-') key++;
    size_t i = 0;
    for (; key[i] && i + 1 < cap; i++) out[i] = key[i] == '-' ? '_' : key[i];
    out[i] = 0;
    if (!strcmp(out, "lr")) snprintf(out, cap, "lower_lr");
    if (!strcmp(out, "weight_decay")) snprintf(out, cap, "lower_weight_decay");
}

int session_override_allowed(const char *key, char *err, size_t errlen) {
    char k[64];
    normalize_key(key, k, sizeof(k));
    if (run_param_is_hot(k) || !strcmp(k, "device")) return 0;
    TrainConfig d;
    train_config_defaults(&d);
    cJSON *j = train_config_to_json(&d);
    int known = cJSON_GetObjectItemCaseSensitive(j, k) != NULL;
    cJSON_Delete(j);
    static const char *const LIVE = "lower_lr, upper_lr, lower_steps, upper_steps, gamma1, gamma2, "
                                    "hypergrad, eval_every, spectrum_every, split_ratio, and device";
    if (!known)
        snprintf(err, errlen, "'%s' is not a setting; a resume can change %s", key, LIVE);
    else if (!strcmp(k, "steps") || !strcmp(k, "epochs") || !strcmp(k, "phase2_steps") ||
             !strcmp(k, "warmup_ratio"))
        snprintf(err, errlen, "'%s' cannot change on resume: the learning-rate schedule (warm-up, "
                 "linear decay), bidora's phases and adalora's rank budget are planned over the run's "
                 "length, so every step after the save would change; start a new run to train longer",
                 k);
    else if (!strcmp(k, "seed"))
        snprintf(err, errlen, "'seed' cannot change on resume: the initialisation, the D1/D2 split and "
                 "the data order it drew are part of the saved run");
    else
        snprintf(err, errlen, "'%s' cannot change on resume: it is fixed when a run is created (not a "
                 "live setting); a resume can change %s", k, LIVE);
    return -1;
}

/* ---- load ---- */

/* Where a resume reads the model (or the data) from, into cfg_field (the
 * run's "model" / "data" setting): where the saved setting resolves to now
 * when that is the saved directory (the setting is then left as it was, so
 * re-saves keep the same configuration); else the saved directory itself
 * while it exists, so a relative path or a name works from any working
 * directory; else what resolves now, for the fingerprints to judge. */
static int choose_dir(int found, const char *found_dir, const char *saved_dir, char *cfg_field, size_t cap) {
    struct stat st;
    /* The field gets a directory in every case: a model given by name
     * ("all-minilm-l6-v2", found on the asset search path) is checked and
     * loaded from where it was found, not from a relative path of that name. */
    const char *use = found && (!saved_dir || same_dir(found_dir, saved_dir)) ? found_dir
                      : saved_dir && stat(saved_dir, &st) == 0 && S_ISDIR(st.st_mode) ? saved_dir
                      : found ? found_dir : NULL;
    if (!use || strlen(use) >= cap) return -1;
    memmove(cfg_field, use, strlen(use) + 1);
    return 0;
}

int session_verify(const char *root, const char *name, long *step, char *err, size_t errlen) {
    Snapshot s;
    if (read_snapshot(root, name, 1, &s, err, errlen) != 0) return -1;
    TableEntry *e;
    int n;
    int rc = verify_table(name, &s, &e, &n, err, errlen);
    if (rc == 0) {
        free(e);
        double v;
        if (json_num(cJSON_GetObjectItemCaseSensitive(s.doc, "state"), "step", &v) != 0) {
            snprintf(err, errlen, "session '%s': session.json has no state.step", name);
            rc = -1;
        } else if (step) {
            *step = (long)v;
        }
    }
    snapshot_free(&s);
    return rc;
}

int session_load(const char *root, const char *name, const SessionOverride *ov, int n_ov,
                 const TrainCallbacks *cb, Run **out, char *err, size_t errlen) {
    *out = NULL;
    for (int i = 0; i < n_ov; i++) {
        char why[512];
        if (session_override_allowed(ov[i].key, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "session '%s': %s", name, why);
            return -1;
        }
    }
    Snapshot s;
    if (read_snapshot(root, name, 1, &s, err, errlen) != 0) return -1;
    TableEntry *table = NULL;
    int n_table = 0, rc = -1;
    Run *r = NULL;
    char e2[1024];
    if (verify_table(name, &s, &table, &n_table, err, errlen) != 0) goto done;
    TrainConfig c0;
    if (train_config_from_json(cJSON_GetObjectItemCaseSensitive(s.doc, "config"), &c0, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "session '%s': %s", name, e2);
        goto done;
    }
    /* the inputs the run was saved with, unchanged */
    char dir[PATH_CAP];
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(s.doc, "model");
    int found = assets_find_model(c0.model, dir, sizeof(dir), e2, sizeof(e2)) == 0;
    if (choose_dir(found, dir, json_str(model, "dir"), c0.model, sizeof(c0.model)) != 0) {
        snprintf(err, errlen, "session '%s': its base model '%s' is not found: %s", name, c0.model, e2);
        goto done;
    }
    if (check_files(name, "base model", c0.model, cJSON_GetObjectItemCaseSensitive(model, "files"),
                    json_str(model, "dir"), err, errlen) != 0)
        goto done;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(s.doc, "data");
    found = data_dir_of(&c0, dir, sizeof(dir), e2, sizeof(e2)) == 0;
    if (choose_dir(found, dir, json_str(data, "dir"), c0.data, sizeof(c0.data)) != 0) {
        snprintf(err, errlen, "session '%s': the data of task '%s' is not found: %s", name, c0.task, e2);
        goto done;
    }
    if (check_files(name, "data", c0.data, cJSON_GetObjectItemCaseSensitive(data, "files"), json_str(data, "dir"),
                    err, errlen) != 0)
        goto done;
    for (int i = 0; i < n_ov; i++) {
        char k[64];
        normalize_key(ov[i].key, k, sizeof(k));
        if (!strcmp(k, "device")) {
            if (strlen(ov[i].value) >= sizeof(c0.device)) {
                snprintf(err, errlen, "session '%s': device '%s' is too long", name, ov[i].value);
                goto done;
            }
            snprintf(c0.device, sizeof(c0.device), "%s", ov[i].value);
        }
    }
    if (run_create(&r, &c0, cb, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "session '%s': recreating the run failed: %s", name, e2);
        goto done;
    }
    BlobSource src = {name, table, n_table, s.bin};
    if (run_state_import(r, cJSON_GetObjectItemCaseSensitive(s.doc, "state"), blob_from_file, &src, e2,
                         sizeof(e2)) != 0) {
        snprintf(err, errlen, "session '%s': %s", name, e2);
        goto done;
    }
    for (int i = 0; i < n_ov; i++) {
        char k[64];
        normalize_key(ov[i].key, k, sizeof(k));
        if (strcmp(k, "device") && run_set(r, k, ov[i].value, e2, sizeof(e2)) != 0) {
            snprintf(err, errlen, "session '%s': %s", name, e2);
            goto done;
        }
    }
    /* exactness holds within one build: say when another one saved it */
    const char *saved_by = json_str(s.doc, "build");
    if (cb && cb->on_info && saved_by && strcmp(saved_by, BILORA_BUILD) != 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "session '%s' was saved by bilora %s and continues in %s: the "
                 "numbers may differ from an uninterrupted run in their last bits", name, saved_by,
                 BILORA_BUILD);
        cb->on_info(cb->ctx, msg);
    }
    *out = r;
    r = NULL;
    rc = 0;
done:
    if (r) run_free(r);
    free(table);
    snapshot_free(&s);
    return rc;
}

/* ---- listing and removal ---- */

int session_read_json(const char *root, const char *name, cJSON **out, char *err, size_t errlen) {
    Snapshot s;
    *out = NULL;
    if (read_snapshot(root, name, 0, &s, err, errlen) != 0) return -1;
    *out = s.doc;
    return 0;
}

static int summary_from(const char *name, const Snapshot *s, SessionSummary *o, char *err, size_t errlen) {
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", name);
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(s->doc, "summary");
    double v;
    if (!cJSON_IsObject(sm) || json_num(sm, "step", &v) != 0) {
        snprintf(err, errlen, "session '%s': session.json has no summary", name);
        return -1;
    }
    o->step = (long)v;
    o->total_steps = json_num(sm, "total_steps", &v) == 0 ? (long)v : 0;
    const char *x;
    if ((x = json_str(sm, "task"))) snprintf(o->task, sizeof(o->task), "%s", x);
    if ((x = json_str(sm, "method"))) snprintf(o->method, sizeof(o->method), "%s", x);
    if ((x = json_str(sm, "model"))) snprintf(o->model, sizeof(o->model), "%s", x);
    if ((x = json_str(sm, "metric_name"))) snprintf(o->metric_name, sizeof(o->metric_name), "%s", x);
    if ((x = json_str(sm, "metric_split"))) snprintf(o->metric_split, sizeof(o->metric_split), "%s", x);
    o->metric = json_num(sm, "metric", &v) == 0 ? v : NAN;
    o->loss = json_num(sm, "loss", &v) == 0 ? v : NAN;
    o->created = json_num(s->doc, "created_unix", &v) == 0 ? (int64_t)v : 0;
    o->saved = json_num(s->doc, "saved_unix", &v) == 0 ? (int64_t)v : 0;
    o->format_version = json_num(s->doc, "format_version", &v) == 0 ? (int)v : 0;
    o->from_aside = s->from_aside;
    return 0;
}

int session_summary(const char *root, const char *name, SessionSummary *out, char *err, size_t errlen) {
    Snapshot s;
    if (read_snapshot(root, name, 0, &s, err, errlen) != 0) return -1;
    int rc = summary_from(name, &s, out, err, errlen);
    snapshot_free(&s);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const SessionSummary *)a)->name, ((const SessionSummary *)b)->name);
}

int session_list(const char *root, SessionSummary **out, int *n_out,
                 void (*warn)(void *ctx, const char *message), void *ctx, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    char rootdir[PATH_CAP];
    if (root_of(root, rootdir, sizeof(rootdir), err, errlen) != 0) return -1;
    DIR *d = opendir(rootdir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "sessions root %s: %s", rootdir, strerror(errno));
        return -1;
    }
    /* names: NAME directories, and .NAME.old ones whose NAME is missing */
    char (*names)[SESSION_NAME_MAX + 1] = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char nm[SESSION_NAME_MAX + 1], e2[256];
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' && len > 5 && len - 5 <= SESSION_NAME_MAX && !strcmp(e->d_name + len - 4, ".old"))
            snprintf(nm, sizeof(nm), "%.*s", (int)(len - 5), e->d_name + 1);
        else if (len <= SESSION_NAME_MAX)
            memcpy(nm, e->d_name, len + 1);
        else
            continue;
        if (session_name_check(nm, e2, sizeof(e2)) != 0) continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = !strcmp(names[i], nm);
        if (dup) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            void *p = realloc(names, sizeof(*names) * cap);
            if (!p) { free(names); closedir(d); snprintf(err, errlen, "out of memory"); return -1; }
            names = p;
        }
        snprintf(names[n++], sizeof(names[0]), "%s", nm);
    }
    closedir(d);
    SessionSummary *list = calloc(n ? n : 1, sizeof(*list));
    if (!list) { free(names); snprintf(err, errlen, "out of memory"); return -1; }
    int k = 0;
    for (int i = 0; i < n; i++) {
        char e2[1024];
        Snapshot s;
        if (read_snapshot(rootdir, names[i], 0, &s, e2, sizeof(e2)) != 0) {
            if (warn) warn(ctx, e2);
            continue;
        }
        if (summary_from(names[i], &s, &list[k], e2, sizeof(e2)) == 0) k++;
        else if (warn) warn(ctx, e2);
        snapshot_free(&s);
    }
    free(names);
    qsort(list, k, sizeof(*list), cmp_names);
    *out = list;
    *n_out = k;
    return 0;
}

int session_remove(const char *root, const char *name, char *err, size_t errlen) {
    char rootdir[PATH_CAP], aside[SESSION_NAME_MAX + 8], ln[SESSION_NAME_MAX + 8];
    if (session_name_check(name, err, errlen) != 0 || root_of(root, rootdir, sizeof(rootdir), err, errlen) != 0)
        return -1;
    int rootfd = open(rootdir, O_RDONLY | O_DIRECTORY);
    if (rootfd < 0) {
        snprintf(err, errlen, "no session named '%s' (%s: %s)", name, rootdir, strerror(errno));
        return -1;
    }
    aside_name(aside, sizeof(aside), name);
    if (!exists_dir(rootfd, name) && !exists_dir(rootfd, aside)) {
        snprintf(err, errlen, "no session named '%s' in %s", name, rootdir);
        close(rootfd);
        return -1;
    }
    int lockfd = lock_session(rootfd, name, err, errlen);
    if (lockfd < 0) { close(rootfd); return -1; }
    remove_stale_tmp(rootfd, name);
    int rc = 0;
    if (remove_dir(rootfd, name) != 0 || remove_dir(rootfd, aside) != 0) {
        snprintf(err, errlen, "session '%s': cannot remove it from %s: %s", name, rootdir, strerror(errno));
        rc = -1;
    }
    lock_name(ln, sizeof(ln), name);
    if (rc == 0) unlinkat(rootfd, ln, 0);
    close(lockfd);
    close(rootfd);
    return rc;
}

/* ---- headless driving ---- */

static volatile sig_atomic_t interrupted;

void session_interrupt(void) { interrupted = 1; }

static void on_interrupt(int sig) {
    (void)sig;
    session_interrupt();
    static const char msg[] = "\ninterrupted: stopping at the end of this step (again to quit at once)\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
}

void session_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND; /* the second signal takes the default action */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int session_drive(Run *r, const char *root, const char *name, long save_every, char *err, size_t errlen) {
    if (name && session_name_check(name, err, errlen) != 0) return -1;
    int rc;
    long last_saved = -1;
    while ((rc = run_step(r, err, errlen)) == 0) {
        long step = run_step_index(r);
        if (interrupted) { /* a step boundary: what a resume continues from */
            interrupted = 0;
            if (name && step != last_saved && session_save(root, name, r, err, errlen) != 0) return -1;
            if (name)
                snprintf(err, errlen, "interrupted at step %ld of %ld; saved session '%s' (bilora resume %s "
                         "continues it)", step, run_total_steps(r), name, name);
            else
                snprintf(err, errlen, "interrupted at step %ld of %ld; nothing saved (no --session)", step,
                         run_total_steps(r));
            return SESSION_INTERRUPTED;
        }
        if (name && save_every > 0 && step % save_every == 0) {
            if (session_save(root, name, r, err, errlen) != 0) return -1;
            last_saved = step;
            run_info(r, "step %ld: saved session '%s'", step, name);
        }
    }
    if (rc == RUN_DIVERGED) {
        if (name) append(err, errlen, "; stopping instead of training on garbage (session '%s' keeps its "
                         "last snapshot%s)", name, last_saved >= 0 ? "" : ", if any");
        else append(err, errlen, "; stopping instead of training on garbage");
        return -1;
    }
    if (rc < 0) return -1;
    if (name && run_step_index(r) != last_saved) {
        if (session_save(root, name, r, err, errlen) != 0) return -1;
        run_info(r, "step %ld: saved session '%s'", run_step_index(r), name);
    }
    run_finish(r);
    return 0;
}

int session_exists(const char *root, const char *name) {
    char rootdir[PATH_CAP], e[256], aside[SESSION_NAME_MAX + 8];
    if (session_name_check(name, e, sizeof(e)) != 0 || root_of(root, rootdir, sizeof(rootdir), e, sizeof(e)) != 0)
        return 0;
    int rootfd = open(rootdir, O_RDONLY | O_DIRECTORY);
    if (rootfd < 0) return 0;
    aside_name(aside, sizeof(aside), name);
    int yes = exists_dir(rootfd, name) || exists_dir(rootfd, aside);
    close(rootfd);
    return yes;
}

int session_train(const TrainConfig *cfg, const TrainCallbacks *cb, const char *root, const char *name,
                  long save_every, char *err, size_t errlen) {
    err[0] = 0;
    char rootdir[PATH_CAP];
    if (session_name_check(name, err, errlen) != 0 || root_of(root, rootdir, sizeof(rootdir), err, errlen) != 0)
        return -1;
    /* a new run does not silently replace a saved one */
    if (session_exists(rootdir, name)) {
        SessionSummary s;
        char e2[512];
        if (session_summary(rootdir, name, &s, e2, sizeof(e2)) == 0)
            snprintf(err, errlen, "a session named '%s' exists (%s on %s, step %ld of %ld): continue it with "
                     "`bilora resume %s`, delete it with `bilora sessions rm %s`, or pick another name", name,
                     s.method, s.task, s.step, s.total_steps, name, name);
        else
            snprintf(err, errlen, "a session named '%s' exists in %s (%s); delete it with `bilora sessions rm "
                     "%s` or pick another name", name, rootdir, e2, name);
        return -1;
    }
    if (save_every < 0) {
        snprintf(err, errlen, "--save-every must be >= 0 (0: save at the end only)");
        return -1;
    }
    /* where it will be saved is checked before the training, not after it */
    if (mkdir_p(rootdir, err, errlen) != 0) return -1;
    if (access(rootdir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot save session '%s': the sessions directory %s is not writable (%s); set "
                 "BILORA_SESSIONS to a writable folder", name, rootdir, strerror(errno));
        return -1;
    }
    Run *r;
    if (run_create(&r, cfg, cb, err, errlen) != 0) return -1;
    int rc = session_drive(r, rootdir, name, save_every, err, errlen);
    run_free(r);
    return rc;
}
