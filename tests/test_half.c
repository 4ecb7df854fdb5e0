/* common/half.h, the one f16/bf16 codec: every 16-bit pattern both ways, and f32 -> 16-bit
 * rounding on every rounding boundary and on random f32 patterns, against an oracle that only
 * uses ldexp and comparisons (and against the compiler's _Float16 where it has one). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "common/rng.h"
#include "test_util.h"

#define SEED 20261123u
#define RANDOM_SAMPLES 4000000

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A 16-bit binary float format: sign, exponent, mantissa bits; reference values of its
 * non-negative codes 0..inf_code, where the Inf code gets 2^(emax+1), the value an unbounded
 * exponent would give it (IEEE 754 rounds to Inf exactly when the result would reach it). */
typedef struct format {
    const char *name;
    int mantissa_bits, bias;
    uint32_t inf_code;
    double value[0x7f81];
    uint16_t (*encode)(float);
    float (*decode)(uint16_t);
} format;

static format f16 = {"f16", 10, 15, 0x7c00u, {0}, lb_f32_to_f16, lb_f16_to_f32};
static format bf16 = {"bf16", 7, 127, 0x7f80u, {0}, lb_f32_to_bf16, lb_bf16_to_f32};

static void format_init(format *fmt)
{
    for (uint32_t c = 0; c <= fmt->inf_code; c++) {
        int e = (int)(c >> fmt->mantissa_bits);
        uint32_t m = c & ((1u << fmt->mantissa_bits) - 1u);
        fmt->value[c] = e == 0 ? ldexp(m, 1 - fmt->bias - fmt->mantissa_bits)
                               : ldexp((1u << fmt->mantissa_bits) | m,
                                       e - fmt->bias - fmt->mantissa_bits);
    }
}

/* Round-to-nearest-even encoding of a non-NaN f32: the largest code whose value is <= |x|,
 * then the next code up if |x| is past their midpoint (sums of two codes are exact in
 * double), the even one of the two on a tie. */
static uint16_t oracle_encode(const format *fmt, float x)
{
    uint16_t sign = (uint16_t)((bits_of(x) >> 16) & 0x8000u);
    double a = fabs((double)x);
    if (a >= fmt->value[fmt->inf_code])
        return (uint16_t)(sign | fmt->inf_code);
    uint32_t lo = 0, hi = fmt->inf_code; /* value[lo] <= a < value[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fmt->value[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    double twice = 2.0 * a, sum = fmt->value[lo] + fmt->value[hi];
    uint32_t code = twice < sum ? lo : twice > sum ? hi : (lo & 1u) ? hi : lo;
    return (uint16_t)(sign | code);
}

/* NaNs keep sign, exponent and the top mantissa bits; the top mantissa bit (quiet) is set so
 * that a payload held only in the dropped bits still reads as a NaN. */
static uint16_t nan_encode(const format *fmt, float x)
{
    uint32_t u = bits_of(x);
    uint32_t top = (u & 0x7fffffu) >> (23 - fmt->mantissa_bits);
    return (uint16_t)(((u >> 16) & 0x8000u) | fmt->inf_code |
                      (1u << (fmt->mantissa_bits - 1)) | top);
}

static int encode_failures;

static void check_encode(const format *fmt, float x)
{
    uint16_t want = isnan(x) ? nan_encode(fmt, x) : oracle_encode(fmt, x);
    uint16_t got = fmt->encode(x);
    if (got != want && encode_failures++ < 10)
        fprintf(stderr, "%s: f32 0x%08x (%a) -> 0x%04x, expected 0x%04x (seed %u)\n",
                fmt->name, bits_of(x), (double)x, got, want, SEED);
}

/* Every 16-bit pattern decodes to its reference value (Inf and NaN: sign and payload in the
 * top mantissa bits) and encodes back to itself (NaNs: with the quiet bit set). */
static void test_decode_all(const format *fmt)
{
    int bad = 0;
    uint32_t sign_shift = 16, payload_shift = 23 - (uint32_t)fmt->mantissa_bits;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t magnitude = h & 0x7fffu;
        uint32_t want;
        if (magnitude >= fmt->inf_code)
            want = ((h & 0x8000u) << sign_shift) | 0x7f800000u |
                   ((magnitude & ((1u << fmt->mantissa_bits) - 1u)) << payload_shift);
        else
            want = bits_of((float)((h & 0x8000u) ? -fmt->value[magnitude]
                                                  : fmt->value[magnitude]));
        float f = fmt->decode((uint16_t)h);
        uint16_t back = fmt->encode(f);
        uint16_t want_back = magnitude > fmt->inf_code
                                 ? (uint16_t)(h | (1u << (fmt->mantissa_bits - 1)))
                                 : (uint16_t)h;
        if ((bits_of(f) != want || back != want_back) && bad++ < 10)
            fprintf(stderr, "%s 0x%04x -> f32 0x%08x (expected 0x%08x) -> 0x%04x (expected "
                    "0x%04x)\n", fmt->name, h, bits_of(f), want, back, want_back);
    }
    CHECK(bad == 0);
}

/* Every rounding boundary, both signs: each code's value and the midpoint to the next code
 * up, and the f32 neighbours of both (midpoints of two 16-bit codes are exact in f32). */
static void test_encode_boundaries(const format *fmt)
{
    for (uint32_t c = 0; c < fmt->inf_code; c++) {
        float points[2] = {(float)fmt->value[c],
                           (float)((fmt->value[c] + fmt->value[c + 1]) / 2.0)};
        for (int p = 0; p < 2; p++) {
            float around[3] = {nextafterf(points[p], 0.0f), points[p],
                               nextafterf(points[p], INFINITY)};
            for (int k = 0; k < 3; k++) {
                check_encode(fmt, around[k]);
                check_encode(fmt, -around[k]);
            }
        }
    }
    check_encode(fmt, INFINITY);
    check_encode(fmt, -INFINITY);
    check_encode(fmt, 0x1.fffffep127f);
}

/* Random f32 bit patterns, NaNs included; with e_span > 0, every other one has its f32
 * exponent moved into [e_min, e_min + e_span) (f16: 2^-27 to 2^18, so that most land on
 * neither zero nor Inf). */
static void test_encode_random(const format *fmt, lb_rng *rng, uint32_t e_min, uint32_t e_span)
{
    for (int i = 0; i < RANDOM_SAMPLES; i++) {
        uint32_t u = (uint32_t)lb_rng_next(rng);
        if ((i & 1) && e_span > 0)
            u = (u & 0x807fffffu) | ((e_min + (u >> 23) % e_span) << 23);
        check_encode(fmt, float_of(u));
    }
}

#ifdef __FLT16_MAX__
/* The compiler's _Float16 conversions round to nearest even too: a second, independent oracle
 * for f16 (NaN payloads aside, which C leaves open). */
static void test_against_float16(lb_rng *rng)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 v;
        uint16_t bits = (uint16_t)h;
        memcpy(&v, &bits, 2);
        float want = (float)v, got = lb_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : bits_of(want) != bits_of(got))
            bad++;
    }
    for (int i = 0; i < RANDOM_SAMPLES; i++) {
        uint32_t u = (uint32_t)lb_rng_next(rng);
        if (i & 1)
            u = (u & 0x807fffffu) | ((100u + (u >> 23) % 46u) << 23);
        float f = float_of(u);
        if (isnan(f))
            continue;
        _Float16 v = (_Float16)f;
        uint16_t want;
        memcpy(&want, &v, 2);
        if (lb_f32_to_f16(f) != want && bad++ < 10)
            fprintf(stderr, "f16: f32 %a -> 0x%04x, _Float16 gives 0x%04x (seed %u)\n",
                    (double)f, lb_f32_to_f16(f), want, SEED);
    }
    CHECK(bad == 0);
}
#endif

static void test_fixed_values(void)
{
    CHECK(lb_f16_to_f32(0x3c00) == 1.0f);
    CHECK(lb_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(lb_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(bits_of(lb_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(lb_f32_to_f16(65520.0f) == 0x7c00); /* halfway to 65536: ties to even = Inf */
    CHECK(lb_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(lb_f32_to_f16(0x1p-25f) == 0x0000); /* tie between 0 and the least subnormal */
    CHECK(lb_f32_to_f16(0x1.8p-25f) == 0x0001);
    CHECK(lb_f32_to_f16(0x1.ffcp-15f) == 0x0400); /* largest subnormal rounds up to normal */
    CHECK(lb_f32_to_f16(-0.0f) == 0x8000);
    CHECK(lb_f32_to_f16(float_of(0x7f800001u)) == 0x7e00); /* payload only in dropped bits */
    CHECK(lb_f32_to_f16(float_of(0xffc00000u)) == 0xfe00);
    CHECK(lb_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(lb_f32_to_bf16(1.00390625f) == 0x3f80);  /* tie, even stays */
    CHECK(lb_f32_to_bf16(1.01171875f) == 0x3f82);  /* tie, odd rounds up */
    CHECK(lb_f32_to_bf16(0x1.ffp127f) == 0x7f80);  /* tie above the largest: Inf */
    CHECK(lb_f32_to_bf16(float_of(0x7f800001u)) == 0x7fc0);
    CHECK(lb_f32_to_bf16(-INFINITY) == 0xff80);
}

/* Row converters: little-endian 16-bit values at any alignment, F32 copied, others refused. */
static void test_rows(void)
{
    float src[5] = {1.0f, -2.5f, 0.1f, 65504.0f, -0.0f}, back[5];
    uint8_t raw[21];
    CHECK_OK(lb_row_from_f32(LB_TYPE_F16, src, raw + 1, 5));
    CHECK(raw[1] == 0x00 && raw[2] == 0x3c && raw[3] == 0x00 && raw[4] == 0xc1);
    CHECK_OK(lb_row_to_f32(LB_TYPE_F16, raw + 1, back, 5));
    for (int i = 0; i < 5; i++)
        CHECK(bits_of(back[i]) == bits_of(lb_f16_to_f32(lb_f32_to_f16(src[i]))));
    CHECK_OK(lb_row_from_f32(LB_TYPE_BF16, src, raw + 1, 5));
    CHECK(raw[1] == 0x80 && raw[2] == 0x3f && raw[3] == 0x20 && raw[4] == 0xc0);
    CHECK_OK(lb_row_to_f32(LB_TYPE_BF16, raw + 1, back, 5));
    for (int i = 0; i < 5; i++)
        CHECK(bits_of(back[i]) == bits_of(lb_bf16_to_f32(lb_f32_to_bf16(src[i]))));
    CHECK_OK(lb_row_from_f32(LB_TYPE_F32, src, raw + 1, 5));
    CHECK_OK(lb_row_to_f32(LB_TYPE_F32, raw + 1, back, 5));
    CHECK(memcmp(back, src, sizeof src) == 0);
    CHECK(lb_row_to_f32(LB_TYPE_Q4_K, raw, back, 1) == LB_ERR_UNSUPPORTED);
    CHECK(lb_row_from_f32(LB_TYPE_Q8_0, src, raw, 1) == LB_ERR_UNSUPPORTED);
}

int main(void)
{
    lb_rng rng;
    lb_rng_seed(&rng, SEED);
    format_init(&f16);
    format_init(&bf16);
    test_fixed_values();
    test_decode_all(&f16);
    test_decode_all(&bf16);
    test_encode_boundaries(&f16);
    test_encode_boundaries(&bf16);
    test_encode_random(&f16, &rng, 100, 46);
    test_encode_random(&bf16, &rng, 0, 0);
#ifdef __FLT16_MAX__
    test_against_float16(&rng);
#endif
    CHECK(encode_failures == 0);
    test_rows();
    if (test_failures)
        fprintf(stderr, "half: seed %u\n", SEED);
    return test_finish("half");
}
