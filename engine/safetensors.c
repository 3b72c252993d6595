/* safetensors reader and writer.
 *
 * File layout: 8 bytes little-endian u64 N, then N bytes of JSON header, then
 * the data area. The header maps tensor names to {dtype, shape,
 * data_offsets: [begin, end]} (offsets relative to the data area), plus an
 * optional "__metadata__" object of string pairs.
 *
 * The file is mapped read-only-to-disk (MAP_PRIVATE) rather than read: model
 * files run to gigabytes and the mapping lets the loader copy straight from
 * the page cache into the parameter buffer without a second full copy.
 * Everything in the header is validated before a single tensor is handed
 * out, so later code can trust begin/end/numel without re-checking. */
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a header but a corrupt length field; the
 * upstream Rust implementation uses the same 100 MB ceiling. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* JSON numbers are doubles; integers above 2^53 cannot be represented
 * exactly, so an offset or dimension beyond that is rejected, not rounded. */
#define ST_MAX_JSON_INT 9007199254740992.0

static const char *dtype_name(StDtype d) {
    switch (d) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    case ST_F64: return "F64";
    case ST_I64: return "I64";
    case ST_I32: return "I32";
    case ST_I16: return "I16";
    case ST_I8: return "I8";
    case ST_U8: return "U8";
    case ST_BOOL: return "BOOL";
    }
    return "?";
}

static size_t dtype_size(StDtype d) {
    switch (d) {
    case ST_F64: case ST_I64: return 8;
    case ST_F32: case ST_I32: return 4;
    case ST_F16: case ST_BF16: case ST_I16: return 2;
    case ST_I8: case ST_U8: case ST_BOOL: return 1;
    }
    return 4;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Reads a JSON number that must be a non-negative integer small enough to be
 * exact in a double. Returns 0 on success. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_JSON_INT || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Formats a shape as "[a, b, c]" for error messages. */
static void shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t used = 0;
    int w = snprintf(buf, cap, "[");
    if (w < 0 || (size_t)w >= cap) return;
    used = (size_t)w;
    for (int i = 0; i < ndim; i++) {
        w = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
        if (w < 0 || (size_t)w >= cap - used) return;
        used += (size_t)w;
    }
    snprintf(buf + used, cap - used, "]");
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Fills t from one header entry, checking every field against the data area
 * size. Errors name the file and the tensor. */
static int parse_entry(const char *path, const cJSON *e, size_t data_size, StTensor *t, char *err,
                       size_t errlen) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) {
        snprintf(err, errlen, "%s: tensor '%s': expected an object with dtype, shape, data_offsets",
                 path, name);
        return -1;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) {
        snprintf(err, errlen, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
        return -1;
    }
    static const StDtype all[] = {ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL};
    int known = 0;
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        if (strcmp(dt->valuestring, dtype_name(all[k])) == 0) {
            t->dtype = all[k];
            known = 1;
        }
    if (!known) {
        snprintf(err, errlen,
                 "%s: tensor '%s': unsupported dtype '%s' (expected F32, F16, BF16, F64 or an "
                 "integer type)",
                 path, name, dt->valuestring);
        return -1;
    }

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh)) {
        snprintf(err, errlen, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
        return -1;
    }
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS) {
        snprintf(err, errlen, "%s: tensor '%s': shape has %d dimensions (at most %d supported)", path,
                 name, ndim, ST_MAX_DIMS);
        return -1;
    }
    t->ndim = ndim;
    /* numel is accumulated in u64 with an overflow check, then bounded by the
     * data area: a shape whose byte size exceeds the file cannot be real. */
    uint64_t numel = 1;
    int overflow = 0;
    int i = 0;
    for (const cJSON *d = sh->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_uint(d, &v) != 0) {
            snprintf(err, errlen, "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                     name, i);
            return -1;
        }
        t->shape[i] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    for (; i < ST_MAX_DIMS; i++) t->shape[i] = 0;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &b) != 0 ||
        json_uint(off->child->next, &en) != 0) {
        snprintf(err, errlen,
                 "%s: tensor '%s': \"data_offsets\" must be [begin, end] of non-negative integers",
                 path, name);
        return -1;
    }
    if (b > en) {
        snprintf(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] has begin > end", path,
                 name, (unsigned long long)b, (unsigned long long)en);
        return -1;
    }
    if (en > data_size) {
        snprintf(err, errlen,
                 "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the data area "
                 "(%zu bytes; file truncated?)",
                 path, name, (unsigned long long)b, (unsigned long long)en, data_size);
        return -1;
    }
    char sbuf[160];
    shape_str(t->shape, t->ndim, sbuf, sizeof sbuf);
    uint64_t esz = dtype_size(t->dtype);
    if (overflow || numel > UINT64_MAX / esz || numel * esz != en - b) {
        if (overflow || numel > UINT64_MAX / esz)
            snprintf(err, errlen, "%s: tensor '%s': shape %s overflows (data_offsets span %llu bytes)",
                     path, name, sbuf, (unsigned long long)(en - b));
        else
            snprintf(err, errlen,
                     "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes, expected %llu "
                     "(shape %s, %s)",
                     path, name, (unsigned long long)b, (unsigned long long)en,
                     (unsigned long long)(en - b), (unsigned long long)(numel * esz), sbuf,
                     dtype_name(t->dtype));
        return -1;
    }
    t->numel = (int64_t)numel;
    t->begin = (size_t)b;
    t->end = (size_t)en;
    return 0;
}

/* Checks the parsed header against the data area; fills st->tensors sorted by
 * name (so st_find can binary-search) and st->metadata_json. */
static int parse_header(SafeTensors *st, const char *hdr, size_t hlen, size_t data_size, char *err,
                        size_t errlen) {
    const char *path = st->path;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root) {
        size_t at = (end && end >= hdr) ? (size_t)(end - hdr) : 0;
        snprintf(err, errlen, "%s: header is not valid JSON (near byte %zu of %zu)", path, at, hlen);
        return -1;
    }
    /* Padding after the object may only be whitespace (the format pads with
     * spaces); anything else means the length field and the header disagree. */
    for (const char *p = end; p && p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            snprintf(err, errlen, "%s: header has trailing bytes after the JSON object (byte %zu)",
                     path, (size_t)(p - hdr));
            cJSON_Delete(root);
            return -1;
        }
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: header is JSON but not an object", path);
        cJSON_Delete(root);
        return -1;
    }

    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) n++;
    st->tensors = calloc(n ? (size_t)n : 1, sizeof *st->tensors);
    if (!st->tensors) {
        snprintf(err, errlen, "%s: out of memory for %d tensor entries", path, n);
        cJSON_Delete(root);
        return -1;
    }
    st->n = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (st->metadata_json) {
                snprintf(err, errlen, "%s: \"__metadata__\" appears twice", path);
                goto fail;
            }
            if (!cJSON_IsObject(e)) {
                snprintf(err, errlen, "%s: \"__metadata__\" must be an object", path);
                goto fail;
            }
            st->metadata_json = cJSON_PrintUnformatted(e);
            if (!st->metadata_json) {
                snprintf(err, errlen, "%s: out of memory printing __metadata__", path);
                goto fail;
            }
            continue;
        }
        StTensor *t = &st->tensors[st->n];
        if (parse_entry(path, e, data_size, t, err, errlen) != 0) goto fail;
        t->name = strdup(e->string);
        if (!t->name) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        st->n++;
    }
    cJSON_Delete(root);
    root = NULL;

    qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_tensor_name);
    for (int i = 1; i < st->n; i++) {
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            snprintf(err, errlen, "%s: tensor '%s' appears twice in the header", path,
                     st->tensors[i].name);
            return -1;
        }
    }

    /* Overlap check on a begin-sorted view. Empty tensors occupy no bytes,
     * so they cannot overlap anything. */
    if (st->n > 1) {
        const StTensor **by = malloc((size_t)st->n * sizeof *by);
        if (!by) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (int i = 0; i < st->n; i++) by[i] = &st->tensors[i];
        qsort(by, (size_t)st->n, sizeof *by, cmp_tensor_begin);
        const StTensor *prev = NULL;
        for (int i = 0; i < st->n; i++) {
            const StTensor *t = by[i];
            if (t->begin == t->end) continue;
            if (prev && t->begin < prev->end) {
                snprintf(err, errlen,
                         "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data area",
                         path, prev->name, prev->begin, prev->end, t->name, t->begin, t->end);
                free(by);
                return -1;
            }
            prev = t;
        }
        free(by);
    }
    return 0;

fail:
    cJSON_Delete(root);
    return -1;
}

/* The whole file stays mapped: data points into it, and st_close recovers
 * the mapping's base from data, header_len and file_size. */
static unsigned char *map_base(const SafeTensors *st) {
    return st->data ? st->data - 8 - st->header_len : NULL;
}

int st_open(SafeTensors *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    st->path = strdup(path);
    if (!st->path) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    if (sb.st_size < 8) {
        snprintf(err, errlen,
                 "%s: file is %lld bytes, too short for a safetensors file (expected at least the "
                 "8-byte header length)",
                 path, (long long)sb.st_size);
        close(fd);
        goto fail;
    }
    size_t fsize = (size_t)sb.st_size;
    /* PROT_WRITE with MAP_PRIVATE is copy-on-write: callers get a mutable
     * pointer as the struct promises, and the file on disk is never touched. */
    void *m = mmap(NULL, fsize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot map %zu bytes: %s", path, fsize, strerror(errno));
        goto fail;
    }
    unsigned char *base = m;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > fsize - 8) {
        snprintf(err, errlen,
                 "%s: header length %llu runs past the end of the file (%zu bytes; expected at most "
                 "%zu)",
                 path, (unsigned long long)hlen, fsize, fsize - 8);
        munmap(m, fsize);
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        snprintf(err, errlen, "%s: header length %llu is implausibly large (limit %llu bytes)", path,
                 (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        munmap(m, fsize);
        goto fail;
    }
    if (hlen < 2) {
        snprintf(err, errlen, "%s: header length %llu is too short for a JSON object", path,
                 (unsigned long long)hlen);
        munmap(m, fsize);
        goto fail;
    }
    st->file_size = fsize;
    st->header_len = (size_t)hlen;
    st->data = base + 8 + hlen;
    st->header_hash = fnv1a64(base + 8, (size_t)hlen);
    if (parse_header(st, (const char *)base + 8, (size_t)hlen, fsize - 8 - (size_t)hlen, err,
                     errlen) != 0) {
        st_close(st);
        return -1;
    }
    return 0;

fail:
    st_close(st);
    return -1;
}

void st_close(SafeTensors *st) {
    if (!st) return;
    unsigned char *base = map_base(st);
    if (base) munmap(base, st->file_size);
    if (st->tensors) {
        for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
        free(st->tensors);
    }
    free(st->metadata_json);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    if (!st || !st->tensors || !name) return NULL;
    StTensor key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return bsearch(&key, st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_tensor_name);
}

/* IEEE half -> single, by bits. Subnormal halves are renormalised: shift the
 * mantissa up until its leading 1 reaches the implicit-bit position and
 * lower the exponent once per shift. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf, or nan keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign; /* signed zero */
    } else {
        int e = 127 - 15 + 1;
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        bits = sign | ((uint32_t)e << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void st_read_f32(const SafeTensors *st, const StTensor *t, float *dst) {
    const unsigned char *p = st->data + t->begin;
    size_t n = (size_t)t->numel;
    /* Bytes are assembled explicitly (little-endian on disk) so this is
     * correct on any host and at any alignment; compilers turn the F32 loop
     * into plain loads on little-endian machines. */
    switch (t->dtype) {
    case ST_F32:
        for (size_t i = 0; i < n; i++, p += 4) {
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&dst[i], &u, 4);
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++, p += 2) dst[i] = half_to_float((uint16_t)(p[0] | p[1] << 8));
        break;
    case ST_BF16:
        /* bf16 is the top half of an fp32: widening is exact. */
        for (size_t i = 0; i < n; i++, p += 2) {
            uint32_t u = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
            memcpy(&dst[i], &u, 4);
        }
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = u << 8 | p[k];
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
        }
        break;
    case ST_I64:
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = u << 8 | p[k];
            dst[i] = (float)(int64_t)u;
        }
        break;
    case ST_I32:
        for (size_t i = 0; i < n; i++, p += 4)
            dst[i] = (float)(int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                      (uint32_t)p[3] << 24);
        break;
    case ST_I16:
        for (size_t i = 0; i < n; i++, p += 2) dst[i] = (float)(int16_t)(p[0] | p[1] << 8);
        break;
    case ST_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        break;
    case ST_U8:
    case ST_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = (float)p[i];
        break;
    }
}

/* ---- writer ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} Sb;

static void sb_put(Sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void sb_str(Sb *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Appends s as a JSON string literal. Bytes >= 0x80 pass through (names are
 * UTF-8); control characters are \u-escaped as JSON requires. */
static void sb_json_string(Sb *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"') sb_put(b, "\\\"", 2);
        else if (*p == '\\') sb_put(b, "\\\\", 2);
        else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

static int cmp_write_idx(const void *a, const void *b, const StWriteTensor *ts) {
    return strcmp(ts[*(const int *)a].name, ts[*(const int *)b].name);
}

/* qsort has no context argument in C11; a tiny insertion sort over indices
 * avoids global state (tensor counts are in the hundreds). */
static void sort_indices(int *idx, int n, const StWriteTensor *ts) {
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i;
        while (j > 0 && cmp_write_idx(&idx[j - 1], &v, ts) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

/* Writes n floats little-endian, through a small staging buffer. */
static int write_f32_le(FILE *f, const float *x, size_t n) {
    unsigned char buf[4096];
    size_t i = 0;
    while (i < n) {
        size_t k = n - i < sizeof buf / 4 ? n - i : sizeof buf / 4;
        for (size_t j = 0; j < k; j++) {
            uint32_t u;
            memcpy(&u, &x[i + j], 4);
            buf[4 * j] = (unsigned char)u;
            buf[4 * j + 1] = (unsigned char)(u >> 8);
            buf[4 * j + 2] = (unsigned char)(u >> 16);
            buf[4 * j + 3] = (unsigned char)(u >> 24);
        }
        if (write_all(f, buf, 4 * k) != 0) return -1;
        i += k;
    }
    return 0;
}

/* fsync the directory so the rename itself survives a crash. Best effort:
 * some filesystems refuse fsync on directories. */
static void fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    } else return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int st_write_f32(const char *path, const StWriteTensor *ts, int n, const char *const *metadata,
                 char *err, size_t errlen) {
    if (n < 0 || (n > 0 && !ts)) {
        snprintf(err, errlen, "%s: invalid tensor list (n=%d)", path, n);
        return -1;
    }
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    uint64_t *numel = malloc((size_t)(n ? n : 1) * sizeof *numel);
    Sb h = {0};
    char *tmp = NULL;
    FILE *f = NULL;
    int rc = -1;
    if (!idx || !numel) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const StWriteTensor *t = &ts[i];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
            snprintf(err, errlen, "%s: tensor %d has an empty or reserved name", path, i);
            goto done;
        }
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            snprintf(err, errlen, "%s: tensor '%s': ndim %d, expected 0..%d", path, t->name,
                     t->ndim, ST_MAX_DIMS);
            goto done;
        }
        uint64_t ne = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (double)t->shape[d] > ST_MAX_JSON_INT) {
                snprintf(err, errlen, "%s: tensor '%s': shape[%d] = %lld is out of range", path,
                         t->name, d, (long long)t->shape[d]);
                goto done;
            }
            uint64_t v = (uint64_t)t->shape[d];
            if (v != 0 && ne > UINT64_MAX / 4 / v) {
                snprintf(err, errlen, "%s: tensor '%s': shape overflows", path, t->name);
                goto done;
            }
            ne *= v;
        }
        if (ne > 0 && !t->data) {
            snprintf(err, errlen, "%s: tensor '%s': data is NULL for %llu elements", path, t->name,
                     (unsigned long long)ne);
            goto done;
        }
        numel[i] = ne;
        idx[i] = i;
    }
    sort_indices(idx, n, ts);
    for (int i = 1; i < n; i++) {
        if (strcmp(ts[idx[i - 1]].name, ts[idx[i]].name) == 0) {
            snprintf(err, errlen, "%s: tensor '%s' given twice", path, ts[idx[i]].name);
            goto done;
        }
    }

    /* Header: __metadata__ first (as the reference writer does), then the
     * tensors in name order with contiguous offsets. */
    sb_str(&h, "{");
    int first = 1;
    if (metadata && metadata[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (int k = 0; metadata[k]; k += 2) {
            if (!metadata[k + 1]) {
                snprintf(err, errlen, "%s: metadata key '%s' has no value", path, metadata[k]);
                goto done;
            }
            if (k) sb_str(&h, ",");
            sb_json_string(&h, metadata[k]);
            sb_str(&h, ":");
            sb_json_string(&h, metadata[k + 1]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const StWriteTensor *t = &ts[idx[k]];
        char num[64];
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json_string(&h, t->name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_str(&h, num);
        }
        uint64_t bytes = numel[idx[k]] * 4;
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + bytes));
        sb_str(&h, num);
        off += bytes;
    }
    sb_str(&h, "}");
    /* Pad with spaces so the data area starts 8-byte aligned in the file,
     * which keeps a mapped file's float data naturally aligned. */
    while (h.len % 8) sb_str(&h, " ");
    if (h.oom) {
        snprintf(err, errlen, "%s: out of memory building the header", path);
        goto done;
    }

    size_t tlen = strlen(path) + 32;
    tmp = malloc(tlen);
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create temporary file %s: %s", path, tmp,
                 strerror(errno));
        goto done;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if (write_all(f, lenb, 8) != 0 || write_all(f, h.buf, h.len) != 0) goto io_fail;
    for (int k = 0; k < n; k++) {
        const StWriteTensor *t = &ts[idx[k]];
        if (write_f32_le(f, t->data, (size_t)numel[idx[k]]) != 0) goto io_fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto io_fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto io_fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    fsync_parent_dir(path);
    rc = 0;
    goto done;

io_fail:
    snprintf(err, errlen, "%s: write to %s failed: %s", path, tmp, strerror(errno));
    if (f) fclose(f);
    f = NULL;
    unlink(tmp);
done:
    free(idx);
    free(numel);
    free(h.buf);
    free(tmp);
    return rc;
}
