/* Hugging Face side files: config.json (llama-family hyperparameters) and tokenizer.json. */
#ifndef LB_FORMATS_HF_INTERNAL_H
#define LB_FORMATS_HF_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/hparams.h"
#include "formats/vocab.h"

/* Reads config.json of a llama-family model ("model_type" llama, mistral or qwen2; others are
 * LB_ERR_UNSUPPORTED): hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads (default: heads), rope_theta (default 10000),
 * rms_norm_eps (default 1e-6), vocab_size, max_position_embeddings, tie_word_embeddings
 * (default false), head_dim (default hidden/heads). Missing required keys, wrong JSON types
 * and non-positive or inconsistent sizes are LB_ERR_CORRUPT_FILE naming the key. A non-null
 * "rope_scaling" or a "hidden_act" other than "silu" is LB_ERR_UNSUPPORTED (lb_hparams cannot
 * express them). `path` may be the file or the directory holding config.json. */
lb_status lb_hf_config_load(lb_hparams *out, const char *path);
lb_status lb_hf_config_parse(lb_hparams *out, const char *name, const char *json,
                                    uint64_t len);

/* Reads tokenizer.json with a "BPE" model. Byte-level BPE (a ByteLevel pre-tokenizer or
 * decoder) becomes tokenizer model "gpt2" with merges; BPE with byte_fallback (Llama 2 style,
 * "▁" for space) becomes "llama" with scores -rank and byte tokens "<0xXX>" typed BYTE.
 * added_tokens are included (special ones typed CONTROL, others USER_DEFINED). Token ids
 * must be dense 0..n-1 (gaps are filled with "[PADn]" typed UNUSED, as llama.cpp does).
 * bos/eos/unk ids come from tokenizer_config.json beside it when present, else from the
 * model's unk_token and well-known special tokens. `path` may be the file or its directory.
 * Scores are -id (tokenizer.json keeps no SentencePiece scores; ids follow merge order). */
lb_status lb_hf_tokenizer_load(lb_vocab **out, const char *path);
lb_status lb_hf_tokenizer_parse(lb_vocab **out, const char *name, const char *json,
                                       uint64_t len);

#endif
