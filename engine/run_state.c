/* Export and import of a run's complete state, and the configuration's
 * JSON form. */
#include "engine/run_internal.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration <-> JSON: one table, so names cannot drift ---- */

typedef enum { F_STR, F_INT, F_LONG, F_U64, F_FLOAT } FieldType;
typedef struct {
    const char *key;
    FieldType type;
    size_t offset, size;
} Field;

#define FIELD(name, type) {#name, type, offsetof(TrainConfig, name), sizeof(((TrainConfig *)0)->name)}
static const Field FIELDS[] = {
    FIELD(model, F_STR), FIELD(task, F_STR), FIELD(data, F_STR), FIELD(method, F_STR),
    FIELD(rank, F_INT), FIELD(alpha, F_FLOAT), FIELD(lora_dropout, F_FLOAT), FIELD(targets, F_STR),
    FIELD(lambda, F_STR), FIELD(svd_init, F_STR), FIELD(lower_lr, F_FLOAT), FIELD(upper_lr, F_FLOAT),
    FIELD(lower_weight_decay, F_FLOAT), FIELD(upper_weight_decay, F_FLOAT),
    FIELD(warmup_ratio, F_FLOAT), FIELD(max_grad_norm, F_FLOAT), FIELD(batch_size, F_INT),
    FIELD(max_seq_len, F_INT), FIELD(epochs, F_INT), FIELD(steps, F_LONG), FIELD(eval_every, F_LONG),
    FIELD(spectrum_every, F_LONG), FIELD(eval_train_examples, F_INT), FIELD(seed, F_U64),
    FIELD(eval_generate, F_INT),
    FIELD(device, F_STR), FIELD(overfit_batch, F_INT), FIELD(split_ratio, F_FLOAT),
    FIELD(lower_steps, F_INT), FIELD(upper_steps, F_INT), FIELD(gamma1, F_FLOAT),
    FIELD(gamma2, F_FLOAT), FIELD(hypergrad, F_STR), FIELD(darts_radius, F_FLOAT),
    FIELD(darts_xi, F_FLOAT), FIELD(neumann_steps, F_INT), FIELD(neumann_alpha, F_FLOAT),
    FIELD(phase2_steps, F_LONG), FIELD(phase2_lr, F_FLOAT), FIELD(target_rank, F_INT),
    FIELD(tinit, F_FLOAT), FIELD(tfinal, F_FLOAT), FIELD(delta_t, F_INT),
};
#define N_FIELDS (int)(sizeof(FIELDS) / sizeof(FIELDS[0]))

cJSON *train_config_to_json(const TrainConfig *c) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < N_FIELDS; i++) {
        const Field *f = &FIELDS[i];
        const char *p = (const char *)c + f->offset;
        char buf[32];
        switch (f->type) {
        case F_STR: cJSON_AddStringToObject(j, f->key, p); break;
        case F_INT: cJSON_AddNumberToObject(j, f->key, *(const int *)p); break;
        case F_LONG: cJSON_AddNumberToObject(j, f->key, (double)*(const long *)p); break;
        case F_U64: /* 64-bit seeds do not fit a JSON number exactly */
            snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)p);
            cJSON_AddStringToObject(j, f->key, buf);
            break;
        case F_FLOAT: {
            /* %.9g round-trips a float exactly */
            snprintf(buf, sizeof(buf), "%.9g", *(const float *)p);
            cJSON_AddRawToObject(j, f->key, buf);
            break;
        }
        }
    }
    return j;
}

int train_config_from_json(const cJSON *j, TrainConfig *c, char *err, size_t errlen) {
    train_config_defaults(c);
    if (!cJSON_IsObject(j)) { snprintf(err, errlen, "config: expected an object"); return -1; }
    for (const cJSON *it = j->child; it; it = it->next) {
        const Field *f = NULL;
        for (int i = 0; i < N_FIELDS; i++) if (!strcmp(FIELDS[i].key, it->string)) f = &FIELDS[i];
        if (!f) { snprintf(err, errlen, "config: unknown key \"%s\"", it->string); return -1; }
        char *p = (char *)c + f->offset;
        if (f->type == F_STR || f->type == F_U64) {
            if (!cJSON_IsString(it)) { snprintf(err, errlen, "config: \"%s\" must be a string", f->key); return -1; }
            if (f->type == F_STR) {
                if (strlen(it->valuestring) >= f->size) {
                    snprintf(err, errlen, "config: \"%s\" is too long", f->key);
                    return -1;
                }
                memcpy(p, it->valuestring, strlen(it->valuestring) + 1);
            } else {
                char *end;
                unsigned long long v = strtoull(it->valuestring, &end, 10);
                if (!*it->valuestring || *end) {
                    snprintf(err, errlen, "config: \"%s\" must be a decimal integer string", f->key);
                    return -1;
                }
                *(uint64_t *)p = v;
            }
            continue;
        }
        if (!cJSON_IsNumber(it)) { snprintf(err, errlen, "config: \"%s\" must be a number", f->key); return -1; }
        double v = it->valuedouble;
        if (f->type == F_INT) *(int *)p = (int)v;
        else if (f->type == F_LONG) *(long *)p = (long)v;
        else *(float *)p = (float)v;
    }
    return 0;
}

/* ---- run state ---- */

static int add_blob(RunState *s, const char *name, BlobType type, size_t count, const void *src,
                    const Backend *be) {
    StateBlob *b = realloc(s->blobs, sizeof(*b) * (s->n + 1));
    if (!b) return -1;
    s->blobs = b;
    StateBlob *x = &s->blobs[s->n];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->type = type;
    x->count = count;
    x->data = malloc(4 * (count ? count : 1));
    if (!x->data) return -1;
    if (count) {
        if (be) be->download(x->data, src, 4 * count);
        else memcpy(x->data, src, 4 * count);
    }
    s->n++;
    return 0;
}

static void add_u64(cJSON *j, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddStringToObject(j, key, buf);
}

int run_state_export(Run *r, RunState *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const Backend *be = r->model->be;
    cJSON *j = cJSON_CreateObject();
    out->json = j;
    cJSON_AddItemToObject(j, "config_now", train_config_to_json(&r->cfg));
    cJSON_AddNumberToObject(j, "step", (double)r->step);
    cJSON_AddNumberToObject(j, "phase", r->phase);
    cJSON_AddNumberToObject(j, "total_steps", (double)r->total);
    cJSON_AddNumberToObject(j, "n_train", r->n_train);
    cJSON_AddNumberToObject(j, "d1_size", r->d1.n);
    cJSON_AddNumberToObject(j, "d2_size", r->d2.n);
    cJSON_AddNumberToObject(j, "cursor_all", r->all.cursor);
    cJSON_AddNumberToObject(j, "cursor_d1", r->d1.cursor);
    cJSON_AddNumberToObject(j, "cursor_d2", r->d2.cursor);
    add_u64(j, "rng_all", r->all.rng);
    add_u64(j, "rng_d1", r->d1.rng);
    add_u64(j, "rng_d2", r->d2.rng);
    cJSON_AddNumberToObject(j, "adamw_lower_t", (double)r->opt_lower.t);
    cJSON_AddNumberToObject(j, "adamw_upper_t", (double)r->opt_upper.t);
    char buf[40];
    snprintf(buf, sizeof(buf), "%.17g", r->last_reg);
    cJSON_AddRawToObject(j, "last_reg", isfinite(r->last_reg) ? buf : "null");
    cJSON *ch = cJSON_AddArrayToObject(j, "changes");
    for (int i = 0; i < r->n_changes; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "step", (double)r->changes[i].step);
        cJSON_AddStringToObject(c, "key", r->changes[i].key);
        cJSON_AddStringToObject(c, "value", r->changes[i].value);
        cJSON_AddItemToArray(ch, c);
    }
    /* the metric history: steps [step, loss, upper_loss], evals [step, split, loss, metric] */
    cJSON *hs = cJSON_AddArrayToObject(j, "history_steps");
    for (int i = 0; i < r->n_hist_steps; i++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)r->hist_steps[i].step));
        cJSON_AddItemToArray(a, isfinite(r->hist_steps[i].loss) ? cJSON_CreateNumber(r->hist_steps[i].loss) : cJSON_CreateNull());
        cJSON_AddItemToArray(a, isfinite(r->hist_steps[i].upper_loss) ? cJSON_CreateNumber(r->hist_steps[i].upper_loss) : cJSON_CreateNull());
        cJSON_AddItemToArray(hs, a);
    }
    cJSON *he = cJSON_AddArrayToObject(j, "history_evals");
    for (int i = 0; i < r->n_hist_evals; i++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)r->hist_evals[i].step));
        cJSON_AddItemToArray(a, cJSON_CreateString(r->hist_evals[i].split));
        cJSON_AddItemToArray(a, isfinite(r->hist_evals[i].loss) ? cJSON_CreateNumber(r->hist_evals[i].loss) : cJSON_CreateNull());
        cJSON_AddItemToArray(a, isfinite(r->hist_evals[i].metric) ? cJSON_CreateNumber(r->hist_evals[i].metric) : cJSON_CreateNull());
        for (int k = 0; k < r->hist_evals[i].n_more; k++) /* the other metrics follow the headline */
            cJSON_AddItemToArray(a, isfinite(r->hist_evals[i].more[k]) ? cJSON_CreateNumber(r->hist_evals[i].more[k])
                                                                        : cJSON_CreateNull());
        cJSON_AddItemToArray(he, a);
    }
    int fail = 0;
    const ParamList *pl = &r->model->params;
    for (int i = 0; i < pl->n; i++) {
        if (pl->t[i].group == GROUP_FROZEN) continue;
        char name[200];
        snprintf(name, sizeof(name), "param.%s", pl->t[i].name);
        fail |= add_blob(out, name, BLOB_F32, pl->t[i].numel, pl->t[i].data, be);
    }
    fail |= add_blob(out, "adamw.lower.m", BLOB_F32, r->opt_lower.numel, r->opt_lower.m, be);
    fail |= add_blob(out, "adamw.lower.v", BLOB_F32, r->opt_lower.numel, r->opt_lower.v, be);
    fail |= add_blob(out, "adamw.upper.m", BLOB_F32, r->opt_upper.numel, r->opt_upper.m, be);
    fail |= add_blob(out, "adamw.upper.v", BLOB_F32, r->opt_upper.numel, r->opt_upper.v, be);
    fail |= add_blob(out, "order.all", BLOB_I32, r->all.n, r->all.idx, NULL);
    fail |= add_blob(out, "order.d1", BLOB_I32, r->d1.n, r->d1.idx, NULL);
    fail |= add_blob(out, "order.d2", BLOB_I32, r->d2.n, r->d2.idx, NULL);
    if (r->init_lower) fail |= add_blob(out, "init_lower", BLOB_F32, r->hw.nl, r->init_lower, NULL);
    if (r->m0) {
        size_t n = 0;
        for (int i = 0; i < pl->n; i++)
            if (strstr(pl->t[i].name, "lora_magnitude_vector")) n += pl->t[i].numel;
        fail |= add_blob(out, "dora.m0", BLOB_F32, n, r->m0, NULL);
    }
    if (r->ipt_avg) {
        size_t n = param_list_numel(pl, GROUP_LOWER);
        fail |= add_blob(out, "adalora.ipt", BLOB_F32, n, r->ipt_avg, NULL);
        fail |= add_blob(out, "adalora.unc", BLOB_F32, n, r->unc_avg, NULL);
    }
    if (fail) {
        run_state_free(out);
        snprintf(err, errlen, "out of memory exporting the run's state");
        return -1;
    }
    return 0;
}

void run_state_free(RunState *s) {
    for (int i = 0; i < s->n; i++) free(s->blobs[i].data);
    free(s->blobs);
    cJSON_Delete(s->json);
    memset(s, 0, sizeof(*s));
}

static int get_num(const cJSON *j, const char *key, double *v, char *err, size_t errlen) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x)) {
        snprintf(err, errlen, "run state: \"%s\" is missing or not a number", key);
        return -1;
    }
    *v = x->valuedouble;
    return 0;
}

static int get_u64(const cJSON *j, const char *key, uint64_t *v, char *err, size_t errlen) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    char *end;
    if (!cJSON_IsString(x) || !*x->valuestring ||
        (*v = strtoull(x->valuestring, &end, 10), *end)) {
        snprintf(err, errlen, "run state: \"%s\" is missing or not a decimal string", key);
        return -1;
    }
    return 0;
}

/* A blob read through the reader into backend memory. */
static int read_to_backend(const Backend *be, BlobReader get, void *ctx, const char *name,
                           size_t count, float *dst, char *err, size_t errlen) {
    float *h = malloc(sizeof(float) * (count ? count : 1));
    if (!h) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = get(ctx, name, BLOB_F32, count, h, err, errlen);
    if (rc == 0 && count) be->upload(dst, h, sizeof(float) * count);
    free(h);
    return rc;
}

int run_state_import(Run *r, const cJSON *j, BlobReader get, void *ctx, char *err, size_t errlen) {
    const Backend *be = r->model->be;
    double v[12];
    const char *keys[] = {"step", "phase", "total_steps", "n_train", "d1_size", "d2_size",
                          "cursor_all", "cursor_d1", "cursor_d2", "adamw_lower_t", "adamw_upper_t"};
    for (int i = 0; i < 11; i++)
        if (get_num(j, keys[i], &v[i], err, errlen) != 0) return -1;
    if ((long)v[2] != r->total || (int)v[3] != r->n_train) {
        snprintf(err, errlen, "run state: it was saved for %ld steps over %d examples, but this "
                 "configuration gives %ld steps over %d (the data or settings changed)",
                 (long)v[2], (int)v[3], r->total, r->n_train);
        return -1;
    }
    int d1n = (int)v[4], d2n = (int)v[5];
    if (d1n < 0 || d2n < 0 || d1n + d2n != r->n_train || v[6] < 0 || v[6] > r->n_train ||
        v[7] < 0 || v[7] > d1n || v[8] < 0 || v[8] > d2n || v[0] < 0 || v[0] > r->total) {
        snprintf(err, errlen, "run state: counters out of range (step %g, D1 %d, D2 %d)", v[0], d1n, d2n);
        return -1;
    }
    TrainConfig now;
    if (train_config_from_json(cJSON_GetObjectItemCaseSensitive(j, "config_now"), &now, err, errlen) != 0 ||
        train_config_check(&now, err, errlen) != 0)
        return -1;
    uint64_t ra, r1, r2;
    if (get_u64(j, "rng_all", &ra, err, errlen) || get_u64(j, "rng_d1", &r1, err, errlen) ||
        get_u64(j, "rng_d2", &r2, err, errlen))
        return -1;
    /* blobs first: nothing changes unless everything reads */
    const ParamList *pl = &r->model->params;
    for (int i = 0; i < pl->n; i++) {
        if (pl->t[i].group == GROUP_FROZEN) continue;
        char name[200];
        snprintf(name, sizeof(name), "param.%s", pl->t[i].name);
        if (read_to_backend(be, get, ctx, name, pl->t[i].numel, pl->t[i].data, err, errlen)) return -1;
    }
    if (read_to_backend(be, get, ctx, "adamw.lower.m", r->opt_lower.numel, r->opt_lower.m, err, errlen) ||
        read_to_backend(be, get, ctx, "adamw.lower.v", r->opt_lower.numel, r->opt_lower.v, err, errlen) ||
        read_to_backend(be, get, ctx, "adamw.upper.m", r->opt_upper.numel, r->opt_upper.m, err, errlen) ||
        read_to_backend(be, get, ctx, "adamw.upper.v", r->opt_upper.numel, r->opt_upper.v, err, errlen))
        return -1;
    if (get(ctx, "order.all", BLOB_I32, r->n_train, r->all.idx, err, errlen) ||
        get(ctx, "order.d1", BLOB_I32, d1n, r->d1.idx, err, errlen) ||
        get(ctx, "order.d2", BLOB_I32, d2n, r->d2.idx, err, errlen))
        return -1;
    if (r->init_lower && get(ctx, "init_lower", BLOB_F32, r->hw.nl, r->init_lower, err, errlen)) return -1;
    if (r->m0) {
        size_t n = 0;
        for (int i = 0; i < pl->n; i++)
            if (strstr(pl->t[i].name, "lora_magnitude_vector")) n += pl->t[i].numel;
        if (get(ctx, "dora.m0", BLOB_F32, n, r->m0, err, errlen)) return -1;
    }
    if (r->ipt_avg) {
        size_t n = param_list_numel(pl, GROUP_LOWER);
        if (get(ctx, "adalora.ipt", BLOB_F32, n, r->ipt_avg, err, errlen) ||
            get(ctx, "adalora.unc", BLOB_F32, n, r->unc_avg, err, errlen))
            return -1;
    }
    for (int i = 0; i < r->n_train; i++)
        if (r->all.idx[i] < 0 || r->all.idx[i] >= r->train.n) {
            snprintf(err, errlen, "run state: order.all holds an example index out of range");
            return -1;
        }
    /* the hot settings as they were at the save */
    r->cfg = now;
    hypergrad_parse(now.hypergrad, &r->ho.method);
    r->eval_every = now.eval_every > 0 ? now.eval_every : r->epoch_steps;
    r->spectrum_every = now.spectrum_every > 0 ? now.spectrum_every : r->spectrum_default;
    r->step = (long)v[0];
    r->phase = (int)v[1];
    r->d1.n = d1n;
    r->d2.n = d2n;
    r->all.cursor = (int)v[6];
    r->d1.cursor = (int)v[7];
    r->d2.cursor = (int)v[8];
    r->all.rng = ra;
    r->d1.rng = r1;
    r->d2.rng = r2;
    r->opt_lower.t = (long)v[9];
    r->opt_upper.t = (long)v[10];
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "last_reg");
    r->last_reg = cJSON_IsNumber(lr) ? lr->valuedouble : NAN;
    /* the change log and the history */
    r->n_changes = 0;
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "changes");
    const cJSON *c;
    cJSON_ArrayForEach(c, ch) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "step");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "key");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(c, "value");
        if (!cJSON_IsNumber(s) || !cJSON_IsString(k) || !cJSON_IsString(val)) continue;
        if (r->n_changes == r->cap_changes) {
            int cap = r->cap_changes ? 2 * r->cap_changes : 16;
            RunChange *nc = realloc(r->changes, sizeof(*nc) * cap);
            if (!nc) break;
            r->changes = nc;
            r->cap_changes = cap;
        }
        RunChange *x = &r->changes[r->n_changes++];
        x->step = (long)s->valuedouble;
        snprintf(x->key, sizeof(x->key), "%s", k->valuestring);
        snprintf(x->value, sizeof(x->value), "%s", val->valuestring);
    }
    r->n_hist_steps = 0;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(j, "history_steps");
    cJSON_ArrayForEach(c, hs) {
        if (cJSON_GetArraySize(c) != 3) continue;
        if (r->n_hist_steps == r->cap_hist_steps) {
            int cap = r->cap_hist_steps ? 2 * r->cap_hist_steps : 256;
            StepRecord *h = realloc(r->hist_steps, sizeof(*h) * cap);
            if (!h) break;
            r->hist_steps = h;
            r->cap_hist_steps = cap;
        }
        const cJSON *a = cJSON_GetArrayItem(c, 1), *b = cJSON_GetArrayItem(c, 2);
        r->hist_steps[r->n_hist_steps++] = (StepRecord){
            (long)cJSON_GetArrayItem(c, 0)->valuedouble, cJSON_IsNumber(a) ? (float)a->valuedouble : NAN,
            cJSON_IsNumber(b) ? (float)b->valuedouble : NAN};
    }
    r->n_hist_evals = 0;
    const cJSON *he = cJSON_GetObjectItemCaseSensitive(j, "history_evals");
    cJSON_ArrayForEach(c, he) {
        int size = cJSON_GetArraySize(c);
        if (size < 4 || size > 3 + METRICS_MAX) continue;
        if (r->n_hist_evals == r->cap_hist_evals) {
            int cap = r->cap_hist_evals ? 2 * r->cap_hist_evals : 64;
            EvalRecord *h = realloc(r->hist_evals, sizeof(*h) * cap);
            if (!h) break;
            r->hist_evals = h;
            r->cap_hist_evals = cap;
        }
        EvalRecord *x = &r->hist_evals[r->n_hist_evals++];
        x->step = (long)cJSON_GetArrayItem(c, 0)->valuedouble;
        const cJSON *sp = cJSON_GetArrayItem(c, 1), *lo = cJSON_GetArrayItem(c, 2), *me = cJSON_GetArrayItem(c, 3);
        snprintf(x->split, sizeof(x->split), "%s", cJSON_IsString(sp) ? sp->valuestring : "?");
        x->loss = cJSON_IsNumber(lo) ? (float)lo->valuedouble : NAN;
        x->metric = cJSON_IsNumber(me) ? (float)me->valuedouble : NAN;
        x->n_more = size - 4;
        for (int k = 0; k < x->n_more; k++) {
            const cJSON *v = cJSON_GetArrayItem(c, 4 + k);
            x->more[k] = cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
        }
    }
    /* bidora phase 2 was entered before the save: its optimizer is the fresh one */
    return 0;
}
