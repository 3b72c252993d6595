/* Tokenizers: WordPiece (BERT) and byte-level BPE (GPT-2, RoBERTa), loaded
 * from a Hugging Face model directory, producing ids identical to the
 * reference `tokenizers` / `transformers` classes.
 *
 * Files looked for, in order: tokenizer.json; else vocab.txt (WordPiece,
 * with tokenizer_config.json's do_lower_case / strip_accents); else
 * vocab.json + merges.txt (byte-level BPE).
 *
 * Every fallible function returns 0 on success, -1 on failure with a message
 * in err (naming the file, the line or field, and what was expected). */
#ifndef BILORA_DATASETS_TOKENIZER_H
#define BILORA_DATASETS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct Tokenizer Tokenizer;

typedef enum { TOKENIZER_WORDPIECE, TOKENIZER_BPE } TokenizerKind;

/* model_type picks the special-token template: "bert" ([CLS] a [SEP] b [SEP],
 * token type ids 0 then 1), "roberta" (<s> a </s></s> b </s>, all type 0),
 * "gpt2" (no special tokens, all type 0). */
int tokenizer_load(Tokenizer **out, const char *model_dir, const char *model_type,
                   char *err, size_t errlen);
void tokenizer_free(Tokenizer *t);

/* Encode one text (text_b == NULL) or a pair, with the special tokens of the
 * template, truncated longest-first so the total (specials included) is at
 * most max_len (max_len <= 0: no truncation). *ids and *type_ids are
 * malloc'ed arrays of *n entries that the caller frees. */
int tokenizer_encode(const Tokenizer *t, const char *text_a, const char *text_b, int max_len,
                     int32_t **ids, int32_t **type_ids, int *n, char *err, size_t errlen);

/* Encode text without any special tokens (for language-model corpora). */
int tokenizer_encode_plain(const Tokenizer *t, const char *text, int32_t **ids, int *n,
                           char *err, size_t errlen);

TokenizerKind tokenizer_kind(const Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_pad_id(const Tokenizer *t);   /* [PAD]=0 / <pad>=1 / gpt2: <|endoftext|> */
int tokenizer_cls_id(const Tokenizer *t);   /* [CLS] / <s>; -1 for gpt2 */
int tokenizer_sep_id(const Tokenizer *t);   /* [SEP] / </s> / <|endoftext|> */
int tokenizer_mask_id(const Tokenizer *t);  /* [MASK] / <mask>; -1 when absent */
int tokenizer_unk_id(const Tokenizer *t);   /* -1 when absent */
/* The token string of an id (as in the vocabulary), NULL when out of range. */
const char *tokenizer_id_to_token(const Tokenizer *t, int id);

/* The text of ids, as `tokenizers` decodes them: byte-level BPE undoes
 * GPT-2's byte-to-character map (so decode(encode(s)) == s); WordPiece joins
 * the pieces with spaces, "##" continuations without. skip_special drops
 * special tokens ([CLS], <|endoftext|>, ...). A malloc'd string; NULL with a
 * message for an id outside the vocabulary. */
char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, int n, int skip_special, char *err,
                       size_t errlen);

#endif
