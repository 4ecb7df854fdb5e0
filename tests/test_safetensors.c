/* safetensors reader tests: real checkpoints built by make_hf_checkpoint.py, the malformed
 * corpus, random mutations and allocation failures. */
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc_internal.h"
#include "common/half_internal.h"
#include "formats/safetensors_internal.h"
#include "test_util.h"

/* ---- helpers ---- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, size, f) == size);
    fclose(f);
}

/* A safetensors file from a JSON header and `data_size` bytes of data (value i & 0xff). */
static uint8_t *make_st(const char *header, size_t data_size, size_t *size)
{
    size_t n = strlen(header);
    *size = 8 + n + data_size;
    uint8_t *buf = malloc(*size);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_size; i++)
        buf[8 + n + i] = (uint8_t)i;
    return buf;
}

static void write_st(const char *dir, const char *name, const char *header, size_t data_size)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size;
    uint8_t *buf = make_st(header, data_size, &size);
    write_file(path, buf, size);
    free(buf);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, text, strlen(text));
}

/* The message of a failed open: one line, naming the file and an offset. */
static void check_message(const char *path_part)
{
    const char *msg = lb_last_error();
    CHECK(strstr(msg, path_part) != NULL);
    CHECK(strstr(msg, "offset") != NULL);
    CHECK(strchr(msg, '\n') == NULL);
    if (!strstr(msg, path_part) || !strstr(msg, "offset"))
        fprintf(stderr, "  message: %s\n", msg);
}

/* ---- the reference model, read directly from stories260K.bin ---- */

typedef struct model_ref {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float *weights; /* everything after the header */
    size_t n_floats;
} model_ref;

static int load_model(model_ref *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int32_t h[7];
    if (fread(h, sizeof h, 1, f) != 1) {
        fclose(f);
        return -1;
    }
    m->dim = h[0], m->hidden = h[1], m->n_layers = h[2], m->n_heads = h[3];
    m->n_kv_heads = h[4], m->vocab = abs(h[5]), m->seq_len = h[6];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 28, SEEK_SET);
    m->n_floats = (size_t)(size - 28) / sizeof(float);
    m->weights = malloc(m->n_floats * sizeof(float));
    size_t got = fread(m->weights, sizeof(float), m->n_floats, f);
    fclose(f);
    return got == m->n_floats ? 0 : -1;
}

typedef struct expected_tensor {
    char name[96];
    const float *ref; /* rows x cols, llama2.c (GGUF) row order */
    int64_t rows, cols;
    int64_t permute_heads; /* q/k: HF rows are the half-split rotary order */
} expected_tensor;

/* The 47 tensors of stories260K in HF names, in the order the script writes them. */
static size_t expected_tensors(const model_ref *m, expected_tensor *out)
{
    int64_t dim = m->dim, hid = m->hidden, L = m->n_layers;
    int64_t kv = dim * m->n_kv_heads / m->n_heads;
    const float *p = m->weights;
    const float *embed = p;
    p += (size_t)m->vocab * dim;
    const float *rms_att = p;
    p += L * dim;
    const float *wq = p;
    p += L * dim * dim;
    const float *wk = p;
    p += L * kv * dim;
    const float *wv = p;
    p += L * kv * dim;
    const float *wo = p;
    p += L * dim * dim;
    const float *rms_ffn = p;
    p += L * dim;
    const float *w1 = p;
    p += L * hid * dim;
    const float *w2 = p;
    p += L * dim * hid;
    const float *w3 = p;
    p += L * hid * dim;
    const float *rms_final = p;
    size_t n = 0;
#define ADD(nm, r, nrows, ncols, heads)                                                       \
    do {                                                                                      \
        out[n] = (expected_tensor){"", (r), (nrows), (ncols), (heads)};                       \
        snprintf(out[n].name, sizeof out[n].name, "%s", (nm));                                \
        n++;                                                                                  \
    } while (0)
    ADD("model.embed_tokens.weight", embed, m->vocab, dim, 0);
    for (int64_t l = 0; l < L; l++) {
        char name[96];
#define LAYER(suffix, r, nrows, ncols, heads)                                                 \
    do {                                                                                      \
        snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, (suffix));          \
        ADD(name, (r), (nrows), (ncols), (heads));                                            \
    } while (0)
        LAYER("input_layernorm.weight", rms_att + l * dim, 1, dim, 0);
        LAYER("self_attn.q_proj.weight", wq + l * dim * dim, dim, dim, m->n_heads);
        LAYER("self_attn.k_proj.weight", wk + l * kv * dim, kv, dim, m->n_kv_heads);
        LAYER("self_attn.v_proj.weight", wv + l * kv * dim, kv, dim, 0);
        LAYER("self_attn.o_proj.weight", wo + l * dim * dim, dim, dim, 0);
        LAYER("post_attention_layernorm.weight", rms_ffn + l * dim, 1, dim, 0);
        LAYER("mlp.gate_proj.weight", w1 + l * hid * dim, hid, dim, 0);
        LAYER("mlp.down_proj.weight", w2 + l * dim * hid, dim, hid, 0);
        LAYER("mlp.up_proj.weight", w3 + l * hid * dim, hid, dim, 0);
#undef LAYER
    }
    ADD("model.norm.weight", rms_final, 1, dim, 0);
#undef ADD
    return n;
}

static float element(const lb_safetensors_tensor *t, int64_t i)
{
    const uint8_t *p = t->data;
    if (t->type == LB_TYPE_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t->type == LB_TYPE_BF16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}

/* Checks every tensor of an opened stories260K checkpoint against the llama2.c values. */
static void check_checkpoint(const lb_safetensors *st, const model_ref *m, lb_type type,
                             int n_files)
{
    static expected_tensor want[64];
    size_t n_want = expected_tensors(m, want);
    CHECK(st->n_tensors == (int64_t)n_want);
    CHECK(st->n_files == n_files);
    CHECK(lb_safetensors_find(st, "model.layers.9.mlp.up_proj.weight") == -1);
    CHECK(lb_safetensors_find(st, "") == -1);
    if (n_files == 1)
        CHECK(st->n_tensors > 0 && strcmp(st->tensors[0].name, "model.embed_tokens.weight") == 0);
    int64_t mismatches = 0;
    for (size_t k = 0; k < n_want; k++) {
        const expected_tensor *e = &want[k];
        int64_t i = lb_safetensors_find(st, e->name);
        CHECK(i >= 0);
        if (i < 0) {
            fprintf(stderr, "  missing %s\n", e->name);
            continue;
        }
        const lb_safetensors_tensor *t = &st->tensors[i];
        CHECK(strcmp(t->name, e->name) == 0);
        CHECK(t->type == type);
        CHECK(t->n_dims == (e->rows == 1 ? 1 : 2));
        CHECK(t->ne[0] == e->cols && t->ne[1] == e->rows && t->ne[2] == 1 && t->ne[3] == 1);
        size_t esize = type == LB_TYPE_F32 ? 4 : 2;
        CHECK(t->nbytes == (uint64_t)(e->rows * e->cols) * esize);
        CHECK(t->shard >= 0 && t->shard < st->n_files);
        if (t->shard >= 0 && t->shard < st->n_files) {
            const lb_mapped_file *f = st->files[t->shard];
            const uint8_t *d = t->data;
            CHECK(d >= f->data + 8 && d + t->nbytes <= f->data + f->size);
        }
        for (int64_t r = 0; r < e->rows; r++) {
            int64_t src = r;
            if (e->permute_heads) {
                /* HF row (head, half, i) holds GGUF row (head, i, half). */
                int64_t hd = e->rows / e->permute_heads;
                int64_t head = r / hd, within = r % hd;
                src = head * hd + 2 * (within % (hd / 2)) + within / (hd / 2);
            }
            for (int64_t c = 0; c < e->cols; c++) {
                float ref = e->ref[src * e->cols + c];
                float got = element(t, r * e->cols + c);
                float expect = type == LB_TYPE_F32    ? ref
                               : type == LB_TYPE_BF16 ? lb_bf16_to_f32(lb_f32_to_bf16(ref))
                                                      : lb_f16_to_f32(lb_f32_to_f16(ref));
                /* bf16 keeps 8 significant bits: within half an ulp, 2^-9 relative. */
                float tol = type == LB_TYPE_F32    ? 0.0f
                            : type == LB_TYPE_BF16 ? fabsf(ref) * 0x1p-8f
                                                   : fabsf(ref) * 0x1p-10f + 0x1p-24f;
                if (got != expect || fabsf(got - ref) > tol)
                    mismatches++;
            }
        }
    }
    CHECK(mismatches == 0);
    if (mismatches)
        fprintf(stderr, "  %lld values differ from stories260K.bin\n", (long long)mismatches);
}

static int run_script(const char *script, const char *outdir, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %s", script, outdir, args);
    int rc = system(cmd);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  failed: %s\n", cmd);
    return rc;
}

static void test_checkpoints(const char *tmp, const model_ref *m)
{
    char script[1024];
    test_source_path(script, sizeof script, "tests/make_hf_checkpoint.py");
    static const struct {
        const char *dir, *args;
        lb_type type;
        int n_files;
    } cases[] = {
        {"f32", "", LB_TYPE_F32, 1},
        {"f32x2", "--shards 2", LB_TYPE_F32, 2},
        {"bf16", "--dtype bf16", LB_TYPE_BF16, 1},
        {"bf16x2", "--shards 2 --dtype bf16", LB_TYPE_BF16, 2},
        {"f16x3", "--shards 3 --dtype f16", LB_TYPE_F16, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[1024], path[1200];
        snprintf(dir, sizeof dir, "%s/%s", tmp, cases[c].dir);
        if (run_script(script, dir, cases[c].args) != 0)
            continue;
        lb_safetensors *st = NULL;
        CHECK_OK(lb_safetensors_open(&st, dir));
        if (st)
            check_checkpoint(st, m, cases[c].type, cases[c].n_files);
        lb_safetensors_close(&st);
        CHECK(st == NULL);
        /* The file itself (or the index) rather than the directory. */
        snprintf(path, sizeof path, "%s/%s", dir,
                 cases[c].n_files == 1 ? "model.safetensors" : "model.safetensors.index.json");
        CHECK_OK(lb_safetensors_open(&st, path));
        if (st)
            check_checkpoint(st, m, cases[c].type, cases[c].n_files);
        lb_safetensors_close(&st);
    }
    /* Allocation failures on the sharded path come back as NOMEM without leaks. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bf16x2", tmp);
    int64_t k;
    for (k = 0; k < 100000; k++) {
        lb_safetensors *st = NULL;
        lb_alloc_fail_after(k);
        lb_status s = lb_safetensors_open(&st, dir);
        lb_alloc_fail_after(-1);
        if (s == LB_OK) {
            check_checkpoint(st, m, LB_TYPE_BF16, 2);
            lb_safetensors_close(&st);
            break;
        }
        CHECK(s == LB_ERR_NOMEM && st == NULL);
        if (s != LB_ERR_NOMEM) {
            fprintf(stderr, "  alloc fail after %lld: %s\n", (long long)k, lb_last_error());
            break;
        }
    }
    printf("sharded open succeeded after %lld failed allocation points\n", (long long)k);
}

/* ---- the malformed corpus ---- */

static void test_corpus(void)
{
    static const struct {
        const char *name;
        lb_status status;
    } corpus[] = {
        {"file_shorter_than_length", LB_ERR_CORRUPT_FILE},
        {"header_length_past_end", LB_ERR_CORRUPT_FILE},
        {"header_length_zero", LB_ERR_CORRUPT_FILE},
        {"header_length_huge", LB_ERR_CORRUPT_FILE},
        {"header_not_json", LB_ERR_CORRUPT_FILE},
        {"header_json_array", LB_ERR_CORRUPT_FILE},
        {"header_truncated_json", LB_ERR_CORRUPT_FILE},
        {"header_invalid_utf8", LB_ERR_CORRUPT_FILE},
        {"duplicate_tensor_names", LB_ERR_CORRUPT_FILE},
        {"metadata_not_strings", LB_ERR_CORRUPT_FILE},
        {"entry_not_object", LB_ERR_CORRUPT_FILE},
        {"dtype_missing", LB_ERR_CORRUPT_FILE},
        {"dtype_not_string", LB_ERR_CORRUPT_FILE},
        {"dtype_unknown", LB_ERR_CORRUPT_FILE},
        {"unsupported_dtype_i32", LB_ERR_UNSUPPORTED},
        {"shape_missing", LB_ERR_CORRUPT_FILE},
        {"shape_not_list", LB_ERR_CORRUPT_FILE},
        {"shape_negative", LB_ERR_CORRUPT_FILE},
        {"shape_float", LB_ERR_CORRUPT_FILE},
        {"shape_product_overflow", LB_ERR_CORRUPT_FILE},
        {"unsupported_shape_5d", LB_ERR_UNSUPPORTED},
        {"data_offsets_missing", LB_ERR_CORRUPT_FILE},
        {"data_offsets_three", LB_ERR_CORRUPT_FILE},
        {"data_offsets_reversed", LB_ERR_CORRUPT_FILE},
        {"data_offsets_past_end", LB_ERR_CORRUPT_FILE},
        {"data_offsets_overlapping", LB_ERR_CORRUPT_FILE},
        {"size_mismatch_with_shape", LB_ERR_CORRUPT_FILE},
    };
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "tests/malformed/safetensors/%s.safetensors", corpus[i].name);
        test_source_path(path, sizeof path, rel);
        lb_safetensors *st = NULL;
        lb_error_clear();
        lb_status s = lb_safetensors_open(&st, path);
        CHECK(s == corpus[i].status);
        CHECK(st == NULL);
        if (s != corpus[i].status)
            fprintf(stderr, "  %s: got %s: %s\n", corpus[i].name, lb_status_name(s),
                    lb_last_error());
        check_message(corpus[i].name);
    }
    /* Unsupported dtypes name the tensor and the dtype. */
    char path[1024];
    test_source_path(path, sizeof path,
                     "tests/malformed/safetensors/unsupported_dtype_i32.safetensors");
    lb_safetensors *st = NULL;
    lb_safetensors_open(&st, path);
    CHECK(strstr(lb_last_error(), "'a'") && strstr(lb_last_error(), "I32"));
    /* Data ranges report the file offset 8 + N + begin. */
    test_source_path(path, sizeof path,
                     "tests/malformed/safetensors/data_offsets_overlapping.safetensors");
    lb_safetensors_open(&st, path);
    FILE *f = fopen(path, "rb");
    uint8_t len_bytes[8] = {0};
    CHECK(f && fread(len_bytes, 1, 8, f) == 8);
    if (f)
        fclose(f);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = (header_len << 8) | len_bytes[i];
    char want[64];
    snprintf(want, sizeof want, "offset %llu:", (unsigned long long)(8 + header_len + 16));
    CHECK(strstr(lb_last_error(), want) != NULL);
}

/* ---- hand-made files: edge cases that parse, and sharding errors ---- */

static void test_small_files(const char *tmp)
{
    /* 0-d scalar and a 4-d tensor; the header padded with spaces. */
    const char *header = "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                         "\"q\":{\"shape\":[1,2,3,2],\"data_offsets\":[4,28],\"dtype\":\"F16\"}}"
                         "      ";
    size_t size;
    uint8_t *buf = make_st(header, 28, &size);
    lb_safetensors *st = NULL;
    CHECK_OK(lb_safetensors_open_memory(&st, "small", buf, size));
    if (st) {
        CHECK(st->n_tensors == 2 && st->n_files == 0);
        int64_t s = lb_safetensors_find(st, "s"), q = lb_safetensors_find(st, "q");
        CHECK(s == 0 && q == 1);
        if (s == 0 && q == 1) {
            CHECK(st->tensors[s].n_dims == 1 && st->tensors[s].ne[0] == 1);
            CHECK(st->tensors[s].data == buf + 8 + strlen(header));
            CHECK(st->tensors[q].n_dims == 4 && st->tensors[q].ne[0] == 2 &&
                  st->tensors[q].ne[1] == 3 && st->tensors[q].ne[2] == 2 &&
                  st->tensors[q].ne[3] == 1 && st->tensors[q].nbytes == 12 * 2);
            CHECK(st->tensors[q].type == LB_TYPE_F16);
        }
    }
    lb_safetensors_close(&st);
    free(buf);
    /* An empty tensor (a zero dimension) is refused (issue 14: {0, 2^62} sent row loops over
     * 2^62 empty rows). */
    buf = make_st("{\"e\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[0,0]}}", 0,
                  &size);
    CHECK(lb_safetensors_open_memory(&st, "empty", buf, size) == LB_ERR_CORRUPT_FILE && !st);
    CHECK(strstr(lb_last_error(), "entry 0 is 0") != NULL);
    lb_safetensors_close(&st);
    lb_safetensors_close(&st); /* takes NULL */
    free(buf);

    /* Sharding errors, each in its own directory. */
    const char *a = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const char *ab = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    static const struct {
        const char *name, *index;
        const char *s1, *s2; /* headers of s1.safetensors and s2.safetensors */
        lb_status status;
    } cases[] = {
        {"ok", "{\"metadata\":{},\"weight_map\":{\"a\":\"s1.safetensors\","
               "\"b\":\"s2.safetensors\"}}",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", LB_OK},
        {"dup_across", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}",
         NULL, NULL, LB_ERR_CORRUPT_FILE},
        {"wrong_shard", "{\"weight_map\":{\"a\":\"s2.safetensors\",\"b\":\"s1.safetensors\"}}",
         NULL, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         LB_ERR_CORRUPT_FILE},
        {"not_in_map", "{\"weight_map\":{\"a\":\"s1.safetensors\"}}", NULL, NULL,
         LB_ERR_CORRUPT_FILE},
        {"missing_tensor", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                           "\"c\":\"s1.safetensors\"}}", NULL, NULL, LB_ERR_CORRUPT_FILE},
        {"dotdot", "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}", NULL, NULL,
         LB_ERR_CORRUPT_FILE},
        {"slash", "{\"weight_map\":{\"a\":\"sub/s1.safetensors\"}}", NULL, NULL,
         LB_ERR_CORRUPT_FILE},
        {"no_map", "{\"metadata\":{}}", NULL, NULL, LB_ERR_CORRUPT_FILE},
        {"map_not_object", "{\"weight_map\":[]}", NULL, NULL, LB_ERR_CORRUPT_FILE},
        {"dup_key", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}",
         NULL, NULL, LB_ERR_CORRUPT_FILE},
        {"missing_shard", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"z\":\"s9.safetensors\"}}",
         NULL, NULL, LB_ERR_IO},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/shard_%s", tmp, cases[c].name);
        mkdir(dir, 0700);
        write_text(dir, "model.safetensors.index.json", cases[c].index);
        if (strcmp(cases[c].name, "dup_across") == 0) {
            write_st(dir, "s1.safetensors", a, 8);
            write_st(dir, "s2.safetensors", ab, 16);
        } else if (strcmp(cases[c].name, "not_in_map") == 0 ||
                   strcmp(cases[c].name, "missing_tensor") == 0) {
            write_st(dir, "s1.safetensors", ab, 16);
        } else {
            write_st(dir, "s1.safetensors", cases[c].s1 ? cases[c].s1 : a, 8);
            if (cases[c].s2)
                write_st(dir, "s2.safetensors", cases[c].s2, 8);
        }
        lb_safetensors *sh = NULL;
        lb_status s = lb_safetensors_open(&sh, dir);
        CHECK(s == cases[c].status);
        if (s != cases[c].status)
            fprintf(stderr, "  shard case %s: got %s: %s\n", cases[c].name, lb_status_name(s),
                    lb_last_error());
        if (s == LB_OK && sh) {
            CHECK(sh->n_files == 2 && sh->n_tensors == 2);
            CHECK(lb_safetensors_find(sh, "b") == 1 && sh->tensors[1].shard == 1);
        } else if (cases[c].status != LB_ERR_IO) {
            check_message("shard_");
        }
        lb_safetensors_close(&sh);
    }

    /* Directories: the only .safetensors file is taken; two without an index are ambiguous;
     * none is an I/O error. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/dir_one", tmp);
    mkdir(dir, 0700);
    write_st(dir, "weights.safetensors", ab, 16);
    CHECK_OK(lb_safetensors_open(&st, dir));
    CHECK(st && st->n_tensors == 2);
    lb_safetensors_close(&st);
    write_st(dir, "more.safetensors", a, 8);
    CHECK(lb_safetensors_open(&st, dir) == LB_ERR_CORRUPT_FILE && st == NULL);
    snprintf(dir, sizeof dir, "%s/dir_none", tmp);
    mkdir(dir, 0700);
    CHECK(lb_safetensors_open(&st, dir) == LB_ERR_IO && st == NULL);
    snprintf(dir, sizeof dir, "%s/does_not_exist.safetensors", tmp);
    CHECK(lb_safetensors_open(&st, dir) == LB_ERR_IO && st == NULL);
}

/* ---- random mutations of a small valid file: must never crash ---- */

static void test_mutations(uint64_t seed)
{
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                         "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,1,2],\"data_offsets\":[32,36]}}";
    size_t base_size;
    uint8_t *base = make_st(header, 36, &base_size);
    static const char interesting[] = "\"{}[],:-0123456789eE. \\u";
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t n_ok = 0, n_iters = 20000;
    for (int64_t it = 0; it < n_iters; it++) {
        size_t size = base_size;
        uint8_t *buf = malloc(base_size);
        memcpy(buf, base, base_size);
        int n_mut = 1 + (int)lb_rng_below(&rng, 4);
        for (int k = 0; k < n_mut; k++) {
            uint64_t r = lb_rng_next(&rng);
            if (size == 0)
                break;
            size_t at = (size_t)((r >> 8) % size);
            switch (r % 6) {
            case 0: buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8)); break;
            case 1: buf[at] = (uint8_t)(r >> 48); break;
            case 2: buf[at] = (uint8_t)interesting[(r >> 48) % (sizeof interesting - 1)]; break;
            case 3: size = at; break; /* truncate */
            case 4: buf[(r >> 48) % 8] = (uint8_t)(r >> 32); break; /* header length */
            default: buf[at] = (uint8_t)('0' + (r >> 48) % 10); break;
            }
        }
        /* Copy to an exact-size block so the sanitizer sees any read past the end. */
        uint8_t *exact = malloc(size ? size : 1);
        memcpy(exact, buf, size);
        free(buf);
        lb_safetensors *st = NULL;
        lb_status s = lb_safetensors_open_memory(&st, "mutant", exact, size);
        if (s == LB_OK) {
            n_ok++;
            for (int64_t i = 0; i < st->n_tensors; i++) {
                const lb_safetensors_tensor *t = &st->tensors[i];
                uint64_t bytes = 0;
                CHECK(lb_tensor_bytes(t->type, t->n_dims, t->ne, &bytes) && bytes == t->nbytes);
                CHECK((const uint8_t *)t->data >= exact + 8 &&
                      (const uint8_t *)t->data + t->nbytes <= exact + size);
            }
        } else {
            CHECK(st == NULL);
            CHECK(s == LB_ERR_CORRUPT_FILE || s == LB_ERR_UNSUPPORTED);
            CHECK(strchr(lb_last_error(), '\n') == NULL);
        }
        lb_safetensors_close(&st);
        free(exact);
    }
    printf("mutations: seed %llu, %lld iterations, %lld parsed\n", (unsigned long long)seed,
           (long long)n_iters, (long long)n_ok);

    /* Allocation failure at every point of the in-memory path. */
    int64_t k;
    for (k = 0; k < 10000; k++) {
        lb_safetensors *st = NULL;
        lb_alloc_fail_after(k);
        lb_status s = lb_safetensors_open_memory(&st, "alloc", base, base_size);
        lb_alloc_fail_after(-1);
        if (s == LB_OK) {
            CHECK(st->n_tensors == 3);
            lb_safetensors_close(&st);
            break;
        }
        CHECK(s == LB_ERR_NOMEM && st == NULL);
    }
    CHECK(k > 0 && k < 10000);
    free(base);
}

int main(void)
{
    uint64_t seed = 0x5eed5afe7e45ull;
    const char *env_seed = getenv("LB_TEST_SEED");
    if (env_seed)
        seed = strtoull(env_seed, NULL, 0);
    char tmp[] = "/tmp/lb_test_safetensors_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_corpus();
    test_small_files(tmp);
    test_mutations(seed);

    char model_path[1024];
    test_shared_path(model_path, sizeof model_path, "models/stories260K/stories260K.bin");
    model_ref m = {0};
    bool have_python = access("/usr/bin/python3", X_OK) == 0 &&
                       system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    bool have_model = load_model(&m, model_path) == 0;
    if (have_python && have_model)
        test_checkpoints(tmp, &m);
    free(m.weights);
    remove_tree(tmp);
    if (!have_python || !have_model) {
        printf("test_safetensors: %s missing; skipping the checkpoint tests\n",
               have_python ? model_path : "/usr/bin/python3 with numpy");
        if (test_failures)
            return test_finish("test_safetensors");
        return 77;
    }
    return test_finish("test_safetensors");
}
