/* Tests of the Hugging Face side files: config.json and tokenizer.json (+ tokenizer_config). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc_internal.h"
#include "formats/hf_internal.h"
#include "test_util.h"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(text, 1, strlen(text), f) == strlen(text));
    fclose(f);
}

static void make_dir(char *out, size_t size, const char *tmp, const char *name)
{
    snprintf(out, size, "%s/%s", tmp, name);
    mkdir(out, 0700);
}

/* ---- config.json ---- */

static const char llama2_7b[] =
    "{\n  \"_name_or_path\": \"meta-llama/Llama-2-7b-hf\",\n"
    "  \"architectures\": [\"LlamaForCausalLM\"],\n  \"bos_token_id\": 1,\n"
    "  \"eos_token_id\": 2,\n  \"hidden_act\": \"silu\",\n  \"hidden_size\": 4096,\n"
    "  \"initializer_range\": 0.02,\n  \"intermediate_size\": 11008,\n"
    "  \"max_position_embeddings\": 4096,\n  \"model_type\": \"llama\",\n"
    "  \"num_attention_heads\": 32,\n  \"num_hidden_layers\": 32,\n"
    "  \"num_key_value_heads\": 32,\n  \"pretraining_tp\": 1,\n  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_scaling\": null,\n  \"tie_word_embeddings\": false,\n"
    "  \"torch_dtype\": \"float16\",\n  \"transformers_version\": \"4.31.0.dev0\",\n"
    "  \"use_cache\": true,\n  \"vocab_size\": 32000\n}\n";

static const char mistral_7b[] =
    "{\"architectures\": [\"MistralForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 32768,"
    " \"model_type\": \"mistral\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32,"
    " \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,"
    " \"sliding_window\": 4096, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.34.0.dev0\", \"use_cache\": true, \"vocab_size\": 32000}";

static const char qwen2_05b[] =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 151643, \"eos_token_id\": 151643, \"hidden_act\": \"silu\","
    " \"hidden_size\": 896, \"initializer_range\": 0.02, \"intermediate_size\": 4864,"
    " \"max_position_embeddings\": 131072, \"max_window_layers\": 24, \"model_type\": \"qwen2\","
    " \"num_attention_heads\": 14, \"num_hidden_layers\": 24, \"num_key_value_heads\": 2,"
    " \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 131072,"
    " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.40.1\", \"use_cache\": true, \"use_sliding_window\": false,"
    " \"vocab_size\": 151936}";

#define MINIMAL_KEYS "\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 5, " \
                     "\"num_attention_heads\": 8, \"vocab_size\": 512"

static lb_status parse_config(lb_hparams *hp, const char *json)
{
    return lb_hf_config_parse(hp, "config.json", json, strlen(json));
}

static void test_config(const char *tmp)
{
    char dir[1024], path[1200];
    lb_hparams hp;

    make_dir(dir, sizeof dir, tmp, "llama2");
    write_text(dir, "config.json", llama2_7b);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_OK(lb_hf_config_load(&hp, path));
    CHECK(strcmp(hp.arch, "llama") == 0);
    CHECK(hp.dim == 4096 && hp.hidden_dim == 11008 && hp.n_layers == 32 && hp.n_heads == 32);
    CHECK(hp.n_kv_heads == 32 && hp.head_dim == 128 && hp.vocab_size == 32000);
    CHECK(hp.context_length == 4096 && hp.rope_theta == 10000.0 && hp.rms_eps == 1e-5);
    CHECK(!hp.tied_embeddings);
    memset(&hp, 0, sizeof hp);
    CHECK_OK(lb_hf_config_load(&hp, dir)); /* the directory works too */
    CHECK(hp.dim == 4096);

    make_dir(dir, sizeof dir, tmp, "mistral");
    write_text(dir, "config.json", mistral_7b);
    CHECK_OK(lb_hf_config_load(&hp, dir));
    CHECK(strcmp(hp.arch, "llama") == 0);
    CHECK(hp.dim == 4096 && hp.hidden_dim == 14336 && hp.n_heads == 32 && hp.n_kv_heads == 8);
    CHECK(hp.head_dim == 128 && hp.context_length == 32768 && hp.rms_eps == 1e-5);

    make_dir(dir, sizeof dir, tmp, "qwen2");
    write_text(dir, "config.json", qwen2_05b);
    CHECK_OK(lb_hf_config_load(&hp, dir));
    CHECK(strcmp(hp.arch, "qwen2") == 0);
    CHECK(hp.dim == 896 && hp.hidden_dim == 4864 && hp.n_layers == 24 && hp.n_heads == 14);
    CHECK(hp.n_kv_heads == 2 && hp.head_dim == 64 && hp.vocab_size == 151936);
    CHECK(hp.context_length == 131072 && hp.rope_theta == 1e6 && hp.rms_eps == 1e-6);
    CHECK(hp.tied_embeddings);

    /* Defaults. */
    CHECK_OK(parse_config(&hp, "{\"model_type\": \"llama\", " MINIMAL_KEYS "}"));
    CHECK(hp.n_kv_heads == 8 && hp.head_dim == 8 && hp.context_length == 2048);
    CHECK(hp.rope_theta == 10000.0 && hp.rms_eps == 1e-6 && !hp.tied_embeddings);
    /* null counts as absent; an explicit head_dim wins over hidden / heads. */
    CHECK_OK(parse_config(&hp, "{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"head_dim\": 16,"
                               " \"num_key_value_heads\": null, \"rope_theta\": 500000}"));
    CHECK(hp.head_dim == 16 && hp.n_kv_heads == 8 && hp.rope_theta == 500000.0);

    /* Errors name the key. */
    static const struct {
        const char *json, *needle;
        lb_status status;
    } bad[] = {
        {"{\"model_type\": \"gpt_neox\", " MINIMAL_KEYS "}", "gpt_neox", LB_ERR_UNSUPPORTED},
        {"{" MINIMAL_KEYS "}", "model_type", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": 7, " MINIMAL_KEYS "}", "model_type", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", \"intermediate_size\": 172, \"num_hidden_layers\": 5, "
         "\"num_attention_heads\": 8, \"vocab_size\": 512}", "hidden_size", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"intermediate_size\": 172, "
         "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512}",
         "hidden_size", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", \"hidden_size\": 64.5, \"intermediate_size\": 172, "
         "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512}",
         "hidden_size", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"num_key_value_heads\": 3}",
         "num_key_value_heads", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, "
         "\"num_hidden_layers\": 5, \"num_attention_heads\": 0, \"vocab_size\": 512}",
         "num_attention_heads", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", \"hidden_size\": 60, \"intermediate_size\": 172, "
         "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512}",
         "num_attention_heads", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"vocab_size\": 5}", "duplicate",
         LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"tie_word_embeddings\": \"yes\"}",
         "tie_word_embeddings", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"rms_norm_eps\": -1}", "rms_norm_eps",
         LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"rope_theta\": \"1e4\"}", "rope_theta",
         LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"hidden_act\": \"gelu\"}", "hidden_act",
         LB_ERR_UNSUPPORTED},
        {"{\"model_type\": \"llama\", \"hidden_size\": 99999999999, \"intermediate_size\": 172, "
         "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512}",
         "hidden_size", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\", " MINIMAL_KEYS ", \"rope_scaling\": {\"factor\": 8.0,"
         " \"rope_type\": \"llama3\"}}", "llama3", LB_ERR_UNSUPPORTED},
        {"[1, 2]", "offset", LB_ERR_CORRUPT_FILE},
        {"{\"model_type\": \"llama\",", "offset", LB_ERR_CORRUPT_FILE},
        {"", "offset", LB_ERR_CORRUPT_FILE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_status s = parse_config(&hp, bad[i].json);
        CHECK(s == bad[i].status);
        CHECK(strstr(lb_last_error(), bad[i].needle) != NULL);
        CHECK(strstr(lb_last_error(), "config.json") != NULL);
        if (s != bad[i].status || !strstr(lb_last_error(), bad[i].needle))
            fprintf(stderr, "  bad config %zu: %s: %s\n", i, lb_status_name(s), lb_last_error());
    }
    snprintf(path, sizeof path, "%s/nothing/config.json", tmp);
    CHECK(lb_hf_config_load(&hp, path) == LB_ERR_IO);
}

/* ---- tokenizer.json ---- */

/* GPT-2 style byte-level BPE: "Ġ" (U+0120) stands for a space. */
static const char gpt2_tokenizer[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,"
    " \"added_tokens\": ["
    "  {\"id\": 10, \"content\": \"<|endoftext|>\", \"single_word\": false, \"lstrip\": false,"
    "   \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "  {\"id\": 11, \"content\": \"<|user|>\", \"special\": false}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
    "   \"trim_offsets\": true, \"use_regex\": true},"
    " \"post_processor\": null,"
    " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true},"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null,"
    "   \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false,"
    "   \"byte_fallback\": false,"
    "   \"vocab\": {\"h\": 0, \"e\": 1, \"l\": 2, \"o\": 3, \"\\u0120\": 4, \"w\": 5, \"he\": 6,"
    "             \"ll\": 7, \"hell\": 8, \"\\u0120w\": 9},"
    "   \"merges\": [\"h e\", \"l l\", \"he ll\", \"\\u0120 w\"]}}";

/* Llama 3 style: merges as pairs, ByteLevel inside a Sequence, and a gap in the ids. */
static const char llama3_tokenizer[] =
    "{\"added_tokens\": ["
    "  {\"id\": 6, \"content\": \"<|begin_of_text|>\", \"special\": true},"
    "  {\"id\": 8, \"content\": \"<|end_of_text|>\", \"special\": true},"
    "  {\"id\": 5, \"content\": \"x\\u0000y\", \"special\": false}],"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
    "   {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"},"
    "   {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
    " \"decoder\": {\"type\": \"ByteLevel\"},"
    " \"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"byte_fallback\": false,"
    "   \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3, \"abc\": 4},"
    "   \"merges\": [[\"a\", \"b\"], [\"ab\", \"c\"]]}}";

/* Llama 2 / SentencePiece-converted BPE with byte fallback: "▁" (U+2581) is a space. */
static const char llama_tokenizer[] =
    "{\"added_tokens\": ["
    "  {\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
    "  {\"id\": 1, \"content\": \"<s>\", \"special\": true},"
    "  {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
    "   {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
    "   {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
    " \"pre_tokenizer\": null,"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
    "   {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"},"
    "   {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
    "   {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\","
    "   \"fuse_unk\": true, \"byte_fallback\": true,"
    "   \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"<0x00>\": 3, \"<0x0A>\": 4,"
    "             \"<0xFF>\": 5, \"\\u2581\": 6, \"\\u2581t\": 7, \"he\": 8, \"\\u2581the\": 9},"
    "   \"merges\": [\"\\u2581 t\", \"h e\", \"\\u2581t he\"]}}";

static lb_status parse_tok(lb_vocab **v, const char *json)
{
    return lb_hf_tokenizer_parse(v, "tokenizer.json", json, strlen(json));
}

static bool token_is(const lb_vocab *v, int64_t id, const char *text, size_t len)
{
    return id >= 0 && id < v->n_tokens && v->token_lengths[id] == len &&
           memcmp(v->tokens[id], text, len) == 0;
}

static void check_gpt2(const lb_vocab *v)
{
    CHECK(strcmp(v->model, "gpt2") == 0);
    CHECK(v->n_tokens == 12);
    CHECK(token_is(v, 0, "h", 1) && token_is(v, 4, "\xc4\xa0", 2));
    CHECK(token_is(v, 9, "\xc4\xa0w", 3) && token_is(v, 10, "<|endoftext|>", 13));
    CHECK(token_is(v, 11, "<|user|>", 8));
    CHECK(v->scores == NULL && v->token_types != NULL);
    for (int64_t i = 0; i < 10; i++)
        CHECK(v->token_types[i] == LB_TOKEN_NORMAL);
    CHECK(v->token_types[10] == LB_TOKEN_CONTROL);
    CHECK(v->token_types[11] == LB_TOKEN_USER_DEFINED);
    CHECK(v->n_merges == 4);
    if (v->n_merges == 4) {
        CHECK(strcmp(v->merges[0], "h e") == 0 && strcmp(v->merges[2], "he ll") == 0);
        CHECK(strcmp(v->merges[3], "\xc4\xa0 w") == 0);
    }
    CHECK(v->unk_id == -1);
}

static void test_tokenizer(const char *tmp)
{
    lb_vocab *v = NULL;

    CHECK_OK(parse_tok(&v, gpt2_tokenizer));
    if (v) {
        check_gpt2(v);
        /* Without tokenizer_config.json GPT-2's <|endoftext|> is both ends, as in llama.cpp. */
        CHECK(v->bos_id == 10 && v->eos_id == 10 && v->add_bos == -1);
    }
    lb_vocab_free(&v);

    CHECK_OK(parse_tok(&v, llama3_tokenizer));
    if (v) {
        CHECK(strcmp(v->model, "gpt2") == 0 && v->n_tokens == 9);
        CHECK(token_is(v, 5, "x\0y", 3)); /* a NUL inside a token survives */
        CHECK(v->token_types[5] == LB_TOKEN_USER_DEFINED);
        CHECK(token_is(v, 7, "[PAD7]", 6) && v->token_types[7] == LB_TOKEN_UNUSED);
        CHECK(v->token_types[6] == LB_TOKEN_CONTROL && v->token_types[8] == LB_TOKEN_CONTROL);
        CHECK(v->bos_id == 6 && v->eos_id == 8);
        CHECK(v->n_merges == 2 && strcmp(v->merges[1], "ab c") == 0);
    }
    lb_vocab_free(&v);

    CHECK_OK(parse_tok(&v, llama_tokenizer));
    if (v) {
        CHECK(strcmp(v->model, "llama") == 0 && v->n_tokens == 10);
        CHECK(v->unk_id == 0 && v->bos_id == 1 && v->eos_id == 2);
        CHECK(v->token_types[0] == LB_TOKEN_UNKNOWN);
        CHECK(v->token_types[1] == LB_TOKEN_CONTROL && v->token_types[2] == LB_TOKEN_CONTROL);
        for (int64_t i = 3; i <= 5; i++)
            CHECK(v->token_types[i] == LB_TOKEN_BYTE);
        for (int64_t i = 6; i <= 9; i++)
            CHECK(v->token_types[i] == LB_TOKEN_NORMAL);
        CHECK(token_is(v, 6, "\xe2\x96\x81", 3) && token_is(v, 9, "\xe2\x96\x81the", 6));
        CHECK(token_is(v, 4, "<0x0A>", 6));
        CHECK(v->scores && v->scores[0] == 0.0f && v->scores[9] == -9.0f);
        CHECK(v->n_merges == 0 && v->merges == NULL);
    }
    lb_vocab_free(&v);

    /* Loading from files: tokenizer_config.json beside the file decides bos/eos/add_bos. */
    char dir[1024], path[1200];
    make_dir(dir, sizeof dir, tmp, "tok_llama");
    write_text(dir, "tokenizer.json", llama_tokenizer);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(lb_hf_tokenizer_load(&v, path));
    CHECK(v && v->bos_id == 1 && v->eos_id == 2 && v->add_bos == -1 && v->add_eos == -1);
    lb_vocab_free(&v);
    write_text(dir, "tokenizer_config.json",
               "{\"add_bos_token\": true, \"add_eos_token\": false,"
               " \"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<s>\","
               "   \"lstrip\": false, \"normalized\": false, \"rstrip\": false,"
               "   \"single_word\": false},"
               " \"eos_token\": \"\\u2581the\", \"unk_token\": \"<unk>\", \"pad_token\": null,"
               " \"clean_up_tokenization_spaces\": false, \"legacy\": false,"
               " \"model_max_length\": 1000000000000000019884624838656,"
               " \"tokenizer_class\": \"LlamaTokenizer\"}");
    CHECK_OK(lb_hf_tokenizer_load(&v, dir));
    CHECK(v && v->bos_id == 1 && v->eos_id == 9 && v->unk_id == 0 && v->pad_id == -1);
    CHECK(v && v->add_bos == 1 && v->add_eos == 0);
    lb_vocab_free(&v);

    /* Qwen2 style: bos_token null keeps the guess, eos names a chat token. */
    make_dir(dir, sizeof dir, tmp, "tok_gpt2");
    write_text(dir, "tokenizer.json", gpt2_tokenizer);
    write_text(dir, "tokenizer_config.json",
               "{\"bos_token\": null, \"eos_token\": \"<|user|>\", \"pad_token\": "
               "\"<|endoftext|>\", \"errors\": \"replace\"}");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(lb_hf_tokenizer_load(&v, path));
    if (v) {
        check_gpt2(v);
        CHECK(v->bos_id == 10 && v->eos_id == 11 && v->pad_id == 10 && v->add_bos == -1);
    }
    lb_vocab_free(&v);
    /* A stray tokenizer_config.json without any of those keys changes nothing. */
    write_text(dir, "tokenizer_config.json", "{\"model_max_length\": 2048}");
    CHECK_OK(lb_hf_tokenizer_load(&v, dir));
    CHECK(v && v->bos_id == 10 && v->eos_id == 10);
    lb_vocab_free(&v);
    write_text(dir, "tokenizer_config.json", "{\"bos_token\": 5}");
    CHECK(lb_hf_tokenizer_load(&v, dir) == LB_ERR_CORRUPT_FILE && v == NULL);
    CHECK(strstr(lb_last_error(), "bos_token") && strstr(lb_last_error(), "tokenizer_config"));
    write_text(dir, "tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
    CHECK(lb_hf_tokenizer_load(&v, dir) == LB_ERR_CORRUPT_FILE && v == NULL);
    write_text(dir, "tokenizer_config.json", "{\"add_bos_token\": tru");
    CHECK(lb_hf_tokenizer_load(&v, dir) == LB_ERR_CORRUPT_FILE && v == NULL);
    snprintf(path, sizeof path, "%s/nothing/tokenizer.json", tmp);
    CHECK(lb_hf_tokenizer_load(&v, path) == LB_ERR_IO && v == NULL);
}

#define BYTE_LEVEL "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}"

static void test_tokenizer_errors(void)
{
    static const struct {
        const char *json, *needle;
        lb_status status;
    } bad[] = {
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}",
         "already token", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": -1}}}",
         "'b'", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 10000000}}}",
         "'b'", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1.5}}}",
         "'b'", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": [\"a\", \"b\"]}}",
         "model.vocab", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\"}}", "model.vocab", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "no tokens",
         LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}}}",
         "duplicate", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"added_tokens\": [{\"id\": 0, \"content\": \"x\", \"special\": true}],"
         " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "added_tokens[0]",
         LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"added_tokens\": [{\"content\": \"x\"}],"
         " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "added_tokens[0]",
         LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"added_tokens\": {},"
         " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "added_tokens",
         LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0},"
         " \"merges\": [\"ab\"]}}", "merges[0]", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0},"
         " \"merges\": [[\"a\"]]}}", "merges[0]", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0},"
         " \"merges\": \"a b\"}}", "merges", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
         "Unigram", LB_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "ByteLevel",
         LB_ERR_UNSUPPORTED},
        {"{" BYTE_LEVEL "}", "model", LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"vocab\": {\"a\": 0}}}", "model.type",
         LB_ERR_CORRUPT_FILE},
        {"{" BYTE_LEVEL ", \"model\": {\"type\": \"BPE\", \"byte_fallback\": 1,"
         " \"vocab\": {\"a\": 0}}}", "byte_fallback", LB_ERR_CORRUPT_FILE},
        {"{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": 0,"
         " \"vocab\": {\"a\": 0}}}", "unk_token", LB_ERR_CORRUPT_FILE},
        {"[]", "offset", LB_ERR_CORRUPT_FILE},
        {"{\"model\": ", "offset", LB_ERR_CORRUPT_FILE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_vocab *v = NULL;
        lb_status s = parse_tok(&v, bad[i].json);
        CHECK(s == bad[i].status && v == NULL);
        CHECK(strstr(lb_last_error(), bad[i].needle) != NULL);
        CHECK(strstr(lb_last_error(), "tokenizer.json") != NULL);
        if (s != bad[i].status || !strstr(lb_last_error(), bad[i].needle))
            fprintf(stderr, "  bad tokenizer %zu: %s: %s\n", i, lb_status_name(s),
                    lb_last_error());
        lb_vocab_free(&v);
    }
}

/* Every allocation point fails cleanly (NOMEM, nothing leaked under ASan). */
static void test_alloc_failures(void)
{
    const char *docs[] = {gpt2_tokenizer, llama3_tokenizer, llama_tokenizer};
    for (size_t d = 0; d < 3; d++) {
        int64_t k;
        for (k = 0; k < 10000; k++) {
            lb_vocab *v = NULL;
            lb_alloc_fail_after(k);
            lb_status s = parse_tok(&v, docs[d]);
            lb_alloc_fail_after(-1);
            if (s == LB_OK) {
                lb_vocab_free(&v);
                break;
            }
            CHECK(s == LB_ERR_NOMEM && v == NULL);
            if (s != LB_ERR_NOMEM)
                break;
        }
        CHECK(k > 0 && k < 10000);
    }
    lb_hparams hp;
    lb_alloc_fail_after(0);
    lb_status s = parse_config(&hp, qwen2_05b); /* allocates nothing of lowbit's */
    lb_alloc_fail_after(-1);
    CHECK(s == LB_OK);
}

int main(void)
{
    char tmp[] = "/tmp/lb_test_hf_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_config(tmp);
    test_tokenizer(tmp);
    test_tokenizer_errors();
    test_alloc_failures();
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_finish("test_hf");
}
