/* Bit-exact f16/bf16 <-> f32 conversions in portable C. */
#include "formats/half.h"

#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float lb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) /* Inf or NaN: keep the payload in the top mantissa bits */
        return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        if (mantissa == 0)
            return f32_from_bits(sign);
        /* Subnormal: value = mantissa * 2^-24, exact in f32. */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t lb_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) {
        if (abs == 0x7f800000u)
            return sign | 0x7c00u;
        /* NaN: keep the top payload bits and force a quiet NaN so it stays a NaN. */
        return sign | 0x7e00u | (uint16_t)((abs >> 13) & 0x3ffu);
    }
    if (abs >= 0x477ff000u) /* rounds to a value >= 65520: overflow to Inf */
        return sign | 0x7c00u;
    if (abs < 0x38800000u) {
        /* Result is subnormal or zero: units of 2^-24, rounded to nearest even. */
        if (abs < 0x33000000u) /* below half the smallest subnormal */
            return sign;
        uint32_t exponent = abs >> 23;
        uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exponent; /* mantissa * 2^(exponent-150) in units of 2^-24 */
        uint32_t value = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rest > half || (rest == half && (value & 1u)))
            value++;
        return sign | (uint16_t)value;
    }
    /* Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even;
     * a carry out of the mantissa correctly bumps the exponent. */
    uint32_t rebased = abs - (112u << 23);
    uint32_t value = rebased >> 13;
    uint32_t rest = rebased & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (value & 1u)))
        value++;
    return sign | (uint16_t)value;
}

float lb_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

uint16_t lb_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate, keep it quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

lb_status lb_row_to_f32(lb_type src_type, const void *src, float *dst, int64_t n)
{
    const uint8_t *bytes = src;
    switch (src_type) {
    case LB_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return LB_OK;
    case LB_TYPE_F16:
    case LB_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(bytes[2 * i] | (bytes[2 * i + 1] << 8));
            dst[i] = src_type == LB_TYPE_F16 ? lb_f16_to_f32(h) : lb_bf16_to_f32(h);
        }
        return LB_OK;
    default:
        return lb_error(LB_ERR_UNSUPPORTED, "conversion from type %d to F32 is not supported",
                        (int)src_type);
    }
}

lb_status lb_row_from_f32(lb_type dst_type, const float *src, void *dst, int64_t n)
{
    uint8_t *bytes = dst;
    switch (dst_type) {
    case LB_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return LB_OK;
    case LB_TYPE_F16:
    case LB_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = dst_type == LB_TYPE_F16 ? lb_f32_to_f16(src[i]) : lb_f32_to_bf16(src[i]);
            bytes[2 * i] = (uint8_t)(h & 0xff);
            bytes[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return LB_OK;
    default:
        return lb_error(LB_ERR_UNSUPPORTED, "conversion from F32 to type %d is not supported",
                        (int)dst_type);
    }
}
