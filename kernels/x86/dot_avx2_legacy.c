/* AVX2 vec_dot kernels of the legacy types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) with Q8_0 activations.
 *
 * The blocks go four at a time, and their f16 scales with them: the four weight and the four
 * activation scales are gathered into one register each (in general-purpose registers or by
 * element inserts, the vector shuffle ports being the busy ones) and converted by one vcvtph2ps
 * each, where a conversion per scale would cost about as much as the block's integer dot. Up to
 * three trailing blocks go one at a time.
 *
 * Q8_0, Q4_0, Q5_0: each block's exact int32 lanes are scaled by the block's scale (its lane of
 * the four, spread by vpermilps) into two accumulators, blocks 0 and 2 of a group into one and
 * blocks 1 and 3 into the other, so that consecutive FMAs do not wait on each other.
 * Q4_1, Q5_1: the integer sums of four blocks, sum q a and sum a of each, are reduced to one
 * vector of the eight exact totals (affine_totals4_avx2), which takes one FMA against the eight
 * matching scale products.
 * Either way the order of the float operations depends on n only. */
#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/dsp_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "kernels/x86/avx2_internal.h"


/* ---------------------------------------------------------------------------------------- */
/* Weight codes                                                                              */

/* 32 nibbles of 16 bytes (elements 0..15 the low nibbles, 16..31 the high ones): a 128-bit
 * broadcast load, the high half shifted down by 4. */
static inline __m256i nibbles_avx2(const uint8_t *qs)
{
    const __m256i x = _mm256_broadcastsi128_si256(loadu128(qs));
    return _mm256_and_si256(_mm256_srlv_epi64(x, _mm256_set_epi64x(4, 4, 0, 0)),
                            _mm256_set1_epi8(0x0f));
}

/* Byte j = 0x10 where bit j of the little-endian 32-bit word at qh is set, else 0: byte j/8 of
 * the word spread to byte j, bit j%8 isolated, and vpsignb of 16 by it (of -16 where that is bit
 * 7, the byte then reading as negative). */
static inline __m256i fifth_bits_sign_avx2(const uint8_t *qh)
{
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int32_t)u32_bits_at(qh)),
        _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
    const __m256i bit =
        _mm256_and_si256(spread, _mm256_set1_epi64x((long long)0x8040201008040201ULL));
    return _mm256_sign_epi8(_mm256_set1_epi64x((long long)0xf010101010101010ULL), bit);
}

/* The 5-bit codes of a Q5_0 / Q5_1 block (0..31). */
static inline __m256i codes5_avx2(const uint8_t *qh, const uint8_t *qs)
{
    return _mm256_or_si256(nibbles_avx2(qs), fifth_bits_sign_avx2(qh));
}

/* ---------------------------------------------------------------------------------------- */
/* Types without a min: the block dots (8 int32 lanes, exact for any input bytes)             */

/* Q8_0 x Q8_0: both widened to int16, exact for the full int8 range of both operands. */
static inline __m256i dot_q8_0_avx2(const void *w, const lb_block_q8_0 *a)
{
    const lb_block_q8_0 *x = w;
    const __m256i w0 = _mm256_cvtepi8_epi16(loadu128(x->qs));
    const __m256i w1 = _mm256_cvtepi8_epi16(loadu128(x->qs + 16));
    const __m256i a0 = _mm256_cvtepi8_epi16(loadu128(a->qs));
    const __m256i a1 = _mm256_cvtepi8_epi16(loadu128(a->qs + 16));
    return _mm256_add_epi32(_mm256_madd_epi16(w0, a0), _mm256_madd_epi16(w1, a1));
}

/* Q4_0: sum (q - 8) a. */
static inline __m256i dot_q4_0_avx2(const void *w, const lb_block_q8_0 *a)
{
    const lb_block_q4_0 *x = w;
    return dot_u8_s8_offset_avx2(nibbles_avx2(x->qs), loadu256(a->qs), _mm256_set1_epi8(8));
}

/* Q5_0: sum (q - 16) a. */
static inline __m256i dot_q5_0_avx2(const void *w, const lb_block_q8_0 *a)
{
    const lb_block_q5_0 *x = w;
    return dot_u8_s8_offset_avx2(codes5_avx2(x->qh, x->qs), loadu256(a->qs),
                                 _mm256_set1_epi8(16));
}

static float vec_dot_q8_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    return dot_blocks_avx2(w, sizeof(lb_block_q8_0), a_q8_0, n / LB_QK_LEGACY, dot_q8_0_avx2);
}

static float vec_dot_q4_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    return dot_blocks_avx2(w, sizeof(lb_block_q4_0), a_q8_0, n / LB_QK_LEGACY, dot_q4_0_avx2);
}

static float vec_dot_q5_0_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    return dot_blocks_avx2(w, sizeof(lb_block_q5_0), a_q8_0, n / LB_QK_LEGACY, dot_q5_0_avx2);
}

/* ---------------------------------------------------------------------------------------- */
/* The same types against LB_DOT_X4_ROWS activation rows                                      */
/*                                                                                          */
/* Each weight block's codes (and its group's four scales) are decoded once for all the rows; */
/* per row the block dots are the same exact int32 lanes and the float steps (scale products, */
/* the two accumulators, the reduction) the same as in dot_blocks_avx2, so each output has    */
/* vec_dot's bits.                                                                           */

enum legacy_kind { LEGACY_Q8_0, LEGACY_Q4_0, LEGACY_Q5_0 };

/* A block's codes: Q8_0 the two halves widened to int16, Q4_0 / Q5_0 the unsigned codes in lo. */
typedef struct block_codes {
    __m256i lo, hi;
} block_codes;

static inline __attribute__((always_inline)) block_codes legacy_codes_avx2(const uint8_t *w,
                                                                           enum legacy_kind kind)
{
    block_codes c = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    if (kind == LEGACY_Q8_0) {
        const lb_block_q8_0 *x = (const void *)w;
        c.lo = _mm256_cvtepi8_epi16(loadu128(x->qs));
        c.hi = _mm256_cvtepi8_epi16(loadu128(x->qs + 16));
    } else if (kind == LEGACY_Q4_0) {
        c.lo = nibbles_avx2(((const lb_block_q4_0 *)(const void *)w)->qs);
    } else {
        const lb_block_q5_0 *x = (const void *)w;
        c.lo = codes5_avx2(x->qh, x->qs);
    }
    return c;
}

/* The block dot of decoded codes with one activation block (as dot_q8_0_avx2 / dot_q4_0_avx2 /
 * dot_q5_0_avx2). */
static inline __attribute__((always_inline)) __m256i
legacy_codes_dot_avx2(block_codes c, const lb_block_q8_0 *a, enum legacy_kind kind)
{
    if (kind == LEGACY_Q8_0)
        return _mm256_add_epi32(_mm256_madd_epi16(c.lo, _mm256_cvtepi8_epi16(loadu128(a->qs))),
                                _mm256_madd_epi16(c.hi, _mm256_cvtepi8_epi16(loadu128(a->qs + 16))));
    return dot_u8_s8_offset_avx2(c.lo, loadu256(a->qs),
                                 _mm256_set1_epi8(kind == LEGACY_Q4_0 ? 8 : 16));
}

static inline __attribute__((always_inline)) void
dot_blocks_x4_avx2(const uint8_t *w, size_t stride, const void *a_q8_0, size_t a_stride,
                   int64_t nb, enum legacy_kind kind, float *out)
{
    enum { R = LB_DOT_X4_ROWS };
    const lb_block_q8_0 *a[R];
    __m256 acc0[R], acc1[R];
    for (int j = 0; j < R; j++) {
        a[j] = (const lb_block_q8_0 *)((const uint8_t *)a_q8_0 + j * a_stride);
        acc0[j] = acc1[j] = _mm256_setzero_ps();
    }
    /* each block's scale product from the group's four: lane 0, 1, 2 or 3 in every lane */
    const __m256i lane[4] = {_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(2),
                             _mm256_set1_epi32(3)};
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *x = w + (size_t)b * stride;
        const __m128 ws = _mm_cvtph_ps(f16x4_strided(x, stride));
        __m256 s[R];
        for (int j = 0; j < R; j++) {
            const __m128 s4 = _mm_mul_ps(
                ws, _mm_cvtph_ps(f16x4_strided((const uint8_t *)&a[j][b], sizeof a[j][b])));
            s[j] = _mm256_set_m128(s4, s4);
        }
        for (int pair = 0; pair < 2; pair++) {
            const block_codes even = legacy_codes_avx2(x + 2 * pair * stride, kind);
            const block_codes odd = legacy_codes_avx2(x + (2 * pair + 1) * stride, kind);
#pragma GCC unroll 4
            for (int j = 0; j < R; j++) {
                const lb_block_q8_0 *y = &a[j][b + 2 * pair];
                acc0[j] = fma_block_avx2(acc0[j], _mm256_permutevar_ps(s[j], lane[2 * pair]),
                                         legacy_codes_dot_avx2(even, &y[0], kind));
                acc1[j] = fma_block_avx2(acc1[j], _mm256_permutevar_ps(s[j], lane[2 * pair + 1]),
                                         legacy_codes_dot_avx2(odd, &y[1], kind));
            }
        }
    }
    for (; b < nb; b++) {
        const uint8_t *x = w + (size_t)b * stride;
        const block_codes c = legacy_codes_avx2(x, kind);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++) {
            const __m256 s = scale_product_avx2(x, &a[j][b]);
            const __m256i d = legacy_codes_dot_avx2(c, &a[j][b], kind);
            if (b & 1)
                acc1[j] = fma_block_avx2(acc1[j], s, d);
            else
                acc0[j] = fma_block_avx2(acc0[j], s, d);
        }
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(_mm256_add_ps(acc0[j], acc1[j]));
}

static void vec_dot_x4_q8_0_q8_0_avx2(const void *w, const void *a_q8_0, size_t a_stride,
                                      int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    dot_blocks_x4_avx2(w, sizeof(lb_block_q8_0), a_q8_0, a_stride, n / LB_QK_LEGACY, LEGACY_Q8_0,
                       out);
}

static void vec_dot_x4_q4_0_q8_0_avx2(const void *w, const void *a_q8_0, size_t a_stride,
                                      int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    dot_blocks_x4_avx2(w, sizeof(lb_block_q4_0), a_q8_0, a_stride, n / LB_QK_LEGACY, LEGACY_Q4_0,
                       out);
}

static void vec_dot_x4_q5_0_q8_0_avx2(const void *w, const void *a_q8_0, size_t a_stride,
                                      int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    dot_blocks_x4_avx2(w, sizeof(lb_block_q5_0), a_q8_0, a_stride, n / LB_QK_LEGACY, LEGACY_Q5_0,
                       out);
}

/* ---------------------------------------------------------------------------------------- */
/* Types with a min: sum_j (d q_j + m)(da a_j) = (d da) sum q a + (m da) sum a               */
/*                                                                                          */
/* Here the 128-bit halves of a vector hold two blocks: [16 elements of block b | the same 16   */
/* elements of block b + 1], elements 0..15 in one vector and 16..31 in another, so that the    */
/* two products of a pair add up lane by lane and the block totals need no cross-half step.     */

/* The 16 bytes at lo in the low half, the 16 bytes at hi in the high half. Reads lo .. lo + 31
 * and hi - 16 .. hi + 15: at every use below lo and hi are the same offset (0 or 16) into the qs
 * of two consecutive blocks, and qs (of 16 or 32 bytes) ends each block, so both reads stay
 * inside the two blocks. */
static inline __m256i halves_avx2(const void *lo, const void *hi)
{
    return _mm256_blend_epi32(loadu256(lo), loadu256((const uint8_t *)hi - 16), 0xf0);
}

/* The sums of the bytes of a flipped to unsigned (a + 128) in 64-bit lanes of 8 bytes: each at
 * most 8*255, so the high 48 bits of every lane are 0. */
static inline __m256i sum_flipped_avx2(__m256i a)
{
    return _mm256_sad_epu8(_mm256_xor_si256(a, _mm256_set1_epi8((char)0x80)),
                           _mm256_setzero_si256());
}

/* Two consecutive blocks, codes lo (elements 0..15) and hi (16..31) <= 31 in the pair layout,
 * against the Q8_0 blocks a[0], a[1]. *dots: int32 lanes [S0 x4 | S1 x4] (each a sum over 8
 * elements, |.| <= 8*31*128: the two int16 products, each <= 31*128*2, add exactly); *sums:
 * 64-bit lanes [A0' A0' | A1' A1'], sums over 16 flipped bytes (<= 16*255). */
static inline void affine_pair_avx2(__m256i lo, __m256i hi, const lb_block_q8_0 *a,
                                    __m256i *dots, __m256i *sums)
{
    const __m256i alo = halves_avx2(a[0].qs, a[1].qs);
    const __m256i ahi = halves_avx2(a[0].qs + 16, a[1].qs + 16);
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
    *dots = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
    *sums = _mm256_add_epi64(sum_flipped_avx2(alo), sum_flipped_avx2(ahi));
}

/* Blocks 0..3 (pairs 01 and 23 from affine_pair_avx2) to exact block totals, int32 lanes
 * [S0 S2 A0 A2 | S1 S3 A1 A3], Si = sum q a and Ai = sum a over block i. The dot lanes
 * (<= 8*31*128 = 31744) pack to int16 and pair up to <= 63488; the byte sums (<= 4080 in the low
 * 16 bits of 64-bit lanes) pack to int16 with zeros between them, so that the packed vector read
 * as int32 holds them as they are. The last pairs add in int32 by vphaddd; with codes <= 15
 * (`codes4`) the pair sums are at most 30720 and one more int16 pack + vpmaddwd does it
 * cheaper. The 128 added to each activation byte comes off at the end. */
static inline __m256i affine_totals4_avx2(__m256i dots01, __m256i dots23, __m256i sums01,
                                          __m256i sums23, int codes4)
{
    const __m256i one = _mm256_set1_epi16(1);
    /* [S0 S0 S2 S2 | S1 S1 S3 S3] */
    const __m256i s = _mm256_madd_epi16(_mm256_packs_epi32(dots01, dots23), one);
    /* [A0' A0' A2' A2' | A1' A1' A3' A3'] as int32 lanes */
    const __m256i t = _mm256_packs_epi32(sums01, sums23);
    const __m256i v = codes4 ? _mm256_madd_epi16(_mm256_packs_epi32(s, t), one)
                             : _mm256_hadd_epi32(s, t);
    return _mm256_sub_epi32(v, _mm256_set_epi32(32 * 128, 32 * 128, 0, 0, 32 * 128, 32 * 128, 0, 0));
}

/* The scales matching affine_totals4_avx2 for four consecutive weight blocks whose (d, m) f16
 * pairs start `stride` bytes apart at dm, and the matching Q8_0 blocks a:
 * [d0 da0, d2 da2, m0 da0, m2 da2 | d1 da1, d3 da3, m1 da1, m3 da3]. */
static inline __m256 affine_scales4_avx2(const uint8_t *dm, size_t stride, const lb_block_q8_0 *a)
{
    __m128i h = _mm_cvtsi32_si128((int)u32_bits_at(dm));
    h = _mm_insert_epi32(h, (int)u32_bits_at(dm + 2 * stride), 1);
    h = _mm_insert_epi32(h, (int)u32_bits_at(dm + stride), 2);
    h = _mm_insert_epi32(h, (int)u32_bits_at(dm + 3 * stride), 3);
    /* d0 m0 d2 m2 d1 m1 d3 m3 -> d0 d2 m0 m2 d1 d3 m1 m3 */
    h = _mm_shuffle_epi8(h, _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15));
    const uint64_t da = (uint64_t)f16_bits_at(&a[0]) | (uint64_t)f16_bits_at(&a[2]) << 16 |
                        (uint64_t)f16_bits_at(&a[1]) << 32 | (uint64_t)f16_bits_at(&a[3]) << 48;
    /* da0 da2 da1 da3 -> da0 da2 da0 da2 da1 da3 da1 da3 */
    const __m128i dah = _mm_shuffle_epi32(_mm_cvtsi64_si128((long long)da), 0x50);
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_cvtph_ps(dah));
}

/* One block of a type with a min, codes q (nibble layout) and (d, m) f16 pair at dm: both terms
 * into acc. */
static inline __m256 affine_block_avx2(__m256 acc, __m256i q, const void *dm,
                                       const lb_block_q8_0 *a)
{
    const __m256i av = loadu256(a->qs);
    const __m128 s = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)u32_bits_at(dm))),
                                _mm_cvtph_ps(_mm_set1_epi16((short)f16_bits_at(a))));
    acc = fma_block_avx2(acc, _mm256_broadcastss_ps(s),
                         _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), _mm256_set1_epi16(1)));
    return fma_block_avx2(acc, _mm256_broadcastss_ps(_mm_movehdup_ps(s)), sum_s8_avx2(av));
}

static_assert(offsetof(lb_block_q4_1, m) == offsetof(lb_block_q4_1, d) + 2, "d, m adjacent");
static_assert(offsetof(lb_block_q5_1, m) == offsetof(lb_block_q5_1, d) + 2, "d, m adjacent");

/* The nibbles of the qs at qs0 and qs1 (two consecutive blocks) in the pair layout: *lo
 * elements 0..15, *hi 16..31. */
static inline void pair_nibbles_avx2(const uint8_t *qs0, const uint8_t *qs1, __m256i *lo,
                                     __m256i *hi)
{
    const __m256i x = halves_avx2(qs0, qs1);
    *lo = _mm256_and_si256(x, _mm256_set1_epi8(0x0f));
    *hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), _mm256_set1_epi8(0x0f));
}

/* The fifth bits of a Q5_1 pair as in fifth_bits_sign_avx2, from the 32 bytes at w[0].qh: the qh
 * of w[0] is bytes 0..3 of them, that of w[1] bytes 24..27 (bytes 8..11 of the high half);
 * `pick` spreads byte j / 8 of the wanted 16 bits to byte j of each half. */
static_assert(sizeof(lb_block_q5_1) == 24 && offsetof(lb_block_q5_1, qh) == 4,
              "Q5_1: the next block's qh 24 bytes on");
static inline __m256i q5_1_pair_fifth_avx2(__m256i qh2, __m256i pick)
{
    const __m256i bit = _mm256_and_si256(_mm256_shuffle_epi8(qh2, pick),
                                         _mm256_set1_epi64x((long long)0x8040201008040201ULL));
    return _mm256_sign_epi8(_mm256_set1_epi64x((long long)0xf010101010101010ULL), bit);
}

static inline void q5_1_pair_codes_avx2(const lb_block_q5_1 *w, __m256i *lo, __m256i *hi)
{
    const __m256i qh2 = loadu256(w[0].qh);
    const __m256i pick_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 8, 8,
                                             8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9);
    const __m256i pick_hi = _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 10,
                                             10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11,
                                             11, 11);
    pair_nibbles_avx2(w[0].qs, w[1].qs, lo, hi);
    *lo = _mm256_or_si256(*lo, q5_1_pair_fifth_avx2(qh2, pick_lo));
    *hi = _mm256_or_si256(*hi, q5_1_pair_fifth_avx2(qh2, pick_hi));
}

static float vec_dot_q4_1_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q4_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const int64_t nb = n / LB_QK_LEGACY;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m256i lo, hi, dots01, dots23, sums01, sums23;
        pair_nibbles_avx2(wb[b].qs, wb[b + 1].qs, &lo, &hi);
        affine_pair_avx2(lo, hi, &ab[b], &dots01, &sums01);
        pair_nibbles_avx2(wb[b + 2].qs, wb[b + 3].qs, &lo, &hi);
        affine_pair_avx2(lo, hi, &ab[b + 2], &dots23, &sums23);
        acc = fma_block_avx2(acc, affine_scales4_avx2((const uint8_t *)&wb[b], sizeof *wb, &ab[b]),
                             affine_totals4_avx2(dots01, dots23, sums01, sums23, 1));
    }
    for (; b < nb; b++)
        acc = affine_block_avx2(acc, nibbles_avx2(wb[b].qs), &wb[b], &ab[b]);
    return hsum_ps_avx2(acc);
}

static float vec_dot_q5_1_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_LEGACY == 0);
    const lb_block_q5_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    const int64_t nb = n / LB_QK_LEGACY;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m256i lo, hi, dots01, dots23, sums01, sums23;
        q5_1_pair_codes_avx2(&wb[b], &lo, &hi);
        affine_pair_avx2(lo, hi, &ab[b], &dots01, &sums01);
        q5_1_pair_codes_avx2(&wb[b + 2], &lo, &hi);
        affine_pair_avx2(lo, hi, &ab[b + 2], &dots23, &sums23);
        acc = fma_block_avx2(acc, affine_scales4_avx2((const uint8_t *)&wb[b], sizeof *wb, &ab[b]),
                             affine_totals4_avx2(dots01, dots23, sums01, sums23, 0));
    }
    for (; b < nb; b++)
        acc = affine_block_avx2(acc, codes5_avx2(wb[b].qh, wb[b].qs), &wb[b], &ab[b]);
    return hsum_ps_avx2(acc);
}

void lb_kernels_dsp_init_avx2_legacy(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q8_0] = vec_dot_q8_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_0] = vec_dot_q4_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_1] = vec_dot_q4_1_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_0] = vec_dot_q5_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_1] = vec_dot_q5_1_q8_0_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q8_0] = vec_dot_x4_q8_0_q8_0_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q4_0] = vec_dot_x4_q4_0_q8_0_avx2;
    dsp->vec_dot_x4[LB_TYPE_Q5_0] = vec_dot_x4_q5_0_q8_0_avx2;
}
