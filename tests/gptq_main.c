/* Test driver: GPTQ of one stories260K weight on its real calibration Hessian, written out raw
 * so that check_gptq_oracle.py can redo the published algorithm on the same grid in numpy.
 *
 *   gptq_main MODEL_DIR TEXT OUT_DIR TENSOR TYPE ACT_ORDER
 *
 * MODEL_DIR holds stories260K.bin and tok512.bin; the first TEXT_BYTES of TEXT are tokenized
 * and N_WINDOWS windows of WINDOW tokens (BOS first) run through the model, while a linear hook
 * accumulates H = Σ x xᵀ of TENSOR's inputs. OUT_DIR receives, little-endian and row-major:
 *   W.f32 [rows][cols]    the weight              H.f64 [cols][cols]   the Hessian
 *   scale.f32, offset.f32 [rows][cols]            the result's per-element grid (block_grid)
 *   deq.f32 [rows][cols]  the result dequantized  report.json          shape, levels (the range,
 *                                                 and the table of a non-uniform grid), losses */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "formats/checkpoint.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "quant/gptq.h"
#include "quant/hessian.h"

#define TEXT_BYTES 65536
#define N_WINDOWS 8
#define WINDOW 256

typedef struct hook_context {
    const char *tensor;
    lb_hessian hessian;
    lb_status status;
} hook_context;

static lb_status hessian_hook(void *context, const char *tensor_name, int64_t layer,
                              const float *x, int64_t n_tokens, int64_t n_in)
{
    (void)layer;
    hook_context *c = context;
    if (strcmp(tensor_name, c->tensor) != 0)
        return LB_OK;
    if (!c->hessian.h)
        c->status = lb_hessian_init(&c->hessian, n_in);
    if (c->status == LB_OK)
        c->status = lb_hessian_add(&c->hessian, x, n_tokens);
    return c->status;
}

static char *read_prefix(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = lb_malloc(max);
    *len = data ? fread(data, 1, max, f) : 0;
    fclose(f);
    return data;
}

static bool write_raw(const char *dir, const char *name, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, bytes, f) == bytes;
    return fclose(f) == 0 && ok;
}

static int fail(const char *what)
{
    fprintf(stderr, "gptq_main: %s: %s\n", what, lb_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT OUT_DIR TENSOR TYPE ACT_ORDER\n", argv[0]);
        return 2;
    }
    const char *out_dir = argv[3];
    lb_type type;
    const lb_kernel_type *k;
    if (lb_type_from_name(argv[5], &type) != LB_OK || !(k = lb_kernels_type(type)) ||
        !k->block_grid) {
        fprintf(stderr, "gptq_main: %s has no block grid\n", argv[5]);
        return 2;
    }
    bool act_order = atoi(argv[6]) != 0;

    char model_path[4096], tok_path[4096];
    snprintf(model_path, sizeof model_path, "%s/stories260K.bin", argv[1]);
    snprintf(tok_path, sizeof tok_path, "%s/tok512.bin", argv[1]);
    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    settings.tokenizer_path = tok_path;

    int rc = 1;
    lb_checkpoint *ckpt = NULL;
    lb_model *model = NULL;
    lb_tokenizer *tok = NULL;
    lb_model_state *state = NULL;
    char *text = NULL;
    int32_t *ids = NULL, *window = NULL;
    float *w = NULL, *scale = NULL, *offset = NULL, *deq = NULL;
    double *h = NULL;
    uint8_t *q = NULL;
    hook_context hc = {.tensor = argv[4], .status = LB_OK};

    if (lb_checkpoint_open(&ckpt, model_path, &settings) != LB_OK) {
        rc = fail("open");
        goto done;
    }
    if (!ckpt->vocab || ckpt->vocab->bos_id < 0) {
        fprintf(stderr, "gptq_main: %s has no tokenizer with BOS\n", model_path);
        goto done;
    }
    if (lb_model_load(&model, ckpt) != LB_OK || lb_tokenizer_create(&tok, ckpt->vocab) != LB_OK) {
        rc = fail("load");
        goto done;
    }
    int64_t index = lb_checkpoint_find(ckpt, argv[4]);
    if (index < 0 || ckpt->tensors[index].n_dims != 2) {
        fprintf(stderr, "gptq_main: no matrix %s\n", argv[4]);
        goto done;
    }
    int64_t cols = ckpt->tensors[index].ne[0], rows = ckpt->tensors[index].ne[1];

    size_t text_len;
    int64_t n_ids;
    if (!(text = read_prefix(argv[2], TEXT_BYTES, &text_len))) {
        fprintf(stderr, "gptq_main: cannot read %s\n", argv[2]);
        goto done;
    }
    if (lb_tokenizer_encode(tok, text, text_len, false, &ids, &n_ids) != LB_OK) {
        rc = fail("tokenize");
        goto done;
    }
    if (n_ids < N_WINDOWS * (WINDOW - 1)) {
        fprintf(stderr, "gptq_main: only %lld tokens\n", (long long)n_ids);
        goto done;
    }
    /* Windows as calibration uses them: BOS, then consecutive text; pos0 = 0 each time, so
     * every window attends only to itself (the cache is overwritten). */
    window = lb_malloc(WINDOW * sizeof *window);
    if (!window || lb_model_state_create(&state, model, WINDOW, WINDOW) != LB_OK) {
        rc = fail("state");
        goto done;
    }
    lb_model_set_linear_hook(model, hessian_hook, &hc);
    for (int64_t s = 0; s < N_WINDOWS; s++) {
        window[0] = ckpt->vocab->bos_id;
        memcpy(window + 1, ids + s * (WINDOW - 1), (WINDOW - 1) * sizeof *window);
        if (lb_model_forward(model, state, window, WINDOW, 0, NULL, false) != LB_OK) {
            rc = fail("forward");
            goto done;
        }
    }
    lb_model_set_linear_hook(model, NULL, NULL);
    if (hc.status != LB_OK) {
        rc = fail("hessian");
        goto done;
    }
    if (!hc.hessian.h || hc.hessian.n != cols) {
        fprintf(stderr, "gptq_main: the hook never saw %s's %lld inputs\n", argv[4],
                (long long)cols);
        goto done;
    }
    lb_hessian_finish(&hc.hessian);

    uint64_t row_bytes;
    size_t n = (size_t)rows * (size_t)cols;
    if (!lb_type_row_bytes(type, cols, &row_bytes) || !lb_kernels_row_fits(type, cols)) {
        fprintf(stderr, "gptq_main: rows of %lld do not fit %s\n", (long long)cols, argv[5]);
        goto done;
    }
    w = lb_malloc(n * sizeof *w);
    scale = lb_malloc(n * sizeof *scale);
    offset = lb_malloc(n * sizeof *offset);
    deq = lb_malloc(n * sizeof *deq);
    h = lb_malloc((size_t)cols * (size_t)cols * sizeof *h);
    q = lb_malloc((size_t)rows * (size_t)row_bytes);
    if (!w || !scale || !offset || !deq || !h || !q) {
        fprintf(stderr, "gptq_main: out of memory\n");
        goto done;
    }
    if (lb_checkpoint_read_rows_f32(ckpt, index, 0, rows, w) != LB_OK) {
        rc = fail("read");
        goto done;
    }
    /* lb_gptq_quantize destroys its H; the file keeps the original. */
    memcpy(h, hc.hessian.h, (size_t)cols * (size_t)cols * sizeof *h);
    lb_gptq_options opt = lb_gptq_default_options();
    opt.act_order = act_order;
    opt.compare_rtn = true;
    lb_gptq_report rep;
    if (lb_gptq_quantize(w, rows, cols, h, type, &opt, q, &rep) != LB_OK) {
        rc = fail("gptq");
        goto done;
    }
    const lb_type_info *info = lb_type_get((uint32_t)type);
    int64_t n_blocks = cols / info->block_size;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = q + (size_t)r * row_bytes;
        for (int64_t b = 0; b < n_blocks; b++) {
            size_t at = (size_t)(r * cols + b * info->block_size);
            k->block_grid(row + (size_t)b * info->block_bytes, scale + at, offset + at);
        }
        k->dequantize_row(row, deq + (size_t)r * (size_t)cols, cols);
    }

    bool ok = write_raw(out_dir, "W.f32", w, n * sizeof *w) &&
              write_raw(out_dir, "H.f64", hc.hessian.h,
                        (size_t)cols * (size_t)cols * sizeof(double)) &&
              write_raw(out_dir, "scale.f32", scale, n * sizeof *scale) &&
              write_raw(out_dir, "offset.f32", offset, n * sizeof *offset) &&
              write_raw(out_dir, "deq.f32", deq, n * sizeof *deq);
    char json_path[4096];
    snprintf(json_path, sizeof json_path, "%s/report.json", out_dir);
    FILE *f = ok ? fopen(json_path, "w") : NULL;
    if (f) {
        fprintf(f,
                "{\"tensor\": \"%s\", \"type\": \"%s\", \"rows\": %lld, \"cols\": %lld, "
                "\"block_size\": %lld, \"qmin\": %d, \"qmax\": %d, \"act_order\": %d, "
                "\"tokens\": %lld, \"damp\": %.17g, \"damp_raises\": %d, "
                "\"dead_columns\": %lld, \"loss_gptq\": %.17g, \"loss_rtn\": %.17g, "
                "\"ref\": %.17g, \"levels\": [",
                argv[4], info->name, (long long)rows, (long long)cols,
                (long long)info->block_size, k->qmin, k->qmax, act_order ? 1 : 0,
                (long long)hc.hessian.n_tokens, rep.damp, rep.damp_raises,
                (long long)rep.dead_columns, rep.loss_gptq, rep.loss_rtn, rep.ref);
        /* the grid's level table (IQ4_NL, IQ4_XS), empty for the affine grids */
        for (int level = k->qmin; k->levels && level <= k->qmax; level++)
            fprintf(f, "%s%.9g", level > k->qmin ? ", " : "",
                    (double)k->levels[level - k->qmin]);
        fprintf(f, "]}\n");
        ok = fclose(f) == 0;
    } else {
        ok = false;
    }
    if (!ok) {
        fprintf(stderr, "gptq_main: cannot write to %s\n", out_dir);
        goto done;
    }
    rc = 0;
done:
    lb_free(w);
    lb_free(scale);
    lb_free(offset);
    lb_free(deq);
    lb_free(h);
    lb_free(q);
    lb_free(window);
    lb_free(ids);
    lb_free(text);
    lb_hessian_free(&hc.hessian);
    lb_model_state_free(&state);
    lb_tokenizer_free(&tok);
    lb_model_free(&model);
    lb_checkpoint_close(&ckpt);
    return rc;
}
