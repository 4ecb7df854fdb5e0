/* Shared by the two halves of the K-quant reference (quants_k.c quantizes, quants_k_decode.c
 * decodes): ggml's rounding helpers (also used by quants_iq4.c), the integer form of a block,
 * and the packers and unpackers of its codes. Not part of the installed API. */
#ifndef LB_KERNELS_QUANTS_K_CODES_INTERNAL_H
#define LB_KERNELS_QUANTS_K_CODES_INTERNAL_H

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/quants_k_internal.h"

/* A scale as stored by the quantizers (K and IQ4 types): llama.cpp's conversion, except that a
 * finite value past the half range saturates to +-65504 instead of becoming Inf (which would
 * dequantize to NaN), and NaN is stored as 0. */
static inline uint16_t qk_scale_to_f16(float f)
{
    uint16_t h = lb_f32_to_f16(f);
    if ((h & 0x7fffu) == 0x7c00u) {
        h = (uint16_t)((h & 0x8000u) | 0x7bffu);
    } else if ((h & 0x7fffu) > 0x7c00u) {
        h = 0;
    }
    return h;
}

/* Round to nearest, ties to even, as ggml's nearest_int does in its valid range (|v| <= 4194303);
 * outside it (and for NaN) the value is clamped first, which every caller then clamps further. */
static inline int qk_nearest_int(float v)
{
    if (!(fabsf(v) <= 4194303.f)) {
        v = v != v ? 0.f : (v > 0 ? 4194303.f : -4194303.f);
    }
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Row lengths are whole super-blocks. */
#define QK_CHECK_N(n) assert((n) >= 0 && (n) % LB_QK_K == 0)

/* 6-bit scale and min of sub-block j of a Q4_K / Q5_K block. */
static inline void qk_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* 6-bit scale of sub-block j of a Q3_K block, minus its offset 32. */
static inline int qk_q3_K_scale(const uint8_t *scales, int j)
{
    int lo = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* One block as integers: weight i is (d * sc[i / sub]) * q[i] - (dmin * mn[i / sub]), the
 * second term only when has_min. Every dequantizer and dot goes through this form. */
typedef struct qk_codes {
    int8_t q[LB_QK_K];
    int sc[16];
    int mn[16];
    int sub;      /* weights per sub-block: 16 or 32 */
    bool has_min;
    float d, dmin;
} qk_codes;

typedef void (*qk_unpack_fn)(const void *block, qk_codes *c);

/* The codes of a block, unpacked (the block is lb_block_q2_K ... lb_block_q6_K). */
void lb_qk_unpack_q2_K(const void *vb, qk_codes *c);
void lb_qk_unpack_q3_K(const void *vb, qk_codes *c);
void lb_qk_unpack_q4_K(const void *vb, qk_codes *c);
void lb_qk_unpack_q5_K(const void *vb, qk_codes *c);
void lb_qk_unpack_q6_K(const void *vb, qk_codes *c);

/* y[LB_QK_K] = the block's weights, with ggml's float operations in its order. */
void lb_qk_dequant_block(const void *block, qk_unpack_fn unpack, float *y);

/* Packers of codes into a block's bit fields; the scales are left as they are. */
void lb_qk_pack_2bit(const uint8_t *L, uint8_t *qs);                 /* Q2_K / Q3_K qs, L 0..3 */
void lb_qk_q3_K_pack_codes(const int8_t *L, lb_block_q3_K *y);       /* L 0..7 */
void lb_qk_q4_K_pack(const uint8_t *L, uint8_t *qs);                 /* L 0..15 */
void lb_qk_q5_K_pack(const uint8_t *L, uint8_t *qh, uint8_t *qs);    /* L 0..31 */
void lb_qk_q6_K_pack_codes(const int8_t *L, lb_block_q6_K *y);       /* L 0..63 */

#endif
