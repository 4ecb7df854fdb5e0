/* Fuzz target: the log-probability reader (LBLOGP01, formats/logprob_file_internal.h) from memory, then
 * every record decoded, and the header comparison a --kld run makes. */
#include <math.h>
#include <stdlib.h>

#include "formats/logprob_file_internal.h"
#include "fuzz_target.h"

/* Opening against `expected` must fail with BAD_INPUT and a one-line message. */
static void check_mismatch(const uint8_t *data, size_t size, const lb_logprob_header *expected)
{
    lb_logprob_file *f = NULL;
    lb_status status = lb_logprob_open_memory(&f, "fuzz", data, size, expected);
    FUZZ_ASSERT(status == LB_ERR_BAD_INPUT && f == NULL);
    fuzz_check_failure(status);
    FUZZ_ASSERT(strstr(lb_last_error(), "offset") != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_logprob_file *f = NULL;
    lb_status status = lb_logprob_open_memory(&f, "fuzz", data, size, NULL);
    if (status != LB_OK) {
        FUZZ_ASSERT(f == NULL);
        fuzz_check_failure(status);
        FUZZ_ASSERT(status == LB_ERR_NOMEM || strstr(lb_last_error(), "offset") != NULL);
        return 0;
    }
    const lb_logprob_header h = f->header;
    FUZZ_ASSERT(h.n_vocab >= 0 && h.n_positions >= 0);
    FUZZ_ASSERT(f->record_bytes == lb_logprob_record_bytes(h.n_vocab));
    FUZZ_ASSERT(40 + f->record_bytes * (uint64_t)h.n_positions == size);
    /* A file without records may name any vocabulary size: allocate only when records (and so
     * at least 2 bytes per vocabulary entry of input) exist. */
    double *lp = h.n_positions > 0 ? malloc((size_t)h.n_vocab * sizeof *lp) : NULL;
    uint64_t sum = 0;
    for (int64_t p = 0; p < h.n_positions && lp; p++) {
        const uint8_t *record = lb_logprob_record(f, p);
        FUZZ_ASSERT(record >= data + 40 && record + f->record_bytes <= data + size);
        lb_logprob_position pos = lb_logprob_position_of(record);
        FUZZ_ASSERT(pos.target < h.n_vocab && pos.top1 < h.n_vocab);
        lb_logprob_decode(record, h.n_vocab, lp);
        for (int64_t i = 0; i < h.n_vocab; i++)
            sum += (uint64_t)isnan(lp[i]);
        sum += (uint64_t)isnan(pos.target_logprob);
    }
    free(lp);
    fuzz_consume(sum);

    /* The run that saved the file opens it; any other run is told it differs. */
    lb_logprob_file *again = NULL;
    FUZZ_ASSERT(lb_logprob_open_memory(&again, "fuzz", data, size, &h) == LB_OK);
    lb_logprob_close(&again);
    lb_logprob_header other = h;
    other.tokens_hash ^= 1;
    check_mismatch(data, size, &other);
    other = h;
    other.n_windows += 1;
    check_mismatch(data, size, &other);

    lb_logprob_close(&f);
    FUZZ_ASSERT(f == NULL);
    return 0;
}
