/* Quantized GEMV/GEMM over the dispatch table: activations to the vec_dot type, then one
 * vec_dot per output, rows split over OpenMP threads. */
#include "kernels/dsp.h"

#include "common/alloc.h"

uint64_t lb_gemm_workspace_bytes(lb_type weight_type, int64_t cols, int64_t batch)
{
    const lb_kernel_type *k = lb_kernels_type(weight_type);
    uint64_t row_bytes, total;
    if (!k || batch < 0 || !lb_type_row_bytes(k->vec_dot_type, cols, &row_bytes) ||
        !lb_size_mul(row_bytes, (uint64_t)batch, &total))
        return 0;
    return total;
}

lb_status lb_gemm(const lb_kernels_dsp *dsp, lb_type weight_type, const void *weights,
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

    /* Rows outer, batch inner: each weight row is read from memory once per call and reused
     * from cache for every activation row. Below about 64 KB of weights, waking threads costs
     * more than the work (hundreds of microseconds on a busy machine); outputs are independent,
     * so the split never changes a result. */
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *w_row = w + (size_t)r * w_row_bytes;
        for (int64_t b = 0; b < batch; b++)
            y[b * rows + r] = vec_dot(w_row, a + (size_t)b * a_row_bytes, cols);
    }
    return LB_OK;
}
