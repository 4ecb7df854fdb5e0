/* imatrix: accumulation, importance, both llama.cpp file formats (round trips, hand-made
 * files), failing allocations and writes that fail without leaving a file. Malformed input is
 * in test_imatrix_malformed.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc_internal.h"
#include "formats/gguf.h"
#include "quant/imatrix.h"
#include "test_imatrix_util.h"
#include "test_util.h"

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

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
    if (!tmp_dir_create())
        return 1;
    test_add_and_importance();
    test_format_for_path();
    test_round_trip_gguf();
    test_round_trip_legacy();
    test_legacy_hand_made();
    test_alloc_failures();
    test_write_failures();
    tmp_dir_remove();
    return test_finish("test_imatrix");
}
