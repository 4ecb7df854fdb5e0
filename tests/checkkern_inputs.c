/* checkkern's inputs: seeded float rows, packed rows, guarded buffers (see the header). */
#include "tests/checkkern_inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "kernels/quants_iq4_internal.h"
#include "kernels/quants_k_internal.h"
#include "kernels/quants_legacy_internal.h"

#define GUARD_BYTES 64
#define GUARD_BYTE(i) ((uint8_t)(0xa5u ^ (unsigned)((i) * 29u)))

void fill_values(float *x, int64_t n, lb_rng *rng)
{
    float scale = 0.01f + (float)(lb_rng_next(rng) % 1000) * 0.01f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = scale * lb_rng_uniform_pm1(rng);
        if (lb_rng_next(rng) % 61 == 0)
            x[i] *= 16.0f;
    }
    if (n >= 64 && lb_rng_next(rng) % 3 == 0) {
        int64_t start = (int64_t)(lb_rng_next(rng) % (uint64_t)(n - 32)) & ~(int64_t)31;
        memset(x + start, 0, 32 * sizeof(float));
    }
}

const char *const kind_names[] = {
    "random", "zero", "const", "outlier", "spike", "ties", "special",
    "tiny",   "huge", "raw",   "extreme", "saturated", "min", "max",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == IN_MAX + 1, "a name per input kind");

void fill_kind(float *x, int64_t n, input_kind kind, lb_rng *rng)
{
    switch (kind) {
    case IN_ZERO:
        memset(x, 0, (size_t)n * sizeof *x);
        break;
    case IN_CONST: {
        float v = 10.0f * lb_rng_uniform_pm1(rng);
        for (int64_t i = 0; i < n; i++)
            x[i] = v;
        break;
    }
    case IN_OUTLIER:
        for (int64_t i = 0; i < n; i++)
            x[i] = 1e-3f * lb_rng_uniform_pm1(rng);
        if (n)
            x[lb_rng_next(rng) % (uint64_t)n] = lb_rng_next(rng) & 1 ? 1e3f : -1e3f;
        break;
    case IN_SPIKE:
        memset(x, 0, (size_t)n * sizeof *x);
        if (n)
            x[lb_rng_next(rng) % (uint64_t)n] = 100.0f * lb_rng_uniform_pm1(rng);
        break;
    case IN_TIES:
        for (int64_t i = 0; i < n; i++)
            x[i] = i % 32 == 0 ? (lb_rng_next(rng) & 1 ? 127.0f : -127.0f)
                               : (float)((int)(lb_rng_next(rng) % 253) - 126) + 0.5f;
        break;
    case IN_SPECIAL:
        fill_values(x, n, rng);
        for (int64_t i = 0; i < n; i++) {
            switch (lb_rng_next(rng) % 64) {
            case 0: x[i] = NAN; break;
            case 1: x[i] = -NAN; break;
            case 2: x[i] = INFINITY; break;
            case 3: x[i] = -INFINITY; break;
            case 4: x[i] = -0.0f; break;
            case 5: x[i] = 0x1p-140f; break;
            case 6: x[i] = -3e38f; break;
            default: break;
            }
        }
        break;
    case IN_TINY:
        for (int64_t i = 0; i < n; i++)
            x[i] = lb_rng_uniform_pm1(rng) * 0x1p-128f;
        break;
    case IN_HUGE:
        for (int64_t i = 0; i < n; i++)
            x[i] = lb_rng_uniform_pm1(rng) * 3e38f;
        break;
    default:
        fill_values(x, n, rng);
        break;
    }
}

/* A finite f16 of either sign with magnitude in [2^-10, 2^6), so every product stays finite. */
static void put_half(uint8_t *block, size_t offset, lb_rng *rng)
{
    uint64_t r = lb_rng_next(rng);
    uint16_t h = (uint16_t)(((r & 1) << 15) | ((5 + (r >> 1) % 16) << 10) | ((r >> 8) & 0x3ff));
    memcpy(block + offset, &h, sizeof h);
}

/* Random (or only extreme) bytes in every block of a row, then finite scales: any codes,
 * including the -128 int8 quants the quantizers never write; Q8_K's bsums match its qs. */
static void fill_raw(lb_type type, uint8_t *row, int64_t n, bool extreme, lb_rng *rng)
{
    static const uint8_t extremes[4] = {0x00, 0xff, 0x80, 0x7f};
    const lb_type_info *info = lb_type_get((uint32_t)type);
    int64_t blocks = n / info->block_size;
    for (size_t i = 0; i < (size_t)blocks * info->block_bytes; i++)
        row[i] = extreme ? extremes[lb_rng_next(rng) & 3] : (uint8_t)lb_rng_next(rng);
    for (int64_t b = 0; b < blocks; b++) {
        uint8_t *blk = row + (size_t)b * info->block_bytes;
        switch (type) {
        case LB_TYPE_Q8_0: put_half(blk, offsetof(lb_block_q8_0, d), rng); break;
        case LB_TYPE_Q4_0: put_half(blk, offsetof(lb_block_q4_0, d), rng); break;
        case LB_TYPE_Q4_1:
            put_half(blk, offsetof(lb_block_q4_1, d), rng);
            put_half(blk, offsetof(lb_block_q4_1, m), rng);
            break;
        case LB_TYPE_Q5_0: put_half(blk, offsetof(lb_block_q5_0, d), rng); break;
        case LB_TYPE_Q5_1:
            put_half(blk, offsetof(lb_block_q5_1, d), rng);
            put_half(blk, offsetof(lb_block_q5_1, m), rng);
            break;
        case LB_TYPE_Q2_K:
            put_half(blk, offsetof(lb_block_q2_K, d), rng);
            put_half(blk, offsetof(lb_block_q2_K, dmin), rng);
            break;
        case LB_TYPE_Q3_K: put_half(blk, offsetof(lb_block_q3_K, d), rng); break;
        case LB_TYPE_Q4_K:
            put_half(blk, offsetof(lb_block_q4_K, d), rng);
            put_half(blk, offsetof(lb_block_q4_K, dmin), rng);
            break;
        case LB_TYPE_Q5_K:
            put_half(blk, offsetof(lb_block_q5_K, d), rng);
            put_half(blk, offsetof(lb_block_q5_K, dmin), rng);
            break;
        case LB_TYPE_Q6_K: put_half(blk, offsetof(lb_block_q6_K, d), rng); break;
        case LB_TYPE_IQ4_NL: put_half(blk, offsetof(lb_block_iq4_nl, d), rng); break;
        case LB_TYPE_IQ4_XS: put_half(blk, offsetof(lb_block_iq4_xs, d), rng); break;
        case LB_TYPE_Q8_K: {
            lb_block_q8_K q;
            memcpy(&q, blk, sizeof q);
            q.d = lb_rng_uniform_pm1(rng) * 0x1p-4f;
            for (int j = 0; j < LB_QK_K / 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++)
                    sum += q.qs[16 * j + i];
                q.bsums[j] = (int16_t)sum;
            }
            memcpy(blk, &q, sizeof q);
            break;
        }
        default:
            break;
        }
    }
}

/* Every code of a legacy row at `byte` (weights: the code bytes from qh or qs on; Q8_0
 * activations: qs), the scales left as the quantizer wrote them: only raw bytes reach the int16
 * limits of the SIMD partial sums. */
static void saturate_legacy(lb_type t, uint8_t *row, int64_t n, uint8_t byte)
{
    size_t start, block;
    switch (t) {
    case LB_TYPE_Q8_0: start = offsetof(lb_block_q8_0, qs), block = sizeof(lb_block_q8_0); break;
    case LB_TYPE_Q4_0: start = offsetof(lb_block_q4_0, qs), block = sizeof(lb_block_q4_0); break;
    case LB_TYPE_Q4_1: start = offsetof(lb_block_q4_1, qs), block = sizeof(lb_block_q4_1); break;
    case LB_TYPE_Q5_0: start = offsetof(lb_block_q5_0, qh), block = sizeof(lb_block_q5_0); break;
    case LB_TYPE_Q5_1: start = offsetof(lb_block_q5_1, qh), block = sizeof(lb_block_q5_1); break;
    case LB_TYPE_IQ4_NL:
        start = offsetof(lb_block_iq4_nl, qs), block = sizeof(lb_block_iq4_nl);
        break;
    default: return;
    }
    for (int64_t b = 0; b < n / 32; b++)
        memset(row + (size_t)b * block + start, byte, block - start);
}

void make_row(lb_type type, input_kind kind, int64_t n, float *scratch, uint8_t *row,
              lb_rng *rng)
{
    if (kind == IN_RAW || kind == IN_EXTREME) {
        fill_raw(type, row, n, kind == IN_EXTREME, rng);
        return;
    }
    fill_kind(scratch, n, kind, rng);
    lb_kernels_type(type)->quantize_row(scratch, row, n, NULL);
    if (kind == IN_SATURATED)
        saturate_legacy(type, row, n, type == LB_TYPE_Q8_0 ? 0x80 : 0xff);
    else if (kind == IN_MIN || kind == IN_MAX)
        saturate_legacy(type, row, n, kind == IN_MIN ? 0x80 : 0x7f);
}

bool code_bytes(lb_type t, size_t *start, size_t *end)
{
    switch (t) {
    case LB_TYPE_Q8_0: *start = offsetof(lb_block_q8_0, qs), *end = sizeof(lb_block_q8_0); break;
    case LB_TYPE_Q4_0: *start = offsetof(lb_block_q4_0, qs), *end = sizeof(lb_block_q4_0); break;
    case LB_TYPE_Q4_1: *start = offsetof(lb_block_q4_1, qs), *end = sizeof(lb_block_q4_1); break;
    case LB_TYPE_Q5_0: *start = offsetof(lb_block_q5_0, qh), *end = sizeof(lb_block_q5_0); break;
    case LB_TYPE_Q5_1: *start = offsetof(lb_block_q5_1, qh), *end = sizeof(lb_block_q5_1); break;
    case LB_TYPE_Q2_K: *start = offsetof(lb_block_q2_K, qs), *end = offsetof(lb_block_q2_K, d);
        break;
    case LB_TYPE_Q3_K: *start = 0, *end = offsetof(lb_block_q3_K, scales); break;
    case LB_TYPE_Q4_K: *start = offsetof(lb_block_q4_K, qs), *end = sizeof(lb_block_q4_K); break;
    case LB_TYPE_Q5_K: *start = offsetof(lb_block_q5_K, qh), *end = sizeof(lb_block_q5_K); break;
    case LB_TYPE_Q6_K: *start = 0, *end = offsetof(lb_block_q6_K, scales); break;
    case LB_TYPE_IQ4_NL:
        *start = offsetof(lb_block_iq4_nl, qs), *end = sizeof(lb_block_iq4_nl);
        break;
    case LB_TYPE_IQ4_XS:
        *start = offsetof(lb_block_iq4_xs, qs), *end = sizeof(lb_block_iq4_xs);
        break;
    default: return false;
    }
    return true;
}

static size_t page_bytes;

void guarded_alloc(guarded *g, size_t size, size_t misalign, layout where)
{
    if (!page_bytes)
        page_bytes = (size_t)sysconf(_SC_PAGESIZE);
    g->size = size;
    g->usable = (2 * GUARD_BYTES + misalign + size + page_bytes - 1) / page_bytes * page_bytes;
    void *p = mmap(NULL, g->usable + page_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect((uint8_t *)p + g->usable, page_bytes, PROT_NONE) != 0) {
        fprintf(stderr, "checkkern: cannot map a guarded buffer of %zu bytes\n", size);
        exit(1);
    }
    g->base = p;
    for (size_t i = 0; i < g->usable; i++)
        g->base[i] = GUARD_BYTE(i);
    g->data = where == AT_PAGE_END ? g->base + g->usable - size : g->base + GUARD_BYTES + misalign;
}

bool guarded_intact(const guarded *g)
{
    size_t begin = (size_t)(g->data - g->base), end = begin + g->size;
    for (size_t i = 0; i < g->usable; i++)
        if ((i < begin || i >= end) && g->base[i] != GUARD_BYTE(i))
            return false;
    return true;
}

void guarded_free(guarded *g)
{
    if (g->base)
        munmap(g->base, g->usable + page_bytes);
    g->base = g->data = NULL;
}

