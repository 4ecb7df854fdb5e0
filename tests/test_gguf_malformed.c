/* GGUF reader on bad input: the malformed corpus, seeded random mutations, failing allocations. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/rng.h"
#include "formats/gguf.h"
#include "test_util.h"

/* Defaults; LB_GGUF_FUZZ_SEED and LB_GGUF_FUZZ_ITERATIONS override them for longer runs. */
#define MUTATION_SEED 0x6775676675ull
#define MUTATION_ITERATIONS 2000
#define MIN_CORPUS_FILES 50

/* Corpus files whose defect is well-formed input lowbit does not handle. */
static const char *const unsupported_files[] = {
    "version_0.gguf",    "version_1.gguf",   "version_99.gguf",
    "version_big_endian.gguf", "nested_array.gguf", "tensor_type_999.gguf",
};

/* Messages pinned to the format "<path>: <field> at offset <N>: <what>", one or more files for
 * each known class of GGUF parser bug (grouped below), so that each is rejected for its own
 * reason and not by a check that happens to come first. */
static const struct {
    const char *file, *text;
} expected_messages[] = {
    /* Tensor data offsets overlapping, past the end, misaligned or wrapping around. */
    {"tensors_overlap.gguf", "tensor[1] 'output_norm.weight' offset at offset 357: data [0, 12) "
                             "overlaps tensor[0] 'blk.0.attn_q.weight' at [0, 32)"},
    {"tensors_overlap_reordered.gguf", "tensor[1] 'b' offset at offset 314: data [64, 128) "
                                       "overlaps tensor[0] 'a' at [64, 128)"},
    {"tensor_offset_past_end.gguf", "tensor[1] 'output_norm.weight' offset at offset 357: 12 "
                                    "bytes at offset 1048576 of the data section run past the end"},
    {"tensor_offset_overflow.gguf", "offset at offset 357: 12 bytes at offset "
                                    "18446744073709551584 of the data section run past the end"},
    {"ne_data_past_end.gguf", "tensor[0] 'big' offset at offset 283: 4398046511104 bytes"},
    {"tensor_offset_not_aligned.gguf", "offset 40 is not a multiple of the alignment 32"},
    /* n_dims outside 1..4. */
    {"n_dims_5.gguf", "tensor[0] 'blk.0.attn_q.weight' n_dims at offset 283: n_dims 5 is not in 1..4"},
    {"n_dims_0.gguf", "n_dims at offset 283: n_dims 0 is not in 1..4"},
    /* Dimension products overflowing 64 bits (elements, then bytes), negative dimensions. */
    {"ne_product_overflow.gguf", "tensor[0] 'big' ne[1] at offset 279: element count overflows"},
    {"ne_product_overflow_4d.gguf", "tensor[0] 'big' ne[3] at offset 295: element count overflows"},
    {"ne_bytes_overflow.gguf", "tensor[0] 'big' ne[0] at offset 271: size in bytes of this F32 "
                               "tensor overflows"},
    {"ne_negative.gguf", "ne[1] at offset 295: dimension -1 is negative"},
    /* String lengths past the end of the file. */
    {"string_length_absurd.gguf", "kv[0] 'general.architecture' value length at offset 56: "
                                  "length 4611686018427387904 exceeds the 384 bytes left"},
    {"string_length_max.gguf", "value length at offset 56: length 18446744073709551615 exceeds"},
    {"key_length_absurd.gguf", "kv[0] key length at offset 24: length 4611686018427387904 exceeds"},
    {"string_array_element_length_absurd.gguf", "kv[3] 'test.names' value[1] length at offset "
                                                "186: length 2305843009213693952 exceeds"},
    /* Array counts that would allocate terabytes: checked against the bytes left first. */
    {"array_count_terabytes_u32.gguf", "kv[2] 'test.values' array count at offset 122: "
                                       "1099511627776 elements of 4 bytes cannot fit"},
    {"array_count_terabytes_strings.gguf", "kv[3] 'test.names' array count at offset 168: "
                                           "1099511627776 strings cannot fit"},
    {"array_count_max_u32.gguf", "array count at offset 122: 18446744073709551615 elements"},
    {"n_kv_absurd_2e60.gguf", "n_kv at offset 16: "},
    {"n_tensors_absurd_2e60.gguf", "n_tensors at offset 8: "},
    /* Alignment 0, not a power of two, or of the wrong type. */
    {"alignment_0.gguf", "kv[6] 'general.alignment' value at offset 285: alignment 0 is not a "
                         "nonzero power of two"},
    {"alignment_3.gguf", "value at offset 285: alignment 3 is not a nonzero power of two"},
    {"alignment_string.gguf", "general.alignment has type STRING, must be UINT32"},
    /* Duplicate keys and tensor names. */
    {"duplicate_keys.gguf", "kv[6] 'test.count' key at offset 256: duplicate of kv[1]"},
    {"duplicate_tensor_names.gguf", "tensor[2] 'same' name at offset 329: duplicate of tensor[0]"},
    /* Truncation, types, versions. */
    {"truncated_in_magic.gguf", "magic at offset 0: truncated"},
    {"version_big_endian.gguf", "version at offset 4: big-endian"},
    {"tensor_type_999.gguf", "tensor[1] 'output_norm.weight' type at offset 353: "},
    {"truncated_in_padding.gguf", "padding at offset 365: "},
};

static bool expected_unsupported(const char *name)
{
    for (size_t i = 0; i < sizeof unsupported_files / sizeof unsupported_files[0]; i++)
        if (strcmp(name, unsupported_files[i]) == 0)
            return true;
    return false;
}

/* A failure must be one line naming the input and the offset of the bad field. */
static bool clean_message(const char *name)
{
    const char *msg = lb_last_error();
    return strchr(msg, '\n') == NULL && strstr(msg, name) != NULL &&
           strstr(msg, "offset") != NULL;
}

static void test_corpus(void)
{
    char dir[1024], path[2048];
    char *names[1024];
    size_t n = test_list_corpus("tests/malformed/gguf", ".gguf", names,
                                sizeof names / sizeof names[0], dir, sizeof dir);
    CHECK(n >= MIN_CORPUS_FILES);
    enum { N_EXPECTED = sizeof expected_messages / sizeof expected_messages[0] };
    bool seen[N_EXPECTED] = {false};
    for (size_t i = 0; i < n; i++) {
        lb_gguf *g = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        lb_status status = lb_gguf_open(&g, path);
        lb_status want = expected_unsupported(names[i]) ? LB_ERR_UNSUPPORTED : LB_ERR_CORRUPT_FILE;
        printf("%-45s %s\n", names[i], status == LB_OK ? "opened" : lb_last_error());
        for (size_t k = 0; k < N_EXPECTED; k++) {
            if (strcmp(names[i], expected_messages[k].file) != 0)
                continue;
            seen[k] = true;
            if (!strstr(lb_last_error(), expected_messages[k].text)) {
                fprintf(stderr, "%s: message lacks \"%s\"\n", names[i], expected_messages[k].text);
                test_failures++;
            }
        }
        if (status != want || g != NULL || !clean_message(path)) {
            fprintf(stderr, "%s: got %s (want %s): %s\n", names[i], lb_status_name(status),
                    lb_status_name(want), status == LB_OK ? "opened" : lb_last_error());
            test_failures++;
        }
        lb_gguf_close(&g);
        free(names[i]);
    }
    for (size_t k = 0; k < N_EXPECTED; k++) {
        if (!seen[k]) {
            fprintf(stderr, "%s: pinned but missing from the corpus\n", expected_messages[k].file);
            test_failures++;
        }
    }
}

static lb_status produce_ramp(void *context, int64_t index, void *dst, uint64_t nbytes)
{
    (void)context;
    for (uint64_t i = 0; i < nbytes; i++)
        ((uint8_t *)dst)[i] = (uint8_t)(i * 31 + (uint64_t)index);
    return LB_OK;
}

static lb_status fill_valid(lb_gguf_writer *w)
{
    static const char *const tokens[] = {"<s>", "</s>", "h\xc3\xa9", ""};
    static const float scores[] = {0.0f, -1.0f, -2.5f, 3.0f};
    static const bool flags[] = {true, false};
    const int64_t ne_a[2] = {8, 3}, ne_b[1] = {5}, ne_c[3] = {2, 2, 2};
    lb_status s;
    if ((s = lb_gguf_writer_set_string(w, "general.architecture", "llama")) != LB_OK ||
        (s = lb_gguf_writer_set_u32(w, "llama.block_count", 2)) != LB_OK ||
        (s = lb_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f)) != LB_OK ||
        (s = lb_gguf_writer_set_bool(w, "general.flag", true)) != LB_OK ||
        (s = lb_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", tokens, NULL, 4)) !=
            LB_OK)
        return s;
    if ((s = lb_gguf_writer_set_array(w, "tokenizer.ggml.scores", LB_GGUF_FLOAT32, scores, 4)) !=
            LB_OK ||
        (s = lb_gguf_writer_set_array(w, "general.flags", LB_GGUF_BOOL, flags, 2)) != LB_OK)
        return s;
    if ((s = lb_gguf_writer_add_tensor_producer(w, "a", LB_TYPE_F32, 2, ne_a, produce_ramp,
                                                NULL)) != LB_OK ||
        (s = lb_gguf_writer_add_tensor_producer(w, "b", LB_TYPE_F16, 1, ne_b, produce_ramp,
                                                NULL)) != LB_OK)
        return s;
    return lb_gguf_writer_add_tensor_producer(w, "c", LB_TYPE_BF16, 3, ne_c, produce_ramp, NULL);
}

/* A small valid file with strings, arrays of both kinds and three tensors. */
static uint8_t *make_valid_file(const char *dir, char *path, size_t path_size, uint64_t *size)
{
    lb_gguf_writer *w = NULL;
    snprintf(path, path_size, "%s/valid.gguf", dir);
    *size = 0;
    if (lb_gguf_writer_create(&w, 32) != LB_OK)
        return NULL;
    lb_status s = fill_valid(w);
    if (s == LB_OK)
        s = lb_gguf_writer_write(w, path);
    lb_gguf_writer_free(&w);
    if (s != LB_OK) {
        fprintf(stderr, "writing %s: %s\n", path, lb_last_error());
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (uint64_t)n;
    return data;
}

/* Reads everything an accepted file exposes, so that ASan sees any pointer past the buffer. */
static uint64_t touch_all(const lb_gguf *g)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const lb_gguf_value *v = &g->kv[i].value;
        sum += strlen(g->kv[i].key);
        if (v->type == LB_GGUF_STRING) {
            for (uint64_t j = 0; j < v->v.str.len; j++)
                sum += (uint8_t)v->v.str.data[j];
        } else if (v->type == LB_GGUF_ARRAY && v->v.arr.elem_type == LB_GGUF_STRING) {
            for (uint64_t j = 0; j < v->v.arr.count; j++)
                for (uint64_t k = 0; k < v->v.arr.strings[j].len; k++)
                    sum += (uint8_t)v->v.arr.strings[j].data[k];
        } else if (v->type == LB_GGUF_ARRAY) {
            for (uint64_t j = 0; j < v->v.arr.count; j++)
                sum += (uint64_t)lb_gguf_array_int(v, j);
        }
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        sum += strlen(t->name);
        for (uint64_t j = 0; j < t->nbytes; j++)
            sum += ((const uint8_t *)t->data)[j];
    }
    return sum;
}

/* Seeded mutations of a valid file, opened from a heap copy of exactly the mutated size. */
static void test_mutations(const uint8_t *valid, uint64_t size)
{
    const char *seed_env = getenv("LB_GGUF_FUZZ_SEED");
    const char *n_env = getenv("LB_GGUF_FUZZ_ITERATIONS");
    const uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : MUTATION_SEED;
    const int64_t iterations = n_env ? strtoll(n_env, NULL, 0) : MUTATION_ITERATIONS;
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    int64_t opened = 0, rejected = 0;
    printf("mutation seed %llu, %lld iterations\n", (unsigned long long)seed,
           (long long)iterations);
    for (int64_t it = 0; it < iterations; it++) {
        uint64_t n = size;
        uint8_t *buf = malloc(size);
        memcpy(buf, valid, size);
        int mutations = 1 + (int)(lb_rng_next(&rng) % 4);
        for (int m = 0; m < mutations && n > 0; m++) {
            uint64_t r = lb_rng_next(&rng), at = lb_rng_next(&rng) % n;
            switch (r % 5) {
            case 0: buf[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
            case 1: buf[at] = (uint8_t)(r >> 16); break;
            case 2: n = at; break; /* truncate */
            case 3: /* a large or small value over a length/count/offset field */
                for (uint64_t k = 0; k < 8 && at + k < n; k++)
                    buf[at + k] = (r >> 3) & 1 ? (uint8_t)(r >> (8 * k))
                                               : (uint8_t)(k == 0 ? r >> 24 : 0);
                break;
            default: memset(buf + at, 0xFF, n - at < 4 ? n - at : 4); break;
            }
        }
        uint8_t *exact = malloc(n ? n : 1); /* so ASan catches reads one past the end */
        memcpy(exact, buf, n);
        free(buf);
        lb_gguf *g = NULL;
        lb_status status = lb_gguf_open_memory(&g, "mutant", exact, n);
        if (status == LB_OK) {
            opened++;
            volatile uint64_t sink = touch_all(g);
            (void)sink;
        } else {
            rejected++;
            if ((status != LB_ERR_CORRUPT_FILE && status != LB_ERR_UNSUPPORTED) || g != NULL ||
                !clean_message("mutant")) {
                fprintf(stderr, "seed %llu iteration %lld: %s: %s\n", (unsigned long long)seed,
                        (long long)it, lb_status_name(status),
                        lb_last_error());
                test_failures++;
            }
        }
        lb_gguf_close(&g);
        free(exact);
    }
    printf("mutations: %lld opened, %lld rejected\n", (long long)opened, (long long)rejected);
    CHECK(rejected > iterations / 2);
}

/* Allocation k fails for k = 0.. until the open succeeds: every failure is a clean NOMEM. */
static void test_alloc_failures(const char *path, const uint8_t *valid, uint64_t size)
{
    for (int pass = 0; pass < 2; pass++) {
        int64_t k;
        for (k = 0; k < 10000; k++) {
            lb_gguf *g = NULL;
            lb_alloc_fail_after(k);
            lb_status status = pass == 0 ? lb_gguf_open(&g, path)
                                         : lb_gguf_open_memory(&g, "valid", valid, size);
            lb_alloc_fail_after(-1);
            if (status == LB_OK) {
                CHECK(g != NULL && g->n_tensors == 3);
                lb_gguf_close(&g);
                break;
            }
            if (status != LB_ERR_NOMEM || g != NULL) {
                fprintf(stderr, "pass %d, allocation %lld failing: %s: %s\n", pass,
                        (long long)k, lb_status_name(status), lb_last_error());
                test_failures++;
                break;
            }
        }
        CHECK(k > 0 && k < 10000);
    }
}

int main(void)
{
    char dir[] = "/tmp/lowbit-test-gguf-malformed-XXXXXX", path[512];
    uint64_t size;
    test_corpus();
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    uint8_t *valid = make_valid_file(dir, path, sizeof path, &size);
    CHECK(valid != NULL);
    if (valid) {
        lb_gguf *g = NULL;
        CHECK_OK(lb_gguf_open_memory(&g, "valid", valid, size));
        lb_gguf_close(&g);
        test_mutations(valid, size);
        test_alloc_failures(path, valid, size);
    }
    free(valid);
    unlink(path);
    rmdir(dir);
    return test_finish("test_gguf_malformed");
}
