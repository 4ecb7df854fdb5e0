/* Internal declarations shared by the lowbit command's subcommands. */
#ifndef LB_CLI_CLI_H
#define LB_CLI_CLI_H

#include "lowbit.h"

/* Process exit codes (documented in README.md). */
enum {
    LB_EXIT_OK = 0,
    LB_EXIT_FAILURE = 1,   /* anything else: out of memory, cannot write the output, ... */
    LB_EXIT_USAGE = 2,     /* bad command line */
    LB_EXIT_BAD_INPUT = 3, /* input file missing, malformed, unsupported or not fitting
                              (LB_ERR_BAD_INPUT: another model's imatrix, too short a text) */
    LB_EXIT_DRIFT = 4,     /* eval --max-drift: the perplexity drift exceeds the limit */
};

/* Prints "lowbit <command>: error: <last library message>" and maps a status from reading
 * input to an exit code. */
int lb_cli_fail_input(const char *command, lb_status status);
/* Same for failures after the input was read (writing output and the like). */
int lb_cli_fail(const char *command, lb_status status);
/* Prints a usage error and returns LB_EXIT_USAGE. */
int lb_cli_usage_error(const char *command, const char *fmt, ...) LB_PRINTF(2, 3);

/* Parses a decimal integer in [min, max]; false for anything else. */
bool lb_cli_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);

/* Upper bound of every --threads: OpenMP spawns what it is told, and thousands of threads
 * cost memory and seconds before any work (documented in README.md). */
#define LB_CLI_MAX_THREADS 1024

/* Parses an option's value strictly (decimal digits, an optional '-', nothing after; no
 * overflow; in [min, max]) into *out and returns LB_EXIT_OK; otherwise prints a usage error
 * naming the option and the value and returns LB_EXIT_USAGE. */
int lb_cli_int_option(const char *command, const char *option, const char *text, int64_t min,
                      int64_t max, int64_t *out);
/* The same for a finite decimal number in [min, max] (no nan, inf or hex). */
int lb_cli_double_option(const char *command, const char *option, const char *text, double min,
                         double max, double *out);

/* Reads a whole file into memory (NUL-terminated, bytes as they are). */
lb_status lb_cli_read_text(const char *path, char **text, size_t *len);

/* Opens a checkpoint with its tokenizer and builds the model (lazy: see lb_model_load_lazy)
 * and the tokenizer; on failure
 * everything opened so far is left in the out-pointers for the caller to release. */
lb_status lb_cli_open_model(const char *path, const lb_checkpoint_settings *settings, bool lazy,
                            lb_checkpoint **checkpoint, lb_model **model,
                            lb_tokenizer **tokenizer);

int lb_cmd_inspect(int argc, char **argv);
int lb_cmd_convert(int argc, char **argv);
int lb_cmd_eval(int argc, char **argv);
int lb_cmd_generate(int argc, char **argv);
int lb_cmd_bench(int argc, char **argv);
int lb_cmd_quantize(int argc, char **argv);
int lb_cmd_imatrix(int argc, char **argv);

#endif
