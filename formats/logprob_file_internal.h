/* Log-probability files ("LBLOGP01"): the scored positions' distributions of one `lowbit eval`
 * run, written by --save-logits and read back by --kld to compare another model with it. */
#ifndef LB_FORMATS_LOGPROB_FILE_INTERNAL_H
#define LB_FORMATS_LOGPROB_FILE_INTERNAL_H

#include <stdint.h>

#include "common/status.h"
#include "formats/mapped_file_internal.h"

/* Layout, little-endian. Header (40 bytes): magic "LBLOGP01", u32 n_vocab, u32 ctx,
 * u32 n_windows, u32 reserved (0), u64 n_positions, u64 tokens_hash. Then n_positions
 * records of 24 + 2 * n_vocab bytes: u32 target token, u32 most likely token, f64 log p(target)
 * (exact, so that the base PPL is reproduced to the last digit), f32 min and f32 max
 * log-probability, and u16 q[n_vocab] with log p_i = min + q_i * (max - min) / 65535.
 * Sixteen bits per entry keeps a 32k-vocabulary run at 64 KB a position, as llama.cpp's own
 * KL-divergence file does. */

/* What a file was saved for; a later run compares only against a file of its own values. */
typedef struct lb_logprob_header {
    int64_t n_vocab;      /* entries per position; stored as u32 */
    int64_t ctx;          /* window length in tokens; u32 */
    int64_t n_windows;    /* windows evaluated; u32 */
    int64_t n_positions;  /* scored positions, one record each */
    uint64_t tokens_hash; /* FNV-1a 64 of the evaluated windows' token ids */
} lb_logprob_header;

/* One record's fixed fields. */
typedef struct lb_logprob_position {
    uint32_t target;       /* the token that followed */
    uint32_t top1;         /* the most likely token */
    double target_logprob; /* log p(target), exact */
} lb_logprob_position;

/* Bytes of one record for a vocabulary of n_vocab (>= 1). */
uint64_t lb_logprob_record_bytes(int64_t n_vocab);

/* Encodes one position into `record` (lb_logprob_record_bytes(n_vocab) bytes): logprobs holds
 * log p over the vocabulary, target < n_vocab, top1 the most likely token. The bounds are
 * stored as f32 and the codes quantized against the stored bounds, so decoding is exact to
 * the code. */
void lb_logprob_encode(const double *logprobs, int64_t n_vocab, int32_t target,
                              int32_t top1, uint8_t *record);

/* The n_vocab log-probabilities of a record as stored (16-bit codes), into out. */
void lb_logprob_decode(const uint8_t *record, int64_t n_vocab, double *out);

/* The fixed fields of a record. */
lb_logprob_position lb_logprob_position_of(const uint8_t *record);

/* ---- reading ---- */

typedef struct lb_logprob_file {
    const char *path;
    lb_logprob_header header;
    uint64_t record_bytes;
    const uint8_t *records;  /* header.n_positions records of record_bytes, in the buffer */
    lb_mapped_file *file;    /* NULL when read from memory */
} lb_logprob_file;

/* Opens a log-probability file and checks, in this order: the magic (CORRUPT_FILE), that the
 * header equals `expected` when it is not NULL (BAD_INPUT: the file is from another text,
 * --ctx, --chunks or vocabulary), that the size is the header's record count exactly, and that
 * every record's token ids are inside the vocabulary (CORRUPT_FILE). Errors also IO, NOMEM;
 * messages name the file, the field and the byte offset; *out is NULL on error. */
lb_status lb_logprob_open(lb_logprob_file **out, const char *path,
                                 const lb_logprob_header *expected);

/* The same over a caller-owned buffer that outlives the result; `name` is used in messages
 * (NULL: "<memory>"). */
lb_status lb_logprob_open_memory(lb_logprob_file **out, const char *name,
                                        const void *data, uint64_t size,
                                        const lb_logprob_header *expected);

/* Takes NULL and clears the pointer. */
void lb_logprob_close(lb_logprob_file **f);

/* Record `position` (0 .. header.n_positions - 1). */
const uint8_t *lb_logprob_record(const lb_logprob_file *f, int64_t position);

/* ---- writing (temp file + fsync + rename: a failed run leaves no file) ---- */

typedef struct lb_logprob_writer lb_logprob_writer;

/* Starts a file for `header` and writes the header. Errors: INVALID_ARG (n_vocab < 1, a count
 * past its field), IO, NOMEM. */
lb_status lb_logprob_writer_open(lb_logprob_writer **out, const char *path,
                                        const lb_logprob_header *header);

/* Appends n_records encoded records (lb_logprob_encode). Errors: INVALID_ARG (more records
 * than the header holds), IO. */
lb_status lb_logprob_writer_append(lb_logprob_writer *w, const uint8_t *records,
                                          int64_t n_records);

/* Publishes the file once it holds header.n_positions records (INVALID_ARG otherwise, and
 * nothing is published), IO; frees the writer either way and clears the pointer. */
lb_status lb_logprob_writer_commit(lb_logprob_writer **w);

/* Drops an unfinished file (no temp file remains); takes NULL and clears the pointer. */
void lb_logprob_writer_abort(lb_logprob_writer **w);

#endif
