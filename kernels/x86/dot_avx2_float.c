/* AVX2 + FMA + F16C dots of the float weight types F32, F16 and BF16 with F32 activations
 * (their vec_dot_type is F32, kernels/registry.c).
 *
 * Scheme, the same for the three types: the row is read 32 values at a time into 4 independent
 * accumulators of 8 lanes (4 FMA chains, enough to hide the FMA latency at the loads' rate);
 * what is left after the last full 32 goes first as up to 3 full vectors of 8 into
 * accumulators 0, 1, 2, then as a last vector of the n % 8 remaining values zero-padded (copied
 * into a stack buffer, so nothing past the row is read) into accumulator 3. Every lane
 * therefore accumulates at most ceil(n / 32) products, one FMA each. The accumulators are then
 * added as (acc0 + acc1) + (acc2 + acc3) and the 8 lanes reduced by hsum_ps_avx2. The order of
 * every operation depends on n only: results are deterministic (no dependence on alignment,
 * loads are unaligned, nor on threads). F16 halves are converted with vcvtph2ps and BF16 by
 * zero-extending to 32 bits and shifting left by 16: both conversions are exact, as those of
 * the C reference.
 *
 * Accuracy. With u = 2^-24, gamma_k = k u / (1 - k u) and S = sum_i |w_i a_i| (the exact
 * products of the converted values), each product goes through at most ceil(n / 32) roundings
 * in its lane (the first FMA into a zero accumulator rounds the product, the others round
 * once each with the product exact) and 5 in the reduction (2 across accumulators, 3 across
 * lanes), so
 *     |avx2 - exact| <= gamma_(ceil(n/32) + 5) * S      (about (n/32 + 5) * 2^-24 * S).
 * The C reference sums the rounded products one after the other, |ref - exact| <= gamma_n * S,
 * hence the worst case against it is dominated by the reference itself:
 *     |avx2 - ref| <= (gamma_(ceil(n/32) + 5) + gamma_n) * S  (about (n + n/32 + 5) * 2^-24 * S).
 * That worst case (all rounding errors of one sign) is not what random rows produce: the
 * rounding errors of both sums behave as random walks and land near 1e-7 * S at any n, far
 * inside checkkern's 1e-5 * S tolerance. */
#include "kernels/x86/avx2_internal.h"

enum float_kind { KIND_F32, KIND_F16, KIND_BF16 };

/* 8 weights starting at element i, as floats. */
static inline __attribute__((always_inline)) __m256 load8_weights(enum float_kind kind,
                                                                  const void *w, int64_t i)
{
    switch (kind) {
    case KIND_F32:
        return _mm256_loadu_ps((const float *)w + i);
    case KIND_F16:
        return _mm256_cvtph_ps(loadu128((const uint16_t *)w + i));
    case KIND_BF16:
    default:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128((const uint16_t *)w + i)), 16));
    }
}

static inline __attribute__((always_inline)) float dot_float_avx2(enum float_kind kind,
                                                                  const void *w, const float *a,
                                                                  int64_t n)
{
    const size_t elem = kind == KIND_F32 ? sizeof(float) : sizeof(uint16_t);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load8_weights(kind, w, i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load8_weights(kind, w, i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load8_weights(kind, w, i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load8_weights(kind, w, i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    if (i + 8 <= n) {
        acc0 = _mm256_fmadd_ps(load8_weights(kind, w, i), _mm256_loadu_ps(a + i), acc0);
        i += 8;
        if (i + 8 <= n) {
            acc1 = _mm256_fmadd_ps(load8_weights(kind, w, i), _mm256_loadu_ps(a + i), acc1);
            i += 8;
            if (i + 8 <= n) {
                acc2 = _mm256_fmadd_ps(load8_weights(kind, w, i), _mm256_loadu_ps(a + i), acc2);
                i += 8;
            }
        }
    }
    if (i < n) {
        /* n % 8 values, zero-padded: the padding adds exact zeros (0 * 0 + acc = acc). */
        const size_t rest = (size_t)(n - i);
        float wbuf[8] = {0}, abuf[8] = {0};
        memcpy(wbuf, (const uint8_t *)w + (size_t)i * elem, rest * elem);
        memcpy(abuf, a + i, rest * sizeof(float));
        acc3 = _mm256_fmadd_ps(load8_weights(kind, wbuf, 0), _mm256_loadu_ps(abuf), acc3);
    }
    return hsum_ps_avx2(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

static float vec_dot_f32_avx2(const void *w, const void *a, int64_t n)
{
    return dot_float_avx2(KIND_F32, w, a, n);
}

static float vec_dot_f16_avx2(const void *w, const void *a, int64_t n)
{
    return dot_float_avx2(KIND_F16, w, a, n);
}

static float vec_dot_bf16_avx2(const void *w, const void *a, int64_t n)
{
    return dot_float_avx2(KIND_BF16, w, a, n);
}

void lb_kernels_dsp_init_avx2_float(lb_kernels_dsp *dsp)
{
    dsp->vec_dot[LB_TYPE_F32] = vec_dot_f32_avx2;
    dsp->vec_dot[LB_TYPE_F16] = vec_dot_f16_avx2;
    dsp->vec_dot[LB_TYPE_BF16] = vec_dot_bf16_avx2;
}
