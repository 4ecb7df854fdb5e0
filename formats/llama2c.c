/* llama2.c reader: legacy f32 checkpoints and tokenizer.bin, checked against the file size. */
#include "formats/llama2c_internal.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "formats/cursor_internal.h"

#define HEADER_FIELDS 7
#define HEADER_BYTES (HEADER_FIELDS * 4)

/* Caps far above any released llama-family model (dim 16384, hidden 53248, 126 layers, vocab
 * 256k). With them every size product stays below 2^60, so sizes cannot overflow even before
 * the checked arithmetic below catches it. */
#define MAX_DIM ((int64_t)1 << 20)
#define MAX_HIDDEN ((int64_t)1 << 22)
#define MAX_LAYERS ((int64_t)1 << 12)
#define MAX_VOCAB ((int64_t)1 << 24)
#define MAX_SEQ_LEN ((int64_t)1 << 24)

/* tokenizer.bin: SentencePiece pieces are a few dozen bytes; this only bounds the buffer. */
#define MAX_TOKEN_BYTES ((int64_t)1 << 16)
/* ids 0, 1, 2 are <unk>, <s>, </s> in every llama2.c export. */
#define MIN_TOKENS 3

static const char *const header_fields[HEADER_FIELDS] = {
    "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len",
};

/* The arrays of the file in storage order. Per-layer arrays hold n_layers tensors back to
 * back, which is why the tensors of one block are not contiguous. */
enum {
    ARR_TOKEN_EMBD,
    ARR_ATTN_NORM,
    ARR_ATTN_Q,
    ARR_ATTN_K,
    ARR_ATTN_V,
    ARR_ATTN_OUTPUT,
    ARR_FFN_NORM,
    ARR_FFN_GATE,
    ARR_FFN_DOWN,
    ARR_FFN_UP,
    ARR_OUTPUT_NORM,
    ARR_FREQ_REAL,
    ARR_FREQ_IMAG,
    ARR_OUTPUT,
    ARR_COUNT
};

static const struct {
    const char *name; /* llama.cpp name (without "blk.N.") or llama2.c's for the skipped ones */
    bool per_layer;
    bool exposed;     /* the rotary tables are recomputed by every runtime, so not exposed */
} arrays[ARR_COUNT] = {
    [ARR_TOKEN_EMBD] = {"token_embd.weight", false, true},
    [ARR_ATTN_NORM] = {"attn_norm.weight", true, true},
    [ARR_ATTN_Q] = {"attn_q.weight", true, true},
    [ARR_ATTN_K] = {"attn_k.weight", true, true},
    [ARR_ATTN_V] = {"attn_v.weight", true, true},
    [ARR_ATTN_OUTPUT] = {"attn_output.weight", true, true},
    [ARR_FFN_NORM] = {"ffn_norm.weight", true, true},
    [ARR_FFN_GATE] = {"ffn_gate.weight", true, true},
    [ARR_FFN_DOWN] = {"ffn_down.weight", true, true},
    [ARR_FFN_UP] = {"ffn_up.weight", true, true},
    [ARR_OUTPUT_NORM] = {"output_norm.weight", false, true},
    [ARR_FREQ_REAL] = {"freq_cis_real", false, false},
    [ARR_FREQ_IMAG] = {"freq_cis_imag", false, false},
    [ARR_OUTPUT] = {"output.weight", false, true},
};

/* Everything the header implies about the file. */
typedef struct layout {
    lb_hparams hp;
    bool shared;                 /* classifier tied to the embedding: no output.weight */
    int n_dims[ARR_COUNT];
    int64_t ne0[ARR_COUNT];      /* row length */
    int64_t ne1[ARR_COUNT];      /* rows (1 for vectors) */
    uint64_t bytes[ARR_COUNT];   /* of one tensor (one layer's, for per-layer arrays) */
    uint64_t offset[ARR_COUNT];  /* of the array's first tensor */
    uint64_t count[ARR_COUNT];   /* tensors in the array: n_layers, 1, or 0 (output when tied) */
    uint64_t total;              /* expected file size */
} layout;

static lb_status check_range(const lb_cursor *c, int field, int64_t value, int64_t max)
{
    char name[32];
    snprintf(name, sizeof name, "header.%s", header_fields[field]);
    if (value <= 0)
        return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, (uint64_t)field * 4, name,
                              "%lld is not positive", (long long)value);
    if (value > max)
        return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, (uint64_t)field * 4, name,
                              "%s%lld exceeds the limit of %lld", field == 5 ? "magnitude " : "",
                              (long long)value, (long long)max);
    return LB_OK;
}

static void set_shape(layout *l, int a, int n_dims, int64_t ne0, int64_t ne1, uint64_t count)
{
    l->n_dims[a] = n_dims;
    l->ne0[a] = ne0;
    l->ne1[a] = ne1;
    l->count[a] = count;
}

/* Validates the header and computes where every array lies; does not look past the header.
 * A cursor without a path: no message. */
static lb_status read_layout(lb_cursor *c, layout *l)
{
    int64_t h[HEADER_FIELDS];
    memset(l, 0, sizeof *l);
    for (int i = 0; i < HEADER_FIELDS; i++) {
        const uint8_t *b = lb_cursor_take(c, 4);
        if (!b) {
            char name[32];
            snprintf(name, sizeof name, "header.%s", header_fields[i]);
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, (uint64_t)i * 4, name,
                                  "truncated: the file has %llu bytes, the header needs %d",
                                  (unsigned long long)c->size, HEADER_BYTES);
        }
        h[i] = lb_le_load_i32(b);
    }
    const int64_t dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv_heads = h[4];
    const int64_t seq_len = h[6];
    /* A negative vocab_size flags an unshared classifier; int64 keeps -INT32_MIN exact. */
    const int64_t vocab = h[5] < 0 ? -h[5] : h[5];
    static const int64_t limits[HEADER_FIELDS] = {MAX_DIM, MAX_HIDDEN, MAX_LAYERS, MAX_DIM,
                                                  MAX_DIM, MAX_VOCAB, MAX_SEQ_LEN};
    lb_status status;
    for (int i = 0; i < HEADER_FIELDS; i++)
        if ((status = check_range(c, i, i == 5 ? vocab : h[i], limits[i])) != LB_OK)
            return status;
    if (dim % n_heads != 0)
        return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, 12, "header.n_heads",
                              "dim %lld is not divisible by n_heads %lld", (long long)dim,
                              (long long)n_heads);
    if (n_heads % n_kv_heads != 0)
        return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, 16, "header.n_kv_heads",
                              "n_heads %lld is not divisible by n_kv_heads %lld",
                              (long long)n_heads, (long long)n_kv_heads);
    const int64_t head_size = dim / n_heads;
    if (head_size % 2 != 0)
        return lb_cursor_fail(
            c, LB_ERR_CORRUPT_FILE, 12, "header.n_heads",
            "head size %lld (dim %lld / n_heads %lld) is odd; rotary embedding pairs "
            "dimensions",
            (long long)head_size, (long long)dim, (long long)n_heads);
    const int64_t kv_dim = head_size * n_kv_heads;

    lb_hparams *hp = &l->hp;
    snprintf(hp->arch, sizeof hp->arch, "llama");
    hp->dim = dim;
    hp->hidden_dim = hidden;
    hp->n_layers = n_layers;
    hp->n_heads = n_heads;
    hp->n_kv_heads = n_kv_heads;
    hp->head_dim = head_size;
    hp->vocab_size = vocab;
    hp->context_length = seq_len;
    hp->rope_theta = 10000.0; /* run.c hard-codes both */
    hp->rms_eps = 1e-5;
    hp->tied_embeddings = h[5] > 0;
    l->shared = h[5] > 0;

    const uint64_t L = (uint64_t)n_layers;
    set_shape(l, ARR_TOKEN_EMBD, 2, dim, vocab, 1);
    set_shape(l, ARR_ATTN_NORM, 1, dim, 1, L);
    set_shape(l, ARR_ATTN_Q, 2, dim, dim, L);
    set_shape(l, ARR_ATTN_K, 2, dim, kv_dim, L);
    set_shape(l, ARR_ATTN_V, 2, dim, kv_dim, L);
    set_shape(l, ARR_ATTN_OUTPUT, 2, dim, dim, L);
    set_shape(l, ARR_FFN_NORM, 1, dim, 1, L);
    set_shape(l, ARR_FFN_GATE, 2, dim, hidden, L);
    set_shape(l, ARR_FFN_DOWN, 2, hidden, dim, L);
    set_shape(l, ARR_FFN_UP, 2, dim, hidden, L);
    set_shape(l, ARR_OUTPUT_NORM, 1, dim, 1, 1);
    set_shape(l, ARR_FREQ_REAL, 2, head_size / 2, seq_len, 1);
    set_shape(l, ARR_FREQ_IMAG, 2, head_size / 2, seq_len, 1);
    set_shape(l, ARR_OUTPUT, 2, dim, vocab, l->shared ? 0 : 1);

    uint64_t pos = HEADER_BYTES;
    for (int a = 0; a < ARR_COUNT; a++) {
        uint64_t elems, array_bytes;
        if (!lb_size_mul((uint64_t)l->ne0[a], (uint64_t)l->ne1[a], &elems) ||
            !lb_size_mul(elems, sizeof(float), &l->bytes[a]) ||
            !lb_size_mul(l->bytes[a], l->count[a], &array_bytes) ||
            !lb_size_add(pos, array_bytes, &l->total))
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, 0, "header",
                                  "the size of %s overflows 64 bits", arrays[a].name);
        l->offset[a] = pos;
        pos = l->total;
    }
    return LB_OK;
}

static void tensor_name(char *dst, size_t cap, int a, uint64_t layer)
{
    if (arrays[a].per_layer)
        snprintf(dst, cap, "blk.%llu.%s", (unsigned long long)layer, arrays[a].name);
    else
        snprintf(dst, cap, "%s", arrays[a].name);
}

/* The file must end exactly where the last array does. */
static lb_status check_size(const lb_cursor *c, const layout *l)
{
    const uint64_t size = c->size;
    if (size > l->total)
        return lb_cursor_fail(
            c, LB_ERR_CORRUPT_FILE, l->total, "end of tensors",
            "%llu trailing bytes (the header implies a file of %llu bytes, it has %llu)",
            (unsigned long long)(size - l->total), (unsigned long long)l->total,
            (unsigned long long)size);
    if (size == l->total)
        return LB_OK;
    for (int a = 0; a < ARR_COUNT; a++) {
        uint64_t end = l->offset[a] + l->bytes[a] * l->count[a];
        if (l->count[a] == 0 || end <= size)
            continue;
        uint64_t layer = size > l->offset[a] ? (size - l->offset[a]) / l->bytes[a] : 0;
        uint64_t at = l->offset[a] + layer * l->bytes[a];
        char name[80], field[96];
        tensor_name(name, sizeof name, a, layer);
        snprintf(field, sizeof field, "tensor '%s'", name);
        return lb_cursor_fail(
            c, LB_ERR_CORRUPT_FILE, at, field,
            "truncated: needs %llu bytes, the file has %llu left (the header implies "
            "%llu bytes in all)",
            (unsigned long long)l->bytes[a], (unsigned long long)(size - at),
            (unsigned long long)l->total);
    }
    /* The last array ends at l->total > size, so the loop returned. */
    assert(false);
    return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, size, "end of tensors", "size mismatch");
}

bool lb_llama2c_probe(const void *data, uint64_t size)
{
    layout l;
    lb_cursor c;
    lb_cursor_init(&c, NULL, data, size);
    if (!data || read_layout(&c, &l) != LB_OK)
        return false;
    return check_size(&c, &l) == LB_OK;
}

static lb_status build_tensors(lb_llama2c *m, const layout *l, const uint8_t *data)
{
    int64_t n = 0;
    for (int a = 0; a < ARR_COUNT; a++)
        if (arrays[a].exposed)
            n += (int64_t)l->count[a];
    m->tensors = lb_calloc((size_t)n, sizeof *m->tensors);
    if (!m->tensors)
        return lb_nomem("%s: out of memory for %lld tensors", m->path,
                        (long long)n);
    /* Order of llama2c.h: the per-layer arrays are interleaved block by block. */
    static const int before[] = {ARR_TOKEN_EMBD};
    static const int per_layer[] = {ARR_ATTN_NORM, ARR_ATTN_Q,  ARR_ATTN_K,   ARR_ATTN_V,
                                    ARR_ATTN_OUTPUT, ARR_FFN_NORM, ARR_FFN_GATE, ARR_FFN_DOWN,
                                    ARR_FFN_UP};
    static const int after[] = {ARR_OUTPUT_NORM, ARR_OUTPUT};
    int64_t k = 0;
    struct {
        const int *list;
        size_t len;
        uint64_t repeat;
    } groups[3] = {
        {before, sizeof before / sizeof before[0], 1},
        {per_layer, sizeof per_layer / sizeof per_layer[0], (uint64_t)l->hp.n_layers},
        {after, sizeof after / sizeof after[0], 1},
    };
    for (int g = 0; g < 3; g++) {
        for (uint64_t layer = 0; layer < groups[g].repeat; layer++) {
            for (size_t j = 0; j < groups[g].len; j++) {
                int a = groups[g].list[j];
                if (l->count[a] == 0)
                    continue;
                lb_llama2c_tensor *t = &m->tensors[k++];
                uint64_t index = arrays[a].per_layer ? layer : 0;
                tensor_name(t->name, sizeof t->name, a, index);
                t->n_dims = l->n_dims[a];
                t->ne[0] = l->ne0[a];
                t->ne[1] = l->ne1[a];
                t->ne[2] = t->ne[3] = 1;
                t->nbytes = l->bytes[a];
                /* Offsets are multiples of 4 and the base is 4-byte aligned (mmap, or checked
                 * by open_memory), so the cast is sound. */
                t->data = (const float *)(const void *)(data + l->offset[a] +
                                                        index * l->bytes[a]);
            }
        }
    }
    m->n_tensors = k;
    return LB_OK;
}

static lb_status parse_model(lb_llama2c *m, const uint8_t *data, uint64_t size)
{
    layout l;
    lb_cursor c;
    lb_cursor_init(&c, m->path, data, size);
    lb_status status = read_layout(&c, &l);
    if (status == LB_OK)
        status = check_size(&c, &l);
    if (status != LB_OK)
        return status;
    m->hparams = l.hp;
    return build_tensors(m, &l, data);
}

void lb_llama2c_close(lb_llama2c **model)
{
    if (!model || !*model)
        return;
    lb_free((*model)->tensors);
    lb_mapped_file_close(&(*model)->file);
    lb_free(*model);
    *model = NULL;
}

lb_status lb_llama2c_open(lb_llama2c **out, const char *path)
{
    *out = NULL;
    lb_mapped_file *file = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    lb_llama2c *m = lb_calloc(1, sizeof *m);
    if (!m) {
        lb_mapped_file_close(&file);
        return lb_nomem("%s: out of memory for the llama2.c reader", path);
    }
    m->file = file;
    m->path = file->path;
    if ((status = parse_model(m, file->data, file->size)) != LB_OK) {
        lb_llama2c_close(&m);
        return status;
    }
    *out = m;
    return LB_OK;
}

lb_status lb_llama2c_open_memory(lb_llama2c **out, const char *name, const void *data,
                                 uint64_t size)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL buffer of %llu bytes", name,
                        (unsigned long long)size);
    if ((uintptr_t)data % _Alignof(float) != 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: buffer at %p is not aligned for float tensors",
                        name, data);
    size_t name_len = strlen(name);
    /* The name lives in the same block as the struct so close() needs no special case. */
    lb_llama2c *m = lb_calloc(1, sizeof *m + name_len + 1);
    if (!m)
        return lb_nomem("%s: out of memory for the llama2.c reader", name);
    char *copy = (char *)(m + 1);
    memcpy(copy, name, name_len + 1);
    m->path = copy;
    lb_status status = parse_model(m, data, size);
    if (status != LB_OK) {
        lb_llama2c_close(&m);
        return status;
    }
    *out = m;
    return LB_OK;
}

/* ---- tokenizer.bin ---- */

static bool is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static bool is_byte_piece(const uint8_t *s, uint64_t len)
{
    return len == 6 && memcmp(s, "<0x", 3) == 0 && is_hex(s[3]) && is_hex(s[4]) && s[5] == '>';
}

/* Walks the token records after max_token_length. With vocab NULL it only validates and
 * counts; with a vocab of the counted size it stores the translated tokens, using `buffer`
 * (3 * max_len + 1 bytes). */
static lb_status walk_tokens(lb_cursor *c, int64_t max_len, lb_vocab *vocab, char *buffer,
                             int64_t *count)
{
    static const char space_piece[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */
    int64_t i = 0;
    char field[64];
    lb_status status;
    c->pos = 4;
    while (c->pos < c->size) {
        const uint64_t pos = c->pos;
        float score;
        int32_t len32;
        snprintf(field, sizeof field, "token[%lld] score", (long long)i);
        if ((status = lb_cursor_f32(c, field, &score)) != LB_OK)
            return status;
        if (!isfinite(score))
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, pos, field, "not a finite number");
        snprintf(field, sizeof field, "token[%lld] length", (long long)i);
        if ((status = lb_cursor_i32(c, field, &len32)) != LB_OK)
            return status;
        const int64_t len = len32;
        if (len < 0)
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, pos + 4, field, "%lld is negative",
                                  (long long)len);
        if (len > max_len)
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, pos + 4, field,
                                  "%lld exceeds max_token_length %lld", (long long)len,
                                  (long long)max_len);
        const uint8_t *text = lb_cursor_take(c, (uint64_t)len);
        if (!text) {
            snprintf(field, sizeof field, "token[%lld] bytes", (long long)i);
            return lb_cursor_fail(c, LB_ERR_CORRUPT_FILE, pos + 8, field,
                                  "truncated: length %lld runs past the end of the file (%llu "
                                  "bytes left)",
                                  (long long)len, (unsigned long long)lb_cursor_left(c));
        }
        if (vocab) {
            /* Undo tokenizer.py's export: it wrote "\n<s>\n" / "\n</s>\n" for bos/eos and
             * ' ' for SentencePiece's U+2581. */
            size_t n = 0;
            if (len == 5 && memcmp(text, "\n<s>\n", 5) == 0) {
                memcpy(buffer, "<s>", 3);
                n = 3;
            } else if (len == 6 && memcmp(text, "\n</s>\n", 6) == 0) {
                memcpy(buffer, "</s>", 4);
                n = 4;
            } else {
                for (int64_t j = 0; j < len; j++) {
                    if (text[j] == ' ') {
                        memcpy(buffer + n, space_piece, 3);
                        n += 3;
                    } else {
                        buffer[n++] = (char)text[j];
                    }
                }
            }
            if ((status = lb_vocab_set_token(vocab, i, buffer, n)) != LB_OK)
                return lb_error(status, "%s: out of memory for token %lld", c->path, (long long)i);
            vocab->scores[i] = score;
            int32_t type = LB_TOKEN_NORMAL;
            if (i == 0)
                type = LB_TOKEN_UNKNOWN;
            else if (i == 1 || i == 2)
                type = LB_TOKEN_CONTROL;
            else if (is_byte_piece(text, (uint64_t)len))
                type = LB_TOKEN_BYTE;
            vocab->token_types[i] = type;
        }
        i++;
    }
    *count = i;
    return LB_OK;
}

lb_status lb_llama2c_tokenizer_parse(lb_vocab **out, const char *name, const void *data,
                                     uint64_t size, int64_t expected_tokens)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: NULL buffer of %llu bytes", name,
                        (unsigned long long)size);
    lb_cursor c;
    lb_cursor_init(&c, name, data, size);
    const uint8_t *b = lb_cursor_take(&c, 4);
    if (!b)
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, 0, "max_token_length",
                              "truncated: needs 4 bytes, the file has %llu",
                              (unsigned long long)size);
    const int64_t max_len = lb_le_load_i32(b);
    if (max_len <= 0 || max_len > MAX_TOKEN_BYTES)
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, 0, "max_token_length",
                              "%lld is outside 1..%lld", (long long)max_len,
                              (long long)MAX_TOKEN_BYTES);
    int64_t count = 0;
    lb_status status = walk_tokens(&c, max_len, NULL, NULL, &count);
    if (status != LB_OK)
        return status;
    if (expected_tokens > 0 && count != expected_tokens)
        return lb_cursor_fail(&c, LB_ERR_CORRUPT_FILE, size, "end of tokens",
                              "the file holds %lld tokens, the model's vocabulary has %lld",
                              (long long)count, (long long)expected_tokens);
    if (count < MIN_TOKENS)
        return lb_cursor_fail(
            &c, LB_ERR_CORRUPT_FILE, size, "end of tokens",
            "the file holds %lld tokens; a llama2.c vocabulary starts with <unk>, <s>, "
            "</s>",
            (long long)count);

    lb_vocab *vocab = NULL;
    char *buffer = NULL;
    if ((status = lb_vocab_create(&vocab, "llama", count, true, true)) != LB_OK) {
        status = lb_error_prefix(status, "%s: ", name);
        goto done;
    }
    buffer = lb_malloc((size_t)max_len * 3 + 1);
    if (!buffer) {
        status = lb_nomem("%s: out of memory for the token buffer", name);
        goto done;
    }
    if ((status = walk_tokens(&c, max_len, vocab, buffer, &count)) != LB_OK)
        goto done;
    vocab->unk_id = 0;
    vocab->bos_id = 1;
    vocab->eos_id = 2;
    vocab->add_bos = 1; /* run.c prepends <s> and never appends </s> */
    vocab->add_eos = 0;
done:
    lb_free(buffer);
    if (status != LB_OK) {
        lb_vocab_free(&vocab);
        return status;
    }
    *out = vocab;
    return LB_OK;
}

lb_status lb_llama2c_tokenizer_load(lb_vocab **out, const char *path, int64_t expected_tokens)
{
    *out = NULL;
    lb_mapped_file *file = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    status = lb_llama2c_tokenizer_parse(out, path, file->data, file->size, expected_tokens);
    lb_mapped_file_close(&file);
    return status;
}
