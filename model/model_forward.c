/* The llama-family forward pass over a loaded model: per-sequence state (KV cache, RoPE
 * tables, scratch), the math in the order it happens, and the public entry points. */
#include "model/model.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "kernels/dsp_internal.h"
#include "kernels/kernels.h"
#include "linalg/linalg.h"
#include "model/model_internal.h"

struct lb_model_state {
    const lb_model *model; /* the model whose dimensions size the buffers */
    int64_t max_tokens;  /* positions the KV cache holds */
    int64_t max_batch;   /* tokens per call */
    int64_t *n_cached;   /* [n_layers] positions filled in each layer's cache */
    float *key_cache;    /* [n_layers][max_tokens][kv_dim], after RoPE */
    float *value_cache;  /* [n_layers][max_tokens][kv_dim] */
    float *rope_cos;     /* [max_tokens][head_dim/2]: cos(pos * theta^(-2i/head_dim)) */
    float *rope_sin;     /* [max_tokens][head_dim/2] */
    float *x;            /* [max_batch][dim] residual stream of lb_model_forward */
    float *xb;           /* [max_batch][dim] normed input of a sublayer */
    float *xb2;          /* [max_batch][dim] sublayer output before the residual add */
    float *q;            /* [max_batch][q_dim] queries after RoPE */
    float *att_out;      /* [max_batch][q_dim] attention output, heads side by side */
    float *scores;       /* [n_heads][max_tokens] one attention row per head (heads run in
                            parallel, each on its own row) */
    float *hb;           /* [max_batch][hidden_dim] gate, then silu(gate) * up */
    float *hb2;          /* [max_batch][hidden_dim] up */
    void *gemm_workspace; /* lb_gemm's quantized activations, sized for the widest packed
                             matrix at max_batch (NULL when no matrix is packed) */
};

void lb_model_set_linear_hook(lb_model *model, lb_linear_input_hook hook, void *context)
{
    model->hook = hook;
    model->hook_context = hook ? context : NULL;
}

/* ---- state ---- */

/* lb_malloc of count floats, with the multiplication checked. */
static float *alloc_floats(uint64_t count, uint64_t count2)
{
    uint64_t n, bytes;
    if (!lb_size_mul(count, count2, &n) || !lb_size_mul(n, sizeof(float), &bytes) ||
        bytes > SIZE_MAX)
        return NULL;
    return lb_malloc((size_t)bytes);
}

/* The rotation angles of every position, in double so that large positions stay accurate. */
static void fill_rope_tables(lb_model_state *s, const lb_hparams *hp)
{
    int64_t half = hp->head_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        double freq = pow(hp->rope_theta, -2.0 * (double)i / (double)hp->head_dim);
        for (int64_t pos = 0; pos < s->max_tokens; pos++) {
            double angle = (double)pos * freq;
            s->rope_cos[pos * half + i] = (float)cos(angle);
            s->rope_sin[pos * half + i] = (float)sin(angle);
        }
    }
}

lb_status lb_model_state_create(lb_model_state **out, const lb_model *model, int64_t max_tokens,
                                int64_t max_batch)
{
    if (!out || !model)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_state_create: NULL argument");
    *out = NULL;
    if (max_tokens < 1 || max_batch < 1 || max_batch > INT_MAX / 4)
        return lb_error(LB_ERR_INVALID_ARG,
                        "lb_model_state_create: max_tokens %lld and max_batch %lld must be "
                        "positive (max_batch below 2^29)",
                        (long long)max_tokens, (long long)max_batch);
    const lb_hparams *hp = &model->hp;
    lb_model_state *s = lb_calloc(1, sizeof *s);
    if (!s)
        return lb_error(LB_ERR_NOMEM, "out of memory for a model state (%zu bytes)", sizeof *s);
    s->model = model;
    s->max_tokens = max_tokens;
    s->max_batch = max_batch;
    uint64_t layer_cache;
    bool sized = lb_size_mul((uint64_t)max_tokens, (uint64_t)model->kv_dim, &layer_cache);
    uint64_t batch = (uint64_t)max_batch;
    s->n_cached = lb_calloc((size_t)hp->n_layers, sizeof *s->n_cached);
    if (sized) {
        s->key_cache = alloc_floats((uint64_t)hp->n_layers, layer_cache);
        s->value_cache = alloc_floats((uint64_t)hp->n_layers, layer_cache);
    }
    s->rope_cos = alloc_floats((uint64_t)max_tokens, (uint64_t)(hp->head_dim / 2));
    s->rope_sin = alloc_floats((uint64_t)max_tokens, (uint64_t)(hp->head_dim / 2));
    s->x = alloc_floats(batch, (uint64_t)hp->dim);
    s->xb = alloc_floats(batch, (uint64_t)hp->dim);
    s->xb2 = alloc_floats(batch, (uint64_t)hp->dim);
    s->q = alloc_floats(batch, (uint64_t)model->q_dim);
    s->att_out = alloc_floats(batch, (uint64_t)model->q_dim);
    s->scores = alloc_floats((uint64_t)hp->n_heads, (uint64_t)max_tokens);
    s->hb = alloc_floats(batch, (uint64_t)hp->hidden_dim);
    s->hb2 = alloc_floats(batch, (uint64_t)hp->hidden_dim);
    uint64_t workspace_bytes;
    bool workspace_ok = lb_model_gemm_workspace_bytes(model, max_batch, &workspace_bytes) &&
                        workspace_bytes <= SIZE_MAX;
    if (workspace_ok && workspace_bytes > 0)
        workspace_ok = (s->gemm_workspace = lb_malloc((size_t)workspace_bytes)) != NULL;
    if (!s->n_cached || !s->key_cache || !s->value_cache || !s->rope_cos || !s->rope_sin ||
        !s->x || !s->xb || !s->xb2 || !s->q || !s->att_out || !s->scores || !s->hb || !s->hb2 ||
        !workspace_ok) {
        lb_model_state_free(&s);
        return lb_nomem("out of memory for a model state of %lld tokens, batch %lld",
                        (long long)max_tokens, (long long)max_batch);
    }
    fill_rope_tables(s, hp);
    *out = s;
    return LB_OK;
}

void lb_model_state_free(lb_model_state **statep)
{
    if (!statep || !*statep)
        return;
    lb_model_state *s = *statep;
    float *buffers[] = {s->key_cache, s->value_cache, s->rope_cos, s->rope_sin, s->x, s->xb,
                        s->xb2, s->q, s->att_out, s->scores, s->hb, s->hb2};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        lb_free(buffers[i]);
    lb_free(s->n_cached);
    lb_free(s->gemm_workspace);
    lb_free(s);
    *statep = NULL;
}

/* ---- the math, in the order it happens ---- */

/* Hands a linear layer's input to the calibration hook (layer LB_MODEL_OUTPUT_LAYER for the
 * output layer); its failure ends the forward pass. */
static lb_status call_hook(const lb_model *model, const weight *w, int64_t layer,
                           const float *x, int64_t n_tokens)
{
    if (!model->hook)
        return LB_OK;
    return model->hook(model->hook_context, w->name, layer, x, n_tokens, w->n_in);
}

/* Output rows per work item of linear_forward: about 64 items of a multiple of 16 rows. A
 * function of n_out only, never of the thread count, so every output element comes from the
 * same BLAS call whatever the number of threads. */
static int64_t rows_per_chunk(int64_t n_out)
{
    int64_t rows = (n_out + 63) / 64;
    return (rows + 15) / 16 * 16;
}

/* y[n_tokens][n_out] = x[n_tokens][n_in] · Wᵀ. The one place where a weight's storage meets
 * the activations.
 * Packed weights: one lb_gemm call, which quantizes the activations to the type's vec_dot type
 * (Q8_0 or Q8_K, as llama.cpp does) into `workspace` and splits W's rows over its own OpenMP
 * threads; each output is one dot product, so the result does not depend on the thread count.
 * It must not run inside another parallel region, and does not here.
 * f32 weights: OpenMP splits W's rows into fixed chunks and each chunk is one single-threaded
 * BLAS call: OpenBLAS's own threads partition the work by their count and change the last bits
 * of the results, and running them inside an OpenMP region would oversubscribe the cores. The
 * BLAS thread count is restored afterwards (a process-wide setting: forward passes running at
 * once on several threads may leave it at 1, which costs speed elsewhere, never correctness). */
static lb_status linear_forward(const weight *w, const float *x, float *y, int64_t n_tokens,
                                void *workspace)
{
    int64_t n_in = w->n_in, n_out = w->n_out, rows = rows_per_chunk(n_out);
    if (w->packed)
        return lb_kernels_gemm(NULL, w->type, w->packed, n_out, n_in, x, n_tokens, y, workspace);
    int64_t n_chunks = (n_out + rows - 1) / rows;
    /* The first failure's status and message (messages are per thread: copied out of the
     * worker that failed, then recorded again on the calling thread). */
    lb_status failed = LB_OK;
    char message[256] = "";
    int blas_threads = lb_linalg_blas_threads_pin();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t o0 = c * rows, n = n_out - o0 < rows ? n_out - o0 : rows;
        const float *wc = w->data + o0 * n_in;
        lb_status status;
        if (n_tokens == 1)
            status = lb_linalg_sgemv(n, n_in, 1.0f, wc, n_in, x, 0.0f, y + o0);
        else
            status = lb_linalg_sgemm(false, true, n_tokens, n, n_in, 1.0f, x, n_in, wc, n_in,
                                     0.0f, y + o0, n_out);
        if (status != LB_OK) {
#pragma omp critical
            if (failed == LB_OK) {
                failed = status;
                snprintf(message, sizeof message, "%s", lb_last_error());
            }
        }
    }
    lb_linalg_blas_threads_restore(blas_threads);
    if (failed != LB_OK)
        return lb_error(failed, "%s: %s", w->name, message);
    return LB_OK;
}

/* y[t] += bias for every token, when the layer has a bias. */
static void add_bias(const weight *bias, float *y, int64_t n_tokens)
{
    if (!bias->data)
        return;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t i = 0; i < bias->n_in; i++)
            y[t * bias->n_in + i] += bias->data[i];
}

/* out = x / sqrt(mean(x²) + eps) * weight for each of n_tokens rows; the sum of squares is
 * accumulated in double in index order. */
static void rmsnorm(float *out, const float *x, const weight *w, int64_t n_tokens, double eps)
{
    int64_t n = w->n_in;
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *row = x + t * n;
        double ss = 0.0;
        for (int64_t i = 0; i < n; i++)
            ss += (double)row[i] * row[i];
        float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
        for (int64_t i = 0; i < n; i++)
            out[t * n + i] = row[i] * scale * w->data[i];
    }
}

/* Rotates every head of v [n_tokens][n_heads*head_dim] by its position pos0 + t: pair i turns
 * by pos * theta^(-2i/head_dim). llama pairs elements (2i, 2i+1), NEOX (qwen2) (i, i+hd/2). */
static void rope(const lb_model *model, const lb_model_state *s, float *v, int64_t n_tokens,
                 int64_t pos0, int64_t n_heads)
{
    int64_t hd = model->hp.head_dim, half = hd / 2;
    int64_t step = model->neox_rope ? 1 : 2;       /* distance between pair starts */
    int64_t partner = model->neox_rope ? half : 1; /* distance from an element to its partner */
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *cosv = s->rope_cos + (pos0 + t) * half;
        const float *sinv = s->rope_sin + (pos0 + t) * half;
        for (int64_t h = 0; h < n_heads; h++) {
            float *head = v + (t * n_heads + h) * hd;
            for (int64_t i = 0; i < half; i++) {
                float *a = head + i * step, *b = a + partner;
                float a0 = *a, b0 = *b;
                *a = a0 * cosv[i] - b0 * sinv[i];
                *b = a0 * sinv[i] + b0 * cosv[i];
            }
        }
    }
}

/* a · b over n elements with eight partial sums in a fixed order: the compiler can then use
 * vector registers without -ffast-math, and the result is the same at any thread count. */
static float dot(const float *a, const float *b, int64_t n)
{
    float lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int64_t j = 0; j < 8; j++)
            lane[j] += a[i + j] * b[i + j];
    float sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
                ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* y += a * x over n elements, in blocks of eight that -O2 turns into vector instructions (it
 * does not vectorize loops of unknown length). */
static void axpy(float *restrict y, float a, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int64_t j = 0; j < 8; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* Causal grouped-query attention of the batch's queries (s->q) over the layer's cache
 * positions 0 .. pos0+t, into s->att_out. Heads are independent and run in parallel, each
 * with its own score row and a fixed summation order, so the result does not depend on the
 * thread count. Softmax in f32 after subtracting the row maximum. */
static void attention(const lb_model *model, lb_model_state *s, int64_t layer, int64_t n_tokens,
                      int64_t pos0)
{
    const lb_hparams *hp = &model->hp;
    int64_t hd = hp->head_dim, q_dim = model->q_dim, kv_dim = model->kv_dim;
    int64_t group = hp->n_heads / hp->n_kv_heads;
    const float *keys = s->key_cache + layer * s->max_tokens * kv_dim;
    const float *values = s->value_cache + layer * s->max_tokens * kv_dim;
    float scale = (float)(1.0 / sqrt((double)hd));

#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < hp->n_heads; h++) {
        float *scores = s->scores + h * s->max_tokens;
        int64_t kv_offset = (h / group) * hd;
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *q = s->q + t * q_dim + h * hd;
            int64_t n_keys = pos0 + t + 1;
            float max = -INFINITY;
            for (int64_t j = 0; j < n_keys; j++) {
                scores[j] = dot(q, keys + j * kv_dim + kv_offset, hd) * scale;
                max = scores[j] > max ? scores[j] : max;
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < n_keys; j++) {
                scores[j] = expf(scores[j] - max);
                sum += scores[j];
            }
            float *out = s->att_out + t * q_dim + h * hd;
            memset(out, 0, (size_t)hd * sizeof *out);
            for (int64_t j = 0; j < n_keys; j++)
                axpy(out, scores[j] / sum, values + j * kv_dim + kv_offset, hd);
        }
    }
}

/* x += attn_output · attention(RoPE(q), RoPE(k), v) with q, k, v from rmsnorm(x); the new
 * keys and values go straight into the cache rows pos0 .. pos0+n_tokens-1. */
static lb_status attention_sublayer(const lb_model *model, lb_model_state *s, int64_t l,
                                    float *x, int64_t n_tokens, int64_t pos0)
{
    const block_weights *L = &model->layers[l];
    int64_t dim = model->hp.dim, kv_dim = model->kv_dim;
    float *k = s->key_cache + (l * s->max_tokens + pos0) * kv_dim;
    float *v = s->value_cache + (l * s->max_tokens + pos0) * kv_dim;

    rmsnorm(s->xb, x, &L->attn_norm, n_tokens, model->hp.rms_eps);
    void *ws = s->gemm_workspace;
    lb_status status;
    if ((status = call_hook(model, &L->attn_q, l, s->xb, n_tokens)) != LB_OK ||
        (status = call_hook(model, &L->attn_k, l, s->xb, n_tokens)) != LB_OK ||
        (status = call_hook(model, &L->attn_v, l, s->xb, n_tokens)) != LB_OK ||
        (status = linear_forward(&L->attn_q, s->xb, s->q, n_tokens, ws)) != LB_OK ||
        (status = linear_forward(&L->attn_k, s->xb, k, n_tokens, ws)) != LB_OK ||
        (status = linear_forward(&L->attn_v, s->xb, v, n_tokens, ws)) != LB_OK)
        return status;
    add_bias(&L->attn_q_bias, s->q, n_tokens);
    add_bias(&L->attn_k_bias, k, n_tokens);
    add_bias(&L->attn_v_bias, v, n_tokens);
    rope(model, s, s->q, n_tokens, pos0, model->hp.n_heads);
    rope(model, s, k, n_tokens, pos0, model->hp.n_kv_heads);

    attention(model, s, l, n_tokens, pos0);
    if ((status = call_hook(model, &L->attn_output, l, s->att_out, n_tokens)) != LB_OK ||
        (status = linear_forward(&L->attn_output, s->att_out, s->xb2, n_tokens, ws)) != LB_OK)
        return status;
    for (int64_t i = 0; i < n_tokens * dim; i++)
        x[i] += s->xb2[i];
    return LB_OK;
}

/* x += ffn_down · (silu(ffn_gate · h) * (ffn_up · h)) with h = rmsnorm(x). */
static lb_status ffn_sublayer(const lb_model *model, lb_model_state *s, int64_t l, float *x,
                              int64_t n_tokens)
{
    const block_weights *L = &model->layers[l];
    int64_t dim = model->hp.dim, hidden = model->hp.hidden_dim;

    rmsnorm(s->xb, x, &L->ffn_norm, n_tokens, model->hp.rms_eps);
    void *ws = s->gemm_workspace;
    lb_status status;
    if ((status = call_hook(model, &L->ffn_gate, l, s->xb, n_tokens)) != LB_OK ||
        (status = call_hook(model, &L->ffn_up, l, s->xb, n_tokens)) != LB_OK ||
        (status = linear_forward(&L->ffn_gate, s->xb, s->hb, n_tokens, ws)) != LB_OK ||
        (status = linear_forward(&L->ffn_up, s->xb, s->hb2, n_tokens, ws)) != LB_OK)
        return status;
    for (int64_t i = 0; i < n_tokens * hidden; i++) {
        float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
    }
    if ((status = call_hook(model, &L->ffn_down, l, s->hb, n_tokens)) != LB_OK ||
        (status = linear_forward(&L->ffn_down, s->hb, s->xb2, n_tokens, ws)) != LB_OK)
        return status;
    for (int64_t i = 0; i < n_tokens * dim; i++)
        x[i] += s->xb2[i];
    return LB_OK;
}

/* ---- public entry points ---- */

/* A batch of n_tokens for this model and state (and, when pos0 >= 0, positions that fit). */
static lb_status check_batch(const lb_model *model, const lb_model_state *s, int64_t n_tokens,
                             int64_t pos0, const char *who)
{
    if (!model || !s)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL model or state", who);
    if (s->model != model)
        return lb_error(LB_ERR_INVALID_ARG, "%s: the state was created for another model", who);
    if (n_tokens < 1 || n_tokens > s->max_batch)
        return lb_error(LB_ERR_INVALID_ARG, "%s: %lld tokens, the state takes 1 .. %lld per call",
                        who, (long long)n_tokens, (long long)s->max_batch);
    if (pos0 > s->max_tokens - n_tokens)
        return lb_error(LB_ERR_INVALID_ARG,
                        "%s: positions %lld .. %lld do not fit the state's %lld positions", who,
                        (long long)pos0, (long long)(pos0 + n_tokens - 1),
                        (long long)s->max_tokens);
    return LB_OK;
}

lb_status lb_model_embed(const lb_model *model, const int32_t *tokens, int64_t n_tokens,
                         float *x)
{
    if (!model || !tokens || !x || n_tokens < 0)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_embed: NULL argument or negative count");
    const weight *embd = &model->token_embd;
    if (!resident(embd))
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_embed: the embedding is not acquired");
    /* A packed table stays packed: only the looked-up rows are dequantized. */
    lb_dequantize_row_fn dequantize =
        embd->packed ? lb_kernels_type(embd->type)->dequantize_row : NULL;
    int64_t dim = model->hp.dim;
    for (int64_t t = 0; t < n_tokens; t++) {
        if (tokens[t] < 0 || tokens[t] >= model->hp.vocab_size)
            return lb_error(LB_ERR_INVALID_ARG,
                            "lb_model_embed: token %lld has id %ld, outside the vocabulary of %lld",
                            (long long)t, (long)tokens[t], (long long)model->hp.vocab_size);
        if (dequantize)
            dequantize((const uint8_t *)embd->packed + (size_t)tokens[t] * embd->row_bytes,
                       x + t * dim, dim);
        else
            memcpy(x + t * dim, embd->data + (int64_t)tokens[t] * dim, (size_t)dim * sizeof *x);
    }
    return LB_OK;
}

lb_status lb_model_block_forward(const lb_model *model, lb_model_state *state, int64_t layer,
                                 float *x, int64_t n_tokens, int64_t pos0)
{
    lb_status status = check_batch(model, state, n_tokens, pos0, "lb_model_block_forward");
    if (status != LB_OK)
        return status;
    if (pos0 < 0)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_block_forward: negative position %lld",
                        (long long)pos0);
    if (!x || layer < 0 || layer >= model->hp.n_layers)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_block_forward: layer %lld of %lld",
                        (long long)layer, (long long)model->hp.n_layers);
    if (!resident(&model->layers[layer].attn_q))
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_block_forward: block %lld is not acquired",
                        (long long)layer);
    /* Attending to positions this layer never computed would read stale or unset memory. */
    if (pos0 > state->n_cached[layer])
        return lb_error(LB_ERR_INVALID_ARG,
                        "lb_model_block_forward: layer %lld has %lld cached positions; pos0 %lld",
                        (long long)layer, (long long)state->n_cached[layer], (long long)pos0);
    if ((status = attention_sublayer(model, state, layer, x, n_tokens, pos0)) != LB_OK ||
        (status = ffn_sublayer(model, state, layer, x, n_tokens)) != LB_OK)
        return status;
    state->n_cached[layer] = pos0 + n_tokens;
    return LB_OK;
}

lb_status lb_model_output(const lb_model *model, lb_model_state *state, const float *x,
                          int64_t n_tokens, float *logits)
{
    lb_status status = check_batch(model, state, n_tokens, -1, "lb_model_output");
    if (status != LB_OK)
        return status;
    if (!x || !logits)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_output: NULL x or logits");
    if (!resident(&model->output) || !model->output_norm.data)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_output: the output layer is not acquired");
    rmsnorm(state->xb, x, &model->output_norm, n_tokens, model->hp.rms_eps);
    if ((status = call_hook(model, &model->output, LB_MODEL_OUTPUT_LAYER, state->xb,
                            n_tokens)) != LB_OK)
        return status;
    return linear_forward(&model->output, state->xb, logits, n_tokens, state->gemm_workspace);
}

lb_status lb_model_forward(const lb_model *model, lb_model_state *state, const int32_t *tokens,
                           int64_t n_tokens, int64_t pos0, float *logits, bool logits_last_only)
{
    lb_status status = check_batch(model, state, n_tokens, pos0, "lb_model_forward");
    if (status != LB_OK)
        return status;
    if (pos0 < 0)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_forward: negative position %lld",
                        (long long)pos0);
    if ((status = lb_model_embed(model, tokens, n_tokens, state->x)) != LB_OK)
        return status;
    for (int64_t l = 0; l < model->hp.n_layers; l++)
        if ((status = lb_model_block_forward(model, state, l, state->x, n_tokens, pos0)) != LB_OK)
            return status;
    if (!logits)
        return LB_OK;
    if (logits_last_only)
        return lb_model_output(model, state, state->x + (n_tokens - 1) * model->hp.dim, 1,
                               logits);
    return lb_model_output(model, state, state->x, n_tokens, logits);
}
