/* Rotations folded into the weights: the rotated view of a checkpoint (see rotate.h), a
 * checkpoint view (formats/checkpoint_view_internal.h) whose rows this file computes from the
 * base's, in float64. */
#include "quant/rotate.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/rng.h"
#include "formats/checkpoint_view_internal.h"
#include "linalg/linalg.h"

/* ---- one orthogonal operator T, Hadamard or dense ---- */

typedef struct rotation {
    int64_t n;
    lb_rht *rht;    /* Hadamard kind */
    double *dense;  /* else n x n, T x = dense x */
} rotation;

static void rotation_free(rotation *r)
{
    lb_linalg_rht_free(&r->rht);
    lb_free(r->dense);
    r->dense = NULL;
}

/* The kind that order n gets: Hadamard falls back to orthogonal without a Hadamard order. */
static lb_rotate_kind effective_kind(lb_rotate_kind kind, int64_t n)
{
    int64_t m, p;
    return kind == LB_ROTATE_HADAMARD && lb_linalg_hadamard_split(n, &m, &p)
               ? LB_ROTATE_HADAMARD
               : LB_ROTATE_ORTHOGONAL;
}

static lb_status rotation_make(rotation *r, int64_t n, lb_rotate_kind kind, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    if (effective_kind(kind, n) == LB_ROTATE_HADAMARD)
        return lb_linalg_rht_create(&r->rht, n, seed);
    if (!(r->dense = lb_malloc((size_t)(n * n) * sizeof *r->dense)))
        return lb_nomem("out of memory for a %lld x %lld rotation", (long long)n, (long long)n);
    lb_status status = lb_linalg_random_orthogonal(r->dense, n, seed);
    if (status != LB_OK)
        rotation_free(r);
    return status;
}

/* v <- T v for `count` vectors of r->n doubles at x + i * stride. */
static lb_status apply_vectors(const rotation *r, double *x, int64_t count, int64_t stride)
{
    int64_t n = r->n;
    if (count <= 0)
        return LB_OK;
    if (r->rht) {
        /* Vectors are independent: any thread count gives the same bits. Small batches stay
         * on one thread (a parallel region costs more than they do). */
        int threads = count * n >= (1 << 16) ? omp_get_max_threads() : 1;
        double *work = lb_malloc((size_t)threads * (size_t)n * sizeof *work);
        if (!work)
            return lb_nomem("out of memory for %d Hadamard work rows of %lld", threads,
                            (long long)n);
        int failed = 0;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = 0; i < count; i++) {
            if (lb_linalg_rht_apply(r->rht, x + i * stride, 1, stride, false,
                                    work + (size_t)omp_get_thread_num() * (size_t)n) != LB_OK) {
#pragma omp atomic write
                failed = 1;
            }
        }
        lb_free(work);
        return failed ? lb_error(LB_ERR_INVALID_ARG, "rotate: Hadamard transform of %lld "
                                 "vectors of %lld failed", (long long)count, (long long)n)
                      : LB_OK;
    }
    /* Dense: gather a chunk of vectors, Y = X Tᵀ by GEMM, scatter back. */
    enum { CHUNK = 256 };
    int64_t chunk = count < CHUNK ? count : CHUNK;
    double *a = lb_malloc((size_t)(2 * chunk * n) * sizeof *a);
    if (!a)
        return lb_nomem("out of memory for %lld vectors of %lld to rotate", (long long)chunk,
                        (long long)n);
    double *b = a + chunk * n;
    lb_status status = LB_OK;
    for (int64_t i0 = 0; i0 < count && status == LB_OK; i0 += chunk) {
        int64_t c = count - i0 < chunk ? count - i0 : chunk;
        for (int64_t i = 0; i < c; i++)
            memcpy(a + i * n, x + (i0 + i) * stride, (size_t)n * sizeof *a);
        status = lb_linalg_dgemm(false, true, c, n, n, 1.0, a, n, r->dense, n, 0.0, b, n);
        for (int64_t i = 0; i < c && status == LB_OK; i++)
            memcpy(x + (i0 + i) * stride, b + i * n, (size_t)n * sizeof *b);
    }
    lb_free(a);
    return status;
}

/* Column c of the r->n x cols block x (leading dimension ld) <- T column c, for every c. */
static lb_status apply_columns(const rotation *r, double *x, int64_t cols, int64_t ld)
{
    enum { CHUNK = 64 };
    int64_t n = r->n;
    double *t = lb_malloc((size_t)(CHUNK * n) * sizeof *t);
    if (!t)
        return lb_nomem("out of memory for %d columns of %lld to rotate", (int)CHUNK,
                        (long long)n);
    lb_status status = LB_OK;
    for (int64_t c0 = 0; c0 < cols && status == LB_OK; c0 += CHUNK) {
        int64_t c = cols - c0 < CHUNK ? cols - c0 : CHUNK;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                t[j * n + i] = x[i * ld + c0 + j];
        status = apply_vectors(r, t, c, n);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                x[i * ld + c0 + j] = t[j * n + i];
    }
    lb_free(t);
    return status;
}

/* ---- the plan: what each view tensor is ---- */

typedef enum op {
    OP_PASS,    /* the base's rows unchanged */
    OP_ONES,    /* a folded norm: all ones */
    OP_ROWS,    /* rows times the folded gain (if any), then T1 (embedding and readers) */
    OP_V,       /* attn_v: OP_ROWS, then T2 of each KV head on its rows (whole tensor) */
    OP_V_BIAS,  /* attn_v.bias: T2 of each KV head on its segment */
    OP_WRITER,  /* attn_output / ffn_down: T1 on columns, T2 on attn_output's head segments */
    OP_WRITER_BIAS, /* a bias added to the stream: T1 */
} op;

typedef struct rot_tensor {
    op op;
    int64_t base;  /* index in the base checkpoint */
    int64_t layer; /* -1 outside the blocks */
    int64_t gain;  /* base index of the norm folded into the rows, or -1 */
    bool r2_segments; /* OP_WRITER on attn_output with R2 */
} rot_tensor;

typedef struct rotate_ctx {
    const lb_checkpoint *base;
    lb_rotate_options opt;
    lb_rotate_info info;
    lb_hparams hp;
    rotation r1;
    lb_rotate_kind r2_kind;
    rot_tensor *plan; /* per view tensor */
    int64_t n_plan;
    int64_t cache_index; /* the view tensor whose rows `cache` holds, or -1 */
    float *cache;
} rotate_ctx;

static void ctx_free(void *context)
{
    rotate_ctx *ctx = context;
    if (!ctx)
        return;
    rotation_free(&ctx->r1);
    lb_free(ctx->plan);
    lb_free(ctx->cache);
    lb_free(ctx);
}

static const char *kind_name(lb_rotate_kind kind)
{
    return kind == LB_ROTATE_HADAMARD ? "hadamard" : "orthogonal";
}

const char *lb_rotate_kind_name(lb_rotate_kind kind)
{
    return kind_name(kind);
}

lb_rotate_options lb_rotate_default_options(void)
{
    lb_rotate_options o = {.r1 = true, .r2 = false, .kind = LB_ROTATE_HADAMARD, .seed = 1,
                           .untie = true};
    return o;
}

/* The seed of R2 for layer l, KV head h (rotate.h). */
static uint64_t r2_head_seed(const rotate_ctx *ctx, int64_t layer, int64_t head)
{
    lb_rng rng;
    uint64_t index = (uint64_t)(layer * ctx->hp.n_kv_heads + head);
    lb_rng_seed(&rng, ctx->info.r2_seed ^ (index * 0xd1b54a32d192ed03ull));
    return lb_rng_next(&rng);
}

/* ---- computing rows ---- */

/* Reads the f32 norm at base index `gain` into g (dim doubles). */
static lb_status read_gain(const rotate_ctx *ctx, int64_t gain, double *g, float *scratch)
{
    lb_status status = lb_checkpoint_read_rows_f32(ctx->base, gain, 0, 1, scratch);
    for (int64_t i = 0; i < ctx->hp.dim && status == LB_OK; i++)
        g[i] = (double)scratch[i];
    return status;
}

/* Rows in double (rows x cols, read from the base) times the gain, then T1 on each row. */
static lb_status rows_op(const rotate_ctx *ctx, const rot_tensor *t, double *x, int64_t rows,
                         int64_t cols)
{
    lb_status status = LB_OK;
    if (t->gain >= 0) {
        double *g = lb_malloc((size_t)cols * sizeof *g);
        float *scratch = lb_malloc((size_t)cols * sizeof *scratch);
        if (!g || !scratch)
            status = lb_nomem("out of memory for a norm gain of %lld", (long long)cols);
        if (status == LB_OK)
            status = read_gain(ctx, t->gain, g, scratch);
        for (int64_t r = 0; r < rows && status == LB_OK; r++)
            for (int64_t c = 0; c < cols; c++)
                x[r * cols + c] *= g[c];
        lb_free(g);
        lb_free(scratch);
    }
    if (status == LB_OK && ctx->opt.r1)
        status = apply_vectors(&ctx->r1, x, rows, cols);
    return status;
}

/* T2 of every KV head of layer `layer`, applied by `fn` to head h. */
typedef lb_status (*head_fn)(const rotate_ctx *ctx, const rotation *r, int64_t head, double *x,
                             int64_t rows, int64_t cols);

static lb_status for_each_kv_head(const rotate_ctx *ctx, int64_t layer, head_fn fn, double *x,
                                  int64_t rows, int64_t cols)
{
    lb_status status = LB_OK;
    for (int64_t h = 0; h < ctx->hp.n_kv_heads && status == LB_OK; h++) {
        rotation r;
        status = rotation_make(&r, ctx->hp.head_dim, ctx->r2_kind, r2_head_seed(ctx, layer, h));
        if (status == LB_OK)
            status = fn(ctx, &r, h, x, rows, cols);
        rotation_free(&r);
    }
    return status;
}

/* attn_v: the rows of KV head h are a head_dim x cols block; T2 on its columns. */
static lb_status v_head(const rotate_ctx *ctx, const rotation *r, int64_t h, double *x,
                        int64_t rows, int64_t cols)
{
    (void)rows;
    return apply_columns(r, x + h * ctx->hp.head_dim * cols, cols, cols);
}

/* attn_v.bias: segment h. */
static lb_status v_bias_head(const rotate_ctx *ctx, const rotation *r, int64_t h, double *x,
                             int64_t rows, int64_t cols)
{
    (void)rows;
    (void)cols;
    return apply_vectors(r, x + h * ctx->hp.head_dim, 1, ctx->hp.head_dim);
}

/* attn_output: the column segments of every query head of h's group, in every row. */
static lb_status o_head(const rotate_ctx *ctx, const rotation *r, int64_t h, double *x,
                        int64_t rows, int64_t cols)
{
    int64_t group = ctx->hp.n_heads / ctx->hp.n_kv_heads;
    lb_status status = LB_OK;
    for (int64_t q = h * group; q < (h + 1) * group && status == LB_OK; q++)
        status = apply_vectors(r, x + q * ctx->hp.head_dim, rows, cols);
    return status;
}

/* The whole of tensor t (rows x cols doubles in x, read from the base) transformed. */
static lb_status whole_op(const rotate_ctx *ctx, const rot_tensor *t, double *x, int64_t rows,
                          int64_t cols)
{
    switch (t->op) {
    case OP_V: {
        lb_status status = LB_OK;
        if (t->gain >= 0 || ctx->opt.r1)
            status = rows_op(ctx, t, x, rows, cols);
        if (status == LB_OK && ctx->opt.r2)
            status = for_each_kv_head(ctx, t->layer, v_head, x, rows, cols);
        return status;
    }
    case OP_V_BIAS:
        return for_each_kv_head(ctx, t->layer, v_bias_head, x, rows, cols);
    case OP_WRITER: {
        lb_status status = LB_OK;
        if (ctx->opt.r1)
            status = apply_columns(&ctx->r1, x, cols, cols);
        if (status == LB_OK && t->r2_segments)
            status = for_each_kv_head(ctx, t->layer, o_head, x, rows, cols);
        return status;
    }
    case OP_WRITER_BIAS:
        return apply_vectors(&ctx->r1, x, 1, cols);
    default:
        return lb_error(LB_ERR_INVALID_ARG, "rotate: operation %d is not whole-tensor",
                        (int)t->op);
    }
}

static void shape_of(const lb_checkpoint_tensor *t, int64_t *rows, int64_t *cols)
{
    *cols = t->ne[0];
    *rows = 1;
    lb_tensor_count(t->n_dims - 1, t->ne + 1, rows);
}

/* Computes the whole of view tensor `index` into the cache. */
static lb_status fill_cache(rotate_ctx *ctx, const lb_checkpoint *view, int64_t index)
{
    const rot_tensor *t = &ctx->plan[index];
    int64_t rows, cols;
    shape_of(&view->tensors[index], &rows, &cols);
    size_t count = (size_t)rows * (size_t)cols;
    lb_free(ctx->cache);
    ctx->cache_index = -1;
    ctx->cache = lb_malloc(count * sizeof *ctx->cache);
    double *x = lb_malloc(count * sizeof *x);
    lb_status status = LB_OK;
    if (!ctx->cache || !x)
        status = lb_nomem("%s: out of memory rotating '%s' (%zu doubles)", view->path,
                          view->tensors[index].name, count);
    if (status == LB_OK)
        status = lb_checkpoint_read_rows_f32(ctx->base, t->base, 0, rows, ctx->cache);
    lb_checkpoint_release_tensor(ctx->base, t->base);
    for (size_t i = 0; i < count && status == LB_OK; i++)
        x[i] = (double)ctx->cache[i];
    if (status == LB_OK)
        status = whole_op(ctx, t, x, rows, cols);
    for (size_t i = 0; i < count && status == LB_OK; i++)
        ctx->cache[i] = (float)x[i];
    lb_free(x);
    if (status != LB_OK) {
        lb_free(ctx->cache);
        ctx->cache = NULL;
        return status;
    }
    ctx->cache_index = index;
    return LB_OK;
}

static lb_status view_read_rows(void *context, const lb_checkpoint *view, int64_t index,
                                int64_t row0, int64_t n_rows, float *dst)
{
    rotate_ctx *ctx = context;
    const rot_tensor *t = &ctx->plan[index];
    int64_t rows, cols;
    shape_of(&view->tensors[index], &rows, &cols);
    switch (t->op) {
    case OP_PASS:
        return lb_checkpoint_read_rows_f32(ctx->base, t->base, row0, n_rows, dst);
    case OP_ONES:
        for (int64_t i = 0; i < n_rows * cols; i++)
            dst[i] = 1.0f;
        return LB_OK;
    case OP_ROWS: {
        /* Row by row in chunks: only the chunk is held in double. */
        enum { CHUNK = 256 };
        int64_t chunk = n_rows < CHUNK ? n_rows : CHUNK;
        double *x = lb_malloc((size_t)(chunk * cols) * sizeof *x);
        if (!x)
            return lb_nomem("%s: out of memory for %lld rows of '%s'", view->path,
                            (long long)chunk, view->tensors[index].name);
        lb_status status = LB_OK;
        for (int64_t r0 = 0; r0 < n_rows && status == LB_OK; r0 += chunk) {
            int64_t n = n_rows - r0 < chunk ? n_rows - r0 : chunk;
            float *out = dst + r0 * cols;
            status = lb_checkpoint_read_rows_f32(ctx->base, t->base, row0 + r0, n, out);
            for (int64_t i = 0; i < n * cols && status == LB_OK; i++)
                x[i] = (double)out[i];
            if (status == LB_OK)
                status = rows_op(ctx, t, x, n, cols);
            for (int64_t i = 0; i < n * cols && status == LB_OK; i++)
                out[i] = (float)x[i];
        }
        lb_free(x);
        return status;
    }
    default:
        break;
    }
    if (ctx->cache_index != index) {
        lb_status status = fill_cache(ctx, view, index);
        if (status != LB_OK)
            return status;
    }
    memcpy(dst, ctx->cache + row0 * cols, (size_t)(n_rows * cols) * sizeof *dst);
    return LB_OK;
}

static void view_release(void *context, const lb_checkpoint *view, int64_t index)
{
    (void)view;
    rotate_ctx *ctx = context;
    if (ctx->cache_index == index) {
        lb_free(ctx->cache);
        ctx->cache = NULL;
        ctx->cache_index = -1;
    }
    if (ctx->plan[index].op != OP_ONES)
        lb_checkpoint_release_tensor(ctx->base, ctx->plan[index].base);
}

static lb_status view_write_metadata(void *context, const lb_checkpoint *view,
                                     lb_gguf_writer *w)
{
    (void)view;
    const rotate_ctx *ctx = context;
    const lb_rotate_info *info = &ctx->info;
    lb_status status = lb_gguf_writer_set_string(w, "lowbit.rotation.r1", info->r1);
    if (status == LB_OK && ctx->opt.r1)
        status = lb_gguf_writer_set_u64(w, "lowbit.rotation.r1_seed", info->r1_seed);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "lowbit.rotation.r2", info->r2);
    if (status == LB_OK && ctx->opt.r2)
        status = lb_gguf_writer_set_u64(w, "lowbit.rotation.r2_seed", info->r2_seed);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "lowbit.rotation.head", info->head);
    return status;
}

/* ---- planning ---- */

/* The role of a base tensor name: the op and, inside a block, the layer; the gain's norm
 * suffix for readers. false for names outside the llama layout. */
static bool plan_tensor(const rotate_ctx *ctx, const char *name, rot_tensor *t,
                        const char **gain_suffix)
{
    const lb_rotate_options *o = &ctx->opt;
    *gain_suffix = NULL;
    t->layer = -1;
    t->gain = -1;
    t->r2_segments = false;
    op reader = o->r1 ? OP_ROWS : OP_PASS;
    if (strcmp(name, "token_embd.weight") == 0) {
        t->op = reader;
        return true;
    }
    if (strcmp(name, "output_norm.weight") == 0) {
        t->op = o->r1 && (o->untie || !ctx->hp.tied_embeddings) ? OP_ONES : OP_PASS;
        return true;
    }
    if (strcmp(name, "output.weight") == 0) {
        t->op = reader;
        *gain_suffix = o->r1 ? "output_norm.weight" : NULL;
        return true;
    }
    if (strcmp(name, "rope_freqs.weight") == 0) {
        t->op = OP_PASS; /* frequencies of the rotary embedding: no weights */
        return true;
    }
    long long layer;
    int used = 0;
    if (sscanf(name, "blk.%lld.%n", &layer, &used) != 1 || used == 0 || layer < 0 ||
        layer >= ctx->hp.n_layers)
        return false;
    const char *s = name + used;
    t->layer = layer;
    if (strcmp(s, "attn_norm.weight") == 0 || strcmp(s, "ffn_norm.weight") == 0) {
        t->op = o->r1 ? OP_ONES : OP_PASS;
    } else if (strcmp(s, "attn_q.weight") == 0 || strcmp(s, "attn_k.weight") == 0) {
        t->op = reader;
        *gain_suffix = o->r1 ? "attn_norm.weight" : NULL;
    } else if (strcmp(s, "attn_v.weight") == 0) {
        t->op = o->r2 ? OP_V : reader;
        *gain_suffix = o->r1 ? "attn_norm.weight" : NULL;
    } else if (strcmp(s, "ffn_gate.weight") == 0 || strcmp(s, "ffn_up.weight") == 0) {
        t->op = reader;
        *gain_suffix = o->r1 ? "ffn_norm.weight" : NULL;
    } else if (strcmp(s, "attn_q.bias") == 0 || strcmp(s, "attn_k.bias") == 0) {
        t->op = OP_PASS; /* output side of q/k: no rotation reaches it */
    } else if (strcmp(s, "attn_v.bias") == 0) {
        t->op = o->r2 ? OP_V_BIAS : OP_PASS;
    } else if (strcmp(s, "attn_output.weight") == 0) {
        t->op = o->r1 || o->r2 ? OP_WRITER : OP_PASS;
        t->r2_segments = o->r2;
    } else if (strcmp(s, "ffn_down.weight") == 0) {
        t->op = o->r1 ? OP_WRITER : OP_PASS;
    } else if (strcmp(s, "attn_output.bias") == 0 || strcmp(s, "ffn_down.bias") == 0) {
        t->op = o->r1 ? OP_WRITER_BIAS : OP_PASS;
    } else {
        return false;
    }
    return true;
}

/* Shapes the ops rely on: rows of length dim for readers and the embedding, dim rows for
 * writers, head-sized blocks for R2. */
static lb_status check_shape(const rotate_ctx *ctx, const lb_checkpoint_tensor *bt,
                             const rot_tensor *t)
{
    const lb_hparams *hp = &ctx->hp;
    int64_t rows, cols;
    shape_of(bt, &rows, &cols);
    bool ok = true;
    switch (t->op) {
    case OP_ONES: ok = bt->n_dims == 1 && cols == hp->dim; break;
    case OP_ROWS: ok = bt->n_dims == 2 && cols == hp->dim; break;
    case OP_V: ok = bt->n_dims == 2 && cols == hp->dim && rows == hp->n_kv_heads * hp->head_dim;
        break;
    case OP_V_BIAS: ok = bt->n_dims == 1 && cols == hp->n_kv_heads * hp->head_dim; break;
    case OP_WRITER:
        ok = bt->n_dims == 2 && (!ctx->opt.r1 || rows == hp->dim) &&
             (!t->r2_segments || cols == hp->n_heads * hp->head_dim);
        break;
    case OP_WRITER_BIAS: ok = bt->n_dims == 1 && cols == hp->dim; break;
    case OP_PASS: break;
    }
    if (!ok)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: tensor '%s' has %lld x %lld elements, which does not fit dim %lld, "
                        "%lld heads, %lld KV heads of %lld",
                        ctx->base->path, bt->name, (long long)rows, (long long)cols,
                        (long long)hp->dim, (long long)hp->n_heads, (long long)hp->n_kv_heads,
                        (long long)hp->head_dim);
    return LB_OK;
}

static lb_status find_gain(const rotate_ctx *ctx, int64_t layer, const char *suffix,
                           int64_t *index)
{
    char name[96];
    if (layer >= 0)
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer, suffix);
    else
        snprintf(name, sizeof name, "%s", suffix);
    *index = lb_checkpoint_find(ctx->base, name);
    if (*index < 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' is missing (its gain is folded)",
                        ctx->base->path, name);
    const lb_checkpoint_tensor *t = &ctx->base->tensors[*index];
    if (t->n_dims != 1 || t->ne[0] != ctx->hp.dim)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: norm '%s' has %lld elements, not dim %lld",
                        ctx->base->path, name, (long long)t->ne[0], (long long)ctx->hp.dim);
    return LB_OK;
}

static lb_status make_plan(rotate_ctx *ctx, lb_checkpoint *view)
{
    const lb_checkpoint *base = ctx->base;
    ctx->n_plan = base->n_tensors + 1;
    if (!(ctx->plan = lb_calloc((size_t)ctx->n_plan, sizeof *ctx->plan)))
        return lb_nomem("%s: out of memory for the rotation plan", base->path);
    lb_status status = LB_OK;
    for (int64_t i = 0; i < base->n_tensors && status == LB_OK; i++) {
        const lb_checkpoint_tensor *bt = &base->tensors[i];
        rot_tensor *t = &ctx->plan[i];
        const char *gain_suffix;
        if (!plan_tensor(ctx, bt->name, t, &gain_suffix))
            return lb_error(LB_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has no known role in a rotated llama model",
                            base->path, bt->name);
        t->base = i;
        if (gain_suffix)
            status = find_gain(ctx, t->layer, gain_suffix, &t->gain);
        if (status == LB_OK)
            status = check_shape(ctx, bt, t);
    }
    int64_t embd = lb_checkpoint_find(base, "token_embd.weight");
    if (status == LB_OK && embd < 0)
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor 'token_embd.weight' is missing",
                          base->path);
    bool has_output = lb_checkpoint_find(base, "output.weight") >= 0;
    if (status == LB_OK && ctx->opt.r1 && !has_output && ctx->opt.untie) {
        /* The tied classifier becomes its own matrix: the embedding's rows, read through the
         * output_norm gain and T1. */
        const lb_checkpoint_tensor *e = &base->tensors[embd];
        int64_t index;
        status = lb_checkpoint_view_add_tensor(view, "output.weight", 2, e->ne, &index);
        if (status == LB_OK) {
            rot_tensor *t = &ctx->plan[index];
            t->op = OP_ROWS;
            t->base = embd;
            t->layer = -1;
            status = find_gain(ctx, -1, "output_norm.weight", &t->gain);
            view->hparams.tied_embeddings = false;
            ctx->info.added_output = true;
            ctx->info.added_output_elements = e->ne[0] * e->ne[1];
        }
    }
    ctx->info.head = has_output || ctx->info.added_output ? "untied" : "tied";
    ctx->info.exact = !ctx->opt.r1 || has_output || ctx->info.added_output;
    return status;
}

lb_status lb_rotate_checkpoint(lb_checkpoint **out, lb_checkpoint *base,
                               const lb_rotate_options *options, lb_rotate_info *info)
{
    *out = NULL;
    lb_rotate_options opt = options ? *options : lb_rotate_default_options();
    if (!base)
        return lb_error(LB_ERR_INVALID_ARG, "rotate: NULL checkpoint");
    if (!opt.r1 && !opt.r2)
        return lb_error(LB_ERR_INVALID_ARG, "rotate: neither R1 nor R2 asked");
    const lb_hparams *hp = &base->hparams;
    if (strcmp(hp->arch, "llama") != 0 && strcmp(hp->arch, "qwen2") != 0)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: rotating architecture '%s' is not supported "
                        "(llama, qwen2)", base->path, hp->arch);
    if (hp->dim <= 0 || hp->head_dim <= 0 || hp->n_heads <= 0 || hp->n_kv_heads <= 0 ||
        hp->n_heads % hp->n_kv_heads != 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: dim, heads and KV heads are not consistent",
                        base->path);
    if (base->gguf) {
        for (int64_t i = 0; i < base->gguf->n_kv; i++)
            if (strncmp(base->gguf->kv[i].key, "lowbit.rotation.", 16) == 0)
                return lb_error(LB_ERR_BAD_INPUT,
                                "%s: the weights are already rotated (%s): rotate the "
                                "original checkpoint instead", base->path,
                                base->gguf->kv[i].key);
    }
    rotate_ctx *ctx = lb_calloc(1, sizeof *ctx);
    if (!ctx)
        return lb_nomem("out of memory for a rotation");
    ctx->base = base;
    ctx->opt = opt;
    ctx->hp = *hp;
    ctx->cache_index = -1;
    ctx->info.r1 = opt.r1 ? kind_name(effective_kind(opt.kind, hp->dim)) : "none";
    ctx->info.r2 = opt.r2 ? kind_name(effective_kind(opt.kind, hp->head_dim)) : "none";
    ctx->info.r1_seed = opt.r1 ? opt.seed : 0;
    ctx->info.r2_seed = opt.r2 ? opt.seed + 1 : 0;
    ctx->r2_kind = effective_kind(opt.kind, hp->head_dim);
    lb_status status = opt.r1 ? rotation_make(&ctx->r1, hp->dim, opt.kind, opt.seed) : LB_OK;
    if (status != LB_OK) {
        ctx_free(ctx);
        return status;
    }
    static const lb_checkpoint_view_ops ops = {
        .read_rows = view_read_rows,
        .release = view_release,
        .write_metadata = view_write_metadata,
        .free = ctx_free,
    };
    lb_checkpoint *view = NULL;
    status = lb_checkpoint_view_open(&view, base, &ops, ctx);
    if (status != LB_OK) {
        ctx_free(ctx);
        return status;
    }
    /* From here the view owns ctx (closing it frees ctx) but not yet base. */
    status = make_plan(ctx, view);
    if (status != LB_OK) {
        lb_checkpoint_close(&view);
        return status;
    }
    lb_checkpoint_view_take_base(view);
    if (info)
        *info = ctx->info;
    *out = view;
    return LB_OK;
}
