/* AVX2 vec_dot kernels of the legacy types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) with Q8_0 activations. */
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
void lb_kernels_dsp_init_avx2_legacy(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_Q8_0] = vec_dot_q8_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_0] = vec_dot_q4_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q4_1] = vec_dot_q4_1_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_0] = vec_dot_q5_0_q8_0_avx2;
    dsp->vec_dot[LB_TYPE_Q5_1] = vec_dot_q5_1_q8_0_avx2;
}
