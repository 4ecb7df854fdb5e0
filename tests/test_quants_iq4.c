/* Tests of the IQ4_NL / IQ4_XS kernels: layouts and type table, llama.cpp's bytes for seeded
 * inputs (FNV-1a pins), decode by hand, round-trip error, edge rows, the dots. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half_internal.h"
#include "common/hash.h"
#include "common/rng.h"
#include "common/tensor.h"
#include "kernels/kernels.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "test_util.h"

#define SEED 0x1a4c5eedULL
#define MAX_N 12288

static lb_rng rng;
static float xbuf[MAX_N], ybuf[MAX_N], wbuf[MAX_N], abuf[MAX_N];
static uint8_t qbuf[MAX_N / 32 * 34 + 64], qbuf2[MAX_N / 32 * 34 + 64], abytes[MAX_N / 32 * 37];

/* ---------------------------------------------------------------- layouts and tables */

static void test_layouts(void)
{
    CHECK(sizeof(lb_block_iq4_nl) == 18);
    CHECK(offsetof(lb_block_iq4_nl, qs) == 2);
    CHECK(sizeof(lb_block_iq4_xs) == 136);
    CHECK(offsetof(lb_block_iq4_xs, scales_h) == 2);
    CHECK(offsetof(lb_block_iq4_xs, scales_l) == 4);
    CHECK(offsetof(lb_block_iq4_xs, qs) == 8);

    const lb_type_info *nl = lb_type_get(20), *xs = lb_type_get(23);
    CHECK(nl && nl->type == LB_TYPE_IQ4_NL && strcmp(nl->name, "IQ4_NL") == 0);
    CHECK(nl && nl->block_size == 32 && nl->block_bytes == 18);
    CHECK(xs && xs->type == LB_TYPE_IQ4_XS && strcmp(xs->name, "IQ4_XS") == 0);
    CHECK(xs && xs->block_size == 256 && xs->block_bytes == 136);
    CHECK(lb_type_bits_per_weight(LB_TYPE_IQ4_NL) == 4.5);
    CHECK(lb_type_bits_per_weight(LB_TYPE_IQ4_XS) == 4.25);
    lb_type t;
    CHECK(lb_type_from_name("iq4_nl", &t) == LB_OK && t == LB_TYPE_IQ4_NL);
    CHECK(lb_type_from_name("IQ4_XS", &t) == LB_OK && t == LB_TYPE_IQ4_XS);
    uint64_t bytes = 0;
    CHECK(lb_type_row_bytes(LB_TYPE_IQ4_NL, 576, &bytes) && bytes == 18 * 18);
    CHECK(!lb_type_row_bytes(LB_TYPE_IQ4_XS, 576, &bytes));

    const lb_kernel_type *k = lb_kernels_type(LB_TYPE_IQ4_NL);
    CHECK(k && k->vec_dot_type == LB_TYPE_Q8_0 && k->qmin == 0 && k->qmax == 15 && k->levels);
    k = lb_kernels_type(LB_TYPE_IQ4_XS);
    CHECK(k && k->vec_dot_type == LB_TYPE_Q8_K && k->qmin == 0 && k->qmax == 15 && k->levels);

    /* llama.cpp's kvalues_iq4nl, ascending; the float table equal */
    static const int8_t want[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};
    CHECK(memcmp(lb_iq4_values, want, sizeof want) == 0);
    for (int i = 0; i < 16; i++)
        CHECK(lb_iq4_levels[i] == (float)want[i] && (i == 0 || want[i] > want[i - 1]));
}

/* ---------------------------------------------------------------- llama.cpp's bytes */

/* The seeded inputs whose quantized bytes are pinned below: uniform values with outliers,
 * importance with zeros, and edge blocks (zero, constant, below GROUP_MAX_EPS, large). */
static void pinned_inputs(float *x, float *importance, int64_t n, uint64_t seed)
{
    lb_rng r;
    lb_rng_seed(&r, seed);
    const float scale = 0.05f;
    for (int64_t i = 0; i < n; i++) {
        float v = scale * lb_rng_uniform_pm1(&r);
        if (lb_rng_below(&r, 23) == 0)
            v *= 9.0f;
        x[i] = v;
        importance[i] = lb_rng_below(&r, 11) == 0 ? 0.0f : (float)lb_rng_unit(&r) * 4.0f;
    }
    /* edge blocks: zeros, a constant, tiny values (below GROUP_MAX_EPS), large values */
    for (int64_t i = 32; i < 64 && i < n; i++)
        x[i] = 0.0f;
    for (int64_t i = 96; i < 128 && i < n; i++)
        x[i] = -0.37f;
    for (int64_t i = 160; i < 192 && i < n; i++)
        x[i] *= 1e-20f;
    for (int64_t i = 256; i < 288 && i < n; i++)
        x[i] *= 2e3f;
}

/* FNV-1a 64 of llama.cpp's bytes for pinned_inputs, produced outside the project by a program
 * linking llama.cpp's libggml-base.so (snapshot of February 2025, built with its CMake defaults:
 * -O3, x86-64 baseline, no FMA) and this file's pinned_inputs (with lowbit's rng.c): it called
 * quantize_iq4_nl(x, out, rows, cols, qw) and quantize_iq4_xs(...) with qw = NULL and with
 * qw = the first `cols` importance values (per column, for every row, as an imatrix is), and
 * printed lb_fnv1a64(out). The same program compared
 * lowbit's and llama.cpp's bytes (and dequantized floats) on 200 further seeded shapes. */
typedef struct pinned_case {
    lb_type type;
    int64_t rows, cols;
    uint64_t seed;
    uint64_t hash_plain, hash_importance;
} pinned_case;

static const pinned_case pinned[] = {
    {LB_TYPE_IQ4_NL, 16, 576, 0x1a4c0de5ULL, 0xdafccdc387adfbceULL, 0x0c3341c6344b018eULL},
    {LB_TYPE_IQ4_XS, 8, 1536, 0x1a4c0de6ULL, 0xf2fba4b10cd1230aULL, 0xf95235857aebcea3ULL},
};

static void test_llama_cpp_bytes(void)
{
    for (size_t c = 0; c < sizeof pinned / sizeof pinned[0]; c++) {
        const pinned_case *p = &pinned[c];
        const lb_kernel_type *k = lb_kernels_type(p->type);
        const int64_t n = p->rows * p->cols;
        uint64_t row_bytes = 0;
        CHECK(n <= MAX_N && lb_type_row_bytes(p->type, p->cols, &row_bytes));
        pinned_inputs(xbuf, wbuf, n, p->seed);
        for (int imp = 0; imp < 2; imp++) {
            for (int64_t r = 0; r < p->rows; r++)
                k->quantize_row(xbuf + r * p->cols, qbuf + r * row_bytes, p->cols,
                                imp ? wbuf : NULL);
            uint64_t got = lb_fnv1a64(qbuf, (size_t)row_bytes * (size_t)p->rows);
            uint64_t want = imp ? p->hash_importance : p->hash_plain;
            printf("%s %lld x %lld%s: FNV-1a %#018llx (llama.cpp %#018llx)\n",
                   lb_type_get((uint32_t)p->type)->name, (long long)p->rows, (long long)p->cols,
                   imp ? " with importance" : "", (unsigned long long)got,
                   (unsigned long long)want);
            CHECK(got == want);
        }
    }
}

/* ---------------------------------------------------------------- decode by hand */

static void test_decode(void)
{
    /* IQ4_NL, d = 0.5: element j has code j (low nibbles), element 16 + j code 15 - j */
    lb_block_iq4_nl nl;
    nl.d = 0x3800;
    for (int j = 0; j < 16; j++)
        nl.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[256];
    lb_dequantize_row_iq4_nl(&nl, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == 0.5f * (float)lb_iq4_values[j]);
        CHECK(y[16 + j] == 0.5f * (float)lb_iq4_values[15 - j]);
    }

    /* IQ4_XS, d = 0.25: sub-block s has the 6-bit scale 8s + 3 (ls - 32 = 8s - 29), codes
     * (s + j) % 16 for element j of each half */
    lb_block_iq4_xs xs;
    memset(&xs, 0, sizeof xs);
    xs.d = 0x3400;
    for (int s = 0; s < 8; s++) {
        int c = 8 * s + 3;
        xs.scales_l[s / 2] = (uint8_t)(xs.scales_l[s / 2] | ((c & 15) << (4 * (s % 2))));
        xs.scales_h = (uint16_t)(xs.scales_h | ((c >> 4) << (2 * s)));
        CHECK(lb_iq4_xs_scale(&xs, s) == 8 * s - 29);
        for (int j = 0; j < 16; j++)
            xs.qs[16 * s + j] = (uint8_t)(((s + j) % 16) | (((s + 2 * j) % 16) << 4));
    }
    lb_dequantize_row_iq4_xs(&xs, y, 256);
    for (int s = 0; s < 8; s++) {
        const float dl = 0.25f * (float)(8 * s - 29);
        for (int j = 0; j < 16; j++) {
            CHECK(y[32 * s + j] == dl * (float)lb_iq4_values[(s + j) % 16]);
            CHECK(y[32 * s + 16 + j] == dl * (float)lb_iq4_values[(s + 2 * j) % 16]);
        }
    }
}

/* ---------------------------------------------------------------- quantize */

static double rel_rms(const float *x, const float *y, int64_t n)
{
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        sx += (double)x[i] * x[i];
    }
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

static int all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return 0;
    return 1;
}

/* Relative RMS error on Gaussian rows, against bounds about 1.1x the worst measured here
 * (IQ4_NL mean 0.0761 / worst 0.0771, IQ4_XS 0.0770 / 0.0783). */
static void test_gaussian_error(void)
{
    const lb_type types[2] = {LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS};
    const double bounds[2] = {0.085, 0.087};
    for (int ti = 0; ti < 2; ti++) {
        const lb_kernel_type *k = lb_kernels_type(types[ti]);
        double worst = 0, sum = 0;
        for (int rep = 0; rep < 20; rep++) {
            const int64_t n = 4096;
            for (int64_t i = 0; i < n; i++)
                xbuf[i] = test_rng_normal_f(&rng);
            k->quantize_row(xbuf, qbuf, n, NULL);
            k->dequantize_row(qbuf, ybuf, n);
            double e = rel_rms(xbuf, ybuf, n);
            sum += e;
            worst = e > worst ? e : worst;
            CHECK(all_finite(ybuf, n));
        }
        printf("%s: relative RMS error on Gaussian rows: mean %.4f, worst %.4f (bound %.3f)\n",
               lb_type_get((uint32_t)types[ti])->name, sum / 20, worst, bounds[ti]);
        if (!(worst < bounds[ti])) {
            fprintf(stderr, "relative RMS error above the bound (seed %#llx)\n",
                    (unsigned long long)SEED);
            test_failures++;
        }
    }
}

/* Zero, constant, tiny, huge and non-finite rows decode to finite values; a block whose
 * importance is zero everywhere gets the bytes of the importance-free path (where llama.cpp
 * divides 0 by 0). */
static void test_edge_rows(void)
{
    const lb_type types[2] = {LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS};
    const int64_t n = 512;
    for (int ti = 0; ti < 2; ti++) {
        const lb_kernel_type *k = lb_kernels_type(types[ti]);
        const char *name = lb_type_get((uint32_t)types[ti])->name;
        uint64_t row_bytes = 0;
        lb_type_row_bytes(types[ti], n, &row_bytes);

        memset(xbuf, 0, sizeof(float) * n);
        k->quantize_row(xbuf, qbuf, n, NULL);
        k->dequantize_row(qbuf, ybuf, n);
        int zero = 1;
        for (int64_t i = 0; i < n; i++)
            zero &= ybuf[i] == 0.0f;
        if (!zero) {
            fprintf(stderr, "%s: a zero row does not decode to zeros\n", name);
            test_failures++;
        }

        for (int64_t i = 0; i < n; i++)
            xbuf[i] = -1.25f;
        k->quantize_row(xbuf, qbuf, n, NULL);
        k->dequantize_row(qbuf, ybuf, n);
        if (!(rel_rms(xbuf, ybuf, n) < 0.02)) {
            fprintf(stderr, "%s: constant row error %g\n", name, rel_rms(xbuf, ybuf, n));
            test_failures++;
        }

        const float mags[3] = {1e30f, 1e9f, 1e-30f};
        for (int m = 0; m < 3; m++) {
            for (int64_t i = 0; i < n; i++) {
                xbuf[i] = mags[m] * test_rng_normal_f(&rng);
                wbuf[i] = (float)lb_rng_unit(&rng);
            }
            for (int imp = 0; imp < 2; imp++) {
                k->quantize_row(xbuf, qbuf, n, imp ? wbuf : NULL);
                k->dequantize_row(qbuf, ybuf, n);
                int ok = all_finite(ybuf, n);
                if (m == 2)
                    for (int64_t i = 0; i < n; i++)
                        ok &= fabsf(ybuf[i]) <= 1e-29f;
                if (!ok) {
                    fprintf(stderr, "%s: magnitude %g row%s: non-finite or grown output\n", name,
                            (double)mags[m], imp ? " with importance" : "");
                    test_failures++;
                }
            }
        }

        for (int64_t i = 0; i < n; i++) {
            xbuf[i] = test_rng_normal_f(&rng);
            if (i % 37 == 5)
                xbuf[i] = i % 2 ? NAN : (i % 3 ? INFINITY : -INFINITY);
        }
        k->quantize_row(xbuf, qbuf, n, NULL);
        k->dequantize_row(qbuf, ybuf, n);
        if (!all_finite(ybuf, n)) {
            fprintf(stderr, "%s: a row with NaN and Inf decodes to non-finite values\n", name);
            test_failures++;
        }

        /* importance zero on the first 32 weights only: those weights quantize as without
         * importance (IQ4_NL: the first block's bytes equal the NULL path's) */
        for (int64_t i = 0; i < n; i++) {
            xbuf[i] = test_rng_normal_f(&rng);
            wbuf[i] = i < 32 ? 0.0f : 1.0f + (float)lb_rng_unit(&rng);
        }
        k->quantize_row(xbuf, qbuf, n, wbuf);
        k->quantize_row(xbuf, qbuf2, n, NULL);
        k->dequantize_row(qbuf, ybuf, n);
        CHECK(all_finite(ybuf, n));
        if (types[ti] == LB_TYPE_IQ4_NL)
            CHECK(memcmp(qbuf, qbuf2, sizeof(lb_block_iq4_nl)) == 0);
        /* and importance changes the result elsewhere: it is used */
        CHECK(memcmp(qbuf, qbuf2, (size_t)row_bytes) != 0);
    }
}

/* ---------------------------------------------------------------- dots */

/* The C dots against the exact double dot of the dequantized operands. */
static void test_dots(void)
{
    const lb_type types[2] = {LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS};
    const int64_t lengths[3] = {256, 2816, 11008 - 11008 % 256};
    for (int ti = 0; ti < 2; ti++) {
        const lb_kernel_type *k = lb_kernels_type(types[ti]);
        const lb_kernel_type *act = lb_kernels_type(k->vec_dot_type);
        double worst = 0, worst_f32 = 0;
        for (int li = 0; li < 3; li++) {
            for (int rep = 0; rep < 5; rep++) {
                const int64_t n = lengths[li];
                for (int64_t i = 0; i < n; i++) {
                    xbuf[i] = test_rng_normal_f(&rng);
                    abuf[i] = test_rng_normal_f(&rng);
                }
                k->quantize_row(xbuf, qbuf, n, NULL);
                k->dequantize_row(qbuf, ybuf, n);
                act->quantize_row(abuf, abytes, n, NULL);
                static float ad[MAX_N];
                act->dequantize_row(abytes, ad, n);
                double exact = 0, s = 0, exact_f32 = 0, s_f32 = 0;
                for (int64_t i = 0; i < n; i++) {
                    exact += (double)ybuf[i] * ad[i];
                    s += fabs((double)ybuf[i] * ad[i]);
                    exact_f32 += (double)ybuf[i] * abuf[i];
                    s_f32 += fabs((double)ybuf[i] * abuf[i]);
                }
                double e = fabs((double)k->vec_dot(qbuf, abytes, n) - exact) / s;
                double e32 = fabs((double)k->vec_dot_f32(qbuf, abuf, n) - exact_f32) / s_f32;
                worst = e > worst ? e : worst;
                worst_f32 = e32 > worst_f32 ? e32 : worst_f32;
            }
        }
        printf("%s: dots against the exact dot: max |err| / sum|terms| = %.2g (quantized "
               "activations), %.2g (f32)\n", lb_type_get((uint32_t)types[ti])->name, worst,
               worst_f32);
        CHECK(worst < 1e-5 && worst_f32 < 1e-5);
    }
}

int main(void)
{
    lb_rng_seed(&rng, SEED);
    printf("quants_iq4: seed %#llx\n", (unsigned long long)SEED);
    test_layouts();
    test_llama_cpp_bytes();
    test_decode();
    test_gaussian_error();
    test_edge_rows();
    test_dots();
    return test_finish("quants_iq4");
}
