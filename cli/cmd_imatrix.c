/* lowbit imatrix: importance matrix (Σ x² of every linear layer's input) on calibration text,
 * written in llama.cpp's formats. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "quant/pipeline.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit imatrix MODEL --calib FILE -o OUT [options]\n\n"
            "Runs calibration windows through the full-precision model and writes the mean\n"
            "square of every linear layer's inputs (an importance matrix) as llama.cpp's\n"
            "llama-imatrix does: GGUF, or the legacy format when OUT ends in .dat. Both\n"
            "llama-quantize --imatrix and lowbit quantize --imatrix read it.\n\n"
            "  --calib FILE        calibration text (UTF-8)\n"
            "  -o, --output OUT    output file (.gguf or .dat)\n"
            "  --nsamples N        windows (default 128)\n"
            "  --seqlen L          tokens per window, BOS included when the vocabulary adds\n"
            "                      one as llama-imatrix does (see 'lowbit eval --help';\n"
            "                      default 512)\n"
            "  --seed S            seed of the random window offsets (default 1234)\n"
            "  --consecutive       windows back to back from the start of the text instead\n"
            "  --process-output    include output.weight (llama-imatrix --process-output)\n"
            "  --threads N         OpenMP threads, 1..1024\n"
            "  --tokenizer FILE    tokenizer when the checkpoint has none (llama2.c)\n"
            "  -h, --help          this text\n");
}

int lb_cmd_imatrix(int argc, char **argv)
{
    enum { OPT_CALIB = 256, OPT_NSAMPLES, OPT_SEQLEN, OPT_SEED, OPT_CONSECUTIVE, OPT_OUTPUT_LAYER,
           OPT_THREADS, OPT_TOKENIZER };
    static const struct option options[] = {
        {"calib", required_argument, NULL, OPT_CALIB},
        {"output", required_argument, NULL, 'o'},
        {"nsamples", required_argument, NULL, OPT_NSAMPLES},
        {"seqlen", required_argument, NULL, OPT_SEQLEN},
        {"seed", required_argument, NULL, OPT_SEED},
        {"consecutive", no_argument, NULL, OPT_CONSECUTIVE},
        {"process-output", no_argument, NULL, OPT_OUTPUT_LAYER},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lb_checkpoint_settings ckpt_settings = lb_checkpoint_default_settings();
    const char *calib_path = NULL, *out_path = NULL;
    int64_t nsamples = 128, seqlen = 512, seed = 1234, threads = 0;
    bool consecutive = false, include_output = false;
    int rc;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "ho:", options, NULL)) != -1;) {
        switch (c) {
        case OPT_CALIB: calib_path = optarg; break;
        case 'o': out_path = optarg; break;
        case OPT_NSAMPLES:
            if ((rc = lb_cli_int_option("imatrix", "--nsamples", optarg, 1, 1 << 20, &nsamples)))
                return rc;
            break;
        case OPT_SEQLEN:
            if ((rc = lb_cli_int_option("imatrix", "--seqlen", optarg, 2, 1 << 20, &seqlen)))
                return rc;
            break;
        case OPT_SEED:
            if ((rc = lb_cli_int_option("imatrix", "--seed", optarg, 0, INT64_MAX, &seed)))
                return rc;
            break;
        case OPT_CONSECUTIVE: consecutive = true; break;
        case OPT_OUTPUT_LAYER: include_output = true; break;
        case OPT_THREADS:
            if ((rc = lb_cli_int_option("imatrix", "--threads", optarg, 1, LB_CLI_MAX_THREADS,
                                        &threads)))
                return rc;
            break;
        case OPT_TOKENIZER: ckpt_settings.tokenizer_path = optarg; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("imatrix", "bad option");
        }
    }
    if (argc - optind != 1)
        return lb_cli_usage_error("imatrix", "expected one MODEL");
    if (!calib_path || !out_path)
        return lb_cli_usage_error("imatrix", "--calib FILE and -o OUT are required");
    if (threads > 0)
        omp_set_num_threads((int)threads);

    int exit_code = LB_EXIT_OK;
    lb_checkpoint *ckpt = NULL;
    lb_model *model = NULL;
    lb_tokenizer *tokenizer = NULL;
    lb_imatrix *imatrix = NULL;
    char *text = NULL;
    size_t text_len = 0;
    int32_t *tokens = NULL, *windows = NULL;
    int64_t n_tokens = 0;
    double t0 = omp_get_wtime();
    lb_status status =
        lb_cli_open_model(argv[optind], &ckpt_settings, false, &ckpt, &model, &tokenizer);
    /* NaN/Inf weights would poison every sum: name them before the forward passes. */
    if (status == LB_OK)
        status = lb_model_check_finite(model);
    if (status == LB_OK)
        status = lb_cli_read_text(calib_path, &text, &text_len);
    if (status == LB_OK && seqlen > ckpt->hparams.context_length)
        status = lb_error(LB_ERR_INVALID_ARG, "--seqlen %lld exceeds the model's context of %lld",
                          (long long)seqlen, (long long)ckpt->hparams.context_length);
    if (status == LB_OK)
        status = lb_tokenizer_encode(tokenizer, text, text_len, false, &tokens, &n_tokens);
    if (status == LB_OK) {
        /* BOS first in each window only when the vocabulary adds one, as in llama-imatrix. */
        int32_t bos = lb_checkpoint_text_bos(ckpt);
        windows = lb_malloc((size_t)(nsamples * seqlen) * sizeof *windows);
        status = windows ? lb_calibration_windows(tokens, n_tokens, bos,
                                                  nsamples, seqlen, (uint64_t)seed,
                                                  consecutive, windows)
                         : lb_error(LB_ERR_NOMEM,
                                    "out of memory for %lld windows of %lld tokens (%zu bytes)",
                                    (long long)nsamples, (long long)seqlen,
                                    (size_t)(nsamples * seqlen) * sizeof *windows);
        if (status == LB_ERR_BAD_INPUT)
            status = lb_error_prefix(status, "%s: ", calib_path);
    }
    if (status != LB_OK) {
        exit_code = lb_cli_fail_input("imatrix", status);
        goto done;
    }
    const char *slash = strrchr(calib_path, '/');
    status = lb_imatrix_create(&imatrix);
    if (status == LB_OK)
        status = lb_imatrix_add_dataset(imatrix, slash ? slash + 1 : calib_path);
    if (status == LB_OK)
        status = lb_imatrix_collect(model, windows, nsamples, seqlen, include_output, imatrix);
    if (status == LB_OK)
        status = lb_imatrix_write(imatrix, out_path, lb_imatrix_format_for_path(out_path));
    if (status != LB_OK) {
        exit_code = lb_cli_fail("imatrix", status);
        goto done;
    }
    printf("wrote %s: %lld entries, %lld windows of %lld tokens, %.1f s\n", out_path,
           (long long)imatrix->n_entries, (long long)nsamples, (long long)seqlen,
           omp_get_wtime() - t0);
done:
    lb_free(windows);
    lb_free(tokens);
    lb_free(text);
    lb_imatrix_free(&imatrix);
    lb_tokenizer_free(&tokenizer);
    lb_model_free(&model);
    lb_checkpoint_close(&ckpt);
    return exit_code;
}
