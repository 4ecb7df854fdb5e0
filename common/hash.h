/* FNV-1a 64: the one content hash of the tree (calibration text and evaluated token ids are
 * recorded with it in files, so its values are part of the file formats). */
#ifndef LB_COMMON_HASH_H
#define LB_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define LB_FNV1A64_OFFSET 14695981039346656037ull

/* Continues `hash` (start from LB_FNV1A64_OFFSET) over `len` bytes. */
LB_API uint64_t lb_fnv1a64_update(uint64_t hash, const void *data, size_t len);
/* FNV-1a 64 of `len` bytes. */
LB_API uint64_t lb_fnv1a64(const void *data, size_t len);
/* Continues `hash` over `n` 32-bit values, each as its 4 little-endian bytes (the same value
 * on any host). */
LB_API uint64_t lb_fnv1a64_update_u32le(uint64_t hash, const uint32_t *values, size_t n);

#endif
