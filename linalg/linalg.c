/* Symmetric mirroring, reversal and permutation of dense matrices (no BLAS, no LAPACK). */
#include "linalg/linalg.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc_internal.h"

void lb_linalg_mirror_lower(double *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            a[i * n + j] = a[j * n + i];
}

void lb_linalg_mirror_upper(double *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            a[j * n + i] = a[i * n + j];
}

void lb_linalg_reverse(double *a, int64_t n)
{
    size_t count = (size_t)n * (size_t)n;
    for (size_t i = 0, j = count - 1; i < j; i++, j--) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

lb_status lb_linalg_permute_symmetric(double *a, int64_t n, const int64_t *perm)
{
    double *row = lb_malloc((size_t)n * sizeof *row);
    bool *done = lb_calloc((size_t)n, sizeof *done);
    if (!row || !done) {
        lb_free(row);
        lb_free(done);
        return lb_nomem("out of memory permuting a %lld x %lld matrix",
                        (long long)n, (long long)n);
    }
    /* Rows: follow each cycle of the permutation, moving one row at a time. */
    for (int64_t start = 0; start < n; start++) {
        if (done[start])
            continue;
        memcpy(row, a + start * n, (size_t)n * sizeof *row);
        int64_t i = start;
        while (perm[i] != start) {
            memcpy(a + i * n, a + perm[i] * n, (size_t)n * sizeof *row);
            done[i] = true;
            i = perm[i];
        }
        memcpy(a + i * n, row, (size_t)n * sizeof *row);
        done[i] = true;
    }
    /* Columns, within each row. */
    for (int64_t i = 0; i < n; i++) {
        double *r = a + i * n;
        memcpy(row, r, (size_t)n * sizeof *row);
        for (int64_t j = 0; j < n; j++)
            r[j] = row[perm[j]];
    }
    lb_free(row);
    lb_free(done);
    return LB_OK;
}
