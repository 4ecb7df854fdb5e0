#include "common/hash.h"

#define FNV1A64_PRIME 1099511628211ull

uint64_t lb_fnv1a64_update(uint64_t hash, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= bytes[i];
        hash *= FNV1A64_PRIME;
    }
    return hash;
}

uint64_t lb_fnv1a64(const void *data, size_t len)
{
    return lb_fnv1a64_update(LB_FNV1A64_OFFSET, data, len);
}

uint64_t lb_fnv1a64_update_u32le(uint64_t hash, const uint32_t *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            hash ^= (values[i] >> (8 * b)) & 0xffu;
            hash *= FNV1A64_PRIME;
        }
    return hash;
}
