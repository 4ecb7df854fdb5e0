/* Scalar reference quantize / dequantize / grid / dot kernels for IQ4_NL and IQ4_XS. */
#include "kernels/quants_iq4_internal.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/quants_k_codes_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"

/* Byte identity with llama.cpp needs its f32 operations, each rounded on its own: no fused
 * multiply-add (GCC in ISO C mode contracts nothing; clang is told here). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define SUB 32                /* weights per scale: an IQ4_NL block, an IQ4_XS sub-block */
#define N_SUB (LB_QK_IQ4_XS / SUB)
#define GROUP_MAX_EPS 1e-15f  /* ggml's: a sub-block below this is all zero */
#define NTRY 7                /* ggml's candidate scales either side of the first */

const int8_t lb_iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};
const float lb_iq4_levels[16] = {-127.f, -104.f, -83.f, -65.f, -49.f, -35.f, -22.f, -10.f,
                                 1.f,    13.f,   25.f,  38.f,  53.f,  69.f,  89.f,  113.f};

/* ---------------------------------------------------------------------------------------- */
/* Quantize                                                                                  */

/* Index of the level nearest to v (ggml's best_index_int8: below the first or above the last
 * level clamps, a tie goes up, NaN gives 15), with ggml's comparisons so that ties fall alike. */
static int nearest_code(float v)
{
    const int8_t *V = lb_iq4_values;
    if (v <= V[0])
        return 0;
    if (v >= V[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < V[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - V[hi - 1] < V[hi] - v ? hi - 1 : hi;
}

/* sum w q x and sum w q^2 over a sub-block for the nearest codes of id * x. */
static void fit_sums(const float *x, const float *w, float id, float *sumqx, float *sumq2)
{
    float sqx = 0, sq2 = 0;
    for (int j = 0; j < SUB; j++) {
        float q = lb_iq4_values[nearest_code(id * x[j])];
        sqx += w[j] * q * x[j];
        sq2 += w[j] * q * q;
    }
    *sumqx = sqx;
    *sumq2 = sq2;
}

/* The scale of one sub-block (0 when it is all below GROUP_MAX_EPS): the first candidate maps
 * the largest-magnitude weight `max` to 127 (-max / V[0]), then for t in -NTRY..NTRY max is
 * mapped to V[0] + t; each candidate's nearest codes give the weighted least-squares scale
 * sumqx / sumq2, and the one of largest sumqx^2 / sumq2 (the most error removed) wins.
 * *degenerate is set where every weight is 0, so that sumq2 is 0 and the fit undefined. */
static float sub_block_scale(const float *x, const float *w, bool *degenerate)
{
    float amax = 0, max = 0;
    *degenerate = false;
    for (int j = 0; j < SUB; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax < GROUP_MAX_EPS)
        return 0;
    float d = -max / lb_iq4_values[0];
    float sumqx, sumq2;
    fit_sums(x, w, 1 / d, &sumqx, &sumq2);
    if (sumq2 == 0) {
        *degenerate = true;
        return 0;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int t = -NTRY; t <= NTRY; t++) {
        float id = (t + lb_iq4_values[0]) / max;
        fit_sums(x, w, id, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* sigma2 of ggml's importance weights: 2 / size * sum x^2 over the (super-)block. */
static float sigma2_of(const float *x, int size)
{
    float sigma2 = 0;
    for (int j = 0; j < size; j++)
        sigma2 += x[j] * x[j];
    return sigma2 * (2.f / (float)size);
}

/* Scale of sub-block x (SUB weights) with the weights ggml uses: importance * sqrt(sigma2 +
 * x^2), or x^2 without importance or where the importance is zero throughout. */
static float weighted_scale(const float *x, const float *importance, float sigma2)
{
    float w[SUB];
    bool degenerate = false;
    if (importance) {
        for (int j = 0; j < SUB; j++)
            w[j] = importance[j] * sqrtf(sigma2 + x[j] * x[j]);
        float d = sub_block_scale(x, w, &degenerate);
        if (!degenerate)
            return d;
    }
    for (int j = 0; j < SUB; j++)
        w[j] = x[j] * x[j];
    return sub_block_scale(x, w, &degenerate);
}

/* Codes of one 32-weight group, nibble-packed as in Q4_0. */
static void pack_codes(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < SUB / 2; j++)
        qs[j] = (uint8_t)(L[j] | (L[j + SUB / 2] << 4));
}

static void unpack_codes(const uint8_t *qs, int8_t *q)
{
    for (int j = 0; j < SUB / 2; j++) {
        q[j] = (int8_t)(qs[j] & 0x0f);
        q[j + SUB / 2] = (int8_t)(qs[j] >> 4);
    }
}

/* The nearest codes of id * x over one group. */
static void assign_codes(const float *x, float id, uint8_t *L)
{
    for (int j = 0; j < SUB; j++)
        L[j] = (uint8_t)nearest_code(id * x[j]);
}

void lb_quantize_row_iq4_nl_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    lb_block_iq4_nl *blocks = y;
    for (int64_t b = 0; b < n / LB_QK_IQ4_NL; b++) {
        const float *xb = x + b * LB_QK_IQ4_NL;
        const float *wb = importance ? importance + b * LB_QK_IQ4_NL : NULL;
        float d = weighted_scale(xb, wb, wb ? sigma2_of(xb, LB_QK_IQ4_NL) : 0);
        uint8_t L[SUB];
        /* The codes come from the unrounded scale, as in ggml; d is then stored as f16. */
        assign_codes(xb, d != 0 ? 1 / d : 0, L);
        blocks[b].d = qk_scale_to_f16(d);
        pack_codes(L, blocks[b].qs);
    }
}

/* Packs the 6-bit scale code c (0..63) of sub-block s. */
static void set_xs_scale(lb_block_iq4_xs *b, int s, int c)
{
    uint8_t lo = (uint8_t)(c & 0xf);
    if (s % 2 == 0)
        b->scales_l[s / 2] = lo;
    else
        b->scales_l[s / 2] = (uint8_t)(b->scales_l[s / 2] | (lo << 4));
    b->scales_h = (uint16_t)(b->scales_h | ((c >> 4) << (2 * s)));
}

void lb_quantize_row_iq4_xs_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    lb_block_iq4_xs *blocks = y;
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++) {
        const float *xb = x + b * LB_QK_IQ4_XS;
        const float *wb = importance ? importance + b * LB_QK_IQ4_XS : NULL;
        const float sigma2 = wb ? sigma2_of(xb, LB_QK_IQ4_XS) : 0;
        float scales[N_SUB];
        float max_scale = 0, amax_scale = 0;
        for (int s = 0; s < N_SUB; s++) {
            scales[s] = weighted_scale(xb + s * SUB, wb ? wb + s * SUB : NULL, sigma2);
            if (fabsf(scales[s]) > amax_scale) {
                amax_scale = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        /* Sub-scales as 6-bit multiples -32..31 of d, the largest one mapped to -32. */
        lb_block_iq4_xs *out = &blocks[b];
        const float d = -max_scale / 32;
        const float id = d != 0 ? 1 / d : 0;
        out->d = qk_scale_to_f16(d);
        out->scales_h = 0;
        for (int s = 0; s < N_SUB; s++) {
            int l = qk_nearest_int(id * scales[s]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * (float)l;
            uint8_t L[SUB];
            assign_codes(xb + s * SUB, dl != 0 ? 1 / dl : 0, L);
            pack_codes(L, out->qs + s * (SUB / 2));
            set_xs_scale(out, s, l + 32);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dequantize                                                                                */

static void dequant_group(float d, const uint8_t *qs, float *y)
{
    for (int j = 0; j < SUB / 2; j++) {
        y[j] = d * (float)lb_iq4_values[qs[j] & 0x0f];
        y[j + SUB / 2] = d * (float)lb_iq4_values[qs[j] >> 4];
    }
}

/* f32 scale of sub-block s, as ggml's dequantize_row_iq4_xs forms it. */
static float xs_sub_scale(const lb_block_iq4_xs *b, int s)
{
    return lb_f16_to_f32(b->d) * (float)lb_iq4_xs_scale(b, s);
}

void lb_dequantize_row_iq4_nl(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    const lb_block_iq4_nl *blocks = x;
    for (int64_t b = 0; b < n / LB_QK_IQ4_NL; b++)
        dequant_group(lb_f16_to_f32(blocks[b].d), blocks[b].qs, y + b * LB_QK_IQ4_NL);
}

void lb_dequantize_row_iq4_xs(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    const lb_block_iq4_xs *blocks = x;
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++)
        for (int s = 0; s < N_SUB; s++)
            dequant_group(xs_sub_scale(&blocks[b], s), blocks[b].qs + s * (SUB / 2),
                          y + b * LB_QK_IQ4_XS + s * SUB);
}

/* ---------------------------------------------------------------------------------------- */
/* Block grids and levels                                                                    */

static void fill_grid(float d, int count, float *scale, float *offset)
{
    for (int j = 0; j < count; j++) {
        scale[j] = d;
        offset[j] = -0.0f;
    }
}

void lb_block_grid_iq4_nl(const void *block, float *scale, float *offset)
{
    fill_grid(lb_f16_to_f32(((const lb_block_iq4_nl *)block)->d), SUB, scale, offset);
}

void lb_block_grid_iq4_xs(const void *block, float *scale, float *offset)
{
    for (int s = 0; s < N_SUB; s++)
        fill_grid(xs_sub_scale(block, s), SUB, scale + s * SUB, offset + s * SUB);
}

void lb_block_get_levels_iq4_nl(const void *block, int8_t *q)
{
    unpack_codes(((const lb_block_iq4_nl *)block)->qs, q);
}

void lb_block_get_levels_iq4_xs(const void *block, int8_t *q)
{
    const lb_block_iq4_xs *b = block;
    for (int s = 0; s < N_SUB; s++)
        unpack_codes(b->qs + s * (SUB / 2), q + s * SUB);
}

static void set_group_levels(uint8_t *qs, const int8_t *q)
{
    uint8_t L[SUB];
    for (int j = 0; j < SUB; j++) {
        assert(q[j] >= 0 && q[j] <= 15);
        L[j] = (uint8_t)q[j];
    }
    pack_codes(L, qs);
}

void lb_block_set_levels_iq4_nl(void *block, const int8_t *q)
{
    set_group_levels(((lb_block_iq4_nl *)block)->qs, q);
}

void lb_block_set_levels_iq4_xs(void *block, const int8_t *q)
{
    lb_block_iq4_xs *b = block;
    for (int s = 0; s < N_SUB; s++)
        set_group_levels(b->qs + s * (SUB / 2), q + s * SUB);
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products                                                                              */

/* Exact dot of one group's 32 levels with 32 int8 activations. */
static int32_t group_dot(const uint8_t *qs, const int8_t *a)
{
    int32_t sum = 0;
    for (int j = 0; j < SUB / 2; j++) {
        sum += lb_iq4_values[qs[j] & 0x0f] * a[j];
        sum += lb_iq4_values[qs[j] >> 4] * a[j + SUB / 2];
    }
    return sum;
}

float lb_vec_dot_iq4_nl_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    const lb_block_iq4_nl *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_IQ4_NL; b++) {
        const float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += scale * (float)group_dot(wb[b].qs, ab[b].qs);
    }
    return sum;
}

float lb_vec_dot_iq4_xs_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    const lb_block_iq4_xs *wb = w;
    const lb_block_q8_K *ab = a_q8_K;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++) {
        /* |(ls - 32) * dot| <= 32 * 32 * 127 * 128 per sub-block: the total fits int32 */
        int32_t sumi = 0;
        for (int s = 0; s < N_SUB; s++)
            sumi += lb_iq4_xs_scale(&wb[b], s) *
                    group_dot(wb[b].qs + s * (SUB / 2), ab[b].qs + s * SUB);
        const float scale = lb_f16_to_f32(wb[b].d) * ab[b].d;
        sum += scale * (float)sumi;
    }
    return sum;
}

static float group_dot_f32(const float *y, const float *a)
{
    float sum = 0.0f;
    for (int j = 0; j < SUB; j++) {
        float p = y[j] * a[j];
        sum += p;
    }
    return sum;
}

float lb_vec_dot_iq4_nl_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_NL == 0);
    const lb_block_iq4_nl *wb = w;
    float sum = 0.0f, y[SUB];
    for (int64_t b = 0; b < n / LB_QK_IQ4_NL; b++) {
        dequant_group(lb_f16_to_f32(wb[b].d), wb[b].qs, y);
        sum += group_dot_f32(y, a + b * SUB);
    }
    return sum;
}

float lb_vec_dot_iq4_xs_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % LB_QK_IQ4_XS == 0);
    const lb_block_iq4_xs *wb = w;
    float sum = 0.0f, y[SUB];
    for (int64_t b = 0; b < n / LB_QK_IQ4_XS; b++)
        for (int s = 0; s < N_SUB; s++) {
            dequant_group(xs_sub_scale(&wb[b], s), wb[b].qs + s * (SUB / 2), y);
            sum += group_dot_f32(y, a + b * LB_QK_IQ4_XS + s * SUB);
        }
    return sum;
}
