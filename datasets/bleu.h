/* Corpus BLEU as sacreBLEU 2.x computes it with its defaults (BLEU() /
 * `sacrebleu -m bleu`): the 13a tokenization (mteval-v13a, as WMT), n-grams
 * up to 4, the 'exp' smoothing (mteval's), no lowercasing; each hypothesis
 * is clipped against the maximum count of an n-gram over its references,
 * and its reference length is the closest one (ties to the shorter). This is
 * the E2E challenge's headline metric as the LoRA paper reports it. */
#ifndef BILORA_DATASETS_BLEU_H
#define BILORA_DATASETS_BLEU_H

#include <stddef.h>

#define BLEU_ORDER 4

typedef struct {
    double score;                   /* 0..100 */
    double bp;                      /* brevity penalty */
    double precisions[BLEU_ORDER];  /* 0..100 */
    long correct[BLEU_ORDER], total[BLEU_ORDER];
    long sys_len, ref_len;
} BleuScore;

/* The 13a tokenization of line: a malloc'd string of single-space-separated
 * tokens (what sacrebleu's Tokenizer13a returns); NULL on out of memory or a
 * regular-expression failure. */
char *bleu_tokenize_13a(const char *line);

/* hyps[i] against refs[ref_start[i] .. ref_start[i+1]) for i < n (ref_start
 * holds n + 1 offsets; a hypothesis needs at least one reference). 0, or -1
 * with a message. */
int bleu_corpus(const char *const *hyps, int n, const char *const *refs, const int *ref_start,
                BleuScore *out, char *err, size_t errlen);

#endif
