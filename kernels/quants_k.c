/* K-quant super-blocks, quantize side: llama.cpp-exact reference quantizers and the
 * importance-weighted search (the bit layouts, dequantize and dots: quants_k_decode.c). */
#include "kernels/quants_k_internal.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/quants_k_codes_internal.h"

/* Byte identity with llama.cpp needs the same float operations in the same order: no fused
 * multiply-add (GCC in ISO C mode already contracts nothing; clang would). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK LB_QK_K
#define GROUP_MAX_EPS 1e-15f

static inline int qk_min(int a, int b) { return a < b ? a : b; }
static inline int qk_max(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- scale searches (ggml's) */

/* Symmetric search: x ~ scale * (L - nmax), L in [0, 2 nmax - 1]; weights qw, or x^2 when NULL
 * (rmse_type 1). Tries 19 trial inverse scales around nmax / max and keeps the best
 * least-squares fit. Same f32 arithmetic as ggml's make_qx_quants (rmse_type 1). */
static float qk_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = qk_max(-nmax, qk_min(nmax - 1, qk_nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) {
            continue;
        }
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = qk_max(-nmax, qk_min(nmax - 1, qk_nearest_int(iscale * x[i])));
            float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = qk_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + qk_max(-nmax, qk_min(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's reference search: x^2-weighted symmetric fit refined by up to 5 passes of coordinate
 * descent on the quants (ggml's make_q3_quants with do_rmse). L gets offset nmax, except in the
 * all-zero case where it stays 0 as in ggml. */
static float qk_make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = qk_max(-nmax, qk_min(nmax - 1, qk_nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = qk_max(-nmax, qk_min(nmax - 1, qk_nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) {
            break;
        }
    }
    for (int i = 0; i < n; ++i) {
        L[i] = (int8_t)(L[i] + nmax);
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Affine search: x ~ scale * L - the_min, L in [0, nmax], min <= 0 forced. Starts from the
 * min/max grid, then tries nstep + 1 grids (nmax + rmin + rdelta * is) and solves the weighted
 * least-squares scale and min for each, keeping the lowest weighted error (absolute when
 * use_mad). Same f32 arithmetic as ggml's make_qkx2_quants / make_qkx3_quants (they agree when
 * weights are given). */
static float qk_make_qkx_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                                float *the_min, float rmin, float rdelta, int nstep, bool use_mad)
{
    uint8_t Laux[32];
    assert(n <= 32);
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) {
            min = x[i];
        }
        if (x[i] > max) {
            max = x[i];
        }
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) {
        min = 0;
    }
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = qk_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)qk_max(0, qk_min(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = qk_max(0, qk_min(nmax, qk_nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Positive scales of sub-blocks onto a grid d * L, L in [0, nmax], minimizing the weighted
 * error (ggml's make_qp_quants), used to quantize sub-block scales and mins with importance.
 * L is kept in [0, nmax] also for (pathological) negative inputs. */
static float qk_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0;
    for (int i = 0; i < n; ++i) {
        max = x[i] > max ? x[i] : max;
    }
    if (max < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max;
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = (uint8_t)qk_max(0, qk_nearest_int(iscale * x[i]));
        float diff = x[i] - scale * L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) {
            continue;
        }
        float iscale_is = (0.1f * is + nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            int l = qk_max(0, qk_min(nmax, qk_nearest_int(iscale_is * x[i])));
            float diff = x[i] - scale_is * l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = qk_max(0, qk_min(nmax, qk_nearest_int(iscale * x[i])));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * l;
        suml2 += qw[i] * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = qk_max(0, qk_min(nmax, qk_nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) {
            break;
        }
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

static void qk_pack_scale_min_k4(const uint8_t *ls, const uint8_t *lm, uint8_t *scales)
{
    for (int j = 0; j < QK / 32; ++j) {
        if (j < 4) {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Requantizes x against the stored (f16-rounded) scales and mins of a Q4_K/Q5_K block; a
 * sub-block whose scale is zero keeps the codes already in L, as ggml does. */
static void qk_requantize_k4(const float *x, uint16_t d16, uint16_t dmin16, const uint8_t *scales,
                             int nmax, uint8_t *L)
{
    for (int j = 0; j < QK / 32; ++j) {
        uint8_t sc, m;
        qk_get_scale_min_k4(j, scales, &sc, &m);
        const float d = lb_f16_to_f32(d16) * sc;
        if (!d) {
            continue;
        }
        const float dm = lb_f16_to_f32(dmin16) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = qk_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)qk_max(0, qk_min(nmax, l));
        }
    }
}

/* Requantizes x against the stored 4-bit scales and mins of a Q2_K block (codes 0..3). */
static void qk_requantize_q2_K(const float *x, const lb_block_q2_K *y, uint8_t *L)
{
    for (int j = 0; j < QK / 16; ++j) {
        const float d = lb_f16_to_f32(y->d) * (y->scales[j] & 0xF);
        if (!d) {
            continue;
        }
        const float dm = lb_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            int l = qk_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)qk_max(0, qk_min(3, l));
        }
    }
}

/* Sum of w_i (x_i - y_i)^2 in double; +Inf when not finite, so that such a candidate loses. */
static double qk_weighted_sse(const float *x, const float *w, const float *y)
{
    double s = 0;
    for (int i = 0; i < QK; ++i) {
        double e = (double)x[i] - (double)y[i];
        s += (double)w[i] * e * e;
    }
    return isfinite(s) ? s : INFINITY;
}

/* ---------------------------------------------------------------- Q2_K */

static void qk_q2_K_block_ref(const float *x, lb_block_q2_K *y)
{
    uint8_t L[QK];
    float weights[16];
    float mins[QK / 16];
    float scales[QK / 16];
    const float q4scale = 15.f;
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < QK / 16; ++j) {
        for (int l = 0; l < 16; ++l) {
            weights[l] = fabsf(x[16 * j + l]);
        }
        scales[j] = qk_make_qkx_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f,
                                       0.1f, 15, true);
        if (scales[j] > max_scale) {
            max_scale = scales[j];
        }
        if (mins[j] > max_min) {
            max_min = mins[j];
        }
    }
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < QK / 16; ++j) {
            y->scales[j] = (uint8_t)qk_nearest_int(iscale * scales[j]);
        }
        y->d = qk_scale_to_f16(max_scale / q4scale);
    } else {
        memset(y->scales, 0, sizeof y->scales);
        y->d = qk_scale_to_f16(0.f);
    }
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < QK / 16; ++j) {
            y->scales[j] |= (uint8_t)((unsigned)qk_nearest_int(iscale * mins[j]) << 4);
        }
        y->dmin = qk_scale_to_f16(max_min / q4scale);
    } else {
        y->dmin = qk_scale_to_f16(0.f);
    }
    qk_requantize_q2_K(x, y, L);
    lb_qk_pack_2bit(L, y->qs);
}

/* llama.cpp's quantize_row_q2_K_impl: importance times sqrt(sigma^2 + x^2) as weights, finer
 * grid search, scales and mins quantized by a weighted fit (make_qp_quants). */
static void qk_q2_K_block_weighted(const float *x, const float *qw, lb_block_q2_K *y)
{
    uint8_t L[QK];
    float mins[QK / 16], scales[QK / 16], sw[QK / 16], weight[16];
    uint8_t Ls[QK / 16], Lm[QK / 16];
    float sumx2 = 0;
    for (int j = 0; j < QK; ++j) {
        sumx2 += x[j] * x[j];
    }
    float sigma2 = sumx2 / QK;
    for (int j = 0; j < QK / 16; ++j) {
        sw[j] = 0;
        for (int l = 0; l < 16; ++l) {
            weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            sw[j] += weight[l];
        }
        scales[j] = qk_make_qkx_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], -0.9f,
                                       0.05f, 36, false);
    }
    float dm = qk_make_qp_quants(QK / 16, 15, scales, Ls, sw);
    float mm = qk_make_qp_quants(QK / 16, 15, mins, Lm, sw);
    y->d = qk_scale_to_f16(dm);
    y->dmin = qk_scale_to_f16(mm);
    for (int j = 0; j < QK / 16; ++j) {
        y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    }
    qk_requantize_q2_K(x, y, L);
    lb_qk_pack_2bit(L, y->qs);
}

/* ---------------------------------------------------------------- Q3_K */

/* Packs signed 6-bit scales (ls in 0..63) and codes L (0..7) into a Q3_K block. */
static void qk_q3_K_pack(const float *x, const int *ls, float d_block, int8_t *L, lb_block_q3_K *y)
{
    memset(y->scales, 0, sizeof y->scales);
    for (int j = 0; j < QK / 16; ++j) {
        int l = ls[j];
        if (j < 8) {
            y->scales[j] = (uint8_t)(l & 0xF);
        } else {
            y->scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        }
        y->scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    y->d = qk_scale_to_f16(d_block);
    for (int j = 0; j < QK / 16; ++j) {
        const float d = lb_f16_to_f32(y->d) * qk_q3_K_scale(y->scales, j);
        if (!d) {
            continue;
        }
        for (int ii = 0; ii < 16; ++ii) {
            int l = qk_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(qk_max(-4, qk_min(3, l)) + 4);
        }
    }
    lb_qk_q3_K_pack_codes(L, y);
}

static void qk_q3_K_block_ref(const float *x, lb_block_q3_K *y)
{
    int8_t L[QK];
    float scales[QK / 16];
    int ls[QK / 16];
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < QK / 16; ++j) {
        scales[j] = qk_make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        float scale = fabsf(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    if (max_scale) {
        float iscale = -32.f / max_scale;
        for (int j = 0; j < QK / 16; ++j) {
            /* ggml narrows to int8_t before clamping; nearest_int is within +-32 here */
            int l = (int8_t)qk_nearest_int(iscale * scales[j]);
            ls[j] = qk_max(-32, qk_min(31, l)) + 32;
        }
        qk_q3_K_pack(x, ls, 1 / iscale, L, y);
    } else {
        /* ggml leaves every scale byte 0 (scale -32) with d = 0 */
        memset(ls, 0, sizeof ls);
        qk_q3_K_pack(x, ls, 0.f, L, y);
    }
}

/* llama.cpp's quantize_row_q3_K_impl with quant_weights. */
static void qk_q3_K_block_weighted(const float *x, const float *qw, lb_block_q3_K *y)
{
    int8_t L[QK];
    float scales[QK / 16], weight[16], sw[QK / 16];
    int8_t Ls[QK / 16];
    int ls[QK / 16];
    float sumx2 = 0;
    for (int j = 0; j < QK; ++j) {
        sumx2 += x[j] * x[j];
    }
    float sigma2 = 2 * sumx2 / QK;
    for (int j = 0; j < QK / 16; ++j) {
        float sumw = 0;
        for (int l = 0; l < 16; ++l) {
            weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            sumw += weight[l];
        }
        sw[j] = sumw;
        scales[j] = qk_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    float d_block = qk_make_qx_quants(QK / 16, 32, scales, Ls, sw);
    for (int j = 0; j < QK / 16; ++j) {
        ls[j] = Ls[j];
    }
    qk_q3_K_pack(x, ls, d_block, L, y);
}

/* ---------------------------------------------------------------- Q4_K / Q5_K */

/* The reference scale search of a Q4_K (nmax 15) or Q5_K (nmax 31) block: fills d, dmin,
 * the packed scales and the codes L. */
static void qk_k4_block_ref(const float *x, int nmax, float rmin, float rdelta, int nstep,
                            uint16_t *d16, uint16_t *dmin16, uint8_t *packed, uint8_t *L)
{
    float weights[32], mins[QK / 32], scales[QK / 32];
    uint8_t ls[QK / 32], lm[QK / 32];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < QK / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) {
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        }
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) {
            weights[l] = av_x + fabsf(x[32 * j + l]);
        }
        scales[j] = qk_make_qkx_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin,
                                       rdelta, nstep, false);
        if (scales[j] > max_scale) {
            max_scale = scales[j];
        }
        if (mins[j] > max_min) {
            max_min = mins[j];
        }
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK / 32; ++j) {
        /* ggml narrows to uint8_t before taking the minimum with 63 */
        uint8_t s = (uint8_t)qk_nearest_int(inv_scale * scales[j]);
        uint8_t m = (uint8_t)qk_nearest_int(inv_min * mins[j]);
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    memset(packed, 0, LB_K_SCALE_SIZE);
    qk_pack_scale_min_k4(ls, lm, packed);
    *d16 = qk_scale_to_f16(max_scale / 63.f);
    *dmin16 = qk_scale_to_f16(max_min / 63.f);
    qk_requantize_k4(x, *d16, *dmin16, packed, nmax, L);
}

/* llama.cpp's quantize_row_q4_K_impl / q5_K_impl with quant_weights. */
static void qk_k4_block_weighted(const float *x, const float *qw, int nmax, uint16_t *d16,
                                 uint16_t *dmin16, uint8_t *packed, uint8_t *L)
{
    float weights[32], sw[QK / 32], mins[QK / 32], scales[QK / 32];
    uint8_t ls[QK / 32], lm[QK / 32];
    float sum_x2 = 0;
    for (int l = 0; l < QK; ++l) {
        sum_x2 += x[l] * x[l];
    }
    float sigma2 = 2 * sum_x2 / QK;
    for (int j = 0; j < QK / 32; ++j) {
        float sumw = 0;
        for (int l = 0; l < 32; ++l) {
            weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
            sumw += weights[l];
        }
        sw[j] = sumw;
        scales[j] = qk_make_qkx_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], -0.9f,
                                       0.05f, 36, false);
    }
    float d_block = qk_make_qp_quants(QK / 32, 63, scales, ls, sw);
    float m_block = qk_make_qp_quants(QK / 32, 63, mins, lm, sw);
    memset(packed, 0, LB_K_SCALE_SIZE);
    qk_pack_scale_min_k4(ls, lm, packed);
    *d16 = qk_scale_to_f16(d_block);
    *dmin16 = qk_scale_to_f16(m_block);
    qk_requantize_k4(x, *d16, *dmin16, packed, nmax, L);
}

static void qk_q4_K_block(const float *x, const float *qw, void *vy)
{
    lb_block_q4_K *y = vy;
    uint8_t L[QK];
    if (qw) {
        qk_k4_block_weighted(x, qw, 15, &y->d, &y->dmin, y->scales, L);
    } else {
        qk_k4_block_ref(x, 15, -1.f, 0.1f, 20, &y->d, &y->dmin, y->scales, L);
    }
    lb_qk_q4_K_pack(L, y->qs);
}

static void qk_q5_K_block(const float *x, const float *qw, void *vy)
{
    lb_block_q5_K *y = vy;
    uint8_t L[QK];
    if (qw) {
        qk_k4_block_weighted(x, qw, 31, &y->d, &y->dmin, y->scales, L);
    } else {
        qk_k4_block_ref(x, 31, -0.5f, 0.1f, 15, &y->d, &y->dmin, y->scales, L);
    }
    lb_qk_q5_K_pack(L, y->qh, y->qs);
}

/* ---------------------------------------------------------------- Q6_K */

/* Reference (qw NULL) or llama.cpp's weighted (qw = importance) Q6_K block. */
static void qk_q6_K_block(const float *x, const float *qw, void *vy)
{
    lb_block_q6_K *y = vy;
    int8_t L[QK];
    float scales[QK / 16];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < QK / 16; ++ib) {
        const float scale = qk_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        if (fabsf(scale) > max_abs_scale) {
            max_abs_scale = fabsf(scale);
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        return;
    }
    float iscale = -128.f / max_scale;
    y->d = qk_scale_to_f16(1 / iscale);
    for (int ib = 0; ib < QK / 16; ++ib) {
        y->scales[ib] = (int8_t)qk_max(-128, qk_min(127, qk_nearest_int(iscale * scales[ib])));
    }
    for (int j = 0; j < QK / 16; ++j) {
        float d = lb_f16_to_f32(y->d) * y->scales[j];
        if (!d) {
            continue;
        }
        for (int ii = 0; ii < 16; ++ii) {
            int l = qk_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(qk_max(-32, qk_min(31, l)) + 32);
        }
    }
    lb_qk_q6_K_pack_codes(L, y);
}

/* ---------------------------------------------------------------- public: quantize */

#define QK_MAX_BLOCK_BYTES 210

typedef void (*qk_block_fn)(const float *x, const float *qw, void *y);

static void qk_q2_K_block(const float *x, const float *qw, void *y)
{
    if (qw) {
        qk_q2_K_block_weighted(x, qw, y);
    } else {
        qk_q2_K_block_ref(x, y);
    }
}

static void qk_q3_K_block(const float *x, const float *qw, void *y)
{
    if (qw) {
        qk_q3_K_block_weighted(x, qw, y);
    } else {
        qk_q3_K_block_ref(x, y);
    }
}

/* Reference block, and with importance the weighted candidate too: the one with the lower
 * weighted error is kept (the reference on ties), so importance never makes a block worse. */
static void qk_quantize_row(const float *x, void *vy, int64_t n, const float *importance,
                            size_t block_bytes, qk_block_fn quantize, qk_unpack_fn unpack)
{
    QK_CHECK_N(n);
    assert(block_bytes <= QK_MAX_BLOCK_BYTES);
    unsigned char *y = vy;
    for (int64_t i = 0; i < n / QK; ++i, x += QK, y += block_bytes) {
        quantize(x, NULL, y);
        if (importance) {
            const float *w = importance + i * QK;
            unsigned char cand[QK_MAX_BLOCK_BYTES];
            float yr[QK], yc[QK];
            quantize(x, w, cand);
            lb_qk_dequant_block(y, unpack, yr);
            lb_qk_dequant_block(cand, unpack, yc);
            if (qk_weighted_sse(x, w, yc) < qk_weighted_sse(x, w, yr)) {
                memcpy(y, cand, block_bytes);
            }
        }
    }
}

void lb_quantize_row_q2_K_ref(const float *x, void *y, int64_t n, const float *importance)
{
    qk_quantize_row(x, y, n, importance, sizeof(lb_block_q2_K), qk_q2_K_block, lb_qk_unpack_q2_K);
}

void lb_quantize_row_q3_K_ref(const float *x, void *y, int64_t n, const float *importance)
{
    qk_quantize_row(x, y, n, importance, sizeof(lb_block_q3_K), qk_q3_K_block, lb_qk_unpack_q3_K);
}

void lb_quantize_row_q4_K_ref(const float *x, void *y, int64_t n, const float *importance)
{
    qk_quantize_row(x, y, n, importance, sizeof(lb_block_q4_K), qk_q4_K_block, lb_qk_unpack_q4_K);
}

void lb_quantize_row_q5_K_ref(const float *x, void *y, int64_t n, const float *importance)
{
    qk_quantize_row(x, y, n, importance, sizeof(lb_block_q5_K), qk_q5_K_block, lb_qk_unpack_q5_K);
}

void lb_quantize_row_q6_K_ref(const float *x, void *y, int64_t n, const float *importance)
{
    qk_quantize_row(x, y, n, importance, sizeof(lb_block_q6_K), qk_q6_K_block, lb_qk_unpack_q6_K);
}

void lb_quantize_row_q8_K_ref(const float *x, void *vy, int64_t n, const float *importance)
{
    (void)importance;
    QK_CHECK_N(n);
    lb_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK; ++i, x += QK) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < QK; ++j) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            /* ggml leaves bsums unwritten here; lowbit zeroes the whole block */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        if (isfinite(iscale)) {
            for (int j = 0; j < QK; ++j) {
                y[i].qs[j] = (int8_t)qk_max(-128, qk_min(127, qk_nearest_int(iscale * x[j])));
            }
            y[i].d = 1 / iscale;
        } else { /* max so small (subnormal) that 127 / max overflows: divide instead */
            const float d = max / -127.f;
            for (int j = 0; j < QK; ++j) {
                y[i].qs[j] = (int8_t)qk_max(-128, qk_min(127, qk_nearest_int(x[j] / d)));
            }
            y[i].d = d;
        }
        for (int j = 0; j < QK / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) {
                sum += y[i].qs[j * 16 + ii];
            }
            y[i].bsums[j] = (int16_t)sum;
        }
    }
}