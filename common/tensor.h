/* Tensor element types (numbered as GGUF numbers them) and the tensor descriptor. */
#ifndef LB_COMMON_TENSOR_H
#define LB_COMMON_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Type ids are GGUF's (ggml_type), so files interoperate. Only the ids listed in the type table
 * (lb_type_info) are supported; kernels/kernels.h has their quantize/dequantize/dot functions. */
typedef enum lb_type {
    LB_TYPE_F32 = 0,
    LB_TYPE_F16 = 1,
    LB_TYPE_Q4_0 = 2,
    LB_TYPE_Q4_1 = 3,
    LB_TYPE_Q5_0 = 6,
    LB_TYPE_Q5_1 = 7,
    LB_TYPE_Q8_0 = 8,
    LB_TYPE_Q2_K = 10,
    LB_TYPE_Q3_K = 11,
    LB_TYPE_Q4_K = 12,
    LB_TYPE_Q5_K = 13,
    LB_TYPE_Q6_K = 14,
    LB_TYPE_Q8_K = 15,
    LB_TYPE_IQ4_NL = 20,
    LB_TYPE_IQ4_XS = 23,
    LB_TYPE_BF16 = 30,
} lb_type;

/* Storage traits of a type: a row of n elements takes n / block_size * block_bytes bytes and
 * n must be a multiple of block_size. */
typedef struct lb_type_info {
    lb_type type;
    const char *name;      /* GGUF/llama.cpp spelling: "F32", "F16", "BF16", "Q4_K", ... */
    int64_t block_size;    /* elements per block (1 for the float types) */
    size_t block_bytes;    /* bytes per block */
} lb_type_info;

/* Traits of a supported type id, or NULL for an unknown or not yet supported id. */
LB_API const lb_type_info *lb_type_get(uint32_t type_id);

/* Case-insensitive lookup by name ("f16", "Q4_K"); LB_ERR_INVALID_ARG if unknown. */
LB_API lb_status lb_type_from_name(const char *name, lb_type *out);

/* Bytes of a row of `n` elements; false if n is negative, not a multiple of the block size,
 * the type is unsupported, or the size overflows. */
LB_API bool lb_type_row_bytes(lb_type type, int64_t n, uint64_t *out);

/* Bits per weight of a type (block_bytes * 8 / block_size). */
LB_API double lb_type_bits_per_weight(lb_type type);

#define LB_MAX_DIMS 4

/* A view of a tensor. Shapes are in GGUF order: ne[0] is the row length (contiguous), ne[1]
 * the number of rows, and so on; unused dimensions are 1. The descriptor does not own data. */
typedef struct lb_tensor {
    const char *name;
    lb_type type;
    int n_dims;
    int64_t ne[LB_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
} lb_tensor;

/* Product of the first n_dims of ne; false on overflow or a negative dimension. */
LB_API bool lb_tensor_count(int n_dims, const int64_t *ne, int64_t *out);

/* Bytes of a tensor of the given type and shape; false when the shape does not fit the type
 * (row length not a multiple of the block size) or overflows. */
LB_API bool lb_tensor_bytes(lb_type type, int n_dims, const int64_t *ne, uint64_t *out);

#endif
