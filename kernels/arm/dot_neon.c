/* AArch64 NEON vec_dot kernels for all packed types (IQ4_NL / IQ4_XS included); bit-exact Q8_0 /
 * Q8_K activation quantizers. */
#include <arm_neon.h>
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/dsp_internal.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"

/* Fills the NEON entries of `dsp` (also declared in kernels/dsp_internal.h for LB_HAVE_ARM_KERNELS). */
void lb_kernels_dsp_init_neon(lb_kernels_dsp *dsp);

/* Accuracy. Only plain ARMv8.0 AdvSIMD is used (vmull_s8 / vpadalq_s16, no dot-product
 * extension). Per block (legacy) or per sub-block (K-quants) the integer dot is exact: every
 * int8 x int8 product fits its int16 lane (|p| <= 16384, -128 inputs included) and pairs are
 * accumulated into int32 lanes, which cannot overflow for 32 elements; the weighted sums over
 * sub-blocks stay far below 2^31 for any block bytes, as in the references. The exact integer
 * sums are then scaled and accumulated in float with the very operations, in the very order
 * (block order, no fused multiply-add), of the C references lb_vec_dot_<t>_c, so the results
 * equal them bit for bit when no FMA is contracted (GCC in ISO C mode contracts nothing; clang
 * is told below). tests/checkkern.c (level neon) requires that bit equality. The activation
 * quantizers round with FCVTAS (ties away, as roundf) and FCVTNS (ties to even, as ggml's
 * nearest_int), both saturating with NaN -> 0, which the integer clamps then make equal to the
 * references'. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* acc += pairwise sums of the 16 exact int16 products w[i] * a[i]. */
static inline int32x4_t dot16_acc(int32x4_t acc, int8x16_t w, int8x16_t a)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    return vpadalq_s16(acc, vmull_high_s8(w, a));
}

static float vec_dot_q8_0_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q8_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        int32x4_t acc = vdupq_n_s32(0);
        acc = dot16_acc(acc, vld1q_s8(wb[b].qs), vld1q_s8(ab[b].qs));
        acc = dot16_acc(acc, vld1q_s8(wb[b].qs + 16), vld1q_s8(ab[b].qs + 16));
        const int32_t sumi = vaddvq_s32(acc);
        const float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += (float)sumi * scale;
    }
    return sum;
}

static float vec_dot_q4_0_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q4_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    const int8x16_t eight = vdupq_n_s8(8);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const uint8x16_t qs = vld1q_u8(wb[b].qs);
        /* elements 0..15 the low nibbles, 16..31 the high nibbles, each minus 8: -8..7 */
        const int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, low4)), eight);
        const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dot16_acc(acc, q0, vld1q_s8(ab[b].qs));
        acc = dot16_acc(acc, q1, vld1q_s8(ab[b].qs + 16));
        const int32_t sumi = vaddvq_s32(acc);
        float v = (float)sumi * lb_f16_to_f32(wb[b].d);
        v = v * lb_f16_to_f32(ab[b].d);
        sum += v;
    }
    return sum;
}

/* The fifth bits of a Q5_0 / Q5_1 block as bytes 0x10 (set) or 0 (clear): *lo for elements
 * 0..15 (bits 0..15 of the little-endian word qh), *hi for elements 16..31. */
static inline void fifth_bits(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi)
{
    static const uint8_t bit_of_lane[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                            1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bits = vld1q_u8(bit_of_lane);
    const uint8x16_t b16 = vdupq_n_u8(0x10);
    *lo = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), bits), b16);
    *hi = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), bits), b16);
}

static float vec_dot_q5_0_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q5_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    const int8x16_t sixteen = vdupq_n_s8(16);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const uint8x16_t qs = vld1q_u8(wb[b].qs);
        uint8x16_t h0, h1;
        fifth_bits(wb[b].qh, &h0, &h1);
        /* codes 0..31 minus 16: -16..15 */
        const uint8x16_t c0 = vorrq_u8(vandq_u8(qs, low4), h0);
        const uint8x16_t c1 = vorrq_u8(vshrq_n_u8(qs, 4), h1);
        const int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(c0), sixteen);
        const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(c1), sixteen);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dot16_acc(acc, q0, vld1q_s8(ab[b].qs));
        acc = dot16_acc(acc, q1, vld1q_s8(ab[b].qs + 16));
        const int32_t sumi = vaddvq_s32(acc);
        const float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += scale * (float)sumi;
    }
    return sum;
}

/* One Q4_1 / Q5_1 block (codes q0: elements 0..15, q1: 16..31, all 0..31) against a Q8_0
 * block: (d da) sum q a + m (da sum a), rounded as the reference's affine_block_dot. */
static inline float affine_block_neon(int8x16_t q0, int8x16_t q1, const lb_block_q8_0 *a,
                                      float d, float m)
{
    const int8x16_t a0 = vld1q_s8(a->qs);
    const int8x16_t a1 = vld1q_s8(a->qs + 16);
    const int32x4_t acc = dot16_acc(dot16_acc(vdupq_n_s32(0), q0, a0), q1, a1);
    const int32_t sumi = vaddvq_s32(acc);
    const int32_t sum_a = vaddlvq_s16(vpadalq_s8(vpaddlq_s8(a0), a1));
    const float da = lb_f16_to_f32(a->d);
    const float scaled = (d * da) * (float)sumi;
    const float offset = m * (da * (float)sum_a);
    return scaled + offset;
}

static float vec_dot_q4_1_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q4_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const uint8x16_t qs = vld1q_u8(wb[b].qs);
        const int8x16_t q0 = vreinterpretq_s8_u8(vandq_u8(qs, low4));
        const int8x16_t q1 = vreinterpretq_s8_u8(vshrq_n_u8(qs, 4));
        sum += affine_block_neon(q0, q1, &ab[b], lb_f16_to_f32(wb[b].d),
                                 lb_f16_to_f32(wb[b].m));
    }
    return sum;
}

static float vec_dot_q5_1_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q5_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const uint8x16_t qs = vld1q_u8(wb[b].qs);
        uint8x16_t h0, h1;
        fifth_bits(wb[b].qh, &h0, &h1);
        const int8x16_t q0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(qs, low4), h0));
        const int8x16_t q1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(qs, 4), h1));
        sum += affine_block_neon(q0, q1, &ab[b], lb_f16_to_f32(wb[b].d),
                                 lb_f16_to_f32(wb[b].m));
    }
    return sum;
}

/* Exact dot of 16 codes with 16 activations as 4 int32 lanes. */
static inline int32x4_t dot16(int8x16_t w, int8x16_t a)
{
    return dot16_acc(vdupq_n_s32(0), w, a);
}

/* Q2_K: weight e = 128h + 32s + l has code bits 2s..2s+1 of qs[32h + l], sub-block
 * j = 8h + 2s + l / 16 with scale scales[j] & 15 and min scales[j] >> 4. The min term
 * sum_j min_j bsums_j is one widening multiply-accumulate of the 16 mins with the bsums. */
static float vec_dot_q2_K_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q2_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    const uint8x16_t three = vdupq_n_u8(3);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q2_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const uint8x16_t packed = vld1q_u8(x->scales);
        const uint8x16_t mins = vshrq_n_u8(packed, 4);
        const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins)));
        const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(mins));
        const int16x8_t bs0 = vld1q_s16(y->bsums);
        const int16x8_t bs1 = vld1q_s16(y->bsums + 8);
        int32x4_t mv = vmull_s16(vget_low_s16(m0), vget_low_s16(bs0));
        mv = vmlal_high_s16(mv, m0, bs0);
        mv = vmlal_s16(mv, vget_low_s16(m1), vget_low_s16(bs1));
        mv = vmlal_high_s16(mv, m1, bs1);
        const int32_t summs = vaddvq_s32(mv);
        uint8_t sc[16];
        vst1q_u8(sc, vandq_u8(packed, low4));
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(x->qs + 32 * h);
            uint8x16_t q1 = vld1q_u8(x->qs + 32 * h + 16);
            for (int s = 0; s < 4; s++) {
                const int8_t *a = y->qs + 128 * h + 32 * s;
                const int j = 8 * h + 2 * s;
                const int8x16_t c0 = vreinterpretq_s8_u8(vandq_u8(q0, three));
                const int8x16_t c1 = vreinterpretq_s8_u8(vandq_u8(q1, three));
                isum = vmlaq_n_s32(isum, dot16(c0, vld1q_s8(a)), sc[j]);
                isum = vmlaq_n_s32(isum, dot16(c1, vld1q_s8(a + 16)), sc[j + 1]);
                q0 = vshrq_n_u8(q0, 2);
                q1 = vshrq_n_u8(q1, 2);
            }
        }
        const float dall = y->d * lb_f16_to_f32(x->d);
        const float dmin = y->d * lb_f16_to_f32(x->dmin);
        sumf += dall * (float)vaddvq_s32(isum) - dmin * (float)summs;
    }
    return sumf;
}

/* Scale of sub-block j (0..15) of a Q3_K block, minus its offset 32 (layout in quants_k.h). */
static inline int q3k_scale(const uint8_t *scales, int j)
{
    const int lo = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
    const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Q3_K: weight e = 128h + 32s + l has low bits as in Q2_K and its high bit at bit 4h + s of
 * hmask[l]; q = (low | high << 2) - 4 in -4..3, signed scales in -32..31, no mins. */
static float vec_dot_q3_K_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q3_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const uint8x16_t three = vdupq_n_u8(3);
    const uint8x16_t four = vdupq_n_u8(4);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q3_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        int sc[16];
        for (int j = 0; j < 16; j++)
            sc[j] = q3k_scale(x->scales, j);
        const uint8x16_t m0 = vld1q_u8(x->hmask);
        const uint8x16_t m1 = vld1q_u8(x->hmask + 16);
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(x->qs + 32 * h);
            uint8x16_t q1 = vld1q_u8(x->qs + 32 * h + 16);
            for (int s = 0; s < 4; s++) {
                const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + s)));
                const uint8x16_t h0 = vandq_u8(vtstq_u8(m0, bit), four);
                const uint8x16_t h1 = vandq_u8(vtstq_u8(m1, bit), four);
                const uint8x16_t c0 = vorrq_u8(vandq_u8(q0, three), h0);
                const uint8x16_t c1 = vorrq_u8(vandq_u8(q1, three), h1);
                const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(c0), vreinterpretq_s8_u8(four));
                const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(c1), vreinterpretq_s8_u8(four));
                const int8_t *a = y->qs + 128 * h + 32 * s;
                const int j = 8 * h + 2 * s;
                isum = vmlaq_n_s32(isum, dot16(w0, vld1q_s8(a)), sc[j]);
                isum = vmlaq_n_s32(isum, dot16(w1, vld1q_s8(a + 16)), sc[j + 1]);
                q0 = vshrq_n_u8(q0, 2);
                q1 = vshrq_n_u8(q1, 2);
            }
        }
        /* the reference's expression with its zero min term, for identical rounding */
        const float dall = y->d * lb_f16_to_f32(x->d);
        const float dmin = y->d * 0.0f;
        sumf += dall * (float)vaddvq_s32(isum) - dmin * (float)0;
    }
    return sumf;
}

/* Scale and min of sub-block j (0..7) of a Q4_K block, 6 bits each (layout in quants_k.h). */
static inline void k4_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: weights 64c..64c+31 are the low nibbles of qs[32c..32c+31] (sub-block 2c), weights
 * 64c+32..64c+63 their high nibbles (sub-block 2c+1); codes 0..15, mins through bsums. */
static float vec_dot_q4_K_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q4_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q4_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        int32_t isum = 0, summs = 0;
        for (int c = 0; c < 4; c++) {
            const uint8x16_t qa = vld1q_u8(x->qs + 32 * c);
            const uint8x16_t qb = vld1q_u8(x->qs + 32 * c + 16);
            const int8_t *a = y->qs + 64 * c;
            int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
            lo = dot16_acc(lo, vreinterpretq_s8_u8(vandq_u8(qa, low4)), vld1q_s8(a));
            lo = dot16_acc(lo, vreinterpretq_s8_u8(vandq_u8(qb, low4)), vld1q_s8(a + 16));
            hi = dot16_acc(hi, vreinterpretq_s8_u8(vshrq_n_u8(qa, 4)), vld1q_s8(a + 32));
            hi = dot16_acc(hi, vreinterpretq_s8_u8(vshrq_n_u8(qb, 4)), vld1q_s8(a + 48));
            int sc, m;
            k4_scale_min(x->scales, 2 * c, &sc, &m);
            isum += sc * vaddvq_s32(lo);
            summs += m * (y->bsums[4 * c] + y->bsums[4 * c + 1]);
            k4_scale_min(x->scales, 2 * c + 1, &sc, &m);
            isum += sc * vaddvq_s32(hi);
            summs += m * (y->bsums[4 * c + 2] + y->bsums[4 * c + 3]);
        }
        const float dall = y->d * lb_f16_to_f32(x->d);
        const float dmin = y->d * lb_f16_to_f32(x->dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* Q5_K: as Q4_K, plus bit 4 of weight e = 64c + r at bit e / 32 of qh[e % 32]: bit 2c of qh[r]
 * for sub-block 2c, bit 2c + 1 for sub-block 2c + 1; codes 0..31. */
static float vec_dot_q5_K_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q5_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    const uint8x16_t b16 = vdupq_n_u8(0x10);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q5_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const uint8x16_t qh0 = vld1q_u8(x->qh);
        const uint8x16_t qh1 = vld1q_u8(x->qh + 16);
        int32_t isum = 0, summs = 0;
        for (int c = 0; c < 4; c++) {
            const uint8x16_t qa = vld1q_u8(x->qs + 32 * c);
            const uint8x16_t qb = vld1q_u8(x->qs + 32 * c + 16);
            const uint8x16_t bit_lo = vdupq_n_u8((uint8_t)(1u << (2 * c)));
            const uint8x16_t bit_hi = vdupq_n_u8((uint8_t)(2u << (2 * c)));
            const uint8x16_t l0 =
                vorrq_u8(vandq_u8(qa, low4), vandq_u8(vtstq_u8(qh0, bit_lo), b16));
            const uint8x16_t l1 =
                vorrq_u8(vandq_u8(qb, low4), vandq_u8(vtstq_u8(qh1, bit_lo), b16));
            const uint8x16_t h0 =
                vorrq_u8(vshrq_n_u8(qa, 4), vandq_u8(vtstq_u8(qh0, bit_hi), b16));
            const uint8x16_t h1 =
                vorrq_u8(vshrq_n_u8(qb, 4), vandq_u8(vtstq_u8(qh1, bit_hi), b16));
            const int8_t *a = y->qs + 64 * c;
            int32x4_t lo = dot16(vreinterpretq_s8_u8(l0), vld1q_s8(a));
            lo = dot16_acc(lo, vreinterpretq_s8_u8(l1), vld1q_s8(a + 16));
            int32x4_t hi = dot16(vreinterpretq_s8_u8(h0), vld1q_s8(a + 32));
            hi = dot16_acc(hi, vreinterpretq_s8_u8(h1), vld1q_s8(a + 48));
            int sc, m;
            k4_scale_min(x->scales, 2 * c, &sc, &m);
            isum += sc * vaddvq_s32(lo);
            summs += m * (y->bsums[4 * c] + y->bsums[4 * c + 1]);
            k4_scale_min(x->scales, 2 * c + 1, &sc, &m);
            isum += sc * vaddvq_s32(hi);
            summs += m * (y->bsums[4 * c + 2] + y->bsums[4 * c + 3]);
        }
        const float dall = y->d * lb_f16_to_f32(x->d);
        const float dmin = y->d * lb_f16_to_f32(x->dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* Q6_K: weight e = 128h + 32s + l has the nibble of ql[64h + l + 32(s & 1)] (low for s < 2,
 * high otherwise) and bits 2s..2s+1 of qh[32h + l] as bits 4..5; q = code - 32 in -32..31.
 * Sub-block j = e / 16 = 8h + 2s + l / 16 has the signed scale scales[j]. */
static float vec_dot_q6_K_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q6_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    const uint8x16_t three = vdupq_n_u8(3);
    const int8x16_t off32 = vdupq_n_s8(32);
    float sumf = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q6_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 2; k++) {
                const uint8x16_t ql0 = vld1q_u8(x->ql + 64 * h + 16 * k);
                const uint8x16_t ql1 = vld1q_u8(x->ql + 64 * h + 32 + 16 * k);
                const uint8x16_t qh = vld1q_u8(x->qh + 32 * h + 16 * k);
                const uint8x16_t lo[4] = {vandq_u8(ql0, low4), vandq_u8(ql1, low4),
                                          vshrq_n_u8(ql0, 4), vshrq_n_u8(ql1, 4)};
                const uint8x16_t hb[4] = {vandq_u8(qh, three), vandq_u8(vshrq_n_u8(qh, 2), three),
                                          vandq_u8(vshrq_n_u8(qh, 4), three), vshrq_n_u8(qh, 6)};
                for (int s = 0; s < 4; s++) {
                    const uint8x16_t code = vorrq_u8(lo[s], vshlq_n_u8(hb[s], 4));
                    const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(code), off32);
                    const int8x16_t a = vld1q_s8(y->qs + 128 * h + 32 * s + 16 * k);
                    const int32x4_t acc = dot16_acc(vdupq_n_s32(0), q, a);
                    isum += x->scales[8 * h + 2 * s + k] * vaddvq_s32(acc);
                }
            }
        }
        /* the reference's expression with its zero min term, for identical rounding */
        const float dall = y->d * lb_f16_to_f32(x->d);
        const float dmin = y->d * 0.0f;
        sumf += dall * (float)isum - dmin * (float)0;
    }
    return sumf;
}

/* IQ4_NL / IQ4_XS: the 16 codes of a group's byte half looked up in the 16 levels by TBL
 * (elements 0..15 from the low nibbles, 16..31 from the high ones), then the exact int8 dot. */
static inline int32_t iq4_group_dot_neon(const uint8_t *qs, const int8_t *a, int8x16_t levels)
{
    const uint8x16_t q = vld1q_u8(qs);
    const int8x16_t v0 = vqtbl1q_s8(levels, vandq_u8(q, vdupq_n_u8(0x0f)));
    const int8x16_t v1 = vqtbl1q_s8(levels, vshrq_n_u8(q, 4));
    int32x4_t acc = dot16_acc(vdupq_n_s32(0), v0, vld1q_s8(a));
    acc = dot16_acc(acc, v1, vld1q_s8(a + 16));
    return vaddvq_s32(acc);
}

static float vec_dot_iq4_nl_q8_0_neon(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    const lb_block_iq4_nl *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const int8x16_t levels = vld1q_s8(lb_iq4_values);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_IQ4_NL; b++) {
        const float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += scale * (float)iq4_group_dot_neon(wb[b].qs, ab[b].qs, levels);
    }
    return sum;
}

static float vec_dot_iq4_xs_q8_K_neon(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    const lb_block_iq4_xs *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const int8x16_t levels = vld1q_s8(lb_iq4_values);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++) {
        int32_t sumi = 0;
        for (int s = 0; s < LB_QK_IQ4_XS / 32; s++)
            sumi += lb_iq4_xs_scale(&wb[b], s) *
                    iq4_group_dot_neon(wb[b].qs + 16 * s, ab[b].qs + 32 * s, levels);
        const float scale = lb_f16_to_f32(wb[b].d) * ab[b].d;
        sum += scale * (float)sumi;
    }
    return sum;
}

/* Activation quantizers, bit-exact with lb_quantize_row_q8_0_ref / lb_quantize_row_q8_K_ref. */

/* 16 int32 lanes (4 vectors, in element order, already in int8 range) -> 16 int8 at dst. */
static inline void store_s32x16_as_s8(int8_t *dst, const int32x4_t *q)
{
    const int16x8_t lo = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
    const int16x8_t hi = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
    vst1q_s8(dst, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
}

static void quantize_row_q8_0_neon(const float *x, void *vy, int64_t n, const float *importance)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    if (importance) { /* the importance search is not a hot path */
        lb_quantize_row_q8_0_ref(x, vy, n, importance);
        return;
    }
    lb_block_q8_0 *y = vy;
    const int32x4_t hi = vdupq_n_s32(127);
    const int32x4_t lo = vdupq_n_s32(-127);
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const float *xb = x + b * LB_QK_LEGACY;
        float32x4_t v[8];
        float32x4_t amax = vdupq_n_f32(0.0f);
        uint32x4_t ordered = vdupq_n_u32(~0u);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(xb + 4 * k);
            amax = vmaxq_f32(amax, vabsq_f32(v[k]));
            ordered = vandq_u32(ordered, vceqq_f32(v[k], v[k]));
        }
        if (vminvq_u32(ordered) == 0) {
            /* the reference's running max depends on where NaNs sit: let it decide */
            lb_quantize_row_q8_0_ref(xb, &y[b], LB_QK_LEGACY, NULL);
            continue;
        }
        const float d = vmaxvq_f32(amax) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = lb_f32_to_f16(d);
        if ((dh & 0x7fffu) == 0x7c00u) { /* saturated to the largest finite half, as the ref */
            dh = (uint16_t)((dh & 0x8000u) | 0x7bffu);
            id = 1.0f / lb_f16_to_f32(dh);
        }
        y[b].d = dh;
        const float32x4_t idv = vdupq_n_f32(id);
        int32x4_t q[8];
        for (int k = 0; k < 8; k++)
            q[k] = vmaxq_s32(vminq_s32(vcvtaq_s32_f32(vmulq_f32(v[k], idv)), hi), lo);
        store_s32x16_as_s8(y[b].qs, q);
        store_s32x16_as_s8(y[b].qs + 16, q + 4);
    }
}

static void quantize_row_q8_K_neon(const float *x, void *vy, int64_t n, const float *importance)
{
    (void)importance; /* Q8_K ignores it, as the reference */
    assert(n >= 0 && n % LB_QK_K == 0);
    lb_block_q8_K *y = vy;
    const int32x4_t hi = vdupq_n_s32(127);
    const int32x4_t lo = vdupq_n_s32(-128);
    for (int64_t b = 0; b < n / LB_QK_K; b++, x += LB_QK_K) {
        /* NaN lanes count as 0: the reference's strict > never lets a NaN win */
        float32x4_t amaxv = vdupq_n_f32(0.0f);
        for (int k = 0; k < LB_QK_K / 4; k++) {
            const float32x4_t v = vld1q_f32(x + 4 * k);
            const uint32x4_t a = vandq_u32(vreinterpretq_u32_f32(vabsq_f32(v)), vceqq_f32(v, v));
            amaxv = vmaxq_f32(amaxv, vreinterpretq_f32_u32(a));
        }
        const float amax = vmaxvq_f32(amaxv);
        if (!amax) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        /* the reference keeps the first element of largest magnitude, with its sign */
        int first = 0;
        const float32x4_t amax_v = vdupq_n_f32(amax);
        for (int k = 0; k < LB_QK_K / 4; k++) {
            if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + 4 * k)), amax_v))) {
                first = 4 * k;
                while (fabsf(x[first]) != amax)
                    first++;
                break;
            }
        }
        const float max = x[first];
        const float iscale = -127.f / max;
        const int finite = isfinite(iscale);
        const float d = max / -127.f;
        const float32x4_t iscale_v = vdupq_n_f32(iscale);
        const float32x4_t d_v = vdupq_n_f32(d);
        for (int k = 0; k < LB_QK_K / 16; k++) {
            int32x4_t q[4];
            for (int i = 0; i < 4; i++) {
                const float32x4_t xv = vld1q_f32(x + 16 * k + 4 * i);
                /* subnormal max: 127 / max overflows, so the reference divides instead */
                const float32x4_t v = finite ? vmulq_f32(iscale_v, xv) : vdivq_f32(xv, d_v);
                q[i] = vmaxq_s32(vminq_s32(vcvtnq_s32_f32(v), hi), lo);
            }
            store_s32x16_as_s8(y[b].qs + 16 * k, q);
            const int32x4_t sum = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
            y[b].bsums[k] = (int16_t)vaddvq_s32(sum);
        }
        y[b].d = finite ? 1 / iscale : d;
    }
}

void lb_kernels_dsp_init_neon(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q8_0] = vec_dot_q8_0_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q4_0] = vec_dot_q4_0_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q4_1] = vec_dot_q4_1_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q5_0] = vec_dot_q5_0_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q5_1] = vec_dot_q5_1_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q2_K] = vec_dot_q2_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_Q3_K] = vec_dot_q3_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_Q4_K] = vec_dot_q4_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_Q5_K] = vec_dot_q5_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_Q6_K] = vec_dot_q6_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_IQ4_NL] = vec_dot_iq4_nl_q8_0_neon;
    dsp->vec_dot[LB_TYPE_IQ4_XS] = vec_dot_iq4_xs_q8_K_neon;
    dsp->quantize_activations[LB_TYPE_Q8_0] = quantize_row_q8_0_neon;
    dsp->quantize_activations[LB_TYPE_Q8_K] = quantize_row_q8_K_neon;
}
