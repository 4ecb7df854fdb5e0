/* The llama-family forward pass (llama, mistral, qwen2, llama2.c) over a checkpoint's tensors. */
#ifndef LB_MODEL_MODEL_H
#define LB_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/checkpoint.h"
#include "formats/hparams.h"

typedef struct lb_model lb_model;
typedef struct lb_model_state lb_model_state;

/* Receives the input activations of a linear layer during a forward pass: x is
 * [n_tokens][n_in] row-major f32, valid only during the call. tensor_name is the llama.cpp
 * name of the weight ("blk.3.attn_q.weight"; q, k and v see the same x, as do gate and up).
 * Called from the thread that called the forward function, never concurrently. A status other
 * than LB_OK (with its message set through lb_error) stops the forward pass at once: no later
 * hook call and no later layer, and the forward function returns that status. */
typedef lb_status (*lb_linear_input_hook)(void *context, const char *tensor_name, int64_t layer,
                                          const float *x, int64_t n_tokens, int64_t n_in);

/* The `layer` that the hook receives for the output layer (after the final norm), whose weight
 * is output.weight, or token_embd.weight when the embeddings are tied. */
#define LB_MODEL_OUTPUT_LAYER (-1)
/* The weight group of the token embedding lookup (lb_model_acquire). */
#define LB_MODEL_EMBED_LAYER (-2)

/* Builds the model over an open checkpoint, which must outlive it. F32 weights and matrices of
 * packed block types (Q4_0 ... Q6_K, multiplied with the kernels' lb_gemm) are used in place
 * (memory-mapped); F16 and BF16 weights are converted to f32 at load (documented in the .c).
 * Checks that every tensor the architecture needs is present with the right shape. Errors:
 * LB_ERR_CORRUPT_FILE / LB_ERR_UNSUPPORTED naming the tensor. */
LB_API lb_status lb_model_load(lb_model **out, const lb_checkpoint *checkpoint);

/* A lazy model checks every tensor at load but makes none resident: a group of weights (a
 * block 0..n_layers-1, LB_MODEL_EMBED_LAYER for the embedding lookup, LB_MODEL_OUTPUT_LAYER for
 * the final norm and classifier) must be acquired before the functions that use it, and
 * release drops its converted copies and hands mapped pages back to the kernel. So the
 * layer-sequential quantizer holds one block's f32 weights at a time. In an eager model (
 * lb_model_load) acquire is a no-op check and release does nothing. */
LB_API lb_status lb_model_load_lazy(lb_model **out, const lb_checkpoint *checkpoint);
/* The validation every command runs once at load (lb_model_load and lb_model_load_lazy run
 * it too): hyperparameters, the declared blocks against the tensors present, every tensor's
 * name, shape and type, no tensor the model would not read, a non-empty vocabulary with no
 * more tokens than embedding rows (more rows are padding). Makes nothing resident. Errors as
 * lb_model_load's. */
LB_API lb_status lb_model_check(const lb_checkpoint *checkpoint);
LB_API lb_status lb_model_acquire(lb_model *model, int64_t group);
LB_API void lb_model_release(lb_model *model, int64_t group);
LB_API void lb_model_free(lb_model **model);
LB_API const lb_hparams *lb_model_hparams(const lb_model *model);

/* The weight bytes that the forward pass currently reads in storage `type` (the acquired
 * groups of a lazy model; a tied classifier counted once): LB_TYPE_F32 for f32 weights, a block
 * type (Q4_0 ... Q6_K) for matrices multiplied packed, 0 for other types (F16 and BF16 are
 * read as f32 copies). *allocated (may be NULL) gets the part the model allocated itself (f32
 * copies converted from F16/BF16 or dequantized, permuted rows, replaced weights); the rest of
 * *bytes are views into the checkpoint's mapping, paged in as they are read. So a Q4_0 GGUF
 * shows its matrices under LB_TYPE_Q4_0 with nothing allocated. LB_ERR_INVALID_ARG for a NULL
 * model or bytes. */
LB_API lb_status lb_model_weight_bytes(const lb_model *model, lb_type type, uint64_t *bytes,
                                       uint64_t *allocated);

/* Scans every weight the forward pass reads (as it reads it: f32, packed rows decoded, a lazy
 * model's unacquired weights through the checkpoint) for NaN and Inf. LB_ERR_NUMERIC naming
 * the file, the tensor and the first bad element (index in the tensor's llama.cpp row order,
 * row and column); LB_ERR_NOMEM; LB_ERR_INVALID_ARG for a NULL model. lb_eval_perplexity
 * calls it before evaluating. */
LB_API lb_status lb_model_check_finite(const lb_model *model);

/* Replaces the view of weight `name` by `data` ([n_out][n_in] f32 from lb_malloc; the
 * model takes ownership, also on error); the weight is multiplied as f32 from then on, also
 * where the file's tensor is packed. The layer-sequential quantizer uses it so that the
 * blocks after a quantized one see its quantized outputs. With tied embeddings, replacing
 * token_embd.weight also changes the output layer. LB_ERR_INVALID_ARG for an unknown name. */
LB_API lb_status lb_model_replace_weight(lb_model *model, const char *name, float *data);

/* Installs (or with NULL removes) the calibration hook. */
LB_API void lb_model_set_linear_hook(lb_model *model, lb_linear_input_hook hook, void *context);

/* Per-sequence state: the KV cache for up to max_tokens positions and scratch buffers for
 * batches of up to max_batch tokens. */
LB_API lb_status lb_model_state_create(lb_model_state **out, const lb_model *model,
                                       int64_t max_tokens, int64_t max_batch);
LB_API void lb_model_state_free(lb_model_state **state);

/* Runs n_tokens tokens at positions pos0 .. pos0+n_tokens-1 (causal; attends to the cached
 * positions < pos0 of this state, which must have been filled by earlier calls), appending
 * their keys/values to the cache. logits: [n_tokens][vocab] f32, or NULL to skip the output
 * layer; with logits_last_only, only the last token's logits are written (logits[vocab]).
 * Threads: OpenMP over heads and rows; results do not depend on the thread count. */
LB_API lb_status lb_model_forward(const lb_model *model, lb_model_state *state,
                                  const int32_t *tokens, int64_t n_tokens, int64_t pos0,
                                  float *logits, bool logits_last_only);

/* Calibration building blocks: the token embedding of n_tokens tokens into x[n_tokens][dim],
 * then transformer block `layer` applied in place to x for positions pos0.. (using and
 * filling that layer's KV cache in state), then the final norm + output layer. A full forward
 * pass is embed, every block in order, output. */
LB_API lb_status lb_model_embed(const lb_model *model, const int32_t *tokens, int64_t n_tokens,
                                float *x);
LB_API lb_status lb_model_block_forward(const lb_model *model, lb_model_state *state,
                                        int64_t layer, float *x, int64_t n_tokens, int64_t pos0);
LB_API lb_status lb_model_output(const lb_model *model, lb_model_state *state, const float *x,
                                 int64_t n_tokens, float *logits);

#endif
