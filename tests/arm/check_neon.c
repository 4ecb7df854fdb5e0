/* Standalone check (run under qemu-aarch64) that the NEON vec_dot kernels match the C references. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tensor.h"
#include "kernels/dsp.h"
#include "kernels/kernels.h"
#include "kernels/quants_k.h"
#include "kernels/quants_legacy.h"

#define MAX_N 4096
#define TOLERANCE 1e-5

static uint64_t rng_state;

/* xorshift64*: fixed-seed, platform-independent. */
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [-1, 1). */
static double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * 0x1p-52 - 1.0;
}

/* Roughly normal values, with a per-32 magnitude that varies over four decades and an
 * occasional outlier, so that scales, mins and sub-block scales all vary. */
static void fill_random(float *x, int64_t n)
{
    double magnitude = 1.0;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            magnitude = pow(10.0, 2.0 * rng_uniform());
        double v = (rng_uniform() + rng_uniform() + rng_uniform()) * magnitude;
        if ((rng_next() & 63) == 0)
            v *= 8.0;
        x[i] = (float)v;
    }
}

/* Bound on the sum of the magnitudes of the terms the dots add: sum |w_i a_i| over the
 * dequantized rows, plus, for Q4_K, twice sum |dmin m a_i| (the min part of each weight,
 * obtained by dequantizing a copy with every d zeroed), since |d sc q| <= |w| + |dmin m|. */
static double terms_bound(const lb_kernel_type *k, const lb_kernel_type *ak, const void *wq,
                          const void *aq, int64_t n, float *wf, float *af, void *scratch,
                          size_t row_bytes)
{
    k->dequantize_row(wq, wf, n);
    ak->dequantize_row(aq, af, n);
    double t = 0.0;
    for (int64_t i = 0; i < n; i++)
        t += fabs((double)wf[i] * (double)af[i]);
    if (k->type == LB_TYPE_Q4_K) {
        memcpy(scratch, wq, row_bytes);
        lb_block_q4_K *blocks = scratch;
        for (int64_t b = 0; b < n / LB_QK_K; b++)
            blocks[b].d = 0;
        k->dequantize_row(scratch, wf, n);
        for (int64_t i = 0; i < n; i++)
            t += 2.0 * fabs((double)wf[i] * (double)af[i]);
    }
    return t;
}

static size_t row_bytes(lb_type type, int64_t n)
{
    const lb_type_info *info = lb_type_get((uint32_t)type);
    return (size_t)(n / info->block_size) * info->block_bytes;
}

/* Checks one kernel at every length; prints one line; returns 1 when it passes. */
static int check_kernel(const char *name, lb_type type, lb_vec_dot_fn neon)
{
    static float x[MAX_N], act[MAX_N], wf[MAX_N], af[MAX_N];
    static unsigned char wq[MAX_N * 2], aq[MAX_N * 2], scratch[MAX_N * 2];
    const lb_kernel_type *k = lb_kernels_type(type);
    const lb_kernel_type *ak = k ? lb_kernels_type(k->vec_dot_type) : NULL;
    if (!k || !ak || !k->vec_dot || !neon) {
        printf("FAIL %-5s: %s\n", name, !neon ? "no NEON kernel in the table" : "no reference");
        return 0;
    }
    const int64_t block = lb_type_get((uint32_t)type)->block_size;
    const int64_t lengths[] = {block, 3 * block, 7 * block, 4096};
    const int cases = (int)(sizeof lengths / sizeof lengths[0]);
    double worst = 0.0;
    int exact = 0, ok = 1;
    for (int c = 0; c < cases; c++) {
        const int64_t n = lengths[c];
        fill_random(x, n);
        fill_random(act, n);
        k->quantize_row(x, wq, n, NULL);
        ak->quantize_row(act, aq, n, NULL);
        const float ref = k->vec_dot(wq, aq, n);
        const float got = neon(wq, aq, n);
        const double t = terms_bound(k, ak, wq, aq, n, wf, af, scratch, row_bytes(type, n));
        const double err = fabs((double)got - (double)ref);
        const double rel = t > 0.0 ? err / t : err;
        if (!(rel <= TOLERANCE) || !isfinite(got)) {
            printf("  %s n=%lld: neon %.9g ref %.9g, |diff| / sum|terms| = %.3g\n", name,
                   (long long)n, (double)got, (double)ref, rel);
            ok = 0;
        }
        if (rel > worst)
            worst = rel;
        if (memcmp(&got, &ref, sizeof got) == 0)
            exact++;
    }
    printf("%s %-5s: %d lengths, max |diff| / sum|terms| = %.3g (tolerance %.0e), %d/%d bit-exact\n",
           ok ? "ok  " : "FAIL", name, cases, worst, TOLERANCE, exact, cases);
    return ok;
}

int main(void)
{
    lb_kernels_dsp dsp;
    memset(&dsp, 0, sizeof dsp);
    lb_kernels_dsp_init_neon(&dsp);
    rng_state = 0x9E3779B97F4A7C15ULL;
    static const struct {
        const char *name;
        lb_type type;
    } kernels[] = {
        {"q8_0", LB_TYPE_Q8_0},
        {"q4_0", LB_TYPE_Q4_0},
        {"q4_K", LB_TYPE_Q4_K},
        {"q6_K", LB_TYPE_Q6_K},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        if (check_kernel(kernels[i].name, kernels[i].type, dsp.vec_dot[kernels[i].type]))
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
