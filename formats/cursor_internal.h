/* The one little-endian byte layer of formats/: loads and stores at a pointer, and a bounded
 * read cursor whose errors name the file, the entry, the field and the byte offset. */
#ifndef LB_FORMATS_CURSOR_INTERNAL_H
#define LB_FORMATS_CURSOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/status.h"

/* ---- loads and stores (the caller has checked that the bytes exist) ---- */

static inline uint16_t lb_le_load16(const uint8_t *b)
{
    return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t lb_le_load32(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}

static inline uint64_t lb_le_load64(const uint8_t *b)
{
    return (uint64_t)lb_le_load32(b) | ((uint64_t)lb_le_load32(b + 4) << 32);
}

/* Two's complement without relying on implementation-defined conversion. */
static inline int32_t lb_le_load_i32(const uint8_t *b)
{
    uint32_t u = lb_le_load32(b);
    return u < 0x80000000u ? (int32_t)u : (int32_t)(u - 0x80000000u) - INT32_MAX - 1;
}

static inline float lb_le_load_f32(const uint8_t *b)
{
    uint32_t u = lb_le_load32(b);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline double lb_le_load_f64(const uint8_t *b)
{
    uint64_t u = lb_le_load64(b);
    double f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Each store returns the byte after the ones it wrote. */
static inline uint8_t *lb_le_store16(uint8_t *dst, uint16_t v)
{
    dst[0] = (uint8_t)v;
    dst[1] = (uint8_t)(v >> 8);
    return dst + 2;
}

static inline uint8_t *lb_le_store32(uint8_t *dst, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
    return dst + 4;
}

static inline uint8_t *lb_le_store64(uint8_t *dst, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
    return dst + 8;
}

static inline uint8_t *lb_le_store_f32(uint8_t *dst, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return lb_le_store32(dst, u);
}

static inline uint8_t *lb_le_store_f64(uint8_t *dst, double f)
{
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return lb_le_store64(dst, u);
}

/* ---- the bounded read cursor ---- */

/* Names in messages are cut to this many bytes (then "..."). */
#define LB_CURSOR_NAME_SHOWN 64
/* Room for a shown name: every byte may become "\xNN", plus "..." and the NUL. */
#define LB_CURSOR_SHOWN_BYTES (LB_CURSOR_NAME_SHOWN * 4 + 8)

typedef struct lb_cursor {
    const uint8_t *data;
    uint64_t size;
    uint64_t pos;     /* invariant: pos <= size */
    const char *path; /* file (or buffer) name in messages; NULL: failures record nothing */
    char where[LB_CURSOR_SHOWN_BYTES + 56]; /* entry being read, "kv[3] 'general.name'"; "" */
} lb_cursor;

/* A cursor at offset 0 of data[0..size) with no entry set. */
void lb_cursor_init(lb_cursor *c, const char *path, const void *data, uint64_t size);

static inline uint64_t lb_cursor_left(const lb_cursor *c)
{
    return c->size - c->pos;
}

/* The next n bytes, the cursor moved past them; NULL (cursor unmoved, no message) when fewer
 * than n are left. Every read below goes through this check. */
static inline const uint8_t *lb_cursor_take(lb_cursor *c, uint64_t n)
{
    if (n > c->size - c->pos)
        return NULL;
    const uint8_t *p = c->data + c->pos;
    c->pos += n;
    return p;
}

/* Records "<path>: <where> <field> at offset <offset>: <what>" (the where part only when set)
 * and returns status; with a NULL path it only returns status (probing leaves the caller's
 * last message alone). */
lb_status lb_cursor_fail(const lb_cursor *c, lb_status status, uint64_t offset,
                         const char *field, const char *fmt, ...) LB_PRINTF(5, 6);

/* LB_OK when n bytes are left, else CORRUPT_FILE at the cursor: "truncated: needs <n> bytes,
 * the file has <left> left". */
lb_status lb_cursor_need(const lb_cursor *c, uint64_t n, const char *field);

/* Fixed-width little-endian values: need(), then the value, cursor moved past it. */
lb_status lb_cursor_u32(lb_cursor *c, const char *field, uint32_t *out);
lb_status lb_cursor_i32(lb_cursor *c, const char *field, int32_t *out);
lb_status lb_cursor_u64(lb_cursor *c, const char *field, uint64_t *out);
lb_status lb_cursor_f32(lb_cursor *c, const char *field, float *out);

/* n raw bytes (need(), then *out points at them in the buffer, cursor moved past them). */
lb_status lb_cursor_bytes(lb_cursor *c, uint64_t n, const char *field, const uint8_t **out);

/* Sets the entry named in messages: kind NULL clears it; index >= 0 gives "kind[index]",
 * followed by " 'shown'" when shown is not NULL; index < 0 gives "kind 'shown'". `shown` is
 * already escaped (lb_cursor_show_utf8 / lb_cursor_show_bytes). */
void lb_cursor_set_where(lb_cursor *c, const char *kind, int64_t index, const char *shown);

/* A name made safe for a one-line message, into dst (LB_CURSOR_SHOWN_BYTES): */
/* - valid UTF-8 (checked by the caller): control characters, quote and backslash as \xNN,
 *   cut at a character boundary after LB_CURSOR_NAME_SHOWN bytes; */
void lb_cursor_show_utf8(char *dst, size_t cap, const char *name, uint64_t len);
/* - any bytes: printable ASCII kept (but quote and backslash), every other byte as \xNN, cut
 *   after LB_CURSOR_NAME_SHOWN bytes. */
void lb_cursor_show_bytes(char *dst, size_t cap, const char *name, uint64_t len);

/* Duplicate detection for the readers' names (GGUF keys and tensors, imatrix entries). */
typedef struct lb_name_ref {
    const char *name;
    int64_t index;
} lb_name_ref;

/* Finds a repeated name in O(n log n): *later and *first get the indices of the repeat with the
 * smallest later index, else *later is -1. Sorts `refs` in place. */
void lb_find_repeated_name(lb_name_ref *refs, int64_t n, int64_t *later, int64_t *first);

#endif
