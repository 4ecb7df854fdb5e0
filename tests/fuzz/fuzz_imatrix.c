/* Fuzz target: the imatrix reader (llama.cpp's GGUF and legacy layouts) from memory, then
 * every entry's lookup and importance, and every dataset name. */
#include <math.h>
#include <stdlib.h>

#include "fuzz_target.h"
#include "quant/imatrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_imatrix *m = NULL;
    lb_status status = lb_imatrix_read_memory(&m, "fuzz", data, size);
    if (status != LB_OK) {
        FUZZ_ASSERT(m == NULL);
        fuzz_check_failure(status);
        return 0;
    }
    uint64_t sum = (uint64_t)m->chunk_count + (uint64_t)m->chunk_size;
    FUZZ_ASSERT(m->n_entries >= 1 && m->chunk_count >= 0 && m->chunk_size >= 0);
    for (int64_t i = 0; i < m->n_datasets; i++) {
        FUZZ_ASSERT(m->datasets[i][0] != '\0');
        sum += strlen(m->datasets[i]);
    }
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        /* Sorted, unique, shaped, and what lookup finds. */
        FUZZ_ASSERT(e->name[0] != '\0' && e->n_per_row >= 1 && e->n_mat >= 1);
        FUZZ_ASSERT(i == 0 || strcmp(m->entries[i - 1].name, e->name) < 0);
        FUZZ_ASSERT(lb_imatrix_find(m, e->name) == e);
        float *imp = malloc((size_t)e->n_per_row * sizeof *imp);
        if (!imp)
            break;
        for (int64_t k = 0; k < e->n_mat; k++) {
            FUZZ_ASSERT(e->counts[k] >= 0);
            FUZZ_ASSERT(lb_imatrix_importance(e, k, imp) == LB_OK);
            for (int64_t j = 0; j < e->n_per_row; j++) {
                FUZZ_ASSERT(e->sum_sq[k * e->n_per_row + j] >= 0.0);
                FUZZ_ASSERT(!isnan(imp[j]) && imp[j] >= 0.0f);
                sum += (uint64_t)(imp[j] > 1.0f);
            }
        }
        free(imp);
    }
    fuzz_consume(sum);
    lb_imatrix_free(&m);
    FUZZ_ASSERT(m == NULL);
    return 0;
}
