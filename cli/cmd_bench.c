/* lowbit bench: speed of one lb_gemm configuration against the machine's read bandwidth and
 * the CBLAS f32 baseline, measured in the same run. */
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cpu.h"
#include "kernels/bench.h"
#include "kernels/dsp.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit bench gemv|gemm [--type T] [--rows R] [--cols C] [--batch B]\n"
            "                   [--threads N] [--isa c|avx2|avx512] [--json]\n\n"
            "Times lb_gemm on a random R x C weight matrix of type T (quantized with the\n"
            "reference quantizer and replicated so that the copies cycled through exceed 4x\n"
            "the last-level cache), and in the same run the streaming read bandwidth and the\n"
            "CBLAS f32 baseline (sgemv / sgemm) at the same thread count.\n\n"
            "  --type T      weight type (default Q4_K)\n"
            "  --rows R      output rows (default 4096)\n"
            "  --cols C      row length, a multiple of the block size (default 4096)\n"
            "  --batch B     activation rows (gemv: 1; gemm default 32)\n"
            "  --threads N   OpenMP threads (default: all cores)\n"
            "  --isa NAME    kernels for c, avx2 or avx512 (default: the best this CPU has)\n"
            "  --json        machine-readable result on stdout\n"
            "  -h, --help    this text\n");
}

/* Median ns of cblas_sgemv (batch 1) or cblas_sgemm on the f32 matrix, rotating copies. */
static double bench_blas(const lb_bench_matrix *f32, int64_t batch, int threads)
{
    int64_t rows = f32->rows, cols = f32->cols;
    int64_t max_calls = batch == 1 ? 25 : batch <= 8 ? 11 : batch <= 32 ? 7 : 3;
    float *x = lb_malloc((size_t)(batch * cols) * sizeof(float));
    float *y = lb_malloc((size_t)(batch * rows) * sizeof(float));
    double *times = lb_malloc((size_t)max_calls * sizeof(double));
    double median = -1.0;
    if (!x || !y || !times)
        goto cleanup;
    for (int64_t i = 0; i < batch * cols; i++)
        x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    openblas_set_num_threads(threads);
    int64_t calls = 0;
    for (int64_t i = 0; i <= max_calls; i++) {
        const float *w = lb_bench_matrix_copy(f32, i);
        double t0 = lb_bench_now_ns();
        if (batch == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, w, (int)cols,
                        x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)rows,
                        (int)cols, 1.0f, x, (int)cols, w, (int)cols, 0.0f, y, (int)rows);
        double t = lb_bench_now_ns() - t0;
        if (i > 0) /* the first call is warm-up */
            times[calls++] = t;
        if (i == 0 && t > 0.25e9)
            max_calls = 1;
    }
    median = lb_bench_median(times, calls);
cleanup:
    lb_free(x);
    lb_free(y);
    lb_free(times);
    return median;
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
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return LB_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "gemv") != 0 && strcmp(argv[1], "gemm") != 0))
        return lb_cli_usage_error("bench", "expected 'gemv' or 'gemm'");
    bool gemv = strcmp(argv[1], "gemv") == 0, json = false;
    lb_type type = LB_TYPE_Q4_K;
    int64_t rows = 4096, cols = 4096, batch = gemv ? 1 : 32, threads = omp_get_max_threads();
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
            break;
        case 't':
            if (!lb_cli_parse_int(optarg, 1, 1024, &threads))
                return lb_cli_usage_error("bench", "--threads must be in 1..1024");
            break;
        case 'i': isa = optarg; break;
        case 'j': json = true; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("bench", "bad option");
        }
    }
    if (optind != argc)
        return lb_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (gemv && batch != 1)
        return lb_cli_usage_error("bench", "gemv has batch 1 (use 'bench gemm')");
    const lb_kernel_type *k = lb_kernels_type(type);
    if (!k || !k->vec_dot)
        return lb_cli_usage_error("bench", "type %s has no vec_dot kernel",
                                  lb_type_get((uint32_t)type)->name);
    if (!lb_kernels_row_fits(type, cols))
        return lb_cli_usage_error("bench", "--cols %lld is not a multiple of %s's block size",
                                  (long long)cols, lb_type_get((uint32_t)type)->name);

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
    double blas_ns = status == LB_OK ? bench_blas(&f32, batch, (int)threads) : -1.0;
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
