/* Packed GGUF tensors read as f32 through the checkpoint's decode hook (lb_kernels_dequantize),
 * and the rule that decides whether text starts with BOS (lb_checkpoint_text_bos). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lowbit.h"
#include "test_util.h"

enum { DIM = 64, VOCAB = 4, K_COLS = 256, K_ROWS = 3 };

/* What a test file says about its tokenizer; NULL / -1 leaves a key out. */
typedef struct vocab_spec {
    const char *model; /* tokenizer.ggml.model; NULL: no tokenizer at all */
    const char *pre;   /* tokenizer.ggml.pre */
    int add_bos;       /* tokenizer.ggml.add_bos_token: 0, 1 or -1 (absent) */
    int bos_id;        /* tokenizer.ggml.bos_token_id or -1 (absent) */
} vocab_spec;

/* Random rows quantized with the kernels' reference quantizer into `out`. */
static void make_packed(lb_type type, int64_t rows, int64_t cols, uint64_t seed, void *out)
{
    const lb_kernel_type *k = lb_kernels_type(type);
    uint64_t row_bytes = 0;
    CHECK(k && lb_type_row_bytes(type, cols, &row_bytes));
    float *x = malloc((size_t)cols * sizeof *x);
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            x[c] = (float)(2.0 * lb_rng_unit(&rng) - 1.0);
        k->quantize_row(x, (uint8_t *)out + (size_t)(r * (int64_t)row_bytes), cols, NULL);
    }
    free(x);
}

static uint8_t embd_q8_0[VOCAB * DIM / 32 * 34];
static uint8_t down_q4_k[K_ROWS * K_COLS / 256 * 144];
static float norm_f32[DIM];

static lb_status write_model(const char *path, const vocab_spec *v)
{
    static const char *const tokens[VOCAB] = {"<unk>", "<s>", "</s>", "a"};
    lb_gguf_writer *w = NULL;
    lb_status status = lb_gguf_writer_create(&w, 32);
    const struct {
        const char *key;
        uint32_t value;
    } hp[] = {{"llama.context_length", 64},   {"llama.embedding_length", DIM},
              {"llama.block_count", 1},       {"llama.feed_forward_length", K_COLS},
              {"llama.attention.head_count", 2}};
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "general.architecture", "llama");
    for (size_t i = 0; i < sizeof hp / sizeof hp[0] && status == LB_OK; i++)
        status = lb_gguf_writer_set_u32(w, hp[i].key, hp[i].value);
    if (status == LB_OK && v->model) {
        status = lb_gguf_writer_set_string(w, "tokenizer.ggml.model", v->model);
        if (status == LB_OK)
            status = lb_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", tokens, NULL,
                                                     VOCAB);
        if (status == LB_OK && v->pre)
            status = lb_gguf_writer_set_string(w, "tokenizer.ggml.pre", v->pre);
        if (status == LB_OK && v->add_bos >= 0)
            status = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos != 0);
        if (status == LB_OK && v->bos_id >= 0)
            status = lb_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos_id);
    }
    const int64_t embd_ne[] = {DIM, VOCAB}, down_ne[] = {K_COLS, K_ROWS}, norm_ne[] = {DIM};
    if (status == LB_OK)
        status = lb_gguf_writer_add_tensor(w, "token_embd.weight", LB_TYPE_Q8_0, 2, embd_ne,
                                           embd_q8_0);
    if (status == LB_OK)
        status = lb_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", LB_TYPE_Q4_K, 2, down_ne,
                                           down_q4_k);
    if (status == LB_OK)
        status = lb_gguf_writer_add_tensor(w, "output_norm.weight", LB_TYPE_F32, 1, norm_ne,
                                           norm_f32);
    if (status == LB_OK)
        status = lb_gguf_writer_write(w, path);
    lb_gguf_writer_free(&w);
    return status;
}

/* Rows [row0, row0 + n) of a packed tensor through the checkpoint equal the reference
 * dequantizer on the same bytes. */
static void check_rows(const lb_checkpoint *ckpt, const char *name, lb_type type,
                       const uint8_t *bytes, int64_t cols, int64_t row0, int64_t n)
{
    int64_t index = lb_checkpoint_find(ckpt, name);
    CHECK(index >= 0);
    uint64_t row_bytes = 0;
    lb_type_row_bytes(type, cols, &row_bytes);
    float *got = malloc((size_t)(n * cols) * sizeof *got);
    float *want = malloc((size_t)(n * cols) * sizeof *want);
    CHECK_OK(lb_checkpoint_read_rows_f32(ckpt, index, row0, n, got));
    lb_kernels_type(type)->dequantize_row(bytes + (size_t)(row0 * (int64_t)row_bytes), want,
                                          n * cols);
    CHECK(memcmp(got, want, (size_t)(n * cols) * sizeof *got) == 0);
    free(got);
    free(want);
}

static void test_decode(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/packed.gguf", dir);
    vocab_spec v = {"llama", NULL, -1, 1};
    CHECK_OK(write_model(path, &v));

    /* Without the hook packed tensors cannot be read; float ones still can. */
    lb_checkpoint *ckpt = NULL;
    CHECK_OK(lb_checkpoint_open(&ckpt, path, NULL));
    if (ckpt) {
        float row[DIM];
        CHECK(lb_checkpoint_read_rows_f32(ckpt, lb_checkpoint_find(ckpt, "token_embd.weight"), 0,
                                          1, row) == LB_ERR_UNSUPPORTED);
        CHECK(strstr(lb_last_error(), "'token_embd.weight' of type Q8_0 cannot be read as f32"));
        CHECK_OK(lb_checkpoint_read_rows_f32(ckpt, lb_checkpoint_find(ckpt, "output_norm.weight"),
                                             0, 1, row));
        CHECK(memcmp(row, norm_f32, sizeof row) == 0);
        lb_checkpoint_close(&ckpt);
    }

    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    CHECK(settings.decode == NULL);
    settings.decode = lb_kernels_dequantize;
    CHECK_OK(lb_checkpoint_open(&ckpt, path, &settings));
    if (ckpt) {
        check_rows(ckpt, "token_embd.weight", LB_TYPE_Q8_0, embd_q8_0, DIM, 0, VOCAB);
        check_rows(ckpt, "token_embd.weight", LB_TYPE_Q8_0, embd_q8_0, DIM, 1, 2);
        check_rows(ckpt, "blk.0.ffn_down.weight", LB_TYPE_Q4_K, down_q4_k, K_COLS, 2, 1);
        float row[DIM];
        CHECK(lb_checkpoint_read_rows_f32(ckpt, 0, 3, 2, row) == LB_ERR_INVALID_ARG);
        lb_checkpoint_close(&ckpt);
    }
}

static void test_dequantize(void)
{
    float out[64];
    /* Whole blocks only, and the message names the type, the count and the block size. */
    CHECK(lb_kernels_dequantize(LB_TYPE_Q8_0, embd_q8_0, 33, out) == LB_ERR_INVALID_ARG);
    CHECK(strstr(lb_last_error(), "33 elements of Q8_0") &&
          strstr(lb_last_error(), "block size 32"));
    CHECK(lb_kernels_dequantize(LB_TYPE_Q8_0, embd_q8_0, -32, out) == LB_ERR_INVALID_ARG);
    CHECK(lb_kernels_dequantize(LB_TYPE_Q8_0, NULL, 32, out) == LB_ERR_INVALID_ARG);
    CHECK(lb_kernels_dequantize((lb_type)99, embd_q8_0, 32, out) == LB_ERR_UNSUPPORTED);
    CHECK(strstr(lb_last_error(), "has no kernels"));
    CHECK_OK(lb_kernels_dequantize(LB_TYPE_Q8_0, NULL, 0, NULL));
    /* F16 decodes like the float conversion. */
    uint16_t h[2] = {0x3c00, 0xc000}; /* 1, -2 */
    CHECK_OK(lb_kernels_dequantize(LB_TYPE_F16, h, 2, out));
    CHECK(out[0] == 1.0f && out[1] == -2.0f);
}

/* llama.cpp's add_bos decision (llama_vocab::impl::load) for each kind of vocabulary. */
static void test_text_bos(const char *dir)
{
    static const struct {
        vocab_spec v;
        int32_t want;
    } cases[] = {
        {{"llama", NULL, -1, 1}, 1},        /* SentencePiece: yes by default */
        {{"llama", NULL, 0, 1}, -1},        /* ... unless the key says no */
        {{"gpt2", "smollm", -1, 1}, -1},    /* byte-level BPE: no by default (SmolLM2) */
        {{"gpt2", NULL, -1, 1}, -1},        /* no pre-tokenizer: llama.cpp's "default" */
        {{"gpt2", "llama-bpe", -1, 1}, 1},  /* Llama 3's pre-tokenizer adds it */
        {{"gpt2", "llama3", -1, 2}, 2},     /* the id is the vocabulary's */
        {{"gpt2", "chameleon", -1, 1}, 1},
        {{"gpt2", "smollm", 1, 1}, 1},      /* the key wins over the default */
        {{"gpt2", "llama-bpe", 0, 1}, -1},
        {{"bert", NULL, -1, 1}, 1},
        {{"t5", NULL, -1, 1}, -1},
        {{"llama", NULL, 1, -1}, -1},       /* no BOS token to add */
        {{NULL, NULL, -1, -1}, -1},         /* no tokenizer */
    };
    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    settings.decode = lb_kernels_dequantize;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/bos%zu.gguf", dir, i);
        CHECK_OK(write_model(path, &cases[i].v));
        lb_checkpoint *ckpt = NULL;
        CHECK_OK(lb_checkpoint_open(&ckpt, path, &settings));
        int32_t got = lb_checkpoint_text_bos(ckpt);
        if (got != cases[i].want) {
            fprintf(stderr, "case %zu (%s, pre %s, add_bos %d): BOS %d, expected %d\n", i,
                    cases[i].v.model ? cases[i].v.model : "none",
                    cases[i].v.pre ? cases[i].v.pre : "none", cases[i].v.add_bos, (int)got,
                    (int)cases[i].want);
            test_failures++;
        }
        lb_checkpoint_close(&ckpt);
        unlink(path);
    }
    CHECK(lb_checkpoint_text_bos(NULL) == -1);
}

int main(void)
{
    char dir[] = "/tmp/lowbit-test-packed-read-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_packed(LB_TYPE_Q8_0, VOCAB, DIM, 11, embd_q8_0);
    make_packed(LB_TYPE_Q4_K, K_ROWS, K_COLS, 12, down_q4_k);
    for (int i = 0; i < DIM; i++)
        norm_f32[i] = 1.0f + (float)i / DIM;
    test_dequantize();
    test_decode(dir);
    test_text_bos(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/packed.gguf", dir);
    unlink(path);
    rmdir(dir);
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    else
        printf("packed_read: all checks passed\n");
    return test_failures ? 1 : 0;
}
