/* lowbit bench gptq: lb_gptq_quantize on a synthetic layer (cli/bench_synthetic.c), split into
 * its phases, against CBLAS SGEMM/DGEMM on the trailing update's shape and on a square, measured
 * in the same run. */
#include "cli/bench_gptq.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/bench_harness.h"
#include "cli/bench_synthetic.h"
#include "cli/cli.h"
#include "common/alloc.h"
#include "common/rng.h"
#include "linalg/linalg.h"
#include "quant/gptq.h"
#include "quant/hessian.h"

/* Side of the square baseline GEMM. */
#define SQUARE_GEMM 2048

/* One trailing update of lb_gptq_quantize: C (rows x cols) -= A (rows x k) B (k x cols), with
 * rows = lb_gptq_chunk_rows() and k its default lazy batch (at most cols). */
typedef struct trailing_shape {
    int64_t rows, cols, k;
} trailing_shape;

/* GFLOP/s (*gflops) of GEMMs shaped like one row chunk's trailing update in lb_gptq_quantize,
 * B taken in turn from the k-row slabs of the cols x cols matrix `big` (double or float) so
 * that it streams through memory like GPTQ's U. Run as GPTQ runs it: `threads` OpenMP
 * threads, each with its own A and C, BLAS pinned to one thread. Median over several timed
 * passes. */
static lb_status bench_chunk_gemm(bool dbl, const void *big, const trailing_shape *s,
                                  int threads, double *gflops)
{
    enum { PASSES = 7 };
    int64_t rows = s->rows, cols = s->cols, k = s->k, slabs = cols / k;
    double flops_call = 2.0 * (double)rows * (double)k * (double)cols;
    /* About 4 GFLOP per thread and pass. */
    int64_t calls = (int64_t)ceil(4e9 / flops_call);
    if (calls < 4)
        calls = 4;
    size_t elem = dbl ? sizeof(double) : sizeof(float);
    double times[PASSES + 1], start = 0.0;
    bool no_memory = false, gemm_failed = false;
    int blas = lb_linalg_blas_threads_pin();
#pragma omp parallel num_threads(threads)
    {
        int tid = omp_get_thread_num();
        void *a = lb_malloc((size_t)(rows * k) * elem);
        void *c = lb_malloc((size_t)(rows * cols) * elem);
        bool ok = a && c;
        if (!ok) {
#pragma omp atomic write
            no_memory = true;
        } else {
            lb_rng rng;
            lb_rng_seed(&rng, 0xc0ffee + (uint64_t)tid);
            for (int64_t i = 0; i < rows * k; i++) {
                double v = 1e-3 * lb_bench_uniform(&rng);
                if (dbl)
                    ((double *)a)[i] = v;
                else
                    ((float *)a)[i] = (float)v;
            }
            memset(c, 0, (size_t)(rows * cols) * elem);
        }
        for (int pass = 0; pass <= PASSES; pass++) { /* pass 0 is warm-up */
#pragma omp barrier
#pragma omp master
            start = omp_get_wtime();
            for (int64_t j = 0; ok && j < (pass == 0 ? 2 : calls); j++) {
                int64_t row = ((j + (int64_t)tid * 7) % slabs) * k;
                lb_status st =
                    dbl ? lb_linalg_dgemm(false, false, rows, cols, k, -1.0, a, k,
                                          (const double *)big + row * cols, cols, 1.0, c, cols)
                        : lb_linalg_sgemm(false, false, rows, cols, k, -1.0f, a, k,
                                          (const float *)big + row * cols, cols, 1.0f, c, cols);
                if (st != LB_OK) {
                    ok = false;
#pragma omp atomic write
                    gemm_failed = true;
                }
            }
#pragma omp barrier
#pragma omp master
            times[pass] = omp_get_wtime() - start;
        }
        lb_free(a);
        lb_free(c);
    }
    lb_linalg_blas_threads_restore(blas);
    if (no_memory)
        return lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline");
    if (gemm_failed)
        return lb_error(LB_ERR_UNSUPPORTED, "bench: the %lld x %lld x %lld baseline GEMM failed",
                        (long long)rows, (long long)cols, (long long)k);
    double seconds = lb_bench_median(times + 1, PASSES);
    *gflops = seconds > 0.0 ? (double)threads * (double)calls * flops_call / seconds * 1e-9
                            : -1.0;
    return LB_OK;
}

/* GFLOP/s (*gflops) of an n^3 GEMM with BLAS's own threading at `threads` threads: median of
 * 3 calls after a warm-up. */
static lb_status bench_square_gemm(bool dbl, int64_t n, int threads, double *gflops)
{
    enum { CALLS = 3 };
    size_t elem = dbl ? sizeof(double) : sizeof(float), count = (size_t)(n * n);
    void *a = lb_malloc(count * elem), *b = lb_malloc(count * elem), *c = lb_malloc(count * elem);
    double times[CALLS];
    lb_status status = LB_OK;
    if (!a || !b || !c) {
        status = lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline");
        goto done;
    }
    lb_rng rng;
    lb_rng_seed(&rng, 0x5157);
    for (size_t i = 0; i < count; i++) {
        double u = lb_bench_uniform(&rng), v = lb_bench_uniform(&rng);
        if (dbl) {
            ((double *)a)[i] = u;
            ((double *)b)[i] = v;
        } else {
            ((float *)a)[i] = (float)u;
            ((float *)b)[i] = (float)v;
        }
    }
    int previous = lb_linalg_blas_threads_set(threads);
    for (int i = 0; i <= CALLS && status == LB_OK; i++) {
        double start = omp_get_wtime();
        if (dbl)
            status = lb_linalg_dgemm(false, false, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
        else
            status = lb_linalg_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (i > 0)
            times[i - 1] = omp_get_wtime() - start;
    }
    lb_linalg_blas_threads_restore(previous);
    if (status == LB_OK)
        *gflops = 2.0 * (double)n * (double)n * (double)n / lb_bench_median(times, CALLS) * 1e-9;
done:
    lb_free(a);
    lb_free(b);
    lb_free(c);
    return status;
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

/* Everything `bench gptq` measures and prints. */
typedef struct gptq_bench {
    lb_type type;
    int64_t rows, cols, threads, repeat;
    trailing_shape shape;
    int64_t tokens;          /* synthetic input tokens behind the Hessian */
    double seconds_hessian;  /* their lb_hessian_add calls */
    double hessian_flops;
    double *run_totals;      /* seconds_total of each run, in run order; owned */
    gptq_figures med;
    lb_gptq_report last;     /* the last run's report (damping, loss) */
    double cpu_share;        /* CPU time the runs got over what their phases could use */
    double cholesky_gflops;  /* nominal 2n^3/3 per factorization */
    double dgemm, sgemm;     /* GFLOP/s on the trailing update's shape */
    double dgemm_square;     /* GFLOP/s on SQUARE_GEMM^3 */
    double sgemm_square;
} gptq_bench;

/* `repeat` runs of lb_gptq_quantize on w with a fresh copy of H each, into b's medians. */
static lb_status gptq_runs(gptq_bench *b, const float *w, const lb_hessian *hs)
{
    int64_t rows = b->rows, cols = b->cols, repeat = b->repeat;
    size_t n2 = (size_t)cols * (size_t)cols;
    uint64_t row_bytes = 0;
    lb_type_row_bytes(b->type, cols, &row_bytes);
    double *h = lb_malloc(n2 * sizeof *h);
    void *out = lb_malloc((size_t)row_bytes * (size_t)rows);
    double *runs = lb_malloc((size_t)(6 * repeat) * sizeof *runs);
    b->run_totals = lb_malloc((size_t)repeat * sizeof *b->run_totals);
    lb_status status = LB_OK;
    if (!h || !out || !runs || !b->run_totals) {
        status = lb_error(LB_ERR_NOMEM, "out of memory for a %lld x %lld GPTQ layer",
                          (long long)rows, (long long)cols);
        goto done;
    }
    lb_gptq_options options = lb_gptq_default_options();
    options.compare_rtn = false;
    double *total = runs, *chol = runs + repeat, *sweep = runs + 2 * repeat,
           *trail = runs + 3 * repeat, *other = runs + 4 * repeat, *gfl = runs + 5 * repeat;
    /* The Cholesky phase runs on one thread, the rest on `threads`: near 1 on an idle
     * machine, well below when other processes took the cores. */
    double cpu_seconds = 0.0, capacity_seconds = 0.0;
    for (int64_t i = 0; i < repeat; i++) {
        memcpy(h, hs->h, n2 * sizeof *h); /* lb_gptq_quantize destroys it; not timed */
        lb_gptq_report rep;
        double cpu0 = process_cpu_seconds();
        status = lb_gptq_quantize(w, rows, cols, h, b->type, &options, out, &rep);
        cpu_seconds += process_cpu_seconds() - cpu0;
        capacity_seconds += rep.seconds_cholesky +
                            (double)b->threads * (rep.seconds_total - rep.seconds_cholesky);
        if (status != LB_OK)
            goto done;
        total[i] = b->run_totals[i] = rep.seconds_total;
        chol[i] = rep.seconds_cholesky;
        sweep[i] = rep.seconds_sweep;
        trail[i] = rep.seconds_trailing;
        other[i] = rep.seconds_total - rep.seconds_cholesky - rep.seconds_sweep -
                   rep.seconds_trailing;
        gfl[i] = rep.seconds_trailing > 0.0 ? rep.trailing_flops / rep.seconds_trailing * 1e-9
                                            : 0.0;
        b->last = rep;
    }
    b->med = (gptq_figures){lb_bench_median(total, repeat), lb_bench_median(chol, repeat),
                            lb_bench_median(sweep, repeat), lb_bench_median(trail, repeat),
                            lb_bench_median(other, repeat), lb_bench_median(gfl, repeat)};
    b->cpu_share = capacity_seconds > 0.0 ? cpu_seconds / capacity_seconds : 0.0;
    /* potrf + trtri: n^3/3 + n^3/3, once per damping tried. */
    double n3 = (double)cols * (double)cols * (double)cols;
    b->cholesky_gflops = b->med.cholesky > 0.0 ? (1.0 + b->last.damp_raises) * 2.0 / 3.0 * n3 /
                                                     b->med.cholesky * 1e-9
                                               : 0.0;
done:
    lb_free(h);
    lb_free(out);
    lb_free(runs);
    return status;
}

/* The BLAS baselines at the same thread count: the trailing-shape GEMMs stream B from H (as
 * f64 and f32) like GPTQ streams U; then the square GEMMs. */
static lb_status gptq_baselines(gptq_bench *b, const lb_hessian *hs)
{
    int threads = (int)b->threads;
    size_t n2 = (size_t)hs->n * (size_t)hs->n;
    float *hf = lb_malloc(n2 * sizeof *hf);
    if (!hf)
        return lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline");
    for (size_t i = 0; i < n2; i++)
        hf[i] = (float)hs->h[i];
    lb_status status = bench_chunk_gemm(true, hs->h, &b->shape, threads, &b->dgemm);
    if (status == LB_OK)
        status = bench_chunk_gemm(false, hf, &b->shape, threads, &b->sgemm);
    lb_free(hf);
    if (status == LB_OK)
        status = bench_square_gemm(true, SQUARE_GEMM, threads, &b->dgemm_square);
    if (status == LB_OK)
        status = bench_square_gemm(false, SQUARE_GEMM, threads, &b->sgemm_square);
    if (status == LB_OK && (b->dgemm <= 0.0 || b->sgemm <= 0.0 || b->dgemm_square <= 0.0 ||
                            b->sgemm_square <= 0.0))
        status = lb_error(LB_ERR_NUMERIC, "bench: a BLAS baseline took no measurable time");
    return status;
}

static void print_gptq_json(const gptq_bench *b)
{
    const trailing_shape *s = &b->shape;
    double tg = b->med.trailing_gflops;
    json_t *runs = json_array();
    for (int64_t i = 0; i < b->repeat; i++)
        json_array_append_new(runs, json_real(b->run_totals[i]));
    json_t *root = json_object();
    json_object_set_new(root, "mode", json_string("gptq"));
    json_object_set_new(root, "type", json_string(lb_type_get((uint32_t)b->type)->name));
    json_object_set_new(root, "rows", json_integer(b->rows));
    json_object_set_new(root, "cols", json_integer(b->cols));
    json_object_set_new(root, "threads", json_integer(b->threads));
    json_object_set_new(root, "repeat", json_integer(b->repeat));
    json_object_set_new(root, "hessian_tokens", json_integer(b->tokens));
    json_object_set_new(root, "seconds_hessian", json_real(b->seconds_hessian));
    json_object_set_new(root, "hessian_gflops",
                        json_real(b->hessian_flops / b->seconds_hessian * 1e-9));
    json_object_set_new(root, "seconds_total", json_real(b->med.total));
    json_object_set_new(root, "seconds_cholesky", json_real(b->med.cholesky));
    json_object_set_new(root, "seconds_sweep", json_real(b->med.sweep));
    json_object_set_new(root, "seconds_trailing", json_real(b->med.trailing));
    json_object_set_new(root, "seconds_other", json_real(b->med.other));
    json_object_set_new(root, "runs_seconds_total", runs);
    json_object_set_new(root, "cpu_share", json_real(b->cpu_share));
    json_object_set_new(root, "cholesky_gflops", json_real(b->cholesky_gflops));
    json_object_set_new(root, "trailing_flops", json_real(b->last.trailing_flops));
    json_object_set_new(root, "trailing_gflops", json_real(tg));
    json_object_set_new(root, "sgemm_gflops", json_real(b->sgemm));
    json_object_set_new(root, "dgemm_gflops", json_real(b->dgemm));
    json_object_set_new(root, "ratio", json_real(tg / b->dgemm));
    json_object_set_new(root, "ratio_sgemm", json_real(tg / b->sgemm));
    json_object_set_new(root, "baseline_shape",
                        json_sprintf("%lld x %lld x %lld, %lld OpenMP thread(s) x 1 BLAS thread",
                                     (long long)s->rows, (long long)s->cols, (long long)s->k,
                                     (long long)b->threads));
    json_object_set_new(root, "sgemm_square_gflops", json_real(b->sgemm_square));
    json_object_set_new(root, "dgemm_square_gflops", json_real(b->dgemm_square));
    json_object_set_new(root, "ratio_square", json_real(tg / b->dgemm_square));
    json_object_set_new(root, "square_shape", json_sprintf("%d^3, OpenBLAS %lld thread(s)",
                                                           SQUARE_GEMM, (long long)b->threads));
    json_object_set_new(root, "damp", json_real(b->last.damp));
    json_object_set_new(root, "damp_raises", json_integer(b->last.damp_raises));
    json_object_set_new(root, "loss_gptq", json_real(b->last.loss_gptq));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("\n");
    json_decref(root);
}

static void print_gptq_text(const gptq_bench *b)
{
    const trailing_shape *s = &b->shape;
    const gptq_figures *med = &b->med;
    printf("bench gptq: %s %lld x %lld, %lld thread(s), median of %lld run(s)\n",
           lb_type_get((uint32_t)b->type)->name, (long long)b->rows, (long long)b->cols,
           (long long)b->threads, (long long)b->repeat);
    printf("  hessian   %9.3f s  %8.2f GFLOP/s  (lb_hessian_add, %lld tokens)\n",
           b->seconds_hessian, b->hessian_flops / b->seconds_hessian * 1e-9,
           (long long)b->tokens);
    printf("  total     %9.3f s  (CPU share %.2f)\n", med->total, b->cpu_share);
    printf("  cholesky  %9.3f s  %8.2f GFLOP/s  (potrf+trtri, nominal 2n^3/3)\n", med->cholesky,
           b->cholesky_gflops);
    printf("  sweep     %9.3f s\n", med->sweep);
    printf("  trailing  %9.3f s  %8.2f GFLOP/s  (%.1f GFLOP)\n", med->trailing,
           med->trailing_gflops, b->last.trailing_flops * 1e-9);
    printf("  other     %9.3f s\n", med->other);
    printf("  cblas dgemm %lldx%lldx%lld  %8.2f GFLOP/s  trailing/dgemm %.2f\n",
           (long long)s->rows, (long long)s->cols, (long long)s->k, b->dgemm,
           med->trailing_gflops / b->dgemm);
    printf("  cblas sgemm %lldx%lldx%lld  %8.2f GFLOP/s  trailing/sgemm %.2f\n",
           (long long)s->rows, (long long)s->cols, (long long)s->k, b->sgemm,
           med->trailing_gflops / b->sgemm);
    printf("    (%lld OpenMP thread(s), BLAS pinned to 1 thread each, as GPTQ runs)\n",
           (long long)b->threads);
    printf("  cblas dgemm %d^3  %8.2f GFLOP/s  trailing/dgemm %.2f (OpenBLAS %lld thread(s))\n",
           SQUARE_GEMM, b->dgemm_square, med->trailing_gflops / b->dgemm_square,
           (long long)b->threads);
    printf("  cblas sgemm %d^3  %8.2f GFLOP/s\n", SQUARE_GEMM, b->sgemm_square);
    printf("  damp %g (raised %d times), loss %.6e\n", b->last.damp, b->last.damp_raises,
           b->last.loss_gptq);
}

int lb_bench_gptq(lb_type type, int64_t rows, int64_t cols, int64_t threads, int64_t repeat,
                  bool json)
{
    gptq_bench b;
    memset(&b, 0, sizeof b);
    b.type = type;
    b.rows = rows;
    b.cols = cols;
    b.threads = threads;
    b.repeat = repeat;
    b.tokens = 2 * cols;
    int64_t batch_columns = lb_gptq_default_options().batch_columns;
    b.shape = (trailing_shape){lb_gptq_chunk_rows(), cols,
                               cols < batch_columns ? cols : batch_columns};
    omp_set_num_threads((int)threads);
    lb_hessian hs;
    lb_status status = lb_bench_synthetic_hessian(cols, b.tokens, 0x4e55, &hs,
                                                  &b.seconds_hessian, &b.hessian_flops);
    if (status != LB_OK)
        return lb_cli_fail("bench", status);
    float *w = lb_malloc((size_t)rows * (size_t)cols * sizeof *w);
    if (!w) {
        status = lb_error(LB_ERR_NOMEM, "out of memory for a %lld x %lld GPTQ layer",
                          (long long)rows, (long long)cols);
    } else {
        lb_bench_synthetic_weights(w, rows, cols, 0x5eed);
        status = gptq_runs(&b, w, &hs);
    }
    lb_free(w);
    if (status == LB_OK)
        status = gptq_baselines(&b, &hs);
    lb_hessian_free(&hs);
    if (status == LB_OK && json)
        print_gptq_json(&b);
    else if (status == LB_OK)
        print_gptq_text(&b);
    lb_free(b.run_totals);
    return status == LB_OK ? LB_EXIT_OK : lb_cli_fail("bench", status);
}
