/* AVX2 vec_dot kernels of the K-quants (Q2_K .. Q6_K) with Q8_K activations. */
#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/dsp.h"
#include "kernels/fp16_internal.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"
#include "kernels/x86/avx2_internal.h"


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
void lb_kernels_dsp_init_avx2_k(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q2_K] = vec_dot_q2_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q3_K] = vec_dot_q3_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q4_K] = vec_dot_q4_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q5_K] = vec_dot_q5_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q6_K] = vec_dot_q6_K_q8_K_avx2;
}
