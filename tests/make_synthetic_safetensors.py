#!/usr/bin/env python3
"""Writes a Hugging Face llama checkpoint (config.json + model.safetensors, bf16) with random
heavy-tailed weights and the shapes of Llama-2-7B by default, for memory and time benchmarks of
`lowbit quantize` at scale (the values mean nothing). Streams tensor by tensor, so it needs
little memory; the 7B file is about 13.5 GB. Pair it with a tokenizer, e.g.
--tokenizer ../shared/models/llama2-tokenizer/tokenizer.model.

usage: make_synthetic_safetensors.py OUT_DIR [--dim 4096] [--hidden 11008] [--layers 32]
           [--heads 32] [--kv-heads 32] [--vocab 32000] [--ctx 4096] [--seed 1]"""
import argparse
import json
import os
import struct

import numpy as np


def bf16_bytes(x):
    """float32 -> bfloat16 (round to nearest even) as little-endian bytes."""
    u = x.astype(np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    for name, default in (("dim", 4096), ("hidden", 11008), ("layers", 32), ("heads", 32),
                          ("kv-heads", 32), ("vocab", 32000), ("ctx", 4096), ("seed", 1)):
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    head = a.dim // a.heads
    kv = head * a.kv_heads

    shapes = [("model.embed_tokens.weight", (a.vocab, a.dim))]
    for i in range(a.layers):
        pre = f"model.layers.{i}."
        shapes += [(pre + "input_layernorm.weight", (a.dim,)),
                   (pre + "self_attn.q_proj.weight", (a.dim, a.dim)),
                   (pre + "self_attn.k_proj.weight", (kv, a.dim)),
                   (pre + "self_attn.v_proj.weight", (kv, a.dim)),
                   (pre + "self_attn.o_proj.weight", (a.dim, a.dim)),
                   (pre + "post_attention_layernorm.weight", (a.dim,)),
                   (pre + "mlp.gate_proj.weight", (a.hidden, a.dim)),
                   (pre + "mlp.up_proj.weight", (a.hidden, a.dim)),
                   (pre + "mlp.down_proj.weight", (a.dim, a.hidden))]
    shapes += [("model.norm.weight", (a.dim,)), ("lm_head.weight", (a.vocab, a.dim))]

    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)

    os.makedirs(a.out_dir, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": a.dim, "intermediate_size": a.hidden,
              "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
              "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab,
              "max_position_embeddings": a.ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "torch_dtype": "bfloat16", "tie_word_embeddings": False,
              "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    rng = np.random.default_rng(a.seed)
    with open(os.path.join(a.out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for name, shape in shapes:
            if len(shape) == 1:
                f.write(bf16_bytes(1.0 + 0.1 * rng.standard_normal(shape[0], np.float32)))
                continue
            rows, cols = shape
            scale = np.float32(cols ** -0.5 / np.sqrt(2.0))  # Student-t(4) has variance 2
            for r0 in range(0, rows, 1024):
                n = min(1024, rows - r0)
                f.write(bf16_bytes(rng.standard_t(4, size=(n, cols)).astype(np.float32) * scale))
            print(f"{name} {shape}", flush=True)


if __name__ == "__main__":
    main()
