/* Rotations folded into the weights (QuaRot / SpinQuant without run-time rotations): a rotated
 * view of a llama-family checkpoint that computes the same function and stays a plain llama
 * model, so any GGUF runtime loads it.
 *
 * With R1, every RMSNorm gain is first moved into the matrices that read the norm's output
 * (attn_norm into q, k, v; ffn_norm into gate, up; output_norm into output) and the norms become
 * all ones. Then one orthogonal T (dim x dim) rotates the residual stream x -> T x: the
 * embedding's rows e -> T e, the rows w of every matrix reading the stream (q, k, v, gate, up,
 * output) w -> T w, the columns c of every matrix writing it (attn_output, ffn_down) c -> T c,
 * and their biases. RMSNorm(T x) = T RMSNorm(x), so the model is unchanged in exact arithmetic.
 * q/k biases and the rotary permutation of q/k rows act on the output side and are untouched.
 * With R2, one orthogonal T_h (head_dim) per layer and KV head h rotates the values: the rows of
 * attn_v and its bias for head h by T_h, the matching column segment of attn_output for every
 * query head of h's group by T_h too (attention mixes values linearly, per head).
 *
 * Rows come out as f32 computed in float64 from the base's f32 rows; the view holds one tensor
 * at a time (a matrix writing the stream needs all its rows: it is computed whole and cached
 * until another such tensor is read or it is released). */
#ifndef LB_QUANT_ROTATE_H
#define LB_QUANT_ROTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/checkpoint.h"

typedef enum lb_rotate_kind {
    /* Randomized Hadamard T = H diag(s) / sqrt(n) (linalg's lb_rht, seeded signs) where n has
     * a Hadamard order 2^k * m (lb_linalg_hadamard_split), else as LB_ROTATE_ORTHOGONAL. */
    LB_ROTATE_HADAMARD,
    /* Haar random orthogonal matrix (lb_linalg_random_orthogonal), applied by a dense GEMM. */
    LB_ROTATE_ORTHOGONAL,
} lb_rotate_kind;

typedef struct lb_rotate_options {
    bool r1;             /* fold the norms and rotate the residual stream (default true) */
    bool r2;             /* rotate values per KV head (default false) */
    lb_rotate_kind kind; /* default LB_ROTATE_HADAMARD */
    /* R1 is made from seed; R2 of layer l, KV head h from the first lb_rng_next draw of an
     * lb_rng seeded with (seed + 1) ^ ((l * n_kv_heads + h) * 0xd1b54a32d192ed03). Default 1. */
    uint64_t seed;
    /* A model with tied embeddings (no output.weight): true (default) gives the classifier its
     * own output.weight = T (rows of token_embd times the output_norm gain), exact, at the cost
     * of one vocab x dim matrix more; false keeps it tied to the rotated embedding and leaves
     * output_norm's gain in place, which is exact only when that gain is constant. Ignored
     * for a model with its own output.weight (always folded) and without R1. */
    bool untie;
} lb_rotate_options;

/* What a rotated view does, for reports. Strings are static. */
typedef struct lb_rotate_info {
    const char *r1;          /* "hadamard", "orthogonal" (also a Hadamard fallback) or "none" */
    const char *r2;          /* the same for R2 */
    uint64_t r1_seed, r2_seed;
    const char *head;        /* "untied" (own output.weight) or "tied" */
    bool added_output;       /* output.weight was added (a tied model untied) */
    int64_t added_output_elements; /* its vocab x dim elements, else 0 */
    bool exact;              /* false when a tied head keeps output_norm's gain unfolded */
} lb_rotate_info;

LB_API lb_rotate_options lb_rotate_default_options(void);

/* Makes the rotated view of `base` (a llama or qwen2 checkpoint; its matrices must read as f32,
 * see lb_checkpoint_read_rows_f32). On success *out owns base: lb_checkpoint_close(out) closes
 * both; on failure the caller keeps base. The view's GGUF metadata adds lowbit.rotation.r1,
 * .r2 ("hadamard" | "orthogonal" | "none"), .r1_seed, .r2_seed (when rotated) and .head
 * ("untied" | "tied"). info (may be NULL) says what was done. Errors: LB_ERR_UNSUPPORTED for
 * another architecture or a tensor with no known role, LB_ERR_CORRUPT_FILE for shapes that do
 * not fit the hyperparameters, LB_ERR_BAD_INPUT for a checkpoint that is already rotated
 * (lowbit.rotation.* in its metadata), LB_ERR_INVALID_ARG when neither R1 nor R2 is asked. */
LB_API lb_status lb_rotate_checkpoint(lb_checkpoint **out, lb_checkpoint *base,
                                      const lb_rotate_options *options, lb_rotate_info *info);

LB_API const char *lb_rotate_kind_name(lb_rotate_kind kind);

#endif
