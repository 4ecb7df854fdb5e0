/* Tokenizers over an lb_vocab: SentencePiece-style BPE by piece score, byte-level BPE by rank. */
#include "model/tokenizer.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/alloc_internal.h"
#include "common/hash.h"

enum tokenizer_kind { KIND_LLAMA, KIND_GPT2 };

/* "▁" (U+2581), SentencePiece's visible space. */
static const char SPM_SPACE[] = "\xe2\x96\x81";
enum { SPM_SPACE_LEN = 3 };
/* What SentencePiece prints for <unk> (its default unk_surface, " ⁇ "). */
static const char UNK_SURFACE[] = " \xe2\x81\x87 ";
enum { UNK_SURFACE_LEN = 5 };

/* GPT-2's pre-tokenizer: contractions, letter runs, digit runs, other runs, each with at most
 * one leading space; whitespace runs leave their last space to the following word. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Text -> token id, open addressing with linear probing. The hash of each slot is kept so
 * that most probes compare 4 bytes instead of the token text. */
typedef struct token_table {
    int32_t *ids;     /* [mask + 1], -1 when empty */
    uint32_t *hashes; /* [mask + 1] */
    uint64_t mask;
} token_table;

/* (left id, right id) -> merge rank and resulting token, for byte-level BPE. */
typedef struct merge_slot {
    uint64_t key; /* (left + 1) << 32 | (right + 1); 0 marks an empty slot */
    int32_t rank;
    int32_t result;
} merge_slot;

struct lb_tokenizer {
    const lb_vocab *vocab;
    enum tokenizer_kind kind;
    token_table table;
    uint32_t max_token_len;  /* longest text in the table: longer candidates cannot match */
    int32_t byte_tokens[256]; /* llama: "<0xXX>"; gpt2: the token of the byte's alphabet char */
    bool byte_fallback;       /* llama: all 256 byte tokens exist (gpt2: false) */
    /* llama: a Bloom filter of the adjacent character pairs inside tokens. A false positive
     * only joins two segments that could have been encoded apart. */
    uint64_t *pair_bits;
    uint64_t pair_mask; /* number of bits - 1 */
    /* gpt2 only */
    merge_slot *merges;
    uint64_t merge_mask;
    char alphabet[256][2];   /* UTF-8 of each byte's stand-in character (1 or 2 bytes) */
    uint8_t alphabet_len[256];
    int16_t byte_of_code[324]; /* code point -> byte, -1 if not in the alphabet */
    pcre2_general_context *pcre_context;
    pcre2_code *regex;
};

/* One piece of text during BPE: a doubly linked list over a fixed array, so merging is O(1)
 * and a symbol's index never changes (the left one of a merged pair survives). */
typedef struct symbol {
    int64_t prev, next; /* -1 at the ends */
    size_t start;       /* llama: offset in the escaped text */
    uint32_t len;       /* bytes; 0 once merged into its left neighbour */
    int32_t id;         /* token id, -1 if the text is no token */
} symbol;

/* A candidate merge of symbol left with its right neighbour. Candidates go stale when either
 * side merges elsewhere first; they are checked when popped rather than removed. 16 bytes:
 * the queue of a whole evaluation text is large and its speed is bound by cache misses. */
typedef struct bigram {
    uint32_t key;  /* larger merges first: the score's bits in order (llama), ~rank (gpt2) */
    int32_t value; /* llama: the merged token, whose length tells the pair; gpt2: the rank */
    int64_t left;
} bigram;

typedef struct bigram_heap {
    bigram *items;
    size_t n, cap;
} bigram_heap;

/* Length of the UTF-8 character at s, or 1 for a byte that starts no valid character. */
static size_t utf8_char_len(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n <= 1 || n > avail)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    /* overlong forms, surrogates and code points past U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 1;
    return n;
}

/* ---- hashing and tables ---- */

/* FNV-1a's low bits depend only on the bytes' low bits; the final mix folds high bits into the
 * low bits the tables index by. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = lb_fnv1a64(s, len);
    return h ^ (h >> 29);
}

static uint64_t table_capacity(int64_t n)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap *= 2;
    return cap;
}

static int32_t table_find(const lb_tokenizer *t, const char *text, size_t len)
{
    if (len == 0 || len > t->max_token_len)
        return -1;
    const lb_vocab *v = t->vocab;
    uint64_t h = hash_bytes(text, len);
    for (uint64_t i = h & t->table.mask;; i = (i + 1) & t->table.mask) {
        int32_t id = t->table.ids[i];
        if (id < 0)
            return -1;
        if (t->table.hashes[i] == (uint32_t)h && v->token_lengths[id] == len &&
            memcmp(v->tokens[id], text, len) == 0)
            return id;
    }
}

static bool is_control(const lb_vocab *v, int32_t id)
{
    if (v->token_types)
        return v->token_types[id] == LB_TOKEN_CONTROL;
    return id == v->bos_id || id == v->eos_id;
}

/* Tokens that text can turn into: not control tokens (<s> in the input stays text, as in
 * SentencePiece), not <unk>, not byte tokens (reached only by fallback). */
static bool is_matchable(const lb_vocab *v, int64_t id)
{
    if (!v->tokens[id] || v->token_lengths[id] == 0)
        return false;
    if (!v->token_types)
        return true;
    int32_t type = v->token_types[id];
    return type != LB_TOKEN_CONTROL && type != LB_TOKEN_UNKNOWN && type != LB_TOKEN_BYTE;
}

static lb_status build_table(lb_tokenizer *t)
{
    const lb_vocab *v = t->vocab;
    uint64_t cap = table_capacity(v->n_tokens);
    t->table.mask = cap - 1;
    t->table.ids = lb_malloc(cap * sizeof *t->table.ids);
    t->table.hashes = lb_malloc(cap * sizeof *t->table.hashes);
    if (!t->table.ids || !t->table.hashes)
        return lb_nomem("out of memory for the token table of %lld tokens",
                        (long long)v->n_tokens);
    memset(t->table.ids, 0xff, cap * sizeof *t->table.ids);
    for (int64_t id = 0; id < v->n_tokens; id++) {
        if (!is_matchable(v, id))
            continue;
        const char *text = v->tokens[id];
        uint32_t len = v->token_lengths[id];
        if (len > t->max_token_len)
            t->max_token_len = len;
        if (table_find(t, text, len) >= 0)
            continue; /* the lowest id keeps a repeated text (llama2.c vocabs repeat) */
        uint64_t h = hash_bytes(text, len), i = h & t->table.mask;
        while (t->table.ids[i] >= 0)
            i = (i + 1) & t->table.mask;
        t->table.ids[i] = (int32_t)id;
        t->table.hashes[i] = (uint32_t)h;
    }
    return LB_OK;
}

/* "<0xXX>" -> XX, else -1. */
static int parse_byte_token(const char *text, uint32_t len)
{
    if (len != 6 || memcmp(text, "<0x", 3) != 0 || text[5] != '>')
        return -1;
    static const char hex[] = "0123456789ABCDEF";
    const char *hi = memchr(hex, text[3], 16), *lo = memchr(hex, text[4], 16);
    return hi && lo ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
}

/* The pair's bytes as two filter bits. */
static void pair_bits_of(const lb_tokenizer *t, const char *pair, size_t len, uint64_t bits[2])
{
    uint64_t h = hash_bytes(pair, len);
    bits[0] = h & t->pair_mask;
    bits[1] = (h >> 32 | h << 32) * 0x9e3779b97f4a7c15ull >> 7 & t->pair_mask;
}

/* Can the two adjacent characters pair[0..len) ever end up in one token? */
static bool pair_possible(const lb_tokenizer *t, const char *pair, size_t len)
{
    if (len > t->max_token_len)
        return false;
    uint64_t bits[2];
    pair_bits_of(t, pair, len, bits);
    return (t->pair_bits[bits[0] >> 6] >> (bits[0] & 63) & 1) &&
           (t->pair_bits[bits[1] >> 6] >> (bits[1] & 63) & 1);
}

/* Characters are split as encoding splits text, so a token's pairs are exactly the character
 * boundaries that merges inside it crossed. */
static lb_status build_pair_filter(lb_tokenizer *t)
{
    const lb_vocab *v = t->vocab;
    uint64_t n_pairs = 0;
    for (int64_t id = 0; id < v->n_tokens; id++)
        if (is_matchable(v, id))
            n_pairs += v->token_lengths[id];
    uint64_t n_bits = 64; /* 16 bits a pair and 2 probes: about 1.5% false positives */
    while (n_bits < n_pairs * 16 && n_bits < (1ull << 40))
        n_bits *= 2;
    t->pair_mask = n_bits - 1;
    t->pair_bits = lb_calloc((size_t)(n_bits / 64), sizeof *t->pair_bits);
    if (!t->pair_bits)
        return lb_nomem("out of memory for the tokenizer's pair filter");
    for (int64_t id = 0; id < v->n_tokens; id++) {
        if (!is_matchable(v, id))
            continue;
        const uint8_t *s = (const uint8_t *)v->tokens[id];
        size_t len = v->token_lengths[id], prev = 0, prev_len = 0;
        for (size_t pos = 0; pos < len;) {
            size_t k = utf8_char_len(s + pos, len - pos);
            if (pos > 0) {
                uint64_t bits[2];
                pair_bits_of(t, (const char *)s + prev, prev_len + k, bits);
                t->pair_bits[bits[0] >> 6] |= 1ull << (bits[0] & 63);
                t->pair_bits[bits[1] >> 6] |= 1ull << (bits[1] & 63);
            }
            prev = pos;
            prev_len = k;
            pos += k;
        }
    }
    return LB_OK;
}

static lb_status setup_llama(lb_tokenizer *t)
{
    const lb_vocab *v = t->vocab;
    if (!v->scores)
        return lb_error(LB_ERR_CORRUPT_FILE, "llama vocabulary without piece scores");
    int found = 0;
    for (int64_t id = 0; id < v->n_tokens; id++) {
        if (!v->tokens[id] || (v->token_types && v->token_types[id] != LB_TOKEN_BYTE))
            continue;
        int byte = parse_byte_token(v->tokens[id], v->token_lengths[id]);
        if (byte >= 0 && t->byte_tokens[byte] < 0) {
            t->byte_tokens[byte] = (int32_t)id;
            found++;
        }
    }
    t->byte_fallback = found == 256;
    if (!t->byte_fallback && (v->unk_id < 0 || v->unk_id >= v->n_tokens))
        return lb_error(LB_ERR_CORRUPT_FILE, "llama vocabulary has neither all 256 byte tokens "
                        "(%d found) nor an unknown token", found);
    lb_status status = build_table(t);
    return status == LB_OK ? build_pair_filter(t) : status;
}

/* ---- gpt2 byte-level alphabet and merges ---- */

/* GPT-2 shows every byte as a printable character: the printable Latin-1 bytes stand for
 * themselves, the other 68 take U+0100 onwards in byte order. */
static void build_alphabet(lb_tokenizer *t)
{
    int next = 0;
    for (int i = 0; i < 324; i++)
        t->byte_of_code[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        int code = printable ? b : 256 + next++;
        t->byte_of_code[code] = (int16_t)b;
        if (code < 0x80) {
            t->alphabet[b][0] = (char)code;
            t->alphabet_len[b] = 1;
        } else {
            t->alphabet[b][0] = (char)(0xc0 | (code >> 6));
            t->alphabet[b][1] = (char)(0x80 | (code & 0x3f));
            t->alphabet_len[b] = 2;
        }
    }
}

static uint64_t merge_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    return key ^ (key >> 33);
}

static const merge_slot *merge_find(const lb_tokenizer *t, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(left + 1) << 32 | (uint64_t)(right + 1);
    for (uint64_t i = merge_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == key)
            return &t->merges[i];
        if (t->merges[i].key == 0)
            return NULL;
    }
}

static lb_status build_merges(lb_tokenizer *t)
{
    const lb_vocab *v = t->vocab;
    if (v->n_merges < 0 || v->n_merges > INT32_MAX || (v->n_merges > 0 && !v->merges))
        return lb_error(LB_ERR_CORRUPT_FILE, "gpt2 vocabulary with %lld merges",
                        (long long)v->n_merges);
    t->merge_mask = table_capacity(v->n_merges) - 1;
    t->merges = lb_calloc(t->merge_mask + 1, sizeof *t->merges);
    char *joined = lb_malloc(t->max_token_len); /* a longer result is no token */
    if (!t->merges || !joined) {
        lb_free(joined);
        return lb_nomem("out of memory for %lld merges", (long long)v->n_merges);
    }
    for (int64_t rank = 0; rank < v->n_merges; rank++) {
        const char *merge = v->merges[rank];
        /* Split at the first space after the first character, as llama.cpp reads merges:
         * byte-level tokens never contain a plain space (it is shown as "Ġ"). */
        const char *space = merge && merge[0] ? strchr(merge + 1, ' ') : NULL;
        if (!space)
            continue;
        size_t left_len = (size_t)(space - merge), right_len = strlen(space + 1);
        if (left_len + right_len > t->max_token_len)
            continue;
        memcpy(joined, merge, left_len);
        memcpy(joined + left_len, space + 1, right_len);
        int32_t left = table_find(t, merge, left_len);
        int32_t right = table_find(t, space + 1, right_len);
        int32_t result = table_find(t, joined, left_len + right_len);
        /* A merge whose parts or result are no tokens can never fire on token symbols. */
        if (left < 0 || right < 0 || result < 0)
            continue;
        uint64_t key = (uint64_t)(left + 1) << 32 | (uint64_t)(right + 1);
        uint64_t i = merge_hash(key) & t->merge_mask;
        while (t->merges[i].key != 0 && t->merges[i].key != key)
            i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == 0) /* a repeated pair keeps its first (best) rank */
            t->merges[i] = (merge_slot){key, (int32_t)rank, result};
    }
    lb_free(joined);
    return LB_OK;
}

static void *pcre_alloc(PCRE2_SIZE size, void *data)
{
    (void)data;
    return lb_malloc(size);
}

static void pcre_release(void *ptr, void *data)
{
    (void)data;
    lb_free(ptr);
}

static lb_status setup_gpt2(lb_tokenizer *t)
{
    const lb_vocab *v = t->vocab;
    build_alphabet(t);
    lb_status status = build_table(t);
    if (status != LB_OK)
        return status;
    int found = 0;
    for (int b = 0; b < 256; b++) {
        t->byte_tokens[b] = table_find(t, t->alphabet[b], t->alphabet_len[b]);
        found += t->byte_tokens[b] >= 0;
    }
    if (found < 256 && (v->unk_id < 0 || v->unk_id >= v->n_tokens))
        return lb_error(LB_ERR_CORRUPT_FILE, "gpt2 vocabulary has %d of the 256 byte characters "
                        "and no unknown token", found);
    if ((status = build_merges(t)) != LB_OK)
        return status;
    /* PCRE2 allocates through lb_malloc too, so failure injection reaches it. */
    t->pcre_context = pcre2_general_context_create(pcre_alloc, pcre_release, NULL);
    pcre2_compile_context *compile = t->pcre_context
                                         ? pcre2_compile_context_create(t->pcre_context)
                                         : NULL;
    if (!compile)
        return lb_nomem("out of memory for the pre-tokenizer");
    int error_code;
    PCRE2_SIZE error_offset;
    /* UCP: \s, \p{L}, \p{N} by Unicode properties; MATCH_INVALID_UTF: stray bytes in the
     * input are skipped by the pattern instead of failing the match. */
    t->regex = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                             &error_offset, compile);
    pcre2_compile_context_free(compile);
    if (!t->regex) {
        if (error_code == PCRE2_ERROR_NOMEMORY || error_code == PCRE2_ERROR_HEAP_FAILED)
            return lb_nomem("out of memory compiling the pre-tokenizer");
        PCRE2_UCHAR message[160];
        pcre2_get_error_message(error_code, message, sizeof message);
        return lb_error(LB_ERR_UNSUPPORTED, "pre-tokenizer pattern at offset %zu: %s",
                        (size_t)error_offset, (const char *)message);
    }
    /* JIT is only faster; without it (no executable memory, no JIT build) matching still works. */
    (void)pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE);
    return LB_OK;
}

lb_status lb_tokenizer_create(lb_tokenizer **out, const lb_vocab *vocab)
{
    *out = NULL;
    if (!vocab || vocab->n_tokens <= 0 || vocab->n_tokens > INT32_MAX || !vocab->tokens ||
        !vocab->token_lengths)
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer: empty or incomplete vocabulary");
    enum tokenizer_kind kind;
    if (strcmp(vocab->model, "llama") == 0)
        kind = KIND_LLAMA;
    else if (strcmp(vocab->model, "gpt2") == 0)
        kind = KIND_GPT2;
    else
        return lb_error(LB_ERR_UNSUPPORTED, "tokenizer model '%s' is not supported (llama, gpt2)",
                        vocab->model);
    lb_tokenizer *t = lb_calloc(1, sizeof *t);
    if (!t)
        return lb_nomem("out of memory for a tokenizer");
    t->vocab = vocab;
    t->kind = kind;
    for (int b = 0; b < 256; b++)
        t->byte_tokens[b] = -1;
    lb_status status = kind == KIND_LLAMA ? setup_llama(t) : setup_gpt2(t);
    if (status != LB_OK) {
        lb_tokenizer_free(&t);
        return status;
    }
    *out = t;
    return LB_OK;
}

void lb_tokenizer_free(lb_tokenizer **tokenizer)
{
    if (!tokenizer || !*tokenizer)
        return;
    lb_tokenizer *t = *tokenizer;
    pcre2_code_free(t->regex);
    pcre2_general_context_free(t->pcre_context);
    lb_free(t->merges);
    lb_free(t->pair_bits);
    lb_free(t->table.ids);
    lb_free(t->table.hashes);
    lb_free(t);
    *tokenizer = NULL;
}

/* ---- the merge queue ---- */

static bool bigram_before(const bigram *a, const bigram *b)
{
    return a->key > b->key || (a->key == b->key && a->left < b->left); /* ties: leftmost */
}

/* Maps a float to a uint32 with the same order (-0 and +0 equal, as they compare). */
static uint32_t score_key(float score)
{
    if (score == 0.0f)
        score = 0.0f;
    uint32_t bits;
    memcpy(&bits, &score, sizeof bits);
    return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

/* Grows an array of *cap items of `size` bytes to hold `need`: returns the array, or NULL
 * (with the old array still valid) when out of memory. */
static void *reserve(void *items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return items;
    size_t grown_cap = need > 2 * *cap ? (need > 64 ? need : 64) : 2 * *cap;
    void *grown = grown_cap < SIZE_MAX / size ? lb_realloc(items, grown_cap * size) : NULL;
    if (grown)
        *cap = grown_cap;
    return grown;
}

static lb_status heap_push(bigram_heap *h, bigram item)
{
    bigram *items = reserve(h->items, &h->cap, h->n + 1, sizeof *items);
    if (!items)
        return lb_nomem("out of memory for the merge queue");
    h->items = items;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&item, &h->items[parent]))
            break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = item;
    return LB_OK;
}

static bigram heap_pop(bigram_heap *h)
{
    bigram top = h->items[0], last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && bigram_before(&h->items[child + 1], &h->items[child]))
            child++;
        if (!bigram_before(&h->items[child], &last))
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->n > 0)
        h->items[i] = last;
    return top;
}

/* Unlinks right after merging it into left. */
static void symbol_merge(symbol *syms, int64_t left, int64_t right, int32_t id)
{
    syms[left].len += syms[right].len;
    syms[left].id = id;
    syms[left].next = syms[right].next;
    if (syms[right].next >= 0)
        syms[syms[right].next].prev = left;
    syms[right].len = 0;
}

/* ---- llama (SentencePiece BPE) ---- */

/* The text with the dummy prefix and every ' ' as "▁", as SentencePiece normalizes it. */
static char *llama_escape(const char *text, size_t len, size_t *out_len)
{
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    uint64_t total;
    if (!lb_size_mul(spaces, SPM_SPACE_LEN - 1, &total) || !lb_size_add(total, len, &total) ||
        !lb_size_add(total, SPM_SPACE_LEN, &total) || total > SIZE_MAX)
        return NULL;
    char *out = lb_malloc((size_t)total);
    if (!out)
        return NULL;
    size_t n = 0;
    memcpy(out, SPM_SPACE, SPM_SPACE_LEN);
    n += SPM_SPACE_LEN;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(out + n, SPM_SPACE, SPM_SPACE_LEN);
            n += SPM_SPACE_LEN;
        } else {
            out[n++] = text[i];
        }
    }
    *out_len = n;
    return out;
}

/* Queues the merge of symbol left with its right neighbour if the pair makes a token. */
static lb_status try_pair(const lb_tokenizer *t, const char *text, const symbol *syms,
                          int64_t left, bigram_heap *heap)
{
    int64_t right = left >= 0 ? syms[left].next : -1;
    if (right < 0)
        return LB_OK;
    if (t->kind == KIND_LLAMA) {
        size_t len = (size_t)syms[left].len + syms[right].len;
        int32_t id = table_find(t, text + syms[left].start, len);
        return id < 0 ? LB_OK
                      : heap_push(heap, (bigram){score_key(t->vocab->scores[id]), id, left});
    }
    if (syms[left].id < 0 || syms[right].id < 0)
        return LB_OK;
    const merge_slot *m = merge_find(t, syms[left].id, syms[right].id);
    return !m ? LB_OK : heap_push(heap, (bigram){UINT32_MAX - (uint32_t)m->rank, m->rank, left});
}

/* The token a queued merge makes, or -1 if it went stale (a side merged elsewhere first). */
static int32_t pair_result(const lb_tokenizer *t, const symbol *syms, bigram b)
{
    const symbol *l = &syms[b.left];
    if (l->len == 0 || l->next < 0)
        return -1;
    /* llama: symbols only grow, so the pair is unchanged iff it still has the token's length
     * (had left absorbed its old neighbour, its new one would make it longer). gpt2: each rank
     * names one pair (repeated pairs were dropped). */
    if (t->kind == KIND_LLAMA)
        return (uint64_t)l->len + syms[l->next].len == t->vocab->token_lengths[b.value] ? b.value
                                                                                      : -1;
    const merge_slot *m = merge_find(t, l->id, syms[l->next].id);
    return m && m->rank == b.value ? m->result : -1;
}

/* BPE over n symbols (start, len and id set) of text: links them, applies the best merge
 * (highest score or lowest rank, leftmost on ties) until none is left, emits the tokens;
 * symbols that are no token become byte tokens (llama) or unk. */
static lb_status bpe_segment(const lb_tokenizer *t, const char *text, symbol *syms, int64_t n,
                             bigram_heap *heap, int32_t *tokens, int64_t *n_tokens)
{
    lb_status status;
    heap->n = 0;
    for (int64_t i = 0; i < n; i++) {
        syms[i].prev = i - 1;
        syms[i].next = i + 1 < n ? i + 1 : -1;
    }
    for (int64_t i = 0; i + 1 < n; i++)
        if ((status = try_pair(t, text, syms, i, heap)) != LB_OK)
            return status;
    while (heap->n > 0) {
        bigram b = heap_pop(heap);
        int32_t id = pair_result(t, syms, b);
        if (id < 0)
            continue;
        symbol_merge(syms, b.left, syms[b.left].next, id);
        if ((status = try_pair(t, text, syms, syms[b.left].prev, heap)) != LB_OK ||
            (status = try_pair(t, text, syms, b.left, heap)) != LB_OK)
            return status;
    }
    int64_t out = *n_tokens;
    for (int64_t i = 0; i >= 0; i = syms[i].next) {
        if (syms[i].id >= 0) {
            tokens[out++] = syms[i].id;
        } else if (t->byte_fallback) {
            for (uint32_t k = 0; k < syms[i].len; k++)
                tokens[out++] = t->byte_tokens[(uint8_t)text[syms[i].start + k]];
        } else {
            tokens[out++] = t->vocab->unk_id;
        }
    }
    *n_tokens = out;
    return LB_OK;
}

/* SentencePiece BPE runs over the whole text (no pre-tokenizer), but a boundary between two
 * characters that appear next to each other in no token can never be merged across; merges
 * on either side then never interact, and running each segment alone gives the same result as
 * one global queue, with small queues that stay in cache. */
static lb_status llama_encode(const lb_tokenizer *t, const char *raw, size_t raw_len,
                              int32_t *tokens, int64_t *n_tokens)
{
    lb_status status = LB_OK;
    size_t len = 0;
    char *text = llama_escape(raw, raw_len, &len);
    symbol *syms = NULL;
    size_t cap = 0;
    int64_t n = 0;
    bigram_heap heap = {0};
    if (!text) {
        status = lb_error(LB_ERR_NOMEM, "out of memory escaping %zu bytes of text", raw_len);
        goto done;
    }
    for (size_t pos = 0; pos < len;) {
        size_t k = utf8_char_len((const uint8_t *)text + pos, len - pos);
        if (n > 0 && !pair_possible(t, text + syms[n - 1].start, syms[n - 1].len + k)) {
            if ((status = bpe_segment(t, text, syms, n, &heap, tokens, n_tokens)) !=
                LB_OK)
                goto done;
            n = 0;
        }
        symbol *grown = reserve(syms, &cap, (size_t)n + 1, sizeof *syms);
        if (!grown) {
            status = lb_nomem("out of memory for %lld symbols", (long long)n + 1);
            goto done;
        }
        syms = grown;
        syms[n++] = (symbol){0, 0, pos, (uint32_t)k, table_find(t, text + pos, k)};
        pos += k;
    }
    if (n > 0)
        status = bpe_segment(t, text, syms, n, &heap, tokens, n_tokens);
done:
    lb_free(heap.items);
    lb_free(syms);
    lb_free(text);
    return status;
}

/* ---- gpt2 (byte-level BPE) ---- */

/* Receives each pre-tokenized chunk [start, end) of the text in order. */
typedef lb_status (*chunk_fn)(void *ctx, size_t start, size_t end);

/* Runs the pre-tokenizer over the text. Bytes the pattern skips (invalid UTF-8) form chunks
 * of their own, so the chunks always tile the whole text. */
static lb_status gpt2_split(const lb_tokenizer *t, const char *text, size_t len, chunk_fn fn,
                            void *ctx)
{
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(t->regex, t->pcre_context);
    if (!match)
        return lb_nomem("out of memory for the pre-tokenizer");
    lb_status status = LB_OK;
    const uint8_t *bytes = (const uint8_t *)text;
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(t->regex, bytes, len, pos, 0, match, NULL);
        size_t start = len, end = len;
        if (rc >= 0) {
            PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
            start = ovector[0];
            end = ovector[1];
        } else if (rc == PCRE2_ERROR_NOMEMORY) {
            status = lb_nomem("out of memory pre-tokenizing at byte %zu", pos);
            break;
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR message[160];
            pcre2_get_error_message(rc, message, sizeof message);
            status = lb_error(LB_ERR_UNSUPPORTED, "pre-tokenizing at byte %zu: %s", pos,
                              (const char *)message);
            break;
        }
        /* Every alternative consumes something; should one ever match empty, its character
         * becomes a chunk so that the loop always advances. */
        if (end == start && start < len)
            end = start + utf8_char_len(bytes + start, len - start);
        if (start > pos && (status = fn(ctx, pos, start)) != LB_OK)
            break;
        if (end > start && (status = fn(ctx, start, end)) != LB_OK)
            break;
        pos = end;
    }
    pcre2_match_data_free(match);
    return status;
}

typedef struct gpt2_state {
    const lb_tokenizer *t;
    const uint8_t *text;
    symbol *syms; /* room for cap symbols: the longest chunk so far */
    size_t cap;
    bigram_heap heap;
    int32_t *tokens;
    int64_t *n_tokens;
} gpt2_state;

static lb_status gpt2_on_chunk(void *ctx, size_t start, size_t end)
{
    gpt2_state *s = ctx;
    size_t len = end - start;
    symbol *grown = reserve(s->syms, &s->cap, len, sizeof *grown);
    if (!grown)
        return lb_nomem("out of memory for %zu symbols", len);
    s->syms = grown;
    /* One symbol per byte, standing for the byte's alphabet character. */
    for (size_t i = 0; i < len; i++)
        s->syms[i] = (symbol){0, 0, i, 1, s->t->byte_tokens[s->text[start + i]]};
    return bpe_segment(s->t, (const char *)s->text + start, s->syms, (int64_t)len, &s->heap,
                       s->tokens, s->n_tokens);
}

static lb_status gpt2_encode(const lb_tokenizer *t, const char *text, size_t len,
                             int32_t *tokens, int64_t *n_tokens)
{
    gpt2_state s = {t, (const uint8_t *)text, NULL, 0, {0}, tokens, n_tokens};
    lb_status status = gpt2_split(t, text, len, gpt2_on_chunk, &s);
    lb_free(s.heap.items);
    lb_free(s.syms);
    return status;
}

typedef struct split_state {
    size_t *ends;
    int64_t n;
} split_state;

static lb_status split_on_chunk(void *ctx, size_t start, size_t end)
{
    (void)start;
    split_state *s = ctx;
    s->ends[s->n++] = end;
    return LB_OK;
}

lb_status lb_tokenizer_pretokenize(const lb_tokenizer *tokenizer, const char *text, size_t len,
                                   size_t **ends, int64_t *n_chunks)
{
    *ends = NULL;
    *n_chunks = 0;
    if (!tokenizer || (!text && len > 0))
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer pretokenize: no tokenizer or no text");
    if (tokenizer->kind != KIND_GPT2)
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer pretokenize: only gpt2 vocabularies "
                        "pre-tokenize");
    /* At most one chunk per byte. */
    split_state s = {len < SIZE_MAX / sizeof(size_t) ? lb_malloc(len * sizeof(size_t)) : NULL, 0};
    if (!s.ends)
        return lb_error(LB_ERR_NOMEM, "out of memory to pre-tokenize %zu bytes", len);
    lb_status status = gpt2_split(tokenizer, text, len, split_on_chunk, &s);
    if (status != LB_OK) {
        lb_free(s.ends);
        return status;
    }
    *ends = s.ends;
    *n_chunks = s.n;
    return LB_OK;
}

lb_status lb_tokenizer_encode(const lb_tokenizer *tokenizer, const char *text, size_t len,
                              bool add_bos, int32_t **tokens, int64_t *n_tokens)
{
    *tokens = NULL;
    *n_tokens = 0;
    if (!tokenizer || (!text && len > 0))
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer encode: no tokenizer or no text");
    const lb_tokenizer *t = tokenizer;
    /* At most one token per byte, BOS, and for llama the escaping: a space becomes 3 bytes
     * and the prefix adds 3. */
    uint64_t cap = t->kind == KIND_LLAMA ? (uint64_t)len * SPM_SPACE_LEN + SPM_SPACE_LEN + 1
                                         : (uint64_t)len + 1;
    if (len > SIZE_MAX / 16 || cap > SIZE_MAX / sizeof(int32_t))
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer encode: text of %zu bytes", len);
    int32_t *out = lb_malloc((size_t)cap * sizeof *out);
    if (!out)
        return lb_error(LB_ERR_NOMEM, "out of memory for the tokens of %zu bytes", len);
    int64_t n = 0;
    const lb_vocab *v = t->vocab;
    if (add_bos && v->bos_id >= 0 && v->bos_id < v->n_tokens)
        out[n++] = v->bos_id;
    lb_status status = LB_OK;
    /* Empty text gets no dummy prefix, as in llama2.c and SentencePiece. */
    if (len > 0)
        status = t->kind == KIND_LLAMA ? llama_encode(t, text, len, out, &n)
                                       : gpt2_encode(t, text, len, out, &n);
    if (status != LB_OK) {
        lb_free(out);
        return status;
    }
    assert((uint64_t)n <= cap);
    int32_t *shrunk = lb_realloc(out, (size_t)(n > 0 ? n : 1) * sizeof *out);
    *tokens = shrunk ? shrunk : out; /* a failed shrink keeps the larger, valid buffer */
    *n_tokens = n;
    return LB_OK;
}

/* ---- decoding ---- */

/* Appends k bytes to dst[cap] at *n, counting what does not fit so callers learn the length. */
static void emit(char *dst, size_t cap, size_t *n, const char *src, size_t k)
{
    if (*n < cap)
        memcpy(dst + *n, src, k < cap - *n ? k : cap - *n);
    *n += k;
}

/* The decoded text of token (valid id) after previous (-1 or a valid id): writes what fits in
 * dst[cap], returns the full length. */
static size_t piece_write(const lb_tokenizer *t, int32_t previous, int32_t token, char *dst,
                          size_t cap)
{
    const lb_vocab *v = t->vocab;
    const char *text = v->tokens[token] ? v->tokens[token] : "";
    size_t len = v->tokens[token] ? v->token_lengths[token] : 0;
    int32_t type = v->token_types ? v->token_types[token] : LB_TOKEN_NORMAL;
    size_t n = 0;
    if (is_control(v, token))
        return 0;
    if (t->kind == KIND_LLAMA) {
        int byte = parse_byte_token(text, (uint32_t)len);
        if (byte >= 0 && (type == LB_TOKEN_BYTE || !v->token_types)) {
            char c = (char)byte;
            emit(dst, cap, &n, &c, 1);
            return n;
        }
        if (type == LB_TOKEN_UNKNOWN) {
            emit(dst, cap, &n, UNK_SURFACE, UNK_SURFACE_LEN);
            return n;
        }
        /* Normal and user-defined pieces: "▁" stands for a space (encoding made it so), and
         * the dummy prefix's space is no part of the text: drop it at the start. */
        bool at_start = previous < 0 || is_control(v, previous);
        for (size_t i = 0; i < len;) {
            if (len - i >= SPM_SPACE_LEN && memcmp(text + i, SPM_SPACE, SPM_SPACE_LEN) == 0) {
                if (!(at_start && i == 0))
                    emit(dst, cap, &n, " ", 1);
                i += SPM_SPACE_LEN;
            } else {
                emit(dst, cap, &n, text + i, 1);
                i++;
            }
        }
        return n;
    }
    if (type == LB_TOKEN_USER_DEFINED) { /* gpt2 added tokens are plain text */
        emit(dst, cap, &n, text, len);
        return n;
    }
    /* gpt2: map the alphabet's characters back to the bytes they stand for. */
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_char_len(s + i, len - i);
        uint32_t code = k == 1 ? s[i] : k == 2 ? (uint32_t)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f)
                                                : UINT32_MAX;
        if (code < 324 && t->byte_of_code[code] >= 0) {
            char c = (char)t->byte_of_code[code];
            emit(dst, cap, &n, &c, 1);
        } else {
            emit(dst, cap, &n, text + i, k); /* not from the alphabet: keep as written */
        }
        i += k;
    }
    return n;
}

static bool valid_id(const lb_tokenizer *t, int64_t id)
{
    return id >= 0 && id < t->vocab->n_tokens;
}

lb_status lb_tokenizer_decode(const lb_tokenizer *tokenizer, const int32_t *tokens,
                              int64_t n_tokens, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (!tokenizer || n_tokens < 0 || (!tokens && n_tokens > 0))
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer decode: bad arguments");
    const lb_tokenizer *t = tokenizer;
    /* Pass 1 measures, so the output is allocated once. */
    uint64_t total = 0;
    for (int64_t i = 0; i < n_tokens; i++) {
        if (!valid_id(t, tokens[i]))
            return lb_error(LB_ERR_INVALID_ARG, "tokenizer decode: token %lld is id %d, outside "
                            "0..%lld", (long long)i, (int)tokens[i],
                            (long long)t->vocab->n_tokens - 1);
        total += piece_write(t, i > 0 ? tokens[i - 1] : -1, tokens[i], NULL, 0);
    }
    if (total >= SIZE_MAX)
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer decode: text too long");
    char *out = lb_malloc((size_t)total + 1);
    if (!out)
        return lb_error(LB_ERR_NOMEM, "out of memory for %llu bytes of decoded text",
                        (unsigned long long)total);
    size_t n = 0;
    for (int64_t i = 0; i < n_tokens; i++)
        n += piece_write(t, i > 0 ? tokens[i - 1] : -1, tokens[i], out + n, (size_t)total - n);
    out[n] = '\0';
    *text = out;
    *len = n;
    return LB_OK;
}

int64_t lb_tokenizer_piece(const lb_tokenizer *tokenizer, int32_t previous, int32_t token,
                           char *buffer, size_t size)
{
    if (!tokenizer || !buffer || !valid_id(tokenizer, token) ||
        (previous != -1 && !valid_id(tokenizer, previous)))
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer piece: token %d after %d out of range",
                        (int)token, (int)previous);
    size_t n = piece_write(tokenizer, previous, token, buffer, size);
    if (n >= size) {
        if (size > 0)
            buffer[0] = '\0';
        return lb_error(LB_ERR_INVALID_ARG, "tokenizer piece: token %d needs %zu bytes, "
                        "buffer has %zu", (int)token, n + 1, size);
    }
    buffer[n] = '\0';
    return (int64_t)n;
}
