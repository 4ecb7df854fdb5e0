/* lowbit bench: speed of one lb_gemm configuration against the machine's read bandwidth and
 * the CBLAS f32 baseline, measured in the same run; or of GPTQ on a synthetic layer, split
 * into its phases, against CBLAS SGEMM/DGEMM measured in the same run. */
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "common/cpu.h"
#include "kernels/bench.h"
#include "kernels/dsp.h"
#include "common/rng.h"
#include "linalg/linalg.h"
#include "quant/gptq.h"
#include "quant/hessian.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit bench gemv|gemm [--type T] [--rows R] [--cols C] [--batch B]\n"
            "                   [--threads N] [--isa c|avx2|avx512] [--json]\n"
            "       lowbit bench gptq [--type T] [--rows R] [--cols C] [--threads N]\n"
            "                   [--repeat K] [--json]\n\n"
            "gemv|gemm: times lb_gemm on a random R x C weight matrix of type T (quantized with\n"
            "the reference quantizer and replicated so that the copies cycled through exceed 4x\n"
            "the last-level cache), and in the same run the streaming read bandwidth and the\n"
            "CBLAS f32 baseline (sgemv / sgemm) at the same thread count.\n\n"
            "gptq: times lb_gptq_quantize (no RTN comparison) on a random R x C layer with a\n"
            "C x C Hessian accumulated by lb_hessian_add from 2*C correlated synthetic input\n"
            "tokens (timed as well), K times on a fresh copy of the Hessian; reports the medians\n"
            "of the total and of the Cholesky, sweep and trailing-update phases, the trailing\n"
            "updates' GFLOP/s, and in the same run the GFLOP/s of CBLAS sgemm and dgemm on the\n"
            "trailing update's shape (64 x C x 128, N OpenMP threads with BLAS pinned to one\n"
            "thread each, as GPTQ runs it) and on 2048^3 (OpenBLAS with N threads).\n\n"
            "  --type T      weight type (default Q4_K)\n"
            "  --rows R      output rows (default 4096)\n"
            "  --cols C      row length, a multiple of the block size (default 4096)\n"
            "  --batch B     activation rows (gemv: 1; gemm default 32)\n"
            "  --threads N   OpenMP threads (default: all cores)\n"
            "  --isa NAME    kernels for c, avx2 or avx512 (default: the best this CPU has)\n"
            "  --repeat K    gptq: GPTQ runs to take the medians of (default 3)\n"
            "  --json        machine-readable result on stdout\n"
            "  -h, --help    this text\n");
}

/* ---- bench gptq ---------------------------------------------------------------------------- */

/* Columns per lazy batch and rows per work item of lb_gptq_quantize (its defaults): the shape
 * of one trailing update is GPTQ_CHUNK_ROWS x (cols - i2) x GPTQ_BATCH. */
#define GPTQ_BATCH 128
#define GPTQ_CHUNK_ROWS 64
/* Latent factors of the synthetic inputs and tokens per lb_hessian_add call. */
#define GPTQ_LATENT 32
#define GPTQ_TOKENS_PER_ADD 512
/* Side of the square baseline GEMM. */
#define GPTQ_SQUARE 2048

/* Uniform in [-1, 1). */
static double rng_pm1(lb_rng *rng)
{
    return (double)(lb_rng_next(rng) >> 11) * 0x1p-52 - 1.0;
}

/* Standard normal (Box-Muller, one value per call: the generator is cheap next to the rest). */
static double rng_normal(lb_rng *rng)
{
    double u = ((double)(lb_rng_next(rng) >> 11) + 0.5) * 0x1p-53;
    double v = (double)(lb_rng_next(rng) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* H = Σ x xᵀ over `tokens` synthetic inputs x = s ∘ (g M + 0.3 u): g ~ N(0, I) over
 * GPTQ_LATENT factors, M ~ N(0, 1/GPTQ_LATENT), u uniform with unit variance, and per-channel
 * scales s = exp(N(0, 1/4)) with 1% outlier channels 8x larger, so that H is correlated,
 * well away from diagonal and with a spread diagonal like a real layer's. Only the
 * lb_hessian_add calls are timed (seconds, flops: the GEMMs it runs). */
static lb_status synthetic_hessian(int64_t cols, int64_t tokens, uint64_t seed, lb_hessian *hs,
                                   double *seconds, double *flops)
{
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t batch = GPTQ_TOKENS_PER_ADD < tokens ? GPTQ_TOKENS_PER_ADD : tokens;
    float *scale = lb_malloc((size_t)cols * sizeof *scale);
    float *m = lb_malloc((size_t)(GPTQ_LATENT * cols) * sizeof *m);
    float *g = lb_malloc((size_t)(batch * GPTQ_LATENT) * sizeof *g);
    float *x = lb_malloc((size_t)(batch * cols) * sizeof *x);
    lb_status status = LB_OK;
    int blas = -1;
    memset(hs, 0, sizeof *hs);
    *seconds = 0.0;
    *flops = 0.0;
    if (!scale || !m || !g || !x) {
        status = lb_error(LB_ERR_NOMEM, "out of memory for the synthetic inputs");
        goto done;
    }
    if ((status = lb_hessian_init(hs, cols)) != LB_OK)
        goto done;
    for (int64_t c = 0; c < cols; c++) {
        double s = exp(0.5 * rng_normal(&rng));
        scale[c] = (float)(lb_rng_below(&rng, 100) == 0 ? 8.0 * s : s);
    }
    for (int64_t l = 0; l < GPTQ_LATENT; l++)
        for (int64_t c = 0; c < cols; c++)
            m[l * cols + c] = (float)(rng_normal(&rng) / sqrt((double)GPTQ_LATENT)) * scale[c];
    /* The small G M products run on one BLAS thread: OpenBLAS workers left spinning between
     * them would compete with lb_hessian_add's OpenMP threads. */
    blas = lb_linalg_blas_threads_pin();
    for (int64_t t0 = 0; t0 < tokens; t0 += batch) {
        int64_t nt = tokens - t0 < batch ? tokens - t0 : batch;
        for (int64_t i = 0; i < nt * GPTQ_LATENT; i++)
            g[i] = (float)rng_normal(&rng);
        lb_linalg_sgemm(false, false, nt, cols, GPTQ_LATENT, 1.0f, g, GPTQ_LATENT, m, cols,
                        0.0f, x, cols);
        for (int64_t t = 0; t < nt; t++)
            for (int64_t c = 0; c < cols; c++)
                x[t * cols + c] += (float)(0.3 * sqrt(3.0) * rng_pm1(&rng)) * scale[c];
        double start = omp_get_wtime();
        status = lb_hessian_add(hs, x, nt);
        *seconds += omp_get_wtime() - start;
        if (status != LB_OK)
            goto done;
    }
    lb_hessian_finish(hs);
    /* lb_hessian_add: per tile of 64 rows of H from t0, a (rows x (n - t0) x tokens) GEMM. */
    for (int64_t t0 = 0; t0 < cols; t0 += 64) {
        int64_t r = cols - t0 < 64 ? cols - t0 : 64;
        *flops += 2.0 * (double)r * (double)(cols - t0) * (double)tokens;
    }
done:
    if (blas >= 0)
        lb_linalg_blas_threads_restore(blas);
    if (status != LB_OK)
        lb_hessian_free(hs);
    lb_free(scale);
    lb_free(m);
    lb_free(g);
    lb_free(x);
    return status;
}

/* GFLOP/s of GEMMs shaped like one row chunk's trailing update in lb_gptq_quantize:
 * C (GPTQ_CHUNK_ROWS x cols, ldc cols) -= A (GPTQ_CHUNK_ROWS x k) B (k x cols), B taken in turn
 * from the k-row slabs of the cols x cols matrix `big` (double or float) so that it streams
 * through memory like GPTQ's U. Run as GPTQ runs it: `threads` OpenMP threads, each with its
 * own A and C, BLAS pinned to one thread. Median over several timed passes; -1 on failure. */
static double bench_chunk_gemm(bool dbl, const void *big, int64_t cols, int threads)
{
    enum { PASSES = 7 };
    int64_t k = cols < GPTQ_BATCH ? cols : GPTQ_BATCH, slabs = cols / k;
    double flops_call = 2.0 * GPTQ_CHUNK_ROWS * (double)k * (double)cols;
    /* About 4 GFLOP per thread and pass. */
    int64_t calls = (int64_t)ceil(4e9 / flops_call);
    if (calls < 4)
        calls = 4;
    size_t elem = dbl ? sizeof(double) : sizeof(float);
    double times[PASSES + 1], start = 0.0;
    bool failed = false;
    int blas = lb_linalg_blas_threads_pin();
#pragma omp parallel num_threads(threads)
    {
        int tid = omp_get_thread_num();
        void *a = lb_malloc((size_t)(GPTQ_CHUNK_ROWS * k) * elem);
        void *c = lb_malloc((size_t)(GPTQ_CHUNK_ROWS * cols) * elem);
        bool ok = a && c;
        if (!ok) {
#pragma omp atomic write
            failed = true;
        } else {
            lb_rng rng;
            lb_rng_seed(&rng, 0xc0ffee + (uint64_t)tid);
            for (int64_t i = 0; i < GPTQ_CHUNK_ROWS * k; i++) {
                double v = 1e-3 * rng_pm1(&rng);
                if (dbl)
                    ((double *)a)[i] = v;
                else
                    ((float *)a)[i] = (float)v;
            }
            memset(c, 0, (size_t)(GPTQ_CHUNK_ROWS * cols) * elem);
        }
        for (int pass = 0; pass <= PASSES; pass++) { /* pass 0 is warm-up */
#pragma omp barrier
#pragma omp master
            start = omp_get_wtime();
            for (int64_t j = 0; ok && j < (pass == 0 ? 2 : calls); j++) {
                int64_t row = ((j + (int64_t)tid * 7) % slabs) * k;
                if (dbl)
                    lb_linalg_dgemm(false, false, GPTQ_CHUNK_ROWS, cols, k, -1.0, a, k,
                                    (const double *)big + row * cols, cols, 1.0, c, cols);
                else
                    lb_linalg_sgemm(false, false, GPTQ_CHUNK_ROWS, cols, k, -1.0f, a, k,
                                    (const float *)big + row * cols, cols, 1.0f, c, cols);
            }
#pragma omp barrier
#pragma omp master
            times[pass] = omp_get_wtime() - start;
        }
        lb_free(a);
        lb_free(c);
    }
    lb_linalg_blas_threads_restore(blas);
    if (failed)
        return -1.0;
    double seconds = lb_bench_median(times + 1, PASSES);
    return seconds > 0.0 ? (double)threads * (double)calls * flops_call / seconds * 1e-9 : -1.0;
}

/* GFLOP/s of an n^3 GEMM with OpenBLAS's own threading at `threads` threads: median of 3
 * calls after a warm-up; -1 on failure. */
static double bench_square_gemm(bool dbl, int64_t n, int threads)
{
    enum { CALLS = 3 };
    size_t elem = dbl ? sizeof(double) : sizeof(float), count = (size_t)(n * n);
    void *a = lb_malloc(count * elem), *b = lb_malloc(count * elem), *c = lb_malloc(count * elem);
    double times[CALLS], gflops = -1.0;
    if (!a || !b || !c)
        goto done;
    lb_rng rng;
    lb_rng_seed(&rng, 0x5157);
    for (size_t i = 0; i < count; i++) {
        double u = rng_pm1(&rng), v = rng_pm1(&rng);
        if (dbl) {
            ((double *)a)[i] = u;
            ((double *)b)[i] = v;
        } else {
            ((float *)a)[i] = (float)u;
            ((float *)b)[i] = (float)v;
        }
    }
    int previous = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    for (int i = 0; i <= CALLS; i++) {
        double start = omp_get_wtime();
        if (dbl)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0,
                        a, (int)n, b, (int)n, 0.0, c, (int)n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f,
                        a, (int)n, b, (int)n, 0.0f, c, (int)n);
        if (i > 0)
            times[i - 1] = omp_get_wtime() - start;
    }
    openblas_set_num_threads(previous);
    gflops = 2.0 * (double)n * (double)n * (double)n / lb_bench_median(times, CALLS) * 1e-9;
done:
    lb_free(a);
    lb_free(b);
    lb_free(c);
    return gflops;
}

/* CPU seconds (user + system) this process has used so far. */
static double process_cpu_seconds(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return 0.0;
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
           (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

/* Medians over the repeats of one GPTQ configuration. */
typedef struct gptq_figures {
    double total, cholesky, sweep, trailing, other, trailing_gflops;
} gptq_figures;

static int bench_gptq(lb_type type, int64_t rows, int64_t cols, int64_t threads, int64_t repeat,
                      bool json)
{
    const char *type_name = lb_type_get((uint32_t)type)->name;
    int64_t tokens = 2 * cols;
    omp_set_num_threads((int)threads);

    lb_hessian hs;
    double seconds_hessian = 0.0, hessian_flops = 0.0;
    lb_status status = synthetic_hessian(cols, tokens, 0x4e55, &hs, &seconds_hessian,
                                         &hessian_flops);
    if (status != LB_OK)
        return lb_cli_fail("bench", status);

    size_t n2 = (size_t)cols * (size_t)cols;
    uint64_t row_bytes = 0;
    lb_type_row_bytes(type, cols, &row_bytes);
    float *w = lb_malloc((size_t)rows * (size_t)cols * sizeof *w);
    double *h = lb_malloc(n2 * sizeof *h);
    float *hf = lb_malloc(n2 * sizeof *hf);
    void *out = lb_malloc((size_t)row_bytes * (size_t)rows);
    double *runs = lb_malloc((size_t)(6 * repeat) * sizeof *runs);
    lb_gptq_report last;
    memset(&last, 0, sizeof last);
    int rc = LB_EXIT_OK;
    if (!w || !h || !hf || !out || !runs) {
        rc = lb_cli_fail("bench", lb_error(LB_ERR_NOMEM, "out of memory for a %lld x %lld "
                                                         "GPTQ layer",
                                           (long long)rows, (long long)cols));
        goto done;
    }
    lb_rng rng;
    lb_rng_seed(&rng, 0x5eed);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        w[i] = (float)(0.02 * rng_normal(&rng));

    lb_gptq_options options = lb_gptq_default_options();
    options.compare_rtn = false;
    double *total = runs, *chol = runs + repeat, *sweep = runs + 2 * repeat,
           *trail = runs + 3 * repeat, *other = runs + 4 * repeat, *gfl = runs + 5 * repeat;
    /* CPU time the GPTQ calls got over what their phases could use (the Cholesky phase runs
     * on one thread, the rest on `threads`): near 1 on an idle machine, well below when other
     * processes took the cores. */
    double cpu_seconds = 0.0, capacity_seconds = 0.0;
    for (int64_t i = 0; i < repeat; i++) {
        memcpy(h, hs.h, n2 * sizeof *h); /* lb_gptq_quantize destroys it; not timed */
        lb_gptq_report rep;
        double cpu0 = process_cpu_seconds();
        status = lb_gptq_quantize(w, rows, cols, h, type, &options, out, &rep);
        cpu_seconds += process_cpu_seconds() - cpu0;
        capacity_seconds += rep.seconds_cholesky +
                            (double)threads * (rep.seconds_total - rep.seconds_cholesky);
        if (status != LB_OK) {
            rc = lb_cli_fail("bench", status);
            goto done;
        }
        total[i] = rep.seconds_total;
        chol[i] = rep.seconds_cholesky;
        sweep[i] = rep.seconds_sweep;
        trail[i] = rep.seconds_trailing;
        other[i] = rep.seconds_total - rep.seconds_cholesky - rep.seconds_sweep -
                   rep.seconds_trailing;
        gfl[i] = rep.seconds_trailing > 0.0 ? rep.trailing_flops / rep.seconds_trailing * 1e-9
                                            : 0.0;
        last = rep;
    }
    /* Per-run totals in run order, before the medians sort the arrays. */
    json_t *run_totals = json_array();
    for (int64_t i = 0; i < repeat; i++)
        json_array_append_new(run_totals, json_real(total[i]));
    gptq_figures med = {lb_bench_median(total, repeat), lb_bench_median(chol, repeat),
                        lb_bench_median(sweep, repeat), lb_bench_median(trail, repeat),
                        lb_bench_median(other, repeat), lb_bench_median(gfl, repeat)};

    /* Baselines, same thread count. The trailing-shape GEMMs stream B from H (as f64 and f32)
     * like GPTQ streams U. */
    for (size_t i = 0; i < n2; i++)
        hf[i] = (float)hs.h[i];
    double dgemm = bench_chunk_gemm(true, hs.h, cols, (int)threads);
    double sgemm = bench_chunk_gemm(false, hf, cols, (int)threads);
    lb_free(hf);
    hf = NULL;
    lb_free(h);
    h = NULL;
    double dgemm_sq = bench_square_gemm(true, GPTQ_SQUARE, (int)threads);
    double sgemm_sq = bench_square_gemm(false, GPTQ_SQUARE, (int)threads);
    if (dgemm <= 0.0 || sgemm <= 0.0 || dgemm_sq <= 0.0 || sgemm_sq <= 0.0) {
        json_decref(run_totals);
        rc = lb_cli_fail("bench", lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline"));
        goto done;
    }
    /* potrf + trtri: n^3/3 + n^3/3, once per damping tried. */
    double n3 = (double)cols * (double)cols * (double)cols;
    double cholesky_gflops =
        med.cholesky > 0.0 ? (1.0 + last.damp_raises) * 2.0 / 3.0 * n3 / med.cholesky * 1e-9
                           : 0.0;
    int64_t k = cols < GPTQ_BATCH ? cols : GPTQ_BATCH;
    double cpu_share = capacity_seconds > 0.0 ? cpu_seconds / capacity_seconds : 0.0;
    if (json) {
        json_t *root = json_object();
        json_object_set_new(root, "mode", json_string("gptq"));
        json_object_set_new(root, "type", json_string(type_name));
        json_object_set_new(root, "rows", json_integer(rows));
        json_object_set_new(root, "cols", json_integer(cols));
        json_object_set_new(root, "threads", json_integer(threads));
        json_object_set_new(root, "repeat", json_integer(repeat));
        json_object_set_new(root, "hessian_tokens", json_integer(tokens));
        json_object_set_new(root, "seconds_hessian", json_real(seconds_hessian));
        json_object_set_new(root, "hessian_gflops",
                            json_real(hessian_flops / seconds_hessian * 1e-9));
        json_object_set_new(root, "seconds_total", json_real(med.total));
        json_object_set_new(root, "seconds_cholesky", json_real(med.cholesky));
        json_object_set_new(root, "seconds_sweep", json_real(med.sweep));
        json_object_set_new(root, "seconds_trailing", json_real(med.trailing));
        json_object_set_new(root, "seconds_other", json_real(med.other));
        json_object_set_new(root, "runs_seconds_total", run_totals);
        json_object_set_new(root, "cpu_share", json_real(cpu_share));
        json_object_set_new(root, "cholesky_gflops", json_real(cholesky_gflops));
        json_object_set_new(root, "trailing_flops", json_real(last.trailing_flops));
        json_object_set_new(root, "trailing_gflops", json_real(med.trailing_gflops));
        json_object_set_new(root, "sgemm_gflops", json_real(sgemm));
        json_object_set_new(root, "dgemm_gflops", json_real(dgemm));
        json_object_set_new(root, "ratio", json_real(med.trailing_gflops / dgemm));
        json_object_set_new(root, "ratio_sgemm", json_real(med.trailing_gflops / sgemm));
        json_object_set_new(root, "baseline_shape",
                            json_sprintf("%d x %lld x %lld, %lld OpenMP thread(s) x 1 BLAS "
                                         "thread",
                                         GPTQ_CHUNK_ROWS, (long long)cols, (long long)k,
                                         (long long)threads));
        json_object_set_new(root, "sgemm_square_gflops", json_real(sgemm_sq));
        json_object_set_new(root, "dgemm_square_gflops", json_real(dgemm_sq));
        json_object_set_new(root, "ratio_square", json_real(med.trailing_gflops / dgemm_sq));
        json_object_set_new(root, "square_shape",
                            json_sprintf("%d^3, OpenBLAS %lld thread(s)", GPTQ_SQUARE,
                                         (long long)threads));
        json_object_set_new(root, "damp", json_real(last.damp));
        json_object_set_new(root, "damp_raises", json_integer(last.damp_raises));
        json_object_set_new(root, "loss_gptq", json_real(last.loss_gptq));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(root);
    } else {
        json_decref(run_totals);
        printf("bench gptq: %s %lld x %lld, %lld thread(s), median of %lld run(s)\n", type_name,
               (long long)rows, (long long)cols, (long long)threads, (long long)repeat);
        printf("  hessian   %9.3f s  %8.2f GFLOP/s  (lb_hessian_add, %lld tokens)\n",
               seconds_hessian, hessian_flops / seconds_hessian * 1e-9, (long long)tokens);
        printf("  total     %9.3f s  (CPU share %.2f)\n", med.total, cpu_share);
        printf("  cholesky  %9.3f s  %8.2f GFLOP/s  (potrf+trtri, nominal 2n^3/3)\n",
               med.cholesky, cholesky_gflops);
        printf("  sweep     %9.3f s\n", med.sweep);
        printf("  trailing  %9.3f s  %8.2f GFLOP/s  (%.1f GFLOP)\n", med.trailing,
               med.trailing_gflops, last.trailing_flops * 1e-9);
        printf("  other     %9.3f s\n", med.other);
        printf("  cblas dgemm %dx%lldx%lld  %8.2f GFLOP/s  trailing/dgemm %.2f\n",
               GPTQ_CHUNK_ROWS, (long long)cols, (long long)k, dgemm,
               med.trailing_gflops / dgemm);
        printf("  cblas sgemm %dx%lldx%lld  %8.2f GFLOP/s  trailing/sgemm %.2f\n",
               GPTQ_CHUNK_ROWS, (long long)cols, (long long)k, sgemm,
               med.trailing_gflops / sgemm);
        printf("    (%lld OpenMP thread(s), BLAS pinned to 1 thread each, as GPTQ runs)\n",
               (long long)threads);
        printf("  cblas dgemm %d^3  %8.2f GFLOP/s  trailing/dgemm %.2f (OpenBLAS %lld "
               "thread(s))\n",
               GPTQ_SQUARE, dgemm_sq, med.trailing_gflops / dgemm_sq, (long long)threads);
        printf("  cblas sgemm %d^3  %8.2f GFLOP/s\n", GPTQ_SQUARE, sgemm_sq);
        printf("  damp %g (raised %d times), loss %.6e\n", last.damp, last.damp_raises,
               last.loss_gptq);
    }
done:
    lb_hessian_free(&hs);
    lb_free(w);
    lb_free(h);
    lb_free(hf);
    lb_free(out);
    lb_free(runs);
    return rc;
}

int lb_cmd_bench(int argc, char **argv)
{
    static const struct option options[] = {
        {"type", required_argument, NULL, 'T'},
        {"rows", required_argument, NULL, 'r'},
        {"cols", required_argument, NULL, 'c'},
        {"batch", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"isa", required_argument, NULL, 'i'},
        {"repeat", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return LB_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "gemv") != 0 && strcmp(argv[1], "gemm") != 0 &&
                      strcmp(argv[1], "gptq") != 0))
        return lb_cli_usage_error("bench", "expected 'gemv', 'gemm' or 'gptq'");
    bool gemv = strcmp(argv[1], "gemv") == 0, gptq = strcmp(argv[1], "gptq") == 0;
    bool json = false, batch_set = false;
    lb_type type = LB_TYPE_Q4_K;
    int64_t rows = 4096, cols = 4096, batch = gemv ? 1 : 32, threads = omp_get_max_threads();
    int64_t repeat = -1;
    const char *isa = NULL;
    argc--;
    argv++;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
        switch (c) {
        case 'T':
            if (lb_type_from_name(optarg, &type) != LB_OK)
                return lb_cli_usage_error("bench", "unknown type '%s'", optarg);
            break;
        case 'r':
            if (!lb_cli_parse_int(optarg, 1, 1 << 20, &rows))
                return lb_cli_usage_error("bench", "--rows must be in 1..1048576");
            break;
        case 'c':
            if (!lb_cli_parse_int(optarg, 1, 1 << 20, &cols))
                return lb_cli_usage_error("bench", "--cols must be in 1..1048576");
            break;
        case 'b':
            if (!lb_cli_parse_int(optarg, 1, 65536, &batch))
                return lb_cli_usage_error("bench", "--batch must be in 1..65536");
            batch_set = true;
            break;
        case 't':
            if (!lb_cli_parse_int(optarg, 1, 1024, &threads))
                return lb_cli_usage_error("bench", "--threads must be in 1..1024");
            break;
        case 'i': isa = optarg; break;
        case 'k':
            if (!lb_cli_parse_int(optarg, 1, 1000, &repeat))
                return lb_cli_usage_error("bench", "--repeat must be in 1..1000");
            break;
        case 'j': json = true; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("bench", "bad option");
        }
    }
    if (optind != argc)
        return lb_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (gemv && batch != 1)
        return lb_cli_usage_error("bench", "gemv has batch 1 (use 'bench gemm')");
    if (gptq && (batch_set || isa))
        return lb_cli_usage_error("bench", "gptq takes no --batch or --isa");
    if (!gptq && repeat != -1)
        return lb_cli_usage_error("bench", "--repeat is for 'bench gptq'");
    const lb_kernel_type *k = lb_kernels_type(type);
    if (!k || !k->vec_dot)
        return lb_cli_usage_error("bench", "type %s has no vec_dot kernel",
                                  lb_type_get((uint32_t)type)->name);
    if (!lb_kernels_row_fits(type, cols))
        return lb_cli_usage_error("bench", "--cols %lld is not a multiple of %s's block size",
                                  (long long)cols, lb_type_get((uint32_t)type)->name);
    if (gptq)
        return bench_gptq(type, rows, cols, threads, repeat == -1 ? 3 : repeat, json);

    unsigned cpu = lb_cpu_flags(), flags = cpu;
    if (isa) {
        if (strcmp(isa, "c") == 0)
            flags = 0;
        else if (strcmp(isa, "avx2") == 0)
            flags = LB_CPU_AVX2;
        else if (strcmp(isa, "avx512") == 0)
            flags = LB_CPU_AVX2 | LB_CPU_AVX512;
        else
            return lb_cli_usage_error("bench", "--isa must be c, avx2 or avx512");
        if ((cpu & flags) != flags) {
            fprintf(stderr, "lowbit bench: error: this CPU (or LB_CPU_MASK) lacks %s\n", isa);
            return LB_EXIT_FAILURE;
        }
    } else {
        isa = (cpu & LB_CPU_AVX512) ? "avx512" : (cpu & LB_CPU_AVX2) ? "avx2" : "c";
    }
    lb_kernels_dsp dsp;
    lb_kernels_dsp_init(&dsp, flags);

    double read_gbps = lb_bench_read_gbps((int)threads);
    lb_bench_matrix m, f32;
    memset(&f32, 0, sizeof f32);
    lb_status status = lb_bench_matrix_create(&m, type, rows, cols, 0, 0x5eed);
    if (status != LB_OK)
        return lb_cli_fail("bench", status);
    if ((status = lb_bench_matrix_create(&f32, LB_TYPE_F32, rows, cols, 0, 0x5eed)) != LB_OK) {
        lb_bench_matrix_free(&m);
        return lb_cli_fail("bench", status);
    }
    lb_bench_result r;
    int64_t max_calls = batch == 1 ? 25 : batch <= 8 ? 11 : batch <= 32 ? 7 : 3;
    status = lb_bench_gemm(&dsp, &m, batch, (int)threads, max_calls, &r);
    double blas_ns = status == LB_OK ? lb_bench_blas_ns(&f32, batch, (int)threads, lb_bench_max_calls(batch)) : -1.0;
    uint64_t weight_bytes = m.bytes, copies = (uint64_t)m.copies;
    lb_bench_matrix_free(&m);
    lb_bench_matrix_free(&f32);
    if (status != LB_OK)
        return lb_cli_fail("bench", status);
    if (blas_ns <= 0.0)
        return lb_cli_fail("bench", lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline"));

    double flop = 2.0 * (double)rows * (double)cols * (double)batch;
    double blas_gbps = (double)rows * (double)cols * sizeof(float) / blas_ns;
    const char *type_name = lb_type_get((uint32_t)type)->name;
    if (json) {
        json_t *root = json_object();
        json_object_set_new(root, "mode", json_string(gemv ? "gemv" : "gemm"));
        json_object_set_new(root, "type", json_string(type_name));
        json_object_set_new(root, "isa", json_string(isa));
        json_object_set_new(root, "threads", json_integer(threads));
        json_object_set_new(root, "rows", json_integer(rows));
        json_object_set_new(root, "cols", json_integer(cols));
        json_object_set_new(root, "batch", json_integer(batch));
        json_object_set_new(root, "weight_bytes", json_integer((json_int_t)weight_bytes));
        json_object_set_new(root, "weight_copies", json_integer((json_int_t)copies));
        json_object_set_new(root, "calls", json_integer(r.calls));
        json_object_set_new(root, "ns_per_call", json_real(r.ns_per_call));
        json_object_set_new(root, "weight_gbps", json_real(r.weight_gbps));
        json_object_set_new(root, "gflops", json_real(r.gflops));
        json_object_set_new(root, "read_gbps", json_real(read_gbps));
        json_object_set_new(root, "ratio_to_read", json_real(r.weight_gbps / read_gbps));
        json_object_set_new(root, "blas_ns_per_call", json_real(blas_ns));
        json_object_set_new(root, "blas_gbps", json_real(blas_gbps));
        json_object_set_new(root, "blas_gflops", json_real(flop / blas_ns));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(root);
    } else {
        printf("bench %s: %s %lld x %lld, batch %lld, %lld thread(s), isa %s\n",
               gemv ? "gemv" : "gemm", type_name, (long long)rows, (long long)cols,
               (long long)batch, (long long)threads, isa);
        printf("  weights      %.2f MiB x %llu copies\n", (double)weight_bytes / 1048576.0,
               (unsigned long long)copies);
        printf("  lb_gemm      %12.0f ns/call  %8.2f GB/s  %8.2f GFLOP/s  %.2f x read\n",
               r.ns_per_call, r.weight_gbps, r.gflops, r.weight_gbps / read_gbps);
        printf("  cblas f32    %12.0f ns/call  %8.2f GB/s  %8.2f GFLOP/s  %.2f x read\n",
               blas_ns, blas_gbps, flop / blas_ns, blas_gbps / read_gbps);
        printf("  read         %8.2f GB/s (256 MiB float sum)\n", read_gbps);
    }
    return LB_EXIT_OK;
}
