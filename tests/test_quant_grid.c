/* Tests of the per-type block grids: levels in range, scale * q + offset bit-identical to
 * dequantize_row, set_levels round trips and touches only the quant bits. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/tensor.h"
#include "kernels/kernels.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"
#include "test_util.h"

/* The grid identity is exact only without a*b+c contraction (GCC under -std=c11 has none). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define SEED 0x67e1d5eedULL
#define ROW 512         /* two K super-blocks, sixteen legacy blocks */
#define MAX_BLOCK 256   /* weights per block, at most */
#define MAX_BYTES 292   /* bytes per block, at most */
#define MAX_REPORTS 20  /* failure lines printed per check kind */

/* Expected ranges, and the bytes set_levels may write: [first, end) of the quant fields. */
typedef struct grid_expect {
    lb_type type;
    int qmin, qmax;
    size_t first, end;
} grid_expect;

static const grid_expect expected[] = {
    {LB_TYPE_Q8_0, -127, 127, offsetof(lb_block_q8_0, qs), sizeof(lb_block_q8_0)},
    {LB_TYPE_Q4_0, -8, 7, offsetof(lb_block_q4_0, qs), sizeof(lb_block_q4_0)},
    {LB_TYPE_Q4_1, 0, 15, offsetof(lb_block_q4_1, qs), sizeof(lb_block_q4_1)},
    {LB_TYPE_Q5_0, -16, 15, offsetof(lb_block_q5_0, qh), sizeof(lb_block_q5_0)},
    {LB_TYPE_Q5_1, 0, 31, offsetof(lb_block_q5_1, qh), sizeof(lb_block_q5_1)},
    {LB_TYPE_Q2_K, 0, 3, offsetof(lb_block_q2_K, qs), offsetof(lb_block_q2_K, d)},
    {LB_TYPE_Q3_K, -4, 3, offsetof(lb_block_q3_K, hmask), offsetof(lb_block_q3_K, scales)},
    {LB_TYPE_Q4_K, 0, 15, offsetof(lb_block_q4_K, qs), sizeof(lb_block_q4_K)},
    {LB_TYPE_Q5_K, 0, 31, offsetof(lb_block_q5_K, qh), sizeof(lb_block_q5_K)},
    {LB_TYPE_Q6_K, -32, 31, offsetof(lb_block_q6_K, ql), offsetof(lb_block_q6_K, scales)},
    {LB_TYPE_IQ4_NL, 0, 15, offsetof(lb_block_iq4_nl, qs), sizeof(lb_block_iq4_nl)},
    {LB_TYPE_IQ4_XS, 0, 15, offsetof(lb_block_iq4_xs, qs), sizeof(lb_block_iq4_xs)},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

/* ---------------------------------------------------------------- helpers */

static lb_rng rng;

static int rng_int(int lo, int hi)
{
    return lo + (int)(lb_rng_next(&rng) % (uint64_t)(hi - lo + 1));
}

enum row_kind {
    ROW_GAUSS,
    ROW_HEAVY,    /* Cauchy: huge outliers, saturating f16 scales now and then */
    ROW_ZERO,
    ROW_CONST_POS,
    ROW_CONST_NEG,
    ROW_OUTLIER,  /* small Gaussians and one large value */
    ROW_SPARSE,   /* mostly +-0.0f, so zero products of both signs */
    ROW_TINY,     /* f16-subnormal scales */
    ROW_HUGE,     /* scales past the f16 range, saturated */
    N_ROW_KINDS
};

static const char *const row_names[N_ROW_KINDS] = {
    "gaussian", "heavy-tailed", "zero", "constant+", "constant-", "one-outlier", "sparse",
    "tiny", "huge",
};

static void make_row(enum row_kind kind, float *x)
{
    const float amp = (float)pow(10.0, lb_rng_unit(&rng) * 4 - 2);
    for (int i = 0; i < ROW; i++) {
        switch (kind) {
        case ROW_GAUSS: x[i] = amp * test_rng_normal_f(&rng); break;
        case ROW_HEAVY:
            x[i] = amp * (float)tan(3.14159265358979 * (lb_rng_unit(&rng) - 0.5));
            break;
        case ROW_ZERO: x[i] = 0.0f; break;
        case ROW_CONST_POS: x[i] = 0.37f; break;
        case ROW_CONST_NEG: x[i] = -1.25f; break;
        case ROW_OUTLIER: x[i] = 0.01f * test_rng_normal_f(&rng); break;
        case ROW_SPARSE:
            x[i] = lb_rng_unit(&rng) < 0.2 ? test_rng_normal_f(&rng)
                                           : (lb_rng_next(&rng) & 1 ? -0.0f : 0.0f);
            break;
        case ROW_TINY: x[i] = 1e-6f * test_rng_normal_f(&rng); break;
        case ROW_HUGE: x[i] = 1e9f * test_rng_normal_f(&rng); break;
        default: x[i] = 0.0f; break;
        }
    }
    if (kind == ROW_OUTLIER)
        x[rng_int(0, ROW - 1)] = lb_rng_next(&rng) & 1 ? 7.5f : -7.5f;
}

/* Importance: mostly positive, some zero (llama.cpp's imatrix has dead columns). */
static void make_importance(float *w)
{
    for (int i = 0; i < ROW; i++)
        w[i] = lb_rng_unit(&rng) < 0.1 ? 0.0f : (float)(lb_rng_unit(&rng) * 2.0);
}

/* scale * level(q) + offset, each operation rounded on its own: the grid's contract, level(q)
 * the type's table entry where it has one, else q. */
static void grid_decode(const lb_kernel_type *k, const float *scale, const float *offset,
                        const int8_t *q, int n, float *z)
{
    for (int i = 0; i < n; i++) {
        float level = k->levels ? k->levels[q[i] - k->qmin] : (float)q[i];
        float p = scale[i] * level;
        z[i] = p + offset[i];
    }
}

static int first_bit_difference(const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            return i;
    return -1;
}

static int reports[5];

/* Counts a failure and prints its context, up to MAX_REPORTS lines per check. */
static void report(int check, const char *type, enum row_kind kind, int imp, int64_t block,
                   const char *what, int elem, double got, double want)
{
    test_failures++;
    if (reports[check]++ >= MAX_REPORTS)
        return;
    fprintf(stderr, "%s: %s row%s, block %lld: %s", type, row_names[kind],
            imp ? " with importance" : "", (long long)block, what);
    if (elem >= 0)
        fprintf(stderr, " at %d (got %.9g, want %.9g)", elem, got, want);
    fprintf(stderr, " (seed %#llx)\n", (unsigned long long)SEED);
}

/* ---------------------------------------------------------------- tests */

/* Every registered type: grids exactly for the twelve quant types, with the documented ranges
 * (and level tables for the two non-uniform ones). */
static void test_registry(void)
{
    int types = 0, grids = 0;
    for (uint32_t id = 0; id < 64; id++) {
        const lb_kernel_type *k = lb_kernels_type((lb_type)id);
        if (!k)
            continue;
        types++;
        const grid_expect *e = NULL;
        for (size_t i = 0; i < N_EXPECTED; i++)
            if (expected[i].type == k->type)
                e = &expected[i];
        if (!e) {
            /* float types and Q8_K */
            CHECK(!k->block_grid && !k->block_get_levels && !k->block_set_levels);
            CHECK(k->qmin == 0 && k->qmax == 0);
            continue;
        }
        grids++;
        CHECK(k->block_grid && k->block_get_levels && k->block_set_levels);
        CHECK(k->qmin == e->qmin && k->qmax == e->qmax);
        /* a level table: ascending, one entry per level (IQ4_NL, IQ4_XS) */
        if (k->levels)
            for (int q = k->qmin + 1; q <= k->qmax; q++)
                CHECK(k->levels[q - k->qmin] > k->levels[q - 1 - k->qmin]);
        CHECK(!k->levels == !(k->type == LB_TYPE_IQ4_NL || k->type == LB_TYPE_IQ4_XS));
    }
    CHECK(types == 16);
    CHECK(grids == (int)N_EXPECTED);
    CHECK(!lb_kernels_type(LB_TYPE_F32)->block_grid);
    CHECK(!lb_kernels_type(LB_TYPE_F16)->block_grid);
    CHECK(!lb_kernels_type(LB_TYPE_BF16)->block_grid);
    CHECK(!lb_kernels_type(LB_TYPE_Q8_K)->block_grid);
}

/* Checks (1)-(4) on each block of one quantized row. */
static void check_row(const lb_kernel_type *k, const grid_expect *e, enum row_kind kind,
                      const float *x, const float *importance)
{
    const lb_type_info *info = lb_type_get((uint32_t)k->type);
    const char *name = info->name;
    const int bs = (int)info->block_size;
    const size_t bb = info->block_bytes;
    const int imp = importance != NULL;
    static unsigned char row[ROW / 32 * MAX_BYTES];
    static float y[ROW];

    k->quantize_row(x, row, ROW, importance);
    k->dequantize_row(row, y, ROW);
    for (int64_t b = 0; b < ROW / bs; b++) {
        const unsigned char *block = row + (size_t)b * bb;
        int8_t q[MAX_BLOCK], r[MAX_BLOCK], r2[MAX_BLOCK];
        float scale[MAX_BLOCK], offset[MAX_BLOCK], scale2[MAX_BLOCK], offset2[MAX_BLOCK];
        float z[MAX_BLOCK], y2[MAX_BLOCK];
        unsigned char copy[MAX_BYTES];

        /* (1) levels in range */
        k->block_get_levels(block, q);
        for (int i = 0; i < bs; i++)
            if (q[i] < k->qmin || q[i] > k->qmax)
                report(0, name, kind, imp, b, "level out of range", i, q[i],
                       q[i] < k->qmin ? k->qmin : k->qmax);

        /* (2) the grid reproduces dequantize_row bit for bit */
        k->block_grid(block, scale, offset);
        grid_decode(k, scale, offset, q, bs, z);
        int d = first_bit_difference(z, y + b * bs, bs);
        if (d >= 0)
            report(1, name, kind, imp, b, "scale * q + offset != dequantize_row", d, z[d],
                   y[b * bs + d]);

        /* (3) set_levels(get_levels) leaves the bytes as they were */
        memcpy(copy, block, bb);
        k->block_set_levels(copy, q);
        if (memcmp(copy, block, bb) != 0)
            report(2, name, kind, imp, b, "set_levels(get_levels) changed the block", -1, 0, 0);

        /* (4) random levels, both extremes included: decoded on the unchanged grid */
        for (int i = 0; i < bs; i++) {
            int pick = rng_int(0, 3);
            r[i] = (int8_t)(pick == 0 ? k->qmin : pick == 1 ? k->qmax : rng_int(k->qmin, k->qmax));
        }
        r[0] = (int8_t)k->qmin;
        r[bs - 1] = (int8_t)k->qmax;
        memcpy(copy, block, bb);
        k->block_set_levels(copy, r);
        for (size_t i = 0; i < bb; i++)
            if ((i < e->first || i >= e->end) && copy[i] != block[i]) {
                report(3, name, kind, imp, b, "set_levels wrote outside the quants (byte)", (int)i,
                       copy[i], block[i]);
                break;
            }
        k->block_get_levels(copy, r2);
        if (memcmp(r, r2, (size_t)bs) != 0)
            report(3, name, kind, imp, b, "get_levels(set_levels(r)) != r", -1, 0, 0);
        k->block_grid(copy, scale2, offset2);
        if (memcmp(scale, scale2, sizeof(float) * (size_t)bs) != 0 ||
            memcmp(offset, offset2, sizeof(float) * (size_t)bs) != 0)
            report(3, name, kind, imp, b, "set_levels changed the grid", -1, 0, 0);
        k->dequantize_row(copy, y2, bs);
        grid_decode(k, scale, offset, r, bs, z);
        d = first_bit_difference(z, y2, bs);
        if (d >= 0)
            report(4, name, kind, imp, b, "new levels: scale * q + offset != dequantize_row", d,
                   z[d], y2[d]);
    }
}

static void test_grids(void)
{
    static float x[ROW], w[ROW];
    for (size_t ti = 0; ti < N_EXPECTED; ti++) {
        const lb_kernel_type *k = lb_kernels_type(expected[ti].type);
        if (!k || !k->block_grid) {
            test_failures++;
            continue;
        }
        for (int kind = 0; kind < N_ROW_KINDS; kind++) {
            for (int rep = 0; rep < 6; rep++) {
                make_row((enum row_kind)kind, x);
                make_importance(w);
                check_row(k, &expected[ti], (enum row_kind)kind, x, NULL);
                check_row(k, &expected[ti], (enum row_kind)kind, x, w);
            }
        }
    }
}

int main(void)
{
    lb_rng_seed(&rng, SEED);
    printf("quant_grid: seed %#llx\n", (unsigned long long)SEED);
    test_registry();
    test_grids();
    return test_finish("quant_grid");
}
