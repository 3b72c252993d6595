/* sacreBLEU's corpus BLEU (see bleu.h). The 13a tokenizer's four regular
 * expressions run through PCRE2's global substitution, which replaces
 * non-overlapping matches left to right as Python's re.sub does. They run
 * on bytes, not code points: every character they name is ASCII, so on
 * valid UTF-8 the result is the same, and a generated text with a broken
 * byte sequence is tokenized rather than refused. Whitespace (rstrip,
 * split) is Python's str.isspace set, Unicode spaces included. The
 * expressions are compiled once per process. N-grams are
 * strings of their tokens joined by single spaces (tokens hold no spaces, so
 * the string also tells the order); counts are kept in sorted arrays. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "datasets/bleu.h"

#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 13a tokenization ---- */

static const struct { const char *re, *rep; } RULES[] = {
    {"([\\{-\\~\\[-\\` -\\&\\(-\\+\\:-\\@\\/])", " $1 "}, /* symbols */
    {"([^0-9])([\\.,])", "$1 $2 "},   /* period and comma unless preceded by a digit */
    {"([\\.,])([^0-9])", " $1 $2"},   /* ... unless followed by a digit */
    {"([0-9])(-)", "$1 $2 "},         /* dash after a digit */
};
#define NRULES (sizeof(RULES) / sizeof(RULES[0]))

static pcre2_code *compiled[NRULES];
static pthread_once_t compiled_once = PTHREAD_ONCE_INIT;
static void compile_rules(void) {
    for (size_t i = 0; i < NRULES; i++) {
        int ec;
        PCRE2_SIZE eo;
        compiled[i] = pcre2_compile((PCRE2_SPTR)RULES[i].re, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    }
}

/* The length of the Python whitespace character at s (0: none): ASCII
 * \t\n\v\f\r, space and \x1c-\x1f; U+0085, U+00A0, U+1680, U+2000-200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. */
static int space_len(const unsigned char *s) {
    if ((*s >= 9 && *s <= 13) || (*s >= 0x1c && *s <= 0x20)) return 1;
    if (s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;
    if (s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    return 0;
}

/* Length of line without its trailing Python whitespace. */
static size_t rstrip_len(const char *line) {
    size_t end = 0;
    for (size_t i = 0; line[i];) {
        int k = space_len((const unsigned char *)line + i);
        if (k) { i += k; continue; }
        i++;
        end = i;
    }
    return end;
}

static char *replace_all(const char *s, const char *from, const char *to) {
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + lf, from)) n++;
    char *out = malloc(strlen(s) + n * (lt > lf ? lt - lf : 0) + 1);
    if (!out) return NULL;
    char *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) { strcpy(o, p); break; }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, lt);
        o += lt;
        p = q + lf;
    }
    return out;
}

static char *substitute(pcre2_code *re, const char *s, const char *rep) {
    size_t cap = strlen(s) * 3 + 16;
    for (int tries = 0; tries < 4; tries++, cap *= 2) {
        char *out = malloc(cap);
        if (!out) return NULL;
        PCRE2_SIZE olen = cap;
        int rc = pcre2_substitute(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL, NULL,
                                  (PCRE2_SPTR)rep, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &olen);
        if (rc >= 0) return out;
        free(out);
        if (rc != PCRE2_ERROR_NOMEMORY) return NULL;
        cap = olen + 1;
    }
    return NULL;
}

char *bleu_tokenize_13a(const char *line) {
    /* the language-independent part */
    static const char *const pairs[][2] = {{"<skipped>", ""}, {"-\n", ""}, {"\n", " "}};
    static const char *const ents[][2] = {{"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}};
    /* sacrebleu strips trailing whitespace first (rstrip), then pads with spaces */
    size_t n = rstrip_len(line);
    char *s = malloc(n + 3);
    if (!s) return NULL;
    s[0] = ' ';
    memcpy(s + 1, line, n);
    s[n + 1] = ' ';
    s[n + 2] = 0;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]) && s; i++) {
        char *t = replace_all(s, pairs[i][0], pairs[i][1]);
        free(s);
        s = t;
    }
    if (s && strchr(s, '&'))
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && s; i++) {
            char *t = replace_all(s, ents[i][0], ents[i][1]);
            free(s);
            s = t;
        }
    pthread_once(&compiled_once, compile_rules);
    for (size_t i = 0; i < NRULES && s; i++) {
        if (!compiled[i]) { free(s); return NULL; }
        char *t = substitute(compiled[i], s, RULES[i].rep);
        free(s);
        s = t;
    }
    if (!s) return NULL;
    /* one space between tokens, none at the ends (Python's str.split()) */
    char *o = s;
    int in = 0;
    for (char *p = s; *p;) {
        int k = space_len((const unsigned char *)p);
        if (k) { in = 0; p += k; continue; }
        if (!in && o != s) *o++ = ' ';
        in = 1;
        *o++ = *p++;
    }
    *o = 0;
    return s;
}

/* ---- n-gram counts ---- */

typedef struct {
    char *key;
    long count;
} Gram;

typedef struct {
    Gram *g;
    int n, cap;
} Grams;

static int cmp_gram(const void *a, const void *b) {
    return strcmp(((const Gram *)a)->key, ((const Gram *)b)->key);
}

static void grams_free(Grams *g) {
    for (int i = 0; i < g->n; i++) free(g->g[i].key);
    free(g->g);
    memset(g, 0, sizeof(*g));
}

static int grams_push(Grams *g, const char *start, size_t len, long count) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        Gram *ng = realloc(g->g, sizeof(Gram) * cap);
        if (!ng) return -1;
        g->g = ng;
        g->cap = cap;
    }
    char *k = malloc(len + 1);
    if (!k) return -1;
    memcpy(k, start, len);
    k[len] = 0;
    g->g[g->n++] = (Gram){k, count};
    return 0;
}

/* Sorts and merges equal keys: counts summed (sum) or maxed. */
static void grams_reduce(Grams *g, int sum) {
    if (g->n == 0) return;
    qsort(g->g, g->n, sizeof(Gram), cmp_gram);
    int w = 0;
    for (int i = 1; i < g->n; i++) {
        if (strcmp(g->g[i].key, g->g[w].key) == 0) {
            g->g[w].count = sum ? g->g[w].count + g->g[i].count
                                : (g->g[i].count > g->g[w].count ? g->g[i].count : g->g[w].count);
            free(g->g[i].key);
        } else {
            g->g[++w] = g->g[i];
        }
    }
    g->n = w + 1;
}

/* Every n-gram (1..4) of a tokenized line, counted; *len: its tokens. */
static int count_grams(const char *tok, Grams *out, long *len) {
    memset(out, 0, sizeof(*out));
    int nt = 0;
    for (const char *p = tok; *p;) { /* token starts */
        nt++;
        const char *q = strchr(p, ' ');
        if (!q) break;
        p = q + 1;
    }
    if (!*tok) nt = 0;
    *len = nt;
    const char **st = malloc(sizeof(char *) * (nt ? nt : 1));
    if (!st) return -1;
    int k = 0;
    for (const char *p = tok; k < nt;) {
        st[k++] = p;
        const char *q = strchr(p, ' ');
        if (!q) break;
        p = q + 1;
    }
    for (int n = 1; n <= BLEU_ORDER; n++)
        for (int i = 0; i + n <= nt; i++) {
            const char *e = strchr(st[i + n - 1], ' ');
            size_t l = e ? (size_t)(e - st[i]) : strlen(st[i]);
            if (grams_push(out, st[i], l, 1) != 0) { free(st); grams_free(out); return -1; }
        }
    free(st);
    grams_reduce(out, 1);
    return 0;
}

static int order_of(const char *key) {
    int n = 1;
    for (; *key; key++) n += *key == ' ';
    return n;
}

int bleu_corpus(const char *const *hyps, int n, const char *const *refs, const int *ref_start,
                BleuScore *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < n; i++) {
        if (ref_start[i + 1] <= ref_start[i]) {
            snprintf(err, errlen, "BLEU: hypothesis %d has no reference", i);
            return -1;
        }
        char *th = bleu_tokenize_13a(hyps[i]);
        Grams hg, rg = {0};
        long hl, best = -1;
        if (!th || count_grams(th, &hg, &hl) != 0) {
            free(th);
            snprintf(err, errlen, "BLEU: out of memory");
            return -1;
        }
        free(th);
        int fail = 0;
        for (int r = ref_start[i]; r < ref_start[i + 1] && !fail; r++) {
            char *tr = bleu_tokenize_13a(refs[r]);
            Grams one;
            long rl;
            if (!tr || count_grams(tr, &one, &rl) != 0) { free(tr); fail = 1; break; }
            free(tr);
            long d = labs(hl - rl), bd = labs(hl - best);
            if (best < 0 || d < bd || (d == bd && rl < best)) best = rl;
            for (int k = 0; k < one.n && !fail; k++) {
                if (grams_push(&rg, one.g[k].key, strlen(one.g[k].key), one.g[k].count) != 0) fail = 1;
            }
            grams_free(&one);
        }
        if (fail) {
            grams_free(&hg);
            grams_free(&rg);
            snprintf(err, errlen, "BLEU: out of memory");
            return -1;
        }
        grams_reduce(&rg, 0); /* the maximum count over the references */
        for (int k = 0; k < hg.n; k++) {
            int o = order_of(hg.g[k].key) - 1;
            out->total[o] += hg.g[k].count;
            Gram key = {hg.g[k].key, 0};
            Gram *hit = rg.n ? bsearch(&key, rg.g, rg.n, sizeof(Gram), cmp_gram) : NULL;
            if (hit) out->correct[o] += hg.g[k].count < hit->count ? hg.g[k].count : hit->count;
        }
        out->sys_len += hl;
        out->ref_len += best;
        grams_free(&hg);
        grams_free(&rg);
    }
    /* sacrebleu's compute_bleu with smooth_method 'exp' */
    out->bp = out->sys_len < out->ref_len ? (out->sys_len > 0 ? exp(1.0 - (double)out->ref_len / out->sys_len) : 0.0)
                                          : 1.0;
    int any = 0;
    for (int k = 0; k < BLEU_ORDER; k++) any |= out->correct[k] != 0;
    if (!any) return 0;
    double smooth = 1.0, logsum = 0.0;
    for (int k = 0; k < BLEU_ORDER; k++) {
        if (out->total[k] == 0) break;
        if (out->correct[k] == 0) {
            smooth *= 2;
            out->precisions[k] = 100.0 / (smooth * out->total[k]);
        } else {
            out->precisions[k] = 100.0 * out->correct[k] / out->total[k];
        }
    }
    for (int k = 0; k < BLEU_ORDER; k++) /* sacrebleu's my_log: log(0) = -9999999999 */
        logsum += out->precisions[k] == 0.0 ? -9999999999.0 : log(out->precisions[k]);
    out->score = out->bp * exp(logsum / BLEU_ORDER);
    return 0;
}
