/* Allocation and release of lb_vocab. */
#include "formats/vocab.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"

lb_status lb_vocab_create(lb_vocab **out, const char *model, int64_t n_tokens, bool with_scores,
                          bool with_types)
{
    *out = NULL;
    if (n_tokens < 0 || (uint64_t)n_tokens > SIZE_MAX / sizeof(char *))
        return lb_error(LB_ERR_INVALID_ARG, "vocabulary of %lld tokens", (long long)n_tokens);
    lb_vocab *vocab = lb_calloc(1, sizeof *vocab);
    if (!vocab)
        return lb_nomem("out of memory for a vocabulary");
    snprintf(vocab->model, sizeof vocab->model, "%s", model);
    vocab->n_tokens = n_tokens;
    vocab->bos_id = vocab->eos_id = vocab->unk_id = vocab->pad_id = -1;
    vocab->add_bos = vocab->add_eos = -1;
    vocab->tokens = lb_calloc((size_t)n_tokens, sizeof *vocab->tokens);
    vocab->token_lengths = lb_calloc((size_t)n_tokens, sizeof *vocab->token_lengths);
    if (with_scores)
        vocab->scores = lb_calloc((size_t)n_tokens, sizeof *vocab->scores);
    if (with_types)
        vocab->token_types = lb_calloc((size_t)n_tokens, sizeof *vocab->token_types);
    if (!vocab->tokens || !vocab->token_lengths || (with_scores && !vocab->scores) ||
        (with_types && !vocab->token_types)) {
        lb_vocab_free(&vocab);
        return lb_nomem("out of memory for a vocabulary of %lld tokens",
                        (long long)n_tokens);
    }
    *out = vocab;
    return LB_OK;
}

lb_status lb_vocab_set_token(lb_vocab *vocab, int64_t id, const char *text, size_t len)
{
    if (id < 0 || id >= vocab->n_tokens || len > UINT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "token id %lld out of range", (long long)id);
    char *copy = lb_strndup(text, len);
    if (!copy)
        return lb_nomem("out of memory for token %lld", (long long)id);
    lb_free(vocab->tokens[id]);
    vocab->tokens[id] = copy;
    vocab->token_lengths[id] = (uint32_t)len;
    return LB_OK;
}

void lb_vocab_free(lb_vocab **vocabp)
{
    if (!vocabp || !*vocabp)
        return;
    lb_vocab *vocab = *vocabp;
    if (vocab->tokens)
        for (int64_t i = 0; i < vocab->n_tokens; i++)
            lb_free(vocab->tokens[i]);
    if (vocab->merges)
        for (int64_t i = 0; i < vocab->n_merges; i++)
            lb_free(vocab->merges[i]);
    lb_free(vocab->tokens);
    lb_free(vocab->token_lengths);
    lb_free(vocab->scores);
    lb_free(vocab->token_types);
    lb_free(vocab->merges);
    lb_free(vocab);
    *vocabp = NULL;
}
