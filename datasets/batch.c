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
        free(s->ex[i].targets);
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
    int lm = set->ex[idx[0]].targets != NULL;
    out->targets = lm ? malloc(sizeof(int32_t) * B * T) : NULL;
    if (!out->ids || !out->type_ids || !out->mask || !out->labels || (lm && !out->targets)) {
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
            if (lm) out->targets[i] = t < e->n && e->targets ? e->targets[t] : -1;
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
    free(b->targets);
    memset(b, 0, sizeof(*b));
}

int encode_data_to_text_prompt(const Tokenizer *tok, const char *mr, int32_t **ids, int *n,
                               char *err, size_t errlen) {
    size_t len = strlen(mr);
    char *p = malloc(len + 4);
    if (!p) { snprintf(err, errlen, "out of memory"); return -1; }
    memcpy(p, mr, len);
    memcpy(p + len, " ||", 4);
    int rc = tokenizer_encode_plain(tok, p, ids, n, err, errlen);
    free(p);
    return rc;
}

int encode_data_to_text(const Tokenizer *tok, const char *const *mr, const char *const *ref,
                        const int *line, int n, int max_len, int eos_id, EncodedSet *out,
                        char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->ex = calloc(n ? n : 1, sizeof(EncodedExample));
    if (!out->ex) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int i = 0; i < n; i++) {
        EncodedExample *e = &out->ex[i];
        int32_t *p = NULL, *c = NULL;
        int np = 0, nc = 0;
        char e2[512];
        size_t rl = strlen(ref[i]);
        char *cr = malloc(rl + 2);
        if (!cr) { snprintf(err, errlen, "out of memory"); goto fail; }
        cr[0] = ' ';
        memcpy(cr + 1, ref[i], rl + 1);
        int rc = encode_data_to_text_prompt(tok, mr[i], &p, &np, e2, sizeof(e2));
        const char *field = "mr";
        if (rc == 0) {
            field = "ref";
            rc = tokenizer_encode_plain(tok, cr, &c, &nc, e2, sizeof(e2));
        }
        free(cr);
        if (rc != 0) {
            snprintf(err, errlen, "record at line %d, field %s: %s", line[i], field, e2);
            free(p); free(c);
            goto fail;
        }
        int total = np + nc + 1;
        if (max_len > 0 && np >= max_len) {
            snprintf(err, errlen, "record at line %d: its meaning representation and the \" ||\" separator "
                     "are %d tokens, which leaves no room for the reference within --max-seq-len %d",
                     line[i], np, max_len);
            free(p); free(c);
            goto fail;
        }
        int keep = total;
        if (max_len > 0 && total > max_len) { keep = max_len; out->truncated++; }
        e->n = keep;
        e->prompt_n = np;
        e->ids = malloc(sizeof(int32_t) * keep);
        e->type_ids = calloc(keep, sizeof(int32_t));
        e->targets = malloc(sizeof(int32_t) * keep);
        if (!e->ids || !e->type_ids || !e->targets) {
            snprintf(err, errlen, "out of memory");
            free(p); free(c);
            out->n = i + 1;
            goto fail;
        }
        /* the full sequence: prompt, completion, end of text */
        for (int t = 0; t < keep; t++)
            e->ids[t] = t < np ? p[t] : t < np + nc ? c[t - np] : eos_id;
        /* position t predicts token t+1 when that token is in the completion;
         * a cut sequence still predicts its last kept token's successor */
        for (int t = 0; t < keep; t++) {
            int next = t + 1;
            e->targets[t] = next < np || next >= total ? -1
                            : next < np + nc ? c[next - np] : eos_id;
        }
        free(p); free(c);
        e->label = 0;
        if (e->n > out->longest) out->longest = e->n;
        out->n = i + 1;
    }
    return 0;
fail: /* examples [0, out->n) are built (a half-built one included) */
    encoded_set_free(out);
    return -1;
}
