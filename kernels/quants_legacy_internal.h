/* llama.cpp's legacy block types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: layouts, quantize, dequantize, dot. */
#ifndef LB_KERNELS_QUANTS_LEGACY_INTERNAL_H
#define LB_KERNELS_QUANTS_LEGACY_INTERNAL_H

#include <assert.h>
#include <stdint.h>

#include "common/status.h"

/* Layouts are byte-identical to ggml-common.h. The f16 fields are plain uint16_t holding IEEE
 * half bits in host order, and files store them little-endian, so the structs match the file
 * bytes only on a little-endian host (the only kind lowbit supports). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lowbit's packed block layouts assume a little-endian host"
#endif
#endif

/* Elements per block, for every type in this file. */
#define LB_QK_LEGACY 32

/* Q8_0: x[j] = d * qs[j]. 8.5 bits per weight. */
typedef struct lb_block_q8_0 {
    uint16_t d;     /* f16 scale */
    int8_t qs[32];  /* quants, element j in qs[j] */
} lb_block_q8_0;
static_assert(sizeof(lb_block_q8_0) == 2 + 32, "wrong q8_0 block size/padding");

/* Q4_0: x[j] = d * (q[j] - 8), q[j] = qs[j] & 15 and q[j + 16] = qs[j] >> 4 for j < 16.
 * 4.5 bits per weight. */
typedef struct lb_block_q4_0 {
    uint16_t d;     /* f16 scale */
    uint8_t qs[16]; /* nibbles: low = element j, high = element j + 16 */
} lb_block_q4_0;
static_assert(sizeof(lb_block_q4_0) == 2 + 16, "wrong q4_0 block size/padding");

/* Q4_1: x[j] = d * q[j] + m, nibbles as in Q4_0. 5 bits per weight. */
typedef struct lb_block_q4_1 {
    uint16_t d;     /* f16 scale */
    uint16_t m;     /* f16 min (offset) */
    uint8_t qs[16]; /* nibbles: low = element j, high = element j + 16 */
} lb_block_q4_1;
static_assert(sizeof(lb_block_q4_1) == 2 + 2 + 16, "wrong q4_1 block size/padding");

/* Q5_0: x[j] = d * (q[j] - 16), q[j] = low 4 bits from the nibbles as in Q4_0 plus bit 4 =
 * bit j of the little-endian 32-bit word qh (qh[j / 8] >> (j % 8) & 1). 5.5 bits per weight. */
typedef struct lb_block_q5_0 {
    uint16_t d;     /* f16 scale */
    uint8_t qh[4];  /* fifth bits, element j at bit j (little-endian) */
    uint8_t qs[16]; /* low nibbles: low = element j, high = element j + 16 */
} lb_block_q5_0;
static_assert(sizeof(lb_block_q5_0) == 2 + 4 + 16, "wrong q5_0 block size/padding");

/* Q5_1: x[j] = d * q[j] + m, q[j] as in Q5_0. 6 bits per weight. */
typedef struct lb_block_q5_1 {
    uint16_t d;     /* f16 scale */
    uint16_t m;     /* f16 min (offset) */
    uint8_t qh[4];  /* fifth bits, element j at bit j (little-endian) */
    uint8_t qs[16]; /* low nibbles: low = element j, high = element j + 16 */
} lb_block_q5_1;
static_assert(sizeof(lb_block_q5_1) == 2 + 2 + 4 + 16, "wrong q5_1 block size/padding");

/* Quantize a row of n floats (n a multiple of 32, >= 0) into n / 32 blocks at y.
 *
 * importance == NULL: llama.cpp's reference round-to-nearest (quantize_row_<t>_ref), byte for
 * byte as gguf-py (llama.cpp's numpy port) computes it. For Q4_0 and Q5_0 that means
 * trunc(fma(x, 1/d, 8.5)), one rounding, as gguf-py computes it and as llama.cpp compiled
 * with FMA contraction does; a llama.cpp build without FMA rounds x/d first and can differ by
 * one level where x/d + 8.5 falls just below an integer (common for inputs on a decimal grid). One deliberate difference: where
 * llama.cpp's f16 scale or min would overflow to Inf (|x| beyond ~65504 * 127 for Q8_0,
 * 65504 * 8 for Q4_0, ...), it is saturated to +-65504 and the quants are clamped, so output
 * stays finite.
 *
 * importance != NULL: n non-negative weights; each block's scale (and min for the _1 types)
 * is searched to minimise sum_i importance[i] * (x[i] - dequant[i])^2, measured with the f16
 * values actually stored; the RTN block is one of the candidates, so the result is never worse
 * than importance == NULL on that block. (llama.cpp's quantize_<t> feeds
 * imatrix * sqrt(sigma2 + x^2) into a similar search; a caller wanting that passes it here.)
 * Q8_0 keeps its quants within [-127, 127] in both modes. Kernels never allocate. */
void lb_quantize_row_q8_0_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q4_0_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q4_1_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q5_0_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q5_1_ref(const float *x, void *y, int64_t n, const float *importance);

/* Dequantize n / 32 blocks at x into n floats, by the formulas above in f32 arithmetic (no
 * fused multiply-add), identical to llama.cpp's dequantize_row_<t> and gguf-py. */
void lb_dequantize_row_q8_0(const void *x, float *y, int64_t n);
void lb_dequantize_row_q4_0(const void *x, float *y, int64_t n);
void lb_dequantize_row_q4_1(const void *x, float *y, int64_t n);
void lb_dequantize_row_q5_0(const void *x, float *y, int64_t n);
void lb_dequantize_row_q5_1(const void *x, float *y, int64_t n);

/* Block grids for rounding onto a quantizer's scales (kernels.h, lb_block_grid_fn): weight j of
 * one block decodes to scale[j] * q[j] + offset[j] (f32, no FMA), bit for bit as
 * lb_dequantize_row_<t>. Levels q: Q8_0 [-127, 127] (qs[j]), Q4_0 [-8, 7] and Q5_0 [-16, 15]
 * (the stored code minus 8 / 16; offset -0.0f, the identity of f32 addition), Q4_1 [0, 15] and
 * Q5_1 [0, 31] (offset m). get_levels writes 32 levels; set_levels packs 32 levels (asserted in
 * range) into the quants and leaves d and m untouched. */
void lb_block_grid_q8_0(const void *block, float *scale, float *offset);
void lb_block_grid_q4_0(const void *block, float *scale, float *offset);
void lb_block_grid_q4_1(const void *block, float *scale, float *offset);
void lb_block_grid_q5_0(const void *block, float *scale, float *offset);
void lb_block_grid_q5_1(const void *block, float *scale, float *offset);
void lb_block_get_levels_q8_0(const void *block, int8_t *q);
void lb_block_get_levels_q4_0(const void *block, int8_t *q);
void lb_block_get_levels_q4_1(const void *block, int8_t *q);
void lb_block_get_levels_q5_0(const void *block, int8_t *q);
void lb_block_get_levels_q5_1(const void *block, int8_t *q);
void lb_block_set_levels_q8_0(void *block, const int8_t *q);
void lb_block_set_levels_q4_0(void *block, const int8_t *q);
void lb_block_set_levels_q4_1(void *block, const int8_t *q);
void lb_block_set_levels_q5_0(void *block, const int8_t *q);
void lb_block_set_levels_q5_1(void *block, const int8_t *q);

/* Dot product of a packed weight row w (n elements) with activations a_q8_0 quantized to Q8_0
 * (lb_quantize_row_q8_0_ref): per block the exact integer dot of the quants times the two f16
 * scales, summed in f32 in block order (scalar reference, as llama.cpp's generic path).
 * For Q4_1 / Q5_1 the min term m * d_a * sum(qa) takes sum(qa) exactly from the Q8_0 block,
 * where llama.cpp uses Q8_1 activations carrying an f16-rounded d_a * sum(qa). */
float lb_vec_dot_q8_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n);
float lb_vec_dot_q4_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n);
float lb_vec_dot_q4_1_q8_0_c(const void *w, const void *a_q8_0, int64_t n);
float lb_vec_dot_q5_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n);
float lb_vec_dot_q5_1_q8_0_c(const void *w, const void *a_q8_0, int64_t n);

/* Dot product of a packed weight row w with f32 activations a: each weight dequantized as in
 * lb_dequantize_row_<t>, products summed in f32 within a block, block sums added in order. */
float lb_vec_dot_q8_0_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q4_0_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q4_1_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q5_0_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q5_1_f32_c(const void *w, const float *a, int64_t n);

#endif
