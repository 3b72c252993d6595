/* config.json reader and writer for the bert, roberta and gpt2 families.
 *
 * Hugging Face configs are loose: old files omit model_type, GPT-2 uses its
 * own field names, optional fields may be null. Everything is mapped onto
 * one ModelConfig so model code never looks at JSON. The rules:
 *  - required shape fields must be present integers (else an error naming
 *    the file and the field);
 *  - optional fields take Hugging Face's defaults when absent or null;
 *  - a present field of the wrong JSON type is an error naming the field and
 *    the expected type, never silently defaulted. */
#include "engine/model_config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUPPORTED_TYPES "bert, roberta, gpt2"

/* Reads a whole small file into a NUL-terminated buffer. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > (size_t)64 << 20) {
                snprintf(err, errlen, "%s: larger than 64 MB, not a config file", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Field access context: the file name for messages. */
typedef struct {
    const cJSON *root;
    const char *file;
    char *err;
    size_t errlen;
} Fields;

/* 1 when the key is present and not null. */
static int has(const Fields *F, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(F->root, key);
    return v && !cJSON_IsNull(v);
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an unknown JSON value";
}

/* Integer field. required: absent or null is an error; otherwise *out keeps
 * its default. */
static int get_int(const Fields *F, const char *key, int required, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(F->root, key);
    if (!v || cJSON_IsNull(v)) {
        if (!required) return 0;
        snprintf(F->err, F->errlen, "%s: required field \"%s\" is %s", F->file, key,
                 v ? "null" : "missing");
        return -1;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < INT_MIN || d > INT_MAX) {
        snprintf(F->err, F->errlen, "%s: field \"%s\" must be an integer, got %s", F->file, key,
                 cJSON_IsNumber(v) ? "a non-integer number" : json_type_name(v));
        return -1;
    }
    *out = (int)d;
    return 0;
}

static int get_float(const Fields *F, const char *key, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(F->root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) {
        snprintf(F->err, F->errlen, "%s: field \"%s\" must be a number, got %s", F->file, key,
                 json_type_name(v));
        return -1;
    }
    *out = (float)v->valuedouble;
    return 0;
}

static int get_string(const Fields *F, const char *key, char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(F->root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) {
        snprintf(F->err, F->errlen, "%s: field \"%s\" must be a string, got %s", F->file, key,
                 json_type_name(v));
        return -1;
    }
    if (strlen(v->valuestring) >= cap) {
        snprintf(F->err, F->errlen, "%s: field \"%s\" value '%.40s...' is too long (max %zu)",
                 F->file, key, v->valuestring, cap - 1);
        return -1;
    }
    snprintf(out, cap, "%s", v->valuestring);
    return 0;
}

static int ci_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

/* Family named in s: "roberta" is tested before "bert" because it contains
 * it. Returns NULL when s names none of ours. */
static const char *family_in(const char *s) {
    if (ci_contains(s, "roberta")) return "roberta";
    if (ci_contains(s, "gpt2") || ci_contains(s, "gpt-2")) return "gpt2";
    if (ci_contains(s, "bert")) return "bert";
    return NULL;
}

/* Makes dir absolute (against the working directory) and removes ".", ".."
 * and repeated slashes lexically, so "." or "models/roberta-base/" still
 * yield a meaningful last component. (realpath is XSI, outside our
 * _POSIX_C_SOURCE; symlinks do not matter for a name heuristic.) */
static void normalise_path(const char *dir, char *out, size_t cap) {
    char in[PATH_MAX * 2];
    char cwd[PATH_MAX];
    if (dir[0] != '/' && getcwd(cwd, sizeof cwd)) snprintf(in, sizeof in, "%s/%s", cwd, dir);
    else snprintf(in, sizeof in, "%s", dir);
    size_t n = 0;
    out[0] = 0;
    char *save = NULL;
    for (char *tok = strtok_r(in, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0) continue;
        if (strcmp(tok, "..") == 0) {
            char *s = strrchr(out, '/');
            if (s) *s = 0, n = (size_t)(s - out);
            continue;
        }
        int w = snprintf(out + n, cap - n, "/%s", tok);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
    if (!out[0]) snprintf(out, cap, "/");
}

/* The name that says what a model directory holds. Usually its base name;
 * inside a Hugging Face cache snapshot (.../models--org--name/snapshots/<rev>)
 * the base name is a commit hash, so the models--... component is used. */
static void dir_identity(const char *dir, char *out, size_t cap) {
    char tmp[PATH_MAX];
    normalise_path(dir, tmp, sizeof tmp);
    char *base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    char *models = strstr(tmp, "/models--");
    char *snap = strstr(tmp, "/snapshots/");
    if (models && snap && models < snap) {
        *snap = 0;
        snprintf(out, cap, "%s", models + 1);
        return;
    }
    snprintf(out, cap, "%s", base);
}

/* Decides model_type when config.json has none: the directory's name, then
 * the "architectures" list, then bert (the oldest configs are BERT's). */
static const char *infer_type(const cJSON *root, const char *dir) {
    char id[PATH_MAX];
    dir_identity(dir, id, sizeof id);
    const char *t = family_in(id);
    if (t) return t;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (cJSON_IsArray(arch)) {
        for (const cJSON *a = arch->child; a; a = a->next)
            if (cJSON_IsString(a) && (t = family_in(a->valuestring))) return t;
    }
    return "bert";
}

static int load_bert(ModelConfig *c, const Fields *F) {
    /* Hugging Face defaults for the optional fields (BertConfig/RobertaConfig). */
    c->type_vocab_size = 2;
    c->layer_norm_eps = 1e-12f;
    c->hidden_dropout_prob = 0.1f;
    c->attention_probs_dropout_prob = 0.1f;
    snprintf(c->hidden_act, sizeof c->hidden_act, "gelu");
    if (get_int(F, "vocab_size", 1, &c->vocab_size) || get_int(F, "hidden_size", 1, &c->hidden_size) ||
        get_int(F, "num_hidden_layers", 1, &c->num_hidden_layers) ||
        get_int(F, "num_attention_heads", 1, &c->num_attention_heads) ||
        get_int(F, "intermediate_size", 1, &c->intermediate_size) ||
        get_int(F, "max_position_embeddings", 1, &c->max_position_embeddings) ||
        get_int(F, "type_vocab_size", 0, &c->type_vocab_size) ||
        get_int(F, "pad_token_id", 0, &c->pad_token_id) ||
        get_float(F, "layer_norm_eps", &c->layer_norm_eps) ||
        get_float(F, "hidden_dropout_prob", &c->hidden_dropout_prob) ||
        get_float(F, "attention_probs_dropout_prob", &c->attention_probs_dropout_prob) ||
        get_string(F, "hidden_act", c->hidden_act, sizeof c->hidden_act))
        return -1;
    return 0;
}

static int load_gpt2(ModelConfig *c, const Fields *F) {
    /* GPT2Config defaults. */
    c->type_vocab_size = 0;
    c->layer_norm_eps = 1e-5f;
    c->hidden_dropout_prob = 0.1f;
    c->attention_probs_dropout_prob = 0.1f;
    snprintf(c->hidden_act, sizeof c->hidden_act, "gelu_new");
    c->intermediate_size = 0;
    if (get_int(F, "vocab_size", 1, &c->vocab_size) || get_int(F, "n_embd", 1, &c->hidden_size) ||
        get_int(F, "n_layer", 1, &c->num_hidden_layers) ||
        get_int(F, "n_head", 1, &c->num_attention_heads) ||
        get_int(F, "n_positions", 1, &c->max_position_embeddings) ||
        get_int(F, "n_inner", 0, &c->intermediate_size) ||
        get_int(F, "pad_token_id", 0, &c->pad_token_id) ||
        get_float(F, "layer_norm_epsilon", &c->layer_norm_eps) ||
        get_float(F, "resid_pdrop", &c->hidden_dropout_prob) ||
        get_float(F, "attn_pdrop", &c->attention_probs_dropout_prob) ||
        get_string(F, "activation_function", c->hidden_act, sizeof c->hidden_act))
        return -1;
    /* n_inner null means "4 * n_embd" in GPT2MLP. */
    if (!has(F, "n_inner")) c->intermediate_size = 4 * c->hidden_size;
    return 0;
}

/* Shape sanity: the model code divides by heads and allocates by these. */
static int check_dims(const ModelConfig *c, const char *file, char *err, size_t errlen) {
    const int gpt = strcmp(c->model_type, "gpt2") == 0;
    struct {
        const char *name;
        int v;
    } pos[] = {
        {"vocab_size", c->vocab_size},
        {gpt ? "n_embd" : "hidden_size", c->hidden_size},
        {gpt ? "n_layer" : "num_hidden_layers", c->num_hidden_layers},
        {gpt ? "n_head" : "num_attention_heads", c->num_attention_heads},
        {gpt ? "n_inner" : "intermediate_size", c->intermediate_size},
        {gpt ? "n_positions" : "max_position_embeddings", c->max_position_embeddings},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        if (pos[i].v <= 0) {
            snprintf(err, errlen, "%s: field \"%s\" must be a positive integer, got %d", file,
                     pos[i].name, pos[i].v);
            return -1;
        }
    }
    if (c->hidden_size % c->num_attention_heads != 0) {
        snprintf(err, errlen, "%s: hidden size %d is not divisible by the number of heads %d", file,
                 c->hidden_size, c->num_attention_heads);
        return -1;
    }
    if (c->type_vocab_size < 0) {
        snprintf(err, errlen, "%s: field \"type_vocab_size\" must be >= 0, got %d", file,
                 c->type_vocab_size);
        return -1;
    }
    if (c->pad_token_id >= c->vocab_size) {
        snprintf(err, errlen, "%s: pad_token_id %d is outside the vocabulary (vocab_size %d)", file,
                 c->pad_token_id, c->vocab_size);
        return -1;
    }
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps)) {
        snprintf(err, errlen, "%s: layer norm epsilon must be a positive number", file);
        return -1;
    }
    return 0;
}

int model_config_load(ModelConfig *cfg, const char *model_dir, char *err, size_t errlen) {
    char file[PATH_MAX];
    if ((size_t)snprintf(file, sizeof file, "%s/config.json", model_dir) >= sizeof file) {
        snprintf(err, errlen, "%s: path too long", model_dir);
        return -1;
    }
    char *text = slurp(file, NULL, err, errlen);
    if (!text) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    if (!root) {
        /* Report a line number: configs are hand-edited. */
        int line = 1;
        for (const char *p = text; end && p < end && *p; p++)
            if (*p == '\n') line++;
        snprintf(err, errlen, "%s: not valid JSON (error near line %d)", file, line);
        free(text);
        return -1;
    }
    free(text);
    int rc = -1;
    ModelConfig c;
    memset(&c, 0, sizeof c);
    Fields F = {root, file, err, errlen};
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: expected a JSON object at the top level", file);
        goto done;
    }

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *type;
    if (!mt || cJSON_IsNull(mt)) {
        type = infer_type(root, model_dir);
    } else if (!cJSON_IsString(mt)) {
        snprintf(err, errlen, "%s: field \"model_type\" must be a string, got %s", file,
                 json_type_name(mt));
        goto done;
    } else {
        type = mt->valuestring;
    }
    if (strcmp(type, "bert") && strcmp(type, "roberta") && strcmp(type, "gpt2")) {
        snprintf(err, errlen, "%s: unsupported model_type '%s' (supported: " SUPPORTED_TYPES ")",
                 file, type);
        goto done;
    }
    snprintf(c.model_type, sizeof c.model_type, "%s", type);

    /* pad defaults: RoBERTa's <pad> is 1 (its position ids start at pad+1),
     * BERT's [PAD] is 0, GPT-2 has no pad token. */
    if (strcmp(type, "gpt2") == 0) {
        c.pad_token_id = -1;
        if (load_gpt2(&c, &F) != 0) goto done;
    } else {
        c.pad_token_id = strcmp(type, "roberta") == 0 ? 1 : 0;
        if (load_bert(&c, &F) != 0) goto done;
    }

    /* num_labels wins over id2label when both exist, as it is the explicit
     * statement; id2label alone gives its size. */
    c.num_labels = 0;
    if (get_int(&F, "num_labels", 0, &c.num_labels) != 0) goto done;
    if (!has(&F, "num_labels")) {
        const cJSON *idl = cJSON_GetObjectItemCaseSensitive(root, "id2label");
        if (idl && !cJSON_IsNull(idl)) {
            if (!cJSON_IsObject(idl)) {
                snprintf(err, errlen, "%s: field \"id2label\" must be an object, got %s", file,
                         json_type_name(idl));
                goto done;
            }
            c.num_labels = cJSON_GetArraySize(idl);
        }
    }
    if (c.num_labels < 0) {
        snprintf(err, errlen, "%s: field \"num_labels\" must be >= 0, got %d", file, c.num_labels);
        goto done;
    }
    if (check_dims(&c, file, err, errlen) != 0) goto done;
    *cfg = c;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

/* ---- writer ---- */

/* Shortest decimal that reads back as the same float, so 1e-12f is written
 * "1e-12" rather than its double expansion 9.9999999600419720e-13. */
static void fmt_float(float v, char *buf, size_t cap) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

static int add_raw_float(cJSON *o, const char *key, float v) {
    char buf[64];
    if (!isfinite(v)) return -1;
    fmt_float(v, buf, sizeof buf);
    return cJSON_AddRawToObject(o, key, buf) ? 0 : -1;
}

static int add_int(cJSON *o, const char *key, int v) {
    return cJSON_AddNumberToObject(o, key, (double)v) ? 0 : -1;
}

static int add_str(cJSON *o, const char *key, const char *v) {
    return cJSON_AddStringToObject(o, key, v) ? 0 : -1;
}

/* id2label/label2id with Hugging Face's placeholder names LABEL_i; this is
 * how transformers itself records num_labels in a saved config. */
static int add_labels(cJSON *o, int n) {
    if (n <= 0) return 0;
    cJSON *id2 = cJSON_AddObjectToObject(o, "id2label");
    cJSON *l2i = cJSON_AddObjectToObject(o, "label2id");
    if (!id2 || !l2i) return -1;
    for (int i = 0; i < n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "%d", i);
        snprintf(v, sizeof v, "LABEL_%d", i);
        if (!cJSON_AddStringToObject(id2, k, v) || !cJSON_AddNumberToObject(l2i, v, i)) return -1;
    }
    return 0;
}

static int build_bert(const ModelConfig *c, cJSON *o) {
    const int rob = strcmp(c->model_type, "roberta") == 0;
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    if (!arch) return -1;
    const char *an = rob ? (c->num_labels > 0 ? "RobertaForSequenceClassification" : "RobertaModel")
                         : (c->num_labels > 0 ? "BertForSequenceClassification" : "BertModel");
    cJSON_AddItemToArray(arch, cJSON_CreateString(an));
    int r = add_str(o, "model_type", c->model_type) | add_int(o, "vocab_size", c->vocab_size) |
            add_int(o, "hidden_size", c->hidden_size) |
            add_int(o, "num_hidden_layers", c->num_hidden_layers) |
            add_int(o, "num_attention_heads", c->num_attention_heads) |
            add_int(o, "intermediate_size", c->intermediate_size) |
            add_str(o, "hidden_act", c->hidden_act) |
            add_raw_float(o, "hidden_dropout_prob", c->hidden_dropout_prob) |
            add_raw_float(o, "attention_probs_dropout_prob", c->attention_probs_dropout_prob) |
            add_int(o, "max_position_embeddings", c->max_position_embeddings) |
            add_int(o, "type_vocab_size", c->type_vocab_size) |
            add_raw_float(o, "initializer_range", 0.02f) |
            add_raw_float(o, "layer_norm_eps", c->layer_norm_eps) |
            add_int(o, "pad_token_id", c->pad_token_id);
    if (rob) r |= add_int(o, "bos_token_id", 0) | add_int(o, "eos_token_id", 2);
    r |= add_str(o, "position_embedding_type", "absolute") | add_labels(o, c->num_labels);
    return r ? -1 : 0;
}

static int build_gpt2(const ModelConfig *c, cJSON *o) {
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    if (!arch) return -1;
    cJSON_AddItemToArray(arch, cJSON_CreateString(c->num_labels > 0 ? "GPT2ForSequenceClassification"
                                                                     : "GPT2LMHeadModel"));
    int r = add_str(o, "model_type", "gpt2") | add_int(o, "vocab_size", c->vocab_size) |
            add_int(o, "n_embd", c->hidden_size) | add_int(o, "n_layer", c->num_hidden_layers) |
            add_int(o, "n_head", c->num_attention_heads) |
            add_int(o, "n_positions", c->max_position_embeddings) |
            add_int(o, "n_ctx", c->max_position_embeddings) |
            add_str(o, "activation_function", c->hidden_act) |
            add_raw_float(o, "resid_pdrop", c->hidden_dropout_prob) |
            add_raw_float(o, "embd_pdrop", c->hidden_dropout_prob) |
            add_raw_float(o, "attn_pdrop", c->attention_probs_dropout_prob) |
            add_raw_float(o, "layer_norm_epsilon", c->layer_norm_eps) |
            add_raw_float(o, "initializer_range", 0.02f);
    /* n_inner null is GPT-2's way of saying 4*n_embd; keep that spelling
     * when it applies so the file looks like the hub's. */
    if (c->intermediate_size == 4 * c->hidden_size) r |= cJSON_AddNullToObject(o, "n_inner") ? 0 : 1;
    else r |= add_int(o, "n_inner", c->intermediate_size);
    /* <|endoftext|> is both bos and eos in GPT-2's own vocabulary. */
    if (c->vocab_size == 50257) r |= add_int(o, "bos_token_id", 50256) | add_int(o, "eos_token_id", 50256);
    if (c->pad_token_id >= 0) r |= add_int(o, "pad_token_id", c->pad_token_id);
    r |= add_labels(o, c->num_labels);
    return r ? -1 : 0;
}

int model_config_save(const ModelConfig *cfg, const char *model_dir, char *err, size_t errlen) {
    const char *t = cfg->model_type;
    if (strcmp(t, "bert") && strcmp(t, "roberta") && strcmp(t, "gpt2")) {
        snprintf(err, errlen, "cannot save config: unsupported model_type '%s' (supported: "
                 SUPPORTED_TYPES ")", t);
        return -1;
    }
    if (check_dims(cfg, model_dir, err, errlen) != 0) return -1;
    if (!isfinite(cfg->hidden_dropout_prob) || !isfinite(cfg->attention_probs_dropout_prob)) {
        snprintf(err, errlen, "%s: dropout probabilities must be finite", model_dir);
        return -1;
    }
    if (mkdir(model_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", model_dir, strerror(errno));
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        snprintf(err, errlen, "%s: out of memory", model_dir);
        return -1;
    }
    int r = strcmp(t, "gpt2") == 0 ? build_gpt2(cfg, o) : build_bert(cfg, o);
    char *text = r == 0 ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory building config.json", model_dir);
        return -1;
    }

    /* Same crash-safety as every other writer: temp file, fsync, rename. */
    char file[PATH_MAX], tmp[PATH_MAX + 32];
    if ((size_t)snprintf(file, sizeof file, "%s/config.json", model_dir) >= sizeof file) {
        snprintf(err, errlen, "%s: path too long", model_dir);
        free(text);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create %s: %s", file, tmp, strerror(errno));
        free(text);
        return -1;
    }
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    free(text);
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, file) != 0) {
        snprintf(err, errlen, "%s: cannot rename %s into place: %s", file, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
