/* AVX2 vec_dot kernels of the K-quants (Q2_K .. Q6_K) with Q8_K activations. */
#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "kernels/dsp.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"
#include "kernels/x86/avx2_internal.h"


/* (d * yd, dmin * yd) in lanes 0 and 1, for the adjacent f16 d and dmin at p: one conversion and
 * one multiply, the same roundings as the scalar products. */
static inline __m128 k_d_dmin_avx2(const void *p, float yd)
{
    uint32_t bits;
    memcpy(&bits, p, sizeof bits);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)bits)), _mm_set1_ps(yd));
}
static_assert(offsetof(lb_block_q2_K, dmin) == offsetof(lb_block_q2_K, d) + 2, "d, dmin adjacent");
static_assert(offsetof(lb_block_q4_K, dmin) == offsetof(lb_block_q4_K, d) + 2, "d, dmin adjacent");
static_assert(offsetof(lb_block_q5_K, dmin) == offsetof(lb_block_q5_K, d) + 2, "d, dmin adjacent");

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

/* Mask for _mm256_shuffle_epi8 on a table of 8 int16 lanes (broadcast to both 128-bit halves):
 * every int16 lane of the low half gets table lane `lo`, every lane of the high half lane `hi`. */
static inline __m256i pick16_mask_avx2(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((int16_t)(((2 * hi + 1) << 8) | (2 * hi))),
                            _mm_set1_epi16((int16_t)(((2 * lo + 1) << 8) | (2 * lo))));
}

/* The 16 sub-block scales of a Q3_K block with the offset removed (-32..31), as int8 bytes
 * 0..15. With a, b, c the three little-endian words of the 12 packed bytes, scales 0..3, 4..7,
 * 8..11, 12..15 take their low 4 bits from the bytes of a, b, a >> 4, b >> 4 and their high 2
 * bits from those of c, c >> 2, c >> 4, c >> 6. Reads the 4 bytes before the scales (the end of
 * qs) as word 0, ignored. */
static_assert(offsetof(lb_block_q3_K, scales) >= 4, "4 bytes before the Q3_K scales");
static inline __m128i q3k_scales_simd(const lb_block_q3_K *x)
{
    const __m128i v = loadu128((const uint8_t *)x + offsetof(lb_block_q3_K, scales) - 4);
    const __m128i abab = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 1));
    const __m128i cccc = _mm_shuffle_epi32(v, _MM_SHUFFLE(3, 3, 3, 3));
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(abab, _mm_set_epi32(4, 4, 0, 0)),
                                      _mm_set1_epi8(0x0f));
    const __m128i high = _mm_and_si128(
        _mm_slli_epi32(_mm_srlv_epi32(cccc, _mm_set_epi32(6, 4, 2, 0)), 4), _mm_set1_epi8(0x30));
    return _mm_sub_epi8(_mm_or_si128(low, high), _mm_set1_epi8(32));
}

/* One Q3_K step (k = 4h + s, 0..7): activations 32k.., codes at bits 2s..2s+1 of q (qs half h)
 * and high bit k of hm, as the unsigned 3-bit low + 4 * high = level + 4, so one maddubs per
 * step (pairs within 2 * 7 * 128). Weighted by the int16 scales of tab (sub-blocks 8h..8h+7):
 * lane 2s (sub-block 2k) in the low half, 2s + 1 in the high half. The + 4 is taken off
 * through the bsums once per block. */
static inline __attribute__((always_inline)) __m256i q3k_codes_avx2(__m256i q, __m256i hm, int s,
                                                                    int k)
{
    const __m256i low = _mm256_and_si256(s ? _mm256_srli_epi16(q, 2 * s) : q, _mm256_set1_epi8(3));
    /* bit k of each byte to bit 2: other bits that a 16-bit shift brings into the byte land
     * outside bit 2 (shifts of at most 5) */
    const __m256i hb = k < 2 ? _mm256_slli_epi16(hm, 2 - k)
                             : (k > 2 ? _mm256_srli_epi16(hm, k - 2) : hm);
    return _mm256_or_si256(low, _mm256_and_si256(hb, _mm256_set1_epi8(4)));
}

static inline __attribute__((always_inline)) __m256i q3k_step_avx2(__m256i q, __m256i hm, int s,
                                                                   int k, const int8_t *a,
                                                                   __m256i tab)
{
    const __m256i p = _mm256_maddubs_epi16(q3k_codes_avx2(q, hm, s, k), loadu256(a));
    return _mm256_madd_epi16(p, _mm256_shuffle_epi8(tab, pick16_mask_avx2(2 * s, 2 * s + 1)));
}

/* Q3_K: level = low 2 bits + 4 * high bit - 4, scales 6-bit - 32. Per super-block: the scales
 * decoded once (SIMD) to int16, each step one maddubs of level + 4 and one madd with its
 * scales, and -4 * sum_j scale_j * bsums_j for the offset; exact int32 lanes (|lane| < 2^21),
 * one conversion. */
static float vec_dot_q3_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q3_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q3_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_simd(x));
        const __m256i tab0 = _mm256_permute2x128_si256(sc16, sc16, 0x00);
        const __m256i tab1 = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        const __m256i offs = _mm256_madd_epi16(sc16, loadu256(y->bsums));
        const __m256i hm = loadu256(x->hmask);
        const __m256i q0 = loadu256(x->qs);
        const __m256i q1 = loadu256(x->qs + 32);
        const __m256i s0 = _mm256_add_epi32(q3k_step_avx2(q0, hm, 0, 0, y->qs, tab0),
                                            q3k_step_avx2(q0, hm, 1, 1, y->qs + 32, tab0));
        const __m256i s1 = _mm256_add_epi32(q3k_step_avx2(q0, hm, 2, 2, y->qs + 64, tab0),
                                            q3k_step_avx2(q0, hm, 3, 3, y->qs + 96, tab0));
        const __m256i s2 = _mm256_add_epi32(q3k_step_avx2(q1, hm, 0, 4, y->qs + 128, tab1),
                                            q3k_step_avx2(q1, hm, 1, 5, y->qs + 160, tab1));
        const __m256i s3 = _mm256_add_epi32(q3k_step_avx2(q1, hm, 2, 6, y->qs + 192, tab1),
                                            q3k_step_avx2(q1, hm, 3, 7, y->qs + 224, tab1));
        const __m256i isum = _mm256_sub_epi32(
            _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
            _mm256_slli_epi32(offs, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * f16_to_f32_avx2(x->d)),
                              _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum_ps_avx2(acc);
}

/* The 12 packed bytes of Q4_K scales/mins, decoded with SIMD: byte j (0..7) = scale j, byte
 * 8 + j = min j (quants_k.h). With a, b, c the three little-endian words of the packed
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

/* pshufb mask for Q4_K / Q5_K: int16 lane i = min i / 2 (byte 8 + i / 2 of the scale/min
 * table, zero-extended), so one madd with the bsums gives the min correction. */
static inline __m256i k4_min_pick(void)
{
    return _mm256_set_epi16(
        (int16_t)0x800f, (int16_t)0x800f, (int16_t)0x800e, (int16_t)0x800e, (int16_t)0x800d,
        (int16_t)0x800d, (int16_t)0x800c, (int16_t)0x800c, (int16_t)0x800b, (int16_t)0x800b,
        (int16_t)0x800a, (int16_t)0x800a, (int16_t)0x8009, (int16_t)0x8009, (int16_t)0x8008,
        (int16_t)0x8008);
}

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
    const __m256i min_pick = k4_min_pick();
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

/* Q5_K: Q4_K plus a fifth bit per code (0..31, maddubs pairs within 2 * 31 * 128): bit k of
 * qh[l] is the high bit of weight 32k + l, moved to bit 4 of the nibble's byte. Otherwise as
 * Q4_K (same scale/min decode, picks and min correction). */
static inline __attribute__((always_inline)) __m256i q5k_fifth_bit_avx2(__m256i qh, int k)
{
    /* bit k of each byte to bit 4: bits a 16-bit shift brings in from the neighbouring byte
     * land outside bit 4 (shifts of at most 4) */
    const __m256i t = k < 4   ? _mm256_slli_epi16(qh, 4 - k)
                      : k > 4 ? _mm256_srli_epi16(qh, k - 4)
                              : qh;
    return _mm256_and_si256(t, _mm256_set1_epi8(0x10));
}

static float vec_dot_q5_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q5_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i min_pick = k4_min_pick();
    __m256 acc = _mm256_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q5_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m256i table = _mm256_broadcastsi128_si256(q4k_scales_mins_simd(x->scales));
        const __m256i summs = _mm256_madd_epi16(_mm256_shuffle_epi8(table, min_pick),
                                                loadu256(y->bsums));
        const __m256i qh = loadu256(x->qh);
        /* pair c: low nibbles = sub-block 2c (fifth bit 2c), high nibbles = 2c + 1 (2c + 1) */
#define Q5K_PICK(j) _mm256_load_si256((const __m256i *)q4k_scale_pick[j])
#define Q5K_PAIR(c, isum_lo, isum_hi)                                                           \
    do {                                                                                        \
        const __m256i q = loadu256(x->qs + 32 * (c));                                           \
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4),                           \
                                           q5k_fifth_bit_avx2(qh, 2 * (c)));                    \
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4),     \
                                           q5k_fifth_bit_avx2(qh, 2 * (c) + 1));                \
        const __m256i plo = _mm256_maddubs_epi16(lo, loadu256(y->qs + 64 * (c)));              \
        const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(y->qs + 64 * (c) + 32));         \
        isum_lo = _mm256_madd_epi16(plo, _mm256_shuffle_epi8(table, Q5K_PICK(2 * (c))));      \
        isum_hi = _mm256_madd_epi16(phi, _mm256_shuffle_epi8(table, Q5K_PICK(2 * (c) + 1)));  \
    } while (0)
        __m256i s0, s1, s2, s3, s4, s5, s6, s7;
        Q5K_PAIR(0, s0, s1);
        Q5K_PAIR(1, s2, s3);
        Q5K_PAIR(2, s4, s5);
        Q5K_PAIR(3, s6, s7);
#undef Q5K_PAIR
#undef Q5K_PICK
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

/* One Q6_K step (h, s): activations 128h + 32s.., the 6-bit codes (0..63, maddubs pairs within
 * 2 * 63 * 128) from the nibbles of l (low nibbles for s < 2, high for s >= 2) and bits
 * 2s..2s+1 of qh moved to bits 4..5. Weighted by the int16 scales of tab (sub-blocks
 * 8h..8h+7): lane 2s in the low half, 2s + 1 in the high half. */
static inline __attribute__((always_inline)) __m256i q6k_codes_avx2(__m256i l, __m256i qh, int s)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(s < 2 ? l : _mm256_srli_epi16(l, 4), low4);
    /* bits 2s..2s+1 of each byte to bits 4..5: bits that a 16-bit shift brings in from the
     * neighbouring byte land outside bits 4..5 (shifts of at most 4) */
    const __m256i t = s == 0 ? _mm256_slli_epi16(qh, 4)
                    : s == 1 ? _mm256_slli_epi16(qh, 2)
                    : s == 2 ? qh
                             : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(t, _mm256_set1_epi8(0x30)));
}

static inline __attribute__((always_inline)) __m256i q6k_step_avx2(__m256i l, __m256i qh, int s,
                                                                   const int8_t *a, __m256i tab)
{
    const __m256i p = _mm256_maddubs_epi16(q6k_codes_avx2(l, qh, s), loadu256(a));
    return _mm256_madd_epi16(p, _mm256_shuffle_epi8(tab, pick16_mask_avx2(2 * s, 2 * s + 1)));
}

/* Q6_K: level = 6-bit code - 32, signed 8-bit scales. Per super-block: the scales widened once
 * to int16, each step one maddubs of the unsigned code and one madd with its scales, and
 * 32 * sum_j scale_j * bsums_j for the offset, subtracted. So that every int32 lane converts
 * to float exactly, the two halves (|lane| <= 4 * 2 * (2 * 63 * 128) * 128 < 2^24) and the
 * offset term (|lane| <= 32 * 2 * 128 * 2048 = 2^24) are converted and accumulated apart,
 * each in its own vector. */
static float vec_dot_q6_K_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q6_K *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    __m256 acc0 = _mm256_setzero_ps();
    __m256 acc1 = _mm256_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q6_K *x = &wb[b];
        const lb_block_q8_K *y = &ab[b];
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x->scales));
        const __m256i tab0 = _mm256_permute2x128_si256(sc16, sc16, 0x00);
        const __m256i tab1 = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        const __m256i offs = _mm256_madd_epi16(sc16, loadu256(y->bsums));
        const __m256i l0 = loadu256(x->ql);
        const __m256i l1 = loadu256(x->ql + 32);
        const __m256i l2 = loadu256(x->ql + 64);
        const __m256i l3 = loadu256(x->ql + 96);
        const __m256i h0 = loadu256(x->qh);
        const __m256i h1 = loadu256(x->qh + 32);
        const __m256i s0 = _mm256_add_epi32(q6k_step_avx2(l0, h0, 0, y->qs, tab0),
                                            q6k_step_avx2(l1, h0, 1, y->qs + 32, tab0));
        const __m256i s1 = _mm256_add_epi32(q6k_step_avx2(l0, h0, 2, y->qs + 64, tab0),
                                            q6k_step_avx2(l1, h0, 3, y->qs + 96, tab0));
        const __m256i s2 = _mm256_add_epi32(q6k_step_avx2(l2, h1, 0, y->qs + 128, tab1),
                                            q6k_step_avx2(l3, h1, 1, y->qs + 160, tab1));
        const __m256i s3 = _mm256_add_epi32(q6k_step_avx2(l2, h1, 2, y->qs + 192, tab1),
                                            q6k_step_avx2(l3, h1, 3, y->qs + 224, tab1));
        const __m256 d = _mm256_set1_ps(y->d * f16_to_f32_avx2(x->d));
        acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc0);
        acc1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_add_epi32(s2, s3)), acc1);
        accm = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_slli_epi32(offs, 5)), accm);
    }
    return hsum_ps_avx2(_mm256_sub_ps(_mm256_add_ps(acc0, acc1), accm));
}

/* Block b of each of the LB_DOT_X4_ROWS activation rows `a_stride` bytes apart. */
static inline void q8_K_rows_x4(const void *a_q8_K, size_t a_stride, int64_t b,
                                const lb_block_q8_K **y)
{
    for (int j = 0; j < LB_DOT_X4_ROWS; j++)
        y[j] = (const lb_block_q8_K *)((const uint8_t *)a_q8_K + j * a_stride) + b;
}

/* One super-block of one activation row for the types with a min (Q2_K, Q4_K, Q5_K), the float
 * steps of their one-row dots: acc += d yd * isum, accm += dmin yd * (mins . bsums), mins as
 * int16 lanes matching y's bsums, d and dmin the adjacent f16 at d_dmin. */
static inline void k_accumulate_d_dmin_avx2(const void *d_dmin, const lb_block_q8_K *y,
                                            __m256i isum, __m256i mins, __m256 *acc,
                                            __m256 *accm)
{
    const __m256i summs = _mm256_madd_epi16(mins, loadu256(y->bsums));
    const __m128 dd = k_d_dmin_avx2(d_dmin, y->d);
    *acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(isum), *acc);
    *accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(summs),
                            *accm);
}

/* Q2_K against LB_DOT_X4_ROWS activation rows: each step's 2-bit codes (shifted down, where
 * the one-row dot masks them in place and shifts the sums: the same exact integers) and picked
 * scales decoded once for all rows; the float steps as in vec_dot_q2_K_q8_K_avx2, so the same
 * bits. */
static void vec_dot_x4_q2_K_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                      int64_t n, float *out)
{
    enum { R = LB_DOT_X4_ROWS };
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q2_K *wb = w;
    const __m128i low4 = _mm_set1_epi8(0x0f);
    const __m256i m03 = _mm256_set1_epi8(0x03);
    __m256 acc[R], accm[R];
    for (int j = 0; j < R; j++)
        acc[j] = accm[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q2_K *x = &wb[b];
        const lb_block_q8_K *y[R];
        q8_K_rows_x4(a_q8_K, a_stride, b, y);
        const __m128i packed = loadu128(x->scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
        const __m256i table = _mm256_broadcastsi128_si256(_mm_and_si128(packed, low4));
        __m256i isum[R];
        for (int j = 0; j < R; j++)
            isum[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const __m256i q = loadu256(x->qs + 32 * (k / 4));
            const __m256i codes =
                _mm256_and_si256(k % 4 ? _mm256_srli_epi16(q, 2 * (k % 4)) : q, m03);
            const __m256i scales = _mm256_shuffle_epi8(
                table, _mm256_load_si256((const __m256i *)q2k_scale_pick[k]));
#pragma GCC unroll 4
            for (int j = 0; j < R; j++)
                isum[j] = _mm256_add_epi32(
                    isum[j], _mm256_madd_epi16(_mm256_maddubs_epi16(codes, loadu256(y[j]->qs + 32 * k)),
                                               scales));
        }
#pragma GCC unroll 4
        for (int j = 0; j < R; j++)
            k_accumulate_d_dmin_avx2(&x->d, y[j], isum[j], mins, &acc[j], &accm[j]);
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(_mm256_sub_ps(acc[j], accm[j]));
}

/* Q3_K against LB_DOT_X4_ROWS activation rows: each step's codes (level + 4) and picked scales
 * decoded once for all rows; per row the same exact int32 lanes and float steps as
 * vec_dot_q3_K_q8_K_avx2, so the same bits. */
static void vec_dot_x4_q3_K_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                      int64_t n, float *out)
{
    enum { R = LB_DOT_X4_ROWS };
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q3_K *wb = w;
    __m256 acc[R];
    for (int j = 0; j < R; j++)
        acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q3_K *x = &wb[b];
        const lb_block_q8_K *y[R];
        q8_K_rows_x4(a_q8_K, a_stride, b, y);
        const __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_simd(x));
        const __m256i tabs[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                 _mm256_permute2x128_si256(sc16, sc16, 0x11)};
        const __m256i hm = loadu256(x->hmask);
        __m256i isum[R];
        for (int j = 0; j < R; j++)
            isum[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const int s = k % 4;
            const __m256i codes = q3k_codes_avx2(loadu256(x->qs + 32 * (k / 4)), hm, s, k);
            const __m256i scales =
                _mm256_shuffle_epi8(tabs[k / 4], pick16_mask_avx2(2 * s, 2 * s + 1));
#pragma GCC unroll 4
            for (int j = 0; j < R; j++)
                isum[j] = _mm256_add_epi32(
                    isum[j], _mm256_madd_epi16(_mm256_maddubs_epi16(codes, loadu256(y[j]->qs + 32 * k)),
                                               scales));
        }
        const float xd = f16_to_f32_avx2(x->d);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++) {
            const __m256i offs = _mm256_madd_epi16(sc16, loadu256(y[j]->bsums));
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j]->d * xd),
                                     _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[j], _mm256_slli_epi32(offs, 2))),
                                     acc[j]);
        }
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(acc[j]);
}

/* Q4_K or Q5_K (`fifth`: with the fifth bits of Q5_K) against LB_DOT_X4_ROWS activation rows:
 * the codes and the picked scales of each pair are decoded once and used for every row. Per row
 * the integer sums are the same exact int32 lanes as in the one-row dots (added in another
 * order, which integers allow) and the float steps are the same, so each output has the same
 * bits. Q4_K and Q5_K blocks share d, dmin and the scales at the same offsets; the codes start
 * at `qs` bytes, Q5_K's qh at `qh`. */
static_assert(offsetof(lb_block_q4_K, scales) == offsetof(lb_block_q5_K, scales) &&
                  offsetof(lb_block_q4_K, d) == offsetof(lb_block_q5_K, d),
              "Q4_K and Q5_K heads alike");
static inline __attribute__((always_inline)) void
k45_dot_x4_avx2(const uint8_t *w, size_t block_bytes, size_t qs, size_t qh, int fifth,
                const void *a_q8_K, size_t a_stride, int64_t nb, float *out)
{
    enum { R = LB_DOT_X4_ROWS };
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i min_pick = k4_min_pick();
    __m256 acc[R], accm[R];
    for (int j = 0; j < R; j++)
        acc[j] = accm[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *x = w + (size_t)b * block_bytes;
        const lb_block_q8_K *y[R];
        q8_K_rows_x4(a_q8_K, a_stride, b, y);
        const __m256i table = _mm256_broadcastsi128_si256(
            q4k_scales_mins_simd(x + offsetof(lb_block_q4_K, scales)));
        const __m256i high = fifth ? loadu256(x + qh) : _mm256_setzero_si256();
        __m256i isum[R];
        for (int j = 0; j < R; j++)
            isum[j] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m256i q = loadu256(x + qs + 32 * c);
            __m256i lo = _mm256_and_si256(q, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if (fifth) {
                lo = _mm256_or_si256(lo, q5k_fifth_bit_avx2(high, 2 * c));
                hi = _mm256_or_si256(hi, q5k_fifth_bit_avx2(high, 2 * c + 1));
            }
            const __m256i sc_lo = _mm256_shuffle_epi8(
                table, _mm256_load_si256((const __m256i *)q4k_scale_pick[2 * c]));
            const __m256i sc_hi = _mm256_shuffle_epi8(
                table, _mm256_load_si256((const __m256i *)q4k_scale_pick[2 * c + 1]));
#pragma GCC unroll 4
            for (int j = 0; j < R; j++) {
                const __m256i plo = _mm256_maddubs_epi16(lo, loadu256(y[j]->qs + 64 * c));
                const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(y[j]->qs + 64 * c + 32));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(plo, sc_lo),
                                                                     _mm256_madd_epi16(phi, sc_hi)));
            }
        }
        const __m256i mins = _mm256_shuffle_epi8(table, min_pick);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++)
            k_accumulate_d_dmin_avx2(x + offsetof(lb_block_q4_K, d), y[j], isum[j], mins, &acc[j],
                                     &accm[j]);
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(_mm256_sub_ps(acc[j], accm[j]));
}

static void vec_dot_x4_q4_K_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                      int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    k45_dot_x4_avx2(w, sizeof(lb_block_q4_K), offsetof(lb_block_q4_K, qs), 0, 0, a_q8_K,
                    a_stride, n / LB_QK_K, out);
}

static void vec_dot_x4_q5_K_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                      int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_K == 0);
    k45_dot_x4_avx2(w, sizeof(lb_block_q5_K), offsetof(lb_block_q5_K, qs),
                    offsetof(lb_block_q5_K, qh), 1, a_q8_K, a_stride, n / LB_QK_K, out);
}

/* Q6_K against LB_DOT_X4_ROWS activation rows: each step's codes and picked scales decoded once
 * for all rows; per row the same exact int32 lanes per half and the same float steps as
 * vec_dot_q6_K_q8_K_avx2, so the same bits. */
static void vec_dot_x4_q6_K_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                      int64_t n, float *out)
{
    enum { R = LB_DOT_X4_ROWS };
    assert(n >= 0 && n % LB_QK_K == 0);
    const lb_block_q6_K *wb = w;
    __m256 acc0[R], acc1[R], accm[R];
    for (int j = 0; j < R; j++)
        acc0[j] = acc1[j] = accm[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_K; b++) {
        const lb_block_q6_K *x = &wb[b];
        const lb_block_q8_K *y[R];
        q8_K_rows_x4(a_q8_K, a_stride, b, y);
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x->scales));
        const __m256i tabs[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                 _mm256_permute2x128_si256(sc16, sc16, 0x11)};
        __m256i half[2][R];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i tab = tabs[h];
            const __m256i qh = loadu256(x->qh + 32 * h);
            for (int j = 0; j < R; j++)
                half[h][j] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const __m256i codes = q6k_codes_avx2(loadu256(x->ql + 64 * h + 32 * (s & 1)), qh, s);
                const __m256i scales = _mm256_shuffle_epi8(tab, pick16_mask_avx2(2 * s, 2 * s + 1));
#pragma GCC unroll 4
                for (int j = 0; j < R; j++) {
                    const __m256i p =
                        _mm256_maddubs_epi16(codes, loadu256(y[j]->qs + 128 * h + 32 * s));
                    half[h][j] = _mm256_add_epi32(half[h][j], _mm256_madd_epi16(p, scales));
                }
            }
        }
        const float xd = f16_to_f32_avx2(x->d);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++) {
            const __m256i offs = _mm256_madd_epi16(sc16, loadu256(y[j]->bsums));
            const __m256 d = _mm256_set1_ps(y[j]->d * xd);
            acc0[j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(half[0][j]), acc0[j]);
            acc1[j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(half[1][j]), acc1[j]);
            accm[j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_slli_epi32(offs, 5)), accm[j]);
        }
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(_mm256_sub_ps(_mm256_add_ps(acc0[j], acc1[j]), accm[j]));
}

void lb_kernels_dsp_init_avx2_k(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q2_K] = vec_dot_q2_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q3_K] = vec_dot_q3_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q4_K] = vec_dot_q4_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q5_K] = vec_dot_q5_K_q8_K_avx2;
    dsp->vec_dot[LB_TYPE_Q6_K] = vec_dot_q6_K_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q2_K] = vec_dot_x4_q2_K_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q3_K] = vec_dot_x4_q3_K_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q4_K] = vec_dot_x4_q4_K_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q5_K] = vec_dot_x4_q5_K_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q6_K] = vec_dot_x4_q6_K_q8_K_avx2;
}
