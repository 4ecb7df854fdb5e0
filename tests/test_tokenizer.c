/* Tests of the tokenizers and of the SentencePiece model reader, against independent oracles. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc_internal.h"
#include "formats/llama2c_internal.h"
#include "formats/spm_model_internal.h"
#include "formats/vocab.h"
#include "model/tokenizer.h"
#include "tests/test_util.h"

#define SP "\xe2\x96\x81" /* "▁" */

static int shared_missing; /* shared files absent: those parts are skipped */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *grown = realloc(data, cap + 1);
            if (!grown)
                break;
            data = grown;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (data)
        data[n] = '\0';
    *len = n;
    return data;
}

static bool ids_equal(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void print_ids(const char *label, const int32_t *ids, int64_t n)
{
    fprintf(stderr, "  %s (%lld):", label, (long long)n);
    for (int64_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

/* Encodes text and compares with the expected ids; prints both on a mismatch. */
static void check_encode(const lb_tokenizer *t, const char *text, bool bos, const int32_t *expect,
                         int64_t n_expect)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK_OK(lb_tokenizer_encode(t, text, strlen(text), bos, &ids, &n));
    if (!ids_equal(ids, n, expect, n_expect)) {
        fprintf(stderr, "encode mismatch for \"%s\"\n", text);
        print_ids("got", ids, n);
        print_ids("expected", expect, n_expect);
        test_failures++;
    }
    lb_free(ids);
}

/* decode(encode(text)) must give the text back, and so must streaming lb_tokenizer_piece. */
static void check_round_trip(const lb_tokenizer *t, const char *text, size_t len, bool bos)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    char *back = NULL;
    size_t back_len = 0;
    CHECK_OK(lb_tokenizer_encode(t, text, len, bos, &ids, &n));
    CHECK_OK(lb_tokenizer_decode(t, ids, n, &back, &back_len));
    if (!back || back_len != len || memcmp(back, text, len) != 0) {
        fprintf(stderr, "round trip failed for \"%.80s\" (%zu bytes, got %zu: \"%.80s\")\n", text,
                len, back_len, back ? back : "");
        print_ids("ids", ids, n);
        test_failures++;
    }
    char *streamed = malloc(len + 64);
    size_t pos = 0;
    bool ok = streamed != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        char piece[256];
        int64_t k = lb_tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
        ok = k >= 0 && pos + (size_t)k <= len + 63;
        if (ok) {
            memcpy(streamed + pos, piece, (size_t)k);
            pos += (size_t)k;
        }
    }
    if (!ok || pos != len || memcmp(streamed, text, len) != 0) {
        fprintf(stderr, "streamed pieces differ from \"%.80s\"\n", text);
        test_failures++;
    }
    free(streamed);
    lb_free(back);
    lb_free(ids);
}

/* ---- an independent reference: llama2.c's O(n^2) encode, rewritten here ---- */

typedef struct ref_vocab {
    const lb_vocab *v;
    int32_t *sorted; /* ids by (text, id) for binary search */
} ref_vocab;

static const lb_vocab *ref_sort_vocab;

static int ref_compare_text(const lb_vocab *v, int32_t id, const char *s, size_t len)
{
    size_t tl = v->token_lengths[id];
    int c = memcmp(v->tokens[id], s, tl < len ? tl : len);
    return c ? c : (tl > len) - (tl < len);
}

static int ref_sort_cmp(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    const lb_vocab *v = ref_sort_vocab;
    int c = ref_compare_text(v, a, v->tokens[b], v->token_lengths[b]);
    return c ? c : (a > b) - (a < b);
}

static bool ref_init(ref_vocab *r, const lb_vocab *v)
{
    r->v = v;
    r->sorted = malloc((size_t)v->n_tokens * sizeof *r->sorted);
    if (!r->sorted)
        return false;
    for (int64_t i = 0; i < v->n_tokens; i++)
        r->sorted[i] = (int32_t)i;
    ref_sort_vocab = v;
    qsort(r->sorted, (size_t)v->n_tokens, sizeof *r->sorted, ref_sort_cmp);
    return true;
}

/* Lowest id whose text is s, or -1 (lower bound over the (text, id) order). */
static int32_t ref_lookup(const ref_vocab *r, const char *s, size_t len)
{
    int64_t lo = 0, hi = r->v->n_tokens;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ref_compare_text(r->v, r->sorted[mid], s, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->v->n_tokens && ref_compare_text(r->v, r->sorted[lo], s, len) == 0)
        return r->sorted[lo];
    return -1;
}

/* llama2.c's encode: dummy prefix token, one token per UTF-8 character (bytes + 3 when the
 * character is no token), then repeatedly merge the best-scoring adjacent pair, leftmost
 * first. out needs room for 3 * len + 1 ids. */
static int64_t ref_encode(const ref_vocab *r, const char *text, size_t len, int32_t *out)
{
    const lb_vocab *v = r->v;
    int64_t n = 0;
    if (len > 0)
        out[n++] = ref_lookup(r, SP, 3);
    for (size_t i = 0; i < len;) {
        char ch[8];
        size_t k = 0;
        if (text[i] == ' ') {
            memcpy(ch, SP, 3);
            k = 3;
            i++;
        } else {
            ch[k++] = text[i++];
            while (i < len && k < 4 && ((uint8_t)text[i] & 0xc0) == 0x80)
                ch[k++] = text[i++];
        }
        int32_t id = ref_lookup(r, ch, k);
        if (id >= 0)
            out[n++] = id;
        else
            for (size_t j = 0; j < k; j++)
                out[n++] = (uint8_t)ch[j] + 3;
    }
    char pair[1024];
    for (;;) {
        float best = -1e10f;
        int64_t best_at = -1;
        int32_t best_id = -1;
        for (int64_t i = 0; i + 1 < n; i++) {
            size_t a = v->token_lengths[out[i]], b = v->token_lengths[out[i + 1]];
            if (a + b > sizeof pair)
                continue;
            memcpy(pair, v->tokens[out[i]], a);
            memcpy(pair + a, v->tokens[out[i + 1]], b);
            int32_t id = ref_lookup(r, pair, a + b);
            if (id >= 0 && v->scores[id] > best) {
                best = v->scores[id];
                best_at = i;
                best_id = id;
            }
        }
        if (best_at < 0)
            break;
        out[best_at] = best_id;
        memmove(out + best_at + 1, out + best_at + 2, (size_t)(n - best_at - 2) * sizeof *out);
        n--;
    }
    return n;
}

static void check_against_ref(const lb_tokenizer *t, const ref_vocab *r, const char *text,
                              size_t len, const char *label)
{
    int32_t *expect = malloc((3 * len + 4) * sizeof *expect);
    int32_t *ids = NULL;
    int64_t n = 0;
    if (!expect)
        return;
    int64_t n_expect = ref_encode(r, text, len, expect);
    CHECK_OK(lb_tokenizer_encode(t, text, len, false, &ids, &n));
    if (!ids_equal(ids, n, expect, n_expect)) {
        fprintf(stderr, "differs from the llama2.c reference: %s \"%.60s\"\n", label, text);
        print_ids("got", ids, n);
        print_ids("reference", expect, n_expect);
        test_failures++;
    }
    lb_free(ids);
    free(expect);
}

/* Valid UTF-8 built from pieces that exercise merges, spaces, newlines and byte fallback. */
static size_t random_text(lb_rng *rng, char *out, size_t cap)
{
    static const char *const parts[] = {
        "a", "b", "e", "t", "h", "o", "n", "s", " ", "  ", "\n", ".", ",", "!", "'", "0", "7",
        "The", " the", "Once", " upon", " time", "ing", "\xc3\xa9", "\xc3\xbc", "\xe6\x97\xa5",
        "\xe2\x80\x94", "\xf0\x9f\x98\x80", "\t", "<s>",
    };
    size_t n = 0, count = (size_t)lb_rng_below(rng, 40);
    for (size_t i = 0; i < count; i++) {
        const char *p = parts[lb_rng_below(rng, sizeof parts / sizeof *parts)];
        size_t k = strlen(p);
        if (n + k >= cap)
            break;
        memcpy(out + n, p, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

static const char *const ROUND_TRIPS[] = {
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "naive cafe",
    "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80",
    "bytes: \x01\x02\x7f \xc2\xa7 \xe2\x88\x80x \xf0\x90\x8d\x88",
    "",
    " ",
    "     ",
    " leading and trailing ",
    "\n",
    "line one\nline two\n\n\tindented\r\n",
    "<s> and </s> are text here",
};

/* ---- llama2.c vocabulary (tok512) ---- */

static void test_tok512(void)
{
    char path[512];
    test_shared_path(path, sizeof path, "models/stories260K/tok512.bin");
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("skipped tok512 tests: %s missing\n", path);
        shared_missing = 1;
        return;
    }
    fclose(probe);
    lb_vocab *v = NULL;
    lb_tokenizer *t = NULL;
    CHECK_OK(lb_llama2c_tokenizer_load(&v, path, 512));
    if (!v)
        return;
    CHECK_OK(lb_tokenizer_create(&t, v));
    if (!t) {
        lb_vocab_free(&v);
        return;
    }
    /* The reference's byte fallback assumes llama2.c's layout: <0xXX> at id XX + 3. */
    CHECK(v->token_lengths[3] == 6 && memcmp(v->tokens[3], "<0x00>", 6) == 0);
    CHECK(v->token_lengths[258] == 6 && memcmp(v->tokens[258], "<0xFF>", 6) == 0);

    /* Expected ids from a separate Python port of llama2.c's encode over tok512.bin. */
    static const int32_t once[] = {1, 403, 407, 261, 378};
    check_encode(t, "Once upon a time", true, once, 5);
    check_encode(t, "Once upon a time", false, once + 1, 4);
    static const int32_t girl[] = {403, 407, 261, 378, 432, 383, 286, 261,
                                   376, 298, 315, 421, 395, 317, 426};
    check_encode(t, "Once upon a time, there was a little girl named Lily.", false, girl, 15);
    static const int32_t mixed[] = {297, 412, 198, 178, 360, 280, 412, 431, 485,
                                    410, 481, 410, 233, 154, 168, 233, 159, 175,
                                    235, 173, 161, 410, 243, 162, 155, 131};
    check_encode(t, "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                    "\xf0\x9f\x98\x80", false, mixed, 26);
    static const int32_t newline[] = {346, 306, 414, 13, 424, 304, 341};
    check_encode(t, "Hello\nworld", false, newline, 7);
    static const int32_t bos_only[] = {1};
    check_encode(t, "", true, bos_only, 1);
    check_encode(t, "", false, NULL, 0);

    for (size_t i = 0; i < sizeof ROUND_TRIPS / sizeof *ROUND_TRIPS; i++) {
        check_round_trip(t, ROUND_TRIPS[i], strlen(ROUND_TRIPS[i]), false);
        check_round_trip(t, ROUND_TRIPS[i], strlen(ROUND_TRIPS[i]), true);
    }
    /* Invalid UTF-8 falls back to byte tokens and still round-trips. */
    static const char invalid[] = "a\x80 b\xff\xfe c\xe6\x97 d\xed\xa0\x80 \xc3";
    check_round_trip(t, invalid, sizeof invalid - 1, true);

    ref_vocab r;
    if (ref_init(&r, v)) {
        size_t len = 0;
        char *sample = read_file(test_shared_path(path, sizeof path,
                                                  "text/tinystories-valid-sample.txt"), &len);
        CHECK(sample != NULL);
        int64_t lines = 0;
        for (size_t start = 0; sample && start < len; lines++) {
            const char *nl = memchr(sample + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - sample) : len;
            check_against_ref(t, &r, sample + start, end - start, "sample line");
            check_round_trip(t, sample + start, end - start, true);
            start = end + 1;
        }
        CHECK(lines >= 10);
        free(sample);
        const uint64_t seed = 0x70c512;
        lb_rng rng;
        lb_rng_seed(&rng, seed);
        int before = test_failures;
        for (int i = 0; i < 2000 && test_failures == before; i++) {
            char text[512];
            size_t n = random_text(&rng, text, sizeof text);
            check_against_ref(t, &r, text, n, "random");
            check_round_trip(t, text, n, i % 2 == 0);
        }
        if (test_failures != before)
            fprintf(stderr, "random strings from seed 0x%llx\n", (unsigned long long)seed);
        free(r.sorted);
    }

    /* Streaming: after BOS the dummy space goes; later the same token keeps its space. */
    char piece[64];
    int32_t upon = 407; /* "▁upon" */
    CHECK(lb_tokenizer_piece(t, 1, upon, piece, sizeof piece) == 4 && !strcmp(piece, "upon"));
    CHECK(lb_tokenizer_piece(t, -1, upon, piece, sizeof piece) == 4);
    CHECK(lb_tokenizer_piece(t, 403, upon, piece, sizeof piece) == 5 && !strcmp(piece, " upon"));
    CHECK(lb_tokenizer_piece(t, 403, 13, piece, sizeof piece) == 1 && !strcmp(piece, "\n"));
    CHECK(lb_tokenizer_piece(t, -1, 1, piece, sizeof piece) == 0 && piece[0] == '\0');
    CHECK(lb_tokenizer_piece(t, 403, upon, piece, 5) == LB_ERR_INVALID_ARG);
    CHECK(lb_tokenizer_piece(t, -1, 512, piece, sizeof piece) == LB_ERR_INVALID_ARG);
    int32_t bad[] = {1, 600};
    char *text = NULL;
    size_t text_len;
    CHECK(lb_tokenizer_decode(t, bad, 2, &text, &text_len) == LB_ERR_INVALID_ARG && !text);
    lb_tokenizer_free(&t);
    CHECK(t == NULL);
    lb_tokenizer_free(&t);
    lb_vocab_free(&v);
}

/* ---- SentencePiece model files ---- */

typedef struct pbuf {
    uint8_t data[4096];
    size_t n;
} pbuf;

static void put_raw(pbuf *b, const void *p, size_t n)
{
    if (b->n + n <= sizeof b->data) {
        memcpy(b->data + b->n, p, n);
        b->n += n;
    }
}

static void put_varint(pbuf *b, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        put_raw(b, &byte, 1);
        v >>= 7;
    } while (v);
}

static void put_key(pbuf *b, uint32_t field, uint32_t wire)
{
    put_varint(b, (uint64_t)field << 3 | wire);
}

static void put_len(pbuf *b, uint32_t field, const void *p, size_t n)
{
    put_key(b, field, 2);
    put_varint(b, n);
    put_raw(b, p, n);
}

static void put_fixed32(pbuf *b, uint32_t field, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_key(b, field, 5);
    put_raw(b, le, 4);
}

static void put_piece(pbuf *b, const char *text, float score, int type)
{
    pbuf p = {.n = 0};
    uint32_t bits;
    memcpy(&bits, &score, 4);
    put_len(&p, 1, text, strlen(text));
    put_fixed32(&p, 2, bits);
    if (type != 1)
        put_key(&p, 3, 0), put_varint(&p, (uint64_t)type);
    put_key(&p, 200, 0), put_varint(&p, 7); /* an extension field, skipped */
    put_len(b, 1, p.data, p.n);
}

/* A small model with unknown fields of every wire type and a trainer spec whose pad_id is a
 * negative int32 (a 10-byte varint). */
static void build_small_model(pbuf *m)
{
    m->n = 0;
    put_key(m, 99, 1), put_raw(m, "12345678", 8); /* unknown 64-bit */
    put_piece(m, "<unk>", 0.0f, 2);
    put_piece(m, "<s>", 0.0f, 3);
    put_piece(m, "</s>", 0.0f, 3);
    put_piece(m, "<0x41>", 0.0f, 6);
    put_piece(m, SP "a", -1.0f, 1);
    put_piece(m, "a", -2.5f, 1);
    put_piece(m, SP, -3.0f, 4);
    pbuf spec = {.n = 0};
    put_len(&spec, 1, "corpus.txt", 10);
    put_key(&spec, 3, 0), put_varint(&spec, 2);
    put_fixed32(&spec, 10, 0x3f800000);
    put_key(&spec, 40, 0), put_varint(&spec, 0);
    put_key(&spec, 41, 0), put_varint(&spec, 2);
    put_key(&spec, 42, 0), put_varint(&spec, 1);
    put_key(&spec, 43, 0), put_varint(&spec, (uint64_t)(int64_t)-1);
    put_key(&spec, 45, 1), put_raw(&spec, "abcdefgh", 8);
    put_len(m, 2, spec.data, spec.n);
    put_len(m, 3, "\x0a\x08identity", 10); /* normalizer_spec, skipped */
    put_fixed32(m, 77, 5);                  /* unknown 32-bit */
}

static void check_corrupt(const void *data, size_t size, const char *what, const char *needle)
{
    lb_vocab *v = NULL;
    lb_status s = lb_spm_model_parse(&v, "bad.model", data, size);
    if (s != LB_ERR_CORRUPT_FILE || v || !strstr(lb_last_error(), "bad.model: ") ||
        !strstr(lb_last_error(), " at offset ") || (needle && !strstr(lb_last_error(), needle))) {
        fprintf(stderr, "%s: status %d, message \"%s\"\n", what, (int)s, lb_last_error());
        test_failures++;
    }
    lb_vocab_free(&v);
}

static void test_spm_small(void)
{
    pbuf m;
    build_small_model(&m);
    lb_vocab *v = NULL;
    CHECK_OK(lb_spm_model_parse(&v, "small.model", m.data, m.n));
    if (!v)
        return;
    CHECK(v->n_tokens == 7 && !strcmp(v->model, "llama"));
    CHECK(v->unk_id == 0 && v->bos_id == 2 && v->eos_id == 1 && v->pad_id == -1);
    CHECK(v->token_types[0] == LB_TOKEN_UNKNOWN && v->token_types[1] == LB_TOKEN_CONTROL);
    CHECK(v->token_types[3] == LB_TOKEN_BYTE && v->token_types[4] == LB_TOKEN_NORMAL);
    CHECK(v->token_types[6] == LB_TOKEN_USER_DEFINED);
    CHECK(v->scores[5] == -2.5f && v->token_lengths[4] == 4 && !memcmp(v->tokens[4], SP "a", 4));
    /* No full set of byte tokens here: unknown characters become <unk> and decode as " ⁇ ". */
    lb_tokenizer *t = NULL;
    CHECK_OK(lb_tokenizer_create(&t, v));
    static const int32_t aab[] = {2, 4, 5, 0};
    check_encode(t, "aab", true, aab, 4);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lb_tokenizer_decode(t, aab, 4, &text, &len));
    CHECK(text && !strcmp(text, "aa \xe2\x81\x87 "));
    lb_free(text);
    lb_tokenizer_free(&t);
    lb_vocab_free(&v);

    /* Defaults when the trainer spec is absent. */
    pbuf d = {.n = 0};
    for (int i = 0; i < 3; i++)
        put_piece(&d, i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>", 0.0f, i == 0 ? 2 : 3);
    CHECK_OK(lb_spm_model_parse(&v, "defaults.model", d.data, d.n));
    CHECK(v && v->unk_id == 0 && v->bos_id == 1 && v->eos_id == 2 && v->pad_id == -1);
    lb_vocab_free(&v);

    /* Malformed inputs, hand-encoded: a key byte is field << 3 | wire type. Each error names
     * the file, the field and the offset. */
    static const struct {
        const char *bytes;
        size_t n;
        const char *what, *needle;
    } bad[] = {
        {"\x2b", 1, "field 5 as a group", "groups are not supported"},
        {"\x2e", 1, "wire type 6", "invalid wire type"},
        {"\x2f", 1, "wire type 7", "ModelProto at offset 0"},
        {"\x0a\x64xx", 4, "length past the end", "pieces[0] at offset 1"},
        {"\x48\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "11-byte varint",
         "longer than 10 bytes"},
        {"\x48\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, "varint past 64 bits", "overflows"},
        {"\x48\xff\xff", 3, "truncated varint", "runs past the end"},
        {"\x4d\x01\x02", 3, "truncated fixed32", "runs past the end"},
        {"\x49\x01\x02\x03", 4, "truncated fixed64", "runs past the end"},
        {"\x02", 1, "field number 0", "invalid field number"},
        {"\x08\x01", 2, "pieces as a varint", "expected 2"},
        {"\x0a\x02\x10\x01", 4, "score as a varint", "pieces[0].score at offset 2"},
        {"\x0a\x05\x15\x00\x00\x00\x00", 7, "piece without text", "pieces[0].piece"},
        {"\x0a\x05\x0a\x01x\x18\x09", 7, "piece type 9", "pieces[0].type"},
        /* a nested length that fits the file but not its message */
        {"\x0a\x05\x0a\x0a" "abc0123456789", 17, "nested length", "pieces[0].piece at offset 3"},
        {"\x12\x03\xc8\x02\x80", 5, "truncated trainer_spec.bos_id", "trainer_spec.bos_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_corrupt(bad[i].bytes, bad[i].n, bad[i].what, bad[i].needle);
    pbuf b = {.n = 0};
    put_piece(&b, "<unk>", 0, 2);
    pbuf spec = {.n = 0};
    put_key(&spec, 41, 0), put_varint(&spec, 5);
    put_len(&b, 2, spec.data, spec.n);
    lb_status s = lb_spm_model_parse(&v, "bad.model", b.data, b.n);
    CHECK(s == LB_ERR_CORRUPT_FILE && !v &&
          strstr(lb_last_error(), "bad.model: trainer_spec.bos_id at offset 21: id 5 out"));
    CHECK(lb_spm_model_parse(&v, "empty.model", "", 0) == LB_ERR_CORRUPT_FILE && !v);

    /* Every truncation of a valid model parses or fails cleanly. */
    for (size_t n = 0; n < m.n; n++) {
        s = lb_spm_model_parse(&v, "cut.model", m.data, n);
        CHECK(s == LB_OK || s == LB_ERR_CORRUPT_FILE);
        lb_vocab_free(&v);
    }
}

static void test_spm_llama2(void)
{
    char path[512];
    test_shared_path(path, sizeof path, "models/llama2-tokenizer/tokenizer.model");
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("skipped Llama 2 tokenizer tests: %s missing\n", path);
        shared_missing = 1;
        return;
    }
    fclose(probe);
    lb_vocab *v = NULL;
    lb_tokenizer *t = NULL;
    CHECK_OK(lb_spm_model_load(&v, path));
    if (!v)
        return;
    CHECK(v->n_tokens == 32000 && !strcmp(v->model, "llama"));
    CHECK(v->unk_id == 0 && v->bos_id == 1 && v->eos_id == 2 && v->pad_id == -1);
    CHECK(v->token_types[0] == LB_TOKEN_UNKNOWN && !strcmp(v->tokens[0], "<unk>"));
    CHECK(v->token_types[1] == LB_TOKEN_CONTROL && !strcmp(v->tokens[1], "<s>"));
    CHECK(v->token_types[2] == LB_TOKEN_CONTROL && !strcmp(v->tokens[2], "</s>"));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        CHECK(v->token_types[3 + b] == LB_TOKEN_BYTE && !strcmp(v->tokens[3 + b], name));
    }
    CHECK(!strcmp(v->tokens[259], SP SP) && v->scores[259] == -1e9f);
    CHECK(!strcmp(v->tokens[29871], SP) && v->token_types[29871] == LB_TOKEN_NORMAL);
    CHECK(v->scores[31999] == -31740.0f && !strcmp(v->tokens[31999], "\xe7\xbb\x99"));
    CHECK_OK(lb_tokenizer_create(&t, v));
    if (!t) {
        lb_vocab_free(&v);
        return;
    }
    /* Expected ids from sentencepiece 0.2.3 SentencePieceProcessor.encode on this file. */
    static const int32_t hello[] = {1, 15043, 3186};
    check_encode(t, "Hello world", true, hello, 3);
    static const int32_t once[] = {9038, 2501, 263, 931, 29892, 727, 471, 263, 2217, 7826, 29889};
    check_encode(t, "Once upon a time, there was a little girl.", false, once, 11);
    static const int32_t spaces[] = {29871, 8236, 2913, 322, 29871, 3765, 29871, 8162};
    check_encode(t, " leading space and  double  spaces", false, spaces, 8);
    static const int32_t mixed[] = {1055, 30085, 345, 274, 28059, 813, 29871, 30325,
                                    30346, 30968, 29871, 243, 162, 155, 131};
    check_encode(t, "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                    "\xf0\x9f\x98\x80", false, mixed, 15);
    static const int32_t lines[] = {1196, 697, 13, 1220, 1023, 13, 13, 12, 3891};
    check_encode(t, "line one\nline two\n\n\ttab", false, lines, 9);
    static const int32_t digits[] = {450, 1629, 29871, 29906, 29900, 29906, 29941, 750, 29871,
                                     29941, 29953, 29945, 3841, 29936, 29871, 30170, 30583,
                                     29941, 29889, 29896, 29946, 29896, 29945, 29929, 29991};
    check_encode(t, "The year 2023 had 365 days; \xcf\x80\xe2\x89\x88" "3.14159!", false, digits,
                 25);
    static const int32_t blank[] = {268};
    check_encode(t, "   ", false, blank, 1);
    check_encode(t, "", false, NULL, 0);

    for (size_t i = 0; i < sizeof ROUND_TRIPS / sizeof *ROUND_TRIPS; i++)
        check_round_trip(t, ROUND_TRIPS[i], strlen(ROUND_TRIPS[i]), true);

    size_t len = 0;
    char *wiki = read_file(test_shared_path(path, sizeof path, "text/wiki.test.raw"), &len);
    if (!wiki) {
        printf("skipped wiki.test.raw tests: %s missing\n", path);
        shared_missing = 1;
    } else {
        size_t start = 0;
        for (int line = 0; line < 200 && start < len; line++) {
            const char *nl = memchr(wiki + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - wiki) + 1 : len;
            check_round_trip(t, wiki + start, end - start, line % 2 == 0);
            start = end;
        }
        /* Timing sanity, not an assertion: the whole evaluation text in one call. */
        struct timespec t0, t1;
        int32_t *ids = NULL;
        int64_t n = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_OK(lb_tokenizer_encode(t, wiki, len, true, &ids, &n));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("encoded wiki.test.raw (%zu bytes) into %lld tokens in %.3f s\n", len,
               (long long)n, seconds);
        char *back = NULL;
        size_t back_len = 0;
        CHECK_OK(lb_tokenizer_decode(t, ids, n, &back, &back_len));
        CHECK(back && back_len == len && memcmp(back, wiki, len) == 0);
        lb_free(back);
        lb_free(ids);
        free(wiki);
    }

    /* Flipped bytes in the real file: parsed or rejected, never a crash or a leak. */
    size_t model_len = 0;
    uint8_t *model = (uint8_t *)read_file(test_shared_path(path, sizeof path,
                                                           "models/llama2-tokenizer/"
                                                           "tokenizer.model"), &model_len);
    const uint64_t seed = 0xf11b;
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    for (int i = 0; model && i < 200; i++) {
        size_t at = (size_t)lb_rng_below(&rng, model_len);
        uint8_t saved = model[at];
        model[at] ^= (uint8_t)(1u << lb_rng_below(&rng, 8));
        lb_vocab *bad = NULL;
        size_t cut = i % 4 == 0 ? (size_t)lb_rng_below(&rng, model_len) : model_len;
        lb_status s = lb_spm_model_parse(&bad, "flipped.model", model, cut);
        if (s != LB_OK && s != LB_ERR_CORRUPT_FILE) {
            fprintf(stderr, "flip %d (seed 0x%llx): status %d\n", i, (unsigned long long)seed,
                    (int)s);
            test_failures++;
        }
        lb_vocab_free(&bad);
        model[at] = saved;
    }
    free(model);
    lb_tokenizer_free(&t);
    lb_vocab_free(&v);
}

/* ---- handmade vocabularies ---- */

static void test_llama_handmade(void)
{
    /* Ties go to the leftmost pair; a duplicate text keeps its lowest id. */
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", SP, "a", "b", "c", "ab", "bc",
                                         "bc", SP "abc"};
    static const float scores[] = {0, 0, 0, -1, -2, -2, -2, -1, -1, 5, 0};
    lb_vocab *v = NULL;
    CHECK_OK(lb_vocab_create(&v, "llama", 11, true, true));
    if (!v)
        return;
    for (int i = 0; i < 11; i++) {
        CHECK_OK(lb_vocab_set_token(v, i, pieces[i], strlen(pieces[i])));
        v->scores[i] = scores[i];
        v->token_types[i] = i == 0 ? LB_TOKEN_UNKNOWN : i < 3 ? LB_TOKEN_CONTROL : LB_TOKEN_NORMAL;
    }
    v->unk_id = 0, v->bos_id = 1, v->eos_id = 2;
    lb_tokenizer *t = NULL;
    CHECK_OK(lb_tokenizer_create(&t, v));
    static const int32_t abc[] = {3, 7, 6};
    check_encode(t, "abc", false, abc, 3);
    v->scores[8] = -0.5f; /* now "bc" wins */
    static const int32_t a_bc[] = {3, 4, 8};
    check_encode(t, "abc", false, a_bc, 3);
    static const int32_t unk[] = {3, 0, 3, 4};
    check_encode(t, "x a", false, unk, 4);
    lb_tokenizer_free(&t);

    v->unk_id = -1; /* neither byte tokens nor <unk>: unknown characters have no token */
    CHECK(lb_tokenizer_create(&t, v) == LB_ERR_CORRUPT_FILE && !t);
    v->unk_id = 0;
    snprintf(v->model, sizeof v->model, "bert");
    CHECK(lb_tokenizer_create(&t, v) == LB_ERR_UNSUPPORTED && !t);
    lb_vocab_free(&v);
}

/* GPT-2's byte alphabet, computed here independently of the library. */
static void gpt2_char(int byte, char out[3])
{
    int code = byte, extra = 0;
    bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
    if (!printable) {
        for (int b = 0; b < byte; b++)
            extra += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174);
        code = 256 + extra;
    }
    if (code < 0x80) {
        out[0] = (char)code, out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (code >> 6)), out[1] = (char)(0x80 | (code & 0x3f)), out[2] = '\0';
    }
}

static const char *const GPT2_MERGES[] = {
    "\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "in g", "1 2", "' s", "\xc4\xa0 \xc4\xa0",
    "\xc4\x8a \xc4\x8a", "\xc3\x83 \xc2\xa9", "t h", "missing merge",
};
enum { GPT2_N_MERGES = sizeof GPT2_MERGES / sizeof *GPT2_MERGES, GPT2_SPECIAL = 256 + 11 };

static lb_vocab *gpt2_vocab(void)
{
    lb_vocab *v = NULL;
    if (lb_vocab_create(&v, "gpt2", 256 + 11 + 1, false, true) != LB_OK)
        return NULL;
    for (int b = 0; b < 256; b++) {
        char c[3];
        gpt2_char(b, c);
        lb_vocab_set_token(v, b, c, strlen(c));
        v->token_types[b] = LB_TOKEN_NORMAL;
    }
    for (int i = 0; i < 11; i++) { /* each merge's result, in rank order */
        char joined[32];
        const char *m = GPT2_MERGES[i], *space = strchr(m + 1, ' ');
        snprintf(joined, sizeof joined, "%.*s%s", (int)(space - m), m, space + 1);
        lb_vocab_set_token(v, 256 + i, joined, strlen(joined));
        v->token_types[256 + i] = LB_TOKEN_NORMAL;
    }
    lb_vocab_set_token(v, GPT2_SPECIAL, "<|endoftext|>", 13);
    v->token_types[GPT2_SPECIAL] = LB_TOKEN_CONTROL;
    v->eos_id = v->bos_id = GPT2_SPECIAL;
    v->merges = calloc(GPT2_N_MERGES, sizeof *v->merges);
    if (v->merges) { /* lb_vocab_free releases them with lb_free, i.e. free */
        v->n_merges = GPT2_N_MERGES;
        for (int i = 0; i < GPT2_N_MERGES; i++)
            v->merges[i] = lb_strdup(GPT2_MERGES[i]);
    }
    return v;
}

static void check_split(const lb_tokenizer *t, const char *text, const char *const *expect,
                        int64_t n_expect)
{
    size_t *ends = NULL;
    int64_t n = 0;
    size_t len = strlen(text);
    CHECK_OK(lb_tokenizer_pretokenize(t, text, len, &ends, &n));
    bool ok = n == n_expect;
    for (int64_t i = 0, start = 0; ok && i < n; start = (int64_t)ends[i], i++)
        ok = ends[i] - (size_t)start == strlen(expect[i]) &&
             memcmp(text + start, expect[i], strlen(expect[i])) == 0;
    if (!ok) {
        fprintf(stderr, "pre-tokenization of \"%s\" differs; got:", text);
        for (int64_t i = 0; i < n; i++)
            fprintf(stderr, " [%.*s]", (int)(ends[i] - (i ? ends[i - 1] : 0)),
                    text + (i ? ends[i - 1] : 0));
        fprintf(stderr, "\n");
        test_failures++;
    }
    lb_free(ends);
}

#define SPLIT(t, text, ...)                                                                   \
    do {                                                                                      \
        static const char *const expect_[] = {__VA_ARGS__};                                   \
        check_split(t, text, expect_, sizeof expect_ / sizeof *expect_);                      \
    } while (0)

static void test_gpt2(void)
{
    lb_vocab *v = gpt2_vocab();
    CHECK(v != NULL);
    if (!v)
        return;
    lb_tokenizer *t = NULL;
    CHECK_OK(lb_tokenizer_create(&t, v));
    if (!t) {
        lb_vocab_free(&v);
        return;
    }
    SPLIT(t, "Hello world", "Hello", " world");
    SPLIT(t, "it's 12 o'clock", "it", "'s", " 12", " o", "'", "clock");
    SPLIT(t, "I'LL we'll", "I", "'", "LL", " we", "'ll");
    SPLIT(t, "a  b", "a", " ", " b");
    SPLIT(t, "   x", "  ", " x");
    SPLIT(t, "x\n\ny", "x", "\n", "\n", "y");
    SPLIT(t, "abc123def", "abc", "123", "def");
    SPLIT(t, "Hello!!! ", "Hello", "!!!", " ");
    SPLIT(t, "end.\n", "end", ".", "\n");
    SPLIT(t, "na\xc3\xafve caf\xc3\xa9", "na\xc3\xafve", " caf\xc3\xa9");
    SPLIT(t, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "\xe6\x97\xa5\xe6\x9c\xac",
          " \xf0\x9f\x98\x80");
    SPLIT(t, "x\xd9\xa1\xd9\xa2", "x", "\xd9\xa1\xd9\xa2"); /* Arabic-Indic digits are \p{N} */
    SPLIT(t, "a\xff" "b", "a", "\xff", "b");               /* invalid UTF-8: a chunk of its own */

    static const int32_t the[] = {'t', 257};                 /* "he" beats "th" by rank */
    check_encode(t, "the", false, the, 2);
    static const int32_t sp_the[] = {258, 256 + 7, 258};     /* "Ġthe", "ĠĠ"... */
    check_encode(t, " the   the", false, sp_the, 3);
    static const int32_t thing[] = {266, 260};               /* "in" then "ing", "th" last */
    check_encode(t, "thing", false, thing, 2);
    static const int32_t digits[] = {261, '3', '4'};
    check_encode(t, "1234", false, digits, 3);
    static const int32_t its[] = {'i', 't', 262};
    check_encode(t, "it's", false, its, 3);
    static const int32_t cafe[] = {'c', 'a', 'f', 265, 264};
    check_encode(t, "caf\xc3\xa9\n\n", false, cafe, 5);
    static const int32_t special[] = {GPT2_SPECIAL, '<', '|', 'e', 'n', 'd'};
    check_encode(t, "<|end", true, special, 6);
    check_encode(t, "", false, NULL, 0);

    static const char *const texts[] = {
        "Hello world", "it's 12 o'clock", "  multiple   spaces  ", "tabs\tand\nlines\r\n\n",
        "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
        "<|endoftext|> is text", "\x01\x02\x7f\xc2\xa0\xc2\xad", "", " ",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        check_round_trip(t, texts[i], strlen(texts[i]), i % 2 == 0);
    static const char invalid[] = "bad \xff\xfe utf8 \xc3 \xe6\x97";
    check_round_trip(t, invalid, sizeof invalid - 1, false);
    char text[512];
    lb_rng rng;
    lb_rng_seed(&rng, 0x69b2);
    int before = test_failures;
    for (int i = 0; i < 500 && before == test_failures; i++) {
        size_t n = random_text(&rng, text, sizeof text);
        check_round_trip(t, text, n, false);
    }
    if (before != test_failures)
        fprintf(stderr, "gpt2 random strings from seed 0x69b2\n");
    char piece[16];
    CHECK(lb_tokenizer_piece(t, -1, 258, piece, sizeof piece) == 4 && !strcmp(piece, " the"));
    CHECK(lb_tokenizer_piece(t, -1, GPT2_SPECIAL, piece, sizeof piece) == 0);

    lb_tokenizer *llama = NULL;
    size_t *ends = NULL;
    int64_t n_ends = 0;
    snprintf(v->model, sizeof v->model, "llama");
    v->unk_id = 0; /* scores are missing: a llama tokenizer cannot work */
    CHECK(lb_tokenizer_create(&llama, v) == LB_ERR_CORRUPT_FILE && !llama);
    CHECK(lb_tokenizer_pretokenize(t, "x", 1, &ends, &n_ends) == LB_OK && n_ends == 1);
    lb_free(ends);
    lb_tokenizer_free(&t);
    lb_vocab_free(&v);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void)
{
    static const char text[] = "Once upon a time, it's 12 o'clock \xe6\x97\xa5 \xff!";
    pbuf m;
    build_small_model(&m);
    lb_vocab *gpt2 = gpt2_vocab();
    lb_vocab *spm = NULL;
    CHECK_OK(lb_spm_model_parse(&spm, "small.model", m.data, m.n));
    const lb_vocab *vocabs[] = {gpt2, spm};
    for (int which = 0; which < 3; which++) {
        int64_t k = 0;
        for (;; k++) {
            lb_vocab *parsed = NULL;
            lb_tokenizer *t = NULL;
            int32_t *ids = NULL;
            int64_t n = 0;
            char *back = NULL;
            size_t back_len = 0;
            lb_alloc_fail_after(k);
            lb_status s;
            if (which == 2) {
                s = lb_spm_model_parse(&parsed, "small.model", m.data, m.n);
            } else {
                s = lb_tokenizer_create(&t, vocabs[which]);
                if (s == LB_OK)
                    s = lb_tokenizer_encode(t, text, sizeof text - 1, true, &ids, &n);
                if (s == LB_OK)
                    s = lb_tokenizer_decode(t, ids, n, &back, &back_len);
            }
            lb_alloc_fail_after(-1);
            lb_free(back);
            lb_free(ids);
            lb_tokenizer_free(&t);
            lb_vocab_free(&parsed);
            if (s == LB_OK)
                break;
            if (s != LB_ERR_NOMEM) {
                fprintf(stderr, "case %d, failing after %lld allocations: status %d (%s)\n",
                        which, (long long)k, (int)s, lb_last_error());
                test_failures++;
                break;
            }
            if (k > 10000) {
                fprintf(stderr, "case %d never succeeds\n", which);
                test_failures++;
                break;
            }
        }
        CHECK(k > 0);
    }
    lb_vocab_free(&spm);
    lb_vocab_free(&gpt2);
}

int main(void)
{
    test_spm_small();
    test_llama_handmade();
    test_gpt2();
    test_alloc_failures();
    test_tok512();
    test_spm_llama2();
    if (!test_failures && shared_missing) {
        printf("test_tokenizer: shared data missing, skipped in part\n");
        return 77;
    }
    return test_finish("test_tokenizer");
}
