/* Synthetic inputs for `lowbit bench gptq`: a layer's weights and a correlated Hessian built
 * from seeded random tokens, so the benchmark needs no model and repeats exactly. */
#ifndef LB_CLI_BENCH_SYNTHETIC_H
#define LB_CLI_BENCH_SYNTHETIC_H

#include <stdint.h>

#include "common/rng.h"
#include "common/status.h"
#include "quant/hessian.h"

/* Uniform in [-1, 1) in double: 2 * lb_rng_unit - 1, exact. */
double lb_bench_uniform(lb_rng *rng);

/* Standard normal (Box-Muller, one value per call: the generator is cheap next to the rest). */
double lb_bench_normal(lb_rng *rng);

/* w[rows][cols] ~ N(0, 0.02^2), i.i.d. from lb_rng seeded with `seed`. */
void lb_bench_synthetic_weights(float *w, int64_t rows, int64_t cols, uint64_t seed);

/* Initializes `hs` (cols x cols) and fills it with H = Σ x xᵀ over `tokens` synthetic inputs x,
 * correlated through a few latent factors, with a spread diagonal and 1% outlier channels,
 * like a real layer's (see the .c file), then lb_hessian_finish. Only the lb_hessian_add calls
 * are timed: *seconds their wall time, *flops the GEMM work they do. On failure `hs` is freed.
 * LB_ERR_NOMEM, or lb_hessian_add's error. */
lb_status lb_bench_synthetic_hessian(int64_t cols, int64_t tokens, uint64_t seed,
                                     lb_hessian *hs, double *seconds, double *flops);

#endif
