/* Log-probability files ("LBLOGP01"): record encoding, the bounds-checked reader, the writer. */
#include "formats/logprob_file_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "formats/atomic_file_internal.h"
#include "formats/cursor_internal.h"

#define MAGIC "LBLOGP01"
#define HEADER_BYTES 40
#define RECORD_FIXED_BYTES 24

uint64_t lb_logprob_record_bytes(int64_t n_vocab)
{
    return RECORD_FIXED_BYTES + 2 * (uint64_t)n_vocab;
}

void lb_logprob_encode(const double *logprobs, int64_t n_vocab, int32_t target, int32_t top1,
                       uint8_t *record)
{
    double lo = logprobs[0], hi = logprobs[0];
    for (int64_t i = 1; i < n_vocab; i++) {
        lo = logprobs[i] < lo ? logprobs[i] : lo;
        hi = logprobs[i] > hi ? logprobs[i] : hi;
    }
    /* The bounds are stored as f32; quantize against the stored values so decoding is exact. */
    float lo32 = (float)lo, hi32 = (float)hi;
    double range = (double)hi32 - (double)lo32;
    uint8_t *p = lb_le_store32(record, (uint32_t)target);
    p = lb_le_store32(p, (uint32_t)top1);
    p = lb_le_store_f64(p, logprobs[target]);
    p = lb_le_store_f32(p, lo32);
    p = lb_le_store_f32(p, hi32);
    for (int64_t i = 0; i < n_vocab; i++) {
        double scaled = range > 0 ? (logprobs[i] - lo32) / range * 65535.0 : 0.0;
        long code = lrint(scaled < 0 ? 0 : scaled > 65535 ? 65535 : scaled);
        p = lb_le_store16(p, (uint16_t)code);
    }
}

void lb_logprob_decode(const uint8_t *record, int64_t n_vocab, double *out)
{
    const double lo = lb_le_load_f32(record + 16), hi = lb_le_load_f32(record + 20);
    const uint8_t *q = record + RECORD_FIXED_BYTES;
    for (int64_t i = 0; i < n_vocab; i++)
        out[i] = lo + (double)lb_le_load16(q + 2 * i) * ((hi - lo) / 65535.0);
}

lb_logprob_position lb_logprob_position_of(const uint8_t *record)
{
    lb_logprob_position p = {lb_le_load32(record), lb_le_load32(record + 4),
                             lb_le_load_f64(record + 8)};
    return p;
}

/* ---- reading ---- */

/* Raw header fields, as stored. */
typedef struct raw_header {
    uint32_t n_vocab, ctx, n_windows;
    uint64_t n_positions, tokens_hash;
} raw_header;

static lb_status parse(lb_logprob_file *f, const uint8_t *data, uint64_t size,
                       const lb_logprob_header *expected)
{
    lb_cursor c;
    lb_cursor_init(&c, f->path, data, size);
    const uint8_t *h = lb_cursor_take(&c, HEADER_BYTES);
    if (!h || memcmp(h, MAGIC, 8) != 0)
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, 0, "magic", "not a lowbit logits file");
    const raw_header raw = {lb_le_load32(h + 8), lb_le_load32(h + 12), lb_le_load32(h + 16),
                            lb_le_load64(h + 24), lb_le_load64(h + 32)};
    if (expected && (raw.n_vocab != (uint32_t)expected->n_vocab ||
                     raw.ctx != (uint32_t)expected->ctx ||
                     raw.n_windows != (uint32_t)expected->n_windows ||
                     raw.n_positions != (uint64_t)expected->n_positions ||
                     raw.tokens_hash != expected->tokens_hash))
        return lb_cursor_fail(&c, LB_ERR_BAD_INPUT, 8, "header",
                              "saved for vocab %u, ctx %u, %u windows, %llu positions and other "
                              "tokens; this run has vocab %lld, ctx %lld, %lld windows (use the "
                              "same text, --ctx and --chunks)",
                              raw.n_vocab, raw.ctx, raw.n_windows,
                              (unsigned long long)raw.n_positions, (long long)expected->n_vocab,
                              (long long)expected->ctx, (long long)expected->n_windows);
    /* A header that matched a run cannot overflow here; an arbitrary one can. */
    const uint64_t record_bytes = lb_logprob_record_bytes(raw.n_vocab);
    uint64_t records_size, total;
    if (!lb_size_mul(record_bytes, raw.n_positions, &records_size) ||
        !lb_size_add(HEADER_BYTES, records_size, &total))
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, 24, "n_positions",
                              "%llu records of %llu bytes overflow 64 bits",
                              (unsigned long long)raw.n_positions,
                              (unsigned long long)record_bytes);
    if (size != total)
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, size, "size", "expected %llu bytes",
                              (unsigned long long)total);
    f->records = lb_cursor_take(&c, records_size);
    for (uint64_t p = 0; p < raw.n_positions; p++) {
        const uint8_t *r = f->records + record_bytes * p;
        char field[48];
        if (lb_le_load32(r) >= raw.n_vocab || lb_le_load32(r + 4) >= raw.n_vocab) {
            snprintf(field, sizeof field, "record %lld", (long long)p);
            return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, (uint64_t)(r - data), field,
                                  "token id out of range");
        }
        /* A log-probability is finite and <= 0 (the writer's log-softmax guarantees both), and
         * the bounds are ordered: anything else would reach the KLD and the base PPL as NaN or
         * Inf, which no drift limit catches. */
        const double target = lb_le_load_f64(r + 8);
        const float lo = lb_le_load_f32(r + 16), hi = lb_le_load_f32(r + 20);
        uint64_t at = 0;
        const char *what = NULL;
        double value = 0.0;
        if (!isfinite(target) || target > 0.0)
            at = 8, what = "log p(target)", value = target;
        else if (!isfinite(lo) || lo > 0.0f)
            at = 16, what = "min log p", value = lo;
        else if (!isfinite(hi) || hi > 0.0f || hi < lo)
            at = 20, what = "max log p", value = hi;
        if (what) {
            snprintf(field, sizeof field, "record %lld %s", (long long)p, what);
            return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, (uint64_t)(r + at - data), field,
                                  "%g is not a log-probability (finite, <= 0, min <= max)",
                                  value);
        }
    }
    /* n_positions fits int64: its records fit in the buffer. */
    f->header = (lb_logprob_header){raw.n_vocab, raw.ctx, raw.n_windows,
                                    (int64_t)raw.n_positions, raw.tokens_hash};
    f->record_bytes = record_bytes;
    return LB_OK;
}

lb_status lb_logprob_open(lb_logprob_file **out, const char *path,
                          const lb_logprob_header *expected)
{
    *out = NULL;
    lb_logprob_file *f = lb_calloc(1, sizeof *f);
    if (!f)
        return lb_nomem("%s: out of memory for the log-prob reader", path);
    lb_status status = lb_mapped_file_open(&f->file, path);
    if (status == LB_OK) {
        f->path = f->file->path;
        status = parse(f, f->file->data, f->file->size, expected);
    }
    if (status != LB_OK) {
        lb_logprob_close(&f);
        return status;
    }
    *out = f;
    return LB_OK;
}

lb_status lb_logprob_open_memory(lb_logprob_file **out, const char *name, const void *data,
                                 uint64_t size, const lb_logprob_header *expected)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL buffer of %llu bytes", name,
                        (unsigned long long)size);
    size_t name_len = strlen(name);
    /* The name lives in the same block as the struct so close() needs no special case. */
    lb_logprob_file *f = lb_calloc(1, sizeof *f + name_len + 1);
    if (!f)
        return lb_nomem("%s: out of memory for the log-prob reader", name);
    char *copy = (char *)(f + 1);
    memcpy(copy, name, name_len + 1);
    f->path = copy;
    lb_status status = parse(f, data, size, expected);
    if (status != LB_OK) {
        lb_logprob_close(&f);
        return status;
    }
    *out = f;
    return LB_OK;
}

void lb_logprob_close(lb_logprob_file **f)
{
    if (!f || !*f)
        return;
    lb_mapped_file_close(&(*f)->file);
    lb_free(*f);
    *f = NULL;
}

const uint8_t *lb_logprob_record(const lb_logprob_file *f, int64_t position)
{
    return f->records + f->record_bytes * (uint64_t)position;
}

/* ---- writing ---- */

struct lb_logprob_writer {
    lb_atomic_file *file;
    uint64_t record_bytes;
    int64_t n_positions, n_written;
};

lb_status lb_logprob_writer_open(lb_logprob_writer **out, const char *path,
                                 const lb_logprob_header *header)
{
    *out = NULL;
    if (header->n_vocab < 1 || header->n_vocab > UINT32_MAX || header->ctx < 0 ||
        header->ctx > UINT32_MAX || header->n_windows < 0 || header->n_windows > UINT32_MAX ||
        header->n_positions < 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: vocab %lld, ctx %lld, %lld windows, %lld "
                        "positions do not fit a logits file", path, (long long)header->n_vocab,
                        (long long)header->ctx, (long long)header->n_windows,
                        (long long)header->n_positions);
    lb_logprob_writer *w = lb_calloc(1, sizeof *w);
    if (!w)
        return lb_nomem("%s: out of memory for the log-prob writer", path);
    w->record_bytes = lb_logprob_record_bytes(header->n_vocab);
    w->n_positions = header->n_positions;
    uint8_t bytes[HEADER_BYTES] = {0};
    memcpy(bytes, MAGIC, 8);
    lb_le_store32(bytes + 8, (uint32_t)header->n_vocab);
    lb_le_store32(bytes + 12, (uint32_t)header->ctx);
    lb_le_store32(bytes + 16, (uint32_t)header->n_windows);
    lb_le_store64(bytes + 24, (uint64_t)header->n_positions);
    lb_le_store64(bytes + 32, header->tokens_hash);
    lb_status status = lb_atomic_file_open(&w->file, path);
    if (status == LB_OK)
        status = lb_atomic_file_write(w->file, bytes, sizeof bytes);
    if (status != LB_OK) {
        lb_logprob_writer_abort(&w);
        return status;
    }
    *out = w;
    return LB_OK;
}

lb_status lb_logprob_writer_append(lb_logprob_writer *w, const uint8_t *records,
                                   int64_t n_records)
{
    if (n_records < 0 || n_records > w->n_positions - w->n_written)
        return lb_error(LB_ERR_INVALID_ARG, "logits file: %lld more records past %lld of %lld",
                        (long long)n_records, (long long)w->n_written,
                        (long long)w->n_positions);
    lb_status status = lb_atomic_file_write(w->file, records,
                                            (size_t)n_records * (size_t)w->record_bytes);
    if (status == LB_OK)
        w->n_written += n_records;
    return status;
}

lb_status lb_logprob_writer_commit(lb_logprob_writer **w)
{
    lb_status status;
    if ((*w)->n_written != (*w)->n_positions)
        status = lb_error(LB_ERR_INVALID_ARG, "logits file: %lld of %lld records written",
                          (long long)(*w)->n_written, (long long)(*w)->n_positions);
    else
        status = lb_atomic_file_commit(&(*w)->file);
    lb_logprob_writer_abort(w);
    return status;
}

void lb_logprob_writer_abort(lb_logprob_writer **w)
{
    if (!w || !*w)
        return;
    lb_atomic_file_abort(&(*w)->file);
    lb_free(*w);
    *w = NULL;
}
