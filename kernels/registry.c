/* The kernels' type registry and the fallback rule for rows that do not fit a block size. */
#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"

/* The float types, so that every registered type can be quantized, dequantized and dotted. */
static void quantize_row_f32(const float *x, void *y, int64_t n, const float *importance)
{
    (void)importance;
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void dequantize_row_f32(const void *x, float *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static float vec_dot_f32_f32(const void *w, const float *a, int64_t n)
{
    const float *wf = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += wf[i] * a[i];
    return sum;
}

/* For the float types vec_dot_type is F32: vec_dot is the f32-activation dot. */
static float vec_dot_f32(const void *w, const void *a, int64_t n)
{
    return vec_dot_f32_f32(w, a, n);
}

/* F16 and BF16 differ only in the conversion of one element. */
static void halves_from_f32(const float *x, uint16_t *h, int64_t n, uint16_t (*convert)(float))
{
    for (int64_t i = 0; i < n; i++)
        h[i] = convert(x[i]);
}

static void halves_to_f32(const uint16_t *h, float *y, int64_t n, float (*convert)(uint16_t))
{
    for (int64_t i = 0; i < n; i++)
        y[i] = convert(h[i]);
}

static float halves_dot_f32(const uint16_t *h, const float *a, int64_t n,
                            float (*convert)(uint16_t))
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += convert(h[i]) * a[i];
    return sum;
}

static void quantize_row_f16(const float *x, void *y, int64_t n, const float *importance)
{
    (void)importance;
    halves_from_f32(x, y, n, lb_f32_to_f16);
}

static void dequantize_row_f16(const void *x, float *y, int64_t n)
{
    halves_to_f32(x, y, n, lb_f16_to_f32);
}

static float vec_dot_f16_f32(const void *w, const float *a, int64_t n)
{
    return halves_dot_f32(w, a, n, lb_f16_to_f32);
}

static float vec_dot_f16(const void *w, const void *a, int64_t n)
{
    return halves_dot_f32(w, a, n, lb_f16_to_f32);
}

static void quantize_row_bf16(const float *x, void *y, int64_t n, const float *importance)
{
    (void)importance;
    halves_from_f32(x, y, n, lb_f32_to_bf16);
}

static void dequantize_row_bf16(const void *x, float *y, int64_t n)
{
    halves_to_f32(x, y, n, lb_bf16_to_f32);
}

static float vec_dot_bf16_f32(const void *w, const float *a, int64_t n)
{
    return halves_dot_f32(w, a, n, lb_bf16_to_f32);
}

static float vec_dot_bf16(const void *w, const void *a, int64_t n)
{
    return halves_dot_f32(w, a, n, lb_bf16_to_f32);
}

static const lb_kernel_type kernel_types[] = {
    {LB_TYPE_F32, LB_TYPE_F32, quantize_row_f32, dequantize_row_f32, vec_dot_f32,
     vec_dot_f32_f32, NULL, NULL, NULL, 0, 0, NULL},
    {LB_TYPE_F16, LB_TYPE_F32, quantize_row_f16, dequantize_row_f16, vec_dot_f16,
     vec_dot_f16_f32, NULL, NULL, NULL, 0, 0, NULL},
    {LB_TYPE_BF16, LB_TYPE_F32, quantize_row_bf16, dequantize_row_bf16, vec_dot_bf16,
     vec_dot_bf16_f32, NULL, NULL, NULL, 0, 0, NULL},
    {LB_TYPE_Q8_0, LB_TYPE_Q8_0, lb_quantize_row_q8_0_ref, lb_dequantize_row_q8_0,
     lb_vec_dot_q8_0_q8_0_c, lb_vec_dot_q8_0_f32_c,
     lb_block_grid_q8_0, lb_block_get_levels_q8_0, lb_block_set_levels_q8_0, -127, 127, NULL},
    {LB_TYPE_Q4_0, LB_TYPE_Q8_0, lb_quantize_row_q4_0_ref, lb_dequantize_row_q4_0,
     lb_vec_dot_q4_0_q8_0_c, lb_vec_dot_q4_0_f32_c,
     lb_block_grid_q4_0, lb_block_get_levels_q4_0, lb_block_set_levels_q4_0, -8, 7, NULL},
    {LB_TYPE_Q4_1, LB_TYPE_Q8_0, lb_quantize_row_q4_1_ref, lb_dequantize_row_q4_1,
     lb_vec_dot_q4_1_q8_0_c, lb_vec_dot_q4_1_f32_c,
     lb_block_grid_q4_1, lb_block_get_levels_q4_1, lb_block_set_levels_q4_1, 0, 15, NULL},
    {LB_TYPE_Q5_0, LB_TYPE_Q8_0, lb_quantize_row_q5_0_ref, lb_dequantize_row_q5_0,
     lb_vec_dot_q5_0_q8_0_c, lb_vec_dot_q5_0_f32_c,
     lb_block_grid_q5_0, lb_block_get_levels_q5_0, lb_block_set_levels_q5_0, -16, 15, NULL},
    {LB_TYPE_Q5_1, LB_TYPE_Q8_0, lb_quantize_row_q5_1_ref, lb_dequantize_row_q5_1,
     lb_vec_dot_q5_1_q8_0_c, lb_vec_dot_q5_1_f32_c,
     lb_block_grid_q5_1, lb_block_get_levels_q5_1, lb_block_set_levels_q5_1, 0, 31, NULL},
    {LB_TYPE_Q2_K, LB_TYPE_Q8_K, lb_quantize_row_q2_K_ref, lb_dequantize_row_q2_K,
     lb_vec_dot_q2_K_q8_K_c, lb_vec_dot_q2_K_f32_c,
     lb_block_grid_q2_K, lb_block_get_levels_q2_K, lb_block_set_levels_q2_K, 0, 3, NULL},
    {LB_TYPE_Q3_K, LB_TYPE_Q8_K, lb_quantize_row_q3_K_ref, lb_dequantize_row_q3_K,
     lb_vec_dot_q3_K_q8_K_c, lb_vec_dot_q3_K_f32_c,
     lb_block_grid_q3_K, lb_block_get_levels_q3_K, lb_block_set_levels_q3_K, -4, 3, NULL},
    {LB_TYPE_Q4_K, LB_TYPE_Q8_K, lb_quantize_row_q4_K_ref, lb_dequantize_row_q4_K,
     lb_vec_dot_q4_K_q8_K_c, lb_vec_dot_q4_K_f32_c,
     lb_block_grid_q4_K, lb_block_get_levels_q4_K, lb_block_set_levels_q4_K, 0, 15, NULL},
    {LB_TYPE_Q5_K, LB_TYPE_Q8_K, lb_quantize_row_q5_K_ref, lb_dequantize_row_q5_K,
     lb_vec_dot_q5_K_q8_K_c, lb_vec_dot_q5_K_f32_c,
     lb_block_grid_q5_K, lb_block_get_levels_q5_K, lb_block_set_levels_q5_K, 0, 31, NULL},
    {LB_TYPE_Q6_K, LB_TYPE_Q8_K, lb_quantize_row_q6_K_ref, lb_dequantize_row_q6_K,
     lb_vec_dot_q6_K_q8_K_c, lb_vec_dot_q6_K_f32_c,
     lb_block_grid_q6_K, lb_block_get_levels_q6_K, lb_block_set_levels_q6_K, -32, 31, NULL},
    {LB_TYPE_Q8_K, LB_TYPE_Q8_K, lb_quantize_row_q8_K_ref, lb_dequantize_row_q8_K, NULL, NULL,
     NULL, NULL, NULL, 0, 0, NULL},
    {LB_TYPE_IQ4_NL, LB_TYPE_Q8_0, lb_quantize_row_iq4_nl_ref, lb_dequantize_row_iq4_nl,
     lb_vec_dot_iq4_nl_q8_0_c, lb_vec_dot_iq4_nl_f32_c, lb_block_grid_iq4_nl,
     lb_block_get_levels_iq4_nl, lb_block_set_levels_iq4_nl, 0, 15, lb_iq4_levels},
    {LB_TYPE_IQ4_XS, LB_TYPE_Q8_K, lb_quantize_row_iq4_xs_ref, lb_dequantize_row_iq4_xs,
     lb_vec_dot_iq4_xs_q8_K_c, lb_vec_dot_iq4_xs_f32_c, lb_block_grid_iq4_xs,
     lb_block_get_levels_iq4_xs, lb_block_set_levels_iq4_xs, 0, 15, lb_iq4_levels},
};

const lb_kernel_type *lb_kernels_type(lb_type type)
{
    for (size_t i = 0; i < sizeof kernel_types / sizeof kernel_types[0]; i++)
        if (kernel_types[i].type == type)
            return &kernel_types[i];
    return NULL;
}

bool lb_kernels_row_fits(lb_type type, int64_t row_length)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return info && row_length > 0 && row_length % info->block_size == 0;
}

lb_type lb_kernels_fallback_type(lb_type wanted, int64_t row_length)
{
    if (lb_kernels_row_fits(wanted, row_length))
        return wanted;
    lb_type substitute;
    switch (wanted) {
    case LB_TYPE_Q2_K:
    case LB_TYPE_Q3_K:
    case LB_TYPE_IQ4_XS: substitute = LB_TYPE_IQ4_NL; break;
    case LB_TYPE_Q4_K: substitute = LB_TYPE_Q5_0; break;
    case LB_TYPE_Q5_K: substitute = LB_TYPE_Q5_1; break;
    case LB_TYPE_Q6_K: substitute = LB_TYPE_Q8_0; break;
    default: return LB_TYPE_F16;
    }
    return lb_kernels_row_fits(substitute, row_length) ? substitute : LB_TYPE_F16;
}

lb_status lb_kernels_dequantize(lb_type type, const void *src, int64_t n, float *dst)
{
    const lb_kernel_type *kernels = lb_kernels_type(type);
    const lb_type_info *info = lb_type_get((uint32_t)type);
    if (!kernels || !info)
        return lb_error(LB_ERR_UNSUPPORTED, "dequantize: type %s (%u) has no kernels",
                        info ? info->name : "unknown", (unsigned)type);
    if (n < 0 || n % info->block_size != 0)
        return lb_error(LB_ERR_INVALID_ARG,
                        "dequantize: %lld elements of %s: not a multiple of its block size %lld",
                        (long long)n, info->name, (long long)info->block_size);
    if (n > 0 && (!src || !dst))
        return lb_error(LB_ERR_INVALID_ARG, "dequantize: NULL buffer for %lld elements of %s",
                        (long long)n, info->name);
    /* GGUF allows general.alignment = 1, so a tensor may start at any byte; the block structs
     * hold f16 and f32 fields, and reading them through a misaligned pointer is undefined.
     * Such data is decoded from an aligned copy, a chunk of blocks at a time. */
    if (n > 0 && (uintptr_t)src % _Alignof(max_align_t) != 0) {
        _Alignas(max_align_t) uint8_t chunk[4096];
        const uint8_t *bytes = src;
        int64_t blocks_per_chunk = (int64_t)(sizeof chunk / info->block_bytes);
        for (int64_t done = 0; done < n;) {
            int64_t blocks = (n - done) / info->block_size;
            if (blocks > blocks_per_chunk)
                blocks = blocks_per_chunk;
            size_t nbytes = (size_t)blocks * info->block_bytes;
            memcpy(chunk, bytes, nbytes);
            kernels->dequantize_row(chunk, dst + done, blocks * info->block_size);
            bytes += nbytes;
            done += blocks * info->block_size;
        }
        return LB_OK;
    }
    if (n > 0)
        kernels->dequantize_row(src, dst, n);
    return LB_OK;
}
