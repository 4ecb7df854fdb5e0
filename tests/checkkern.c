/* checkkern: every dispatched kernel variant against the C reference at every ISA level this
 * CPU has (dav1d's checkasm in spirit; x86-64 and AArch64, the latter also under qemu-user, see
 * tests/arm/checkkern_qemu.sh), lb_gemm against a double-precision reference, with --bench the
 * speed of lb_gemm per type, batch, thread count and ISA, and with --bench-dot (instead of the
 * checks) the speed of one vec_dot per type and ISA (x86-64 / host builds only). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_harness.h"
#include "common/alloc.h"
#include "common/cpu.h"
#include "common/rng.h"
#include "kernels/dsp_internal.h"
#include "kernels/kernels.h"
#include "tests/checkkern_inputs.h"

#ifdef __x86_64__
#include <x86intrin.h>
#endif

/* The contracts, per kernel family, that every level (c, avx2, avx512 on x86-64; c, neon on
 * AArch64) is held to against the C reference in the same table slot, on seeded inputs of the
 * shapes of input_kind (tests/checkkern_inputs.h), at rows of 0 to 11008 elements (test_sizes):
 *
 * - dispatch: lb_kernels_dsp_init(flags) replaces at least the kernels the level is known to
 *   have (all_levels; a lost upgrade would leave the checks below nothing to check), and
 *   lb_kernels_dsp_get() is the table of the highest level detected: on AArch64 the NEON one
 *   unless LB_CPU_MASK says otherwise (Advanced SIMD is part of ARMv8-A).
 * - quantize_activations (Q8_0, Q8_K): bit-exact, for every input (NaN, +-Inf, -0, subnormals,
 *   values near FLT_MAX and exact rounding ties included), with and without importance.
 * - vec_dot: the integer part is exact at every level (int8 products and their block sums
 *   fit their lanes; raw, all-extreme and saturated codes, -128 included, are tried, which no
 *   quantizer writes). The float part depends on the level (isa_level.dot_bit_exact):
 *   NEON scales and adds the block sums with the C reference's operations, in its order,
 *   without FMA: bit-identical to C. AVX2 adds in 8 lanes with FMA and splits weights into
 *   scaled codes and offsets (mins through bsums): a reassociation, held to two bounds.
 *   For every input, |avx2 - C| <= 2 gamma_(n+5) M (dot_worst_case; M >= S bounds every term
 *   either side forms, dot_scales_of): the worst case of two float orders. For random rows
 *   (IN_RANDOM both sides), |avx2 - C| <= VEC_DOT_TOL * S, S = sum_i |w_i a_i| over the
 *   dequantized operands in double: there the rounding errors behave as random walks and stay
 *   near 1e-7 S, while a wrong block or scale costs a whole term of S (which the worst case
 *   of a long row would hide). 1e-5 S does not hold for every input: on a constant row of
 *   4096 floats C's own sequential sum is 2e-5 S off, and spikes make offset terms cancel.
 * - gemm (lb_gemm): every output has the bits of one vec_dot of that level on that row (so
 *   vec_dot_x4 gives vec_dot's bits), 1 and 2 threads give the same bytes, and every output
 *   is within GEMM_TOL * S of the exact double dot of the dequantized weights and the
 *   C-quantized activations (random rows, 37 x 261..768, batches up to past the tile).
 * - memory, every family: nothing written outside the output (guard bytes on both sides) or
 *   into the inputs, nothing read past an input's end (every other case puts the inputs at the
 *   end of the mapping, before a PROT_NONE page; a fault names the case), empty rows and
 *   unaligned starts taken. */

/* VEC_DOT_TOL: a reassociating vec_dot against C on random rows; GEMM_TOL: lb_gemm against the
 * exact double dot; both relative to S = sum_i |w_i a_i|. */
#define VEC_DOT_TOL 1e-5
#define GEMM_TOL 1e-5

typedef struct isa_level {
    const char *name;
    unsigned flags;
    bool dot_bit_exact;           /* vec_dot must equal the C reference bit for bit */
    const lb_type *dots;          /* vec_dot kernels the level must replace */
    size_t n_dots;
    const lb_type *quantizers;    /* activation quantizers the level must replace */
    size_t n_quantizers;
} isa_level;

static const lb_type avx2_dots[] = {
    LB_TYPE_F32,  LB_TYPE_F16,  LB_TYPE_BF16, LB_TYPE_Q4_0, LB_TYPE_Q4_1,
    LB_TYPE_Q5_0, LB_TYPE_Q5_1, LB_TYPE_Q8_0, LB_TYPE_Q2_K, LB_TYPE_Q3_K,
    LB_TYPE_Q4_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K, LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS,
};
static const lb_type neon_dots[] = {
    LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_Q5_0, LB_TYPE_Q5_1,   LB_TYPE_Q8_0,   LB_TYPE_Q2_K,
    LB_TYPE_Q3_K, LB_TYPE_Q4_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K, LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS,
};
static const lb_type simd_quantizers[] = {LB_TYPE_Q8_0, LB_TYPE_Q8_K};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The levels of both architectures; main keeps those lb_cpu_flags() has. */
static const isa_level all_levels[] = {
    {"c", 0, true, NULL, 0, NULL, 0},
    {"avx2", LB_CPU_AVX2, false, avx2_dots, COUNT(avx2_dots), simd_quantizers,
     COUNT(simd_quantizers)},
    {"avx512", LB_CPU_AVX2 | LB_CPU_AVX512, false, avx2_dots, COUNT(avx2_dots),
     simd_quantizers, COUNT(simd_quantizers)},
    {"neon", LB_CPU_NEON, true, neon_dots, COUNT(neon_dots), simd_quantizers,
     COUNT(simd_quantizers)},
};
#define N_LEVELS COUNT(all_levels)

static const lb_type all_types[] = {
    LB_TYPE_F32,  LB_TYPE_F16,  LB_TYPE_BF16, LB_TYPE_Q4_0, LB_TYPE_Q4_1,
    LB_TYPE_Q5_0, LB_TYPE_Q5_1, LB_TYPE_Q8_0, LB_TYPE_Q2_K, LB_TYPE_Q3_K,
    LB_TYPE_Q4_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K, LB_TYPE_Q8_K, LB_TYPE_IQ4_NL,
    LB_TYPE_IQ4_XS,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static int64_t kernels_checked, kernels_failed;
static const char *test_filter;

/* What is being checked, for the fault handler: a read past an input's end dies on the
 * PROT_NONE page, and the run should still say which kernel and case did it. */
static char fault_context[256];
static size_t fault_context_len;

static void set_fault_context(const char *isa, const char *kernel, const char *type, int64_t n,
                              const char *what)
{
    int len = snprintf(fault_context, sizeof fault_context, "%s %s %s n=%" PRId64 " %s", isa,
                       kernel, type, n, what);
    fault_context_len = len < 0 ? 0 : (size_t)len < sizeof fault_context ? (size_t)len
                                                                         : sizeof fault_context - 1;
}

static void on_fault(int sig)
{
    static const char head[] = "\ncheckkern: FAILED: memory fault (read or write outside a "
                               "buffer?) in ";
    ssize_t ignored = write(STDERR_FILENO, head, sizeof head - 1);
    ignored = write(STDERR_FILENO, fault_context, fault_context_len);
    ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    _exit(128 + sig);
}

static uint64_t row_bytes(lb_type type, int64_t n)
{
    uint64_t bytes = 0;
    bool ok = lb_type_row_bytes(type, n, &bytes);
    (void)ok;
    return bytes;
}

/* Row lengths for a block size: 0, 1, 2, 3, 7, 31 and 33 blocks (an empty row; odd counts on
 * both sides of the SIMD unrolls), LLaMA-7B's 4096 and 11008 where the block divides them, and
 * for the float types tails of partial vectors, 1-3 leftover vectors and both. */
static int64_t test_sizes(int64_t block, int64_t *sizes)
{
    int64_t count = 0;
    static const int64_t blocks[] = {0, 1, 2, 3, 7, 31, 33};
    for (size_t i = 0; i < COUNT(blocks); i++)
        sizes[count++] = blocks[i] * block;
    if (4096 % block == 0)
        sizes[count++] = 4096;
    if (11008 % block == 0)
        sizes[count++] = 11008;
    if (block == 1) {
        static const int64_t tails[] = {13, 21, 50, 255};
        for (size_t i = 0; i < COUNT(tails); i++)
            sizes[count++] = tails[i];
    }
    return count;
}

static void report(const char *isa, const char *kernel, const char *type, bool ok,
                   const char *detail)
{
    kernels_checked++;
    if (!ok)
        kernels_failed++;
    printf("  %-7s %-22s %-5s %s%s%s\n", isa, kernel, type, ok ? "ok" : "FAILED",
           detail[0] ? "  " : "", detail);
}

/* ---- per-kernel checks ---- */

/* Each level replaces at least the kernels it is known to have, and the table the library
 * uses is the one of the highest level this CPU has (on AArch64 always NEON unless
 * LB_CPU_MASK says otherwise: Advanced SIMD is part of ARMv8-A). */
static void check_dispatch(const isa_level *levels, int n_levels, const lb_kernels_dsp *c)
{
    for (int l = 0; l < n_levels; l++) {
        const isa_level *isa = &levels[l];
        lb_kernels_dsp dsp;
        lb_kernels_dsp_init(&dsp, isa->flags);
        if (!isa->n_dots && !isa->n_quantizers)
            continue;
        bool ok = true;
        char detail[160] = "";
        for (size_t i = 0; i < isa->n_dots; i++) {
            lb_type t = isa->dots[i];
            if (!dsp.vec_dot[t] || dsp.vec_dot[t] == c->vec_dot[t]) {
                ok = false;
                snprintf(detail, sizeof detail, "no %s vec_dot for %s in the table", isa->name,
                         lb_type_get((uint32_t)t)->name);
            }
        }
        for (size_t i = 0; i < isa->n_quantizers; i++) {
            lb_type t = isa->quantizers[i];
            if (!dsp.quantize_activations[t] ||
                dsp.quantize_activations[t] == c->quantize_activations[t]) {
                ok = false;
                snprintf(detail, sizeof detail, "no %s activation quantizer for %s in the table",
                         isa->name, lb_type_get((uint32_t)t)->name);
            }
        }
        if (ok)
            snprintf(detail, sizeof detail, "(%zu vec_dot, %zu quantizers replaced)", isa->n_dots,
                     isa->n_quantizers);
        report(isa->name, "dispatch", "", ok, detail);
    }
    const isa_level *top = &levels[n_levels - 1];
    lb_kernels_dsp want;
    lb_kernels_dsp_init(&want, top->flags);
    const lb_kernels_dsp *used = lb_kernels_dsp_get();
    bool ok = memcmp(used->vec_dot, want.vec_dot, sizeof want.vec_dot) == 0 &&
              memcmp(used->vec_dot_x4, want.vec_dot_x4, sizeof want.vec_dot_x4) == 0 &&
              memcmp(used->quantize_activations, want.quantize_activations,
                     sizeof want.quantize_activations) == 0;
    char detail[160];
    snprintf(detail, sizeof detail, ok ? "(lb_kernels_dsp_get() is the %s table)"
                                       : "lb_kernels_dsp_get() is not the %s table", top->name);
#ifdef __aarch64__
    if (ok && !getenv("LB_CPU_MASK") && top->flags != LB_CPU_NEON) {
        ok = false;
        snprintf(detail, sizeof detail, "NEON not detected on AArch64 (cpu flags 0x%x)",
                 lb_cpu_flags());
    }
#endif
    report(top->name, "dsp_get", "", ok, detail);
}

/* The scales of a dot: exact = sum_i w_i a_i in double, S = sum_i |w_i a_i|, and
 * M = sum_i |a_i| max(|w_i|, |hi_i - lo_i| + |lo_i|), hi / lo the weights dequantized with
 * every code bit set / clear. M bounds every partial term a kernel may form when it splits a
 * weight into its scaled code and its offset (Q4_1's m, Q6_K's -32 d sc, the K-quant mins
 * through bsums): those terms can be far larger than S and cancel. */
typedef struct dot_scales {
    double exact, s, m;
} dot_scales;

static dot_scales dot_scales_of(const lb_kernel_type *k, const uint8_t *w, const void *a,
                                int64_t n, float *wd, float *ad, float *hi, float *lo,
                                uint8_t *scratch)
{
    dot_scales r = {0.0, 0.0, 0.0};
    k->dequantize_row(w, wd, n);
    lb_kernels_type(k->vec_dot_type)->dequantize_row(a, ad, n);
    size_t start, end;
    const lb_type_info *info = lb_type_get((uint32_t)k->type);
    const bool codes = code_bytes(k->type, &start, &end);
    if (codes) {
        size_t bytes = (size_t)row_bytes(k->type, n);
        for (int pass = 0; pass < 2; pass++) {
            memcpy(scratch, w, bytes);
            for (int64_t b = 0; b < n / info->block_size; b++)
                memset(scratch + (size_t)b * info->block_bytes + start, pass ? 0x00 : 0xff,
                       end - start);
            k->dequantize_row(scratch, pass ? lo : hi, n);
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double term = (double)wd[i] * (double)ad[i];
        r.exact += term;
        r.s += fabs(term);
        double split = codes ? fabs((double)hi[i] - (double)lo[i]) + fabs((double)lo[i]) : 0.0;
        r.m += fabs((double)ad[i]) * fmax(fabs((double)wd[i]), split);
    }
    return r;
}

/* 2 gamma_(n + 5), gamma_k = k u / (1 - k u), u = 2^-24: any two float evaluations of a dot
 * whose integer parts are exact differ by at most this times M (each forms at most n terms,
 * each of at most 5 roundings deep, and sums them in some order). */
static double dot_worst_case(int64_t n)
{
    double ku = (double)(n + 5) * 0x1p-24;
    return 2.0 * ku / (1.0 - ku);
}

/* Weight / activation pairings tried at every length (those a type cannot take are skipped:
 * bytes only for packed rows, the saturated codes only for the types with Q8_0 activations:
 * legacy and IQ4_NL). */
static const input_kind dot_pairs[][2] = {
    {IN_RANDOM, IN_RANDOM},   {IN_ZERO, IN_RANDOM},    {IN_RANDOM, IN_ZERO},
    {IN_CONST, IN_RANDOM},    {IN_RANDOM, IN_CONST},   {IN_CONST, IN_CONST},
    {IN_OUTLIER, IN_RANDOM},  {IN_RANDOM, IN_OUTLIER}, {IN_SPIKE, IN_SPIKE},
    {IN_TIES, IN_RANDOM},     {IN_RAW, IN_RANDOM},     {IN_RAW, IN_RAW},
    {IN_EXTREME, IN_EXTREME}, {IN_EXTREME, IN_RAW},    {IN_SATURATED, IN_MIN},
    {IN_SATURATED, IN_MAX},
};

static bool pair_applies(const lb_kernel_type *k, const input_kind pair[2])
{
    bool packed = lb_type_get((uint32_t)k->type)->block_size > 1;
    bool legacy = k->vec_dot_type == LB_TYPE_Q8_0;
    for (int side = 0; side < 2; side++) {
        if ((pair[side] == IN_RAW || pair[side] == IN_EXTREME) && !packed)
            return false;
        if (pair[side] >= IN_SATURATED && !legacy)
            return false;
    }
    return true;
}

/* Short rows are tried many times: a slip in one block is not absorbed by a long sum. Every
 * pairing runs at least twice, once in each buffer layout. */
static int64_t repeats(int64_t n, int64_t block)
{
    int64_t blocks = n / block;
    return 2 + 32 / (blocks ? blocks : 32);
}

static void check_vec_dot(const isa_level *isa, const lb_kernels_dsp *c,
                          const lb_kernels_dsp *dsp, const lb_kernel_type *k,
                          const char *name, uint64_t seed)
{
    int64_t sizes[16];
    const int64_t block = lb_type_get((uint32_t)k->type)->block_size;
    int64_t count = test_sizes(block, sizes);
    int64_t cases = 0;
    bool ok = true;
    double worst_random = 0.0, worst_bound = 0.0;
    char detail[256] = "";
    for (int64_t si = 0; si < count && ok; si++) {
        const int64_t n = sizes[si];
        const size_t w_bytes = (size_t)row_bytes(k->type, n);
        const size_t a_bytes = (size_t)row_bytes(k->vec_dot_type, n);
        const size_t floats = ((size_t)n + 1) * sizeof(float);
        float *xf = malloc(floats), *wd = malloc(floats), *ad = malloc(floats);
        float *hi = malloc(floats), *lo = malloc(floats);
        uint8_t *wq = malloc(w_bytes + 1), *aq = malloc(a_bytes + 1);
        uint8_t *scratch = malloc(w_bytes + 1);
        lb_rng state;
        lb_rng_seed(&state, seed ^ (uint64_t)(n * 131 + (int64_t)k->type) * 0x9e3779b97f4a7c15ull);
        const int64_t reps = repeats(n, block);
        for (int64_t r = 0; r < reps && ok; r++) {
            for (size_t p = 0; p < COUNT(dot_pairs) && ok; p++) {
                if (!pair_applies(k, dot_pairs[p]))
                    continue;
                /* Alternating layouts: inputs that end at a PROT_NONE page, or misaligned
                 * starts with guard bytes both sides. */
                const layout where = (r + (int64_t)p) % 2 ? GUARDED : AT_PAGE_END;
                const size_t shift = (size_t)((r + (int64_t)p) / 2 % 3) * 4;
                make_row(k->type, dot_pairs[p][0], n, xf, wq, &state);
                make_row(k->vec_dot_type, dot_pairs[p][1], n, xf, aq, &state);
                guarded w, a;
                guarded_alloc(&w, w_bytes, shift, where);
                guarded_alloc(&a, a_bytes, 2 * shift, where);
                memcpy(w.data, wq, w_bytes);
                memcpy(a.data, aq, a_bytes);
                char what[96];
                snprintf(what, sizeof what, "weights %s, activations %s, %s",
                         kind_names[dot_pairs[p][0]], kind_names[dot_pairs[p][1]],
                         where == GUARDED ? "guard bytes" : "ending at a PROT_NONE page");
                set_fault_context(isa->name, "vec_dot", name, n, what);
                float ref = c->vec_dot[k->type](w.data, a.data, n);
                float got = dsp->vec_dot[k->type](w.data, a.data, n);
                cases++;
                if (isa->dot_bit_exact) {
                    if (memcmp(&got, &ref, sizeof got) != 0) {
                        ok = false;
                        snprintf(detail, sizeof detail, "n=%" PRId64 " %s: got %.9g, C %.9g "
                                 "(must be the same bits)", n, what, (double)got, (double)ref);
                    }
                } else {
                    dot_scales sc = dot_scales_of(k, w.data, a.data, n, wd, ad, hi, lo, scratch);
                    const bool random =
                        dot_pairs[p][0] == IN_RANDOM && dot_pairs[p][1] == IN_RANDOM;
                    const double err = fabs((double)got - (double)ref);
                    const double bound = dot_worst_case(n) * sc.m;
                    if (!isfinite(got) || !(err <= bound) ||
                        (random && !(err <= VEC_DOT_TOL * sc.s))) {
                        ok = false;
                        snprintf(detail, sizeof detail, "n=%" PRId64 " %s: got %.9g, C %.9g, "
                                 "exact %.9g, S %.6g, M %.6g", n, what, (double)got,
                                 (double)ref, sc.exact, sc.s, sc.m);
                    } else {
                        if (bound > 0.0 && err / bound > worst_bound)
                            worst_bound = err / bound;
                        if (random && sc.s > 0.0 && err / sc.s > worst_random)
                            worst_random = err / sc.s;
                    }
                }
                if (!guarded_intact(&w) || !guarded_intact(&a) ||
                    memcmp(w.data, wq, w_bytes) != 0 || memcmp(a.data, aq, a_bytes) != 0) {
                    ok = false;
                    snprintf(detail, sizeof detail, "n=%" PRId64 " %s: wrote into its inputs or "
                             "their guard bytes", n, what);
                }
                guarded_free(&w);
                guarded_free(&a);
            }
        }
        free(xf);
        free(wd);
        free(ad);
        free(hi);
        free(lo);
        free(wq);
        free(aq);
        free(scratch);
    }
    if (ok && isa->dot_bit_exact)
        snprintf(detail, sizeof detail, "(%" PRId64 " cases, bit-exact)", cases);
    else if (ok)
        snprintf(detail, sizeof detail, "(%" PRId64 " cases; random rows: max |diff| / S = %.2g, "
                 "tolerance %.0e; all: max |diff| / worst case = %.2g)", cases, worst_random,
                 VEC_DOT_TOL, worst_bound);
    report(isa->name, "vec_dot", name, ok, detail);
}

static const input_kind quantize_kinds[] = {IN_RANDOM, IN_ZERO,    IN_CONST,
                                            IN_OUTLIER, IN_SPIKE,  IN_TIES,
                                            IN_SPECIAL, IN_TINY,   IN_HUGE};

static void check_quantize_activations(const isa_level *isa, const lb_kernels_dsp *c,
                                       const lb_kernels_dsp *dsp, lb_type t, const char *name,
                                       uint64_t seed)
{
    int64_t sizes[16];
    int64_t count = test_sizes(lb_type_get((uint32_t)t)->block_size, sizes);
    int64_t cases = 0;
    bool ok = true;
    char detail[200] = "";
    for (int64_t si = 0; si < count && ok; si++) {
        const int64_t n = sizes[si];
        const size_t bytes = (size_t)row_bytes(t, n);
        lb_rng state;
        lb_rng_seed(&state, seed ^ (uint64_t)(n * 977 + (int64_t)t) * 0xd1b54a32d192ed03ull);
        for (size_t kk = 0; kk < COUNT(quantize_kinds) && ok; kk++) {
            /* importance NULL (the activation path), then random importance: the variants
             * must treat it as the reference does */
            for (int with_importance = 0; with_importance < 2 && ok; with_importance++) {
                const int64_t variant = (int64_t)kk * 2 + with_importance;
                const layout where = variant % 2 ? GUARDED : AT_PAGE_END;
                const size_t shift = (size_t)(variant / 2 % 3) * 4;
                guarded x, imp, ref, got;
                guarded_alloc(&x, (size_t)n * sizeof(float), shift, where);
                guarded_alloc(&imp, (size_t)n * sizeof(float), 0, where);
                guarded_alloc(&ref, bytes, 0, GUARDED);
                guarded_alloc(&got, bytes, shift, GUARDED);
                float *xf = (float *)(void *)x.data, *impf = (float *)(void *)imp.data;
                fill_kind(xf, n, quantize_kinds[kk], &state);
                for (int64_t i = 0; i < n; i++)
                    impf[i] = lb_rng_uniform_pm1(&state) + 1.0f;
                const float *importance = with_importance ? impf : NULL;
                char what[96];
                snprintf(what, sizeof what, "input %s%s, %s", kind_names[quantize_kinds[kk]],
                         with_importance ? " with importance" : "",
                         where == GUARDED ? "guard bytes" : "ending at a PROT_NONE page");
                set_fault_context(isa->name, "quantize_activations", name, n, what);
                c->quantize_activations[t](xf, ref.data, n, importance);
                dsp->quantize_activations[t](xf, got.data, n, importance);
                cases++;
                if (memcmp(ref.data, got.data, bytes) != 0) {
                    size_t at = 0;
                    while (at < bytes && ref.data[at] == got.data[at])
                        at++;
                    ok = false;
                    snprintf(detail, sizeof detail, "n=%" PRId64 " %s: first differing byte %zu "
                             "of %zu (got 0x%02x, C 0x%02x)", n, what, at, bytes, got.data[at],
                             ref.data[at]);
                }
                if (!guarded_intact(&x) || !guarded_intact(&imp) || !guarded_intact(&ref) ||
                    !guarded_intact(&got)) {
                    ok = false;
                    snprintf(detail, sizeof detail, "n=%" PRId64 " %s: guard bytes overwritten",
                             n, what);
                }
                guarded_free(&x);
                guarded_free(&imp);
                guarded_free(&ref);
                guarded_free(&got);
            }
        }
    }
    if (ok)
        snprintf(detail, sizeof detail, "(%" PRId64 " cases, bit-exact)", cases);
    report(isa->name, "quantize_activations", name, ok, detail);
}

/* lb_gemm at this ISA level: against the double reference, each output equal to one vec_dot
 * call (so vec_dot_x4, where the type has one, gives vec_dot's bits), identical at 1 and 2
 * threads, guard bytes intact, activations and workspace ending at a PROT_NONE page. */
static void check_gemm(const isa_level *isa, const lb_kernels_dsp *c, const lb_kernels_dsp *dsp,
                       const lb_kernel_type *k, const char *name, uint64_t seed)
{
    const int64_t rows = 37;
    const int64_t block = lb_type_get((uint32_t)k->type)->block_size;
    /* legacy rows of 15 blocks: three groups of four and a tail of three in the AVX2 dots */
    const int64_t cols = block == 1 ? 261 : block == 32 ? 480 : 768;
    /* 17: four vec_dot_x4 calls and a vec_dot; 403: more than lb_gemm's activation tile at
     * these widths (about 190 KiB of quantized rows) */
    const int64_t batches[] = {1, 3, 17, 403};
    const lb_kernel_type *act = lb_kernels_type(k->vec_dot_type);
    uint64_t w_row = row_bytes(k->type, cols), a_row = row_bytes(k->vec_dot_type, cols);
    bool ok = true;
    double worst = 0.0;
    char detail[200] = "";
    lb_rng state;
    lb_rng_seed(&state, seed ^ 0x6a09e667f3bcc909ull ^ (uint64_t)k->type);

    guarded w;
    guarded_alloc(&w, (size_t)(w_row * (uint64_t)rows), 4, GUARDED);
    float *row = malloc((size_t)cols * sizeof(float));
    double *wd = malloc((size_t)(rows * cols) * sizeof(double));
    float *tmp = malloc((size_t)cols * sizeof(float));
    uint8_t *aq = malloc((size_t)a_row);
    for (int64_t r = 0; r < rows; r++) {
        fill_values(row, cols, &state);
        k->quantize_row(row, w.data + (uint64_t)r * w_row, cols, NULL);
        k->dequantize_row(w.data + (uint64_t)r * w_row, tmp, cols);
        for (int64_t i = 0; i < cols; i++)
            wd[r * cols + i] = tmp[i];
    }
    int saved_threads = omp_get_max_threads();
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        int64_t batch = batches[bi];
        uint64_t ws_bytes = lb_gemm_workspace_bytes(k->type, cols, batch);
        guarded x, y, y2, ws;
        guarded_alloc(&x, (size_t)(batch * cols) * sizeof(float), 0, AT_PAGE_END);
        guarded_alloc(&y, (size_t)(batch * rows) * sizeof(float), 4, GUARDED);
        guarded_alloc(&y2, (size_t)(batch * rows) * sizeof(float), 0, GUARDED);
        guarded_alloc(&ws, (size_t)ws_bytes, 0, AT_PAGE_END);
        float *xf = (float *)(void *)x.data, *yf = (float *)(void *)y.data;
        for (int64_t b = 0; b < batch; b++)
            fill_values(xf + b * cols, cols, &state);

        char what[64];
        snprintf(what, sizeof what, "batch %" PRId64, batch);
        set_fault_context(isa->name, "gemm", name, cols, what);
        omp_set_num_threads(1);
        lb_status st1 = lb_kernels_gemm(dsp, k->type, w.data, rows, cols, xf, batch, yf, ws.data);
        omp_set_num_threads(2);
        lb_status st2 = lb_kernels_gemm(dsp, k->type, w.data, rows, cols, xf, batch,
                                (float *)(void *)y2.data, ws.data);
        omp_set_num_threads(saved_threads);
        if (st1 != LB_OK || st2 != LB_OK) {
            ok = false;
            snprintf(detail, sizeof detail, "batch %" PRId64 ": lb_gemm failed: %s", batch,
                     lb_last_error());
        } else if (memcmp(y.data, y2.data, y.size) != 0) {
            ok = false;
            snprintf(detail, sizeof detail, "batch %" PRId64 ": 1 and 2 threads differ", batch);
        }
        for (int64_t b = 0; b < batch && ok; b++) {
            /* Activations as the kernel sees them: the C quantizer, then dequantized. */
            c->quantize_activations[k->vec_dot_type](xf + b * cols, aq, cols, NULL);
            act->dequantize_row(aq, tmp, cols);
            for (int64_t r = 0; r < rows && ok; r++) {
                double exact = 0.0, s = 0.0;
                for (int64_t i = 0; i < cols; i++) {
                    double term = wd[r * cols + i] * (double)tmp[i];
                    exact += term;
                    s += fabs(term);
                }
                float got = yf[b * rows + r];
                float one = dsp->vec_dot[k->type](w.data + (uint64_t)r * w_row, aq, cols);
                double err = fabs((double)got - exact);
                if (memcmp(&got, &one, sizeof got) != 0) {
                    ok = false;
                    snprintf(detail, sizeof detail, "batch %" PRId64 " y[%" PRId64 "][%" PRId64
                             "] = %.9g is not vec_dot's %.9g", batch, b, r, (double)got,
                             (double)one);
                } else if (!(err <= GEMM_TOL * s)) {
                    ok = false;
                    snprintf(detail, sizeof detail, "batch %" PRId64 " y[%" PRId64 "][%" PRId64
                             "] = %.9g, exact %.9g, sum|terms| %.6g", batch, b, r,
                             (double)got, exact, s);
                } else if (s > 0.0 && err / s > worst) {
                    worst = err / s;
                }
            }
        }
        if (!guarded_intact(&w) || !guarded_intact(&x) || !guarded_intact(&y) ||
            !guarded_intact(&y2) || !guarded_intact(&ws)) {
            ok = false;
            snprintf(detail, sizeof detail, "batch %" PRId64 ": guard bytes overwritten", batch);
        }
        guarded_free(&x);
        guarded_free(&y);
        guarded_free(&y2);
        guarded_free(&ws);
    }
    guarded_free(&w);
    free(row);
    free(wd);
    free(tmp);
    free(aq);
    if (ok)
        snprintf(detail, sizeof detail, "(37 rows, batch 1/3/17/403, threads 1 = 2; max |err| / "
                 "sum|terms| = %.2g, tolerance %.0e)", worst, GEMM_TOL);
    report(isa->name, "gemm", name, ok, detail);
}

static bool type_selected(lb_type t)
{
    return !test_filter || strcasestr(lb_type_get((uint32_t)t)->name, test_filter);
}

static void run_checks(const isa_level *levels, int n_levels, uint64_t seed)
{
    lb_kernels_dsp c;
    lb_kernels_dsp_init(&c, 0);
    printf("dispatch:\n");
    check_dispatch(levels, n_levels, &c);
    for (int l = 0; l < n_levels; l++) {
        lb_kernels_dsp dsp;
        lb_kernels_dsp_init(&dsp, levels[l].flags);
        printf("%s:\n", levels[l].name);
        for (size_t i = 0; i < N_TYPES; i++) {
            lb_type t = all_types[i];
            const lb_kernel_type *k = lb_kernels_type(t);
            const char *name = lb_type_get((uint32_t)t)->name;
            if (!k || !type_selected(t))
                continue;
            if (dsp.quantize_activations[t] && dsp.quantize_activations[t] != c.quantize_activations[t])
                check_quantize_activations(&levels[l], &c, &dsp, t, name, seed);
            if (dsp.vec_dot[t] && dsp.vec_dot[t] != c.vec_dot[t])
                check_vec_dot(&levels[l], &c, &dsp, k, name, seed);
            if (dsp.vec_dot[t])
                check_gemm(&levels[l], &c, &dsp, k, name, seed);
        }
    }
}

/* The benches need cli/bench_harness.c and BLAS (through linalg), which the AArch64 cross build
 * (tests/arm/checkkern_qemu.sh, LB_CHECKKERN_NO_BENCH) does not link. */
#ifndef LB_CHECKKERN_NO_BENCH
/* ---- --bench ---- */


static int run_bench(const isa_level *levels, int n_levels, uint64_t seed)
{
    static const lb_type default_types[] = {LB_TYPE_F32,  LB_TYPE_Q8_0,   LB_TYPE_Q4_0,
                                            LB_TYPE_Q4_K, LB_TYPE_Q6_K,   LB_TYPE_Q2_K,
                                            LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS};
    static const int64_t shapes[][2] = {{4096, 4096}, {11008, 4096}};
    static const int64_t batches[] = {1, 8, 32, 256};
    static const int thread_counts[] = {1, 2};
    double read_gbps[3];
    printf("\nbench: LLC %.1f MiB; weights rotate over copies totalling >= 4x LLC; median ns "
           "per call; GB/s = weight bytes / time; /read = GB/s over the read bandwidth at the "
           "same thread count; the C level runs batch 1 and 8 only\n",
           (double)lb_bench_llc_bytes() / 1048576.0);
    for (size_t ti = 0; ti < 2; ti++) {
        read_gbps[thread_counts[ti]] = lb_bench_read_gbps(thread_counts[ti]);
        printf("bench: read bandwidth (256 MiB float sum, median of 7) at %d thread(s): "
               "%.2f GB/s\n", thread_counts[ti], read_gbps[thread_counts[ti]]);
    }
    printf("%-6s %-5s %-11s %5s %3s %13s %9s %9s %7s\n", "isa", "type", "rows x cols", "batch",
           "thr", "ns/call", "GB/s", "GFLOP/s", "/read");
    for (size_t si = 0; si < 2; si++) {
        int64_t rows = shapes[si][0], cols = shapes[si][1];
        lb_bench_matrix f32;
        if (lb_bench_matrix_create(&f32, LB_TYPE_F32, rows, cols, 0, seed) != LB_OK) {
            fprintf(stderr, "checkkern: %s\n", lb_last_error());
            return 1;
        }
        for (size_t bi = 0; bi < 4; bi++)
            for (size_t ti = 0; ti < 2; ti++) {
                int64_t batch = batches[bi];
                int threads = thread_counts[ti];
                double ns;
                if (lb_bench_blas_ns(&f32, batch, threads, lb_bench_max_calls(batch), &ns) !=
                    LB_OK) {
                    fprintf(stderr, "checkkern: %s\n", lb_last_error());
                    continue;
                }
                double gbps = (double)f32.bytes / ns;
                printf("%-6s %-5s %5" PRId64 "x%-5" PRId64 " %5" PRId64 " %3d %13.0f %9.2f %9.2f "
                       "%7.2f\n", "cblas", "F32", rows, cols, batch, threads, ns, gbps,
                       2.0 * (double)(rows * cols * batch) / ns, gbps / read_gbps[threads]);
            }
        for (size_t i = 0; i < N_TYPES; i++) {
            lb_type t = all_types[i];
            bool wanted = false;
            if (test_filter) {
                wanted = type_selected(t);
            } else {
                for (size_t d = 0; d < sizeof default_types / sizeof default_types[0]; d++)
                    wanted |= default_types[d] == t;
            }
            const lb_kernel_type *k = lb_kernels_type(t);
            if (!wanted || !k || !k->vec_dot)
                continue;
            lb_bench_matrix m;
            if (t == LB_TYPE_F32) {
                m = f32;
            } else if (lb_bench_matrix_create(&m, t, rows, cols, 0, seed) != LB_OK) {
                fprintf(stderr, "checkkern: %s\n", lb_last_error());
                lb_bench_matrix_free(&f32);
                return 1;
            }
            for (int l = 0; l < n_levels; l++) {
                /* The C references run at about 1 GFLOP/s: batch 32 and 256 would take
                 * minutes there, so the C level stops at batch 8. */
                size_t n_batches = levels[l].flags == 0 ? 2 : 4;
                for (size_t bi = 0; bi < n_batches; bi++)
                    for (size_t ti = 0; ti < 2; ti++) {
                        int64_t batch = batches[bi];
                        int threads = thread_counts[ti];
                        lb_bench_result r;
                        if (lb_bench_gemm(levels[l].flags, &m, batch, threads, lb_bench_max_calls(batch),
                                          &r) != LB_OK) {
                            fprintf(stderr, "checkkern: %s\n", lb_last_error());
                            continue;
                        }
                        printf("%-6s %-5s %5" PRId64 "x%-5" PRId64 " %5" PRId64 " %3d %13.0f "
                               "%9.2f %9.2f %7.2f\n", levels[l].name,
                               lb_type_get((uint32_t)t)->name, rows, cols, batch, threads,
                               r.ns_per_call, r.weight_gbps, r.gflops,
                               r.weight_gbps / read_gbps[threads]);
                        fflush(stdout);
                    }
            }
            if (t != LB_TYPE_F32)
                lb_bench_matrix_free(&m);
        }
        lb_bench_matrix_free(&f32);
    }
    return 0;
}

/* ---- --bench-dot ---- */

/* The time-stamp counter (rdtscp, as ggml's test-quantize-perf reads it), else nanoseconds. */
static int64_t dot_cycles(void)
{
#ifdef __x86_64__
    unsigned aux;
    return (int64_t)__rdtscp(&aux);
#else
    return (int64_t)lb_bench_now_ns();
#endif
}

/* ggml's test-quantize-perf vec_dot_q, mirrored: one row of n values at its sizes (-4: L1, L2,
 * L3, memory), weights and activations from 0.1 + 2 cos(i + offset) (offset 0 and 1) in
 * 64-byte aligned buffers, the activations quantized to the vec_dot_type outside the timing, one
 * thread, 5 warm-up calls, then `iters` calls each timed on its own. Printed as ggml does: min
 * and mean cycles per 32 values, and GiB/s of 4n f32 bytes and of the weight row's bytes over
 * the summed time. ggml takes -i for every size; ours is 2^26 / n, at least 10. */
static int run_bench_dot(const isa_level *levels, int n_levels)
{
    static const int64_t sizes[] = {32 * 128, 32 * 2048, 32 * 20480, 32 * 2048000};
    const int64_t largest = sizes[3];
    float *x = aligned_alloc(64, (size_t)largest * 2 * sizeof(float));
    uint8_t *w = aligned_alloc(64, (size_t)largest * 4);
    uint8_t *a = aligned_alloc(64, (size_t)largest * 4);
    volatile float sink = 0.0f;
    if (!x || !w || !a) {
        fprintf(stderr, "checkkern: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < largest; i++) {
        x[i] = (float)(0.1 + 2.0 * cosf((float)i));
        x[largest + i] = (float)(0.1 + 2.0 * cosf((float)i + 1.0f));
    }
    printf("bench-dot: vec_dot on one row as ggml test-quantize-perf -op vec_dot_q; cycles = %s\n"
           "%-6s %-5s %9s %6s %12s %12s %10s %10s\n",
#ifdef __x86_64__
           "rdtscp ticks",
#else
           "ns",
#endif
           "isa", "type", "values", "iters", "min cyc/32", "avg cyc/32", "f32 GiB/s", "q GiB/s");
    lb_kernels_dsp c;
    lb_kernels_dsp_init(&c, 0);
    for (size_t i = 0; i < N_TYPES; i++) {
        lb_type t = all_types[i];
        const lb_kernel_type *k = lb_kernels_type(t);
        if (!k || !k->vec_dot || !type_selected(t))
            continue;
        k->quantize_row(x, w, largest, NULL);
        c.quantize_activations[k->vec_dot_type](x + largest, a, largest, NULL);
        for (int l = 0; l < n_levels; l++) {
            lb_kernels_dsp dsp;
            lb_kernels_dsp_init(&dsp, levels[l].flags);
            lb_vec_dot_fn dot = dsp.vec_dot[t];
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                int64_t n = sizes[si], iters = (INT64_C(1) << 26) / n;
                int64_t min_cycles = INT64_MAX, cycles = 0;
                double ns = 0.0;
                iters = iters < 10 ? 10 : iters;
                for (int r = 0; r < 5; r++)
                    sink = sink + dot(w, a, n);
                for (int64_t r = 0; r < iters; r++) {
                    double t0 = lb_bench_now_ns();
                    int64_t c0 = dot_cycles();
                    sink = sink + dot(w, a, n);
                    int64_t c1 = dot_cycles();
                    ns += lb_bench_now_ns() - t0;
                    cycles += c1 - c0;
                    min_cycles = c1 - c0 < min_cycles ? c1 - c0 : min_cycles;
                }
                printf("%-6s %-5s %9" PRId64 " %6" PRId64 " %12.2f %12.2f %10.2f %10.2f\n",
                       levels[l].name, lb_type_get((uint32_t)t)->name, n, iters,
                       32.0 * (double)min_cycles / (double)n,
                       32.0 * (double)cycles / (double)(n * iters),
                       4.0 * (double)(n * iters) / ns * 1e9 / 1073741824.0,
                       (double)row_bytes(t, n) * (double)iters / ns * 1e9 / 1073741824.0);
                fflush(stdout);
            }
        }
    }
    free(x);
    free(w);
    free(a);
    return 0;
}
#endif /* LB_CHECKKERN_NO_BENCH */

int main(int argc, char **argv)
{
    uint64_t seed = 0x1b2c3d4e;
    bool bench = false, bench_dot = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (strncmp(argv[i], "--seed=", 7) == 0) {
            seed = strtoull(argv[i] + 7, NULL, 0);
        } else if (strncmp(argv[i], "--test=", 7) == 0) {
            test_filter = argv[i] + 7;
        } else if (strcmp(argv[i], "--bench") == 0) {
            bench = true;
        } else if (strcmp(argv[i], "--bench-dot") == 0) {
            bench_dot = true;
        } else {
            fprintf(stderr, "usage: checkkern [--seed N] [--test=TYPE] [--bench | --bench-dot]\n");
            return 2;
        }
    }
#ifdef LB_CHECKKERN_NO_BENCH
    if (bench || bench_dot) {
        fprintf(stderr, "checkkern: this build (LB_CHECKKERN_NO_BENCH) has no --bench\n");
        return 2;
    }
#endif
    unsigned cpu = lb_cpu_flags();
    isa_level levels[N_LEVELS];
    int n_levels = 0;
    for (size_t l = 0; l < sizeof all_levels / sizeof all_levels[0]; l++)
        if ((cpu & all_levels[l].flags) == all_levels[l].flags)
            levels[n_levels++] = all_levels[l];
    printf("checkkern: seed %" PRIu64 " (--seed %" PRIu64 " repeats this run), cpu flags 0x%x\n",
           seed, seed, cpu);
    setvbuf(stdout, NULL, _IOLBF, 0); /* what passed stays in the log if a fault ends the run */
    struct sigaction fault = {.sa_handler = on_fault};
    sigaction(SIGSEGV, &fault, NULL);
    sigaction(SIGBUS, &fault, NULL);
#ifndef LB_CHECKKERN_NO_BENCH
    if (bench_dot)
        return run_bench_dot(levels, n_levels);
#endif
    run_checks(levels, n_levels, seed);
    printf("checkkern: %" PRId64 " kernels checked, %" PRId64 " failed\n", kernels_checked,
           kernels_failed);
    int rc = kernels_failed ? 1 : 0;
#ifndef LB_CHECKKERN_NO_BENCH
    if (bench && run_bench(levels, n_levels, seed) != 0)
        rc = 1;
#endif
    return rc;
}
