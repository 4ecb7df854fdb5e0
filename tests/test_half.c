/* f16/bf16 conversions: exhaustive round trips and round-to-nearest-even against oracles. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "formats/half.h"
#include "test_util.h"

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

/* xorshift64*: deterministic inputs for a fixed seed. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

/* Oracle for bf16 (finite inputs within range): the nearer of the two bf16 neighbours in
 * double precision, ties to even. */
static uint16_t bf16_oracle(float f)
{
    uint32_t u = bits_of(f);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double x = f, a = lb_bf16_to_f32(lo), b = lb_bf16_to_f32(hi);
    if ((u & 0xffffu) == 0)
        return lo;
    double da = fabs(x - a), db = fabs(x - b);
    if (da < db)
        return lo;
    if (db < da)
        return hi;
    return (lo & 1) ? hi : lo;
}

int main(void)
{
    const uint64_t seed = 20261123;

    /* Every f16 value converts to f32 and back unchanged; NaNs stay NaN. */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lb_f16_to_f32((uint16_t)h);
        uint16_t back = lb_f32_to_f16(f);
        bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            CHECK(isnan(f));
            CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
            CHECK((back & 0x8000) == (h & 0x8000));
        } else if (back != h) {
            fprintf(stderr, "f16 0x%04x -> %a -> 0x%04x\n", h, (double)f, back);
            test_failures++;
        }
    }
    CHECK(lb_f16_to_f32(0x3c00) == 1.0f);
    CHECK(lb_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(lb_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(isinf(lb_f16_to_f32(0x7c00)) && lb_f16_to_f32(0xfc00) < 0);
    CHECK(lb_f32_to_f16(65520.0f) == 0x7c00);  /* halfway to 65536: ties to even = Inf */
    CHECK(lb_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(lb_f32_to_f16(0x1p-25f) == 0x0000);  /* tie between 0 and the least subnormal */
    CHECK(lb_f32_to_f16(0x1.8p-25f) == 0x0001);
    CHECK(lb_f32_to_f16(-0.0f) == 0x8000);
    CHECK(lb_f32_to_f16(INFINITY) == 0x7c00 && lb_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((lb_f32_to_f16(NAN) & 0x7fff) > 0x7c00);

#ifdef __FLT16_MAX__
    /* The compiler's _Float16 conversion rounds to nearest even: an independent oracle. */
    uint64_t state = seed;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)next_random(&state);
        /* Concentrate on the f16 range (exponents 100..145) half of the time. */
        if (i & 1)
            u = (u & 0x807fffffu) | ((100u + (u >> 23) % 46u) << 23);
        float f = float_of(u);
        if (isnan(f))
            continue;
        _Float16 expected = (_Float16)f;
        uint16_t expected_bits;
        memcpy(&expected_bits, &expected, 2);
        if (lb_f32_to_f16(f) != expected_bits) {
            fprintf(stderr, "seed %llu: f32 %a -> f16 0x%04x, expected 0x%04x\n",
                    (unsigned long long)seed, (double)f, lb_f32_to_f16(f), expected_bits);
            test_failures++;
            break;
        }
    }
#endif

    /* bf16: exhaustive round trip, random round-to-nearest-even against the oracle. */
    for (uint32_t b = 0; b < 65536; b++) {
        float f = lb_bf16_to_f32((uint16_t)b);
        uint16_t back = lb_f32_to_bf16(f);
        if (isnan(f))
            CHECK(isnan(lb_bf16_to_f32(back)));
        else
            CHECK(back == b);
    }
    uint64_t bstate = seed ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)next_random(&bstate);
        float f = float_of(u);
        if (isnan(f) || isinf(f) || fabsf(f) > 0x1.fep127f)
            continue;
        if (lb_f32_to_bf16(f) != bf16_oracle(f)) {
            fprintf(stderr, "seed %llu: f32 %a -> bf16 0x%04x, expected 0x%04x\n",
                    (unsigned long long)seed, (double)f, lb_f32_to_bf16(f), bf16_oracle(f));
            test_failures++;
            break;
        }
    }
    CHECK(isnan(lb_bf16_to_f32(lb_f32_to_bf16(NAN))));
    CHECK(lb_f32_to_bf16(INFINITY) == 0x7f80);

    /* Row converters, unaligned destination. */
    float src[5] = {1.0f, -2.5f, 0.1f, 65504.0f, -0.0f}, back[5];
    uint8_t raw[11];
    CHECK_OK(lb_row_from_f32(LB_TYPE_F16, src, raw + 1, 5));
    CHECK_OK(lb_row_to_f32(LB_TYPE_F16, raw + 1, back, 5));
    for (int i = 0; i < 5; i++)
        CHECK(back[i] == lb_f16_to_f32(lb_f32_to_f16(src[i])));
    CHECK_OK(lb_row_from_f32(LB_TYPE_BF16, src, raw + 1, 5));
    CHECK_OK(lb_row_to_f32(LB_TYPE_BF16, raw + 1, back, 5));
    for (int i = 0; i < 5; i++)
        CHECK(back[i] == lb_bf16_to_f32(lb_f32_to_bf16(src[i])));
    CHECK(lb_row_to_f32(LB_TYPE_Q4_K, raw, back, 1) == LB_ERR_UNSUPPORTED);
    if (test_failures)
        fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
    return test_finish("half");
}
