/* lowbit convert: any supported checkpoint to a llama.cpp-compatible GGUF. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_rotate.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: lowbit convert IN OUT.gguf [--type f32|f16|bf16] [--tokenizer FILE]\n"
            "                      [--rotate r1|r1+r2|off] [--rotate-kind K] [--rotate-seed S]\n"
            "                      [--rotate-head untie|tied]\n\n"
            "Converts a llama2.c checkpoint (+ tokenizer.bin), a Hugging Face safetensors\n"
            "checkpoint (file, sharded index or directory, with config.json and\n"
            "tokenizer.json), or a GGUF file into a GGUF file that llama.cpp loads.\n"
            "1-d tensors (norms) stay F32. The output appears only when complete.\n\n"
            "  --type T         tensor type of the matrices: f32 (default), f16 or bf16\n"
            "  --tokenizer FILE tokenizer.bin / tokenizer.json when not beside the model\n"
            "  -h, --help       this text\n");
    lb_cli_rotate_print_usage(out);
}

int lb_cmd_convert(int argc, char **argv)
{
    static const struct option options[] = {
        {"type", required_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        LB_CLI_ROTATE_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    lb_cli_rotate rotate = lb_cli_rotate_defaults();
    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    settings.decode = lb_kernels_dequantize; /* a packed GGUF converts to its dequantized values */
    lb_type out_type = LB_TYPE_F32;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
        if (lb_cli_rotate_is_option(c)) {
            int code = lb_cli_rotate_parse("convert", c, optarg, &rotate);
            if (code != LB_EXIT_OK)
                return code;
            continue;
        }
        switch (c) {
        case 't':
            if (lb_type_from_name(optarg, &out_type) != LB_OK ||
                (out_type != LB_TYPE_F32 && out_type != LB_TYPE_F16 && out_type != LB_TYPE_BF16))
                return lb_cli_usage_error("convert", "--type must be f32, f16 or bf16, not '%s'",
                                          optarg);
            break;
        case 'k': settings.tokenizer_path = optarg; break;
        case 'h': print_usage(stdout); return LB_EXIT_OK;
        default: return lb_cli_usage_error("convert", "bad option");
        }
    }
    if (argc - optind != 2)
        return lb_cli_usage_error("convert", "expected IN and OUT.gguf");
    const char *in_path = argv[optind], *out_path = argv[optind + 1];

    lb_checkpoint *ckpt = NULL;
    lb_status status = lb_checkpoint_open(&ckpt, in_path, &settings);
    if (status != LB_OK)
        return lb_cli_fail_input("convert", status);
    if (!ckpt->vocab)
        fprintf(stderr, "lowbit convert: warning: no tokenizer found for %s; the GGUF will "
                        "have none (pass --tokenizer)\n", in_path);
    lb_rotate_info rotated;
    if ((status = lb_cli_rotate_apply(&rotate, &ckpt, &rotated)) != LB_OK) {
        lb_checkpoint_close(&ckpt);
        return lb_cli_fail_input("convert", status);
    }
    if (rotate.enabled) {
        /* The added classifier is a matrix: stored in out_type like the others. */
        uint64_t added = (uint64_t)rotated.added_output_elements *
                         (out_type == LB_TYPE_F32 ? 4u : 2u);
        fputs("lowbit convert: ", stderr);
        lb_cli_rotate_print_report(stderr, &rotated, added,
                                   lb_type_get((uint32_t)out_type)->name);
    }
    status = lb_checkpoint_write_gguf(ckpt, out_path, out_type);
    int exit_code = LB_EXIT_OK;
    if (status != LB_OK)
        exit_code = status == LB_ERR_UNSUPPORTED ? lb_cli_fail_input("convert", status)
                                                 : lb_cli_fail("convert", status);
    else
        fprintf(stderr, "lowbit convert: wrote %s (%lld tensors, %s)\n", out_path,
                (long long)ckpt->n_tensors, lb_type_get((uint32_t)out_type)->name);
    lb_checkpoint_close(&ckpt);
    return exit_code;
}
