/* lowbit bench: speed of one lb_gemm configuration against the machine's read bandwidth and
 * the CBLAS f32 baseline, measured in the same run; or of GPTQ on a synthetic layer, split
 * into its phases, against CBLAS SGEMM/DGEMM measured in the same run (cli/bench_gptq.c). The
 * timing harness is cli/bench_harness.c. */
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench_gptq.h"
#include "cli/bench_harness.h"
#include "cli/cli.h"
#include "common/cpu.h"

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
            "  --threads N   OpenMP threads, 1..1024 (default: all cores)\n"
            "  --isa NAME    kernels for c, avx2 or avx512 (default: the best this CPU has)\n"
            "  --repeat K    gptq: GPTQ runs to take the medians of (default 3)\n"
            "  --json        machine-readable result on stdout\n"
            "  -h, --help    this text\n");
}

/* ---- options ---------------------------------------------------------------------------- */

typedef struct bench_args {
    bool gemv, gptq;    /* the mode: gemv, gemm (neither) or gptq */
    bool json;
    bool batch_set;     /* --batch given */
    lb_type type;
    int64_t rows, cols, batch, threads;
    int64_t repeat;     /* -1 until resolved: --repeat not given */
    const char *isa;    /* --isa, or NULL */
} bench_args;

/* Defaults for the mode in argv[0], then getopt over the rest. false when the command ends
 * here (--help, a bad option): *rc is its exit code then. */
static bool parse_options(int argc, char **argv, bench_args *a, int *rc)
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
    bool gemv = strcmp(argv[0], "gemv") == 0;
    *a = (bench_args){.gemv = gemv, .gptq = strcmp(argv[0], "gptq") == 0,
                      .type = LB_TYPE_Q4_K, .rows = 4096, .cols = 4096, .batch = gemv ? 1 : 32,
                      .threads = omp_get_max_threads(), .repeat = -1};
    *rc = LB_EXIT_OK;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
        switch (c) {
        case 'T':
            if (lb_type_from_name(optarg, &a->type) != LB_OK)
                *rc = lb_cli_usage_error("bench", "unknown type '%s'", optarg);
            break;
        case 'r':
            *rc = lb_cli_int_option("bench", "--rows", optarg, 1, 1 << 20, &a->rows);
            break;
        case 'c':
            *rc = lb_cli_int_option("bench", "--cols", optarg, 1, 1 << 20, &a->cols);
            break;
        case 'b':
            *rc = lb_cli_int_option("bench", "--batch", optarg, 1, 65536, &a->batch);
            a->batch_set = true;
            break;
        case 't':
            *rc = lb_cli_int_option("bench", "--threads", optarg, 1, LB_CLI_MAX_THREADS,
                                    &a->threads);
            break;
        case 'i': a->isa = optarg; break;
        case 'k':
            *rc = lb_cli_int_option("bench", "--repeat", optarg, 1, 1000, &a->repeat);
            break;
        case 'j': a->json = true; break;
        case 'h': print_usage(stdout); return false;
        default: *rc = lb_cli_usage_error("bench", "bad option"); break;
        }
        if (*rc != LB_EXIT_OK)
            return false;
    }
    if (optind != argc) {
        *rc = lb_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
        return false;
    }
    return true;
}

/* The rules that tie options to the mode and the type to the kernels: LB_EXIT_OK, or the
 * usage error's exit code. */
static int check_options(const bench_args *a)
{
    if (a->gemv && a->batch != 1)
        return lb_cli_usage_error("bench", "gemv has batch 1 (use 'bench gemm')");
    if (a->gptq && (a->batch_set || a->isa))
        return lb_cli_usage_error("bench", "gptq takes no --batch or --isa");
    if (!a->gptq && a->repeat != -1)
        return lb_cli_usage_error("bench", "--repeat is for 'bench gptq'");
    const lb_kernel_type *k = lb_kernels_type(a->type);
    const char *type_name = lb_type_get((uint32_t)a->type)->name;
    if (!k || !k->vec_dot)
        return lb_cli_usage_error("bench", "type %s has no vec_dot kernel", type_name);
    if (!lb_kernels_row_fits(a->type, a->cols))
        return lb_cli_usage_error("bench", "--cols %lld is not a multiple of %s's block size",
                                  (long long)a->cols, type_name);
    return LB_EXIT_OK;
}

/* ---- bench gemv / gemm --------------------------------------------------------------------- */

/* What one gemv/gemm run measured. */
typedef struct kernel_figures {
    const char *isa;        /* the kernels' ISA level */
    double read_gbps;       /* streaming read bandwidth at the same thread count */
    lb_bench_result r;      /* lb_gemm */
    double blas_ns;         /* the CBLAS f32 baseline, ns per call */
    uint64_t weight_bytes;  /* one copy of the packed weights */
    uint64_t copies;
} kernel_figures;

/* Sets `flags` for --isa (NULL: the best this CPU has) and names the level. LB_EXIT_OK, or the
 * exit code of the error it printed. */
static int choose_isa(const char *isa, unsigned *cpu_flags, const char **name)
{
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
    *cpu_flags = flags;
    *name = isa;
    return LB_EXIT_OK;
}

/* Read bandwidth, then lb_gemm on the packed matrix, then CBLAS on its f32 twin (same seed). */
static lb_status measure_kernel(const bench_args *a, unsigned cpu_flags,
                                kernel_figures *f)
{
    f->read_gbps = lb_bench_read_gbps((int)a->threads);
    lb_bench_matrix m, f32;
    memset(&f32, 0, sizeof f32);
    lb_status status = lb_bench_matrix_create(&m, a->type, a->rows, a->cols, 0, 0x5eed);
    if (status != LB_OK)
        return status;
    status = lb_bench_matrix_create(&f32, LB_TYPE_F32, a->rows, a->cols, 0, 0x5eed);
    int64_t max_calls = lb_bench_max_calls(a->batch);
    if (status == LB_OK)
        status = lb_bench_gemm(cpu_flags, &m, a->batch, (int)a->threads, max_calls, &f->r);
    if (status == LB_OK)
        status = lb_bench_blas_ns(&f32, a->batch, (int)a->threads, max_calls, &f->blas_ns);
    f->weight_bytes = m.bytes;
    f->copies = (uint64_t)m.copies;
    lb_bench_matrix_free(&m);
    lb_bench_matrix_free(&f32);
    return status;
}

static void print_kernel_json(const bench_args *a, const kernel_figures *f)
{
    double flop = 2.0 * (double)a->rows * (double)a->cols * (double)a->batch;
    double blas_gbps = (double)a->rows * (double)a->cols * sizeof(float) / f->blas_ns;
    json_t *root = json_object();
    json_object_set_new(root, "mode", json_string(a->gemv ? "gemv" : "gemm"));
    json_object_set_new(root, "type", json_string(lb_type_get((uint32_t)a->type)->name));
    json_object_set_new(root, "isa", json_string(f->isa));
    json_object_set_new(root, "threads", json_integer(a->threads));
    json_object_set_new(root, "rows", json_integer(a->rows));
    json_object_set_new(root, "cols", json_integer(a->cols));
    json_object_set_new(root, "batch", json_integer(a->batch));
    json_object_set_new(root, "weight_bytes", json_integer((json_int_t)f->weight_bytes));
    json_object_set_new(root, "weight_copies", json_integer((json_int_t)f->copies));
    json_object_set_new(root, "calls", json_integer(f->r.calls));
    json_object_set_new(root, "ns_per_call", json_real(f->r.ns_per_call));
    json_object_set_new(root, "weight_gbps", json_real(f->r.weight_gbps));
    json_object_set_new(root, "gflops", json_real(f->r.gflops));
    json_object_set_new(root, "read_gbps", json_real(f->read_gbps));
    json_object_set_new(root, "ratio_to_read", json_real(f->r.weight_gbps / f->read_gbps));
    json_object_set_new(root, "blas_ns_per_call", json_real(f->blas_ns));
    json_object_set_new(root, "blas_gbps", json_real(blas_gbps));
    json_object_set_new(root, "blas_gflops", json_real(flop / f->blas_ns));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("\n");
    json_decref(root);
}

static void print_kernel_text(const bench_args *a, const kernel_figures *f)
{
    double flop = 2.0 * (double)a->rows * (double)a->cols * (double)a->batch;
    double blas_gbps = (double)a->rows * (double)a->cols * sizeof(float) / f->blas_ns;
    printf("bench %s: %s %lld x %lld, batch %lld, %lld thread(s), isa %s\n",
           a->gemv ? "gemv" : "gemm", lb_type_get((uint32_t)a->type)->name, (long long)a->rows,
           (long long)a->cols, (long long)a->batch, (long long)a->threads, f->isa);
    printf("  weights      %.2f MiB x %llu copies\n", (double)f->weight_bytes / 1048576.0,
           (unsigned long long)f->copies);
    printf("  lb_gemm      %12.0f ns/call  %8.2f GB/s  %8.2f GFLOP/s  %.2f x read\n",
           f->r.ns_per_call, f->r.weight_gbps, f->r.gflops, f->r.weight_gbps / f->read_gbps);
    printf("  cblas f32    %12.0f ns/call  %8.2f GB/s  %8.2f GFLOP/s  %.2f x read\n",
           f->blas_ns, blas_gbps, flop / f->blas_ns, blas_gbps / f->read_gbps);
    printf("  read         %8.2f GB/s (256 MiB float sum)\n", f->read_gbps);
}

static int bench_kernel(const bench_args *a)
{
    unsigned cpu_flags = 0;
    kernel_figures f;
    memset(&f, 0, sizeof f);
    int rc = choose_isa(a->isa, &cpu_flags, &f.isa);
    if (rc != LB_EXIT_OK)
        return rc;
    lb_status status = measure_kernel(a, cpu_flags, &f);
    if (status != LB_OK)
        return lb_cli_fail("bench", status);
    if (a->json)
        print_kernel_json(a, &f);
    else
        print_kernel_text(a, &f);
    return LB_EXIT_OK;
}

/* ---- the command --------------------------------------------------------------------------- */

int lb_cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return LB_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "gemv") != 0 && strcmp(argv[1], "gemm") != 0 &&
                      strcmp(argv[1], "gptq") != 0))
        return lb_cli_usage_error("bench", "expected 'gemv', 'gemm' or 'gptq'");
    bench_args a;
    int rc;
    if (!parse_options(argc - 1, argv + 1, &a, &rc))
        return rc;
    if ((rc = check_options(&a)) != LB_EXIT_OK)
        return rc;
    if (!a.gptq)
        return bench_kernel(&a);
    return lb_bench_gptq(a.type, a.rows, a.cols, a.threads, a.repeat == -1 ? 3 : a.repeat,
                         a.json);
}
