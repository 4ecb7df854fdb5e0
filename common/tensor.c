/* The table of supported tensor types and shape arithmetic. */
#include "common/tensor.h"

#include <strings.h>

#include "common/alloc.h"

/* Block sizes and bytes are llama.cpp's (ggml-common.h); kernels/ asserts its structs match. */
static const lb_type_info type_table[] = {
    {LB_TYPE_F32, "F32", 1, 4},
    {LB_TYPE_F16, "F16", 1, 2},
    {LB_TYPE_BF16, "BF16", 1, 2},
    {LB_TYPE_Q4_0, "Q4_0", 32, 18},
    {LB_TYPE_Q4_1, "Q4_1", 32, 20},
    {LB_TYPE_Q5_0, "Q5_0", 32, 22},
    {LB_TYPE_Q5_1, "Q5_1", 32, 24},
    {LB_TYPE_Q8_0, "Q8_0", 32, 34},
    {LB_TYPE_Q2_K, "Q2_K", 256, 84},
    {LB_TYPE_Q3_K, "Q3_K", 256, 110},
    {LB_TYPE_Q4_K, "Q4_K", 256, 144},
    {LB_TYPE_Q5_K, "Q5_K", 256, 176},
    {LB_TYPE_Q6_K, "Q6_K", 256, 210},
    {LB_TYPE_Q8_K, "Q8_K", 256, 292},
    {LB_TYPE_IQ4_NL, "IQ4_NL", 32, 18},
    {LB_TYPE_IQ4_XS, "IQ4_XS", 256, 136},
};

const lb_type_info *lb_type_get(uint32_t type_id)
{
    for (size_t i = 0; i < sizeof type_table / sizeof type_table[0]; i++)
        if ((uint32_t)type_table[i].type == type_id)
            return &type_table[i];
    return NULL;
}

lb_status lb_type_from_name(const char *name, lb_type *out)
{
    for (size_t i = 0; i < sizeof type_table / sizeof type_table[0]; i++) {
        if (strcasecmp(type_table[i].name, name) == 0) {
            *out = type_table[i].type;
            return LB_OK;
        }
    }
    return lb_error(LB_ERR_INVALID_ARG, "unknown tensor type '%s'", name);
}

bool lb_type_row_bytes(lb_type type, int64_t n, uint64_t *out)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    if (!info || n < 0 || n % info->block_size != 0)
        return false;
    return lb_size_mul((uint64_t)(n / info->block_size), info->block_bytes, out);
}

double lb_type_bits_per_weight(lb_type type)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return info ? (double)info->block_bytes * 8.0 / (double)info->block_size : 0.0;
}

bool lb_tensor_count(int n_dims, const int64_t *ne, int64_t *out)
{
    uint64_t count = 1;
    if (n_dims < 0 || n_dims > LB_MAX_DIMS)
        return false;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || !lb_size_mul(count, (uint64_t)ne[d], &count) || count > INT64_MAX)
            return false;
    }
    *out = (int64_t)count;
    return true;
}

bool lb_tensor_bytes(lb_type type, int n_dims, const int64_t *ne, uint64_t *out)
{
    int64_t rows = 1;
    uint64_t row_bytes;
    if (n_dims < 1 || n_dims > LB_MAX_DIMS)
        return false;
    if (!lb_type_row_bytes(type, ne[0], &row_bytes))
        return false;
    if (!lb_tensor_count(n_dims - 1, ne + 1, &rows))
        return false;
    return lb_size_mul(row_bytes, (uint64_t)rows, out);
}
