/* Dense linear algebra for the quantizers: symmetric positive definite factorizations and QR
 * through LAPACKE (linalg/lapack.c), GEMM / GEMV and BLAS's thread count through CBLAS /
 * OpenBLAS (linalg/blas.c), symmetric permutations (linalg/linalg.c), Hadamard matrices, the
 * randomized Hadamard transform and random orthogonal matrices (linalg/hadamard.c). The only
 * module that talks to BLAS and LAPACK. All matrices are row-major double with a leading
 * dimension equal to n unless stated. */
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

/* ---- Hadamard matrices and rotations (linalg/hadamard.c) ---- */

/* Splits n = pow2 * m with pow2 = 2^k as large as possible such that an m x m Hadamard matrix
 * is built in code: m = 1, m = q + 1 for a prime q = 3 mod 4 (Paley I: 4, 8, 12, 20, 24, 32,
 * 44, 48, 60, ...), m = 2(q + 1) for a prime q = 1 mod 4 (Paley II: 12, 28, 36, 60, 76, ...).
 * False (m = pow2 = 0) when n has no such split, e.g. n = 52 or any n with an odd factor
 * other than those. Examples: 4096 = 4096 * 1, 576 = 16 * 36, 896 = 32 * 28. */
LB_API bool lb_linalg_hadamard_split(int64_t n, int64_t *m, int64_t *pow2);

/* Writes the n x n Hadamard matrix H = H_m ⊗ H_pow2 of lb_linalg_hadamard_split's order n into
 * h (entries ±1, Hᵀ H = n I; Sylvester's H_pow2[j][j'] = (-1)^popcount(j & j')): the matrix that
 * lb_rht's transform applies. LB_ERR_UNSUPPORTED when n has no split. For tests and small n: it
 * costs n^2 doubles. */
LB_API lb_status lb_linalg_hadamard_matrix(int64_t n, double *h);

/* The normalized randomized Hadamard transform of order n, T = H diag(s) / sqrt(n) with H as
 * lb_linalg_hadamard_matrix and s seeded ±1 signs (splitmix64, common/rng.h: sign i is the top
 * bit of the i-th draw from `seed`). T is orthogonal. Applied without ever forming H: the
 * power-of-two part by a fast Walsh-Hadamard transform, the m part densely, O(n (log2 n + m))
 * per vector. A created transform is read-only: threads may apply it concurrently, each with
 * its own work buffer. */
typedef struct lb_rht lb_rht;

/* LB_ERR_UNSUPPORTED when n has no Hadamard split (see lb_linalg_hadamard_split). */
LB_API lb_status lb_linalg_rht_create(lb_rht **out, int64_t n, uint64_t seed);
/* Takes NULL and clears the pointer. */
LB_API void lb_linalg_rht_free(lb_rht **rht);
LB_API int64_t lb_linalg_rht_size(const lb_rht *rht);
/* In place on n_rows vectors of n doubles, row r at x + r * stride (stride >= n): v <- T v, or
 * v <- Tᵀ v (the inverse) with transpose. work: n doubles of scratch, or NULL to have one
 * allocated per call (then LB_ERR_NOMEM is possible). */
LB_API lb_status lb_linalg_rht_apply(const lb_rht *rht, double *x, int64_t n_rows,
                                     int64_t stride, bool transpose, double *work);

/* Writes a Haar-distributed random orthogonal n x n matrix into q: the Q factor of the QR of a
 * matrix of standard normal entries drawn from `seed` (splitmix64, Box-Muller), its columns'
 * signs set so that diag(R) > 0. Any n >= 1; the same seed gives the same matrix. */
LB_API lb_status lb_linalg_random_orthogonal(double *q, int64_t n, uint64_t seed);

/* QR of the n x n matrix a (LAPACKE dgeqrf + dorgqr): a is replaced by Q and r_diag (n) gets
 * the diagonal of R. */
LB_API lb_status lb_linalg_qr_orthogonal(double *a, int64_t n, double *r_diag);

#endif
