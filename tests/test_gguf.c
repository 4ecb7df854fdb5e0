/* GGUF writer and reader: round trip of every metadata type, tensor bytes, getters, errors. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/rng.h"
#include "formats/gguf.h"
#include "test_util.h"

#define SEED 20240611u

typedef struct sample_tensor {
    const char *name;
    lb_type type;
    int n_dims;
    int64_t ne[LB_MAX_DIMS];
    bool produced; /* written through a producer instead of a data pointer */
} sample_tensor;

static const sample_tensor sample_tensors[] = {
    {"token_embd.weight", LB_TYPE_F16, 2, {5, 3, 1, 1}, false},
    {"blk.0.attn_norm.weight", LB_TYPE_F32, 1, {7, 1, 1, 1}, false},
    {"blk.0.ffn_up.weight", LB_TYPE_BF16, 3, {3, 2, 5, 1}, false},
    {"blk.0.ffn_down.weight", LB_TYPE_F32, 4, {2, 3, 1, 2}, true},
    {"single", LB_TYPE_F32, 1, {1, 1, 1, 1}, false},
    {"odd.f16", LB_TYPE_F16, 2, {13, 1, 1, 1}, true},
    {"\xc3\xbcnicode.weight", LB_TYPE_BF16, 1, {9, 1, 1, 1}, false},
};
#define N_SAMPLE_TENSORS (sizeof sample_tensors / sizeof sample_tensors[0])

typedef struct sample_data {
    uint8_t *bytes[N_SAMPLE_TENSORS];
    uint64_t nbytes[N_SAMPLE_TENSORS];
    int64_t produced_calls;
    lb_status fail_with; /* producer result for tensor index fail_index */
    int64_t fail_index;
} sample_data;

/* Native arrays written with lb_gguf_writer_set_array; the reader hands back the file's
 * little-endian bytes, equal to these on the little-endian hosts lowbit targets. */
static const uint8_t arr_u8[] = {0, 1, 255};
static const int8_t arr_i8[] = {-128, 0, 127};
static const uint16_t arr_u16[] = {0, 65535, 1234};
static const int16_t arr_i16[] = {-32768, 32767, -1};
static const uint32_t arr_u32[] = {0, UINT32_MAX, 42};
static const int32_t arr_i32[] = {INT32_MIN, INT32_MAX, -7};
static const float arr_f32[] = {1.5f, -0.0f, INFINITY, 1e-40f};
static const bool arr_bool[] = {true, false, true, true};
static const uint64_t arr_u64[] = {0, UINT64_MAX, 1ull << 40};
static const int64_t arr_i64[] = {INT64_MIN, INT64_MAX, -1};
static const double arr_f64[] = {3.141592653589793, -1e-300, 1e308};

typedef struct sample_array {
    const char *key;
    lb_gguf_type type;
    const void *data;
    uint64_t count;
    size_t bytes;
} sample_array;

#define ARRAY(key, type, a) {key, type, a, sizeof a / sizeof a[0], sizeof a}
static const sample_array sample_arrays[] = {
    ARRAY("t.arr.u8", LB_GGUF_UINT8, arr_u8),     ARRAY("t.arr.i8", LB_GGUF_INT8, arr_i8),
    ARRAY("t.arr.u16", LB_GGUF_UINT16, arr_u16),  ARRAY("t.arr.i16", LB_GGUF_INT16, arr_i16),
    ARRAY("t.arr.u32", LB_GGUF_UINT32, arr_u32),  ARRAY("t.arr.i32", LB_GGUF_INT32, arr_i32),
    ARRAY("t.arr.f32", LB_GGUF_FLOAT32, arr_f32), ARRAY("t.arr.bool", LB_GGUF_BOOL, arr_bool),
    ARRAY("t.arr.u64", LB_GGUF_UINT64, arr_u64),  ARRAY("t.arr.i64", LB_GGUF_INT64, arr_i64),
    ARRAY("t.arr.f64", LB_GGUF_FLOAT64, arr_f64),
};
#define N_SAMPLE_ARRAYS (sizeof sample_arrays / sizeof sample_arrays[0])

static const char *const strings_with_lengths[] = {"alpha", "", "na\xc3\xafve \xe2\x9c\x93",
                                                   "x\0y"};
static const uint32_t string_lengths[] = {5, 0, 10, 3};
static const char *const plain_strings[] = {"one", "two"};
static const char utf8_string[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac";
static const char nul_string[] = {'a', '\0', 'b', '\0'};
#define UTF8_KEY "t.\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87"

/* Keys in the order they are set (general.alignment, when written, comes first). */
static const char *const scalar_keys[] = {
    "t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool_true", "t.bool_false",
    "t.u64", "t.i64", "t.f64", "t.str", "t.str_nul", "t.str_empty", UTF8_KEY,
};
#define N_SCALAR_KEYS (sizeof scalar_keys / sizeof scalar_keys[0])

static void sample_data_init(sample_data *sd, uint64_t seed)
{
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    memset(sd, 0, sizeof *sd);
    sd->fail_index = -1;
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const sample_tensor *t = &sample_tensors[i];
        if (!lb_tensor_bytes(t->type, t->n_dims, t->ne, &sd->nbytes[i]))
            abort();
        sd->bytes[i] = malloc(sd->nbytes[i] + 1);
        for (uint64_t b = 0; b < sd->nbytes[i]; b++)
            sd->bytes[i][b] = (uint8_t)lb_rng_next(&rng);
    }
}

static void sample_data_free(sample_data *sd)
{
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++)
        free(sd->bytes[i]);
}

static lb_status produce(void *context, int64_t index, void *dst, uint64_t nbytes)
{
    sample_data *sd = context;
    sd->produced_calls++;
    if (index == sd->fail_index)
        return lb_error(sd->fail_with, "producer failed on purpose");
    if (index < 0 || (size_t)index >= N_SAMPLE_TENSORS || nbytes != sd->nbytes[index])
        return lb_error(LB_ERR_INVALID_ARG, "producer: unexpected tensor %lld", (long long)index);
    memcpy(dst, sd->bytes[index], nbytes);
    return LB_OK;
}

/* Fills a writer with every metadata type and the sample tensors. */
static lb_status fill_writer(lb_gguf_writer *w, sample_data *sd)
{
    lb_status s;
#define TRY(expr)                                                                                  \
    if ((s = (expr)) != LB_OK)                                                                     \
        return s
    TRY(lb_gguf_writer_set_u8(w, "t.u8", 200));
    TRY(lb_gguf_writer_set_i8(w, "t.i8", -100));
    TRY(lb_gguf_writer_set_u16(w, "t.u16", 60000));
    TRY(lb_gguf_writer_set_i16(w, "t.i16", -30000));
    TRY(lb_gguf_writer_set_u32(w, "t.u32", 4000000000u));
    TRY(lb_gguf_writer_set_i32(w, "t.i32", -2000000000));
    TRY(lb_gguf_writer_set_f32(w, "t.f32", 3.25f));
    TRY(lb_gguf_writer_set_bool(w, "t.bool_true", true));
    TRY(lb_gguf_writer_set_bool(w, "t.bool_false", false));
    TRY(lb_gguf_writer_set_u64(w, "t.u64", UINT64_MAX - 1));
    TRY(lb_gguf_writer_set_i64(w, "t.i64", INT64_MIN + 1));
    TRY(lb_gguf_writer_set_f64(w, "t.f64", -1e300));
    TRY(lb_gguf_writer_set_string(w, "t.str", utf8_string));
    TRY(lb_gguf_writer_set_string_n(w, "t.str_nul", nul_string, sizeof nul_string));
    TRY(lb_gguf_writer_set_string(w, "t.str_empty", ""));
    TRY(lb_gguf_writer_set_u8(w, UTF8_KEY, 1));
    for (size_t i = 0; i < N_SAMPLE_ARRAYS; i++)
        TRY(lb_gguf_writer_set_array(w, sample_arrays[i].key, sample_arrays[i].type,
                                     sample_arrays[i].data, sample_arrays[i].count));
    TRY(lb_gguf_writer_set_string_array(w, "t.arr.strings", strings_with_lengths, string_lengths,
                                        4));
    TRY(lb_gguf_writer_set_string_array(w, "t.arr.strings_plain", plain_strings, NULL, 2));
    TRY(lb_gguf_writer_set_array(w, "t.arr.empty", LB_GGUF_UINT32, NULL, 0));
    TRY(lb_gguf_writer_set_string_array(w, "t.arr.empty_strings", NULL, NULL, 0));
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const sample_tensor *t = &sample_tensors[i];
        if (t->produced) {
            TRY(lb_gguf_writer_add_tensor_producer(w, t->name, t->type, t->n_dims, t->ne,
                                                   produce, sd));
        } else {
            TRY(lb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, sd->bytes[i]));
        }
    }
#undef TRY
    return LB_OK;
}

static lb_status write_sample(const char *path, uint32_t alignment, sample_data *sd)
{
    lb_gguf_writer *w = NULL;
    lb_status status = lb_gguf_writer_create(&w, alignment);
    if (status == LB_OK)
        status = fill_writer(w, sd);
    if (status == LB_OK)
        status = lb_gguf_writer_write(w, path);
    lb_gguf_writer_free(&w);
    return status;
}

static uint8_t *read_whole(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    *size = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (uint64_t)n;
    return data;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_temp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static const lb_gguf_value *value_of(const lb_gguf *g, const char *key, lb_gguf_type type)
{
    const lb_gguf_kv *kv = lb_gguf_find_kv(g, key);
    CHECK(kv != NULL);
    if (!kv || kv->value.type != type) {
        fprintf(stderr, "key %s: missing or wrong type\n", key);
        test_failures++;
        return NULL;
    }
    return &kv->value;
}

static bool string_is(lb_gguf_string s, const char *data, uint64_t len)
{
    return s.len == len && (len == 0 || memcmp(s.data, data, len) == 0);
}

static void check_metadata(const lb_gguf *g, uint32_t alignment)
{
    const lb_gguf_value *v;
    int64_t first = alignment != LB_GGUF_DEFAULT_ALIGNMENT ? 1 : 0;
    CHECK(g->n_kv == first + (int64_t)N_SCALAR_KEYS + (int64_t)N_SAMPLE_ARRAYS + 4);
    if (first)
        CHECK(strcmp(g->kv[0].key, "general.alignment") == 0 &&
              g->kv[0].value.type == LB_GGUF_UINT32 && g->kv[0].value.v.u32 == alignment);
    else
        CHECK(lb_gguf_find_kv(g, "general.alignment") == NULL);
    for (size_t i = 0; i < N_SCALAR_KEYS && first + (int64_t)i < g->n_kv; i++)
        CHECK(strcmp(g->kv[first + (int64_t)i].key, scalar_keys[i]) == 0);
    CHECK((v = value_of(g, "t.u8", LB_GGUF_UINT8)) && v->v.u8 == 200);
    CHECK((v = value_of(g, "t.i8", LB_GGUF_INT8)) && v->v.i8 == -100);
    CHECK((v = value_of(g, "t.u16", LB_GGUF_UINT16)) && v->v.u16 == 60000);
    CHECK((v = value_of(g, "t.i16", LB_GGUF_INT16)) && v->v.i16 == -30000);
    CHECK((v = value_of(g, "t.u32", LB_GGUF_UINT32)) && v->v.u32 == 4000000000u);
    CHECK((v = value_of(g, "t.i32", LB_GGUF_INT32)) && v->v.i32 == -2000000000);
    CHECK((v = value_of(g, "t.f32", LB_GGUF_FLOAT32)) && v->v.f32 == 3.25f);
    CHECK((v = value_of(g, "t.bool_true", LB_GGUF_BOOL)) && v->v.b == true);
    CHECK((v = value_of(g, "t.bool_false", LB_GGUF_BOOL)) && v->v.b == false);
    CHECK((v = value_of(g, "t.u64", LB_GGUF_UINT64)) && v->v.u64 == UINT64_MAX - 1);
    CHECK((v = value_of(g, "t.i64", LB_GGUF_INT64)) && v->v.i64 == INT64_MIN + 1);
    CHECK((v = value_of(g, "t.f64", LB_GGUF_FLOAT64)) && v->v.f64 == -1e300);
    CHECK((v = value_of(g, "t.str", LB_GGUF_STRING)) &&
          string_is(v->v.str, utf8_string, strlen(utf8_string)));
    CHECK((v = value_of(g, "t.str_nul", LB_GGUF_STRING)) &&
          string_is(v->v.str, nul_string, sizeof nul_string));
    CHECK((v = value_of(g, "t.str_empty", LB_GGUF_STRING)) && v->v.str.len == 0);
    CHECK((v = value_of(g, UTF8_KEY, LB_GGUF_UINT8)) && v->v.u8 == 1);
    for (size_t i = 0; i < N_SAMPLE_ARRAYS; i++) {
        const sample_array *a = &sample_arrays[i];
        CHECK((v = value_of(g, a->key, LB_GGUF_ARRAY)) && v->v.arr.elem_type == a->type &&
              v->v.arr.count == a->count && memcmp(v->v.arr.data, a->data, a->bytes) == 0);
    }
    CHECK((v = value_of(g, "t.arr.strings", LB_GGUF_ARRAY)) &&
          v->v.arr.elem_type == LB_GGUF_STRING && v->v.arr.count == 4);
    for (uint64_t i = 0; v && v->v.arr.count == 4 && i < 4; i++)
        CHECK(string_is(v->v.arr.strings[i], strings_with_lengths[i], string_lengths[i]));
    CHECK((v = value_of(g, "t.arr.strings_plain", LB_GGUF_ARRAY)) && v->v.arr.count == 2 &&
          string_is(v->v.arr.strings[0], "one", 3) && string_is(v->v.arr.strings[1], "two", 3));
    CHECK((v = value_of(g, "t.arr.empty", LB_GGUF_ARRAY)) &&
          v->v.arr.elem_type == LB_GGUF_UINT32 && v->v.arr.count == 0);
    CHECK((v = value_of(g, "t.arr.empty_strings", LB_GGUF_ARRAY)) &&
          v->v.arr.elem_type == LB_GGUF_STRING && v->v.arr.count == 0);
}

static void check_tensors(const lb_gguf *g, uint32_t alignment, const sample_data *sd,
                          uint64_t file_size)
{
    uint64_t expected_end = g->data_offset;
    CHECK(g->alignment == alignment);
    CHECK(g->data_offset % alignment == 0);
    CHECK(g->n_tensors == (int64_t)N_SAMPLE_TENSORS);
    for (size_t i = 0; i < N_SAMPLE_TENSORS && (int64_t)i < g->n_tensors; i++) {
        const sample_tensor *want = &sample_tensors[i];
        const lb_gguf_tensor_info *t = &g->tensors[i];
        CHECK(strcmp(t->name, want->name) == 0);
        CHECK(lb_gguf_find_tensor(g, want->name) == (int64_t)i);
        CHECK(t->type == want->type && t->n_dims == want->n_dims);
        for (int d = 0; d < LB_MAX_DIMS; d++)
            CHECK(t->ne[d] == want->ne[d]);
        CHECK(t->nbytes == sd->nbytes[i]);
        CHECK(t->offset % alignment == 0);
        CHECK(g->data_offset + t->offset == expected_end); /* laid out in order, each aligned */
        CHECK(memcmp(t->data, sd->bytes[i], sd->nbytes[i]) == 0);
        expected_end += (sd->nbytes[i] + alignment - 1) / alignment * alignment;
    }
    CHECK(file_size == expected_end); /* every tensor, the last included, is padded */
    CHECK(lb_gguf_find_tensor(g, "missing") == -1);
}

/* Opening the buffer must give what opening the file gives. */
static void check_same(const lb_gguf *a, const lb_gguf *b)
{
    CHECK(a->version == b->version && a->alignment == b->alignment);
    CHECK(a->data_offset == b->data_offset);
    CHECK(a->n_kv == b->n_kv && a->n_tensors == b->n_tensors);
    for (int64_t i = 0; i < a->n_kv && i < b->n_kv; i++) {
        const lb_gguf_value *x = &a->kv[i].value, *y = &b->kv[i].value;
        CHECK(strcmp(a->kv[i].key, b->kv[i].key) == 0 && x->type == y->type);
        if (x->type == LB_GGUF_STRING)
            CHECK(string_is(x->v.str, y->v.str.data, y->v.str.len));
        else if (x->type == LB_GGUF_ARRAY && x->v.arr.elem_type == LB_GGUF_STRING)
            for (uint64_t j = 0; j < x->v.arr.count; j++)
                CHECK(string_is(x->v.arr.strings[j], y->v.arr.strings[j].data,
                                y->v.arr.strings[j].len));
        else if (x->type == LB_GGUF_ARRAY)
            CHECK(x->v.arr.count == y->v.arr.count &&
                  memcmp(x->v.arr.data, y->v.arr.data,
                         x->v.arr.count * lb_gguf_type_size(x->v.arr.elem_type)) == 0);
        else
            CHECK(memcmp(&x->v, &y->v, lb_gguf_type_size(x->type)) == 0);
    }
    for (int64_t i = 0; i < a->n_tensors && i < b->n_tensors; i++) {
        const lb_gguf_tensor_info *x = &a->tensors[i], *y = &b->tensors[i];
        CHECK(strcmp(x->name, y->name) == 0 && x->offset == y->offset &&
              x->nbytes == y->nbytes && x->type == y->type &&
              memcmp(x->ne, y->ne, sizeof x->ne) == 0 &&
              memcmp(x->data, y->data, x->nbytes) == 0);
    }
}

/* Copies a read file through set_value and add_tensor: the result must be byte-identical. */
static void check_copy(const lb_gguf *g, const char *path, const uint8_t *original, uint64_t size)
{
    lb_gguf_writer *w = NULL;
    uint64_t copy_size;
    CHECK_OK(lb_gguf_writer_create(&w, g->alignment));
    for (int64_t i = 0; w && i < g->n_kv; i++)
        CHECK_OK(lb_gguf_writer_set_value(w, g->kv[i].key, &g->kv[i].value));
    for (int64_t i = 0; w && i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        CHECK_OK(lb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data));
    }
    CHECK_OK(lb_gguf_writer_write(w, path));
    lb_gguf_writer_free(&w);
    CHECK(w == NULL);
    uint8_t *copy = read_whole(path, &copy_size);
    CHECK(copy && copy_size == size && memcmp(copy, original, size) == 0);
    free(copy);
}

static void test_round_trip(const char *dir, uint32_t alignment)
{
    char path[512], path2[512];
    sample_data sd;
    lb_gguf *g = NULL, *m = NULL;
    uint64_t size, size2;
    snprintf(path, sizeof path, "%s/sample_%u.gguf", dir, alignment);
    snprintf(path2, sizeof path2, "%s/sample_%u_again.gguf", dir, alignment);
    sample_data_init(&sd, SEED + alignment);
    CHECK_OK(write_sample(path, alignment, &sd));
    CHECK(sd.produced_calls == 2);
    CHECK_OK(lb_gguf_open(&g, path));
    uint8_t *bytes = read_whole(path, &size);
    CHECK(bytes != NULL);
    if (g && bytes) {
        CHECK(g->version == 3);
        check_metadata(g, alignment);
        check_tensors(g, alignment, &sd, size);
        CHECK_OK(lb_gguf_open_memory(&m, "sample in memory", bytes, size));
        if (m) {
            CHECK(strcmp(m->path, "sample in memory") == 0 && m->file == NULL);
            check_same(g, m);
        }
        /* Same inputs, same bytes. */
        CHECK_OK(write_sample(path2, alignment, &sd));
        uint8_t *again = read_whole(path2, &size2);
        CHECK(again && size2 == size && memcmp(again, bytes, size) == 0);
        free(again);
        check_copy(g, path2, bytes, size);
    }
    lb_gguf_close(&m);
    lb_gguf_close(&g);
    CHECK(g == NULL);
    lb_gguf_close(&g); /* takes NULL */
    free(bytes);
    sample_data_free(&sd);
    if (test_failures)
        fprintf(stderr, "round trip with alignment %u failed (seed %u)\n", alignment,
                SEED + alignment);
}

static void test_getters(const char *dir)
{
    char path[512];
    sample_data sd;
    lb_gguf *g = NULL;
    int64_t i;
    double f;
    bool b;
    lb_gguf_string s;
    const lb_gguf_value *a;
    snprintf(path, sizeof path, "%s/getters.gguf", dir);
    sample_data_init(&sd, SEED);
    CHECK_OK(write_sample(path, 32, &sd));
    CHECK_OK(lb_gguf_open(&g, path));
    if (!g) {
        sample_data_free(&sd);
        return;
    }
    CHECK(lb_gguf_get_int(g, "t.u8", &i) == LB_OK && i == 200);
    CHECK(lb_gguf_get_int(g, "t.i8", &i) == LB_OK && i == -100);
    CHECK(lb_gguf_get_int(g, "t.u16", &i) == LB_OK && i == 60000);
    CHECK(lb_gguf_get_int(g, "t.i16", &i) == LB_OK && i == -30000);
    CHECK(lb_gguf_get_int(g, "t.u32", &i) == LB_OK && i == 4000000000);
    CHECK(lb_gguf_get_int(g, "t.i32", &i) == LB_OK && i == -2000000000);
    CHECK(lb_gguf_get_int(g, "t.i64", &i) == LB_OK && i == INT64_MIN + 1);
    CHECK(lb_gguf_get_int(g, "t.u64", &i) == LB_ERR_CORRUPT_FILE); /* does not fit */
    CHECK(lb_gguf_get_int(g, "t.str", &i) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_int(g, "t.f32", &i) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_int(g, "no.such.key", &i) == LB_ERR_BAD_INPUT);
    CHECK(strstr(lb_last_error(), "no.such.key") != NULL);
    CHECK(lb_gguf_get_float(g, "t.f32", &f) == LB_OK && f == 3.25);
    CHECK(lb_gguf_get_float(g, "t.f64", &f) == LB_OK && f == -1e300);
    CHECK(lb_gguf_get_float(g, "t.i32", &f) == LB_OK && f == -2000000000.0);
    CHECK(lb_gguf_get_float(g, "t.bool_true", &f) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_float(g, "missing", &f) == LB_ERR_BAD_INPUT);
    CHECK(lb_gguf_get_bool(g, "t.bool_true", &b) == LB_OK && b);
    CHECK(lb_gguf_get_bool(g, "t.bool_false", &b) == LB_OK && !b);
    CHECK(lb_gguf_get_bool(g, "t.u8", &b) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_string(g, "t.str", &s) == LB_OK &&
          string_is(s, utf8_string, strlen(utf8_string)));
    CHECK(lb_gguf_get_string(g, "t.u8", &s) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_string(g, "missing", &s) == LB_ERR_BAD_INPUT);
    CHECK(lb_gguf_get_array(g, "t.arr.i32", LB_GGUF_INT32, &a) == LB_OK && a->v.arr.count == 3);
    if (a && a->type == LB_GGUF_ARRAY && a->v.arr.elem_type == LB_GGUF_INT32) {
        CHECK(lb_gguf_array_int(a, 0) == INT32_MIN && lb_gguf_array_int(a, 2) == -7);
        CHECK(lb_gguf_array_float(a, 1) == (double)INT32_MAX);
    }
    CHECK(lb_gguf_get_array(g, "t.arr.i32", LB_GGUF_FLOAT32, &a) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_array(g, "t.u8", LB_GGUF_UINT8, &a) == LB_ERR_CORRUPT_FILE);
    CHECK(lb_gguf_get_array(g, "missing", LB_GGUF_UINT8, &a) == LB_ERR_BAD_INPUT);
    CHECK(lb_gguf_get_array(g, "t.arr.f32", LB_GGUF_FLOAT32, &a) == LB_OK);
    if (a && a->type == LB_GGUF_ARRAY && a->v.arr.elem_type == LB_GGUF_FLOAT32)
        CHECK(lb_gguf_array_float(a, 0) == 1.5 && isinf(lb_gguf_array_float(a, 2)) &&
              lb_gguf_array_int(a, 0) == 1);
    CHECK(lb_gguf_get_array(g, "t.arr.u64", LB_GGUF_UINT64, &a) == LB_OK);
    if (a && a->type == LB_GGUF_ARRAY && a->v.arr.elem_type == LB_GGUF_UINT64)
        CHECK(lb_gguf_array_int(a, 2) == (1ll << 40) && lb_gguf_array_float(a, 1) == 0x1p64);
    CHECK(lb_gguf_get_array(g, "t.arr.bool", LB_GGUF_BOOL, &a) == LB_OK);
    if (a && a->type == LB_GGUF_ARRAY && a->v.arr.elem_type == LB_GGUF_BOOL)
        CHECK(lb_gguf_array_int(a, 0) == 1 && lb_gguf_array_int(a, 1) == 0);
    CHECK(lb_gguf_type_size(LB_GGUF_FLOAT64) == 8 && lb_gguf_type_size(LB_GGUF_BOOL) == 1 &&
          lb_gguf_type_size(LB_GGUF_STRING) == 0 && lb_gguf_type_size((lb_gguf_type)99) == 0);
    CHECK(strcmp(lb_gguf_type_name(LB_GGUF_UINT16), "UINT16") == 0 &&
          strcmp(lb_gguf_type_name((lb_gguf_type)99), "unknown") == 0);
    lb_gguf_close(&g);
    sample_data_free(&sd);
}

static void test_writer_errors(const char *dir)
{
    char path[512], missing[512], ro_dir[512], ro_path[1024];
    const int64_t ne[2] = {4, 2}, bad_ne[2] = {-1, 2};
    const float data[8] = {0};
    lb_gguf_writer *w = NULL;
    sample_data sd;
    snprintf(path, sizeof path, "%s/target.gguf", dir);
    sample_data_init(&sd, SEED);

    CHECK(lb_gguf_writer_create(&w, 3) == LB_ERR_INVALID_ARG && w == NULL);
    CHECK(lb_gguf_writer_create(&w, 0) == LB_ERR_INVALID_ARG && w == NULL);
    CHECK_OK(lb_gguf_writer_create(&w, 64));
    if (!w)
        return;
    CHECK_OK(lb_gguf_writer_set_u32(w, "a.key", 1));
    CHECK(lb_gguf_writer_set_u32(w, "a.key", 2) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_set_string(w, "a.key", "x") == LB_ERR_INVALID_ARG);
    CHECK(strstr(lb_last_error(), "a.key") != NULL);
    CHECK(lb_gguf_writer_set_u8(w, "bad.\xff", 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_set_u32(w, "general.alignment", 32) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_set_array(w, "nested", LB_GGUF_ARRAY, data, 1) == LB_ERR_INVALID_ARG);
    CHECK_OK(lb_gguf_writer_add_tensor(w, "t", LB_TYPE_F32, 2, ne, data));
    CHECK(lb_gguf_writer_add_tensor(w, "t", LB_TYPE_F32, 2, ne, data) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor_producer(w, "t", LB_TYPE_F32, 2, ne, produce, &sd) ==
          LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor(w, "u", LB_TYPE_F32, 0, ne, data) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor(w, "u", LB_TYPE_F32, 5, ne, data) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor(w, "u", LB_TYPE_F32, 2, bad_ne, data) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor(w, "u", (lb_type)999, 2, ne, data) == LB_ERR_INVALID_ARG);
    CHECK(lb_gguf_writer_add_tensor(w, "u", LB_TYPE_F32, 2, ne, NULL) == LB_ERR_INVALID_ARG);
    CHECK_OK(lb_gguf_writer_set_u32(w, "b.key", 2)); /* still usable after the errors */

    /* A directory that does not exist: LB_ERR_IO, and nothing appears. */
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.gguf", dir);
    CHECK(lb_gguf_writer_write(w, missing) == LB_ERR_IO);
    CHECK(!file_exists(missing));
    /* A read-only directory (root ignores permissions, so only checked for other users). */
    snprintf(ro_dir, sizeof ro_dir, "%s/readonly", dir);
    snprintf(ro_path, sizeof ro_path, "%s/x.gguf", ro_dir);
    if (geteuid() != 0 && mkdir(ro_dir, 0500) == 0) {
        CHECK(lb_gguf_writer_write(w, ro_path) == LB_ERR_IO);
        CHECK(!file_exists(ro_path) && count_temp_files(ro_dir) == 0);
        rmdir(ro_dir);
    }
    lb_gguf_writer_free(&w);
    lb_gguf_writer_free(&w); /* takes NULL */

    /* An existing target is replaced only by a successful write. */
    FILE *f = fopen(path, "wb");
    fputs("old contents", f);
    fclose(f);
    sd.fail_index = 3;
    sd.fail_with = LB_ERR_NUMERIC;
    lb_status status = write_sample(path, 32, &sd);
    CHECK(status == LB_ERR_NUMERIC);
    CHECK(strstr(lb_last_error(), "failed on purpose") != NULL &&
          strstr(lb_last_error(), sample_tensors[3].name) != NULL);
    uint64_t size;
    uint8_t *bytes = read_whole(path, &size);
    CHECK(bytes && size == 12 && memcmp(bytes, "old contents", 12) == 0);
    free(bytes);
    CHECK(count_temp_files(dir) == 0);
    sd.fail_index = -1;
    CHECK_OK(write_sample(path, 32, &sd));
    bytes = read_whole(path, &size);
    CHECK(bytes && size > 12 && memcmp(bytes, "GGUF", 4) == 0);
    free(bytes);
    CHECK(count_temp_files(dir) == 0);
    sample_data_free(&sd);
}

/* Every allocation of a write may fail: the error is NOMEM, nothing leaks, no file appears. */
static void test_writer_alloc_failures(const char *dir)
{
    char path[512];
    sample_data sd;
    snprintf(path, sizeof path, "%s/alloc.gguf", dir);
    sample_data_init(&sd, SEED);
    for (int64_t k = 0; k < 100000; k++) {
        lb_gguf_writer *w = NULL;
        lb_alloc_fail_after(k);
        lb_status status = lb_gguf_writer_create(&w, 64);
        if (status == LB_OK)
            status = fill_writer(w, &sd);
        if (status == LB_OK)
            status = lb_gguf_writer_write(w, path);
        lb_alloc_fail_after(-1);
        lb_gguf_writer_free(&w);
        if (status == LB_OK) {
            CHECK(k > 0 && file_exists(path));
            break;
        }
        if (status != LB_ERR_NOMEM) {
            fprintf(stderr, "allocation %lld failing gave %s: %s\n", (long long)k,
                    lb_status_name(status), lb_last_error());
            test_failures++;
            break;
        }
        CHECK(!file_exists(path) && count_temp_files(dir) == 0);
    }
    sample_data_free(&sd);
}

/* A file with no metadata and no tensors; and a v2 header, which v3 only extended with
 * big-endian files. */
static void test_minimal_and_v2(const char *dir)
{
    char path[512];
    lb_gguf_writer *w = NULL;
    lb_gguf *g = NULL;
    uint64_t size;
    snprintf(path, sizeof path, "%s/minimal.gguf", dir);
    CHECK_OK(lb_gguf_writer_create(&w, 32));
    CHECK_OK(lb_gguf_writer_write(w, path));
    lb_gguf_writer_free(&w);
    uint8_t *bytes = read_whole(path, &size);
    CHECK(bytes && size == 32); /* 24-byte header padded to the alignment */
    CHECK_OK(lb_gguf_open(&g, path));
    CHECK(g && g->n_kv == 0 && g->n_tensors == 0 && g->data_offset == 32);
    lb_gguf_close(&g);
    if (bytes) {
        CHECK_OK(lb_gguf_open_memory(&g, "header only", bytes, 24)); /* padding not needed */
        lb_gguf_close(&g);
        bytes[4] = 2;
        CHECK_OK(lb_gguf_open_memory(&g, "v2", bytes, size));
        CHECK(g && g->version == 2);
        lb_gguf_close(&g);
        CHECK(lb_gguf_open_memory(&g, NULL, NULL, 0) == LB_ERR_CORRUPT_FILE && g == NULL);
        CHECK(lb_gguf_open_memory(&g, "null", NULL, 5) == LB_ERR_INVALID_ARG);
    }
    free(bytes);
    CHECK(lb_gguf_open(&g, "/nonexistent/file.gguf") == LB_ERR_IO && g == NULL);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            remove_tree(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    char dir[] = "/tmp/lowbit-test-gguf-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip(dir, 32);
    test_round_trip(dir, 64);
    test_round_trip(dir, 1);
    test_getters(dir);
    test_minimal_and_v2(dir);
    test_writer_errors(dir);
    test_writer_alloc_failures(dir);
    remove_tree(dir);
    return test_finish("test_gguf");
}
