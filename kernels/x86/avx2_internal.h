/* What the AVX2 kernel files share: lane helpers (static inline) and each file's table filler.
 * Compiled only with -mavx2 -mfma -mf16c (kernels/meson.build). */
#ifndef LB_KERNELS_X86_AVX2_INTERNAL_H
#define LB_KERNELS_X86_AVX2_INTERNAL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/dsp.h"

/* Accuracy of the dots. Per block the integer dot is exact (every partial sum fits its int16 /
 * int32 lane for ANY input bytes, including -128 activations), split over 8 int32 lanes; each
 * lane is converted to float exactly (|lane| < 2^24), multiplied by the block's float scale and
 * accumulated per lane with FMA, and the 8 lanes are reduced in one fixed order at the end. The
 * result is therefore deterministic (no dependence on threads or alignment) but rounds
 * differently from the C reference, which sums one float per block in block order. With
 * nb = blocks in the row and T = the sum over blocks and lanes of |scale * lane| (at most
 * sum_i |w_i * a_i| over the dequantized products, plus the |dmin * m * a| terms of the
 * types with mins, and 2 |d * sc * offset * a| per weight for Q3_K (offset 4) and Q6_K
 * (offset 32), which dot the unsigned codes and take the offset off through the activations'
 * bsums):
 *     |avx2 - ref| <= (nb + 8) * 2^-23 * T,
 * i.e. below 1e-5 * T for rows up to 4096 Q8_0 / Q4_0 elements (the bound is worst case;
 * random rows land near 1e-7 * T). Q2_K, Q4_K and Q5_K accumulate the d and the dmin terms in
 * two separate vectors, and Q6_K its two halves and its offset term in three (one FMA each per
 * super-block), within the same bound. Q3_K and Q6_K rely on the Q8_K bsums being the sums of
 * their 16 activations, as every quantizer writes them (kernels/quants_k.h). */


/* Per file: replace the entries of `dsp` that the file implements. */
void lb_kernels_dsp_init_avx2_legacy(lb_kernels_dsp *dsp); /* dot_avx2_legacy.c */
void lb_kernels_dsp_init_avx2_k(lb_kernels_dsp *dsp);      /* dot_avx2_k.c */
void lb_kernels_dsp_init_avx2_float(lb_kernels_dsp *dsp);  /* dot_avx2_float.c */

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


#endif
