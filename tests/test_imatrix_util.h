/* Helpers shared by test_imatrix.c and test_imatrix_malformed.c: a temp directory, whole-file
 * reads, a byte builder for hand-made legacy files and a sample imatrix. */
#ifndef LB_TEST_IMATRIX_UTIL_H
#define LB_TEST_IMATRIX_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/imatrix.h"
#include "test_util.h"

static char tmp_dir[] = "/tmp/lowbit-test-imatrix-XXXXXX";

static inline const char *tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmp_dir, name);
    return buf;
}

static inline uint8_t *read_whole(const char *path, size_t *size)
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
static inline int count_temp_files(void)
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

/* Creates tmp_dir; false (and a message) when it cannot. */
static inline bool tmp_dir_create(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return false;
    }
    return true;
}

/* Removes tmp_dir, which every test must have left empty of files and temp files. */
static inline void tmp_dir_remove(void)
{
    CHECK(count_temp_files() == 0);
    if (rmdir(tmp_dir) != 0) {
        fprintf(stderr, "%s is not empty\n", tmp_dir);
        test_failures++;
    }
}

/* ---- a byte builder for hand-made legacy files ---- */

typedef struct bytes {
    uint8_t data[4096];
    size_t size;
} bytes;

static inline void put_raw(bytes *b, const void *p, size_t n)
{
    if (b->size + n <= sizeof b->data) {
        memcpy(b->data + b->size, p, n);
        b->size += n;
    }
}

static inline void put_i32(bytes *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t x[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    put_raw(b, x, 4);
}

static inline void put_f32(bytes *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_i32(b, (int32_t)u);
}

static inline void put_name(bytes *b, const char *s)
{
    put_i32(b, (int32_t)strlen(s));
    put_raw(b, s, strlen(s));
}

/* Like save_imatrix_legacy: entry name, ncall, nval, values. */
static inline void put_entry(bytes *b, const char *name, int32_t ncall, int32_t nval,
                             const float *v)
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
static inline void make_legacy(bytes *b, size_t *entries_end, size_t *chunk_end)
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

/* Three weights: an ordinary one, stacked experts with an unused expert, and one whose only
 * matrix is unused. Values are multiples of 1/4, exact in float32. */
static inline lb_imatrix *make_sample(void)
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

#endif
