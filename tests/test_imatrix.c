/* imatrix: accumulation, importance, both llama.cpp file formats (round trips, hand-made
 * files, truncation at every byte, corrupt fields, the malformed corpus, seeded mutations,
 * failing allocations) and writes that fail without leaving a file. */
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
#include "quant/imatrix.h"
#include "test_util.h"

#define MUTATION_SEED 0x696d6174726978ull
#define MUTATION_ITERATIONS 3000
#define MIN_CORPUS_FILES 30

static char tmp_dir[] = "/tmp/lowbit-test-imatrix-XXXXXX";

static const char *tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmp_dir, name);
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    *size = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data && n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Files in the temp dir whose name contains ".tmp." (left-over atomic-write temp files). */
static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(tmp_dir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* A failure must be one line naming the input and an offset. */
static bool clean_message(const char *name)
{
    const char *msg = lb_last_error();
    return strchr(msg, '\n') == NULL && strstr(msg, name) != NULL &&
           strstr(msg, "offset") != NULL;
}

/* ---- a byte builder for hand-made legacy files ---- */

typedef struct bytes {
    uint8_t data[4096];
    size_t size;
} bytes;

static void put_raw(bytes *b, const void *p, size_t n)
{
    if (b->size + n <= sizeof b->data) {
        memcpy(b->data + b->size, p, n);
        b->size += n;
    }
}

static void put_i32(bytes *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t x[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    put_raw(b, x, 4);
}

static void put_f32(bytes *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_i32(b, (int32_t)u);
}

static void put_name(bytes *b, const char *s)
{
    put_i32(b, (int32_t)strlen(s));
    put_raw(b, s, strlen(s));
}

/* Like save_imatrix_legacy: entry name, ncall, nval, values. */
static void put_entry(bytes *b, const char *name, int32_t ncall, int32_t nval, const float *v)
{
    put_name(b, name);
    put_i32(b, ncall);
    put_i32(b, nval);
    for (int32_t i = 0; i < nval; i++)
        put_f32(b, v[i]);
}

static const float legacy_q[4] = {4.0f, 0.5f, 12.0f, 0.0f};
static const float legacy_k[3] = {1.0f, 2.5f, 300.0f};

/* Two entries out of name order, a chunk count and a dataset name. *entries_end and
 * *chunk_end get the offsets after the entries and after the chunk count. */
static void make_legacy(bytes *b, size_t *entries_end, size_t *chunk_end)
{
    b->size = 0;
    put_i32(b, 2);
    put_entry(b, "blk.0.attn_q.weight", 4, 4, legacy_q);
    put_entry(b, "blk.0.attn_k.weight", 2, 3, legacy_k);
    *entries_end = b->size;
    put_i32(b, 10);
    *chunk_end = b->size;
    put_name(b, "wiki.train.raw");
}

/* ---- tests ---- */

static void test_add_and_importance(void)
{
    lb_imatrix *m = NULL;
    const double a[3] = {1.0, 4.0, 0.0}, b[3] = {3.0, 0.0, 9.0}, bad[3] = {1.0, NAN, 2.0};
    const double neg[3] = {1.0, -1.0, 2.0}, wide[4] = {1, 1, 1, 1};
    float imp[4];
    CHECK_OK(lb_imatrix_create(&m));
    CHECK(m && m->n_entries == 0 && m->n_datasets == 0 && m->chunk_count == 0);
    CHECK_OK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, a, 2));
    CHECK_OK(lb_imatrix_add(m, "blk.0.attn_q.weight", 3, b, 3));
    CHECK_OK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, b, 2));
    CHECK(m->n_entries == 2);
    /* Sorted by name whatever the order of creation. */
    CHECK(strcmp(m->entries[0].name, "blk.0.attn_q.weight") == 0);
    CHECK(strcmp(m->entries[1].name, "blk.1.ffn_up.weight") == 0);
    const lb_imatrix_entry *e = lb_imatrix_find(m, "blk.1.ffn_up.weight");
    CHECK(e && e->n_per_row == 3 && e->n_mat == 1 && e->counts[0] == 4);
    CHECK(e && e->sum_sq[0] == 4.0 && e->sum_sq[1] == 4.0 && e->sum_sq[2] == 9.0);
    CHECK_OK(lb_imatrix_importance(e, 0, imp));
    CHECK(imp[0] == 1.0f && imp[1] == 1.0f && imp[2] == 2.25f);
    CHECK(lb_imatrix_find(m, "blk.2.ffn_up.weight") == NULL);
    CHECK(lb_imatrix_find(m, "") == NULL);

    /* Stacked experts: one matrix reached, the others weigh 1 as in llama.cpp's quantize. */
    CHECK_OK(lb_imatrix_add_matrix(m, "blk.0.ffn_up_exps.weight", 2, 3, 1, b, 4));
    e = lb_imatrix_find(m, "blk.0.ffn_up_exps.weight");
    CHECK(e && e->n_mat == 3 && e->counts[0] == 0 && e->counts[1] == 4 && e->counts[2] == 0);
    CHECK_OK(lb_imatrix_importance(e, 1, imp));
    CHECK(imp[0] == 0.75f && imp[1] == 0.0f);
    CHECK_OK(lb_imatrix_importance(e, 0, imp));
    CHECK(imp[0] == 1.0f && imp[1] == 1.0f);
    CHECK(lb_imatrix_importance(e, 3, imp) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_importance(e, -1, imp) == LB_ERR_INVALID_ARG);

    /* Rejected adds leave everything as it was. */
    CHECK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 4, wide, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add_matrix(m, "blk.1.ffn_up.weight", 3, 2, 0, a, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, bad, 1) == LB_ERR_NUMERIC);
    CHECK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, neg, 1) == LB_ERR_NUMERIC);
    CHECK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, a, -1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add(m, "blk.1.ffn_up.weight", 3, a, INT64_MAX) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add(m, "", 3, a, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add(m, "x", 0, a, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add_matrix(m, "x", 3, 2, 2, a, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add_matrix(m, "x", INT64_MAX, 4, 0, a, 1) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add(m, NULL, 3, a, 1) == LB_ERR_INVALID_ARG);
    e = lb_imatrix_find(m, "blk.1.ffn_up.weight");
    CHECK(m->n_entries == 3 && e && e->counts[0] == 4 && e->sum_sq[2] == 9.0);

    CHECK_OK(lb_imatrix_add_dataset(m, "wiki.train.raw"));
    CHECK(lb_imatrix_add_dataset(m, "") == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_add_dataset(m, NULL) == LB_ERR_INVALID_ARG);
    CHECK(m->n_datasets == 1 && strcmp(m->datasets[0], "wiki.train.raw") == 0);
    lb_imatrix_free(&m);
    CHECK(m == NULL);
    lb_imatrix_free(&m);
    lb_imatrix_free(NULL);
}

static void test_format_for_path(void)
{
    CHECK(lb_imatrix_format_for_path("imatrix.dat") == LB_IMATRIX_LEGACY);
    CHECK(lb_imatrix_format_for_path("/a/b/IMATRIX.DAT") == LB_IMATRIX_LEGACY);
    CHECK(lb_imatrix_format_for_path(".dat") == LB_IMATRIX_LEGACY);
    CHECK(lb_imatrix_format_for_path("imatrix.gguf") == LB_IMATRIX_GGUF);
    CHECK(lb_imatrix_format_for_path("imatrix.dat.gguf") == LB_IMATRIX_GGUF);
    CHECK(lb_imatrix_format_for_path("imatrix.data") == LB_IMATRIX_GGUF);
    CHECK(lb_imatrix_format_for_path("dat") == LB_IMATRIX_GGUF);
    CHECK(lb_imatrix_format_for_path("") == LB_IMATRIX_GGUF);
    CHECK(lb_imatrix_format_for_path(NULL) == LB_IMATRIX_GGUF);
}

/* Three weights: an ordinary one, stacked experts with an unused expert, and one whose only
 * matrix is unused. Values are multiples of 1/4, exact in float32. */
static lb_imatrix *make_sample(void)
{
    lb_imatrix *m = NULL;
    double row[8];
    if (lb_imatrix_create(&m) != LB_OK)
        return NULL;
    for (int i = 0; i < 8; i++)
        row[i] = 0.25 * (i * 7 % 11);
    lb_status s = lb_imatrix_add(m, "blk.0.attn_q.weight", 8, row, 300);
    for (int i = 0; i < 8; i++)
        row[i] = 0.5 * (i + 1);
    if (s == LB_OK)
        s = lb_imatrix_add_matrix(m, "blk.0.ffn_down_exps.weight", 4, 3, 0, row, 100);
    if (s == LB_OK)
        s = lb_imatrix_add_matrix(m, "blk.0.ffn_down_exps.weight", 4, 3, 2, row + 4, 28);
    if (s == LB_OK)
        s = lb_imatrix_add(m, "blk.1.attn_v.weight", 2, row, 0);
    if (s == LB_OK)
        s = lb_imatrix_add_dataset(m, "calib-a.txt");
    if (s == LB_OK)
        s = lb_imatrix_add_dataset(m, "calib-b.txt");
    m->chunk_count = 3;
    m->chunk_size = 128;
    if (s != LB_OK)
        lb_imatrix_free(&m);
    return m;
}

static bool same_entries(const lb_imatrix *a, const lb_imatrix *b)
{
    if (a->n_entries != b->n_entries)
        return false;
    for (int64_t i = 0; i < a->n_entries; i++) {
        const lb_imatrix_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->name, y->name) != 0 || x->n_per_row != y->n_per_row ||
            x->n_mat != y->n_mat)
            return false;
        if (memcmp(x->counts, y->counts, (size_t)x->n_mat * sizeof *x->counts) != 0 ||
            memcmp(x->sum_sq, y->sum_sq, (size_t)(x->n_mat * x->n_per_row) * sizeof(double)))
            return false;
    }
    return true;
}

static void test_round_trip_gguf(void)
{
    char path[512];
    lb_imatrix *m = make_sample(), *r = NULL;
    lb_gguf *g = NULL;
    CHECK(m != NULL);
    if (!m)
        return;
    tmp_path(path, sizeof path, "sample.gguf");
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF));
    CHECK_OK(lb_imatrix_read(&r, path));
    CHECK(r && same_entries(m, r));
    CHECK(r && r->chunk_count == 3 && r->chunk_size == 128 && r->n_datasets == 2);
    CHECK(r && r->n_datasets == 2 && strcmp(r->datasets[1], "calib-b.txt") == 0);
    lb_imatrix_free(&r);

    /* The layout llama.cpp's save_imatrix produces, checked with lowbit's GGUF reader. */
    CHECK_OK(lb_gguf_open(&g, path));
    if (g) {
        lb_gguf_string s = {0};
        const lb_gguf_value *arr = NULL;
        CHECK_OK(lb_gguf_get_string(g, "general.type", &s));
        CHECK(s.len == 7 && memcmp(s.data, "imatrix", 7) == 0);
        CHECK(g->n_kv == 4 && strcmp(g->kv[0].key, "general.type") == 0 &&
              strcmp(g->kv[1].key, "imatrix.datasets") == 0 &&
              strcmp(g->kv[2].key, "imatrix.chunk_count") == 0 &&
              strcmp(g->kv[3].key, "imatrix.chunk_size") == 0);
        CHECK(g->n_kv == 4 && g->kv[2].value.type == LB_GGUF_UINT32 &&
              g->kv[2].value.v.u32 == 3 && g->kv[3].value.type == LB_GGUF_UINT32 &&
              g->kv[3].value.v.u32 == 128);
        CHECK_OK(lb_gguf_get_array(g, "imatrix.datasets", LB_GGUF_STRING, &arr));
        CHECK(arr && arr->v.arr.count == 2);
        static const struct {
            const char *name;
            int n_dims;
            int64_t ne0, ne1;
        } want[] = {
            {"blk.0.attn_q.weight.in_sum2", 1, 8, 1},
            {"blk.0.attn_q.weight.counts", 1, 1, 1},
            {"blk.0.ffn_down_exps.weight.in_sum2", 2, 4, 3},
            {"blk.0.ffn_down_exps.weight.counts", 2, 1, 3},
            {"blk.1.attn_v.weight.in_sum2", 1, 2, 1},
            {"blk.1.attn_v.weight.counts", 1, 1, 1},
        };
        CHECK(g->n_tensors == 6);
        for (int64_t i = 0; i < g->n_tensors && i < 6; i++) {
            const lb_gguf_tensor_info *t = &g->tensors[i];
            CHECK(strcmp(t->name, want[i].name) == 0 && t->type == LB_TYPE_F32 &&
                  t->n_dims == want[i].n_dims && t->ne[0] == want[i].ne0 &&
                  t->ne[1] == want[i].ne1);
        }
        float c[3];
        memcpy(c, g->tensors[3].data, sizeof c);
        CHECK(c[0] == 100.0f && c[1] == 0.0f && c[2] == 28.0f);
        lb_gguf_close(&g);
    }

    /* No dataset: one "" for llama.cpp's quantize, dropped again on reading. */
    for (int64_t i = 0; i < m->n_datasets; i++)
        lb_free(m->datasets[i]);
    m->n_datasets = 0;
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF));
    CHECK_OK(lb_gguf_open(&g, path));
    if (g) {
        const lb_gguf_value *arr = NULL;
        CHECK_OK(lb_gguf_get_array(g, "imatrix.datasets", LB_GGUF_STRING, &arr));
        CHECK(arr && arr->v.arr.count == 1 && arr->v.arr.strings[0].len == 0);
        lb_gguf_close(&g);
    }
    CHECK_OK(lb_imatrix_read(&r, path));
    CHECK(r && r->n_datasets == 0 && same_entries(m, r));
    lb_imatrix_free(&r);
    lb_imatrix_free(&m);
    unlink(path);
}

static void test_round_trip_legacy(void)
{
    char path[512], path2[512], path3[512];
    lb_imatrix *m = make_sample(), *r = NULL, *r2 = NULL;
    float want[8], got[16];
    CHECK(m != NULL);
    if (!m)
        return;
    tmp_path(path, sizeof path, "sample.dat");
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY));
    CHECK_OK(lb_imatrix_read(&r, path));
    /* blk.1.attn_v has no data and is skipped; the experts are flattened into one row. */
    CHECK(r && r->n_entries == 2 && r->chunk_count == 3 && r->chunk_size == 0);
    CHECK(r && r->n_datasets == 1 && strcmp(r->datasets[0], "calib-b.txt") == 0);
    if (r && r->n_entries == 2) {
        const lb_imatrix_entry *q = lb_imatrix_find(r, "blk.0.attn_q.weight");
        const lb_imatrix_entry *x = lb_imatrix_find(r, "blk.0.ffn_down_exps.weight");
        CHECK(q && q->n_per_row == 8 && q->n_mat == 1 && q->counts[0] == 3); /* ceil(300/128) */
        CHECK(x && x->n_per_row == 12 && x->n_mat == 1 && x->counts[0] == 1);
        if (q && x && q->n_per_row == 8 && x->n_per_row == 12) {
            CHECK_OK(lb_imatrix_importance(q, 0, got));
            CHECK_OK(lb_imatrix_importance(lb_imatrix_find(m, q->name), 0, want));
            for (int j = 0; j < 8; j++)
                CHECK(fabsf(got[j] - want[j]) <= 1e-6f * want[j]);
            CHECK_OK(lb_imatrix_importance(x, 0, got));
            const lb_imatrix_entry *xm = lb_imatrix_find(m, x->name);
            for (int k = 0; k < 3; k++) {
                CHECK_OK(lb_imatrix_importance(xm, k, want));
                for (int j = 0; j < 4; j++)
                    CHECK(fabsf(got[4 * k + j] - want[j]) <= 1e-6f * want[j]);
            }
        }
    }
    /* Legacy in, legacy out: the same bytes. */
    tmp_path(path2, sizeof path2, "sample2.dat");
    if (r)
        CHECK_OK(lb_imatrix_write(r, path2, LB_IMATRIX_LEGACY));
    size_t n1, n2;
    uint8_t *b1 = read_whole(path, &n1), *b2 = read_whole(path2, &n2);
    CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    /* Legacy in, GGUF out: what quantize sees stays the same (counts = ncall). */
    tmp_path(path3, sizeof path3, "sample-from-dat.gguf");
    if (r)
        CHECK_OK(lb_imatrix_write(r, path3, LB_IMATRIX_GGUF));
    CHECK_OK(lb_imatrix_read(&r2, path3));
    CHECK(r && r2 && same_entries(r, r2) && r2->chunk_count == 3 && r2->n_datasets == 1);
    lb_imatrix_free(&r2);
    lb_imatrix_free(&r);

    /* The format is detected from the content, not the name. */
    char swapped[512];
    tmp_path(swapped, sizeof swapped, "legacy-named.gguf");
    CHECK_OK(lb_imatrix_write(m, swapped, LB_IMATRIX_LEGACY));
    CHECK_OK(lb_imatrix_read(&r, swapped));
    CHECK(r && r->n_entries == 2 && r->chunk_size == 0);
    lb_imatrix_free(&r);
    unlink(swapped);
    tmp_path(swapped, sizeof swapped, "gguf-named.dat");
    CHECK_OK(lb_imatrix_write(m, swapped, LB_IMATRIX_GGUF));
    CHECK_OK(lb_imatrix_read(&r, swapped));
    CHECK(r && same_entries(m, r) && r->chunk_size == 128);
    lb_imatrix_free(&r);
    unlink(swapped);

    /* Without chunk_size, ncall is the largest count. */
    m->chunk_size = 0;
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY));
    CHECK_OK(lb_imatrix_read(&r, path));
    const lb_imatrix_entry *q = r ? lb_imatrix_find(r, "blk.0.attn_q.weight") : NULL;
    CHECK(q && q->counts[0] == 300);
    lb_imatrix_free(&r);
    lb_imatrix_free(&m);
    unlink(path);
    unlink(path2);
    unlink(path3);
}

/* A file laid out as llama.cpp's save_imatrix_legacy writes it, and its older variants. */
static void test_legacy_hand_made(void)
{
    bytes b;
    size_t entries_end, chunk_end;
    lb_imatrix *m = NULL;
    float imp[4];
    make_legacy(&b, &entries_end, &chunk_end);
    CHECK_OK(lb_imatrix_read_memory(&m, "hand.dat", b.data, b.size));
    CHECK(m && m->n_entries == 2 && m->chunk_count == 10 && m->chunk_size == 0);
    CHECK(m && m->n_datasets == 1 && strcmp(m->datasets[0], "wiki.train.raw") == 0);
    if (m && m->n_entries == 2) {
        const lb_imatrix_entry *k = &m->entries[0], *q = &m->entries[1];
        CHECK(strcmp(k->name, "blk.0.attn_k.weight") == 0 && k->n_per_row == 3 &&
              k->counts[0] == 2 && k->sum_sq[2] == 300.0);
        CHECK(strcmp(q->name, "blk.0.attn_q.weight") == 0 && q->n_per_row == 4 &&
              q->counts[0] == 4);
        /* quantize: values / ncall */
        CHECK_OK(lb_imatrix_importance(q, 0, imp));
        CHECK(imp[0] == 1.0f && imp[1] == 0.125f && imp[2] == 3.0f && imp[3] == 0.0f);
    }
    lb_imatrix_free(&m);

    /* The first legacy files end after the entries; newer llama.cpp accepts the chunk count
     * alone. */
    CHECK_OK(lb_imatrix_read_memory(&m, "old.dat", b.data, entries_end));
    CHECK(m && m->n_entries == 2 && m->chunk_count == 0 && m->n_datasets == 0);
    lb_imatrix_free(&m);
    CHECK_OK(lb_imatrix_read_memory(&m, "chunks.dat", b.data, chunk_end));
    CHECK(m && m->chunk_count == 10 && m->n_datasets == 0);
    lb_imatrix_free(&m);

    /* An empty dataset name (no prompt file) means none; ncall 0 takes values as they are. */
    b.size = 0;
    put_i32(&b, 1);
    put_entry(&b, "output.weight", 0, 2, legacy_k);
    put_i32(&b, 0);
    put_i32(&b, 0);
    CHECK_OK(lb_imatrix_read_memory(&m, "zero.dat", b.data, b.size));
    CHECK(m && m->n_entries == 1 && m->n_datasets == 0 && m->entries[0].counts[0] == 1);
    if (m && m->n_entries == 1) {
        CHECK_OK(lb_imatrix_importance(&m->entries[0], 0, imp));
        CHECK(imp[0] == 1.0f && imp[1] == 2.5f);
    }
    lb_imatrix_free(&m);
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

/* Allocation k fails for k = 0.. until the operation succeeds: every failure is NOMEM. */
static void test_alloc_failures(void)
{
    char gguf_path[512], dat_path[512], out_path[512];
    lb_imatrix *m = make_sample();
    CHECK(m != NULL);
    if (!m)
        return;
    tmp_path(gguf_path, sizeof gguf_path, "alloc.gguf");
    tmp_path(dat_path, sizeof dat_path, "alloc.dat");
    tmp_path(out_path, sizeof out_path, "alloc-out.gguf");
    CHECK_OK(lb_imatrix_write(m, gguf_path, LB_IMATRIX_GGUF));
    CHECK_OK(lb_imatrix_write(m, dat_path, LB_IMATRIX_LEGACY));
    for (int pass = 0; pass < 5; pass++) {
        int64_t k;
        for (k = 0; k < 10000; k++) {
            lb_imatrix *r = NULL;
            lb_status s;
            const double row[8] = {1, 2, 3, 4, 5, 6, 7, 8};
            lb_alloc_fail_after(k);
            switch (pass) {
            case 0: s = lb_imatrix_read(&r, gguf_path); break;
            case 1: s = lb_imatrix_read(&r, dat_path); break;
            case 2: s = lb_imatrix_write(m, out_path, LB_IMATRIX_GGUF); break;
            case 3: s = lb_imatrix_write(m, out_path, LB_IMATRIX_LEGACY); break;
            default:
                s = lb_imatrix_add(m, "blk.0.attn_a.weight", 8, row, 1);
                if (s == LB_OK)
                    s = lb_imatrix_add_dataset(m, "more.txt");
                break;
            }
            lb_alloc_fail_after(-1);
            lb_imatrix_free(&r);
            if (s == LB_OK)
                break;
            if (s != LB_ERR_NOMEM) {
                fprintf(stderr, "pass %d, allocation %lld failing: %s: %s\n", pass,
                        (long long)k, lb_status_name(s), lb_last_error());
                test_failures++;
                break;
            }
            CHECK(pass < 2 || pass > 3 || !file_exists(out_path));
        }
        CHECK(k > 0 && k < 10000);
        unlink(out_path);
    }
    CHECK(lb_imatrix_find(m, "blk.0.attn_a.weight") != NULL);
    lb_imatrix_free(&m);
    unlink(gguf_path);
    unlink(dat_path);
}

/* Failed writes leave no file, no temp file, and an existing target as it was. */
static void test_write_failures(void)
{
    char path[512], existing[512], bad_dir[512];
    lb_imatrix *m = NULL, *big = make_sample();
    const double one[2] = {1.0, 1.0}, huge[2] = {1e300, 1.0};
    char long_name[80];
    CHECK_OK(lb_imatrix_create(&m));
    tmp_path(path, sizeof path, "never.gguf");

    CHECK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY) == LB_ERR_INVALID_ARG);
    CHECK(!file_exists(path));
    CHECK(lb_imatrix_write(m, path, (lb_imatrix_format)7) == LB_ERR_INVALID_ARG);

    /* Only entries without data: nothing the legacy format can hold. */
    CHECK_OK(lb_imatrix_add(m, "w", 2, one, 0));
    CHECK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY) == LB_ERR_INVALID_ARG);
    CHECK(!file_exists(path));
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF)); /* GGUF keeps partial data */
    unlink(path);

    /* ggml's tensor name limit: 55 bytes of weight name, plus ".in_sum2". */
    memset(long_name, 'a', sizeof long_name);
    long_name[55] = '\0';
    CHECK_OK(lb_imatrix_add(m, long_name, 2, one, 1));
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF));
    unlink(path);
    long_name[55] = 'a';
    long_name[56] = '\0';
    CHECK_OK(lb_imatrix_add(m, long_name, 2, one, 1));
    CHECK(lb_imatrix_write(m, path, LB_IMATRIX_GGUF) == LB_ERR_INVALID_ARG);
    CHECK(!file_exists(path));
    CHECK_OK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY)); /* no limit there */
    unlink(path);

    /* Values that overflow float32. */
    CHECK_OK(lb_imatrix_add(m, "z", 2, huge, 1));
    CHECK(lb_imatrix_write(m, path, LB_IMATRIX_LEGACY) == LB_ERR_NUMERIC);
    lb_imatrix *z = NULL;
    CHECK_OK(lb_imatrix_create(&z));
    CHECK_OK(lb_imatrix_add(z, "z", 2, huge, 1));
    CHECK(lb_imatrix_write(z, path, LB_IMATRIX_GGUF) == LB_ERR_NUMERIC);
    lb_imatrix_free(&z);
    CHECK(!file_exists(path));

    /* Fields the formats cannot hold. */
    if (big) {
        big->chunk_count = (int64_t)UINT32_MAX + 1;
        CHECK(lb_imatrix_write(big, path, LB_IMATRIX_GGUF) == LB_ERR_INVALID_ARG);
        big->chunk_count = (int64_t)INT32_MAX + 1;
        CHECK(lb_imatrix_write(big, path, LB_IMATRIX_LEGACY) == LB_ERR_INVALID_ARG);
        big->chunk_count = 3;
        big->chunk_size = 0;
        big->entries[0].counts[0] = (int64_t)INT32_MAX + 1; /* ncall = the count */
        CHECK(lb_imatrix_write(big, path, LB_IMATRIX_LEGACY) == LB_ERR_INVALID_ARG);
        big->chunk_size = 128;
        CHECK(!file_exists(path));
        CHECK_OK(lb_imatrix_write(big, path, LB_IMATRIX_LEGACY));
        unlink(path);
    }

    /* A directory that does not exist: IO, nothing created. */
    snprintf(bad_dir, sizeof bad_dir, "%s/no-such-dir/x.gguf", tmp_dir);
    CHECK(big && lb_imatrix_write(big, bad_dir, LB_IMATRIX_GGUF) == LB_ERR_IO);
    CHECK(big && lb_imatrix_write(big, bad_dir, LB_IMATRIX_LEGACY) == LB_ERR_IO);

    /* A failing write over an existing file leaves it as it was. */
    tmp_path(existing, sizeof existing, "existing.dat");
    if (big) {
        size_t n0, n1;
        CHECK_OK(lb_imatrix_write(big, existing, LB_IMATRIX_LEGACY));
        uint8_t *before = read_whole(existing, &n0);
        CHECK(lb_imatrix_write(m, existing, LB_IMATRIX_LEGACY) == LB_ERR_NUMERIC);
        lb_alloc_fail_after(2);
        lb_status s = lb_imatrix_write(big, existing, LB_IMATRIX_LEGACY);
        lb_alloc_fail_after(-1);
        CHECK(s == LB_ERR_NOMEM || s == LB_OK);
        uint8_t *after = read_whole(existing, &n1);
        CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
        free(before);
        free(after);
    }
    CHECK(count_temp_files() == 0);
    unlink(existing);
    lb_imatrix_free(&m);
    lb_imatrix_free(&big);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_add_and_importance();
    test_format_for_path();
    test_round_trip_gguf();
    test_round_trip_legacy();
    test_legacy_hand_made();
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
    test_alloc_failures();
    test_write_failures();
    CHECK(count_temp_files() == 0);
    if (rmdir(tmp_dir) != 0) {
        fprintf(stderr, "%s is not empty\n", tmp_dir);
        test_failures++;
    }
    return test_finish("test_imatrix");
}
