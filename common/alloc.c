/* Allocation wrappers with failure injection for tests. */
#include "common/alloc_internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t allocations_left = -1;

/* Bytes of this thread's last failed allocation (0: none since the last lb_nomem), so error
 * messages can say how much was asked for without every call site carrying the size. */
static _Thread_local uint64_t last_failed_bytes;

static void *note_failure(void *p, uint64_t bytes)
{
    if (!p)
        last_failed_bytes = bytes;
    return p;
}

void lb_alloc_fail_after(int64_t n)
{
    atomic_store(&allocations_left, n);
}

static bool allocation_allowed(void)
{
    int64_t left = atomic_load(&allocations_left);
    if (left < 0)
        return true;
    if (left == 0)
        return false;
    atomic_fetch_sub(&allocations_left, 1);
    return true;
}

void *lb_malloc(size_t bytes)
{
    if (!allocation_allowed())
        return note_failure(NULL, bytes);
    return note_failure(malloc(bytes ? bytes : 1), bytes);
}

void *lb_calloc(size_t count, size_t size)
{
    uint64_t bytes;
    if (!lb_size_mul(count, size, &bytes))
        bytes = UINT64_MAX;
    if (!allocation_allowed())
        return note_failure(NULL, bytes);
    if (count == 0 || size == 0)
        return note_failure(calloc(1, 1), 1);
    return note_failure(calloc(count, size), bytes);
}

void *lb_realloc(void *ptr, size_t bytes)
{
    if (!allocation_allowed())
        return note_failure(NULL, bytes);
    return note_failure(realloc(ptr, bytes ? bytes : 1), bytes);
}

lb_status lb_nomem(const char *fmt, ...)
{
    char what[384];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    uint64_t bytes = last_failed_bytes;
    last_failed_bytes = 0;
    if (bytes == 0)
        return lb_error(LB_ERR_NOMEM, "%s", what);
    return lb_error(LB_ERR_NOMEM, "%s (%llu bytes)", what, (unsigned long long)bytes);
}

void lb_free(void *ptr)
{
    free(ptr);
}

char *lb_strndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *copy = lb_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *lb_strdup(const char *s)
{
    return lb_strndup(s, strlen(s));
}
