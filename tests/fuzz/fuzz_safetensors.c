/* Fuzz target: one safetensors file from memory, then every tensor byte and name lookup. */
#include "formats/safetensors_internal.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_safetensors *st = NULL;
    lb_status status = lb_safetensors_open_memory(&st, "fuzz", data, size);
    if (status != LB_OK) {
        FUZZ_ASSERT(st == NULL);
        fuzz_check_failure(status);
        return 0;
    }
    uint64_t sum = 0;
    for (int64_t i = 0; i < st->n_tensors; i++) {
        const lb_safetensors_tensor *t = &st->tensors[i];
        FUZZ_ASSERT(t->n_dims >= 1 && t->n_dims <= LB_MAX_DIMS);
        FUZZ_ASSERT(lb_safetensors_find(st, t->name) == i);
        const uint8_t *bytes = t->data;
        FUZZ_ASSERT(t->nbytes == 0 || (bytes >= data && bytes + t->nbytes <= data + size));
        for (uint64_t j = 0; j < t->nbytes; j++)
            sum += bytes[j];
    }
    FUZZ_ASSERT(lb_safetensors_find(st, "\x01 not a tensor name") == -1);
    fuzz_consume(sum);
    lb_safetensors_close(&st);
    FUZZ_ASSERT(st == NULL);
    return 0;
}
