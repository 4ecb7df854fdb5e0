/* llama2.c reader: stories260K and tok512.bin, synthetic models, the malformed corpus, seeded
 * mutations and failing allocations. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/rng.h"
#include "formats/llama2c_internal.h"
#include "test_util.h"

/* Defaults; LB_LLAMA2C_FUZZ_SEED and LB_LLAMA2C_FUZZ_ITERATIONS override them. */
#define MUTATION_SEED 0x6c6c616d6132ull
#define MUTATION_ITERATIONS 3000
#define MIN_MODEL_CORPUS 30
#define MIN_TOKENIZER_CORPUS 10

static const char model_rel[] = "models/stories260K/stories260K.bin";
static const char tokenizer_rel[] = "models/stories260K/tok512.bin";

static uint8_t *read_file(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data && n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (uint64_t)(n > 0 ? n : 0);
    return data;
}

/* One float of the raw file, read with fread so the check does not share code with mmap. */
static float raw_float(FILE *f, uint64_t offset)
{
    float v = NAN;
    if (fseek(f, (long)offset, SEEK_SET) != 0 || fread(&v, sizeof v, 1, f) != 1)
        fprintf(stderr, "cannot read offset %llu\n", (unsigned long long)offset);
    return v;
}

/* A header and its tensor sizes in floats, in llama2.c's storage order (run.c
 * memory_map_weights), written out independently of the reader's table. */
typedef struct expect {
    int64_t dim, hidden, layers, heads, kv_heads, vocab, seq;
    bool shared;
} expect;

typedef struct expect_tensor {
    char name[48];
    int n_dims;
    int64_t ne0, ne1;
    uint64_t offset; /* bytes from the start of the file */
} expect_tensor;

/* Fills `out` in the order of llama2c.h; returns the count. Offsets follow run.c's pointer walk. */
static int64_t expected_tensors(const expect *e, expect_tensor *out)
{
    const int64_t hs = e->dim / e->heads, kv = hs * e->kv_heads, L = e->layers;
    const int64_t d = e->dim, h = e->hidden;
    /* Start of each array, in floats after the header. */
    int64_t p = 0;
    const int64_t embd = p;
    p += e->vocab * d;
    const int64_t rms_att = p;
    p += L * d;
    const int64_t wq = p;
    p += L * d * d;
    const int64_t wk = p;
    p += L * kv * d;
    const int64_t wv = p;
    p += L * kv * d;
    const int64_t wo = p;
    p += L * d * d;
    const int64_t rms_ffn = p;
    p += L * d;
    const int64_t w1 = p;
    p += L * h * d;
    const int64_t w2 = p;
    p += L * d * h;
    const int64_t w3 = p;
    p += L * h * d;
    const int64_t rms_final = p;
    p += d;
    p += e->seq * hs / 2 * 2; /* freq_cis_real and _imag */
    const int64_t wcls = p;
    int64_t n = 0;
#define ADD(nm, nd, a, b, at)                                                                 \
    do {                                                                                      \
        expect_tensor *t_ = &out[n++];                                                        \
        snprintf(t_->name, sizeof t_->name, "%s", nm);                                        \
        t_->n_dims = nd, t_->ne0 = a, t_->ne1 = b;                                            \
        t_->offset = 28 + 4 * (uint64_t)(at);                                                 \
    } while (0)
    ADD("token_embd.weight", 2, d, e->vocab, embd);
    for (int64_t l = 0; l < L; l++) {
        char nm[48];
#define LAYER(suffix, nd, a, b, at)                                                           \
    do {                                                                                      \
        snprintf(nm, sizeof nm, "blk.%lld.%s", (long long)l, suffix);                         \
        ADD(nm, nd, a, b, at);                                                                \
    } while (0)
        LAYER("attn_norm.weight", 1, d, 1, rms_att + l * d);
        LAYER("attn_q.weight", 2, d, d, wq + l * d * d);
        LAYER("attn_k.weight", 2, d, kv, wk + l * kv * d);
        LAYER("attn_v.weight", 2, d, kv, wv + l * kv * d);
        LAYER("attn_output.weight", 2, d, d, wo + l * d * d);
        LAYER("ffn_norm.weight", 1, d, 1, rms_ffn + l * d);
        LAYER("ffn_gate.weight", 2, d, h, w1 + l * h * d);
        LAYER("ffn_down.weight", 2, h, d, w2 + l * d * h);
        LAYER("ffn_up.weight", 2, d, h, w3 + l * h * d);
#undef LAYER
    }
    ADD("output_norm.weight", 1, d, 1, rms_final);
    if (!e->shared)
        ADD("output.weight", 2, d, e->vocab, wcls);
#undef ADD
    return n;
}

/* Every tensor's name and shape, and its first, middle and last element against the raw file. */
static void check_tensors(const lb_llama2c *m, const expect *e, const char *path,
                          const uint8_t *bytes)
{
    expect_tensor want[64];
    int64_t n = expected_tensors(e, want);
    CHECK(m->n_tensors == n);
    FILE *f = path ? fopen(path, "rb") : NULL;
    for (int64_t i = 0; i < n && i < m->n_tensors; i++) {
        const lb_llama2c_tensor *t = &m->tensors[i];
        const expect_tensor *w = &want[i];
        if (strcmp(t->name, w->name) != 0 || t->n_dims != w->n_dims || t->ne[0] != w->ne0 ||
            t->ne[1] != w->ne1 || t->ne[2] != 1 || t->ne[3] != 1 ||
            t->nbytes != (uint64_t)(w->ne0 * w->ne1) * 4) {
            fprintf(stderr, "tensor %lld: got %s {%lld, %lld} n_dims %d, want %s {%lld, %lld}\n",
                    (long long)i, t->name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims,
                    w->name, (long long)w->ne0, (long long)w->ne1);
            test_failures++;
            continue;
        }
        const uint64_t count = (uint64_t)(w->ne0 * w->ne1);
        const uint64_t picks[3] = {0, count / 2 + 1 < count ? count / 2 + 1 : 0, count - 1};
        for (int k = 0; k < 3; k++) {
            float raw;
            uint64_t at = w->offset + 4 * picks[k];
            if (f)
                raw = raw_float(f, at);
            else
                memcpy(&raw, bytes + at, sizeof raw);
            if (memcmp(&raw, &t->data[picks[k]], sizeof raw) != 0) {
                fprintf(stderr, "%s[%llu]: reader %g, file %g at offset %llu\n", t->name,
                        (unsigned long long)picks[k], (double)t->data[picks[k]], (double)raw,
                        (unsigned long long)at);
                test_failures++;
            }
        }
    }
    if (f)
        fclose(f);
}

static void check_hparams(const lb_hparams *hp, const expect *e)
{
    CHECK(strcmp(hp->arch, "llama") == 0);
    CHECK(hp->dim == e->dim);
    CHECK(hp->hidden_dim == e->hidden);
    CHECK(hp->n_layers == e->layers);
    CHECK(hp->n_heads == e->heads);
    CHECK(hp->n_kv_heads == e->kv_heads);
    CHECK(hp->head_dim == e->dim / e->heads);
    CHECK(hp->vocab_size == e->vocab);
    CHECK(hp->context_length == e->seq);
    CHECK(hp->rope_theta == 10000.0);
    CHECK(hp->rms_eps == 1e-5);
    CHECK(hp->tied_embeddings == e->shared);
}

static void test_real_model(const char *path)
{
    static const expect e = {64, 172, 5, 8, 4, 512, 512, true};
    lb_llama2c *m = NULL;
    CHECK_OK(lb_llama2c_open(&m, path));
    if (!m)
        return;
    check_hparams(&m->hparams, &e);
    CHECK(m->n_tensors == 47);
    CHECK(m->file != NULL && strcmp(m->path, path) == 0);
    check_tensors(m, &e, path, NULL);
    lb_llama2c_close(&m);
    CHECK(m == NULL);
    lb_llama2c_close(&m);
    lb_llama2c_close(NULL);

    uint64_t size = 0;
    uint8_t *bytes = read_file(path, &size);
    CHECK(bytes != NULL);
    if (!bytes)
        return;
    CHECK(lb_llama2c_probe(bytes, size));
    CHECK(!lb_llama2c_probe(bytes, size - 4));
    CHECK(!lb_llama2c_probe(bytes, 27));
    CHECK(!lb_llama2c_probe(NULL, 0));
    CHECK_OK(lb_llama2c_open_memory(&m, "stories", bytes, size));
    if (m) {
        CHECK(m->file == NULL && strcmp(m->path, "stories") == 0);
        check_hparams(&m->hparams, &e);
        check_tensors(m, &e, NULL, bytes);
        /* Tensors point into the caller's buffer, not a copy. */
        CHECK((const uint8_t *)m->tensors[0].data == bytes + 28);
    }
    lb_llama2c_close(&m);

    /* Probing must not disturb the caller's last error. */
    lb_error(LB_ERR_IO, "sentinel");
    CHECK(!lb_llama2c_probe(bytes, size - 1));
    CHECK(strcmp(lb_last_error(), "sentinel") == 0);

    /* A misaligned buffer would make the float pointers misaligned. */
    uint8_t *shifted = malloc(size + 1);
    memcpy(shifted + 1, bytes, size);
    CHECK(lb_llama2c_open_memory(&m, "shifted", shifted + 1, size) == LB_ERR_INVALID_ARG);
    CHECK(m == NULL);
    free(shifted);

    /* An extra float at the end is corrupt, naming the offset where the file should end. */
    uint8_t *longer = malloc(size + 4);
    memcpy(longer, bytes, size);
    memset(longer + size, 0, 4);
    char expect_msg[128];
    snprintf(expect_msg, sizeof expect_msg, "longer: end of tensors at offset %llu: 4 trailing",
             (unsigned long long)size);
    CHECK(lb_llama2c_open_memory(&m, "longer", longer, size + 4) == LB_ERR_CORRUPT_FILE);
    CHECK(strstr(lb_last_error(), expect_msg) != NULL);
    free(longer);
    free(bytes);
}

/* A synthetic checkpoint in memory (header + a deterministic f32 ramp). */
static uint8_t *make_model(const expect *e, uint64_t *size)
{
    expect_tensor t[64];
    int64_t n = expected_tensors(e, t);
    /* The end: after wcls when unshared, else after the rotary tables that follow output_norm. */
    const int64_t hs = e->dim / e->heads;
    uint64_t end = e->shared ? t[n - 1].offset + 4 * (uint64_t)e->dim +
                                   4 * (uint64_t)(e->seq * hs / 2 * 2)
                             : t[n - 1].offset + 4 * (uint64_t)(e->vocab * e->dim);
    uint8_t *data = malloc(end);
    int32_t header[7] = {(int32_t)e->dim,      (int32_t)e->hidden, (int32_t)e->layers,
                         (int32_t)e->heads,    (int32_t)e->kv_heads,
                         (int32_t)(e->shared ? e->vocab : -e->vocab), (int32_t)e->seq};
    memcpy(data, header, sizeof header);
    for (uint64_t i = 28; i < end; i += 4) {
        float v = (float)((i / 4) % 97) / 16.0f - 3.0f;
        memcpy(data + i, &v, 4);
    }
    *size = end;
    return data;
}

static void test_synthetic(void)
{
    /* Unshared classifier: output.weight is the last tensor, at the end of the file. */
    const expect unshared = {8, 16, 2, 2, 1, 16, 4, false};
    uint64_t size;
    uint8_t *data = make_model(&unshared, &size);
    lb_llama2c *m = NULL;
    CHECK(lb_llama2c_probe(data, size));
    CHECK_OK(lb_llama2c_open_memory(&m, "unshared", data, size));
    if (m) {
        check_hparams(&m->hparams, &unshared);
        check_tensors(m, &unshared, NULL, data);
        CHECK(m->n_tensors == 1 + 9 * 2 + 2);
        const lb_llama2c_tensor *out = &m->tensors[m->n_tensors - 1];
        CHECK(strcmp(out->name, "output.weight") == 0);
        CHECK((const uint8_t *)out->data + out->nbytes == data + size);
    }
    lb_llama2c_close(&m);
    free(data);

    /* MHA (kv heads = heads), one layer. */
    const expect mha = {16, 24, 1, 4, 4, 10, 3, true};
    data = make_model(&mha, &size);
    CHECK_OK(lb_llama2c_open_memory(&m, "mha", data, size));
    if (m) {
        check_hparams(&m->hparams, &mha);
        check_tensors(m, &mha, NULL, data);
    }
    lb_llama2c_close(&m);
    /* The same file one float short names the rotary table it cuts. */
    CHECK(lb_llama2c_open_memory(&m, "short", data, size - 4) == LB_ERR_CORRUPT_FILE);
    CHECK(strstr(lb_last_error(), "short: tensor 'freq_cis_imag' at offset ") != NULL);
    free(data);
}

static void test_tokenizer(const char *path)
{
    lb_vocab *v = NULL;
    CHECK_OK(lb_llama2c_tokenizer_load(&v, path, 512));
    if (!v)
        return;
    CHECK(v->n_tokens == 512);
    CHECK(strcmp(v->model, "llama") == 0);
    CHECK(v->bos_id == 1 && v->eos_id == 2 && v->unk_id == 0 && v->pad_id == -1);
    CHECK(v->add_bos == 1 && v->add_eos == 0);
    CHECK(strcmp(v->tokens[0], "<unk>") == 0 && v->token_types[0] == LB_TOKEN_UNKNOWN);
    CHECK(strcmp(v->tokens[1], "<s>") == 0 && v->token_lengths[1] == 3);
    CHECK(strcmp(v->tokens[2], "</s>") == 0 && v->token_lengths[2] == 4);
    CHECK(v->token_types[1] == LB_TOKEN_CONTROL && v->token_types[2] == LB_TOKEN_CONTROL);
    /* tok512.bin: byte fallback tokens <0x00>..<0xFF> at ids 3..258, then merges. */
    int64_t bytes = 0, spaces = 0, normal = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        if (v->token_types[i] == LB_TOKEN_BYTE) {
            char want[8];
            snprintf(want, sizeof want, "<0x%02X>", (unsigned)(i - 3));
            CHECK(strcmp(v->tokens[i], want) == 0);
            bytes++;
        }
        if (v->token_types[i] == LB_TOKEN_NORMAL)
            normal++;
        CHECK(strchr(v->tokens[i], ' ') == NULL);
        CHECK(strlen(v->tokens[i]) == v->token_lengths[i]);
        if (strncmp(v->tokens[i], "\xE2\x96\x81", 3) == 0)
            spaces++;
    }
    CHECK(bytes == 256);
    CHECK(normal == 512 - 256 - 3);
    CHECK(spaces > 50);
    /* tok512.bin stores " t" (score 0) and " the" (score -6) at 259 and 265. */
    CHECK(strcmp(v->tokens[259], "\xE2\x96\x81t") == 0 && v->token_lengths[259] == 4);
    CHECK(strcmp(v->tokens[260], "he") == 0 && v->scores[260] == -1.0f);
    CHECK(strcmp(v->tokens[265], "\xE2\x96\x81the") == 0 && v->scores[265] == -6.0f);
    lb_vocab_free(&v);
    CHECK(v == NULL);

    /* The count must match the model's vocabulary when one is given. */
    CHECK(lb_llama2c_tokenizer_load(&v, path, 511) == LB_ERR_CORRUPT_FILE && v == NULL);
    CHECK(strstr(lb_last_error(), "offset") != NULL && strstr(lb_last_error(), path) != NULL);
    CHECK_OK(lb_llama2c_tokenizer_load(&v, path, 0));
    CHECK(v && v->n_tokens == 512);
    lb_vocab_free(&v);
    CHECK(lb_llama2c_tokenizer_load(&v, "/nonexistent/tok.bin", 0) == LB_ERR_IO && v == NULL);
}

/* A failure must be one line naming the input and an offset. */
static bool clean_message(const char *name)
{
    const char *msg = lb_last_error();
    return strchr(msg, '\n') == NULL && strstr(msg, name) != NULL &&
           strstr(msg, "offset") != NULL;
}

/* Messages pinned to "<path>: <field> at offset <N>: <what>". */
static const struct {
    const char *dir, *file, *text;
} pinned[] = {
    {"llama2c", "truncated_header_n_kv_heads.bin", "header.n_kv_heads at offset 16: truncated"},
    {"llama2c", "empty.bin", "header.dim at offset 0: truncated"},
    {"llama2c", "dim_zero.bin", "header.dim at offset 0: 0 is not positive"},
    {"llama2c", "seq_len_negative.bin", "header.seq_len at offset 24: -8 is not positive"},
    {"llama2c", "dim_not_divisible_by_heads.bin", "header.n_heads at offset 12: "},
    {"llama2c", "kv_heads_not_dividing_heads.bin", "header.n_kv_heads at offset 16: "},
    {"llama2c", "odd_head_size.bin", "header.n_heads at offset 12: head size 3"},
    {"llama2c", "cut_in_blk_1_ffn_up.bin", "tensor 'blk.1.ffn_up.weight' at offset 4764: "},
    {"llama2c", "cut_in_blk_1_attn_k.bin", "tensor 'blk.1.attn_k.weight' at offset 1244: "},
    {"llama2c", "cut_in_token_embd.bin", "tensor 'token_embd.weight' at offset 28: "},
    {"llama2c", "cut_in_output_unshared.bin", "tensor 'output.weight' at offset 5372: "},
    {"llama2c", "trailing_4_bytes.bin", "end of tensors at offset 5372: 4 trailing bytes"},
    {"tokenizer", "truncated_max_token_length.bin", "max_token_length at offset 0: truncated"},
    {"tokenizer", "length_negative.bin", "token[5] length at offset 76: -1 is negative"},
    {"tokenizer", "length_exceeds_max.bin", "token[4] length at offset 62: 7 exceeds"},
    {"tokenizer", "length_past_eof.bin", "token[15] bytes at offset 183: "},
    {"tokenizer", "truncated_score.bin", "token[9] score at offset 112: truncated"},
    {"tokenizer", "score_nan.bin", "token[7] score at offset 92: "},
};

static lb_status open_corpus_file(const char *dir, const char *path, const uint8_t *bytes,
                                  uint64_t size)
{
    if (strcmp(dir, "llama2c") == 0) {
        lb_llama2c *m = NULL;
        /* The format detector must not claim a file the reader rejects. */
        CHECK(!lb_llama2c_probe(bytes, size));
        lb_status status = lb_llama2c_open(&m, path);
        CHECK(m == NULL);
        lb_llama2c_close(&m);
        return status;
    }
    lb_vocab *v = NULL;
    lb_status status = lb_llama2c_tokenizer_load(&v, path, 0);
    CHECK(v == NULL);
    lb_vocab_free(&v);
    return status;
}

static void test_corpus(const char *sub, int64_t min_files)
{
    char dir[1024], rel[64], path[2048];
    char *names[512];
    snprintf(rel, sizeof rel, "tests/malformed/%s", sub);
    size_t n = test_list_corpus(rel, ".bin", names, sizeof names / sizeof names[0], dir,
                                sizeof dir);
    CHECK((int64_t)n >= min_files);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint64_t size = 0;
        uint8_t *bytes = read_file(path, &size);
        CHECK(bytes != NULL);
        lb_status status = open_corpus_file(sub, path, bytes, size);
        printf("%s/%-40s %s\n", sub, names[i], status == LB_OK ? "opened" : lb_last_error());
        for (size_t k = 0; k < sizeof pinned / sizeof pinned[0]; k++) {
            if (strcmp(sub, pinned[k].dir) == 0 && strcmp(names[i], pinned[k].file) == 0 &&
                !strstr(lb_last_error(), pinned[k].text)) {
                fprintf(stderr, "%s: message lacks \"%s\"\n", names[i], pinned[k].text);
                test_failures++;
            }
        }
        if ((status != LB_ERR_CORRUPT_FILE && status != LB_ERR_UNSUPPORTED) ||
            !clean_message(path)) {
            fprintf(stderr, "%s/%s: got %s: %s\n", sub, names[i], lb_status_name(status),
                    status == LB_OK ? "opened" : lb_last_error());
            test_failures++;
        }
        free(bytes);
        free(names[i]);
    }
}

/* Reads everything an accepted input exposes, so that ASan sees a pointer past the buffer. */
static double touch_model(const lb_llama2c *m)
{
    double sum = 0;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const lb_llama2c_tensor *t = &m->tensors[i];
        uint64_t count = t->nbytes / 4;
        if (count > 0)
            sum += (double)t->data[0] + (double)t->data[count - 1] + (double)strlen(t->name);
    }
    return sum;
}

static uint64_t touch_vocab(const lb_vocab *v)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        for (uint32_t j = 0; j < v->token_lengths[i]; j++)
            sum += (uint8_t)v->tokens[i][j];
        sum += (uint64_t)v->token_types[i] + (v->scores[i] < 0);
    }
    return sum;
}

/* Overwrites 4 bytes with a value that often breaks a header field or a token length. */
static void poke_int(uint8_t *buf, uint64_t at, uint64_t r)
{
    static const int32_t values[] = {0,  -1, 1, 2, 3, 7, 8, 16, 64, INT32_MAX, INT32_MIN,
                                     -16, 1 << 20, (1 << 20) + 1, 1 << 24, 65536};
    int32_t v = values[r % (sizeof values / sizeof values[0])];
    memcpy(buf + at, &v, 4);
}

/* Seeded mutations of valid inputs, each parsed from a heap copy of exactly the mutated size. */
static void test_mutations(const uint8_t *const *inputs, const uint64_t *sizes, int n_inputs)
{
    const char *seed_env = getenv("LB_LLAMA2C_FUZZ_SEED");
    const char *n_env = getenv("LB_LLAMA2C_FUZZ_ITERATIONS");
    const uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : MUTATION_SEED;
    const int64_t iterations = n_env ? strtoll(n_env, NULL, 0) : MUTATION_ITERATIONS;
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t opened = 0, rejected = 0;
    printf("mutation seed %llu, %lld iterations (LB_LLAMA2C_FUZZ_SEED to change)\n",
           (unsigned long long)seed, (long long)iterations);
    for (int64_t it = 0; it < iterations; it++) {
        const int which = (int)(lb_rng_next(&rng) % (uint64_t)n_inputs);
        uint64_t n = sizes[which];
        uint8_t *buf = calloc(1, n + 64);
        memcpy(buf, inputs[which], n);
        int mutations = 1 + (int)(lb_rng_next(&rng) % 3);
        for (int k = 0; k < mutations && n > 0; k++) {
            uint64_t r = lb_rng_next(&rng);
            /* Bias toward the head of the file, where the fields are. */
            uint64_t at = lb_rng_next(&rng) % ((r >> 40) % 2 ? n : (n < 64 ? n : 64));
            switch (r % 6) {
            case 0: buf[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
            case 1: buf[at] = (uint8_t)(r >> 16); break;
            case 2: n = at; break;
            case 3: n += (r >> 20) % 8; break; /* zero bytes past the valid end */
            default:
                if (at + 4 <= n)
                    poke_int(buf, at & ~(uint64_t)3, r >> 24);
                break;
            }
        }
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        free(buf);
        lb_status status;
        if (which < n_inputs - 1) {
            lb_llama2c *m = NULL;
            bool probed = lb_llama2c_probe(exact, n);
            status = lb_llama2c_open_memory(&m, "mutant", exact, n);
            CHECK(probed == (status == LB_OK));
            if (m) {
                volatile double sink = touch_model(m);
                (void)sink;
            }
            CHECK((status == LB_OK) == (m != NULL));
            lb_llama2c_close(&m);
        } else {
            lb_vocab *v = NULL;
            status = lb_llama2c_tokenizer_parse(&v, "mutant", exact, n, 0);
            if (v) {
                volatile uint64_t sink = touch_vocab(v);
                (void)sink;
            }
            CHECK((status == LB_OK) == (v != NULL));
            lb_vocab_free(&v);
        }
        if (status == LB_OK) {
            opened++;
        } else {
            rejected++;
            if ((status != LB_ERR_CORRUPT_FILE && status != LB_ERR_UNSUPPORTED) ||
                !clean_message("mutant")) {
                fprintf(stderr, "seed %llu iteration %lld: %s: %s\n", (unsigned long long)seed,
                        (long long)it, lb_status_name(status), lb_last_error());
                test_failures++;
            }
        }
        free(exact);
    }
    printf("mutations: %lld opened, %lld rejected\n", (long long)opened, (long long)rejected);
    CHECK(rejected > iterations / 2);
    CHECK(opened > 0);
}

/* Allocation k fails for k = 0.. until the call succeeds: every failure is a clean NOMEM. */
static void test_alloc_failures(const char *model_path, const char *tok_path,
                                const uint8_t *model, uint64_t model_size, const uint8_t *tok,
                                uint64_t tok_size)
{
    for (int pass = 0; pass < 4; pass++) {
        if ((pass == 0 && !model_path) || (pass == 2 && !tok_path))
            continue;
        int64_t k;
        for (k = 0; k < 100000; k++) {
            lb_llama2c *m = NULL;
            lb_vocab *v = NULL;
            lb_alloc_fail_after(k);
            lb_status status;
            switch (pass) {
            case 0: status = lb_llama2c_open(&m, model_path); break;
            case 1: status = lb_llama2c_open_memory(&m, "model", model, model_size); break;
            case 2: status = lb_llama2c_tokenizer_load(&v, tok_path, 0); break;
            default: status = lb_llama2c_tokenizer_parse(&v, "tok", tok, tok_size, 0); break;
            }
            lb_alloc_fail_after(-1);
            if (status == LB_OK) {
                CHECK(m != NULL || v != NULL);
                lb_llama2c_close(&m);
                lb_vocab_free(&v);
                break;
            }
            if (status != LB_ERR_NOMEM || m != NULL || v != NULL) {
                fprintf(stderr, "pass %d, allocation %lld failing: %s: %s\n", pass,
                        (long long)k, lb_status_name(status), lb_last_error());
                test_failures++;
                break;
            }
        }
        printf("allocation failures, pass %d: succeeded after %lld failing points\n", pass,
               (long long)k);
        CHECK(k > 0 && k < 100000);
    }
}

/* The tiny tokenizer of tests/malformed/make_llama2c.py, built here for when ../shared is absent. */
static uint8_t *make_tokenizer(uint64_t *size)
{
    static const char *const tokens[] = {"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", "<0x41>",
                                         " t",    "he",      "a b ",     "<0xZZ>", " the"};
    const size_t n = sizeof tokens / sizeof tokens[0];
    uint8_t *data = malloc(4 + n * (8 + 6));
    int32_t max_len = 6;
    uint64_t pos = 4;
    memcpy(data, &max_len, 4);
    for (size_t i = 0; i < n; i++) {
        float score = -(float)i;
        int32_t len = (int32_t)strlen(tokens[i]);
        memcpy(data + pos, &score, 4);
        memcpy(data + pos + 4, &len, 4);
        memcpy(data + pos + 8, tokens[i], (size_t)len);
        pos += 8 + (uint64_t)len;
    }
    *size = pos;
    return data;
}

/* Translation rules on a file that exercises each of them. */
static void test_tokenizer_synthetic(void)
{
    uint64_t size;
    uint8_t *data = make_tokenizer(&size);
    lb_vocab *v = NULL;
    CHECK_OK(lb_llama2c_tokenizer_parse(&v, "tiny", data, size, 10));
    if (v) {
        CHECK(v->n_tokens == 10);
        CHECK(strcmp(v->tokens[1], "<s>") == 0 && strcmp(v->tokens[2], "</s>") == 0);
        CHECK(v->token_types[3] == LB_TOKEN_BYTE && v->token_types[4] == LB_TOKEN_BYTE);
        CHECK(strcmp(v->tokens[5], "\xE2\x96\x81t") == 0 && v->token_types[5] == LB_TOKEN_NORMAL);
        CHECK(strcmp(v->tokens[7], "a\xE2\x96\x81" "b\xE2\x96\x81") == 0);
        CHECK(v->token_lengths[7] == 8);
        CHECK(v->token_types[8] == LB_TOKEN_NORMAL); /* "<0xZZ>" is no byte */
        CHECK(v->scores[9] == -9.0f);
    }
    lb_vocab_free(&v);
    /* A count other than the model's vocabulary is corrupt, reported at the end of the tokens. */
    CHECK(lb_llama2c_tokenizer_parse(&v, "tiny", data, size, 9) == LB_ERR_CORRUPT_FILE);
    CHECK(strstr(lb_last_error(), "tiny: end of tokens at offset ") != NULL);
    CHECK(v == NULL);
    free(data);
}

int main(void)
{
    char model_path[1024], tok_path[1024];
    test_shared_path(model_path, sizeof model_path, model_rel);
    test_shared_path(tok_path, sizeof tok_path, tokenizer_rel);
    uint64_t model_size = 0, tok_size = 0;
    uint8_t *model = read_file(model_path, &model_size);
    uint8_t *tok = read_file(tok_path, &tok_size);
    const bool have_shared = model && tok;
    if (!have_shared)
        printf("%s or %s missing: skipping the real-model checks\n", model_path, tok_path);

    if (have_shared) {
        test_real_model(model_path);
        test_tokenizer(tok_path);
    }
    test_synthetic();
    test_tokenizer_synthetic();
    test_corpus("llama2c", MIN_MODEL_CORPUS);
    test_corpus("tokenizer", MIN_TOKENIZER_CORPUS);

    /* Mutation inputs: small models (the header dominates) and a tokenizer, last. */
    const expect tiny = {8, 16, 2, 2, 1, 16, 4, true};
    const expect tiny_unshared = {8, 16, 1, 4, 2, 5, 2, false};
    uint64_t sizes[3];
    const uint8_t *inputs[3];
    uint8_t *tiny_model = make_model(&tiny, &sizes[0]);
    uint8_t *tiny_unshared_model = make_model(&tiny_unshared, &sizes[1]);
    uint64_t tiny_tok_size;
    uint8_t *tiny_tok = make_tokenizer(&tiny_tok_size);
    inputs[0] = tiny_model;
    inputs[1] = tiny_unshared_model;
    inputs[2] = tok ? tok : tiny_tok;
    sizes[2] = tok ? tok_size : tiny_tok_size;
    test_mutations(inputs, sizes, 3);

    test_alloc_failures(have_shared ? model_path : NULL, have_shared ? tok_path : NULL,
                        model ? model : tiny_model, model ? model_size : sizes[0],
                        tok ? tok : tiny_tok, tok ? tok_size : tiny_tok_size);

    free(tiny_model);
    free(tiny_unshared_model);
    free(tiny_tok);
    free(model);
    free(tok);
    int rc = test_finish("test_llama2c");
    return rc == 0 && !have_shared ? 77 : rc;
}
