/* Fuzz target: a whole GGUF model as the commands load it. The checkpoint reader, then the
 * one model validation (lb_model_check: hyperparameters, blocks against tensors, shapes, types,
 * vocabulary against the embedding), then what eval does next with a model that passed: the
 * tokenizer on a fixed text and a forward pass over its first tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "formats/checkpoint.h"
#include "fuzz_target.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/tokenizer.h"

static const char text[] = "Once upon a time, 12 cats sat on the mat.";

/* Tokenizes the text and runs the model over its first few tokens; every id the tokenizer
 * gives must have an embedding row. */
static void exercise(const lb_checkpoint *ckpt)
{
    lb_tokenizer *tok = NULL;
    lb_model *model = NULL;
    lb_model_state *state = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int64_t n = 0;
    lb_status status = lb_tokenizer_create(&tok, ckpt->vocab);
    if (status == LB_OK)
        status = lb_tokenizer_encode(tok, text, sizeof text - 1, true, &ids, &n);
    if (status == LB_OK)
        status = lb_model_load(&model, ckpt);
    if (status == LB_OK) {
        const lb_hparams *hp = lb_model_hparams(model);
        for (int64_t i = 0; i < n; i++)
            FUZZ_ASSERT(ids[i] >= 0 && ids[i] < hp->vocab_size);
        int64_t steps = n < 4 ? n : 4;
        if (steps > hp->context_length)
            steps = hp->context_length;
        logits = malloc((size_t)hp->vocab_size * sizeof *logits);
        if (steps > 0 && logits &&
            lb_model_state_create(&state, model, steps, steps) == LB_OK)
            status = lb_model_forward(model, state, ids, steps, 0, logits, true);
    }
    if (status != LB_OK)
        fuzz_check_failure(status);
    free(logits);
    lb_model_state_free(&state);
    lb_model_free(&model);
    lb_free(ids);
    lb_tokenizer_free(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The checkpoint reader opens paths: the input goes to an anonymous file. */
    int fd = memfd_create("fuzz_model", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    lb_checkpoint_settings settings = lb_checkpoint_default_settings();
    settings.decode = lb_kernels_dequantize;
    lb_checkpoint *ckpt = NULL;
    lb_status status = lb_checkpoint_open(&ckpt, path, &settings);
    if (status == LB_OK)
        status = lb_model_check(ckpt);
    if (status == LB_OK && ckpt->vocab)
        exercise(ckpt);
    else if (status != LB_OK)
        fuzz_check_failure(status);
    lb_checkpoint_close(&ckpt);
    close(fd);
    return 0;
}
