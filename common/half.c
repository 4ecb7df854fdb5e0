/* Row conversions between f32 and the 16-bit float tensor types (the scalar codec is inline
 * in half.h). */
#include "common/half.h"

#include <string.h>

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
