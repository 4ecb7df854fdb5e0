/* Tokenizers over an lb_vocab: SentencePiece-style (llama, llama2.c) and byte-level BPE (gpt2). */
#ifndef LB_MODEL_TOKENIZER_H
#define LB_MODEL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/vocab.h"

typedef struct lb_tokenizer lb_tokenizer;

/* Builds the lookup tables for vocab->model "llama" (score-ordered merges of adjacent pieces,
 * dummy-prefix "▁", byte fallback <0xXX>) or "gpt2" (byte-level BPE by merge rank after a
 * pre-tokenizing regex). The vocab must outlive the tokenizer. LB_ERR_UNSUPPORTED for other
 * models, LB_ERR_CORRUPT_FILE for a vocab that cannot work (no byte tokens and no unk ...). */
LB_API lb_status lb_tokenizer_create(lb_tokenizer **out, const lb_vocab *vocab);
LB_API void lb_tokenizer_free(lb_tokenizer **tokenizer);

/* Encodes len bytes of UTF-8 text (invalid UTF-8 falls back to byte tokens), with BOS in
 * front when add_bos and the vocab has one. *tokens is allocated with lb_malloc; the caller
 * frees it with lb_free. Linear-logarithmic in the text length (a priority queue of merges),
 * so a whole evaluation text can be encoded at once. */
LB_API lb_status lb_tokenizer_encode(const lb_tokenizer *tokenizer, const char *text, size_t len,
                                     bool add_bos, int32_t **tokens, int64_t *n_tokens);

/* Decodes tokens to text (allocated with lb_malloc, NUL-terminated, *len without the NUL):
 * "▁" becomes a space, byte tokens become their byte, control tokens (BOS/EOS) are skipped,
 * and the leading space that the dummy prefix added after BOS or at the start is dropped. */
LB_API lb_status lb_tokenizer_decode(const lb_tokenizer *tokenizer, const int32_t *tokens,
                                     int64_t n_tokens, char **text, size_t *len);

/* The text of one token as it appears when streamed after `previous` (-1 at the start):
 * written to buffer (NUL-terminated), returns its byte length or a negative status. */
LB_API int64_t lb_tokenizer_piece(const lb_tokenizer *tokenizer, int32_t previous, int32_t token,
                                  char *buffer, size_t size);

/* Byte-level BPE's pre-tokenizer on its own (for tests and inspection): the chunks that the
 * gpt2 regex cuts the text into, as the end offset of each, in order (chunk i spans
 * (*ends)[i-1] .. (*ends)[i]); bytes the regex skips (invalid UTF-8) are chunks of their own.
 * *ends is allocated with lb_malloc. LB_ERR_INVALID_ARG for a tokenizer that is not gpt2. */
LB_API lb_status lb_tokenizer_pretokenize(const lb_tokenizer *tokenizer, const char *text,
                                          size_t len, size_t **ends, int64_t *n_chunks);

#endif
