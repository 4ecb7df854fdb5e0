/* Dense linear algebra for the quantizers: symmetric positive definite factorizations through
 * LAPACKE (linalg/lapack.c), GEMM / GEMV and BLAS's thread count through CBLAS / OpenBLAS
 * (linalg/blas.c), symmetric permutations (linalg/linalg.c). The only module that talks to
 * BLAS and LAPACK. All matrices are row-major double with a leading dimension equal to n unless
 * stated. */
#ifndef LB_LINALG_LINALG_H
#define LB_LINALG_LINALG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"

/* Cholesky factor of a symmetric positive definite A = Uᵀ U, written over the upper triangle
 * (diagonal included); the strict lower triangle is left untouched. LB_ERR_NOT_POSITIVE_DEFINITE
 * when a pivot is not positive. */
LB_API lb_status lb_linalg_cholesky_upper(double *a, int64_t n);

/* Inverse of an upper triangular matrix (diagonal nonzero), written over the upper triangle;
 * the strict lower triangle is left untouched. */
LB_API lb_status lb_linalg_triangular_inverse_upper(double *a, int64_t n);

/* Copies the strict lower triangle over the strict upper one (restoring a symmetric matrix
 * whose upper triangle a factorization overwrote), or the other way round. */
LB_API void lb_linalg_mirror_lower(double *a, int64_t n);
LB_API void lb_linalg_mirror_upper(double *a, int64_t n);

/* a' = J a J with J the reversal permutation (a'[i][j] = a[n-1-i][n-1-j]): the n x n array
 * reversed in place. */
LB_API void lb_linalg_reverse(double *a, int64_t n);

/* Reorders rows and columns of the n x n matrix a in place: a'[i][j] = a[perm[i]][perm[j]].
 * perm must be a permutation of 0..n-1. */
LB_API lb_status lb_linalg_permute_symmetric(double *a, int64_t n, const int64_t *perm);

/* C = alpha * op(A) op(B) + beta * C, row-major, through CBLAS (op = transpose when the flag
 * is set). Dimensions are those of op(A) (m x k) and op(B) (k x n). LB_ERR_UNSUPPORTED when a
 * dimension or leading dimension exceeds the BLAS integer (nothing is computed then). */
LB_API lb_status lb_linalg_dgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                                 int64_t k, double alpha, const double *a, int64_t lda,
                                 const double *b, int64_t ldb, double beta, double *c,
                                 int64_t ldc);
LB_API lb_status lb_linalg_sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                                 int64_t k, float alpha, const float *a, int64_t lda,
                                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* y = alpha * A x + beta * y with A row-major m x n (lda), unit strides, through CBLAS. */
LB_API lb_status lb_linalg_sgemv(int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
                                 const float *x, float beta, float *y);

/* BLAS threads: the quantizers parallelize with OpenMP themselves and call BLAS from inside
 * parallel regions, so they pin BLAS to one thread around their work and restore it after. */
LB_API int lb_linalg_blas_threads_pin(void);
LB_API void lb_linalg_blas_threads_restore(int previous);
/* Sets BLAS's own thread count to n (>= 1) and returns the previous count, for callers that
 * want BLAS's threading instead (benchmarks, thread-count tests); restore it the same way. */
LB_API int lb_linalg_blas_threads_set(int n);

#endif
