/* GPTQ and RTN on synthetic layers: GPTQ beats RTN for every type on correlated inputs, reduces
 * to RTN exactly when H is diagonal (act-order or not: same bytes, same layout), the losses it
 * reports (and lb_proxy_loss) equal tr(ΔW H ΔWᵀ) computed here by a plain loop, it does not
 * depend on the thread count, and it copes with dead inputs and singular Hessians. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "kernels/kernels.h"
#include "common/rng.h"
#include "linalg/linalg.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "test_util.h"

static const uint64_t seed = 20261123;

static double gaussian(lb_rng *rng)
{
    double u1 = ((double)(lb_rng_next(rng) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(lb_rng_next(rng) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Inputs with correlated features: X = G M + 0.1 noise, G [tokens][rank], M [rank][cols], with
 * per-feature scales spread over two orders of magnitude (as real activations are). */
static void correlated_hessian(lb_hessian *hs, int64_t cols, int64_t tokens, int64_t rank,
                               uint64_t s)
{
    lb_rng rng;
    lb_rng_seed(&rng, s);
    float *x = lb_malloc((size_t)(tokens * cols) * sizeof *x);
    double *m = lb_malloc((size_t)(rank * cols) * sizeof *m);
    double *scale = lb_malloc((size_t)cols * sizeof *scale);
    for (int64_t i = 0; i < rank * cols; i++)
        m[i] = gaussian(&rng);
    for (int64_t c = 0; c < cols; c++)
        scale[c] = pow(10.0, 2.0 * (double)(lb_rng_next(&rng) >> 11) / 9007199254740992.0 - 1.0);
    for (int64_t t = 0; t < tokens; t++) {
        double g[16];
        for (int64_t k = 0; k < rank; k++)
            g[k] = gaussian(&rng);
        for (int64_t c = 0; c < cols; c++) {
            double v = 0.1 * gaussian(&rng);
            for (int64_t k = 0; k < rank; k++)
                v += g[k] * m[k * cols + c];
            x[t * cols + c] = (float)(v * scale[c]);
        }
    }
    CHECK_OK(lb_hessian_init(hs, cols));
    CHECK_OK(lb_hessian_add(hs, x, tokens));
    lb_hessian_finish(hs);
    lb_free(x);
    lb_free(m);
    lb_free(scale);
}

static float *random_weights(int64_t rows, int64_t cols, uint64_t s)
{
    lb_rng rng;
    lb_rng_seed(&rng, s);
    float *w = lb_malloc((size_t)(rows * cols) * sizeof *w);
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)(0.02 * gaussian(&rng));
    return w;
}

static size_t matrix_bytes(lb_type type, int64_t rows, int64_t cols)
{
    uint64_t row_bytes;
    lb_type_row_bytes(type, cols, &row_bytes);
    return (size_t)row_bytes * (size_t)rows;
}

/* tr(ΔW H ΔWᵀ) = Σ_r Σ_i Σ_j ΔW[r][i] H[i][j] ΔW[r][j], ΔW = W - dequant(q) (q NULL: ΔW = W),
 * by the definition's three loops in double, independent of the library's chunked dgemm and of
 * GPTQ's running error identity. */
static double explicit_loss(const float *w, const void *q, lb_type type, int64_t rows,
                            int64_t cols, const double *h)
{
    const lb_kernel_type *k = lb_kernels_type(type);
    uint64_t row_bytes = 0;
    lb_type_row_bytes(type, cols, &row_bytes);
    float *deq = lb_malloc((size_t)cols * sizeof *deq);
    double *d = lb_malloc((size_t)cols * sizeof *d);
    double loss = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        if (q)
            k->dequantize_row((const uint8_t *)q + (size_t)r * (size_t)row_bytes, deq, cols);
        for (int64_t i = 0; i < cols; i++)
            d[i] = (double)w[r * cols + i] - (q ? (double)deq[i] : 0.0);
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = 0; j < cols; j++)
                loss += d[i] * h[i * cols + j] * d[j];
    }
    lb_free(deq);
    lb_free(d);
    return loss;
}

/* |got - want| <= 1e-9 |want|: the sums above and the library's differ only in rounding order
 * (terms of one sign dominate a positive semi-definite form; 512-term sums lose ~1e-13). */
static bool same_loss(double got, double want)
{
    return fabs(got - want) <= 1e-9 * fabs(want);
}

static double *copy_of(const lb_hessian *hs)
{
    size_t n = (size_t)(hs->n * hs->n);
    double *h = lb_malloc(n * sizeof *h);
    memcpy(h, hs->h, n * sizeof *h);
    return h;
}

static const lb_type grid_types[] = {
    LB_TYPE_Q8_0, LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_Q5_0, LB_TYPE_Q5_1,  LB_TYPE_Q2_K,
    LB_TYPE_Q3_K, LB_TYPE_Q4_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K, LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS,
};
#define N_GRID_TYPES (sizeof grid_types / sizeof grid_types[0])

/* Correlated inputs: GPTQ's loss below RTN's (with and without importance) for every type,
 * act-order or not; the reported losses (GPTQ, RTN with importance diag(H), tr(W H Wᵀ)) and
 * lb_proxy_loss equal the explicit ones. */
static void test_beats_rtn(void)
{
    const int64_t rows = 48, cols = 512;
    lb_hessian hs;
    correlated_hessian(&hs, cols, 3000, 12, seed);
    float *w = random_weights(rows, cols, seed + 1);
    float *importance = lb_malloc((size_t)cols * sizeof *importance);
    for (int64_t c = 0; c < cols; c++)
        importance[c] = (float)hs.h[c * cols + c]; /* what GPTQ's RTN comparison uses */
    for (size_t t = 0; t < N_GRID_TYPES; t++) {
        lb_type type = grid_types[t];
        const char *name = lb_type_get(type)->name;
        size_t bytes = matrix_bytes(type, rows, cols);
        void *q = lb_malloc(bytes), *rtn = lb_malloc(bytes), *rtn_imp = lb_malloc(bytes);
        double lib_plain, lib_ref;
        CHECK_OK(lb_rtn_quantize(w, rows, cols, type, NULL, rtn));
        CHECK_OK(lb_rtn_quantize(w, rows, cols, type, importance, rtn_imp));
        double loss_plain = explicit_loss(w, rtn, type, rows, cols, hs.h);
        double loss_imp = explicit_loss(w, rtn_imp, type, rows, cols, hs.h);
        double ref = explicit_loss(w, NULL, type, rows, cols, hs.h);
        CHECK_OK(lb_proxy_loss(w, rtn, type, rows, cols, hs.h, &lib_plain));
        CHECK_OK(lb_proxy_loss(w, NULL, type, rows, cols, hs.h, &lib_ref));
        if (!same_loss(lib_plain, loss_plain) || !same_loss(lib_ref, ref))
            fprintf(stderr, "%s: lb_proxy_loss %.17g (W: %.17g), explicit %.17g (W: %.17g)\n",
                    name, lib_plain, lib_ref, loss_plain, ref);
        CHECK(same_loss(lib_plain, loss_plain) && same_loss(lib_ref, ref));
        for (int act_order = 0; act_order < 2; act_order++) {
            lb_gptq_options opt = lb_gptq_default_options();
            opt.act_order = act_order;
            lb_gptq_report rep;
            double *h = copy_of(&hs);
            CHECK_OK(lb_gptq_quantize(w, rows, cols, h, type, &opt, q, &rep));
            lb_free(h);
            double loss_q = explicit_loss(w, q, type, rows, cols, hs.h);
            bool ok = rep.loss_gptq < loss_imp && rep.loss_gptq < loss_plain &&
                      same_loss(rep.loss_gptq, loss_q) && same_loss(rep.loss_rtn, loss_imp) &&
                      same_loss(rep.ref, ref) && rep.dead_columns == 0 && rep.damp_raises == 0;
            if (!ok)
                fprintf(stderr, "%s act_order %d (seed %llu): reported gptq %.17g rtn %.17g "
                        "ref %.17g, explicit %.17g %.17g %.17g\n", name, act_order,
                        (unsigned long long)seed, rep.loss_gptq, rep.loss_rtn, rep.ref, loss_q,
                        loss_imp, ref);
            CHECK(ok);
            printf("%-5s act_order %d: loss/ref rtn %.4e, rtn+importance %.4e, gptq %.4e "
                   "(explicit)\n",
                   name, act_order, loss_plain / ref, loss_imp / ref, loss_q / ref);
        }
        lb_free(q);
        lb_free(rtn);
        lb_free(rtn_imp);
    }
    lb_free(importance);
    lb_free(w);
    lb_hessian_free(&hs);
}

/* A diagonal H leaves nothing to feed back: GPTQ gives RTN's bytes (importance = diag(H)),
 * and act-order, which then reorders the columns, writes exactly the same blocks. */
static void test_diagonal_is_rtn(void)
{
    const int64_t rows = 20, cols = 512;
    float *w = random_weights(rows, cols, seed + 2);
    double *diag_values = lb_malloc((size_t)cols * sizeof *diag_values);
    float *importance = lb_malloc((size_t)cols * sizeof *importance);
    double *h = lb_calloc((size_t)(cols * cols), sizeof *h);
    lb_rng rng;
    lb_rng_seed(&rng, seed + 3);
    for (int identity = 0; identity < 2; identity++) {
        for (int64_t c = 0; c < cols; c++) {
            diag_values[c] = identity ? 1.0 : 0.1 + (double)(lb_rng_next(&rng) % 1000);
            importance[c] = (float)diag_values[c];
        }
        for (size_t t = 0; t < N_GRID_TYPES; t++) {
            lb_type type = grid_types[t];
            size_t bytes = matrix_bytes(type, rows, cols);
            void *rtn = lb_malloc(bytes), *q = lb_malloc(bytes);
            CHECK_OK(lb_rtn_quantize(w, rows, cols, type, importance, rtn));
            for (int act_order = 0; act_order < 2; act_order++) {
                memset(h, 0, (size_t)(cols * cols) * sizeof *h);
                for (int64_t c = 0; c < cols; c++)
                    h[c * cols + c] = diag_values[c];
                lb_gptq_options opt = lb_gptq_default_options();
                opt.act_order = act_order;
                CHECK_OK(lb_gptq_quantize(w, rows, cols, h, type, &opt, q, NULL));
                bool same = memcmp(q, rtn, bytes) == 0;
                if (!same)
                    fprintf(stderr, "%s identity %d act_order %d differs from RTN (seed %llu)\n",
                            lb_type_get(type)->name, identity, act_order,
                            (unsigned long long)seed);
                CHECK(same);
            }
            lb_free(rtn);
            lb_free(q);
        }
    }
    lb_free(w);
    lb_free(diag_values);
    lb_free(importance);
    lb_free(h);
}

/* The same bytes on 1 and 2 threads (fixed row chunks; more rows than one chunk). */
static void test_thread_count(void)
{
    const int64_t rows = 200, cols = 256;
    lb_hessian hs;
    correlated_hessian(&hs, cols, 1000, 8, seed + 4);
    float *w = random_weights(rows, cols, seed + 5);
    lb_type types[] = {LB_TYPE_Q4_K, LB_TYPE_Q5_0};
    for (size_t t = 0; t < 2; t++) {
        size_t bytes = matrix_bytes(types[t], rows, cols);
        void *one = lb_malloc(bytes), *two = lb_malloc(bytes);
        lb_gptq_report r1, r2;
        double *h = copy_of(&hs);
        omp_set_num_threads(1);
        CHECK_OK(lb_gptq_quantize(w, rows, cols, h, types[t], NULL, one, &r1));
        memcpy(h, hs.h, (size_t)(cols * cols) * sizeof *h);
        omp_set_num_threads(2);
        CHECK_OK(lb_gptq_quantize(w, rows, cols, h, types[t], NULL, two, &r2));
        CHECK(memcmp(one, two, bytes) == 0);
        CHECK(r1.loss_gptq == r2.loss_gptq && r1.loss_rtn == r2.loss_rtn);
        lb_free(h);
        lb_free(one);
        lb_free(two);
    }
    lb_free(w);
    lb_hessian_free(&hs);
}

/* Inputs that are always zero, a rank-deficient H with no damping (the damping is raised and
 * reported), and a float target type (blocks of one). */
static void test_awkward_hessians(void)
{
    const int64_t rows = 16, cols = 64, tokens = 40;
    lb_rng rng;
    lb_rng_seed(&rng, seed + 6);
    float *x = lb_malloc((size_t)(tokens * cols) * sizeof *x);
    for (int64_t i = 0; i < tokens * cols; i++)
        x[i] = (i % cols) % 7 == 3 ? 0.0f : (float)gaussian(&rng);
    lb_hessian hs;
    CHECK_OK(lb_hessian_init(&hs, cols));
    CHECK_OK(lb_hessian_add(&hs, x, tokens));
    lb_hessian_finish(&hs);
    float *w = random_weights(rows, cols, seed + 7);
    size_t bytes = matrix_bytes(LB_TYPE_Q4_0, rows, cols);
    void *q = lb_malloc(bytes);
    lb_gptq_options opt = lb_gptq_default_options();
    opt.damp = 0.0;
    lb_gptq_report rep;
    double *h = copy_of(&hs);
    CHECK_OK(lb_gptq_quantize(w, rows, cols, h, LB_TYPE_Q4_0, &opt, q, &rep));
    CHECK(rep.dead_columns == 9); /* columns 3, 10, ..., 59 */
    CHECK(rep.damp_raises >= 1 && rep.damp > 0.0);
    /* The damped, dead-patched H is GPTQ's working copy; the loss is of the real H. */
    CHECK(fabs(rep.loss_gptq - explicit_loss(w, q, LB_TYPE_Q4_0, rows, cols, hs.h)) <=
          1e-9 * explicit_loss(w, NULL, LB_TYPE_Q4_0, rows, cols, hs.h));
    CHECK(rep.loss_gptq <= rep.loss_rtn);
    printf("rank-deficient H: damping raised %d times to %g, loss/ref gptq %.4e rtn %.4e\n",
           rep.damp_raises, rep.damp, rep.loss_gptq / rep.ref, rep.loss_rtn / rep.ref);

    /* F16: each element on its own grid. */
    void *half = lb_malloc(matrix_bytes(LB_TYPE_F16, rows, cols));
    memcpy(h, hs.h, (size_t)(cols * cols) * sizeof *h);
    CHECK_OK(lb_gptq_quantize(w, rows, cols, h, LB_TYPE_F16, NULL, half, &rep));
    CHECK(rep.loss_gptq <= rep.loss_rtn * 1.0001 + 1e-30);
    lb_free(half);

    /* Errors: rows that do not fit, a NaN on the diagonal, Q8_K. */
    memcpy(h, hs.h, (size_t)(cols * cols) * sizeof *h);
    CHECK(lb_gptq_quantize(w, rows, cols, h, LB_TYPE_Q4_K, NULL, q, NULL) ==
          LB_ERR_INVALID_ARG);
    CHECK(lb_gptq_quantize(w, rows, cols, h, LB_TYPE_Q8_K, NULL, q, NULL) ==
          LB_ERR_UNSUPPORTED);
    h[5 * cols + 5] = NAN;
    CHECK(lb_gptq_quantize(w, rows, cols, h, LB_TYPE_Q4_0, NULL, q, NULL) == LB_ERR_NUMERIC);
    lb_free(h);
    lb_free(q);
    lb_free(w);
    lb_free(x);
    lb_hessian_free(&hs);
}

/* The decoded value of table level i, as the grid contract computes it. */
static float table_decode(float scale, float level, float offset)
{
    float p = scale * level;
    return p + offset;
}

/* lb_grid_nearest_table_level against a scan of every level: the index it returns decodes
 * nearest to w (ties to the lower index), for scales of both signs, offsets, values outside the
 * grid, exact ties between two levels, and the degenerate cases (scale 0, NaN). */
static void test_nearest_table_level(void)
{
    const lb_kernel_type *k = lb_kernels_type(LB_TYPE_IQ4_NL);
    const float *levels = k->levels;
    const int n = k->qmax - k->qmin + 1;
    lb_rng rng;
    lb_rng_seed(&rng, seed + 8);
    int64_t wrong = 0, cases = 0;
    for (int rep = 0; rep < 200000; rep++) {
        uint64_t r = lb_rng_next(&rng);
        float scale = (float)((double)(r % 2000) / 1000.0 - 1.0) * (r & (1u << 20) ? 1e-3f : 1.0f);
        float offset = r & (1u << 21) ? -0.0f : (float)(gaussian(&rng) * 0.1);
        float w;
        if (rep % 4 == 0) { /* exactly between two levels' decoded values */
            int i = (int)(lb_rng_next(&rng) % (uint64_t)(n - 1));
            double mid = 0.5 * ((double)table_decode(scale, levels[i], offset) +
                                (double)table_decode(scale, levels[i + 1], offset));
            w = (float)mid;
        } else {
            w = (float)(gaussian(&rng) * 150.0 * fabs((double)scale) + (double)offset);
        }
        int got = lb_grid_nearest_table_level(w, scale, offset, levels, n);
        int best = 0;
        if (scale != 0.0f) {
            double best_err = INFINITY;
            for (int i = 0; i < n; i++) {
                double err = fabs((double)w - (double)table_decode(scale, levels[i], offset));
                if (err < best_err) {
                    best_err = err;
                    best = i;
                }
            }
        } else {
            best = 8; /* the level nearest 0 (1 of -10 .. 1 .. 13) */
        }
        cases++;
        if (got != best) {
            if (wrong++ < 5)
                fprintf(stderr, "nearest table level of %.9g on scale %.9g offset %.9g: %d, "
                        "want %d (seed %llu)\n", (double)w, (double)scale, (double)offset, got,
                        best, (unsigned long long)seed);
        }
    }
    CHECK(wrong == 0);
    CHECK(lb_grid_nearest_table_level(NAN, 0.5f, -0.0f, levels, n) == 8);
    CHECK(lb_grid_nearest_table_level(1e30f, 0.5f, -0.0f, levels, n) == n - 1);
    CHECK(lb_grid_nearest_table_level(-1e30f, 0.5f, -0.0f, levels, n) == 0);
    CHECK(lb_grid_nearest_table_level(1e30f, -0.5f, -0.0f, levels, n) == 0);
    CHECK(lb_grid_nearest_table_level(3.0f, 1.0f, 0.0f, levels, 1) == 0);
    printf("nearest table level: %lld cases, %lld wrong\n", (long long)cases, (long long)wrong);
}

int main(void)
{
    printf("seed %llu\n", (unsigned long long)seed);
    test_nearest_table_level();
    test_beats_rtn();
    test_diagonal_is_rtn();
    test_thread_count();
    test_awkward_hessians();
    return test_finish("gptq");
}
