/* The --rotate options that `lowbit convert` and `lowbit quantize` share, and their report. */
#ifndef LB_CLI_CLI_ROTATE_H
#define LB_CLI_CLI_ROTATE_H

#include <stdio.h>

#include "lowbit.h"

/* getopt_long codes of the rotation options (past every command's own codes). */
enum {
    LB_CLI_OPT_ROTATE = 1000,
    LB_CLI_OPT_ROTATE_KIND,
    LB_CLI_OPT_ROTATE_SEED,
    LB_CLI_OPT_ROTATE_HEAD,
};

/* The entries for a command's struct option table. */
#define LB_CLI_ROTATE_OPTIONS                                                   \
    {"rotate", required_argument, NULL, LB_CLI_OPT_ROTATE},                     \
    {"rotate-kind", required_argument, NULL, LB_CLI_OPT_ROTATE_KIND},           \
    {"rotate-seed", required_argument, NULL, LB_CLI_OPT_ROTATE_SEED},           \
    {"rotate-head", required_argument, NULL, LB_CLI_OPT_ROTATE_HEAD}

typedef struct lb_cli_rotate {
    bool enabled;              /* --rotate r1 or r1+r2 */
    lb_rotate_options options;
} lb_cli_rotate;

lb_cli_rotate lb_cli_rotate_defaults(void);

/* Whether `code` is one of the rotation options. */
bool lb_cli_rotate_is_option(int code);
/* Reads one rotation option: LB_EXIT_OK, or a usage error's exit code (message printed). */
int lb_cli_rotate_parse(const char *command, int code, const char *arg, lb_cli_rotate *r);

/* The options' lines for a command's --help. */
void lb_cli_rotate_print_usage(FILE *out);

/* Replaces *checkpoint by its rotated view (which then owns the original) when r->enabled;
 * info describes it. */
lb_status lb_cli_rotate_apply(const lb_cli_rotate *r, lb_checkpoint **checkpoint,
                              lb_rotate_info *info);

/* One report line: "rotation: r1 hadamard (seed 1), r2 none, head untied (+output.weight
 * ...)". added_bytes: the bytes the untied output.weight takes in the file (0 when none). */
void lb_cli_rotate_print_report(FILE *out, const lb_rotate_info *info, uint64_t added_bytes,
                                const char *added_type);

#endif
