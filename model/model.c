/* The llama-family model: a checkpoint's tensors checked against the architecture and viewed
 * as f32 or kept packed, eagerly or per group (lazy); the forward pass is in model_forward.c. */
#include "model/model.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "kernels/dsp_internal.h"
#include "kernels/kernels.h"
#include "model/model_internal.h"

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
 * converted f32 copy (also of a view's tensors, which have no data in memory). */
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
    if (t->type == LB_TYPE_F32 && t->rope_permute_heads == 0 && aligned && t->data) {
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
        uint64_t row_bytes;
        lb_type_row_bytes(t->type, ne0, &row_bytes);
        /* Through lb_kernels_dequantize, which copies a misaligned row (alignment 1) first. */
        for (int64_t r = 0; r < w->n_out && status == LB_OK; r++)
            status = lb_kernels_dequantize(t->type,
                                           (const uint8_t *)t->data + (size_t)r * row_bytes, ne0,
                                           w->owned + (size_t)r * (size_t)ne0);
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
        {"vocab_size", hp->vocab_size}, {"context_length", hp->context_length},
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

/* The tensors of block N are "blk.N.<suffix>", for these suffixes (load_layer's order). */
static const char *const block_suffixes[BLOCK_WEIGHTS] = {
    "attn_norm.weight",   "attn_q.weight",   "attn_k.weight",   "attn_v.weight",
    "attn_q.bias",        "attn_k.bias",     "attn_v.bias",     "attn_output.weight",
    "ffn_norm.weight",    "ffn_gate.weight", "ffn_up.weight",   "ffn_down.weight",
};
/* Of which every block has at least these (the biases are optional). */
enum { BLOCK_WEIGHTS_REQUIRED = 9 };

/* The block a tensor name belongs to ("blk.N.<suffix>" with a known suffix), -1 for a name
 * outside blocks, -2 for a block tensor the model does not know. */
static int64_t block_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    int64_t block = 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return -2; /* "blk.01.": a name the model never looks up */
    for (; *p >= '0' && *p <= '9'; p++) {
        if (block > (INT64_MAX - 9) / 10)
            return -2;
        block = block * 10 + (*p - '0');
    }
    if (*p != '.')
        return -2;
    for (size_t i = 0; i < BLOCK_WEIGHTS; i++)
        if (strcmp(p + 1, block_suffixes[i]) == 0)
            return block;
    return -2;
}

/* The declared structure against the tensors present, before anything is allocated per block:
 * n_layers must be backed by tensors (a 1 MB file cannot declare 20 million blocks), and the
 * vocabulary must have one token per embedding row. */
static lb_status check_structure(const lb_model *model)
{
    const lb_checkpoint *ckpt = model->checkpoint;
    const lb_hparams *hp = &model->hp;
    if (hp->n_layers > ckpt->n_tensors / BLOCK_WEIGHTS_REQUIRED) {
        /* Name the first block that is missing: the loop ends within n_tensors steps. */
        int64_t present = 0;
        char name[96];
        for (;; present++) {
            snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)present);
            if (lb_checkpoint_find(ckpt, name) < 0)
                break;
        }
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: n_layers (block_count) %lld needs at least %lld tensors, the file "
                        "has %lld (tensor '%s' is missing)",
                        ckpt->path, (long long)hp->n_layers,
                        (long long)hp->n_layers * BLOCK_WEIGHTS_REQUIRED,
                        (long long)ckpt->n_tensors, name);
    }
    /* More rows than tokens is padding (Hugging Face Qwen2 checkpoints round the embedding up
     * to a multiple of 128, their tokenizer.json lists only real tokens): generate never picks
     * those ids. Fewer rows would leave tokens without an embedding. */
    int64_t embd = lb_checkpoint_find(ckpt, "token_embd.weight");
    if (ckpt->vocab && ckpt->vocab->n_tokens <= 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: the vocabulary is empty (vocabulary from %s)",
                        ckpt->path, ckpt->tokenizer_path ? ckpt->tokenizer_path : ckpt->path);
    if (ckpt->vocab && embd >= 0 && ckpt->tensors[embd].n_dims == 2 &&
        ckpt->vocab->n_tokens > ckpt->tensors[embd].ne[1])
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: the vocabulary has %lld tokens but the embedding token_embd.weight "
                        "has only %lld rows (vocabulary from %s)",
                        ckpt->path, (long long)ckpt->vocab->n_tokens,
                        (long long)ckpt->tensors[embd].ne[1],
                        ckpt->tokenizer_path ? ckpt->tokenizer_path : ckpt->path);
    return LB_OK;
}

/* Every tensor must be one the model reads: a block_count smaller than the blocks the file holds
 * would silently drop them. Run after the weights were looked up, so that a missing or
 * misnamed tensor is reported as missing first. */
static lb_status check_unused(const lb_model *model)
{
    const lb_checkpoint *ckpt = model->checkpoint;
    const lb_hparams *hp = &model->hp;
    for (int64_t i = 0; i < ckpt->n_tensors; i++) {
        const char *name = ckpt->tensors[i].name;
        int64_t block = block_of(name);
        if (block >= hp->n_layers)
            return lb_error(LB_ERR_CORRUPT_FILE,
                            "%s: tensor '%s' belongs to block %lld, but n_layers (block_count) "
                            "is %lld: the model would not use it",
                            ckpt->path, name, (long long)block, (long long)hp->n_layers);
        if (block == -2 || (block == -1 && strcmp(name, "token_embd.weight") != 0 &&
                            strcmp(name, "output_norm.weight") != 0 &&
                            strcmp(name, "output.weight") != 0))
            return lb_error(LB_ERR_UNSUPPORTED,
                            "%s: tensor '%s' is not used by a %s model (%s; the model would "
                            "ignore it)", ckpt->path, name, hp->arch,
                            strcmp(name, "rope_freqs.weight") == 0
                                ? "Llama 3.1 RoPE frequency scaling, not implemented"
                                : "unknown tensor");
    }
    return LB_OK;
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
    if (status == LB_OK)
        status = check_structure(model);
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
    if (status == LB_OK)
        status = check_unused(model);
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

lb_status lb_model_check(const lb_checkpoint *checkpoint)
{
    lb_model *model = NULL;
    lb_status status = model_load(&model, checkpoint, true);
    lb_model_free(&model);
    return status;
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

/* The first non-finite value of one weight, as the forward pass would read it: f32 views
 * directly, packed rows decoded one at a time with the kernels' reference, a lazy model's
 * unacquired weights through the checkpoint. `row` holds n_in floats. */
static lb_status check_weight_finite(const lb_model *model, const weight *w, float *row)
{
    if (w->index < 0 && !w->data)
        return LB_OK; /* an absent optional bias */
    for (int64_t r = 0; r < w->n_out; r++) {
        const float *values = row;
        lb_status status = LB_OK;
        if (w->data)
            values = w->data + (size_t)r * (size_t)w->n_in;
        else if (w->packed) /* mapped packed rows may be misaligned: the copying decoder */
            status = lb_kernels_dequantize(
                w->type, (const uint8_t *)w->packed + (size_t)r * (size_t)w->row_bytes, w->n_in,
                row);
        else
            status = lb_checkpoint_read_rows_f32(model->checkpoint, w->index, r, 1, row);
        if (status != LB_OK)
            return status;
        for (int64_t c = 0; c < w->n_in; c++)
            if (!isfinite(values[c]))
                return lb_error(LB_ERR_NUMERIC,
                                "%s: tensor '%s' element %lld (row %lld, column %lld) is %g",
                                model->checkpoint->path, w->name,
                                (long long)(r * w->n_in + c), (long long)r, (long long)c,
                                (double)values[c]);
    }
    return LB_OK;
}

lb_status lb_model_check_finite(const lb_model *model)
{
    if (!model)
        return lb_error(LB_ERR_INVALID_ARG, "lb_model_check_finite: NULL model");
    int64_t longest = model->hp.dim > model->hp.hidden_dim ? model->hp.dim : model->hp.hidden_dim;
    longest = model->q_dim > longest ? model->q_dim : longest;
    float *row = lb_malloc((size_t)longest * sizeof *row);
    if (!row)
        return lb_error(LB_ERR_NOMEM, "out of memory for a row of %lld floats (%zu bytes)",
                        (long long)longest, (size_t)longest * sizeof *row);
    lb_status status = check_weight_finite(model, &model->token_embd, row);
    for (int64_t l = 0; l < model->hp.n_layers && status == LB_OK; l++) {
        weight *all[BLOCK_WEIGHTS];
        block_weight_list(&model->layers[l], all);
        for (int i = 0; i < BLOCK_WEIGHTS && status == LB_OK; i++)
            status = check_weight_finite(model, all[i], row);
    }
    if (status == LB_OK)
        status = check_weight_finite(model, &model->output_norm, row);
    if (status == LB_OK && !output_is_tied(model)) /* a tied one reads token_embd */
        status = check_weight_finite(model, &model->output, row);
    lb_free(row);
    return status;
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

bool lb_model_gemm_workspace_bytes(const lb_model *model, int64_t max_batch, uint64_t *out)
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
