/* WordPiece (BERT): the BertNormalizer, the BertPreTokenizer and the greedy
 * longest-match-first WordPiece model, written to give the ids the Hugging
 * Face `tokenizers` crate (0.19) gives. Where its rules differ from the slow
 * Python BertTokenizer, the Rust crate is followed:
 *  - accents are stripped (NFD, drop Mn) *before* lower-casing;
 *  - no NFC pass ahead of everything (the slow class does one);
 *  - lower-casing is the full per-character mapping (U+0130 becomes two
 *    code points), without the context rule for a final sigma. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "datasets/tokenizer_internal.h"

/* ---------------------------------------------------------------- vocab.txt */

int tok_wordpiece_read_vocab_txt(Tokenizer *t, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (tok_strmap_init(&t->vocab, 32768) != 0) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int32_t id = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) != -1) {
        size_t n = (size_t)got;
        /* transformers' load_vocab strips only "\n"; a "\r" left by a CRLF
         * file is dropped too, as no BERT vocabulary has one on purpose. */
        if (n && line[n - 1] == '\n') n--;
        if (n && line[n - 1] == '\r') n--;
        if (memchr(line, '\0', n)) {
            snprintf(err, errlen, "%s: line %d: NUL byte inside a token (expected a text file)",
                     path, (int)id + 1);
            rc = -1;
            break;
        }
        if (tok_strmap_put(&t->vocab, line, n, id) != 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = -1;
            break;
        }
        id++;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && id == 0) {
        snprintf(err, errlen, "%s: empty vocabulary (expected one token per line)", path);
        rc = -1;
    }
    return rc;
}

void tok_wordpiece_finish(Tokenizer *t) {
    size_t longest = 0;
    for (uint32_t i = 0; i < t->vocab.cap; i++)
        if (t->vocab.keys[i] && t->vocab.lens[i] > longest) longest = t->vocab.lens[i];
    t->wp_max_token_len = longest;
}

/* ----------------------------------------------------------- normalizer */

/* Rust's char::is_whitespace, i.e. the Unicode White_Space property. */
int tok_is_white_space(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return 1;
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* `tokenizers`' is_control: the C* categories, except tab, newline and
 * carriage return, which the normalizer turns into spaces instead. */
static int is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
           c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
}

/* The CJK Unified Ideographs blocks BERT splits into single characters
 * (the list in Google's original tokenization.py; not all of "CJK"). */
static int is_chinese_char(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* ASCII punctuation counts even where Unicode calls it a symbol ($, +, ^,
 * `, |, ~, <, =, >), as in BERT's original rule; otherwise any P* category. */
static int is_punctuation(int32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return 1;
    if (cp < 128) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

typedef struct {
    int32_t *v;
    size_t n, cap;
} CpBuf;

static int cp_push(CpBuf *b, int32_t cp) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        int32_t *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv) return -1;
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = cp;
    return 0;
}

/* NFD of a whole buffer: decompose each code point fully, then put every run
 * of combining marks in canonical order (stable by combining class), as the
 * Unicode normalization algorithm requires. */
static int nfd(const CpBuf *in, CpBuf *out) {
    utf8proc_int32_t tmp[32];
    for (size_t i = 0; i < in->n; i++) {
        int last_boundclass = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(in->v[i], tmp, 32, UTF8PROC_DECOMPOSE,
                                                     &last_boundclass);
        if (k < 0 || k > 32) {
            if (cp_push(out, in->v[i]) != 0) return -1;
            continue;
        }
        for (utf8proc_ssize_t j = 0; j < k; j++)
            if (cp_push(out, tmp[j]) != 0) return -1;
    }
    /* canonical ordering: insertion sort inside runs of non-zero classes */
    for (size_t i = 1; i < out->n; i++) {
        int32_t cp = out->v[i];
        int cc = utf8proc_get_property(cp)->combining_class;
        if (cc == 0) continue;
        size_t j = i;
        while (j > 0) {
            int pc = utf8proc_get_property(out->v[j - 1])->combining_class;
            if (pc == 0 || pc <= cc) break;
            out->v[j] = out->v[j - 1];
            j--;
        }
        out->v[j] = cp;
    }
    return 0;
}

int tok_bert_normalize(const Tokenizer *t, const char *s, size_t n, char **out, size_t *outn,
                       char *err, size_t errlen) {
    CpBuf a = {0}, b = {0};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int rc = -1;
    /* 1. clean text + 2. Chinese characters, in one pass */
    while (i < n) {
        int32_t cp;
        i += (size_t)tok_utf8_decode(p + i, n - i, &cp);
        if (t->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (tok_is_white_space(cp)) cp = ' ';
        }
        if (t->handle_chinese_chars && is_chinese_char(cp)) {
            if (cp_push(&a, ' ') || cp_push(&a, cp) || cp_push(&a, ' ')) goto oom;
        } else if (cp_push(&a, cp)) {
            goto oom;
        }
    }
    /* 3. strip accents: NFD, then drop non-spacing marks */
    if (t->strip_accents) {
        if (nfd(&a, &b) != 0) goto oom;
        size_t k = 0;
        for (size_t j = 0; j < b.n; j++)
            if (utf8proc_category(b.v[j]) != UTF8PROC_CATEGORY_MN) b.v[k++] = b.v[j];
        b.n = k;
        CpBuf sw = a;
        a = b;
        b = sw;
        b.n = 0;
    }
    /* 4. lower-case, then encode back to UTF-8 (at most 4 bytes a code point,
     * plus the one case that grows: U+0130 -> "i" U+0307) */
    char *o = malloc(a.n * 6 + 1);
    if (!o) goto oom;
    size_t on = 0;
    for (size_t j = 0; j < a.n; j++) {
        int32_t cp = a.v[j];
        if (t->lowercase) {
            if (cp == 0x130) {
                /* the one unconditional multi-character lower-case mapping
                 * (SpecialCasing.txt) that Rust's to_lowercase applies */
                on += (size_t)tok_utf8_encode('i', o + on);
                cp = 0x307;
            } else {
                cp = utf8proc_tolower(cp);
            }
        }
        on += (size_t)tok_utf8_encode(cp, o + on);
    }
    o[on] = '\0';
    *out = o;
    *outn = on;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "%s: out of memory while normalizing text", t->source);
done:
    free(a.v);
    free(b.v);
    return rc;
}

/* ------------------------------------------------------- WordPiece model */

/* One word (no whitespace, at most one punctuation character) to ids:
 * greedy longest-match-first, continuation pieces carry the prefix; a word
 * with any piece missing from the vocabulary becomes the unk token whole. */
static int wordpiece_word(const Tokenizer *t, const char *w, size_t n, size_t nchars,
                          TokIds *out, char *scratch, char *err, size_t errlen) {
    if (nchars > (size_t)t->wp_max_chars) goto unk;
    int mark = out->n;
    size_t start = 0;
    while (start < n) {
        size_t plen = start > 0 ? t->wp_prefix_len : 0;
        size_t end = n;
        /* no vocabulary entry is longer than wp_max_token_len bytes, so the
         * longer candidates can be skipped; back up to a character start */
        if (t->wp_max_token_len >= plen && end - start > t->wp_max_token_len - plen) {
            end = start + (t->wp_max_token_len - plen);
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80) end--;
        }
        int32_t found = -1;
        while (end > start) {
            const char *cand = w + start;
            size_t clen = end - start;
            if (plen) {
                memcpy(scratch, t->wp_prefix, plen);
                memcpy(scratch + plen, w + start, clen);
                cand = scratch;
            }
            found = tok_strmap_get(&t->vocab, cand, clen + plen);
            if (found >= 0) break;
            end--;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80) end--;
        }
        if (found < 0) {
            out->n = mark;
            goto unk;
        }
        if (tok_ids_push(out, found)) goto oom;
        start = end;
    }
    return 0;
unk:
    if (t->wp_unk_id < 0) {
        snprintf(err, errlen, "%s: a word is not in the vocabulary and the unk token is missing",
                 t->source);
        return -1;
    }
    if (tok_ids_push(out, t->wp_unk_id)) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", t->source);
    return -1;
}

int tok_wordpiece_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                         size_t errlen) {
    /* scratch holds prefix + one candidate, which is never longer than the word */
    char *scratch = malloc(n + t->wp_prefix_len + 1);
    if (!scratch) {
        snprintf(err, errlen, "%s: out of memory", t->source);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, wstart = 0, wchars = 0;
    int rc = 0;
    /* BertPreTokenizer: whitespace separates words and is dropped; each
     * punctuation character is a word of its own */
    while (i < n && rc == 0) {
        int32_t cp;
        int len = tok_utf8_decode(p + i, n - i, &cp);
        int ws = tok_is_white_space(cp);
        int punct = !ws && is_punctuation(cp);
        if (ws || punct) {
            if (wchars)
                rc = wordpiece_word(t, s + wstart, i - wstart, wchars, out, scratch, err, errlen);
            if (rc == 0 && punct)
                rc = wordpiece_word(t, s + i, (size_t)len, 1, out, scratch, err, errlen);
            wchars = 0;
            wstart = i + (size_t)len;
        } else {
            wchars++;
        }
        i += (size_t)len;
    }
    if (rc == 0 && wchars)
        rc = wordpiece_word(t, s + wstart, n - wstart, wchars, out, scratch, err, errlen);
    free(scratch);
    return rc;
}
