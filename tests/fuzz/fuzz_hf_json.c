/* Fuzz target: Hugging Face config.json or tokenizer.json (the first byte picks which). */
#include "formats/hf_internal.h"
#include "fuzz_target.h"

static void fuzz_config(const char *json, size_t len)
{
    lb_hparams hp;
    lb_status status = lb_hf_config_parse(&hp, "fuzz", json, len);
    if (status != LB_OK) {
        fuzz_check_failure(status);
        return;
    }
    FUZZ_ASSERT(hp.dim > 0 && hp.n_heads > 0 && hp.n_kv_heads > 0 && hp.n_layers > 0);
    FUZZ_ASSERT(hp.head_dim > 0 && hp.hidden_dim > 0 && hp.vocab_size > 0);
}

static void fuzz_tokenizer(const char *json, size_t len)
{
    lb_vocab *v = NULL;
    lb_status status = lb_hf_tokenizer_parse(&v, "fuzz", json, len);
    if (status != LB_OK) {
        FUZZ_ASSERT(v == NULL);
        fuzz_check_failure(status);
        return;
    }
    uint64_t sum = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        FUZZ_ASSERT(v->tokens[i] != NULL);
        for (uint32_t j = 0; j < v->token_lengths[i]; j++)
            sum += (uint8_t)v->tokens[i][j];
    }
    for (int64_t i = 0; i < v->n_merges; i++)
        sum += strlen(v->merges[i]);
    FUZZ_ASSERT(v->bos_id < v->n_tokens && v->eos_id < v->n_tokens && v->unk_id < v->n_tokens);
    fuzz_consume(sum);
    lb_vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Even selector: config.json; odd: tokenizer.json. The rest is the document. */
    const char *json = (const char *)data + 1;
    if (data[0] % 2 == 0)
        fuzz_config(json, size - 1);
    else
        fuzz_tokenizer(json, size - 1);
    return 0;
}
