/* Standalone check (run under qemu-aarch64) that every NEON kernel of the dispatch table equals
 * its C reference bit for bit. Usage: check_neon [--seed=N] */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cpu.h"
#include "common/tensor.h"
#include "kernels/dsp.h"
#include "kernels/kernels.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"

/* Contract (see kernels/arm/dot_neon.c): the NEON dots add the same exact integer sums with
 * the same float operations in the same order as lb_vec_dot_<t>_c, and the quantizers round
 * as the references, so results and bytes must be identical, not merely close. */

#define MAX_N (33 * 256)                 /* the longest row tried: 33 K-blocks, 264 Q8_0 blocks */
#define MAX_ROW_BYTES (MAX_N / 256 * 292) /* Q8_K is the widest type per element */
#define CANARY_BYTES 64
#define CANARY(i) ((unsigned char)(0xa5u ^ (unsigned)((i) * 29u)))

static uint64_t rng_state;

/* xorshift64*: fixed-seed, platform-independent. */
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [-1, 1). */
static double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * 0x1p-52 - 1.0;
}

static int64_t rng_below(int64_t n)
{
    return n > 0 ? (int64_t)(rng_next() % (uint64_t)n) : 0;
}

/* ---- inputs ---- */

typedef enum input_kind {
    IN_RANDOM,   /* roughly normal, per-32 magnitude over four decades, occasional outliers */
    IN_ZERO,     /* all 0 */
    IN_CONST,    /* one value everywhere (sign and magnitude drawn once) */
    IN_OUTLIER,  /* noise of 1e-3 with one value of 1e3 */
    IN_SPIKE,    /* zeros with one non-zero */
    IN_TIES,     /* 127 at every 32nd element, the rest k + 0.5: exact rounding ties */
    IN_SPECIAL,  /* random with NaN, +-Inf, -0, subnormals, huge values sprinkled in */
    IN_TINY,     /* subnormal and near-subnormal magnitudes (scales overflow on inversion) */
    IN_HUGE,     /* magnitudes near FLT_MAX (f16 scales saturate) */
    IN_RAW,      /* quantized rows only: random block bytes with finite f16 / f32 scales */
    IN_EXTREME,  /* as IN_RAW with bytes 0x00, 0xff, 0x80, 0x7f only: the largest integer sums */
} input_kind;

static const char *const kind_names[] = {"random", "zero", "const", "outlier", "spike",
                                         "ties", "special", "tiny", "huge", "raw",
                                         "extreme"};

static void fill_floats(float *x, int64_t n, input_kind kind)
{
    switch (kind) {
    case IN_RANDOM: {
        double magnitude = 1.0;
        for (int64_t i = 0; i < n; i++) {
            if (i % 32 == 0)
                magnitude = pow(10.0, 2.0 * rng_uniform());
            double v = (rng_uniform() + rng_uniform() + rng_uniform()) * magnitude;
            if ((rng_next() & 63) == 0)
                v *= 8.0;
            x[i] = (float)v;
        }
        break;
    }
    case IN_ZERO:
        memset(x, 0, (size_t)n * sizeof *x);
        break;
    case IN_CONST: {
        const float c = (float)(rng_uniform() * 10.0);
        for (int64_t i = 0; i < n; i++)
            x[i] = c;
        break;
    }
    case IN_OUTLIER:
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(1e-3 * rng_uniform());
        if (n)
            x[rng_below(n)] = (rng_next() & 1) ? 1e3f : -1e3f;
        break;
    case IN_SPIKE:
        memset(x, 0, (size_t)n * sizeof *x);
        if (n)
            x[rng_below(n)] = (float)(rng_uniform() * 100.0);
        break;
    case IN_TIES:
        for (int64_t i = 0; i < n; i++)
            x[i] = i % 32 == 0 ? ((rng_next() & 1) ? 127.0f : -127.0f)
                               : (float)(rng_below(253) - 126) + 0.5f;
        break;
    case IN_SPECIAL:
        fill_floats(x, n, IN_RANDOM);
        for (int64_t i = 0; i < n; i++) {
            switch (rng_next() % 64) {
            case 0: x[i] = NAN; break;
            case 1: x[i] = -NAN; break;
            case 2: x[i] = INFINITY; break;
            case 3: x[i] = -INFINITY; break;
            case 4: x[i] = -0.0f; break;
            case 5: x[i] = 0x1p-140f; break;
            case 6: x[i] = -3e38f; break;
            default: break;
            }
        }
        break;
    case IN_TINY:
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)rng_uniform() * 0x1p-128f;
        break;
    case IN_HUGE:
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)rng_uniform() * 3e38f;
        break;
    case IN_RAW:
    case IN_EXTREME:
        break;
    }
}

/* A finite f16 of either sign with magnitude in [2^-10, 2^6), so products stay finite. */
static uint16_t random_half(void)
{
    const uint16_t exponent = (uint16_t)(5 + rng_below(16));
    return (uint16_t)(((rng_next() & 1) << 15) | (exponent << 10) | (rng_next() & 0x3ff));
}

static void put_half(unsigned char *block, size_t offset)
{
    const uint16_t h = random_half();
    memcpy(block + offset, &h, sizeof h);
}

/* Random bytes in every block of a row of `type`, then valid scales: any codes, including
 * the -128 int8 quants the quantizers never produce; Q8_K bsums consistent with its qs. */
static void fill_raw(lb_type type, unsigned char *row, int64_t n, int extreme)
{
    static const unsigned char extremes[4] = {0x00, 0xff, 0x80, 0x7f};
    const lb_type_info *info = lb_type_get((uint32_t)type);
    const int64_t blocks = n / info->block_size;
    for (size_t i = 0; i < (size_t)blocks * info->block_bytes; i++)
        row[i] = extreme ? extremes[rng_next() & 3] : (unsigned char)rng_next();
    for (int64_t b = 0; b < blocks; b++) {
        unsigned char *blk = row + (size_t)b * info->block_bytes;
        switch (type) {
        case LB_TYPE_Q8_0: put_half(blk, offsetof(lb_block_q8_0, d)); break;
        case LB_TYPE_Q4_0: put_half(blk, offsetof(lb_block_q4_0, d)); break;
        case LB_TYPE_Q4_1:
            put_half(blk, offsetof(lb_block_q4_1, d));
            put_half(blk, offsetof(lb_block_q4_1, m));
            break;
        case LB_TYPE_Q5_0: put_half(blk, offsetof(lb_block_q5_0, d)); break;
        case LB_TYPE_Q5_1:
            put_half(blk, offsetof(lb_block_q5_1, d));
            put_half(blk, offsetof(lb_block_q5_1, m));
            break;
        case LB_TYPE_Q2_K:
            put_half(blk, offsetof(lb_block_q2_K, d));
            put_half(blk, offsetof(lb_block_q2_K, dmin));
            break;
        case LB_TYPE_Q3_K: put_half(blk, offsetof(lb_block_q3_K, d)); break;
        case LB_TYPE_Q4_K:
            put_half(blk, offsetof(lb_block_q4_K, d));
            put_half(blk, offsetof(lb_block_q4_K, dmin));
            break;
        case LB_TYPE_Q5_K:
            put_half(blk, offsetof(lb_block_q5_K, d));
            put_half(blk, offsetof(lb_block_q5_K, dmin));
            break;
        case LB_TYPE_Q6_K: put_half(blk, offsetof(lb_block_q6_K, d)); break;
        case LB_TYPE_Q8_K: {
            lb_block_q8_K *q = (lb_block_q8_K *)(void *)blk;
            q->d = (float)rng_uniform() * 0x1p-4f;
            for (int j = 0; j < LB_QK_K / 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++)
                    sum += q->qs[16 * j + i];
                q->bsums[j] = (int16_t)sum;
            }
            break;
        }
        default:
            break;
        }
    }
}

/* ---- buffers ---- */

/* A region whose end abuts a PROT_NONE page: tail(bytes) places data so that any read past
 * its end faults (qemu-user enforces guest page protections). */
typedef struct tail_region {
    unsigned char *base;
    size_t data_bytes; /* accessible bytes before the guard page */
} tail_region;

static int tail_region_init(tail_region *r, size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    r->data_bytes = (bytes + page - 1) / page * page;
    void *p = mmap(NULL, r->data_bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return 0;
    r->base = p;
    return mprotect(r->base + r->data_bytes, page, PROT_NONE) == 0;
}

static void *tail_copy(tail_region *r, const void *src, size_t bytes)
{
    unsigned char *dst = r->base + r->data_bytes - bytes;
    memcpy(dst, src, bytes);
    return dst;
}

static size_t row_bytes(lb_type type, int64_t n)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return (size_t)(n / info->block_size) * info->block_bytes;
}

static const char *type_name(lb_type type)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return info ? info->name : "?";
}

static tail_region weights_region, acts_region, floats_region;

/* A quantized row of `type` from an input of the given kind (the type's reference quantizer,
 * importance NULL), or random bytes for IN_RAW / IN_EXTREME. */
static void make_row(lb_type type, input_kind kind, int64_t n, float *scratch, unsigned char *row)
{
    if (kind == IN_RAW || kind == IN_EXTREME) {
        fill_raw(type, row, n, kind == IN_EXTREME);
        return;
    }
    fill_floats(scratch, n, kind);
    lb_kernels_type(type)->quantize_row(scratch, row, n, NULL);
}

/* ---- vec_dot ---- */

/* Every weight / activation pairing tried, at every length. */
static const input_kind dot_kinds[][2] = {
    {IN_RANDOM, IN_RANDOM}, {IN_ZERO, IN_RANDOM},    {IN_RANDOM, IN_ZERO},
    {IN_CONST, IN_RANDOM},  {IN_RANDOM, IN_CONST},   {IN_CONST, IN_CONST},
    {IN_OUTLIER, IN_RANDOM}, {IN_RANDOM, IN_OUTLIER}, {IN_SPIKE, IN_SPIKE},
    {IN_TIES, IN_RANDOM},   {IN_RAW, IN_RANDOM},     {IN_RAW, IN_RAW},
    {IN_EXTREME, IN_EXTREME}, {IN_EXTREME, IN_RAW},
};

/* Row lengths in blocks: none, one, a few, odd counts, many. */
static const int64_t block_counts[] = {0, 1, 2, 3, 7, 31, 33};
static const int64_t block_counts_legacy[] = {0, 1, 2, 3, 7, 31, 129, 264};

/* Checks one vec_dot kernel on every pairing and length; prints one line; 1 when it passes. */
static int check_vec_dot(lb_type type, lb_vec_dot_fn ref, lb_vec_dot_fn neon, uint64_t seed)
{
    static float scratch[MAX_N];
    static unsigned char wq[MAX_ROW_BYTES], aq[MAX_ROW_BYTES];
    const lb_kernel_type *k = lb_kernels_type(type);
    if (!k || !ref || !neon) {
        printf("FAIL vec_dot %-5s: %s\n", type_name(type), !k ? "no kernels" : "no reference");
        return 0;
    }
    rng_state = seed ? seed : 1; /* xorshift's one fixed point */
    const int64_t block = lb_type_get((uint32_t)type)->block_size;
    const int legacy = block == LB_QK_LEGACY;
    const int64_t *counts = legacy ? block_counts_legacy : block_counts;
    const size_t n_counts = legacy ? sizeof block_counts_legacy / sizeof *block_counts_legacy
                                   : sizeof block_counts / sizeof *block_counts;
    int cases = 0, failed = 0;
    for (size_t c = 0; c < n_counts; c++) {
        const int64_t n = counts[c] * block;
        if (n > MAX_N)
            continue;
        /* short rows many times: a one-ulp slip in one block is not absorbed by a long sum */
        const int64_t reps = 1 + 32 / (counts[c] ? counts[c] : 32);
        for (int64_t r = 0; r < reps * (int64_t)(sizeof dot_kinds / sizeof *dot_kinds); r++) {
            const size_t p = (size_t)r % (sizeof dot_kinds / sizeof *dot_kinds);
            make_row(type, dot_kinds[p][0], n, scratch, wq);
            make_row(k->vec_dot_type, dot_kinds[p][1], n, scratch, aq);
            const void *w = tail_copy(&weights_region, wq, row_bytes(type, n));
            const void *a = tail_copy(&acts_region, aq, row_bytes(k->vec_dot_type, n));
            const float want = ref(w, a, n);
            const float got = neon(w, a, n);
            cases++;
            if (memcmp(&got, &want, sizeof got) != 0) {
                if (failed++ < 5)
                    printf("  vec_dot %s n=%" PRId64 " weights %s, activations %s: neon %.9g "
                           "ref %.9g\n",
                           type_name(type), n, kind_names[dot_kinds[p][0]],
                           kind_names[dot_kinds[p][1]], (double)got, (double)want);
            }
        }
    }
    printf("%s vec_dot %-5s: %d cases, %d differ from the reference (seed 0x%016" PRIx64 ")\n",
           failed ? "FAIL" : "ok  ", type_name(type), cases, failed, seed);
    return !failed;
}

/* ---- activation quantizers ---- */

static const input_kind quant_kinds[] = {IN_RANDOM, IN_ZERO, IN_CONST, IN_OUTLIER, IN_SPIKE,
                                         IN_TIES, IN_SPECIAL, IN_TINY, IN_HUGE};

/* Runs one quantizer into a canary-framed buffer; 1 when the canaries survive. */
static int quantize_framed(lb_quantize_row_fn fn, const float *x, unsigned char *frame,
                           size_t bytes, int64_t n, const float *importance)
{
    for (size_t i = 0; i < bytes + 2 * CANARY_BYTES; i++)
        frame[i] = CANARY(i);
    fn(x, frame + CANARY_BYTES, n, importance);
    for (size_t i = 0; i < CANARY_BYTES; i++)
        if (frame[i] != CANARY(i) ||
            frame[CANARY_BYTES + bytes + i] != CANARY(CANARY_BYTES + bytes + i))
            return 0;
    return 1;
}

static int check_quantizer(lb_type type, lb_quantize_row_fn ref, lb_quantize_row_fn neon,
                           uint64_t seed)
{
    static float x[MAX_N], importance[MAX_N];
    static unsigned char want[MAX_ROW_BYTES + 2 * CANARY_BYTES];
    static unsigned char got[MAX_ROW_BYTES + 2 * CANARY_BYTES];
    if (!ref || !neon) {
        printf("FAIL quantize %-5s: no reference\n", type_name(type));
        return 0;
    }
    rng_state = seed ? seed : 1; /* xorshift's one fixed point */
    const int64_t block = lb_type_get((uint32_t)type)->block_size;
    const int legacy = block == LB_QK_LEGACY;
    const int64_t *counts = legacy ? block_counts_legacy : block_counts;
    const size_t n_counts = legacy ? sizeof block_counts_legacy / sizeof *block_counts_legacy
                                   : sizeof block_counts / sizeof *block_counts;
    int cases = 0, failed = 0;
    for (size_t c = 0; c < n_counts; c++) {
        const int64_t n = counts[c] * block;
        if (n > MAX_N)
            continue;
        const size_t bytes = row_bytes(type, n);
        for (size_t kk = 0; kk < sizeof quant_kinds / sizeof *quant_kinds; kk++) {
            /* importance NULL (the activation path), then random importance: Q8_0 defers to
             * the reference's search, Q8_K ignores it */
            for (int with_importance = 0; with_importance < 2; with_importance++) {
                fill_floats(x, n, quant_kinds[kk]);
                for (int64_t i = 0; i < n; i++)
                    importance[i] = (float)(rng_uniform() + 1.0);
                const float *xin = tail_copy(&floats_region, x, (size_t)n * sizeof *x);
                const float *imp = with_importance ? importance : NULL;
                const int canaries = quantize_framed(ref, xin, want, bytes, n, imp) &
                                     quantize_framed(neon, xin, got, bytes, n, imp);
                cases++;
                const int same = memcmp(want, got, bytes + 2 * CANARY_BYTES) == 0;
                if (!canaries || !same) {
                    if (failed++ < 5) {
                        size_t at = 0;
                        while (at < bytes + 2 * CANARY_BYTES && want[at] == got[at])
                            at++;
                        printf("  quantize %s n=%" PRId64 " input %s%s: %s", type_name(type), n,
                               kind_names[quant_kinds[kk]], imp ? " (importance)" : "",
                               canaries ? "" : "wrote outside its row; ");
                        if (!same)
                            printf("first differing byte %zu of the row (neon 0x%02x, ref 0x%02x)",
                                   at - CANARY_BYTES, got[at], want[at]);
                        printf("\n");
                    }
                }
            }
        }
    }
    printf("%s quantize %-5s: %d cases, %d differ from the reference (seed 0x%016" PRIx64 ")\n",
           failed ? "FAIL" : "ok  ", type_name(type), cases, failed, seed);
    return !failed;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seed=", 7) == 0) {
            seed = strtoull(argv[i] + 7, NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--seed=N]\n", argv[0]);
            return 2;
        }
    }
    printf("check_neon: seed 0x%016" PRIx64 " (--seed=N to change)\n", seed);
    if (!tail_region_init(&weights_region, MAX_ROW_BYTES) ||
        !tail_region_init(&acts_region, MAX_ROW_BYTES) ||
        !tail_region_init(&floats_region, MAX_N * sizeof(float))) {
        printf("FAIL: cannot map guarded buffers\n");
        return 1;
    }

    lb_kernels_dsp c, neon;
    lb_kernels_dsp_init(&c, 0);
    lb_kernels_dsp_init(&neon, LB_CPU_NEON);
    int passed = 0, failed = 0;

    /* Every NEON kernel must be in the table: these all have one. */
    static const lb_type want_dot[] = {LB_TYPE_Q8_0, LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_Q5_0,
                                       LB_TYPE_Q5_1, LB_TYPE_Q2_K, LB_TYPE_Q3_K, LB_TYPE_Q4_K,
                                       LB_TYPE_Q5_K, LB_TYPE_Q6_K};
    static const lb_type want_quant[] = {LB_TYPE_Q8_0, LB_TYPE_Q8_K};
    for (size_t i = 0; i < sizeof want_dot / sizeof *want_dot; i++) {
        if (!neon.vec_dot[want_dot[i]] || neon.vec_dot[want_dot[i]] == c.vec_dot[want_dot[i]]) {
            printf("FAIL vec_dot %-5s: no NEON kernel in the table\n", type_name(want_dot[i]));
            failed++;
        }
    }
    for (size_t i = 0; i < sizeof want_quant / sizeof *want_quant; i++) {
        const lb_type t = want_quant[i];
        if (!neon.quantize_activations[t] ||
            neon.quantize_activations[t] == c.quantize_activations[t]) {
            printf("FAIL quantize %-5s: no NEON kernel in the table\n", type_name(t));
            failed++;
        }
    }
    /* lb_kernels_dsp_get() on AArch64 must pick the NEON table (unless LB_CPU_MASK says no). */
    if (!getenv("LB_CPU_MASK")) {
        const lb_kernels_dsp *global = lb_kernels_dsp_get();
        if (memcmp(global->vec_dot, neon.vec_dot, sizeof neon.vec_dot) != 0 ||
            memcmp(global->quantize_activations, neon.quantize_activations,
                   sizeof neon.quantize_activations) != 0) {
            printf("FAIL lb_kernels_dsp_get: not the NEON table\n");
            failed++;
        }
    }

    /* Every entry the NEON init changed, against the C reference it replaced. */
    for (uint32_t t = 0; t < LB_DSP_TYPE_SLOTS; t++) {
        const uint64_t type_seed = seed ^ ((uint64_t)(t + 1) * 0xD1B54A32D192ED03ULL);
        if (neon.vec_dot[t] != c.vec_dot[t]) {
            if (check_vec_dot((lb_type)t, c.vec_dot[t], neon.vec_dot[t], type_seed))
                passed++;
            else
                failed++;
        }
        if (neon.quantize_activations[t] != c.quantize_activations[t]) {
            if (check_quantizer((lb_type)t, c.quantize_activations[t],
                                neon.quantize_activations[t], ~type_seed))
                passed++;
            else
                failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
