/* Benchmark harness shared by `lowbit bench` and checkkern --bench (compiled into both, not
 * part of the library): clock, read bandwidth, cache-defeating weight matrices, a timed lb_gemm
 * and the CBLAS f32 baseline. */
#ifndef LB_CLI_BENCH_HARNESS_H
#define LB_CLI_BENCH_HARNESS_H

#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "kernels/dsp.h"

/* Monotonic clock in nanoseconds. */
double lb_bench_now_ns(void);

/* Bytes of the last-level cache one core sees (sysfs, else sysconf), or 32 MiB when the OS
 * does not say. */
uint64_t lb_bench_llc_bytes(void);

/* Median over several passes of the streaming read bandwidth, in GB/s (1e9 bytes/s), of
 * `threads` OpenMP threads summing a 256 MiB float buffer (far larger than the LLC).
 * Returns a negative value when the buffer cannot be allocated. */
double lb_bench_read_gbps(int threads);

/* A weight matrix of `rows` x `cols` random values in [-1, 1) (lb_rng, row r seeded with
 * seed ^ r * 0x2545f4914f6cdd1d) quantized with the registry's
 * reference, replicated into `copies` identical copies at different addresses so that cycling
 * through them streams more than 4x the LLC from memory. */
typedef struct lb_bench_matrix {
    lb_type type;
    int64_t rows, cols;
    uint64_t bytes;  /* bytes of one copy */
    int64_t copies;  /* >= 1 */
    uint8_t *data;   /* copies * bytes, copy i at data + i * bytes; owned */
} lb_bench_matrix;

/* Fills `m`; LB_ERR_INVALID_ARG when cols does not fit the type, LB_ERR_NOMEM. Release with
 * lb_bench_matrix_free. `min_total_bytes` 0 means 4x the LLC. */
lb_status lb_bench_matrix_create(lb_bench_matrix *m, lb_type type, int64_t rows, int64_t cols,
                                 uint64_t min_total_bytes, uint64_t seed);
void lb_bench_matrix_free(lb_bench_matrix *m);

/* Copy `i` (modulo the number of copies). */
static inline const void *lb_bench_matrix_copy(const lb_bench_matrix *m, int64_t i)
{
    return m->data + (uint64_t)(i % m->copies) * m->bytes;
}

typedef struct lb_bench_result {
    double ns_per_call;  /* median */
    double weight_gbps;  /* weight bytes of one copy / ns_per_call */
    double gflops;       /* 2 * rows * cols * batch / ns_per_call */
    int64_t calls;       /* timed calls */
} lb_bench_result;

/* Median time of lb_gemm(dsp, ...) on `m` with `batch` random activation rows at `threads`
 * OpenMP threads, rotating over the copies. `max_calls` caps the timed calls; fewer are made
 * when a call is slow (about half a second of timing in all). */
lb_status lb_bench_gemm(const lb_kernels_dsp *dsp, const lb_bench_matrix *m, int64_t batch,
                        int threads, int64_t max_calls, lb_bench_result *out);

/* Median of n doubles (sorts them in place). */
double lb_bench_median(double *values, int64_t n);

/* Timed calls per measurement at a batch size (fewer for the long large-batch ones). */
int64_t lb_bench_max_calls(int64_t batch);

/* The f32 baseline of the same run: median ns (*ns) of sgemv (batch 1) or sgemm through
 * linalg on the matrix's rotating copies, BLAS on `threads` threads (its previous thread count
 * restored after); LB_ERR_NOMEM, or the BLAS wrapper's error. */
lb_status lb_bench_blas_ns(const lb_bench_matrix *f32, int64_t batch, int threads,
                           int64_t max_calls, double *ns);

#endif
