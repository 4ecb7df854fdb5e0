/* The bounded little-endian read cursor of formats/ and its one-line error messages. */
#include "formats/cursor_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"

void lb_cursor_init(lb_cursor *c, const char *path, const void *data, uint64_t size)
{
    c->data = data;
    c->size = size;
    c->pos = 0;
    c->path = path;
    c->where[0] = '\0';
}

lb_status lb_cursor_fail(const lb_cursor *c, lb_status status, uint64_t offset,
                         const char *field, const char *fmt, ...)
{
    if (!c->path)
        return status;
    char what[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    if (status == LB_ERR_NOMEM)
        return lb_nomem("%s: %s%s%s at offset %llu: %s", c->path, c->where,
                        c->where[0] ? " " : "", field, (unsigned long long)offset, what);
    return lb_error(status, "%s: %s%s%s at offset %llu: %s", c->path, c->where,
                    c->where[0] ? " " : "", field, (unsigned long long)offset, what);
}

lb_status lb_cursor_need(const lb_cursor *c, uint64_t n, const char *field)
{
    if (c->size - c->pos >= n)
        return LB_OK;
    return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, c->pos, field,
                          "truncated: needs %llu bytes, the file has %llu left",
                          (unsigned long long)n, (unsigned long long)(c->size - c->pos));
}

lb_status lb_cursor_bytes(lb_cursor *c, uint64_t n, const char *field, const uint8_t **out)
{
    lb_status status = lb_cursor_need(c, n, field);
    if (status == LB_OK)
        *out = lb_cursor_take(c, n);
    return status;
}

lb_status lb_cursor_u32(lb_cursor *c, const char *field, uint32_t *out)
{
    const uint8_t *b;
    lb_status status = lb_cursor_bytes(c, 4, field, &b);
    if (status == LB_OK)
        *out = lb_le_load32(b);
    return status;
}

lb_status lb_cursor_i32(lb_cursor *c, const char *field, int32_t *out)
{
    const uint8_t *b;
    lb_status status = lb_cursor_bytes(c, 4, field, &b);
    if (status == LB_OK)
        *out = lb_le_load_i32(b);
    return status;
}

lb_status lb_cursor_u64(lb_cursor *c, const char *field, uint64_t *out)
{
    const uint8_t *b;
    lb_status status = lb_cursor_bytes(c, 8, field, &b);
    if (status == LB_OK)
        *out = lb_le_load64(b);
    return status;
}

lb_status lb_cursor_f32(lb_cursor *c, const char *field, float *out)
{
    const uint8_t *b;
    lb_status status = lb_cursor_bytes(c, 4, field, &b);
    if (status == LB_OK)
        *out = lb_le_load_f32(b);
    return status;
}

void lb_cursor_set_where(lb_cursor *c, const char *kind, int64_t index, const char *shown)
{
    if (!kind)
        c->where[0] = '\0';
    else if (index >= 0 && shown)
        snprintf(c->where, sizeof c->where, "%s[%lld] '%s'", kind, (long long)index, shown);
    else if (index >= 0)
        snprintf(c->where, sizeof c->where, "%s[%lld]", kind, (long long)index);
    else
        snprintf(c->where, sizeof c->where, "%s '%s'", kind, shown ? shown : "");
}

void lb_cursor_show_utf8(char *dst, size_t cap, const char *name, uint64_t len)
{
    size_t o = 0;
    bool cut = len > LB_CURSOR_NAME_SHOWN;
    uint64_t shown = cut ? LB_CURSOR_NAME_SHOWN : len;
    while (cut && shown > 0 && ((uint8_t)name[shown] & 0xC0) == 0x80)
        shown--;
    for (uint64_t i = 0; i < shown && o + 8 < cap; i++) {
        uint8_t ch = (uint8_t)name[i];
        if (ch < 0x20 || ch == 0x7F || ch == '\'' || ch == '\\')
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
        else
            dst[o++] = (char)ch;
    }
    if (cut && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

void lb_cursor_show_bytes(char *dst, size_t cap, const char *name, uint64_t len)
{
    size_t o = 0;
    for (uint64_t i = 0; i < len && i < LB_CURSOR_NAME_SHOWN && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
            dst[o++] = (char)ch;
        else
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
    }
    if (len > LB_CURSOR_NAME_SHOWN && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static int compare_name_refs(const void *a, const void *b)
{
    const lb_name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

void lb_find_repeated_name(lb_name_ref *refs, int64_t n, int64_t *later, int64_t *first)
{
    *later = -1;
    qsort(refs, (size_t)n, sizeof *refs, compare_name_refs);
    for (int64_t i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].name, refs[i].name) == 0 &&
            (*later < 0 || refs[i].index < *later)) {
            *later = refs[i].index;
            *first = refs[i - 1].index;
        }
    }
}
