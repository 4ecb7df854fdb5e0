/* LAPACKE / CBLAS wrappers, symmetric permutation and the seeded generator. */
#include "linalg/linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

lb_status lb_linalg_cholesky_upper(double *a, int64_t n)
{
    if (!a || n < 1 || n > INT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "cholesky: bad matrix (n = %lld)", (long long)n);
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, a, (lapack_int)n);
    if (info > 0)
        return lb_error(LB_ERR_NOT_POSITIVE_DEFINITE,
                        "cholesky: the leading minor of order %d is not positive definite",
                        (int)info);
    if (info < 0)
        return lb_error(LB_ERR_INVALID_ARG, "cholesky: LAPACKE_dpotrf argument %d", (int)-info);
    return LB_OK;
}

lb_status lb_linalg_triangular_inverse_upper(double *a, int64_t n)
{
    if (!a || n < 1 || n > INT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "inverse: bad matrix (n = %lld)", (long long)n);
    lapack_int info = LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'U', 'N', (lapack_int)n, a, (lapack_int)n);
    if (info > 0)
        return lb_error(LB_ERR_NOT_POSITIVE_DEFINITE,
                        "inverse: the triangular factor has a zero at diagonal %d", (int)info);
    if (info < 0)
        return lb_error(LB_ERR_INVALID_ARG, "inverse: LAPACKE_dtrtri argument %d", (int)-info);
    return LB_OK;
}

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
        return lb_error(LB_ERR_NOMEM, "out of memory permuting a %lld x %lld matrix",
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

/* OpenBLAS's CBLAS takes blasint (32-bit unless built with INTERFACE64). */
static lb_status check_blas_dims(const char *routine, int64_t a, int64_t b, int64_t c,
                                 int64_t d, int64_t e, int64_t f)
{
    int64_t dims[6] = {a, b, c, d, e, f};
    int64_t limit = sizeof(blasint) == sizeof(int64_t) ? INT64_MAX : INT32_MAX;
    for (int i = 0; i < 6; i++)
        if (dims[i] < 0 || dims[i] > limit)
            return lb_error(LB_ERR_UNSUPPORTED,
                            "%s: dimension %lld is outside BLAS's index range [0, %lld]", routine,
                            (long long)dims[i], (long long)limit);
    return LB_OK;
}

lb_status lb_linalg_dgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                          double alpha, const double *a, int64_t lda, const double *b,
                          int64_t ldb, double beta, double *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return LB_OK;
    lb_status status = check_blas_dims("dgemm", m, n, k, lda, ldb, ldc);
    if (status != LB_OK)
        return status;
    cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k,
                alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return LB_OK;
}

lb_status lb_linalg_sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                          float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return LB_OK;
    lb_status status = check_blas_dims("sgemm", m, n, k, lda, ldb, ldc);
    if (status != LB_OK)
        return status;
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k,
                alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return LB_OK;
}

lb_status lb_linalg_sgemv(int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
                          const float *x, float beta, float *y)
{
    if (m <= 0 || n <= 0)
        return LB_OK;
    lb_status status = check_blas_dims("sgemv", m, n, lda, 0, 0, 0);
    if (status != LB_OK)
        return status;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)m, (blasint)n, alpha, a, (blasint)lda, x,
                1, beta, y, 1);
    return LB_OK;
}

int lb_linalg_blas_threads_pin(void)
{
    int previous = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return previous;
}

void lb_linalg_blas_threads_restore(int previous)
{
    openblas_set_num_threads(previous);
}
