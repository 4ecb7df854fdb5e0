/* safetensors reader: validates the JSON header of single files and of sharded checkpoints. */
#include "formats/safetensors_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/alloc_internal.h"
#include "formats/cursor_internal.h"

/* Real headers are at most a few MB (tens of thousands of tensors); anything larger is treated
 * as corrupt rather than handed to the JSON parser. */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 << 20)
#define ST_MAX_INDEX_BYTES ((uint64_t)100 << 20)
#define ST_MAX_SHARDS 100000
#define ST_MESSAGE_BYTES 1024

/* Every dtype the safetensors specification defines. Sizes are in bits because the 4- and
 * 6-bit float types pack several elements per byte. type < 0: valid but not supported. */
typedef struct st_dtype {
    const char *name;
    int type;
    uint64_t bits;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", LB_TYPE_F32, 32},   {"F16", LB_TYPE_F16, 16},  {"BF16", LB_TYPE_BF16, 16},
    {"F64", -1, 64},            {"I8", -1, 8},             {"I16", -1, 16},
    {"I32", -1, 32},            {"I64", -1, 64},           {"U8", -1, 8},
    {"U16", -1, 16},            {"U32", -1, 32},           {"U64", -1, 64},
    {"BOOL", -1, 8},            {"F8_E4M3", -1, 8},        {"F8_E5M2", -1, 8},
    {"F8_E8M0", -1, 8},         {"F6_E2M3", -1, 6},        {"F6_E3M2", -1, 6},
    {"F4", -1, 4},              {"C64", -1, 64},
};

/* Byte range of one header entry, for the overlap check. */
typedef struct st_range {
    uint64_t begin, end;
    const char *name;
} st_range;

/* Private lookup index of lb_safetensors: tensor indices sorted by name. */
typedef struct st_name_ref {
    const char *name;
    int64_t index;
} st_name_ref;

/* Offset in the file of the quoted JSON key `key` (followed by ':') at or after text[from], so
 * that messages point near the offending entry; `base` is where text starts in the file. The
 * search is textual: a key written with escapes is not found and `base + from` comes back. */
static uint64_t key_offset(const char *text, uint64_t len, uint64_t base, uint64_t from,
                           const char *key, size_t key_len)
{
    uint64_t pos = from;
    while (key_len > 0 && pos < len) {
        const char *hit = memmem(text + pos, (size_t)(len - pos), key, key_len);
        if (!hit)
            break;
        uint64_t at = (uint64_t)(hit - text);
        uint64_t after = at + key_len;
        if (at > 0 && text[at - 1] == '"' && after < len && text[after] == '"') {
            uint64_t c = after + 1;
            while (c < len && (text[c] == ' ' || text[c] == '\t' || text[c] == '\n' ||
                               text[c] == '\r'))
                c++;
            if (c < len && text[c] == ':')
                return base + at - 1;
        }
        pos = at + 1;
    }
    return base + from;
}

static const st_dtype *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

static int compare_ranges(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int compare_name_refs(const void *a, const void *b)
{
    const st_name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* A JSON integer that fits uint64_t (jansson's json_int_t is signed 64-bit). */
static bool json_to_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Where one header is being parsed, for messages. */
typedef struct st_header {
    const char *path;
    const char *text;   /* the JSON header */
    uint64_t len;       /* its length N */
    uint64_t data_base; /* 8 + N: where the data buffer starts in the file */
    uint64_t data_size;
} st_header;

/* Appends one tensor record, growing the array geometrically. */
static lb_status push_tensor(lb_safetensors *st, int64_t *capacity, const st_header *h,
                             const lb_safetensors_tensor *t, const char *key, size_t key_len)
{
    if (st->n_tensors == *capacity) {
        int64_t grown = *capacity ? *capacity * 2 : 64;
        void *p = NULL;
        if ((uint64_t)grown <= SIZE_MAX / sizeof *st->tensors)
            p = lb_realloc(st->tensors, (size_t)grown * sizeof *st->tensors);
        if (!p)
            return lb_nomem("%s: out of memory for %lld tensors", h->path,
                            (long long)grown);
        st->tensors = p;
        *capacity = grown;
    }
    lb_safetensors_tensor *dst = &st->tensors[st->n_tensors];
    *dst = *t;
    dst->name = lb_strndup(key, key_len);
    if (!dst->name)
        return lb_nomem("%s: out of memory for tensor name '%s'", h->path, key);
    st->n_tensors++;
    return LB_OK;
}

/* Validates one "name": {"dtype", "shape", "data_offsets"} entry. Returns LB_OK with
 * *unsupported set when the entry is well formed but unusable (its message in `deferred`), so
 * that a corrupt entry later in the header still wins over an unsupported one. */
static lb_status parse_entry(const st_header *h, const char *key, size_t key_len,
                             const json_t *value, lb_safetensors_tensor *t, st_range *range,
                             bool *unsupported, char *deferred)
{
    const char *path = h->path;
    uint64_t at = key_offset(h->text, h->len, 8, 0, key, key_len);
    uint64_t rel = at - 8;
    *unsupported = false;
    if (key_len == 0 || strlen(key) != key_len)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor name at offset %llu: empty or contains "
                        "a NUL byte", path, (unsigned long long)at);
    if (!json_is_object(value))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' at offset %llu: entry is not a "
                        "JSON object", path, key, (unsigned long long)at);

    const json_t *dtype = json_object_get(value, "dtype");
    /* Point at the field when present, else at the entry (a later entry's field would
     * mislead). */
    uint64_t dtype_at = dtype ? key_offset(h->text, h->len, 8, rel, "dtype", 5) : at;
    if (!dtype || !json_is_string(dtype))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' dtype at offset %llu: %s", path,
                        key, (unsigned long long)dtype_at, dtype ? "not a string" : "missing");
    const st_dtype *dt = find_dtype(json_string_value(dtype));
    if (!dt)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' dtype at offset %llu: unknown "
                        "dtype '%s'", path, key, (unsigned long long)dtype_at,
                        json_string_value(dtype));

    const json_t *shape = json_object_get(value, "shape");
    uint64_t shape_at = shape ? key_offset(h->text, h->len, 8, rel, "shape", 5) : at;
    if (!shape || !json_is_array(shape))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' shape at offset %llu: %s", path,
                        key, (unsigned long long)shape_at, shape ? "not a list" : "missing");
    size_t n_dims = json_array_size(shape);
    uint64_t dims[LB_MAX_DIMS] = {0};
    uint64_t count = 1;
    bool overflow = false;
    for (size_t i = 0; i < n_dims; i++) {
        uint64_t d;
        if (!json_to_u64(json_array_get(shape, i), &d))
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' shape at offset %llu: entry "
                            "%zu is not a non-negative integer", path, key,
                            (unsigned long long)shape_at, i);
        /* A tensor without elements is nothing a model has; with a huge other dimension it
         * would send row loops over 2^62 empty rows. */
        if (d == 0)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' shape at offset %llu: entry "
                            "%zu is 0: tensors without elements are not supported", path, key,
                            (unsigned long long)shape_at, i);
        if (i < LB_MAX_DIMS)
            dims[i] = d;
        if (!overflow && !lb_size_mul(count, d, &count))
            overflow = true;
    }
    uint64_t bits = 0;
    if (overflow || !lb_size_mul(count, dt->bits, &bits) || count > (uint64_t)INT64_MAX)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' shape at offset %llu: element "
                        "count overflows 64 bits", path, key, (unsigned long long)shape_at);
    if (bits % 8 != 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' shape at offset %llu: %llu "
                        "elements of %s do not fill whole bytes", path, key,
                        (unsigned long long)shape_at, (unsigned long long)count, dt->name);
    uint64_t nbytes = bits / 8;

    const json_t *offsets = json_object_get(value, "data_offsets");
    uint64_t offsets_at = offsets ? key_offset(h->text, h->len, 8, rel, "data_offsets", 12)
                                  : at;
    uint64_t begin, end;
    if (!offsets || !json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !json_to_u64(json_array_get(offsets, 0), &begin) ||
        !json_to_u64(json_array_get(offsets, 1), &end))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' data_offsets at offset %llu: %s",
                        path, key, (unsigned long long)offsets_at,
                        offsets ? "not a list of two non-negative integers" : "missing");
    if (begin > end)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' data_offsets at offset %llu: "
                        "begin %llu is after end %llu", path, key,
                        (unsigned long long)offsets_at, (unsigned long long)begin,
                        (unsigned long long)end);
    if (end > h->data_size) {
        uint64_t file_at = h->data_base + (begin < h->data_size ? begin : h->data_size);
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' data_offsets at offset %llu: "
                        "range [%llu, %llu) runs past the %llu-byte data buffer", path, key,
                        (unsigned long long)file_at, (unsigned long long)begin,
                        (unsigned long long)end, (unsigned long long)h->data_size);
    }
    if (end - begin != nbytes)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' data_offsets at offset %llu: "
                        "%llu bytes, but dtype %s and the shape need %llu", path, key,
                        (unsigned long long)(h->data_base + begin),
                        (unsigned long long)(end - begin), dt->name,
                        (unsigned long long)nbytes);
    range->begin = begin;
    range->end = end;
    range->name = key;

    if (dt->type < 0) {
        snprintf(deferred, ST_MESSAGE_BYTES, "%s: tensor '%s' dtype at offset %llu: dtype %s is "
                 "not supported (only F32, F16 and BF16)", path, key,
                 (unsigned long long)dtype_at, dt->name);
        *unsupported = true;
        return LB_OK;
    }
    if (n_dims > LB_MAX_DIMS) {
        snprintf(deferred, ST_MESSAGE_BYTES, "%s: tensor '%s' shape at offset %llu: %zu "
                 "dimensions (at most %d supported)", path, key, (unsigned long long)shape_at,
                 n_dims, LB_MAX_DIMS);
        *unsupported = true;
        return LB_OK;
    }
    memset(t, 0, sizeof *t);
    t->type = (lb_type)dt->type;
    /* safetensors lists the slowest dimension first; GGUF order is the reverse. */
    t->n_dims = n_dims ? (int)n_dims : 1;
    for (int i = 0; i < LB_MAX_DIMS; i++)
        t->ne[i] = (size_t)i < n_dims ? (int64_t)dims[n_dims - 1 - (size_t)i] : 1;
    t->nbytes = nbytes;
    return LB_OK;
}

/* Parses one safetensors buffer (a whole file) and appends its tensors to st. */
static lb_status parse_buffer(lb_safetensors *st, int64_t *capacity, const char *path,
                              const uint8_t *data, uint64_t size, int shard)
{
    if (size < 8)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: header length at offset 0: file of %llu "
                        "bytes is shorter than the 8-byte header length", path,
                        (unsigned long long)size);
    uint64_t n = lb_le_load64(data);
    if (n == 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: header length at offset 0: 0 (empty header)",
                        path);
    if (n > size - 8)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: header length at offset 0: %llu bytes run "
                        "past the end of the %llu-byte file", path, (unsigned long long)n,
                        (unsigned long long)size);
    if (n > ST_MAX_HEADER_BYTES)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: header length at offset 0: %llu bytes "
                        "exceeds the %llu-byte limit", path, (unsigned long long)n,
                        (unsigned long long)ST_MAX_HEADER_BYTES);
    st_header h = {path, (const char *)data + 8, n, 8 + n, size - 8 - n};

    json_error_t jerr;
    json_t *root = json_loadb(h.text, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: header JSON at offset %llu: %s", path,
                        (unsigned long long)(8 + (uint64_t)(jerr.position > 0 ? jerr.position
                                                                                : 0)),
                        jerr.text);
    lb_status status = LB_OK;
    st_range *ranges = NULL;
    char deferred[ST_MESSAGE_BYTES];
    bool have_deferred = false;
    if (!json_is_object(root)) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: header at offset 8: not a JSON object",
                          path);
        goto done;
    }
    size_t n_entries = json_object_size(root);
    ranges = lb_malloc((n_entries ? n_entries : 1) * sizeof *ranges);
    if (!ranges) {
        status = lb_nomem("%s: out of memory for %zu header entries", path,
                          n_entries);
        goto done;
    }
    size_t n_ranges = 0;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach(root, key, key_len, value) {
        if (strcmp(key, "__metadata__") == 0 && key_len == 12) {
            /* A string-to-string map (the format's rule); its contents are not used. */
            const char *mkey;
            json_t *mvalue;
            bool ok = json_is_object(value);
            if (ok)
                json_object_foreach(value, mkey, mvalue)
                    ok = ok && json_is_string(mvalue);
            if (!ok) {
                status = lb_error(LB_ERR_CORRUPT_FILE, "%s: __metadata__ at offset %llu: not "
                                  "a map of strings", path,
                                  (unsigned long long)key_offset(h.text, n, 8, 0, key,
                                                                 key_len));
                goto done;
            }
            continue;
        }
        lb_safetensors_tensor t;
        bool unsupported;
        char message[ST_MESSAGE_BYTES];
        status = parse_entry(&h, key, key_len, value, &t, &ranges[n_ranges], &unsupported,
                             message);
        if (status != LB_OK)
            goto done;
        n_ranges++;
        if (unsupported) {
            if (!have_deferred)
                memcpy(deferred, message, sizeof deferred);
            have_deferred = true;
            continue;
        }
        t.data = data + h.data_base + ranges[n_ranges - 1].begin;
        t.shard = shard;
        status = push_tensor(st, capacity, &h, &t, key, key_len);
        if (status != LB_OK)
            goto done;
    }
    /* Overlap: after sorting by begin, each non-empty range must start at or after the
     * furthest end seen so far. Empty ranges touch no bytes. */
    qsort(ranges, n_ranges, sizeof *ranges, compare_ranges);
    uint64_t max_end = 0;
    const char *max_name = NULL;
    for (size_t i = 0; i < n_ranges; i++) {
        if (ranges[i].begin == ranges[i].end)
            continue;
        if (max_name && ranges[i].begin < max_end) {
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' data_offsets at offset "
                              "%llu: overlaps the data of tensor '%s'", path, ranges[i].name,
                              (unsigned long long)(h.data_base + ranges[i].begin), max_name);
            goto done;
        }
        if (!max_name || ranges[i].end > max_end) {
            max_end = ranges[i].end;
            max_name = ranges[i].name;
        }
    }
    if (have_deferred)
        status = lb_error(LB_ERR_UNSUPPORTED, "%s", deferred);
done:
    lb_free(ranges);
    json_decref(root);
    return status;
}

/* Builds the sorted-name index; duplicate names (only possible across shards) are corrupt. */
static lb_status build_name_index(lb_safetensors *st)
{
    int64_t n = st->n_tensors;
    st_name_ref *refs = lb_malloc((size_t)(n ? n : 1) * sizeof *refs);
    st->by_name = lb_malloc((size_t)(n ? n : 1) * sizeof *st->by_name);
    lb_status status = LB_OK;
    if (!refs || !st->by_name) {
        status = lb_nomem("out of memory for the index of %lld tensors",
                          (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        refs[i] = (st_name_ref){st->tensors[i].name, i};
    qsort(refs, (size_t)n, sizeof *refs, compare_name_refs);
    for (int64_t i = 0; i < n; i++) {
        st->by_name[i] = refs[i].index;
        /* Within one file jansson already rejected duplicate keys, so files[] exists here. */
        if (i > 0 && strcmp(refs[i].name, refs[i - 1].name) == 0 && st->n_files > 0) {
            const lb_safetensors_tensor *t = &st->tensors[refs[i].index];
            const lb_safetensors_tensor *first = &st->tensors[refs[i - 1].index];
            const lb_mapped_file *f = st->files[t->shard];
            uint64_t header_len = lb_le_load64(f->data);
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' at offset %llu: duplicate "
                              "name, also in %s", f->path, t->name,
                              (unsigned long long)key_offset((const char *)f->data + 8,
                                                             header_len, 8, 0, t->name,
                                                             strlen(t->name)),
                              st->files[first->shard]->path);
            goto done;
        }
    }
done:
    lb_free(refs);
    return status;
}

int64_t lb_safetensors_find(const lb_safetensors *st, const char *name)
{
    if (!st || !name)
        return -1;
    if (!st->by_name) {
        for (int64_t i = 0; i < st->n_tensors; i++)
            if (strcmp(st->tensors[i].name, name) == 0)
                return i;
        return -1;
    }
    int64_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[st->by_name[mid]].name, name);
        if (c == 0)
            return st->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void lb_safetensors_close(lb_safetensors **stp)
{
    if (!stp || !*stp)
        return;
    lb_safetensors *st = *stp;
    for (int64_t i = 0; i < st->n_tensors; i++)
        lb_free(st->tensors[i].name);
    lb_free(st->tensors);
    lb_free(st->by_name);
    for (int i = 0; i < st->n_files; i++)
        lb_mapped_file_close(&st->files[i]);
    lb_free(st->files);
    lb_free(st);
    *stp = NULL;
}

lb_status lb_safetensors_open_memory(lb_safetensors **out, const char *name, const void *data,
                                     uint64_t size)
{
    *out = NULL;
    lb_safetensors *st = lb_calloc(1, sizeof *st);
    if (!st)
        return lb_nomem("%s: out of memory for the safetensors reader", name);
    int64_t capacity = 0;
    lb_status status = parse_buffer(st, &capacity, name, data, size, 0);
    if (status == LB_OK)
        status = build_name_index(st);
    if (status != LB_OK) {
        lb_safetensors_close(&st);
        return status;
    }
    *out = st;
    return LB_OK;
}

/* Maps `path` as shard number st->n_files and parses it. */
static lb_status add_shard(lb_safetensors *st, int64_t *capacity, const char *path)
{
    lb_mapped_file *file = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    st->files[st->n_files++] = file;
    return parse_buffer(st, capacity, file->path, file->data, file->size, st->n_files - 1);
}

static lb_status open_single(lb_safetensors **out, const char *path)
{
    lb_safetensors *st = lb_calloc(1, sizeof *st);
    if (st)
        st->files = lb_calloc(1, sizeof *st->files);
    if (!st || !st->files) {
        lb_safetensors_close(&st);
        return lb_nomem("%s: out of memory for the safetensors reader", path);
    }
    int64_t capacity = 0;
    lb_status status = add_shard(st, &capacity, path);
    if (status == LB_OK)
        status = build_name_index(st);
    if (status != LB_OK) {
        lb_safetensors_close(&st);
        return status;
    }
    *out = st;
    return LB_OK;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = lb_malloc(a + b + 2);
    if (p)
        snprintf(p, a + b + 2, "%s/%s", dir, name);
    return p;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Opens a model.safetensors.index.json: every distinct shard it names (in name order, so
 * model-00001-of-N comes first), then checks that weight_map and the shards agree. */
static lb_status open_index(lb_safetensors **out, const char *path)
{
    lb_mapped_file *index = NULL;
    json_t *root = NULL;
    const char **shards = NULL;
    char *dir = NULL, *shard_path = NULL;
    lb_safetensors *st = NULL;
    lb_status status = lb_mapped_file_open(&index, path);
    if (status != LB_OK)
        return status;
    const char *text = index->data ? (const char *)index->data : "";
    if (index->size > ST_MAX_INDEX_BYTES) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: index at offset 0: %llu bytes exceeds the "
                          "%llu-byte limit", path, (unsigned long long)index->size,
                          (unsigned long long)ST_MAX_INDEX_BYTES);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(text, (size_t)index->size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: index JSON at offset %d: %s", path,
                          jerr.position > 0 ? jerr.position : 0, jerr.text);
        goto done;
    }
    json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    json_t *metadata = json_is_object(root) ? json_object_get(root, "metadata") : NULL;
    if (!map || !json_is_object(map) || (metadata && !json_is_object(metadata) &&
                                         !json_is_null(metadata))) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: weight_map at offset %llu: %s", path,
                          (unsigned long long)key_offset(text, index->size, 0, 0,
                                                         "weight_map", 10),
                          !json_is_object(root) ? "index is not a JSON object"
                          : !map               ? "missing"
                          : !json_is_object(map) ? "not a JSON object"
                                                 : "metadata is not a JSON object");
        goto done;
    }
    size_t n_map = json_object_size(map);
    shards = lb_malloc((n_map ? n_map : 1) * sizeof *shards);
    if (!shards) {
        status = lb_nomem("%s: out of memory for the shard list", path);
        goto done;
    }
    size_t n_shards = 0;
    const char *key;
    json_t *value;
    json_object_foreach(map, key, value) {
        const char *shard = json_is_string(value) ? json_string_value(value) : NULL;
        /* Shards must lie beside the index: no path components, no way up. */
        if (!shard || !shard[0] || strchr(shard, '/') || strstr(shard, "..") ||
            strlen(shard) != json_string_length(value)) {
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: weight_map tensor '%s' at offset %llu: "
                              "shard is not a plain file name", path, key,
                              (unsigned long long)key_offset(text, index->size, 0, 0, key,
                                                             strlen(key)));
            goto done;
        }
        shards[n_shards++] = shard;
    }
    qsort(shards, n_shards, sizeof *shards, compare_strings);
    size_t n_unique = 0;
    for (size_t i = 0; i < n_shards; i++)
        if (n_unique == 0 || strcmp(shards[i], shards[n_unique - 1]) != 0)
            shards[n_unique++] = shards[i];
    if (n_unique == 0 || n_unique > ST_MAX_SHARDS) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: weight_map at offset %llu: %zu shards",
                          path, (unsigned long long)key_offset(text, index->size, 0, 0,
                                                               "weight_map", 10), n_unique);
        goto done;
    }

    const char *slash = strrchr(path, '/');
    dir = slash ? lb_strndup(path, (size_t)(slash - path + (slash == path))) : lb_strdup(".");
    st = lb_calloc(1, sizeof *st);
    if (st)
        st->files = lb_calloc(n_unique, sizeof *st->files);
    if (!dir || !st || !st->files) {
        status = lb_nomem("%s: out of memory for the shard readers", path);
        goto done;
    }
    int64_t capacity = 0;
    for (size_t i = 0; i < n_unique; i++) {
        shard_path = join_path(dir, shards[i]);
        if (!shard_path) {
            status = lb_nomem("%s: out of memory for a shard path", path);
            goto done;
        }
        status = add_shard(st, &capacity, shard_path);
        lb_free(shard_path);
        shard_path = NULL;
        if (status != LB_OK)
            goto done;
    }
    status = build_name_index(st);
    if (status != LB_OK)
        goto done;

    json_object_foreach(map, key, value) {
        int64_t i = lb_safetensors_find(st, key);
        const char *want = json_string_value(value);
        const char *have = i >= 0 ? strrchr(st->files[st->tensors[i].shard]->path, '/') : NULL;
        have = have ? have + 1 : NULL;
        if (i < 0 || strcmp(have, want) != 0) {
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: weight_map tensor '%s' at offset %llu: "
                              "%s %s", path, key,
                              (unsigned long long)key_offset(text, index->size, 0, 0, key,
                                                             strlen(key)),
                              i < 0 ? "not found in shard" : "is not in shard", want);
            goto done;
        }
    }
    for (int64_t i = 0; i < st->n_tensors; i++) {
        const lb_safetensors_tensor *t = &st->tensors[i];
        if (!json_object_get(map, t->name)) {
            const lb_mapped_file *f = st->files[t->shard];
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' at offset %llu: missing "
                              "from the weight_map of %s", f->path, t->name,
                              (unsigned long long)key_offset((const char *)f->data + 8,
                                                             lb_le_load64(f->data), 8, 0,
                                                             t->name, strlen(t->name)),
                              path);
            goto done;
        }
    }
    *out = st;
    st = NULL;
done:
    lb_safetensors_close(&st);
    lb_free(dir);
    lb_free(shards);
    json_decref(root);
    lb_mapped_file_close(&index);
    return status;
}

static bool is_regular_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Picks the file to open in a checkpoint directory; *out is allocated. */
static lb_status resolve_directory(char **out, const char *dir)
{
    static const char *const preferred[] = {"model.safetensors.index.json",
                                            "model.safetensors"};
    *out = NULL;
    for (size_t i = 0; i < 2; i++) {
        char *p = join_path(dir, preferred[i]);
        if (!p)
            return lb_nomem("%s: out of memory for a checkpoint path", dir);
        if (is_regular_file(p)) {
            *out = p;
            return LB_OK;
        }
        lb_free(p);
    }
    DIR *d = opendir(dir);
    if (!d)
        return lb_error(LB_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char *found = NULL;
    int64_t n_found = 0;
    lb_status status = LB_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, ".safetensors"))
            continue;
        char *p = join_path(dir, e->d_name);
        if (!p) {
            status = lb_nomem("%s: out of memory for a shard path", dir);
            break;
        }
        if (!is_regular_file(p)) {
            lb_free(p);
            continue;
        }
        n_found++;
        lb_free(found);
        found = p;
    }
    closedir(d);
    if (status == LB_OK && n_found == 0)
        status = lb_error(LB_ERR_IO, "%s: no model.safetensors.index.json and no .safetensors "
                          "file in the directory", dir);
    else if (status == LB_OK && n_found > 1)
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: %lld .safetensors files but no "
                          "model.safetensors.index.json to say how they fit together", dir,
                          (long long)n_found);
    if (status != LB_OK) {
        lb_free(found);
        return status;
    }
    *out = found;
    return LB_OK;
}

lb_status lb_safetensors_open(lb_safetensors **out, const char *path)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lb_error(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char *resolved = NULL;
        lb_status status = resolve_directory(&resolved, path);
        if (status != LB_OK)
            return status;
        status = has_suffix(resolved, ".json") ? open_index(out, resolved)
                                               : open_single(out, resolved);
        lb_free(resolved);
        return status;
    }
    if (has_suffix(path, ".json"))
        return open_index(out, path);
    return open_single(out, path);
}
