/* llama2.c checkpoints (legacy version-0 format) and its tokenizer.bin. */
#ifndef LB_FORMATS_LLAMA2C_INTERNAL_H
#define LB_FORMATS_LLAMA2C_INTERNAL_H

#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "formats/hparams.h"
#include "formats/mapped_file_internal.h"
#include "formats/vocab.h"

typedef struct lb_llama2c_tensor {
    char name[48];           /* llama.cpp name: "blk.0.attn_q.weight", "token_embd.weight" ... */
    int n_dims;
    int64_t ne[LB_MAX_DIMS]; /* GGUF order */
    const float *data;       /* f32, into the mapped file (4-byte aligned by the format) */
    uint64_t nbytes;
} lb_llama2c_tensor;

typedef struct lb_llama2c {
    lb_mapped_file *file;    /* NULL when parsed from memory */
    const char *path;
    lb_hparams hparams;      /* arch "llama", rope_theta 10000, rms_eps 1e-5 as run.c uses */
    int64_t n_tensors;
    lb_llama2c_tensor *tensors; /* token_embd, then per layer attn_norm, q, k, v, output,
                                   ffn_norm, gate, down, up, then output_norm, [output] */
} lb_llama2c;

/* Reads the 7-int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means an unshared classifier), checks every dimension is
 * positive and consistent (dim divisible by n_heads, n_heads by n_kv_heads) and that the file
 * holds exactly the tensors those imply (the rotary tables freq_cis_real/imag are skipped),
 * with overflow-checked arithmetic. Maps llama2.c's w1/w2/w3 to ffn_gate/ffn_down/ffn_up.
 * Errors: LB_ERR_IO, LB_ERR_CORRUPT_FILE naming the header field or tensor and its offset. */
lb_status lb_llama2c_open(lb_llama2c **out, const char *path);
/* The same over a caller-owned buffer that must outlive the result and be 4-byte aligned
 * (tensor data points into it as float; LB_ERR_INVALID_ARG otherwise). */
lb_status lb_llama2c_open_memory(lb_llama2c **out, const char *name, const void *data,
                                        uint64_t size);
void lb_llama2c_close(lb_llama2c **model);

/* Heuristic used by format detection: does this look like a llama2.c header (sane positive
 * dims and a size that matches)? */
bool lb_llama2c_probe(const void *data, uint64_t size);

/* Reads llama2.c's tokenizer.bin (int32 max_token_length, then per token: f32 score,
 * int32 length, bytes) until the end of the file. If expected_tokens > 0 the count must match.
 * Tokens are translated to GGUF's SentencePiece conventions: model "llama", ' ' -> "▁",
 * "\n<s>\n" -> "<s>", "\n</s>\n" -> "</s>", "<0xXX>" typed BYTE, id 0 UNKNOWN, 1 and 2
 * CONTROL (bos 1, eos 2, unk 0). */
lb_status lb_llama2c_tokenizer_load(lb_vocab **out, const char *path,
                                           int64_t expected_tokens);
lb_status lb_llama2c_tokenizer_parse(lb_vocab **out, const char *name, const void *data,
                                            uint64_t size, int64_t expected_tokens);

#endif
