/* Allocation wrappers with failure injection for tests. */
#include "common/alloc_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t allocations_left = -1;

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
        return NULL;
    return malloc(bytes ? bytes : 1);
}

void *lb_calloc(size_t count, size_t size)
{
    if (!allocation_allowed())
        return NULL;
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void *lb_realloc(void *ptr, size_t bytes)
{
    if (!allocation_allowed())
        return NULL;
    return realloc(ptr, bytes ? bytes : 1);
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
