/* lowbit inspect: format, hyperparameters, tokenizer and tensor table of a checkpoint. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit inspect FILE [--json] [--tokenizer FILE]\n\n"
            "Shows a checkpoint's format, architecture and hyperparameters, tokenizer,\n"
            "its tensors (name, shape, type, bytes, bits per weight) and totals.\n"
            "FILE: a llama2.c .bin, a .safetensors file / index / directory, or a .gguf.\n\n"
            "  --json           machine-readable output on stdout\n"
            "  --tokenizer FILE tokenizer.bin / tokenizer.json when not beside the model\n"
            "  -h, --help       this text\n");
}

static void shape_string(const lb_checkpoint_tensor *t, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int d = 0; d < t->n_dims && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, d ? " x %lld" : "%lld",
                                 (long long)t->ne[d]);
}

static int64_t tensor_elements(const lb_checkpoint_tensor *t)
{
    int64_t n = 0;
    lb_tensor_count(t->n_dims, t->ne, &n);
    return n;
}

static const char *type_name(lb_type type)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return info ? info->name : "?";
}

static void print_text(const lb_checkpoint *ckpt)
{
    const lb_hparams *hp = &ckpt->hparams;
    printf("file:         %s\n", ckpt->path);
    printf("format:       %s\n", lb_checkpoint_format_name(ckpt->format));
    printf("architecture: %s\n", hp->arch);
    printf("  dim (embedding_length)          %lld\n", (long long)hp->dim);
    printf("  hidden_dim (feed_forward_length) %lld\n", (long long)hp->hidden_dim);
    printf("  n_layers (block_count)          %lld\n", (long long)hp->n_layers);
    printf("  n_heads                         %lld\n", (long long)hp->n_heads);
    printf("  n_kv_heads                      %lld\n", (long long)hp->n_kv_heads);
    printf("  head_dim                        %lld\n", (long long)hp->head_dim);
    printf("  vocab_size                      %lld\n", (long long)hp->vocab_size);
    printf("  seq_len (context_length)        %lld\n", (long long)hp->context_length);
    printf("  rope_theta                      %g\n", hp->rope_theta);
    printf("  rms_eps                         %g\n", hp->rms_eps);
    printf("  classifier                      %s\n",
           hp->tied_embeddings ? "shared with the token embedding" : "separate (output.weight)");
    if (ckpt->vocab) {
        const lb_vocab *v = ckpt->vocab;
        printf("tokenizer:    %s, %lld tokens, %lld merges, bos %d, eos %d, unk %d (%s)\n",
               v->model, (long long)v->n_tokens, (long long)v->n_merges, v->bos_id, v->eos_id,
               v->unk_id, ckpt->tokenizer_path ? ckpt->tokenizer_path : "");
    } else {
        printf("tokenizer:    none found\n");
    }
    if (ckpt->gguf)
        printf("metadata:     %lld keys (GGUF v%u, alignment %u)\n", (long long)ckpt->gguf->n_kv,
               ckpt->gguf->version, ckpt->gguf->alignment);

    printf("\n%-32s %-16s %-5s %12s %6s\n", "tensor", "shape", "type", "bytes", "bpw");
    int64_t params = 0;
    uint64_t bytes = 0;
    for (int64_t i = 0; i < ckpt->n_tensors; i++) {
        const lb_checkpoint_tensor *t = &ckpt->tensors[i];
        char shape[96];
        shape_string(t, shape, sizeof shape);
        int64_t n = tensor_elements(t);
        printf("%-32s %-16s %-5s %12" PRIu64 " %6.2f\n", t->name, shape, type_name(t->type),
               t->nbytes, n ? (double)t->nbytes * 8.0 / (double)n : 0.0);
        params += n;
        bytes += t->nbytes;
    }
    printf("\ntotal: %lld tensors, %lld parameters, %" PRIu64 " bytes (%.2f MB), %.2f bits per "
           "weight\n",
           (long long)ckpt->n_tensors, (long long)params, bytes, (double)bytes / 1e6,
           params ? (double)bytes * 8.0 / (double)params : 0.0);
}

static int print_json(const lb_checkpoint *ckpt)
{
    const lb_hparams *hp = &ckpt->hparams;
    json_t *root = json_object();
    json_object_set_new(root, "file", json_string(ckpt->path));
    json_object_set_new(root, "format", json_string(lb_checkpoint_format_name(ckpt->format)));
    json_object_set_new(root, "architecture", json_string(hp->arch));
    json_t *h = json_object();
    json_object_set_new(h, "dim", json_integer(hp->dim));
    json_object_set_new(h, "hidden_dim", json_integer(hp->hidden_dim));
    json_object_set_new(h, "n_layers", json_integer(hp->n_layers));
    json_object_set_new(h, "n_heads", json_integer(hp->n_heads));
    json_object_set_new(h, "n_kv_heads", json_integer(hp->n_kv_heads));
    json_object_set_new(h, "head_dim", json_integer(hp->head_dim));
    json_object_set_new(h, "vocab_size", json_integer(hp->vocab_size));
    json_object_set_new(h, "seq_len", json_integer(hp->context_length));
    json_object_set_new(h, "rope_theta", json_real(hp->rope_theta));
    json_object_set_new(h, "rms_eps", json_real(hp->rms_eps));
    json_object_set_new(h, "shared_classifier", json_boolean(hp->tied_embeddings));
    json_object_set_new(root, "hparams", h);
    if (ckpt->vocab) {
        json_t *tok = json_object();
        json_object_set_new(tok, "model", json_string(ckpt->vocab->model));
        json_object_set_new(tok, "n_tokens", json_integer(ckpt->vocab->n_tokens));
        json_object_set_new(tok, "n_merges", json_integer(ckpt->vocab->n_merges));
        json_object_set_new(tok, "bos_id", json_integer(ckpt->vocab->bos_id));
        json_object_set_new(tok, "eos_id", json_integer(ckpt->vocab->eos_id));
        json_object_set_new(tok, "unk_id", json_integer(ckpt->vocab->unk_id));
        if (ckpt->tokenizer_path)
            json_object_set_new(tok, "path", json_string(ckpt->tokenizer_path));
        json_object_set_new(root, "tokenizer", tok);
    } else {
        json_object_set_new(root, "tokenizer", json_null());
    }
    json_t *tensors = json_array();
    int64_t params = 0;
    uint64_t bytes = 0;
    for (int64_t i = 0; i < ckpt->n_tensors; i++) {
        const lb_checkpoint_tensor *t = &ckpt->tensors[i];
        json_t *entry = json_object();
        json_t *shape = json_array();
        for (int d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, json_integer(t->ne[d]));
        int64_t n = tensor_elements(t);
        json_object_set_new(entry, "name", json_string(t->name));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "type", json_string(type_name(t->type)));
        json_object_set_new(entry, "bytes", json_integer((json_int_t)t->nbytes));
        json_object_set_new(entry, "bits_per_weight",
                            json_real(n ? (double)t->nbytes * 8.0 / (double)n : 0.0));
        json_array_append_new(tensors, entry);
        params += n;
        bytes += t->nbytes;
    }
    json_object_set_new(root, "tensors", tensors);
    json_object_set_new(root, "n_tensors", json_integer(ckpt->n_tensors));
    json_object_set_new(root, "n_parameters", json_integer(params));
    json_object_set_new(root, "bytes", json_integer((json_int_t)bytes));
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    printf("\n");
    json_decref(root);
    return rc == 0 ? LB_EXIT_OK : LB_EXIT_FAILURE;
}

int lb_cmd_inspect(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"tokenizer", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    settings.decode = lb_kernels_dequantize;
    bool json = false;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
        switch (c) {
        case 'j': json = true; break;
        case 'k': settings.tokenizer_path = optarg; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("inspect", "bad option");
        }
    }
    if (argc - optind != 1)
        return lb_cli_usage_error("inspect", "expected one FILE");
    lb_checkpoint *ckpt = NULL;
    lb_status status = lb_checkpoint_open(&ckpt, argv[optind], &settings);
    if (status != LB_OK)
        return lb_cli_fail_input("inspect", status);
    int exit_code = LB_EXIT_OK;
    if (json)
        exit_code = print_json(ckpt);
    else
        print_text(ckpt);
    lb_checkpoint_close(&ckpt);
    return exit_code;
}
