/* The model's structures, shared by its loading (model.c) and its forward pass
 * (model_forward.c). Not part of the installed API. */
#ifndef LB_MODEL_MODEL_INTERNAL_H
#define LB_MODEL_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

/* One parameter tensor as the forward pass reads it: a matrix W [n_out][n_in] (y = W x, y[o] =
 * Σ_i W[o*n_in + i] x[i]) or a vector (n_out = 1), in one of two storages:
 * - f32 (`data`): F32 tensors are used in place from the mapped checkpoint. F16 and BF16
 *   tensors, and Hugging Face q/k rows that need the rotary permutation, are converted once at
 *   load into `owned`: simple and as fast as f32 at run time, at twice the memory of an f16
 *   file (lb_gemm has only scalar f16/bf16 dots, 20-30x slower than SGEMM on the converted
 *   rows). Vectors (norms, biases) are always f32, and so is a weight that
 *   lb_model_replace_weight gave.
 * - packed (`packed`): a matrix of a block type with a vec_dot kernel (Q4_0 ... Q6_K) keeps
 *   the file's bytes, read in place from the mapping; linear_forward multiplies with lb_gemm
 *   (activations quantized to Q8_0 / Q8_K as llama.cpp does) and the embedding lookup
 *   dequantizes only the rows it looks up. A packed type without a vec_dot (Q8_K) or a tensor
 *   that is not 4-byte aligned in the mapping is dequantized to f32 at load instead. */
typedef struct weight {
    const char *name;   /* llama.cpp name, owned by the checkpoint; NULL for an absent bias */
    int64_t n_in;       /* ne[0], the row length */
    int64_t n_out;      /* ne[1], the number of rows (1 for a vector) */
    bool matrix;        /* a 2-d weight (linear layer or embedding), which may stay packed */
    lb_type type;       /* the storage read: LB_TYPE_F32 (data) or a block type (packed) */
    const float *data;  /* [n_out][n_in] f32: the mapped tensor or `owned`; NULL when packed,
                           absent (or not acquired yet in a lazy model) */
    const void *packed; /* [n_out] rows of row_bytes in `type`, into the mapped checkpoint;
                           NULL unless packed */
    uint64_t row_bytes; /* bytes of one packed row */
    float *owned;       /* converted copy freed with the model, or NULL */
    int64_t index;      /* the checkpoint tensor, -1 when absent */
} weight;

/* Whether the forward pass can read the weight (in either storage). */
static inline bool resident(const weight *w)
{
    return w->data || w->packed;
}

/* The parameters of one transformer block. */
typedef struct block_weights {
    weight attn_norm;   /* [dim] */
    weight attn_q;      /* [q_dim][dim], rows in the order that the model's RoPE pairing expects */
    weight attn_k;      /* [kv_dim][dim] */
    weight attn_v;      /* [kv_dim][dim] */
    weight attn_q_bias; /* [q_dim], optional (Qwen2) */
    weight attn_k_bias; /* [kv_dim], optional */
    weight attn_v_bias; /* [kv_dim], optional */
    weight attn_output; /* [dim][q_dim] */
    weight ffn_norm;    /* [dim] */
    weight ffn_gate;    /* [hidden_dim][dim] */
    weight ffn_up;      /* [hidden_dim][dim] */
    weight ffn_down;    /* [dim][hidden_dim] */
} block_weights;

struct lb_model {
    const lb_checkpoint *checkpoint; /* the source; outlives the model */
    lb_hparams hp;
    bool neox_rope;         /* qwen2: element i pairs with i + head_dim/2; llama: 2i with 2i+1 */
    int64_t q_dim;          /* n_heads * head_dim */
    int64_t kv_dim;         /* n_kv_heads * head_dim */
    weight token_embd;      /* [vocab][dim] */
    block_weights *layers;  /* [n_layers] */
    weight output_norm;     /* [dim] */
    weight output;          /* [vocab][dim]; a non-owning copy of token_embd when tied */
    lb_linear_input_hook hook;
    void *hook_context;
    bool lazy;              /* weights are made resident per group on acquire */
    bool embd_acquired, output_acquired;
};

/* lb_gemm's workspace for batches of up to max_batch through any matrix that may be
 * multiplied packed, acquired or not (a lazy model materializes later; a replaced weight only
 * goes f32): one buffer per state, reused by every call. 0 when no matrix is packed; false on
 * overflow. */
bool lb_model_gemm_workspace_bytes(const lb_model *model, int64_t max_batch, uint64_t *out);

#endif
