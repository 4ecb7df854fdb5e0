/* lowbit quantize: a checkpoint in, a packed GGUF file out, with a per-layer report. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_rotate.h"
#include "quant/pipeline.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit quantize IN OUT.gguf --type T [--calib FILE] [options]\n\n"
            "Rounds the checkpoint IN (llama2.c, safetensors or GGUF) into packed types and\n"
            "writes OUT.gguf for llama.cpp. With --calib the matrices are rounded with GPTQ,\n"
            "block after block, on calibration text run through the already quantized blocks;\n"
            "without it, round-to-nearest (RTN), importance-weighted with --imatrix.\n\n"
            "  --type T            a preset (%s)\n"
            "                      or one type for every matrix (Q8_0 Q4_0 ... Q6_K, F16, BF16)\n"
            "  --type-attn-v T, --type-ffn-down T, --type-embd T, --type-output T\n"
            "                      override the type of one role (any weight type: Q4_0 ...\n"
            "                      Q6_K, IQ4_NL, IQ4_XS, F16, ...)\n"
            "  --method M          gptq (default with --calib) or rtn\n"
            "  --calib FILE        calibration text (UTF-8)\n"
            "  --nsamples N        calibration windows (default 128)\n"
            "  --seqlen L          tokens per window, BOS included when the vocabulary adds\n"
            "                      one (see 'lowbit eval --help'; default 512, at most the\n"
            "                      model's context)\n"
            "  --seed S            seed of the random window offsets (default 1234)\n"
            "  --consecutive       windows back to back from the start of the text instead\n"
            "  --damp F            GPTQ damping, a fraction of mean diag(H) (default 0.01)\n"
            "  --act-order         sweep columns by decreasing diag(H) (the grid blocks and\n"
            "                      the file layout stay the same)\n"
            "  --no-rtn-loss       skip measuring RTN's proxy loss for the report (it costs two\n"
            "                      GEMMs against H per matrix, about twice GPTQ's own work)\n"
            "  --imatrix FILE      importance matrix for RTN (llama.cpp's .gguf or .dat)\n"
            "  --threads N         OpenMP threads, 1..1024 (the output does not depend on it)\n"
            "  --json              the per-layer report and summary as JSON on stdout\n"
            "  --tokenizer FILE    tokenizer when the checkpoint has none (llama2.c)\n"
            "  --allow-nonfinite   replace NaN/Inf weights by 0 (counted) instead of stopping\n"
            "  -h, --help          this text\n",
            lb_mixture_names());
    lb_cli_rotate_print_usage(out);
    fprintf(out, "                      With --rotate, GPTQ collects its Hessians on the rotated\n"
                 "                      model; --imatrix is refused (an importance matrix of the\n"
                 "                      unrotated model does not describe the rotated inputs:\n"
                 "                      use GPTQ with --calib, or RTN without one)\n");
}

typedef struct progress {
    bool json;
    bool bar;          /* stderr is a terminal */
    double start;
    json_t *layers;    /* report rows, in JSON mode */
} progress;

static json_t *json_number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Peak resident set size of this process in MiB. */
static double peak_rss_mib(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return NAN;
    return (double)usage.ru_maxrss / 1024.0;
}

static void on_tensor(void *context, const lb_quantize_tensor_report *r, int64_t done,
                      int64_t total)
{
    progress *pr = context;
    const char *type = lb_type_get((uint32_t)r->type)->name;
    if (pr->json) {
        json_t *row = json_object();
        json_object_set_new(row, "tensor", json_string(r->name));
        json_object_set_new(row, "type", json_string(type));
        json_object_set_new(row, "method", json_string(r->method));
        json_object_set_new(row, "rows", json_integer(r->rows));
        json_object_set_new(row, "cols", json_integer(r->cols));
        json_object_set_new(row, "rtn_rel_loss", json_number_or_null(r->rel_rtn));
        json_object_set_new(row, "gptq_rel_loss", json_number_or_null(r->rel_gptq));
        if (r->gptq) {
            json_object_set_new(row, "damp", json_real(r->gptq->damp));
            json_object_set_new(row, "damp_raises", json_integer(r->gptq->damp_raises));
            json_object_set_new(row, "dead_columns", json_integer(r->gptq->dead_columns));
        }
        json_object_set_new(row, "seconds", json_real(r->seconds));
        /* Progress through the stages: time since the start (calibration passes included)
         * and the peak RSS so far. */
        json_object_set_new(row, "elapsed_seconds", json_real(omp_get_wtime() - pr->start));
        json_object_set_new(row, "peak_rss_mib", json_number_or_null(peak_rss_mib()));
        json_array_append_new(pr->layers, row);
    } else {
        if (pr->bar)
            fprintf(stderr, "\r\033[K");
        char rtn[32] = "-", gptq[32] = "-";
        if (isfinite(r->rel_rtn))
            snprintf(rtn, sizeof rtn, "%.4e", r->rel_rtn);
        if (isfinite(r->rel_gptq))
            snprintf(gptq, sizeof gptq, "%.4e", r->rel_gptq);
        printf("%-28s %-5s %-11s %6lld x %-6lld %11s %11s %8.2fs", r->name, type, r->method,
               (long long)r->rows, (long long)r->cols, rtn, gptq, r->seconds);
        if (r->gptq && r->gptq->damp_raises)
            printf("  (damping raised to %g)", r->gptq->damp);
        printf("\n");
        fflush(stdout);
    }
    if (pr->bar) {
        enum { WIDTH = 30 };
        double elapsed = omp_get_wtime() - pr->start;
        double eta = done > 0 ? elapsed * (double)(total - done) / (double)done : 0.0;
        int filled = total > 0 ? (int)(WIDTH * done / total) : WIDTH;
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld tensors, %.0fs elapsed, ETA %.0fs", filled,
                "##############################", WIDTH - filled, "", (long long)done,
                (long long)total, elapsed, eta);
        if (done == total)
            fprintf(stderr, "\n");
    }
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}


static int parse_role_type(lb_mixture *mixture, lb_tensor_role role, const char *name,
                           const char *option)
{
    lb_type type;
    if (lb_type_from_name(name, &type) != LB_OK ||
        lb_mixture_set_override(mixture, role, type) != LB_OK)
        return lb_cli_usage_error("quantize", "%s: '%s' is not a weight type", option, name);
    return LB_EXIT_OK;
}

/* The command line, parsed. */
typedef struct quantize_args {
    lb_checkpoint_settings ckpt_settings;
    lb_quantize_params params;
    const char *type_name, *method, *calib_path, *imatrix_path;
    const char *role_types[4]; /* --type-attn-v, --type-ffn-down, --type-embd, --type-output */
    int64_t threads;
    bool json;
    const char *in_path, *out_path;
    lb_cli_rotate rotate;      /* --rotate and its options */
    lb_rotate_info rotated;    /* what the rotation did, once applied */
} quantize_args;

enum { PARSE_CONTINUE = -1 }; /* parse_options: no exit yet, go on */

/* The long options (getopt_long's codes past the single characters). */
enum {
    OPT_TYPE = 256, OPT_ATTN_V, OPT_FFN_DOWN, OPT_EMBD, OPT_OUTPUT, OPT_METHOD, OPT_CALIB,
    OPT_NSAMPLES, OPT_SEQLEN, OPT_SEED, OPT_CONSECUTIVE, OPT_DAMP, OPT_ACT_ORDER,
    OPT_IMATRIX, OPT_THREADS, OPT_JSON, OPT_TOKENIZER, OPT_ALLOW_NONFINITE, OPT_NO_RTN_LOSS,
};
static const struct option quantize_options[] = {
    {"type", required_argument, NULL, OPT_TYPE},
    {"type-attn-v", required_argument, NULL, OPT_ATTN_V},
    {"type-ffn-down", required_argument, NULL, OPT_FFN_DOWN},
    {"type-embd", required_argument, NULL, OPT_EMBD},
    {"type-output", required_argument, NULL, OPT_OUTPUT},
    {"method", required_argument, NULL, OPT_METHOD},
    {"calib", required_argument, NULL, OPT_CALIB},
    {"nsamples", required_argument, NULL, OPT_NSAMPLES},
    {"seqlen", required_argument, NULL, OPT_SEQLEN},
    {"seed", required_argument, NULL, OPT_SEED},
    {"consecutive", no_argument, NULL, OPT_CONSECUTIVE},
    {"damp", required_argument, NULL, OPT_DAMP},
    {"act-order", no_argument, NULL, OPT_ACT_ORDER},
    {"imatrix", required_argument, NULL, OPT_IMATRIX},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
    {"allow-nonfinite", no_argument, NULL, OPT_ALLOW_NONFINITE},
    {"no-rtn-loss", no_argument, NULL, OPT_NO_RTN_LOSS},
    {"help", no_argument, NULL, 'h'},
    LB_CLI_ROTATE_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Reads the options into *a: PARSE_CONTINUE, or the exit code (usage error, --help). */
static int parse_options(int argc, char **argv, quantize_args *a)
{
    lb_quantize_params *params = &a->params;
    int64_t seed;
    int rc;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", quantize_options, NULL)) != -1;) {
        if (lb_cli_rotate_is_option(c)) {
            int code = lb_cli_rotate_parse("quantize", c, optarg, &a->rotate);
            if (code != LB_EXIT_OK)
                return code;
            continue;
        }
        switch (c) {
        case OPT_TYPE: a->type_name = optarg; break;
        case OPT_ATTN_V: a->role_types[0] = optarg; break;
        case OPT_FFN_DOWN: a->role_types[1] = optarg; break;
        case OPT_EMBD: a->role_types[2] = optarg; break;
        case OPT_OUTPUT: a->role_types[3] = optarg; break;
        case OPT_METHOD: a->method = optarg; break;
        case OPT_CALIB: a->calib_path = optarg; break;
        case OPT_NSAMPLES:
            if ((rc = lb_cli_int_option("quantize", "--nsamples", optarg, 1, 1 << 20,
                                        &params->nsamples)))
                return rc;
            break;
        case OPT_SEQLEN:
            if ((rc = lb_cli_int_option("quantize", "--seqlen", optarg, 2, 1 << 20,
                                        &params->seqlen)))
                return rc;
            break;
        case OPT_SEED:
            if ((rc = lb_cli_int_option("quantize", "--seed", optarg, 0, INT64_MAX, &seed)))
                return rc;
            params->seed = (uint64_t)seed;
            break;
        case OPT_CONSECUTIVE: params->consecutive = true; break;
        case OPT_DAMP:
            if ((rc = lb_cli_double_option("quantize", "--damp", optarg, 0.0, 1.0,
                                           &params->gptq.damp)))
                return rc;
            break;
        case OPT_ACT_ORDER: params->gptq.act_order = true; break;
        case OPT_IMATRIX: a->imatrix_path = optarg; break;
        case OPT_THREADS:
            if ((rc = lb_cli_int_option("quantize", "--threads", optarg, 1, LB_CLI_MAX_THREADS,
                                        &a->threads)))
                return rc;
            break;
        case OPT_JSON: a->json = true; break;
        case OPT_TOKENIZER: a->ckpt_settings.tokenizer_path = optarg; break;
        case OPT_ALLOW_NONFINITE: params->allow_nonfinite = true; break;
        case OPT_NO_RTN_LOSS: params->gptq.compare_rtn = false; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("quantize", "bad option");
        }
    }
    if (argc - optind != 2)
        return lb_cli_usage_error("quantize", "expected IN and OUT.gguf");
    a->in_path = argv[optind];
    a->out_path = argv[optind + 1];
    return PARSE_CONTINUE;
}

/* Turns --type, the role overrides and --method into params: PARSE_CONTINUE or a usage
 * error's exit code. */
static int resolve_types_and_method(quantize_args *a)
{
    lb_quantize_params *params = &a->params;
    if (!a->type_name)
        return lb_cli_usage_error("quantize", "--type is required (%s)", lb_mixture_names());
    if (lb_mixture_parse(&params->mixture, a->type_name) != LB_OK)
        return lb_cli_usage_error("quantize", "%s", lb_last_error());
    static const lb_tensor_role roles[4] = {LB_ROLE_ATTN_V, LB_ROLE_FFN_DOWN,
                                            LB_ROLE_TOKEN_EMBD, LB_ROLE_OUTPUT};
    static const char *const role_options[4] = {"--type-attn-v", "--type-ffn-down",
                                                "--type-embd", "--type-output"};
    for (int i = 0; i < 4; i++) {
        int code = a->role_types[i] ? parse_role_type(&params->mixture, roles[i],
                                                      a->role_types[i], role_options[i])
                                    : LB_EXIT_OK;
        if (code != LB_EXIT_OK)
            return code;
    }
    if (!a->method)
        params->method = a->calib_path ? LB_QUANT_GPTQ : LB_QUANT_RTN;
    else if (strcmp(a->method, "gptq") == 0)
        params->method = LB_QUANT_GPTQ;
    else if (strcmp(a->method, "rtn") == 0)
        params->method = LB_QUANT_RTN;
    else
        return lb_cli_usage_error("quantize", "--method is gptq or rtn");
    if (params->method == LB_QUANT_GPTQ && !a->calib_path)
        return lb_cli_usage_error("quantize", "GPTQ needs --calib FILE");
    if (params->method == LB_QUANT_GPTQ && a->imatrix_path)
        return lb_cli_usage_error("quantize", "--imatrix is for --method rtn (GPTQ measures "
                                              "its own statistics on --calib)");
    return PARSE_CONTINUE;
}

/* What the command opened; released by inputs_close. */
typedef struct quantize_inputs {
    lb_checkpoint *ckpt;
    lb_model *model;         /* GPTQ only: the lazy model that calibration runs through */
    lb_tokenizer *tokenizer; /* GPTQ only */
    lb_imatrix *imatrix;     /* RTN with --imatrix */
    char *text;              /* the calibration text */
    size_t text_len;
    int32_t *tokens;         /* the calibration text, tokenized */
} quantize_inputs;

static void inputs_close(quantize_inputs *in)
{
    lb_free(in->tokens);
    lb_free(in->text);
    lb_imatrix_free(&in->imatrix);
    lb_tokenizer_free(&in->tokenizer);
    lb_model_free(&in->model);
    lb_checkpoint_close(&in->ckpt);
}

/* Opens the checkpoint and what the method needs (model, tokenizer and tokenized calibration
 * text for GPTQ; the imatrix for RTN) and points params at them: LB_EXIT_OK or the exit
 * code of the failure, its message printed. */
static int open_inputs(quantize_args *a, quantize_inputs *in)
{
    lb_quantize_params *params = &a->params;
    lb_status status;
    if (params->method == LB_QUANT_GPTQ) {
        status = lb_cli_open_model(a->in_path, &a->ckpt_settings, true, &in->ckpt, &in->model,
                                   &in->tokenizer);
        if (status == LB_OK)
            status = lb_cli_read_text(a->calib_path, &in->text, &in->text_len);
    } else {
        status = lb_checkpoint_open(&in->ckpt, a->in_path, &a->ckpt_settings);
        /* RTN needs no model, but writes only what eval would accept. */
        if (status == LB_OK)
            status = lb_model_check(in->ckpt);
        if (status == LB_OK && a->imatrix_path)
            status = lb_imatrix_read(&in->imatrix, a->imatrix_path);
    }
    if (status != LB_OK)
        return lb_cli_fail_input("quantize", status);
    if (in->text) {
        status = lb_tokenizer_encode(in->tokenizer, in->text, in->text_len, false, &in->tokens,
                                     &params->calib_n_tokens);
        if (status != LB_OK)
            return lb_cli_fail("quantize", status);
        params->calib_tokens = in->tokens;
        params->calib_name = base_name(a->calib_path);
        params->calib_hash = lb_fnv1a64(in->text, in->text_len);
    }
    params->imatrix = in->imatrix;
    params->imatrix_name = a->imatrix_path;
    return LB_EXIT_OK;
}

/* --rotate: the checkpoint becomes its rotated view, and GPTQ's model is rebuilt over it so
 * that the Hessians are those of the rotated model. Reports what was done (text mode). */
static int rotate_inputs(quantize_args *a, quantize_inputs *in)
{
    if (!a->rotate.enabled)
        return LB_EXIT_OK;
    lb_status status = lb_cli_rotate_apply(&a->rotate, &in->ckpt, &a->rotated);
    if (status == LB_OK && in->model) {
        lb_model_free(&in->model);
        status = lb_model_load_lazy(&in->model, in->ckpt);
    }
    if (status != LB_OK)
        return lb_cli_fail_input("quantize", status);
    /* The added classifier's type, as the pipeline's plan will choose it. */
    lb_mixture_model mm;
    lb_mixture_model_from_hparams(&mm, &in->ckpt->hparams);
    mm.has_output = true;
    mm.has_imatrix = a->params.method == LB_QUANT_GPTQ || in->imatrix;
    int64_t index = lb_checkpoint_find(in->ckpt, "output.weight");
    const lb_checkpoint_tensor *t = index >= 0 ? &in->ckpt->tensors[index] : NULL;
    lb_type type = t ? lb_mixture_tensor_type(&a->params.mixture, &mm, t->name, t->n_dims, t->ne)
                     : LB_TYPE_F32;
    uint64_t bytes = 0;
    if (t && a->rotated.added_output)
        lb_tensor_bytes(type, t->n_dims, t->ne, &bytes);
    if (!a->json)
        lb_cli_rotate_print_report(stdout, &a->rotated, bytes, lb_type_get((uint32_t)type)->name);
    return LB_EXIT_OK;
}

/* The exit code of a failed lb_quantize_model: problems of the inputs exit as such. */
static int quantize_failure(lb_status status)
{
    return status == LB_ERR_NUMERIC || status == LB_ERR_INVALID_ARG ||
                   status == LB_ERR_UNSUPPORTED || status == LB_ERR_BAD_INPUT
               ? lb_cli_fail_input("quantize", status)
               : lb_cli_fail("quantize", status);
}

/* The summary after a successful run: file size, bits per weight, time, memory and losses. */
typedef struct run_totals {
    double mib, bpw, rss;
} run_totals;

static void print_summary_json(const quantize_args *a, const lb_imatrix *imatrix,
                               const lb_quantize_summary *summary, const run_totals *t,
                               progress *pr)
{
    json_t *root = json_object();
    json_object_set_new(root, "output", json_string(a->out_path));
    json_object_set_new(root, "type", json_string(a->params.mixture.name));
    json_object_set_new(root, "method", json_string(a->params.method == LB_QUANT_GPTQ
                                                        ? "gptq" : imatrix ? "rtn+imatrix"
                                                                           : "rtn"));
    json_object_set_new(root, "file_mib", json_number_or_null(t->mib));
    json_object_set_new(root, "bits_per_weight", json_real(t->bpw));
    json_object_set_new(root, "seconds", json_real(summary->seconds));
    json_object_set_new(root, "seconds_calibration_forward",
                        json_real(summary->seconds_forward));
    json_object_set_new(root, "peak_rss_mib", json_number_or_null(t->rss));
    json_object_set_new(root, "nonfinite_zeroed", json_integer(summary->n_nonfinite));
    if (summary->ref_total > 0.0) {
        json_object_set_new(root, "rtn_rel_loss",
                            json_real(summary->loss_rtn_total / summary->ref_total));
        json_object_set_new(root, "gptq_rel_loss",
                            json_real(summary->loss_gptq_total / summary->ref_total));
    }
    if (a->rotate.enabled) {
        const lb_rotate_info *ri = &a->rotated;
        json_t *rot = json_object();
        json_object_set_new(rot, "r1", json_string(ri->r1));
        json_object_set_new(rot, "r2", json_string(ri->r2));
        json_object_set_new(rot, "r1_seed", json_integer((json_int_t)ri->r1_seed));
        json_object_set_new(rot, "r2_seed", json_integer((json_int_t)ri->r2_seed));
        json_object_set_new(rot, "head", json_string(ri->head));
        json_object_set_new(rot, "added_output_weights", json_integer(ri->added_output_elements));
        json_object_set_new(rot, "exact", json_boolean(ri->exact));
        json_object_set_new(root, "rotation", rot);
    }
    if (imatrix) {
        json_t *im = json_object();
        json_object_set_new(im, "file", json_string(a->imatrix_path));
        json_object_set_new(im, "matrices_weighted", json_integer(summary->imatrix_used));
        json_object_set_new(im, "matrices_without_entry",
                            json_integer(summary->imatrix_missing));
        json_object_set_new(im, "entries_unused", json_integer(summary->imatrix_unused));
        json_object_set_new(root, "imatrix", im);
    }
    json_object_set_new(root, "layers", pr->layers);
    pr->layers = NULL;
    char *dump = json_dumps(root, JSON_INDENT(2));
    if (dump)
        printf("%s\n", dump);
    free(dump);
    json_decref(root);
}

static void print_summary_text(const quantize_args *a, const lb_quantize_summary *summary,
                               const run_totals *t)
{
    if (summary->ref_total > 0.0)
        printf("total proxy loss: rtn %.4e, gptq %.4e (relative to tr(W H W^T))\n",
               summary->loss_rtn_total / summary->ref_total,
               summary->loss_gptq_total / summary->ref_total);
    if (a->imatrix_path && a->params.method == LB_QUANT_RTN) {
        printf("imatrix %s: %lld matrices weighted, %lld without an entry", a->imatrix_path,
               (long long)summary->imatrix_used, (long long)summary->imatrix_missing);
        if (summary->imatrix_first_missing)
            printf(" (first '%s')", summary->imatrix_first_missing);
        printf(", %lld entries unused\n", (long long)summary->imatrix_unused);
    }
    if (summary->n_nonfinite)
        printf("replaced %lld NaN/Inf weights by 0 (--allow-nonfinite)\n",
               (long long)summary->n_nonfinite);
    printf("wrote %s: %.2f MiB, %.3f bits/weight, %.1f s, peak RSS %.0f MiB\n", a->out_path,
           t->mib, t->bpw, summary->seconds, t->rss);
}

int lb_cmd_quantize(int argc, char **argv)
{
    quantize_args a = {.ckpt_settings = lb_checkpoint_default_settings(),
                       .params = lb_quantize_default_params(),
                       .rotate = lb_cli_rotate_defaults()};
    a.ckpt_settings.decode = lb_kernels_dequantize; /* a packed source is read dequantized */
    int exit_code = parse_options(argc, argv, &a);
    if (exit_code == PARSE_CONTINUE)
        exit_code = resolve_types_and_method(&a);
    if (exit_code == PARSE_CONTINUE && a.rotate.enabled && a.imatrix_path)
        exit_code = lb_cli_usage_error("quantize", "--imatrix with --rotate: an importance matrix "
                                                   "of the unrotated model does not fit the "
                                                   "rotated one (use --calib for GPTQ)");
    if (exit_code != PARSE_CONTINUE)
        return exit_code;
    if (a.threads > 0)
        omp_set_num_threads((int)a.threads);

    quantize_inputs in = {0};
    progress pr = {a.json, isatty(STDERR_FILENO) != 0, omp_get_wtime(), NULL};
    if ((exit_code = open_inputs(&a, &in)) != LB_EXIT_OK ||
        (exit_code = rotate_inputs(&a, &in)) != LB_EXIT_OK)
        goto done;
    a.params.on_tensor = on_tensor;
    a.params.context = &pr;
    if (a.json)
        pr.layers = json_array();
    else
        printf("%-28s %-5s %-11s %15s %11s %11s %9s\n", "tensor", "type", "method",
               "rows x cols", "rtn loss", "gptq loss", "time");
    lb_quantize_summary summary;
    lb_status status = lb_quantize_model(in.ckpt, in.model, a.out_path, &a.params, &summary);
    if (status != LB_OK) {
        if (pr.bar)
            fprintf(stderr, "\n");
        exit_code = quantize_failure(status);
        goto done;
    }
    if (summary.imatrix_unused > 0) /* a file of this model names only its own tensors */
        fprintf(stderr, "lowbit quantize: warning: imatrix %s: %lld entries name no tensor of "
                "%s (first '%s')\n", a.imatrix_path, (long long)summary.imatrix_unused,
                a.in_path, summary.imatrix_first_unused);
    struct stat st;
    run_totals t;
    t.mib = stat(a.out_path, &st) == 0 ? (double)st.st_size / 1048576.0 : NAN;
    t.bpw = summary.n_weights
                ? 8.0 * (double)summary.tensor_bytes / (double)summary.n_weights
                : 0.0;
    t.rss = peak_rss_mib();
    if (a.json)
        print_summary_json(&a, in.imatrix, &summary, &t, &pr);
    else
        print_summary_text(&a, &summary, &t);
done:
    json_decref(pr.layers);
    inputs_close(&in);
    return exit_code;
}
