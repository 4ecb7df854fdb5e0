/* Hadamard matrices of order 2^k * m (Sylvester for 2^k, Paley I/II for m), the normalized
 * randomized Hadamard transform applied in O(n (log n + m)) per vector, and seeded Haar random
 * orthogonal matrices (QR of a Gaussian: linalg/lapack.c). */
#include "linalg/linalg.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/rng.h"

/* ---- Paley constructions ---- */

static bool is_prime(int64_t q)
{
    if (q < 2)
        return false;
    for (int64_t d = 2; d * d <= q; d++)
        if (q % d == 0)
            return false;
    return true;
}

/* 1 for Paley I (m = q + 1, q prime, q = 3 mod 4), 2 for Paley II (m = 2(q + 1), q prime,
 * q = 1 mod 4), 0 when neither builds order m. Order 1 is the trivial matrix (kind 3). */
static int paley_kind(int64_t m)
{
    if (m == 1)
        return 3;
    if (m > 1 && is_prime(m - 1) && (m - 1) % 4 == 3)
        return 1;
    if (m % 2 == 0 && is_prime(m / 2 - 1) && (m / 2 - 1) % 4 == 1)
        return 2;
    return 0;
}

/* Legendre symbol of a mod the odd prime q: 0, 1 (nonzero square) or -1. */
static int legendre(int64_t a, int64_t q, const uint8_t *is_square)
{
    a %= q;
    if (a < 0)
        a += q;
    return a == 0 ? 0 : is_square[a] ? 1 : -1;
}

/* Writes the m x m Hadamard matrix of a Paley order m (paley_kind(m) != 0) into h. */
static lb_status paley_matrix(int64_t m, double *h)
{
    int kind = paley_kind(m);
    if (kind == 3) {
        h[0] = 1.0;
        return LB_OK;
    }
    int64_t q = kind == 1 ? m - 1 : m / 2 - 1;
    uint8_t *is_square = lb_calloc((size_t)q, 1);
    if (!is_square)
        return lb_nomem("out of memory for the quadratic residues mod %lld", (long long)q);
    for (int64_t x = 1; x < q; x++)
        is_square[(x * x) % q] = 1;
    /* The (q + 1) x (q + 1) core [[0, 1ᵀ], [±1, Q]] with Q the Jacobsthal matrix
     * Q[i][j] = χ(j - i): skew for Paley I (then H = I + S), symmetric for Paley II. */
    int64_t c = q + 1;
    for (int64_t i = 0; i < c; i++) {
        for (int64_t j = 0; j < c; j++) {
            int s;
            if (i == 0 && j == 0)
                s = 0;
            else if (i == 0)
                s = 1;
            else if (j == 0)
                s = kind == 1 ? -1 : 1;
            else
                s = legendre(j - i, q, is_square);
            if (kind == 1) {
                h[i * m + j] = (double)(s + (i == j));
            } else {
                /* Paley II: H = S ⊗ [[1, -1], [-1, -1]] + I ⊗ [[1, 1], [1, -1]]. */
                static const int a[2][2] = {{1, -1}, {-1, -1}}, b[2][2] = {{1, 1}, {1, -1}};
                for (int u = 0; u < 2; u++)
                    for (int v = 0; v < 2; v++)
                        h[(2 * i + u) * m + 2 * j + v] =
                            (double)(s * a[u][v] + (i == j) * b[u][v]);
            }
        }
    }
    lb_free(is_square);
    return LB_OK;
}

bool lb_linalg_hadamard_split(int64_t n, int64_t *m, int64_t *pow2)
{
    *m = *pow2 = 0;
    if (n < 1)
        return false;
    int64_t p = 1;
    while (n % (p * 2) == 0)
        p *= 2;
    for (; p >= 1; p /= 2) {
        if (paley_kind(n / p)) {
            *m = n / p;
            *pow2 = p;
            return true;
        }
    }
    return false;
}

lb_status lb_linalg_hadamard_matrix(int64_t n, double *h)
{
    int64_t m, p;
    if (!h || !lb_linalg_hadamard_split(n, &m, &p))
        return lb_error(LB_ERR_UNSUPPORTED,
                        "hadamard: no Hadamard matrix of order %lld is built in code "
                        "(2^k times 1 or a Paley order)", (long long)n);
    double *hm = lb_malloc((size_t)(m * m) * sizeof *hm);
    if (!hm)
        return lb_nomem("out of memory for a Hadamard matrix of order %lld", (long long)m);
    lb_status status = paley_matrix(m, hm);
    /* H = H_m ⊗ H_p with Sylvester's H_p[j][j'] = (-1)^popcount(j & j'). */
    for (int64_t i = 0; i < m && status == LB_OK; i++)
        for (int64_t j = 0; j < p; j++)
            for (int64_t i2 = 0; i2 < m; i2++)
                for (int64_t j2 = 0; j2 < p; j2++) {
                    double s = __builtin_popcountll((unsigned long long)(j & j2)) % 2 ? -1.0 : 1.0;
                    h[(i * p + j) * n + i2 * p + j2] = hm[i * m + i2] * s;
                }
    lb_free(hm);
    return status;
}

/* ---- the randomized transform ---- */

struct lb_rht {
    int64_t n, m, p;  /* n = m * p, p a power of two */
    double *hm;       /* m x m Hadamard matrix (entries ±1) */
    double *signs;    /* n seeded ±1 */
    double scale;     /* 1 / sqrt(n) */
};

lb_status lb_linalg_rht_create(lb_rht **out, int64_t n, uint64_t seed)
{
    *out = NULL;
    int64_t m, p;
    if (!lb_linalg_hadamard_split(n, &m, &p))
        return lb_error(LB_ERR_UNSUPPORTED,
                        "hadamard: no Hadamard matrix of order %lld is built in code "
                        "(2^k times 1 or a Paley order)", (long long)n);
    lb_rht *t = lb_calloc(1, sizeof *t);
    if (t) {
        t->hm = lb_malloc((size_t)(m * m) * sizeof *t->hm);
        t->signs = lb_malloc((size_t)n * sizeof *t->signs);
    }
    if (!t || !t->hm || !t->signs) {
        lb_linalg_rht_free(&t);
        return lb_nomem("out of memory for a Hadamard transform of order %lld", (long long)n);
    }
    t->n = n;
    t->m = m;
    t->p = p;
    t->scale = 1.0 / sqrt((double)n);
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        t->signs[i] = (lb_rng_next(&rng) >> 63) ? -1.0 : 1.0;
    lb_status status = paley_matrix(m, t->hm);
    if (status != LB_OK) {
        lb_linalg_rht_free(&t);
        return status;
    }
    *out = t;
    return LB_OK;
}

void lb_linalg_rht_free(lb_rht **rht)
{
    if (!rht || !*rht)
        return;
    lb_free((*rht)->hm);
    lb_free((*rht)->signs);
    lb_free(*rht);
    *rht = NULL;
}

int64_t lb_linalg_rht_size(const lb_rht *rht)
{
    return rht->n;
}

/* In-place unnormalized Walsh-Hadamard transform of x[0..p), p a power of two (Sylvester's
 * order, natural ordering). */
static void fwht(double *x, int64_t p)
{
    for (int64_t h = 1; h < p; h *= 2)
        for (int64_t i = 0; i < p; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                double a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/* x <- (H_m ⊗ H_p) x, or with H_mᵀ: the rows of x seen as an m x p matrix X become
 * H_m (X H_p). work holds n doubles. */
static void hadamard_apply(const lb_rht *t, double *x, bool transpose, double *work)
{
    int64_t m = t->m, p = t->p;
    for (int64_t i = 0; i < m; i++)
        fwht(x + i * p, p);
    if (m == 1)
        return;
    memcpy(work, x, (size_t)t->n * sizeof *work);
    for (int64_t i = 0; i < m; i++) {
        double *y = x + i * p;
        memset(y, 0, (size_t)p * sizeof *y);
        for (int64_t k = 0; k < m; k++) {
            double h = transpose ? t->hm[k * m + i] : t->hm[i * m + k];
            const double *z = work + k * p;
            if (h > 0)
                for (int64_t j = 0; j < p; j++)
                    y[j] += z[j];
            else
                for (int64_t j = 0; j < p; j++)
                    y[j] -= z[j];
        }
    }
}

lb_status lb_linalg_rht_apply(const lb_rht *t, double *x, int64_t n_rows, int64_t stride,
                              bool transpose, double *work)
{
    if (!t || (!x && n_rows > 0) || n_rows < 0 || stride < t->n)
        return lb_error(LB_ERR_INVALID_ARG, "hadamard: bad rows (%lld rows, stride %lld, n %lld)",
                        (long long)n_rows, (long long)stride, (long long)t->n);
    double *owned = NULL;
    if (!work && t->m > 1) {
        if (!(owned = lb_malloc((size_t)t->n * sizeof *owned)))
            return lb_nomem("out of memory for the Hadamard transform's scratch of %lld doubles",
                            (long long)t->n);
        work = owned;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        double *v = x + r * stride;
        /* T = H diag(s) / sqrt(n): signs first; Tᵀ = diag(s) Hᵀ / sqrt(n): signs last. */
        if (!transpose)
            for (int64_t i = 0; i < t->n; i++)
                v[i] *= t->signs[i];
        hadamard_apply(t, v, transpose, work);
        for (int64_t i = 0; i < t->n; i++)
            v[i] *= transpose ? t->signs[i] * t->scale : t->scale;
    }
    lb_free(owned);
    return LB_OK;
}

/* ---- Haar random orthogonal matrices ---- */

lb_status lb_linalg_random_orthogonal(double *q, int64_t n, uint64_t seed)
{
    if (!q || n < 1)
        return lb_error(LB_ERR_INVALID_ARG, "random orthogonal: bad matrix (n = %lld)",
                        (long long)n);
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    /* Standard normal entries by Box-Muller, both outputs of each pair used. */
    int64_t count = n * n;
    for (int64_t i = 0; i < count; i += 2) {
        double u1 = 1.0 - lb_rng_unit(&rng), u2 = lb_rng_unit(&rng);
        double radius = sqrt(-2.0 * log(u1)), angle = 2.0 * M_PI * u2;
        q[i] = radius * cos(angle);
        if (i + 1 < count)
            q[i + 1] = radius * sin(angle);
    }
    double *r_diag = lb_malloc((size_t)n * sizeof *r_diag);
    if (!r_diag)
        return lb_nomem("out of memory for the QR of a %lld x %lld matrix", (long long)n,
                        (long long)n);
    lb_status status = lb_linalg_qr_orthogonal(q, n, r_diag);
    /* A = QR is unique once diag(R) > 0; flipping Q's columns to that convention makes Q
     * Haar-distributed (Mezzadri 2007), not biased by LAPACK's sign choices. */
    for (int64_t j = 0; j < n && status == LB_OK; j++)
        if (r_diag[j] < 0.0)
            for (int64_t i = 0; i < n; i++)
                q[i * n + j] = -q[i * n + j];
    lb_free(r_diag);
    return status;
}
