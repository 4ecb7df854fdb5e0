/* Writes any opened checkpoint as a GGUF file with llama.cpp's names and metadata. */
#include "formats/checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/half_internal.h"
#include "formats/checkpoint_view_internal.h"

/* llama.cpp's llama_ftype values for the float file types. */
static uint32_t file_type_of(lb_type type)
{
    switch (type) {
    case LB_TYPE_F16: return 1;
    case LB_TYPE_BF16: return 32;
    default: return 0;
    }
}

typedef struct convert_plan {
    const lb_checkpoint *ckpt;
    const lb_type *out_types; /* per tensor, in checkpoint order (the writer's order too) */
} convert_plan;

/* Streams one tensor: read rows as f32 (type conversion and rotary permutation happen there),
 * then store them in the output type. */
static lb_status produce_tensor(void *context, int64_t index, void *dst, uint64_t nbytes)
{
    const convert_plan *plan = context;
    const lb_checkpoint_tensor *t = &plan->ckpt->tensors[index];
    lb_type out_type = plan->out_types[index];
    int64_t cols = t->ne[0], rows = 1;
    uint64_t row_bytes;
    lb_tensor_count(t->n_dims - 1, t->ne + 1, &rows);
    if (!lb_type_row_bytes(out_type, cols, &row_bytes) || row_bytes * (uint64_t)rows != nbytes)
        return lb_error(LB_ERR_INVALID_ARG, "tensor '%s': size mismatch", t->name);
    float *row = lb_malloc((size_t)cols * sizeof(float));
    if (!row)
        return lb_nomem("out of memory for a row of '%s'", t->name);
    lb_status status = LB_OK;
    for (int64_t r = 0; r < rows && status == LB_OK; r++) {
        status = lb_checkpoint_read_rows_f32(plan->ckpt, index, r, 1, row);
        if (status == LB_OK)
            status = lb_row_from_f32(out_type, row, (uint8_t *)dst + (size_t)r * row_bytes, cols);
    }
    lb_free(row);
    /* Done with its source: mapped pages go back to the kernel (a view drops its cache), so a
     * large checkpoint is not all resident by the end. */
    lb_checkpoint_release_tensor(plan->ckpt, index);
    return status;
}

static lb_status write_arch_metadata(lb_gguf_writer *w, const lb_hparams *hp)
{
    char key[128];
    lb_status status = lb_gguf_writer_set_string(w, "general.architecture", hp->arch);
#define ARCH_U32(suffix, value)                                                   \
    do {                                                                          \
        if (status == LB_OK) {                                                    \
            snprintf(key, sizeof key, "%s." suffix, hp->arch);                    \
            status = lb_gguf_writer_set_u32(w, key, (uint32_t)(value));           \
        }                                                                         \
    } while (0)
#define ARCH_F32(suffix, value)                                                   \
    do {                                                                          \
        if (status == LB_OK) {                                                    \
            snprintf(key, sizeof key, "%s." suffix, hp->arch);                    \
            status = lb_gguf_writer_set_f32(w, key, (float)(value));              \
        }                                                                         \
    } while (0)
    ARCH_U32("vocab_size", hp->vocab_size);
    ARCH_U32("context_length", hp->context_length);
    ARCH_U32("embedding_length", hp->dim);
    ARCH_U32("block_count", hp->n_layers);
    ARCH_U32("feed_forward_length", hp->hidden_dim);
    ARCH_U32("rope.dimension_count", hp->head_dim);
    ARCH_U32("attention.head_count", hp->n_heads);
    ARCH_U32("attention.head_count_kv", hp->n_kv_heads);
    if (hp->head_dim * hp->n_heads != hp->dim) {
        ARCH_U32("attention.key_length", hp->head_dim);
        ARCH_U32("attention.value_length", hp->head_dim);
    }
    ARCH_F32("rope.freq_base", hp->rope_theta);
    ARCH_F32("attention.layer_norm_rms_epsilon", hp->rms_eps);
#undef ARCH_U32
#undef ARCH_F32
    return status;
}

static lb_status write_vocab_metadata(lb_gguf_writer *w, const lb_vocab *vocab)
{
    lb_status status = lb_gguf_writer_set_string(w, "tokenizer.ggml.model", vocab->model);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens",
                                                 (const char *const *)vocab->tokens,
                                                 vocab->token_lengths, (uint64_t)vocab->n_tokens);
    if (status == LB_OK && vocab->scores)
        status = lb_gguf_writer_set_array(w, "tokenizer.ggml.scores", LB_GGUF_FLOAT32,
                                          vocab->scores, (uint64_t)vocab->n_tokens);
    if (status == LB_OK && vocab->token_types)
        status = lb_gguf_writer_set_array(w, "tokenizer.ggml.token_type", LB_GGUF_INT32,
                                          vocab->token_types, (uint64_t)vocab->n_tokens);
    if (status == LB_OK && vocab->merges)
        status = lb_gguf_writer_set_string_array(w, "tokenizer.ggml.merges",
                                                 (const char *const *)vocab->merges, NULL,
                                                 (uint64_t)vocab->n_merges);
    const struct {
        const char *key;
        int32_t id;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", vocab->bos_id},
        {"tokenizer.ggml.eos_token_id", vocab->eos_id},
        {"tokenizer.ggml.unknown_token_id", vocab->unk_id},
        {"tokenizer.ggml.padding_token_id", vocab->pad_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] && status == LB_OK; i++)
        if (ids[i].id >= 0)
            status = lb_gguf_writer_set_u32(w, ids[i].key, (uint32_t)ids[i].id);
    if (status == LB_OK && vocab->add_bos >= 0)
        status = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", vocab->add_bos != 0);
    if (status == LB_OK && vocab->add_eos >= 0)
        status = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", vocab->add_eos != 0);
    return status;
}

/* GGUF input: keep every key but the ones a new file rewrites. lowbit.rotation.* stays: the
 * weights still are the rotated ones. */
static lb_status copy_gguf_metadata(lb_gguf_writer *w, const lb_gguf *g)
{
    for (int64_t i = 0; i < g->n_kv; i++) {
        const char *key = g->kv[i].key;
        if (strcmp(key, "general.alignment") == 0 || strcmp(key, "general.file_type") == 0 ||
            strcmp(key, "general.quantization_version") == 0 ||
            (strncmp(key, "lowbit.", 7) == 0 && strncmp(key, "lowbit.rotation.", 16) != 0) ||
            strncmp(key, "quantize.imatrix.", 17) == 0) /* the source's quantization, not ours */
            continue;
        lb_status status = lb_gguf_writer_set_value(w, key, &g->kv[i].value);
        if (status != LB_OK)
            return status;
    }
    return LB_OK;
}

/* Model name for general.name: the file's (or directory's) base name without extension. */
static void model_name_of(const char *path, char *out, size_t size)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *start = path;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/')
            start = path + i + 1;
    size_t n = (size_t)(path + len - start);
    const char *dot = memchr(start, '.', n);
    if (dot && dot > start)
        n = (size_t)(dot - start);
    snprintf(out, size, "%.*s", (int)n, start);
}

lb_status lb_checkpoint_write_metadata(const lb_checkpoint *ckpt, lb_gguf_writer *w)
{
    if (ckpt->format == LB_CHECKPOINT_VIEW)
        return lb_checkpoint_view_write_metadata(ckpt, w);
    if (ckpt->gguf)
        return copy_gguf_metadata(w, ckpt->gguf);
    char name[256];
    model_name_of(ckpt->path, name, sizeof name);
    lb_status status = write_arch_metadata(w, &ckpt->hparams);
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "general.name", name);
    if (status == LB_OK && ckpt->vocab)
        status = write_vocab_metadata(w, ckpt->vocab);
    return status;
}

lb_status lb_checkpoint_write_gguf(const lb_checkpoint *ckpt, const char *path, lb_type out_type)
{
    if (out_type != LB_TYPE_F32 && out_type != LB_TYPE_F16 && out_type != LB_TYPE_BF16)
        return lb_error(LB_ERR_INVALID_ARG, "convert writes F32, F16 or BF16 tensors");
    lb_gguf_writer *w = NULL;
    lb_type *out_types = lb_calloc((size_t)ckpt->n_tensors, sizeof *out_types);
    lb_status status = LB_OK;
    if (!out_types) {
        status = lb_error(LB_ERR_NOMEM,
                          "%s: out of memory for the types of %lld tensors (%zu bytes)", path,
                          (long long)ckpt->n_tensors, (size_t)ckpt->n_tensors * sizeof *out_types);
        goto done;
    }
    if ((status = lb_gguf_writer_create(&w, LB_GGUF_DEFAULT_ALIGNMENT)) != LB_OK)
        goto done;
    status = lb_checkpoint_write_metadata(ckpt, w);
    if (status == LB_OK)
        status = lb_gguf_writer_set_u32(w, "general.file_type", file_type_of(out_type));

    convert_plan plan = {ckpt, out_types};
    for (int64_t i = 0; i < ckpt->n_tensors && status == LB_OK; i++) {
        const lb_checkpoint_tensor *t = &ckpt->tensors[i];
        /* llama.cpp keeps 1-d tensors (norms, biases) in F32 whatever the file type. */
        lb_type type = t->n_dims == 1 ? LB_TYPE_F32 : out_type;
        out_types[i] = type;
        status = lb_gguf_writer_add_tensor_producer(w, t->name, type, t->n_dims, t->ne,
                                                    produce_tensor, &plan);
    }
    if (status == LB_OK)
        status = lb_gguf_writer_write(w, path);
done:
    lb_gguf_writer_free(&w);
    lb_free(out_types);
    return status;
}
