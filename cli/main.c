/* The lowbit command: dispatches to subcommands, maps errors to exit codes. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"inspect", lb_cmd_inspect, "show a checkpoint's format, hyperparameters, tokenizer and tensors"},
    {"convert", lb_cmd_convert, "convert a checkpoint to a llama.cpp-compatible GGUF file"},
    {"eval", lb_cmd_eval, "perplexity, KL divergence against saved logits, drift gate"},
    {"generate", lb_cmd_generate, "continue a prompt (greedy or sampled)"},
    {"quantize", lb_cmd_quantize, "round a checkpoint into packed types (GPTQ or RTN), write GGUF"},
    {"imatrix", lb_cmd_imatrix, "importance matrix on calibration text (llama.cpp's format)"},
    {"bench", lb_cmd_bench, "time the GEMV/GEMM kernels against read bandwidth and BLAS"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: lowbit COMMAND [OPTIONS] ...\n\n"
                 "lowbit quantizes language-model weights to a few bits per weight.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'lowbit COMMAND --help' describes a command.\n"
                 "exit codes: 0 success, 1 failure, 2 usage error, 3 bad or unsupported input,\n"
                 "            4 eval --max-drift exceeded\n");
}

/* Writes a message that may carry bytes from a hostile file (names, architecture strings)
 * with control characters as \xHH, so that none reaches the terminal as an escape sequence. */
static void put_escaped(FILE *out, const char *message)
{
    for (const unsigned char *p = (const unsigned char *)message; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

/* "lowbit COMMAND: error: MESSAGE" on one line. */
static void print_error(const char *command)
{
    fprintf(stderr, "lowbit %s: error: ", command);
    put_escaped(stderr, lb_last_error());
    fputc('\n', stderr);
}

int lb_cli_fail_input(const char *command, lb_status status)
{
    print_error(command);
    /* NUMERIC here is NaN/Inf in the input's weights, named by the message. */
    if (status == LB_ERR_CORRUPT_FILE || status == LB_ERR_UNSUPPORTED || status == LB_ERR_IO ||
        status == LB_ERR_BAD_INPUT || status == LB_ERR_NUMERIC)
        return LB_EXIT_BAD_INPUT;
    return status == LB_ERR_INVALID_ARG ? LB_EXIT_USAGE : LB_EXIT_FAILURE;
}

int lb_cli_fail(const char *command, lb_status status)
{
    (void)status;
    print_error(command);
    return LB_EXIT_FAILURE;
}

int lb_cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list args;
    char message[1024];
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    fprintf(stderr, "lowbit %s: ", command);
    put_escaped(stderr, message);
    fprintf(stderr, " (see 'lowbit %s --help')\n", command);
    return LB_EXIT_USAGE;
}

bool lb_cli_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    /* strtoll alone would also take leading blanks and a '+'. */
    if (!(isdigit((unsigned char)text[0]) || (text[0] == '-' && isdigit((unsigned char)text[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* An option's value as it may be printed: at most 40 bytes, non-printable bytes as \xNN, so a
 * hostile argument cannot put terminal escapes on stderr. */
static const char *printable_value(const char *text, char *buffer, size_t size)
{
    size_t used = 0, i = 0;
    for (; text[i] != '\0' && i < 40 && used + 5 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buffer[used++] = (char)c;
        else
            used += (size_t)snprintf(buffer + used, size - used, "\\x%02x", c);
    }
    buffer[used] = '\0';
    if (text[i] != '\0' && used + 4 < size)
        memcpy(buffer + used, "...", 4);
    return buffer;
}

int lb_cli_int_option(const char *command, const char *option, const char *text, int64_t min,
                      int64_t max, int64_t *out)
{
    if (lb_cli_parse_int(text, min, max, out))
        return LB_EXIT_OK;
    char shown[208];
    printable_value(text, shown, sizeof shown);
    if (max == INT64_MAX)
        return lb_cli_usage_error(command, "%s '%s' is not an integer >= %lld", option, shown,
                                  (long long)min);
    return lb_cli_usage_error(command, "%s '%s' is not an integer in %lld..%lld", option, shown,
                              (long long)min, (long long)max);
}

int lb_cli_double_option(const char *command, const char *option, const char *text, double min,
                         double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    /* Digits first: strtod would also take blanks, "nan", "inf" and hex floats. */
    bool digits = isdigit((unsigned char)text[0]) ||
                  (text[0] == '.' && isdigit((unsigned char)text[1])) ||
                  (text[0] == '-' && (isdigit((unsigned char)text[1]) || text[1] == '.'));
    if (digits && *end == '\0' && errno != ERANGE && isfinite(v) && v >= min && v <= max &&
        !strpbrk(text, "xX")) {
        *out = v;
        return LB_EXIT_OK;
    }
    char shown[208];
    printable_value(text, shown, sizeof shown);
    return lb_cli_usage_error(command, "%s '%s' is not a number in [%g, %g]", option, shown, min,
                              max);
}

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ?
           "a character device" : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ?
           "a socket" : "not a file";
}

lb_status lb_cli_read_text(const char *path, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    /* Non-blocking: a FIFO without a writer is refused below instead of blocking the open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return lb_error(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    lb_status status = LB_OK;
    if (fstat(fd, &st) != 0) {
        status = lb_error(LB_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        status = lb_error(LB_ERR_BAD_INPUT, "%s: not a regular file (%s)", path,
                          file_kind(st.st_mode));
    } else if (!(*text = lb_malloc((size_t)st.st_size + 1))) {
        status = lb_error(LB_ERR_NOMEM, "%s: out of memory for the text (%llu bytes)", path,
                          (unsigned long long)st.st_size + 1);
    } else {
        while (*len < (size_t)st.st_size) {
            ssize_t n = read(fd, *text + *len, (size_t)st.st_size - *len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                status = lb_error(LB_ERR_IO, "%s: read %zu of %llu bytes: %s", path, *len,
                                  (unsigned long long)st.st_size,
                                  n < 0 ? strerror(errno) : "the file shrank");
                break;
            }
            *len += (size_t)n;
        }
        if (status == LB_OK)
            (*text)[*len] = '\0';
    }
    close(fd);
    if (status != LB_OK) {
        lb_free(*text);
        *text = NULL;
        *len = 0;
    }
    return status;
}

lb_status lb_cli_open_model(const char *path, const lb_checkpoint_settings *settings, bool lazy,
                            lb_checkpoint **checkpoint, lb_model **model,
                            lb_tokenizer **tokenizer)
{
    /* Packed tensors that the model does not keep packed (a packed GGUF's embedding) and the
     * quantizer's reads of a packed source are decoded with the kernels. */
    lb_checkpoint_settings with_decode = *settings;
    with_decode.decode = lb_kernels_dequantize;
    lb_status status = lb_checkpoint_open(checkpoint, path, &with_decode);
    if (status != LB_OK)
        return status;
    if (!(*checkpoint)->vocab)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: no tokenizer found (pass --tokenizer)", path);
    if ((status = (lazy ? lb_model_load_lazy : lb_model_load)(model, *checkpoint)) != LB_OK)
        return status;
    status = lb_tokenizer_create(tokenizer, (*checkpoint)->vocab);
    if (status != LB_OK) /* the vocabulary's file, and bad input rather than a bad call */
        status = lb_error_prefix(LB_ERR_BAD_INPUT, "%s: ", (*checkpoint)->tokenizer_path
                                                             ? (*checkpoint)->tokenizer_path
                                                             : path);
    return status;
}

/* On SIGINT/SIGTERM remove any half-written output before dying, so a target path is either
 * untouched or complete. */
static void on_terminate(int signal_number)
{
    lb_atomic_file_cleanup_all_from_signal();
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

int main(int argc, char **argv)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_terminate;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    if (argc < 2) {
        print_help(stderr);
        return LB_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return LB_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lowbit %s\n", LB_VERSION);
        return LB_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lowbit: unknown command '%s'\n", argv[1]);
    print_help(stderr);
    return LB_EXIT_USAGE;
}
