/* The checkpoint view and GGUF conversion on the real stories260K model: llama2.c -> GGUF
 * (f32, f16) -> back, Hugging Face safetensors (q/k in half-split rotary order) -> the same
 * tensors as llama2.c, atomic output. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/half.h"
#include "formats/checkpoint.h"
#include "test_util.h"

/* Reads a whole tensor as f32 (caller frees). */
static float *read_tensor(const lb_checkpoint *c, int64_t index, int64_t *count)
{
    const lb_checkpoint_tensor *t = &c->tensors[index];
    int64_t rows = 1;
    lb_tensor_count(t->n_dims - 1, t->ne + 1, &rows);
    *count = rows * t->ne[0];
    float *data = lb_malloc((size_t)*count * sizeof(float));
    if (data && lb_checkpoint_read_rows_f32(c, index, 0, rows, data) != LB_OK) {
        fprintf(stderr, "read '%s': %s\n", t->name, lb_last_error());
        lb_free(data);
        return NULL;
    }
    return data;
}

typedef enum { SAME_BITS, F16_ROUNDED, BF16_ROUNDED } comparison;

static float rounded(float x, comparison how)
{
    if (how == F16_ROUNDED)
        return lb_f16_to_f32(lb_f32_to_f16(x));
    if (how == BF16_ROUNDED)
        return lb_bf16_to_f32(lb_f32_to_bf16(x));
    return x;
}

/* Every tensor of `reference` appears in `other` with the same shape and values (after the
 * given rounding for matrices; 1-d tensors must match exactly). */
static void compare_tensors(const char *what, const lb_checkpoint *reference,
                            const lb_checkpoint *other, comparison how)
{
    CHECK(reference->n_tensors == other->n_tensors);
    for (int64_t i = 0; i < reference->n_tensors; i++) {
        const lb_checkpoint_tensor *t = &reference->tensors[i];
        int64_t j = lb_checkpoint_find(other, t->name);
        if (j < 0) {
            fprintf(stderr, "%s: tensor '%s' missing\n", what, t->name);
            test_failures++;
            continue;
        }
        const lb_checkpoint_tensor *u = &other->tensors[j];
        CHECK(t->n_dims == u->n_dims);
        for (int d = 0; d < LB_MAX_DIMS; d++)
            CHECK(t->ne[d] == u->ne[d]);
        int64_t n1, n2;
        float *a = read_tensor(reference, i, &n1), *b = read_tensor(other, j, &n2);
        CHECK(a && b && n1 == n2);
        if (a && b && n1 == n2) {
            comparison c = t->n_dims == 1 && how == F16_ROUNDED ? SAME_BITS : how;
            int64_t mismatches = 0;
            for (int64_t k = 0; k < n1; k++)
                if (memcmp(&(float){rounded(a[k], c)}, &b[k], sizeof(float)) != 0)
                    mismatches++;
            if (mismatches) {
                fprintf(stderr, "%s: tensor '%s': %lld of %lld values differ\n", what, t->name,
                        (long long)mismatches, (long long)n1);
                test_failures++;
            }
        }
        lb_free(a);
        lb_free(b);
    }
}

static void compare_vocab(const lb_vocab *a, const lb_vocab *b)
{
    CHECK(a && b);
    if (!a || !b)
        return;
    CHECK(strcmp(a->model, b->model) == 0);
    CHECK(a->n_tokens == b->n_tokens);
    CHECK(a->bos_id == b->bos_id && a->eos_id == b->eos_id && a->unk_id == b->unk_id);
    for (int64_t i = 0; i < a->n_tokens && i < b->n_tokens; i++) {
        CHECK(a->token_lengths[i] == b->token_lengths[i] &&
              memcmp(a->tokens[i], b->tokens[i], a->token_lengths[i]) == 0);
        CHECK(a->scores[i] == b->scores[i]);
        CHECK(a->token_types[i] == b->token_types[i]);
    }
}

static void compare_hparams(const lb_hparams *a, const lb_hparams *b)
{
    CHECK(strcmp(a->arch, b->arch) == 0);
    CHECK(a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers);
    CHECK(a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads);
    CHECK(a->head_dim == b->head_dim && a->vocab_size == b->vocab_size);
    CHECK(a->context_length == b->context_length);
    CHECK(fabs(a->rope_theta - b->rope_theta) < 1e-3);
    CHECK(fabs(a->rms_eps - b->rms_eps) < 1e-9);
    CHECK(a->tied_embeddings == b->tied_embeddings);
}

static bool directory_has_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp."))
            found = true;
    if (d)
        closedir(d);
    return found;
}

static void convert_round_trip(const lb_checkpoint *model, const char *tmp)
{
    char path[512], path16[512], path16to32[512];
    snprintf(path, sizeof path, "%s/stories260K-f32.gguf", tmp);
    snprintf(path16, sizeof path16, "%s/stories260K-f16.gguf", tmp);
    snprintf(path16to32, sizeof path16to32, "%s/stories260K-f16-f32.gguf", tmp);

    CHECK_OK(lb_checkpoint_write_gguf(model, path, LB_TYPE_F32));
    lb_checkpoint *g = NULL;
    CHECK_OK(lb_checkpoint_open(&g, path, NULL));
    if (g) {
        CHECK(g->format == LB_CHECKPOINT_GGUF);
        compare_hparams(&model->hparams, &g->hparams);
        compare_tensors("llama2.c -> GGUF f32", model, g, SAME_BITS);
        compare_vocab(model->vocab, g->vocab);
    }

    CHECK_OK(lb_checkpoint_write_gguf(model, path16, LB_TYPE_F16));
    lb_checkpoint *g16 = NULL;
    CHECK_OK(lb_checkpoint_open(&g16, path16, NULL));
    if (g16) {
        compare_tensors("llama2.c -> GGUF f16", model, g16, F16_ROUNDED);
        CHECK(g16->tensors[lb_checkpoint_find(g16, "blk.0.attn_norm.weight")].type == LB_TYPE_F32);
        CHECK(g16->tensors[lb_checkpoint_find(g16, "blk.0.attn_q.weight")].type == LB_TYPE_F16);
        /* GGUF -> GGUF keeps the metadata and the (already rounded) values. */
        CHECK_OK(lb_checkpoint_write_gguf(g16, path16to32, LB_TYPE_F32));
        lb_checkpoint *back = NULL;
        CHECK_OK(lb_checkpoint_open(&back, path16to32, NULL));
        if (back) {
            compare_tensors("GGUF f16 -> GGUF f32", g16, back, SAME_BITS);
            compare_vocab(g16->vocab, back->vocab);
            compare_hparams(&g16->hparams, &back->hparams);
        }
        lb_checkpoint_close(&back);
    }

    /* A failed write leaves neither the target nor a temp file. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dir/out.gguf", tmp);
    CHECK(lb_checkpoint_write_gguf(model, missing, LB_TYPE_F32) == LB_ERR_IO);
    CHECK(access(missing, F_OK) != 0);
    CHECK(!directory_has_temp_files(tmp));
    lb_checkpoint_close(&g);
    lb_checkpoint_close(&g16);
}

/* Builds a Hugging Face checkpoint from the llama2.c file with tests/make_hf_checkpoint.py. */
static bool make_hf_checkpoint(const char *out_dir, const char *extra)
{
    char script[512], shared[512], command[2048];
    test_source_path(script, sizeof script, "tests/make_hf_checkpoint.py");
    test_shared_path(shared, sizeof shared, "models/stories260K/stories260K.bin");
    snprintf(command, sizeof command, "/usr/bin/python3 '%s' '%s' %s --model '%s'", script,
             out_dir, extra, shared);
    int rc = system(command);
    if (rc != 0)
        fprintf(stderr, "'%s' failed with %d\n", command, rc);
    return rc == 0;
}

static void hugging_face_layout(const lb_checkpoint *model, const char *tmp)
{
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        printf("skipping the Hugging Face part: /usr/bin/python3 with numpy is missing\n");
        return;
    }
    static const struct {
        const char *dir;
        const char *args;
        comparison how;
    } cases[] = {
        {"hf-f32", "--dtype f32", SAME_BITS},
        {"hf-bf16-sharded", "--dtype bf16 --shards 3", BF16_ROUNDED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512], gguf_path[600];
        snprintf(dir, sizeof dir, "%s/%s", tmp, cases[i].dir);
        if (!make_hf_checkpoint(dir, cases[i].args)) {
            test_failures++;
            continue;
        }
        lb_checkpoint *hf = NULL;
        CHECK_OK(lb_checkpoint_open(&hf, dir, NULL));
        if (!hf)
            continue;
        CHECK(hf->format == LB_CHECKPOINT_SAFETENSORS);
        CHECK(hf->tensors[lb_checkpoint_find(hf, "blk.1.attn_q.weight")].rope_permute_heads == 8);
        CHECK(hf->tensors[lb_checkpoint_find(hf, "blk.1.attn_k.weight")].rope_permute_heads == 4);
        compare_hparams(&model->hparams, &hf->hparams);
        /* Reading undoes the half-split rotary order: q/k rows equal llama2.c's. */
        compare_tensors(cases[i].dir, model, hf, cases[i].how);
        snprintf(gguf_path, sizeof gguf_path, "%s.gguf", dir);
        CHECK_OK(lb_checkpoint_write_gguf(hf, gguf_path, LB_TYPE_F32));
        lb_checkpoint *g = NULL;
        CHECK_OK(lb_checkpoint_open(&g, gguf_path, NULL));
        if (g)
            compare_tensors("Hugging Face -> GGUF", hf, g, SAME_BITS);
        lb_checkpoint_close(&g);
        lb_checkpoint_close(&hf);
    }
}

int main(void)
{
    char model_path[512], tmp[] = "/tmp/lowbit-test-checkpoint-XXXXXX";
    test_shared_path(model_path, sizeof model_path, "models/stories260K/stories260K.bin");
    if (access(model_path, R_OK) != 0) {
        printf("skipped: %s not found\n", model_path);
        return 77;
    }
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    lb_checkpoint *model = NULL;
    CHECK_OK(lb_checkpoint_open(&model, model_path, NULL));
    if (model) {
        const lb_hparams *hp = &model->hparams;
        CHECK(model->format == LB_CHECKPOINT_LLAMA2C);
        CHECK(hp->dim == 64 && hp->hidden_dim == 172 && hp->n_layers == 5 && hp->n_heads == 8);
        CHECK(hp->n_kv_heads == 4 && hp->vocab_size == 512 && hp->context_length == 512);
        CHECK(hp->tied_embeddings);
        CHECK(model->n_tensors == 47);
        CHECK(model->vocab && model->vocab->n_tokens == 512);
        convert_round_trip(model, tmp);
        hugging_face_layout(model, tmp);
    }
    lb_checkpoint_close(&model);
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", tmp);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return test_finish("checkpoint");
}
