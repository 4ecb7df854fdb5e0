/* IEEE half (f16) and bfloat16 conversions: round to nearest even, NaN and Inf preserved. */
#ifndef LB_FORMATS_HALF_H
#define LB_FORMATS_HALF_H

#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"

LB_API float lb_f16_to_f32(uint16_t h);
LB_API uint16_t lb_f32_to_f16(float f);
LB_API float lb_bf16_to_f32(uint16_t b);
LB_API uint16_t lb_f32_to_bf16(float f);

/* Converts n elements of a float type (F32, F16, BF16) to f32. src may be unaligned.
 * LB_ERR_UNSUPPORTED for other types. */
LB_API lb_status lb_row_to_f32(lb_type src_type, const void *src, float *dst, int64_t n);

/* Converts n f32 values to a float type (F32, F16, BF16); dst may be unaligned.
 * LB_ERR_UNSUPPORTED for other types. */
LB_API lb_status lb_row_from_f32(lb_type dst_type, const float *src, void *dst, int64_t n);

#endif
