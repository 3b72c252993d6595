/* Tokenizer front: finding and parsing the files of a Hugging Face model
 * directory, added (special) tokens, the per-model_type templates and
 * truncation. The models themselves live in wordpiece.c and bpe.c.
 *
 * The reference is the Rust `tokenizers` library (0.19, what
 * transformers 4.40's *Fast classes run). The encode pipeline is its:
 *   text -> split on added tokens that are matched raw (normalized=false)
 *        -> normalize each remaining piece
 *        -> split on added tokens matched after normalization
 *        -> pre-tokenize + model on each remaining piece
 *        -> truncate (longest_first) -> template with special tokens. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "datasets/tokenizer_internal.h"

/* ids above this are taken for a corrupt file, not a real vocabulary */
#define TOK_MAX_ID (1 << 24)

/* =========================================================== containers */

static uint64_t hash_bytes(const char *s, size_t n) {
    /* FNV-1a: short keys, good enough spread, no state */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int tok_strmap_init(TokStrMap *m, size_t expected) {
    uint32_t cap = 16;
    while (cap < expected * 2 && cap < (1u << 30)) cap <<= 1;
    m->cap = cap;
    m->count = 0;
    m->keys = calloc(cap, sizeof *m->keys);
    m->lens = calloc(cap, sizeof *m->lens);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->lens || !m->vals) {
        tok_strmap_free(m);
        return -1;
    }
    return 0;
}

void tok_strmap_free(TokStrMap *m) {
    if (m->keys)
        for (uint32_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int strmap_grow(TokStrMap *m) {
    TokStrMap n;
    if (tok_strmap_init(&n, (size_t)m->cap) != 0) return -1; /* doubles the capacity */
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        uint32_t j = (uint32_t)hash_bytes(m->keys[i], m->lens[i]) & (n.cap - 1);
        while (n.keys[j]) j = (j + 1) & (n.cap - 1);
        n.keys[j] = m->keys[i];
        n.lens[j] = m->lens[i];
        n.vals[j] = m->vals[i];
        n.count++;
    }
    free(m->keys);
    free(m->lens);
    free(m->vals);
    *m = n;
    return 0;
}

int tok_strmap_put(TokStrMap *m, const char *key, size_t len, int32_t val) {
    if (m->cap == 0 && tok_strmap_init(m, 16) != 0) return -1;
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m) != 0) return -1;
    uint32_t j = (uint32_t)hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->lens[j] == len && memcmp(m->keys[j], key, len) == 0) {
            m->vals[j] = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *k = malloc(len + 1);
    if (!k) return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    m->keys[j] = k;
    m->lens[j] = (uint32_t)len;
    m->vals[j] = val;
    m->count++;
    return 0;
}

int32_t tok_strmap_get(const TokStrMap *m, const char *key, size_t len) {
    if (m->cap == 0) return -1;
    uint32_t j = (uint32_t)hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->lens[j] == len && memcmp(m->keys[j], key, len) == 0) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

int tok_pairmap_init(TokPairMap *m, size_t expected) {
    uint32_t cap = 16;
    while (cap < expected * 2 && cap < (1u << 30)) cap <<= 1;
    m->cap = cap;
    m->count = 0;
    m->keys = malloc(cap * sizeof *m->keys);
    m->rank = malloc(cap * sizeof *m->rank);
    m->merged = malloc(cap * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) {
        tok_pairmap_free(m);
        return -1;
    }
    for (uint32_t i = 0; i < cap; i++) m->keys[i] = TOK_PAIR_EMPTY;
    return 0;
}

void tok_pairmap_free(TokPairMap *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

int tok_pairmap_put(TokPairMap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if (m->cap == 0 && tok_pairmap_init(m, 16) != 0) return -1;
    if ((m->count + 1) * 2 > m->cap) {
        TokPairMap n;
        if (tok_pairmap_init(&n, m->cap) != 0) return -1;
        for (uint32_t i = 0; i < m->cap; i++) {
            if (m->keys[i] == TOK_PAIR_EMPTY) continue;
            uint32_t j = hash_pair(m->keys[i]) & (n.cap - 1);
            while (n.keys[j] != TOK_PAIR_EMPTY) j = (j + 1) & (n.cap - 1);
            n.keys[j] = m->keys[i];
            n.rank[j] = m->rank[i];
            n.merged[j] = m->merged[i];
            n.count++;
        }
        tok_pairmap_free(m);
        *m = n;
    }
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint32_t j = hash_pair(key) & (m->cap - 1);
    while (m->keys[j] != TOK_PAIR_EMPTY && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    if (m->keys[j] == TOK_PAIR_EMPTY) m->count++;
    m->keys[j] = key;
    m->rank[j] = rank;
    m->merged[j] = merged;
    return 0;
}

int tok_pairmap_get(const TokPairMap *m, int32_t left, int32_t right, int32_t *rank,
                    int32_t *merged) {
    if (m->cap == 0) return 0;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint32_t j = hash_pair(key) & (m->cap - 1);
    while (m->keys[j] != TOK_PAIR_EMPTY) {
        if (m->keys[j] == key) {
            *rank = m->rank[j];
            *merged = m->merged[j];
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

int tok_ids_push(TokIds *a, int32_t id) {
    if (a->n == a->cap) {
        int nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return 0;
}

/* ================================================================ UTF-8 */

int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80 || n < 2) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (c < 0xF0 || n < 4) {
        *cp = (int32_t)(((c & 0x0F) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3F));
        return 3;
    }
    *cp = (int32_t)(((c & 0x07) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                    (s[3] & 0x3F));
    return 4;
}

int tok_utf8_encode(int32_t cp, char *dst) {
    return (int)utf8proc_encode_char(cp, (utf8proc_uint8_t *)dst);
}

/* Strict UTF-8 check (no overlong forms, no surrogates, <= U+10FFFF), so the
 * decoders above and PCRE2 (run with NO_UTF_CHECK) can trust their input.
 * Returns the offset of the first bad byte, or (size_t)-1 when valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1; cp = c & 0x1F; min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2; cp = c & 0x0F; min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3; cp = c & 0x07; min = 0x10000;
        } else {
            return i;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k + 1;
    }
    return (size_t)-1;
}

/* =============================================================== files */

static int path_join(char *dst, size_t cap, const char *dir, const char *name, char *err,
                     size_t errlen) {
    int w = snprintf(dst, cap, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= cap) {
        snprintf(err, errlen, "model dir %s: path too long", dir);
        return -1;
    }
    return 0;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int oom = !b, ioerr = !oom && ferror(f);
    int saved = errno;
    fclose(f);
    if (oom || ioerr) {
        free(b);
        snprintf(err, errlen, "%s: read error: %s", path, oom ? "out of memory" : strerror(saved));
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* 1 when the text ends with a bracket or string still open: cJSON reports
 * where the failing value began, which for a cut-off file is not its end,
 * so this tells the user what most likely happened. */
static int json_unclosed(const char *s, size_t n) {
    long depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_str || depth > 0;
}

/* Parses a JSON file; a syntax error names the line and column where cJSON
 * stopped (a truncated file stops at its end). */
static int read_json(const char *path, cJSON **out, char *err, size_t errlen) {
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, errlen) != 0) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(err, errlen, "%s: line %d, column %d: invalid JSON%s", path, line, col,
                 json_unclosed(buf, len) ? " (the file ends inside an object, array or string: "
                                           "truncated?)" : "");
        free(buf);
        return -1;
    }
    free(buf);
    *out = root;
    return 0;
}

/* JSON helpers: a missing key, or null, leaves the default. */
static int json_bool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsTrue(v)) return 1;
    if (cJSON_IsFalse(v)) return 0;
    return dflt;
}

/* A special token in tokenizer_config.json is a string or {"content": ...}. */
static const char *json_token_name(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

/* ========================================================= vocabularies */

/* {"token": id, ...} into t->vocab; `what` names the field for messages. */
static int load_vocab_object(Tokenizer *t, const cJSON *obj, const char *path, const char *what,
                             char *err, size_t errlen) {
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "%s: %s: expected an object of token -> id", path, what);
        return -1;
    }
    int count = cJSON_GetArraySize(obj);
    if (count == 0) {
        snprintf(err, errlen, "%s: %s: empty vocabulary", path, what);
        return -1;
    }
    if (tok_strmap_init(&t->vocab, (size_t)count) != 0) goto oom;
    for (const cJSON *e = obj->child; e; e = e->next) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || d < 0 || d >= TOK_MAX_ID || d != (double)(int32_t)d) {
            snprintf(err, errlen, "%s: %s: token '%.60s': expected an integer id in [0, %d)",
                     path, what, e->string ? e->string : "", TOK_MAX_ID);
            return -1;
        }
        if (tok_strmap_put(&t->vocab, e->string, strlen(e->string), (int32_t)d) != 0) goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
}

static int add_added_token(Tokenizer *t, const char *content, int32_t id, int lstrip, int rstrip,
                           int single_word, int normalized, int special, const char *where,
                           char *err, size_t errlen) {
    if (!content || !*content) {
        snprintf(err, errlen, "%s: added token with empty content", where);
        return -1;
    }
    if (id < 0 || id >= TOK_MAX_ID) {
        snprintf(err, errlen, "%s: added token '%.60s': id %d out of range", where, content,
                 (int)id);
        return -1;
    }
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, content) == 0) return 0; /* first wins */
    TokAdded *na = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *na);
    if (!na) goto oom;
    t->added = na;
    TokAdded *a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    a->content = strdup(content);
    if (!a->content) goto oom;
    t->n_added++;
    a->id = id;
    a->lstrip = (unsigned char)lstrip;
    a->rstrip = (unsigned char)rstrip;
    a->single_word = (unsigned char)single_word;
    a->normalized = (unsigned char)normalized;
    a->special = (unsigned char)special;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", where);
    return -1;
}

/* "added_tokens" of tokenizer.json, or "added_tokens_decoder" of
 * tokenizer_config.json (an object keyed by the id as a string). */
static int load_added_tokens_json(Tokenizer *t, const cJSON *arr, const char *path,
                                  const char *field, char *err, size_t errlen) {
    if (!arr || cJSON_IsNull(arr)) return 0;
    int keyed = cJSON_IsObject(arr);
    if (!keyed && !cJSON_IsArray(arr)) {
        snprintf(err, errlen, "%s: %s: expected %s", path, field,
                 strcmp(field, "added_tokens") == 0 ? "an array" : "an object");
        return -1;
    }
    int i = 0;
    char where[4200];
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        double idv = -1;
        if (keyed) {
            char *endp;
            idv = strtod(e->string, &endp);
            if (*endp) idv = -1;
        } else if (cJSON_IsNumber(id)) {
            idv = id->valuedouble;
        }
        if (!cJSON_IsObject(e) || !cJSON_IsString(content) || idv < 0 || idv >= TOK_MAX_ID) {
            if (keyed)
                snprintf(err, errlen, "%s: %s[\"%.20s\"]: expected {\"content\": string, ...} "
                         "under an integer id", path, field, e->string);
            else
                snprintf(err, errlen, "%s: %s[%d]: expected an object with integer \"id\" and "
                         "string \"content\"", path, field, i);
            return -1;
        }
        int special = json_bool(e, "special", 0);
        snprintf(where, sizeof where, "%s: %s[%d]", path, field, i);
        if (add_added_token(t, content->valuestring, (int32_t)idv, json_bool(e, "lstrip", 0),
                            json_bool(e, "rstrip", 0), json_bool(e, "single_word", 0),
                            json_bool(e, "normalized", !special), special, where, err,
                            errlen) != 0)
            return -1;
    }
    return 0;
}

/* tokenizer.json: the model, normalizer, pre-tokenizer and added tokens. */
static int load_tokenizer_json(Tokenizer *t, const char *path, char *err, size_t errlen) {
    cJSON *root;
    if (read_json(path, &root, err, errlen) != 0) return -1;
    int rc = -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        snprintf(err, errlen, "%s: field \"model\": expected an object", path);
        goto done;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (cJSON_IsString(type)) {
        if (strcmp(type->valuestring, "WordPiece") == 0) {
            t->kind = TOKENIZER_WORDPIECE;
        } else if (strcmp(type->valuestring, "BPE") == 0) {
            t->kind = TOKENIZER_BPE;
        } else {
            snprintf(err, errlen, "%s: model.type \"%.40s\" is not supported (expected WordPiece "
                     "or BPE)", path, type->valuestring);
            goto done;
        }
    } else if (type && !cJSON_IsNull(type)) {
        snprintf(err, errlen, "%s: model.type: expected a string", path);
        goto done;
    } else {
        /* files from tokenizers < 0.9 have no "type": only BPE has merges */
        t->kind = merges ? TOKENIZER_BPE : TOKENIZER_WORDPIECE;
    }
    if (load_vocab_object(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), path,
                          "model.vocab", err, errlen) != 0)
        goto done;

    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *norm_type = cJSON_GetObjectItemCaseSensitive(norm, "type");
    const cJSON *pre_type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (norm && !cJSON_IsNull(norm) &&
        !(t->kind == TOKENIZER_WORDPIECE && cJSON_IsString(norm_type) &&
          strcmp(norm_type->valuestring, "BertNormalizer") == 0)) {
        snprintf(err, errlen, "%s: normalizer \"%.40s\" is not supported (expected %s)", path,
                 cJSON_IsString(norm_type) ? norm_type->valuestring : "?",
                 t->kind == TOKENIZER_WORDPIECE ? "BertNormalizer or null" : "null");
        goto done;
    }
    const char *want_pre = t->kind == TOKENIZER_WORDPIECE ? "BertPreTokenizer" : "ByteLevel";
    if (!cJSON_IsString(pre_type) || strcmp(pre_type->valuestring, want_pre) != 0) {
        snprintf(err, errlen, "%s: pre_tokenizer \"%.40s\" is not supported (expected %s)", path,
                 cJSON_IsString(pre_type) ? pre_type->valuestring : "null", want_pre);
        goto done;
    }

    if (t->kind == TOKENIZER_WORDPIECE) {
        t->bert_normalizer = norm && !cJSON_IsNull(norm);
        if (t->bert_normalizer) {
            t->clean_text = json_bool(norm, "clean_text", 1);
            t->handle_chinese_chars = json_bool(norm, "handle_chinese_chars", 1);
            t->lowercase = json_bool(norm, "lowercase", 1);
            /* strip_accents: null means "do what lowercase does" */
            t->strip_accents = json_bool(norm, "strip_accents", t->lowercase);
        }
        const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
        const cJSON *maxc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
        const char *unk_s = cJSON_IsString(unk) ? unk->valuestring : "[UNK]";
        t->wp_unk_id = tok_strmap_get(&t->vocab, unk_s, strlen(unk_s));
        if (cJSON_IsString(prefix)) {
            if (strlen(prefix->valuestring) >= sizeof t->wp_prefix) {
                snprintf(err, errlen, "%s: model.continuing_subword_prefix: longer than %zu bytes",
                         path, sizeof t->wp_prefix - 1);
                goto done;
            }
            strcpy(t->wp_prefix, prefix->valuestring);
        }
        if (cJSON_IsNumber(maxc)) {
            if (maxc->valuedouble < 1 || maxc->valuedouble > 1e9) {
                snprintf(err, errlen, "%s: model.max_input_chars_per_word: expected a positive "
                         "integer", path);
                goto done;
            }
            t->wp_max_chars = (int)maxc->valuedouble;
        }
    } else {
        const cJSON *sfx = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
        const cJSON *csp = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
        if ((cJSON_IsString(sfx) && *sfx->valuestring) ||
            (cJSON_IsString(csp) && *csp->valuestring)) {
            snprintf(err, errlen, "%s: model.end_of_word_suffix / continuing_subword_prefix: "
                     "not supported for byte-level BPE (expected empty)", path);
            goto done;
        }
        if (!json_bool(pre, "use_regex", 1)) {
            snprintf(err, errlen, "%s: pre_tokenizer.use_regex false is not supported", path);
            goto done;
        }
        t->add_prefix_space = json_bool(pre, "add_prefix_space", 1);
        if (!cJSON_IsArray(merges)) {
            snprintf(err, errlen, "%s: model.merges: expected an array", path);
            goto done;
        }
        if (tok_pairmap_init(&t->merges, (size_t)cJSON_GetArraySize(merges)) != 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto done;
        }
        int rank = 0;
        char where[4200];
        for (const cJSON *m = merges->child; m; m = m->next, rank++) {
            snprintf(where, sizeof where, "%s: model.merges[%d]", path, rank);
            const char *l = NULL, *r = NULL;
            size_t ll = 0, rl = 0;
            if (cJSON_IsString(m)) {
                /* old format: "left right", exactly one space */
                const char *s = m->valuestring;
                const char *sp = strchr(s, ' ');
                if (sp && sp != s && sp[1] && !strchr(sp + 1, ' ')) {
                    l = s;
                    ll = (size_t)(sp - s);
                    r = sp + 1;
                    rl = strlen(r);
                }
            } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                       cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
                /* new format (tokenizers >= 0.20): ["left", "right"] */
                l = m->child->valuestring;
                ll = strlen(l);
                r = m->child->next->valuestring;
                rl = strlen(r);
            }
            if (!l || !ll || !rl) {
                snprintf(err, errlen, "%s: expected \"left right\" or [\"left\", \"right\"]", where);
                goto done;
            }
            if (tok_bpe_add_merge(t, l, ll, r, rl, rank, where, err, errlen) != 0) goto done;
        }
    }
    if (load_added_tokens_json(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path,
                               "added_tokens", err, errlen) != 0)
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static int load_vocab_json(Tokenizer *t, const char *path, char *err, size_t errlen) {
    cJSON *root;
    if (read_json(path, &root, err, errlen) != 0) return -1;
    int rc = load_vocab_object(t, root, path, "top level", err, errlen);
    cJSON_Delete(root);
    return rc;
}

/* ========================================================= the template */

static int template_from_name(const char *name, TokTemplate *out) {
    if (strcmp(name, "bert") == 0) *out = TOK_TEMPLATE_BERT;
    else if (strcmp(name, "roberta") == 0) *out = TOK_TEMPLATE_ROBERTA;
    else if (strcmp(name, "gpt2") == 0) *out = TOK_TEMPLATE_GPT2;
    else return -1;
    return 0;
}

/* An id by token text: added tokens first (they shadow the vocabulary in
 * `tokenizers`), then the model vocabulary. */
static int32_t token_id(const Tokenizer *t, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, s) == 0) return t->added[i].id;
    return tok_strmap_get(&t->vocab, s, strlen(s));
}

/* ================================================== added-token matching */

/* The code point that ends just before s[end] (valid UTF-8 assumed). */
static int32_t prev_cp(const char *s, size_t end, size_t *start) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    int32_t cp;
    tok_utf8_decode((const unsigned char *)s + i, end - i, &cp);
    *start = i;
    return cp;
}

/* A regex \w character (letters, marks, numbers, connector punctuation):
 * what single_word added tokens must not touch on either side. */
static int is_word_cp(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO) || c == UTF8PROC_CATEGORY_PC;
}

/* Finds the leftmost, then longest, added token (of the given normalized
 * flag) in s[from, n). On a match: *ms and *me span the token plus whatever
 * lstrip/rstrip swallow, and *id is its id. */
static int find_added(const Tokenizer *t, const char *s, size_t n, size_t from, int normalized,
                      size_t *ms, size_t *me, int32_t *id) {
    for (size_t pos = from; pos < n; pos++) {
        if (!t->added_first_byte[(unsigned char)s[pos]]) continue;
        const TokAdded *best = NULL;
        for (int i = 0; i < t->n_added; i++) {
            const TokAdded *a = &t->added[i];
            if (a->normalized != normalized || a->match_len == 0 || a->match_len > n - pos)
                continue;
            if (memcmp(s + pos, a->match, a->match_len) != 0) continue;
            if (a->single_word) {
                size_t dummy;
                int32_t cp;
                if (pos > 0 && is_word_cp(prev_cp(s, pos, &dummy))) continue;
                if (pos + a->match_len < n) {
                    tok_utf8_decode((const unsigned char *)s + pos + a->match_len,
                                    n - pos - a->match_len, &cp);
                    if (is_word_cp(cp)) continue;
                }
            }
            if (!best || a->match_len > best->match_len) best = a;
        }
        if (!best) continue;
        size_t start = pos, stop = pos + best->match_len;
        if (best->lstrip) {
            /* swallow the whitespace before, but not text an earlier match owns */
            while (start > from) {
                size_t cs;
                if (!tok_is_white_space(prev_cp(s, start, &cs))) break;
                start = cs < from ? from : cs;
            }
        }
        if (best->rstrip) {
            while (stop < n) {
                int32_t cp;
                int len = tok_utf8_decode((const unsigned char *)s + stop, n - stop, &cp);
                if (!tok_is_white_space(cp)) break;
                stop += (size_t)len;
            }
        }
        *ms = start;
        *me = stop;
        *id = best->id;
        return 1;
    }
    return 0;
}

static int model_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                        size_t errlen) {
    if (n == 0) return 0;
    if (t->kind == TOKENIZER_WORDPIECE) return tok_wordpiece_encode(t, s, n, out, err, errlen);
    return tok_bpe_encode(t, s, n, out, err, errlen);
}

/* One piece between raw-matched added tokens: normalize, then split on the
 * added tokens that are matched in normalized text, then the model. */
static int encode_piece(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                        size_t errlen) {
    if (n == 0) return 0;
    char *norm = NULL;
    size_t nn = n;
    if (t->bert_normalizer) {
        if (tok_bert_normalize(t, s, n, &norm, &nn, err, errlen) != 0) return -1;
        s = norm;
    }
    int rc = 0;
    size_t pos = 0, ms, me;
    int32_t id;
    while (rc == 0 && t->has_normalized_added && find_added(t, s, nn, pos, 1, &ms, &me, &id)) {
        rc = model_encode(t, s + pos, ms - pos, out, err, errlen);
        if (rc == 0 && tok_ids_push(out, id)) {
            snprintf(err, errlen, "%s: out of memory", t->source);
            rc = -1;
        }
        pos = me;
    }
    if (rc == 0) rc = model_encode(t, s + pos, nn - pos, out, err, errlen);
    free(norm);
    return rc;
}

static int encode_text(const Tokenizer *t, const char *s, TokIds *out, const char *which,
                       char *err, size_t errlen) {
    size_t n = strlen(s);
    size_t bad = utf8_invalid_at((const unsigned char *)s, n);
    if (bad != (size_t)-1) {
        snprintf(err, errlen, "%s is not valid UTF-8 (byte %zu: 0x%02X)", which, bad,
                 (unsigned char)s[bad]);
        return -1;
    }
    size_t pos = 0, ms, me;
    int32_t id;
    while (find_added(t, s, n, pos, 0, &ms, &me, &id)) {
        if (encode_piece(t, s + pos, ms - pos, out, err, errlen) != 0) return -1;
        if (tok_ids_push(out, id)) {
            snprintf(err, errlen, "%s: out of memory", t->source);
            return -1;
        }
        pos = me;
    }
    return encode_piece(t, s + pos, n - pos, out, err, errlen);
}

/* ================================================================ load */

static void set_name(const char **slot, const cJSON *cfg, const char *key) {
    const char *v = json_token_name(cfg, key);
    if (v) *slot = v;
}

static int finish_added(Tokenizer *t, char *err, size_t errlen) {
    memset(t->added_first_byte, 0, sizeof t->added_first_byte);
    t->has_normalized_added = 0;
    for (int i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        /* without a normalizer "normalized" changes nothing: match it raw */
        if (!t->bert_normalizer) a->normalized = 0;
        if (a->normalized) {
            size_t nn;
            if (tok_bert_normalize(t, a->content, strlen(a->content), &a->match, &nn, err,
                                   errlen) != 0)
                return -1;
            a->match_len = nn;
            if (nn == 0) continue; /* normalizes to nothing: find_added skips it */
            t->has_normalized_added = 1;
        } else {
            a->match = strdup(a->content);
            if (!a->match) {
                snprintf(err, errlen, "%s: out of memory", t->source);
                return -1;
            }
            a->match_len = strlen(a->match);
        }
        t->added_first_byte[(unsigned char)a->match[0]] = 1;
    }
    return 0;
}

static int build_id_table(Tokenizer *t, char *err, size_t errlen) {
    int n = 0;
    for (uint32_t i = 0; i < t->vocab.cap; i++)
        if (t->vocab.keys[i] && t->vocab.vals[i] + 1 > n) n = t->vocab.vals[i] + 1;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id + 1 > n) n = t->added[i].id + 1;
    t->id_to_token = calloc((size_t)n, sizeof *t->id_to_token);
    if (!t->id_to_token) {
        snprintf(err, errlen, "%s: out of memory", t->source);
        return -1;
    }
    t->n_ids = n;
    for (uint32_t i = 0; i < t->vocab.cap; i++)
        if (t->vocab.keys[i]) t->id_to_token[t->vocab.vals[i]] = t->vocab.keys[i];
    for (int i = 0; i < t->n_added; i++)
        t->id_to_token[t->added[i].id] = t->added[i].content;
    return 0;
}

int tokenizer_load(Tokenizer **out, const char *model_dir, const char *model_type, char *err,
                   size_t errlen) {
    if (!out || !model_dir) {
        snprintf(err, errlen, "tokenizer_load: out and model_dir must not be NULL");
        return -1;
    }
    *out = NULL;
    struct stat st;
    if (stat(model_dir, &st) != 0) {
        snprintf(err, errlen, "model dir %s: %s", model_dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "model dir %s: not a directory", model_dir);
        return -1;
    }
    TokTemplate tmpl = TOK_TEMPLATE_BERT;
    if (model_type && template_from_name(model_type, &tmpl) != 0) {
        snprintf(err, errlen, "model_type \"%s\" has no tokenizer template (expected bert, "
                 "roberta or gpt2)", model_type);
        return -1;
    }
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->pad_id = t->cls_id = t->sep_id = t->mask_id = t->unk_id = t->wp_unk_id = -1;
    strcpy(t->wp_prefix, "##");
    t->wp_max_chars = 100;
    cJSON *tcfg = NULL, *smap = NULL, *mcfg = NULL;
    char path[4096], path2[4096], tcfg_path[4096];
    int from_tokenizer_json = 0;

    /* 1. the vocabulary and model */
    if (path_join(path, sizeof path, model_dir, "tokenizer.json", err, errlen)) goto fail;
    if (is_file(path)) {
        snprintf(t->source, sizeof t->source, "%s", path);
        if (load_tokenizer_json(t, path, err, errlen) != 0) goto fail;
        from_tokenizer_json = 1;
    } else {
        if (path_join(path, sizeof path, model_dir, "vocab.txt", err, errlen)) goto fail;
        if (is_file(path)) {
            snprintf(t->source, sizeof t->source, "%s", path);
            t->kind = TOKENIZER_WORDPIECE;
            if (tok_wordpiece_read_vocab_txt(t, path, err, errlen) != 0) goto fail;
            /* BertTokenizer's defaults; tokenizer_config.json may change them */
            t->bert_normalizer = 1;
            t->clean_text = t->handle_chinese_chars = t->lowercase = t->strip_accents = 1;
        } else {
            if (path_join(path, sizeof path, model_dir, "vocab.json", err, errlen) ||
                path_join(path2, sizeof path2, model_dir, "merges.txt", err, errlen))
                goto fail;
            if (!is_file(path) || !is_file(path2)) {
                snprintf(err, errlen, "model dir %s: no tokenizer files (expected tokenizer.json, "
                         "vocab.txt, or vocab.json with merges.txt)%s", model_dir,
                         is_file(path) ? ": merges.txt is missing" :
                         is_file(path2) ? ": vocab.json is missing" : "");
                goto fail;
            }
            snprintf(t->source, sizeof t->source, "%s", path);
            t->kind = TOKENIZER_BPE;
            if (load_vocab_json(t, path, err, errlen) != 0) goto fail;
            if (tok_bpe_read_merges_txt(t, path2, err, errlen) != 0) goto fail;
            t->add_prefix_space = 0; /* GPT2Tokenizer / RobertaTokenizer default */
        }
    }

    /* 2. optional configuration files */
    if (path_join(tcfg_path, sizeof tcfg_path, model_dir, "tokenizer_config.json", err, errlen))
        goto fail;
    if (is_file(tcfg_path) && read_json(tcfg_path, &tcfg, err, errlen) != 0) goto fail;
    if (path_join(path, sizeof path, model_dir, "special_tokens_map.json", err, errlen)) goto fail;
    if (is_file(path) && read_json(path, &smap, err, errlen) != 0) goto fail;
    if (!model_type) {
        if (path_join(path, sizeof path, model_dir, "config.json", err, errlen)) goto fail;
        if (is_file(path) && read_json(path, &mcfg, err, errlen) != 0) goto fail;
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(mcfg, "model_type");
        if (cJSON_IsString(mt)) {
            if (template_from_name(mt->valuestring, &tmpl) != 0) {
                snprintf(err, errlen, "%s: model_type \"%.40s\" has no tokenizer template "
                         "(expected bert, roberta or gpt2)", path, mt->valuestring);
                goto fail;
            }
        } else if (t->kind == TOKENIZER_WORDPIECE) {
            tmpl = TOK_TEMPLATE_BERT;
        } else {
            /* old RoBERTa configs have no model_type; its vocabulary has <s> */
            tmpl = tok_strmap_get(&t->vocab, "<s>", 3) >= 0 ? TOK_TEMPLATE_ROBERTA
                                                            : TOK_TEMPLATE_GPT2;
        }
    }
    t->template_kind = tmpl;

    if (t->kind == TOKENIZER_WORDPIECE && tcfg) {
        /* BertTokenizer(Fast) applies these over tokenizer.json's normalizer.
         * (transformers also forces its defaults when a key is absent; here
         * an absent key keeps what tokenizer.json says, except that
         * strip_accents, when not given, follows a given do_lower_case, and
         * always follows lowercase for a bare vocab.txt.) */
        const cJSON *lc = cJSON_GetObjectItemCaseSensitive(tcfg, "do_lower_case");
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(tcfg, "strip_accents");
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(tcfg, "tokenize_chinese_chars");
        if (t->bert_normalizer) {
            if (cJSON_IsBool(lc)) t->lowercase = cJSON_IsTrue(lc);
            if (cJSON_IsBool(cc)) t->handle_chinese_chars = cJSON_IsTrue(cc);
            if (cJSON_IsBool(sa)) t->strip_accents = cJSON_IsTrue(sa);
            else if (sa || cJSON_IsBool(lc) || !from_tokenizer_json)
                t->strip_accents = t->lowercase;
        }
    }
    if (t->kind == TOKENIZER_BPE && !from_tokenizer_json && tcfg)
        t->add_prefix_space = json_bool(tcfg, "add_prefix_space", t->add_prefix_space);

    /* 3. special-token names: the template's defaults, then the files */
    const char *pad, *cls, *sep, *mask, *unk;
    switch (tmpl) {
    case TOK_TEMPLATE_BERT:
        pad = "[PAD]", cls = "[CLS]", sep = "[SEP]", mask = "[MASK]", unk = "[UNK]";
        break;
    case TOK_TEMPLATE_ROBERTA:
        pad = "<pad>", cls = "<s>", sep = "</s>", mask = "<mask>", unk = "<unk>";
        break;
    default:
        pad = "<|endoftext|>", cls = NULL, sep = "<|endoftext|>", mask = NULL,
        unk = "<|endoftext|>";
        break;
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *c = k == 0 ? smap : tcfg;
        if (!c) continue;
        set_name(&pad, c, "pad_token");
        set_name(&unk, c, "unk_token");
        set_name(&mask, c, "mask_token");
        if (tmpl == TOK_TEMPLATE_GPT2) {
            set_name(&sep, c, "eos_token");
            if (!json_token_name(c, "pad_token") && json_token_name(c, "eos_token"))
                pad = json_token_name(c, "eos_token");
        } else {
            set_name(&cls, c, "cls_token");
            set_name(&sep, c, "sep_token");
        }
    }
    if (t->kind == TOKENIZER_WORDPIECE && !from_tokenizer_json)
        t->wp_unk_id = tok_strmap_get(&t->vocab, unk, strlen(unk));

    /* 4. added tokens: tokenizer.json's, then tokenizer_config.json's, then
     * (for vocabulary files) the special tokens the slow classes register */
    if (tcfg && load_added_tokens_json(t, cJSON_GetObjectItemCaseSensitive(tcfg,
                                       "added_tokens_decoder"), tcfg_path, "added_tokens_decoder",
                                       err, errlen) != 0)
        goto fail;
    if (!from_tokenizer_json) {
        const char *names[5] = {cls, sep, pad, unk, mask};
        for (int k = 0; k < 5; k++) {
            int32_t id = names[k] ? tok_strmap_get(&t->vocab, names[k], strlen(names[k])) : -1;
            if (id < 0) continue;
            /* RoBERTa's <mask> swallows the space before it ("Hello <mask>") */
            int lstrip = tmpl == TOK_TEMPLATE_ROBERTA && k == 4;
            if (add_added_token(t, names[k], id, lstrip, 0, 0, 0, 1, t->source, err, errlen) != 0)
                goto fail;
        }
    }
    if (finish_added(t, err, errlen) != 0) goto fail;

    t->pad_id = token_id(t, pad);
    t->cls_id = token_id(t, cls);
    t->sep_id = token_id(t, sep);
    t->mask_id = token_id(t, mask);
    t->unk_id = token_id(t, unk);
    if (tmpl != TOK_TEMPLATE_GPT2 && (t->cls_id < 0 || t->sep_id < 0)) {
        snprintf(err, errlen, "%s: the %s template needs %s and %s in the vocabulary", t->source,
                 tmpl == TOK_TEMPLATE_BERT ? "bert" : "roberta", cls ? cls : "?", sep ? sep : "?");
        goto fail;
    }
    if (t->kind == TOKENIZER_WORDPIECE) {
        tok_wordpiece_finish(t);
    } else if (tok_bpe_finish(t, err, errlen) != 0) {
        goto fail;
    }
    if (build_id_table(t, err, errlen) != 0) goto fail;
    t->wp_prefix_len = strlen(t->wp_prefix);

    cJSON_Delete(tcfg);
    cJSON_Delete(smap);
    cJSON_Delete(mcfg);
    *out = t;
    return 0;
fail:
    cJSON_Delete(tcfg);
    cJSON_Delete(smap);
    cJSON_Delete(mcfg);
    tokenizer_free(t);
    return -1;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    tok_strmap_free(&t->vocab);
    tok_pairmap_free(&t->merges);
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].match);
    }
    free(t->added);
    free(t->id_to_token);
    pcre2_code_free(t->re);
    free(t);
}

/* ============================================================== encode */

/* `tokenizers`' LongestFirst for a pair (not the slow classes' loop, which
 * takes one token at a time and differs on ties and odd budgets): with
 * n1 <= n2, keep the short one whole if the long one can still have at least
 * as much; otherwise split the budget in halves, the odd token going to the
 * originally longer sequence (to b when they are equally long). */
static void truncate_longest_first(int *na, int *nb, int budget) {
    if (*na + *nb <= budget) return;
    int n1 = *na, n2 = *nb, swap = 0;
    if (n1 > n2) {
        int x = n1; n1 = n2; n2 = x;
        swap = 1;
    }
    if (n1 > budget) n2 = n1;
    else n2 = n1 > budget - n1 ? n1 : budget - n1;
    if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
    }
    if (swap) {
        int x = n1; n1 = n2; n2 = x;
    }
    if (n1 < *na) *na = n1;
    if (n2 < *nb) *nb = n2;
}

int tokenizer_encode(const Tokenizer *t, const char *text_a, const char *text_b, int max_len,
                     int32_t **ids, int32_t **type_ids, int *n, char *err, size_t errlen) {
    if (!t || !text_a || !ids || !type_ids || !n) {
        snprintf(err, errlen, "tokenizer_encode: tokenizer, text_a and outputs must not be NULL");
        return -1;
    }
    *ids = *type_ids = NULL;
    *n = 0;
    TokIds a = {0}, b = {0};
    int rc = -1;
    if (encode_text(t, text_a, &a, "text_a", err, errlen) != 0) goto done;
    if (text_b && encode_text(t, text_b, &b, "text_b", err, errlen) != 0) goto done;

    int nspecial = 0;
    if (t->template_kind == TOK_TEMPLATE_BERT) nspecial = text_b ? 3 : 2;
    else if (t->template_kind == TOK_TEMPLATE_ROBERTA) nspecial = text_b ? 4 : 2;
    int na = a.n, nb = b.n;
    if (max_len > 0) {
        int budget = max_len - nspecial;
        if (budget < 0) {
            snprintf(err, errlen, "max_len %d is smaller than the %d special tokens", max_len,
                     nspecial);
            goto done;
        }
        if (text_b) truncate_longest_first(&na, &nb, budget);
        else if (na > budget) na = budget;
    }
    int total = na + nb + nspecial;
    int32_t *oi = malloc((size_t)(total ? total : 1) * sizeof *oi);
    int32_t *ot = malloc((size_t)(total ? total : 1) * sizeof *ot);
    if (!oi || !ot) {
        free(oi);
        free(ot);
        snprintf(err, errlen, "%s: out of memory", t->source);
        goto done;
    }
    int k = 0;
    /* type ids: bert marks b and its closing [SEP] with 1; roberta has a
     * single type; gpt2 gets 0 too, as tokenizer.h promises (HF's default
     * call returns no type ids for GPT-2 at all) */
    int tb = t->template_kind == TOK_TEMPLATE_BERT ? 1 : 0;
    if (t->template_kind != TOK_TEMPLATE_GPT2) oi[k] = t->cls_id, ot[k++] = 0;
    for (int i = 0; i < na; i++) oi[k] = a.v[i], ot[k++] = 0;
    if (t->template_kind != TOK_TEMPLATE_GPT2) oi[k] = t->sep_id, ot[k++] = 0;
    if (text_b) {
        if (t->template_kind == TOK_TEMPLATE_ROBERTA) oi[k] = t->sep_id, ot[k++] = 0;
        for (int i = 0; i < nb; i++) oi[k] = b.v[i], ot[k++] = tb;
        if (t->template_kind != TOK_TEMPLATE_GPT2) oi[k] = t->sep_id, ot[k++] = tb;
    }
    *ids = oi;
    *type_ids = ot;
    *n = k;
    rc = 0;
done:
    free(a.v);
    free(b.v);
    return rc;
}

int tokenizer_encode_plain(const Tokenizer *t, const char *text, int32_t **ids, int *n, char *err,
                           size_t errlen) {
    if (!t || !text || !ids || !n) {
        snprintf(err, errlen, "tokenizer_encode_plain: tokenizer, text and outputs must not be NULL");
        return -1;
    }
    *ids = NULL;
    *n = 0;
    TokIds a = {0};
    if (encode_text(t, text, &a, "text", err, errlen) != 0) {
        free(a.v);
        return -1;
    }
    if (!a.v) {
        a.v = malloc(sizeof *a.v); /* a valid, freeable pointer even when empty */
        if (!a.v) {
            snprintf(err, errlen, "%s: out of memory", t->source);
            return -1;
        }
    }
    *ids = a.v;
    *n = a.n;
    return 0;
}

/* The accessors tolerate NULL (-1 / 0), so a caller's error path that
 * prints a half-made setup cannot crash on them. */
TokenizerKind tokenizer_kind(const Tokenizer *t) { return t ? t->kind : TOKENIZER_WORDPIECE; }
int tokenizer_vocab_size(const Tokenizer *t) { return t ? t->n_ids : 0; }
int tokenizer_pad_id(const Tokenizer *t) { return t ? t->pad_id : -1; }
int tokenizer_cls_id(const Tokenizer *t) { return t ? t->cls_id : -1; }
int tokenizer_sep_id(const Tokenizer *t) { return t ? t->sep_id : -1; }
int tokenizer_mask_id(const Tokenizer *t) { return t ? t->mask_id : -1; }
int tokenizer_unk_id(const Tokenizer *t) { return t ? t->unk_id : -1; }

const char *tokenizer_id_to_token(const Tokenizer *t, int id) {
    if (!t || id < 0 || id >= t->n_ids) return NULL;
    return t->id_to_token[id];
}

static const TokAdded *added_of(const Tokenizer *t, int id) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return &t->added[i];
    return NULL;
}

char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, int n, int skip_special, char *err,
                       size_t errlen) {
    size_t cap = 64, len = 0;
    for (int i = 0; i < n; i++) {
        const char *s = tokenizer_id_to_token(t, ids[i]);
        if (!s) {
            snprintf(err, errlen, "token id %d at position %d is outside the vocabulary (%d ids)",
                     ids[i], i, t->n_ids);
            return NULL;
        }
        cap += strlen(s) + 2;
    }
    char *out = malloc(cap);
    if (!out) { snprintf(err, errlen, "out of memory"); return NULL; }
    for (int i = 0; i < n; i++) {
        const char *s = t->id_to_token[ids[i]];
        const TokAdded *ad = added_of(t, ids[i]);
        int special = ad ? ad->special : (ids[i] == t->cls_id || ids[i] == t->sep_id ||
                                          ids[i] == t->pad_id || ids[i] == t->mask_id);
        if (special && skip_special) continue;
        if (ad || t->kind == TOKENIZER_WORDPIECE) {
            /* added tokens are their content; WordPiece pieces join with a
             * space unless they continue a word */
            size_t sl = strlen(s);
            if (!ad && t->wp_prefix_len && strncmp(s, t->wp_prefix, t->wp_prefix_len) == 0) {
                s += t->wp_prefix_len;
                sl -= t->wp_prefix_len;
            } else if (t->kind == TOKENIZER_WORDPIECE && len > 0) {
                out[len++] = ' ';
            }
            memcpy(out + len, s, sl);
            len += sl;
            continue;
        }
        /* byte-level BPE: every character stands for one byte */
        const unsigned char *u = (const unsigned char *)s;
        size_t ul = strlen(s);
        while (ul > 0) {
            int32_t cp;
            int k = tok_utf8_decode(u, ul, &cp);
            int b = k > 0 ? tok_bpe_unicode_to_byte(cp) : -1;
            if (b < 0) {
                free(out);
                snprintf(err, errlen, "token %d (\"%s\") holds a character that stands for no byte",
                         ids[i], s);
                return NULL;
            }
            out[len++] = (char)b;
            u += k;
            ul -= (size_t)k;
        }
    }
    out[len] = 0;
    return out;
}
