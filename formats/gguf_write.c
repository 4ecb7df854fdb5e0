/* GGUF v3 writer: metadata in insertion order, tensor data streamed through an atomic file. */
#include "formats/gguf.h"

#include <string.h>

#include "common/alloc_internal.h"
#include "formats/atomic_file_internal.h"
#include "formats/cursor_internal.h"

#define ALIGNMENT_KEY "general.alignment"

/* A metadata entry, its value already encoded exactly as it goes into the file (value type
 * followed by the value), so that writing is a copy. */
typedef struct writer_kv {
    char *key;
    uint64_t key_len;
    uint8_t *bytes;
    uint64_t nbytes;
} writer_kv;

typedef struct writer_tensor {
    char *name;
    uint64_t name_len;
    lb_type type;
    int n_dims;
    int64_t ne[LB_MAX_DIMS];
    uint64_t nbytes;
    const void *data;                 /* when producer is NULL */
    lb_gguf_tensor_producer producer;
    void *context;
} writer_tensor;

struct lb_gguf_writer {
    uint32_t alignment;
    bool alignment_set; /* the caller set general.alignment itself (to the same value) */
    writer_kv *kvs;
    int64_t n_kvs, cap_kvs;
    writer_tensor *tensors;
    int64_t n_tensors, cap_tensors;
};

/* Source of a string array: C strings with optional lengths, or strings read from a file. */
typedef struct string_list {
    const char *const *strings;
    const uint32_t *lengths;
    const lb_gguf_string *gguf_strings;
} string_list;

static uint8_t *put_bytes(uint8_t *dst, const void *src, uint64_t n)
{
    if (n > 0)
        memcpy(dst, src, (size_t)n);
    return dst + n;
}

/* Keys and tensor names become C strings in every reader: valid UTF-8 (checked by the reader's
 * rules: no overlong forms, surrogates or code points past U+10FFFF). */
static bool valid_utf8(const char *s)
{
    const uint8_t *b = (const uint8_t *)s;
    while (*b) {
        uint32_t cp, min;
        int n;
        if (*b < 0x80) {
            b++;
            continue;
        }
        if ((*b & 0xE0) == 0xC0)
            n = 1, cp = *b & 0x1Fu, min = 0x80;
        else if ((*b & 0xF0) == 0xE0)
            n = 2, cp = *b & 0x0Fu, min = 0x800;
        else if ((*b & 0xF8) == 0xF0)
            n = 3, cp = *b & 0x07u, min = 0x10000;
        else
            return false;
        for (int k = 1; k <= n; k++) {
            if ((b[k] & 0xC0) != 0x80) /* also stops at the NUL */
                return false;
            cp = (cp << 6) | (b[k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        b += n + 1;
    }
    return true;
}

lb_status lb_gguf_writer_create(lb_gguf_writer **out, uint32_t alignment)
{
    *out = NULL;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: alignment %u is not a power of two",
                        alignment);
    lb_gguf_writer *w = lb_calloc(1, sizeof *w);
    if (!w)
        return lb_nomem("gguf writer: out of memory for the writer");
    w->alignment = alignment;
    *out = w;
    return LB_OK;
}

void lb_gguf_writer_free(lb_gguf_writer **writer)
{
    if (!writer || !*writer)
        return;
    lb_gguf_writer *w = *writer;
    for (int64_t i = 0; i < w->n_kvs; i++) {
        lb_free(w->kvs[i].key);
        lb_free(w->kvs[i].bytes);
    }
    for (int64_t i = 0; i < w->n_tensors; i++)
        lb_free(w->tensors[i].name);
    lb_free(w->kvs);
    lb_free(w->tensors);
    lb_free(w);
    *writer = NULL;
}

/* Grows an array of `elem` byte entries so that one more fits. */
static bool reserve(void **items, int64_t *cap, int64_t n, size_t elem)
{
    if (n < *cap)
        return true;
    int64_t new_cap = *cap ? *cap * 2 : 16;
    void *grown = lb_realloc(*items, (size_t)new_cap * elem);
    if (!grown)
        return false;
    *items = grown;
    *cap = new_cap;
    return true;
}

static lb_status check_key(const lb_gguf_writer *w, const char *key)
{
    if (!key || !valid_utf8(key))
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: metadata key is %s",
                        key ? "not valid UTF-8" : "NULL");
    for (int64_t i = 0; i < w->n_kvs; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return lb_error(LB_ERR_INVALID_ARG, "gguf writer: metadata key '%s' set twice", key);
    return LB_OK;
}

/* Appends key with its encoded value; takes ownership of `bytes` on every path. */
static lb_status add_kv(lb_gguf_writer *w, const char *key, uint8_t *bytes, uint64_t nbytes)
{
    writer_kv *kv = NULL;
    lb_status status = check_key(w, key);
    if (status != LB_OK)
        goto fail;
    if (strcmp(key, ALIGNMENT_KEY) == 0) {
        /* The alignment is the writer's: a copied key must agree with it, or the layout and
         * the header would disagree. */
        uint32_t type = lb_le_load32(bytes);
        uint32_t value = nbytes == 8 ? lb_le_load32(bytes + 4) : 0;
        if (type != LB_GGUF_UINT32 || value != w->alignment) {
            status = lb_error(LB_ERR_INVALID_ARG,
                              "gguf writer: %s must be a UINT32 equal to the writer's alignment "
                              "%u (set it through lb_gguf_writer_create)",
                              ALIGNMENT_KEY, w->alignment);
            goto fail;
        }
    }
    if (reserve((void **)&w->kvs, &w->cap_kvs, w->n_kvs, sizeof *w->kvs))
        kv = &w->kvs[w->n_kvs];
    if (!kv || !(kv->key = lb_strndup(key, strlen(key)))) {
        status = lb_nomem("gguf writer: out of memory adding key '%s'", key);
        goto fail;
    }
    kv->key_len = strlen(key);
    kv->bytes = bytes;
    kv->nbytes = nbytes;
    w->n_kvs++;
    if (strcmp(key, ALIGNMENT_KEY) == 0)
        w->alignment_set = true;
    return LB_OK;
fail:
    lb_free(bytes);
    return status;
}

static lb_status alloc_value(uint64_t nbytes, uint8_t **out)
{
    if (nbytes > SIZE_MAX || !(*out = lb_malloc((size_t)nbytes)))
        return lb_error(LB_ERR_NOMEM, "gguf writer: out of memory (%llu bytes of metadata)",
                        (unsigned long long)nbytes);
    return LB_OK;
}

/* `bits` holds the scalar's bit pattern in its low lb_gguf_type_size(type) bytes. */
static lb_status set_scalar(lb_gguf_writer *w, const char *key, lb_gguf_type type, uint64_t bits)
{
    size_t size = lb_gguf_type_size(type);
    uint8_t *bytes, *p;
    lb_status status = alloc_value(4 + size, &bytes);
    if (status != LB_OK)
        return status;
    p = lb_le_store32(bytes, type);
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)(bits >> (8 * i));
    return add_kv(w, key, bytes, 4 + size);
}

lb_status lb_gguf_writer_set_u8(lb_gguf_writer *w, const char *key, uint8_t v)
{
    return set_scalar(w, key, LB_GGUF_UINT8, v);
}

lb_status lb_gguf_writer_set_i8(lb_gguf_writer *w, const char *key, int8_t v)
{
    return set_scalar(w, key, LB_GGUF_INT8, (uint8_t)v);
}

lb_status lb_gguf_writer_set_u16(lb_gguf_writer *w, const char *key, uint16_t v)
{
    return set_scalar(w, key, LB_GGUF_UINT16, v);
}

lb_status lb_gguf_writer_set_i16(lb_gguf_writer *w, const char *key, int16_t v)
{
    return set_scalar(w, key, LB_GGUF_INT16, (uint16_t)v);
}

lb_status lb_gguf_writer_set_u32(lb_gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, LB_GGUF_UINT32, v);
}

lb_status lb_gguf_writer_set_i32(lb_gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, LB_GGUF_INT32, (uint32_t)v);
}

lb_status lb_gguf_writer_set_f32(lb_gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, LB_GGUF_FLOAT32, bits);
}

lb_status lb_gguf_writer_set_bool(lb_gguf_writer *w, const char *key, bool v)
{
    return set_scalar(w, key, LB_GGUF_BOOL, v ? 1 : 0);
}

lb_status lb_gguf_writer_set_u64(lb_gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, LB_GGUF_UINT64, v);
}

lb_status lb_gguf_writer_set_i64(lb_gguf_writer *w, const char *key, int64_t v)
{
    return set_scalar(w, key, LB_GGUF_INT64, (uint64_t)v);
}

lb_status lb_gguf_writer_set_f64(lb_gguf_writer *w, const char *key, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, LB_GGUF_FLOAT64, bits);
}

lb_status lb_gguf_writer_set_string_n(lb_gguf_writer *w, const char *key, const char *v,
                                      uint64_t len)
{
    uint8_t *bytes, *p;
    uint64_t nbytes;
    lb_status status = check_key(w, key);
    if (status != LB_OK)
        return status;
    if (!v && len > 0)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string", key);
    if (!lb_size_add(len, 12, &nbytes))
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': string too long", key);
    if ((status = alloc_value(nbytes, &bytes)) != LB_OK)
        return status;
    p = lb_le_store32(bytes, LB_GGUF_STRING);
    p = lb_le_store64(p, len);
    put_bytes(p, v, len);
    return add_kv(w, key, bytes, nbytes);
}

lb_status lb_gguf_writer_set_string(lb_gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string",
                        key ? key : "(null)");
    return lb_gguf_writer_set_string_n(w, key, v, strlen(v));
}

/* Encodes a scalar array; `raw_le` says the elements are already in file layout (as the reader
 * leaves them) rather than native values. */
static lb_status set_scalar_array(lb_gguf_writer *w, const char *key, lb_gguf_type elem_type,
                                  const void *data, uint64_t count, bool raw_le)
{
    size_t size = lb_gguf_type_size(elem_type);
    uint64_t payload, nbytes;
    uint8_t *bytes, *p;
    lb_status status = check_key(w, key);
    if (status != LB_OK)
        return status;
    if (size == 0)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': arrays of %s are not "
                        "supported here", key, lb_gguf_type_name(elem_type));
    if (!data && count > 0)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': NULL array data", key);
    if (!lb_size_mul(count, size, &payload) || !lb_size_add(payload, 16, &nbytes))
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': array too large", key);
    if ((status = alloc_value(nbytes, &bytes)) != LB_OK)
        return status;
    p = lb_le_store32(bytes, LB_GGUF_ARRAY);
    p = lb_le_store32(p, elem_type);
    p = lb_le_store64(p, count);
    if (raw_le) {
        put_bytes(p, data, payload);
    } else if (elem_type == LB_GGUF_BOOL) {
        for (uint64_t i = 0; i < count; i++)
            p[i] = ((const bool *)data)[i] ? 1 : 0;
    } else {
        const uint8_t *src = data;
        for (uint64_t i = 0; i < count; i++, src += size) {
            uint64_t bits = 0;
            uint8_t b8;
            uint16_t b16;
            uint32_t b32;
            switch (size) {
            case 1: memcpy(&b8, src, 1), bits = b8; break;
            case 2: memcpy(&b16, src, 2), bits = b16; break;
            case 4: memcpy(&b32, src, 4), bits = b32; break;
            default: memcpy(&bits, src, 8); break;
            }
            for (size_t k = 0; k < size; k++)
                *p++ = (uint8_t)(bits >> (8 * k));
        }
    }
    return add_kv(w, key, bytes, nbytes);
}

lb_status lb_gguf_writer_set_array(lb_gguf_writer *w, const char *key, lb_gguf_type elem_type,
                                   const void *data, uint64_t count)
{
    return set_scalar_array(w, key, elem_type, data, count, false);
}

static void string_at(const string_list *list, uint64_t i, const char **s, uint64_t *len)
{
    if (list->gguf_strings) {
        *s = list->gguf_strings[i].data;
        *len = list->gguf_strings[i].len;
    } else {
        *s = list->strings[i];
        *len = list->lengths ? list->lengths[i] : (*s ? strlen(*s) : 0);
    }
}

static lb_status set_strings(lb_gguf_writer *w, const char *key, const string_list *list,
                             uint64_t count)
{
    uint64_t nbytes = 16;
    uint8_t *bytes, *p;
    lb_status status = check_key(w, key);
    if (status != LB_OK)
        return status;
    if (count > 0 && !list->strings && !list->gguf_strings)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string array", key);
    for (uint64_t i = 0; i < count; i++) {
        const char *s;
        uint64_t len;
        string_at(list, i, &s, &len);
        if (!s && len > 0)
            return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': string %llu is NULL",
                            key, (unsigned long long)i);
        if (!lb_size_add(nbytes, 8, &nbytes) || !lb_size_add(nbytes, len, &nbytes))
            return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': array too large", key);
    }
    if ((status = alloc_value(nbytes, &bytes)) != LB_OK)
        return status;
    p = lb_le_store32(bytes, LB_GGUF_ARRAY);
    p = lb_le_store32(p, LB_GGUF_STRING);
    p = lb_le_store64(p, count);
    for (uint64_t i = 0; i < count; i++) {
        const char *s;
        uint64_t len;
        string_at(list, i, &s, &len);
        p = lb_le_store64(p, len);
        p = put_bytes(p, s, len);
    }
    return add_kv(w, key, bytes, nbytes);
}

lb_status lb_gguf_writer_set_string_array(lb_gguf_writer *w, const char *key,
                                          const char *const *strings, const uint32_t *lengths,
                                          uint64_t count)
{
    string_list list = {.strings = strings, .lengths = lengths};
    return set_strings(w, key, &list, count);
}

lb_status lb_gguf_writer_set_value(lb_gguf_writer *w, const char *key, const lb_gguf_value *value)
{
    switch (value->type) {
    case LB_GGUF_UINT8: return lb_gguf_writer_set_u8(w, key, value->v.u8);
    case LB_GGUF_INT8: return lb_gguf_writer_set_i8(w, key, value->v.i8);
    case LB_GGUF_UINT16: return lb_gguf_writer_set_u16(w, key, value->v.u16);
    case LB_GGUF_INT16: return lb_gguf_writer_set_i16(w, key, value->v.i16);
    case LB_GGUF_UINT32: return lb_gguf_writer_set_u32(w, key, value->v.u32);
    case LB_GGUF_INT32: return lb_gguf_writer_set_i32(w, key, value->v.i32);
    case LB_GGUF_FLOAT32: return lb_gguf_writer_set_f32(w, key, value->v.f32);
    case LB_GGUF_BOOL: return lb_gguf_writer_set_bool(w, key, value->v.b);
    case LB_GGUF_UINT64: return lb_gguf_writer_set_u64(w, key, value->v.u64);
    case LB_GGUF_INT64: return lb_gguf_writer_set_i64(w, key, value->v.i64);
    case LB_GGUF_FLOAT64: return lb_gguf_writer_set_f64(w, key, value->v.f64);
    case LB_GGUF_STRING:
        return lb_gguf_writer_set_string_n(w, key, value->v.str.data, value->v.str.len);
    case LB_GGUF_ARRAY:
        if (value->v.arr.elem_type == LB_GGUF_STRING) {
            string_list list = {.gguf_strings = value->v.arr.strings};
            return set_strings(w, key, &list, value->v.arr.count);
        }
        return set_scalar_array(w, key, value->v.arr.elem_type, value->v.arr.data,
                                value->v.arr.count, true);
    }
    return lb_error(LB_ERR_INVALID_ARG, "gguf writer: key '%s': unknown value type %d",
                    key ? key : "(null)", (int)value->type);
}

static lb_status add_tensor(lb_gguf_writer *w, const char *name, lb_type type, int n_dims,
                            const int64_t *ne, const void *data,
                            lb_gguf_tensor_producer producer, void *context)
{
    writer_tensor t = {.type = type, .n_dims = n_dims, .data = data, .producer = producer,
                       .context = context};
    if (!name || !valid_utf8(name))
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor name is %s",
                        name ? "not valid UTF-8" : "NULL");
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor '%s' added twice", name);
    if (n_dims < 1 || n_dims > LB_MAX_DIMS || !ne)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %d is not in "
                        "1..%d", name, n_dims, LB_MAX_DIMS);
    for (int d = 0; d < LB_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    if (!lb_type_get((uint32_t)type) || !lb_tensor_bytes(type, n_dims, t.ne, &t.nbytes) ||
        t.nbytes > SIZE_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor '%s': shape [%lld, %lld, %lld, "
                        "%lld] does not fit type %d", name, (long long)t.ne[0],
                        (long long)t.ne[1], (long long)t.ne[2], (long long)t.ne[3], (int)type);
    if (!producer && !data && t.nbytes > 0)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    t.name_len = strlen(name);
    if (!reserve((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors) ||
        !(t.name = lb_strndup(name, (size_t)t.name_len)))
        return lb_nomem("gguf writer: out of memory adding tensor '%s'", name);
    w->tensors[w->n_tensors++] = t;
    return LB_OK;
}

lb_status lb_gguf_writer_add_tensor(lb_gguf_writer *w, const char *name, lb_type type,
                                    int n_dims, const int64_t *ne, const void *data)
{
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

lb_status lb_gguf_writer_add_tensor_producer(lb_gguf_writer *w, const char *name, lb_type type,
                                             int n_dims, const int64_t *ne,
                                             lb_gguf_tensor_producer producer, void *context)
{
    if (!producer)
        return lb_error(LB_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL producer",
                        name ? name : "(null)");
    return add_tensor(w, name, type, n_dims, ne, NULL, producer, context);
}

static lb_status write_u32(lb_atomic_file *f, uint32_t v)
{
    uint8_t b[4];
    lb_le_store32(b, v);
    return lb_atomic_file_write(f, b, sizeof b);
}

static lb_status write_u64(lb_atomic_file *f, uint64_t v)
{
    uint8_t b[8];
    lb_le_store64(b, v);
    return lb_atomic_file_write(f, b, sizeof b);
}

static lb_status write_string(lb_atomic_file *f, const char *s, uint64_t len)
{
    lb_status status = write_u64(f, len);
    return status != LB_OK ? status : lb_atomic_file_write(f, s, (size_t)len);
}

/* Zero bytes up to the next multiple of the alignment. */
static lb_status write_padding(lb_atomic_file *f, uint32_t alignment)
{
    uint64_t at = lb_atomic_file_offset(f);
    return lb_atomic_file_write_zeros(f, (size_t)((alignment - at % alignment) % alignment));
}

static lb_status write_header(const lb_gguf_writer *w, lb_atomic_file *f, const char *path)
{
    bool auto_alignment = w->alignment != LB_GGUF_DEFAULT_ALIGNMENT && !w->alignment_set;
    lb_status status;
    if ((status = lb_atomic_file_write(f, "GGUF", 4)) != LB_OK ||
        (status = write_u32(f, 3)) != LB_OK ||
        (status = write_u64(f, (uint64_t)w->n_tensors)) != LB_OK ||
        (status = write_u64(f, (uint64_t)w->n_kvs + (auto_alignment ? 1 : 0))) != LB_OK)
        return status;
    if (auto_alignment &&
        ((status = write_string(f, ALIGNMENT_KEY, strlen(ALIGNMENT_KEY))) != LB_OK ||
         (status = write_u32(f, LB_GGUF_UINT32)) != LB_OK ||
         (status = write_u32(f, w->alignment)) != LB_OK))
        return status;
    for (int64_t i = 0; i < w->n_kvs; i++) {
        const writer_kv *kv = &w->kvs[i];
        if ((status = write_string(f, kv->key, kv->key_len)) != LB_OK ||
            (status = lb_atomic_file_write(f, kv->bytes, (size_t)kv->nbytes)) != LB_OK)
            return status;
    }
    /* Offsets are the aligned running total, as llama.cpp requires. */
    uint64_t offset = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        if ((status = write_string(f, t->name, t->name_len)) != LB_OK ||
            (status = write_u32(f, (uint32_t)t->n_dims)) != LB_OK)
            return status;
        for (int d = 0; d < t->n_dims; d++)
            if ((status = write_u64(f, (uint64_t)t->ne[d])) != LB_OK)
                return status;
        if ((status = write_u32(f, (uint32_t)t->type)) != LB_OK ||
            (status = write_u64(f, offset)) != LB_OK)
            return status;
        if (!lb_size_add(offset, t->nbytes, &offset) ||
            !lb_size_align(offset, w->alignment, &offset))
            return lb_error(LB_ERR_INVALID_ARG, "%s: tensor data size overflows", path);
    }
    return write_padding(f, w->alignment);
}

lb_status lb_gguf_writer_write(lb_gguf_writer *w, const char *path)
{
    lb_atomic_file *f = NULL;
    void *buffer = NULL;
    lb_status status = lb_atomic_file_open(&f, path);
    if (status != LB_OK)
        return status;
    if ((status = write_header(w, f, path)) != LB_OK)
        goto fail;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        const void *src = t->data;
        if (t->producer) {
            /* Zeroed so that a producer that leaves bytes unset still gives reproducible
             * output; one tensor at a time keeps the writer streaming. */
            if (!(buffer = lb_calloc(1, (size_t)t->nbytes))) {
                status = lb_error(LB_ERR_NOMEM, "%s: out of memory for tensor '%s' (%llu "
                                  "bytes)", path, t->name, (unsigned long long)t->nbytes);
                goto fail;
            }
            status = t->producer(t->context, i, buffer, t->nbytes);
            if (status != LB_OK) {
                lb_error_prefix(status, "%s: tensor '%s': ", path, t->name);
                goto fail;
            }
            src = buffer;
        }
        if ((status = lb_atomic_file_write(f, src, (size_t)t->nbytes)) != LB_OK ||
            (status = write_padding(f, w->alignment)) != LB_OK)
            goto fail;
        lb_free(buffer);
        buffer = NULL;
    }
    return lb_atomic_file_commit(&f);
fail:
    lb_free(buffer);
    lb_atomic_file_abort(&f);
    return status;
}
