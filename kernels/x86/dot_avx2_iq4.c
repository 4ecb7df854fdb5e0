/* AVX2 vec_dot kernels of the non-uniform 4-bit types: IQ4_NL with Q8_0 activations, IQ4_XS
 * with Q8_K activations, one row and LB_DOT_X4_ROWS rows at a time.
 *
 * A group of 32 weights is 16 code bytes: broadcast to both 128-bit halves, the high half
 * shifted down by 4, masked to nibbles, and looked up in the 16 levels by vpshufb, so that the
 * low half holds elements 0..15 and the high half 16..31 as signed bytes (-127..113). vpmaddubsw
 * needs one unsigned operand: the activations' magnitudes |a| (0..128, exact for -128 read as
 * unsigned) against the levels with the activations' signs moved onto them (|.| <= 127), so every
 * pair sum is at most 2 * 128 * 127 = 32512 and the dot is exact for any bytes.
 *
 * IQ4_NL: per block 8 exact int32 lanes, scaled and accumulated as Q4_0's (dot_blocks_avx2 in
 * avx2_internal.h: four blocks' scales converted together, even and odd blocks into two
 * accumulators). IQ4_XS: per sub-block the int16 pair sums times (ls - 32) by vpmaddwd into int32
 * lanes (each at most 8 * 2 * 32512 * 32 < 2^24 over a super-block, so exact in float), one FMA
 * per super-block with d * d_a. The x4 variants decode the levels once for four activation rows
 * and give each row the float operations of the one-row kernel, in its order. */
#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/dsp_internal.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "kernels/x86/avx2_internal.h"

/* The 16 levels in both 128-bit halves, the vpshufb table. */
static inline __m256i iq4_table_avx2(void)
{
    return _mm256_broadcastsi128_si256(loadu128(lb_iq4_values));
}

/* The 32 levels of the group whose codes are the 16 bytes at qs. */
static inline __m256i iq4_group_levels_avx2(const uint8_t *qs, __m256i table)
{
    const __m256i x = _mm256_broadcastsi128_si256(loadu128(qs));
    const __m256i codes = _mm256_and_si256(_mm256_srlv_epi64(x, _mm256_set_epi64x(4, 4, 0, 0)),
                                           _mm256_set1_epi8(0x0f));
    return _mm256_shuffle_epi8(table, codes);
}

/* 16 int16 lanes: exact pair sums of levels v times activations a (any bytes, -128 included). */
static inline __m256i iq4_pairs_avx2(__m256i v, __m256i a)
{
    return _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(v, a));
}

/* ---------------------------------------------------------------------------------------- */
/* IQ4_NL x Q8_0                                                                             */

/* A block's exact dot as 8 int32 lanes, from its levels v. */
static inline __m256i iq4_nl_levels_dot_avx2(__m256i v, const lb_block_q8_0 *a)
{
    return _mm256_madd_epi16(iq4_pairs_avx2(v, loadu256(a->qs)), _mm256_set1_epi16(1));
}

static inline const uint8_t *iq4_nl_codes(const uint8_t *block)
{
    return ((const lb_block_iq4_nl *)(const void *)block)->qs;
}

static inline __m256i dot_iq4_nl_avx2(const void *w, const lb_block_q8_0 *a)
{
    return iq4_nl_levels_dot_avx2(iq4_group_levels_avx2(iq4_nl_codes(w), iq4_table_avx2()), a);
}

static_assert(offsetof(lb_block_iq4_nl, d) == 0, "IQ4_NL blocks start with their scale");

static float vec_dot_iq4_nl_q8_0_avx2(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    return dot_blocks_avx2(w, sizeof(lb_block_iq4_nl), a_q8_0, n / LB_QK_IQ4_NL, dot_iq4_nl_avx2);
}

/* The dots of one IQ4_NL row with LB_DOT_X4_ROWS Q8_0 rows: per row the lanes, scale products,
 * accumulators and reduction of dot_blocks_avx2, so each output has vec_dot's bits. */
static void vec_dot_x4_iq4_nl_q8_0_avx2(const void *w, const void *a_q8_0, size_t a_stride,
                                        int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    enum { R = LB_DOT_X4_ROWS };
    const size_t stride = sizeof(lb_block_iq4_nl);
    const uint8_t *wb = w;
    const int64_t nb = n / LB_QK_IQ4_NL;
    const __m256i table = iq4_table_avx2();
    const lb_block_q8_0 *a[R];
    __m256 acc0[R], acc1[R];
    for (int j = 0; j < R; j++) {
        a[j] = (const lb_block_q8_0 *)(const void *)((const uint8_t *)a_q8_0 + j * a_stride);
        acc0[j] = acc1[j] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *x = wb + (size_t)b * stride;
        const __m128 ws = _mm_cvtph_ps(f16x4_strided(x, stride));
        __m256i v[4];
        for (int k = 0; k < 4; k++)
            v[k] = iq4_group_levels_avx2(iq4_nl_codes(x + k * stride), table);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++) {
            const __m128 s4 = _mm_mul_ps(
                ws, _mm_cvtph_ps(f16x4_strided((const uint8_t *)&a[j][b], sizeof a[j][b])));
            const __m256 s = _mm256_set_m128(s4, s4);
            const lb_block_q8_0 *y = &a[j][b];
            acc0[j] = fma_block_avx2(acc0[j], _mm256_permute_ps(s, 0x00),
                                     iq4_nl_levels_dot_avx2(v[0], &y[0]));
            acc1[j] = fma_block_avx2(acc1[j], _mm256_permute_ps(s, 0x55),
                                     iq4_nl_levels_dot_avx2(v[1], &y[1]));
            acc0[j] = fma_block_avx2(acc0[j], _mm256_permute_ps(s, 0xaa),
                                     iq4_nl_levels_dot_avx2(v[2], &y[2]));
            acc1[j] = fma_block_avx2(acc1[j], _mm256_permute_ps(s, 0xff),
                                     iq4_nl_levels_dot_avx2(v[3], &y[3]));
        }
    }
    for (; b < nb; b++) {
        const uint8_t *x = wb + (size_t)b * stride;
        const __m256i v = iq4_group_levels_avx2(iq4_nl_codes(x), table);
#pragma GCC unroll 4
        for (int j = 0; j < R; j++) {
            const __m256 s = scale_product_avx2(x, &a[j][b]);
            const __m256i d = iq4_nl_levels_dot_avx2(v, &a[j][b]);
            if (b & 1)
                acc1[j] = fma_block_avx2(acc1[j], s, d);
            else
                acc0[j] = fma_block_avx2(acc0[j], s, d);
        }
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(_mm256_add_ps(acc0[j], acc1[j]));
}

/* ---------------------------------------------------------------------------------------- */
/* IQ4_XS x Q8_K                                                                             */

/* The eight sub-block scales (ls - 32) of a super-block, as int16 broadcasts are made from. */
static inline void iq4_xs_scales(const lb_block_iq4_xs *x, int16_t *ls)
{
    for (int s = 0; s < LB_QK_IQ4_XS / 32; s++)
        ls[s] = (int16_t)lb_iq4_xs_scale(x, s);
}

static float vec_dot_iq4_xs_q8_K_avx2(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    const lb_block_iq4_xs *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    const __m256i table = iq4_table_avx2();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++) {
        int16_t ls[LB_QK_IQ4_XS / 32];
        iq4_xs_scales(&wb[b], ls);
        __m256i sum = _mm256_setzero_si256();
        for (int s = 0; s < LB_QK_IQ4_XS / 32; s++) {
            const __m256i v = iq4_group_levels_avx2(wb[b].qs + 16 * s, table);
            const __m256i p = iq4_pairs_avx2(v, loadu256(ab[b].qs + 32 * s));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(ls[s])));
        }
        const float scale = lb_f16_to_f32(wb[b].d) * ab[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum_ps_avx2(acc);
}

static void vec_dot_x4_iq4_xs_q8_K_avx2(const void *w, const void *a_q8_K, size_t a_stride,
                                        int64_t n, float *out)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    enum { R = LB_DOT_X4_ROWS };
    const lb_block_iq4_xs *wb = w;
    const __m256i table = iq4_table_avx2();
    const lb_block_q8_K *a[R];
    __m256 acc[R];
    for (int j = 0; j < R; j++) {
        a[j] = (const lb_block_q8_K *)(const void *)((const uint8_t *)a_q8_K + j * a_stride);
        acc[j] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++) {
        int16_t ls[LB_QK_IQ4_XS / 32];
        iq4_xs_scales(&wb[b], ls);
        __m256i sum[R];
        for (int j = 0; j < R; j++)
            sum[j] = _mm256_setzero_si256();
        for (int s = 0; s < LB_QK_IQ4_XS / 32; s++) {
            const __m256i v = iq4_group_levels_avx2(wb[b].qs + 16 * s, table);
            const __m256i scale = _mm256_set1_epi16(ls[s]);
#pragma GCC unroll 4
            for (int j = 0; j < R; j++) {
                const __m256i p = iq4_pairs_avx2(v, loadu256(a[j][b].qs + 32 * s));
                sum[j] = _mm256_add_epi32(sum[j], _mm256_madd_epi16(p, scale));
            }
        }
        const float d = lb_f16_to_f32(wb[b].d);
        for (int j = 0; j < R; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * a[j][b].d), _mm256_cvtepi32_ps(sum[j]),
                                     acc[j]);
    }
    for (int j = 0; j < R; j++)
        out[j] = hsum_ps_avx2(acc[j]);
}

void lb_kernels_dsp_init_avx2_iq4(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_IQ4_NL] = vec_dot_iq4_nl_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_IQ4_XS] = vec_dot_iq4_xs_q8_K_avx2;
    dsp->vec_dot_x4[LB_TYPE_IQ4_NL] = vec_dot_x4_iq4_nl_q8_0_avx2;
    dsp->vec_dot_x4[LB_TYPE_IQ4_XS] = vec_dot_x4_iq4_xs_q8_K_avx2;
}
