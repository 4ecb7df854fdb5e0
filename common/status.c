/* Status names and the per-thread error message. */
#include "common/status.h"

#include <stdio.h>
#include <string.h>

#define LB_ERROR_MESSAGE_BYTES 1024

static _Thread_local char error_message[LB_ERROR_MESSAGE_BYTES];

const char *lb_status_name(lb_status status)
{
    switch (status) {
    case LB_OK: return "ok";
    case LB_ERR_NOMEM: return "out of memory";
    case LB_ERR_INVALID_ARG: return "invalid argument";
    case LB_ERR_IO: return "i/o error";
    case LB_ERR_CORRUPT_FILE: return "corrupt file";
    case LB_ERR_UNSUPPORTED: return "unsupported";
    case LB_ERR_NOT_POSITIVE_DEFINITE: return "not positive definite";
    case LB_ERR_NUMERIC: return "numeric error";
    case LB_ERR_CUDA: return "cuda error";
    case LB_ERR_INTERRUPTED: return "interrupted";
    case LB_ERR_BAD_INPUT: return "bad input";
    }
    return "unknown status";
}

lb_status lb_error_v(lb_status status, const char *fmt, va_list args)
{
    vsnprintf(error_message, sizeof error_message, fmt, args);
    /* Keep messages on one line: the CLI prints them as a single line. */
    for (char *c = error_message; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return status;
}

lb_status lb_error(lb_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    lb_error_v(status, fmt, args);
    va_end(args);
    return status;
}

lb_status lb_error_prefix(lb_status status, const char *fmt, ...)
{
    char previous[LB_ERROR_MESSAGE_BYTES];
    memcpy(previous, error_message, sizeof previous);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(error_message, sizeof error_message, fmt, args);
    va_end(args);
    if (n >= 0 && (size_t)n < sizeof error_message)
        snprintf(error_message + n, sizeof error_message - (size_t)n, "%s", previous);
    return status;
}

const char *lb_last_error(void)
{
    return error_message;
}

void lb_error_clear(void)
{
    error_message[0] = '\0';
}
