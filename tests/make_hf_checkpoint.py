#!/usr/bin/python3
"""Builds a Hugging Face-layout llama checkpoint (config.json + safetensors) from stories260K.bin.

Usage: make_hf_checkpoint.py OUTDIR [--shards K] [--dtype f32|f16|bf16] [--model PATH]

An independent oracle for lowbit's safetensors reader and HF conversion: it reads the llama2.c
file with numpy and writes safetensors with json + struct only (no safetensors package). q_proj
and k_proj are written in Hugging Face's half-split rotary row order, i.e. the inverse of
llama.cpp's convert permute applied to llama2.c's (GGUF-order) rows.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def default_model_path():
    shared = os.environ.get("LB_SHARED_DIR")
    if not shared:
        shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
    return os.path.join(shared, "models", "stories260K", "stories260K.bin")


def read_llama2c(path):
    """Returns (config dict, list of (hf_name, f32 array)) in llama2.c's file order."""
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack_from("<7i", raw, 0)
    shared_classifier = vocab > 0
    vocab = abs(vocab)
    head_size = dim // n_heads
    kv_dim = dim * n_kv_heads // n_heads
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        count = int(np.prod(shape))
        if pos + count > data.size:
            sys.exit("make_hf_checkpoint: %s is truncated" % path)
        arr = data[pos:pos + count].reshape(shape).astype(np.float32)
        pos += count
        return arr

    embed = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, head_size // 2)  # freq_cis_real: recomputed from rope_theta by every runtime
    take(seq_len, head_size // 2)  # freq_cis_imag
    lm_head = None if shared_classifier else take(vocab, dim)

    def to_hf_rotary(w, heads):
        # Inverse of llama.cpp's HF -> GGUF permute
        # w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols).
        rows, cols = w.shape
        return np.ascontiguousarray(
            w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols))

    tensors = [("model.embed_tokens.weight", embed)]
    for i in range(n_layers):
        p = "model.layers.%d." % i
        tensors += [
            (p + "input_layernorm.weight", rms_att[i]),
            (p + "self_attn.q_proj.weight", to_hf_rotary(wq[i], n_heads)),
            (p + "self_attn.k_proj.weight", to_hf_rotary(wk[i], n_kv_heads)),
            (p + "self_attn.v_proj.weight", wv[i]),
            (p + "self_attn.o_proj.weight", wo[i]),
            (p + "post_attention_layernorm.weight", rms_ffn[i]),
            (p + "mlp.gate_proj.weight", w1[i]),
            (p + "mlp.down_proj.weight", w2[i]),
            (p + "mlp.up_proj.weight", w3[i]),
        ]
    tensors.append(("model.norm.weight", rms_final))
    if lm_head is not None:
        tensors.append(("lm_head.weight", lm_head))

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        "intermediate_size": hidden,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "vocab_size": vocab,
        "max_position_embeddings": seq_len,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": shared_classifier,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    return config, tensors


def encode(arr, dtype):
    """(safetensors dtype name, little-endian bytes)."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "f32":
        return "F32", arr.astype("<f4").tobytes()
    if dtype == "f16":
        return "F16", arr.astype("<f2").tobytes()
    # bf16: round to nearest even on the top 16 bits (the values here are finite).
    u = arr.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    return "BF16", rounded.tobytes()


def write_safetensors(path, tensors, dtype):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        st_dtype, blob = encode(arr, dtype)
        header[name] = {"dtype": st_dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    return offset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    parser.add_argument("--model", default=default_model_path())
    args = parser.parse_args()

    config, tensors = read_llama2c(args.model)
    if args.shards < 1 or args.shards > len(tensors):
        sys.exit("make_hf_checkpoint: --shards must be in 1..%d" % len(tensors))
    config["torch_dtype"] = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[args.dtype]
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    if args.shards == 1:
        write_safetensors(os.path.join(args.outdir, "model.safetensors"), tensors, args.dtype)
        return
    weight_map = {}
    total = 0
    for k in range(args.shards):
        group = tensors[k * len(tensors) // args.shards:(k + 1) * len(tensors) // args.shards]
        shard = "model-%05d-of-%05d.safetensors" % (k + 1, args.shards)
        total += write_safetensors(os.path.join(args.outdir, shard), group, args.dtype)
        for name, _ in group:
            weight_map[name] = shard
    index = {"metadata": {"total_size": total},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(args.outdir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


if __name__ == "__main__":
    main()
