/* The singular-value spectrum a session stores for its heatmap, computed
 * from the exported state rather than from the live model: a Run does not
 * expose its Model (engine/run_internal.h is engine's own), and the blobs
 * hold everything spectrum_compute reads except the frozen W0, which only
 * DoRA's direction change needs (left out here). The numbers are the
 * engine's: lowrank_singular_values for lora/dora forms, adapter_lambda and
 * adapter_orth_reg on the CPU backend for svd forms, so the stored rows
 * equal what the run's on_spectrum reported at the same step. */
#include "sessions/session_internal.h"

#include "engine/adapter.h"
#include "engine/model.h"
#include "engine/spectrum.h"
#include "kernels/backend.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const StateBlob *find_blob(const RunState *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->blobs[i].name, name)) return &st->blobs[i];
    return NULL;
}

/* "encoder.layer.3.attention.self.query" or "h.3.attn.c_attn.q" ->
 * "L3.query", the names the engine's spectrum rows use (TARGET_NAMES);
 * anything else keeps its path. */
static void row_name(const char *prefix, char *out, size_t cap) {
    int layer, target;
    if (target_of_path(prefix, &layer, &target) == 0)
        snprintf(out, cap, "L%d.%s", layer, TARGET_NAMES[target]);
    else
        snprintf(out, cap, "%s", prefix);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static LambdaParam lambda_of_config(const TrainConfig *cfg) {
    if (!strcmp(cfg->lambda, "softmax")) return LAMBDA_SOFTMAX;
    if (!strcmp(cfg->lambda, "sigmoid")) return LAMBDA_SIGMOID;
    if (!strcmp(cfg->lambda, "auto") && !strcmp(cfg->method, "bilora")) return LAMBDA_SOFTMAX;
    return LAMBDA_REAL;
}

cJSON *session_spectrum_from_state(const RunState *st, const TrainConfig *cfg, long step) {
    const int r = cfg->rank;
    if (r <= 0) return NULL;
    const Backend *cpu = backend_cpu();
    const StateBlob *m0 = find_blob(st, "dora.m0");
    size_t m0_off = 0;
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddNumberToObject(spec, "step", (double)step);
    cJSON *rows = cJSON_AddArrayToObject(spec, "rows");
    float *values = malloc(sizeof(float) * r), *scratch = malloc(sizeof(float) * r * r);
    if (!spec || !rows || !values || !scratch) goto fail;
    for (int i = 0; i < st->n; i++) {
        const StateBlob *A = &st->blobs[i];
        size_t len = strlen(A->name);
        if (strncmp(A->name, "param.", 6) != 0 || len < 13 || strcmp(A->name + len - 7, ".lora_A") != 0)
            continue;
        char prefix[160], key[200], name[192];
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(len - 13), A->name + 6);
        snprintf(key, sizeof(key), "param.%s.lora_B", prefix);
        const StateBlob *B = find_blob(st, key);
        snprintf(key, sizeof(key), "param.%s.lora_E", prefix);
        const StateBlob *E = find_blob(st, key);
        snprintf(key, sizeof(key), "param.%s.lora_magnitude_vector", prefix);
        const StateBlob *M = find_blob(st, key);
        if (!B || A->count % r || B->count % r || A->type != BLOB_F32 || B->type != BLOB_F32) continue;
        int in = (int)(A->count / r), out = (int)(B->count / r);
        double orth = NAN, mag = NAN;
        if (E && E->count == (size_t)r) {
            /* svd forms: |λ| sorted, and the orthogonality residual */
            Adapter ad = {.form = ADAPTER_SVD, .lambda_param = lambda_of_config(cfg), .in = in,
                          .out = out, .rank = r, .A = A->data, .B = B->data, .E = E->data,
                          .small = scratch};
            adapter_lambda(cpu, &ad, values);
            for (int j = 0; j < r; j++) values[j] = fabsf(values[j]);
            qsort(values, r, sizeof(float), cmp_desc);
            orth = sqrt(fmax(adapter_orth_reg(cpu, &ad, 0.0f), 0.0));
        } else {
            if (lowrank_singular_values(B->data, A->data, out, in, r, cfg->alpha / (float)r, values) != 0)
                for (int j = 0; j < r; j++) values[j] = NAN;
            if (M && M->count == (size_t)out) {
                /* dora: ‖m − m0‖ / ‖m0‖, m0 concatenated in the same order */
                if (m0 && m0_off + out <= m0->count) {
                    const float *m = M->data, *z = (const float *)m0->data + m0_off;
                    double d = 0, n0 = 0;
                    for (int j = 0; j < out; j++) {
                        double x = m[j] - z[j];
                        d += x * x;
                        n0 += (double)z[j] * z[j];
                    }
                    mag = sqrt(d / (n0 > 0 ? n0 : 1));
                }
                m0_off += out;
            }
        }
        row_name(prefix, name, sizeof(name));
        cJSON *row = cJSON_CreateObject();
        if (!row) goto fail;
        cJSON_AddItemToArray(rows, row);
        cJSON_AddStringToObject(row, "name", name);
        cJSON *v = cJSON_AddArrayToObject(row, "values");
        for (int j = 0; j < r; j++)
            cJSON_AddItemToArray(v, isfinite(values[j]) ? cJSON_CreateNumber(values[j]) : cJSON_CreateNull());
        if (isfinite(orth)) cJSON_AddNumberToObject(row, "orth", orth);
        if (isfinite(mag)) cJSON_AddNumberToObject(row, "magnitude_change", mag);
    }
    free(values);
    free(scratch);
    if (cJSON_GetArraySize(rows) == 0) {
        cJSON_Delete(spec);
        return NULL;
    }
    return spec;
fail:
    free(values);
    free(scratch);
    cJSON_Delete(spec);
    return NULL;
}
