/* Fuzz target: the imatrix reader of formats/ (llama.cpp's GGUF and legacy layouts) from
 * memory, then every entry, its lookup and values, and every dataset name. */
#include <math.h>

#include "formats/imatrix_file.h"
#include "fuzz_target.h"

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
        for (int64_t k = 0; k < e->n_mat; k++) {
            /* Counts are whole numbers up to 2^53, sums finite and not negative: what
             * quantization divides and weighs by. */
            FUZZ_ASSERT(e->counts[k] >= 0 && e->counts[k] <= ((int64_t)1 << 53));
            for (int64_t j = 0; j < e->n_per_row; j++) {
                double v = e->sum_sq[k * e->n_per_row + j];
                FUZZ_ASSERT(isfinite(v) && v >= 0.0);
                sum += (uint64_t)(v > 1.0);
            }
        }
    }
    fuzz_consume(sum);
    lb_imatrix_free(&m);
    FUZZ_ASSERT(m == NULL);
    return 0;
}
