/* The one allocator of the library (so tests can inject failures) and overflow-checked sizes. */
#ifndef LB_COMMON_ALLOC_H
#define LB_COMMON_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* malloc/calloc/realloc/free with the same contracts; every library allocation goes here.
 * lb_malloc(0) returns a valid unique pointer. */
LB_API void *lb_malloc(size_t bytes);
LB_API void *lb_calloc(size_t count, size_t size);
LB_API void *lb_realloc(void *ptr, size_t bytes);
LB_API void lb_free(void *ptr);
/* Copies `len` bytes and appends a NUL. */
LB_API char *lb_strndup(const char *s, size_t len);
LB_API char *lb_strdup(const char *s);

/* Overflow-checked size arithmetic: return false (and leave *out unspecified) on overflow. */
static inline bool lb_size_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool lb_size_add(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
/* Rounds `x` up to a multiple of `align` (a power of two); false on overflow. */
static inline bool lb_size_align(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t sum;
    if (!lb_size_add(x, align - 1, &sum))
        return false;
    *out = sum & ~(align - 1);
    return true;
}

#endif
