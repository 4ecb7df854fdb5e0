/* Importance matrices: accumulating calibration statistics, and the importance they give. */
#include "quant/imatrix.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/alloc_internal.h"

lb_status lb_imatrix_add_matrix(lb_imatrix *m, const char *name, int64_t n_per_row,
                                int64_t n_mat, int64_t mat, const double *sum_sq, int64_t count)
{
    if (!m || !name || !sum_sq)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: NULL argument");
    if (!name[0])
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: empty weight name");
    if (n_per_row < 1 || n_mat < 1 || mat < 0 || mat >= n_mat || count < 0)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: '%s': n_per_row %lld, n_mat %lld, "
                        "mat %lld, count %lld out of range", name, (long long)n_per_row,
                        (long long)n_mat, (long long)mat, (long long)count);
    uint64_t n_values;
    if (!lb_size_mul((uint64_t)n_per_row, (uint64_t)n_mat, &n_values) ||
        n_values > SIZE_MAX / sizeof(double))
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: '%s': %lld x %lld values overflow",
                        name, (long long)n_per_row, (long long)n_mat);
    for (int64_t j = 0; j < n_per_row; j++)
        if (!isfinite(sum_sq[j]) || sum_sq[j] < 0)
            return lb_error(LB_ERR_NUMERIC, "lb_imatrix_add: '%s' column %lld: sum of squares "
                            "%g is not a finite non-negative number", name, (long long)j,
                            sum_sq[j]);
    lb_imatrix_entry *e;
    bool created;
    if (lb_imatrix_insert(m, name, n_per_row, n_mat, &e, &created) != LB_OK)
        return lb_nomem("lb_imatrix_add: out of memory for '%s'", name);
    double *dst = e->sum_sq + mat * n_per_row;
    if (created) {
        /* A copy, not 0 + x: a -0.0 sum stays -0.0, as before the entry existed. */
        memcpy(dst, sum_sq, (size_t)n_per_row * sizeof *sum_sq);
        e->counts[mat] = count;
        return LB_OK;
    }
    if (e->n_per_row != n_per_row || e->n_mat != n_mat)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: '%s' has %lld columns x %lld "
                        "matrices, not %lld x %lld", name, (long long)e->n_per_row,
                        (long long)e->n_mat, (long long)n_per_row, (long long)n_mat);
    if (e->counts[mat] > INT64_MAX - count)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add: '%s': count overflows", name);
    for (int64_t j = 0; j < n_per_row; j++)
        dst[j] += sum_sq[j];
    e->counts[mat] += count;
    return LB_OK;
}

lb_status lb_imatrix_add(lb_imatrix *m, const char *name, int64_t n_per_row,
                         const double *sum_sq, int64_t count)
{
    return lb_imatrix_add_matrix(m, name, n_per_row, 1, 0, sum_sq, count);
}

lb_status lb_imatrix_add_dataset(lb_imatrix *m, const char *name)
{
    if (!m || !name || !name[0])
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_add_dataset: %s dataset name",
                        name ? "empty" : "NULL");
    if (lb_imatrix_append_dataset(m, name, strlen(name)) != LB_OK)
        return lb_nomem("lb_imatrix_add_dataset: out of memory for a dataset name");
    return LB_OK;
}

lb_status lb_imatrix_importance(const lb_imatrix_entry *e, int64_t mat, float *out)
{
    if (!e || !out || mat < 0 || mat >= e->n_mat)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_importance: %s",
                        !e || !out ? "NULL argument" : "matrix index out of range");
    const double *sum = e->sum_sq + mat * e->n_per_row;
    const int64_t count = e->counts[mat];
    for (int64_t j = 0; j < e->n_per_row; j++)
        out[j] = count > 0 ? (float)(sum[j] / (double)count) : 1.0f;
    return LB_OK;
}
