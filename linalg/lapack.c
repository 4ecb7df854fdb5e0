/* The one file that calls LAPACKE: Cholesky factor and triangular inverse. */
#include "linalg/linalg.h"

#include <lapacke.h>
#include <stdint.h>

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
