/* Benchmark harness: clock, read bandwidth, cache-defeating matrices, timed lb_gemm and the
 * BLAS f32 baseline. */
#include "cli/bench_harness.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/rng.h"
#include "linalg/linalg.h"

double lb_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The size of a cache in sysfs ("32768K"), or 0. */
static uint64_t sysfs_cache_bytes(int index, int *level)
{
    char path[96], text[32];
    *level = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%d", level) != 1)
        *level = 0;
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    if (!(f = fopen(path, "r")))
        return 0;
    uint64_t bytes = 0;
    if (fgets(text, sizeof text, f)) {
        char *end;
        bytes = strtoull(text, &end, 10);
        bytes <<= *end == 'K' ? 10 : *end == 'M' ? 20 : 0;
    }
    fclose(f);
    return bytes;
}

uint64_t lb_bench_llc_bytes(void)
{
    /* sysfs describes the cache one core sees; glibc's sysconf may report the whole package
     * (256 MiB on a 32 MiB-per-CCD EPYC), which would only make the copies larger. */
    uint64_t best = 0;
    int best_level = 0;
    for (int index = 0; index < 8; index++) {
        int level;
        uint64_t bytes = sysfs_cache_bytes(index, &level);
        if (bytes > 0 && level >= best_level) {
            best = bytes;
            best_level = level;
        }
    }
    if (best > 0)
        return best;
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0)
        return (uint64_t)l3;
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 > 0)
        return (uint64_t)l2;
    return 32ull << 20;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lb_bench_median(double *values, int64_t n)
{
    if (n <= 0)
        return 0.0;
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* Sums with 4 independent 8-float vector accumulators (GCC/Clang vector extensions, lowered
 * to whatever SIMD the build targets) so that the adds keep up with memory without the
 * compiler reassociating anything. */
typedef float lb_bench_v8sf __attribute__((vector_size(32)));

static float sum_floats(const float *x, int64_t n)
{
    lb_bench_v8sf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, v0, v1, v2, v3;
    const int64_t groups = n / 32;
    for (int64_t g = 0; g < groups; g++) {
        const float *p = x + g * 32;
        memcpy(&v0, p, sizeof v0);
        memcpy(&v1, p + 8, sizeof v1);
        memcpy(&v2, p + 16, sizeof v2);
        memcpy(&v3, p + 24, sizeof v3);
        a0 += v0;
        a1 += v1;
        a2 += v2;
        a3 += v3;
    }
    a0 += a1 + a2 + a3;
    float s = 0.0f;
    for (int l = 0; l < 8; l++)
        s += a0[l];
    for (int64_t i = groups * 32; i < n; i++)
        s += x[i];
    return s;
}

double lb_bench_read_gbps(int threads)
{
    const int64_t n = (256ll << 20) / (int64_t)sizeof(float);
    const int64_t chunk = 1 << 16; /* floats per work item: 256 KiB */
    const int64_t chunks = n / chunk;
    float *x = lb_malloc((size_t)n * sizeof(float));
    if (!x)
        return -1.0;
    if (threads < 1)
        threads = omp_get_max_threads();
    /* First touch with the same schedule as the reads, so pages sit near their reader. */
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t c = 0; c < chunks; c++)
        for (int64_t i = c * chunk; i < (c + 1) * chunk; i++)
            x[i] = (float)(i & 1023) * 0.001f;
    enum { PASSES = 7 };
    double gbps[PASSES];
    volatile float sink = 0.0f;
    for (int p = 0; p < PASSES; p++) {
        float total = 0.0f;
        double t0 = lb_bench_now_ns();
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : total)
        for (int64_t c = 0; c < chunks; c++)
            total += sum_floats(x + c * chunk, chunk);
        double t1 = lb_bench_now_ns();
        sink = sink + total;
        gbps[p] = (double)n * sizeof(float) / (t1 - t0);
    }
    (void)sink;
    lb_free(x);
    return lb_bench_median(gbps, PASSES);
}

lb_status lb_bench_matrix_create(lb_bench_matrix *m, lb_type type, int64_t rows,
                                 int64_t cols, uint64_t min_total_bytes, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    const lb_kernel_type *k = lb_kernels_type(type);
    uint64_t row_bytes, bytes;
    if (!k || rows <= 0 || !lb_type_row_bytes(type, cols, &row_bytes) || cols <= 0 ||
        !lb_size_mul(row_bytes, (uint64_t)rows, &bytes))
        return lb_error(LB_ERR_INVALID_ARG, "bench: %lld x %lld does not fit type %d",
                        (long long)rows, (long long)cols, (int)type);
    if (min_total_bytes == 0)
        min_total_bytes = 4 * lb_bench_llc_bytes();
    int64_t copies = (int64_t)((min_total_bytes + bytes - 1) / bytes);
    if (copies < 1)
        copies = 1;
    uint64_t total;
    if (!lb_size_mul(bytes, (uint64_t)copies, &total))
        return lb_error(LB_ERR_INVALID_ARG, "bench: matrix too large");
    m->data = lb_malloc((size_t)total);
    int threads = omp_get_max_threads();
    float *scratch = lb_malloc((size_t)threads * (size_t)cols * sizeof(float));
    if (!m->data || !scratch) {
        lb_free(m->data);
        lb_free(scratch);
        m->data = NULL;
        return lb_error(LB_ERR_NOMEM, "bench: cannot allocate %llu bytes of weights",
                        (unsigned long long)total);
    }
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->bytes = bytes;
    m->copies = copies;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < rows; r++) {
        float *row = scratch + (size_t)omp_get_thread_num() * (size_t)cols;
        lb_rng rng;
        lb_rng_seed(&rng, seed ^ ((uint64_t)r * 0x2545f4914f6cdd1dull));
        for (int64_t c = 0; c < cols; c++)
            row[c] = lb_rng_uniform_pm1(&rng);
        k->quantize_row(row, m->data + (uint64_t)r * row_bytes, cols, NULL);
    }
    lb_free(scratch);
    for (int64_t i = 1; i < copies; i++)
        memcpy(m->data + (uint64_t)i * bytes, m->data, (size_t)bytes);
    return LB_OK;
}

void lb_bench_matrix_free(lb_bench_matrix *m)
{
    if (!m)
        return;
    lb_free(m->data);
    memset(m, 0, sizeof *m);
}

lb_status lb_bench_gemm(const lb_kernels_dsp *dsp, const lb_bench_matrix *m, int64_t batch,
                        int threads, int64_t max_calls, lb_bench_result *out)
{
    memset(out, 0, sizeof *out);
    uint64_t ws_bytes = lb_gemm_workspace_bytes(m->type, m->cols, batch);
    if (batch <= 0 || ws_bytes == 0)
        return lb_error(LB_ERR_INVALID_ARG, "bench: bad batch %lld", (long long)batch);
    if (max_calls < 1)
        max_calls = 1;
    float *x = lb_malloc((size_t)batch * (size_t)m->cols * sizeof(float));
    float *y = lb_malloc((size_t)batch * (size_t)m->rows * sizeof(float));
    void *ws = lb_malloc((size_t)ws_bytes);
    double *times = lb_malloc((size_t)max_calls * sizeof(double));
    lb_status status = LB_OK;
    if (!x || !y || !ws || !times) {
        status = lb_error(LB_ERR_NOMEM, "bench: cannot allocate activations");
        goto cleanup;
    }
    lb_rng rng;
    lb_rng_seed(&rng, 12345);
    for (int64_t i = 0; i < batch * m->cols; i++)
        x[i] = lb_rng_uniform_pm1(&rng);
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads > 0 ? threads : saved_threads);
    /* Warm-up (thread pool, page faults); a slow first call counts as a sample. */
    double t0 = lb_bench_now_ns();
    status = lb_gemm(dsp, m->type, lb_bench_matrix_copy(m, 0), m->rows, m->cols, x, batch, y,
                     ws);
    double first = lb_bench_now_ns() - t0;
    int64_t calls = 0;
    if (status == LB_OK && first > 0.25e9) {
        times[calls++] = first;
    } else if (status == LB_OK) {
        int64_t want = (int64_t)(0.5e9 / (first > 1.0 ? first : 1.0));
        if (want < 3)
            want = 3;
        if (want > max_calls)
            want = max_calls;
        for (int64_t i = 0; i < want && status == LB_OK; i++) {
            const void *w = lb_bench_matrix_copy(m, i + 1);
            double start = lb_bench_now_ns();
            status = lb_gemm(dsp, m->type, w, m->rows, m->cols, x, batch, y, ws);
            times[calls++] = lb_bench_now_ns() - start;
        }
    }
    omp_set_num_threads(saved_threads);
    if (status != LB_OK)
        goto cleanup;
    out->calls = calls;
    out->ns_per_call = lb_bench_median(times, calls);
    out->weight_gbps = (double)m->bytes / out->ns_per_call;
    out->gflops = 2.0 * (double)m->rows * (double)m->cols * (double)batch / out->ns_per_call;
cleanup:
    lb_free(x);
    lb_free(y);
    lb_free(ws);
    lb_free(times);
    return status;
}

int64_t lb_bench_max_calls(int64_t batch)
{
    return batch == 1 ? 25 : batch <= 8 ? 11 : batch <= 32 ? 7 : 3;
}

lb_status lb_bench_blas_ns(const lb_bench_matrix *f32, int64_t batch, int threads,
                           int64_t max_calls, double *ns)
{
    int64_t rows = f32->rows, cols = f32->cols;
    float *x = lb_malloc((size_t)(batch * cols) * sizeof(float));
    float *y = lb_malloc((size_t)(batch * rows) * sizeof(float));
    double *times = lb_malloc((size_t)max_calls * sizeof(double));
    lb_status status = LB_OK;
    *ns = -1.0;
    if (!x || !y || !times) {
        status = lb_error(LB_ERR_NOMEM, "cannot allocate the BLAS baseline");
        goto cleanup;
    }
    for (int64_t i = 0; i < batch * cols; i++)
        x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    int previous = lb_linalg_blas_threads_set(threads);
    int64_t calls = 0;
    for (int64_t i = 0; i <= max_calls && status == LB_OK; i++) {
        const float *w = lb_bench_matrix_copy(f32, i);
        double t0 = lb_bench_now_ns();
        if (batch == 1)
            status = lb_linalg_sgemv(rows, cols, 1.0f, w, cols, x, 0.0f, y);
        else
            status = lb_linalg_sgemm(false, true, batch, rows, cols, 1.0f, x, cols, w, cols,
                                     0.0f, y, rows);
        double t = lb_bench_now_ns() - t0;
        if (i > 0) /* the first call is warm-up */
            times[calls++] = t;
        if (i == 0 && t > 0.25e9)
            max_calls = 1;
    }
    lb_linalg_blas_threads_restore(previous);
    if (status == LB_OK)
        *ns = lb_bench_median(times, calls);
cleanup:
    lb_free(x);
    lb_free(y);
    lb_free(times);
    return status;
}
