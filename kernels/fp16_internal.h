/* Private f16/bf16 <-> f32 conversions for kernels (kernels may not use formats/half.h). */
#ifndef LB_KERNELS_FP16_INTERNAL_H
#define LB_KERNELS_FP16_INTERNAL_H

#include <stdint.h>
#include <string.h>

/* Bit-exact with formats/half.c (tests/test_quants_legacy.c compares all 65536 halves and
 * random floats): round to nearest even, overflow to Inf, NaN kept quiet with its top payload. */
static inline float lb_kernel_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (uint32_t)(h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else {
        /* zero or subnormal: mantissa units of 2^-24, exact in f32 */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t lb_kernel_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t magnitude = u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    if (magnitude >= 0x477ff000u) /* Inf, or rounds to >= 65520 */
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) { /* normal half: drop 13 bits, ties to even */
        uint32_t rebased = magnitude - (112u << 23);
        uint32_t kept = rebased >> 13;
        uint32_t dropped = rebased & 0x1fffu;
        kept += (dropped > 0x1000u || (dropped == 0x1000u && (kept & 1u))) ? 1u : 0u;
        return (uint16_t)(sign | kept);
    }
    if (magnitude < 0x33000000u) /* at most half the smallest subnormal: rounds to zero */
        return sign;
    /* subnormal half: value in units of 2^-24 */
    uint32_t full = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - (magnitude >> 23);
    uint32_t kept = full >> shift;
    uint32_t dropped = full & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    kept += (dropped > half || (dropped == half && (kept & 1u))) ? 1u : 0u;
    return (uint16_t)(sign | kept);
}

/* bfloat16: the top half of an f32, rounded to nearest even; NaN truncated and kept quiet. */
static inline float lb_kernel_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t lb_kernel_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
