/* common/: status messages, allocator failure injection, checked sizes, type table. */
#include <stdint.h>

#include "common/alloc_internal.h"
#include "common/status.h"
#include "common/tensor.h"
#include "test_util.h"

int main(void)
{
    CHECK(lb_error(LB_ERR_CORRUPT_FILE, "%s: field at offset %d", "x.gguf", 12) ==
          LB_ERR_CORRUPT_FILE);
    CHECK(strcmp(lb_last_error(), "x.gguf: field at offset 12") == 0);
    lb_error(LB_ERR_IO, "line one\nline two");
    CHECK(strchr(lb_last_error(), '\n') == NULL);
    lb_error(LB_ERR_IO, "inner");
    CHECK(lb_error_prefix(LB_ERR_IO, "outer: ") == LB_ERR_IO);
    CHECK(strcmp(lb_last_error(), "outer: inner") == 0);
    lb_error_clear();
    CHECK(lb_last_error()[0] == '\0');
    CHECK(strcmp(lb_status_name(LB_ERR_NOMEM), "out of memory") == 0);
    CHECK(LB_ERR_BAD_INPUT == -10 && strcmp(lb_status_name(LB_ERR_BAD_INPUT), "bad input") == 0);

    lb_alloc_fail_after(2);
    void *a = lb_malloc(8), *b = lb_malloc(8), *c = lb_malloc(8);
    CHECK(a && b && !c);
    lb_alloc_fail_after(-1);
    lb_free(a);
    lb_free(b);
    /* Out-of-memory messages carry the size of the allocation that failed, once. */
    CHECK(lb_nomem("out of memory for c") == LB_ERR_NOMEM);
    CHECK(strcmp(lb_last_error(), "out of memory for c (8 bytes)") == 0);
    CHECK(lb_nomem("out of memory for %s", "nothing new") == LB_ERR_NOMEM);
    CHECK(strcmp(lb_last_error(), "out of memory for nothing new") == 0);
    lb_alloc_fail_after(0);
    CHECK(lb_calloc(1000, 24) == NULL);
    lb_alloc_fail_after(-1);
    lb_nomem("out of memory for a table");
    CHECK(strcmp(lb_last_error(), "out of memory for a table (24000 bytes)") == 0);
    char *s = lb_strndup("abc\0def", 7);
    CHECK(s && s[3] == '\0' && s[6] == 'f' && s[7] == '\0');
    lb_free(s);

    uint64_t out;
    CHECK(lb_size_mul(1ull << 32, 1ull << 31, &out) && out == 1ull << 63);
    CHECK(!lb_size_mul(1ull << 32, 1ull << 32, &out));
    CHECK(!lb_size_add(UINT64_MAX, 1, &out));
    CHECK(lb_size_align(33, 32, &out) && out == 64);
    CHECK(lb_size_align(64, 32, &out) && out == 64);
    CHECK(!lb_size_align(UINT64_MAX - 3, 32, &out));

    lb_type t;
    CHECK_OK(lb_type_from_name("bf16", &t));
    CHECK(t == LB_TYPE_BF16);
    CHECK(lb_type_from_name("Q9_Z", &t) == LB_ERR_INVALID_ARG);
    CHECK(lb_type_get(LB_TYPE_F16)->block_bytes == 2);
    CHECK(lb_type_get(999) == NULL);
    CHECK(lb_type_bits_per_weight(LB_TYPE_F32) == 32.0);
    int64_t ne[4] = {64, 172, 1, 1}, count;
    CHECK(lb_tensor_bytes(LB_TYPE_F16, 2, ne, &out) && out == 64 * 172 * 2);
    int64_t big[4] = {INT64_MAX / 2, 3, 1, 1};
    CHECK(!lb_tensor_count(2, big, &count));
    CHECK(!lb_tensor_bytes(LB_TYPE_F32, 2, big, &out));
    int64_t negative[4] = {-1, 2, 1, 1};
    CHECK(!lb_tensor_count(2, negative, &count));
    return test_finish("common");
}
