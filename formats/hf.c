/* Hugging Face side files: config.json hyperparameters and tokenizer.json vocabularies. */
#include "formats/hf_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/alloc_internal.h"
#include "formats/mapped_file_internal.h"

/* Real config.json files are a few KB and tokenizer.json files up to ~20 MB (Llama 3, Qwen2);
 * the caps only keep a hostile file from reaching the parser at any size. */
#define HF_MAX_CONFIG_BYTES ((uint64_t)16 << 20)
#define HF_MAX_TOKENIZER_BYTES ((uint64_t)512 << 20)
/* Largest accepted token id + 1: ten times the biggest real vocabularies (~256K). */
#define HF_MAX_TOKENS ((int64_t)10000000)
/* Sizes in config.json beyond this are not a real model and would invite overflow later. */
#define HF_MAX_DIM ((int64_t)INT32_MAX)

/* Parses `len` bytes of JSON with duplicate keys rejected. */
static lb_status parse_json(json_t **out, const char *name, const char *text, uint64_t len,
                            uint64_t cap, size_t flags)
{
    *out = NULL;
    if (len > cap)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: file at offset 0: %llu bytes exceeds the "
                        "%llu-byte limit", name, (unsigned long long)len,
                        (unsigned long long)cap);
    json_error_t jerr;
    *out = json_loadb(text ? text : "", (size_t)len, JSON_REJECT_DUPLICATES | flags, &jerr);
    if (!*out)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: JSON at offset %d: %s", name,
                        jerr.position > 0 ? jerr.position : 0, jerr.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: JSON at offset 0: not an object", name);
    }
    return LB_OK;
}

static lb_status load_json_file(json_t **out, const char *path, uint64_t cap, size_t flags)
{
    *out = NULL;
    lb_mapped_file *file = NULL;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    status = parse_json(out, path, (const char *)file->data, file->size, cap, flags);
    lb_mapped_file_close(&file);
    return status;
}

static bool is_directory(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_regular_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* "<dir>/<name>", or "<dirname(file)>/<name>" when `sibling` is set. */
static char *path_beside(const char *path, const char *name, bool sibling)
{
    size_t dir_len = strlen(path);
    if (sibling) {
        const char *slash = strrchr(path, '/');
        if (!slash)
            return lb_strdup(name);
        dir_len = (size_t)(slash - path);
    }
    size_t bytes = dir_len + 1 + strlen(name) + 1;
    char *p = lb_malloc(bytes);
    if (p)
        snprintf(p, bytes, "%.*s/%s", (int)dir_len, path, name);
    return p;
}

/* ---- config.json ---- */

/* A positive integer key; absent or null takes `fallback` unless `required`. */
static lb_status config_int(const json_t *root, const char *name, const char *key, bool required,
                            int64_t fallback, int64_t *out)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': missing", name, key);
        *out = fallback;
        return LB_OK;
    }
    if (!json_is_integer(v))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': not an integer", name, key);
    json_int_t x = json_integer_value(v);
    if (x <= 0 || x > HF_MAX_DIM)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': %lld is out of range 1..%lld", name,
                        key, (long long)x, (long long)HF_MAX_DIM);
    *out = (int64_t)x;
    return LB_OK;
}

/* A positive finite number key (integer or real JSON); absent or null takes `fallback`. */
static lb_status config_number(const json_t *root, const char *name, const char *key,
                               double fallback, double *out)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return LB_OK;
    }
    if (!json_is_number(v))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': not a number", name, key);
    double x = json_number_value(v);
    if (!(x > 0) || x > 1e300)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': %g is not positive", name, key, x);
    *out = x;
    return LB_OK;
}

static lb_status config_parse_root(lb_hparams *out, const char *name, const json_t *root)
{
    lb_hparams hp;
    memset(&hp, 0, sizeof hp);
    const json_t *type = json_object_get(root, "model_type");
    if (!type || !json_is_string(type))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key 'model_type': %s", name,
                        type ? "not a string" : "missing");
    const char *model_type = json_string_value(type);
    /* Mistral is llama with GQA and a sliding window that llama.cpp also ignores at these
     * context lengths, so it shares the llama graph. */
    if (strcmp(model_type, "llama") == 0 || strcmp(model_type, "mistral") == 0)
        snprintf(hp.arch, sizeof hp.arch, "llama");
    else if (strcmp(model_type, "qwen2") == 0)
        snprintf(hp.arch, sizeof hp.arch, "qwen2");
    else
        return lb_error(LB_ERR_UNSUPPORTED, "%s: key 'model_type': '%s' is not supported "
                        "(llama, mistral, qwen2)", name, model_type);
    const json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) &&
        (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return lb_error(LB_ERR_UNSUPPORTED, "%s: key 'hidden_act': only \"silu\" is supported",
                        name);
    /* lb_hparams has no field for scaled RoPE (Llama 3.1's "llama3", YaRN, linear): running
     * such a model with plain RoPE would be silently wrong, so refuse it. */
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        const json_t *rope_type = json_object_get(scaling, "rope_type");
        if (!rope_type)
            rope_type = json_object_get(scaling, "type");
        return lb_error(LB_ERR_UNSUPPORTED, "%s: key 'rope_scaling': scaled RoPE (%s) is not "
                        "supported", name,
                        json_is_string(rope_type) ? json_string_value(rope_type) : "?");
    }

    lb_status s;
    if ((s = config_int(root, name, "hidden_size", true, 0, &hp.dim)) != LB_OK ||
        (s = config_int(root, name, "intermediate_size", true, 0, &hp.hidden_dim)) != LB_OK ||
        (s = config_int(root, name, "num_hidden_layers", true, 0, &hp.n_layers)) != LB_OK ||
        (s = config_int(root, name, "num_attention_heads", true, 0, &hp.n_heads)) != LB_OK ||
        (s = config_int(root, name, "num_key_value_heads", false, hp.n_heads,
                        &hp.n_kv_heads)) != LB_OK ||
        (s = config_int(root, name, "vocab_size", true, 0, &hp.vocab_size)) != LB_OK ||
        (s = config_int(root, name, "max_position_embeddings", false, 2048,
                        &hp.context_length)) != LB_OK ||
        (s = config_int(root, name, "head_dim", false, 0, &hp.head_dim)) != LB_OK ||
        (s = config_number(root, name, "rope_theta", 10000.0, &hp.rope_theta)) != LB_OK ||
        (s = config_number(root, name, "rms_norm_eps", 1e-6, &hp.rms_eps)) != LB_OK)
        return s;
    const json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_null(tie) && !json_is_boolean(tie))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key 'tie_word_embeddings': not a boolean",
                        name);
    hp.tied_embeddings = tie && json_is_true(tie);
    if (hp.head_dim == 0) {
        if (hp.dim % hp.n_heads != 0)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: key 'num_attention_heads': %lld does not "
                            "divide hidden_size %lld", name, (long long)hp.n_heads,
                            (long long)hp.dim);
        hp.head_dim = hp.dim / hp.n_heads;
    }
    if (hp.n_heads % hp.n_kv_heads != 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key 'num_key_value_heads': %lld does not "
                        "divide num_attention_heads %lld", name, (long long)hp.n_kv_heads,
                        (long long)hp.n_heads);
    *out = hp;
    return LB_OK;
}

lb_status lb_hf_config_parse(lb_hparams *out, const char *name, const char *json, uint64_t len)
{
    json_t *root = NULL;
    lb_status status = parse_json(&root, name, json, len, HF_MAX_CONFIG_BYTES, 0);
    if (status == LB_OK)
        status = config_parse_root(out, name, root);
    json_decref(root);
    return status;
}

lb_status lb_hf_config_load(lb_hparams *out, const char *path)
{
    char *file = is_directory(path) ? path_beside(path, "config.json", false) : lb_strdup(path);
    if (!file)
        return lb_nomem("%s: out of memory for the config.json path", path);
    json_t *root = NULL;
    lb_status status = load_json_file(&root, file, HF_MAX_CONFIG_BYTES, 0);
    if (status == LB_OK)
        status = config_parse_root(out, file, root);
    json_decref(root);
    lb_free(file);
    return status;
}

/* ---- tokenizer.json ---- */

/* Is `node` (a pre_tokenizer or decoder) of `type`, directly or inside a "Sequence"? */
static bool has_component(const json_t *node, const char *type)
{
    if (!json_is_object(node))
        return false;
    const char *t = json_string_value(json_object_get(node, "type"));
    if (t && strcmp(t, type) == 0)
        return true;
    if (!t || strcmp(t, "Sequence") != 0)
        return false;
    const json_t *list = json_object_get(node, "pretokenizers");
    if (!list)
        list = json_object_get(node, "decoders");
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
        if (has_component(item, type))
            return true;
    return false;
}

/* SentencePiece byte pieces "<0xXX>". */
static bool is_byte_piece(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEFabcdef";
    return len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && s[3] && s[4] &&
           strchr(hex, s[3]) && strchr(hex, s[4]);
}

/* Id of the token whose text is exactly `text`, or -1 (added tokens first, then the model's
 * vocab; both were validated before this is called). */
static int64_t find_token(const json_t *vocab_map, const json_t *added, const char *text,
                          size_t len)
{
    size_t i;
    const json_t *item;
    json_array_foreach(added, i, item) {
        const json_t *content = json_object_get(item, "content");
        if (json_string_length(content) == len && memcmp(json_string_value(content), text,
                                                         len) == 0)
            return (int64_t)json_integer_value(json_object_get(item, "id"));
    }
    const json_t *id = json_object_getn(vocab_map, text, len);
    return id ? (int64_t)json_integer_value(id) : -1;
}

static int64_t find_cstr(const json_t *vocab_map, const json_t *added, const char *text)
{
    return find_token(vocab_map, added, text, strlen(text));
}

/* A special-token entry of tokenizer_config.json: "text", {"content": "text"} or null.
 * *text is NULL when absent or null. */
static lb_status special_entry(const json_t *config, const char *name, const char *key,
                               const json_t **text)
{
    *text = NULL;
    const json_t *v = json_object_get(config, key);
    if (!v || json_is_null(v))
        return LB_OK;
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': not a string or an object with a "
                        "string \"content\"", name, key);
    *text = v;
    return LB_OK;
}

/* Applies tokenizer_config.json: its special tokens win over the name-based guesses. */
static lb_status apply_tokenizer_config(lb_vocab *vocab, const json_t *config, const char *name,
                                        const json_t *vocab_map, const json_t *added)
{
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    int32_t *ids[] = {&vocab->bos_id, &vocab->eos_id, &vocab->unk_id, &vocab->pad_id};
    for (size_t k = 0; k < 4; k++) {
        const json_t *text;
        lb_status status = special_entry(config, name, keys[k], &text);
        if (status != LB_OK)
            return status;
        if (!text)
            continue;
        /* A name missing from the vocabulary is left to the guesses (transformers would add
         * it as a new token at load time; there is no id to give it here). */
        int64_t id = find_token(vocab_map, added, json_string_value(text),
                                json_string_length(text));
        if (id >= 0)
            *ids[k] = (int32_t)id;
    }
    static const char *const flags[] = {"add_bos_token", "add_eos_token"};
    int32_t *flag_out[] = {&vocab->add_bos, &vocab->add_eos};
    for (size_t k = 0; k < 2; k++) {
        const json_t *v = json_object_get(config, flags[k]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_boolean(v))
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: key '%s': not a boolean", name, flags[k]);
        *flag_out[k] = json_is_true(v) ? 1 : 0;
    }
    return LB_OK;
}

/* Fills vocab->merges from model.merges: "a b" strings or ["a", "b"] pairs. */
static lb_status read_merges(lb_vocab *vocab, const json_t *merges, const char *name)
{
    if (!merges || json_is_null(merges))
        return LB_OK;
    if (!json_is_array(merges))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.merges: not a list", name);
    size_t n = json_array_size(merges);
    vocab->merges = lb_calloc(n ? n : 1, sizeof *vocab->merges);
    if (!vocab->merges)
        return lb_nomem("%s: out of memory for %zu merges", name, n);
    vocab->n_merges = (int64_t)n;
    size_t i;
    const json_t *item;
    json_array_foreach(merges, i, item) {
        const char *a = NULL, *b = NULL;
        size_t a_len = 0, b_len = 0;
        if (json_is_string(item)) {
            /* llama.cpp splits at the first space after the first byte; both halves must be
             * non-empty. */
            const char *s = json_string_value(item);
            size_t len = json_string_length(item);
            const char *space = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (space && space + 1 < s + len) {
                a = s;
                a_len = (size_t)(space - s);
                b = space + 1;
                b_len = len - a_len - 1;
            }
        } else if (json_is_array(item) && json_array_size(item) == 2 &&
                   json_is_string(json_array_get(item, 0)) &&
                   json_is_string(json_array_get(item, 1))) {
            a = json_string_value(json_array_get(item, 0));
            a_len = json_string_length(json_array_get(item, 0));
            b = json_string_value(json_array_get(item, 1));
            b_len = json_string_length(json_array_get(item, 1));
        }
        if (!a || a_len == 0 || b_len == 0)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.merges[%zu]: not \"left right\" or "
                            "[\"left\", \"right\"]", name, i);
        char *m = lb_malloc(a_len + b_len + 2);
        if (!m)
            return lb_nomem("%s: out of memory for merge %zu", name, i);
        memcpy(m, a, a_len);
        m[a_len] = ' ';
        memcpy(m + a_len + 1, b, b_len);
        m[a_len + 1 + b_len] = '\0';
        vocab->merges[i] = m;
    }
    return LB_OK;
}

/* A token id from JSON: an integer in 0..HF_MAX_TOKENS-1. */
static bool token_id(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t id = json_integer_value(v);
    if (id < 0 || id >= HF_MAX_TOKENS)
        return false;
    *out = (int64_t)id;
    return true;
}

static lb_status tokenizer_build(lb_vocab **out, const char *name, const json_t *root,
                                 const json_t *config, const char *config_name)
{
    lb_vocab *vocab = NULL;
    lb_status status = LB_OK;
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model: %s", name,
                        model ? "not an object" : "missing");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.type: missing or not a string", name);
    if (strcmp(type, "BPE") != 0)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: model.type: '%s' tokenizers are not supported "
                        "(BPE only)", name, type);
    const json_t *vocab_map = json_object_get(model, "vocab");
    if (!json_is_object(vocab_map))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.vocab: %s", name,
                        vocab_map ? "not an object" : "missing");
    const json_t *fallback = json_object_get(model, "byte_fallback");
    if (fallback && !json_is_null(fallback) && !json_is_boolean(fallback))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.byte_fallback: not a boolean", name);
    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: added_tokens: not a list", name);
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    const json_t *decoder = json_object_get(root, "decoder");
    bool byte_level = has_component(pre, "ByteLevel") || has_component(decoder, "ByteLevel");
    bool llama = !byte_level && ((fallback && json_is_true(fallback)) ||
                                 has_component(pre, "Metaspace") ||
                                 has_component(decoder, "Metaspace"));
    if (!byte_level && !llama)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: model: BPE without a ByteLevel pre-tokenizer "
                        "or byte_fallback is not supported", name);

    /* Pass 1: validate ids and find n = max id + 1. Ids may leave a few holes (unused ids), but
     * not many more than there are entries: bounded here, before a hostile id sizes the
     * vocabulary's arrays (so they stay a small multiple of the file). */
    int64_t n = 0, id;
    int64_t entries = 2 * ((int64_t)json_object_size(vocab_map) + (int64_t)json_array_size(added))
                      + 1024;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)vocab_map, key, key_len, value) {
        if (!token_id(value, &id))
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.vocab token '%s': id is not an "
                            "integer in 0..%lld", name, key, (long long)(HF_MAX_TOKENS - 1));
        if (id >= entries)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.vocab token '%s': id %lld is not "
                            "below %lld (twice the entries of model.vocab and added_tokens, + "
                            "1024)", name, key,
                            (long long)id, (long long)entries);
        n = id + 1 > n ? id + 1 : n;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(added, i, item) {
        const json_t *content = json_object_get(item, "content");
        const json_t *special = json_object_get(item, "special");
        if (!json_is_object(item) || !token_id(json_object_get(item, "id"), &id) ||
            !json_is_string(content) || (special && !json_is_boolean(special)))
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: added_tokens[%zu]: not {\"id\": 0..%lld, "
                            "\"content\": string, \"special\": bool}", name, i,
                            (long long)(HF_MAX_TOKENS - 1));
        if (id >= entries)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: added_tokens[%zu]: id %lld is not below "
                            "%lld (twice the entries of model.vocab and added_tokens, + 1024)",
                            name, i,
                            (long long)id, (long long)entries);
        n = id + 1 > n ? id + 1 : n;
    }
    if (n == 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: model.vocab: no tokens", name);

    status = lb_vocab_create(&vocab, byte_level ? "gpt2" : "llama", n, llama, true);
    if (status != LB_OK)
        return lb_error_prefix(status, "%s: ", name);

    /* Pass 2: fill. */
    json_object_keylen_foreach((json_t *)vocab_map, key, key_len, value) {
        token_id(value, &id);
        if (vocab->tokens[id]) {
            status = lb_error(LB_ERR_CORRUPT_FILE, "%s: model.vocab token '%s': id %lld is "
                              "already token '%s'", name, key, (long long)id,
                              vocab->tokens[id]);
            goto fail;
        }
        if ((status = lb_vocab_set_token(vocab, id, key, key_len)) != LB_OK)
            goto fail;
        vocab->token_types[id] = llama && is_byte_piece(key, key_len) ? LB_TOKEN_BYTE
                                                                       : LB_TOKEN_NORMAL;
    }
    json_array_foreach(added, i, item) {
        const json_t *content = json_object_get(item, "content");
        const char *text = json_string_value(content);
        size_t len = json_string_length(content);
        token_id(json_object_get(item, "id"), &id);
        if (vocab->tokens[id]) {
            /* Added tokens usually repeat a vocab entry (Llama 2's <unk>, <s>, </s>); only a
             * different text under the same id is a conflict. */
            if (vocab->token_lengths[id] != len || memcmp(vocab->tokens[id], text, len) != 0) {
                status = lb_error(LB_ERR_CORRUPT_FILE, "%s: added_tokens[%zu] '%s': id %lld is "
                                  "already token '%s'", name, i, text, (long long)id,
                                  vocab->tokens[id]);
                goto fail;
            }
        } else if ((status = lb_vocab_set_token(vocab, id, text, len)) != LB_OK) {
            goto fail;
        }
        vocab->token_types[id] = json_is_true(json_object_get(item, "special"))
                                     ? LB_TOKEN_CONTROL
                                     : LB_TOKEN_USER_DEFINED;
    }
    for (id = 0; id < n; id++) {
        if (!vocab->tokens[id]) {
            /* Gaps in the ids: llama.cpp's converter fills them the same way. */
            char pad[32];
            int len = snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
            if ((status = lb_vocab_set_token(vocab, id, pad, (size_t)len)) != LB_OK)
                goto fail;
            vocab->token_types[id] = LB_TOKEN_UNUSED;
        }
        /* tokenizer.json keeps no SentencePiece scores. What matters to the SentencePiece-style
         * tokenizer is the merge priority, and a byte_fallback BPE vocabulary lists pieces in
         * merge order, so -id ranks them as the original scores did. */
        if (vocab->scores)
            vocab->scores[id] = -(float)id;
    }
    if (byte_level && (status = read_merges(vocab, json_object_get(model, "merges"), name)) !=
                          LB_OK)
        goto fail;

    const json_t *unk = json_object_get(model, "unk_token");
    if (unk && !json_is_null(unk) && !json_is_string(unk)) {
        status = lb_error(LB_ERR_CORRUPT_FILE, "%s: model.unk_token: not a string", name);
        goto fail;
    }
    if (unk && json_is_string(unk))
        vocab->unk_id = (int32_t)find_token(vocab_map, added, json_string_value(unk),
                                            json_string_length(unk));
    /* Without tokenizer_config.json, the usual names of the begin/end tokens. */
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|endoftext|>"};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>"};
    for (size_t k = 0; k < 3 && vocab->bos_id < 0; k++)
        vocab->bos_id = (int32_t)find_cstr(vocab_map, added, bos_names[k]);
    for (size_t k = 0; k < 3 && vocab->eos_id < 0; k++)
        vocab->eos_id = (int32_t)find_cstr(vocab_map, added, eos_names[k]);
    if (config &&
        (status = apply_tokenizer_config(vocab, config, config_name, vocab_map, added)) != LB_OK)
        goto fail;
    if (llama && vocab->unk_id >= 0)
        vocab->token_types[vocab->unk_id] = LB_TOKEN_UNKNOWN;
    *out = vocab;
    return LB_OK;
fail:
    lb_vocab_free(&vocab);
    return status;
}

/* JSON_ALLOW_NUL: an added token may contain a NUL byte (lb_vocab keeps lengths). jansson
 * still rejects NUL in object keys, so such a model.vocab entry reads as corrupt. */
#define HF_TOKENIZER_FLAGS JSON_ALLOW_NUL

lb_status lb_hf_tokenizer_parse(lb_vocab **out, const char *name, const char *json,
                                uint64_t len)
{
    *out = NULL;
    json_t *root = NULL;
    lb_status status = parse_json(&root, name, json, len, HF_MAX_TOKENIZER_BYTES,
                                  HF_TOKENIZER_FLAGS);
    if (status == LB_OK)
        status = tokenizer_build(out, name, root, NULL, NULL);
    json_decref(root);
    return status;
}

lb_status lb_hf_tokenizer_load(lb_vocab **out, const char *path)
{
    *out = NULL;
    bool dir = is_directory(path);
    char *file = dir ? path_beside(path, "tokenizer.json", false) : lb_strdup(path);
    char *config_path = dir ? path_beside(path, "tokenizer_config.json", false)
                            : path_beside(path, "tokenizer_config.json", true);
    json_t *root = NULL, *config = NULL;
    lb_status status = LB_OK;
    if (!file || !config_path) {
        status = lb_nomem("%s: out of memory for the tokenizer file paths", path);
        goto done;
    }
    if ((status = load_json_file(&root, file, HF_MAX_TOKENIZER_BYTES, HF_TOKENIZER_FLAGS)) !=
        LB_OK)
        goto done;
    /* transformers writes model_max_length as 1e30 in integer form, past jansson's 64-bit
     * integers; no integer of this file is used, so all numbers are read as reals. */
    if (is_regular_file(config_path) &&
        (status = load_json_file(&config, config_path, HF_MAX_TOKENIZER_BYTES,
                                 HF_TOKENIZER_FLAGS | JSON_DECODE_INT_AS_REAL)) != LB_OK)
        goto done;
    status = tokenizer_build(out, file, root, config, config_path);
done:
    json_decref(root);
    json_decref(config);
    lb_free(file);
    lb_free(config_path);
    return status;
}
