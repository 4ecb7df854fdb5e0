/* Example: load one tensor from a checkpoint (GGUF or any other), quantize it to Q4_K (or the
 * type given), run a GEMV with the packed weights, and print the error and the speed. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL TENSOR [TYPE (default Q4_K)]\n", argv[0]);
        return 2;
    }
    lb_type wanted = LB_TYPE_Q4_K;
    if (argc == 4 && lb_type_from_name(argv[3], &wanted) != LB_OK) {
        fprintf(stderr, "%s\n", lb_last_error());
        return 2;
    }
    lb_checkpoint *ckpt = NULL;
    if (lb_checkpoint_open(&ckpt, argv[1], NULL) != LB_OK) {
        fprintf(stderr, "%s\n", lb_last_error());
        return 3;
    }
    int64_t index = lb_checkpoint_find(ckpt, argv[2]);
    if (index < 0 || ckpt->tensors[index].n_dims != 2) {
        fprintf(stderr, "%s: no 2-d tensor '%s'\n", argv[1], argv[2]);
        lb_checkpoint_close(&ckpt);
        return 3;
    }
    const int64_t cols = ckpt->tensors[index].ne[0], rows = ckpt->tensors[index].ne[1];
    /* Rows that do not fit the type's blocks take the registry's documented fallback. */
    lb_type type = lb_kernels_fallback_type(wanted, cols);
    const lb_kernel_type *k = lb_kernels_type(type);
    uint64_t row_bytes = 0;
    lb_type_row_bytes(type, cols, &row_bytes);
    printf("%s: %lld x %lld, quantized to %s%s\n", argv[2], (long long)rows, (long long)cols,
           lb_type_get((uint32_t)type)->name, type != wanted ? " (fallback: rows do not fit)" : "");

    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    float *deq = malloc((size_t)cols * sizeof *deq);
    uint8_t *packed = malloc((size_t)(row_bytes * (uint64_t)rows));
    float *x = malloc((size_t)cols * sizeof *x);
    float *y = malloc((size_t)rows * sizeof *y);
    void *workspace = malloc((size_t)lb_gemm_workspace_bytes(type, cols, 1) + 1);
    if (!w || !deq || !packed || !x || !y || !workspace ||
        lb_checkpoint_read_rows_f32(ckpt, index, 0, rows, w) != LB_OK) {
        fprintf(stderr, "out of memory or unreadable tensor: %s\n", lb_last_error());
        return 1;
    }
    double err2 = 0.0, ref2 = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        k->quantize_row(w + r * cols, packed + (uint64_t)r * row_bytes, cols, NULL);
        k->dequantize_row(packed + (uint64_t)r * row_bytes, deq, cols);
        for (int64_t c = 0; c < cols; c++) {
            double d = (double)deq[c] - w[r * cols + c];
            err2 += d * d;
            ref2 += (double)w[r * cols + c] * w[r * cols + c];
        }
    }
    lb_rng rng;
    lb_rng_seed(&rng, 1);
    for (int64_t c = 0; c < cols; c++)
        x[c] = lb_rng_uniform_pm1(&rng);

    const int reps = 200;
    double start = omp_get_wtime();
    for (int i = 0; i < reps; i++)
        lb_gemm(type, packed, rows, cols, x, 1, y, workspace);
    double seconds = (omp_get_wtime() - start) / reps;

    double out_err2 = 0.0, out_ref2 = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double exact = 0.0;
        for (int64_t c = 0; c < cols; c++)
            exact += (double)w[r * cols + c] * x[c];
        out_err2 += (y[r] - exact) * (y[r] - exact);
        out_ref2 += exact * exact;
    }
    printf("weights: relative RMS error %.4f at %.2f bits per weight\n", sqrt(err2 / ref2),
           lb_type_bits_per_weight(type));
    printf("GEMV: relative RMS error of the output %.4f, %.1f us per call, %.2f GB/s of weights "
           "(%d threads; a matrix this small stays in cache)\n",
           sqrt(out_err2 / out_ref2), seconds * 1e6,
           (double)(row_bytes * (uint64_t)rows) / seconds / 1e9, omp_get_max_threads());
    free(w);
    free(deq);
    free(packed);
    free(x);
    free(y);
    free(workspace);
    lb_checkpoint_close(&ckpt);
    return 0;
}
