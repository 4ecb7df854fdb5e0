/* GGUF: reader (v2 and v3) and writer (v3), byte-compatible with llama.cpp's gguf. */
#ifndef LB_FORMATS_GGUF_H
#define LB_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"

/* The memory-mapped file behind an opened GGUF (internal: formats/mapped_file_internal.h). */
typedef struct lb_mapped_file lb_mapped_file;

#define LB_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types (gguf_type). */
typedef enum lb_gguf_type {
    LB_GGUF_UINT8 = 0,
    LB_GGUF_INT8 = 1,
    LB_GGUF_UINT16 = 2,
    LB_GGUF_INT16 = 3,
    LB_GGUF_UINT32 = 4,
    LB_GGUF_INT32 = 5,
    LB_GGUF_FLOAT32 = 6,
    LB_GGUF_BOOL = 7,
    LB_GGUF_STRING = 8,
    LB_GGUF_ARRAY = 9,
    LB_GGUF_UINT64 = 10,
    LB_GGUF_INT64 = 11,
    LB_GGUF_FLOAT64 = 12,
} lb_gguf_type;

/* A GGUF string: bytes not NUL-terminated, may point into the mapped file. */
typedef struct lb_gguf_string {
    uint64_t len;
    const char *data;
} lb_gguf_string;

/* A metadata value. Scalars are decoded; arrays of scalars point at the raw little-endian
 * elements (use lb_gguf_array_* to read them), arrays of strings are decoded into `strings`.
 * Nested arrays are rejected by the reader (llama.cpp does not write them). */
typedef struct lb_gguf_value {
    lb_gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        lb_gguf_string str;
        struct {
            lb_gguf_type elem_type;
            uint64_t count;
            const void *data;         /* count * element size bytes (scalar elements) */
            lb_gguf_string *strings;  /* [count] when elem_type is LB_GGUF_STRING */
        } arr;
    } v;
} lb_gguf_value;

typedef struct lb_gguf_kv {
    char *key; /* NUL-terminated copy; keys are valid UTF-8 without NUL */
    lb_gguf_value value;
} lb_gguf_kv;

typedef struct lb_gguf_tensor_info {
    char *name;          /* NUL-terminated copy */
    int n_dims;          /* 1..4 */
    int64_t ne[LB_MAX_DIMS]; /* GGUF order: ne[0] is the row length; unused dims are 1 */
    lb_type type;
    uint64_t offset;     /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;    /* into the mapped file */
} lb_gguf_tensor_info;

typedef struct lb_gguf {
    lb_mapped_file *file; /* NULL when parsed from memory */
    const char *path;     /* name used in messages */
    uint32_t version;
    int64_t n_kv;
    lb_gguf_kv *kv;
    int64_t n_tensors;
    lb_gguf_tensor_info *tensors;
    uint32_t alignment;
    uint64_t data_offset; /* absolute offset of the data section */
} lb_gguf;

/* Size in bytes of one element of a scalar metadata type; 0 for STRING/ARRAY/unknown. */
LB_API size_t lb_gguf_type_size(lb_gguf_type type);
/* "UINT8", "STRING", ... or "unknown". */
LB_API const char *lb_gguf_type_name(lb_gguf_type type);

/* Opens and validates a GGUF file (memory-mapped). Every count, length, offset, dimension and
 * alignment is checked against the file before use. Errors: LB_ERR_IO, LB_ERR_CORRUPT_FILE and
 * LB_ERR_UNSUPPORTED (unknown tensor type id, big-endian file, version other than 2 or 3),
 * with a one-line message naming the file, the field and the byte offset. */
LB_API lb_status lb_gguf_open(lb_gguf **out, const char *path);

/* The same over a caller-owned buffer that must outlive the result (fuzzing, tests). */
LB_API lb_status lb_gguf_open_memory(lb_gguf **out, const char *name, const void *data,
                                     uint64_t size);

/* Takes NULL and clears the pointer. */
LB_API void lb_gguf_close(lb_gguf **gguf);

/* Lookup by key / tensor name: pointer or NULL; index or -1. */
LB_API const lb_gguf_kv *lb_gguf_find_kv(const lb_gguf *gguf, const char *key);
LB_API int64_t lb_gguf_find_tensor(const lb_gguf *gguf, const char *name);

/* Typed getters. Integer getters accept any integer type whose value fits; float getters any
 * numeric type. LB_ERR_BAD_INPUT if the key is missing (message names it), LB_ERR_CORRUPT_FILE
 * if it has an unsuitable type or value. */
LB_API lb_status lb_gguf_get_int(const lb_gguf *gguf, const char *key, int64_t *out);
LB_API lb_status lb_gguf_get_float(const lb_gguf *gguf, const char *key, double *out);
LB_API lb_status lb_gguf_get_bool(const lb_gguf *gguf, const char *key, bool *out);
LB_API lb_status lb_gguf_get_string(const lb_gguf *gguf, const char *key, lb_gguf_string *out);
LB_API lb_status lb_gguf_get_array(const lb_gguf *gguf, const char *key, lb_gguf_type elem_type,
                                   const lb_gguf_value **out);

/* Element i of a scalar array, converted; the caller checks i < count. */
LB_API int64_t lb_gguf_array_int(const lb_gguf_value *array, uint64_t i);
LB_API double lb_gguf_array_float(const lb_gguf_value *array, uint64_t i);

/* ---- writer ---- */

typedef struct lb_gguf_writer lb_gguf_writer;

/* Produces the bytes of tensor `index` (as added) into dst (nbytes long); lets the writer
 * stream tensors that are converted or quantized on the fly without holding them all. */
typedef lb_status (*lb_gguf_tensor_producer)(void *context, int64_t index, void *dst,
                                             uint64_t nbytes);

/* alignment: a power of two; written as general.alignment when not 32. */
LB_API lb_status lb_gguf_writer_create(lb_gguf_writer **out, uint32_t alignment);
LB_API void lb_gguf_writer_free(lb_gguf_writer **writer);

/* Metadata setters copy the key and value. Setting a key twice is LB_ERR_INVALID_ARG.
 * Keys are kept in the order they were first set. */
LB_API lb_status lb_gguf_writer_set_u8(lb_gguf_writer *w, const char *key, uint8_t v);
LB_API lb_status lb_gguf_writer_set_i8(lb_gguf_writer *w, const char *key, int8_t v);
LB_API lb_status lb_gguf_writer_set_u16(lb_gguf_writer *w, const char *key, uint16_t v);
LB_API lb_status lb_gguf_writer_set_i16(lb_gguf_writer *w, const char *key, int16_t v);
LB_API lb_status lb_gguf_writer_set_u32(lb_gguf_writer *w, const char *key, uint32_t v);
LB_API lb_status lb_gguf_writer_set_i32(lb_gguf_writer *w, const char *key, int32_t v);
LB_API lb_status lb_gguf_writer_set_f32(lb_gguf_writer *w, const char *key, float v);
LB_API lb_status lb_gguf_writer_set_bool(lb_gguf_writer *w, const char *key, bool v);
LB_API lb_status lb_gguf_writer_set_u64(lb_gguf_writer *w, const char *key, uint64_t v);
LB_API lb_status lb_gguf_writer_set_i64(lb_gguf_writer *w, const char *key, int64_t v);
LB_API lb_status lb_gguf_writer_set_f64(lb_gguf_writer *w, const char *key, double v);
LB_API lb_status lb_gguf_writer_set_string(lb_gguf_writer *w, const char *key, const char *v);
LB_API lb_status lb_gguf_writer_set_string_n(lb_gguf_writer *w, const char *key, const char *v,
                                             uint64_t len);
/* Array of a scalar type: `count` elements in native layout (uint8_t, int32_t, float, bool ...).
 */
LB_API lb_status lb_gguf_writer_set_array(lb_gguf_writer *w, const char *key,
                                          lb_gguf_type elem_type, const void *data,
                                          uint64_t count);
/* Array of strings; lengths may be NULL for NUL-terminated strings. */
LB_API lb_status lb_gguf_writer_set_string_array(lb_gguf_writer *w, const char *key,
                                                 const char *const *strings,
                                                 const uint32_t *lengths, uint64_t count);
/* Copies a value read by the reader (any type, arrays included). */
LB_API lb_status lb_gguf_writer_set_value(lb_gguf_writer *w, const char *key,
                                          const lb_gguf_value *value);

/* Adds a tensor whose bytes are at `data` (not copied: must stay valid until write). nbytes
 * must equal the size implied by type and shape. Duplicate names are LB_ERR_INVALID_ARG. */
LB_API lb_status lb_gguf_writer_add_tensor(lb_gguf_writer *w, const char *name, lb_type type,
                                           int n_dims, const int64_t *ne, const void *data);
/* Adds a tensor whose bytes the producer writes when the file is written. */
LB_API lb_status lb_gguf_writer_add_tensor_producer(lb_gguf_writer *w, const char *name,
                                                    lb_type type, int n_dims, const int64_t *ne,
                                                    lb_gguf_tensor_producer producer,
                                                    void *context);

/* Writes the file through a temp file + fsync + rename (formats/atomic_file_internal.h): on any error
 * the target is untouched and no temp file remains. */
LB_API lb_status lb_gguf_writer_write(lb_gguf_writer *w, const char *path);

#endif
