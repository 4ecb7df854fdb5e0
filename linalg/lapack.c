/* The one file that calls LAPACKE: Cholesky factor, triangular inverse, QR. */
#include "linalg/linalg.h"

#include <lapacke.h>
#include <stdint.h>

#include "common/alloc_internal.h"

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

lb_status lb_linalg_qr_orthogonal(double *a, int64_t n, double *r_diag)
{
    if (!a || !r_diag || n < 1 || n > INT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "qr: bad matrix (n = %lld)", (long long)n);
    double *tau = lb_malloc((size_t)n * sizeof *tau);
    if (!tau)
        return lb_nomem("out of memory for the QR reflectors of order %lld", (long long)n);
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, a,
                                     (lapack_int)n, tau);
    if (info == 0) {
        for (int64_t i = 0; i < n; i++)
            r_diag[i] = a[i * n + i];
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, (lapack_int)n, a,
                              (lapack_int)n, tau);
    }
    lb_free(tau);
    if (info != 0)
        return lb_error(LB_ERR_INVALID_ARG, "qr: LAPACKE_dgeqrf/dorgqr returned %d", (int)info);
    return LB_OK;
}
