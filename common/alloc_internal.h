/* Out-of-memory messages and allocation-failure injection; not part of the installed API. */
#ifndef LB_COMMON_ALLOC_INTERNAL_H
#define LB_COMMON_ALLOC_INTERNAL_H

#include <stdint.h>

#include "common/alloc.h"

/* The next `n` allocations succeed and every one after fails (n < 0: never fail).
 * Process-wide; not for use while other threads allocate. */
void lb_alloc_fail_after(int64_t n);

/* Records LB_ERR_NOMEM with the message `fmt` ("what was being allocated") followed by the
 * size of the calling thread's last failed lb_malloc/lb_calloc/lb_realloc, " (N bytes)", when
 * there was one since the previous lb_nomem. Returns LB_ERR_NOMEM. */
lb_status lb_nomem(const char *fmt, ...) LB_PRINTF(1, 2);

#endif
