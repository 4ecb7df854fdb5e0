/* The layer-sequential quantizer. The writer pulls tensors in file order (every block's tensors
 * in block order, then token embedding, final norm and output); pulling a tensor of block i
 * runs calibration and rounding up to block i. */
#include "quant/pipeline.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/half_internal.h"
#include "common/rng.h"
#include "kernels/kernels.h"
#include "linalg/linalg.h"
#include "quant/hessian.h"

lb_quantize_params lb_quantize_default_params(void)
{
    lb_quantize_params p;
    memset(&p, 0, sizeof p);
    p.method = LB_QUANT_RTN;
    p.nsamples = 128;
    p.seqlen = 512;
    p.seed = 1234;
    p.gptq = lb_gptq_default_options();
    return p;
}

/* The linear layers' inputs: q, k, v see one; gate and up see one. */
enum { GROUP_ATTN_IN, GROUP_ATTN_OUT, GROUP_FFN_IN, GROUP_FFN_DOWN, GROUP_OUTPUT, N_GROUPS };

static int group_of(lb_tensor_role role)
{
    switch (role) {
    case LB_ROLE_ATTN_Q:
    case LB_ROLE_ATTN_K:
    case LB_ROLE_ATTN_V: return GROUP_ATTN_IN;
    case LB_ROLE_ATTN_OUTPUT: return GROUP_ATTN_OUT;
    case LB_ROLE_FFN_GATE:
    case LB_ROLE_FFN_UP: return GROUP_FFN_IN;
    case LB_ROLE_FFN_DOWN: return GROUP_FFN_DOWN;
    case LB_ROLE_OUTPUT:
    case LB_ROLE_TOKEN_EMBD: return GROUP_OUTPUT;
    default: return -1;
    }
}

/* One tensor of the output file. */
typedef struct out_tensor {
    int64_t index;        /* in the checkpoint */
    lb_type type;
    int64_t layer;        /* block, or -1 */
    lb_tensor_role role;
    bool matrix;          /* rounded by the quantizer (2-d weight of a known role) */
    bool nonfinite;       /* holds NaN/Inf (replaced by 0 with allow_nonfinite) */
    void *packed;         /* bytes waiting for the writer */
} out_tensor;

typedef struct pipeline {
    const lb_checkpoint *ckpt;
    lb_model *model;
    const lb_quantize_params *p;
    lb_quantize_summary *summary;
    out_tensor *tensors;
    int64_t n_tensors;
    int64_t embd, output;     /* entries of token_embd and output.weight, or -1 */
    bool tied;                /* token_embd is also the classifier */
    bool gptq;
    int64_t next_layer;       /* blocks below it are done */
    bool finished;            /* token embedding and output done */
    int64_t done, total;      /* matrices, for progress */
    /* calibration */
    int64_t nsamples, seqlen, dim;
    float *acts;              /* [nsamples][seqlen][dim] inputs of block next_layer */
    float *scratch;           /* [seqlen][dim] */
    lb_model_state *state;
    lb_hessian hessians[N_GROUPS];
} pipeline;

/* ---- calibration ---- */

static lb_status hessian_hook(void *context, const char *tensor_name, int64_t layer,
                              const float *x, int64_t n_tokens, int64_t n_in)
{
    (void)layer;
    pipeline *pl = context;
    lb_tensor_role role = lb_tensor_role_of(tensor_name, NULL);
    /* Inputs shared by several matrices are accumulated once, at the first of them. */
    if (role == LB_ROLE_ATTN_K || role == LB_ROLE_ATTN_V || role == LB_ROLE_FFN_UP)
        return LB_OK;
    int g = group_of(role);
    if (g < 0)
        return LB_OK;
    lb_hessian *hs = &pl->hessians[g];
    lb_status status = LB_OK;
    if (!hs->h)
        status = lb_hessian_init(hs, n_in);
    if (status == LB_OK && hs->n != n_in)
        status = lb_error(LB_ERR_INVALID_ARG, "calibration: '%s' input of %lld, "
                          "Hessian of %lld", tensor_name, (long long)n_in, (long long)hs->n);
    if (status == LB_OK)
        status = lb_hessian_add(hs, x, n_tokens);
    return status;
}

lb_status lb_calibration_windows(const int32_t *tokens, int64_t n_tokens, int32_t bos,
                                 int64_t nsamples, int64_t seqlen, uint64_t seed,
                                 bool consecutive, int32_t *windows)
{
    int64_t text = seqlen - (bos >= 0 ? 1 : 0);
    if (nsamples < 1 || seqlen < 2)
        return lb_error(LB_ERR_INVALID_ARG, "calibration: %lld samples of %lld tokens",
                        (long long)nsamples, (long long)seqlen);
    if (!tokens || n_tokens < text)
        return lb_error(LB_ERR_BAD_INPUT,
                        "calibration: the text has %lld tokens, a window needs %lld",
                        (long long)n_tokens, (long long)text);
    if (consecutive && n_tokens / text < nsamples)
        return lb_error(LB_ERR_BAD_INPUT,
                        "calibration: the text holds %lld consecutive windows of %lld tokens, "
                        "%lld were asked for",
                        (long long)(n_tokens / text), (long long)seqlen, (long long)nsamples);
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (int64_t s = 0; s < nsamples; s++) {
        uint64_t starts = (uint64_t)(n_tokens - text + 1);
        int64_t start = consecutive ? s * text : (int64_t)lb_rng_below(&rng, starts);
        int32_t *window = windows + s * seqlen;
        if (bos >= 0)
            *window++ = bos;
        memcpy(window, tokens + start, (size_t)text * sizeof *window);
    }
    return LB_OK;
}

/* Draws the windows and embeds them: acts holds block 0's inputs. */
static lb_status calibration_start(pipeline *pl)
{
    const lb_quantize_params *p = pl->p;
    const lb_hparams *hp = lb_model_hparams(pl->model);
    if (p->seqlen > hp->context_length)
        return lb_error(LB_ERR_INVALID_ARG,
                        "calibration: windows of %lld tokens exceed the model's context of %lld",
                        (long long)p->seqlen, (long long)hp->context_length);
    pl->nsamples = p->nsamples;
    pl->seqlen = p->seqlen;
    pl->dim = hp->dim;
    uint64_t count, n_ids;
    if (p->nsamples < 1 || p->seqlen < 1 ||
        !lb_size_mul((uint64_t)p->nsamples, (uint64_t)p->seqlen, &n_ids) ||
        !lb_size_mul(n_ids, (uint64_t)hp->dim, &count) || count > SIZE_MAX / sizeof(float))
        return lb_error(LB_ERR_INVALID_ARG, "calibration: %lld samples of %lld tokens",
                        (long long)p->nsamples, (long long)p->seqlen);
    int32_t *windows = lb_malloc((size_t)n_ids * sizeof *windows);
    pl->acts = lb_malloc((size_t)count * sizeof(float));
    pl->scratch = lb_malloc((size_t)(p->seqlen * hp->dim) * sizeof(float));
    if (!pl->acts || !pl->scratch || !windows) {
        lb_free(windows);
        return lb_nomem("out of memory for %lld calibration activations "
                        "(%.1f MiB)", (long long)n_ids, (double)count * 4.0 / 1048576.0);
    }
    int32_t bos = lb_checkpoint_text_bos(pl->ckpt); /* -1 when the vocabulary adds none */
    lb_status status = lb_calibration_windows(p->calib_tokens, p->calib_n_tokens, bos,
                                              p->nsamples, p->seqlen, p->seed, p->consecutive,
                                              windows);
    if (status == LB_ERR_BAD_INPUT && p->calib_name)
        status = lb_error_prefix(status, "%s: ", p->calib_name);
    if (status == LB_OK)
        status = lb_model_state_create(&pl->state, pl->model, p->seqlen, p->seqlen);
    if (status == LB_OK)
        status = lb_model_acquire(pl->model, LB_MODEL_EMBED_LAYER);
    for (int64_t s = 0; s < p->nsamples && status == LB_OK; s++)
        status = lb_model_embed(pl->model, windows + s * p->seqlen, p->seqlen,
                                pl->acts + (size_t)(s * p->seqlen * hp->dim));
    lb_model_release(pl->model, LB_MODEL_EMBED_LAYER);
    lb_free(windows);
    return status;
}

/* ---- importance matrix ---- */

typedef struct imatrix_collector {
    lb_imatrix *imatrix;
    bool include_output;
    double *sums;
    int64_t capacity;
} imatrix_collector;

static lb_status imatrix_hook(void *context, const char *tensor_name, int64_t layer,
                              const float *x, int64_t n_tokens, int64_t n_in)
{
    imatrix_collector *c = context;
    if (layer == LB_MODEL_OUTPUT_LAYER && !c->include_output)
        return LB_OK;
    if (n_in > c->capacity) {
        double *grown = lb_realloc(c->sums, (size_t)n_in * sizeof *grown);
        if (!grown)
            return lb_error(LB_ERR_NOMEM, "out of memory for the imatrix sums of '%s' (%zu bytes)",
                            tensor_name, (size_t)n_in * sizeof *grown);
        c->sums = grown;
        c->capacity = n_in;
    }
    memset(c->sums, 0, (size_t)n_in * sizeof *c->sums);
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t i = 0; i < n_in; i++)
            c->sums[i] += (double)x[t * n_in + i] * (double)x[t * n_in + i];
    return lb_imatrix_add(c->imatrix, tensor_name, n_in, c->sums, n_tokens);
}

lb_status lb_imatrix_collect(lb_model *model, const int32_t *windows, int64_t nsamples,
                             int64_t seqlen, bool include_output, lb_imatrix *imatrix)
{
    enum { SLICE = 16 }; /* output-layer tokens per call: only its input matters here */
    lb_model_state *state = NULL;
    const lb_hparams *hp = lb_model_hparams(model);
    float *x = lb_malloc((size_t)(seqlen * hp->dim) * sizeof *x);
    float *logits = lb_malloc((size_t)(SLICE * hp->vocab_size) * sizeof *logits);
    if (!x || !logits) {
        lb_free(x);
        lb_free(logits);
        return lb_error(LB_ERR_NOMEM,
                        "out of memory for the imatrix activations and logits (%zu + %zu bytes)",
                        (size_t)(seqlen * hp->dim) * sizeof *x,
                        (size_t)(SLICE * hp->vocab_size) * sizeof *logits);
    }
    lb_status status = lb_model_state_create(&state, model, seqlen, seqlen);
    imatrix_collector c = {imatrix, include_output, NULL, 0};
    lb_model_set_linear_hook(model, imatrix_hook, &c);
    for (int64_t s = 0; s < nsamples && status == LB_OK; s++) {
        status = lb_model_embed(model, windows + s * seqlen, seqlen, x);
        for (int64_t l = 0; l < hp->n_layers && status == LB_OK; l++)
            status = lb_model_block_forward(model, state, l, x, seqlen, 0);
        for (int64_t t = 0; include_output && t < seqlen && status == LB_OK; t += SLICE)
            status = lb_model_output(model, state, x + t * hp->dim,
                                     seqlen - t < SLICE ? seqlen - t : SLICE, logits);
    }
    lb_model_set_linear_hook(model, NULL, NULL);
    lb_model_state_free(&state);
    lb_free(c.sums);
    lb_free(x);
    lb_free(logits);
    if (status == LB_OK) {
        imatrix->chunk_count += nsamples;
        imatrix->chunk_size = seqlen;
    }
    return status;
}

/* Runs block `layer` over every window: with the hook (Hessians of its inputs) on a copy, or
 * in place (the next block's inputs). */
static lb_status calibration_block(pipeline *pl, int64_t layer, bool collect)
{
    double t0 = omp_get_wtime();
    lb_status status = LB_OK;
    size_t window = (size_t)(pl->seqlen * pl->dim);
    if (collect) {
        for (int g = 0; g < N_GROUPS; g++)
            if (pl->hessians[g].h)
                lb_hessian_reset(&pl->hessians[g]);
        lb_model_set_linear_hook(pl->model, hessian_hook, pl);
    }
    for (int64_t s = 0; s < pl->nsamples && status == LB_OK; s++) {
        float *x = pl->acts + (size_t)s * window;
        if (collect) {
            memcpy(pl->scratch, x, window * sizeof(float));
            x = pl->scratch;
        }
        if (layer >= 0) {
            status = lb_model_block_forward(pl->model, pl->state, layer, x, pl->seqlen, 0);
        } else {
            /* The output layer: its logits are not needed, so a few tokens at a time. */
            enum { SLICE = 16 };
            const lb_hparams *hp = lb_model_hparams(pl->model);
            float *logits = lb_malloc((size_t)SLICE * (size_t)hp->vocab_size * sizeof *logits);
            if (!logits)
                status = lb_error(LB_ERR_NOMEM,
                                  "out of memory for the output layer's logits (%zu bytes)",
                                  (size_t)SLICE * (size_t)hp->vocab_size * sizeof *logits);
            for (int64_t t = 0; t < pl->seqlen && status == LB_OK; t += SLICE) {
                int64_t n = pl->seqlen - t < SLICE ? pl->seqlen - t : SLICE;
                status = lb_model_output(pl->model, pl->state, x + t * pl->dim, n, logits);
            }
            lb_free(logits);
        }
    }
    if (collect) {
        lb_model_set_linear_hook(pl->model, NULL, NULL);
        for (int g = 0; g < N_GROUPS; g++)
            if (pl->hessians[g].h)
                lb_hessian_finish(&pl->hessians[g]);
    }
    pl->summary->seconds_forward += omp_get_wtime() - t0;
    return status;
}

/* ---- rounding one matrix ---- */

/* Replaces NaN and Inf by 0 (after the scan, and only with allow_nonfinite, can there be any). */
static void zero_nonfinite(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            x[i] = 0.0f;
}

/* Before any work: every value of every tensor is finite, or (allow_nonfinite) counted, and
 * the model computes with the zeroed values. */
static lb_status scan_nonfinite(pipeline *pl)
{
    enum { ROWS = 64 };
    const lb_checkpoint *ckpt = pl->ckpt;
    float *buffer = NULL;
    int64_t capacity = 0;
    lb_status status = LB_OK;
    for (int64_t i = 0; i < pl->n_tensors && status == LB_OK; i++) {
        out_tensor *ot = &pl->tensors[i];
        const lb_checkpoint_tensor *t = &ckpt->tensors[ot->index];
        int64_t cols = t->ne[0], rows = 1;
        lb_tensor_count(t->n_dims - 1, t->ne + 1, &rows);
        uint64_t want, bytes;
        if (!lb_size_mul(ROWS, (uint64_t)cols, &want) ||
            !lb_size_mul(want, sizeof *buffer, &bytes) || bytes > SIZE_MAX) {
            lb_free(buffer);
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' rows of %lld elements are too "
                            "large", ckpt->path, t->name, (long long)cols);
        }
        if ((int64_t)want > capacity) {
            lb_free(buffer);
            capacity = (int64_t)want;
            if (!(buffer = lb_malloc((size_t)bytes)))
                return lb_error(LB_ERR_NOMEM, "out of memory for %d rows of '%s' (%llu bytes)",
                                (int)ROWS, t->name, (unsigned long long)bytes);
        }
        for (int64_t r0 = 0; r0 < rows && status == LB_OK; r0 += ROWS) {
            int64_t n = rows - r0 < ROWS ? rows - r0 : ROWS;
            status = lb_checkpoint_read_rows_f32(ckpt, ot->index, r0, n, buffer);
            for (int64_t k = 0; k < n * cols && status == LB_OK; k++) {
                if (isfinite(buffer[k]))
                    continue;
                if (!pl->p->allow_nonfinite)
                    status = lb_error(LB_ERR_NUMERIC,
                                      "%s: tensor '%s' element %lld (row %lld, column %lld) is "
                                      "%g (--allow-nonfinite replaces such values by 0)",
                                      ckpt->path, t->name, (long long)(r0 * cols + k),
                                      (long long)(r0 + k / cols), (long long)(k % cols),
                                      (double)buffer[k]);
                ot->nonfinite = true;
                pl->summary->n_nonfinite++;
            }
        }
        lb_checkpoint_release_tensor(ckpt, ot->index);
    }
    lb_free(buffer);
    /* The model was built over the raw tensors: give it the zeroed ones. */
    for (int64_t i = 0; i < pl->n_tensors && status == LB_OK && pl->model; i++) {
        out_tensor *ot = &pl->tensors[i];
        if (!ot->nonfinite)
            continue;
        const lb_checkpoint_tensor *t = &ckpt->tensors[ot->index];
        int64_t count;
        lb_tensor_count(t->n_dims, t->ne, &count);
        float *values = lb_malloc((size_t)count * sizeof *values);
        if (!values)
            return lb_error(LB_ERR_NOMEM, "out of memory for the zeroed copy of '%s' (%zu bytes)",
                            t->name, (size_t)count * sizeof *values);
        status = lb_checkpoint_read_rows_f32(ckpt, ot->index, 0, count / t->ne[0], values);
        zero_nonfinite(values, count);
        if (status == LB_OK)
            status = lb_model_replace_weight(pl->model, t->name, values);
        else
            lb_free(values);
    }
    return status;
}

static lb_status read_matrix(const pipeline *pl, const out_tensor *t, float **w, int64_t *rows,
                             int64_t *cols)
{
    const lb_checkpoint_tensor *ct = &pl->ckpt->tensors[t->index];
    *cols = ct->ne[0];
    lb_tensor_count(ct->n_dims - 1, ct->ne + 1, rows);
    *w = lb_malloc((size_t)(*rows * *cols) * sizeof **w);
    if (!*w)
        return lb_nomem("out of memory reading '%s'", ct->name);
    lb_status status = lb_checkpoint_read_rows_f32(pl->ckpt, t->index, 0, *rows, *w);
    lb_checkpoint_release_tensor(pl->ckpt, t->index);
    if (status != LB_OK) {
        lb_free(*w);
        *w = NULL;
        return status;
    }
    zero_nonfinite(*w, *rows * *cols);
    return LB_OK;
}

/* GPTQ of w into t->packed in its own copy of H: the last matrix of a group takes the group's
 * (the biggest, ffn_down's, is never copied), the others a copy. The report and the run's
 * totals get its losses. */
static lb_status round_with_gptq(pipeline *pl, out_tensor *t, const char *name, const float *w,
                                 int64_t rows, int64_t cols, lb_hessian *hs, bool last_user,
                                 lb_gptq_report *gptq, lb_quantize_tensor_report *report)
{
    double *h;
    if (last_user) {
        h = hs->h;
        hs->h = NULL;
    } else if ((h = lb_malloc((size_t)(cols * cols) * sizeof *h)) != NULL) {
        memcpy(h, hs->h, (size_t)(cols * cols) * sizeof *h);
    } else {
        return lb_nomem("out of memory for the Hessian of '%s'", name);
    }
    lb_status status = lb_gptq_quantize(w, rows, cols, h, t->type, &pl->p->gptq, t->packed, gptq);
    lb_free(h);
    if (status != LB_OK)
        return lb_error_prefix(status, "'%s': ", name);
    report->method = "gptq";
    report->gptq = gptq;
    report->rel_rtn = gptq->ref > 0.0 ? gptq->loss_rtn / gptq->ref : 0.0;
    report->rel_gptq = gptq->ref > 0.0 ? gptq->loss_gptq / gptq->ref : 0.0;
    pl->summary->ref_total += gptq->ref;
    pl->summary->loss_rtn_total += gptq->loss_rtn;
    pl->summary->loss_gptq_total += gptq->loss_gptq;
    return LB_OK;
}

/* RTN of w into t->packed, weighted by the imatrix's entry for the tensor when there is one. */
static lb_status round_with_rtn(const pipeline *pl, out_tensor *t, const char *name,
                                const float *w, int64_t rows, int64_t cols,
                                lb_quantize_tensor_report *report)
{
    const lb_quantize_params *p = pl->p;
    const lb_imatrix_entry *e = p->imatrix ? lb_imatrix_find(p->imatrix, name) : NULL;
    float *importance = NULL;
    if (e) {
        if (e->n_per_row != cols || e->n_mat != 1)
            return lb_error(LB_ERR_BAD_INPUT, "imatrix entry '%s' has %lld x %lld "
                            "values, the tensor has rows of %lld", name,
                            (long long)e->n_mat, (long long)e->n_per_row, (long long)cols);
        importance = lb_malloc((size_t)cols * sizeof *importance);
        if (!importance)
            return lb_error(LB_ERR_NOMEM, "out of memory for the importance of '%s' (%zu bytes)",
                            name, (size_t)cols * sizeof *importance);
        lb_status status = lb_imatrix_importance(e, 0, importance);
        if (status != LB_OK) {
            lb_free(importance);
            return status;
        }
        report->method = "rtn+imatrix";
    }
    lb_status status = lb_rtn_quantize(w, rows, cols, t->type, importance, t->packed);
    lb_free(importance);
    return status;
}

/* Rounds tensor t (with the Hessian of its inputs when GPTQ) into t->packed, and with a model,
 * makes the model use the rounded weights from now on. */
static lb_status quantize_matrix(pipeline *pl, out_tensor *t, lb_hessian *hs, bool last_user)
{
    const lb_quantize_params *p = pl->p;
    const char *name = pl->ckpt->tensors[t->index].name;
    double t0 = omp_get_wtime();
    float *w = NULL;
    int64_t rows, cols;
    lb_status status = read_matrix(pl, t, &w, &rows, &cols);
    if (status != LB_OK)
        return status;
    uint64_t row_bytes;
    lb_type_row_bytes(t->type, cols, &row_bytes);
    t->packed = lb_malloc((size_t)(row_bytes * (uint64_t)rows));
    if (!t->packed) {
        status = lb_nomem("out of memory for '%s'", name);
        goto done;
    }
    lb_quantize_tensor_report report = {name, t->type, "rtn", rows, cols, NAN, NAN, NULL, 0};
    lb_gptq_report gptq;
    const lb_kernel_type *k = lb_kernels_type(t->type);
    if (!k->block_grid) {
        report.method = "copy";
        for (int64_t r = 0; r < rows && status == LB_OK; r++)
            status = lb_row_from_f32(t->type, w + r * cols,
                                     (uint8_t *)t->packed + r * row_bytes, cols);
    } else if (hs) {
        status = round_with_gptq(pl, t, name, w, rows, cols, hs, last_user, &gptq, &report);
    } else {
        status = round_with_rtn(pl, t, name, w, rows, cols, &report);
    }
    if (status != LB_OK)
        goto done;
    report.seconds = omp_get_wtime() - t0;
    pl->done++;
    if (p->on_tensor)
        p->on_tensor(p->context, &report, pl->done, pl->total);
    if (pl->model && pl->gptq && t->type != LB_TYPE_F32) {
        /* The blocks after this one calibrate on what the file will hold. */
        for (int64_t r = 0; r < rows; r++)
            k->dequantize_row((const uint8_t *)t->packed + r * row_bytes, w + r * cols, cols);
        status = lb_model_replace_weight(pl->model, name, w);
        w = NULL;
    }
done:
    lb_free(w);
    return status;
}

/* ---- driving the blocks ---- */

static lb_status run_block(pipeline *pl, int64_t layer)
{
    lb_status status = pl->model ? lb_model_acquire(pl->model, layer) : LB_OK;
    if (status == LB_OK && pl->gptq)
        status = calibration_block(pl, layer, true);
    for (int64_t i = 0; i < pl->n_tensors && status == LB_OK; i++) {
        out_tensor *t = &pl->tensors[i];
        if (t->layer != layer || !t->matrix)
            continue;
        int g = group_of(t->role);
        bool last_user = true;
        for (int64_t j = i + 1; j < pl->n_tensors; j++)
            if (pl->tensors[j].layer == layer && pl->tensors[j].matrix &&
                group_of(pl->tensors[j].role) == g)
                last_user = false;
        status = quantize_matrix(pl, t, pl->gptq ? &pl->hessians[g] : NULL, last_user);
        if (pl->gptq && last_user)
            lb_hessian_free(&pl->hessians[g]);
    }
    if (status == LB_OK && pl->gptq)
        status = calibration_block(pl, layer, false);
    if (pl->model)
        lb_model_release(pl->model, layer);
    return status;
}

static lb_status advance_to(pipeline *pl, int64_t layer)
{
    lb_status status = LB_OK;
    while (pl->next_layer <= layer && status == LB_OK) {
        status = run_block(pl, pl->next_layer);
        pl->next_layer++;
    }
    return status;
}

/* After the last block: the output layer (and the embedding it is tied to) with the Hessian of
 * the final norm's outputs. */
static lb_status finish_globals(pipeline *pl)
{
    const lb_hparams *hp = &pl->ckpt->hparams;
    lb_status status = advance_to(pl, hp->n_layers - 1);
    if (status != LB_OK || pl->finished)
        return status;
    pl->finished = true;
    int64_t classifier = pl->output >= 0 ? pl->output : pl->tied ? pl->embd : -1;
    if (classifier < 0 || !pl->tensors[classifier].matrix || pl->tensors[classifier].packed)
        return LB_OK;
    lb_hessian *hs = NULL;
    if (pl->gptq) {
        status = lb_model_acquire(pl->model, LB_MODEL_OUTPUT_LAYER);
        if (status == LB_OK)
            status = calibration_block(pl, LB_MODEL_OUTPUT_LAYER, true);
        hs = &pl->hessians[GROUP_OUTPUT];
    }
    if (status == LB_OK)
        status = quantize_matrix(pl, &pl->tensors[classifier], hs, true);
    lb_hessian_free(&pl->hessians[GROUP_OUTPUT]);
    if (pl->model)
        lb_model_release(pl->model, LB_MODEL_OUTPUT_LAYER);
    return status;
}

static lb_status produce(void *context, int64_t index, void *dst, uint64_t nbytes)
{
    pipeline *pl = context;
    out_tensor *t = &pl->tensors[index];
    lb_status status = t->layer >= 0 ? advance_to(pl, t->layer) : LB_OK;
    if (status == LB_OK && t->matrix && !t->packed)
        status = finish_globals(pl);
    if (status != LB_OK)
        return status;
    if (t->packed) {
        memcpy(dst, t->packed, (size_t)nbytes);
        lb_free(t->packed);
        t->packed = NULL;
        return LB_OK;
    }
    /* Not rounded (norms, biases, float tensors): converted row by row. */
    const lb_checkpoint_tensor *ct = &pl->ckpt->tensors[t->index];
    int64_t cols = ct->ne[0], rows = 1;
    uint64_t row_bytes;
    lb_tensor_count(ct->n_dims - 1, ct->ne + 1, &rows);
    lb_type_row_bytes(t->type, cols, &row_bytes);
    float *row = lb_malloc((size_t)cols * sizeof *row);
    if (!row)
        return lb_error(LB_ERR_NOMEM, "out of memory for a row of '%s' (%zu bytes)", ct->name,
                        (size_t)cols * sizeof *row);
    for (int64_t r = 0; r < rows && status == LB_OK; r++) {
        status = lb_checkpoint_read_rows_f32(pl->ckpt, t->index, r, 1, row);
        zero_nonfinite(row, cols);
        if (status == LB_OK)
            status = lb_row_from_f32(t->type, row, (uint8_t *)dst + r * row_bytes, cols);
    }
    lb_free(row);
    return status;
}

/* ---- the file ---- */

/* Output order: blocks in order, then everything else (token_embd, output_norm, output). */
static lb_status plan_tensors(pipeline *pl)
{
    const lb_checkpoint *ckpt = pl->ckpt;
    lb_mixture_model mm;
    lb_mixture_model_from_hparams(&mm, &ckpt->hparams);
    mm.has_output = lb_checkpoint_find(ckpt, "output.weight") >= 0;
    mm.has_imatrix = pl->p->imatrix != NULL || pl->gptq;
    pl->tied = !mm.has_output;
    pl->tensors = lb_calloc((size_t)ckpt->n_tensors, sizeof *pl->tensors);
    if (!pl->tensors)
        return lb_error(LB_ERR_NOMEM, "out of memory for the plan of %lld tensors (%zu bytes)",
                        (long long)ckpt->n_tensors, (size_t)ckpt->n_tensors * sizeof *pl->tensors);
    pl->embd = pl->output = -1;
    int64_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t l = pass == 0 ? 0 : -1; pass == 0 ? l < ckpt->hparams.n_layers : l == -1;
             l++) {
            for (int64_t i = 0; i < ckpt->n_tensors; i++) {
                const lb_checkpoint_tensor *ct = &ckpt->tensors[i];
                int64_t layer;
                lb_tensor_role role = lb_tensor_role_of(ct->name, &layer);
                if (layer != l)
                    continue;
                out_tensor *t = &pl->tensors[n];
                t->index = i;
                t->layer = layer;
                t->role = role;
                t->type = lb_mixture_tensor_type(&pl->p->mixture, &mm, ct->name, ct->n_dims,
                                                 ct->ne);
                t->matrix = ct->n_dims >= 2 && role != LB_ROLE_OTHER && t->type != LB_TYPE_F32;
                pl->total += t->matrix;
                if (role == LB_ROLE_TOKEN_EMBD)
                    pl->embd = n;
                if (role == LB_ROLE_OUTPUT)
                    pl->output = n;
                n++;
            }
        }
    }
    if (n != ckpt->n_tensors)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: %lld tensors belong to no block below %lld",
                        ckpt->path, (long long)(ckpt->n_tensors - n),
                        (long long)ckpt->hparams.n_layers);
    pl->n_tensors = n;
    return LB_OK;
}

/* How the imatrix fits the plan (RTN): every entry of a rounded matrix has its width, and at
 * least one matrix is weighted; the counts go to the summary and the file. */
static lb_status match_imatrix(pipeline *pl)
{
    const lb_imatrix *im = pl->p->imatrix;
    const char *file = pl->p->imatrix_name ? pl->p->imatrix_name : "imatrix";
    lb_quantize_summary *s = pl->summary;
    if (!im || pl->gptq)
        return LB_OK;
    for (int64_t i = 0; i < pl->n_tensors; i++) {
        const out_tensor *t = &pl->tensors[i];
        const lb_checkpoint_tensor *ct = &pl->ckpt->tensors[t->index];
        if (!t->matrix)
            continue;
        const lb_imatrix_entry *e = lb_imatrix_find(im, ct->name);
        if (!e) {
            if (!s->imatrix_missing++)
                s->imatrix_first_missing = ct->name;
            continue;
        }
        if (e->n_per_row != ct->ne[0] || e->n_mat != 1)
            return lb_error(LB_ERR_BAD_INPUT, "%s: entry '%s' has %lld x %lld values, but "
                            "tensor '%s' of %s has rows of %lld: an imatrix of another model?",
                            file, e->name, (long long)e->n_mat, (long long)e->n_per_row,
                            ct->name, pl->ckpt->path, (long long)ct->ne[0]);
        s->imatrix_used++;
    }
    for (int64_t i = 0; i < im->n_entries; i++)
        if (lb_checkpoint_find(pl->ckpt, im->entries[i].name) < 0 && !s->imatrix_unused++)
            s->imatrix_first_unused = im->entries[i].name;
    if (s->imatrix_used == 0)
        return lb_error(LB_ERR_BAD_INPUT, "%s: none of its %lld entries names a matrix of %s "
                        "(first entry '%s'): an imatrix of another model?", file,
                        (long long)im->n_entries, pl->ckpt->path,
                        im->n_entries > 0 ? im->entries[0].name : "");
    return LB_OK;
}

static lb_status write_lowbit_metadata(const pipeline *pl, lb_gguf_writer *w)
{
    const lb_quantize_params *p = pl->p;
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)p->calib_hash);
    lb_status status = lb_gguf_writer_set_u32(w, "general.file_type", p->mixture.file_type);
    if (status == LB_OK)
        status = lb_gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "lowbit.version", LB_VERSION);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "lowbit.quantize.type", p->mixture.name);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "lowbit.quantize.method",
                                           pl->gptq ? "gptq" : p->imatrix ? "rtn+imatrix" : "rtn");
    if (status == LB_OK && p->imatrix && !pl->gptq) {
        const lb_quantize_summary *s = pl->summary;
        /* Its base name, as for the calibration file: not the machine's directories. */
        const char *name = p->imatrix_name ? p->imatrix_name : "";
        const char *slash = strrchr(name, '/');
        status = lb_gguf_writer_set_string(w, "lowbit.quantize.imatrix.file",
                                           slash ? slash + 1 : name);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u32(w, "lowbit.quantize.imatrix.matrices_weighted",
                                            (uint32_t)s->imatrix_used);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u32(w, "lowbit.quantize.imatrix.matrices_without_entry",
                                            (uint32_t)s->imatrix_missing);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u32(w, "lowbit.quantize.imatrix.entries_unused",
                                            (uint32_t)s->imatrix_unused);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u64(w, "lowbit.quantize.imatrix.chunks",
                                            (uint64_t)p->imatrix->chunk_count);
    }
    if (status == LB_OK && pl->gptq) {
        status = lb_gguf_writer_set_string(w, "lowbit.quantize.calibration.file",
                                           p->calib_name ? p->calib_name : "");
        if (status == LB_OK)
            status = lb_gguf_writer_set_string(w, "lowbit.quantize.calibration.fnv1a64", hash);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u32(w, "lowbit.quantize.calibration.samples",
                                            (uint32_t)p->nsamples);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u32(w, "lowbit.quantize.calibration.seqlen",
                                            (uint32_t)p->seqlen);
        if (status == LB_OK)
            status = lb_gguf_writer_set_u64(w, "lowbit.quantize.calibration.seed", p->seed);
        if (status == LB_OK)
            status = lb_gguf_writer_set_bool(w, "lowbit.quantize.calibration.consecutive",
                                             p->consecutive);
        if (status == LB_OK)
            status = lb_gguf_writer_set_f32(w, "lowbit.quantize.gptq.damp", (float)p->gptq.damp);
        if (status == LB_OK)
            status = lb_gguf_writer_set_bool(w, "lowbit.quantize.gptq.act_order",
                                             p->gptq.act_order);
    }
    return status;
}

lb_status lb_quantize_model(const lb_checkpoint *ckpt, lb_model *model, const char *out_path,
                            const lb_quantize_params *params, lb_quantize_summary *summary)
{
    if (!ckpt || !out_path || !params)
        return lb_error(LB_ERR_INVALID_ARG, "lb_quantize_model: NULL argument");
    lb_quantize_summary local;
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    memset(&local, 0, sizeof local);
    pl.ckpt = ckpt;
    pl.model = model;
    pl.p = params;
    pl.summary = &local;
    pl.gptq = params->method == LB_QUANT_GPTQ;
    double t0 = omp_get_wtime();
    if (pl.gptq && !model)
        return lb_error(LB_ERR_INVALID_ARG, "GPTQ needs the model for calibration");
    lb_gguf_writer *w = NULL;
    lb_status status = plan_tensors(&pl);
    if (status == LB_OK)
        status = match_imatrix(&pl);
    if (status == LB_OK)
        status = scan_nonfinite(&pl);
    if (status == LB_OK)
        status = lb_gguf_writer_create(&w, LB_GGUF_DEFAULT_ALIGNMENT);
    if (status == LB_OK)
        status = lb_checkpoint_write_metadata(ckpt, w);
    if (status == LB_OK)
        status = write_lowbit_metadata(&pl, w);
    for (int64_t i = 0; i < pl.n_tensors && status == LB_OK; i++) {
        const out_tensor *t = &pl.tensors[i];
        const lb_checkpoint_tensor *ct = &ckpt->tensors[t->index];
        uint64_t bytes = 0;
        lb_tensor_bytes(t->type, ct->n_dims, ct->ne, &bytes);
        int64_t count = 0;
        lb_tensor_count(ct->n_dims, ct->ne, &count);
        local.n_tensors++;
        local.n_weights += count;
        local.tensor_bytes += bytes;
        status = lb_gguf_writer_add_tensor_producer(w, ct->name, t->type, ct->n_dims, ct->ne,
                                                    produce, &pl);
    }
    /* An untied embedding is rounded first, so that calibration starts from what the file
     * holds; a tied one is rounded last, with the classifier's Hessian. */
    if (status == LB_OK && pl.embd >= 0 && !pl.tied && pl.tensors[pl.embd].matrix)
        status = quantize_matrix(&pl, &pl.tensors[pl.embd], NULL, true);
    if (status == LB_OK && pl.gptq)
        status = calibration_start(&pl);
    if (status == LB_OK)
        status = lb_gguf_writer_write(w, out_path);
    lb_gguf_writer_free(&w);
    for (int64_t i = 0; i < pl.n_tensors; i++)
        lb_free(pl.tensors[i].packed);
    lb_free(pl.tensors);
    lb_free(pl.acts);
    lb_free(pl.scratch);
    lb_model_state_free(&pl.state);
    for (int g = 0; g < N_GROUPS; g++)
        lb_hessian_free(&pl.hessians[g]);
    local.seconds = omp_get_wtime() - t0;
    if (summary)
        *summary = local;
    return status;
}
