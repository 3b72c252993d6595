#include "datasets/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int encode_glue(const Tokenizer *tok, const GlueSplit *split, int max_len, EncodedSet *out,
                char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->ex = calloc(split->n ? split->n : 1, sizeof(EncodedExample));
    if (!out->ex) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int i = 0; i < split->n; i++) {
        const GlueExample *g = &split->ex[i];
        EncodedExample *e = &out->ex[i];
        char e2[512];
        if (tokenizer_encode(tok, g->text_a, g->text_b, max_len, &e->ids, &e->type_ids, &e->n, e2,
                             sizeof(e2)) != 0) {
            snprintf(err, errlen, "example at line %d: %s", g->line, e2);
            out->n = i;
            encoded_set_free(out);
            return -1;
        }
        /* at the limit: counted as truncated (an exact fit is rare) */
        if (e->n >= max_len && max_len > 0) out->truncated++;
        e->label = g->label;
        if (e->n > out->longest) out->longest = e->n;
        out->n = i + 1;
    }
    return 0;
}

void encoded_set_free(EncodedSet *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->ex[i].ids);
        free(s->ex[i].type_ids);
    }
    free(s->ex);
    memset(s, 0, sizeof(*s));
}

int batch_build(const EncodedSet *set, const int *idx, int B, int pad_id, Batch *out) {
    memset(out, 0, sizeof(*out));
    if (B <= 0) return -1;
    int T = 1;
    for (int b = 0; b < B; b++)
        if (set->ex[idx[b]].n > T) T = set->ex[idx[b]].n;
    out->B = B;
    out->T = T;
    out->ids = malloc(sizeof(int32_t) * B * T);
    out->type_ids = calloc((size_t)B * T, sizeof(int32_t));
    out->mask = calloc((size_t)B * T, sizeof(float));
    out->labels = malloc(sizeof(float) * B);
    if (!out->ids || !out->type_ids || !out->mask || !out->labels) {
        batch_free(out);
        return -1;
    }
    for (int b = 0; b < B; b++) {
        const EncodedExample *e = &set->ex[idx[b]];
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            if (t < e->n) {
                out->ids[i] = e->ids[t];
                out->type_ids[i] = e->type_ids ? e->type_ids[t] : 0;
                out->mask[i] = 1.0f;
            } else {
                out->ids[i] = pad_id;
            }
        }
        out->labels[b] = e->label;
    }
    return 0;
}

void batch_free(Batch *b) {
    free(b->ids);
    free(b->type_ids);
    free(b->mask);
    free(b->labels);
    memset(b, 0, sizeof(*b));
}
