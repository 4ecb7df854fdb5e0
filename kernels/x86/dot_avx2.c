/* AVX2 vec_dot kernels (legacy and K-quant weights) and bit-exact Q8_0 / Q8_K activation quantizers. */
#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/dsp.h"
#include "kernels/fp16_internal.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"

/* The quantizers must round exactly as the scalar references: no fused multiply-add may be
 * formed from the separate multiplies and subtractions below (ISO C mode, as meson's c_std=c11
 * gives, already contracts nothing under GCC). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Accuracy of the dots. Per block the integer dot is exact (every partial sum fits its int16 /
 * int32 lane for ANY input bytes, including -128 activations), split over 8 int32 lanes; each
 * lane is converted to float exactly (|lane| < 2^24), multiplied by the block's float scale and
 * accumulated per lane with FMA, and the 8 lanes are reduced in one fixed order at the end. The
 * result is therefore deterministic (no dependence on threads or alignment) but rounds
 * differently from the C reference, which sums one float per block in block order. With
 * nb = blocks in the row and T = the sum over blocks and lanes of |scale * lane| (at most
 * sum_i |w_i * a_i| over the dequantized products, plus the |dmin * m * a| terms of the
 * types with mins):
 *     |avx2 - ref| <= (nb + 8) * 2^-23 * T,
 * i.e. below 1e-5 * T for rows up to 4096 Q8_0 / Q4_0 elements (the bound is worst case;
 * random rows land near 1e-7 * T). Q2_K and Q4_K accumulate the d and the dmin terms in two
 * separate vectors (one FMA each per super-block) and subtract them once before the final
 * reduction, within the same bound. */

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */

static inline float f16_to_f32_avx2(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* Sum of the 8 lanes in a fixed order: (l0+l4, l1+l5, l2+l6, l3+l7), then pairs, then the two. */
static inline float hsum_ps_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i loadu256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline __m128i loadu128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* 32 nibbles of 16 bytes: elements 0..15 the low nibbles, 16..31 the high nibbles. */
static inline __m256i unpack_nibbles16_avx2(const uint8_t *qs)
{
    const __m128i x = loadu128(qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* Byte j = 0x10 where bit j of the little-endian 32-bit word at qh is set, else 0. */
static inline __m256i fifth_bits_avx2(const uint8_t *qh)
{
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int32_t)bits),
        _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
    const __m256i bitmask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bitmask), bitmask);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* Exact dot of 32 unsigned weight codes q (0..63) with 32 signed activations a, minus
 * offset * sum(a), offset a power of two <= 32: per int16 lane |q a pair| <= 63*128*2 and
 * |offset * a pair| <= 8192, so the int16 difference cannot overflow. 8 int32 lanes out. */
static inline __m256i dot_u8_s8_offset_avx2(__m256i q, __m256i a, __m256i offset_bytes)
{
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, a),
                                       _mm256_maddubs_epi16(offset_bytes, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Sum of 32 signed bytes as 8 int32 lanes. */
static inline __m256i sum_s8_avx2(__m256i a)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
}

/* 16 int16 lanes, each the signed byte of `table` (broadcast to both 128-bit halves) picked by
 * the high byte of the matching int16 lane of `mask` (the low byte being 0x80, which
 * zeroes). Adding 2 to every byte of such a mask moves both picks two bytes on, and keeps the
 * 0x80 bytes zeroing. */
static inline __m256i pick_scales_avx2(__m256i table, __m256i mask)
{
    return _mm256_srai_epi16(_mm256_shuffle_epi8(table, mask), 8);
}

/* ---------------------------------------------------------------------------------------- */
/* Legacy types with Q8_0 activations                                                        */

static float vec_dot_q8_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q8_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        /* widened to int16: exact for the full int8 range of both operands */
        const __m256i w0 = _mm256_cvtepi8_epi16(loadu128(wb[b].qs));
        const __m256i w1 = _mm256_cvtepi8_epi16(loadu128(wb[b].qs + 16));
        const __m256i a0 = _mm256_cvtepi8_epi16(loadu128(ab[b].qs));
        const __m256i a1 = _mm256_cvtepi8_epi16(loadu128(ab[b].qs + 16));
        const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(w0, a0), _mm256_madd_epi16(w1, a1));
        const float d = f16_to_f32_avx2(wb[b].d) * f16_to_f32_avx2(ab[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps_avx2(acc);
}

static float vec_dot_q4_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q4_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const __m256i q = unpack_nibbles16_avx2(wb[b].qs);
        const __m256i s = dot_u8_s8_offset_avx2(q, loadu256(ab[b].qs), eight);
        const float d = f16_to_f32_avx2(wb[b].d) * f16_to_f32_avx2(ab[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps_avx2(acc);
}

static float vec_dot_q5_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q5_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const __m256i sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const __m256i q = _mm256_or_si256(unpack_nibbles16_avx2(wb[b].qs), fifth_bits_avx2(wb[b].qh));
        const __m256i s = dot_u8_s8_offset_avx2(q, loadu256(ab[b].qs), sixteen);
        const float d = f16_to_f32_avx2(wb[b].d) * f16_to_f32_avx2(ab[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps_avx2(acc);
}

/* sum_j (d q_j + m)(da a_j) = (d da) sum q a + (m da) sum a, both integer sums per lane. */
static inline __m256 affine_block_avx2(__m256 acc, __m256i q, const lb_block_q8_0 *a, float d,
                                       float m)
{
    const __m256i av = loadu256(a->qs);
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), _mm256_set1_epi16(1));
    const __m256i sa = sum_s8_avx2(av);
    const float da = f16_to_f32_avx2(a->d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(s), acc);
    return _mm256_fmadd_ps(_mm256_set1_ps(m * da), _mm256_cvtepi32_ps(sa), acc);
}

static float vec_dot_q4_1_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q4_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const __m256i q = unpack_nibbles16_avx2(wb[b].qs);
        acc = affine_block_avx2(acc, q, &ab[b], f16_to_f32_avx2(wb[b].d), f16_to_f32_avx2(wb[b].m));
    }
    return hsum_ps_avx2(acc);
}

static float vec_dot_q5_1_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q5_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const __m256i q = _mm256_or_si256(unpack_nibbles16_avx2(wb[b].qs), fifth_bits_avx2(wb[b].qh));
        acc = affine_block_avx2(acc, q, &ab[b], f16_to_f32_avx2(wb[b].d), f16_to_f32_avx2(wb[b].m));
    }
    return hsum_ps_avx2(acc);
}

/* ---------------------------------------------------------------------------------------- */
/* K-quants with Q8_K activations                                                            */

/* Mask for pick_scales_avx2: low half picks byte `lo`, high half byte `hi`. */
static inline __m256i scale_mask_avx2(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((int16_t)((hi << 8) | 0x80)),
                            _mm_set1_epi16((int16_t)((lo << 8) | 0x80)));
}

/* Adds d_all * isum - d_min * summs (8 lanes each) to acc. */
static inline __m256 k_block_accumulate_avx2(__m256 acc, float dall, __m256i isum, float dmin,
                                             __m256i summs)
{
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(isum), acc);
    return _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc);
}

/* (d * yd, dmin * yd) in lanes 0 and 1, for the adjacent f16 d and dmin at p: one conversion and
 * one multiply, the same roundings as the scalar products. */
static inline __m128 k_d_dmin_avx2(const uint16_t *p, float yd)
{
    uint32_t bits;
    memcpy(&bits, p, sizeof bits);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)bits)), _mm_set1_ps(yd));
}
static_assert(offsetof(lb_block_q2_K, dmin) == offsetof(lb_block_q2_K, d) + 2, "d, dmin adjacent");
static_assert(offsetof(lb_block_q4_K, dmin) == offsetof(lb_block_q4_K, d) + 2, "d, dmin adjacent");

/* Q2_K: 16 sub-blocks of 16; scale nibble and min nibble per sub-block. Step k (0..7) dots
 * the 32 activations 32k.. with one 2-bit field of qs[32 (k / 4)..]: sub-block 2k in the low
 * 128-bit half, 2k + 1 in the high half. The scales are picked from a byte table straight into
 * zero-extended int16 lanes (mask bytes (index, 0x80)) and applied by madd; the exact int32
 * lane sums become float once per super-block, the min terms going to a second accumulator.
 * pshufb masks: step k picks byte 2k (low half) / 2k + 1 (high half) of the table. */
#define Q2K_PICK_ROW(k)                                                                         \
    {                                                                                           \
        Q2K_X8(0x8000 | (2 * (k))), Q2K_X8(0x8000 | (2 * (k) + 1))                             \
    }
#define Q2K_X8(v)                                                                               \
    (int16_t)(v), (int16_t)(v), (int16_t)(v), (int16_t)(v), (int16_t)(v), (int16_t)(v),         \
        (int16_t)(v), (int16_t)(v)
static const _Alignas(32) int16_t q2k_scale_pick[8][16] = {
    Q2K_PICK_ROW(0), Q2K_PICK_ROW(1), Q2K_PICK_ROW(2), Q2K_PICK_ROW(3),
    Q2K_PICK_ROW(4), Q2K_PICK_ROW(5), Q2K_PICK_ROW(6), Q2K_PICK_ROW(7),
};

static float vec_dot_q2_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q2_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q2_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m128i packed = loadu128(x->scales);
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(packed, 4), low4);
        const __m256i summs = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mins), loadu256(y->bsums));
        const __m256i table = _mm256_broadcastsi128_si256(_mm_and_si128(packed, low4));
        /* Step s takes bits 2s..2s+1 of every byte. Rather than shifting each step down, the
         * codes are masked in place: bits 0-1 (x1), 2-3 (x4), 4-5 (x16), and bits 6-7 after one
         * shift by 4 (x4). Each maddubs pair stays within int16 (48 * 128 * 2 < 2^15); the
         * sums of the x4 and x16 steps are exact multiples of 4 and 16, so shifting them back
         * gives exactly the lane sums of the unscaled codes. */
        const __m256i m03 = _mm256_set1_epi8(0x03);
        const __m256i m0c = _mm256_set1_epi8(0x0c);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        const __m256i q0 = loadu256(x->qs);
        const __m256i q1 = loadu256(x->qs + 32);
        const __m256i q0h = _mm256_srli_epi16(q0, 4);
        const __m256i q1h = _mm256_srli_epi16(q1, 4);
#define Q2K_DOT(codes, step)                                                                    \
    _mm256_madd_epi16(_mm256_maddubs_epi16(codes, loadu256(y->qs + 32 * (step))),               \
                      _mm256_shuffle_epi8(table, _mm256_load_si256(                              \
                                                     (const __m256i *)q2k_scale_pick[step])))
        const __m256i x1 = _mm256_add_epi32(Q2K_DOT(_mm256_and_si256(q0, m03), 0),
                                            Q2K_DOT(_mm256_and_si256(q1, m03), 4));
        const __m256i x4a = _mm256_add_epi32(Q2K_DOT(_mm256_and_si256(q0, m0c), 1),
                                             Q2K_DOT(_mm256_and_si256(q1, m0c), 5));
        const __m256i x4b = _mm256_add_epi32(Q2K_DOT(_mm256_and_si256(q0h, m0c), 3),
                                             Q2K_DOT(_mm256_and_si256(q1h, m0c), 7));
        const __m256i x16 = _mm256_add_epi32(Q2K_DOT(_mm256_and_si256(q0, m30), 2),
                                             Q2K_DOT(_mm256_and_si256(q1, m30), 6));
#undef Q2K_DOT
        const __m256i x4 =
            _mm256_add_epi32(_mm256_add_epi32(x4a, x4b), _mm256_srai_epi32(x16, 2));
        const __m256i isum_all = _mm256_add_epi32(x1, _mm256_srai_epi32(x4, 2));
        const __m128 dd = k_d_dmin_avx2(&x->d, y->d);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(isum_all), acc);
        accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                               _mm256_cvtepi32_ps(summs), accm);
    }
    return hsum_ps_avx2(_mm256_sub_ps(acc, accm));
}

/* Q3_K: q = low 2 bits - 4 where the high bit is clear; 6-bit scales offset by 32. */
static float vec_dot_q3_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q3_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i three = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q3_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        int8_t sc[16];
        for (int j = 0; j < 16; j++) {
            const int lo = j < 8 ? x->scales[j] & 0xf : x->scales[j - 8] >> 4;
            const int hi = (x->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (int8_t)((lo | (hi << 4)) - 32);
        }
        const __m256i table = _mm256_broadcastsi128_si256(loadu128(sc));
        const __m256i hmask = loadu256(x->hmask);
        __m256i mask = scale_mask_avx2(0, 1);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(x->qs + 32 * h);
            for (int s = 0; s < 4; s++) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), three);
                const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + s), one);
                const __m256i minus4 = _mm256_slli_epi16(_mm256_xor_si256(hbit, one), 2);
                const __m256i av = loadu256(y->qs + 128 * h + 32 * s);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, av),
                                                   _mm256_maddubs_epi16(minus4, av));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, pick_scales_avx2(table, mask)));
                mask = _mm256_add_epi8(mask, _mm256_set1_epi8(2));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * f16_to_f32_avx2(x->d)), _mm256_cvtepi32_ps(isum),
                              acc);
    }
    return hsum_ps_avx2(acc);
}

/* The 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K / Q5_K block. */
static inline __m128i k4_scales_mins(const uint8_t *s)
{
    uint8_t sm[16];
    for (int j = 0; j < 4; j++) {
        sm[j] = s[j] & 63;
        sm[8 + j] = s[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sm[j] = (uint8_t)((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
        sm[8 + j] = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
    return loadu128(sm);
}

/* Q4_K and Q5_K share all but the fifth bit (qh NULL for Q4_K). Weights 64c..64c+31 are the
 * low nibbles of qs[32c..], sub-block 2c; 64c+32..64c+63 the high nibbles, sub-block 2c+1. */
static inline __m256 k4_block_avx2(__m256 acc, const uint8_t *qs, const uint8_t *qh,
                                   const uint8_t *scales, uint16_t d, uint16_t dmin,
                                   const lb_block_q8_K *y)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i table = _mm256_broadcastsi128_si256(k4_scales_mins(scales));
    /* mins: lane i (int16) = min of sub-block i / 2, against bsums[i] */
    const __m256i min_mask = _mm256_set_epi8(
        11 + 4, (char)0x80, 11 + 4, (char)0x80, 10 + 4, (char)0x80, 10 + 4, (char)0x80,
        9 + 4, (char)0x80, 9 + 4, (char)0x80, 8 + 4, (char)0x80, 8 + 4, (char)0x80,
        11, (char)0x80, 11, (char)0x80, 10, (char)0x80, 10, (char)0x80,
        9, (char)0x80, 9, (char)0x80, 8, (char)0x80, 8, (char)0x80);
    const __m256i summs = _mm256_madd_epi16(pick_scales_avx2(table, min_mask), loadu256(y->bsums));
    const __m256i qhv = qh ? loadu256(qh) : _mm256_setzero_si256();
    __m256i mask = _mm256_set1_epi16((int16_t)0x0080);
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        const __m256i q = loadu256(qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(
                lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qhv, 2 * c), one), 4));
            hi = _mm256_or_si256(
                hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qhv, 2 * c + 1), one), 4));
        }
        const __m256i plo = _mm256_maddubs_epi16(lo, loadu256(y->qs + 64 * c));
        const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(y->qs + 64 * c + 32));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(plo, pick_scales_avx2(table, mask)));
        mask = _mm256_add_epi16(mask, _mm256_set1_epi16(0x0100));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(phi, pick_scales_avx2(table, mask)));
        mask = _mm256_add_epi16(mask, _mm256_set1_epi16(0x0100));
    }
    return k_block_accumulate_avx2(acc, y->d * f16_to_f32_avx2(d), isum,
                                   y->d * f16_to_f32_avx2(dmin), summs);
}

/* The 12 packed bytes of Q4_K scales/mins, decoded with SIMD: byte j (0..7) = scale j, byte
 * 8 + j = min j, as k4_scales_mins. With a, b, c the three little-endian words of the packed
 * bytes: scales 0..3 = a & 63, scales 4..7 = (c & 15) | (a >> 6) << 4, mins 0..3 = b & 63,
 * mins 4..7 = (c >> 4) | (b >> 6) << 4 (per byte). Reads 16 bytes: the 4 after the scales are
 * the block's qs, ignored. */
static inline __m128i q4k_scales_mins_simd(const uint8_t *s)
{
    const __m128i v = loadu128(s);
    const __m128i acbc = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
    const __m128i aabb = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));
    const __m128i low =
        _mm_and_si128(_mm_srlv_epi32(acbc, _mm_set_epi32(4, 0, 0, 0)),
                      _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i high = _mm_and_si128(_mm_srli_epi32(aabb, 2),
                                       _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(low, high);
}

/* pshufb masks for Q4_K: mask j picks byte j (scale j) of the table into every int16 lane,
 * zero-extended. */
#define Q4K_PICK_ROW(j)                                                                         \
    {                                                                                           \
        Q2K_X8(0x8000 | (j)), Q2K_X8(0x8000 | (j))                                              \
    }
static const _Alignas(32) int16_t q4k_scale_pick[8][16] = {
    Q4K_PICK_ROW(0), Q4K_PICK_ROW(1), Q4K_PICK_ROW(2), Q4K_PICK_ROW(3),
    Q4K_PICK_ROW(4), Q4K_PICK_ROW(5), Q4K_PICK_ROW(6), Q4K_PICK_ROW(7),
};
#undef Q4K_PICK_ROW
#undef Q2K_PICK_ROW
#undef Q2K_X8

/* Q4_K: per super-block the scales/mins are decoded once (SIMD), the min correction is one
 * madd of the mins (each repeated for its two bsums) with the bsums, and every sub-block's
 * scale multiply is a madd in the integer domain; the exact int32 sums become float once per
 * super-block. */
static float vec_dot_q4_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q4_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    /* int16 lane i = min i / 2 (byte 8 + i / 2 of the table, zero-extended) */
    const __m256i min_pick = _mm256_set_epi16(
        (int16_t)0x800f, (int16_t)0x800f, (int16_t)0x800e, (int16_t)0x800e, (int16_t)0x800d,
        (int16_t)0x800d, (int16_t)0x800c, (int16_t)0x800c, (int16_t)0x800b, (int16_t)0x800b,
        (int16_t)0x800a, (int16_t)0x800a, (int16_t)0x8009, (int16_t)0x8009, (int16_t)0x8008,
        (int16_t)0x8008);
    __m256 acc = _mm256_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q4_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m256i table = _mm256_broadcastsi128_si256(q4k_scales_mins_simd(x->scales));
        const __m256i summs = _mm256_madd_epi16(_mm256_shuffle_epi8(table, min_pick),
                                                loadu256(y->bsums));
        /* pair c: low nibbles = sub-block 2c, high nibbles = sub-block 2c + 1 */
#define Q4K_PICK(j) _mm256_load_si256((const __m256i *)q4k_scale_pick[j])
#define Q4K_PAIR(c, isum_lo, isum_hi)                                                           \
    do {                                                                                        \
        const __m256i q = loadu256(x->qs + 32 * (c));                                           \
        const __m256i plo = _mm256_maddubs_epi16(_mm256_and_si256(q, low4),                     \
                                                 loadu256(y->qs + 64 * (c)));                   \
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);                    \
        const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(y->qs + 64 * (c) + 32));         \
        isum_lo = _mm256_madd_epi16(plo, _mm256_shuffle_epi8(table, Q4K_PICK(2 * (c))));      \
        isum_hi = _mm256_madd_epi16(phi, _mm256_shuffle_epi8(table, Q4K_PICK(2 * (c) + 1)));  \
    } while (0)
        __m256i s0, s1, s2, s3, s4, s5, s6, s7;
        Q4K_PAIR(0, s0, s1);
        Q4K_PAIR(1, s2, s3);
        Q4K_PAIR(2, s4, s5);
        Q4K_PAIR(3, s6, s7);
#undef Q4K_PAIR
#undef Q4K_PICK
        const __m256i isum = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
            _mm256_add_epi32(_mm256_add_epi32(s4, s5), _mm256_add_epi32(s6, s7)));
        const __m128 dd = k_d_dmin_avx2(&x->d, y->d);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                               _mm256_cvtepi32_ps(summs), accm);
    }
    return hsum_ps_avx2(_mm256_sub_ps(acc, accm));
}

static float vec_dot_q5_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q5_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++)
        acc = k4_block_avx2(acc, wb[b].qs, wb[b].qh, wb[b].scales, wb[b].d, wb[b].dmin, &ab[b]);
    return hsum_ps_avx2(acc);
}

/* Q6_K: q - 32 with q = 4 low bits from ql and 2 high bits from qh; signed 8-bit scales. */
static float vec_dot_q6_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q6_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i thirty_two = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q6_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m256i table = _mm256_broadcastsi128_si256(loadu128(x->scales));
        __m256i mask = scale_mask_avx2(0, 1);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i ql[2] = {loadu256(x->ql + 64 * h), loadu256(x->ql + 64 * h + 32)};
            const __m256i qh = loadu256(x->qh + 32 * h);
            for (int s = 0; s < 4; s++) {
                const __m256i lo = s < 2 ? _mm256_and_si256(ql[s & 1], low4)
                                         : _mm256_and_si256(_mm256_srli_epi16(ql[s & 1], 4), low4);
                const __m256i hi = _mm256_slli_epi16(
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2 * s), three), 4);
                const __m256i q = _mm256_or_si256(lo, hi);
                const __m256i av = loadu256(y->qs + 128 * h + 32 * s);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, av),
                                                   _mm256_maddubs_epi16(thirty_two, av));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, pick_scales_avx2(table, mask)));
                mask = _mm256_add_epi8(mask, _mm256_set1_epi8(2));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * f16_to_f32_avx2(x->d)), _mm256_cvtepi32_ps(isum),
                              acc);
    }
    return hsum_ps_avx2(acc);
}

/* ---------------------------------------------------------------------------------------- */
/* Activation quantizers, bit-exact with lb_quantize_row_q8_0_ref / lb_quantize_row_q8_K_ref  */

/* 32 int32 lanes (4 vectors, in element order) -> 32 int8 stored at dst; values in int8 range. */
static inline void store_i32x32_as_i8(int8_t *dst, __m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
    const __m256i p01 = _mm256_packs_epi32(i0, i1);
    const __m256i p23 = _mm256_packs_epi32(i2, i3);
    const __m256i bytes = _mm256_packs_epi16(p01, p23);
    const __m256i order = _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0);
    _mm256_storeu_si256((__m256i *)dst, _mm256_permutevar8x32_epi32(bytes, order));
}

/* roundf (half away from zero) of v, clamped to [-127, 127], NaN -> 0, as roundf_clamp. The
 * fraction v - trunc(v) is exact, so the tie test is exact. */
static inline __m256i round_away_clamp127_avx2(__m256 v)
{
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 frac = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(v, t));
    const __m256 away = _mm256_or_ps(_mm256_and_ps(v, sign_bit), _mm256_set1_ps(1.0f));
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), away);
    __m256 r = _mm256_add_ps(t, up);
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvttps_epi32(r);
}

static void quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n, const float *importance)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    if (importance) { /* the importance search is not a hot path */
        lb_quantize_row_q8_0_ref(x, vy, n, importance);
        return;
    }
    lb_block_q8_0 *y = vy;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / LB_QK_LEGACY; b++) {
        const float *xb = x + b * LB_QK_LEGACY;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        __m256 unordered = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
            unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        }
        if (_mm256_movemask_ps(unordered)) {
            /* the reference's running max depends on where NaNs sit: let it decide */
            lb_quantize_row_q8_0_ref(xb, &y[b], LB_QK_LEGACY, NULL);
            continue;
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = lb_kernel_f32_to_f16(d);
        if ((dh & 0x7fffu) == 0x7c00u) { /* saturated to the largest finite half, as the ref */
            dh = (uint16_t)((dh & 0x8000u) | 0x7bffu);
            id = 1.0f / lb_kernel_f16_to_f32(dh);
        }
        y[b].d = dh;
        const __m256 idv = _mm256_set1_ps(id);
        store_i32x32_as_i8(y[b].qs, round_away_clamp127_avx2(_mm256_mul_ps(v[0], idv)),
                           round_away_clamp127_avx2(_mm256_mul_ps(v[1], idv)),
                           round_away_clamp127_avx2(_mm256_mul_ps(v[2], idv)),
                           round_away_clamp127_avx2(_mm256_mul_ps(v[3], idv)));
    }
}

/* Nearest, ties to even, clamped to [-128, 127], NaN -> 0: qk_nearest_int then the clamp. */
static inline __m256i round_even_clamp128_avx2(__m256 v)
{
    __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvttps_epi32(r);
}

static void quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n, const float *importance)
{
    (void)importance; /* Q8_K ignores it, as the reference */
    assert(n >= 0 && n % LB_QK_K == 0);
    lb_block_q8_K *y = vy;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / LB_QK_K; b++, x += LB_QK_K) {
        /* max_ps(a, acc) returns acc where a is NaN: NaNs never win, as in the reference */
        __m256 amaxv = _mm256_setzero_ps();
        for (int k = 0; k < LB_QK_K / 8; k++)
            amaxv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + 8 * k), abs_mask), amaxv);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amaxv), _mm256_extractf128_ps(amaxv, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (!amax) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        /* the reference keeps the first element of largest magnitude, with its sign */
        float max = 0.0f;
        const __m256 amax_v = _mm256_set1_ps(amax);
        for (int k = 0; k < LB_QK_K / 8; k++) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + 8 * k), abs_mask);
            const int hits = _mm256_movemask_ps(_mm256_cmp_ps(a, amax_v, _CMP_EQ_OQ));
            if (hits) {
                max = x[8 * k + __builtin_ctz((unsigned)hits)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const int finite = isfinite(iscale);
        const float d = max / -127.f;
        __m256i q[LB_QK_K / 8];
        for (int k = 0; k < LB_QK_K / 8; k++) {
            const __m256 xv = _mm256_loadu_ps(x + 8 * k);
            /* subnormal max: 127 / max overflows, so the reference divides instead */
            const __m256 v = finite ? _mm256_mul_ps(_mm256_set1_ps(iscale), xv)
                                    : _mm256_div_ps(xv, _mm256_set1_ps(d));
            q[k] = round_even_clamp128_avx2(v);
        }
        y[b].d = finite ? 1 / iscale : d;
        /* bsums: per 16 elements = two int32 vectors */
        int32_t sums[LB_QK_K / 16];
        for (int k = 0; k < LB_QK_K / 32; k++) {
            store_i32x32_as_i8(y[b].qs + 32 * k, q[4 * k], q[4 * k + 1], q[4 * k + 2], q[4 * k + 3]);
            const __m256i s0 = _mm256_add_epi32(q[4 * k], q[4 * k + 1]);
            const __m256i s1 = _mm256_add_epi32(q[4 * k + 2], q[4 * k + 3]);
            /* hadd: [s0 01, s0 23, s1 01, s1 23 | s0 45, s0 67, s1 45, s1 67] */
            __m256i h = _mm256_hadd_epi32(s0, s1);
            h = _mm256_hadd_epi32(h, h); /* lanes 0,1: s0 0..3, s1 0..3; 4,5: s0 4..7, s1 4..7 */
            sums[2 * k] = _mm256_extract_epi32(h, 0) + _mm256_extract_epi32(h, 4);
            sums[2 * k + 1] = _mm256_extract_epi32(h, 1) + _mm256_extract_epi32(h, 5);
        }
        for (int j = 0; j < LB_QK_K / 16; j++)
            y[b].bsums[j] = (int16_t)sums[j];
    }
}

/* ---------------------------------------------------------------------------------------- */

void lb_kernels_dsp_init_avx2(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q8_0] = vec_dot_q8_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_0] = vec_dot_q4_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_1] = vec_dot_q4_1_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_0] = vec_dot_q5_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_1] = vec_dot_q5_1_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q2_K] = vec_dot_q2_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q3_K] = vec_dot_q3_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q4_K] = vec_dot_q4_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q5_K] = vec_dot_q5_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q6_K] = vec_dot_q6_K_q8_K_avx2;
    dsp->quantize_activations[LB_TYPE_Q8_0] = quantize_row_q8_0_avx2;
    dsp->quantize_activations[LB_TYPE_Q8_K] = quantize_row_q8_K_avx2;
}
