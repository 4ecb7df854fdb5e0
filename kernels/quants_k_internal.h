/* llama.cpp-compatible K-quant super-blocks (Q2_K..Q6_K, Q8_K): layouts, quantize, dequantize, dot. */
#ifndef LB_KERNELS_QUANTS_K_INTERNAL_H
#define LB_KERNELS_QUANTS_K_INTERNAL_H

#include <assert.h>
#include <stdint.h>

#include "common/status.h"

/* The block layouts below are byte images of llama.cpp's (ggml-common.h); their f16 fields are
 * stored as raw little-endian IEEE half bits, so the host must be little-endian. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lowbit's packed block layouts require a little-endian host"
#endif
#endif

#define LB_QK_K 256        /* weights per K-quant super-block */
#define LB_K_SCALE_SIZE 12 /* bytes of packed 6-bit scales and mins in Q4_K / Q5_K */

/* Q2_K: 16 sub-blocks of 16 weights, 2.625 bits per weight.
 * w = d * (scales[j] & 0xF) * q - dmin * (scales[j] >> 4), q in 0..3, j = index / 16.
 * q of weight e = 128h + 32s + l (l < 32) is bits 2s..2s+1 of qs[32h + l]. */
typedef struct lb_block_q2_K {
    uint8_t scales[LB_QK_K / 16]; /* low nibble: scale, high nibble: min, 4 bits each */
    uint8_t qs[LB_QK_K / 4];      /* 2-bit quants */
    uint16_t d;                   /* f16 super-block scale of the scales */
    uint16_t dmin;                /* f16 super-block scale of the mins */
} lb_block_q2_K;
static_assert(sizeof(lb_block_q2_K) == 84, "lb_block_q2_K must be 84 bytes");

/* Q3_K: 16 sub-blocks of 16 weights, 3.4375 bits per weight.
 * w = d * (sc[j] - 32) * (q - 4 * !hbit), q in 0..3, sc 6-bit, j = index / 16.
 * Low 2 bits as in Q2_K; the high bit of weight e is bit e/32 of hmask[e % 32].
 * sc[j] = low nibble of scales[j % 8] (j < 8) or its high nibble (j >= 8), plus bits
 * 2(j/4)..2(j/4)+1 of scales[8 + j % 4] as bits 4..5. */
typedef struct lb_block_q3_K {
    uint8_t hmask[LB_QK_K / 8]; /* high bit of the quants */
    uint8_t qs[LB_QK_K / 4];    /* low 2 bits of the quants */
    uint8_t scales[12];         /* 6-bit scales, offset by 32 */
    uint16_t d;                 /* f16 super-block scale */
} lb_block_q3_K;
static_assert(sizeof(lb_block_q3_K) == 110, "lb_block_q3_K must be 110 bytes");

/* Q4_K: 8 sub-blocks of 32 weights, 4.5 bits per weight.
 * w = d * sc[j] * q - dmin * m[j], q in 0..15, sc and m 6-bit, j = index / 32.
 * For j < 4: sc = scales[j] & 63, m = scales[j + 4] & 63; for j >= 4: sc = (scales[j + 4] & 0xF)
 * | (scales[j - 4] >> 6) << 4, m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4.
 * q of weight e = 64c + r is the low nibble of qs[32c + r] (r < 32) or the high nibble of
 * qs[32c + r - 32]. */
typedef struct lb_block_q4_K {
    uint16_t d;                       /* f16 super-block scale of the scales */
    uint16_t dmin;                    /* f16 super-block scale of the mins */
    uint8_t scales[LB_K_SCALE_SIZE];  /* 6-bit scales and mins, packed as above */
    uint8_t qs[LB_QK_K / 2];          /* 4-bit quants */
} lb_block_q4_K;
static_assert(sizeof(lb_block_q4_K) == 144, "lb_block_q4_K must be 144 bytes");

/* Q5_K: as Q4_K with a fifth bit: q in 0..31, the bit 4 of weight e is bit e/32 of qh[e % 32].
 * 5.5 bits per weight. */
typedef struct lb_block_q5_K {
    uint16_t d;                       /* f16 super-block scale of the scales */
    uint16_t dmin;                    /* f16 super-block scale of the mins */
    uint8_t scales[LB_K_SCALE_SIZE];  /* 6-bit scales and mins, packed as in Q4_K */
    uint8_t qh[LB_QK_K / 8];          /* high bit of the quants */
    uint8_t qs[LB_QK_K / 2];          /* low 4 bits of the quants */
} lb_block_q5_K;
static_assert(sizeof(lb_block_q5_K) == 176, "lb_block_q5_K must be 176 bytes");

/* Q6_K: 16 sub-blocks of 16 weights, 6.5625 bits per weight.
 * w = d * scales[j] * (q - 32), q in 0..63, j = index / 16.
 * Weight e = 128h + 32s + l (l < 32): low nibble from ql[64h + l + 32(s & 1)] (s < 2: bits 0..3,
 * s >= 2: bits 4..7), high 2 bits from bits 2s..2s+1 of qh[32h + l]. */
typedef struct lb_block_q6_K {
    uint8_t ql[LB_QK_K / 2];      /* low 4 bits of the quants */
    uint8_t qh[LB_QK_K / 4];      /* high 2 bits of the quants */
    int8_t scales[LB_QK_K / 16];  /* 8-bit signed sub-block scales */
    uint16_t d;                   /* f16 super-block scale */
} lb_block_q6_K;
static_assert(sizeof(lb_block_q6_K) == 210, "lb_block_q6_K must be 210 bytes");

/* Q8_K: the activation format of the K-quant dot products. w = d * qs[i];
 * bsums[j] = sum of qs[16j .. 16j + 15]. */
typedef struct lb_block_q8_K {
    float d;                        /* f32 scale */
    int8_t qs[LB_QK_K];             /* 8-bit quants in -127..127 */
    int16_t bsums[LB_QK_K / 16];    /* sums of quants per 16 */
} lb_block_q8_K;
static_assert(sizeof(lb_block_q8_K) == 292, "lb_block_q8_K must be 292 bytes");

/* Quantize a row of n floats (n >= 0, a multiple of LB_QK_K) into n / 256 blocks at y.
 * importance == NULL: byte-identical to llama.cpp's quantize_row_<t>_ref (where llama.cpp would
 * store an infinite f16 scale, lowbit stores the largest finite half instead).
 * importance != NULL (n values >= 0): the scales and mins minimize sum importance_i *
 * (x_i - dequant_i)^2 per super-block, never worse in that error than the NULL path.
 * Q8_K ignores importance. Never allocates; single-threaded. */
void lb_quantize_row_q2_K_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q3_K_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q4_K_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q5_K_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q6_K_ref(const float *x, void *y, int64_t n, const float *importance);
void lb_quantize_row_q8_K_ref(const float *x, void *y, int64_t n, const float *importance);

/* Dequantize n / 256 blocks at x into n floats, bit-exact with llama.cpp's dequantize_row_<t>. */
void lb_dequantize_row_q2_K(const void *x, float *y, int64_t n);
void lb_dequantize_row_q3_K(const void *x, float *y, int64_t n);
void lb_dequantize_row_q4_K(const void *x, float *y, int64_t n);
void lb_dequantize_row_q5_K(const void *x, float *y, int64_t n);
void lb_dequantize_row_q6_K(const void *x, float *y, int64_t n);
void lb_dequantize_row_q8_K(const void *x, float *y, int64_t n);

/* Block grids for rounding onto a quantizer's scales (kernels.h, lb_block_grid_fn): weight i of
 * one super-block decodes to scale[i] * q[i] + offset[i] (f32, no FMA), bit for bit as
 * lb_dequantize_row_<t>, with scale = d * sc[j] of its sub-block j and offset = -(dmin * m[j])
 * (Q2_K, Q4_K, Q5_K) or -0.0f, the identity of f32 addition (Q3_K, Q6_K). Levels q: Q2_K [0, 3],
 * Q3_K [-4, 3] (low bits minus 4 where the hmask bit is clear), Q4_K [0, 15], Q5_K [0, 31],
 * Q6_K [-32, 31] (the 6-bit code minus 32). get_levels writes 256 levels; set_levels packs 256
 * levels (asserted in range) into the quant bits and leaves d, dmin and the scales untouched. */
void lb_block_grid_q2_K(const void *block, float *scale, float *offset);
void lb_block_grid_q3_K(const void *block, float *scale, float *offset);
void lb_block_grid_q4_K(const void *block, float *scale, float *offset);
void lb_block_grid_q5_K(const void *block, float *scale, float *offset);
void lb_block_grid_q6_K(const void *block, float *scale, float *offset);
void lb_block_get_levels_q2_K(const void *block, int8_t *q);
void lb_block_get_levels_q3_K(const void *block, int8_t *q);
void lb_block_get_levels_q4_K(const void *block, int8_t *q);
void lb_block_get_levels_q5_K(const void *block, int8_t *q);
void lb_block_get_levels_q6_K(const void *block, int8_t *q);
void lb_block_set_levels_q2_K(void *block, const int8_t *q);
void lb_block_set_levels_q3_K(void *block, const int8_t *q);
void lb_block_set_levels_q4_K(void *block, const int8_t *q);
void lb_block_set_levels_q5_K(void *block, const int8_t *q);
void lb_block_set_levels_q6_K(void *block, const int8_t *q);

/* Dot product of n packed weights w with n Q8_K activations: exact integer sums per sub-block
 * (the mins through the activations' bsums), scaled and summed in float in block order. */
float lb_vec_dot_q2_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n);
float lb_vec_dot_q3_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n);
float lb_vec_dot_q4_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n);
float lb_vec_dot_q5_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n);
float lb_vec_dot_q6_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n);

/* Dot product of n packed weights w with n f32 activations a, dequantizing on the fly. */
float lb_vec_dot_q2_K_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q3_K_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q4_K_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q5_K_f32_c(const void *w, const float *a, int64_t n);
float lb_vec_dot_q6_K_f32_c(const void *w, const float *a, int64_t n);

#endif
