/* Second-order statistics of a linear layer's inputs: H = Σ x xᵀ over calibration tokens,
 * accumulated in double. diag(H) is the importance matrix (imatrix) of the layer. */
#ifndef LB_QUANT_HESSIAN_H
#define LB_QUANT_HESSIAN_H

#include <stdint.h>

#include "common/status.h"

typedef struct lb_hessian {
    int64_t n;        /* input dimension */
    int64_t n_tokens; /* tokens accumulated */
    double *h;        /* [n][n]; only the upper triangle is kept up to date until finish */
    double *scratch;  /* the current batch in double */
    int64_t scratch_tokens;
} lb_hessian;

LB_API lb_status lb_hessian_init(lb_hessian *hessian, int64_t n);
LB_API void lb_hessian_free(lb_hessian *hessian);
/* Clears the sums, keeping the buffers. */
LB_API void lb_hessian_reset(lb_hessian *hessian);

/* Adds x xᵀ for each of the n_tokens rows of x ([n_tokens][n] f32). OpenMP over fixed tiles of
 * H, so the sums do not depend on the thread count. LB_ERR_NUMERIC on NaN/Inf inputs. */
LB_API lb_status lb_hessian_add(lb_hessian *hessian, const float *x, int64_t n_tokens);
/* Floating-point operations lb_hessian_add spends on `n_tokens` tokens of a dimension-n
 * Hessian (it updates the upper triangle in tiles of rows, one GEMM each), for benchmarks. */
LB_API double lb_hessian_add_flops(int64_t n, int64_t n_tokens);

/* Fills the lower triangle from the upper one: H is then a full symmetric matrix. */
LB_API void lb_hessian_finish(lb_hessian *hessian);

#endif
