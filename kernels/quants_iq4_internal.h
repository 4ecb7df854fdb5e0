/* llama.cpp's non-uniform 4-bit types IQ4_NL and IQ4_XS: layouts, quantize, dequantize, dot. */
#ifndef LB_KERNELS_QUANTS_IQ4_INTERNAL_H
#define LB_KERNELS_QUANTS_IQ4_INTERNAL_H

#include <assert.h>
#include <stdint.h>

#include "common/status.h"

/* The structs are byte images of llama.cpp's (ggml-common.h), f16 fields as raw little-endian
 * half bits: a little-endian host is required, as for the other block types. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lowbit's packed block layouts require a little-endian host"
#endif
#endif

#define LB_QK_IQ4_NL 32  /* weights per IQ4_NL block */
#define LB_QK_IQ4_XS 256 /* weights per IQ4_XS super-block (eight sub-blocks of 32) */

/* The 16 levels both types index with a 4-bit code (ggml's kvalues_iq4nl): a fixed,
 * non-uniform grid, denser near zero, fitted to the distribution of LLM weights. Ascending. */
extern const int8_t lb_iq4_values[16];
/* The same levels as floats (exact): the level table of the types' block grids. */
extern const float lb_iq4_levels[16];

/* IQ4_NL: x[j] = d * V[q[j]], V = lb_iq4_values, q[j] = qs[j] & 15 and q[j + 16] = qs[j] >> 4
 * for j < 16 (the nibble order of Q4_0). 4.5 bits per weight. */
typedef struct lb_block_iq4_nl {
    uint16_t d;     /* f16 scale */
    uint8_t qs[16]; /* 4-bit codes: low nibble = element j, high = element j + 16 */
} lb_block_iq4_nl;
static_assert(sizeof(lb_block_iq4_nl) == 2 + 16, "wrong iq4_nl block size/padding");

/* IQ4_XS: sub-block s (elements 32s .. 32s + 31) has x = d * (ls[s] - 32) * V[q], ls[s] a 6-bit
 * scale: low 4 bits = nibble s % 2 of scales_l[s / 2] (low nibble for even s), high 2 bits =
 * bits 2s, 2s + 1 of scales_h. The codes of sub-block s are packed as one IQ4_NL block's in
 * qs[16s .. 16s + 15]. 4.25 bits per weight. */
typedef struct lb_block_iq4_xs {
    uint16_t d;                          /* f16 super-block scale */
    uint16_t scales_h;                   /* high 2 bits of the eight 6-bit scales */
    uint8_t scales_l[LB_QK_IQ4_XS / 64]; /* low 4 bits of the scales, two per byte */
    uint8_t qs[LB_QK_IQ4_XS / 2];        /* 4-bit codes */
} lb_block_iq4_xs;
static_assert(sizeof(lb_block_iq4_xs) == 2 + 2 + 4 + 128, "wrong iq4_xs block size/padding");

/* Quantize a row of n floats (n >= 0, a multiple of the block size) into blocks at y, byte for
 * byte as llama.cpp's quantize_iq4_nl / quantize_iq4_xs (what llama-quantize writes) with
 * quant_weights = importance: per 32 weights the scale is chosen among 16 candidates (the
 * largest-magnitude weight mapped to 127, and to -127 + t for t in -7..7) by the weighted
 * least-squares fit of their nearest codes, with weights x^2 (importance NULL) or
 * importance * sqrt(sigma2 + x^2), sigma2 = 2 / block * sum x^2 over the (super-)block;
 * IQ4_XS then rounds the eight scales to 6 bits under one f16 super-scale and re-picks the
 * codes. (ggml's quantize_row_iq4_nl_ref, which converts activations and KV caches, skips that
 * search and is not reproduced.) Deviations, each only where llama.cpp would store a non-finite
 * scale: a scale past the f16 range saturates to +-65504 and NaN is stored as 0; a block whose
 * importance is zero everywhere (llama.cpp: 0 / 0) is quantized as with importance NULL.
 * Never allocates; single-threaded. */
void lb_quantize_row_iq4_nl_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_iq4_xs_ref(const float *x, void *y, int64_t n, const float *importance);

/* Dequantize by the formulas above in f32 (no fused multiply-add), bit-exact with llama.cpp's
 * dequantize_row_iq4_nl / _xs and gguf-py. */
void lb_dequantize_row_iq4_nl(const void *x, float *y, int64_t n);
void lb_dequantize_row_iq4_xs(const void *x, float *y, int64_t n);

/* Block grids with a level table (kernels.h): weight j of a block decodes to
 * scale[j] * lb_iq4_levels[q[j]] + offset[j], offset -0.0f (the identity of f32 addition),
 * scale = d (IQ4_NL) or d * (ls - 32) of its sub-block (IQ4_XS), bit for bit as
 * lb_dequantize_row_*. Levels q are the codes, 0..15. set_levels packs codes (asserted in
 * range) and leaves d and the scales untouched. */
void lb_block_grid_iq4_nl(const void *block, float *scale, float *offset);
void lb_block_grid_iq4_xs(const void *block, float *scale, float *offset);
void lb_block_get_levels_iq4_nl(const void *block, int8_t *q);
void lb_block_get_levels_iq4_xs(const void *block, int8_t *q);
void lb_block_set_levels_iq4_nl(void *block, const int8_t *q);
void lb_block_set_levels_iq4_xs(void *block, const int8_t *q);

/* 6-bit scale of sub-block s of an IQ4_XS block, minus its offset 32: -32..31. */
static inline int lb_iq4_xs_scale(const lb_block_iq4_xs *b, int s)
{
    int lo = (b->scales_l[s / 2] >> (4 * (s % 2))) & 0xf;
    int hi = (b->scales_h >> (2 * s)) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Dot products with quantized activations: IQ4_NL with Q8_0 (per block the exact integer dot
 * of the levels and the activations, times (d * d_a), summed in f32 in block order, as
 * llama.cpp's generic vec_dot_iq4_nl_q8_0); IQ4_XS with Q8_K (per super-block the exact integer
 * sum over its sub-blocks of (ls - 32) * dot, times (d * d_a), summed in block order, as
 * llama.cpp's SIMD paths group it). */
float lb_vec_dot_iq4_nl_q8_0_c(const void *w, const void *a_q8_0, int64_t n);
float lb_vec_dot_iq4_xs_q8_K_c(const void *w, const void *a_q8_K, int64_t n);

/* Dot products with f32 activations: weights dequantized as above, products summed in f32 per
 * block of 32, block sums added in order. */
float lb_vec_dot_iq4_nl_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_iq4_xs_f32_c(const void *w, const float *a, int64_t n);

#endif
