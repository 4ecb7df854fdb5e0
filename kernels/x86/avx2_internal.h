/* What the AVX2 kernel files share: lane helpers (static inline) and each file's table filler.
 * Compiled only with -mavx2 -mfma -mf16c (kernels/meson.build). */
#ifndef LB_KERNELS_X86_AVX2_INTERNAL_H
#define LB_KERNELS_X86_AVX2_INTERNAL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/dsp_internal.h"
#include "kernels/quants_legacy_internal.h"

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
 * super-block), within the same bound. Q8_0, Q4_0 and Q5_0 accumulate even and odd blocks in
 * two vectors, added before the reduction; Q4_1 and Q5_1 first reduce four blocks exactly to
 * one int32 lane per block and term (sum q * a, sum a) and take one FMA per four blocks; both
 * stay within the same bound. Q3_K and Q6_K rely on the Q8_K bsums being the sums of
 * their 16 activations, as every quantizer writes them (kernels/quants_k_internal.h).
 * IQ4_NL accumulates as Q4_0; IQ4_XS takes one FMA per super-block of its exact int32 lanes
 * (dot_avx2_iq4.c); both within the same bound, with the levels' magnitudes in T. */


/* Per file: replace the entries of `dsp` that the file implements. */
void lb_kernels_dsp_init_avx2_legacy(lb_kernels_dsp *dsp); /* dot_avx2_legacy.c */
void lb_kernels_dsp_init_avx2_k(lb_kernels_dsp *dsp);      /* dot_avx2_k.c */
void lb_kernels_dsp_init_avx2_float(lb_kernels_dsp *dsp);  /* dot_avx2_float.c */
void lb_kernels_dsp_init_avx2_iq4(lb_kernels_dsp *dsp);    /* dot_avx2_iq4.c */

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

/* ---------------------------------------------------------------------------------------- */
/* Scales of blocks that start with their f16 scale, against Q8_0 activations (the legacy   */
/* types, IQ4_NL: dot_avx2_legacy.c, dot_avx2_iq4.c)                                        */

static inline uint16_t f16_bits_at(const void *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return h;
}

static inline uint32_t u32_bits_at(const void *p)
{
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return u;
}

/* The f16 values at p, p + stride, p + 2 stride and p + 3 stride in the low four 16-bit lanes,
 * put together in a general-purpose register. */
static inline __m128i f16x4_strided(const uint8_t *p, size_t stride)
{
    const uint64_t h = (uint64_t)f16_bits_at(p) | (uint64_t)f16_bits_at(p + stride) << 16 |
                       (uint64_t)f16_bits_at(p + 2 * stride) << 32 |
                       (uint64_t)f16_bits_at(p + 3 * stride) << 48;
    return _mm_cvtsi64_si128((long long)h);
}

/* The products of the scales of four consecutive weight blocks (`stride` bytes apart, each
 * starting with its f16 scale) and the four matching Q8_0 blocks: [s0 s1 s2 s3 | s0 s1 s2 s3]. */
static inline __m256 scales4_avx2(const void *w, size_t stride, const lb_block_q8_0 *a)
{
    const __m128 s = _mm_mul_ps(_mm_cvtph_ps(f16x4_strided(w, stride)),
                                _mm_cvtph_ps(f16x4_strided((const uint8_t *)a, sizeof *a)));
    return _mm256_set_m128(s, s);
}

/* The product of the f16 scales starting the blocks at w and a, in all 8 lanes. */
static inline __m256 scale_product_avx2(const void *w, const lb_block_q8_0 *a)
{
    const __m128 s = _mm_mul_ss(_mm_cvtph_ps(_mm_cvtsi32_si128(f16_bits_at(w))),
                                _mm_cvtph_ps(_mm_cvtsi32_si128(f16_bits_at(a))));
    return _mm256_broadcastss_ps(s);
}

/* acc + scale * (float)dot, each int32 lane exact in float (|lane| < 2^24). */
static inline __m256 fma_block_avx2(__m256 acc, __m256 scale, __m256i dot)
{
    return _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc);
}

typedef __m256i (*block_dot_avx2_fn)(const void *w, const lb_block_q8_0 *a);

/* sum over the nb blocks of (weight scale * activation scale) * dot(block), for weight blocks
 * `stride` bytes apart that start with their f16 scale. Always inlined with a constant `dot`. */
static inline __attribute__((always_inline)) float
dot_blocks_avx2(const uint8_t *w, size_t stride, const lb_block_q8_0 *a, int64_t nb,
                block_dot_avx2_fn dot)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *x = w + (size_t)b * stride;
        const __m256 s = scales4_avx2(x, stride, &a[b]);
        acc0 = fma_block_avx2(acc0, _mm256_permute_ps(s, 0x00), dot(x, &a[b]));
        acc1 = fma_block_avx2(acc1, _mm256_permute_ps(s, 0x55), dot(x + stride, &a[b + 1]));
        acc0 = fma_block_avx2(acc0, _mm256_permute_ps(s, 0xaa), dot(x + 2 * stride, &a[b + 2]));
        acc1 = fma_block_avx2(acc1, _mm256_permute_ps(s, 0xff), dot(x + 3 * stride, &a[b + 3]));
    }
    for (; b < nb; b++) {
        const uint8_t *x = w + (size_t)b * stride;
        const __m256 s = scale_product_avx2(x, &a[b]);
        if (b & 1)
            acc1 = fma_block_avx2(acc1, s, dot(x, &a[b]));
        else
            acc0 = fma_block_avx2(acc0, s, dot(x, &a[b]));
    }
    return hsum_ps_avx2(_mm256_add_ps(acc0, acc1));
}

#endif
