/* Status codes and error messages shared by every lowbit module. */
#ifndef LB_COMMON_STATUS_H
#define LB_COMMON_STATUS_H

#include <stdarg.h>

#if defined(LB_BUILDING_LIBRARY) && defined(__GNUC__)
#define LB_API __attribute__((visibility("default")))
#else
#define LB_API
#endif

#if defined(__GNUC__)
#define LB_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define LB_PRINTF(fmt_index, first_arg)
#endif

/* Every fallible function returns one of these. 0 is success; the negative values are fixed
 * forever (they are part of the ABI and of the CLI's error text). */
typedef enum lb_status {
    LB_OK = 0,
    LB_ERR_NOMEM = -1,               /* an allocation failed */
    LB_ERR_INVALID_ARG = -2,         /* the caller passed something out of range */
    LB_ERR_IO = -3,                  /* open/read/write/rename failed (errno in the message) */
    LB_ERR_CORRUPT_FILE = -4,        /* an input file is malformed */
    LB_ERR_UNSUPPORTED = -5,         /* well-formed input that lowbit cannot handle */
    LB_ERR_NOT_POSITIVE_DEFINITE = -6,
    LB_ERR_NUMERIC = -7,             /* NaN/Inf or a numerical breakdown */
    LB_ERR_CUDA = -8,
    LB_ERR_INTERRUPTED = -9,         /* a signal asked the run to stop */
    LB_ERR_BAD_INPUT = -10,          /* an input file or text that is well formed but does not
                                        fit what was asked: another model's, mismatched
                                        shapes, too short */
} lb_status;

/* Short constant name of a status, e.g. "corrupt file". Never NULL. */
LB_API const char *lb_status_name(lb_status status);

/* Records a message for the calling thread and returns `status`, so that error paths read
 * `return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' offset %llu: past end of file", ...)`.
 * Messages name the file, the field and the byte offset where one applies. */
LB_API lb_status lb_error(lb_status status, const char *fmt, ...) LB_PRINTF(2, 3);
LB_API lb_status lb_error_v(lb_status status, const char *fmt, va_list args);

/* Prepends context ("while converting x: ") to the calling thread's message; returns status. */
LB_API lb_status lb_error_prefix(lb_status status, const char *fmt, ...) LB_PRINTF(2, 3);

/* The calling thread's last message ("" if none). Valid until the next lb_error on the thread. */
LB_API const char *lb_last_error(void);
LB_API void lb_error_clear(void);

#endif
