/* Importance matrices (imatrix): accumulating the mean square of each weight's calibration
 * inputs per input column, and the importance that quantization weighs rounding errors by.
 * The data structure and llama.cpp's file formats are formats/imatrix_file.h's. */
#ifndef LB_QUANT_IMATRIX_H
#define LB_QUANT_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/imatrix_file.h"

/* Adds sum_sq (n_per_row values, each finite and >= 0) and `count` inputs to matrix `mat` of
 * the entry `name`, creating it with n_mat matrices (zero sums and counts) when absent. The
 * name and values are copied. Errors: INVALID_ARG (empty name, n_per_row or n_mat < 1,
 * mat out of range, count < 0, an existing entry of another shape, a count that would pass
 * INT64_MAX), NUMERIC (a NaN, infinite or negative value), NOMEM. On error m is unchanged. */
LB_API lb_status lb_imatrix_add_matrix(lb_imatrix *m, const char *name, int64_t n_per_row,
                                       int64_t n_mat, int64_t mat, const double *sum_sq,
                                       int64_t count);

/* lb_imatrix_add_matrix with n_mat 1 and mat 0: an ordinary weight. */
LB_API lb_status lb_imatrix_add(lb_imatrix *m, const char *name, int64_t n_per_row,
                                const double *sum_sq, int64_t count);

/* Appends a calibration file name (copied; must be non-empty). Errors: INVALID_ARG, NOMEM. */
LB_API lb_status lb_imatrix_add_dataset(lb_imatrix *m, const char *name);

/* The importance of each input column of matrix `mat`, as llama.cpp's quantize computes it:
 * out[j] = (float)(sum_sq[j] / count), or 1 for every column when count is 0. `out` holds
 * n_per_row floats. Errors: INVALID_ARG (NULL, mat out of range). */
LB_API lb_status lb_imatrix_importance(const lb_imatrix_entry *e, int64_t mat, float *out);

#endif
