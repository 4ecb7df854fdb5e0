/* A tokenizer vocabulary as GGUF stores it (tokenizer.ggml.*), whatever file it came from. */
#ifndef LB_FORMATS_VOCAB_H
#define LB_FORMATS_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
typedef enum lb_token_type {
    LB_TOKEN_NORMAL = 1,
    LB_TOKEN_UNKNOWN = 2,
    LB_TOKEN_CONTROL = 3,
    LB_TOKEN_USER_DEFINED = 4,
    LB_TOKEN_UNUSED = 5,
    LB_TOKEN_BYTE = 6,
} lb_token_type;

typedef struct lb_vocab {
    char model[16];          /* tokenizer.ggml.model: "llama" (SentencePiece-style) or "gpt2" */
    int64_t n_tokens;
    char **tokens;           /* [n_tokens] NUL-terminated UTF-8 pieces ("▁" for space in llama) */
    uint32_t *token_lengths; /* [n_tokens] byte lengths (pieces may contain NUL bytes) */
    float *scores;           /* [n_tokens] or NULL */
    int32_t *token_types;    /* [n_tokens] lb_token_type values or NULL */
    int64_t n_merges;
    char **merges;           /* [n_merges] "left right" (gpt2 BPE), or NULL */
    int32_t bos_id, eos_id, unk_id, pad_id; /* -1 where absent */
    int32_t add_bos;         /* 1 yes, 0 no, -1 unspecified */
    int32_t add_eos;         /* likewise */
} lb_vocab;

/* An empty vocabulary with every id -1 and the given model name. */
LB_API lb_status lb_vocab_create(lb_vocab **out, const char *model, int64_t n_tokens,
                                 bool with_scores, bool with_types);

/* Stores a copy of `len` bytes as token `id`. */
LB_API lb_status lb_vocab_set_token(lb_vocab *vocab, int64_t id, const char *text, size_t len);

/* Frees everything; takes NULL and clears the pointer. */
LB_API void lb_vocab_free(lb_vocab **vocab);

#endif
