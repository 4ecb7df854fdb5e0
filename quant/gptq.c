/* RTN, GPTQ and the proxy loss. GPTQ follows Frantar et al. (2022): with U the upper Cholesky
 * factor of H⁻¹ (H⁻¹ = Uᵀ U), each column i is rounded and its error e = (w_i - q_i) / U_ii is
 * pushed onto the columns not yet rounded (w_j -= e U_ij), lazily: within a batch of columns
 * directly, onto the rest of the matrix as one GEMM per batch. Rows never interact, so the
 * matrix is swept in fixed chunks of rows in parallel: the result is the same at any thread
 * count. Since W - Q = E U and U H Uᵀ = I, the loss against the damped H is exactly Σ e²; the
 * report subtracts the damping's share to give the loss against H itself. */
#include "quant/gptq.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "kernels/kernels.h"
#include "linalg/linalg.h"

/* Rows per parallel work item: fixed, so that the GEMM shapes (and hence the rounding of every
 * sum) never depend on the thread count. */
#define CHUNK_ROWS 64
/* The largest block of any registered type (the K types' 256). */
#define MAX_BLOCK 256

lb_gptq_options lb_gptq_default_options(void)
{
    return (lb_gptq_options){
        .damp = 0.01, .batch_columns = 128, .act_order = false, .compare_rtn = true};
}

int lb_grid_nearest_level(float w, float scale, float offset, int qmin, int qmax)
{
    int q = 0;
    if (scale != 0.0f) {
        float t = (w - offset) / scale;
        if (t <= (float)qmin)
            q = qmin;
        else if (t >= (float)qmax)
            q = qmax;
        else if (t == t)
            q = (int)nearbyintf(t);
    }
    return q < qmin ? qmin : q > qmax ? qmax : q;
}

/* One level's decoded value, as the grid's contract computes it (product rounded, then sum). */
static float table_value(float scale, float level, float offset)
{
    float p = scale * level;
    return p + offset;
}

int lb_grid_nearest_table_level(float w, float scale, float offset, const float *levels,
                                int n_levels)
{
    /* Decoded values are monotone in the index (ascending levels, and rounding is monotone):
     * find the last index on w's low side, then take the nearer of it and the next. */
    if (n_levels <= 1)
        return 0;
    if (!(scale > 0.0f || scale < 0.0f) || w != w) {
        int best = 0;
        for (int i = 1; i < n_levels; i++)
            if (fabsf(levels[i]) < fabsf(levels[best]))
                best = i;
        return best;
    }
    const bool ascending = scale > 0.0f;
    int lo = -1, hi = n_levels; /* values at lo are on w's low side, at hi on its high side */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        float v = table_value(scale, levels[mid], offset);
        if (ascending ? v <= w : v >= w)
            lo = mid;
        else
            hi = mid;
    }
    if (lo < 0)
        return 0;
    if (hi >= n_levels)
        return n_levels - 1;
    double below = fabs((double)w - (double)table_value(scale, levels[lo], offset));
    double above = fabs((double)table_value(scale, levels[hi], offset) - (double)w);
    return above < below ? hi : lo;
}

/* The level of k's grid nearest to w: through the level table where k has one. */
static int nearest_type_level(const lb_kernel_type *k, float w, float scale, float offset)
{
    if (k->levels)
        return k->qmin + lb_grid_nearest_table_level(w, scale, offset, k->levels,
                                                      k->qmax - k->qmin + 1);
    return lb_grid_nearest_level(w, scale, offset, k->qmin, k->qmax);
}

/* The blocks of `type` over rows of `cols` weights. */
typedef struct row_layout {
    const lb_kernel_type *kernels;
    int64_t block_size;
    size_t block_bytes;
    size_t row_bytes;
    int64_t n_blocks;
} row_layout;

static lb_status row_layout_of(lb_type type, int64_t rows, int64_t cols, row_layout *layout)
{
    const lb_kernel_type *kernels = lb_kernels_type(type);
    const lb_type_info *info = lb_type_get((uint32_t)type);
    if (!kernels || !info || !kernels->vec_dot)
        return lb_error(LB_ERR_UNSUPPORTED, "type %s cannot hold weights",
                        info ? info->name : "(unknown)");
    if (rows < 1 || cols < 1)
        return lb_error(LB_ERR_INVALID_ARG, "empty matrix %lld x %lld", (long long)rows,
                        (long long)cols);
    if (rows > INT32_MAX || cols > INT32_MAX) /* BLAS's index range: the GEMMs below cannot fail */
        return lb_error(LB_ERR_UNSUPPORTED, "matrix %lld x %lld has a side over %d",
                        (long long)rows, (long long)cols, INT32_MAX);
    if (!lb_kernels_row_fits(type, cols) || info->block_size > MAX_BLOCK)
        return lb_error(LB_ERR_INVALID_ARG, "rows of %lld weights do not fit %s (blocks of %lld)",
                        (long long)cols, info->name, (long long)info->block_size);
    uint64_t row_bytes, total;
    if (!lb_type_row_bytes(type, cols, &row_bytes) ||
        !lb_size_mul(row_bytes, (uint64_t)rows, &total) || total > SIZE_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "matrix %lld x %lld is too large", (long long)rows,
                        (long long)cols);
    layout->kernels = kernels;
    layout->block_size = info->block_size;
    layout->block_bytes = info->block_bytes;
    layout->row_bytes = (size_t)row_bytes;
    layout->n_blocks = cols / info->block_size;
    return LB_OK;
}

/* Re-rounds every level of a quantized row to the nearest on the grid its blocks chose. */
static void nearest_levels_row(const row_layout *L, const float *x, uint8_t *row)
{
    const lb_kernel_type *k = L->kernels;
    float scale[MAX_BLOCK], offset[MAX_BLOCK];
    int8_t levels[MAX_BLOCK];
    for (int64_t b = 0; b < L->n_blocks; b++) {
        uint8_t *block = row + (size_t)b * L->block_bytes;
        const float *xb = x + b * L->block_size;
        k->block_grid(block, scale, offset);
        for (int64_t j = 0; j < L->block_size; j++)
            levels[j] = (int8_t)nearest_type_level(k, xb[j], scale[j], offset[j]);
        k->block_set_levels(block, levels);
    }
}

lb_status lb_rtn_quantize(const float *w, int64_t rows, int64_t cols, lb_type type,
                          const float *importance, void *out)
{
    row_layout L;
    lb_status status = row_layout_of(type, rows, cols, &L);
    if (status != LB_OK)
        return status;
    if (!w || !out)
        return lb_error(LB_ERR_INVALID_ARG, "lb_rtn_quantize: NULL matrix");
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = w + (size_t)r * (size_t)cols;
        uint8_t *row = (uint8_t *)out + (size_t)r * L.row_bytes;
        L.kernels->quantize_row(x, row, cols, importance);
        if (importance && L.kernels->block_grid)
            nearest_levels_row(&L, x, row);
    }
    return LB_OK;
}

/* Σ over rows of d H dᵀ with d = W - dequant(Q) (or W when q is NULL), by chunks of rows:
 * D (chunk x cols) times H through one GEMM, then the row dots. Per-chunk sums are added in
 * chunk order, so the total does not depend on the thread count. */
static lb_status proxy_loss(const float *w, const void *q, const row_layout *L, int64_t rows,
                            int64_t cols, const double *h, double *loss)
{
    int64_t n_chunks = (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
    double *partial = lb_calloc((size_t)n_chunks, sizeof *partial);
    if (!partial)
        return lb_error(LB_ERR_NOMEM,
                        "out of memory for the proxy loss of %lld row chunks (%zu bytes)",
                        (long long)n_chunks, (size_t)n_chunks * sizeof *partial);
    bool failed = false;
#pragma omp parallel
    {
        double *d = lb_malloc((size_t)CHUNK_ROWS * (size_t)cols * sizeof *d);
        double *p = lb_malloc((size_t)CHUNK_ROWS * (size_t)cols * sizeof *p);
        float *deq = lb_malloc((size_t)cols * sizeof *deq);
        if (!d || !p || !deq) {
#pragma omp atomic write
            failed = true;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            if (!d || !p || !deq)
                continue;
            int64_t r0 = ch * CHUNK_ROWS;
            int64_t nr = rows - r0 < CHUNK_ROWS ? rows - r0 : CHUNK_ROWS;
            for (int64_t r = 0; r < nr; r++) {
                const float *x = w + (size_t)(r0 + r) * (size_t)cols;
                if (q)
                    L->kernels->dequantize_row((const uint8_t *)q +
                                                   (size_t)(r0 + r) * L->row_bytes,
                                               deq, cols);
                for (int64_t c = 0; c < cols; c++)
                    d[r * cols + c] = (double)x[c] - (q ? (double)deq[c] : 0.0);
            }
            (void)lb_linalg_dgemm(false, false, nr, cols, cols, 1.0, d, cols, h, cols, 0.0, p,
                                  cols);
            double sum = 0.0;
            for (int64_t i = 0; i < nr * cols; i++)
                sum += d[i] * p[i];
            partial[ch] = sum;
        }
        lb_free(d);
        lb_free(p);
        lb_free(deq);
    }
    double total = 0.0;
    for (int64_t ch = 0; ch < n_chunks; ch++)
        total += partial[ch];
    lb_free(partial);
    if (failed)
        return lb_nomem("out of memory for the proxy loss");
    *loss = total;
    return LB_OK;
}

lb_status lb_proxy_loss(const float *w, const void *q, lb_type type, int64_t rows, int64_t cols,
                        const double *h, double *loss)
{
    row_layout L;
    lb_status status = row_layout_of(type, rows, cols, &L);
    if (status != LB_OK)
        return status;
    if (!w || !h || !loss)
        return lb_error(LB_ERR_INVALID_ARG, "lb_proxy_loss: NULL argument");
    int blas = lb_linalg_blas_threads_pin();
    status = proxy_loss(w, q, &L, rows, cols, h, loss);
    lb_linalg_blas_threads_restore(blas);
    return status;
}

typedef struct diag_entry {
    double value;
    int64_t index;
} diag_entry;

/* Decreasing diagonal, ties by index: a total order, so the permutation is reproducible. */
static int by_decreasing_diag(const void *a, const void *b)
{
    const diag_entry *x = a, *y = b;
    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Everything the sweep shares between threads. */
typedef struct sweep_plan {
    const row_layout *L;
    const float *w;
    int64_t rows, cols, batch;
    const double *u;        /* [cols][cols], upper triangle: Cholesky factor of H⁻¹ */
    const int64_t *perm;    /* sweep position -> column */
    const int64_t *pos;     /* column -> sweep position */
    const int64_t *grid_at; /* sweep position -> block whose grid is chosen there, or -1 */
    const bool *dead;       /* per column */
    const float *importance;
    const double *lambda;   /* per column: what was added to the diagonal */
    uint8_t *out;
} sweep_plan;

/* Per-thread buffers for one chunk of rows. */
typedef struct sweep_scratch {
    double *w;        /* [CHUNK_ROWS][cols] working weights in sweep order */
    double *err;      /* [CHUNK_ROWS][batch] scaled errors of the current batch */
    float *scale;     /* [CHUNK_ROWS][cols] per column: the grid of its block */
    float *offset;
    int8_t *levels;   /* [CHUNK_ROWS][cols] chosen levels, per column */
    uint8_t *blocks;  /* [CHUNK_ROWS][row_bytes] the quantizer's blocks (their scales) */
    float *row;       /* [cols] */
} sweep_scratch;

static void sweep_scratch_free(sweep_scratch *s)
{
    lb_free(s->w);
    lb_free(s->err);
    lb_free(s->scale);
    lb_free(s->offset);
    lb_free(s->levels);
    lb_free(s->blocks);
    lb_free(s->row);
}

static bool sweep_scratch_alloc(sweep_scratch *s, const sweep_plan *p)
{
    size_t n = (size_t)CHUNK_ROWS * (size_t)p->cols;
    s->w = lb_malloc(n * sizeof *s->w);
    s->err = lb_malloc((size_t)CHUNK_ROWS * (size_t)p->batch * sizeof *s->err);
    s->scale = lb_malloc(n * sizeof *s->scale);
    s->offset = lb_malloc(n * sizeof *s->offset);
    s->levels = lb_malloc(n * sizeof *s->levels);
    s->blocks = lb_malloc((size_t)CHUNK_ROWS * p->L->row_bytes);
    s->row = lb_malloc((size_t)p->cols * sizeof *s->row);
    return s->w && s->err && s->scale && s->offset && s->levels && s->blocks && s->row;
}

/* The grid of block b of chunk row r, chosen by the type's quantizer (importance-weighted)
 * from the row's current, error-updated weights. */
static void choose_grid(const sweep_plan *p, sweep_scratch *s, int64_t r, int64_t b)
{
    const row_layout *L = p->L;
    float x[MAX_BLOCK];
    const double *wr = s->w + r * p->cols;
    for (int64_t j = 0; j < L->block_size; j++)
        x[j] = (float)wr[p->pos[b * L->block_size + j]];
    uint8_t *block = s->blocks + (size_t)r * L->row_bytes + (size_t)b * L->block_bytes;
    L->kernels->quantize_row(x, block, L->block_size, p->importance + b * L->block_size);
    size_t at = (size_t)(r * p->cols + b * L->block_size);
    L->kernels->block_grid(block, s->scale + at, s->offset + at);
}

/* Rounds weight w of column c (chunk row r) and returns its decoded value. Types without a
 * grid (the float types, blocks of one) store the element directly. */
static float round_weight(const sweep_plan *p, sweep_scratch *s, int64_t r0, int64_t r,
                          int64_t c, double w)
{
    const row_layout *L = p->L;
    const lb_kernel_type *k = L->kernels;
    if (!k->block_grid) {
        float f = (float)w, decoded;
        uint8_t *dst = p->out + (size_t)(r0 + r) * L->row_bytes + (size_t)c * L->block_bytes;
        k->quantize_row(&f, dst, 1, NULL);
        k->dequantize_row(dst, &decoded, 1);
        return decoded;
    }
    size_t at = (size_t)(r * p->cols + c);
    int q = nearest_type_level(k, (float)w, s->scale[at], s->offset[at]);
    s->levels[at] = (int8_t)q;
    float decoded = s->scale[at] * (k->levels ? k->levels[q - k->qmin] : (float)q);
    return decoded + s->offset[at];
}

/* Sweeps rows r0 .. r0+nr-1 through every batch; returns Σ e² and adds the phases' times. */
static double sweep_chunk(const sweep_plan *p, sweep_scratch *s, int64_t r0, int64_t nr,
                          double *seconds_sweep, double *seconds_trailing)
{
    const row_layout *L = p->L;
    int64_t cols = p->cols;
    for (int64_t r = 0; r < nr; r++) {
        const float *x = p->w + (size_t)(r0 + r) * (size_t)cols;
        for (int64_t i = 0; i < cols; i++)
            s->w[r * cols + i] = p->dead[p->perm[i]] ? 0.0 : (double)x[p->perm[i]];
    }
    double err_sq = 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += p->batch) {
        int64_t i2 = i1 + p->batch < cols ? i1 + p->batch : cols;
        double t0 = omp_get_wtime();
        for (int64_t r = 0; r < nr; r++) {
            double *wr = s->w + r * cols;
            double *er = s->err + r * p->batch;
            for (int64_t i = i1; i < i2; i++) {
                if (p->grid_at[i] >= 0 && L->kernels->block_grid)
                    choose_grid(p, s, r, p->grid_at[i]);
                float decoded = round_weight(p, s, r0, r, p->perm[i], wr[i]);
                const double *u = p->u + i * cols;
                double e = (wr[i] - (double)decoded) / u[i];
                err_sq += e * e;
                for (int64_t j = i + 1; j < i2; j++)
                    wr[j] -= e * u[j];
                er[i - i1] = e;
            }
        }
        double t1 = omp_get_wtime();
        if (i2 < cols)
            (void)lb_linalg_dgemm(false, false, nr, cols - i2, i2 - i1, -1.0, s->err, p->batch,
                                  p->u + i1 * cols + i2, cols, 1.0, s->w + i2, cols);
        *seconds_sweep += t1 - t0;
        *seconds_trailing += omp_get_wtime() - t1;
    }
    /* Pack: the quantizer's blocks keep their scales and take the swept levels. */
    if (L->kernels->block_grid) {
        for (int64_t r = 0; r < nr; r++) {
            uint8_t *row = s->blocks + (size_t)r * L->row_bytes;
            for (int64_t b = 0; b < L->n_blocks; b++)
                L->kernels->block_set_levels(row + (size_t)b * L->block_bytes,
                                             s->levels + r * cols + b * L->block_size);
            memcpy(p->out + (size_t)(r0 + r) * L->row_bytes, row, L->row_bytes);
        }
    }
    return err_sq;
}

/* Σ λ_c (w'_c - q_c)² over the chunk's rows: the damping's share of Σ e². */
static double damping_share(const sweep_plan *p, sweep_scratch *s, int64_t r0, int64_t nr)
{
    double sum = 0.0;
    for (int64_t r = r0; r < r0 + nr; r++) {
        const float *x = p->w + (size_t)r * (size_t)p->cols;
        p->L->kernels->dequantize_row(p->out + (size_t)r * p->L->row_bytes, s->row, p->cols);
        for (int64_t c = 0; c < p->cols; c++) {
            double d = (p->dead[c] ? 0.0 : (double)x[c]) - (double)s->row[c];
            sum += p->lambda[c] * d * d;
        }
    }
    return sum;
}

/* Damps H (columns in sweep order, dead inputs already set to 1 on the diagonal) and replaces
 * its upper triangle by U, the upper Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U), raising the damping
 * while a factorization fails. With J the reversal permutation and J H J = Rᵀ R (R upper),
 * H⁻¹ = J R⁻¹ R⁻ᵀ J = Uᵀ U for U = J R⁻ᵀ J, which is upper with a positive diagonal, hence
 * the factor: one Cholesky and one triangular inverse (2n³/3 flops) instead of the textbook
 * Cholesky, inverse and second Cholesky (4n³/3). */
static lb_status factor_inverse(double *h, int64_t n, double damp, double *lambda_out,
                                double *damp_used, int *raises)
{
    double *diag = lb_malloc((size_t)n * sizeof *diag);
    if (!diag)
        return lb_error(LB_ERR_NOMEM,
                        "out of memory for the diagonal of a %lld x %lld Hessian (%zu bytes)",
                        (long long)n, (long long)n, (size_t)n * sizeof *diag);
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = h[i * n + i];
        mean += diag[i];
    }
    mean /= (double)n;
    lb_status status;
    *raises = 0;
    for (;;) {
        double lambda = damp * mean;
        for (int64_t i = 0; i < n; i++)
            h[i * n + i] = diag[i] + lambda;
        lb_linalg_reverse(h, n); /* J H J, still symmetric with both triangles */
        status = lb_linalg_cholesky_upper(h, n);
        if (status == LB_OK)
            status = lb_linalg_triangular_inverse_upper(h, n);
        if (status == LB_OK) {
            /* R⁻ᵀ into the lower triangle, then J · J: U lands in the upper triangle. */
            lb_linalg_mirror_upper(h, n);
            lb_linalg_reverse(h, n);
            *lambda_out = lambda;
            *damp_used = damp;
            break;
        }
        if (status != LB_ERR_NOT_POSITIVE_DEFINITE || damp >= 1.0) {
            status = lb_error_prefix(status, "GPTQ: the Hessian stays singular with damping %g",
                                     damp);
            break;
        }
        lb_linalg_mirror_lower(h, n); /* back to J H J, then to H */
        lb_linalg_reverse(h, n);
        damp = damp > 0.0 ? fmin(damp * 10.0, 1.0) : 1e-4;
        (*raises)++;
    }
    lb_free(diag);
    return status;
}

/* Per-column state of one GPTQ call, allocated together and freed together. */
typedef struct gptq_columns {
    float *importance; /* diag(H) as the kernels' importance weights */
    double *lambda;    /* what was added to each diagonal entry */
    int64_t *perm;     /* sweep position -> column */
    int64_t *pos;      /* column -> sweep position */
    int64_t *grid_at;  /* sweep position -> block whose grid is chosen there, or -1 */
    bool *dead;        /* diag(H) == 0: an input that is always zero */
    bool *seen;        /* per block: already given its grid position */
    diag_entry *order; /* the diagonal with column indices, sorted for act-order */
} gptq_columns;

static void gptq_columns_free(gptq_columns *c)
{
    lb_free(c->importance);
    lb_free(c->lambda);
    lb_free(c->perm);
    lb_free(c->pos);
    lb_free(c->grid_at);
    lb_free(c->dead);
    lb_free(c->seen);
    lb_free(c->order);
    memset(c, 0, sizeof *c);
}

static lb_status gptq_columns_alloc(gptq_columns *c, int64_t cols, int64_t n_blocks)
{
    size_t n = (size_t)cols;
    memset(c, 0, sizeof *c);
    c->importance = lb_malloc(n * sizeof *c->importance);
    c->lambda = lb_malloc(n * sizeof *c->lambda);
    c->perm = lb_malloc(n * sizeof *c->perm), c->pos = lb_malloc(n * sizeof *c->pos);
    c->grid_at = lb_malloc(n * sizeof *c->grid_at);
    c->dead = lb_calloc(n, sizeof *c->dead), c->seen = lb_calloc((size_t)n_blocks, 1);
    c->order = lb_malloc(n * sizeof *c->order);
    if (!c->importance || !c->lambda || !c->perm || !c->pos || !c->grid_at || !c->dead ||
        !c->seen || !c->order) {
        gptq_columns_free(c);
        return lb_nomem("out of memory for GPTQ of %lld columns",
                        (long long)cols);
    }
    return LB_OK;
}

/* The arguments, and a Hessian diagonal that is finite and non-negative. */
static lb_status check_gptq_inputs(const float *w, const double *h, const void *out,
                                   int64_t cols, const lb_gptq_options *opt)
{
    if (!w || !h || !out)
        return lb_error(LB_ERR_INVALID_ARG, "lb_gptq_quantize: NULL argument");
    if (opt->batch_columns < 1 || !(opt->damp >= 0.0) || opt->damp > 1.0)
        return lb_error(LB_ERR_INVALID_ARG, "GPTQ: batch %lld and damping %g are out of range",
                        (long long)opt->batch_columns, opt->damp);
    for (int64_t c = 0; c < cols; c++)
        if (!(h[c * cols + c] >= 0.0) || !isfinite(h[c * cols + c]))
            return lb_error(LB_ERR_NUMERIC, "GPTQ: Hessian diagonal %lld is %g", (long long)c,
                            h[c * cols + c]);
    return LB_OK;
}

/* The report's baseline: RTN with diag(H) as importance, its proxy loss and the loss of
 * rounding everything to zero (the reference that relative losses divide by). */
static lb_status compare_with_rtn(const float *w, int64_t rows, int64_t cols, const double *h,
                                  lb_type type, const row_layout *L, const float *importance,
                                  lb_gptq_report *rep)
{
    double t0 = omp_get_wtime();
    void *rtn = lb_malloc(L->row_bytes * (size_t)rows);
    if (!rtn)
        return lb_nomem("out of memory for the RTN comparison");
    lb_status status = lb_rtn_quantize(w, rows, cols, type, importance, rtn);
    if (status == LB_OK)
        status = proxy_loss(w, rtn, L, rows, cols, h, &rep->loss_rtn);
    if (status == LB_OK)
        status = proxy_loss(w, NULL, L, rows, cols, h, &rep->ref);
    lb_free(rtn);
    if (status == LB_OK)
        rep->seconds_loss = omp_get_wtime() - t0;
    return status;
}

/* The sweep order (diag(H) decreasing with act-order, else the columns' own), where each
 * block's grid is chosen (its first column swept), and h overwritten by the upper Cholesky
 * factor of the damped, permuted H⁻¹, dead columns given a unit diagonal first. */
static lb_status prepare_columns(double *h, int64_t cols, const row_layout *L,
                                 const lb_gptq_options *opt, gptq_columns *c,
                                 lb_gptq_report *rep)
{
    double t_chol = omp_get_wtime();
    if (opt->act_order)
        qsort(c->order, (size_t)cols, sizeof *c->order, by_decreasing_diag);
    for (int64_t i = 0; i < cols; i++) {
        c->perm[i] = c->order[i].index;
        c->pos[c->perm[i]] = i;
        int64_t b = c->perm[i] / L->block_size;
        c->grid_at[i] = c->seen[b] ? -1 : b;
        c->seen[b] = true;
    }
    lb_status status;
    if (opt->act_order && (status = lb_linalg_permute_symmetric(h, cols, c->perm)) != LB_OK)
        return status;
    for (int64_t i = 0; i < cols; i++)
        if (c->dead[c->perm[i]])
            h[i * cols + i] = 1.0;
    double lambda_all = 0.0;
    status = factor_inverse(h, cols, opt->damp, &lambda_all, &rep->damp, &rep->damp_raises);
    if (status != LB_OK)
        return status;
    for (int64_t j = 0; j < cols; j++)
        c->lambda[j] = lambda_all + (c->dead[j] ? 1.0 : 0.0);
    rep->seconds_cholesky = omp_get_wtime() - t_chol;
    return LB_OK;
}

/* Rounds every chunk of rows in parallel (each thread with its own scratch) and sums the
 * chunks' losses in chunk order: rep gets the loss against H and the stage timings. */
static lb_status sweep_all_rows(const sweep_plan *plan, lb_gptq_report *rep)
{
    int64_t rows = plan->rows, cols = plan->cols;
    int64_t n_chunks = (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
    double *partial = lb_calloc((size_t)n_chunks * 2, sizeof *partial);
    if (!partial)
        return lb_error(LB_ERR_NOMEM,
                        "out of memory for the losses of %lld row chunks (%zu bytes)",
                        (long long)n_chunks, (size_t)n_chunks * 2 * sizeof *partial);
    bool failed = false;
    double t_sweep = 0.0, t_trailing = 0.0, t_parallel = omp_get_wtime();
#pragma omp parallel reduction(+ : t_sweep, t_trailing)
    {
        sweep_scratch s;
        memset(&s, 0, sizeof s);
        bool ok = sweep_scratch_alloc(&s, plan);
        if (!ok) {
#pragma omp atomic write
            failed = true;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            if (!ok)
                continue;
            int64_t r0 = ch * CHUNK_ROWS;
            int64_t nr = rows - r0 < CHUNK_ROWS ? rows - r0 : CHUNK_ROWS;
            partial[2 * ch] = sweep_chunk(plan, &s, r0, nr, &t_sweep, &t_trailing);
            partial[2 * ch + 1] = damping_share(plan, &s, r0, nr);
        }
        sweep_scratch_free(&s);
    }
    if (failed) {
        lb_free(partial);
        return lb_nomem("out of memory for GPTQ's per-thread buffers");
    }
    double wall = omp_get_wtime() - t_parallel, busy = t_sweep + t_trailing;
    rep->seconds_sweep = busy > 0.0 ? wall * t_sweep / busy : 0.0;
    rep->seconds_trailing = busy > 0.0 ? wall * t_trailing / busy : 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += plan->batch) {
        int64_t i2 = i1 + plan->batch < cols ? i1 + plan->batch : cols;
        rep->trailing_flops += 2.0 * (double)rows * (double)(i2 - i1) * (double)(cols - i2);
    }
    double err_sq = 0.0, share = 0.0;
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        err_sq += partial[2 * ch];
        share += partial[2 * ch + 1];
    }
    rep->loss_gptq = err_sq - share;
    lb_free(partial);
    return LB_OK;
}

lb_status lb_gptq_quantize(const float *w, int64_t rows, int64_t cols, double *h, lb_type type,
                           const lb_gptq_options *options, void *out, lb_gptq_report *report)
{
    row_layout L;
    lb_status status = row_layout_of(type, rows, cols, &L);
    if (status != LB_OK)
        return status;
    lb_gptq_options opt = options ? *options : lb_gptq_default_options();
    if ((status = check_gptq_inputs(w, h, out, cols, &opt)) != LB_OK)
        return status;
    lb_gptq_report rep;
    memset(&rep, 0, sizeof rep);
    double t_start = omp_get_wtime();
    int blas = lb_linalg_blas_threads_pin();

    gptq_columns c;
    if ((status = gptq_columns_alloc(&c, cols, L.n_blocks)) != LB_OK)
        goto done;
    for (int64_t j = 0; j < cols; j++) {
        c.importance[j] = (float)h[j * cols + j];
        c.dead[j] = h[j * cols + j] == 0.0;
        rep.dead_columns += c.dead[j];
        c.order[j] = (diag_entry){h[j * cols + j], j};
    }
    if (report && opt.compare_rtn &&
        (status = compare_with_rtn(w, rows, cols, h, type, &L, c.importance, &rep)) != LB_OK)
        goto done;
    if ((status = prepare_columns(h, cols, &L, &opt, &c, &rep)) != LB_OK)
        goto done;
    sweep_plan plan = {&L, w, rows, cols, opt.batch_columns < cols ? opt.batch_columns : cols,
                       h, c.perm, c.pos, c.grid_at, c.dead, c.importance, c.lambda, out};
    if ((status = sweep_all_rows(&plan, &rep)) != LB_OK)
        goto done;
    rep.seconds_total = omp_get_wtime() - t_start;
    if (report)
        *report = rep;
done:
    lb_linalg_blas_threads_restore(blas);
    gptq_columns_free(&c);
    return status;
}

int64_t lb_gptq_chunk_rows(void)
{
    return CHUNK_ROWS;
}
