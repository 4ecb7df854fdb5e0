/* `lowbit bench gptq`: GPTQ's phases on a synthetic layer against BLAS baselines. */
#ifndef LB_CLI_BENCH_GPTQ_H
#define LB_CLI_BENCH_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "common/tensor.h"

/* Times lb_gptq_quantize `repeat` times on a random rows x cols layer of `type` (cols a
 * multiple of its block size) at `threads` OpenMP threads, with the BLAS baselines, and prints
 * the medians (text, or JSON with `json`). Returns the process exit code; errors are printed. */
int lb_bench_gptq(lb_type type, int64_t rows, int64_t cols, int64_t threads, int64_t repeat,
                  bool json);

#endif
