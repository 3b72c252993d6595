/* Byte-level BPE (GPT-2, RoBERTa): GPT-2's pre-tokenization pattern, the
 * byte -> printable-character table, and merges applied lowest rank first,
 * as the `tokenizers` ByteLevel pre-tokenizer + BPE model do. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tokenizer_internal.h"

/* ---------------------------------------------------------------- merges */

int tok_bpe_add_merge(Tokenizer *t, const char *left, size_t llen, const char *right,
                      size_t rlen, int32_t rank, const char *where, char *err, size_t errlen) {
    int32_t a = tok_strmap_get(&t->vocab, left, llen);
    int32_t b = tok_strmap_get(&t->vocab, right, rlen);
    if (a < 0 || b < 0) {
        snprintf(err, errlen, "%s: merge token '%.*s' is not in the vocabulary", where,
                 (int)(a < 0 ? llen : rlen), a < 0 ? left : right);
        return -1;
    }
    char buf[256];
    char *joined = llen + rlen < sizeof buf ? buf : malloc(llen + rlen + 1);
    if (!joined) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    memcpy(joined, left, llen);
    memcpy(joined + llen, right, rlen);
    int32_t m = tok_strmap_get(&t->vocab, joined, llen + rlen);
    if (m < 0) {
        snprintf(err, errlen, "%s: merged token '%.*s' is not in the vocabulary", where,
                 (int)(llen + rlen), joined);
        if (joined != buf) free(joined);
        return -1;
    }
    if (joined != buf) free(joined);
    /* a repeated merge keeps its later rank, as `tokenizers` does */
    if (tok_pairmap_put(&t->merges, a, b, rank, m) != 0) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    return 0;
}

int tok_bpe_read_merges_txt(Tokenizer *t, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (tok_pairmap_init(&t->merges, 65536) != 0) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rank = 0, rc = 0, pending_blank = 0;
    char where[4200];
    while ((got = getline(&line, &cap, f)) != -1) {
        lineno++;
        size_t n = (size_t)got;
        if (n && line[n - 1] == '\n') n--;
        if (n && line[n - 1] == '\r') n--;
        if (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        /* blank lines are accepted only at the end of the file (an editor's
         * extra newline); in the middle they would shift every later rank */
        if (n == 0) {
            if (!pending_blank) pending_blank = lineno;
            continue;
        }
        if (pending_blank) {
            snprintf(err, errlen, "%s: line %d: empty line (expected 'left right')", path,
                     pending_blank);
            rc = -1;
            break;
        }
        char *sp = memchr(line, ' ', n);
        if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line))) {
            snprintf(err, errlen,
                     "%s: line %d: malformed merge '%.*s' (expected two tokens separated by one space)",
                     path, lineno, (int)(n > 60 ? 60 : n), line);
            rc = -1;
            break;
        }
        snprintf(where, sizeof where, "%s: line %d", path, lineno);
        if (tok_bpe_add_merge(t, line, (size_t)(sp - line), sp + 1, n - (size_t)(sp + 1 - line),
                              rank, where, err, errlen) != 0) {
            rc = -1;
            break;
        }
        rank++;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* --------------------------------------------------------- pre-tokenizer */

/* GPT-2's pattern, with \s spelled out as the Unicode White_Space set:
 * `tokenizers` runs it with Oniguruma, whose \s is White_Space, while PCRE2
 * 10.42's \s under UCP leaves out U+0085; spelling it out makes the two agree
 * whatever the PCRE2 version. (?!\S) becomes (?![^WS]). */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS
    "])|[" WS "]+";

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map to U+0100.. in byte order, so every byte has a
 * visible character and the vocabulary never holds raw control bytes. */
static int32_t byte_to_unicode(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int k = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
    return 256 + k;
}

int tok_bpe_unicode_to_byte(int32_t cp) {
    for (int b = 0; b < 256; b++)
        if (byte_to_unicode(b) == cp) return b;
    return -1;
}

int tok_bpe_finish(Tokenizer *t, char *err, size_t errlen) {
    for (int b = 0; b < 256; b++) {
        char u[4];
        int len = tok_utf8_encode(byte_to_unicode(b), u);
        t->byte_token[b] = tok_strmap_get(&t->vocab, u, (size_t)len);
    }
    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        snprintf(err, errlen, "internal: GPT-2 pattern does not compile at offset %zu: %s",
                 (size_t)eoff, (const char *)msg);
        return -1;
    }
    /* JIT is a speed-up only; the interpreter gives the same matches */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return 0;
}

/* ------------------------------------------------------------- the model */

/* Merges one pre-token's byte symbols: repeatedly apply the adjacent pair of
 * lowest rank (leftmost on ties), which is what `tokenizers`' priority queue
 * and GPT-2's encoder.py both compute. rank[i] caches the pair (i, i+1), so
 * each merge costs two map look-ups and one linear scan. */
static int bpe_piece(const Tokenizer *t, const unsigned char *s, size_t n, TokIds *out,
                     int32_t *sym, int32_t *rank, int32_t *merged, char *err, size_t errlen) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_token[s[i]];
        if (id < 0) {
            snprintf(err, errlen, "%s: byte 0x%02X has no token in the vocabulary", t->source,
                     s[i]);
            return -1;
        }
        sym[k++] = id;
    }
    for (size_t i = 0; i + 1 < k; i++)
        if (!tok_pairmap_get(&t->merges, sym[i], sym[i + 1], &rank[i], &merged[i]))
            rank[i] = INT32_MAX;
    while (k > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < k; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == INT32_MAX) break;
        sym[best] = merged[best];
        /* drop symbol best+1 and pair best+1; pairs are one fewer than symbols */
        size_t tail = k - best - 2;
        memmove(sym + best + 1, sym + best + 2, tail * sizeof *sym);
        if (tail > 1) {
            memmove(rank + best + 1, rank + best + 2, (tail - 1) * sizeof *rank);
            memmove(merged + best + 1, merged + best + 2, (tail - 1) * sizeof *merged);
        }
        k--;
        if (best > 0 && !tok_pairmap_get(&t->merges, sym[best - 1], sym[best], &rank[best - 1],
                                         &merged[best - 1]))
            rank[best - 1] = INT32_MAX;
        if (best + 1 < k && !tok_pairmap_get(&t->merges, sym[best], sym[best + 1], &rank[best],
                                             &merged[best]))
            rank[best] = INT32_MAX;
    }
    for (size_t i = 0; i < k; i++)
        if (tok_ids_push(out, sym[i])) {
            snprintf(err, errlen, "%s: out of memory", t->source);
            return -1;
        }
    return 0;
}

int tok_bpe_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                   size_t errlen) {
    if (n == 0) return 0;
    /* add_prefix_space: the first word gets the leading space the others
     * have, so "Hello" at the start encodes like " Hello" in the middle */
    char *owned = NULL;
    if (t->add_prefix_space && s[0] != ' ') {
        owned = malloc(n + 2);
        if (!owned) {
            snprintf(err, errlen, "%s: out of memory", t->source);
            return -1;
        }
        owned[0] = ' ';
        memcpy(owned + 1, s, n);
        owned[n + 1] = '\0';
        s = owned;
        n++;
    }
    /* scratch for one pre-token, sized for the longest possible one */
    int32_t *work = malloc(3 * n * sizeof *work);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    int rc = 0;
    if (!work || !md) {
        snprintf(err, errlen, "%s: out of memory", t->source);
        rc = -1;
        goto done;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t off = 0;
    while (off < n && rc == 0) {
        int m = pcre2_match(t->re, (PCRE2_SPTR)p, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
        size_t ms, me;
        if (m == PCRE2_ERROR_NOMATCH) {
            ms = me = n;
        } else if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            snprintf(err, errlen, "%s: pre-tokenization failed: %s", t->source,
                     (const char *)msg);
            rc = -1;
            break;
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        }
        /* the pattern covers every character, but text it skipped would
         * still be a piece of its own (tokenizers' Split keeps gaps) */
        if (ms > off) rc = bpe_piece(t, p + off, ms - off, out, work, work + n, work + 2 * n, err, errlen);
        if (rc == 0 && me > ms)
            rc = bpe_piece(t, p + ms, me - ms, out, work, work + n, work + 2 * n, err, errlen);
        if (me == ms) {
            /* an empty match cannot come from this pattern; step one
             * character so a surprise can never loop forever */
            if (me >= n) break;
            int32_t cp;
            me += (size_t)tok_utf8_decode(p + me, n - me, &cp);
            rc = rc ? rc : bpe_piece(t, p + ms, me - ms, out, work, work + n, work + 2 * n, err, errlen);
        }
        off = me;
    }
done:
    pcre2_match_data_free(md);
    free(work);
    free(owned);
    return rc;
}
