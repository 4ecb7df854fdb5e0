/* Importance-matrix (imatrix) files: the in-memory data and llama.cpp's two file formats (GGUF
 * and legacy .dat), read and written. Accumulating calibration data is quant/imatrix.h's. */
#ifndef LB_FORMATS_IMATRIX_FILE_H
#define LB_FORMATS_IMATRIX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* ---- Representation ----
 *
 * An entry holds, for each of its n_mat matrices, the sum over the calibration inputs x that
 * reached the matrix of x_j^2 per input column j, and how many inputs were summed. The
 * importance of column j (what llama.cpp's quantize weighs rounding errors by) is
 * sum_sq[j] / count, and 1 for a matrix whose count is 0 (never reached, e.g. an unused
 * expert), as llama.cpp's quantize does.
 *
 * ---- GGUF format (llama.cpp tools/imatrix/imatrix.cpp save_imatrix / load_imatrix, and
 * tools/quantize/quantize.cpp load_imatrix; llama.cpp since mid-2025) ----
 *
 * A GGUF v3 file (alignment 32), metadata in this order:
 *   general.type        STRING  "imatrix"
 *   imatrix.datasets    ARRAY of STRING: the calibration file names
 *   imatrix.chunk_count UINT32: chunks processed
 *   imatrix.chunk_size  UINT32: tokens per chunk (n_ctx / n_parallel)
 * and per weight, in byte order of the names, two F32 tensors:
 *   "<weight>.in_sum2"  ne = [n_per_row, n_mat]: sum of x^2 per column and matrix
 *   "<weight>.counts"   ne = [1, n_mat]: inputs summed per matrix (integers stored as floats)
 * Dimensions are written as ggml writes them: trailing 1s dropped, so with n_mat == 1 both are
 * one-dimensional ([n_per_row] and [1]). llama.cpp may also write "<weight>.in_sum" (sum of x,
 * same shape as in_sum2); the reader checks its type and size and ignores its values, the
 * writer does not write it. Tensor names must stay under ggml's 64-byte limit, so the writer
 * rejects weight names longer than 55 bytes. llama.cpp's quantize needs all three imatrix.*
 * keys and reads datasets[0], so the writer writes a single "" when there is no dataset and
 * the reader drops empty dataset names.
 * Read: in_sum2 must be F32 with ne = [n_per_row >= 1, n_mat >= 1], counts F32 with n_mat
 * elements (llama.cpp compares element counts only), and each needs the other; tensors with
 * other names are ignored. Counts are rounded to integers as llama.cpp does (std::lround).
 * chunk_count and chunk_size may have any integer type (llama.cpp writes UINT32) and may be
 * missing (then 0); general.type, when present, must be "imatrix".
 *
 * ---- Legacy format (save_imatrix_legacy / load_imatrix_legacy, `--output-format dat`) ----
 *
 * Little-endian, no magic:
 *   int32 n_entries (>= 1)
 *   n_entries times: int32 name length, name bytes (no NUL), int32 ncall, int32 nval,
 *                    float32 values[nval]
 *   optional trailer: int32 chunk count (llama.cpp's m_last_chunk),
 *                     then int32 dataset name length and the name's bytes
 * Entries are in byte order of their names. llama.cpp writes
 *   ncall = ceil(max count / chunk_size) and values[i] = (sum_sq[i] / count) * ncall,
 * (1 * ncall for a matrix whose count is 0; entries whose counts are all 0 are skipped), and
 * its quantize divides values by ncall (or uses them as they are when ncall is 0).
 * Read: an entry gets n_mat = 1 and n_per_row = nval (the format does not record how the
 * values split into matrices), sum_sq = values and counts[0] = ncall (1 when ncall is 0), so
 * that importance = values / ncall, exactly what quantize uses. Counts are therefore in
 * units of chunks, not tokens (scale sum_sq and counts alike before adding token-counted
 * data to such an entry), and chunk_size is 0 (unknown); chunk_count is the trailer's
 * chunk count (0 without the trailer). A trailer with the chunk count only is accepted (newer
 * llama.cpp reads it); anything after the dataset name is rejected.
 * Write: ncall = ceil(max count / chunk_size) when chunk_size > 0, else max count (which
 * turns entries read from a legacy file back into the same ncall and values); values are
 * computed in double and rounded to float; the trailer carries chunk_count and the last
 * dataset (length 0 when there is none).
 *
 * Readers check every count, length and offset against the input size before use and reject
 * malformed input with LB_ERR_CORRUPT_FILE and a one-line message naming the file, the field
 * and the byte offset: NaN, infinite or negative sums or counts, duplicate or empty names,
 * mismatched shapes, truncation, trailing bytes. */

typedef struct lb_imatrix_entry {
    char *name;        /* weight name, e.g. "blk.0.attn_q.weight" */
    int64_t n_per_row; /* input columns (ne[0] of the weight), >= 1 */
    int64_t n_mat;     /* 1 for ordinary weights (> 1 for stacked expert weights) */
    double *sum_sq;    /* [n_mat][n_per_row]: sum over calibration inputs of x^2 */
    int64_t *counts;   /* [n_mat]: inputs accumulated (tokens; chunks for legacy input) */
} lb_imatrix_entry;

typedef struct lb_imatrix {
    int64_t n_entries;
    lb_imatrix_entry *entries; /* sorted by name (strcmp order), names unique */
    int64_t chunk_count;       /* calibration chunks seen */
    int64_t chunk_size;        /* tokens per chunk, 0 when unknown */
    int64_t n_datasets;
    char **datasets;           /* calibration file names, non-empty strings */
} lb_imatrix;

typedef enum lb_imatrix_format {
    LB_IMATRIX_GGUF = 0,
    LB_IMATRIX_LEGACY = 1,
} lb_imatrix_format;

/* An empty imatrix (no entries, no datasets, chunk_count and chunk_size 0). Errors: NOMEM. */
LB_API lb_status lb_imatrix_create(lb_imatrix **out);

/* Frees everything; takes NULL and clears the pointer. */
LB_API void lb_imatrix_free(lb_imatrix **m);

/* The entry of weight `name`, or NULL. O(log n_entries). */
LB_API const lb_imatrix_entry *lb_imatrix_find(const lb_imatrix *m, const char *name);

/* The entry of weight `name` in *out: the existing one, whatever its shape (*created false),
 * or a new one with n_per_row x n_mat zero sums and zero counts at its sorted place (*created
 * true; the name is copied). Errors: INVALID_ARG (NULL, empty name, n_per_row or n_mat < 1, a
 * size past memory), NOMEM; on error m is unchanged. */
LB_API lb_status lb_imatrix_insert(lb_imatrix *m, const char *name, int64_t n_per_row,
                                   int64_t n_mat, lb_imatrix_entry **out, bool *created);

/* Appends a copy of name[0..len) to the datasets (the caller checks that it is non-empty).
 * Errors: NOMEM (m unchanged). */
LB_API lb_status lb_imatrix_append_dataset(lb_imatrix *m, const char *name, size_t len);

/* Reads an imatrix file of either format; a file that starts with "GGUF" is GGUF, any other
 * is legacy. Errors: IO, CORRUPT_FILE, UNSUPPORTED (a GGUF feature lowbit lacks, e.g. an
 * unknown tensor type), NOMEM; *out is NULL on error. */
LB_API lb_status lb_imatrix_read(lb_imatrix **out, const char *path);

/* The same over a caller-owned buffer; `name` is used in messages (NULL: "<memory>"). */
LB_API lb_status lb_imatrix_read_memory(lb_imatrix **out, const char *name, const void *data,
                                        size_t size);

/* Writes `m` in `format` through a temp file + fsync + rename: on error the target is untouched
 * and no temp file remains. GGUF keeps every entry (a matrix with count 0 reads back as
 * importance 1); legacy skips entries whose counts are all 0. Errors: INVALID_ARG (no entries,
 * or for legacy none with data; entries not sorted and unique; a name, count or size the
 * format cannot hold, see above), NUMERIC (a value that is negative, NaN or past the float32
 * range), IO, NOMEM. */
LB_API lb_status lb_imatrix_write(const lb_imatrix *m, const char *path,
                                  lb_imatrix_format format);

/* LB_IMATRIX_LEGACY for a path ending in ".dat" (any case), else LB_IMATRIX_GGUF. */
LB_API lb_imatrix_format lb_imatrix_format_for_path(const char *path);

#endif
