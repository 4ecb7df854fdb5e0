/* Fuzz target: llama2.c tokenizer.bin from memory (lb_llama2c_tokenizer_parse). */
#include "formats/llama2c_internal.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_vocab *v = NULL;
    lb_status status = lb_llama2c_tokenizer_parse(&v, "fuzz", data, size, 0);
    if (status != LB_OK) {
        FUZZ_ASSERT(v == NULL);
        fuzz_check_failure(status);
        FUZZ_ASSERT(status == LB_ERR_NOMEM || strstr(lb_last_error(), "offset") != NULL);
        return 0;
    }
    FUZZ_ASSERT(v != NULL && v->n_tokens >= 3);
    FUZZ_ASSERT(v->bos_id == 1 && v->eos_id == 2 && v->unk_id == 0);
    uint64_t sum = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        const char *t = v->tokens[i];
        FUZZ_ASSERT(t != NULL && t[v->token_lengths[i]] == '\0');
        for (uint32_t j = 0; j < v->token_lengths[i]; j++)
            sum += (uint8_t)t[j];
        /* The export's spaces must all have become U+2581. */
        FUZZ_ASSERT(memchr(t, ' ', v->token_lengths[i]) == NULL);
        FUZZ_ASSERT(v->token_types[i] >= LB_TOKEN_NORMAL && v->token_types[i] <= LB_TOKEN_BYTE);
        sum += v->scores[i] < 0.0f;
    }
    fuzz_consume(sum);
    lb_vocab_free(&v);
    return 0;
}
