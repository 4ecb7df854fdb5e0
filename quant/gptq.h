/* Rounding a weight matrix into a packed type: RTN (the kernels' quantizer) and GPTQ (rounding
 * column by column with error feedback through the inverse Hessian), plus the proxy loss
 * tr(ΔW H ΔWᵀ) both are judged by. W is [rows][cols] f32 (a row is one output's weights over
 * the cols inputs, GGUF's ne[0] = cols); H is the cols x cols Hessian Σ x xᵀ of the inputs. */
#ifndef LB_QUANT_GPTQ_H
#define LB_QUANT_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"

typedef struct lb_gptq_options {
    double damp;           /* added to H's diagonal as a fraction of its mean (default 0.01);
                              raised tenfold, up to 1, while a Cholesky fails */
    int64_t batch_columns; /* columns per lazy batch before the trailing GEMM (default 128) */
    bool act_order;        /* sweep columns by decreasing diag(H) (default false: on
                              stories260K it lowered the proxy loss but not the perplexity);
                              the grid blocks stay the type's blocks, so the file layout is
                              unchanged */
    bool compare_rtn;      /* also measure RTN's loss and tr(W H Wᵀ) for the report (default
                              true; two extra GEMM passes against H) */
} lb_gptq_options;

LB_API lb_gptq_options lb_gptq_default_options(void);

typedef struct lb_gptq_report {
    double ref;              /* tr(W H Wᵀ) */
    double loss_rtn;         /* tr(ΔW H ΔWᵀ) of RTN with importance diag(H) */
    double loss_gptq;        /* tr(ΔW H ΔWᵀ) of the GPTQ result */
    double damp;             /* the damping fraction finally used */
    int damp_raises;         /* how often it was raised because a Cholesky failed */
    int64_t dead_columns;    /* inputs that were always zero (diag(H) = 0) */
    double seconds_loss;     /* RTN and tr(W H Wᵀ) (GEMM against H) */
    double seconds_cholesky; /* damping, factorizations and inverse */
    double seconds_sweep;    /* column sweep within lazy batches (summed over threads /
                                threads, i.e. the wall-clock share of the parallel phase) */
    double seconds_trailing; /* trailing GEMM updates, same convention */
    double trailing_flops;   /* floating-point operations of the trailing updates */
    double seconds_total;
} lb_gptq_report;

/* Nearest level on one element's affine grid (value = scale * q + offset, q in [qmin, qmax]):
 * the rounding GPTQ applies to each error-updated weight, and the one RTN's levels are
 * re-derived with once the quantizer has chosen a block's scales (for the types without a
 * level table; the others use lb_grid_nearest_table_level). */
LB_API int lb_grid_nearest_level(float w, float scale, float offset, int qmin, int qmax);

/* The same on a grid with a level table (value = scale * levels[i] + offset, f32, product
 * rounded then sum; levels ascending, n_levels >= 1): the index i whose value is nearest to w,
 * found among the decoded values themselves, so it is exact (of two values equally near, the
 * lower index's).
 * Where every index decodes alike (scale 0) or w is NaN: the index of the level nearest 0. */
LB_API int lb_grid_nearest_table_level(float w, float scale, float offset, const float *levels,
                                       int n_levels);

/* Round-to-nearest: the kernels' quantizer row by row. importance (cols values, may be NULL)
 * weights the scale search; with it, each level is then re-rounded to the nearest on the
 * chosen grid (never a worse error). NULL gives llama.cpp's reference bytes. out holds rows x
 * row_bytes(type, cols). OpenMP over rows. */
LB_API lb_status lb_rtn_quantize(const float *w, int64_t rows, int64_t cols, lb_type type,
                                 const float *importance, void *out);

/* GPTQ into `type` (any type of the kernels registry whose block size divides cols). h
 * (cols x cols, symmetric, both triangles) is used as scratch and destroyed. importance
 * for the grids is diag(H). report (may be NULL) receives the losses and timings; RTN's loss
 * and tr(W H Wᵀ) only with options->compare_rtn. The result does not depend on the thread
 * count. */
LB_API lb_status lb_gptq_quantize(const float *w, int64_t rows, int64_t cols, double *h,
                                  lb_type type, const lb_gptq_options *options, void *out,
                                  lb_gptq_report *report);

/* Rows of W per parallel work item of lb_gptq_quantize (fixed, whatever the thread count): each
 * trailing update is a GEMM of (at most) this many rows x (cols - i2) x batch_columns, the shape
 * `lowbit bench gptq` measures its BLAS baseline on. */
LB_API int64_t lb_gptq_chunk_rows(void);

/* tr(ΔW H ΔWᵀ) with ΔW = W - dequant(q) (q packed rows of `type`, or NULL for ΔW = W),
 * h symmetric with both triangles. */
LB_API lb_status lb_proxy_loss(const float *w, const void *q, lb_type type, int64_t rows,
                               int64_t cols, const double *h, double *loss);

#endif
