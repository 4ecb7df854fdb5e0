#!/usr/bin/env python3
"""Packed GGUF files as input: `lowbit convert --type f32|f16` of SmolLM2-135M's Q4_1/Q8_0 file
writes exactly what llama.cpp's `gguf` package dequantizes, every tensor; `lowbit quantize`
reads the packed file directly and writes the same bytes as from that f32 conversion (RTN), with
every block equal to gguf's own quantizer of the dequantized weights. On stories260K quantized
to Q8_0 by lowbit: imatrix and GPTQ run on the packed file, and importance-weighted RTN from it
equals RTN from its f32 conversion.

usage: check_packed_source.py LOWBIT SHARED_DIR
Skips (77) without the models; exits 77 without the gguf package unless LB_REQUIRE_ORACLE=1."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

np, gguf, quants = oracle_env.require("numpy", "gguf", "gguf.quants")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
        sys.exit(1)
    return p.stdout


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0]


def values(t):
    """A tensor's values as f32 (rows x row length), dequantized by gguf where packed."""
    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.asarray(t.data, dtype=np.float32).reshape(-1, int(t.shape[0]))
    return quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(-1, int(t.shape[0]))


def same_bytes(a, b):
    return open(a, "rb").read() == open(b, "rb").read()


def smollm2(lowbit, model, tmp):
    src = gguf.GGUFReader(model)
    expected = {t.name: values(t) for t in src.tensors}
    packed = sorted({t.tensor_type.name for t in src.tensors if t.tensor_type.name != "F32"})
    check(packed == ["Q4_1", "Q8_0"], f"the source holds packed tensors {packed}")
    f32 = os.path.join(tmp, "smollm2-f32.gguf")
    for out_type, dtype in (("f32", np.float32), ("f16", np.float16)):
        out = f32 if out_type == "f32" else os.path.join(tmp, "smollm2-f16.gguf")
        run([lowbit, "convert", model, out, "--type", out_type])
        r = gguf.GGUFReader(out)
        got = {t.name: t for t in r.tensors}
        check(set(got) == set(expected), f"{out_type}: the same {len(got)} tensor names")
        bad = []
        for name, want in expected.items():
            t = got.get(name)
            want_type = "F32" if out_type == "f32" or t is None or len(t.shape) == 1 else "F16"
            ref = want if want_type == "F32" else want.astype(dtype)
            if (t is None or t.tensor_type.name != want_type or
                    not np.array_equal(np.asarray(t.data).reshape(ref.shape).view(np.uint8),
                                       ref.view(np.uint8))):
                bad.append(name)
        check(not bad, f"{out_type}: every tensor is gguf's dequantization"
              f"{' (as f16)' if out_type == 'f16' else ''}, bit for bit"
              f"{'; differ: ' + ', '.join(bad[:3]) if bad else ''}")
        check(field(r, "tokenizer.ggml.add_bos_token") == field(src, "tokenizer.ggml.add_bos_token")
              and field(r, "tokenizer.ggml.pre") == "smollm",
              f"{out_type}: add_bos_token and the pre-tokenizer are kept")

    # quantize reads the packed file: the same output as from its f32 conversion, and every
    # block what gguf's reference quantizer makes of the dequantized weights.
    a, b = os.path.join(tmp, "from-packed.gguf"), os.path.join(tmp, "from-f32.gguf")
    run([lowbit, "quantize", model, a, "--type", "Q4_0"])
    run([lowbit, "quantize", f32, b, "--type", "Q4_0"])
    check(same_bytes(a, b), "RTN Q4_0 from the packed file equals RTN from its f32 conversion")
    out = gguf.GGUFReader(a)
    bad, n_packed = [], 0
    for t in out.tensors:
        if t.tensor_type.name in ("F32", "F16"):
            continue
        n_packed += 1
        ref = quants.quantize(expected[t.name], t.tensor_type)
        if not np.array_equal(np.asarray(t.data).reshape(ref.shape), ref):
            bad.append(f"{t.name} ({t.tensor_type.name})")
    check(n_packed > 200 and not bad,
          f"{n_packed} packed tensors equal gguf's quantizer on the dequantized weights"
          f"{'; differ: ' + ', '.join(bad[:3]) if bad else ''}")


def stories(lowbit, model, text, tmp):
    packed = os.path.join(tmp, "stories-q8_0.gguf")
    deq = os.path.join(tmp, "stories-deq.gguf")
    run([lowbit, "quantize", model, packed, "--type", "Q8_0"])
    run([lowbit, "convert", packed, deq, "--type", "f32"])
    calib = ["--calib", text, "--nsamples", "4", "--seqlen", "64"]
    im = os.path.join(tmp, "stories.imatrix.dat")
    run([lowbit, "imatrix", packed, *calib, "-o", im])
    a, b = os.path.join(tmp, "im-packed.gguf"), os.path.join(tmp, "im-deq.gguf")
    run([lowbit, "quantize", packed, a, "--type", "Q4_0", "--imatrix", im])
    run([lowbit, "quantize", deq, b, "--type", "Q4_0", "--imatrix", im])
    check(same_bytes(a, b), "imatrix on the Q8_0 file, then RTN+imatrix from it equals RTN+imatrix "
          "from its f32 conversion")
    g = os.path.join(tmp, "gptq-packed.gguf")
    run([lowbit, "quantize", packed, g, "--type", "Q4_0", *calib])
    r = gguf.GGUFReader(g)
    types = {t.name: t.tensor_type.name for t in r.tensors}
    check(types.get("blk.0.attn_q.weight") == "Q4_0" and field(r, "lowbit.quantize.method") == "gptq",
          "GPTQ runs on the Q8_0 file and writes Q4_0 matrices")


def main():
    lowbit, shared = sys.argv[1], sys.argv[2]
    smol = os.path.join(shared, "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
    st = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    text = os.path.join(shared, "text", "tinystories-valid-sample.txt")
    if not os.path.exists(smol) and not os.path.exists(st):
        print("skipped: neither SmolLM2-135M nor stories260K found")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        if os.path.exists(smol):
            smollm2(lowbit, smol, tmp)
        else:
            print("skip SmolLM2-135M: not found")
        if os.path.exists(st):
            stories(lowbit, st, text, tmp)
        else:
            print("skip stories260K: not found")
    print("packed source:", "failed: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
