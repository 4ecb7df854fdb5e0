/* Fuzz target: SentencePiece tokenizer.model from memory (lb_spm_model_parse), then every
 * piece, score and type, and the special ids. */
#include <stdlib.h>

#include "formats/spm_model_internal.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_vocab *v = NULL;
    lb_status status = lb_spm_model_parse(&v, "fuzz", data, size);
    if (status != LB_OK) {
        FUZZ_ASSERT(v == NULL);
        fuzz_check_failure(status);
        if (status == LB_ERR_CORRUPT_FILE) {
            /* "<file>: <message>[<index>].<field> at offset <N>: <what>", N inside the input
             * (or at its end, for a value that runs past it). */
            const char *msg = lb_last_error();
            FUZZ_ASSERT(strncmp(msg, "fuzz: ", 6) == 0);
            const char *at = strstr(msg, " at offset ");
            FUZZ_ASSERT(at != NULL);
            char *end = NULL;
            unsigned long long offset = strtoull(at + 11, &end, 10);
            FUZZ_ASSERT(end != at + 11 && *end == ':' && offset <= size);
        } else {
            /* Out of memory, or more pieces than int32 ids (no input this small). */
            FUZZ_ASSERT(status == LB_ERR_NOMEM || status == LB_ERR_UNSUPPORTED);
        }
        return 0;
    }
    FUZZ_ASSERT(v != NULL && v->n_tokens >= 1 && v->n_tokens <= INT32_MAX);
    FUZZ_ASSERT(strcmp(v->model, "llama") == 0 && v->n_merges == 0);
    FUZZ_ASSERT(v->tokens && v->token_lengths && v->scores && v->token_types);
    /* Ids are -1 (absent) or index a piece: later code indexes tokens[] with them. */
    const int32_t ids[] = {v->bos_id, v->eos_id, v->unk_id, v->pad_id};
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++)
        FUZZ_ASSERT(ids[k] >= -1 && ids[k] < v->n_tokens);
    uint64_t sum = 0, text_bytes = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        const char *t = v->tokens[i];
        uint32_t len = v->token_lengths[i];
        /* Pieces are non-empty copies of disjoint ranges of the input. */
        FUZZ_ASSERT(t != NULL && len >= 1 && t[len] == '\0');
        text_bytes += len;
        for (uint32_t j = 0; j < len; j++)
            sum += (uint8_t)t[j];
        FUZZ_ASSERT(v->token_types[i] >= LB_TOKEN_NORMAL && v->token_types[i] <= LB_TOKEN_BYTE);
        uint32_t bits;
        memcpy(&bits, &v->scores[i], sizeof bits);
        sum += bits;
    }
    FUZZ_ASSERT(text_bytes <= size);
    fuzz_consume(sum);
    lb_vocab_free(&v);
    FUZZ_ASSERT(v == NULL);
    return 0;
}
