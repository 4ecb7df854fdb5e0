/* The one file that calls CBLAS and OpenBLAS: GEMM / GEMV wrappers that refuse dimensions
 * past BLAS's integer, and OpenBLAS's thread count. */
#include "linalg/linalg.h"

#include <cblas.h>
#include <stdint.h>

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

int lb_linalg_blas_threads_set(int n)
{
    int previous = openblas_get_num_threads();
    openblas_set_num_threads(n);
    return previous;
}

int lb_linalg_blas_threads_pin(void)
{
    return lb_linalg_blas_threads_set(1);
}

void lb_linalg_blas_threads_restore(int previous)
{
    openblas_set_num_threads(previous);
}
