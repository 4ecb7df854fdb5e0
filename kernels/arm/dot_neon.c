/* AArch64 NEON vec_dot kernels for Q8_0, Q4_0 (Q8_0 activations) and Q4_K, Q6_K (Q8_K activations). */
#include <arm_neon.h>
#include <assert.h>
#include <stdint.h>

#include "kernels/dsp.h"
#include "kernels/fp16_internal.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"

/* Fills the NEON entries of `dsp` (also declared in kernels/dsp.h for LB_HAVE_ARM_KERNELS). */
void lb_kernels_dsp_init_neon(lb_kernels_dsp *dsp);

/* Accuracy. Only plain ARMv8.0 AdvSIMD is used (vmull_s8 / vpadalq_s16, no dot-product
 * extension). Per block (legacy) or per sub-block (K-quants) the integer dot is exact: every
 * int8 x int8 product fits its int16 lane (|p| <= 16384, -128 inputs included) and pairs are
 * accumulated into int32 lanes, which cannot overflow for 32 elements. The exact integer sums
 * are then scaled and accumulated in float with the very operations, in the very order (block
 * order, no fused multiply-add), of the C references lb_vec_dot_<t>_c, so the results equal
 * them bit for bit when no FMA is contracted (GCC in ISO C mode contracts nothing; clang is
 * told below). The test (tests/arm/check_neon.c) accepts 1e-5 relative to sum |terms|, as the
 * AVX2 kernels are held to. */
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
        const float scale = lb_kernel_f16_to_f32(wb[b].d) * lb_kernel_f16_to_f32(ab[b].d);
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
        float v = (float)sumi * lb_kernel_f16_to_f32(wb[b].d);
        v = v * lb_kernel_f16_to_f32(ab[b].d);
        sum += v;
    }
    return sum;
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
        const float dall = y->d * lb_kernel_f16_to_f32(x->d);
        const float dmin = y->d * lb_kernel_f16_to_f32(x->dmin);
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
        const float dall = y->d * lb_kernel_f16_to_f32(x->d);
        const float dmin = y->d * 0.0f;
        sumf += dall * (float)isum - dmin * (float)0;
    }
    return sumf;
}

void lb_kernels_dsp_init_neon(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q8_0] = vec_dot_q8_0_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q4_0] = vec_dot_q4_0_q8_0_neon;
    dsp->vec_dot[LB_TYPE_Q4_K] = vec_dot_q4_K_q8_K_neon;
    dsp->vec_dot[LB_TYPE_Q6_K] = vec_dot_q6_K_q8_K_neon;
}
