/* H += Xᵀ X by tiles of rows of H: tile t computes H[t0:t1, t0:n] with one GEMM, so only the
 * upper triangle (and the diagonal tiles whole) is computed, and each element is always summed
 * by the same call whatever thread runs it. */
#include "quant/hessian.h"

#include <math.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "linalg/linalg.h"

#define TILE 64

lb_status lb_hessian_init(lb_hessian *hs, int64_t n)
{
    memset(hs, 0, sizeof *hs);
    uint64_t count;
    /* n <= INT32_MAX keeps every BLAS call below within its index range. */
    if (n < 1 || n > INT32_MAX || !lb_size_mul((uint64_t)n, (uint64_t)n, &count) ||
        count > SIZE_MAX / 8)
        return lb_error(LB_ERR_INVALID_ARG, "Hessian of dimension %lld", (long long)n);
    hs->h = lb_calloc((size_t)count, sizeof *hs->h);
    if (!hs->h)
        return lb_nomem("out of memory for a %lld x %lld Hessian (%.1f MiB)",
                        (long long)n, (long long)n, (double)count * 8.0 / 1048576.0);
    hs->n = n;
    return LB_OK;
}

void lb_hessian_free(lb_hessian *hs)
{
    lb_free(hs->h);
    lb_free(hs->scratch);
    memset(hs, 0, sizeof *hs);
}

void lb_hessian_reset(lb_hessian *hs)
{
    memset(hs->h, 0, (size_t)hs->n * (size_t)hs->n * sizeof *hs->h);
    hs->n_tokens = 0;
}

double lb_hessian_add_flops(int64_t n, int64_t n_tokens)
{
    double flops = 0.0;
    for (int64_t t0 = 0; t0 < n; t0 += TILE) {
        int64_t rows = n - t0 < TILE ? n - t0 : TILE;
        flops += 2.0 * (double)rows * (double)(n - t0) * (double)n_tokens;
    }
    return flops;
}

lb_status lb_hessian_add(lb_hessian *hs, const float *x, int64_t n_tokens)
{
    int64_t n = hs->n;
    if (n_tokens < 1)
        return LB_OK;
    if (n_tokens > INT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "lb_hessian_add: %lld tokens in one call (at most %d)",
                        (long long)n_tokens, INT32_MAX);
    if (n_tokens > hs->scratch_tokens) {
        double *grown = lb_realloc(hs->scratch, (size_t)n_tokens * (size_t)n * sizeof *grown);
        if (!grown)
            return lb_nomem("out of memory for %lld calibration tokens",
                            (long long)n_tokens);
        hs->scratch = grown;
        hs->scratch_tokens = n_tokens;
    }
    for (int64_t i = 0; i < n_tokens * n; i++) {
        if (!isfinite(x[i]))
            return lb_error(LB_ERR_NUMERIC, "calibration activation %lld of token %lld is %g",
                            (long long)(i % n), (long long)(i / n), (double)x[i]);
        hs->scratch[i] = x[i];
    }
    int64_t n_tiles = (n + TILE - 1) / TILE;
    int blas = lb_linalg_blas_threads_pin();
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_tiles; t++) {
        int64_t t0 = t * TILE, rows = n - t0 < TILE ? n - t0 : TILE;
        (void)lb_linalg_dgemm(true, false, rows, n - t0, n_tokens, /* sizes checked above */ 1.0, hs->scratch + t0, n,
                        hs->scratch + t0, n, 1.0, hs->h + t0 * n + t0, n);
    }
    lb_linalg_blas_threads_restore(blas);
    hs->n_tokens += n_tokens;
    return LB_OK;
}

void lb_hessian_finish(lb_hessian *hs)
{
    int64_t n = hs->n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            hs->h[i * n + j] = hs->h[j * n + i];
}
