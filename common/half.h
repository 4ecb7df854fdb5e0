/* The one f16 (IEEE binary16) and bf16 codec of the tree: scalar conversions inline (the
 * kernels' hot loops call them per element), row conversions between the float tensor types. */
#ifndef LB_COMMON_HALF_H
#define LB_COMMON_HALF_H

#include <stdint.h>
#include <string.h>

#include "common/status.h"
#include "common/tensor.h"

/* f16 -> f32 is exact. Inf and NaN keep their sign and payload (in the top mantissa bits). */
static inline float lb_f16_to_f32(uint16_t h)
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
        /* Zero or subnormal: mantissa units of 2^-24, exact in f32. */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* f32 -> f16, round to nearest even, subnormals included; anything that rounds to >= 65520
 * becomes Inf. A NaN stays a NaN of its sign: the top 10 mantissa bits kept, the quiet bit
 * forced on (so a payload only in the dropped bits still reads as NaN). */
static inline uint16_t lb_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t magnitude = u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    if (magnitude >= 0x477ff000u) /* Inf, or rounds to >= 65520 */
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) {
        /* Normal half: rebias the exponent and round the 13 dropped mantissa bits to nearest
         * even; a carry out of the mantissa correctly bumps the exponent. */
        uint32_t rebased = magnitude - (112u << 23);
        uint32_t kept = rebased >> 13;
        uint32_t dropped = rebased & 0x1fffu;
        kept += (dropped > 0x1000u || (dropped == 0x1000u && (kept & 1u))) ? 1u : 0u;
        return (uint16_t)(sign | kept);
    }
    if (magnitude < 0x33000000u) /* at most half the smallest subnormal: rounds to zero */
        return sign;
    /* Subnormal half: the value in units of 2^-24, rounded to nearest even. */
    uint32_t full = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - (magnitude >> 23);
    uint32_t kept = full >> shift;
    uint32_t dropped = full & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    kept += (dropped > half || (dropped == half && (kept & 1u))) ? 1u : 0u;
    return (uint16_t)(sign | kept);
}

/* bf16 is the top half of an f32: exact. */
static inline float lb_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f32 -> bf16, round to nearest even (overflow to Inf); a NaN is truncated and kept quiet. */
static inline uint16_t lb_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Converts n elements of a float type (F32, F16, BF16; 16-bit values little-endian) to f32.
 * src may be unaligned. LB_ERR_UNSUPPORTED for other types. */
LB_API lb_status lb_row_to_f32(lb_type src_type, const void *src, float *dst, int64_t n);

/* Converts n f32 values to a float type (F32, F16, BF16; 16-bit values little-endian); dst
 * may be unaligned. LB_ERR_UNSUPPORTED for other types. */
LB_API lb_status lb_row_from_f32(lb_type dst_type, const float *src, void *dst, int64_t n);

#endif
