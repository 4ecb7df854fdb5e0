/* Legacy block types Q8_0/Q4_0/Q4_1/Q5_0/Q5_1: layouts, llama.cpp bytes, error bounds, dots. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/half_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "test_util.h"

#define QK 32
#define MAX_N 4096
#define MAX_BLOCK_BYTES 34

typedef void (*quantize_fn)(const float *, void *, int64_t, const float *);
typedef void (*dequantize_fn)(const void *, float *, int64_t);
typedef float (*dot_q8_fn)(const void *, const void *, int64_t);
typedef float (*dot_f32_fn)(const void *, const float *, int64_t);

typedef struct qtype {
    const char *name;
    size_t block_bytes;
    int affine;       /* x = d q + m (m stored after d) instead of x = d (q - offset) */
    double rms_bound; /* bound on RMS(error) / RMS(x) for Gaussian rows, derived below */
    quantize_fn quantize;
    dequantize_fn dequantize;
    dot_q8_fn dot_q8;
    dot_f32_fn dot_f32;
} qtype;

/* Relative RMS bounds. Round to nearest on a grid of step d leaves an error roughly uniform on
 * [-d/2, d/2], RMS d / sqrt(12), and the step follows the block's extremes:
 *   Q8_0 d = amax / 127, Q4_0 d = amax / 8, Q5_0 d = amax / 16 (symmetric: amax <= 4 sigma
 *   for a block of 32 Gaussians except with probability ~2e-3),
 *   Q4_1 d = (max - min) / 15, Q5_1 d = (max - min) / 31 (range <= 8 sigma).
 * So RMS(err) / sigma <= 4 / (127 sqrt 12) = 0.0091, 4 / (8 sqrt 12) = 0.144,
 * 4 / (16 sqrt 12) = 0.072, 8 / (15 sqrt 12) = 0.154, 8 / (31 sqrt 12) = 0.0745; the bounds
 * below round these up by ~5%, which also covers the f16 rounding of d (2^-11 relative). */
static const qtype types[] = {
    {"q8_0", sizeof(lb_block_q8_0), 0, 0.0096, lb_quantize_row_q8_0_ref, lb_dequantize_row_q8_0,
     lb_vec_dot_q8_0_q8_0_c, lb_vec_dot_q8_0_f32_c},
    {"q4_0", sizeof(lb_block_q4_0), 0, 0.152, lb_quantize_row_q4_0_ref, lb_dequantize_row_q4_0,
     lb_vec_dot_q4_0_q8_0_c, lb_vec_dot_q4_0_f32_c},
    {"q4_1", sizeof(lb_block_q4_1), 1, 0.162, lb_quantize_row_q4_1_ref, lb_dequantize_row_q4_1,
     lb_vec_dot_q4_1_q8_0_c, lb_vec_dot_q4_1_f32_c},
    {"q5_0", sizeof(lb_block_q5_0), 0, 0.076, lb_quantize_row_q5_0_ref, lb_dequantize_row_q5_0,
     lb_vec_dot_q5_0_q8_0_c, lb_vec_dot_q5_0_f32_c},
    {"q5_1", sizeof(lb_block_q5_1), 1, 0.079, lb_quantize_row_q5_1_ref, lb_dequantize_row_q5_1,
     lb_vec_dot_q5_1_q8_0_c, lb_vec_dot_q5_1_f32_c},
};
#define N_TYPES (sizeof types / sizeof types[0])

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static int all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */

static void test_sizes(void)
{
    CHECK(sizeof(lb_block_q8_0) == 34);
    CHECK(sizeof(lb_block_q4_0) == 18);
    CHECK(sizeof(lb_block_q4_1) == 20);
    CHECK(sizeof(lb_block_q5_0) == 22);
    CHECK(sizeof(lb_block_q5_1) == 24);
    /* every member where ggml-common.h puts it */
    CHECK(offsetof(lb_block_q4_1, m) == 2 && offsetof(lb_block_q4_1, qs) == 4);
    CHECK(offsetof(lb_block_q5_0, qh) == 2 && offsetof(lb_block_q5_0, qs) == 6);
    CHECK(offsetof(lb_block_q5_1, m) == 2 && offsetof(lb_block_q5_1, qh) == 4);
    CHECK(offsetof(lb_block_q5_1, qs) == 8 && offsetof(lb_block_q8_0, qs) == 2);
}

/* ---------------------------------------------------------------------------------------- */
/* Byte identity with llama.cpp's quantize_row_<t>_ref on inputs worked out by hand.         */

static void check_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n)
{
    if (memcmp(got, want, n) == 0)
        return;
    fprintf(stderr, "%s: bytes differ\n  got: ", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", got[i]);
    fprintf(stderr, "\n want: ");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", want[i]);
    fprintf(stderr, "\n");
    CHECK(0);
}

static void test_llama_bytes(void)
{
    float ramp[QK];
    for (int j = 0; j < QK; j++)
        ramp[j] = (float)(j - 16);
    uint8_t got[2 * MAX_BLOCK_BYTES];

    /* Q8_0, ramp -16..15: amax 16, d = 16/127 = 2^-3 + 2^-10 + 2^-17 + 2^-24 in f32 (the next
     * term, 2^-31, rounds away), 1/d rounds to exactly 127/16 = 7.9375, so q = roundf(127 x / 16)
     * with the ties -63.5 -> -64 and 63.5 -> 64 (half away from zero). f16(d) = 0x3008
     * (0.125 + 8 * 2^-13 = 0.12598; the ninth bit is 0.06 of an ulp). */
    {
        uint8_t want[34] = {0x08, 0x30};
        for (int j = 0; j < QK; j++) {
            int num = (j - 16) * 127; /* q = num / 16 rounded half away from zero */
            int q = num >= 0 ? (num + 8) / 16 : -((-num + 8) / 16);
            want[2 + j] = (uint8_t)(int8_t)q;
        }
        CHECK(want[2 + 8] == (uint8_t)-64 && want[2 + 24] == 64 && want[2] == (uint8_t)-127);
        lb_quantize_row_q8_0_ref(ramp, got, QK, NULL);
        check_bytes("q8_0 ramp", got, want, 34);
    }
    /* Q8_0, x0 = 127 and x_j = k + 0.5 for k = -16..14: d = 1 (f16 0x3c00), id = 1, roundf
     * sends each half away from zero (k + 1 for k >= 0, k for k < 0; llama.cpp's roundf, not
     * numpy's half-to-even). */
    {
        float x[QK];
        uint8_t want[34] = {0x00, 0x3c, 127};
        x[0] = 127.0f;
        for (int j = 1; j < QK; j++) {
            int k = j - 17;
            x[j] = (float)k + 0.5f;
            want[2 + j] = (uint8_t)(int8_t)(k >= 0 ? k + 1 : k);
        }
        lb_quantize_row_q8_0_ref(x, got, QK, NULL);
        check_bytes("q8_0 halves", got, want, 34);
    }
    /* Q4_0, ramp: max = -16 (first of largest magnitude), d = -16 / -8 = 2 (0x4000), id = 0.5,
     * q = trunc(x / 2 + 8.5) = (j + 1) / 2 clamped to 15: the halves round up (-7.5 -> -7). */
    {
        static const uint8_t want[18] = {0x00, 0x40, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3,
                                         0xb3, 0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7,
                                         0xf7, 0xf8};
        lb_quantize_row_q4_0_ref(ramp, got, QK, NULL);
        check_bytes("q4_0 ramp", got, want, 18);
    }
    /* Q4_0, where fusing matters: x0 = -1.6f = -13421773 * 2^-23 is max, d = 13421773 * 2^-26
     * = 0.2f (f16 0x3266), 1/d = 4.99999993 rounds to 5 exactly. x1 = -15099495 * 2^-24
     * (0xbf666667, -0.90000004): x1 * 5 + 8.5 = 3.99999982 exactly, which fma rounds to
     * 4 - 2^-22 (trunc 3, gguf-py's answer) while an unfused multiply first rounds x1 * 5 to
     * -4.5 (trunc 4). x0: -8.0000000596 + 8.5 -> 0; zeros: trunc(8.5) = 8. */
    {
        float x[QK] = {-1.6f, float_of(0xbf666667u)};
        uint8_t want[18] = {0x66, 0x32, 0x80, 0x83};
        for (int k = 2; k < 16; k++)
            want[2 + k] = 0x88;
        lb_quantize_row_q4_0_ref(x, got, QK, NULL);
        check_bytes("q4_0 fused rounding", got, want, 18);
    }
    /* Q4_1: x_j = -8 + j for j < 16, x_16+k = -7.5 + k for k < 15, x_31 = 7: min -8, max 7,
     * d = 15/15 = 1 (0x3c00), m = -8 (0xc800), q = trunc(x + 8 + 0.5): j for the integers,
     * k + 1 for the halves, 15 for x_31. */
    {
        float x[QK];
        for (int j = 0; j < 16; j++)
            x[j] = (float)(j - 8);
        for (int k = 0; k < 15; k++)
            x[16 + k] = (float)k - 7.5f;
        x[31] = 7.0f;
        static const uint8_t want[20] = {0x00, 0x3c, 0x00, 0xc8, 0x10, 0x21, 0x32, 0x43, 0x54,
                                         0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed,
                                         0xfe, 0xff};
        lb_quantize_row_q4_1_ref(x, got, QK, NULL);
        check_bytes("q4_1 halves", got, want, 20);
    }
    /* Q5_0, two blocks. Ramp: max = -16, d = 1 (0x3c00), q = trunc(x + 16.5) = j, so the
     * fifth bit is set for j >= 16 (qh = 00 00 ff ff) and qs[k] = k | k << 4.
     * Halves: x_0 = -16, x_j = j - 15.5: q = trunc(j + 1) = j + 1, 31 at most; fifth bits for
     * j >= 15 (qh word 0xffff8000 = 00 80 ff ff). */
    {
        float x[2 * QK];
        memcpy(x, ramp, sizeof ramp);
        x[QK] = -16.0f;
        for (int j = 1; j < QK; j++)
            x[QK + j] = (float)j - 15.5f;
        uint8_t want[44] = {0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};
        for (int k = 0; k < 16; k++)
            want[6 + k] = (uint8_t)(k | (k << 4));
        static const uint8_t second[22] = {0x00, 0x3c, 0x00, 0x80, 0xff, 0xff, 0x10, 0x22,
                                           0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                           0xbb, 0xcc, 0xdd, 0xee, 0xff, 0xf0};
        memcpy(want + 22, second, 22);
        lb_quantize_row_q5_0_ref(x, got, 2 * QK, NULL);
        check_bytes("q5_0 ramp+halves", got, want, 44);
    }
    /* Q5_1 ramp: min -16, max 15, d = 31/31 = 1 (0x3c00), m = -16 (0xcc00), q = trunc(j + 0.5)
     * = j: qh 00 00 ff ff, qs[k] = k | k << 4. */
    {
        uint8_t want[24] = {0x00, 0x3c, 0x00, 0xcc, 0x00, 0x00, 0xff, 0xff};
        for (int k = 0; k < 16; k++)
            want[8 + k] = (uint8_t)(k | (k << 4));
        lb_quantize_row_q5_1_ref(ramp, got, QK, NULL);
        check_bytes("q5_1 ramp", got, want, 24);
    }
    /* Dequantization of those bytes by the published formulas. */
    {
        float y[QK];
        lb_quantize_row_q5_0_ref(ramp, got, QK, NULL);
        lb_dequantize_row_q5_0(got, y, QK);
        CHECK(memcmp(y, ramp, sizeof y) == 0);
        lb_quantize_row_q5_1_ref(ramp, got, QK, NULL);
        lb_dequantize_row_q5_1(got, y, QK);
        CHECK(memcmp(y, ramp, sizeof y) == 0);
        lb_quantize_row_q4_0_ref(ramp, got, QK, NULL);
        lb_dequantize_row_q4_0(got, y, QK);
        for (int j = 0; j < QK; j++)
            CHECK(y[j] == 2.0f * (float)(j == 31 ? 7 : ((j + 1) / 2 - 8)));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Round trips                                                                               */

/* Largest |x - y| allowed for one element of an RTN block: the step d (Q4_0/Q5_0 clamp the
 * largest element of the sign opposite to max at nmax - 1, an error up to d) or d / 2, plus
 * nmax times the f16 rounding of d, plus the f16 rounding of m. */
static double element_bound(const qtype *t, const float *x)
{
    double amax = 0.0, min = x[0], max = x[0];
    for (int j = 0; j < QK; j++) {
        amax = fmax(amax, fabs(x[j]));
        min = fmin(min, x[j]);
        max = fmax(max, x[j]);
    }
    double d, levels, m_err = 0.0;
    if (strcmp(t->name, "q8_0") == 0) {
        d = amax / 127 * 0.5;
        levels = 127;
    } else if (!t->affine) {
        levels = strcmp(t->name, "q4_0") == 0 ? 8 : 16;
        d = amax / levels;
    } else {
        levels = strcmp(t->name, "q4_1") == 0 ? 15 : 31;
        d = (max - min) / levels * 0.5;
        m_err = fabs(min) * 0x1p-11;
    }
    /* f16(d) is within 2^-11 relative or 2^-25 absolute (subnormal) of d */
    return d * (1.0 + 1e-5) + (amax + (max - min)) * 0x1p-11 + levels * 0x1p-25 + m_err + 1e-30;
}

static void test_gaussian_rows(void)
{
    static const int64_t lengths[] = {32, 96, 4096};
    static float x[MAX_N], y[MAX_N];
    static uint8_t q[MAX_N / QK * MAX_BLOCK_BYTES];
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        int64_t n = lengths[l];
        uint64_t seed = 1000 + (uint64_t)n;
        lb_rng rng;
        lb_rng_seed(&rng, seed);
        for (int64_t i = 0; i < n; i++)
            x[i] = test_rng_normal_f(&rng) * 0.02f;
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const qtype *t = &types[ti];
            t->quantize(x, q, n, NULL);
            t->dequantize(q, y, n);
            double se = 0.0, sx = 0.0;
            int over = 0;
            for (int64_t i = 0; i < n; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                sx += (double)x[i] * x[i];
                if (fabs((double)x[i] - y[i]) > element_bound(t, x + i / QK * QK))
                    over++;
            }
            double rel = sqrt(se / sx);
            if (!(rel <= t->rms_bound) || over || !all_finite(y, n))
                fprintf(stderr, "%s n=%lld seed=%llu: relative RMS error %.5f (bound %.4f), "
                        "%d elements over the per-element bound\n", t->name, (long long)n,
                        (unsigned long long)seed, rel, t->rms_bound, over);
            CHECK(rel <= t->rms_bound);
            CHECK(over == 0);
            CHECK(all_finite(y, n));
        }
    }
}

static void test_edge_rows(void)
{
    float x[4 * QK], y[4 * QK];
    uint8_t q[4 * MAX_BLOCK_BYTES];
    const int64_t n = 4 * QK;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const qtype *t = &types[ti];
        /* all zero: exactly zero back, zero bytes */
        memset(x, 0, sizeof x);
        memset(q, 0xa5, sizeof q);
        t->quantize(x, q, n, NULL);
        t->dequantize(q, y, n);
        for (int64_t i = 0; i < n; i++)
            CHECK(y[i] == 0.0f);
        /* constants: reproduced up to the f16 rounding of d or m */
        static const float constants[] = {0.7f, -3.0f, 1e-3f, 40000.0f};
        for (size_t c = 0; c < 4; c++) {
            for (int64_t i = 0; i < n; i++)
                x[i] = constants[c];
            t->quantize(x, q, n, NULL);
            t->dequantize(q, y, n);
            for (int64_t i = 0; i < n; i++)
                CHECK(fabs((double)y[i] - x[i]) <= fabs((double)x[i]) * 0x1p-11 + 127 * 0x1p-25);
        }
        /* huge and tiny magnitudes, mixed signs: finite output, no NaN */
        static const float magnitudes[] = {1e30f, 1e-30f, 3e38f, 1e-40f, 65504.0f * 200};
        for (size_t c = 0; c < 5; c++) {
            lb_rng rng;
            lb_rng_seed(&rng, 7 + c);
            for (int64_t i = 0; i < n; i++)
                x[i] = magnitudes[c] * lb_rng_uniform_pm1(&rng);
            x[5] = magnitudes[c];
            x[QK + 3] = -magnitudes[c];
            t->quantize(x, q, n, NULL);
            t->dequantize(q, y, n);
            if (!all_finite(y, n))
                fprintf(stderr, "%s: non-finite output for magnitude %g (seed %zu)\n", t->name,
                        (double)magnitudes[c], 7 + c);
            CHECK(all_finite(y, n));
            if (magnitudes[c] < 1e-20f) /* below f16's range: the scale flushes to zero */
                for (int64_t i = 0; i < n; i++)
                    CHECK(fabsf(y[i]) <= fabsf(x[i]) * 2.0f);
        }
        /* one outlier in a Gaussian row: finite, and the outlier itself within one step */
        lb_rng rng;
        lb_rng_seed(&rng, 99);
        for (int64_t i = 0; i < n; i++)
            x[i] = test_rng_normal_f(&rng);
        x[QK + 7] = 100.0f;
        t->quantize(x, q, n, NULL);
        t->dequantize(q, y, n);
        CHECK(all_finite(y, n));
        CHECK(fabs((double)y[QK + 7] - 100.0) <= element_bound(t, x + QK));
        /* importance path on the same edge rows stays finite too */
        float w[4 * QK];
        for (int64_t i = 0; i < n; i++)
            w[i] = 1.0f;
        x[0] = 1e30f;
        t->quantize(x, q, n, w);
        t->dequantize(q, y, n);
        CHECK(all_finite(y, n));
        memset(x, 0, sizeof x);
        t->quantize(x, q, n, w);
        t->dequantize(q, y, n);
        for (int64_t i = 0; i < n; i++)
            CHECK(y[i] == 0.0f);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Importance-weighted search never loses to RTN                                             */

static double weighted_error(const float *x, const float *y, const float *w)
{
    double err = 0.0;
    for (int j = 0; j < QK; j++) {
        double diff = (double)x[j] - (double)y[j];
        err += (double)w[j] * diff * diff;
    }
    return err;
}

static void test_importance(void)
{
    const int n_blocks = 2000;
    const uint64_t seed = 20240611;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const qtype *t = &types[ti];
        for (int uniform = 0; uniform < 2; uniform++) {
            lb_rng rng;
            lb_rng_seed(&rng, seed + ti);
            double total_rtn = 0.0, total_imp = 0.0;
            int worse = 0, better = 0;
            for (int b = 0; b < n_blocks; b++) {
                float x[QK], w[QK], y_rtn[QK], y_imp[QK];
                uint8_t q_rtn[MAX_BLOCK_BYTES], q_imp[MAX_BLOCK_BYTES];
                float scale = (float)exp(lb_rng_unit(&rng) * 8.0 - 6.0);
                float shift = (b % 3 == 0) ? test_rng_normal_f(&rng) * scale : 0.0f;
                for (int j = 0; j < QK; j++) {
                    x[j] = test_rng_normal_f(&rng) * scale + shift;
                    double u = lb_rng_unit(&rng);
                    w[j] = uniform ? 1.0f : (b % 5 == 0 && u < 0.2) ? 0.0f : (float)(u * u * u * 10.0);
                }
                t->quantize(x, q_rtn, QK, NULL);
                t->quantize(x, q_imp, QK, w);
                t->dequantize(q_rtn, y_rtn, QK);
                t->dequantize(q_imp, y_imp, QK);
                double e_rtn = weighted_error(x, y_rtn, w);
                double e_imp = weighted_error(x, y_imp, w);
                if (!(e_imp <= e_rtn)) {
                    if (!worse)
                        fprintf(stderr, "%s %s importance: block %d (seed %llu) error %.9g > "
                                "RTN %.9g\n", t->name, uniform ? "uniform" : "random", b,
                                (unsigned long long)(seed + ti), e_imp, e_rtn);
                    worse++;
                }
                better += e_imp < e_rtn;
                total_rtn += e_rtn / (scale * scale);
                total_imp += e_imp / (scale * scale);
            }
            printf("%s %s importance: weighted error %.4f of RTN's, better on %d/%d blocks\n",
                   t->name, uniform ? "uniform" : "random", total_imp / total_rtn, better,
                   n_blocks);
            CHECK(worse == 0);
            /* the search must actually find something on most blocks */
            CHECK(total_imp < 0.97 * total_rtn);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products                                                                              */

static void test_dots(void)
{
    static float w[MAX_N], a[MAX_N], wd[MAX_N], ad[MAX_N];
    static uint8_t wq[MAX_N / QK * MAX_BLOCK_BYTES];
    static lb_block_q8_0 aq[MAX_N / QK];
    static const int64_t lengths[] = {32, 96, 4096};
    for (size_t l = 0; l < 3; l++) {
        const int64_t n = lengths[l], nb = n / QK;
        const uint64_t seed = 555 + (uint64_t)n;
        lb_rng rng;
        lb_rng_seed(&rng, seed);
        for (int64_t i = 0; i < n; i++) {
            w[i] = test_rng_normal_f(&rng) * 0.05f + (i % 64 < 32 ? 0.01f : 0.0f);
            a[i] = test_rng_normal_f(&rng) * 3.0f;
        }
        lb_quantize_row_q8_0_ref(a, aq, n, NULL);
        lb_dequantize_row_q8_0(aq, ad, n);
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const qtype *t = &types[ti];
            t->quantize(w, wq, n, NULL);
            t->dequantize(wq, wd, n);
            double exact_q = 0.0, mag_q = 0.0, exact_f = 0.0, mag_f = 0.0;
            for (int64_t i = 0; i < n; i++) {
                exact_q += (double)wd[i] * ad[i];
                exact_f += (double)wd[i] * a[i];
                double m = 0.0;
                if (t->affine)
                    m = fabs(lb_f16_to_f32(read_u16(wq + (size_t)(i / QK) * t->block_bytes + 2)));
                mag_q += (fabs(wd[i]) + m) * fabs(ad[i]);
                mag_f += fabs((double)wd[i] * a[i]);
            }
            /* f32 rounding error bounds: q8_0 path: per block the scale product, the scaling,
             * the min term and one add, then nb adds; f32 path: 32 products and sums per
             * block, then nb adds (gamma_k = k u, u = 2^-24, versus a double reference built
             * from the rounded dequantized values). */
            double tol_q = (double)(nb + 8) * 0x1p-24 * mag_q + 1e-30;
            double tol_f = (double)(QK + nb + 2) * 0x1p-24 * mag_f + 1e-30;
            double got_q = t->dot_q8(wq, aq, n), got_f = t->dot_f32(wq, a, n);
            if (!(fabs(got_q - exact_q) <= tol_q) || !(fabs(got_f - exact_f) <= tol_f))
                fprintf(stderr, "%s dot n=%lld seed=%llu: q8_0 %.9g vs %.9g (tol %.3g), "
                        "f32 %.9g vs %.9g (tol %.3g)\n", t->name, (long long)n,
                        (unsigned long long)seed, got_q, exact_q, tol_q, got_f, exact_f, tol_f);
            CHECK(fabs(got_q - exact_q) <= tol_q);
            CHECK(fabs(got_f - exact_f) <= tol_f);
        }
    }
}

int main(void)
{
    test_sizes();
    test_llama_bytes();
    test_gaussian_rows();
    test_edge_rows();
    test_importance();
    test_dots();
    return test_finish("test_quants_legacy");
}
