/* Scalar reference quantize / dequantize / dot kernels for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. */
#include "kernels/quants_legacy.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/half.h"

/* Byte-identity with llama.cpp / gguf-py needs every f32 operation rounded on its own: no
 * contraction of a*b+c into an FMA except where written as fmaf(). GCC does not contract under
 * -std=c11 (meson's c_std); clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK LB_QK_LEGACY
#define F16_MAX_FINITE 0x7bffu

/* Candidate scales per sign in the importance search (see sym_search / affine_search). */
#define SEARCH_STEPS 32

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */

/* f16 bits of v; where llama.cpp would store +-Inf the value saturates to +-65504 and
 * *saturated is set (so the caller re-derives its inverse scale from the stored value). */
static uint16_t f16_saturating(float v, bool *saturated)
{
    uint16_t h = lb_f32_to_f16(v);
    bool over = (h & 0x7fffu) == 0x7c00u;
    if (over)
        h = (uint16_t)((h & 0x8000u) | F16_MAX_FINITE);
    if (saturated)
        *saturated = over;
    return h;
}

/* trunc(v) clamped to [0, hi]: llama.cpp's MIN(hi, (int8_t)v) wherever that is defined (v in
 * (-1, 128)), and defined (0 for NaN, clamped for +-Inf) everywhere else. */
static inline int trunc_clamp(float v, int hi)
{
    if (!(v >= 1.0f))
        return 0;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

/* roundf(v) (half away from zero) clamped to [-lim, lim]; 0 for NaN. */
static inline int roundf_clamp(float v, int lim)
{
    if (v != v)
        return 0;
    if (v <= (float)-lim)
        return -lim;
    if (v >= (float)lim)
        return lim;
    return (int)roundf(v);
}

/* Nearest integer of v clamped to [lo, hi]; lo for NaN. Used by the search only, where any
 * rounding is fine because every candidate is scored exactly. */
static inline int nearest_clamp(float v, int lo, int hi)
{
    if (!(v > (float)lo))
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)floorf(v + 0.5f);
}

/* Nibble packing shared by all four 4/5-bit types: element j low, element j + 16 high. */
static void pack_nibbles(const uint8_t *q, uint8_t *qs)
{
    for (int j = 0; j < QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 0x0fu) | ((q[j + QK / 2] & 0x0fu) << 4));
}

/* Fifth bits: element j at bit j of the little-endian word qh[0..3]. */
static void pack_high_bits(const uint8_t *q, uint8_t *qh)
{
    memset(qh, 0, 4);
    for (int j = 0; j < QK; j++)
        qh[j / 8] = (uint8_t)(qh[j / 8] | (((q[j] >> 4) & 1u) << (j % 8)));
}

static void unpack_q4(const uint8_t *qs, int *q)
{
    for (int j = 0; j < QK / 2; j++) {
        q[j] = qs[j] & 0x0f;
        q[j + QK / 2] = qs[j] >> 4;
    }
}

static void unpack_q5(const uint8_t *qh, const uint8_t *qs, int *q)
{
    unpack_q4(qs, q);
    for (int j = 0; j < QK; j++)
        q[j] |= ((qh[j / 8] >> (j % 8)) & 1) << 4;
}

/* ---------------------------------------------------------------------------------------- */
/* llama.cpp's reference round-to-nearest, one block at a time                               */

/* Q8_0: d = amax / 127, q = roundf(x / d) (x * (1/d) in f32, as quantize_row_q8_0_ref). */
static uint16_t rtn_q8_0_block(const float *x, int *l)
{
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    bool saturated;
    uint16_t dh = f16_saturating(d, &saturated);
    if (saturated)
        id = 1.0f / lb_f16_to_f32(dh);
    for (int j = 0; j < QK; j++) {
        float v = x[j] * id;
        l[j] = roundf_clamp(v, 127);
    }
    return dh;
}

/* Q4_0 (nmax 8) / Q5_0 (nmax 16): max = first element of largest magnitude, d = max / -nmax,
 * q = trunc(x * (1/d) + nmax + 0.5) clamped to 2 nmax - 1, the product and sum fused (gguf-py
 * computes it in f64 then rounds once to f32, which is what fmaf does). Levels l = q - nmax. */
static uint16_t rtn_symmetric_block(const float *x, int nmax, int *l)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / (float)-nmax;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    bool saturated;
    uint16_t dh = f16_saturating(d, &saturated);
    if (saturated)
        id = 1.0f / lb_f16_to_f32(dh);
    const float offset = (float)nmax + 0.5f;
    for (int j = 0; j < QK; j++)
        l[j] = trunc_clamp(fmaf(x[j], id, offset), 2 * nmax - 1) - nmax;
    return dh;
}

/* Q4_1 (nmax 15) / Q5_1 (nmax 31): d = (max - min) / nmax, m = min,
 * q = trunc((x - min) * (1/d) + 0.5), each operation rounded to f32 on its own. */
static void rtn_affine_block(const float *x, int nmax, int *q, uint16_t *dh, uint16_t *mh)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    const float d = (max - min) / (float)nmax;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    bool saturated;
    *dh = f16_saturating(d, &saturated);
    *mh = f16_saturating(min, NULL);
    if (saturated)
        id = 1.0f / lb_f16_to_f32(*dh);
    for (int j = 0; j < QK; j++) {
        float v = x[j] - min;
        v = v * id;
        v = v + 0.5f;
        q[j] = trunc_clamp(v, nmax);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Importance-weighted search                                                                */

/* Weighted squared error of a symmetric block x ~ l * d, dequantized exactly as
 * lb_dequantize_row_<t> does. */
static double sym_error(const float *x, const float *w, float d, const int *l)
{
    double err = 0.0;
    for (int j = 0; j < QK; j++) {
        float y = (float)l[j] * d;
        double diff = (double)x[j] - (double)y;
        err += (double)w[j] * diff * diff;
    }
    return err;
}

/* Best levels for a fixed scale: each element independently to its nearest level. */
static void sym_assign(const float *x, float d, int lo, int hi, int *l)
{
    if (d == 0.0f) {
        for (int j = 0; j < QK; j++)
            l[j] = 0;
        return;
    }
    const float id = 1.0f / d;
    for (int j = 0; j < QK; j++)
        l[j] = nearest_clamp(x[j] * id, lo, hi);
}

/* Weighted least-squares scale for fixed levels: argmin_d sum w (x - d l)^2. */
static bool sym_fit(const float *x, const float *w, const int *l, double *d)
{
    double sxl = 0.0, sll = 0.0;
    for (int j = 0; j < QK; j++) {
        sxl += (double)w[j] * x[j] * l[j];
        sll += (double)w[j] * l[j] * l[j];
    }
    if (!(sll > 0.0))
        return false;
    *d = sxl / sll;
    return isfinite(*d) != 0;
}

typedef struct sym_best {
    uint16_t dh;
    int l[QK];
    double err;
} sym_best;

/* Scores the stored scale f16(d) with nearest levels; keeps it if strictly better. */
static bool sym_try(const float *x, const float *w, double d, int lo, int hi, sym_best *best,
                    int *l)
{
    uint16_t dh = f16_saturating((float)d, NULL);
    float df = lb_f16_to_f32(dh);
    sym_assign(x, df, lo, hi, l);
    double err = sym_error(x, w, df, l);
    if (!(err < best->err))
        return false;
    best->err = err;
    best->dh = dh;
    memcpy(best->l, l, sizeof best->l);
    return true;
}

/* Levels l in [lo, hi], x ~ d * l. Starts from the RTN block in (dh, l) and replaces it by the
 * best of: the largest-magnitude element mapped to each target level t (dense over
 * [0.3 N, N + 0.5] on both signs, N the level range on that side, finer near N), each followed
 * by a weighted least-squares refit of d for the levels it produced; then alternating
 * refit / re-round on the winner. Every candidate is scored with its f16-rounded scale. */
static void sym_search(const float *x, const float *w, int lo, int hi, uint16_t *dh, int *l)
{
    sym_best best;
    best.dh = *dh;
    memcpy(best.l, l, sizeof best.l);
    best.err = sym_error(x, w, lb_f16_to_f32(*dh), l);

    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax == 0.0f || !isfinite(amax) || best.err == 0.0)
        goto done;

    int trial[QK];
    for (int side = 0; side < 2; side++) {
        double range = side == 0 ? (double)-lo : (double)hi;
        double sign = side == 0 ? -1.0 : 1.0;
        for (int k = 0; k <= SEARCH_STEPS; k++) {
            double f = (double)k / SEARCH_STEPS;
            double t = sign * ((range + 0.5) - 0.7 * range * f * f);
            double d0 = (double)max / t;
            sym_try(x, w, d0, lo, hi, &best, trial);
            /* refit d to the levels that d0 produced (before f16 rounding) */
            sym_assign(x, (float)d0, lo, hi, trial);
            double d1;
            if (sym_fit(x, w, trial, &d1))
                sym_try(x, w, d1, lo, hi, &best, trial);
        }
    }
    for (int iter = 0; iter < 4; iter++) {
        double d1;
        if (!sym_fit(x, w, best.l, &d1) || !sym_try(x, w, d1, lo, hi, &best, trial))
            break;
    }
done:
    *dh = best.dh;
    memcpy(l, best.l, sizeof best.l);
}

/* Weighted squared error of an affine block x ~ q * d + m, dequantized as
 * lb_dequantize_row_<t> does (product rounded, then sum rounded). */
static double affine_error(const float *x, const float *w, float d, float m, const int *q)
{
    double err = 0.0;
    for (int j = 0; j < QK; j++) {
        float y = (float)q[j] * d;
        y = y + m;
        double diff = (double)x[j] - (double)y;
        err += (double)w[j] * diff * diff;
    }
    return err;
}

static void affine_assign(const float *x, float d, float m, int nmax, int *q)
{
    if (!(d > 0.0f)) {
        for (int j = 0; j < QK; j++)
            q[j] = 0;
        return;
    }
    const float id = 1.0f / d;
    for (int j = 0; j < QK; j++) {
        float v = x[j] - m;
        q[j] = nearest_clamp(v * id, 0, nmax);
    }
}

/* Weighted least-squares (d, m) for fixed quants: argmin sum w (x - d q - m)^2. */
static bool affine_fit(const float *x, const float *w, const int *q, double *d, double *m)
{
    double sw = 0.0, sq = 0.0, sqq = 0.0, sx = 0.0, sxq = 0.0;
    for (int j = 0; j < QK; j++) {
        double wj = w[j];
        sw += wj;
        sq += wj * q[j];
        sqq += wj * q[j] * q[j];
        sx += wj * x[j];
        sxq += wj * x[j] * q[j];
    }
    double det = sw * sqq - sq * sq;
    if (!(det > 1e-12 * sw * sqq))
        return false;
    *d = (sw * sxq - sx * sq) / det;
    *m = (sqq * sx - sq * sxq) / det;
    return isfinite(*d) && isfinite(*m) && *d > 0.0;
}

typedef struct affine_best {
    uint16_t dh, mh;
    int q[QK];
    double err;
} affine_best;

static bool affine_try(const float *x, const float *w, double d, double m, int nmax,
                       affine_best *best, int *q)
{
    uint16_t dh = f16_saturating((float)d, NULL);
    uint16_t mh = f16_saturating((float)m, NULL);
    float df = lb_f16_to_f32(dh), mf = lb_f16_to_f32(mh);
    affine_assign(x, df, mf, nmax, q);
    double err = affine_error(x, w, df, mf, q);
    if (!(err < best->err))
        return false;
    best->err = err;
    best->dh = dh;
    best->mh = mh;
    memcpy(best->q, q, sizeof best->q);
    return true;
}

/* Quants q in [0, nmax], x ~ d * q + m. Starts from the RTN block and replaces it by the best
 * of: the range [min, max] mapped onto nmax + delta steps (delta over [-2, 1], as
 * make_qkx3_quants does over [-0.9, 0.9]), each followed by a weighted least-squares fit of
 * (d, m) to the quants it produced; then alternating refit / re-round on the winner. Every
 * candidate is scored with its f16-rounded d and m. */
static void affine_search(const float *x, const float *w, int nmax, uint16_t *dh, uint16_t *mh,
                          int *q)
{
    affine_best best;
    best.dh = *dh;
    best.mh = *mh;
    memcpy(best.q, q, sizeof best.q);
    best.err = affine_error(x, w, lb_f16_to_f32(*dh), lb_f16_to_f32(*mh), q);

    float min = x[0], max = x[0];
    for (int j = 1; j < QK; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    double range = (double)max - (double)min;
    if (!(range > 0.0) || !isfinite(range) || best.err == 0.0)
        goto done;

    int trial[QK];
    for (int k = 0; k <= 2 * SEARCH_STEPS; k++) {
        double delta = -2.0 + 3.0 * k / (2 * SEARCH_STEPS);
        double iscale = (nmax + delta) / range;
        for (int j = 0; j < QK; j++)
            trial[j] = nearest_clamp((float)(((double)x[j] - min) * iscale), 0, nmax);
        double d1, m1;
        if (affine_fit(x, w, trial, &d1, &m1))
            affine_try(x, w, d1, m1, nmax, &best, trial);
    }
    for (int iter = 0; iter < 4; iter++) {
        double d1, m1;
        if (!affine_fit(x, w, best.q, &d1, &m1) || !affine_try(x, w, d1, m1, nmax, &best, trial))
            break;
    }
done:
    *dh = best.dh;
    *mh = best.mh;
    memcpy(q, best.q, sizeof best.q);
}

/* ---------------------------------------------------------------------------------------- */
/* Quantize                                                                                  */

void lb_quantize_row_q8_0_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % QK == 0);
    lb_block_q8_0 *blocks = y;
    for (int64_t b = 0; b < n / QK; b++) {
        const float *xb = x + b * QK;
        int l[QK];
        uint16_t dh = rtn_q8_0_block(xb, l);
        if (importance)
            sym_search(xb, importance + b * QK, -127, 127, &dh, l);
        blocks[b].d = dh;
        for (int j = 0; j < QK; j++)
            blocks[b].qs[j] = (int8_t)l[j];
    }
}

/* Q4_0 and Q5_0 share everything but nmax and the packing. */
static void quantize_symmetric_block(const float *x, const float *w, int nmax, uint16_t *dh,
                                     uint8_t *q)
{
    int l[QK];
    *dh = rtn_symmetric_block(x, nmax, l);
    if (w)
        sym_search(x, w, -nmax, nmax - 1, dh, l);
    for (int j = 0; j < QK; j++) {
        assert(l[j] >= -nmax && l[j] < nmax);
        q[j] = (uint8_t)(l[j] + nmax);
    }
}

static void quantize_affine_block(const float *x, const float *w, int nmax, uint16_t *dh,
                                  uint16_t *mh, uint8_t *q)
{
    int l[QK];
    rtn_affine_block(x, nmax, l, dh, mh);
    if (w)
        affine_search(x, w, nmax, dh, mh, l);
    for (int j = 0; j < QK; j++) {
        assert(l[j] >= 0 && l[j] <= nmax);
        q[j] = (uint8_t)l[j];
    }
}

void lb_quantize_row_q4_0_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % QK == 0);
    lb_block_q4_0 *blocks = y;
    for (int64_t b = 0; b < n / QK; b++) {
        uint8_t q[QK];
        quantize_symmetric_block(x + b * QK, importance ? importance + b * QK : NULL, 8,
                                 &blocks[b].d, q);
        pack_nibbles(q, blocks[b].qs);
    }
}

void lb_quantize_row_q5_0_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % QK == 0);
    lb_block_q5_0 *blocks = y;
    for (int64_t b = 0; b < n / QK; b++) {
        uint8_t q[QK];
        quantize_symmetric_block(x + b * QK, importance ? importance + b * QK : NULL, 16,
                                 &blocks[b].d, q);
        pack_high_bits(q, blocks[b].qh);
        pack_nibbles(q, blocks[b].qs);
    }
}

void lb_quantize_row_q4_1_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % QK == 0);
    lb_block_q4_1 *blocks = y;
    for (int64_t b = 0; b < n / QK; b++) {
        uint8_t q[QK];
        quantize_affine_block(x + b * QK, importance ? importance + b * QK : NULL, 15,
                              &blocks[b].d, &blocks[b].m, q);
        pack_nibbles(q, blocks[b].qs);
    }
}

void lb_quantize_row_q5_1_ref(const float *x, void *y, int64_t n, const float *importance)
{
    assert(n >= 0 && n % QK == 0);
    lb_block_q5_1 *blocks = y;
    for (int64_t b = 0; b < n / QK; b++) {
        uint8_t q[QK];
        quantize_affine_block(x + b * QK, importance ? importance + b * QK : NULL, 31,
                              &blocks[b].d, &blocks[b].m, q);
        pack_high_bits(q, blocks[b].qh);
        pack_nibbles(q, blocks[b].qs);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dequantize (one block into 32 floats; the row functions and the f32 dots share these)     */

static void dequant_block_q8_0(const lb_block_q8_0 *b, float *y)
{
    const float d = lb_f16_to_f32(b->d);
    for (int j = 0; j < QK; j++)
        y[j] = (float)b->qs[j] * d;
}

static void dequant_block_q4_0(const lb_block_q4_0 *b, float *y)
{
    const float d = lb_f16_to_f32(b->d);
    int q[QK];
    unpack_q4(b->qs, q);
    for (int j = 0; j < QK; j++)
        y[j] = (float)(q[j] - 8) * d;
}

static void dequant_block_q4_1(const lb_block_q4_1 *b, float *y)
{
    const float d = lb_f16_to_f32(b->d);
    const float m = lb_f16_to_f32(b->m);
    int q[QK];
    unpack_q4(b->qs, q);
    for (int j = 0; j < QK; j++) {
        float v = (float)q[j] * d;
        y[j] = v + m;
    }
}

static void dequant_block_q5_0(const lb_block_q5_0 *b, float *y)
{
    const float d = lb_f16_to_f32(b->d);
    int q[QK];
    unpack_q5(b->qh, b->qs, q);
    for (int j = 0; j < QK; j++)
        y[j] = (float)(q[j] - 16) * d;
}

static void dequant_block_q5_1(const lb_block_q5_1 *b, float *y)
{
    const float d = lb_f16_to_f32(b->d);
    const float m = lb_f16_to_f32(b->m);
    int q[QK];
    unpack_q5(b->qh, b->qs, q);
    for (int j = 0; j < QK; j++) {
        float v = (float)q[j] * d;
        y[j] = v + m;
    }
}

void lb_dequantize_row_q8_0(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q8_0 *blocks = x;
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block_q8_0(&blocks[b], y + b * QK);
}

void lb_dequantize_row_q4_0(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_0 *blocks = x;
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block_q4_0(&blocks[b], y + b * QK);
}

void lb_dequantize_row_q4_1(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_1 *blocks = x;
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block_q4_1(&blocks[b], y + b * QK);
}

void lb_dequantize_row_q5_0(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_0 *blocks = x;
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block_q5_0(&blocks[b], y + b * QK);
}

void lb_dequantize_row_q5_1(const void *x, float *y, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_1 *blocks = x;
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block_q5_1(&blocks[b], y + b * QK);
}

/* ---------------------------------------------------------------------------------------- */
/* Block grids and levels (GPTQ rounds onto the stored scales; see quants_legacy.h)          */

/* The symmetric types dequantize to l * d with nothing added: offset -0.0f keeps that exact,
 * where +0.0f would turn a product of -0.0f into +0.0f. */
static void fill_grid(float d, float m, float *scale, float *offset)
{
    for (int j = 0; j < QK; j++) {
        scale[j] = d;
        offset[j] = m;
    }
}

void lb_block_grid_q8_0(const void *block, float *scale, float *offset)
{
    fill_grid(lb_f16_to_f32(((const lb_block_q8_0 *)block)->d), -0.0f, scale, offset);
}

void lb_block_grid_q4_0(const void *block, float *scale, float *offset)
{
    fill_grid(lb_f16_to_f32(((const lb_block_q4_0 *)block)->d), -0.0f, scale, offset);
}

void lb_block_grid_q5_0(const void *block, float *scale, float *offset)
{
    fill_grid(lb_f16_to_f32(((const lb_block_q5_0 *)block)->d), -0.0f, scale, offset);
}

void lb_block_grid_q4_1(const void *block, float *scale, float *offset)
{
    const lb_block_q4_1 *b = block;
    fill_grid(lb_f16_to_f32(b->d), lb_f16_to_f32(b->m), scale, offset);
}

void lb_block_grid_q5_1(const void *block, float *scale, float *offset)
{
    const lb_block_q5_1 *b = block;
    fill_grid(lb_f16_to_f32(b->d), lb_f16_to_f32(b->m), scale, offset);
}

/* Stored codes (0 .. 2^bits - 1) to levels, minus `bias` (8 / 16 for the _0 types). */
static void codes_to_levels(const int *codes, int bias, int8_t *q)
{
    for (int j = 0; j < QK; j++)
        q[j] = (int8_t)(codes[j] - bias);
}

static void levels_to_codes(const int8_t *q, int bias, int cmax, uint8_t *codes)
{
    (void)cmax; /* only asserted */
    for (int j = 0; j < QK; j++) {
        assert(q[j] + bias >= 0 && q[j] + bias <= cmax);
        codes[j] = (uint8_t)(q[j] + bias);
    }
}

void lb_block_get_levels_q8_0(const void *block, int8_t *q)
{
    memcpy(q, ((const lb_block_q8_0 *)block)->qs, QK);
}

void lb_block_set_levels_q8_0(void *block, const int8_t *q)
{
    lb_block_q8_0 *b = block;
    for (int j = 0; j < QK; j++) {
        assert(q[j] >= -127);
        b->qs[j] = q[j];
    }
}

void lb_block_get_levels_q4_0(const void *block, int8_t *q)
{
    int codes[QK];
    unpack_q4(((const lb_block_q4_0 *)block)->qs, codes);
    codes_to_levels(codes, 8, q);
}

void lb_block_set_levels_q4_0(void *block, const int8_t *q)
{
    uint8_t codes[QK];
    levels_to_codes(q, 8, 15, codes);
    pack_nibbles(codes, ((lb_block_q4_0 *)block)->qs);
}

void lb_block_get_levels_q4_1(const void *block, int8_t *q)
{
    int codes[QK];
    unpack_q4(((const lb_block_q4_1 *)block)->qs, codes);
    codes_to_levels(codes, 0, q);
}

void lb_block_set_levels_q4_1(void *block, const int8_t *q)
{
    uint8_t codes[QK];
    levels_to_codes(q, 0, 15, codes);
    pack_nibbles(codes, ((lb_block_q4_1 *)block)->qs);
}

void lb_block_get_levels_q5_0(const void *block, int8_t *q)
{
    const lb_block_q5_0 *b = block;
    int codes[QK];
    unpack_q5(b->qh, b->qs, codes);
    codes_to_levels(codes, 16, q);
}

void lb_block_set_levels_q5_0(void *block, const int8_t *q)
{
    lb_block_q5_0 *b = block;
    uint8_t codes[QK];
    levels_to_codes(q, 16, 31, codes);
    pack_high_bits(codes, b->qh);
    pack_nibbles(codes, b->qs);
}

void lb_block_get_levels_q5_1(const void *block, int8_t *q)
{
    const lb_block_q5_1 *b = block;
    int codes[QK];
    unpack_q5(b->qh, b->qs, codes);
    codes_to_levels(codes, 0, q);
}

void lb_block_set_levels_q5_1(void *block, const int8_t *q)
{
    lb_block_q5_1 *b = block;
    uint8_t codes[QK];
    levels_to_codes(q, 0, 31, codes);
    pack_high_bits(codes, b->qh);
    pack_nibbles(codes, b->qs);
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products with Q8_0 activations (float operation order as llama.cpp's generic C path)  */

/* Exact integer dot of 32 weight levels with 32 activation quants, and the activation sum. */
static int32_t int_dot(const int *q, int offset, const int8_t *a, int32_t *sum_a)
{
    int32_t dot = 0, sum = 0;
    for (int j = 0; j < QK; j++) {
        dot += (q[j] - offset) * a[j];
        sum += a[j];
    }
    if (sum_a)
        *sum_a = sum;
    return dot;
}

float lb_vec_dot_q8_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q8_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int q[QK];
        for (int j = 0; j < QK; j++)
            q[j] = wb[b].qs[j];
        int32_t sumi = int_dot(q, 0, ab[b].qs, NULL);
        float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += (float)sumi * scale;
    }
    return sum;
}

float lb_vec_dot_q4_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int q[QK];
        unpack_q4(wb[b].qs, q);
        int32_t sumi = int_dot(q, 8, ab[b].qs, NULL);
        float v = (float)sumi * lb_f16_to_f32(wb[b].d);
        v = v * lb_f16_to_f32(ab[b].d);
        sum += v;
    }
    return sum;
}

float lb_vec_dot_q5_0_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_0 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int q[QK];
        unpack_q5(wb[b].qh, wb[b].qs, q);
        int32_t sumi = int_dot(q, 16, ab[b].qs, NULL);
        float scale = lb_f16_to_f32(wb[b].d) * lb_f16_to_f32(ab[b].d);
        sum += scale * (float)sumi;
    }
    return sum;
}

/* sum_j (d q_j + m) (da a_j) = d da sum q a + m da sum a. */
static float affine_block_dot(float d, float m, const int *q, const lb_block_q8_0 *a)
{
    int32_t sum_a;
    int32_t sumi = int_dot(q, 0, a->qs, &sum_a);
    const float da = lb_f16_to_f32(a->d);
    float scaled = (d * da) * (float)sumi;
    float offset = m * (da * (float)sum_a);
    return scaled + offset;
}

float lb_vec_dot_q4_1_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int q[QK];
        unpack_q4(wb[b].qs, q);
        sum += affine_block_dot(lb_f16_to_f32(wb[b].d), lb_f16_to_f32(wb[b].m), q, &ab[b]);
    }
    return sum;
}

float lb_vec_dot_q5_1_q8_0_c(const void *w, const void *a_q8_0, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_1 *wb = w;
    const lb_block_q8_0 *ab = a_q8_0;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int q[QK];
        unpack_q5(wb[b].qh, wb[b].qs, q);
        sum += affine_block_dot(lb_f16_to_f32(wb[b].d), lb_f16_to_f32(wb[b].m), q, &ab[b]);
    }
    return sum;
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products with f32 activations                                                         */

static float block_dot_f32(const float *y, const float *a)
{
    float sum = 0.0f;
    for (int j = 0; j < QK; j++) {
        float p = y[j] * a[j];
        sum += p;
    }
    return sum;
}

float lb_vec_dot_q8_0_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q8_0 *wb = w;
    float sum = 0.0f, y[QK];
    for (int64_t b = 0; b < n / QK; b++) {
        dequant_block_q8_0(&wb[b], y);
        sum += block_dot_f32(y, a + b * QK);
    }
    return sum;
}

float lb_vec_dot_q4_0_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_0 *wb = w;
    float sum = 0.0f, y[QK];
    for (int64_t b = 0; b < n / QK; b++) {
        dequant_block_q4_0(&wb[b], y);
        sum += block_dot_f32(y, a + b * QK);
    }
    return sum;
}

float lb_vec_dot_q4_1_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q4_1 *wb = w;
    float sum = 0.0f, y[QK];
    for (int64_t b = 0; b < n / QK; b++) {
        dequant_block_q4_1(&wb[b], y);
        sum += block_dot_f32(y, a + b * QK);
    }
    return sum;
}

float lb_vec_dot_q5_0_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_0 *wb = w;
    float sum = 0.0f, y[QK];
    for (int64_t b = 0; b < n / QK; b++) {
        dequant_block_q5_0(&wb[b], y);
        sum += block_dot_f32(y, a + b * QK);
    }
    return sum;
}

float lb_vec_dot_q5_1_f32_c(const void *w, const float *a, int64_t n)
{
    assert(n >= 0 && n % QK == 0);
    const lb_block_q5_1 *wb = w;
    float sum = 0.0f, y[QK];
    for (int64_t b = 0; b < n / QK; b++) {
        dequant_block_q5_1(&wb[b], y);
        sum += block_dot_f32(y, a + b * QK);
    }
    return sum;
}
