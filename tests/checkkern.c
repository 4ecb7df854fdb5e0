/* checkkern: every dispatched kernel variant against the C reference at every ISA level this
 * CPU has (dav1d's checkasm in spirit), lb_gemm against a double-precision reference, with
 * --bench the speed of lb_gemm per type, batch, thread count and ISA, and with --bench-dot
 * (instead of the checks) the speed of one vec_dot per type and ISA. */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_harness.h"
#include "common/alloc.h"
#include "common/cpu.h"
#include "common/rng.h"
#include "kernels/dsp.h"
#include "kernels/kernels.h"
#include "kernels/quants_legacy.h"

#ifdef __x86_64__
#include <x86intrin.h>
#endif

/* Tolerances, relative to S = sum over i of |w_i * a_i| (dequantized operands, in double):
 * a variant's vec_dot may differ from the C reference by reassociating float sums, so
 * |variant - reference| <= VEC_DOT_TOL * S; lb_gemm must be within GEMM_TOL * S of the exact
 * double-precision dot of the dequantized weights and activations. Activation quantizers
 * must be bit-exact. */
#define VEC_DOT_TOL 1e-5
#define GEMM_TOL 1e-5

#define GUARD_BYTES 64
#define GUARD_BYTE(i) ((uint8_t)(0xa5u ^ (unsigned)((i) * 29u)))

typedef struct isa_level {
    const char *name;
    unsigned flags;
} isa_level;

static const isa_level all_levels[] = {
    {"c", 0},
    {"avx2", LB_CPU_AVX2},
    {"avx512", LB_CPU_AVX2 | LB_CPU_AVX512},
};

static const lb_type all_types[] = {
    LB_TYPE_F32,  LB_TYPE_F16,  LB_TYPE_BF16, LB_TYPE_Q4_0, LB_TYPE_Q4_1,
    LB_TYPE_Q5_0, LB_TYPE_Q5_1, LB_TYPE_Q8_0, LB_TYPE_Q2_K, LB_TYPE_Q3_K,
    LB_TYPE_Q4_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K, LB_TYPE_Q8_K,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static int64_t kernels_checked, kernels_failed;
static const char *test_filter;

/* ---- random numbers and guarded buffers ---- */

/* Values in [-1, 1) with an outlier every so often and, in some rows, a run of zeros (a
 * block whose scale is 0). */
static void fill_values(float *x, int64_t n, lb_rng *rng)
{
    float scale = 0.01f + (float)(lb_rng_next(rng) % 1000) * 0.01f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = scale * lb_rng_uniform_pm1(rng);
        if (lb_rng_next(rng) % 61 == 0)
            x[i] *= 16.0f;
    }
    if (n >= 64 && lb_rng_next(rng) % 3 == 0) {
        int64_t start = (int64_t)(lb_rng_next(rng) % (uint64_t)(n - 32)) & ~(int64_t)31;
        memset(x + start, 0, 32 * sizeof(float));
    }
}

/* A buffer of `size` bytes starting `misalign` bytes past a 64-byte boundary, with guard bytes
 * either side. */
typedef struct guarded {
    uint8_t *base;
    uint8_t *data;
    size_t size, total;
} guarded;

static void guarded_alloc(guarded *g, size_t size, size_t misalign)
{
    g->size = size;
    g->total = (2 * GUARD_BYTES + misalign + size + 63) & ~(size_t)63;
    g->base = aligned_alloc(64, g->total);
    if (!g->base) {
        fprintf(stderr, "checkkern: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < g->total; i++)
        g->base[i] = GUARD_BYTE(i);
    g->data = g->base + GUARD_BYTES + misalign;
}

static bool guarded_intact(const guarded *g)
{
    size_t begin = (size_t)(g->data - g->base), end = begin + g->size;
    for (size_t i = 0; i < g->total; i++)
        if ((i < begin || i >= end) && g->base[i] != GUARD_BYTE(i))
            return false;
    return true;
}

static void guarded_free(guarded *g)
{
    free(g->base);
    g->base = g->data = NULL;
}

static uint64_t row_bytes(lb_type type, int64_t n)
{
    uint64_t bytes = 0;
    bool ok = lb_type_row_bytes(type, n, &bytes);
    (void)ok;
    return bytes;
}

/* Row lengths to test for a block size: 1, 3 and 7 blocks, then LLaMA-7B's 4096 and 11008,
 * plus odd tails for the float types. */
static int64_t test_sizes(int64_t block, int64_t *sizes)
{
    int64_t count = 0;
    const int64_t candidates[] = {block, 3 * block, 7 * block, 4096, 11008};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (candidates[i] % block == 0)
            sizes[count++] = candidates[i];
    if (block == 1) { /* SIMD tails: partial vectors, 1-3 leftover vectors, both */
        static const int64_t tails[] = {13, 21, 33, 50, 255};
        for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++)
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

static double abs_dot_bound(const lb_kernel_type *k, const void *w, const void *a, int64_t n,
                            float *wd, float *ad)
{
    k->dequantize_row(w, wd, n);
    lb_kernels_type(k->vec_dot_type)->dequantize_row(a, ad, n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)wd[i] * (double)ad[i]);
    return s;
}

/* Trials 3 and 4 of the legacy types: every weight code at its extreme (all nibbles and fifth
 * bits set, Q8_0 -128) against activations all -128 (trial 3) or all +127 (trial 4), codes the
 * quantizers never write, so only raw bytes reach the int16 limits of the SIMD partial sums. */
static void saturate_legacy(lb_type t, uint8_t *w, uint8_t *a, int64_t n, int trial)
{
    size_t start, block;
    switch (t) {
    case LB_TYPE_Q8_0: start = offsetof(lb_block_q8_0, qs), block = sizeof(lb_block_q8_0); break;
    case LB_TYPE_Q4_0: start = offsetof(lb_block_q4_0, qs), block = sizeof(lb_block_q4_0); break;
    case LB_TYPE_Q4_1: start = offsetof(lb_block_q4_1, qs), block = sizeof(lb_block_q4_1); break;
    case LB_TYPE_Q5_0: start = offsetof(lb_block_q5_0, qh), block = sizeof(lb_block_q5_0); break;
    case LB_TYPE_Q5_1: start = offsetof(lb_block_q5_1, qh), block = sizeof(lb_block_q5_1); break;
    default: return;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        memset(w + (size_t)b * block + start, t == LB_TYPE_Q8_0 ? 0x80 : 0xff, block - start);
        lb_block_q8_0 *ab = (lb_block_q8_0 *)(void *)(a + (size_t)b * sizeof *ab);
        memset(ab->qs, trial == 3 ? 0x80 : 0x7f, sizeof ab->qs);
    }
}

static void check_vec_dot(const isa_level *isa, const lb_kernels_dsp *c,
                          const lb_kernels_dsp *dsp, const lb_kernel_type *k,
                          const char *name, uint64_t seed)
{
    int64_t sizes[16];
    const lb_type_info *info = lb_type_get((uint32_t)k->type);
    int64_t count = test_sizes(info->block_size, sizes);
    bool ok = true;
    double worst = 0.0;
    char detail[160] = "";
    for (int64_t si = 0; si < count && ok; si++) {
        for (int trial = 0; trial < 5 && ok; trial++) {
            int64_t n = sizes[si];
            if (trial >= 3 && (k->vec_dot_type != LB_TYPE_Q8_0 || k->type == LB_TYPE_F32))
                break;
            lb_rng state;
            lb_rng_seed(&state, seed ^ (uint64_t)(n * 131 + trial) * 0x9e3779b97f4a7c15ull);
            float *xw = malloc((size_t)n * sizeof(float)), *xa = malloc((size_t)n * sizeof(float));
            float *wd = malloc((size_t)n * sizeof(float)), *ad = malloc((size_t)n * sizeof(float));
            guarded w, a;
            guarded_alloc(&w, row_bytes(k->type, n), (size_t)trial * 4);
            guarded_alloc(&a, row_bytes(k->vec_dot_type, n), (size_t)trial * 2 * 4);
            fill_values(xw, n, &state);
            fill_values(xa, n, &state);
            k->quantize_row(xw, w.data, n, NULL);
            c->quantize_activations[k->vec_dot_type](xa, a.data, n, NULL);
            if (trial >= 3)
                saturate_legacy(k->type, w.data, a.data, n, trial);
            float ref = c->vec_dot[k->type](w.data, a.data, n);
            float got = dsp->vec_dot[k->type](w.data, a.data, n);
            double s = abs_dot_bound(k, w.data, a.data, n, wd, ad);
            double err = fabs((double)got - (double)ref);
            if (!isfinite(got) || !(err <= VEC_DOT_TOL * s)) {
                ok = false;
                snprintf(detail, sizeof detail, "n=%" PRId64 " trial %d: got %.9g, C %.9g, "
                         "sum|terms| %.6g", n, trial, (double)got, (double)ref, s);
            } else if (s > 0.0 && err / s > worst) {
                worst = err / s;
            }
            if (!guarded_intact(&w) || !guarded_intact(&a)) {
                ok = false;
                snprintf(detail, sizeof detail, "n=%" PRId64 ": wrote into its inputs' guard bytes", n);
            }
            guarded_free(&w);
            guarded_free(&a);
            free(xw);
            free(xa);
            free(wd);
            free(ad);
        }
    }
    if (ok)
        snprintf(detail, sizeof detail, "(max |diff| / sum|terms| = %.2g, tolerance %.0e)",
                 worst, VEC_DOT_TOL);
    report(isa->name, "vec_dot", name, ok, detail);
}

static void check_quantize_activations(const isa_level *isa, const lb_kernels_dsp *c,
                                       const lb_kernels_dsp *dsp, lb_type t, const char *name,
                                       uint64_t seed)
{
    int64_t sizes[16];
    int64_t count = test_sizes(lb_type_get((uint32_t)t)->block_size, sizes);
    bool ok = true;
    char detail[160] = "";
    for (int64_t si = 0; si < count && ok; si++) {
        for (int trial = 0; trial < 3 && ok; trial++) {
            int64_t n = sizes[si];
            lb_rng state;
            lb_rng_seed(&state, seed ^ (uint64_t)(n * 977 + trial) * 0xd1b54a32d192ed03ull);
            size_t bytes = (size_t)row_bytes(t, n);
            guarded x, ref, got;
            guarded_alloc(&x, (size_t)n * sizeof(float), (size_t)trial * 4);
            guarded_alloc(&ref, bytes, 0);
            guarded_alloc(&got, bytes, (size_t)trial * 4);
            fill_values((float *)(void *)x.data, n, &state);
            c->quantize_activations[t]((const float *)(void *)x.data, ref.data, n, NULL);
            dsp->quantize_activations[t]((const float *)(void *)x.data, got.data, n, NULL);
            if (memcmp(ref.data, got.data, bytes) != 0) {
                size_t at = 0;
                while (at < bytes && ref.data[at] == got.data[at])
                    at++;
                ok = false;
                snprintf(detail, sizeof detail, "n=%" PRId64 " trial %d: first differing byte %zu "
                         "of %zu", n, trial, at, bytes);
            }
            if (!guarded_intact(&x) || !guarded_intact(&got)) {
                ok = false;
                snprintf(detail, sizeof detail, "n=%" PRId64 ": guard bytes overwritten", n);
            }
            guarded_free(&x);
            guarded_free(&ref);
            guarded_free(&got);
        }
    }
    report(isa->name, "quantize_activations", name, ok, ok ? "(bit-exact)" : detail);
}

/* lb_gemm at this ISA level: against the double reference, each output equal to one vec_dot
 * call (so vec_dot_x4, where the type has one, gives vec_dot's bits), identical at 1 and 2
 * threads, guard bytes intact. */
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
    guarded_alloc(&w, (size_t)(w_row * (uint64_t)rows), 4);
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
        guarded_alloc(&x, (size_t)(batch * cols) * sizeof(float), 0);
        guarded_alloc(&y, (size_t)(batch * rows) * sizeof(float), 4);
        guarded_alloc(&y2, (size_t)(batch * rows) * sizeof(float), 0);
        guarded_alloc(&ws, (size_t)ws_bytes, 0);
        float *xf = (float *)(void *)x.data, *yf = (float *)(void *)y.data;
        for (int64_t b = 0; b < batch; b++)
            fill_values(xf + b * cols, cols, &state);

        omp_set_num_threads(1);
        lb_status st1 = lb_gemm(dsp, k->type, w.data, rows, cols, xf, batch, yf, ws.data);
        omp_set_num_threads(2);
        lb_status st2 = lb_gemm(dsp, k->type, w.data, rows, cols, xf, batch,
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

/* ---- --bench ---- */


static int run_bench(const isa_level *levels, int n_levels, uint64_t seed)
{
    static const lb_type default_types[] = {LB_TYPE_F32, LB_TYPE_Q8_0, LB_TYPE_Q4_0,
                                            LB_TYPE_Q4_K, LB_TYPE_Q6_K, LB_TYPE_Q2_K};
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
                lb_kernels_dsp dsp;
                lb_kernels_dsp_init(&dsp, levels[l].flags);
                /* The C references run at about 1 GFLOP/s: batch 32 and 256 would take
                 * minutes there, so the C level stops at batch 8. */
                size_t n_batches = levels[l].flags == 0 ? 2 : 4;
                for (size_t bi = 0; bi < n_batches; bi++)
                    for (size_t ti = 0; ti < 2; ti++) {
                        int64_t batch = batches[bi];
                        int threads = thread_counts[ti];
                        lb_bench_result r;
                        if (lb_bench_gemm(&dsp, &m, batch, threads, lb_bench_max_calls(batch),
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
    unsigned cpu = lb_cpu_flags();
    isa_level levels[3];
    int n_levels = 0;
    for (size_t l = 0; l < sizeof all_levels / sizeof all_levels[0]; l++)
        if ((cpu & all_levels[l].flags) == all_levels[l].flags)
            levels[n_levels++] = all_levels[l];
    printf("checkkern: seed %" PRIu64 " (--seed %" PRIu64 " repeats this run), cpu flags 0x%x\n",
           seed, seed, cpu);
    if (bench_dot)
        return run_bench_dot(levels, n_levels);
    run_checks(levels, n_levels, seed);
    printf("checkkern: %" PRId64 " kernels checked, %" PRId64 " failed\n", kernels_checked,
           kernels_failed);
    int rc = kernels_failed ? 1 : 0;
    if (bench && run_bench(levels, n_levels, seed) != 0)
        rc = 1;
    return rc;
}
