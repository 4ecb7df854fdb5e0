/* linalg/hadamard.c: Hadamard matrices (Hᵀ H = n I for every order built up to 256 and the model
 * widths), the fast randomized transform against the dense matrix, seeded random orthogonal
 * matrices (orthogonal, reproducible, Haar sign convention). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rng.h"
#include "linalg/linalg.h"
#include "test_util.h"

/* Hᵀ H = n I exactly (the entries are ±1, sums of integers are exact in double). */
static bool hadamard_ok(int64_t n)
{
    double *h = lb_malloc((size_t)(n * n) * sizeof *h);
    bool ok = h && lb_linalg_hadamard_matrix(n, h) == LB_OK;
    for (int64_t i = 0; ok && i < n * n; i++)
        ok = h[i] == 1.0 || h[i] == -1.0;
    for (int64_t i = 0; ok && i < n; i++)
        for (int64_t j = 0; ok && j < n; j++) {
            double dot = 0.0;
            for (int64_t k = 0; k < n; k++)
                dot += h[k * n + i] * h[k * n + j];
            ok = dot == (i == j ? (double)n : 0.0);
        }
    lb_free(h);
    return ok;
}

static void test_orders(void)
{
    int64_t supported = 0;
    for (int64_t n = 1; n <= 256; n++) {
        int64_t m, p;
        if (!lb_linalg_hadamard_split(n, &m, &p)) {
            /* Hadamard orders are 1, 2 and multiples of 4: nothing else may claim a split. */
            CHECK(!(n == 1 || n == 2 || (n % 4 == 0 && (n & (n - 1)) == 0)));
            CHECK(lb_linalg_hadamard_matrix(n, (double[1]){0}) == LB_ERR_UNSUPPORTED);
            continue;
        }
        CHECK(m * p == n && (p & (p - 1)) == 0);
        CHECK(n == 1 || n == 2 || n % 4 == 0);
        if (!hadamard_ok(n)) {
            fprintf(stderr, "order %lld: Hᵀ H != n I\n", (long long)n);
            test_failures++;
        }
        supported++;
    }
    printf("Hadamard orders up to 256 built and checked: %lld\n", (long long)supported);
    /* The orders the task names, with the split it asks for (largest power of two). */
    static const struct {
        int64_t n, m, p;
    } want[] = {{576, 36, 16}, {64, 1, 64}, {896, 28, 32}, {8, 1, 8},     {128, 1, 128},
                {12, 12, 1},   {20, 20, 1}, {28, 28, 1},   {36, 36, 1},   {44, 44, 1},
                {60, 60, 1},   {40, 20, 2}, {4096, 1, 4096}, {768, 12, 64}, {1536, 12, 128}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t m, p;
        CHECK(lb_linalg_hadamard_split(want[i].n, &m, &p));
        if (m != want[i].m || p != want[i].p) {
            fprintf(stderr, "split of %lld: %lld x %lld, expected %lld x %lld\n",
                    (long long)want[i].n, (long long)m, (long long)p, (long long)want[i].m,
                    (long long)want[i].p);
            test_failures++;
        }
        if (want[i].n <= 1024)
            CHECK(hadamard_ok(want[i].n));
    }
    int64_t m, p;
    CHECK(!lb_linalg_hadamard_split(52, &m, &p) && m == 0 && p == 0); /* 52 needs q = 25 */
    CHECK(!lb_linalg_hadamard_split(6, &m, &p));
    CHECK(!lb_linalg_hadamard_split(0, &m, &p));
}

/* T x against H diag(s) x / sqrt(n) with the dense matrix and the documented signs, Tᵀ as its
 * inverse, several rows with a stride. */
static void test_transform(int64_t n, uint64_t seed)
{
    enum { ROWS = 3 };
    int64_t stride = n + 5;
    double *h = lb_malloc((size_t)(n * n) * sizeof *h);
    double *x = lb_malloc((size_t)(ROWS * stride) * sizeof *x);
    double *orig = lb_malloc((size_t)(ROWS * stride) * sizeof *orig);
    double *signs = lb_malloc((size_t)n * sizeof *signs);
    lb_rht *t = NULL;
    CHECK_OK(lb_linalg_rht_create(&t, n, seed));
    if (!h || !x || !orig || !signs || !t)
        goto done;
    CHECK(lb_linalg_rht_size(t) == n);
    CHECK_OK(lb_linalg_hadamard_matrix(n, h));
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        signs[i] = (lb_rng_next(&rng) >> 63) ? -1.0 : 1.0;
    lb_rng_seed(&rng, seed ^ 0xabcdef);
    for (int64_t i = 0; i < ROWS * stride; i++)
        x[i] = orig[i] = lb_rng_unit(&rng) * 2.0 - 1.0;
    CHECK_OK(lb_linalg_rht_apply(t, x, ROWS, stride, false, NULL));
    double max_err = 0.0, max_pad = 0.0;
    for (int r = 0; r < ROWS; r++) {
        for (int64_t i = 0; i < n; i++) {
            double want = 0.0;
            for (int64_t k = 0; k < n; k++)
                want += h[i * n + k] * signs[k] * orig[r * stride + k];
            want /= sqrt((double)n);
            max_err = fmax(max_err, fabs(x[r * stride + i] - want));
        }
        for (int64_t i = n; i < stride; i++)
            max_pad = fmax(max_pad, fabs(x[r * stride + i] - orig[r * stride + i]));
    }
    double *work = lb_malloc((size_t)n * sizeof *work);
    CHECK_OK(lb_linalg_rht_apply(t, x, ROWS, stride, true, work));
    lb_free(work);
    double max_inv = 0.0;
    for (int64_t i = 0; i < ROWS * stride; i++)
        max_inv = fmax(max_inv, fabs(x[i] - orig[i]));
    printf("transform n = %lld: max |T x - dense| = %.2g, max |Tᵀ T x - x| = %.2g\n",
           (long long)n, max_err, max_inv);
    /* Inputs are O(1), outputs O(1): double rounding over log2(n) + m additions. */
    CHECK(max_err < 1e-13 * (double)n);
    CHECK(max_inv < 1e-13 * (double)n);
    CHECK(max_pad == 0.0);
    CHECK(lb_linalg_rht_apply(t, x, 1, n - 1, false, NULL) == LB_ERR_INVALID_ARG);
done:
    lb_linalg_rht_free(&t);
    lb_linalg_rht_free(&t); /* cleared: a second free is a no-op */
    lb_free(h);
    lb_free(x);
    lb_free(orig);
    lb_free(signs);
}

static void test_random_orthogonal(void)
{
    static const int64_t sizes[] = {1, 5, 64, 100};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        double *q = lb_malloc((size_t)(n * n) * sizeof *q);
        double *q2 = lb_malloc((size_t)(n * n) * sizeof *q2);
        if (!q || !q2) {
            test_failures++;
            break;
        }
        CHECK_OK(lb_linalg_random_orthogonal(q, n, 42));
        double max_err = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double dot = 0.0;
                for (int64_t k = 0; k < n; k++)
                    dot += q[k * n + i] * q[k * n + j];
                max_err = fmax(max_err, fabs(dot - (i == j)));
            }
        printf("random orthogonal n = %lld: max |QᵀQ - I| = %.2g\n", (long long)n, max_err);
        CHECK(max_err < 1e-13 * (double)n);
        CHECK_OK(lb_linalg_random_orthogonal(q2, n, 42));
        CHECK(memcmp(q, q2, (size_t)(n * n) * sizeof *q) == 0);
        CHECK_OK(lb_linalg_random_orthogonal(q2, n, 43));
        CHECK(n == 1 || memcmp(q, q2, (size_t)(n * n) * sizeof *q) != 0);
        lb_free(q);
        lb_free(q2);
    }
    /* Haar: with diag(R) > 0, Q's first column is the Gaussian's first column normalized, so
     * Q[0][0] is symmetric about 0 (LAPACK's own signs make it always negative). Mean over
     * 400 seeds: standard deviation sqrt(1/4 / 400) = 0.025; the bound is 4 of them. */
    enum { N = 4, DRAWS = 400 };
    double q[N * N], sum = 0.0;
    for (int seed = 0; seed < DRAWS; seed++) {
        CHECK_OK(lb_linalg_random_orthogonal(q, N, (uint64_t)seed));
        sum += q[0];
    }
    printf("random orthogonal: mean Q[0][0] over %d seeds = %.3f\n", DRAWS, sum / DRAWS);
    CHECK(fabs(sum / DRAWS) < 0.1);
    CHECK(lb_linalg_random_orthogonal(q, 0, 1) == LB_ERR_INVALID_ARG);
}

int main(void)
{
    test_orders();
    static const int64_t sizes[] = {1, 2, 8, 12, 24, 28, 36, 40, 64, 128, 576, 896};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        test_transform(sizes[i], 1000 + i);
    lb_rht *t = NULL;
    CHECK(lb_linalg_rht_create(&t, 52, 1) == LB_ERR_UNSUPPORTED && !t);
    test_random_orthogonal();
    if (test_failures)
        fprintf(stderr, "%d failures\n", test_failures);
    return test_failures ? 1 : 0;
}
