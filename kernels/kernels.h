/* The kernels' type registry: per tensor type, the reference quantize/dequantize of a row and
 * the dot products the forward pass and the quantizers build on. */
#ifndef LB_KERNELS_KERNELS_H
#define LB_KERNELS_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"

/* Quantizes n floats (n a multiple of the block size) into blocks. importance (length n,
 * >= 0, may be NULL) weights the squared error that the scale search minimizes; NULL gives
 * llama.cpp's reference rounding, byte for byte. */
typedef void (*lb_quantize_row_fn)(const float *x, void *y, int64_t n, const float *importance);
typedef void (*lb_dequantize_row_fn)(const void *x, float *y, int64_t n);
/* Dot product of a weight row with an activation row stored in the type's vec_dot_type. */
typedef float (*lb_vec_dot_fn)(const void *w, const void *a, int64_t n);
/* Dot product of a weight row with f32 activations. */
typedef float (*lb_vec_dot_f32_fn)(const void *w, const float *a, int64_t n);

/* The grid of one quantized block (block_size weights), for rounding with error feedback
 * (GPTQ) onto the scales a quantizer chose: weight i of the block decodes to
 * scale[i] * level(q) + offset[i] for an integer q in [qmin, qmax], bit for bit as
 * dequantize_row computes it (f32, product rounded, then sum). level(q) is the type's table
 * entry levels[q - qmin] (the non-uniform grids: IQ4_NL, IQ4_XS), or q itself where the table
 * is NULL (the affine grids). */
typedef void (*lb_block_grid_fn)(const void *block, float *scale, float *offset);
/* Reads / replaces the integer levels q (in [qmin, qmax], block_size of them) of one block,
 * leaving its scales untouched. */
typedef void (*lb_block_get_levels_fn)(const void *block, int8_t *q);
typedef void (*lb_block_set_levels_fn)(void *block, const int8_t *q);

typedef struct lb_kernel_type {
    lb_type type;
    lb_type vec_dot_type;                /* activations' type for vec_dot: Q8_0, Q8_K or F32 */
    lb_quantize_row_fn quantize_row;     /* scalar reference */
    lb_dequantize_row_fn dequantize_row; /* scalar reference */
    lb_vec_dot_fn vec_dot;               /* scalar reference, NULL for Q8_K (activations only) */
    lb_vec_dot_f32_fn vec_dot_f32;       /* scalar reference */
    /* Block grids: NULL for the float types (block size 1, no affine grid) and Q8_K. */
    lb_block_grid_fn block_grid;
    lb_block_get_levels_fn block_get_levels;
    lb_block_set_levels_fn block_set_levels;
    int qmin, qmax;                      /* the levels' range (0, 0 without a grid) */
    const float *levels;                 /* qmax - qmin + 1 ascending values that level q stands
                                            for (levels[q - qmin]), or NULL: level q is q */
} lb_kernel_type;

/* The kernels of a type, or NULL for a type without them. */
LB_API const lb_kernel_type *lb_kernels_type(lb_type type);

/* Whether a row of `row_length` elements can be stored in `type`. */
LB_API bool lb_kernels_row_fits(lb_type type, int64_t row_length);

/* The type a tensor with rows of `row_length` gets when `wanted` does not fit, following
 * llama.cpp's substitutions (llama_tensor_get_type, early 2025): Q2_K, Q3_K and IQ4_XS ->
 * IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; F16 where that substitute does not fit
 * either, and for every other type (llama.cpp stops with an error there). Returns `wanted` when
 * it fits. */
LB_API lb_type lb_kernels_fallback_type(lb_type wanted, int64_t row_length);

/* Bytes of workspace lb_gemm needs for `batch` activation rows of `cols` elements; 0 when the
 * type has no kernels or the size overflows. */
LB_API uint64_t lb_gemm_workspace_bytes(lb_type weight_type, int64_t cols, int64_t batch);

/* Y[b][r] = Σ_c W[r][c] X[b][c] for a weight matrix of `rows` rows of `cols` elements in
 * weight_type (any type with kernels), activations X [batch][cols] f32, output Y
 * [batch][rows] f32. Activations are first quantized to the type's vec_dot_type into
 * `workspace` (lb_gemm_workspace_bytes); rows are split over OpenMP threads, and each output is
 * what one dot product gives, so results are identical for any thread count and batch
 * composition. batch 1 is the GEMV. The kernels are the best this CPU runs (lb_cpu_flags()).
 * Errors: LB_ERR_INVALID_ARG (no kernels, cols not a multiple of the block size). */
LB_API lb_status lb_gemm(lb_type weight_type, const void *weights, int64_t rows, int64_t cols,
                         const float *x, int64_t batch, float *y, void *workspace);

/* lb_gemm with the kernels limited to the LB_CPU_* levels in cpu_flags (and to what this CPU
 * runs): 0 gives the C references. For benchmarks and tests of one ISA level. */
LB_API lb_status lb_gemm_cpu(unsigned cpu_flags, lb_type weight_type, const void *weights,
                             int64_t rows, int64_t cols, const float *x, int64_t batch,
                             float *y, void *workspace);

/* Dequantizes n elements of `type` (any type of the registry; n >= 0 and a multiple of the
 * type's block size) from src into dst with the type's reference dequantize_row, as llama.cpp
 * dequantizes. Its signature is lb_checkpoint_decode_fn, so that a program sets
 * lb_checkpoint_settings.decode = lb_kernels_dequantize to read packed checkpoints as f32
 * (formats/ does not call up into kernels/). Errors: LB_ERR_UNSUPPORTED (a type without
 * kernels), LB_ERR_INVALID_ARG (n, or a NULL buffer). */
LB_API lb_status lb_kernels_dequantize(lb_type type, const void *src, int64_t n, float *dst);

#endif
