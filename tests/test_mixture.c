/* quant/mixture: llama.cpp's per-tensor type choices. The expected types are worked out by hand
 * from llama_tensor_get_type in llama.cpp's src/llama-quant.cpp (see quant/mixture.c for the
 * commit), not from lowbit's implementation:
 *   use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
 *   n = 32: blocks 0-3, 6, 9, 12, 15, 18, 21, 24, 27, 28-31
 *   n = 22: blocks 0-1, 4, 7, 10, 13, 16, 19-21
 *   n = 5:  blocks 2, 4
 *   n = 80: blocks 0-9, 12, 15, ..., 69, 70-79 */
#include <stdio.h>
#include <string.h>

#include "common/tensor.h"
#include "kernels/kernels.h"
#include "quant/mixture.h"
#include "test_util.h"

typedef struct shape_model {
    const char *label;
    lb_mixture_model model;
    int64_t dim, hidden, vocab;
} shape_model;

/* Llama-2-7B, TinyLlama-1.1B (GQA 8), stories260K (GQA 2, tied output, rows of 64 and 172),
 * Llama-2-70B (80 blocks, GQA 8). */
static const shape_model llama7b = {"7B", {32, 32, 32, true, false, false}, 4096, 11008, 32000};
static const shape_model llama7b_imatrix = {"7B+imatrix", {32, 32, 32, true, false, true}, 4096,
                                            11008, 32000};
static const shape_model tinyllama = {"TinyLlama", {22, 32, 4, true, false, false}, 2048, 5632,
                                      32000};
static const shape_model stories = {"stories260K", {5, 8, 4, false, false, false}, 64, 172, 512};
static const shape_model llama70b = {"70B", {80, 64, 8, true, true, false}, 8192, 28672, 32000};
/* SmolLM2-135M: 30 blocks, 9 heads / 3 KV heads (GQA 3), tied output, rows of 576 and 1536. */
static const shape_model smollm2 = {"SmolLM2-135M", {30, 9, 3, false, false, false}, 576, 1536,
                                    49152};

/* The llama.cpp shape (GGUF order) of a tensor of a llama-family model; returns n_dims. */
static int tensor_shape(const shape_model *s, const char *name, int64_t *ne)
{
    int64_t layer;
    lb_tensor_role role = lb_tensor_role_of(name, &layer);
    int64_t kv_dim = s->dim / s->model.n_heads * s->model.n_kv_heads;
    ne[0] = s->dim;
    ne[1] = 1;
    switch (role) {
    case LB_ROLE_TOKEN_EMBD:
    case LB_ROLE_OUTPUT: ne[1] = s->vocab; return 2;
    case LB_ROLE_ATTN_Q:
    case LB_ROLE_ATTN_OUTPUT: ne[1] = s->dim; return 2;
    case LB_ROLE_ATTN_K:
    case LB_ROLE_ATTN_V: ne[1] = kv_dim; return 2;
    case LB_ROLE_FFN_GATE:
    case LB_ROLE_FFN_UP: ne[1] = s->hidden; return 2;
    case LB_ROLE_FFN_DOWN: ne[0] = s->hidden; ne[1] = s->dim; return 2;
    default: return 1; /* norms */
    }
}

/* "MIXTURE TENSOR TYPE" lines. */
static const char *const expect_7b[] = {
    "Q4_K_M token_embd.weight Q4_K",      "Q4_K_M output.weight Q6_K",
    "Q4_K_M output_norm.weight F32",      "Q4_K_M blk.0.attn_norm.weight F32",
    "Q4_K_M blk.0.ffn_norm.weight F32",   "Q4_K_M blk.0.attn_q.weight Q4_K",
    "Q4_K_M blk.31.attn_k.weight Q4_K",   "Q4_K_M blk.0.attn_v.weight Q6_K",
    "Q4_K_M blk.3.attn_v.weight Q6_K",    "Q4_K_M blk.4.attn_v.weight Q4_K",
    "Q4_K_M blk.5.attn_v.weight Q4_K",    "Q4_K_M blk.6.attn_v.weight Q6_K",
    "Q4_K_M blk.7.attn_v.weight Q4_K",    "Q4_K_M blk.9.attn_v.weight Q6_K",
    "Q4_K_M blk.26.attn_v.weight Q4_K",   "Q4_K_M blk.27.attn_v.weight Q6_K",
    "Q4_K_M blk.28.attn_v.weight Q6_K",   "Q4_K_M blk.31.attn_v.weight Q6_K",
    "Q4_K_M blk.10.attn_output.weight Q4_K", "Q4_K_M blk.10.ffn_gate.weight Q4_K",
    "Q4_K_M blk.10.ffn_up.weight Q4_K",   "Q4_K_M blk.0.ffn_down.weight Q6_K",
    "Q4_K_M blk.4.ffn_down.weight Q4_K",  "Q4_K_M blk.6.ffn_down.weight Q6_K",
    "Q4_K_M blk.8.ffn_down.weight Q4_K",  "Q4_K_M blk.30.ffn_down.weight Q6_K",

    "Q4_K_S token_embd.weight Q4_K",      "Q4_K_S output.weight Q6_K",
    "Q4_K_S blk.3.attn_v.weight Q5_K",    "Q4_K_S blk.4.attn_v.weight Q4_K",
    "Q4_K_S blk.6.attn_v.weight Q4_K",    "Q4_K_S blk.3.ffn_down.weight Q5_K",
    "Q4_K_S blk.4.ffn_down.weight Q4_K",  "Q4_K_S blk.31.ffn_down.weight Q4_K",
    "Q4_K_S blk.0.attn_output.weight Q4_K", "Q4_K_S blk.0.attn_q.weight Q4_K",

    "Q3_K_S token_embd.weight Q3_K",      "Q3_K_S output.weight Q6_K",
    "Q3_K_S blk.0.attn_v.weight Q3_K",    "Q3_K_S blk.0.ffn_down.weight Q3_K",
    "Q3_K_S blk.0.attn_output.weight Q3_K", "Q3_K_S blk.0.ffn_up.weight Q3_K",

    "Q3_K_M token_embd.weight Q3_K",      "Q3_K_M output.weight Q6_K",
    "Q3_K_M blk.0.attn_v.weight Q5_K",    "Q3_K_M blk.1.attn_v.weight Q5_K",
    "Q3_K_M blk.2.attn_v.weight Q4_K",    "Q3_K_M blk.31.attn_v.weight Q4_K",
    "Q3_K_M blk.5.attn_output.weight Q4_K", "Q3_K_M blk.1.ffn_down.weight Q5_K",
    "Q3_K_M blk.2.ffn_down.weight Q4_K",  "Q3_K_M blk.31.ffn_down.weight Q4_K",
    "Q3_K_M blk.5.attn_q.weight Q3_K",    "Q3_K_M blk.5.attn_k.weight Q3_K",
    "Q3_K_M blk.5.ffn_gate.weight Q3_K",  "Q3_K_M blk.5.ffn_up.weight Q3_K",

    "Q3_K_L token_embd.weight Q3_K",      "Q3_K_L output.weight Q6_K",
    "Q3_K_L blk.7.attn_v.weight Q5_K",    "Q3_K_L blk.7.attn_output.weight Q5_K",
    "Q3_K_L blk.7.ffn_down.weight Q5_K",  "Q3_K_L blk.7.attn_q.weight Q3_K",
    "Q3_K_L blk.7.ffn_gate.weight Q3_K",

    "Q5_K_S token_embd.weight Q5_K",      "Q5_K_S output.weight Q6_K",
    "Q5_K_S blk.0.attn_v.weight Q5_K",    "Q5_K_S blk.0.ffn_down.weight Q5_K",

    "Q5_K_M token_embd.weight Q5_K",      "Q5_K_M output.weight Q6_K",
    "Q5_K_M blk.0.attn_v.weight Q6_K",    "Q5_K_M blk.4.attn_v.weight Q5_K",
    "Q5_K_M blk.6.ffn_down.weight Q6_K",  "Q5_K_M blk.7.ffn_down.weight Q5_K",
    "Q5_K_M blk.7.attn_q.weight Q5_K",

    "Q6_K token_embd.weight Q6_K",        "Q6_K output.weight Q6_K",
    "Q6_K blk.0.attn_v.weight Q6_K",      "Q6_K blk.7.ffn_down.weight Q6_K",

    "Q2_K token_embd.weight Q2_K",        "Q2_K output.weight Q6_K",
    "Q2_K blk.0.attn_v.weight Q3_K",      "Q2_K blk.9.attn_v.weight Q3_K",
    "Q2_K blk.0.attn_output.weight Q3_K", "Q2_K blk.0.ffn_down.weight Q3_K",
    "Q2_K blk.0.attn_q.weight Q2_K",      "Q2_K blk.0.attn_k.weight Q2_K",
    "Q2_K blk.0.ffn_gate.weight Q2_K",    "Q2_K blk.0.ffn_up.weight Q2_K",

    "Q4_0 token_embd.weight Q4_0",        "Q4_0 output.weight Q6_K",
    "Q4_0 blk.0.ffn_down.weight Q4_0",    "Q4_0 blk.0.attn_v.weight Q4_0",
    "Q4_1 token_embd.weight Q4_1",        "Q4_1 output.weight Q6_K",
    "Q4_1 blk.0.attn_v.weight Q4_1",
    "Q5_0 output.weight Q6_K",            "Q5_0 blk.0.ffn_down.weight Q5_0",
    "Q5_1 output.weight Q6_K",            "Q5_1 blk.0.attn_q.weight Q5_1",
    "Q8_0 token_embd.weight Q8_0",        "Q8_0 output.weight Q8_0",
    "Q8_0 blk.0.attn_v.weight Q8_0",

    /* plain types: one type for every matrix, output included */
    "F16 token_embd.weight F16",          "F16 output.weight F16",
    "F16 blk.0.attn_v.weight F16",        "F16 blk.0.attn_norm.weight F32",
    "F32 output.weight F32",              "BF16 output.weight BF16",
    "Q4_K token_embd.weight Q4_K",        "Q4_K output.weight Q4_K",
    "Q4_K blk.0.attn_v.weight Q4_K",      "Q4_K blk.0.ffn_down.weight Q4_K",
    "Q3_K output.weight Q3_K",            "Q5_K output.weight Q5_K",
    NULL,
};

/* With an importance matrix, Q4_0 and Q5_0 bump ffn_down of the first n/8 blocks. */
static const char *const expect_7b_imatrix[] = {
    "Q4_0 blk.3.ffn_down.weight Q4_1",    "Q4_0 blk.4.ffn_down.weight Q4_0",
    "Q4_0 output.weight Q6_K",            "Q5_0 blk.0.ffn_down.weight Q5_1",
    "Q5_0 blk.31.ffn_down.weight Q5_0",   "Q4_1 blk.0.ffn_down.weight Q4_1",
    "Q4_K_M blk.4.ffn_down.weight Q4_K",
    NULL,
};

static const char *const expect_tinyllama[] = {
    "Q2_K blk.0.attn_v.weight Q4_K",      "Q2_K blk.21.attn_v.weight Q4_K", /* n_gqa 8 >= 4 */
    "Q2_K blk.0.ffn_down.weight Q3_K",    "Q2_K blk.0.attn_q.weight Q2_K",
    "Q2_K output.weight Q6_K",
    "Q4_K_M blk.0.attn_v.weight Q6_K",    "Q4_K_M blk.1.attn_v.weight Q6_K",
    "Q4_K_M blk.2.attn_v.weight Q4_K",    "Q4_K_M blk.3.attn_v.weight Q4_K",
    "Q4_K_M blk.4.attn_v.weight Q6_K",    "Q4_K_M blk.5.attn_v.weight Q4_K",
    "Q4_K_M blk.7.attn_v.weight Q6_K",    "Q4_K_M blk.18.attn_v.weight Q4_K",
    "Q4_K_M blk.19.attn_v.weight Q6_K",   "Q4_K_M blk.21.attn_v.weight Q6_K",
    "Q4_K_M blk.2.ffn_down.weight Q4_K",  "Q4_K_M blk.16.ffn_down.weight Q6_K",
    "Q4_K_M blk.17.ffn_down.weight Q4_K", "Q4_K_M blk.0.ffn_down.weight Q6_K",
    "Q4_K_M token_embd.weight Q4_K",      "Q4_K_M output.weight Q6_K",
    "Q3_K_M blk.0.ffn_down.weight Q5_K",  "Q3_K_M blk.1.ffn_down.weight Q4_K", /* n/16 = 1 */
    "Q3_K_M blk.1.attn_v.weight Q5_K",    "Q3_K_M blk.2.attn_v.weight Q4_K",
    "Q4_K_S blk.3.attn_v.weight Q5_K",    "Q4_K_S blk.4.attn_v.weight Q4_K",
    "Q4_K_S blk.1.ffn_down.weight Q5_K",  "Q4_K_S blk.2.ffn_down.weight Q4_K", /* n/8 = 2 */
    "Q5_K_M blk.2.attn_v.weight Q5_K",    "Q5_K_M blk.4.attn_v.weight Q6_K",
    NULL,
};

/* Tied embeddings: token_embd takes the output rule (ne[0] = 64 does not fit 256 -> Q8_0).
 * Rows of 64: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> IQ4_NL. Rows of 172 fit no
 * block: F16 (llama.cpp: F16 for the k-quants; it stops with an error for the legacy types). */
static const char *const expect_stories[] = {
    "Q4_K_M token_embd.weight Q8_0",      "Q4_K_M blk.0.attn_q.weight Q5_0",
    "Q4_K_M blk.0.attn_k.weight Q5_0",    "Q4_K_M blk.0.attn_v.weight Q5_0",
    "Q4_K_M blk.1.attn_v.weight Q5_0",    "Q4_K_M blk.2.attn_v.weight Q8_0",
    "Q4_K_M blk.3.attn_v.weight Q5_0",    "Q4_K_M blk.4.attn_v.weight Q8_0",
    "Q4_K_M blk.0.attn_output.weight Q5_0", "Q4_K_M blk.0.ffn_gate.weight Q5_0",
    "Q4_K_M blk.0.ffn_up.weight Q5_0",    "Q4_K_M blk.0.ffn_down.weight F16",
    "Q4_K_M blk.2.ffn_down.weight F16",   "Q4_K_M blk.0.attn_norm.weight F32",
    "Q4_K_M output_norm.weight F32",
    "Q4_K_S blk.0.attn_v.weight Q5_1",    "Q4_K_S blk.4.attn_v.weight Q5_0",
    "Q4_K_S token_embd.weight Q8_0",      "Q4_K_S blk.0.ffn_down.weight F16",
    "Q3_K_M blk.0.attn_v.weight Q5_1",    "Q3_K_M blk.2.attn_v.weight Q5_0",
    "Q3_K_M blk.0.attn_output.weight Q5_0", "Q3_K_M blk.0.attn_q.weight IQ4_NL",
    "Q3_K_M token_embd.weight Q8_0",      "Q3_K_M blk.0.ffn_down.weight F16",
    "Q2_K blk.0.attn_v.weight IQ4_NL",    /* n_gqa 2 < 4: Q3_K, then IQ4_NL */
    "Q2_K blk.0.attn_output.weight IQ4_NL", "Q2_K blk.0.attn_q.weight IQ4_NL",
    "Q2_K blk.0.ffn_down.weight F16",     "Q2_K token_embd.weight Q8_0",
    "Q5_K_M blk.2.attn_v.weight Q8_0",    "Q5_K_M blk.1.attn_v.weight Q5_1",
    "Q6_K blk.0.attn_q.weight Q8_0",      "Q6_K token_embd.weight Q8_0",
    "Q6_K blk.0.ffn_gate.weight Q8_0",    "Q6_K blk.0.ffn_down.weight F16",
    "Q4_0 token_embd.weight Q8_0",        /* 64 fits Q4_0, so Q6_K, which falls back to Q8_0 */
    "Q4_0 blk.0.attn_q.weight Q4_0",      "Q4_0 blk.0.ffn_down.weight F16",
    "Q8_0 token_embd.weight Q8_0",        "Q8_0 blk.0.attn_q.weight Q8_0",
    "Q8_0 blk.0.ffn_down.weight F16",
    "F16 token_embd.weight F16",          "F16 blk.0.ffn_down.weight F16",
    "F16 blk.0.attn_q.weight F16",        "F32 blk.0.attn_q.weight F32",
    "Q4_K token_embd.weight Q5_0",        "Q4_K blk.0.attn_q.weight Q5_0",
    NULL,
};

/* 70B: attn_v that a rule leaves at Q3_K or Q4_K gets Q5_K. */
static const char *const expect_70b[] = {
    "Q4_K_M blk.0.attn_v.weight Q6_K",    "Q4_K_M blk.11.attn_v.weight Q5_K",
    "Q4_K_M blk.12.attn_v.weight Q6_K",   "Q4_K_M blk.11.attn_q.weight Q4_K",
    "Q4_K_M blk.11.ffn_down.weight Q4_K", "Q4_K_M blk.12.ffn_down.weight Q6_K",
    "Q2_K blk.11.attn_v.weight Q5_K",     "Q2_K blk.0.attn_q.weight Q2_K",
    "Q3_K_S blk.0.attn_v.weight Q5_K",    "Q3_K_S blk.0.attn_k.weight Q3_K",
    "Q4_K_S blk.0.attn_v.weight Q5_K",    "Q4_K_S blk.40.attn_v.weight Q5_K",
    "Q5_K_S blk.0.attn_v.weight Q5_K",    "Q4_0 blk.0.attn_v.weight Q4_0",
    "Q3_K_M blk.40.attn_v.weight Q5_K",   "Q3_K_M blk.4.ffn_down.weight Q5_K",
    "Q3_K_M blk.5.ffn_down.weight Q4_K",  "Q6_K blk.3.attn_v.weight Q6_K",
    "Q4_K blk.3.attn_v.weight Q4_K",      /* a plain type has no rules */
    NULL,
};

/* Every tensor's type in the files llama.cpp's own llama-quantize wrote (snapshot of February
 * 2025, no imatrix): `llama-quantize --allow-requantize IN.gguf OUT.gguf PRESET` on an f32 GGUF
 * of the model (SmolLM2: llama-quantize's f32 dequantization of SmolLM2-135M-Instruct.Q4_1.gguf;
 * stories260K: `lowbit convert stories260K.bin`), the types read back with gguf-py's
 * GGUFReader. "PRESET TENSOR TYPE" for the tensors outside blocks; "PRESET ROLE CODES" with one
 * code per block, 0..n-1: N IQ4_NL, X IQ4_XS, 0 Q5_0, 1 Q5_1, 8 Q8_0, 3 Q3_K, 4 Q4_K, 5 Q5_K,
 * 6 Q6_K, F F16, f F32. IQ4_NL on stories260K is left out: llama.cpp stops at the rows of 172
 * ("Unsupported tensor size"), where lowbit writes F16. */
static const char *const llama_cpp_smollm2[] = {
    "Q2_K output_norm.weight F32",
    "Q2_K token_embd.weight Q8_0",
    "Q2_K attn_q NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K attn_k NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K attn_v NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K attn_output NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K ffn_gate NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K ffn_up NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q2_K ffn_down 333333333333333333333333333333",
    "Q2_K attn_norm ffffffffffffffffffffffffffffff",
    "Q2_K ffn_norm ffffffffffffffffffffffffffffff",
    "Q3_K_M output_norm.weight F32",
    "Q3_K_M token_embd.weight Q8_0",
    "Q3_K_M attn_q NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q3_K_M attn_k NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q3_K_M attn_v 110000000000000000000000000000",
    "Q3_K_M attn_output 000000000000000000000000000000",
    "Q3_K_M ffn_gate NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q3_K_M ffn_up NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "Q3_K_M ffn_down 544444444444444444444444444444",
    "Q3_K_M attn_norm ffffffffffffffffffffffffffffff",
    "Q3_K_M ffn_norm ffffffffffffffffffffffffffffff",
    "Q4_K_M output_norm.weight F32",
    "Q4_K_M token_embd.weight Q8_0",
    "Q4_K_M attn_q 000000000000000000000000000000",
    "Q4_K_M attn_k 000000000000000000000000000000",
    "Q4_K_M attn_v 888008008008008008008008008888",
    "Q4_K_M attn_output 000000000000000000000000000000",
    "Q4_K_M ffn_gate 000000000000000000000000000000",
    "Q4_K_M ffn_up 000000000000000000000000000000",
    "Q4_K_M ffn_down 666446446446446446446446446666",
    "Q4_K_M attn_norm ffffffffffffffffffffffffffffff",
    "Q4_K_M ffn_norm ffffffffffffffffffffffffffffff",
    "IQ4_NL token_embd.weight Q8_0",
    "IQ4_NL attn_q NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL attn_k NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL attn_v NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL attn_output NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL ffn_gate NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL ffn_up NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_NL ffn_down 555NNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS token_embd.weight Q8_0",
    "IQ4_XS attn_q NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS attn_k NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS attn_v NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS attn_output NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS ffn_gate NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS ffn_up NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
    "IQ4_XS ffn_down 555XXXXXXXXXXXXXXXXXXXXXXXXXXX",
    NULL,
};

static const char *const llama_cpp_stories[] = {
    "Q2_K output_norm.weight F32",
    "Q2_K token_embd.weight Q8_0",
    "Q2_K attn_q NNNNN",
    "Q2_K attn_k NNNNN",
    "Q2_K attn_v NNNNN",
    "Q2_K attn_output NNNNN",
    "Q2_K ffn_gate NNNNN",
    "Q2_K ffn_up NNNNN",
    "Q2_K ffn_down FFFFF",
    "Q2_K attn_norm fffff",
    "Q2_K ffn_norm fffff",
    "Q3_K_M output_norm.weight F32",
    "Q3_K_M token_embd.weight Q8_0",
    "Q3_K_M attn_q NNNNN",
    "Q3_K_M attn_k NNNNN",
    "Q3_K_M attn_v 11000",
    "Q3_K_M attn_output 00000",
    "Q3_K_M ffn_gate NNNNN",
    "Q3_K_M ffn_up NNNNN",
    "Q3_K_M ffn_down FFFFF",
    "Q3_K_M attn_norm fffff",
    "Q3_K_M ffn_norm fffff",
    "Q4_K_M output_norm.weight F32",
    "Q4_K_M token_embd.weight Q8_0",
    "Q4_K_M attn_q 00000",
    "Q4_K_M attn_k 00000",
    "Q4_K_M attn_v 00808",
    "Q4_K_M attn_output 00000",
    "Q4_K_M ffn_gate 00000",
    "Q4_K_M ffn_up 00000",
    "Q4_K_M ffn_down FFFFF",
    "Q4_K_M attn_norm fffff",
    "Q4_K_M ffn_norm fffff",
    "IQ4_XS token_embd.weight Q8_0",
    "IQ4_XS attn_q NNNNN",
    "IQ4_XS attn_k NNNNN",
    "IQ4_XS attn_v NNNNN",
    "IQ4_XS attn_output NNNNN",
    "IQ4_XS ffn_gate NNNNN",
    "IQ4_XS ffn_up NNNNN",
    "IQ4_XS ffn_down FFFFF",
    NULL,
};

/* The IQ4 presets' own rules where the llama.cpp files above do not reach them: attn_v gets
 * Q5_K at GQA >= 4, ffn_down of the first n/8 blocks Q5_K only without an imatrix. */
static const char *const expect_iq4_7b[] = {
    "IQ4_NL token_embd.weight IQ4_NL",    "IQ4_NL output.weight Q6_K",
    "IQ4_NL blk.0.attn_v.weight IQ4_NL",  "IQ4_NL blk.3.ffn_down.weight Q5_K",
    "IQ4_NL blk.4.ffn_down.weight IQ4_NL", "IQ4_NL blk.0.attn_output.weight IQ4_NL",
    "IQ4_XS token_embd.weight IQ4_XS",    "IQ4_XS output.weight Q6_K",
    "IQ4_XS blk.3.ffn_down.weight Q5_K",  "IQ4_XS blk.4.ffn_down.weight IQ4_XS",
    "IQ4_XS blk.31.attn_q.weight IQ4_XS",
    NULL,
};
static const char *const expect_iq4_7b_imatrix[] = {
    "IQ4_NL blk.0.ffn_down.weight IQ4_NL", "IQ4_XS blk.3.ffn_down.weight IQ4_XS",
    NULL,
};
static const char *const expect_iq4_tinyllama[] = {
    "IQ4_NL blk.0.attn_v.weight Q5_K",    "IQ4_XS blk.21.attn_v.weight Q5_K", /* n_gqa 8 */
    "IQ4_XS blk.1.ffn_down.weight Q5_K",  "IQ4_XS blk.2.ffn_down.weight IQ4_XS", /* n/8 = 2 */
    NULL,
};

static const char *type_name(lb_type t)
{
    const lb_type_info *info = lb_type_get((uint32_t)t);
    return info ? info->name : "?";
}

static lb_type type_of(const lb_mixture *m, const shape_model *s, const char *tensor)
{
    int64_t ne[LB_MAX_DIMS] = {1, 1, 1, 1};
    int n_dims = tensor_shape(s, tensor, ne);
    return lb_mixture_tensor_type(m, &s->model, tensor, n_dims, ne);
}

static void check_table(const shape_model *s, const char *const *lines)
{
    for (; *lines; lines++) {
        char mixture[32], tensor[64], want[16];
        if (sscanf(*lines, "%31s %63s %15s", mixture, tensor, want) != 3) {
            fprintf(stderr, "bad table line '%s'\n", *lines);
            test_failures++;
            continue;
        }
        lb_mixture m;
        lb_type want_type;
        CHECK_OK(lb_mixture_parse(&m, mixture));
        CHECK_OK(lb_type_from_name(want, &want_type));
        lb_type got = type_of(&m, s, tensor);
        if (got != want_type) {
            fprintf(stderr, "%s %s %s: got %s, want %s\n", s->label, mixture, tensor,
                    type_name(got), want);
            test_failures++;
        }
    }
}

static lb_type type_of_code(char c)
{
    switch (c) {
    case 'N': return LB_TYPE_IQ4_NL;
    case 'X': return LB_TYPE_IQ4_XS;
    case '0': return LB_TYPE_Q5_0;
    case '1': return LB_TYPE_Q5_1;
    case '8': return LB_TYPE_Q8_0;
    case '3': return LB_TYPE_Q3_K;
    case '4': return LB_TYPE_Q4_K;
    case '5': return LB_TYPE_Q5_K;
    case '6': return LB_TYPE_Q6_K;
    case 'F': return LB_TYPE_F16;
    case 'f': return LB_TYPE_F32;
    default: return (lb_type)-1;
    }
}

/* A table of llama.cpp's per-tensor types (llama_cpp_smollm2): whole tensors, or one code per
 * block of a role; every block of the model must be listed. */
static void check_llama_cpp_table(const shape_model *s, const char *const *lines)
{
    int checked = 0;
    for (; *lines; lines++) {
        char mixture[32], what[64], want[64];
        lb_mixture m;
        if (sscanf(*lines, "%31s %63s %63s", mixture, what, want) != 3 ||
            lb_mixture_parse(&m, mixture) != LB_OK) {
            fprintf(stderr, "bad table line '%s'\n", *lines);
            test_failures++;
            continue;
        }
        if (strchr(what, '.')) { /* a tensor outside the blocks */
            lb_type want_type;
            CHECK_OK(lb_type_from_name(want, &want_type));
            lb_type got = type_of(&m, s, what);
            checked++;
            if (got != want_type) {
                fprintf(stderr, "%s %s %s: got %s, llama.cpp %s\n", s->label, mixture, what,
                        type_name(got), want);
                test_failures++;
            }
            continue;
        }
        if ((int64_t)strlen(want) != s->model.n_layers) {
            fprintf(stderr, "%s %s %s: %zu codes for %lld blocks\n", s->label, mixture, what,
                    strlen(want), (long long)s->model.n_layers);
            test_failures++;
            continue;
        }
        for (int64_t i = 0; i < s->model.n_layers; i++) {
            char tensor[128];
            snprintf(tensor, sizeof tensor, "blk.%lld.%s.weight", (long long)i, what);
            lb_type got = type_of(&m, s, tensor);
            checked++;
            if (got != type_of_code(want[i])) {
                fprintf(stderr, "%s %s %s: got %s, llama.cpp code '%c'\n", s->label, mixture,
                        tensor, type_name(got), want[i]);
                test_failures++;
            }
        }
    }
    printf("%s: %d tensor types checked against llama.cpp's llama-quantize\n", s->label, checked);
}

static void test_fallback(void)
{
    /* llama.cpp's convert_incompatible_tensor, then F16 */
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q2_K, 576) == LB_TYPE_IQ4_NL);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q3_K, 64) == LB_TYPE_IQ4_NL);
    CHECK(lb_kernels_fallback_type(LB_TYPE_IQ4_XS, 896) == LB_TYPE_IQ4_NL);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q4_K, 576) == LB_TYPE_Q5_0);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q5_K, 576) == LB_TYPE_Q5_1);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q6_K, 576) == LB_TYPE_Q8_0);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q2_K, 172) == LB_TYPE_F16);
    CHECK(lb_kernels_fallback_type(LB_TYPE_IQ4_XS, 172) == LB_TYPE_F16);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q6_K, 172) == LB_TYPE_F16);
    /* no substitute in llama.cpp (it stops): F16 */
    CHECK(lb_kernels_fallback_type(LB_TYPE_IQ4_NL, 172) == LB_TYPE_F16);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q4_0, 48) == LB_TYPE_F16);
    CHECK(lb_kernels_fallback_type(LB_TYPE_Q8_0, 33) == LB_TYPE_F16);
    /* types that fit stay */
    CHECK(lb_kernels_fallback_type(LB_TYPE_IQ4_NL, 576) == LB_TYPE_IQ4_NL);
    CHECK(lb_kernels_fallback_type(LB_TYPE_IQ4_XS, 1536) == LB_TYPE_IQ4_XS);
    CHECK(lb_kernels_fallback_type(LB_TYPE_F32, 7) == LB_TYPE_F32);
}

static void test_overrides(void)
{
    lb_mixture m;
    CHECK_OK(lb_mixture_parse(&m, "Q4_K_M"));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_ATTN_V, LB_TYPE_Q8_0));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_FFN_DOWN, LB_TYPE_Q5_K));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_TOKEN_EMBD, LB_TYPE_Q6_K));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_OUTPUT, LB_TYPE_Q8_0));
    CHECK(type_of(&m, &llama7b, "blk.4.attn_v.weight") == LB_TYPE_Q8_0);
    CHECK(type_of(&m, &llama7b, "blk.0.attn_v.weight") == LB_TYPE_Q8_0);
    CHECK(type_of(&m, &llama7b, "blk.0.ffn_down.weight") == LB_TYPE_Q5_K);
    CHECK(type_of(&m, &llama7b, "blk.4.ffn_down.weight") == LB_TYPE_Q5_K);
    CHECK(type_of(&m, &llama7b, "token_embd.weight") == LB_TYPE_Q6_K);
    CHECK(type_of(&m, &llama7b, "output.weight") == LB_TYPE_Q8_0);
    CHECK(type_of(&m, &llama7b, "blk.0.attn_q.weight") == LB_TYPE_Q4_K);
    CHECK(type_of(&m, &llama7b, "blk.0.attn_norm.weight") == LB_TYPE_F32);
    /* 70B's attn_v bump does not touch an override */
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_ATTN_V, LB_TYPE_Q4_K));
    CHECK(type_of(&m, &llama70b, "blk.11.attn_v.weight") == LB_TYPE_Q4_K);

    /* tied embeddings: token_embd takes --type-embd, else --type-output */
    CHECK_OK(lb_mixture_parse(&m, "q4_k_m"));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_OUTPUT, LB_TYPE_Q4_0));
    CHECK(type_of(&m, &stories, "token_embd.weight") == LB_TYPE_Q4_0);
    CHECK(type_of(&m, &llama7b, "token_embd.weight") == LB_TYPE_Q4_K); /* untied: own rule */
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_TOKEN_EMBD, LB_TYPE_Q5_1));
    CHECK(type_of(&m, &stories, "token_embd.weight") == LB_TYPE_Q5_1);
    /* overrides go through the row-length fallback */
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_FFN_DOWN, LB_TYPE_Q4_K));
    CHECK(type_of(&m, &stories, "blk.0.ffn_down.weight") == LB_TYPE_F16);
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_ATTN_Q, LB_TYPE_Q6_K));
    CHECK(type_of(&m, &stories, "blk.1.attn_q.weight") == LB_TYPE_Q8_0);
    CHECK(type_of(&m, &llama7b, "blk.1.attn_q.weight") == LB_TYPE_Q6_K);

    /* a plain type with an override */
    CHECK_OK(lb_mixture_parse(&m, "F16"));
    CHECK_OK(lb_mixture_set_override(&m, LB_ROLE_OUTPUT, LB_TYPE_Q8_0));
    CHECK(type_of(&m, &llama7b, "output.weight") == LB_TYPE_Q8_0);
    CHECK(type_of(&m, &llama7b, "token_embd.weight") == LB_TYPE_F16);

    /* invalid overrides leave the mixture as it was */
    CHECK(lb_mixture_set_override(&m, LB_ROLE_OTHER, LB_TYPE_Q8_0) == LB_ERR_INVALID_ARG);
    CHECK(lb_mixture_set_override(&m, LB_ROLE_COUNT, LB_TYPE_Q8_0) == LB_ERR_INVALID_ARG);
    CHECK(lb_mixture_set_override(&m, LB_ROLE_ATTN_V, LB_TYPE_Q8_K) == LB_ERR_INVALID_ARG);
    CHECK(lb_mixture_set_override(&m, LB_ROLE_ATTN_V, (lb_type)5) == LB_ERR_INVALID_ARG);
    CHECK(lb_mixture_set_override(NULL, LB_ROLE_ATTN_V, LB_TYPE_Q8_0) == LB_ERR_INVALID_ARG);
    CHECK(!m.has_override[LB_ROLE_ATTN_V]);
}

static void test_parse(void)
{
    static const struct {
        const char *name, *canonical;
        uint32_t file_type;
        bool preset;
        lb_type base;
    } cases[] = {
        {"F32", "F32", 0, false, LB_TYPE_F32},       {"f16", "F16", 1, false, LB_TYPE_F16},
        {"Q4_0", "Q4_0", 2, true, LB_TYPE_Q4_0},     {"q4_1", "Q4_1", 3, true, LB_TYPE_Q4_1},
        {"Q8_0", "Q8_0", 7, true, LB_TYPE_Q8_0},     {"q5_0", "Q5_0", 8, true, LB_TYPE_Q5_0},
        {"Q5_1", "Q5_1", 9, true, LB_TYPE_Q5_1},     {"q2_k", "Q2_K", 10, true, LB_TYPE_Q2_K},
        {"Q3_K_S", "Q3_K_S", 11, true, LB_TYPE_Q3_K}, {"q3_k_m", "Q3_K_M", 12, true, LB_TYPE_Q3_K},
        {"Q3_k_L", "Q3_K_L", 13, true, LB_TYPE_Q3_K}, {"Q4_K_s", "Q4_K_S", 14, true, LB_TYPE_Q4_K},
        {"q4_k_m", "Q4_K_M", 15, true, LB_TYPE_Q4_K}, {"Q5_K_S", "Q5_K_S", 16, true, LB_TYPE_Q5_K},
        {"Q5_K_M", "Q5_K_M", 17, true, LB_TYPE_Q5_K}, {"q6_k", "Q6_K", 18, true, LB_TYPE_Q6_K},
        {"bf16", "BF16", 32, false, LB_TYPE_BF16},
        /* plain k types: the ftype llama.cpp's loader guesses from the dominant type */
        {"Q3_K", "Q3_K", 12, false, LB_TYPE_Q3_K},    {"q4_k", "Q4_K", 15, false, LB_TYPE_Q4_K},
        {"Q5_K", "Q5_K", 17, false, LB_TYPE_Q5_K},
        {"iq4_nl", "IQ4_NL", 25, true, LB_TYPE_IQ4_NL}, {"IQ4_XS", "IQ4_XS", 30, true,
                                                          LB_TYPE_IQ4_XS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lb_mixture m;
        CHECK_OK(lb_mixture_parse(&m, cases[i].name));
        if (strcmp(m.name, cases[i].canonical) != 0 || m.file_type != cases[i].file_type ||
            m.is_preset != cases[i].preset || m.base != cases[i].base) {
            fprintf(stderr, "parse %s: got %s ftype %u preset %d base %s\n", cases[i].name,
                    m.name, m.file_type, (int)m.is_preset, type_name(m.base));
            test_failures++;
        }
        for (int r = 0; r < LB_ROLE_COUNT; r++)
            CHECK(!m.has_override[r]);
    }
    static const char *const bad[] = {"Q4_K_X", "", "Q8_K", "IQ2_XS", "q4_k_m ", "Q4_K_MM",
                                      "Q4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_mixture m;
        lb_error_clear();
        CHECK(lb_mixture_parse(&m, bad[i]) == LB_ERR_INVALID_ARG);
        CHECK(strstr(lb_last_error(), "Q4_K_M") != NULL);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        CHECK(strstr(lb_last_error(), quoted) != NULL);
    }
    lb_mixture m;
    CHECK(lb_mixture_parse(&m, NULL) == LB_ERR_INVALID_ARG);
    CHECK(lb_mixture_parse(NULL, "Q4_K_M") == LB_ERR_INVALID_ARG);
    CHECK(strstr(lb_mixture_names(), "Q3_K_L") != NULL);
}

static void test_roles(void)
{
    static const struct {
        const char *name;
        lb_tensor_role role;
        int64_t layer;
    } cases[] = {
        {"token_embd.weight", LB_ROLE_TOKEN_EMBD, -1},
        {"output.weight", LB_ROLE_OUTPUT, -1},
        {"output_norm.weight", LB_ROLE_OTHER, -1},
        {"blk.0.attn_norm.weight", LB_ROLE_OTHER, 0},
        {"blk.12.attn_q.weight", LB_ROLE_ATTN_Q, 12},
        {"blk.3.attn_k.weight", LB_ROLE_ATTN_K, 3},
        {"blk.31.attn_v.weight", LB_ROLE_ATTN_V, 31},
        {"blk.2.attn_output.weight", LB_ROLE_ATTN_OUTPUT, 2},
        {"blk.7.ffn_gate.weight", LB_ROLE_FFN_GATE, 7},
        {"blk.7.ffn_up.weight", LB_ROLE_FFN_UP, 7},
        {"blk.79.ffn_down.weight", LB_ROLE_FFN_DOWN, 79},
        {"blk.0.attn_q.bias", LB_ROLE_ATTN_Q, 0},
        {"blk.1.attn_qkv.weight", LB_ROLE_OTHER, 1},
        {"blk.1.ffn_gate_inp.weight", LB_ROLE_OTHER, 1},
        {"blk.x.attn_q.weight", LB_ROLE_OTHER, -1},
        {"blk.1attn_q.weight", LB_ROLE_OTHER, -1},
        {"blk.12345678901.attn_q.weight", LB_ROLE_OTHER, -1},
        {"rope_freqs.weight", LB_ROLE_OTHER, -1},
        {"", LB_ROLE_OTHER, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t layer = 1234;
        lb_tensor_role role = lb_tensor_role_of(cases[i].name, &layer);
        if (role != cases[i].role || layer != cases[i].layer) {
            fprintf(stderr, "role of '%s': got %s layer %lld\n", cases[i].name,
                    lb_tensor_role_name(role), (long long)layer);
            test_failures++;
        }
    }
    CHECK(lb_tensor_role_of(NULL, NULL) == LB_ROLE_OTHER);
    CHECK(lb_tensor_role_of("blk.4.ffn_down.weight", NULL) == LB_ROLE_FFN_DOWN);
    CHECK(strcmp(lb_tensor_role_name(LB_ROLE_ATTN_OUTPUT), "attn_output") == 0);
    CHECK(strcmp(lb_tensor_role_name(LB_ROLE_COUNT), "unknown") == 0);
}

static void test_model_from_hparams(void)
{
    lb_hparams hp = {.arch = "llama", .n_layers = 32, .n_heads = 32, .n_kv_heads = 32};
    lb_mixture_model mm;
    lb_mixture_model_from_hparams(&mm, &hp);
    CHECK(mm.n_layers == 32 && mm.n_heads == 32 && mm.n_kv_heads == 32);
    CHECK(mm.has_output && !mm.is_70b && !mm.has_imatrix);
    hp.tied_embeddings = true;
    lb_mixture_model_from_hparams(&mm, &hp);
    CHECK(!mm.has_output);
    hp = (lb_hparams){.arch = "llama", .n_layers = 80, .n_heads = 64, .n_kv_heads = 8};
    lb_mixture_model_from_hparams(&mm, &hp);
    CHECK(mm.is_70b); /* Llama 2 70B */
    hp.n_kv_heads = 64;
    lb_mixture_model_from_hparams(&mm, &hp);
    CHECK(!mm.is_70b); /* LLaMA-1 65B */
    snprintf(hp.arch, sizeof hp.arch, "qwen2");
    lb_mixture_model_from_hparams(&mm, &hp);
    CHECK(mm.is_70b);
}

/* Bits per weight of a whole llama-shaped model under a mixture. */
static double model_bpw(const shape_model *s, const char *mixture)
{
    lb_mixture m;
    CHECK_OK(lb_mixture_parse(&m, mixture));
    static const char *const globals[] = {"token_embd.weight", "output_norm.weight",
                                          "output.weight"};
    static const char *const per_block[] = {
        "attn_norm.weight", "attn_q.weight", "attn_k.weight",   "attn_v.weight",
        "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
        "ffn_down.weight"};
    double bits = 0, params = 0;
    for (int64_t layer = -1; layer < s->model.n_layers; layer++) {
        size_t n = layer < 0 ? 3 : sizeof per_block / sizeof per_block[0];
        for (size_t i = 0; i < n; i++) {
            char name[64];
            if (layer < 0)
                snprintf(name, sizeof name, "%s", globals[i]);
            else
                snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer, per_block[i]);
            int64_t ne[LB_MAX_DIMS] = {1, 1, 1, 1}, count;
            int n_dims = tensor_shape(s, name, ne);
            lb_type t = lb_mixture_tensor_type(&m, &s->model, name, n_dims, ne);
            uint64_t bytes = 0;
            CHECK(lb_tensor_count(n_dims, ne, &count));
            CHECK(lb_tensor_bytes(t, n_dims, ne, &bytes));
            bits += 8.0 * (double)bytes;
            params += (double)count;
        }
    }
    return bits / params;
}

static void test_bits_per_weight(void)
{
    /* llama.cpp publishes 3.80 GiB for LLaMA-7B Q4_K_M (4.84 bpw) and 4.45 GiB for Q5_K_M
     * (5.67 bpw); by hand from the rules: Q4_K_M 4.84, Q5_K_M 5.68. */
    double q4km = model_bpw(&llama7b, "Q4_K_M");
    double q5km = model_bpw(&llama7b, "Q5_K_M");
    double q8 = model_bpw(&llama7b, "Q8_0");
    printf("7B bits per weight: Q4_K_M %.3f, Q5_K_M %.3f, Q8_0 %.3f\n", q4km, q5km, q8);
    CHECK(q4km > 4.80 && q4km < 4.90);
    CHECK(q5km > 5.60 && q5km < 5.75);
    CHECK(q8 > 8.49 && q8 < 8.51);
}

static void test_edges(void)
{
    lb_mixture m;
    CHECK_OK(lb_mixture_parse(&m, "Q4_K_M"));
    int64_t ne[LB_MAX_DIMS] = {4096, 4096, 1, 1};
    /* NULLs and odd shapes never crash */
    CHECK(lb_mixture_tensor_type(NULL, &llama7b.model, "blk.0.attn_q.weight", 2, ne) ==
          LB_TYPE_F32);
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, NULL, 2, ne) == LB_TYPE_F32);
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.0.attn_q.weight", 2, NULL) ==
          LB_TYPE_F32);
    CHECK(lb_mixture_tensor_type(&m, NULL, "blk.0.attn_q.weight", 2, ne) == LB_TYPE_Q4_K);
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.0.attn_q.weight", 1, ne) ==
          LB_TYPE_F32);
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.0.attn_q.bias", 2, ne) == LB_TYPE_F32);
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.0.attn_q.weight", 9, ne) ==
          LB_TYPE_F32);
    /* 2-d tensors of no known role get the base type */
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.0.attn_qkv.weight", 2, ne) ==
          LB_TYPE_Q4_K);
    /* a huge block index in a name is harmless */
    CHECK(lb_mixture_tensor_type(&m, &llama7b.model, "blk.999999999.attn_v.weight", 2, ne) ==
          LB_TYPE_Q6_K);
    /* a model with no blocks or no kv heads */
    lb_mixture_model empty = {0, 0, 0, true, false, false};
    CHECK_OK(lb_mixture_parse(&m, "Q2_K"));
    CHECK(lb_mixture_tensor_type(&m, &empty, "blk.0.attn_v.weight", 2, ne) == LB_TYPE_Q3_K);
    /* ne[0] = 0 or negative: no type fits, F16 */
    ne[0] = 0;
    CHECK(lb_mixture_tensor_type(&m, &empty, "blk.0.attn_q.weight", 2, ne) == LB_TYPE_F16);
}

int main(void)
{
    check_table(&llama7b, expect_7b);
    check_table(&llama7b_imatrix, expect_7b_imatrix);
    check_table(&tinyllama, expect_tinyllama);
    check_table(&stories, expect_stories);
    check_table(&llama70b, expect_70b);
    check_table(&llama7b, expect_iq4_7b);
    check_table(&llama7b_imatrix, expect_iq4_7b_imatrix);
    check_table(&tinyllama, expect_iq4_tinyllama);
    check_llama_cpp_table(&smollm2, llama_cpp_smollm2);
    check_llama_cpp_table(&stories, llama_cpp_stories);
    test_fallback();
    test_overrides();
    test_parse();
    test_roles();
    test_model_from_hparams();
    test_bits_per_weight();
    test_edges();
    return test_finish("mixture");
}
