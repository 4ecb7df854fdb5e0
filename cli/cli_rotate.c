/* The --rotate options of `lowbit convert` and `lowbit quantize` (cli_rotate.h). */
#include "cli/cli_rotate.h"

#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

lb_cli_rotate lb_cli_rotate_defaults(void)
{
    lb_cli_rotate r = {.enabled = false, .options = lb_rotate_default_options()};
    return r;
}

bool lb_cli_rotate_is_option(int code)
{
    return code >= LB_CLI_OPT_ROTATE && code <= LB_CLI_OPT_ROTATE_HEAD;
}

int lb_cli_rotate_parse(const char *command, int code, const char *arg, lb_cli_rotate *r)
{
    lb_rotate_options *o = &r->options;
    int64_t seed;
    int rc;
    switch (code) {
    case LB_CLI_OPT_ROTATE:
        if (strcmp(arg, "off") == 0) {
            r->enabled = false;
        } else if (strcmp(arg, "r1") == 0 || strcmp(arg, "r1+r2") == 0 ||
                   strcmp(arg, "r2") == 0) {
            r->enabled = true;
            o->r1 = strcmp(arg, "r2") != 0;
            o->r2 = strcmp(arg, "r1") != 0;
        } else {
            return lb_cli_usage_error(command, "--rotate is r1, r1+r2, r2 or off, not '%s'",
                                      arg);
        }
        return LB_EXIT_OK;
    case LB_CLI_OPT_ROTATE_KIND:
        if (strcmp(arg, "hadamard") == 0)
            o->kind = LB_ROTATE_HADAMARD;
        else if (strcmp(arg, "orthogonal") == 0)
            o->kind = LB_ROTATE_ORTHOGONAL;
        else
            return lb_cli_usage_error(command,
                                      "--rotate-kind is hadamard or orthogonal, not '%s'", arg);
        return LB_EXIT_OK;
    case LB_CLI_OPT_ROTATE_SEED:
        if ((rc = lb_cli_int_option(command, "--rotate-seed", arg, 0, INT64_MAX, &seed)))
            return rc;
        o->seed = (uint64_t)seed;
        return LB_EXIT_OK;
    case LB_CLI_OPT_ROTATE_HEAD:
        if (strcmp(arg, "untie") == 0)
            o->untie = true;
        else if (strcmp(arg, "tied") == 0)
            o->untie = false;
        else
            return lb_cli_usage_error(command, "--rotate-head is untie or tied, not '%s'", arg);
        return LB_EXIT_OK;
    default:
        return lb_cli_usage_error(command, "bad option");
    }
}

void lb_cli_rotate_print_usage(FILE *out)
{
    fprintf(out,
            "  --rotate R          fold orthogonal rotations into the weights first: r1 (the\n"
            "                      norms' gains folded, the residual stream rotated), r1+r2\n"
            "                      (also the values per KV head), r2 (the values only: a\n"
            "                      tied head stays tied) or off (default). The model\n"
            "                      computes the same function and stays a plain llama GGUF\n"
            "  --rotate-kind K     hadamard (default: randomized Hadamard where the width has\n"
            "                      a Hadamard order, else random orthogonal) or orthogonal\n"
            "  --rotate-seed S     seed of the rotations (default 1)\n"
            "  --rotate-head H     for tied embeddings: untie (default: output.weight of its\n"
            "                      own, exact, one vocab x dim matrix more) or tied (kept\n"
            "                      tied, the final norm's gain left unfolded: not exact)\n");
}

lb_status lb_cli_rotate_apply(const lb_cli_rotate *r, lb_checkpoint **checkpoint,
                              lb_rotate_info *info)
{
    if (!r->enabled)
        return LB_OK;
    lb_checkpoint *rotated = NULL;
    lb_status status = lb_rotate_checkpoint(&rotated, *checkpoint, &r->options, info);
    if (status == LB_OK)
        *checkpoint = rotated;
    return status;
}

void lb_cli_rotate_print_report(FILE *out, const lb_rotate_info *info, uint64_t added_bytes,
                                const char *added_type)
{
    fprintf(out, "rotation: r1 %s", info->r1);
    if (strcmp(info->r1, "none") != 0)
        fprintf(out, " (seed %llu)", (unsigned long long)info->r1_seed);
    fprintf(out, ", r2 %s", info->r2);
    if (strcmp(info->r2, "none") != 0)
        fprintf(out, " (seed %llu)", (unsigned long long)info->r2_seed);
    fprintf(out, ", head %s", info->head);
    if (info->added_output)
        fprintf(out, " (untied: output.weight added, %lld weights, %.2f MiB in %s)",
                (long long)info->added_output_elements, (double)added_bytes / 1048576.0,
                added_type);
    if (!info->exact)
        fprintf(out, "; not exact: output_norm's gain stays before the tied head");
    fprintf(out, "\n");
}
