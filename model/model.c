/* The llama-family forward pass: weights checked and viewed as f32 or kept packed, KV cache,
 * batched blocks. */
#include "model/model.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "kernels/dsp.h"
#include "kernels/kernels.h"
#include "linalg/linalg.h"

/* One parameter tensor as the forward pass reads it: a matrix W [n_out][n_in] (y = W x, y[o] =
 * Σ_i W[o*n_in + i] x[i]) or a vector (n_out = 1), in one of two storages:
 * - f32 (`data`): F32 tensors are used in place from the mapped checkpoint. F16 and BF16
 *   tensors, and Hugging Face q/k rows that need the rotary permutation, are converted once at
 *   load into `owned`: simple and as fast as f32 at run time, at twice the memory of an f16
 *   file (lb_gemm has only scalar f16/bf16 dots, 20-30x slower than SGEMM on the converted
 *   rows). Vectors (norms, biases) are always f32, and so is a weight that
 *   lb_model_replace_weight gave.
 * - packed (`packed`): a matrix of a block type with a vec_dot kernel (Q4_0 ... Q6_K) keeps
 *   the file's bytes, read in place from the mapping; linear_forward multiplies with lb_gemm
 *   (activations quantized to Q8_0 / Q8_K as llama.cpp does) and the embedding lookup
 *   dequantizes only the rows it looks up. A packed type without a vec_dot (Q8_K) or a tensor
 *   that is not 4-byte aligned in the mapping is dequantized to f32 at load instead. */
typedef struct weight {
    const char *name;   /* llama.cpp name, owned by the checkpoint; NULL for an absent bias */
    int64_t n_in;       /* ne[0], the row length */
    int64_t n_out;      /* ne[1], the number of rows (1 for a vector) */
    bool matrix;        /* a 2-d weight (linear layer or embedding), which may stay packed */
    lb_type type;       /* the storage read: LB_TYPE_F32 (data) or a block type (packed) */
    const float *data;  /* [n_out][n_in] f32: the mapped tensor or `owned`; NULL when packed,
                           absent (or not acquired yet in a lazy model) */
    const void *packed; /* [n_out] rows of row_bytes in `type`, into the mapped checkpoint;
                           NULL unless packed */
    uint64_t row_bytes; /* bytes of one packed row */
    float *owned;       /* converted copy freed with the model, or NULL */
    int64_t index;      /* the checkpoint tensor, -1 when absent */
} weight;

/* Whether the forward pass can read the weight (in either storage). */
static bool resident(const weight *w)
{
    return w->data || w->packed;
}

/* Makes `dst` (a tied classifier) read what `src` (the embedding) currently holds, without
 * owning it. */
static void share_view(weight *dst, const weight *src)
{
    dst->type = src->type;
    dst->data = src->data;
    dst->packed = src->packed;
    dst->row_bytes = src->row_bytes;
}

static void clear_view(weight *w)
{
    w->type = LB_TYPE_F32;
    w->data = NULL;
    w->packed = NULL;
    w->row_bytes = 0;
}

/* The parameters of one transformer block. */
typedef struct block_weights {
    weight attn_norm;   /* [dim] */
    weight attn_q;      /* [q_dim][dim], rows in the order that the model's RoPE pairing expects */
    weight attn_k;      /* [kv_dim][dim] */
    weight attn_v;      /* [kv_dim][dim] */
    weight attn_q_bias; /* [q_dim], optional (Qwen2) */
    weight attn_k_bias; /* [kv_dim], optional */
    weight attn_v_bias; /* [kv_dim], optional */
    weight attn_output; /* [dim][q_dim] */
    weight ffn_norm;    /* [dim] */
    weight ffn_gate;    /* [hidden_dim][dim] */
    weight ffn_up;      /* [hidden_dim][dim] */
    weight ffn_down;    /* [dim][hidden_dim] */
} block_weights;

struct lb_model {
    const lb_checkpoint *checkpoint; /* the source; outlives the model */
    lb_hparams hp;
    bool neox_rope;         /* qwen2: element i pairs with i + head_dim/2; llama: 2i with 2i+1 */
    int64_t q_dim;          /* n_heads * head_dim */
    int64_t kv_dim;         /* n_kv_heads * head_dim */
    weight token_embd;      /* [vocab][dim] */
    block_weights *layers;  /* [n_layers] */
    weight output_norm;     /* [dim] */
    weight output;          /* [vocab][dim]; a non-owning copy of token_embd when tied */
    lb_linear_input_hook hook;
    void *hook_context;
    bool lazy;              /* weights are made resident per group on acquire */
    bool embd_acquired, output_acquired;
};

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

/* ---- loading ---- */

static void format_shape(char *buffer, size_t size, int n_dims, const int64_t *ne)
{
    size_t used = (size_t)snprintf(buffer, size, "{");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%lld", d ? ", " : "",
                                 (long long)ne[d]);
    if (used < size)
        snprintf(buffer + used, size - used, "}");
}

/* Whether a checked weight is multiplied packed: a matrix in a block type that the dispatch
 * table has a vec_dot for, read in place (GGUF files only: no rotary permutation applies), at
 * an address the kernels' block structs may be read from. */
static bool keeps_packed(const weight *w, const lb_checkpoint_tensor *t)
{
    const lb_type_info *info = lb_type_get((uint32_t)t->type);
    return w->matrix && info && info->block_size > 1 && t->rope_permute_heads == 0 &&
           (uint32_t)t->type < LB_DSP_TYPE_SLOTS && lb_kernels_dsp_get()->vec_dot[t->type] &&
           (uintptr_t)t->data % 4 == 0;
}

/* Makes the view of a checked weight that the forward pass reads: packed rows in place (see
 * keeps_packed), the mapped tensor itself when it is aligned F32 in GGUF order, else a
 * converted f32 copy. */
static lb_status materialize(const lb_model *model, weight *w)
{
    const lb_checkpoint *ckpt = model->checkpoint;
    const lb_checkpoint_tensor *t = &ckpt->tensors[w->index];
    int64_t ne0 = w->n_in;
    if (keeps_packed(w, t)) {
        uint64_t row_bytes;
        if (!lb_type_row_bytes(t->type, ne0, &row_bytes))
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' rows do not fit its type",
                            ckpt->path, w->name);
        w->type = t->type;
        w->row_bytes = row_bytes;
        w->packed = t->data;
        return LB_OK;
    }
    w->type = LB_TYPE_F32;
    bool aligned = ((uintptr_t)t->data % _Alignof(float)) == 0;
    if (t->type == LB_TYPE_F32 && t->rope_permute_heads == 0 && aligned) {
        w->data = t->data;
        return LB_OK;
    }
    uint64_t count, bytes;
    if (!lb_size_mul((uint64_t)ne0, (uint64_t)w->n_out, &count) ||
        !lb_size_mul(count, sizeof(float), &bytes) || bytes > SIZE_MAX)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' is too large", ckpt->path,
                        w->name);
    w->owned = lb_malloc((size_t)bytes);
    if (!w->owned)
        return lb_error(LB_ERR_NOMEM, "out of memory converting '%s' to f32 (%llu bytes)",
                        w->name, (unsigned long long)bytes);
    w->data = w->owned;
    const lb_type_info *info = lb_type_get((uint32_t)t->type);
    lb_status status = LB_OK;
    if (info->block_size == 1) {
        status = lb_checkpoint_read_rows_f32(ckpt, w->index, 0, w->n_out, w->owned);
    } else {
        /* Packed vectors (and the rare packed matrix that cannot stay packed) are dequantized
         * with the kernels' reference (GGUF files only: no rotary permutation applies). */
        const lb_kernel_type *kernels = lb_kernels_type(t->type);
        uint64_t row_bytes;
        lb_type_row_bytes(t->type, ne0, &row_bytes);
        for (int64_t r = 0; r < w->n_out; r++)
            kernels->dequantize_row((const uint8_t *)t->data + (size_t)r * row_bytes,
                                    w->owned + (size_t)r * (size_t)ne0, ne0);
    }
    /* The source pages were read once into the copy: let the kernel drop them. */
    lb_checkpoint_release_tensor(ckpt, w->index);
    return status;
}

/* Drops a weight's view (a lazy model's release): the copy is freed, mapped pages (f32 or
 * packed) are handed back to the kernel. The weight stays checked and can be materialized
 * again. */
static void dematerialize(const lb_model *model, weight *w)
{
    if (!resident(w))
        return;
    if (!w->owned)
        lb_checkpoint_release_tensor(model->checkpoint, w->index);
    lb_free(w->owned);
    w->owned = NULL;
    clear_view(w);
}

/* Finds `name`, checks its shape {ne0} (ne1 == 0) or {ne0, ne1}, type and size, and makes its
 * view (materialize; not yet in a lazy model). An absent optional tensor leaves *w zeroed. */
static lb_status load_weight(lb_model *model, weight *w, const char *name, int64_t ne0,
                             int64_t ne1, bool optional)
{
    const lb_checkpoint *ckpt = model->checkpoint;
    int n_dims = ne1 > 0 ? 2 : 1;
    int64_t expected[LB_MAX_DIMS] = {ne0, ne1 > 0 ? ne1 : 1, 1, 1};
    char want[96], found[96];
    format_shape(want, sizeof want, n_dims, expected);
    memset(w, 0, sizeof *w);
    w->index = -1;

    int64_t index = lb_checkpoint_find(ckpt, name);
    if (index < 0) {
        if (optional)
            return LB_OK;
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' is missing (expected shape %s)",
                        ckpt->path, name, want);
    }
    const lb_checkpoint_tensor *t = &ckpt->tensors[index];
    bool same = true;
    for (int d = 0; d < LB_MAX_DIMS; d++)
        same = same && t->ne[d] == expected[d];
    if (!same) {
        format_shape(found, sizeof found, t->n_dims, t->ne);
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s' has shape %s, expected %s",
                        ckpt->path, name, found, want);
    }
    const lb_kernel_type *kernels = lb_kernels_type(t->type);
    if (!kernels) {
        const lb_type_info *info = lb_type_get((uint32_t)t->type);
        char type_name[32];
        if (info)
            snprintf(type_name, sizeof type_name, "%s", info->name);
        else
            snprintf(type_name, sizeof type_name, "id %u", (unsigned)t->type);
        return lb_error(LB_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has type %s, which has no kernels", ckpt->path, name,
                        type_name);
    }
    uint64_t bytes;
    if (!lb_tensor_bytes(t->type, t->n_dims, t->ne, &bytes) || bytes != t->nbytes)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: tensor '%s' holds %llu bytes, its shape needs %llu",
                        ckpt->path, name, (unsigned long long)t->nbytes,
                        (unsigned long long)bytes);

    w->name = t->name;
    w->n_in = ne0;
    w->n_out = expected[1];
    w->matrix = ne1 > 0;
    w->index = index;
    return model->lazy ? LB_OK : materialize(model, w);
}

/* Architecture and dimensions: positive, consistent, and small enough for BLAS's int sizes. */
static lb_status check_hparams(lb_model *model)
{
    const lb_hparams *hp = &model->hp;
    const char *path = model->checkpoint->path;
    if (strcmp(hp->arch, "llama") == 0)
        model->neox_rope = false;
    else if (strcmp(hp->arch, "qwen2") == 0)
        model->neox_rope = true;
    else
        return lb_error(LB_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, qwen2)",
                        path, hp->arch);
    const struct {
        const char *name;
        int64_t value;
    } dims[] = {
        {"dim", hp->dim},           {"hidden_dim", hp->hidden_dim}, {"n_layers", hp->n_layers},
        {"n_heads", hp->n_heads},   {"n_kv_heads", hp->n_kv_heads}, {"head_dim", hp->head_dim},
        {"vocab_size", hp->vocab_size},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].value <= 0 || dims[i].value > INT_MAX / 4)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: hyperparameter %s = %lld is out of range",
                            path, dims[i].name, (long long)dims[i].value);
    if (hp->n_heads % hp->n_kv_heads != 0)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: n_heads %lld is not a multiple of n_kv_heads %lld",
                        path, (long long)hp->n_heads, (long long)hp->n_kv_heads);
    if (hp->head_dim % 2 != 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: head_dim %lld is odd; RoPE rotates pairs", path,
                        (long long)hp->head_dim);
    if (!(hp->rope_theta > 0.0) || !isfinite(hp->rope_theta) || !(hp->rms_eps >= 0.0) ||
        !isfinite(hp->rms_eps))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: rope_theta %g or rms_eps %g is out of range",
                        path, hp->rope_theta, hp->rms_eps);
    model->q_dim = hp->n_heads * hp->head_dim;
    model->kv_dim = hp->n_kv_heads * hp->head_dim;
    if (model->q_dim > INT_MAX / 4)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: n_heads x head_dim is out of range", path);
    return LB_OK;
}

/* Every weight of a block, for loops over them. */
enum { BLOCK_WEIGHTS = 12 };
static void block_weight_list(block_weights *L, weight **all)
{
    weight *list[BLOCK_WEIGHTS] = {&L->attn_norm,   &L->attn_q,      &L->attn_k,
                                   &L->attn_v,      &L->attn_q_bias, &L->attn_k_bias,
                                   &L->attn_v_bias, &L->attn_output, &L->ffn_norm,
                                   &L->ffn_gate,    &L->ffn_up,      &L->ffn_down};
    memcpy(all, list, sizeof list);
}

static lb_status load_layer(lb_model *model, int64_t l)
{
    const lb_hparams *hp = &model->hp;
    block_weights *L = &model->layers[l];
    const struct {
        weight *w;
        const char *suffix;
        int64_t ne0, ne1;
        bool optional;
    } specs[] = {
        {&L->attn_norm, "attn_norm.weight", hp->dim, 0, false},
        {&L->attn_q, "attn_q.weight", hp->dim, model->q_dim, false},
        {&L->attn_k, "attn_k.weight", hp->dim, model->kv_dim, false},
        {&L->attn_v, "attn_v.weight", hp->dim, model->kv_dim, false},
        {&L->attn_q_bias, "attn_q.bias", model->q_dim, 0, true},
        {&L->attn_k_bias, "attn_k.bias", model->kv_dim, 0, true},
        {&L->attn_v_bias, "attn_v.bias", model->kv_dim, 0, true},
        {&L->attn_output, "attn_output.weight", model->q_dim, hp->dim, false},
        {&L->ffn_norm, "ffn_norm.weight", hp->dim, 0, false},
        {&L->ffn_gate, "ffn_gate.weight", hp->dim, hp->hidden_dim, false},
        {&L->ffn_up, "ffn_up.weight", hp->dim, hp->hidden_dim, false},
        {&L->ffn_down, "ffn_down.weight", hp->hidden_dim, hp->dim, false},
    };
    char name[96];
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, specs[i].suffix);
        lb_status status = load_weight(model, specs[i].w, name, specs[i].ne0, specs[i].ne1,
                                       specs[i].optional);
        if (status != LB_OK)
            return status;
    }
    return LB_OK;
}

static lb_status model_load(lb_model **out, const lb_checkpoint *checkpoint, bool lazy)
{
    if (!out || !checkpoint)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_load: NULL argument");
    *out = NULL;
    lb_model *model = lb_calloc(1, sizeof *model);
    if (!model)
        return lb_error(LB_ERR_NOMEM, "%s: out of memory for the model (%zu bytes)",
                        checkpoint->path, sizeof *model);
    model->checkpoint = checkpoint;
    model->hp = checkpoint->hparams;
    model->lazy = lazy;
    const lb_hparams *hp = &model->hp;
    lb_status status = check_hparams(model);
    if (status != LB_OK)
        goto done;
    model->layers = lb_calloc((size_t)hp->n_layers, sizeof *model->layers);
    if (!model->layers) {
        status = lb_error(LB_ERR_NOMEM,
                          "%s: out of memory for the weights of %lld blocks (%zu bytes)",
                          checkpoint->path, (long long)hp->n_layers,
                          (size_t)hp->n_layers * sizeof *model->layers);
        goto done;
    }
    status = load_weight(model, &model->token_embd, "token_embd.weight", hp->dim, hp->vocab_size,
                         false);
    for (int64_t l = 0; l < hp->n_layers && status == LB_OK; l++)
        status = load_layer(model, l);
    if (status == LB_OK)
        status = load_weight(model, &model->output_norm, "output_norm.weight", hp->dim, 0, false);
    if (status == LB_OK)
        status = load_weight(model, &model->output, "output.weight", hp->dim, hp->vocab_size,
                             true);
    if (status == LB_OK && model->output.index < 0) {
        /* Tied embeddings (or a file that dropped output.weight, as llama.cpp accepts): the
         * classifier is the embedding matrix. */
        model->output = model->token_embd;
        model->output.owned = NULL;
    }
done:
    if (status != LB_OK) {
        lb_model_free(&model);
        return status;
    }
    *out = model;
    return LB_OK;
}

lb_status lb_model_load(lb_model **out, const lb_checkpoint *checkpoint)
{
    return model_load(out, checkpoint, false);
}

lb_status lb_model_load_lazy(lb_model **out, const lb_checkpoint *checkpoint)
{
    return model_load(out, checkpoint, true);
}

/* Tied output: the classifier views token_embd's current data. */
static bool output_is_tied(const lb_model *model)
{
    return model->output.index == model->token_embd.index;
}

lb_status lb_model_acquire(lb_model *model, int64_t group)
{
    lb_status status = LB_OK;
    if (group >= 0 && group < model->hp.n_layers) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[group], all);
        for (int i = 0; i < BLOCK_WEIGHTS && status == LB_OK; i++)
            if (all[i]->index >= 0 && !resident(all[i]))
                status = materialize(model, all[i]);
    } else if (group == LB_MODEL_EMBED_LAYER || group == LB_MODEL_OUTPUT_LAYER) {
        bool output = group == LB_MODEL_OUTPUT_LAYER;
        if (!resident(&model->token_embd) && (!output || output_is_tied(model)))
            status = materialize(model, &model->token_embd);
        if (output && status == LB_OK && !resident(&model->output_norm))
            status = materialize(model, &model->output_norm);
        if (output && status == LB_OK && !output_is_tied(model) && !resident(&model->output))
            status = materialize(model, &model->output);
        if (output && output_is_tied(model))
            share_view(&model->output, &model->token_embd);
        if (status == LB_OK)
            *(output ? &model->output_acquired : &model->embd_acquired) = true;
    } else {
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_acquire: no group %lld", (long long)group);
    }
    return status;
}

void lb_model_release(lb_model *model, int64_t group)
{
    if (!model->lazy)
        return;
    if (group >= 0 && group < model->hp.n_layers) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[group], all);
        for (int i = 0; i < BLOCK_WEIGHTS; i++)
            dematerialize(model, all[i]);
        return;
    }
    if (group == LB_MODEL_OUTPUT_LAYER) {
        model->output_acquired = false;
        dematerialize(model, &model->output_norm);
        if (output_is_tied(model))
            clear_view(&model->output);
        else
            dematerialize(model, &model->output);
    } else if (group == LB_MODEL_EMBED_LAYER) {
        model->embd_acquired = false;
    }
    /* The embedding goes when neither the lookup nor a tied classifier needs it. */
    if (!model->embd_acquired && !(output_is_tied(model) && model->output_acquired))
        dematerialize(model, &model->token_embd);
}

static void weight_free(weight *w)
{
    lb_free(w->owned);
    w->owned = NULL;
}

void lb_model_free(lb_model **modelp)
{
    if (!modelp || !*modelp)
        return;
    lb_model *model = *modelp;
    if (model->layers) {
        for (int64_t l = 0; l < model->hp.n_layers; l++) {
            weight *all[BLOCK_WEIGHTS];
            block_weight_list(&model->layers[l], all);
            for (int i = 0; i < BLOCK_WEIGHTS; i++)
                weight_free(all[i]);
        }
    }
    lb_free(model->layers);
    weight_free(&model->token_embd);
    weight_free(&model->output_norm);
    weight_free(&model->output);
    lb_free(model);
    *modelp = NULL;
}

const lb_hparams *lb_model_hparams(const lb_model *model)
{
    return &model->hp;
}

lb_status lb_model_replace_weight(lb_model *model, const char *name, float *data)
{
    weight *found = NULL;
    if (model->token_embd.name && strcmp(model->token_embd.name, name) == 0)
        found = &model->token_embd;
    else if (model->output.name && strcmp(model->output.name, name) == 0)
        found = &model->output;
    for (int64_t l = 0; l < model->hp.n_layers && !found; l++) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[l], all);
        for (int i = 0; i < BLOCK_WEIGHTS && !found; i++)
            if (all[i]->name && strcmp(all[i]->name, name) == 0)
                found = all[i];
    }
    if (!found) {
        lb_free(data);
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_replace_weight: no weight '%s'", name);
    }
    /* A tied classifier that is acquired reads the new data too (one that is not gets it on
     * acquire). */
    bool share = found == &model->token_embd && output_is_tied(model) &&
                 resident(&model->output);
    lb_free(found->owned);
    found->owned = data;
    clear_view(found);
    found->data = data; /* f32 from now on, also where the file's tensor is packed */
    if (share)
        share_view(&model->output, found);
    return LB_OK;
}

/* Adds one weight's view to the counts of lb_model_weight_bytes. */
static void count_weight(const weight *w, lb_type type, uint64_t *bytes, uint64_t *allocated)
{
    if (!resident(w) || w->type != type)
        return;
    uint64_t n = w->packed ? w->row_bytes * (uint64_t)w->n_out
                           : (uint64_t)w->n_in * (uint64_t)w->n_out * sizeof(float);
    *bytes += n;
    if (w->owned)
        *allocated += n;
}

lb_status lb_model_weight_bytes(const lb_model *model, lb_type type, uint64_t *bytes,
                                uint64_t *allocated)
{
    if (!model || !bytes)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_weight_bytes: NULL argument");
    uint64_t total = 0, owned = 0;
    for (int64_t l = 0; l < model->hp.n_layers; l++) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[l], all);
        for (int i = 0; i < BLOCK_WEIGHTS; i++)
            count_weight(all[i], type, &total, &owned);
    }
    count_weight(&model->token_embd, type, &total, &owned);
    count_weight(&model->output_norm, type, &total, &owned);
    if (!output_is_tied(model)) /* a tied classifier views token_embd's data */
        count_weight(&model->output, type, &total, &owned);
    *bytes = total;
    if (allocated)
        *allocated = owned;
    return LB_OK;
}

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

/* Raises *bytes to lb_gemm's workspace for batches of up to max_batch through w, when w's
 * checkpoint tensor is one that keeps_packed; false on overflow. */
static bool fit_workspace(const lb_model *model, const weight *w, int64_t max_batch,
                          uint64_t *bytes)
{
    if (w->index < 0 || !keeps_packed(w, &model->checkpoint->tensors[w->index]))
        return true;
    uint64_t need =
        lb_gemm_workspace_bytes(model->checkpoint->tensors[w->index].type, w->n_in, max_batch);
    *bytes = need > *bytes ? need : *bytes;
    return need > 0;
}

/* lb_gemm's workspace for batches of up to max_batch through any matrix that may be
 * multiplied packed, acquired or not (a lazy model materializes later; a replaced weight only
 * goes f32): one buffer per state, reused by every call. 0 when no matrix is packed. */
static bool gemm_workspace_bytes(const lb_model *model, int64_t max_batch, uint64_t *out)
{
    *out = 0;
    bool ok = fit_workspace(model, &model->token_embd, max_batch, out) &&
              fit_workspace(model, &model->output, max_batch, out);
    for (int64_t l = 0; l < model->hp.n_layers && ok; l++) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[l], all);
        for (int i = 0; i < BLOCK_WEIGHTS && ok; i++)
            ok = fit_workspace(model, all[i], max_batch, out);
    }
    return ok;
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
    bool workspace_ok = gemm_workspace_bytes(model, max_batch, &workspace_bytes) &&
                        workspace_bytes <= SIZE_MAX;
    if (workspace_ok && workspace_bytes > 0)
        workspace_ok = (s->gemm_workspace = lb_malloc((size_t)workspace_bytes)) != NULL;
    if (!s->n_cached || !s->key_cache || !s->value_cache || !s->rope_cos || !s->rope_sin ||
        !s->x || !s->xb || !s->xb2 || !s->q || !s->att_out || !s->scores || !s->hb || !s->hb2 ||
        !workspace_ok) {
        lb_model_state_free(&s);
        return lb_error(LB_ERR_NOMEM, "out of memory for a model state of %lld tokens, batch %lld",
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
        return lb_gemm(NULL, w->type, w->packed, n_out, n_in, x, n_tokens, y, workspace);
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
#pragma omp critical(lb_model_linear_failure)
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
