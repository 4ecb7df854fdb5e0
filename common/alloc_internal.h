/* Allocation-failure injection for the tests and fuzzers; not part of the installed API. */
#ifndef LB_COMMON_ALLOC_INTERNAL_H
#define LB_COMMON_ALLOC_INTERNAL_H

#include <stdint.h>

#include "common/alloc.h"

/* The next `n` allocations succeed and every one after fails (n < 0: never fail).
 * Process-wide; not for use while other threads allocate. */
void lb_alloc_fail_after(int64_t n);

#endif
