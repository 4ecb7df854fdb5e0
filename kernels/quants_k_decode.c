/* K-quant super-blocks, decode side: the codes packed into and unpacked from the block
 * layouts, dequantize, per-block grids and levels, and the reference dots. */
#include "kernels/quants_k.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "common/half.h"
#include "kernels/quants_k_internal.h"

/* Byte identity with llama.cpp needs the same float operations in the same order: no fused
 * multiply-add (GCC in ISO C mode already contracts nothing; clang would). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK LB_QK_K

/* ---------------------------------------------------------------- packing codes */

/* Packs 2-bit codes L[256] (values 0..3) as Q2_K / Q3_K lay them out. */
void lb_qk_pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
        }
    }
}

/* Packs codes L (0..7, the level plus 4) into the hmask and qs of a Q3_K block. */
void lb_qk_q3_K_pack_codes(const int8_t *L, lb_block_q3_K *y)
{
    memset(y->hmask, 0, sizeof y->hmask);
    uint8_t Lu[QK];
    for (int j = 0; j < QK; ++j) {
        int v = L[j];
        if (v > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            v -= 4;
        }
        Lu[j] = (uint8_t)v;
    }
    lb_qk_pack_2bit(Lu, y->qs);
}

void lb_qk_q4_K_pack(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK; j += 64) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

void lb_qk_q5_K_pack(const uint8_t *L, uint8_t *qh, uint8_t *qs)
{
    memset(qh, 0, QK / 8);
    for (int n = 0; n < QK; n += 64) {
        const uint8_t m1 = (uint8_t)(1u << (n / 32)), m2 = (uint8_t)(2u << (n / 32));
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            qs[n / 2 + j] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

/* Packs codes L (0..63, the level plus 32) into the ql and qh of a Q6_K block. */
void lb_qk_q6_K_pack_codes(const int8_t *L, lb_block_q6_K *y)
{
    for (int j = 0; j < QK; j += 128) {
        uint8_t *ql = y->ql + j / 2;
        uint8_t *qh = y->qh + j / 4;
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
    }
}

/* ---------------------------------------------------------------- code unpacking */

void lb_qk_unpack_q2_K(const void *vb, qk_codes *c)
{
    const lb_block_q2_K *b = vb;
    for (int e = 0; e < QK; ++e) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32;
        c->q[e] = (int8_t)((b->qs[32 * h + l] >> (2 * s)) & 3);
    }
    for (int j = 0; j < 16; ++j) {
        c->sc[j] = b->scales[j] & 0xF;
        c->mn[j] = b->scales[j] >> 4;
    }
    c->sub = 16;
    c->has_min = true;
    c->d = lb_f16_to_f32(b->d);
    c->dmin = lb_f16_to_f32(b->dmin);
}

void lb_qk_unpack_q3_K(const void *vb, qk_codes *c)
{
    const lb_block_q3_K *b = vb;
    for (int e = 0; e < QK; ++e) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32;
        int lo = (b->qs[32 * h + l] >> (2 * s)) & 3;
        int hb = (b->hmask[e % 32] >> (e / 32)) & 1;
        c->q[e] = (int8_t)(lo - (hb ? 0 : 4));
    }
    for (int j = 0; j < 16; ++j) {
        c->sc[j] = qk_q3_K_scale(b->scales, j);
    }
    c->sub = 16;
    c->has_min = false;
    c->d = lb_f16_to_f32(b->d);
    c->dmin = 0.f;
}

/* Q4_K and Q5_K share the scales; qh is NULL for Q4_K. */
static void qk_unpack_k4(const uint8_t *qs, const uint8_t *qh, const uint8_t *scales,
                         uint16_t d, uint16_t dmin, qk_codes *c)
{
    for (int e = 0; e < QK; ++e) {
        int ch = e / 64, r = e % 64;
        int q = r < 32 ? qs[32 * ch + r] & 0xF : qs[32 * ch + r - 32] >> 4;
        if (qh) {
            q |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
        }
        c->q[e] = (int8_t)q;
    }
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        qk_get_scale_min_k4(j, scales, &s, &m);
        c->sc[j] = s;
        c->mn[j] = m;
    }
    c->sub = 32;
    c->has_min = true;
    c->d = lb_f16_to_f32(d);
    c->dmin = lb_f16_to_f32(dmin);
}

void lb_qk_unpack_q4_K(const void *vb, qk_codes *c)
{
    const lb_block_q4_K *b = vb;
    qk_unpack_k4(b->qs, NULL, b->scales, b->d, b->dmin, c);
}

void lb_qk_unpack_q5_K(const void *vb, qk_codes *c)
{
    const lb_block_q5_K *b = vb;
    qk_unpack_k4(b->qs, b->qh, b->scales, b->d, b->dmin, c);
}

void lb_qk_unpack_q6_K(const void *vb, qk_codes *c)
{
    const lb_block_q6_K *b = vb;
    for (int e = 0; e < QK; ++e) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32;
        uint8_t lq = b->ql[64 * h + l + 32 * (s & 1)];
        int lo = s < 2 ? lq & 0xF : lq >> 4;
        int hi = (b->qh[32 * h + l] >> (2 * s)) & 3;
        c->q[e] = (int8_t)((lo | (hi << 4)) - 32);
    }
    for (int j = 0; j < 16; ++j) {
        c->sc[j] = b->scales[j];
    }
    c->sub = 16;
    c->has_min = false;
    c->d = lb_f16_to_f32(b->d);
    c->dmin = 0.f;
}

/* y = (d * sc) * q - (dmin * mn) per sub-block: ggml's float operations, in its order. */
void lb_qk_dequant_block(const void *block, qk_unpack_fn unpack, float *y)
{
    qk_codes c;
    unpack(block, &c);
    for (int j = 0; j < QK / c.sub; ++j) {
        const float dl = c.d * c.sc[j];
        const float ml = c.has_min ? c.dmin * c.mn[j] : 0.f;
        for (int l = 0; l < c.sub; ++l) {
            const int i = c.sub * j + l;
            y[i] = c.has_min ? dl * c.q[i] - ml : dl * c.q[i];
        }
    }
}

/* ---------------------------------------------------------------- public: dequantize */

static void qk_dequantize_row(const void *vx, float *y, int64_t n, size_t block_bytes,
                              qk_unpack_fn unpack)
{
    QK_CHECK_N(n);
    const unsigned char *x = vx;
    for (int64_t i = 0; i < n / QK; ++i) {
        lb_qk_dequant_block(x + (size_t)i * block_bytes, unpack, y + i * QK);
    }
}

void lb_dequantize_row_q2_K(const void *x, float *y, int64_t n)
{
    qk_dequantize_row(x, y, n, sizeof(lb_block_q2_K), lb_qk_unpack_q2_K);
}

void lb_dequantize_row_q3_K(const void *x, float *y, int64_t n)
{
    qk_dequantize_row(x, y, n, sizeof(lb_block_q3_K), lb_qk_unpack_q3_K);
}

void lb_dequantize_row_q4_K(const void *x, float *y, int64_t n)
{
    qk_dequantize_row(x, y, n, sizeof(lb_block_q4_K), lb_qk_unpack_q4_K);
}

void lb_dequantize_row_q5_K(const void *x, float *y, int64_t n)
{
    qk_dequantize_row(x, y, n, sizeof(lb_block_q5_K), lb_qk_unpack_q5_K);
}

void lb_dequantize_row_q6_K(const void *x, float *y, int64_t n)
{
    qk_dequantize_row(x, y, n, sizeof(lb_block_q6_K), lb_qk_unpack_q6_K);
}

void lb_dequantize_row_q8_K(const void *vx, float *y, int64_t n)
{
    QK_CHECK_N(n);
    const lb_block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK; ++i) {
        for (int j = 0; j < QK; ++j) {
            y[i * QK + j] = x[i].d * x[i].qs[j];
        }
    }
}

/* ---------------------------------------------------------------- public: block grids */

/* scale * q + offset with offset = -(dmin * mn) is lb_qk_dequant_block's dl * q - ml exactly
 * (IEEE 754 defines a - b as a + (-b)); without mins, offset -0.0f adds nothing, even to
 * -0.0f (+0.0f would not). */
static void qk_block_grid(const void *block, qk_unpack_fn unpack, float *scale, float *offset)
{
    qk_codes c;
    unpack(block, &c);
    for (int j = 0; j < QK / c.sub; ++j) {
        const float dl = c.d * c.sc[j];
        const float off = c.has_min ? -(c.dmin * c.mn[j]) : -0.0f;
        for (int l = 0; l < c.sub; ++l) {
            scale[c.sub * j + l] = dl;
            offset[c.sub * j + l] = off;
        }
    }
}

static void qk_block_get_levels(const void *block, qk_unpack_fn unpack, int8_t *q)
{
    qk_codes c;
    unpack(block, &c);
    memcpy(q, c.q, QK);
}

/* Levels in [0, qmax] as the uint8_t codes the packers take. */
static void qk_levels_to_codes(const int8_t *q, int qmax, uint8_t *codes)
{
    (void)qmax; /* only asserted */
    for (int i = 0; i < QK; ++i) {
        assert(q[i] >= 0 && q[i] <= qmax);
        codes[i] = (uint8_t)q[i];
    }
}

void lb_block_grid_q2_K(const void *block, float *scale, float *offset)
{
    qk_block_grid(block, lb_qk_unpack_q2_K, scale, offset);
}

void lb_block_grid_q3_K(const void *block, float *scale, float *offset)
{
    qk_block_grid(block, lb_qk_unpack_q3_K, scale, offset);
}

void lb_block_grid_q4_K(const void *block, float *scale, float *offset)
{
    qk_block_grid(block, lb_qk_unpack_q4_K, scale, offset);
}

void lb_block_grid_q5_K(const void *block, float *scale, float *offset)
{
    qk_block_grid(block, lb_qk_unpack_q5_K, scale, offset);
}

void lb_block_grid_q6_K(const void *block, float *scale, float *offset)
{
    qk_block_grid(block, lb_qk_unpack_q6_K, scale, offset);
}

void lb_block_get_levels_q2_K(const void *block, int8_t *q)
{
    qk_block_get_levels(block, lb_qk_unpack_q2_K, q);
}

void lb_block_get_levels_q3_K(const void *block, int8_t *q)
{
    qk_block_get_levels(block, lb_qk_unpack_q3_K, q);
}

void lb_block_get_levels_q4_K(const void *block, int8_t *q)
{
    qk_block_get_levels(block, lb_qk_unpack_q4_K, q);
}

void lb_block_get_levels_q5_K(const void *block, int8_t *q)
{
    qk_block_get_levels(block, lb_qk_unpack_q5_K, q);
}

void lb_block_get_levels_q6_K(const void *block, int8_t *q)
{
    qk_block_get_levels(block, lb_qk_unpack_q6_K, q);
}

void lb_block_set_levels_q2_K(void *block, const int8_t *q)
{
    uint8_t codes[QK];
    qk_levels_to_codes(q, 3, codes);
    lb_qk_pack_2bit(codes, ((lb_block_q2_K *)block)->qs);
}

void lb_block_set_levels_q3_K(void *block, const int8_t *q)
{
    int8_t L[QK];
    for (int i = 0; i < QK; ++i) {
        assert(q[i] >= -4 && q[i] <= 3);
        L[i] = (int8_t)(q[i] + 4);
    }
    lb_qk_q3_K_pack_codes(L, block);
}

void lb_block_set_levels_q4_K(void *block, const int8_t *q)
{
    uint8_t codes[QK];
    qk_levels_to_codes(q, 15, codes);
    lb_qk_q4_K_pack(codes, ((lb_block_q4_K *)block)->qs);
}

void lb_block_set_levels_q5_K(void *block, const int8_t *q)
{
    lb_block_q5_K *b = block;
    uint8_t codes[QK];
    qk_levels_to_codes(q, 31, codes);
    lb_qk_q5_K_pack(codes, b->qh, b->qs);
}

void lb_block_set_levels_q6_K(void *block, const int8_t *q)
{
    int8_t L[QK];
    for (int i = 0; i < QK; ++i) {
        assert(q[i] >= -32 && q[i] <= 31);
        L[i] = (int8_t)(q[i] + 32);
    }
    lb_qk_q6_K_pack_codes(L, block);
}

/* ---------------------------------------------------------------- public: dots */

/* Per block: d * a_d * sum_j sc_j sum_{i in j} q_i a_i - dmin * a_d * sum_j mn_j bsums_j, the
 * integer sums exact (below 2^31 for every K-quant), blocks summed in float in order. */
static float qk_dot_q8_K(const void *vw, const void *va, int64_t n, size_t block_bytes,
                         qk_unpack_fn unpack)
{
    QK_CHECK_N(n);
    const unsigned char *w = vw;
    const lb_block_q8_K *a = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; ++i) {
        qk_codes c;
        unpack(w + (size_t)i * block_bytes, &c);
        int32_t isum = 0, summs = 0;
        for (int j = 0; j < QK / c.sub; ++j) {
            int32_t s = 0;
            for (int l = 0; l < c.sub; ++l) {
                s += (int32_t)c.q[c.sub * j + l] * a[i].qs[c.sub * j + l];
            }
            isum += c.sc[j] * s;
            if (c.has_min) {
                for (int b = 0; b < c.sub / 16; ++b) {
                    summs += c.mn[j] * a[i].bsums[(c.sub / 16) * j + b];
                }
            }
        }
        const float dall = a[i].d * c.d;
        const float dmin = a[i].d * c.dmin;
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* Per sub-block: (d sc) sum q a - (dmin mn) sum a, in float. */
static float qk_dot_f32(const void *vw, const float *a, int64_t n, size_t block_bytes,
                        qk_unpack_fn unpack)
{
    QK_CHECK_N(n);
    const unsigned char *w = vw;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; ++i, a += QK) {
        qk_codes c;
        unpack(w + (size_t)i * block_bytes, &c);
        for (int j = 0; j < QK / c.sub; ++j) {
            float sqa = 0, sa = 0;
            for (int l = 0; l < c.sub; ++l) {
                sqa += (float)c.q[c.sub * j + l] * a[c.sub * j + l];
                sa += a[c.sub * j + l];
            }
            sumf += (c.d * c.sc[j]) * sqa;
            if (c.has_min) {
                sumf -= (c.dmin * c.mn[j]) * sa;
            }
        }
    }
    return sumf;
}

float lb_vec_dot_q2_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    return qk_dot_q8_K(w, a_q8_K, n, sizeof(lb_block_q2_K), lb_qk_unpack_q2_K);
}

float lb_vec_dot_q3_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    return qk_dot_q8_K(w, a_q8_K, n, sizeof(lb_block_q3_K), lb_qk_unpack_q3_K);
}

float lb_vec_dot_q4_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    return qk_dot_q8_K(w, a_q8_K, n, sizeof(lb_block_q4_K), lb_qk_unpack_q4_K);
}

float lb_vec_dot_q5_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    return qk_dot_q8_K(w, a_q8_K, n, sizeof(lb_block_q5_K), lb_qk_unpack_q5_K);
}

float lb_vec_dot_q6_K_q8_K_c(const void *w, const void *a_q8_K, int64_t n)
{
    return qk_dot_q8_K(w, a_q8_K, n, sizeof(lb_block_q6_K), lb_qk_unpack_q6_K);
}

float lb_vec_dot_q2_K_f32_c(const void *w, const float *a, int64_t n)
{
    return qk_dot_f32(w, a, n, sizeof(lb_block_q2_K), lb_qk_unpack_q2_K);
}

float lb_vec_dot_q3_K_f32_c(const void *w, const float *a, int64_t n)
{
    return qk_dot_f32(w, a, n, sizeof(lb_block_q3_K), lb_qk_unpack_q3_K);
}

float lb_vec_dot_q4_K_f32_c(const void *w, const float *a, int64_t n)
{
    return qk_dot_f32(w, a, n, sizeof(lb_block_q4_K), lb_qk_unpack_q4_K);
}

float lb_vec_dot_q5_K_f32_c(const void *w, const float *a, int64_t n)
{
    return qk_dot_f32(w, a, n, sizeof(lb_block_q5_K), lb_qk_unpack_q5_K);
}

float lb_vec_dot_q6_K_f32_c(const void *w, const float *a, int64_t n)
{
    return qk_dot_f32(w, a, n, sizeof(lb_block_q6_K), lb_qk_unpack_q6_K);
}
