#include "engine/generate.h"

#include "engine/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The next token from host logits: argmax, or a draw from the tempered
 * softmax of the top_k best. */
static int32_t pick(const float *logits, int V, const GenerateOptions *o, uint64_t *rng) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (o->temperature <= 0.0f) return best;
    /* threshold: the k-th largest logit (k = 0 or >= V keeps all) */
    float thr = -INFINITY;
    if (o->top_k > 0 && o->top_k < V) {
        float *tmp = malloc(sizeof(float) * V);
        if (tmp) {
            memcpy(tmp, logits, sizeof(float) * V);
            qsort(tmp, (size_t)V, sizeof(float), desc);
            thr = tmp[o->top_k - 1];
            free(tmp);
        }
    }
    double sum = 0.0;
    for (int v = 0; v < V; v++)
        if (logits[v] >= thr) sum += exp((logits[v] - logits[best]) / o->temperature);
    double u = rng_uniform(rng) * sum, acc = 0.0;
    for (int v = 0; v < V; v++) {
        if (logits[v] < thr) continue;
        acc += exp((logits[v] - logits[best]) / o->temperature);
        if (acc >= u) return v;
    }
    return best;
}

int lm_generate(Model *m, const int32_t *prompt, int n_prompt, const GenerateOptions *o,
                int32_t **out, int *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    if (!m->is_gpt2 || m->num_labels > 0) {
        snprintf(err, errlen, "generation needs a gpt2 language model (this is a %s%s)",
                 m->cfg.model_type, m->num_labels > 0 ? " with a classification head" : "");
        return -1;
    }
    if (n_prompt < 1) {
        snprintf(err, errlen, "an empty prompt: give at least one token");
        return -1;
    }
    if (n_prompt + o->max_new > m->max_seq) {
        snprintf(err, errlen, "prompt %d + %d new tokens exceed the model's allocation of %d",
                 n_prompt, o->max_new, m->max_seq);
        return -1;
    }
    const Backend *be = m->be;
    const int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(n_prompt + o->max_new));
    float *logits = malloc(sizeof(float) * V);
    float *dev = be->alloc(sizeof(float) * V);
    *out = malloc(sizeof(int32_t) * (size_t)(o->max_new > 0 ? o->max_new : 1));
    if (!seq || !logits || !dev || !*out) {
        free(seq); free(logits); free(*out); *out = NULL;
        if (dev) be->release(dev);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(seq, prompt, sizeof(int32_t) * n_prompt);
    uint64_t rng = rng_derive(o->seed, 77);
    int n = n_prompt, rc = 0;
    while (n < n_prompt + o->max_new) {
        Batch bt = {.B = 1, .T = n, .ids = seq};
        if (model_forward(m, &bt, 0, 0, err, errlen) != 0) { rc = -1; break; }
        const float *h_last = model_hidden(m) + (size_t)(n - 1) * C;
        be->matmul(0, 1, 1, V, C, 1.0f, h_last, C, m->wte, C, 0.0f, dev, V);
        be->download(logits, dev, sizeof(float) * V);
        int32_t next = pick(logits, V, o, &rng);
        seq[n++] = next;
        (*out)[(*n_out)++] = next;
        if (next == o->eos_id) break;
    }
    free(seq);
    free(logits);
    be->release(dev);
    if (rc != 0) { free(*out); *out = NULL; *n_out = 0; }
    return rc;
}
