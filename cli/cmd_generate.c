/* lowbit generate: continue a prompt greedily or by sampling, to show a model runs. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit generate MODEL --prompt TEXT [-n N] [--temp T] [--seed S]\n"
            "                       [--threads N] [--tokenizer FILE]\n\n"
            "Continues TEXT and prints the continuation; stops at EOS. TEXT is tokenized\n"
            "as llama.cpp's llama-simple does: BOS in front when the vocabulary adds one\n"
            "(see 'lowbit eval --help'), no chat template.\n\n"
            "  --prompt TEXT     the prompt (required)\n"
            "  -n N              tokens to generate (default 64; prompt + N within the context)\n"
            "  --temp T          0 (default) is greedy; otherwise sample softmax(logits/T)\n"
            "  --seed S          sampling seed, 0..2^63-1 (default 1)\n"
            "  --threads N       OpenMP threads, 1..1024\n"
            "  --tokenizer FILE  tokenizer when the checkpoint has none (llama2.c)\n");
}

/* Sampling draws from lb_rng (splitmix64), fixed and portable, so a seed means the same text
 * everywhere. */
static int32_t pick_token(const float *logits, int64_t n, double temperature, lb_rng *rng)
{
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = (int32_t)i;
    if (temperature <= 0)
        return best;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp(((double)logits[i] - logits[best]) / temperature);
    double target = lb_rng_unit(rng) * sum, cumulative = 0.0;
    for (int64_t i = 0; i < n; i++) {
        cumulative += exp(((double)logits[i] - logits[best]) / temperature);
        if (cumulative >= target)
            return (int32_t)i;
    }
    return (int32_t)(n - 1);
}

int lb_cmd_generate(int argc, char **argv)
{
    static const struct option options[] = {
        {"prompt", required_argument, NULL, 'p'},
        {"temp", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lb_checkpoint_settings ckpt_settings = lb_checkpoint_default_settings();
    const char *prompt = NULL;
    int64_t n_generate = 64, threads = 0, seed = 1;
    double temperature = 0.0;
    int rc;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "hn:", options, NULL)) != -1;) {
        switch (c) {
        case 'p': prompt = optarg; break;
        /* -n is bounded here so that n_prompt + n_generate cannot overflow; the model's
         * context bounds it further once it is loaded. */
        case 'n':
            if ((rc = lb_cli_int_option("generate", "-n", optarg, 1, INT32_MAX, &n_generate)))
                return rc;
            break;
        case 'T':
            if ((rc = lb_cli_double_option("generate", "--temp", optarg, 0.0, 1e6,
                                           &temperature)))
                return rc;
            break;
        case 's':
            if ((rc = lb_cli_int_option("generate", "--seed", optarg, 0, INT64_MAX, &seed)))
                return rc;
            break;
        case 't':
            if ((rc = lb_cli_int_option("generate", "--threads", optarg, 1, LB_CLI_MAX_THREADS,
                                        &threads)))
                return rc;
            break;
        case 'z': ckpt_settings.tokenizer_path = optarg; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("generate", "bad option");
        }
    }
    if (argc - optind != 1 || !prompt)
        return lb_cli_usage_error("generate", "expected MODEL and --prompt TEXT");
    if (threads > 0)
        omp_set_num_threads((int)threads);

    int exit_code = LB_EXIT_OK;
    lb_checkpoint *ckpt = NULL;
    lb_model *model = NULL;
    lb_model_state *state = NULL;
    lb_tokenizer *tokenizer = NULL;
    int32_t *tokens = NULL;
    float *logits = NULL;
    int64_t n_prompt = 0;
    lb_status status =
        lb_cli_open_model(argv[optind], &ckpt_settings, false, &ckpt, &model, &tokenizer);
    /* NaN/Inf weights would continue any prompt with token 0: name them instead. */
    if (status == LB_OK)
        status = lb_model_check_finite(model);
    if (status != LB_OK) {
        exit_code = lb_cli_fail_input("generate", status);
        goto done;
    }
    const lb_hparams *hp = lb_model_hparams(model);
    status = lb_tokenizer_encode(tokenizer, prompt, strlen(prompt),
                                 lb_checkpoint_text_bos(ckpt) >= 0, &tokens, &n_prompt);
    int64_t max_tokens = n_prompt + n_generate;
    if (status == LB_OK && n_prompt == 0)
        status = lb_error(LB_ERR_INVALID_ARG, "the prompt is empty and the vocabulary adds no "
                          "BOS: nothing to continue");
    if (status == LB_OK && max_tokens > hp->context_length) {
        /* -n past what the model can hold is a bad command line, not a failure. */
        exit_code = lb_cli_usage_error("generate", "prompt (%lld tokens) + -n %lld exceeds the "
                                       "model's context of %lld", (long long)n_prompt,
                                       (long long)n_generate, (long long)hp->context_length);
        goto done;
    }
    if (status == LB_OK)
        status = lb_model_state_create(&state, model, max_tokens, n_prompt);
    if (status == LB_OK && !(logits = lb_malloc((size_t)hp->vocab_size * sizeof *logits)))
        status = lb_error(LB_ERR_NOMEM, "out of memory for logits over %lld tokens (%zu bytes)",
                          (long long)hp->vocab_size, (size_t)hp->vocab_size * sizeof *logits);
    if (status == LB_OK)
        status = lb_model_forward(model, state, tokens, n_prompt, 0, logits, true);
    if (status != LB_OK) {
        exit_code = lb_cli_fail("generate", status);
        goto done;
    }
    printf("%s", prompt);
    lb_rng rng;
    lb_rng_seed(&rng, (uint64_t)seed); /* any seed, 0 included, gives a full-period sequence */
    int32_t previous = tokens[n_prompt - 1];
    /* Only real tokens: rows past the vocabulary are padding (lb_model_check). */
    int64_t n_pick = ckpt->vocab->n_tokens < hp->vocab_size ? ckpt->vocab->n_tokens
                                                             : hp->vocab_size;
    for (int64_t i = 0; i < n_generate; i++) {
        int32_t next = pick_token(logits, n_pick, temperature, &rng);
        if (next == ckpt->vocab->eos_id || next == ckpt->vocab->bos_id)
            break;
        char piece[256];
        int64_t n = lb_tokenizer_piece(tokenizer, previous, next, piece, sizeof piece);
        if (n > 0)
            fwrite(piece, 1, (size_t)n, stdout);
        fflush(stdout);
        previous = next;
        if (i + 1 < n_generate &&
            (status = lb_model_forward(model, state, &next, 1, n_prompt + i, logits, true)) !=
                LB_OK) {
            exit_code = lb_cli_fail("generate", status);
            break;
        }
    }
    printf("\n");
done:
    lb_free(logits);
    lb_free(tokens);
    lb_tokenizer_free(&tokenizer);
    lb_model_state_free(&state);
    lb_model_free(&model);
    lb_checkpoint_close(&ckpt);
    return exit_code;
}
