#!/usr/bin/env python3
"""Independent check of `lowbit convert`: llama.cpp's own Python reader (the `gguf` package)
must load the GGUF that lowbit writes from stories260K, with llama.cpp's metadata and tensor
names, and every tensor must equal the llama2.c checkpoint read here with numpy.

usage: check_gguf_oracle.py LOWBIT SHARED_DIR
Exits 77 (skipped) when the gguf package is unavailable, unless LB_REQUIRE_ORACLE=1."""
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

np, gguf = oracle_env.require("numpy", "gguf")


def read_llama2c(path):
    """The legacy llama2.c layout, read directly: header, then f32 arrays in run.c's order."""
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // heads
    kv_dim = head * kv_heads
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = data[pos:pos + n].reshape(shape)
        pos += n
        return out

    t = {"token_embd.weight": take(vocab, dim)}
    names = [("attn_norm", (dim,)), ("attn_q", (dim, dim)), ("attn_k", (kv_dim, dim)),
             ("attn_v", (kv_dim, dim)), ("attn_output", (dim, dim)), ("ffn_norm", (dim,)),
             ("ffn_gate", (hidden, dim)), ("ffn_down", (dim, hidden)), ("ffn_up", (hidden, dim))]
    for name, shape in names:
        block = take(layers, *shape)
        for i in range(layers):
            t[f"blk.{i}.{name}.weight"] = block[i]
    t["output_norm.weight"] = take(dim)
    take(seq, head // 2)
    take(seq, head // 2)
    if not shared:
        t["output.weight"] = take(vocab, dim)
    assert pos == data.size, "llama2.c file size mismatch"
    hp = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
              vocab=vocab, seq=seq)
    return hp, t


def field_value(reader, key):
    field = reader.fields[key]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return [field.parts[i] for i in field.data]
    return field.parts[field.data[0]][0]


def main():
    lowbit, shared = sys.argv[1], sys.argv[2]
    model = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    if not os.path.exists(model):
        print("skipped: stories260K not found")
        return 77
    hp, expected = read_llama2c(model)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for out_type, dtype in (("f32", np.float32), ("f16", np.float16)):
            out = os.path.join(tmp, f"stories260K-{out_type}.gguf")
            subprocess.run([lowbit, "convert", model, out, "--type", out_type], check=True)
            reader = gguf.GGUFReader(out)
            meta = {
                "general.architecture": "llama",
                "llama.embedding_length": hp["dim"],
                "llama.feed_forward_length": hp["hidden"],
                "llama.block_count": hp["layers"],
                "llama.attention.head_count": hp["heads"],
                "llama.attention.head_count_kv": hp["kv_heads"],
                "llama.context_length": hp["seq"],
                "llama.rope.dimension_count": hp["dim"] // hp["heads"],
                "tokenizer.ggml.model": "llama",
                "tokenizer.ggml.bos_token_id": 1,
                "tokenizer.ggml.eos_token_id": 2,
                "general.file_type": 0 if out_type == "f32" else 1,
            }
            for key, want in meta.items():
                got = field_value(reader, key)
                if got != want:
                    print(f"FAIL {out_type}: {key} = {got!r}, expected {want!r}")
                    failures += 1
            tokens = reader.fields["tokenizer.ggml.tokens"]
            if len(tokens.data) != hp["vocab"]:
                print(f"FAIL {out_type}: {len(tokens.data)} tokens")
                failures += 1
            eps = float(field_value(reader, "llama.attention.layer_norm_rms_epsilon"))
            if abs(eps - 1e-5) > 1e-10:
                print(f"FAIL {out_type}: rms eps {eps}")
                failures += 1
            got = {t.name: t for t in reader.tensors}
            if set(got) != set(expected):
                print(f"FAIL {out_type}: tensor names differ: {sorted(set(got) ^ set(expected))}")
                failures += 1
            for name, want in expected.items():
                if name not in got:
                    continue
                t = got[name]
                # gguf reports shapes innermost first; data comes back row-major.
                want_type = "F32" if want.ndim == 1 or out_type == "f32" else "F16"
                if t.tensor_type.name != want_type:
                    print(f"FAIL {out_type}: {name} type {t.tensor_type.name}")
                    failures += 1
                if list(t.shape) != list(reversed(want.shape)):
                    print(f"FAIL {out_type}: {name} shape {list(t.shape)}")
                    failures += 1
                data = np.asarray(t.data).reshape(want.shape)
                ref = want if want_type == "F32" else want.astype(dtype)
                if not np.array_equal(data.view(np.uint8), ref.view(np.uint8)):
                    print(f"FAIL {out_type}: {name} data differs")
                    failures += 1
            print(f"{out_type}: {len(got)} tensors and {len(meta) + 2} metadata checks done")
    print("gguf oracle:", "failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
