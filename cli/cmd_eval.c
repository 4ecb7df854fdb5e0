/* lowbit eval: perplexity with llama.cpp's protocol, KL divergence against saved logits, and
 * a drift gate for release pipelines. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit eval MODEL --text FILE [--ctx N] [--chunks K] [--save-logits FILE]\n"
            "                   [--kld FILE] [--max-drift PCT] [--json] [--threads N]\n"
            "                   [--tokenizer FILE]\n\n"
            "Perplexity as llama.cpp's perplexity tool computes it: the file's bytes are\n"
            "tokenized once, cut into non-overlapping windows of N tokens (a trailing partial\n"
            "window is dropped), and the logits at positions N/2 .. N-2 are scored against the\n"
            "next token. When the vocabulary adds BOS (llama.cpp's rule: the GGUF key\n"
            "tokenizer.ggml.add_bos_token, else yes for SentencePiece vocabularies and no for\n"
            "most byte-level BPE ones), BOS goes in front of the text and replaces the first\n"
            "token of each window; the output says which (\"bos\" in --json).\n\n"
            "  --text FILE         text to score (required)\n"
            "  --ctx N             window length (default 512)\n"
            "  --chunks K          score at most K windows\n"
            "  --save-logits FILE  save the scored log-probabilities (for a later --kld)\n"
            "  --kld FILE          compare with saved log-probabilities: KL divergence, top-1\n"
            "                      agreement, PPL of both and ln(PPL ratio)\n"
            "  --max-drift PCT     with --kld: exit 4 when PPL/PPL(base) - 1 exceeds PCT %%\n"
            "  --json              machine-readable result on stdout\n"
            "  --threads N         OpenMP threads, 1..1024 (default: all cores)\n"
            "  --tokenizer FILE    tokenizer when the checkpoint has none (llama2.c)\n"
            "  -h, --help          this text\n");
}

static void show_progress(void *context, int64_t done, int64_t total)
{
    (void)context;
    fprintf(stderr, "\reval: window %lld/%lld", (long long)done, (long long)total);
    if (done == total)
        fprintf(stderr, "\n");
}

/* jansson has no NaN or Inf: a non-finite figure is written as null (and fails the gate). */
static json_t *json_figure(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void print_result(const lb_eval_result *r, int64_t ctx, int32_t bos, bool json,
                         double drift)
{
    if (json) {
        json_t *root = json_object();
        json_object_set_new(root, "ppl", json_figure(r->ppl));
        json_object_set_new(root, "ppl_stderr", json_figure(r->ppl_stderr));
        json_object_set_new(root, "windows", json_integer(r->windows));
        json_object_set_new(root, "tokens", json_integer(r->tokens));
        json_object_set_new(root, "ctx", json_integer(ctx));
        json_object_set_new(root, "bos", json_boolean(bos >= 0));
        json_object_set_new(root, "threads", json_integer(omp_get_max_threads()));
        json_object_set_new(root, "forward_seconds", json_figure(r->forward_seconds));
        json_object_set_new(root, "prefill_tokens_per_second",
                            json_figure(r->prefill_tokens_per_second));
        if (r->has_kld) {
            json_object_set_new(root, "base_ppl", json_figure(r->base_ppl));
            json_object_set_new(root, "base_ppl_stderr", json_figure(r->base_ppl_stderr));
            json_object_set_new(root, "drift_pct", json_figure(drift * 100.0));
            json_object_set_new(root, "ln_ppl_ratio", json_figure(r->ln_ppl_ratio));
            json_object_set_new(root, "ln_ppl_ratio_stderr",
                                json_figure(r->ln_ppl_ratio_stderr));
            json_object_set_new(root, "kld", json_figure(r->kld));
            json_object_set_new(root, "kld_stderr", json_figure(r->kld_stderr));
            json_object_set_new(root, "kld_p99", json_figure(r->kld_p99));
            json_object_set_new(root, "kld_max", json_figure(r->kld_max));
            json_object_set_new(root, "top1", json_figure(r->top1));
        }
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(root);
        return;
    }
    printf("windows: %lld of %lld tokens, %lld scored tokens\n", (long long)r->windows,
           (long long)ctx, (long long)r->tokens);
    if (bos >= 0)
        printf("bos: yes (token %d in front of the text and first in every window)\n", (int)bos);
    else
        printf("bos: no (the vocabulary adds none)\n");
    printf("PPL = %.4f +/- %.4f\n", r->ppl, r->ppl_stderr);
    printf("prefill: %.0f tokens/s on %d threads (%.2f s in forward passes)\n",
           r->prefill_tokens_per_second, omp_get_max_threads(), r->forward_seconds);
    if (r->has_kld) {
        printf("base PPL = %.4f +/- %.4f, drift %+.3f%%\n", r->base_ppl, r->base_ppl_stderr,
               drift * 100.0);
        printf("ln(PPL/PPL(base)) = %.6f +/- %.6f\n", r->ln_ppl_ratio, r->ln_ppl_ratio_stderr);
        printf("KLD = %.6f +/- %.6f, 99th percentile %.6f, max %.6f\n", r->kld, r->kld_stderr,
               r->kld_p99, r->kld_max);
        printf("top-1 agreement = %.3f%%\n", r->top1 * 100.0);
    }
}

int lb_cmd_eval(int argc, char **argv)
{
    static const struct option options[] = {
        {"text", required_argument, NULL, 'x'},
        {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, 'n'},
        {"save-logits", required_argument, NULL, 's'},
        {"kld", required_argument, NULL, 'k'},
        {"max-drift", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lb_checkpoint_settings ckpt_settings = lb_checkpoint_default_settings();
    lb_eval_settings settings = lb_eval_default_settings();
    const char *text_path = NULL;
    double max_drift = -1.0;
    bool json = false;
    int64_t threads = 0;
    int rc;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
        switch (c) {
        case 'x': text_path = optarg; break;
        case 'c':
            if ((rc = lb_cli_int_option("eval", "--ctx", optarg, 4, INT64_MAX, &settings.ctx)))
                return rc;
            if (settings.ctx % 2) /* optarg holds digits only here */
                return lb_cli_usage_error("eval", "--ctx '%s' is not an even number", optarg);
            break;
        case 'n':
            if ((rc = lb_cli_int_option("eval", "--chunks", optarg, 1, INT64_MAX,
                                        &settings.max_windows)))
                return rc;
            break;
        case 's': settings.save_logprobs_path = optarg; break;
        case 'k': settings.kld_path = optarg; break;
        case 'd':
            if ((rc = lb_cli_double_option("eval", "--max-drift", optarg, 0.0, 1e6, &max_drift)))
                return rc;
            break;
        case 'j': json = true; break;
        case 't':
            if ((rc = lb_cli_int_option("eval", "--threads", optarg, 1, LB_CLI_MAX_THREADS,
                                        &threads)))
                return rc;
            break;
        case 'z': ckpt_settings.tokenizer_path = optarg; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("eval", "bad option");
        }
    }
    if (argc - optind != 1)
        return lb_cli_usage_error("eval", "expected one MODEL");
    if (!text_path)
        return lb_cli_usage_error("eval", "--text FILE is required");
    if (max_drift >= 0 && !settings.kld_path)
        return lb_cli_usage_error("eval", "--max-drift needs --kld (the base model's logits)");
    if (threads > 0)
        omp_set_num_threads((int)threads);

    int exit_code = LB_EXIT_OK;
    lb_checkpoint *ckpt = NULL;
    lb_model *model = NULL;
    lb_tokenizer *tokenizer = NULL;
    char *text = NULL;
    int32_t *tokens = NULL;
    size_t text_len = 0;
    int64_t n_tokens = 0;
    lb_status status =
        lb_cli_open_model(argv[optind], &ckpt_settings, false, &ckpt, &model, &tokenizer);
    if (status == LB_OK)
        status = lb_cli_read_text(text_path, &text, &text_len);
    if (status != LB_OK) {
        exit_code = lb_cli_fail_input("eval", status);
        goto done;
    }
    /* BOS as llama-perplexity places it: only when the vocabulary adds one. */
    int32_t bos = lb_checkpoint_text_bos(ckpt);
    if ((status = lb_tokenizer_encode(tokenizer, text, text_len, bos >= 0, &tokens,
                                      &n_tokens)) != LB_OK) {
        exit_code = lb_cli_fail("eval", status);
        goto done;
    }
    settings.bos_id = bos;
    if (isatty(STDERR_FILENO))
        settings.progress = show_progress;
    lb_eval_result result;
    status = lb_eval_perplexity(model, tokens, n_tokens, &settings, &result);
    if (status != LB_OK) {
        /* Too short a text or a --kld file from another run is a problem of the inputs. */
        exit_code = lb_cli_fail_input("eval", status == LB_ERR_INVALID_ARG ? LB_ERR_CORRUPT_FILE
                                                                           : status);
        goto done;
    }
    double drift = result.has_kld ? result.ppl / result.base_ppl - 1.0 : 0.0;
    print_result(&result, settings.ctx, bos, json, drift);
    if (max_drift >= 0) {
        /* Every figure the gate rests on must be finite: NaN compares false with any limit,
         * and an infinite base PPL would make the drift a harmless-looking -100%. */
        const struct {
            const char *name;
            double value;
        } figures[] = {{"PPL", result.ppl},          {"base PPL", result.base_ppl},
                       {"KLD", result.kld},          {"ln(PPL/PPL(base))", result.ln_ppl_ratio},
                       {"PPL drift", drift * 100.0}};
        for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
            if (!isfinite(figures[i].value)) {
                fprintf(stderr, "lowbit eval: %s is %g, not finite: the --max-drift gate "
                        "fails\n", figures[i].name, figures[i].value);
                exit_code = LB_EXIT_DRIFT;
                break;
            }
        }
        if (exit_code == LB_EXIT_OK && drift * 100.0 > max_drift) {
            fprintf(stderr, "lowbit eval: PPL drift %+.3f%% exceeds --max-drift %.3f%%\n",
                    drift * 100.0, max_drift);
            exit_code = LB_EXIT_DRIFT;
        }
    }
done:
    lb_free(tokens);
    lb_free(text);
    lb_tokenizer_free(&tokenizer);
    lb_model_free(&model);
    lb_checkpoint_close(&ckpt);
    return exit_code;
}
