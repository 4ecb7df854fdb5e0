/* imatrix readers on malformed input, in both llama.cpp file formats: truncation at every
 * byte, corrupt fields, the malformed corpus, and seeded mutations. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rng.h"
#include "formats/gguf.h"
#include "quant/imatrix.h"
#include "test_imatrix_util.h"
#include "test_util.h"

#define MUTATION_SEED 0x696d6174726978ull
#define MUTATION_ITERATIONS 3000
#define MIN_CORPUS_FILES 30

/* A failure must be one line naming the input and an offset. */
static bool clean_message(const char *name)
{
    const char *msg = lb_last_error();
    return strchr(msg, '\n') == NULL && strstr(msg, name) != NULL &&
           strstr(msg, "offset") != NULL;
}

/* Every prefix of a legacy file is rejected, except the two that are older valid layouts. */
static void test_legacy_truncation(void)
{
    bytes b;
    size_t entries_end, chunk_end;
    make_legacy(&b, &entries_end, &chunk_end);
    for (size_t n = 0; n < b.size; n++) {
        lb_imatrix *m = NULL;
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, b.data, n);
        lb_status s = lb_imatrix_read_memory(&m, "cut.dat", exact, n);
        if (n == entries_end || n == chunk_end) {
            CHECK(s == LB_OK);
        } else if (s != LB_ERR_CORRUPT_FILE || m != NULL || !clean_message("cut.dat")) {
            fprintf(stderr, "legacy cut at %zu: %s: %s\n", n, lb_status_name(s),
                    lb_last_error());
            test_failures++;
        }
        lb_imatrix_free(&m);
        free(exact);
    }
}

static void test_gguf_truncation(void)
{
    char path[512];
    lb_imatrix *m = make_sample();
    size_t size;
    CHECK(m != NULL);
    if (!m)
        return;
    tmp_path(path, sizeof path, "cut.gguf");
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF));
    lb_imatrix_free(&m);
    uint8_t *data = read_whole(path, &size);
    CHECK(data != NULL);
    for (size_t n = 0; data && n < size; n++) {
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, data, n);
        lb_status s = lb_imatrix_read_memory(&m, "cut.gguf", exact, n);
        /* lb_gguf does not need the padding after the last tensor's data. */
        bool in_final_padding = s == LB_OK && n + LB_GGUF_DEFAULT_ALIGNMENT > size;
        if (!in_final_padding &&
            (s != LB_ERR_CORRUPT_FILE || m != NULL || !clean_message("cut.gguf"))) {
            fprintf(stderr, "gguf cut at %zu: %s: %s\n", n, lb_status_name(s), lb_last_error());
            test_failures++;
        }
        lb_imatrix_free(&m);
        free(exact);
    }
    free(data);
    unlink(path);
}

/* Reads `b` and expects CORRUPT_FILE with a message that holds `text`. */
static void expect_corrupt(const char *what, const void *data, size_t size, const char *text)
{
    lb_imatrix *m = NULL;
    uint8_t *exact = malloc(size ? size : 1);
    memcpy(exact, data, size);
    lb_status s = lb_imatrix_read_memory(&m, what, exact, size);
    if (s != LB_ERR_CORRUPT_FILE || m != NULL || !clean_message(what) ||
        !strstr(lb_last_error(), text)) {
        fprintf(stderr, "%s: got %s, want corrupt file with \"%s\": %s\n", what,
                lb_status_name(s), text, s == LB_OK ? "read" : lb_last_error());
        test_failures++;
    }
    lb_imatrix_free(&m);
    free(exact);
}

static void test_legacy_corrupt(void)
{
    bytes b;
    const float nan_v[2] = {1.0f, NAN}, inf_v[2] = {INFINITY, 1.0f}, neg_v[2] = {1.0f, -2.0f};
    size_t e, c;

#define LEGACY_CASE(label, text, ...)                                                        \
    do {                                                                                     \
        b.size = 0;                                                                          \
        __VA_ARGS__;                                                                         \
        expect_corrupt(label, b.data, b.size, text);                                         \
    } while (0)

    LEGACY_CASE("empty.dat", "n_entries at offset 0: truncated", (void)0);
    LEGACY_CASE("zero_entries.dat", "n_entries at offset 0: 0 entries", put_i32(&b, 0));
    LEGACY_CASE("negative_entries.dat", "n_entries at offset 0", put_i32(&b, -1));
    /* 2^31-1 entries: rejected from the file size before anything is allocated. */
    LEGACY_CASE("huge_entries.dat", "cannot fit", put_i32(&b, INT32_MAX);
                put_entry(&b, "a", 1, 2, legacy_k));
    LEGACY_CASE("name_length_negative.dat", "entry[0] name length at offset 4", put_i32(&b, 1);
                put_i32(&b, -5); put_raw(&b, "abcdefghijklmnop", 16));
    LEGACY_CASE("name_length_zero.dat", "empty name", put_i32(&b, 1); put_i32(&b, 0);
                put_i32(&b, 1); put_i32(&b, 1); put_f32(&b, 1.0f); put_f32(&b, 1.0f));
    LEGACY_CASE("name_length_huge.dat", "entry[0] name at offset 8: truncated", put_i32(&b, 1);
                put_i32(&b, INT32_MAX); put_raw(&b, "abcdefghijklmnop", 16));
    LEGACY_CASE("name_nul.dat", "NUL", put_i32(&b, 1); put_i32(&b, 3); put_raw(&b, "a\0b", 3);
                put_i32(&b, 1); put_i32(&b, 1); put_f32(&b, 1.0f));
    LEGACY_CASE("ncall_negative.dat", "entry[0] 'w' ncall at offset 9", put_i32(&b, 1);
                put_entry(&b, "w", -3, 2, legacy_k));
    LEGACY_CASE("nval_zero.dat", "nval at offset 13: nval 0", put_i32(&b, 1);
                put_entry(&b, "w", 1, 0, legacy_k); put_raw(&b, "0123456789abcdef", 16));
    LEGACY_CASE("nval_negative.dat", "nval -7", put_i32(&b, 1); put_entry(&b, "w", 1, 2, legacy_k);
                b.data[13] = 0xf9; b.data[14] = b.data[15] = b.data[16] = 0xff);
    LEGACY_CASE("nval_huge.dat", "values at offset 17: truncated", put_i32(&b, 1);
                put_entry(&b, "w", 1, 2, legacy_k); b.data[16] = 0x7f);
    LEGACY_CASE("value_nan.dat", "values at offset 21: value 1 is nan", put_i32(&b, 1);
                put_entry(&b, "w", 1, 2, nan_v));
    LEGACY_CASE("value_inf.dat", "values at offset 17: value 0 is inf", put_i32(&b, 1);
                put_entry(&b, "w", 1, 2, inf_v));
    LEGACY_CASE("value_negative.dat", "value 1 is -2", put_i32(&b, 1);
                put_entry(&b, "w", 1, 2, neg_v));
    LEGACY_CASE("duplicate.dat", "entry[2] 'a' name at offset 50: duplicate of entry[0]",
                put_i32(&b, 3); put_entry(&b, "a", 1, 2, legacy_k);
                put_entry(&b, "b", 1, 2, legacy_k); put_entry(&b, "a", 1, 2, legacy_k));
    make_legacy(&b, &e, &c);
    put_raw(&b, "x", 1);
    expect_corrupt("trailing.dat", b.data, b.size, "1 unexpected bytes after the dataset name");
    make_legacy(&b, &e, &c);
    b.size = c;
    put_i32(&b, -1);
    expect_corrupt("dataset_negative.dat", b.data, b.size, "dataset name length at offset");
    make_legacy(&b, &e, &c);
    b.size = c;
    put_i32(&b, 100);
    put_raw(&b, "short", 5);
    expect_corrupt("dataset_long.dat", b.data, b.size, "dataset name at offset");
    make_legacy(&b, &e, &c);
    b.size = e;
    put_i32(&b, -4);
    expect_corrupt("chunks_negative.dat", b.data, b.size, "chunk count at offset");
    make_legacy(&b, &e, &c);
    b.size = e + 2;
    expect_corrupt("chunks_cut.dat", b.data, b.size, "chunk count at offset");
#undef LEGACY_CASE
}

/* ---- corrupt GGUF imatrix files, written with lowbit's GGUF writer ---- */

typedef struct gguf_case {
    const char *file, *text;
    const char *type;        /* general.type; NULL: none */
    bool bad_chunk_type;     /* chunk_count as FLOAT32 */
    bool negative_chunks;    /* chunk_count as INT32 -1 */
    bool datasets_not_strings;
    const char *sum_name, *count_name, *extra_name; /* "%s" is the weight */
    lb_type sum_type;
    int sum_dims;
    int64_t sum_ne[3];
    int64_t count_ne0;
    float sum0, count0;
} gguf_case;

static lb_status write_case(const gguf_case *c, const char *path)
{
    static float sums[64], counts[8] = {5, 5, 5, 5, 5, 5, 5, 5}, extra[64];
    static const char *const ds[1] = {"d.txt"};
    static const int32_t ids[2] = {1, 2};
    char name[128];
    lb_gguf_writer *w = NULL;
    lb_status s = lb_gguf_writer_create(&w, 32);
    for (int i = 0; i < 64; i++)
        sums[i] = 0.5f * (float)i;
    sums[0] = c->sum0;
    counts[0] = c->count0;
    if (s != LB_OK)
        return s;
    if (c->type)
        s = lb_gguf_writer_set_string(w, "general.type", c->type);
    if (s == LB_OK)
        s = c->datasets_not_strings
                ? lb_gguf_writer_set_array(w, "imatrix.datasets", LB_GGUF_INT32, ids, 2)
                : lb_gguf_writer_set_string_array(w, "imatrix.datasets", ds, NULL, 1);
    if (s == LB_OK)
        s = c->bad_chunk_type ? lb_gguf_writer_set_f32(w, "imatrix.chunk_count", 2.0f)
            : c->negative_chunks ? lb_gguf_writer_set_i32(w, "imatrix.chunk_count", -1)
                                 : lb_gguf_writer_set_u32(w, "imatrix.chunk_count", 2);
    if (s == LB_OK)
        s = lb_gguf_writer_set_u32(w, "imatrix.chunk_size", 16);
    /* A second, valid weight before the case's own. */
    const int64_t ok_ne[1] = {4}, ok_count_ne[1] = {1};
    if (s == LB_OK)
        s = lb_gguf_writer_add_tensor(w, "blk.0.attn_k.weight.in_sum2", LB_TYPE_F32, 1, ok_ne,
                                      sums + 1);
    if (s == LB_OK)
        s = lb_gguf_writer_add_tensor(w, "blk.0.attn_k.weight.counts", LB_TYPE_F32, 1,
                                      ok_count_ne, counts + 1);
    const int64_t count_ne[2] = {c->count_ne0, c->sum_ne[1]};
    if (s == LB_OK && c->sum_name) {
        snprintf(name, sizeof name, c->sum_name, "blk.0.attn_q.weight");
        s = lb_gguf_writer_add_tensor(w, name, c->sum_type, c->sum_dims, c->sum_ne, sums);
    }
    if (s == LB_OK && c->count_name) {
        snprintf(name, sizeof name, c->count_name, "blk.0.attn_q.weight");
        s = lb_gguf_writer_add_tensor(w, name, LB_TYPE_F32, 2, count_ne, counts);
    }
    if (s == LB_OK && c->extra_name) {
        const int64_t ne[1] = {5};
        snprintf(name, sizeof name, c->extra_name, "blk.0.attn_q.weight");
        s = lb_gguf_writer_add_tensor(w, name, LB_TYPE_F32, 1, ne, extra);
    }
    if (s == LB_OK)
        s = lb_gguf_writer_write(w, path);
    lb_gguf_writer_free(&w);
    return s;
}

static void test_gguf_corrupt(void)
{
#define BASE "imatrix", false, false, false
#define PAIR "%s.in_sum2", "%s.counts"
    static const gguf_case cases[] = {
        {"valid.gguf", NULL, BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"model_type.gguf", "general.type at offset", "model", false, false, false, PAIR, NULL,
         LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"chunk_float.gguf", "imatrix.chunk_count at offset", "imatrix", true, false, false,
         PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"chunk_negative.gguf", "imatrix.chunk_count at offset", "imatrix", false, true, false,
         PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"datasets_ints.gguf", "imatrix.datasets at offset", "imatrix", false, false, true,
         PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"no_counts.gguf", "no matching '<weight>.counts'", BASE, "%s.in_sum2", NULL, NULL,
         LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"no_sums.gguf", "no matching '<weight>.in_sum2'", BASE, NULL, "%s.counts", NULL,
         LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"orphan_in_sum.gguf", "no matching '<weight>.in_sum2'", BASE, NULL, NULL, "%s.in_sum",
         LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"in_sum_size.gguf", "'blk.0.attn_q.weight.in_sum' shape at offset", BASE, PAIR,
         "%s.in_sum", LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"empty_base.gguf", "empty weight name", BASE, ".in_sum2", ".counts", NULL,
         LB_TYPE_F32, 2, {4, 2, 1}, 1, 1.0f, 3.0f},
        {"sums_f16.gguf", "type F16, expected F32", BASE, PAIR, NULL, LB_TYPE_F16, 2,
         {4, 2, 1}, 1, 1.0f, 3.0f},
        {"sums_3d.gguf", "expected [n_per_row, n_mat]", BASE, PAIR, NULL, LB_TYPE_F32, 3,
         {4, 1, 2}, 1, 1.0f, 3.0f},
        {"counts_size.gguf", "does not hold the 2 counts", BASE, PAIR, NULL, LB_TYPE_F32, 2,
         {4, 2, 1}, 2, 1.0f, 3.0f},
        {"sum_nan.gguf", "data at offset", BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1, NAN,
         3.0f},
        {"sum_negative.gguf", "value 0 is -1", BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1,
         -1.0f, 3.0f},
        {"count_negative.gguf", "count 0 is -3", BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1},
         1, 1.0f, -3.0f},
        {"count_nan.gguf", "count 0 is nan", BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1}, 1,
         1.0f, NAN},
        {"count_huge.gguf", "count 0 is 1e+30", BASE, PAIR, NULL, LB_TYPE_F32, 2, {4, 2, 1},
         1, 1.0f, 1e30f},
    };
#undef BASE
#undef PAIR
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gguf_case *c = &cases[i];
        lb_imatrix *m = NULL;
        tmp_path(path, sizeof path, c->file);
        lb_status s = write_case(c, path);
        if (s != LB_OK) {
            fprintf(stderr, "%s: cannot write: %s\n", c->file, lb_last_error());
            test_failures++;
            continue;
        }
        s = lb_imatrix_read(&m, path);
        if (!c->text) {
            CHECK_OK(s);
            const lb_imatrix_entry *e = m ? lb_imatrix_find(m, "blk.0.attn_q.weight") : NULL;
            CHECK(m && m->n_entries == 2 && e && e->n_mat == 2 && e->counts[0] == 3 &&
                  e->counts[1] == 5 && m->chunk_count == 2 && m->chunk_size == 16);
        } else if (s != LB_ERR_CORRUPT_FILE || m != NULL || !clean_message(path) ||
                   !strstr(lb_last_error(), c->text)) {
            fprintf(stderr, "%s: got %s, want corrupt file with \"%s\": %s\n", c->file,
                    lb_status_name(s), c->text, s == LB_OK ? "read" : lb_last_error());
            test_failures++;
        }
        lb_imatrix_free(&m);
        unlink(path);
    }

    /* A model GGUF, not an imatrix. */
    lb_gguf_writer *w = NULL;
    const int64_t ne[2] = {4, 2};
    static const float zeros[8];
    tmp_path(path, sizeof path, "model.gguf");
    CHECK_OK(lb_gguf_writer_create(&w, 32));
    CHECK_OK(lb_gguf_writer_set_string(w, "general.architecture", "llama"));
    CHECK_OK(lb_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", LB_TYPE_F32, 2, ne, zeros));
    CHECK_OK(lb_gguf_writer_write(w, path));
    lb_gguf_writer_free(&w);
    lb_imatrix *m = NULL;
    CHECK(lb_imatrix_read(&m, path) == LB_ERR_CORRUPT_FILE && m == NULL);
    CHECK(strstr(lb_last_error(), "no imatrix data") && clean_message(path));
    unlink(path);
    CHECK(lb_imatrix_read(&m, path) == LB_ERR_IO && m == NULL);
}

static void test_corpus(void)
{
    char dir[1024], path[2048];
    char *names[512];
    size_t n = test_list_corpus("tests/malformed/imatrix", ".dat", names, 256, dir, sizeof dir);
    n += test_list_corpus("tests/malformed/imatrix", ".gguf", names + n, 256, dir, sizeof dir);
    CHECK(n >= MIN_CORPUS_FILES);
    for (size_t i = 0; i < n; i++) {
        lb_imatrix *m = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        lb_status s = lb_imatrix_read(&m, path);
        printf("%-40s %s\n", names[i], s == LB_OK ? "read" : lb_last_error());
        if (s != LB_ERR_CORRUPT_FILE || m != NULL || !clean_message(path)) {
            fprintf(stderr, "%s: got %s (want corrupt file)\n", names[i], lb_status_name(s));
            test_failures++;
        }
        lb_imatrix_free(&m);
        free(names[i]);
    }
}

/* Reads everything an accepted imatrix exposes, so that ASan sees any bad pointer. */
static double touch_all(const lb_imatrix *m)
{
    double sum = (double)m->chunk_count + (double)m->chunk_size;
    for (int64_t i = 0; i < m->n_datasets; i++)
        sum += (double)strlen(m->datasets[i]);
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        float *imp = malloc((size_t)e->n_per_row * sizeof *imp);
        if (!imp)
            continue;
        CHECK(lb_imatrix_find(m, e->name) == e);
        for (int64_t k = 0; k < e->n_mat; k++) {
            CHECK(lb_imatrix_importance(e, k, imp) == LB_OK);
            for (int64_t j = 0; j < e->n_per_row; j++)
                sum += imp[j];
        }
        free(imp);
    }
    return sum;
}

static void test_mutations(const char *label, const uint8_t *valid, size_t size)
{
    const char *seed_env = getenv("LB_IMATRIX_FUZZ_SEED");
    const uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : MUTATION_SEED;
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t opened = 0, rejected = 0;
    printf("%s mutations: seed %llu, %d iterations\n", label, (unsigned long long)seed,
           MUTATION_ITERATIONS);
    for (int it = 0; it < MUTATION_ITERATIONS; it++) {
        size_t n = size;
        uint8_t *buf = malloc(size);
        memcpy(buf, valid, size);
        int mutations = 1 + (int)(lb_rng_next(&rng) % 3);
        for (int k = 0; k < mutations && n > 0; k++) {
            uint64_t r = lb_rng_next(&rng), at = lb_rng_next(&rng) % n;
            switch (r % 4) {
            case 0: buf[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
            case 1: buf[at] = (uint8_t)(r >> 16); break;
            case 2: n = (size_t)at; break;
            default: memset(buf + at, 0xFF, n - at < 4 ? n - at : 4); break;
            }
        }
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        free(buf);
        lb_imatrix *m = NULL;
        lb_status s = lb_imatrix_read_memory(&m, "mutant", exact, n);
        if (s == LB_OK) {
            opened++;
            volatile double sink = touch_all(m);
            (void)sink;
        } else {
            rejected++;
            if ((s != LB_ERR_CORRUPT_FILE && s != LB_ERR_UNSUPPORTED) || m != NULL ||
                !clean_message("mutant")) {
                fprintf(stderr, "%s seed %llu iteration %d: %s: %s\n", label,
                        (unsigned long long)seed, it, lb_status_name(s), lb_last_error());
                test_failures++;
            }
        }
        lb_imatrix_free(&m);
        free(exact);
    }
    printf("%s mutations: %lld read, %lld rejected\n", label, (long long)opened,
           (long long)rejected);
    CHECK(rejected > MUTATION_ITERATIONS / 4);
}

int main(void)
{
    if (!tmp_dir_create())
        return 1;
    test_legacy_truncation();
    test_gguf_truncation();
    test_legacy_corrupt();
    test_gguf_corrupt();
    test_corpus();
    {
        bytes b;
        size_t e, c;
        make_legacy(&b, &e, &c);
        test_mutations("legacy", b.data, b.size);
        char path[512];
        size_t size;
        lb_imatrix *m = make_sample();
        tmp_path(path, sizeof path, "mutate.gguf");
        if (m)
            CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF));
        lb_imatrix_free(&m);
        uint8_t *data = read_whole(path, &size);
        CHECK(data != NULL);
        if (data)
            test_mutations("gguf", data, size);
        free(data);
        unlink(path);
    }
    tmp_dir_remove();
    return test_finish("test_imatrix_malformed");
}
