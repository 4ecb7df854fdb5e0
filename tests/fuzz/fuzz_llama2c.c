/* Fuzz target: llama2.c checkpoints from memory (lb_llama2c_open_memory, lb_llama2c_probe). */
#include <stdlib.h>

#include "formats/llama2c_internal.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Tensor data is exposed as float, so the reader asks for a 4-byte aligned buffer. */
    uint8_t *copy = NULL;
    if ((uintptr_t)data % sizeof(float) != 0) {
        copy = malloc(size ? size : 1);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        data = copy;
    }
    const bool probed = lb_llama2c_probe(data, size);
    lb_llama2c *m = NULL;
    lb_status status = lb_llama2c_open_memory(&m, "fuzz", data, size);
    FUZZ_ASSERT(probed == (status == LB_OK));
    if (status != LB_OK) {
        FUZZ_ASSERT(m == NULL);
        fuzz_check_failure(status);
        FUZZ_ASSERT(status == LB_ERR_NOMEM || strstr(lb_last_error(), "offset") != NULL);
        free(copy);
        return 0;
    }
    const lb_hparams *hp = &m->hparams;
    FUZZ_ASSERT(hp->dim > 0 && hp->dim % hp->n_heads == 0 && hp->n_heads % hp->n_kv_heads == 0);
    FUZZ_ASSERT(m->n_tensors == 2 + 9 * hp->n_layers + (hp->tied_embeddings ? 0 : 1));
    uint64_t sum = 0;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const lb_llama2c_tensor *t = &m->tensors[i];
        FUZZ_ASSERT((uint64_t)(t->ne[0] * t->ne[1]) * sizeof(float) == t->nbytes);
        const uint8_t *bytes = (const uint8_t *)t->data;
        FUZZ_ASSERT(bytes >= data + 28 && bytes + t->nbytes <= data + size);
        sum += strlen(t->name) + bytes[0] + bytes[t->nbytes - 1];
    }
    fuzz_consume(sum);
    lb_llama2c_close(&m);
    FUZZ_ASSERT(m == NULL);
    free(copy);
    return 0;
}
