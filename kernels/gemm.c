/* Quantized GEMV/GEMM over the dispatch table: activations to the vec_dot type, then one
 * vec_dot per output (or one vec_dot_x4 per four), rows split over OpenMP threads and
 * activations tiled for the cache. */
#include "kernels/dsp_internal.h"

#include <omp.h>

#include "common/alloc.h"
#include "common/cpu.h"

uint64_t lb_gemm_workspace_bytes(lb_type weight_type, int64_t cols, int64_t batch)
{
    const lb_kernel_type *k = lb_kernels_type(weight_type);
    uint64_t row_bytes, total;
    if (!k || batch < 0 || !lb_type_row_bytes(k->vec_dot_type, cols, &row_bytes) ||
        !lb_size_mul(row_bytes, (uint64_t)batch, &total))
        return 0;
    return total;
}

lb_status lb_gemm(lb_type weight_type, const void *weights, int64_t rows, int64_t cols,
                  const float *x, int64_t batch, float *y, void *workspace)
{
    return lb_kernels_gemm(NULL, weight_type, weights, rows, cols, x, batch, y, workspace);
}

lb_status lb_gemm_cpu(unsigned cpu_flags, lb_type weight_type, const void *weights,
                      int64_t rows, int64_t cols, const float *x, int64_t batch, float *y,
                      void *workspace)
{
    /* Filling a table is a few hundred pointer stores: negligible next to a GEMV. */
    lb_kernels_dsp dsp;
    lb_kernels_dsp_init(&dsp, cpu_flags & lb_cpu_flags());
    return lb_kernels_gemm(&dsp, weight_type, weights, rows, cols, x, batch, y, workspace);
}

lb_status lb_kernels_gemm(const lb_kernels_dsp *dsp, lb_type weight_type, const void *weights,
                          int64_t rows, int64_t cols, const float *x, int64_t batch, float *y,
                          void *workspace)
{
    if (!dsp)
        dsp = lb_kernels_dsp_get();
    const lb_kernel_type *k = lb_kernels_type(weight_type);
    if (!k || (uint32_t)weight_type >= LB_DSP_TYPE_SLOTS || !dsp->vec_dot[weight_type])
        return lb_error(LB_ERR_INVALID_ARG, "lb_gemm: type %d has no vec_dot kernel",
                        (int)weight_type);
    if (rows < 0 || batch < 0)
        return lb_error(LB_ERR_INVALID_ARG, "lb_gemm: negative rows (%lld) or batch (%lld)",
                        (long long)rows, (long long)batch);
    uint64_t w_row_bytes, a_row_bytes;
    if (!lb_type_row_bytes(weight_type, cols, &w_row_bytes) ||
        !lb_type_row_bytes(k->vec_dot_type, cols, &a_row_bytes) || cols == 0)
        return lb_error(LB_ERR_INVALID_ARG,
                        "lb_gemm: %lld columns is not a positive multiple of the block size",
                        (long long)cols);
    lb_vec_dot_fn vec_dot = dsp->vec_dot[weight_type];
    lb_quantize_row_fn quantize = dsp->quantize_activations[k->vec_dot_type];
    if (!quantize)
        return lb_error(LB_ERR_INVALID_ARG, "lb_gemm: no activation quantizer for type %d",
                        (int)k->vec_dot_type);
    if (rows == 0 || batch == 0)
        return LB_OK;

    const uint8_t *w = weights;
    uint8_t *a = workspace;
    const bool parallel = (uint64_t)rows * w_row_bytes * (uint64_t)batch >= (64u << 10);
    /* Activation rows are independent and each is quantized by one call: any split is exact. */
#pragma omp parallel for schedule(static) if (batch > 1 && parallel)
    for (int64_t b = 0; b < batch; b++)
        quantize(x + b * cols, a + (size_t)b * a_row_bytes, cols, NULL);

    /* Each thread takes a fixed range of rows (the split never changes a result: outputs are
     * independent) and walks it once per tile of activation rows, the tile small enough to stay
     * in a core's L2 (about 192 KiB of quantized activations); within a tile each weight row is
     * read once and dotted with every activation row of the tile, LB_DOT_X4_ROWS at a time
     * where the type has vec_dot_x4. Below about 64 KB of weights, waking threads costs more
     * than the work (hundreds of microseconds on a busy machine). */
    lb_vec_dot_x4_fn vec_dot_x4 = dsp->vec_dot_x4[weight_type];
    int64_t tile = (int64_t)((192u << 10) / a_row_bytes);
    tile = tile < LB_DOT_X4_ROWS ? LB_DOT_X4_ROWS : tile - tile % LB_DOT_X4_ROWS;
#pragma omp parallel if (parallel)
    {
        const int64_t n_threads = omp_get_num_threads(), thread = omp_get_thread_num();
        const int64_t r_begin = rows * thread / n_threads, r_end = rows * (thread + 1) / n_threads;
        for (int64_t b0 = 0; b0 < batch; b0 += tile) {
            const int64_t b_end = batch - b0 < tile ? batch : b0 + tile;
            for (int64_t r = r_begin; r < r_end; r++) {
                const uint8_t *w_row = w + (size_t)r * w_row_bytes;
                int64_t b = b0;
                if (vec_dot_x4) {
                    for (; b + LB_DOT_X4_ROWS <= b_end; b += LB_DOT_X4_ROWS) {
                        float out[LB_DOT_X4_ROWS];
                        vec_dot_x4(w_row, a + (size_t)b * a_row_bytes, (size_t)a_row_bytes, cols,
                                   out);
                        for (int j = 0; j < LB_DOT_X4_ROWS; j++)
                            y[(b + j) * rows + r] = out[j];
                    }
                }
                for (; b < b_end; b++)
                    y[b * rows + r] = vec_dot(w_row, a + (size_t)b * a_row_bytes, cols);
            }
        }
    }
    return LB_OK;
}
