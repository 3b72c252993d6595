/* Private to datasets/tokenizer.c, wordpiece.c and bpe.c: the Tokenizer
 * layout and the small containers the three files share. Nothing outside
 * datasets/ includes this; the public seam is datasets/tokenizer.h. */
#ifndef BILORA_DATASETS_TOKENIZER_INTERNAL_H
#define BILORA_DATASETS_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/tokenizer.h"

/* ---- string -> id hash map (open addressing, linear probing) ----
 * Keys are byte strings with explicit lengths, so a lookup never needs a
 * NUL-terminated copy of a substring (WordPiece probes many substrings). */
typedef struct {
    uint32_t cap;      /* power of two, 0 when empty */
    uint32_t count;
    char **keys;       /* owned copies, NUL-terminated for convenience */
    uint32_t *lens;
    int32_t *vals;
} TokStrMap;

int tok_strmap_init(TokStrMap *m, size_t expected);
void tok_strmap_free(TokStrMap *m);
/* Inserts or overwrites (a later duplicate wins, as a JSON object read into a
 * hash map does in `tokenizers`). Returns -1 only when out of memory. */
int tok_strmap_put(TokStrMap *m, const char *key, size_t len, int32_t val);
int32_t tok_strmap_get(const TokStrMap *m, const char *key, size_t len); /* -1: absent */

/* ---- (left id, right id) -> (rank, merged id) map for BPE merges ---- */
typedef struct {
    uint32_t cap;
    uint32_t count;
    uint64_t *keys;    /* (left << 32) | right; TOK_PAIR_EMPTY when free */
    int32_t *rank;
    int32_t *merged;
} TokPairMap;
#define TOK_PAIR_EMPTY UINT64_MAX

int tok_pairmap_init(TokPairMap *m, size_t expected);
void tok_pairmap_free(TokPairMap *m);
int tok_pairmap_put(TokPairMap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* Returns 1 and fills rank/merged when the pair is a merge, else 0. */
int tok_pairmap_get(const TokPairMap *m, int32_t left, int32_t right, int32_t *rank,
                    int32_t *merged);

/* ---- growable id array ---- */
typedef struct {
    int32_t *v;
    int n;
    int cap;
} TokIds;

int tok_ids_push(TokIds *a, int32_t id);

/* The byte a GPT-2 stand-in character means (the inverse of
 * bytes_to_unicode); -1 for a character that stands for no byte. */
int tok_bpe_unicode_to_byte(int32_t cp);

/* ---- added tokens (special tokens matched in raw text before the model) ---- */
typedef struct {
    char *content;      /* as written in the tokenizer files */
    char *match;        /* what is looked for in text: content, or its
                           normalized form for a `normalized` token */
    size_t match_len;
    int32_t id;
    unsigned char lstrip, rstrip, single_word, normalized, special;
} TokAdded;

typedef enum { TOK_TEMPLATE_BERT, TOK_TEMPLATE_ROBERTA, TOK_TEMPLATE_GPT2 } TokTemplate;

struct Tokenizer {
    TokenizerKind kind;
    TokTemplate template_kind;
    char source[4096];       /* the file the vocabulary came from, for messages */

    TokStrMap vocab;         /* model vocabulary (added tokens are in `added`) */
    char **id_to_token;      /* [n_ids], borrowed pointers; NULL for gaps */
    int n_ids;

    TokAdded *added;
    int n_added;
    unsigned char added_first_byte[256]; /* 1 where some added token starts with it */
    int has_normalized_added;

    int pad_id, cls_id, sep_id, mask_id, unk_id;

    /* WordPiece + BertNormalizer (also used with a null normalizer: all off) */
    int bert_normalizer;     /* 0: text goes to the pre-tokenizer unchanged */
    int clean_text, handle_chinese_chars, strip_accents, lowercase;
    char wp_prefix[32];
    size_t wp_prefix_len;
    int wp_max_chars;        /* max_input_chars_per_word */
    int wp_unk_id;           /* id of the model's unk token, -1 when missing */
    size_t wp_max_token_len; /* longest vocabulary entry in bytes: bounds the search */

    /* byte-level BPE */
    TokPairMap merges;
    int32_t byte_token[256]; /* id of the byte's GPT-2 unicode stand-in, -1 if absent */
    pcre2_code *re;
    int add_prefix_space;
};

/* ---- small shared helpers ---- */

/* Unicode White_Space, the set Rust's char::is_whitespace uses (and so the
 * `tokenizers` normalizers and pre-tokenizers). */
int tok_is_white_space(int32_t cp);

/* Decodes one code point of valid UTF-8 at s (n bytes left); returns its length. */
int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
/* Writes cp as UTF-8 to dst (4 bytes room); returns the byte count. */
int tok_utf8_encode(int32_t cp, char *dst);

/* ---- WordPiece (wordpiece.c) ---- */

/* Reads vocab.txt (one token a line, id = 0-based line number). */
int tok_wordpiece_read_vocab_txt(Tokenizer *t, const char *path, char *err, size_t errlen);
/* BertNormalizer as configured on t: returns a malloc'ed UTF-8 string. */
int tok_bert_normalize(const Tokenizer *t, const char *s, size_t n, char **out, size_t *outn,
                       char *err, size_t errlen);
/* BertPreTokenizer + WordPiece on already normalized text; appends ids. */
int tok_wordpiece_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                         size_t errlen);
/* Finishes a WordPiece tokenizer once the vocabulary is in: longest token. */
void tok_wordpiece_finish(Tokenizer *t);

/* ---- byte-level BPE (bpe.c) ---- */

/* Reads merges.txt ("#version" header optional). */
int tok_bpe_read_merges_txt(Tokenizer *t, const char *path, char *err, size_t errlen);
/* Adds merge number `rank` (left + right must all be in the vocabulary);
 * where: "FILE: line N" or "FILE: model.merges[N]" for messages. */
int tok_bpe_add_merge(Tokenizer *t, const char *left, size_t llen, const char *right,
                      size_t rlen, int32_t rank, const char *where, char *err, size_t errlen);
/* Compiles the GPT-2 pre-tokenization pattern and fills the byte table. */
int tok_bpe_finish(Tokenizer *t, char *err, size_t errlen);
/* ByteLevel pre-tokenizer + BPE on one piece of text; appends ids. */
int tok_bpe_encode(const Tokenizer *t, const char *s, size_t n, TokIds *out, char *err,
                   size_t errlen);

#endif
