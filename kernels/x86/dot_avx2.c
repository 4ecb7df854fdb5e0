/* AVX2 dispatch: bit-exact Q8_0 / Q8_K activation quantizers here, the vec_dot kernels in
 * dot_avx2_legacy.c, dot_avx2_k.c, dot_avx2_float.c and dot_avx2_iq4.c. */
#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/dsp_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "kernels/x86/avx2_internal.h"

/* The quantizers must round exactly as the scalar references: no fused multiply-add may be
 * formed from the separate multiplies and subtractions below (ISO C mode, as meson's c_std=c11
 * gives, already contracts nothing under GCC). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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
        uint16_t dh = lb_f32_to_f16(d);
        if ((dh & 0x7fffu) == 0x7c00u) { /* saturated to the largest finite half, as the ref */
            dh = (uint16_t)((dh & 0x8000u) | 0x7bffu);
            id = 1.0f / lb_f16_to_f32(dh);
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

void lb_kernels_dsp_init_avx2(lb_kernels_dsp *dsp)
{
    lb_kernels_dsp_init_avx2_legacy(dsp);
    lb_kernels_dsp_init_avx2_k(dsp);
    lb_kernels_dsp_init_avx2_float(dsp);
    lb_kernels_dsp_init_avx2_iq4(dsp);
    dsp->quantize_activations[LB_TYPE_Q8_0] = quantize_row_q8_0_avx2;
    dsp->quantize_activations[LB_TYPE_Q8_K] = quantize_row_q8_K_avx2;
}
