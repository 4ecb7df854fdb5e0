/* Which type each tensor of a model gets: llama.cpp's quantization presets ("Q4_K_M", ...),
 * plain uniform types ("Q5_0", "F16"), per-role overrides, and llama.cpp's fallback when a row
 * length does not fit a type's block size. */
#ifndef LB_QUANT_MIXTURE_H
#define LB_QUANT_MIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "formats/hparams.h"

/* What a tensor does in a llama-family model, from its llama.cpp name. */
typedef enum lb_tensor_role {
    LB_ROLE_OTHER,       /* norms, biases of unknown roles, anything not listed below */
    LB_ROLE_TOKEN_EMBD,  /* token_embd */
    LB_ROLE_OUTPUT,      /* output (the classifier) */
    LB_ROLE_ATTN_Q,
    LB_ROLE_ATTN_K,
    LB_ROLE_ATTN_V,
    LB_ROLE_ATTN_OUTPUT,
    LB_ROLE_FFN_GATE,
    LB_ROLE_FFN_UP,
    LB_ROLE_FFN_DOWN,
    LB_ROLE_COUNT
} lb_tensor_role;

/* Role and block index (-1 outside blocks) of a llama.cpp tensor name: "blk.12.attn_v.weight"
 * is LB_ROLE_ATTN_V in block 12, "output.weight" LB_ROLE_OUTPUT, "output_norm.weight"
 * LB_ROLE_OTHER. Any suffix after the role (".weight", ".bias") is accepted. layer may be NULL. */
LB_API lb_tensor_role lb_tensor_role_of(const char *name, int64_t *layer);

/* Short name of a role ("attn_v", "ffn_down", "token_embd", ...). */
LB_API const char *lb_tensor_role_name(lb_tensor_role role);

/* A choice of types: a llama.cpp preset (a mixture with its own rules per role and layer) or a
 * plain type that every matrix gets, plus per-role overrides. */
typedef struct lb_mixture {
    char name[16];        /* canonical spelling: "Q4_K_M", "Q5_0", "F16" */
    lb_type base;         /* the type of the tensors no rule singles out */
    uint32_t file_type;   /* general.file_type: llama.cpp's llama_ftype number */
    bool is_preset;       /* llama.cpp's mixture rules apply (else: uniform `base`) */
    int preset;           /* internal index of the preset (-1 for a plain type) */
    bool has_override[LB_ROLE_COUNT];
    lb_type override_type[LB_ROLE_COUNT];
} lb_mixture;

/* A preset ("Q4_K_M") or a plain type name ("Q4_K", "F16"), case-insensitive. Where a name is
 * both (Q2_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS), it is llama.cpp's preset of
 * that name.
 * LB_ERR_INVALID_ARG, naming the valid names, otherwise. */
LB_API lb_status lb_mixture_parse(lb_mixture *out, const char *name);

/* Forces `type` on every tensor of `role` (before the row-length fallback). The override wins
 * over the preset. For tied embeddings, token_embd takes the LB_ROLE_TOKEN_EMBD override, else
 * the LB_ROLE_OUTPUT one, as llama.cpp does. LB_ERR_INVALID_ARG for LB_ROLE_OTHER, an
 * out-of-range role or a type without kernels (or Q8_K, an activation-only type). */
LB_API lb_status lb_mixture_set_override(lb_mixture *m, lb_tensor_role role, lb_type type);

/* What the preset rules look at. */
typedef struct lb_mixture_model {
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    bool has_output;   /* output.weight is present (false: tied to token_embd) */
    bool is_70b;       /* llama.cpp classes the model as 70B (attn_v gets Q5_K for Q3_K/Q4_K) */
    bool has_imatrix;  /* an importance matrix is used (Q4_0/Q5_0 then bump early ffn_down,
                          IQ4_NL/IQ4_XS no longer do) */
} lb_mixture_model;

/* Fills `out` from hyperparameters: has_output = !tied_embeddings, is_70b as llama.cpp decides
 * it (80 blocks, and for "llama" grouped-query attention: Llama 2/3 70B, Qwen2 72B),
 * has_imatrix false. */
LB_API void lb_mixture_model_from_hparams(lb_mixture_model *out, const lb_hparams *hparams);

/* The type tensor `name` of shape ne (GGUF order, n_dims of them) gets: F32 for tensors
 * llama.cpp never quantizes (1-d tensors, names not ending in "weight", "*_norm.weight"); else
 * the override of its role, or the preset's rule, or the base type; then, when ne[0] is not a
 * multiple of that type's block size, llama.cpp's substitution (lb_kernels_fallback_type:
 * Q2_K/Q3_K/IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16). */
LB_API lb_type lb_mixture_tensor_type(const lb_mixture *m, const lb_mixture_model *model,
                                      const char *name, int n_dims, const int64_t *ne);

/* The accepted names, for help text: "Q4_K_M, Q4_K_S, ..." (a static string). */
LB_API const char *lb_mixture_names(void);

#endif
