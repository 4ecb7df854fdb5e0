/* Format detection and the uniform tensor view over llama2.c, safetensors and GGUF files. */
#include "formats/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/alloc_internal.h"
#include "common/half_internal.h"
#include "formats/checkpoint_view_internal.h"
#include "formats/hf_internal.h"
#include "formats/llama2c_internal.h"
#include "formats/mapped_file_internal.h"
#include "formats/safetensors_internal.h"
#include "formats/spm_model_internal.h"

lb_checkpoint_settings lb_checkpoint_default_settings(void)
{
    lb_checkpoint_settings settings = {.tokenizer_path = NULL};
    return settings;
}

const char *lb_checkpoint_format_name(lb_checkpoint_format format)
{
    switch (format) {
    case LB_CHECKPOINT_LLAMA2C: return "llama2.c";
    case LB_CHECKPOINT_SAFETENSORS: return "safetensors";
    case LB_CHECKPOINT_GGUF: return "GGUF";
    case LB_CHECKPOINT_VIEW: return "view";
    }
    return "unknown";
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Directory part of a path ("." when none), into buffer. */
static void directory_of(const char *path, char *buffer, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buffer, size, ".");
    else if (slash == path)
        snprintf(buffer, size, "/");
    else
        snprintf(buffer, size, "%.*s", (int)(slash - path), path);
}

static lb_status set_tokenizer_path(lb_checkpoint *ckpt, const char *path)
{
    ckpt->tokenizer_path = lb_strdup(path);
    return ckpt->tokenizer_path
               ? LB_OK
               : lb_error(LB_ERR_NOMEM, "%s: out of memory for the tokenizer path (%zu bytes)",
                          ckpt->path, strlen(path) + 1);
}

static lb_status add_tensor(lb_checkpoint *ckpt, int64_t capacity, const char *name,
                            const char *source_name, lb_type type, int n_dims, const int64_t *ne,
                            const void *data, uint64_t nbytes, int64_t permute_heads)
{
    if (ckpt->n_tensors >= capacity)
        return lb_error(LB_ERR_INVALID_ARG, "%s: too many tensors", ckpt->path);
    lb_checkpoint_tensor *t = &ckpt->tensors[ckpt->n_tensors];
    t->name = lb_strdup(name);
    t->source_name = lb_strdup(source_name);
    if (!t->name || !t->source_name) {
        lb_free(t->name);
        lb_free(t->source_name);
        return lb_error(LB_ERR_NOMEM, "%s: out of memory for the names of tensor '%s' (%zu bytes)",
                        ckpt->path, name, strlen(name) + strlen(source_name) + 2);
    }
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < LB_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    t->rope_permute_heads = permute_heads;
    ckpt->n_tensors++;
    return LB_OK;
}

/* A tokenizer file named by --tokenizer or found beside the model, by its kind: a
 * SentencePiece tokenizer.model, a Hugging Face tokenizer.json, or llama2.c's tokenizer.bin. */
static lb_status load_tokenizer(lb_checkpoint *ckpt, const char *path)
{
    lb_status status;
    if (ends_with(path, ".model"))
        status = lb_spm_model_load(&ckpt->vocab, path);
    else if (ends_with(path, ".json"))
        status = lb_hf_tokenizer_load(&ckpt->vocab, path);
    else
        status = lb_llama2c_tokenizer_load(&ckpt->vocab, path, ckpt->hparams.vocab_size);
    if (status == LB_OK && ckpt->hparams.vocab_size > 0 &&
        ckpt->vocab->n_tokens > ckpt->hparams.vocab_size)
        status = lb_error(LB_ERR_CORRUPT_FILE,
                          "%s: %lld tokens at offset 0: more than the model's vocabulary of %lld",
                          path, (long long)ckpt->vocab->n_tokens,
                          (long long)ckpt->hparams.vocab_size);
    if (status != LB_OK)
        return status;
    return set_tokenizer_path(ckpt, path);
}

/* ---- llama2.c ---- */

static lb_status open_llama2c(lb_checkpoint *ckpt, const lb_checkpoint_settings *settings)
{
    lb_llama2c *model = NULL;
    lb_status status = lb_llama2c_open(&model, ckpt->path);
    if (status != LB_OK)
        return status;
    ckpt->source = model;
    ckpt->hparams = model->hparams;
    ckpt->tensors = lb_calloc((size_t)model->n_tensors, sizeof *ckpt->tensors);
    if (!ckpt->tensors)
        return lb_error(LB_ERR_NOMEM, "%s: out of memory for the table of %lld tensors (%zu bytes)",
                        ckpt->path, (long long)model->n_tensors,
                        (size_t)model->n_tensors * sizeof *ckpt->tensors);
    for (int64_t i = 0; i < model->n_tensors && status == LB_OK; i++) {
        const lb_llama2c_tensor *t = &model->tensors[i];
        status = add_tensor(ckpt, model->n_tensors, t->name, t->name, LB_TYPE_F32, t->n_dims,
                            t->ne, t->data, t->nbytes, 0);
    }
    if (status != LB_OK)
        return status;

    /* The checkpoint has no tokenizer: take --tokenizer, else tokenizer.bin or tok<vocab>.bin
     * beside it (llama2.c's naming for custom vocabularies). */
    char dir[4096], candidate[4200];
    const char *tokenizer = settings->tokenizer_path;
    if (!tokenizer) {
        directory_of(ckpt->path, dir, sizeof dir);
        snprintf(candidate, sizeof candidate, "%s/tok%lld.bin", dir,
                 (long long)ckpt->hparams.vocab_size);
        if (!is_file(candidate))
            snprintf(candidate, sizeof candidate, "%s/tokenizer.bin", dir);
        if (is_file(candidate))
            tokenizer = candidate;
    }
    if (!tokenizer)
        return LB_OK;
    return load_tokenizer(ckpt, tokenizer);
}

/* ---- safetensors (Hugging Face layout) ---- */

/* Hugging Face tensor name -> llama.cpp name. Returns false for names with no llama.cpp
 * counterpart. `kind` receives 'q' or 'k' for the projections whose rows need the rotary
 * permutation, else 0. */
static bool map_hf_name(const char *hf, char *out, size_t size, char *kind)
{
    static const struct {
        const char *hf_suffix;
        const char *gguf_suffix;
        char kind;
    } layer_names[] = {
        {"input_layernorm.weight", "attn_norm.weight", 0},
        {"self_attn.q_proj.weight", "attn_q.weight", 'q'},
        {"self_attn.k_proj.weight", "attn_k.weight", 'k'},
        {"self_attn.v_proj.weight", "attn_v.weight", 0},
        {"self_attn.q_proj.bias", "attn_q.bias", 'q'},
        {"self_attn.k_proj.bias", "attn_k.bias", 'k'},
        {"self_attn.v_proj.bias", "attn_v.bias", 0},
        {"self_attn.o_proj.weight", "attn_output.weight", 0},
        {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
        {"mlp.up_proj.weight", "ffn_up.weight", 0},
        {"mlp.down_proj.weight", "ffn_down.weight", 0},
    };
    *kind = 0;
    if (strcmp(hf, "model.embed_tokens.weight") == 0)
        return snprintf(out, size, "token_embd.weight") > 0;
    if (strcmp(hf, "model.norm.weight") == 0)
        return snprintf(out, size, "output_norm.weight") > 0;
    if (strcmp(hf, "lm_head.weight") == 0)
        return snprintf(out, size, "output.weight") > 0;
    long long layer;
    int consumed = 0;
    if (sscanf(hf, "model.layers.%lld.%n", &layer, &consumed) == 1 && consumed > 0 && layer >= 0) {
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
            if (strcmp(hf + consumed, layer_names[i].hf_suffix) == 0) {
                *kind = layer_names[i].kind;
                snprintf(out, size, "blk.%lld.%s", layer, layer_names[i].gguf_suffix);
                return true;
            }
        }
    }
    return false;
}

static lb_status open_safetensors(lb_checkpoint *ckpt, const char *weights_path,
                                  const char *dir, const lb_checkpoint_settings *settings)
{
    char config_path[4200], tokenizer_path[4200], name[256];
    /* The weights first: a malformed file is reported as such even without a config.json. */
    lb_safetensors *st = NULL;
    lb_status status = lb_safetensors_open(&st, weights_path);
    if (status != LB_OK)
        return status;
    ckpt->source = st;
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    if (!is_file(config_path))
        return lb_error(LB_ERR_UNSUPPORTED,
                        "%s: safetensors weights need the model's config.json beside them (%s)",
                        weights_path, config_path);
    if ((status = lb_hf_config_load(&ckpt->hparams, config_path)) != LB_OK)
        return status;
    ckpt->tensors = lb_calloc((size_t)st->n_tensors, sizeof *ckpt->tensors);
    if (!ckpt->tensors)
        return lb_error(LB_ERR_NOMEM, "%s: out of memory for the table of %lld tensors (%zu bytes)",
                        ckpt->path, (long long)st->n_tensors,
                        (size_t)st->n_tensors * sizeof *ckpt->tensors);

    const lb_hparams *hp = &ckpt->hparams;
    /* llama.cpp runs llama/mistral with the interleaved ("normal") rotary pairing, so its
     * converter permutes q/k rows out of Hugging Face's half-split order; qwen2 runs with the
     * NEOX pairing and keeps Hugging Face's order. */
    bool permute = strcmp(hp->arch, "llama") == 0;
    for (int64_t i = 0; i < st->n_tensors; i++) {
        const lb_safetensors_tensor *t = &st->tensors[i];
        char kind;
        if (ends_with(t->name, "rotary_emb.inv_freq"))
            continue; /* recomputed from rope_theta */
        if (!map_hf_name(t->name, name, sizeof name, &kind))
            return lb_error(LB_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has no llama.cpp counterpart for a %s model",
                            weights_path, t->name, hp->arch);
        int64_t heads = 0;
        if (permute && kind)
            heads = kind == 'q' ? hp->n_heads : hp->n_kv_heads;
        if (heads > 0 && (t->ne[t->n_dims > 1 ? 1 : 0] % (2 * heads)) != 0)
            return lb_error(LB_ERR_CORRUPT_FILE,
                            "%s: tensor '%s' has %lld rows, not a multiple of 2 x %lld heads",
                            weights_path, t->name, (long long)t->ne[t->n_dims > 1 ? 1 : 0],
                            (long long)heads);
        status = add_tensor(ckpt, st->n_tensors, name, t->name, t->type, t->n_dims, t->ne,
                            t->data, t->nbytes, heads);
        if (status != LB_OK)
            return status;
    }
    if (lb_checkpoint_find(ckpt, "output.weight") < 0 && !hp->tied_embeddings)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: no lm_head.weight and config.json does not tie the embeddings",
                        weights_path);

    const char *tokenizer = settings->tokenizer_path;
    static const char *const beside[] = {"tokenizer.json", "tokenizer.model"};
    for (size_t i = 0; !tokenizer && i < sizeof beside / sizeof beside[0]; i++) {
        snprintf(tokenizer_path, sizeof tokenizer_path, "%s/%s", dir, beside[i]);
        if (is_file(tokenizer_path))
            tokenizer = tokenizer_path;
    }
    if (!tokenizer)
        return LB_OK;
    return load_tokenizer(ckpt, tokenizer);
}

/* ---- GGUF ---- */

static lb_status gguf_arch_int(const lb_gguf *g, const char *arch, const char *suffix,
                               int64_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return lb_gguf_get_int(g, key, out);
}

static lb_status read_gguf_hparams(lb_checkpoint *ckpt, const lb_gguf *g)
{
    lb_hparams *hp = &ckpt->hparams;
    lb_gguf_string arch;
    lb_status status = lb_gguf_get_string(g, "general.architecture", &arch);
    if (status != LB_OK)
        return status;
    snprintf(hp->arch, sizeof hp->arch, "%.*s", (int)(arch.len < 15 ? arch.len : 15), arch.data);
    if ((status = gguf_arch_int(g, hp->arch, "embedding_length", &hp->dim)) != LB_OK ||
        (status = gguf_arch_int(g, hp->arch, "feed_forward_length", &hp->hidden_dim)) != LB_OK ||
        (status = gguf_arch_int(g, hp->arch, "block_count", &hp->n_layers)) != LB_OK ||
        (status = gguf_arch_int(g, hp->arch, "attention.head_count", &hp->n_heads)) != LB_OK ||
        (status = gguf_arch_int(g, hp->arch, "context_length", &hp->context_length)) != LB_OK)
        return status;
    if (gguf_arch_int(g, hp->arch, "attention.head_count_kv", &hp->n_kv_heads) != LB_OK)
        hp->n_kv_heads = hp->n_heads;
    if (hp->dim <= 0 || hp->n_heads <= 0 || hp->n_kv_heads <= 0 || hp->n_layers <= 0 ||
        hp->hidden_dim <= 0 || hp->n_heads % hp->n_kv_heads != 0)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: %s.* hyperparameters are not positive and consistent", ckpt->path,
                        hp->arch);
    if (gguf_arch_int(g, hp->arch, "attention.key_length", &hp->head_dim) != LB_OK)
        hp->head_dim = hp->dim / hp->n_heads;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.freq_base", hp->arch);
    if (lb_gguf_get_float(g, key, &hp->rope_theta) != LB_OK)
        hp->rope_theta = 10000.0;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", hp->arch);
    if (lb_gguf_get_float(g, key, &hp->rms_eps) != LB_OK)
        hp->rms_eps = 1e-5;
    int64_t token_embd = lb_gguf_find_tensor(g, "token_embd.weight");
    if (gguf_arch_int(g, hp->arch, "vocab_size", &hp->vocab_size) != LB_OK)
        hp->vocab_size = token_embd >= 0 ? g->tensors[token_embd].ne[1] : 0;
    hp->tied_embeddings = lb_gguf_find_tensor(g, "output.weight") < 0;
    lb_error_clear();
    return LB_OK;
}

/* tokenizer.ggml.* -> lb_vocab; absent tokens array means no tokenizer. */
static lb_status read_gguf_vocab(lb_checkpoint *ckpt, const lb_gguf *g)
{
    const lb_gguf_value *tokens = NULL, *scores = NULL, *types = NULL, *merges = NULL;
    lb_gguf_string model;
    if (lb_gguf_get_array(g, "tokenizer.ggml.tokens", LB_GGUF_STRING, &tokens) != LB_OK) {
        lb_error_clear();
        return LB_OK;
    }
    if (lb_gguf_get_string(g, "tokenizer.ggml.model", &model) != LB_OK) {
        model.data = "llama";
        model.len = 5;
    }
    lb_gguf_get_array(g, "tokenizer.ggml.scores", LB_GGUF_FLOAT32, &scores);
    lb_gguf_get_array(g, "tokenizer.ggml.token_type", LB_GGUF_INT32, &types);
    lb_gguf_get_array(g, "tokenizer.ggml.merges", LB_GGUF_STRING, &merges);
    lb_error_clear();
    int64_t n = (int64_t)tokens->v.arr.count;
    if ((scores && scores->v.arr.count != (uint64_t)n) || (types && types->v.arr.count != (uint64_t)n))
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: tokenizer.ggml.scores/token_type counts differ from the %lld tokens",
                        ckpt->path, (long long)n);
    char model_name[16];
    snprintf(model_name, sizeof model_name, "%.*s", (int)(model.len < 15 ? model.len : 15),
             model.data);
    lb_status status = lb_vocab_create(&ckpt->vocab, model_name, n, scores != NULL, types != NULL);
    if (status != LB_OK)
        return status;
    lb_vocab *vocab = ckpt->vocab;
    for (int64_t i = 0; i < n && status == LB_OK; i++) {
        const lb_gguf_string *s = &tokens->v.arr.strings[i];
        status = lb_vocab_set_token(vocab, i, s->data, (size_t)s->len);
        if (scores)
            vocab->scores[i] = (float)lb_gguf_array_float(scores, (uint64_t)i);
        if (types)
            vocab->token_types[i] = (int32_t)lb_gguf_array_int(types, (uint64_t)i);
    }
    if (status == LB_OK && merges) {
        vocab->merges = lb_calloc(merges->v.arr.count, sizeof *vocab->merges);
        if (!vocab->merges)
            return lb_nomem("out of memory for merges");
        for (uint64_t i = 0; i < merges->v.arr.count; i++) {
            const lb_gguf_string *s = &merges->v.arr.strings[i];
            if (!(vocab->merges[i] = lb_strndup(s->data, (size_t)s->len)))
                return lb_nomem("out of memory for merges");
            vocab->n_merges = (int64_t)i + 1;
        }
    }
    static const struct {
        const char *key;
        size_t field;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(lb_vocab, bos_id)},
        {"tokenizer.ggml.eos_token_id", offsetof(lb_vocab, eos_id)},
        {"tokenizer.ggml.unknown_token_id", offsetof(lb_vocab, unk_id)},
        {"tokenizer.ggml.padding_token_id", offsetof(lb_vocab, pad_id)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int64_t id;
        if (lb_gguf_get_int(g, ids[i].key, &id) == LB_OK && id >= 0 && id < n)
            *(int32_t *)((char *)vocab + ids[i].field) = (int32_t)id;
    }
    bool flag;
    if (lb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag) == LB_OK)
        vocab->add_bos = flag;
    if (lb_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &flag) == LB_OK)
        vocab->add_eos = flag;
    lb_error_clear();
    if (status == LB_OK)
        status = set_tokenizer_path(ckpt, ckpt->path);
    return status;
}

static lb_status open_gguf(lb_checkpoint *ckpt)
{
    lb_gguf *g = NULL;
    lb_status status = lb_gguf_open(&g, ckpt->path);
    if (status != LB_OK)
        return status;
    ckpt->source = g;
    ckpt->gguf = g;
    if ((status = read_gguf_hparams(ckpt, g)) != LB_OK)
        return status;
    ckpt->tensors = lb_calloc((size_t)g->n_tensors, sizeof *ckpt->tensors);
    if (!ckpt->tensors)
        return lb_error(LB_ERR_NOMEM, "%s: out of memory for the table of %lld tensors (%zu bytes)",
                        ckpt->path, (long long)g->n_tensors,
                        (size_t)g->n_tensors * sizeof *ckpt->tensors);
    for (int64_t i = 0; i < g->n_tensors && status == LB_OK; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        status = add_tensor(ckpt, g->n_tensors, t->name, t->name, t->type, t->n_dims, t->ne,
                            t->data, t->nbytes, 0);
    }
    if (status != LB_OK)
        return status;
    return read_gguf_vocab(ckpt, g);
}

/* ---- detection ---- */

/* Picks the safetensors entry point inside a directory: the index, model.safetensors, or the
 * one *.safetensors there is. Several shards without an index are refused: taking whichever
 * readdir lists first would build half a model. */
static lb_status find_safetensors_in(const char *dir, char *out, size_t size)
{
    snprintf(out, size, "%s/model.safetensors.index.json", dir);
    if (is_file(out))
        return LB_OK;
    snprintf(out, size, "%s/model.safetensors", dir);
    if (is_file(out))
        return LB_OK;
    DIR *d = opendir(dir);
    if (!d)
        return lb_error(LB_ERR_IO, "%s: cannot read the directory: %s", dir, strerror(errno));
    int64_t found = 0;
    char first[256] = "", second[256] = "";
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".safetensors"))
            continue;
        /* readdir's order is arbitrary: name the two that sort first, for a stable message. */
        if (found == 0 || strcmp(e->d_name, first) < 0) {
            snprintf(second, sizeof second, "%s", first);
            snprintf(first, sizeof first, "%s", e->d_name);
        } else if (found == 1 || strcmp(e->d_name, second) < 0) {
            snprintf(second, sizeof second, "%s", e->d_name);
        }
        found++;
    }
    closedir(d);
    if (found == 0)
        return lb_error(LB_ERR_UNSUPPORTED,
                        "%s: directory holds no model.safetensors[.index.json]", dir);
    if (found > 1)
        return lb_error(LB_ERR_CORRUPT_FILE,
                        "%s: more than one *.safetensors without model.safetensors.index.json "
                        "(%lld files: '%s', '%s', ...): which tensors belong to the model is "
                        "unknown", dir, (long long)found, first, second);
    snprintf(out, size, "%s/%s", dir, first);
    return LB_OK;
}

typedef enum { SNIFF_UNKNOWN, SNIFF_GGUF, SNIFF_SAFETENSORS } sniff_result;

static sniff_result sniff_file(const char *path)
{
    uint8_t head[9] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return SNIFF_UNKNOWN;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0)
        return SNIFF_GGUF;
    /* safetensors: u64 header length, then the JSON object's '{'. */
    if (n == 9 && head[8] == '{' && head[7] == 0 && head[6] == 0)
        return SNIFF_SAFETENSORS;
    return SNIFF_UNKNOWN;
}

lb_status lb_checkpoint_open(lb_checkpoint **out, const char *path,
                             const lb_checkpoint_settings *settings)
{
    *out = NULL;
    lb_checkpoint_settings defaults = lb_checkpoint_default_settings();
    if (!settings)
        settings = &defaults;
    lb_checkpoint *ckpt = lb_calloc(1, sizeof *ckpt);
    if (!ckpt || !(ckpt->path = lb_strdup(path))) {
        lb_free(ckpt);
        return lb_error(LB_ERR_NOMEM,
                        "%s: out of memory for the checkpoint and its path (%zu bytes)", path,
                        sizeof *ckpt + strlen(path) + 1);
    }
    ckpt->decode = settings->decode;
    lb_status status;
    char dir[4096], weights[4200];
    if (is_directory(path)) {
        if ((status = find_safetensors_in(path, weights, sizeof weights)) != LB_OK)
            goto done;
        ckpt->format = LB_CHECKPOINT_SAFETENSORS;
        status = open_safetensors(ckpt, weights, path, settings);
        goto done;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        status = lb_error(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        /* Refused before sniffing: reading a FIFO would block. */
        status = lb_error(LB_ERR_BAD_INPUT, "%s: not a regular file (%s)", path,
                          lb_file_kind((unsigned)st.st_mode));
        goto done;
    }
    sniff_result sniffed = sniff_file(path);
    if (sniffed == SNIFF_GGUF || ends_with(path, ".gguf")) {
        ckpt->format = LB_CHECKPOINT_GGUF;
        status = open_gguf(ckpt);
    } else if (sniffed == SNIFF_SAFETENSORS || ends_with(path, ".safetensors") ||
               ends_with(path, ".safetensors.index.json")) {
        ckpt->format = LB_CHECKPOINT_SAFETENSORS;
        directory_of(path, dir, sizeof dir);
        status = open_safetensors(ckpt, path, dir, settings);
    } else {
        /* Anything else is read as a llama2.c checkpoint, whose reader explains what is off. */
        ckpt->format = LB_CHECKPOINT_LLAMA2C;
        status = open_llama2c(ckpt, settings);
    }
done:
    if (status != LB_OK) {
        lb_checkpoint_close(&ckpt);
        return status;
    }
    *out = ckpt;
    return LB_OK;
}

void lb_checkpoint_close(lb_checkpoint **ckptp)
{
    if (!ckptp || !*ckptp)
        return;
    lb_checkpoint *ckpt = *ckptp;
    switch (ckpt->format) {
    case LB_CHECKPOINT_LLAMA2C: {
        lb_llama2c *model = ckpt->source;
        lb_llama2c_close(&model);
        break;
    }
    case LB_CHECKPOINT_SAFETENSORS: {
        lb_safetensors *st = ckpt->source;
        lb_safetensors_close(&st);
        break;
    }
    case LB_CHECKPOINT_GGUF: {
        lb_gguf *g = ckpt->source;
        lb_gguf_close(&g);
        break;
    }
    case LB_CHECKPOINT_VIEW:
        lb_checkpoint_view_close_source(ckpt);
        break;
    }
    if (ckpt->tensors) {
        for (int64_t i = 0; i < ckpt->n_tensors; i++) {
            lb_free(ckpt->tensors[i].name);
            lb_free(ckpt->tensors[i].source_name);
        }
    }
    lb_free(ckpt->tensors);
    lb_vocab_free(&ckpt->vocab);
    lb_free(ckpt->tokenizer_path);
    lb_free(ckpt->path);
    lb_free(ckpt);
    *ckptp = NULL;
}

int64_t lb_checkpoint_find(const lb_checkpoint *ckpt, const char *name)
{
    for (int64_t i = 0; i < ckpt->n_tensors; i++)
        if (strcmp(ckpt->tensors[i].name, name) == 0)
            return i;
    return -1;
}

int32_t lb_checkpoint_text_bos(const lb_checkpoint *ckpt)
{
    const lb_vocab *v = ckpt ? ckpt->vocab : NULL;
    if (!v || v->bos_id < 0)
        return -1;
    bool add = v->add_bos > 0;
    if (v->add_bos < 0) {
        /* llama_vocab::impl::load's defaults per tokenizer model and BPE pre-tokenizer. */
        static const char *const bpe_with_bos[] = {"llama3", "llama-v3", "llama-bpe", "falcon3",
                                                   "tekken", "chameleon"};
        add = strcmp(v->model, "llama") == 0 || strcmp(v->model, "bert") == 0;
        lb_gguf_string pre = {0};
        if (strcmp(v->model, "gpt2") == 0 && ckpt->gguf &&
            lb_gguf_get_string(ckpt->gguf, "tokenizer.ggml.pre", &pre) != LB_OK) {
            lb_error_clear(); /* no pre-tokenizer named: llama.cpp's "default" */
            pre.len = 0;
        }
        for (size_t i = 0; i < sizeof bpe_with_bos / sizeof bpe_with_bos[0]; i++)
            add |= pre.len == strlen(bpe_with_bos[i]) &&
                   memcmp(pre.data, bpe_with_bos[i], (size_t)pre.len) == 0;
    }
    return add ? v->bos_id : -1;
}

/* Source row of GGUF row r for a projection stored in Hugging Face's half-split rotary order:
 * llama.cpp's converter reshapes rows to (heads, 2, head_dim/2) and swaps the last two axes,
 * so GGUF row h*hd + 2*i + p comes from Hugging Face row h*hd + p*hd/2 + i. */
static int64_t hf_rope_source_row(int64_t r, int64_t rows, int64_t heads)
{
    int64_t head_dim = rows / heads;
    int64_t head = r / head_dim, j = r % head_dim;
    return head * head_dim + (j % 2) * (head_dim / 2) + j / 2;
}

lb_status lb_checkpoint_read_rows_f32(const lb_checkpoint *ckpt, int64_t index, int64_t row0,
                                      int64_t n_rows, float *dst)
{
    if (index < 0 || index >= ckpt->n_tensors)
        return lb_error(LB_ERR_INVALID_ARG, "%s: tensor index %lld out of range", ckpt->path,
                        (long long)index);
    const lb_checkpoint_tensor *t = &ckpt->tensors[index];
    int64_t cols = t->ne[0], rows = 1;
    lb_tensor_count(t->n_dims - 1, t->ne + 1, &rows);
    if (row0 < 0 || n_rows < 0 || row0 > rows || n_rows > rows - row0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: rows [%lld, +%lld) out of range for '%s'",
                        ckpt->path, (long long)row0, (long long)n_rows, t->name);
    if (ckpt->format == LB_CHECKPOINT_VIEW)
        return lb_checkpoint_view_read_rows(ckpt, index, row0, n_rows, dst);
    const lb_type_info *info = lb_type_get((uint32_t)t->type);
    bool packed = info && info->block_size != 1;
    if (!info || (packed && !ckpt->decode))
        return lb_error(LB_ERR_UNSUPPORTED, "%s: tensor '%s' of type %s cannot be read as f32",
                        ckpt->path, t->name, info ? info->name : "unknown");
    /* A 1-d q/k bias permutes like a matrix with one column. */
    int64_t perm_rows = t->n_dims == 1 ? cols : rows;
    int64_t perm_cols = t->n_dims == 1 ? 1 : cols;
    if (t->rope_permute_heads > 0 && t->n_dims == 1) {
        if (row0 != 0 || n_rows != 1)
            return lb_error(LB_ERR_INVALID_ARG, "%s: a 1-d tensor has one row", ckpt->path);
    }
    const uint8_t *base = t->data;
    size_t elem = info->block_bytes;
    uint64_t row_bytes; /* of a source row; a packed one is decoded whole */
    if (!lb_type_row_bytes(t->type, perm_cols, &row_bytes))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: tensor '%s': rows of %lld do not fit type %s",
                        ckpt->path, t->name, (long long)perm_cols, info->name);
    for (int64_t r = 0; r < n_rows; r++) {
        if (t->rope_permute_heads > 0 && t->n_dims == 1) {
            for (int64_t i = 0; i < perm_rows; i++) {
                int64_t src = hf_rope_source_row(i, perm_rows, t->rope_permute_heads);
                lb_row_to_f32(t->type, base + (size_t)src * elem, dst + i, 1);
            }
            continue;
        }
        int64_t src_row = row0 + r;
        if (t->rope_permute_heads > 0)
            src_row = hf_rope_source_row(src_row, perm_rows, t->rope_permute_heads);
        const uint8_t *src = base + (size_t)src_row * (size_t)row_bytes;
        float *out = dst + (size_t)r * (size_t)cols;
        lb_status status = packed ? ckpt->decode(t->type, src, cols, out)
                                  : lb_row_to_f32(t->type, src, out, cols);
        if (status != LB_OK)
            return status;
    }
    return LB_OK;
}

void lb_checkpoint_release_tensor(const lb_checkpoint *ckpt, int64_t index)
{
    if (!ckpt || index < 0 || index >= ckpt->n_tensors)
        return;
    if (ckpt->format == LB_CHECKPOINT_VIEW) {
        lb_checkpoint_view_release(ckpt, index);
        return;
    }
    const lb_checkpoint_tensor *t = &ckpt->tensors[index];
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)t->data + page - 1) / page * page;
    uintptr_t end = ((uintptr_t)t->data + t->nbytes) / page * page;
    /* Whole pages inside the tensor only: a neighbour's bytes on a shared page stay. Pages of a
     * private read-only file mapping are simply read again on the next touch. */
    if (end > start)
        madvise((void *)start, (size_t)(end - start), MADV_DONTNEED);
}
