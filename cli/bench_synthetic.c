/* Synthetic GPTQ inputs for `lowbit bench gptq`: random weights and a correlated Hessian. */
#include "cli/bench_synthetic.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "common/alloc.h"
#include "linalg/linalg.h"

/* Latent factors of the synthetic inputs and tokens per lb_hessian_add call. */
#define LATENT 32
#define TOKENS_PER_ADD 512

double lb_bench_uniform(lb_rng *rng)
{
    return lb_rng_unit(rng) * 2.0 - 1.0;
}

double lb_bench_normal(lb_rng *rng)
{
    double u = ((double)(lb_rng_next(rng) >> 11) + 0.5) * 0x1p-53;
    double v = (double)(lb_rng_next(rng) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

void lb_bench_synthetic_weights(float *w, int64_t rows, int64_t cols, uint64_t seed)
{
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        w[i] = (float)(0.02 * lb_bench_normal(&rng));
}

/* Per-channel scales s = exp(N(0, 1/4)), 1% of them 8x larger (outlier channels). */
static void channel_scales(lb_rng *rng, float *scale, int64_t cols)
{
    for (int64_t c = 0; c < cols; c++) {
        double s = exp(0.5 * lb_bench_normal(rng));
        scale[c] = (float)(lb_rng_below(rng, 100) == 0 ? 8.0 * s : s);
    }
}

/* H = Σ x xᵀ over `tokens` synthetic inputs x = s ∘ (g M + 0.3 u): g ~ N(0, I) over LATENT
 * factors, M ~ N(0, 1/LATENT), u uniform with unit variance, and the channel scales s, so that
 * H is correlated, well away from diagonal and with a spread diagonal like a real layer's. */
lb_status lb_bench_synthetic_hessian(int64_t cols, int64_t tokens, uint64_t seed,
                                     lb_hessian *hs, double *seconds, double *flops)
{
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t batch = TOKENS_PER_ADD < tokens ? TOKENS_PER_ADD : tokens;
    float *scale = lb_malloc((size_t)cols * sizeof *scale);
    float *m = lb_malloc((size_t)(LATENT * cols) * sizeof *m);
    float *g = lb_malloc((size_t)(batch * LATENT) * sizeof *g);
    float *x = lb_malloc((size_t)(batch * cols) * sizeof *x);
    lb_status status = LB_OK;
    int blas = -1;
    memset(hs, 0, sizeof *hs);
    *seconds = 0.0;
    *flops = 0.0;
    if (!scale || !m || !g || !x) {
        status = lb_error(LB_ERR_NOMEM, "out of memory for the synthetic inputs");
        goto done;
    }
    if ((status = lb_hessian_init(hs, cols)) != LB_OK)
        goto done;
    channel_scales(&rng, scale, cols);
    for (int64_t l = 0; l < LATENT; l++)
        for (int64_t c = 0; c < cols; c++)
            m[l * cols + c] = (float)(lb_bench_normal(&rng) / sqrt((double)LATENT)) * scale[c];
    /* The small G M products run on one BLAS thread: OpenBLAS workers left spinning between
     * them would compete with lb_hessian_add's OpenMP threads. */
    blas = lb_linalg_blas_threads_pin();
    for (int64_t t0 = 0; t0 < tokens; t0 += batch) {
        int64_t nt = tokens - t0 < batch ? tokens - t0 : batch;
        for (int64_t i = 0; i < nt * LATENT; i++)
            g[i] = (float)lb_bench_normal(&rng);
        status = lb_linalg_sgemm(false, false, nt, cols, LATENT, 1.0f, g, LATENT, m, cols, 0.0f,
                                 x, cols);
        if (status != LB_OK)
            goto done;
        for (int64_t t = 0; t < nt; t++)
            for (int64_t c = 0; c < cols; c++)
                x[t * cols + c] += (float)(0.3 * sqrt(3.0) * lb_bench_uniform(&rng)) * scale[c];
        double start = omp_get_wtime();
        status = lb_hessian_add(hs, x, nt);
        *seconds += omp_get_wtime() - start;
        if (status != LB_OK)
            goto done;
    }
    lb_hessian_finish(hs);
    *flops = lb_hessian_add_flops(cols, tokens);
done:
    if (blas >= 0)
        lb_linalg_blas_threads_restore(blas);
    if (status != LB_OK)
        lb_hessian_free(hs);
    lb_free(scale);
    lb_free(m);
    lb_free(g);
    lb_free(x);
    return status;
}
