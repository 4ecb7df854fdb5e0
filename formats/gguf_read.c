/* GGUF reader: every field of a v2/v3 file is checked against the bytes left before it is used. */
#include "formats/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "formats/cursor_internal.h"
#include "formats/mapped_file_internal.h"

/* Smallest possible entries, used to bound counts before allocating for them. */
#define KV_MIN_BYTES 13     /* key length (8) + value type (4) + a one-byte value */
#define TENSOR_MIN_BYTES 32 /* name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8) */
#define STRING_MIN_BYTES 8  /* the length of an empty string */

/* Where each entry's fields start, kept only while parsing for messages about cross-entry
 * checks (duplicates, overlaps, data past the end). */
typedef struct tensor_pos {
    uint64_t name;
    uint64_t offset;
} tensor_pos;

/* Indexed by lb_gguf_type; size 0 for the types without a fixed size. */
static const struct {
    const char *name;
    size_t size;
} gguf_types[] = {
    {"UINT8", 1},  {"INT8", 1},   {"UINT16", 2}, {"INT16", 2},  {"UINT32", 4},
    {"INT32", 4},  {"FLOAT32", 4}, {"BOOL", 1},  {"STRING", 0}, {"ARRAY", 0},
    {"UINT64", 8}, {"INT64", 8},  {"FLOAT64", 8},
};

size_t lb_gguf_type_size(lb_gguf_type type)
{
    return (unsigned)type <= LB_GGUF_FLOAT64 ? gguf_types[type].size : 0;
}

const char *lb_gguf_type_name(lb_gguf_type type)
{
    return (unsigned)type <= LB_GGUF_FLOAT64 ? gguf_types[type].name : "unknown";
}

/* Index of the first byte that breaks UTF-8 (or is NUL: keys and names become C strings), or
 * len if the string is valid. Rejects overlong forms, surrogates and code points past U+10FFFF. */
static uint64_t utf8_error_at(const uint8_t *s, uint64_t len)
{
    uint64_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        uint64_t n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= n)
            return i;
        for (uint64_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

static void set_where(lb_cursor *p, const char *kind, int64_t index, const char *name, uint64_t len)
{
    char shown[LB_CURSOR_SHOWN_BYTES];
    if (name)
        lb_cursor_show_utf8(shown, sizeof shown, name, len);
    lb_cursor_set_where(p, kind, index, name ? shown : NULL);
}

/* A gguf string; the result points into the buffer. */
static lb_status read_string(lb_cursor *p, const char *field, lb_gguf_string *out)
{
    char length_field[80];
    uint64_t start = p->pos, len;
    snprintf(length_field, sizeof length_field, "%s length", field);
    lb_status status = lb_cursor_u64(p, length_field, &len);
    if (status != LB_OK)
        return status;
    if (len > p->size - p->pos)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, start, length_field,
                              "length %llu exceeds the %llu bytes left in the file",
                              (unsigned long long)len, (unsigned long long)(p->size - p->pos));
    out->len = len;
    out->data = (const char *)lb_cursor_take(p, len);
    return LB_OK;
}

/* A string that becomes a C string (key or tensor name): valid UTF-8 without NUL, copied. */
static lb_status read_name(lb_cursor *p, const char *field, char **out, uint64_t *len)
{
    lb_gguf_string s;
    uint64_t start = p->pos;
    lb_status status = read_string(p, field, &s);
    if (status != LB_OK)
        return status;
    uint64_t bad = utf8_error_at((const uint8_t *)s.data, s.len);
    if (bad < s.len)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, start, field,
                              "not valid UTF-8 (byte 0x%02x at offset %llu)", (uint8_t)s.data[bad],
                              (unsigned long long)(start + 8 + bad));
    if (!(*out = lb_strndup(s.data, (size_t)s.len)))
        return lb_cursor_fail(p, LB_ERR_NOMEM, start, field,
                              "out of memory for the string (%llu bytes)",
                              (unsigned long long)s.len + 1);
    *len = s.len;
    return LB_OK;
}

/* Decodes a little-endian scalar of `type` (not STRING/ARRAY) from b. */
static void decode_scalar(lb_gguf_type type, const uint8_t *b, lb_gguf_value *v)
{
    uint32_t bits32;
    uint64_t bits64;
    switch (type) {
    case LB_GGUF_UINT8: v->v.u8 = b[0]; break;
    case LB_GGUF_INT8: v->v.i8 = (int8_t)b[0]; break;
    case LB_GGUF_UINT16: v->v.u16 = lb_le_load16(b); break;
    case LB_GGUF_INT16: v->v.i16 = (int16_t)lb_le_load16(b); break;
    case LB_GGUF_UINT32: v->v.u32 = lb_le_load32(b); break;
    case LB_GGUF_INT32: v->v.i32 = (int32_t)lb_le_load32(b); break;
    case LB_GGUF_FLOAT32:
        bits32 = lb_le_load32(b);
        memcpy(&v->v.f32, &bits32, 4);
        break;
    case LB_GGUF_BOOL: v->v.b = b[0] != 0; break;
    case LB_GGUF_UINT64: v->v.u64 = lb_le_load64(b); break;
    case LB_GGUF_INT64: v->v.i64 = (int64_t)lb_le_load64(b); break;
    case LB_GGUF_FLOAT64:
        bits64 = lb_le_load64(b);
        memcpy(&v->v.f64, &bits64, 8);
        break;
    case LB_GGUF_STRING:
    case LB_GGUF_ARRAY: break;
    }
}

/* Scalars are decoded; a STRING value points into the buffer. */
static lb_status read_scalar(lb_cursor *p, lb_gguf_type type, const char *field, lb_gguf_value *v)
{
    if (type == LB_GGUF_STRING)
        return read_string(p, field, &v->v.str);
    size_t bytes = lb_gguf_type_size(type);
    uint64_t at = p->pos;
    const uint8_t *b;
    lb_status status = lb_cursor_bytes(p, bytes, field, &b);
    if (status != LB_OK)
        return status;
    if (type == LB_GGUF_BOOL && b[0] > 1)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, at, field, "bool value %u is not 0 or 1",
                              b[0]);
    decode_scalar(type, b, v);
    return LB_OK;
}

static lb_status read_array(lb_cursor *p, lb_gguf_value *v)
{
    uint64_t type_at = p->pos, count_at, count;
    uint32_t elem_type;
    lb_status status = lb_cursor_u32(p, "array type", &elem_type);
    if (status != LB_OK)
        return status;
    if (elem_type == LB_GGUF_ARRAY)
        return lb_cursor_fail(p, LB_ERR_UNSUPPORTED, type_at, "array type",
                              "arrays of arrays are not supported");
    if (elem_type > LB_GGUF_FLOAT64)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, type_at, "array type",
                              "unknown element type %u", elem_type);
    v->v.arr.elem_type = (lb_gguf_type)elem_type;
    count_at = p->pos;
    if ((status = lb_cursor_u64(p, "array count", &count)) != LB_OK)
        return status;
    uint64_t left = p->size - p->pos;
    if (elem_type == LB_GGUF_STRING) {
        uint64_t bytes;
        if (count > left / STRING_MIN_BYTES)
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, count_at, "array count",
                                  "%llu strings cannot fit in the %llu bytes left in the file",
                                  (unsigned long long)count, (unsigned long long)left);
        if (count > 0) {
            if (!lb_size_mul(count, sizeof(lb_gguf_string), &bytes) ||
                !(v->v.arr.strings = lb_malloc((size_t)bytes)))
                return lb_cursor_fail(p, LB_ERR_NOMEM, count_at, "array count",
                                      "out of memory for %llu strings (%llu bytes)",
                                      (unsigned long long)count,
                                      (unsigned long long)(count * sizeof(lb_gguf_string)));
        }
        v->v.arr.count = count;
        v->v.arr.data = p->data + p->pos;
        for (uint64_t i = 0; i < count; i++) {
            char field[48];
            snprintf(field, sizeof field, "value[%llu]", (unsigned long long)i);
            if ((status = read_string(p, field, &v->v.arr.strings[i])) != LB_OK)
                return status;
        }
        return LB_OK;
    }
    size_t elem_bytes = lb_gguf_type_size((lb_gguf_type)elem_type);
    if (count > left / elem_bytes)
        return lb_cursor_fail(
            p, LB_ERR_CORRUPT_FILE, count_at, "array count",
            "%llu elements of %zu bytes cannot fit in the %llu bytes left in the file",
            (unsigned long long)count, elem_bytes, (unsigned long long)left);
    const uint64_t elems_at = p->pos;
    const uint8_t *elems = lb_cursor_take(p, count * elem_bytes); /* fits: checked above */
    if (elem_type == LB_GGUF_BOOL) {
        for (uint64_t i = 0; i < count; i++)
            if (elems[i] > 1)
                return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, elems_at + i, "array element",
                                      "bool value[%llu] = %u is not 0 or 1", (unsigned long long)i,
                                      elems[i]);
    }
    v->v.arr.count = count;
    v->v.arr.data = elems;
    return LB_OK;
}

static lb_status read_kv(lb_cursor *p, lb_gguf *g, int64_t index)
{
    lb_gguf_kv *kv = &g->kv[index];
    uint64_t key_len, type_at, value_at;
    uint32_t type;
    set_where(p, "kv", index, NULL, 0);
    lb_status status = read_name(p, "key", &kv->key, &key_len);
    if (status != LB_OK)
        return status;
    set_where(p, "kv", index, kv->key, key_len);
    type_at = p->pos;
    if ((status = lb_cursor_u32(p, "value type", &type)) != LB_OK)
        return status;
    if (type > LB_GGUF_FLOAT64)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, type_at, "value type",
                              "unknown value type %u", type);
    kv->value.type = (lb_gguf_type)type;
    value_at = p->pos;
    if (type == LB_GGUF_ARRAY)
        status = read_array(p, &kv->value);
    else
        status = read_scalar(p, (lb_gguf_type)type, "value", &kv->value);
    if (status != LB_OK)
        return status;
    if (strcmp(kv->key, "general.alignment") == 0) {
        if (type != LB_GGUF_UINT32)
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, type_at, "value type",
                                  "general.alignment has type %s, must be UINT32",
                                  lb_gguf_type_name((lb_gguf_type)type));
        uint32_t a = kv->value.v.u32;
        if (a == 0 || (a & (a - 1)) != 0)
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, value_at, "value",
                                  "alignment %u is not a nonzero power of two", a);
        g->alignment = a;
    }
    return LB_OK;
}

static lb_status read_tensor_info(lb_cursor *p, lb_gguf *g, int64_t index, tensor_pos *pos)
{
    lb_gguf_tensor_info *t = &g->tensors[index];
    uint64_t name_len, ne_at[LB_MAX_DIMS], at;
    uint32_t n_dims, type_id;
    set_where(p, "tensor", index, NULL, 0);
    pos->name = p->pos;
    lb_status status = read_name(p, "name", &t->name, &name_len);
    if (status != LB_OK)
        return status;
    set_where(p, "tensor", index, t->name, name_len);
    at = p->pos;
    if ((status = lb_cursor_u32(p, "n_dims", &n_dims)) != LB_OK)
        return status;
    if (n_dims < 1 || n_dims > LB_MAX_DIMS)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, at, "n_dims", "n_dims %u is not in 1..%d",
                              n_dims, LB_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < LB_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        char field[16];
        uint64_t ne;
        int64_t count;
        snprintf(field, sizeof field, "ne[%u]", d);
        ne_at[d] = p->pos;
        if ((status = lb_cursor_u64(p, field, &ne)) != LB_OK)
            return status;
        if (ne > (uint64_t)INT64_MAX)
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, ne_at[d], field,
                                  "dimension %lld is negative", (long long)ne);
        /* A tensor without elements is nothing a model has; with a huge other dimension it
         * would send row loops over 2^62 empty rows. */
        if (ne == 0)
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, ne_at[d], field,
                                  "dimension 0: tensors without elements are not supported");
        t->ne[d] = (int64_t)ne;
        if (!lb_tensor_count((int)d + 1, t->ne, &count))
            return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, ne_at[d], field,
                                  "element count overflows int64 at dimension %llu",
                                  (unsigned long long)ne);
    }
    at = p->pos;
    if ((status = lb_cursor_u32(p, "type", &type_id)) != LB_OK)
        return status;
    const lb_type_info *info = lb_type_get(type_id);
    if (!info)
        return lb_cursor_fail(p, LB_ERR_UNSUPPORTED, at, "type",
                              "unknown or unsupported tensor type id %u", type_id);
    t->type = info->type;
    if (t->ne[0] % info->block_size != 0)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, ne_at[0], "ne[0]",
                              "row length %lld is not a multiple of the %s block size %lld",
                              (long long)t->ne[0], info->name, (long long)info->block_size);
    if (!lb_tensor_bytes(t->type, t->n_dims, t->ne, &t->nbytes))
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, ne_at[0], "ne[0]",
                              "size in bytes of this %s tensor overflows", info->name);
    pos->offset = p->pos;
    if ((status = lb_cursor_u64(p, "offset", &t->offset)) != LB_OK)
        return status;
    if (t->offset % g->alignment != 0)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, pos->offset, "offset",
                              "offset %llu is not a multiple of the alignment %u",
                              (unsigned long long)t->offset, g->alignment);
    return LB_OK;
}

static lb_status check_duplicate_keys(lb_cursor *p, lb_gguf *g, const uint64_t *key_at)
{
    int64_t later, first;
    lb_name_ref *refs = lb_malloc((size_t)g->n_kv * sizeof *refs + 1);
    if (!refs)
        return lb_cursor_fail(p, LB_ERR_NOMEM, 16, "n_kv",
                              "out of memory sorting %lld keys (%zu bytes)", (long long)g->n_kv,
                              (size_t)g->n_kv * sizeof *refs + 1);
    for (int64_t i = 0; i < g->n_kv; i++)
        refs[i] = (lb_name_ref){g->kv[i].key, i};
    lb_find_repeated_name(refs, g->n_kv, &later, &first);
    lb_free(refs);
    if (later < 0)
        return LB_OK;
    set_where(p, "kv", later, g->kv[later].key, strlen(g->kv[later].key));
    return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, key_at[later], "key", "duplicate of kv[%lld]",
                          (long long)first);
}

static lb_status check_duplicate_names(lb_cursor *p, lb_gguf *g, const tensor_pos *pos)
{
    int64_t later, first;
    lb_name_ref *refs = lb_malloc((size_t)g->n_tensors * sizeof *refs + 1);
    if (!refs)
        return lb_cursor_fail(p, LB_ERR_NOMEM, 8, "n_tensors",
                              "out of memory sorting %lld tensor names (%zu bytes)",
                              (long long)g->n_tensors, (size_t)g->n_tensors * sizeof *refs + 1);
    for (int64_t i = 0; i < g->n_tensors; i++)
        refs[i] = (lb_name_ref){g->tensors[i].name, i};
    lb_find_repeated_name(refs, g->n_tensors, &later, &first);
    lb_free(refs);
    if (later < 0)
        return LB_OK;
    set_where(p, "tensor", later, g->tensors[later].name, strlen(g->tensors[later].name));
    return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, pos[later].name, "name",
                          "duplicate of tensor[%lld]", (long long)first);
}

typedef struct span_ref {
    uint64_t begin, end; /* relative to the data section */
    int64_t index;
} span_ref;

static int compare_span_refs(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Every tensor's bytes must lie inside the file and no two may share a byte (llama.cpp is
 * stricter and wants each offset to equal the aligned running total; lowbit accepts any
 * non-overlapping layout so files with reordered data still load). */
static lb_status check_tensor_data(lb_cursor *p, lb_gguf *g, const tensor_pos *pos)
{
    lb_status status = LB_OK;
    int64_t n_spans = 0, widest = -1; /* widest: the span reaching furthest so far */
    span_ref *spans = lb_malloc((size_t)g->n_tensors * sizeof *spans + 1);
    if (!spans)
        return lb_cursor_fail(p, LB_ERR_NOMEM, 8, "n_tensors",
                              "out of memory sorting %lld tensor spans (%zu bytes)",
                              (long long)g->n_tensors, (size_t)g->n_tensors * sizeof *spans + 1);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lb_gguf_tensor_info *t = &g->tensors[i];
        uint64_t begin, end;
        if (!lb_size_add(g->data_offset, t->offset, &begin) ||
            !lb_size_add(begin, t->nbytes, &end) || end > p->size) {
            set_where(p, "tensor", i, t->name, strlen(t->name));
            status =
                lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, pos[i].offset, "offset",
                               "%llu bytes at offset %llu of the data section run past the end of "
                               "the file (%llu bytes, data section at %llu)",
                               (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                               (unsigned long long)p->size, (unsigned long long)g->data_offset);
            goto done;
        }
        t->data = p->data + begin;
        if (t->nbytes > 0) /* an empty tensor occupies no byte and overlaps nothing */
            spans[n_spans++] = (span_ref){t->offset, t->offset + t->nbytes, i};
    }
    qsort(spans, (size_t)n_spans, sizeof *spans, compare_span_refs);
    for (int64_t k = 0; k < n_spans; k++) {
        if (widest >= 0 && spans[k].begin < spans[widest].end) {
            int64_t i = spans[k].index, j = spans[widest].index;
            set_where(p, "tensor", i, g->tensors[i].name, strlen(g->tensors[i].name));
            char other[LB_CURSOR_SHOWN_BYTES];
            lb_cursor_show_utf8(other, sizeof other, g->tensors[j].name,
                                strlen(g->tensors[j].name));
            status =
                lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, pos[i].offset, "offset",
                               "data [%llu, %llu) overlaps tensor[%lld] '%s' at [%llu, %llu)",
                               (unsigned long long)spans[k].begin, (unsigned long long)spans[k].end,
                               (long long)j, other, (unsigned long long)spans[widest].begin,
                               (unsigned long long)spans[widest].end);
            goto done;
        }
        if (widest < 0 || spans[k].end > spans[widest].end)
            widest = k;
    }
done:
    lb_free(spans);
    return status;
}

static lb_status read_header(lb_cursor *p, lb_gguf *g)
{
    uint64_t n_tensors, n_kv, left;
    lb_status status = lb_cursor_need(p, 4, "magic");
    if (status != LB_OK)
        return status;
    const uint8_t *m = p->data;
    if (memcmp(m, "GGUF", 4) != 0)
        return lb_cursor_fail(
            p, LB_ERR_CORRUPT_FILE, 0, "magic",
            "not a GGUF file (bytes %02x %02x %02x %02x, expected 47 47 55 46 \"GGUF\")", m[0],
            m[1], m[2], m[3]);
    p->pos = 4;
    if ((status = lb_cursor_u32(p, "version", &g->version)) != LB_OK)
        return status;
    uint32_t swapped = __builtin_bswap32(g->version);
    if ((g->version & 0xFFFF) == 0 && swapped >= 1 && swapped <= 3)
        return lb_cursor_fail(
            p, LB_ERR_UNSUPPORTED, 4, "version",
            "big-endian GGUF (version %u with its bytes swapped) is not supported", swapped);
    if (g->version == 1)
        return lb_cursor_fail(p, LB_ERR_UNSUPPORTED, 4, "version",
                              "GGUF version 1 (32-bit counts) is not supported; convert it to v3");
    if (g->version != 2 && g->version != 3)
        return lb_cursor_fail(p, LB_ERR_UNSUPPORTED, 4, "version",
                              "GGUF version %u is not supported (only 2 and 3)", g->version);
    if ((status = lb_cursor_u64(p, "n_tensors", &n_tensors)) != LB_OK ||
        (status = lb_cursor_u64(p, "n_kv", &n_kv)) != LB_OK)
        return status;
    /* Bounds the allocation for the entries; n_tensors is bounded after the metadata. */
    left = p->size - p->pos;
    if (n_kv > left / KV_MIN_BYTES)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, 16, "n_kv",
                              "%llu key-value pairs cannot fit in the %llu bytes after the header "
                              "(truncated file or corrupt count)",
                              (unsigned long long)n_kv, (unsigned long long)left);
    if (n_tensors > (uint64_t)INT64_MAX)
        return lb_cursor_fail(p, LB_ERR_CORRUPT_FILE, 8, "n_tensors",
                              "count %llu is past INT64_MAX", (unsigned long long)n_tensors);
    g->n_tensors = (int64_t)n_tensors;
    g->n_kv = (int64_t)n_kv;
    return LB_OK;
}

/* Parses the whole file into g (whose path and file are set); on error the caller closes g. */
static lb_status parse(lb_gguf *g, const uint8_t *data, uint64_t size)
{
    lb_cursor p;
    lb_cursor_init(&p, g->path, data, size);
    uint64_t *key_at = NULL, info_end;
    tensor_pos *tensor_at = NULL;
    int64_t n_kv, n_tensors;
    g->alignment = LB_GGUF_DEFAULT_ALIGNMENT;
    lb_status status = read_header(&p, g);
    if (status != LB_OK)
        return status;
    /* Counts are published only once the arrays exist, so close() never walks past them. */
    n_kv = g->n_kv;
    n_tensors = g->n_tensors;
    g->n_kv = g->n_tensors = 0;
    g->kv = lb_calloc((size_t)n_kv, sizeof *g->kv);
    key_at = lb_malloc((size_t)n_kv * sizeof *key_at + 1);
    if (!g->kv || !key_at) {
        status = lb_cursor_fail(&p, LB_ERR_NOMEM, 16, "n_kv",
                                "out of memory for %lld key/value pairs (%zu bytes)",
                                (long long)n_kv, (size_t)n_kv * (sizeof *g->kv + sizeof *key_at));
        goto done;
    }
    g->n_kv = n_kv;
    for (int64_t i = 0; i < n_kv; i++) {
        key_at[i] = p.pos;
        if ((status = read_kv(&p, g, i)) != LB_OK)
            goto done;
    }
    set_where(&p, NULL, 0, NULL, 0);
    if ((status = check_duplicate_keys(&p, g, key_at)) != LB_OK)
        goto done;

    /* Bounds the allocation for the tensor infos by what is left after the metadata. */
    if ((uint64_t)n_tensors > (p.size - p.pos) / TENSOR_MIN_BYTES) {
        status = lb_cursor_fail(&p, LB_ERR_CORRUPT_FILE, 8, "n_tensors",
                                "%lld tensor infos cannot fit in the %llu bytes after the metadata "
                                "(truncated file or corrupt count)",
                                (long long)n_tensors, (unsigned long long)(p.size - p.pos));
        goto done;
    }
    g->tensors = lb_calloc((size_t)n_tensors, sizeof *g->tensors);
    tensor_at = lb_malloc((size_t)n_tensors * sizeof *tensor_at + 1);
    if (!g->tensors || !tensor_at) {
        status = lb_cursor_fail(
            &p, LB_ERR_NOMEM, 8, "n_tensors", "out of memory for %lld tensor infos (%zu bytes)",
            (long long)n_tensors, (size_t)n_tensors * (sizeof *g->tensors + sizeof *tensor_at));
        goto done;
    }
    g->n_tensors = n_tensors;
    for (int64_t i = 0; i < n_tensors; i++)
        if ((status = read_tensor_info(&p, g, i, &tensor_at[i])) != LB_OK)
            goto done;
    set_where(&p, NULL, 0, NULL, 0);
    if ((status = check_duplicate_names(&p, g, tensor_at)) != LB_OK)
        goto done;

    info_end = p.pos;
    if (!lb_size_align(info_end, g->alignment, &g->data_offset)) {
        status =
            lb_cursor_fail(&p, LB_ERR_CORRUPT_FILE, info_end, "padding", "data offset overflows");
        goto done;
    }
    if (n_tensors > 0 && g->data_offset > p.size) {
        status =
            lb_cursor_fail(&p, LB_ERR_CORRUPT_FILE, info_end, "padding",
                           "file ends inside the padding before the data section (%llu of %llu "
                           "bytes present)",
                           (unsigned long long)(p.size - info_end),
                           (unsigned long long)(g->data_offset - info_end));
        goto done;
    }
    status = check_tensor_data(&p, g, tensor_at);
done:
    lb_free(key_at);
    lb_free(tensor_at);
    return status;
}

lb_status lb_gguf_open(lb_gguf **out, const char *path)
{
    lb_mapped_file *file = NULL;
    *out = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    lb_gguf *g = lb_calloc(1, sizeof *g);
    if (!g) {
        lb_mapped_file_close(&file);
        return lb_nomem("%s: out of memory for the GGUF reader", path);
    }
    g->file = file;
    g->path = file->path;
    if ((status = parse(g, file->data, file->size)) != LB_OK) {
        lb_gguf_close(&g);
        return status;
    }
    *out = g;
    return LB_OK;
}

lb_status lb_gguf_open_memory(lb_gguf **out, const char *name, const void *data, uint64_t size)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL buffer of %llu bytes", name,
                        (unsigned long long)size);
    size_t name_len = strlen(name);
    /* The name lives in the same block as the struct so close() needs no special case. */
    lb_gguf *g = lb_calloc(1, sizeof *g + name_len + 1);
    if (!g)
        return lb_nomem("%s: out of memory for the GGUF reader", name);
    char *path = (char *)(g + 1);
    memcpy(path, name, name_len + 1);
    g->path = path;
    lb_status status = parse(g, data, size);
    if (status != LB_OK) {
        lb_gguf_close(&g);
        return status;
    }
    *out = g;
    return LB_OK;
}

void lb_gguf_close(lb_gguf **gguf)
{
    if (!gguf || !*gguf)
        return;
    lb_gguf *g = *gguf;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const lb_gguf_value *v = &g->kv[i].value;
        lb_free(g->kv[i].key);
        if (v->type == LB_GGUF_ARRAY && v->v.arr.elem_type == LB_GGUF_STRING)
            lb_free(v->v.arr.strings);
    }
    lb_free(g->kv);
    for (int64_t i = 0; i < g->n_tensors; i++)
        lb_free(g->tensors[i].name);
    lb_free(g->tensors);
    lb_mapped_file_close(&g->file);
    lb_free(g);
    *gguf = NULL;
}

const lb_gguf_kv *lb_gguf_find_kv(const lb_gguf *gguf, const char *key)
{
    for (int64_t i = 0; i < gguf->n_kv; i++)
        if (strcmp(gguf->kv[i].key, key) == 0)
            return &gguf->kv[i];
    return NULL;
}

int64_t lb_gguf_find_tensor(const lb_gguf *gguf, const char *name)
{
    for (int64_t i = 0; i < gguf->n_tensors; i++)
        if (strcmp(gguf->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static lb_status find_required(const lb_gguf *gguf, const char *key, const lb_gguf_kv **kv)
{
    *kv = lb_gguf_find_kv(gguf, key);
    if (!*kv)
        return lb_error(LB_ERR_BAD_INPUT, "%s: metadata key '%s' not found", gguf->path, key);
    return LB_OK;
}

static lb_status wrong_type(const lb_gguf *gguf, const lb_gguf_kv *kv, const char *expected)
{
    return lb_error(LB_ERR_CORRUPT_FILE, "%s: metadata key '%s' has type %s, expected %s",
                    gguf->path, kv->key, lb_gguf_type_name(kv->value.type), expected);
}

/* Integer scalars as int64; false for other types and for uint64 values past INT64_MAX. */
static bool value_int(const lb_gguf_value *v, int64_t *out)
{
    switch (v->type) {
    case LB_GGUF_UINT8: *out = v->v.u8; return true;
    case LB_GGUF_INT8: *out = v->v.i8; return true;
    case LB_GGUF_UINT16: *out = v->v.u16; return true;
    case LB_GGUF_INT16: *out = v->v.i16; return true;
    case LB_GGUF_UINT32: *out = v->v.u32; return true;
    case LB_GGUF_INT32: *out = v->v.i32; return true;
    case LB_GGUF_INT64: *out = v->v.i64; return true;
    case LB_GGUF_UINT64:
        if (v->v.u64 > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->v.u64;
        return true;
    default: return false;
    }
}

lb_status lb_gguf_get_int(const lb_gguf *gguf, const char *key, int64_t *out)
{
    const lb_gguf_kv *kv;
    lb_status status = find_required(gguf, key, &kv);
    if (status != LB_OK)
        return status;
    if (kv->value.type == LB_GGUF_UINT64 && kv->value.v.u64 > (uint64_t)INT64_MAX)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: metadata key '%s' value %llu does not fit "
                        "in int64", gguf->path, key, (unsigned long long)kv->value.v.u64);
    if (!value_int(&kv->value, out))
        return wrong_type(gguf, kv, "an integer");
    return LB_OK;
}

lb_status lb_gguf_get_float(const lb_gguf *gguf, const char *key, double *out)
{
    const lb_gguf_kv *kv;
    int64_t i;
    lb_status status = find_required(gguf, key, &kv);
    if (status != LB_OK)
        return status;
    if (kv->value.type == LB_GGUF_FLOAT32)
        *out = kv->value.v.f32;
    else if (kv->value.type == LB_GGUF_FLOAT64)
        *out = kv->value.v.f64;
    else if (kv->value.type == LB_GGUF_UINT64)
        *out = (double)kv->value.v.u64;
    else if (value_int(&kv->value, &i))
        *out = (double)i;
    else
        return wrong_type(gguf, kv, "a number");
    return LB_OK;
}

lb_status lb_gguf_get_bool(const lb_gguf *gguf, const char *key, bool *out)
{
    const lb_gguf_kv *kv;
    lb_status status = find_required(gguf, key, &kv);
    if (status != LB_OK)
        return status;
    if (kv->value.type != LB_GGUF_BOOL)
        return wrong_type(gguf, kv, "BOOL");
    *out = kv->value.v.b;
    return LB_OK;
}

lb_status lb_gguf_get_string(const lb_gguf *gguf, const char *key, lb_gguf_string *out)
{
    const lb_gguf_kv *kv;
    lb_status status = find_required(gguf, key, &kv);
    if (status != LB_OK)
        return status;
    if (kv->value.type != LB_GGUF_STRING)
        return wrong_type(gguf, kv, "STRING");
    *out = kv->value.v.str;
    return LB_OK;
}

lb_status lb_gguf_get_array(const lb_gguf *gguf, const char *key, lb_gguf_type elem_type,
                            const lb_gguf_value **out)
{
    const lb_gguf_kv *kv;
    lb_status status = find_required(gguf, key, &kv);
    if (status != LB_OK)
        return status;
    if (kv->value.type != LB_GGUF_ARRAY)
        return wrong_type(gguf, kv, "ARRAY");
    if (kv->value.v.arr.elem_type != elem_type)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: metadata key '%s' is an array of %s, expected %s",
                        gguf->path, key, lb_gguf_type_name(kv->value.v.arr.elem_type),
                        lb_gguf_type_name(elem_type));
    *out = &kv->value;
    return LB_OK;
}

/* Element i of a scalar array as a value of the element type (type ARRAY if there is none). */
static lb_gguf_value array_element(const lb_gguf_value *array, uint64_t i)
{
    lb_gguf_value v = {.type = array->v.arr.elem_type};
    size_t bytes = lb_gguf_type_size(v.type);
    if (array->type != LB_GGUF_ARRAY || bytes == 0 || i >= array->v.arr.count) {
        v.type = LB_GGUF_ARRAY;
        return v;
    }
    decode_scalar(v.type, (const uint8_t *)array->v.arr.data + i * bytes, &v);
    return v;
}

int64_t lb_gguf_array_int(const lb_gguf_value *array, uint64_t i)
{
    lb_gguf_value v = array_element(array, i);
    int64_t out;
    double f;
    if (value_int(&v, &out))
        return out;
    switch (v.type) {
    case LB_GGUF_UINT64: return INT64_MAX; /* only values past INT64_MAX reach here */
    case LB_GGUF_BOOL: return v.v.b;
    case LB_GGUF_FLOAT32:
    case LB_GGUF_FLOAT64:
        f = v.type == LB_GGUF_FLOAT32 ? v.v.f32 : v.v.f64;
        if (isnan(f))
            return 0;
        if (f >= 9223372036854775807.0)
            return INT64_MAX;
        if (f <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)f;
    default: return 0;
    }
}

double lb_gguf_array_float(const lb_gguf_value *array, uint64_t i)
{
    lb_gguf_value v = array_element(array, i);
    int64_t out;
    switch (v.type) {
    case LB_GGUF_FLOAT32: return v.v.f32;
    case LB_GGUF_FLOAT64: return v.v.f64;
    case LB_GGUF_UINT64: return (double)v.v.u64;
    case LB_GGUF_BOOL: return v.v.b ? 1.0 : 0.0;
    default: return value_int(&v, &out) ? (double)out : 0.0;
    }
}
