/* quant/rotate.c on small synthetic checkpoints written here: the rotated view computes the
 * same logits (qwen2 and llama, GQA, q/k/v biases, the Hugging Face rotary row permutation,
 * tied and untied heads, R1 / R1+R2 / R2, Hadamard / orthogonal / the fallback for widths
 * without a Hadamard order); the tied-head ablation does not; the GGUF written from a view
 * holds its rows and lowbit.rotation.* and cannot be rotated twice; errors leave the base to
 * the caller. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/alloc_internal.h"
#include "common/rng.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "quant/rotate.h"
#include "test_util.h"

enum { SEQ = 12 };

typedef struct synth {
    const char *arch;
    int64_t dim, heads, kv_heads, hidden, vocab, layers;
    bool tied, biases;
    const char *extra; /* an extra 2-d tensor's name, or NULL */
} synth;

static char temp_dir[] = "/tmp/lowbit-rotate-XXXXXX";

/* Fills n floats uniform in [center - spread, center + spread). */
static float *fill(float *p, int64_t n, lb_rng *rng, float center, float spread)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = center + spread * lb_rng_uniform_pm1(rng);
    return p;
}

/* Writes a random llama-family GGUF with shape s; gains in [0.5, 1.5] so that folding them
 * matters. Returns false (failure counted) on error. */
static bool write_synth(const char *path, const synth *s, uint64_t seed)
{
    int64_t hd = s->dim / s->heads, kv = s->kv_heads * hd;
    int64_t per_layer = 2 * s->dim + 2 * s->dim * s->dim + 2 * kv * s->dim + 3 * s->dim * s->hidden +
                        s->dim + 2 * kv + 2 * s->dim;
    int64_t total = 2 * s->vocab * s->dim + s->dim + s->layers * per_layer + s->dim * s->dim;
    float *arena = lb_malloc((size_t)total * sizeof *arena), *p = arena;
    lb_gguf_writer *w = NULL;
    lb_status status = lb_gguf_writer_create(&w, LB_GGUF_DEFAULT_ALIGNMENT);
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    char key[96];
#define U32(suffix, v)                                                     \
    do {                                                                   \
        snprintf(key, sizeof key, "%s." suffix, s->arch);                  \
        if (status == LB_OK)                                               \
            status = lb_gguf_writer_set_u32(w, key, (uint32_t)(v));        \
    } while (0)
#define TENSOR(name, n0, n1, center, spread)                                               \
    do {                                                                                   \
        int64_t ne_[2] = {(n0), (n1)};                                                     \
        if (status == LB_OK)                                                               \
            status = lb_gguf_writer_add_tensor(w, name, LB_TYPE_F32, (n1) > 1 ? 2 : 1, ne_, \
                                               fill(p, (n0) * (n1), &rng, center, spread)); \
        p += (n0) * (n1);                                                                  \
    } while (0)
    if (!arena)
        status = LB_ERR_NOMEM;
    if (status == LB_OK)
        status = lb_gguf_writer_set_string(w, "general.architecture", s->arch);
    U32("embedding_length", s->dim);
    U32("feed_forward_length", s->hidden);
    U32("block_count", s->layers);
    U32("attention.head_count", s->heads);
    U32("attention.head_count_kv", s->kv_heads);
    U32("context_length", 64);
    float scale = 1.0f / sqrtf((float)s->dim);
    TENSOR("token_embd.weight", s->dim, s->vocab, 0.0f, 1.0f);
    char name[96];
    for (int64_t l = 0; l < s->layers; l++) {
#define BLK(suffix, n0, n1, c, sp)                                               \
    do {                                                                         \
        snprintf(name, sizeof name, "blk.%lld." suffix, (long long)l);           \
        TENSOR(name, n0, n1, c, sp);                                             \
    } while (0)
        BLK("attn_norm.weight", s->dim, 1, 1.0f, 0.5f);
        BLK("attn_q.weight", s->dim, s->dim, 0.0f, 2 * scale);
        BLK("attn_k.weight", s->dim, kv, 0.0f, 2 * scale);
        BLK("attn_v.weight", s->dim, kv, 0.0f, 2 * scale);
        if (s->biases) {
            BLK("attn_q.bias", s->dim, 1, 0.0f, 0.3f);
            BLK("attn_k.bias", kv, 1, 0.0f, 0.3f);
            BLK("attn_v.bias", kv, 1, 0.0f, 0.3f);
        }
        BLK("attn_output.weight", s->dim, s->dim, 0.0f, 2 * scale);
        BLK("ffn_norm.weight", s->dim, 1, 1.0f, 0.5f);
        BLK("ffn_gate.weight", s->dim, s->hidden, 0.0f, 2 * scale);
        BLK("ffn_up.weight", s->dim, s->hidden, 0.0f, 2 * scale);
        BLK("ffn_down.weight", s->hidden, s->dim, 0.0f, 2.0f / sqrtf((float)s->hidden));
        if (l == 0 && s->extra)
            TENSOR(s->extra, s->dim, s->dim, 0.0f, 0.1f);
#undef BLK
    }
    TENSOR("output_norm.weight", s->dim, 1, 1.0f, 0.5f);
    if (!s->tied)
        TENSOR("output.weight", s->dim, s->vocab, 0.0f, 2 * scale);
#undef TENSOR
#undef U32
    CHECK(p - arena <= total);
    if (status == LB_OK)
        status = lb_gguf_writer_write(w, path);
    lb_gguf_writer_free(&w);
    lb_free(arena);
    CHECK_OK(status);
    return status == LB_OK;
}

static const int32_t tokens_of[SEQ] = {1, 7, 3, 22, 9, 40, 5, 5, 17, 30, 2, 11};

/* The model's logits for the fixed tokens, or NULL (failure counted). */
static float *logits_of(const lb_checkpoint *ckpt)
{
    lb_model *model = NULL;
    lb_model_state *state = NULL;
    float *logits = lb_malloc((size_t)(SEQ * ckpt->hparams.vocab_size) * sizeof *logits);
    lb_status status = lb_model_load(&model, ckpt);
    if (status == LB_OK)
        status = lb_model_state_create(&state, model, SEQ, SEQ);
    if (status == LB_OK)
        status = lb_model_forward(model, state, tokens_of, SEQ, 0, logits, false);
    CHECK_OK(status);
    lb_model_state_free(&state);
    lb_model_free(&model);
    if (status != LB_OK) {
        lb_free(logits);
        return NULL;
    }
    return logits;
}

/* max |a - b| / max |b|. */
static double relative_error(const float *a, const float *b, int64_t n)
{
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / scale;
}

/* Sets the Hugging Face rotary permutation on q/k (weights and biases) of an opened GGUF, as
 * the safetensors reader does for llama: its reads then permute rows, and so must the view's. */
static void permute_qk(lb_checkpoint *ckpt)
{
    for (int64_t i = 0; i < ckpt->n_tensors; i++) {
        lb_checkpoint_tensor *t = &ckpt->tensors[i];
        if (strstr(t->name, ".attn_q."))
            t->rope_permute_heads = ckpt->hparams.n_heads;
        else if (strstr(t->name, ".attn_k."))
            t->rope_permute_heads = ckpt->hparams.n_kv_heads;
    }
}

/* f32 forward passes over f32 weights that are the double-precision products rounded once:
 * per-element rounding 6e-8 relative, dot products of at most `hidden` terms through two
 * blocks, softmax and the head give relative logit errors of a few 1e-7. 1e-5 leaves a
 * margin of 10x and more; the tied-head ablation (gains in [0.5, 1.5]) is off by O(0.1). */
#define EXACT_TOLERANCE 1e-5

/* Rotates the checkpoint at `path` with `opt` and compares the view's logits with the
 * original's; returns the relative error (NAN on failure). */
static double rotated_error(const char *path, const lb_rotate_options *opt, bool permute,
                            lb_rotate_info *info)
{
    lb_checkpoint *base = NULL, *view = NULL;
    CHECK_OK(lb_checkpoint_open(&base, path, NULL));
    if (!base)
        return NAN;
    if (permute)
        permute_qk(base);
    float *want = logits_of(base);
    int64_t n = SEQ * base->hparams.vocab_size;
    CHECK_OK(lb_rotate_checkpoint(&view, base, opt, info));
    double err = NAN;
    if (view) {
        CHECK(view->format == LB_CHECKPOINT_VIEW);
        float *got = logits_of(view);
        if (want && got)
            err = relative_error(got, want, n);
        lb_free(got);
        lb_checkpoint_close(&view); /* closes base too */
    } else {
        lb_checkpoint_close(&base);
    }
    lb_free(want);
    return err;
}

static void test_exact(const char *path, const char *label, bool permute, bool tied)
{
    static const struct {
        bool r1, r2;
        lb_rotate_kind kind;
    } cases[] = {
        {true, false, LB_ROTATE_HADAMARD},   {true, true, LB_ROTATE_HADAMARD},
        {true, false, LB_ROTATE_ORTHOGONAL}, {true, true, LB_ROTATE_ORTHOGONAL},
        {false, true, LB_ROTATE_HADAMARD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lb_rotate_options opt = lb_rotate_default_options();
        opt.r1 = cases[i].r1;
        opt.r2 = cases[i].r2;
        opt.kind = cases[i].kind;
        opt.seed = 77 + i;
        lb_rotate_info info;
        memset(&info, 0, sizeof info);
        double err = rotated_error(path, &opt, permute, &info);
        printf("%s: r1 %s, r2 %s, head %s: relative logit error %.2g\n", label, info.r1,
               info.r2, info.head, err);
        CHECK(err <= EXACT_TOLERANCE);
        CHECK(info.exact);
        CHECK(info.added_output == (tied && opt.r1));
    }
    if (!tied)
        return;
    /* The ablation: head kept tied, output_norm's gain left in place. Not exact. */
    lb_rotate_options opt = lb_rotate_default_options();
    opt.untie = false;
    lb_rotate_info info;
    double err = rotated_error(path, &opt, permute, &info);
    printf("%s: tied head kept (not exact): relative logit error %.2g\n", label, err);
    CHECK(!info.exact && !info.added_output && strcmp(info.head, "tied") == 0);
    CHECK(err > 100 * EXACT_TOLERANCE);
}

/* Widths without a Hadamard order: Hadamard falls back to random orthogonal, still exact. */
static void test_fallback(const char *path)
{
    lb_rotate_options opt = lb_rotate_default_options();
    opt.r2 = true;
    lb_rotate_info info;
    double err = rotated_error(path, &opt, false, &info);
    printf("dim 30, head 10: r1 %s, r2 %s: relative logit error %.2g\n", info.r1, info.r2, err);
    CHECK(strcmp(info.r1, "orthogonal") == 0 && strcmp(info.r2, "orthogonal") == 0);
    CHECK(err <= EXACT_TOLERANCE);
}

/* Reads every row of every tensor of a checkpoint. */
static float *all_rows(const lb_checkpoint *ckpt, int64_t index, int64_t *count)
{
    const lb_checkpoint_tensor *t = &ckpt->tensors[index];
    lb_tensor_count(t->n_dims, t->ne, count);
    float *x = lb_malloc((size_t)*count * sizeof *x);
    if (x)
        CHECK_OK(lb_checkpoint_read_rows_f32(ckpt, index, 0, *count / t->ne[0], x));
    return x;
}

/* The GGUF of a view: same rows, lowbit.rotation.*, norms all ones, output.weight added;
 * reads by row ranges agree with whole reads; same seed same rows, another seed others; the
 * file cannot be rotated again. */
static void test_written(const char *path)
{
    char out[512];
    snprintf(out, sizeof out, "%s/rotated.gguf", temp_dir);
    lb_checkpoint *base = NULL, *view = NULL, *file = NULL, *again = NULL, *other = NULL;
    lb_rotate_options opt = lb_rotate_default_options();
    opt.r2 = true;
    opt.seed = 5;
    CHECK_OK(lb_checkpoint_open(&base, path, NULL));
    if (base)
        CHECK_OK(lb_rotate_checkpoint(&view, base, &opt, NULL));
    if (!view) {
        lb_checkpoint_close(&base);
        return;
    }
    CHECK_OK(lb_checkpoint_write_gguf(view, out, LB_TYPE_F32));
    CHECK_OK(lb_checkpoint_open(&file, out, NULL));
    if (!file)
        goto done;
    CHECK(file->n_tensors == view->n_tensors && !file->hparams.tied_embeddings);
    int64_t mismatched = 0;
    for (int64_t i = 0; i < view->n_tensors; i++) {
        int64_t j = lb_checkpoint_find(file, view->tensors[i].name), n1 = 0, n2 = 0;
        CHECK(j >= 0);
        if (j < 0)
            continue;
        float *a = all_rows(view, i, &n1), *b = all_rows(file, j, &n2);
        mismatched += !a || !b || n1 != n2 || memcmp(a, b, (size_t)n1 * sizeof *a) != 0;
        if (strstr(view->tensors[i].name, "norm.weight"))
            for (int64_t k = 0; a && k < n1; k++)
                mismatched += a[k] != 1.0f;
        /* Row ranges of a cached (whole-tensor) and a row-wise tensor. */
        if (a && (strstr(view->tensors[i].name, "ffn_down") || strstr(view->tensors[i].name,
                                                                      "attn_q.weight"))) {
            int64_t cols = view->tensors[i].ne[0];
            float *row = lb_malloc((size_t)(2 * cols) * sizeof *row);
            CHECK_OK(lb_checkpoint_read_rows_f32(view, i, 3, 2, row));
            mismatched += memcmp(row, a + 3 * cols, (size_t)(2 * cols) * sizeof *row) != 0;
            lb_checkpoint_release_tensor(view, i);
            lb_free(row);
        }
        lb_free(a);
        lb_free(b);
    }
    CHECK(mismatched == 0);
    lb_gguf_string s;
    int64_t seed;
    CHECK_OK(lb_gguf_get_string(file->gguf, "lowbit.rotation.r1", &s));
    CHECK(s.len == 8 && memcmp(s.data, "hadamard", 8) == 0);
    CHECK_OK(lb_gguf_get_string(file->gguf, "lowbit.rotation.r2", &s));
    CHECK(s.len == 8 && memcmp(s.data, "hadamard", 8) == 0);
    CHECK_OK(lb_gguf_get_string(file->gguf, "lowbit.rotation.head", &s));
    CHECK(s.len == 6 && memcmp(s.data, "untied", 6) == 0);
    CHECK_OK(lb_gguf_get_int(file->gguf, "lowbit.rotation.r1_seed", &seed));
    CHECK(seed == 5);
    CHECK_OK(lb_gguf_get_int(file->gguf, "lowbit.rotation.r2_seed", &seed));
    CHECK(seed == 6);
    CHECK(lb_rotate_checkpoint(&again, file, &opt, NULL) == LB_ERR_BAD_INPUT && !again);
    printf("rotated GGUF: %lld tensors equal the view's, lowbit.rotation.* set; "
           "rotating it again: %s\n", (long long)file->n_tensors, lb_last_error());

    /* Reproducible by seed: seed 5 again gives the same rows, seed 6 others. */
    int64_t v = lb_checkpoint_find(view, "blk.1.attn_v.weight"), n1, n2;
    for (int round = 0; round < 2; round++) {
        lb_checkpoint *base2 = NULL;
        lb_rotate_options o2 = opt;
        o2.seed = round == 0 ? 5 : 6;
        CHECK_OK(lb_checkpoint_open(&base2, path, NULL));
        if (base2)
            CHECK_OK(lb_rotate_checkpoint(&other, base2, &o2, NULL));
        if (!other) {
            lb_checkpoint_close(&base2);
            break;
        }
        float *a = all_rows(view, v, &n1), *b = all_rows(other, v, &n2);
        CHECK((a && b && memcmp(a, b, (size_t)n1 * sizeof *a) == 0) == (round == 0));
        lb_free(a);
        lb_free(b);
        lb_checkpoint_close(&other); /* and base2 */
    }
done:
    lb_checkpoint_close(&file);
    lb_checkpoint_close(&view);
    unlink(out);
}

/* Failures leave the base with the caller, usable. */
static void test_errors(const char *path, const char *extra_path)
{
    lb_checkpoint *base = NULL, *view = NULL;
    lb_rotate_options opt = lb_rotate_default_options();
    CHECK_OK(lb_checkpoint_open(&base, extra_path, NULL));
    if (base) {
        CHECK(lb_rotate_checkpoint(&view, base, &opt, NULL) == LB_ERR_UNSUPPORTED && !view);
        printf("unknown tensor: %s\n", lb_last_error());
        CHECK(strstr(lb_last_error(), "blk.0.attn_qkv.weight") != NULL);
        CHECK(base->n_tensors > 0 && lb_checkpoint_find(base, "token_embd.weight") >= 0);
        lb_checkpoint_close(&base);
    }
    CHECK_OK(lb_checkpoint_open(&base, path, NULL));
    if (base) {
        opt.r1 = opt.r2 = false;
        CHECK(lb_rotate_checkpoint(&view, base, &opt, NULL) == LB_ERR_INVALID_ARG && !view);
        snprintf(base->hparams.arch, sizeof base->hparams.arch, "gpt2");
        opt.r1 = true;
        CHECK(lb_rotate_checkpoint(&view, base, &opt, NULL) == LB_ERR_UNSUPPORTED && !view);
        lb_checkpoint_close(&base);
    }
}

/* Every allocation of rotating and reading every tensor fails in turn: each failure is
 * LB_ERR_NOMEM, leaves nothing behind (ASan's leak check) and, from lb_rotate_checkpoint,
 * leaves the base with the caller. */
static void test_alloc_failures(const char *path)
{
    lb_rotate_options opt = lb_rotate_default_options();
    opt.r2 = true;
    opt.kind = LB_ROTATE_ORTHOGONAL;
    int64_t k = 0, bad = 0;
    for (;; k++) {
        lb_checkpoint *base = NULL, *view = NULL;
        CHECK_OK(lb_checkpoint_open(&base, path, NULL));
        if (!base)
            return;
        lb_alloc_fail_after(k);
        lb_status status = lb_rotate_checkpoint(&view, base, &opt, NULL);
        if (status != LB_OK) {
            lb_alloc_fail_after(-1);
            bad += status != LB_ERR_NOMEM || view != NULL;
            lb_checkpoint_close(&base);
            continue;
        }
        for (int64_t i = 0; i < view->n_tensors && status == LB_OK; i++) {
            const lb_checkpoint_tensor *t = &view->tensors[i];
            int64_t count;
            lb_tensor_count(t->n_dims, t->ne, &count);
            float *x = lb_malloc((size_t)count * sizeof *x);
            status = x ? lb_checkpoint_read_rows_f32(view, i, 0, count / t->ne[0], x)
                       : LB_ERR_NOMEM;
            lb_free(x);
        }
        lb_alloc_fail_after(-1);
        bad += status != LB_OK && status != LB_ERR_NOMEM;
        lb_checkpoint_close(&view);
        if (status == LB_OK)
            break;
    }
    printf("allocation failures: %lld injected, every one LB_ERR_NOMEM\n", (long long)k);
    CHECK(bad == 0);
}

int main(void)
{
    if (!mkdtemp(temp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char qwen[512], llama[512], odd[512], extra[512];
    snprintf(qwen, sizeof qwen, "%s/qwen2.gguf", temp_dir);
    snprintf(llama, sizeof llama, "%s/llama.gguf", temp_dir);
    snprintf(odd, sizeof odd, "%s/odd.gguf", temp_dir);
    snprintf(extra, sizeof extra, "%s/extra.gguf", temp_dir);
    /* dim 48 = 12 x 4, head 12 (Paley I): Hadamard with a dense m part on both. */
    const synth s_qwen = {"qwen2", 48, 4, 2, 40, 61, 2, true, true, NULL};
    const synth s_llama = {"llama", 48, 4, 2, 40, 61, 2, false, true, NULL};
    const synth s_odd = {"qwen2", 30, 3, 1, 20, 61, 2, true, false, NULL};
    const synth s_extra = {"llama", 48, 4, 2, 40, 61, 1, false, false, "blk.0.attn_qkv.weight"};
    if (write_synth(qwen, &s_qwen, 1) && write_synth(llama, &s_llama, 2) &&
        write_synth(odd, &s_odd, 3) && write_synth(extra, &s_extra, 4)) {
        test_exact(qwen, "qwen2 GQA 4/2, biases, tied", false, true);
        test_exact(llama, "llama GQA 4/2, biases, untied, HF q/k rows", true, false);
        test_fallback(odd);
        test_written(qwen);
        test_errors(llama, extra);
        test_alloc_failures(qwen);
    }
    unlink(qwen);
    unlink(llama);
    unlink(odd);
    unlink(extra);
    rmdir(temp_dir);
    if (test_failures)
        fprintf(stderr, "%d failures\n", test_failures);
    return test_failures ? 1 : 0;
}
