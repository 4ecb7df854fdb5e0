/* Tests of the K-quant kernels: layouts, round-trip error, edge rows, importance, dots. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/quants_k.h"
#include "test_util.h"

#define QK LB_QK_K
#define MAX_N 4096
#define SEED 0x5eed1234abcdULL

typedef void (*quantize_fn)(const float *x, void *y, int64_t n, const float *importance);
typedef void (*dequantize_fn)(const void *x, float *y, int64_t n);
typedef float (*dot_q8_fn)(const void *w, const void *a, int64_t n);
typedef float (*dot_f32_fn)(const void *w, const float *a, int64_t n);

typedef struct qk_type {
    const char *name;
    size_t block_bytes;
    quantize_fn quantize;
    dequantize_fn dequantize;
    dot_q8_fn dot_q8;
    dot_f32_fn dot_f32;
    double rel_rms_bound; /* bound on RMS(x - dequant) / RMS(x) for Gaussian rows */
} qk_type;

/* Bounds on the worst of 40 Gaussian rows (20 of 256, 20 of 4096), about 1.1x what llama.cpp's
 * reference search (reproduced byte for byte) measures here, mean / worst:
 * Q2_K 0.294 / 0.333, Q3_K 0.152 / 0.167, Q4_K 0.0720 / 0.0778, Q5_K 0.0360 / 0.0390,
 * Q6_K 0.0176 / 0.0193, Q8_K 0.0069 / 0.0093. */
static const qk_type types[] = {
    {"Q2_K", sizeof(lb_block_q2_K), lb_quantize_row_q2_K_ref, lb_dequantize_row_q2_K,
     lb_vec_dot_q2_K_q8_K_c, lb_vec_dot_q2_K_f32_c, 0.36},
    {"Q3_K", sizeof(lb_block_q3_K), lb_quantize_row_q3_K_ref, lb_dequantize_row_q3_K,
     lb_vec_dot_q3_K_q8_K_c, lb_vec_dot_q3_K_f32_c, 0.18},
    {"Q4_K", sizeof(lb_block_q4_K), lb_quantize_row_q4_K_ref, lb_dequantize_row_q4_K,
     lb_vec_dot_q4_K_q8_K_c, lb_vec_dot_q4_K_f32_c, 0.085},
    {"Q5_K", sizeof(lb_block_q5_K), lb_quantize_row_q5_K_ref, lb_dequantize_row_q5_K,
     lb_vec_dot_q5_K_q8_K_c, lb_vec_dot_q5_K_f32_c, 0.043},
    {"Q6_K", sizeof(lb_block_q6_K), lb_quantize_row_q6_K_ref, lb_dequantize_row_q6_K,
     lb_vec_dot_q6_K_q8_K_c, lb_vec_dot_q6_K_f32_c, 0.021},
    {"Q8_K", sizeof(lb_block_q8_K), lb_quantize_row_q8_K_ref, lb_dequantize_row_q8_K, NULL, NULL,
     0.011},
};
#define N_TYPES (sizeof types / sizeof types[0])

/* ---------------------------------------------------------------- helpers */

static lb_rng rng;

/* Buffers big enough for MAX_N weights of any type. */
static float xbuf[MAX_N], ybuf[MAX_N], wbuf[MAX_N], abuf[MAX_N];
static unsigned char qbuf[MAX_N / QK * 292], qbuf2[MAX_N / QK * 292], q8buf[MAX_N / QK * 292];

static int all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; ++i) {
        if (!isfinite(y[i])) {
            return 0;
        }
    }
    return 1;
}

static double rel_rms(const float *x, const float *y, int64_t n)
{
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; ++i) {
        se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        sx += (double)x[i] * x[i];
    }
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

/* Same formula and order as the library's selection, so "never worse" is exact. */
static double weighted_sse(const float *x, const float *w, const float *y)
{
    double s = 0;
    for (int i = 0; i < QK; ++i) {
        double e = (double)x[i] - (double)y[i];
        s += (double)w[i] * e * e;
    }
    return s;
}

static void round_trip(const qk_type *t, const float *x, float *y, int64_t n, const float *imp)
{
    memset(qbuf, 0xA5, sizeof qbuf);
    t->quantize(x, qbuf, n, imp);
    t->dequantize(qbuf, y, n);
}

/* ---------------------------------------------------------------- tests */

static void test_sizes(void)
{
    CHECK(sizeof(lb_block_q2_K) == 84);
    CHECK(sizeof(lb_block_q3_K) == 110);
    CHECK(sizeof(lb_block_q4_K) == 144);
    CHECK(sizeof(lb_block_q5_K) == 176);
    CHECK(sizeof(lb_block_q6_K) == 210);
    CHECK(sizeof(lb_block_q8_K) == 292);
    uint16_t probe = 0x0102;
    unsigned char first;
    memcpy(&first, &probe, 1);
    CHECK(first == 0x02); /* little-endian host */
}

static void test_gaussian_error(void)
{
    const int64_t lengths[2] = {256, 4096};
    for (size_t ti = 0; ti < N_TYPES; ++ti) {
        const qk_type *t = &types[ti];
        double worst = 0, sum = 0;
        for (int li = 0; li < 2; ++li) {
            for (int rep = 0; rep < 20; ++rep) {
                int64_t n = lengths[li];
                for (int64_t i = 0; i < n; ++i) {
                    xbuf[i] = test_rng_normal_f(&rng);
                }
                round_trip(t, xbuf, ybuf, n, NULL);
                double e = rel_rms(xbuf, ybuf, n);
                worst = e > worst ? e : worst;
                sum += e;
                CHECK(all_finite(ybuf, n));
            }
        }
        printf("%s: relative RMS error on Gaussian rows: mean %.4f, worst %.4f (bound %.3f)\n",
               t->name, sum / 40, worst, t->rel_rms_bound);
        if (!(worst < t->rel_rms_bound)) {
            fprintf(stderr, "%s: relative RMS error %.4f above %.3f (seed %#llx)\n", t->name, worst,
                    t->rel_rms_bound, (unsigned long long)SEED);
            test_failures++;
        }
    }
}

static void test_edge_rows(void)
{
    const int64_t n = 512;
    for (size_t ti = 0; ti < N_TYPES; ++ti) {
        const qk_type *t = &types[ti];
        const size_t bytes = (size_t)(n / QK) * t->block_bytes;

        /* all zero: exact zeros out, and every byte zero */
        memset(xbuf, 0, sizeof(float) * n);
        round_trip(t, xbuf, ybuf, n, NULL);
        int zero_out = 1, zero_bytes = 1;
        for (int64_t i = 0; i < n; ++i) {
            zero_out &= ybuf[i] == 0.0f;
        }
        for (size_t i = 0; i < bytes; ++i) {
            zero_bytes &= qbuf[i] == 0;
        }
        if (!zero_out || !zero_bytes) {
            fprintf(stderr, "%s: zero row: zero output %d, zero bytes %d\n", t->name, zero_out,
                    zero_bytes);
            test_failures++;
        }

        /* constant rows, both signs */
        for (int sign = -1; sign <= 1; sign += 2) {
            for (int64_t i = 0; i < n; ++i) {
                xbuf[i] = 0.37f * (float)sign;
            }
            round_trip(t, xbuf, ybuf, n, NULL);
            double e = rel_rms(xbuf, ybuf, n);
            if (!all_finite(ybuf, n) || !(e < 0.02)) {
                fprintf(stderr, "%s: constant %+.2f row: relative error %g\n", t->name,
                        0.37 * sign, e);
                test_failures++;
            }
        }

        /* huge and tiny magnitudes: never NaN or Inf */
        const float mags[2] = {1e30f, 1e-30f};
        for (int mi = 0; mi < 2; ++mi) {
            for (int64_t i = 0; i < n; ++i) {
                xbuf[i] = mags[mi] * test_rng_normal_f(&rng);
            }
            round_trip(t, xbuf, ybuf, n, NULL);
            int ok = all_finite(ybuf, n);
            /* tiny values may flush to zero, never grow */
            if (mi == 1) {
                for (int64_t i = 0; i < n; ++i) {
                    ok &= fabsf(ybuf[i]) <= 1e-29f;
                }
            }
            /* Q8_K has an f32 scale: it keeps its accuracy at any magnitude */
            if (ti == N_TYPES - 1) {
                ok &= rel_rms(xbuf, ybuf, n) < 0.01;
            }
            if (!ok) {
                fprintf(stderr, "%s: magnitude %g row: non-finite or wrong output\n", t->name,
                        (double)mags[mi]);
                test_failures++;
            }
        }

        /* one outlier among small Gaussians: finite, outlier kept within 15% */
        for (int64_t i = 0; i < n; ++i) {
            xbuf[i] = 0.01f * test_rng_normal_f(&rng);
        }
        xbuf[77] = 5.0f;
        xbuf[300] = -3.0f;
        round_trip(t, xbuf, ybuf, n, NULL);
        if (!all_finite(ybuf, n) || fabsf(ybuf[77] - 5.0f) > 0.75f ||
            fabsf(ybuf[300] + 3.0f) > 0.45f) {
            fprintf(stderr, "%s: outlier row: %g for 5, %g for -3\n", t->name, (double)ybuf[77],
                    (double)ybuf[300]);
            test_failures++;
        }

        /* n == 0 touches nothing */
        t->quantize(xbuf, qbuf, 0, NULL);
        t->dequantize(qbuf, ybuf, 0);
    }
}

static void test_importance(void)
{
    for (size_t ti = 0; ti + 1 < N_TYPES; ++ti) {
        const qk_type *t = &types[ti];
        int worse = 0, better = 0;
        double sum_ref = 0, sum_imp = 0;
        for (int blk = 0; blk < 500; ++blk) {
            const uint64_t block_seed = rng.state;
            const int kind = blk % 5;
            const float scale = (float)pow(10.0, lb_rng_unit(&rng) * 4 - 2);
            for (int i = 0; i < QK; ++i) {
                float v = test_rng_normal_f(&rng);
                if (kind == 1) {
                    v = v * v * v; /* heavy tails */
                } else if (kind == 2 && lb_rng_unit(&rng) < 0.02) {
                    v *= 15;
                } else if (kind == 3) {
                    v = fabsf(v) + 0.5f; /* all positive */
                }
                xbuf[i] = v * scale;
                double u = lb_rng_unit(&rng);
                wbuf[i] = kind == 4 ? (u < 0.5 ? 0.0f : (float)(u * 100)) : (float)(u * u * 10);
            }
            round_trip(t, xbuf, ybuf, QK, NULL);
            double e_ref = weighted_sse(xbuf, wbuf, ybuf);
            round_trip(t, xbuf, ybuf, QK, wbuf);
            double e_imp = weighted_sse(xbuf, wbuf, ybuf);
            CHECK(all_finite(ybuf, QK));
            sum_ref += e_ref;
            sum_imp += e_imp;
            if (e_imp > e_ref) {
                if (worse++ < 3) {
                    fprintf(stderr, "%s: block %d (state %#llx): weighted error %g > %g\n",
                            t->name, blk, (unsigned long long)block_seed, e_imp, e_ref);
                }
            } else if (e_imp < e_ref) {
                better++;
            }
        }
        printf("%s: importance path better on %d/500 blocks, worse on %d; total weighted error "
               "%.4g vs %.4g\n", t->name, better, worse, sum_imp, sum_ref);
        CHECK(worse == 0);
        CHECK(better > 0);
    }
}

static void test_dots(void)
{
    const int64_t n = MAX_N;
    for (int64_t i = 0; i < n; ++i) {
        abuf[i] = test_rng_normal_f(&rng);
    }
    lb_quantize_row_q8_K_ref(abuf, q8buf, n, NULL);
    float adeq[MAX_N];
    lb_dequantize_row_q8_K(q8buf, adeq, n);

    /* Q8_K bsums are the sums of qs per 16 */
    const lb_block_q8_K *a8 = (const lb_block_q8_K *)q8buf;
    int bsums_ok = 1;
    for (int64_t b = 0; b < n / QK; ++b) {
        for (int j = 0; j < QK / 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) {
                s += a8[b].qs[16 * j + l];
            }
            bsums_ok &= s == a8[b].bsums[j];
        }
    }
    CHECK(bsums_ok);

    for (size_t ti = 0; ti + 1 < N_TYPES; ++ti) {
        const qk_type *t = &types[ti];
        for (int rep = 0; rep < 4; ++rep) {
            for (int64_t i = 0; i < n; ++i) {
                /* rep 1: large mins */
                xbuf[i] = test_rng_normal_f(&rng) + (rep == 1 ? 0.8f : 0.0f);
            }
            t->quantize(xbuf, qbuf, n, NULL);
            t->dequantize(qbuf, ybuf, n);
            double ref_q8 = 0, mag_q8 = 0, ref_f32 = 0, mag_f32 = 0;
            for (int64_t i = 0; i < n; ++i) {
                ref_q8 += (double)ybuf[i] * adeq[i];
                mag_q8 += fabs((double)ybuf[i] * adeq[i]);
                ref_f32 += (double)ybuf[i] * abuf[i];
                mag_f32 += fabs((double)ybuf[i] * abuf[i]);
            }
            double got_q8 = t->dot_q8(qbuf, q8buf, n);
            double got_f32 = t->dot_f32(qbuf, abuf, n);
            if (!(fabs(got_q8 - ref_q8) <= 2e-6 * mag_q8) ||
                !(fabs(got_f32 - ref_f32) <= 2e-6 * mag_f32)) {
                fprintf(stderr, "%s: dot rep %d: q8 %.9g vs %.9g, f32 %.9g vs %.9g (seed %#llx)\n",
                        t->name, rep, got_q8, ref_q8, got_f32, ref_f32, (unsigned long long)SEED);
                test_failures++;
            }
            /* on one block as well */
            double got1 = t->dot_q8(qbuf, q8buf, QK);
            double ref1 = 0, mag1 = 0;
            for (int i = 0; i < QK; ++i) {
                ref1 += (double)ybuf[i] * adeq[i];
                mag1 += fabs((double)ybuf[i] * adeq[i]);
            }
            CHECK(fabs(got1 - ref1) <= 2e-6 * mag1);
        }
    }
}

/* Invariants derived by hand from llama.cpp's layouts and searches. */
static void test_layout_hints(void)
{
    /* Every 32-weight sub-block the same ramp: Q4_K / Q5_K sub-block scales and mins all equal,
     * and the maximum (63) since each sub-block is the largest. */
    for (int i = 0; i < QK; ++i) {
        xbuf[i] = (float)(i % 32) / 31.0f - 0.3f;
    }
    lb_quantize_row_q4_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q4_K *b4 = (const lb_block_q4_K *)qbuf;
    for (int j = 0; j < 4; ++j) {
        CHECK(b4->scales[j] == 0xFF && b4->scales[j + 4] == 0xFF); /* 63 plus high bits 3 */
        CHECK(b4->scales[j + 8] == 0xFF);
    }
    lb_quantize_row_q5_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q5_K *b5 = (const lb_block_q5_K *)qbuf;
    for (int j = 0; j < LB_K_SCALE_SIZE; ++j) {
        CHECK(b5->scales[j] == 0xFF);
    }
    /* ramp 0..31 has exact 5-bit codes 0..31: Q5_K dequantizes it to within f16 rounding */
    lb_dequantize_row_q5_K(qbuf, ybuf, QK);
    CHECK(rel_rms(xbuf, ybuf, QK) < 2e-3);

    /* Every 16-weight sub-block the same ramp: Q2_K, Q3_K, Q6_K scales all equal */
    for (int i = 0; i < QK; ++i) {
        xbuf[i] = (float)(i % 16) / 15.0f - 0.45f;
    }
    lb_quantize_row_q2_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q2_K *b2 = (const lb_block_q2_K *)qbuf;
    for (int j = 1; j < 16; ++j) {
        CHECK(b2->scales[j] == b2->scales[0]);
    }
    CHECK((b2->scales[0] & 0xF) == 15);
    lb_quantize_row_q3_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q3_K *b3 = (const lb_block_q3_K *)qbuf;
    for (int j = 0; j < 8; ++j) {
        CHECK(b3->scales[j] == b3->scales[0] && (b3->scales[j] >> 4) == (b3->scales[j] & 0xF));
    }
    for (int j = 9; j < 12; ++j) {
        CHECK(b3->scales[j] == b3->scales[8]);
    }
    lb_quantize_row_q6_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q6_K *b6 = (const lb_block_q6_K *)qbuf;
    for (int j = 0; j < 16; ++j) {
        CHECK(b6->scales[j] == b6->scales[0]);
    }
    CHECK(b6->scales[0] == -128 || b6->scales[0] == 127);

    /* Hand-built blocks decode per the documented formulas (f16 1.0 = 0x3C00, 0.5 = 0x3800). */
    lb_block_q4_K h4;
    memset(&h4, 0, sizeof h4);
    h4.d = 0x3C00;
    h4.dmin = 0x3800;
    h4.scales[0] = 2;           /* sub-block 0: scale 2 */
    h4.scales[4] = 3;           /* sub-block 0: min 3 */
    h4.scales[8] = 0x51;        /* sub-block 4: scale 1, min 5 */
    h4.scales[0] |= 1u << 6;    /* sub-block 4: scale += 16 */
    for (int l = 0; l < 32; ++l) {
        h4.qs[l] = (uint8_t)(l & 0xF);          /* sub-block 0 low nibbles */
        h4.qs[64 + l] = (uint8_t)(15 - (l & 0xF)); /* sub-block 4 low nibbles */
    }
    lb_dequantize_row_q4_K(&h4, ybuf, QK);
    int ok4 = 1;
    for (int l = 0; l < 32; ++l) {
        ok4 &= ybuf[l] == 2.0f * (float)(l & 0xF) - 1.5f;
        ok4 &= ybuf[128 + l] == 17.0f * (float)(15 - (l & 0xF)) - 2.5f;
        ok4 &= ybuf[32 + l] == 0.0f; /* sub-block 1: scale 0, min 0 */
    }
    CHECK(ok4);

    lb_block_q6_K h6;
    memset(&h6, 0, sizeof h6);
    h6.d = 0x3800;
    for (int j = 0; j < 16; ++j) {
        h6.scales[j] = (int8_t)(j - 8);
    }
    for (int e = 0; e < QK; ++e) {
        int q = (e * 7) % 64, h = e / 128, s = (e % 128) / 32, l = e % 32;
        uint8_t *lq = &h6.ql[64 * h + l + 32 * (s & 1)];
        *lq |= (uint8_t)(s < 2 ? (q & 0xF) : (q & 0xF) << 4);
        h6.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * s));
    }
    lb_dequantize_row_q6_K(&h6, ybuf, QK);
    int ok6 = 1;
    for (int e = 0; e < QK; ++e) {
        ok6 &= ybuf[e] == 0.5f * (float)(e / 16 - 8) * (float)((e * 7) % 64 - 32);
    }
    CHECK(ok6);

    lb_block_q3_K h3;
    memset(&h3, 0, sizeof h3);
    h3.d = 0x3C00;
    for (int j = 0; j < 16; ++j) {
        int sc = 32 + j; /* stored scale j + 32 -> effective j */
        if (j < 8) {
            h3.scales[j] |= (uint8_t)(sc & 0xF);
        } else {
            h3.scales[j - 8] |= (uint8_t)((sc & 0xF) << 4);
        }
        h3.scales[8 + j % 4] |= (uint8_t)((sc >> 4) << (2 * (j / 4)));
    }
    for (int e = 0; e < QK; ++e) {
        int q = e % 8; /* code 0..7 is value q - 4 */
        if (q >= 4) {
            h3.hmask[e % 32] |= (uint8_t)(1u << (e / 32));
        }
        h3.qs[32 * (e / 128) + e % 32] |= (uint8_t)((q & 3) << (2 * ((e % 128) / 32)));
    }
    lb_dequantize_row_q3_K(&h3, ybuf, QK);
    int ok3 = 1;
    for (int e = 0; e < QK; ++e) {
        ok3 &= ybuf[e] == (float)(e / 16) * (float)(e % 8 - 4);
    }
    CHECK(ok3);

    /* Q8_K of a ramp -128..127: the largest magnitude is -128, scale 128/127 */
    for (int i = 0; i < QK; ++i) {
        xbuf[i] = (float)(i - 128);
    }
    lb_quantize_row_q8_K_ref(xbuf, qbuf, QK, NULL);
    const lb_block_q8_K *b8 = (const lb_block_q8_K *)qbuf;
    CHECK(b8->qs[0] == -127 && b8->qs[255] == 126 && b8->qs[128] == 0);
    CHECK(fabsf(b8->d - 128.0f / 127.0f) < 1e-6f);

    /* quantizing twice gives the same bytes, with and without importance */
    for (int i = 0; i < 1024; ++i) {
        xbuf[i] = test_rng_normal_f(&rng);
        wbuf[i] = (float)lb_rng_unit(&rng);
    }
    for (size_t ti = 0; ti < N_TYPES; ++ti) {
        const qk_type *t = &types[ti];
        size_t bytes = 4 * t->block_bytes;
        memset(qbuf, 0, sizeof qbuf);
        memset(qbuf2, 0xFF, sizeof qbuf2);
        t->quantize(xbuf, qbuf, 1024, wbuf);
        t->quantize(xbuf, qbuf2, 1024, wbuf);
        CHECK(memcmp(qbuf, qbuf2, bytes) == 0);
    }
}

int main(void)
{
    lb_rng_seed(&rng, SEED);
    test_sizes();
    test_gaussian_error();
    test_edge_rows();
    test_importance();
    test_dots();
    test_layout_hints();
    if (test_failures) {
        fprintf(stderr, "test_quants_k: seed %#llx\n", (unsigned long long)SEED);
    }
    return test_finish("test_quants_k");
}
