/* imatrix files: the in-memory data, and llama.cpp's GGUF and legacy layouts read and written. */
#include "formats/imatrix_file.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "formats/atomic_file_internal.h"
#include "formats/cursor_internal.h"
#include "formats/gguf.h"
#include "formats/mapped_file_internal.h"

#define KEY_TYPE "general.type"
#define KEY_DATASETS "imatrix.datasets"
#define KEY_CHUNK_COUNT "imatrix.chunk_count"
#define KEY_CHUNK_SIZE "imatrix.chunk_size"

/* ggml's GGML_MAX_NAME is 64 bytes with the NUL: longer tensor names fail llama.cpp's reader. */
#define GGUF_TENSOR_NAME_MAX 63
/* Smallest legacy entry: name length, one name byte, ncall, nval, one value. */
#define LEGACY_ENTRY_MIN_BYTES 17
/* Counts above 2^53 are not all integers in a double; none is real. */
#define COUNT_MAX 9007199254740992.0

/* Tensor name suffixes of the GGUF format, in the order their groups are sorted. */
enum { KIND_SUM2, KIND_COUNTS, KIND_SUM, N_KINDS };
static const char *const kind_suffix[N_KINDS] = {".in_sum2", ".counts", ".in_sum"};

/* ---- entries ---- */

static void entry_clear(lb_imatrix_entry *e)
{
    lb_free(e->name);
    lb_free(e->sum_sq);
    lb_free(e->counts);
    memset(e, 0, sizeof *e);
}

/* Allocates an entry's arrays (zeroed) and takes a copy of name[0..name_len). */
static lb_status entry_init(lb_imatrix_entry *e, const char *name, size_t name_len,
                            int64_t n_per_row, int64_t n_mat)
{
    uint64_t n;
    memset(e, 0, sizeof *e);
    if (!lb_size_mul((uint64_t)n_per_row, (uint64_t)n_mat, &n) ||
        n > SIZE_MAX / sizeof(double))
        return LB_ERR_NOMEM;
    e->name = lb_strndup(name, name_len);
    e->sum_sq = lb_calloc((size_t)n, sizeof *e->sum_sq);
    e->counts = lb_calloc((size_t)n_mat, sizeof *e->counts);
    if (!e->name || !e->sum_sq || !e->counts) {
        entry_clear(e);
        return LB_ERR_NOMEM;
    }
    e->n_per_row = n_per_row;
    e->n_mat = n_mat;
    return LB_OK;
}

lb_status lb_imatrix_create(lb_imatrix **out)
{
    if (!out)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_create: NULL out");
    *out = lb_calloc(1, sizeof **out);
    if (!*out)
        return lb_nomem("imatrix: out of memory for an empty importance matrix");
    return LB_OK;
}

void lb_imatrix_free(lb_imatrix **m)
{
    if (!m || !*m)
        return;
    lb_imatrix *x = *m;
    for (int64_t i = 0; i < x->n_entries; i++)
        entry_clear(&x->entries[i]);
    lb_free(x->entries);
    for (int64_t i = 0; i < x->n_datasets; i++)
        lb_free(x->datasets[i]);
    lb_free(x->datasets);
    lb_free(x);
    *m = NULL;
}

/* Index of `name` in the sorted entries, or -1 with *insert_at where it would go. */
static int64_t find_index(const lb_imatrix *m, const char *name, int64_t *insert_at)
{
    int64_t lo = 0, hi = m->n_entries;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->entries[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (insert_at)
        *insert_at = lo;
    return -1;
}

const lb_imatrix_entry *lb_imatrix_find(const lb_imatrix *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int64_t i = find_index(m, name, NULL);
    return i < 0 ? NULL : &m->entries[i];
}

lb_status lb_imatrix_insert(lb_imatrix *m, const char *name, int64_t n_per_row, int64_t n_mat,
                            lb_imatrix_entry **out, bool *created)
{
    int64_t at = 0, i;
    if (!m || !name || !name[0] || !out || !created || n_per_row < 1 || n_mat < 1)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_insert: NULL or empty argument, or a "
                        "shape below 1 x 1");
    if ((i = find_index(m, name, &at)) >= 0) {
        *out = &m->entries[i];
        *created = false;
        return LB_OK;
    }
    lb_imatrix_entry e;
    if (entry_init(&e, name, strlen(name), n_per_row, n_mat) != LB_OK)
        return lb_nomem("imatrix: out of memory for '%s' (%lld x %lld values)",
                        name, (long long)n_per_row, (long long)n_mat);
    lb_imatrix_entry *grown =
        lb_realloc(m->entries, (size_t)(m->n_entries + 1) * sizeof *m->entries);
    if (!grown) {
        entry_clear(&e);
        return lb_nomem("imatrix: out of memory for '%s'", name);
    }
    m->entries = grown;
    memmove(&m->entries[at + 1], &m->entries[at],
            (size_t)(m->n_entries - at) * sizeof *m->entries);
    m->entries[at] = e;
    m->n_entries++;
    *out = &m->entries[at];
    *created = true;
    return LB_OK;
}

lb_status lb_imatrix_append_dataset(lb_imatrix *m, const char *name, size_t len)
{
    char *copy = lb_strndup(name, len);
    char **grown = copy ? lb_realloc(m->datasets, (size_t)(m->n_datasets + 1) * sizeof *grown)
                        : NULL;
    if (!grown) {
        lb_free(copy);
        return lb_nomem("imatrix: out of memory for a dataset name");
    }
    m->datasets = grown;
    m->datasets[m->n_datasets++] = copy;
    return LB_OK;
}

lb_imatrix_format lb_imatrix_format_for_path(const char *path)
{
    size_t len = path ? strlen(path) : 0;
    static const char ext[] = ".dat";
    if (len < 4)
        return LB_IMATRIX_GGUF;
    for (size_t i = 0; i < 4; i++)
        if (tolower((unsigned char)path[len - 4 + i]) != ext[i])
            return LB_IMATRIX_GGUF;
    return LB_IMATRIX_LEGACY;
}

/* ---- reading: shared ---- */

/* Sets the entry named in messages; names are raw file bytes here, so every byte outside
 * printable ASCII is escaped. */
static void set_where(lb_cursor *r, const char *kind, int64_t index, const char *name, uint64_t len)
{
    char shown[LB_CURSOR_SHOWN_BYTES];
    lb_cursor_show_bytes(shown, sizeof shown, name ? name : "", name ? len : 0);
    lb_cursor_set_where(r, kind, index, name || index < 0 ? shown : NULL);
}

/* A sum of squares read from a file: finite and not negative. */
static lb_status check_sum(const lb_cursor *r, float v, uint64_t offset, const char *field,
                           int64_t index)
{
    if (isfinite(v) && v >= 0.0f)
        return LB_OK;
    return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, offset, field,
                          "value %lld is %g; a sum of squares is finite and not negative",
                          (long long)index, (double)v);
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const lb_imatrix_entry *)a)->name, ((const lb_imatrix_entry *)b)->name);
}

/* ---- reading: legacy ---- */

static lb_status legacy_read_entry(lb_cursor *r, lb_imatrix_entry *e, int64_t index,
                                   uint64_t *name_at)
{
    int32_t len, ncall, nval;
    uint64_t at;
    lb_status status;
    set_where(r, "entry", index, NULL, 0);
    at = r->pos;
    if ((status = lb_cursor_i32(r, "name length", &len)) != LB_OK)
        return status;
    if (len < 1)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, at, "name length", "%d (%s)", (int)len,
                              len == 0 ? "empty name" : "negative");
    const uint8_t *bytes;
    *name_at = r->pos;
    if ((status = lb_cursor_bytes(r, (uint64_t)len, "name", &bytes)) != LB_OK)
        return status;
    const char *name = (const char *)bytes;
    if (memchr(name, '\0', (size_t)len))
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, *name_at, "name",
                              "the name contains a NUL byte");
    set_where(r, "entry", index, name, (uint64_t)len);
    at = r->pos;
    if ((status = lb_cursor_i32(r, "ncall", &ncall)) != LB_OK)
        return status;
    if (ncall < 0)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, at, "ncall", "ncall %d is negative",
                              (int)ncall);
    at = r->pos;
    if ((status = lb_cursor_i32(r, "nval", &nval)) != LB_OK)
        return status;
    if (nval < 1)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, at, "nval", "nval %d is not positive",
                              (int)nval);
    /* Bounded by the file before anything is allocated: nval < 2^31, so no overflow. */
    const uint64_t values_at = r->pos;
    const uint8_t *values;
    if ((status = lb_cursor_bytes(r, (uint64_t)nval * 4, "values", &values)) != LB_OK)
        return status;
    for (int32_t j = 0; j < nval; j++) {
        uint64_t offset = 4 * (uint64_t)j;
        if ((status = check_sum(r, lb_le_load_f32(values + offset), values_at + offset, "values",
                                j)) != LB_OK)
            return status;
    }
    if (entry_init(e, name, (size_t)len, nval, 1) != LB_OK)
        return lb_cursor_fail(r, LB_ERR_NOMEM, at, "nval", "out of memory for %d values",
                              (int)nval);
    for (int32_t j = 0; j < nval; j++)
        e->sum_sq[j] = lb_le_load_f32(values + 4 * (uint64_t)j);
    /* quantize divides by ncall, or takes the values as they are when it is 0. */
    e->counts[0] = ncall > 0 ? ncall : 1;
    return LB_OK;
}

/* The optional trailer: chunk count, then the dataset name. */
static lb_status legacy_read_trailer(lb_cursor *r, lb_imatrix *m)
{
    int32_t chunks, len;
    uint64_t at = r->pos;
    lb_status status;
    set_where(r, NULL, 0, NULL, 0);
    if (r->pos == r->size)
        return LB_OK; /* the first legacy files end after the entries */
    if ((status = lb_cursor_i32(r, "chunk count", &chunks)) != LB_OK)
        return status;
    if (chunks < 0)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, at, "chunk count", "%d is negative",
                              (int)chunks);
    m->chunk_count = chunks;
    if (r->pos == r->size)
        return LB_OK;
    at = r->pos;
    if ((status = lb_cursor_i32(r, "dataset name length", &len)) != LB_OK)
        return status;
    if (len < 0)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, at, "dataset name length", "%d is negative",
                              (int)len);
    const uint64_t name_at = r->pos;
    const uint8_t *bytes;
    if ((status = lb_cursor_bytes(r, (uint64_t)len, "dataset name", &bytes)) != LB_OK)
        return status;
    const char *name = (const char *)bytes;
    if (len > 0 && memchr(name, '\0', (size_t)len))
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, name_at, "dataset name",
                              "the name contains a NUL byte");
    if (len > 0 && lb_imatrix_append_dataset(m, name, (size_t)len) != LB_OK)
        return lb_cursor_fail(r, LB_ERR_NOMEM, name_at, "dataset name", "out of memory");
    if (r->pos != r->size)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, r->pos, "end of file",
                              "%llu unexpected bytes after the dataset name",
                              (unsigned long long)(r->size - r->pos));
    return LB_OK;
}

/* Rejects a repeated name (reporting the later one) and sorts the entries by name. */
static lb_status sort_unique(lb_cursor *r, lb_imatrix *m, const uint64_t *name_at, const char *kind)
{
    int64_t later = -1, first = -1;
    lb_name_ref *refs = lb_malloc((size_t)m->n_entries * sizeof *refs + 1);
    if (!refs)
        return lb_cursor_fail(r, LB_ERR_NOMEM, 0, "entries", "out of memory");
    for (int64_t i = 0; i < m->n_entries; i++)
        refs[i] = (lb_name_ref){m->entries[i].name, i};
    lb_find_repeated_name(refs, m->n_entries, &later, &first);
    lb_free(refs);
    if (later >= 0) {
        const char *name = m->entries[later].name;
        set_where(r, kind, later, name, strlen(name));
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, name_at[later], "name",
                              "duplicate of %s[%lld]", kind, (long long)first);
    }
    qsort(m->entries, (size_t)m->n_entries, sizeof *m->entries, compare_entries);
    return LB_OK;
}

static lb_status legacy_parse(lb_cursor *r, lb_imatrix *m)
{
    int32_t n_entries;
    uint64_t *name_at = NULL;
    lb_status status = lb_cursor_i32(r, "n_entries", &n_entries);
    if (status != LB_OK)
        return status;
    if (n_entries < 1)
        return lb_cursor_fail(
            r, LB_ERR_CORRUPT_FILE, 0, "n_entries",
            "%d entries (a legacy imatrix has at least one; is this an imatrix file?)",
            (int)n_entries);
    if ((uint64_t)n_entries > (r->size - r->pos) / LEGACY_ENTRY_MIN_BYTES)
        return lb_cursor_fail(
            r, LB_ERR_CORRUPT_FILE, 0, "n_entries",
            "%d entries cannot fit in the %llu bytes after the count (truncated file, "
            "corrupt count, or not an imatrix file)",
            (int)n_entries, (unsigned long long)(r->size - r->pos));
    m->entries = lb_calloc((size_t)n_entries, sizeof *m->entries);
    name_at = lb_malloc((size_t)n_entries * sizeof *name_at);
    if (!m->entries || !name_at) {
        lb_free(name_at);
        return lb_cursor_fail(r, LB_ERR_NOMEM, 0, "n_entries", "out of memory");
    }
    for (int32_t i = 0; i < n_entries; i++) {
        if ((status = legacy_read_entry(r, &m->entries[i], i, &name_at[i])) != LB_OK)
            goto done;
        m->n_entries = i + 1;
    }
    if ((status = legacy_read_trailer(r, m)) != LB_OK)
        goto done;
    status = sort_unique(r, m, name_at, "entry");
done:
    lb_free(name_at);
    return status;
}

/* ---- reading: GGUF ---- */

/* Offset of the length-prefixed string `str` in the GGUF header, for messages only (lb_gguf
 * keeps no offsets): the first occurrence for a metadata key, the last one for a tensor
 * name (tensor infos follow all metadata). */
static uint64_t header_offset(const lb_cursor *r, const lb_gguf *g, const char *str, bool last)
{
    const uint64_t len = strlen(str), end = g->data_offset < r->size ? g->data_offset : r->size;
    uint64_t found = 24;
    for (uint64_t at = 24; at + 8 + len <= end; at++) {
        if (lb_le_load32(r->data + at) == (uint32_t)len && lb_le_load32(r->data + at + 4) == 0 &&
            memcmp(r->data + at + 8, str, len) == 0) {
            found = at;
            if (!last)
                break;
        }
    }
    return found;
}

static uint64_t key_offset(const lb_cursor *r, const lb_gguf *g, const char *key)
{
    return header_offset(r, g, key, false);
}

static uint64_t info_offset(const lb_cursor *r, const lb_gguf *g, const lb_gguf_tensor_info *t)
{
    return header_offset(r, g, t->name, true);
}

/* A non-negative integer metadata value of any integer type. */
static lb_status kv_count(lb_cursor *r, const lb_gguf *g, const char *key, int64_t *out)
{
    const lb_gguf_kv *kv = lb_gguf_find_kv(g, key);
    const lb_gguf_value *v;
    int64_t x;
    if (!kv)
        return LB_OK; /* stays 0 */
    v = &kv->value;
    switch (v->type) {
    case LB_GGUF_UINT8: x = v->v.u8; break;
    case LB_GGUF_INT8: x = v->v.i8; break;
    case LB_GGUF_UINT16: x = v->v.u16; break;
    case LB_GGUF_INT16: x = v->v.i16; break;
    case LB_GGUF_UINT32: x = v->v.u32; break;
    case LB_GGUF_INT32: x = v->v.i32; break;
    case LB_GGUF_INT64: x = v->v.i64; break;
    case LB_GGUF_UINT64:
        x = v->v.u64 > (uint64_t)INT64_MAX ? -1 : (int64_t)v->v.u64;
        break;
    default:
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, key_offset(r, g, key), key,
                              "type %s, expected an integer (UINT32)", lb_gguf_type_name(v->type));
    }
    if (x < 0)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, key_offset(r, g, key), key,
                              "value is negative or past INT64_MAX");
    *out = x;
    return LB_OK;
}

static lb_status gguf_read_metadata(lb_cursor *r, const lb_gguf *g, lb_imatrix *m)
{
    const lb_gguf_kv *kv = lb_gguf_find_kv(g, KEY_TYPE);
    lb_status status;
    if (kv) {
        const lb_gguf_value *v = &kv->value;
        if (v->type != LB_GGUF_STRING || v->v.str.len != 7 ||
            memcmp(v->v.str.data, "imatrix", 7) != 0) {
            char shown[LB_CURSOR_SHOWN_BYTES] = "";
            if (v->type == LB_GGUF_STRING)
                lb_cursor_show_bytes(shown, sizeof shown, v->v.str.data, v->v.str.len);
            return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, key_offset(r, g, KEY_TYPE), KEY_TYPE,
                                  "%s '%s', expected \"imatrix\" (not an imatrix file)",
                                  lb_gguf_type_name(v->type), shown);
        }
    }
    if ((kv = lb_gguf_find_kv(g, KEY_DATASETS)) != NULL) {
        const lb_gguf_value *v = &kv->value;
        if (v->type != LB_GGUF_ARRAY || v->v.arr.elem_type != LB_GGUF_STRING)
            return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, key_offset(r, g, KEY_DATASETS),
                                  KEY_DATASETS, "type %s, expected an array of strings",
                                  v->type == LB_GGUF_ARRAY ? "array of non-strings"
                                                           : lb_gguf_type_name(v->type));
        for (uint64_t i = 0; i < v->v.arr.count; i++) {
            const lb_gguf_string *s = &v->v.arr.strings[i];
            if (s->len > 0 && memchr(s->data, '\0', (size_t)s->len))
                return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, key_offset(r, g, KEY_DATASETS),
                                      KEY_DATASETS, "string %llu contains a NUL byte",
                                      (unsigned long long)i);
            if (s->len > 0 && lb_imatrix_append_dataset(m, s->data, (size_t)s->len) != LB_OK)
                return lb_cursor_fail(r, LB_ERR_NOMEM, key_offset(r, g, KEY_DATASETS), KEY_DATASETS,
                                      "out of memory");
        }
    }
    if ((status = kv_count(r, g, KEY_CHUNK_COUNT, &m->chunk_count)) != LB_OK)
        return status;
    return kv_count(r, g, KEY_CHUNK_SIZE, &m->chunk_size);
}

/* One imatrix tensor: its weight name is name[0..base_len). */
typedef struct tensor_ref {
    const char *name;
    size_t base_len;
    int kind;
    int64_t index;
} tensor_ref;

static int compare_tensor_refs(const void *a, const void *b)
{
    const tensor_ref *x = a, *y = b;
    size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    if (x->base_len != y->base_len)
        return x->base_len < y->base_len ? -1 : 1;
    return x->kind - y->kind;
}

static bool same_base(const tensor_ref *a, const tensor_ref *b)
{
    return a->base_len == b->base_len && memcmp(a->name, b->name, a->base_len) == 0;
}

static bool has_suffix(const char *name, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(name + len - n, suffix, n) == 0;
}

static uint64_t tensor_data_at(const lb_gguf *g, const lb_gguf_tensor_info *t)
{
    return g->data_offset + t->offset;
}

static lb_status check_f32(lb_cursor *r, const lb_gguf *g, const lb_gguf_tensor_info *t)
{
    if (t->type == LB_TYPE_F32)
        return LB_OK;
    const lb_type_info *info = lb_type_get((uint32_t)t->type);
    return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, info_offset(r, g, t), "type",
                          "type %s, expected F32", info ? info->name : "unknown");
}

/* Builds the entry of one weight from its in_sum2 / counts (/ in_sum) tensors. */
static lb_status gguf_read_entry(lb_cursor *r, const lb_gguf *g, const tensor_ref *group[N_KINDS],
                                 lb_imatrix_entry *e)
{
    const tensor_ref *any = group[KIND_SUM2] ? group[KIND_SUM2]
                            : group[KIND_COUNTS] ? group[KIND_COUNTS] : group[KIND_SUM];
    const char *base = any->name;
    size_t base_len = any->base_len;
    lb_status status;
    set_where(r, "tensor", -1, any->name, strlen(any->name));
    if (base_len == 0)
        return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, info_offset(r, g, &g->tensors[any->index]),
                              "name", "empty weight name before '%s'", kind_suffix[any->kind]);
    for (int k = 0; k < KIND_SUM; k++)
        if (!group[k])
            return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE,
                                  info_offset(r, g, &g->tensors[any->index]), "name",
                                  "no matching '<weight>%s' tensor (llama.cpp needs both "
                                  "in_sum2 and counts)",
                                  kind_suffix[k]);
    const lb_gguf_tensor_info *sums = &g->tensors[group[KIND_SUM2]->index];
    const lb_gguf_tensor_info *counts = &g->tensors[group[KIND_COUNTS]->index];
    set_where(r, "tensor", -1, sums->name, strlen(sums->name));
    if ((status = check_f32(r, g, sums)) != LB_OK)
        return status;
    if (sums->ne[2] != 1 || sums->ne[3] != 1 || sums->ne[0] < 1 || sums->ne[1] < 1)
        return lb_cursor_fail(
            r, LB_ERR_CORRUPT_FILE, info_offset(r, g, sums), "shape",
            "[%lld, %lld, %lld, %lld], expected [n_per_row, n_mat] with both >= 1",
            (long long)sums->ne[0], (long long)sums->ne[1], (long long)sums->ne[2],
            (long long)sums->ne[3]);
    const int64_t n_per_row = sums->ne[0], n_mat = sums->ne[1];
    set_where(r, "tensor", -1, counts->name, strlen(counts->name));
    if ((status = check_f32(r, g, counts)) != LB_OK)
        return status;
    if (counts->ne[0] * counts->ne[1] * counts->ne[2] * counts->ne[3] != n_mat)
        return lb_cursor_fail(
            r, LB_ERR_CORRUPT_FILE, info_offset(r, g, counts), "shape",
            "[%lld, %lld, %lld, %lld] does not hold the %lld counts of the in_sum2 "
            "matrices",
            (long long)counts->ne[0], (long long)counts->ne[1], (long long)counts->ne[2],
            (long long)counts->ne[3], (long long)n_mat);
    if (group[KIND_SUM]) {
        const lb_gguf_tensor_info *s = &g->tensors[group[KIND_SUM]->index];
        set_where(r, "tensor", -1, s->name, strlen(s->name));
        if ((status = check_f32(r, g, s)) != LB_OK)
            return status;
        if (s->nbytes != sums->nbytes)
            return lb_cursor_fail(r, LB_ERR_CORRUPT_FILE, info_offset(r, g, s), "shape",
                                  "%llu bytes, in_sum2 has %llu", (unsigned long long)s->nbytes,
                                  (unsigned long long)sums->nbytes);
    }
    /* Tensor data lies inside the file (lb_gguf checked it); unaligned, so read bytewise. */
    const uint8_t *sum_bytes = sums->data, *count_bytes = counts->data;
    const uint64_t n = (uint64_t)n_per_row * (uint64_t)n_mat;
    set_where(r, "tensor", -1, sums->name, strlen(sums->name));
    for (uint64_t j = 0; j < n; j++)
        if ((status = check_sum(r, lb_le_load_f32(sum_bytes + 4 * j),
                                tensor_data_at(g, sums) + 4 * j, "data", (int64_t)j)) != LB_OK)
            return status;
    set_where(r, "tensor", -1, counts->name, strlen(counts->name));
    for (int64_t j = 0; j < n_mat; j++) {
        float c = lb_le_load_f32(count_bytes + 4 * j);
        if (!(c >= 0.0f && (double)c <= COUNT_MAX))
            return lb_cursor_fail(
                r, LB_ERR_CORRUPT_FILE, tensor_data_at(g, counts) + 4 * (uint64_t)j, "data",
                "count %lld is %g, expected a number in 0..2^53", (long long)j, (double)c);
    }
    if (entry_init(e, base, base_len, n_per_row, n_mat) != LB_OK)
        return lb_cursor_fail(r, LB_ERR_NOMEM, tensor_data_at(g, sums), "data", "out of memory");
    for (uint64_t j = 0; j < n; j++)
        e->sum_sq[j] = lb_le_load_f32(sum_bytes + 4 * j);
    for (int64_t j = 0; j < n_mat; j++)
        e->counts[j] = llround((double)lb_le_load_f32(count_bytes + 4 * j));
    return LB_OK;
}

static lb_status gguf_read_entries(lb_cursor *r, const lb_gguf *g, lb_imatrix *m)
{
    tensor_ref *refs = lb_malloc((size_t)g->n_tensors * sizeof *refs + 1);
    int64_t n_refs = 0, n_groups = 0;
    lb_status status = LB_OK;
    if (!refs)
        return lb_cursor_fail(r, LB_ERR_NOMEM, 8, "n_tensors", "out of memory");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const char *name = g->tensors[i].name;
        size_t len = strlen(name);
        for (int k = 0; k < N_KINDS; k++) {
            if (has_suffix(name, len, kind_suffix[k])) {
                refs[n_refs++] = (tensor_ref){name, len - strlen(kind_suffix[k]), k, i};
                break;
            }
        }
    }
    qsort(refs, (size_t)n_refs, sizeof *refs, compare_tensor_refs);
    for (int64_t i = 0; i < n_refs; i++)
        if (i == 0 || !same_base(&refs[i], &refs[i - 1]))
            n_groups++;
    if (n_groups == 0) {
        lb_free(refs);
        set_where(r, NULL, 0, NULL, 0);
        return lb_cursor_fail(
            r, LB_ERR_CORRUPT_FILE, 8, "n_tensors",
            "no imatrix data (no tensor named '<weight>.in_sum2'; is this an imatrix "
            "file?)");
    }
    m->entries = lb_calloc((size_t)n_groups, sizeof *m->entries);
    if (!m->entries) {
        lb_free(refs);
        return lb_cursor_fail(r, LB_ERR_NOMEM, 8, "n_tensors", "out of memory");
    }
    for (int64_t i = 0; i < n_refs;) {
        const tensor_ref *group[N_KINDS] = {NULL, NULL, NULL};
        int64_t j = i;
        /* Names are unique (lb_gguf checked), so each kind occurs at most once per weight. */
        for (; j < n_refs && same_base(&refs[j], &refs[i]); j++)
            group[refs[j].kind] = &refs[j];
        if ((status = gguf_read_entry(r, g, group, &m->entries[m->n_entries])) != LB_OK)
            break;
        m->n_entries++;
        i = j;
    }
    lb_free(refs);
    return status;
}

static lb_status gguf_parse(lb_cursor *r, lb_imatrix *m)
{
    lb_gguf *g = NULL;
    lb_status status = lb_gguf_open_memory(&g, r->path, r->data, r->size);
    if (status != LB_OK)
        return status;
    if ((status = gguf_read_metadata(r, g, m)) == LB_OK)
        status = gguf_read_entries(r, g, m);
    lb_gguf_close(&g);
    return status;
}

static lb_status parse(lb_imatrix **out, const char *path, const uint8_t *data, uint64_t size)
{
    lb_cursor r;
    lb_cursor_init(&r, path, data, size);
    lb_imatrix *m = NULL;
    lb_status status;
    if ((status = lb_imatrix_create(&m)) != LB_OK)
        return lb_error_prefix(status, "%s: ", path);
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0)
        status = gguf_parse(&r, m);
    else
        status = legacy_parse(&r, m);
    if (status != LB_OK) {
        lb_imatrix_free(&m);
        return status;
    }
    *out = m;
    return LB_OK;
}

lb_status lb_imatrix_read(lb_imatrix **out, const char *path)
{
    lb_mapped_file *file = NULL;
    if (!out || !path)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_read: NULL argument");
    *out = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    static const uint8_t empty[1] = {0};
    status = parse(out, file->path, file->data ? file->data : empty, file->size);
    lb_mapped_file_close(&file);
    return status;
}

lb_status lb_imatrix_read_memory(lb_imatrix **out, const char *name, const void *data,
                                 size_t size)
{
    if (!out)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_read_memory: NULL out");
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL buffer of %llu bytes", name,
                        (unsigned long long)size);
    static const uint8_t empty[1] = {0};
    return parse(out, name, data ? data : empty, size);
}

/* ---- writing ---- */

/* The legacy ncall of an entry (see imatrix.h): 0 when every count is 0. */
static int64_t legacy_ncall(const lb_imatrix *m, const lb_imatrix_entry *e)
{
    int64_t max = 0;
    for (int64_t i = 0; i < e->n_mat; i++)
        if (e->counts[i] > max)
            max = e->counts[i];
    if (m->chunk_size > 0)
        return max / m->chunk_size + (max % m->chunk_size != 0);
    return max;
}

/* Value i of an entry as the legacy format stores it. */
static double legacy_value(const lb_imatrix_entry *e, int64_t ncall, int64_t i)
{
    int64_t count = e->counts[i / e->n_per_row];
    if (count == 0)
        return (double)ncall; /* llama.cpp stores value 1, count 1 for an unreached matrix */
    return e->sum_sq[i] / (double)count * (double)ncall;
}

static bool fits_f32(double v)
{
    return isfinite(v) && fabs(v) <= FLT_MAX;
}

/* Checks what the in-memory structure promises and what `format` can hold. */
static lb_status check_writable(const lb_imatrix *m, const char *path, lb_imatrix_format format)
{
    int64_t with_data = 0;
    if (m->n_entries < 1 || !m->entries)
        return lb_error(LB_ERR_INVALID_ARG, "%s: the imatrix has no entries (llama.cpp rejects "
                        "an empty imatrix)", path);
    if (m->n_datasets < 0 || (m->n_datasets > 0 && !m->datasets))
        return lb_error(LB_ERR_INVALID_ARG, "%s: %lld datasets without names", path,
                        (long long)m->n_datasets);
    if (m->chunk_count < 0 || m->chunk_size < 0 ||
        m->chunk_count > (format == LB_IMATRIX_GGUF ? (int64_t)UINT32_MAX : INT32_MAX) ||
        (format == LB_IMATRIX_GGUF && m->chunk_size > (int64_t)UINT32_MAX))
        return lb_error(LB_ERR_INVALID_ARG, "%s: chunk_count %lld / chunk_size %lld do not fit "
                        "the format's %s fields", path, (long long)m->chunk_count,
                        (long long)m->chunk_size,
                        format == LB_IMATRIX_GGUF ? "uint32" : "int32");
    for (int64_t i = 0; i < m->n_datasets; i++)
        if (!m->datasets[i] || !m->datasets[i][0] ||
            (format == LB_IMATRIX_LEGACY && strlen(m->datasets[i]) > INT32_MAX))
            return lb_error(LB_ERR_INVALID_ARG, "%s: dataset %lld is NULL, empty or too long",
                            path, (long long)i);
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        size_t len = e->name ? strlen(e->name) : 0;
        uint64_t n;
        if (len == 0 || e->n_per_row < 1 || e->n_mat < 1 || !e->sum_sq || !e->counts ||
            !lb_size_mul((uint64_t)e->n_per_row, (uint64_t)e->n_mat, &n) ||
            (i > 0 && strcmp(m->entries[i - 1].name, e->name) >= 0))
            return lb_error(LB_ERR_INVALID_ARG, "%s: entry %lld is malformed (empty name, bad "
                            "shape, or entries not sorted and unique)", path, (long long)i);
        int64_t ncall = legacy_ncall(m, e);
        if (format == LB_IMATRIX_GGUF && len > GGUF_TENSOR_NAME_MAX - strlen(".in_sum2"))
            return lb_error(LB_ERR_INVALID_ARG, "%s: weight name '%s' is longer than %zu bytes; "
                            "'%s.in_sum2' would pass ggml's %d-byte tensor name limit", path,
                            e->name, GGUF_TENSOR_NAME_MAX - strlen(".in_sum2"), e->name,
                            GGUF_TENSOR_NAME_MAX + 1);
        if (format == LB_IMATRIX_LEGACY && (len > INT32_MAX || n > INT32_MAX || ncall > INT32_MAX))
            return lb_error(LB_ERR_INVALID_ARG, "%s: entry '%s': name length, %llu values or "
                            "ncall %lld does not fit the legacy format's int32 fields (set "
                            "chunk_size)", path, e->name, (unsigned long long)n,
                            (long long)ncall);
        for (int64_t j = 0; j < e->n_mat; j++) {
            if (e->counts[j] < 0 || (double)e->counts[j] > COUNT_MAX)
                return lb_error(LB_ERR_INVALID_ARG, "%s: entry '%s' count %lld is %lld", path,
                                e->name, (long long)j, (long long)e->counts[j]);
        }
        if (ncall == 0 && format == LB_IMATRIX_LEGACY)
            continue; /* skipped: no data */
        with_data++;
        for (uint64_t j = 0; j < n; j++) {
            double v = format == LB_IMATRIX_GGUF ? e->sum_sq[j]
                                                 : legacy_value(e, ncall, (int64_t)j);
            if (!(e->sum_sq[j] >= 0) || !fits_f32(v))
                return lb_error(LB_ERR_NUMERIC, "%s: entry '%s' value %llu (%g) is negative, "
                                "NaN or past the float32 range", path, e->name,
                                (unsigned long long)j, v);
        }
    }
    if (with_data == 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: every entry has count 0; the legacy format "
                        "skips such entries and llama.cpp rejects an empty imatrix", path);
    if (with_data > INT32_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "%s: %lld entries do not fit the legacy format",
                        path, (long long)with_data);
    return LB_OK;
}

/* Tensor 2i is entry i's in_sum2, 2i+1 its counts, as float32 little-endian. */
static lb_status produce_tensor(void *context, int64_t index, void *dst, uint64_t nbytes)
{
    const lb_imatrix *m = context;
    const lb_imatrix_entry *e = &m->entries[index / 2];
    uint8_t *out = dst;
    uint64_t n = nbytes / 4;
    for (uint64_t j = 0; j < n; j++)
        out = lb_le_store_f32(out, index % 2 == 0 ? (float)e->sum_sq[j] : (float)e->counts[j]);
    return LB_OK;
}

static lb_status write_gguf(const lb_imatrix *m, const char *path)
{
    lb_gguf_writer *w = NULL;
    static const char *const no_dataset[1] = {""};
    char name[GGUF_TENSOR_NAME_MAX + 1];
    lb_status status = lb_gguf_writer_create(&w, LB_GGUF_DEFAULT_ALIGNMENT);
    if (status != LB_OK)
        return status;
    if ((status = lb_gguf_writer_set_string(w, KEY_TYPE, "imatrix")) != LB_OK)
        goto done;
    /* quantize prints datasets[0] without checking that there is one. */
    status = m->n_datasets > 0
                 ? lb_gguf_writer_set_string_array(w, KEY_DATASETS,
                                                   (const char *const *)m->datasets, NULL,
                                                   (uint64_t)m->n_datasets)
                 : lb_gguf_writer_set_string_array(w, KEY_DATASETS, no_dataset, NULL, 1);
    if (status != LB_OK ||
        (status = lb_gguf_writer_set_u32(w, KEY_CHUNK_COUNT, (uint32_t)m->chunk_count)) !=
            LB_OK ||
        (status = lb_gguf_writer_set_u32(w, KEY_CHUNK_SIZE, (uint32_t)m->chunk_size)) != LB_OK)
        goto done;
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        /* ggml drops trailing dimensions of 1 when it writes a tensor's shape. */
        const int n_dims = e->n_mat > 1 ? 2 : 1;
        const int64_t ne_sums[2] = {e->n_per_row, e->n_mat};
        const int64_t ne_counts[2] = {1, e->n_mat};
        snprintf(name, sizeof name, "%s%s", e->name, kind_suffix[KIND_SUM2]);
        if ((status = lb_gguf_writer_add_tensor_producer(w, name, LB_TYPE_F32, n_dims, ne_sums,
                                                         produce_tensor, (void *)m)) != LB_OK)
            goto done;
        snprintf(name, sizeof name, "%s%s", e->name, kind_suffix[KIND_COUNTS]);
        if ((status = lb_gguf_writer_add_tensor_producer(w, name, LB_TYPE_F32, n_dims,
                                                         ne_counts, produce_tensor,
                                                         (void *)m)) != LB_OK)
            goto done;
    }
    status = lb_gguf_writer_write(w, path);
done:
    lb_gguf_writer_free(&w);
    return status;
}

static lb_status put_i32(lb_atomic_file *f, int64_t v)
{
    uint8_t b[4];
    lb_le_store32(b, (uint32_t)(int32_t)v);
    return lb_atomic_file_write(f, b, sizeof b);
}

static lb_status write_legacy_entry(lb_atomic_file *f, const lb_imatrix_entry *e,
                                    int64_t ncall, uint8_t *buffer)
{
    const int64_t n = e->n_per_row * e->n_mat;
    const size_t len = strlen(e->name);
    lb_status status;
    if ((status = put_i32(f, (int64_t)len)) != LB_OK ||
        (status = lb_atomic_file_write(f, e->name, len)) != LB_OK ||
        (status = put_i32(f, ncall)) != LB_OK || (status = put_i32(f, n)) != LB_OK)
        return status;
    for (int64_t j = 0; j < n; j++)
        lb_le_store_f32(buffer + 4 * j, (float)legacy_value(e, ncall, j));
    return lb_atomic_file_write(f, buffer, (size_t)n * 4);
}

static lb_status write_legacy(const lb_imatrix *m, const char *path)
{
    lb_atomic_file *f = NULL;
    uint8_t *buffer = NULL;
    int64_t n_with_data = 0, max_values = 1;
    lb_status status;
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        if (legacy_ncall(m, e) > 0) {
            n_with_data++;
            if (e->n_per_row * e->n_mat > max_values)
                max_values = e->n_per_row * e->n_mat;
        }
    }
    if (!(buffer = lb_malloc((size_t)max_values * 4)))
        return lb_nomem("%s: out of memory for the write buffer", path);
    if ((status = lb_atomic_file_open(&f, path)) != LB_OK)
        goto done;
    if ((status = put_i32(f, n_with_data)) != LB_OK)
        goto done;
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        int64_t ncall = legacy_ncall(m, e);
        if (ncall > 0 && (status = write_legacy_entry(f, e, ncall, buffer)) != LB_OK)
            goto done;
    }
    /* Trailer: chunk count, then the last dataset, as save_imatrix_legacy writes them. */
    {
        const char *dataset = m->n_datasets > 0 ? m->datasets[m->n_datasets - 1] : "";
        size_t len = strlen(dataset);
        if ((status = put_i32(f, m->chunk_count)) != LB_OK ||
            (status = put_i32(f, (int64_t)len)) != LB_OK ||
            (status = lb_atomic_file_write(f, dataset, len)) != LB_OK)
            goto done;
    }
    status = lb_atomic_file_commit(&f);
done:
    lb_atomic_file_abort(&f);
    lb_free(buffer);
    return status;
}

lb_status lb_imatrix_write(const lb_imatrix *m, const char *path, lb_imatrix_format format)
{
    if (!m || !path)
        return lb_error(LB_ERR_INVALID_ARG, "lb_imatrix_write: NULL argument");
    if (format != LB_IMATRIX_GGUF && format != LB_IMATRIX_LEGACY)
        return lb_error(LB_ERR_INVALID_ARG, "%s: unknown imatrix format %d", path, (int)format);
    lb_status status = check_writable(m, path, format);
    if (status != LB_OK)
        return status;
    return format == LB_IMATRIX_GGUF ? write_gguf(m, path) : write_legacy(m, path);
}
