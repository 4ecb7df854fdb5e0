#!/usr/bin/env python3
"""Rotations folded into real models (`lowbit convert --rotate`): the rotated f32 GGUF gives
the same perplexity as the unrotated one to 4 significant digits in `lowbit eval` (and a KL
divergence near 0), the same greedy 32-token continuation in `lowbit generate`, for r1,
r1+r2 and r2, Hadamard and random orthogonal; llama.cpp's Python reader (the `gguf` package)
loads the rotated file with its lowbit.rotation.* keys, and numpy checks in float64, without knowing
the rotation, that it is an orthogonal change of basis of the original: embedding Gram matrix,
every matrix against the embedding rows as probes, value/output products per head.

Models: stories260K and SmolLM2-135M from SHARED_DIR, each skipped when absent or when lowbit
cannot read its weights as f32 (LB_ROTATE_SMOLLM2 may name another file of SmolLM2, e.g. an
f32 dequantization). Exit 77 when no model runs or the gguf package is missing (unless
LB_REQUIRE_ORACLE=1).

usage: check_rotate.py LOWBIT SHARED_DIR"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

np, gguf = oracle_env.require("numpy", "gguf")

VARIANTS = [("r1", "hadamard"), ("r1+r2", "hadamard"), ("r1", "orthogonal"),
            ("r1+r2", "orthogonal"), ("r2", "hadamard")]
# SmolLM2 is 2,000 times larger: two variants cover both rotations, both kinds and the algebra
# check, and under the sanitizers (LB_SANITIZED) it is left to the plain build, as CI's 30
# minutes on 2 cores would not hold it.
LARGE_VARIANTS = [("r1+r2", "hadamard"), ("r1", "orthogonal")]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def must(cmd):
    p = run(cmd)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
        sys.exit(1)
    return p


def tensors_of(path):
    """name -> float64 array in (rows, cols) order, and the reader's fields."""
    r = gguf.GGUFReader(path)
    t = {x.name: np.array(x.data, dtype=np.float64) for x in r.tensors}
    return t, r


def field_value(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(v).decode()
    return int(v[0])


def close(a, b, what, tol=2e-5):
    """max |a - b| <= tol * max |b|: the rotated weights are float64 products rounded to f32
    once (6e-8 relative) and the probes sum dim-length products of them."""
    err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
    if not err <= tol:
        check(False, f"{what}: relative error {err:.2g}")
    return err


def check_algebra(base_path, rot_path, r2, label):
    """The rotated weights against the original ones through invariants of the rotation."""
    b, _ = tensors_of(base_path)
    r, reader = tensors_of(rot_path)
    check(field_value(reader, "lowbit.rotation.r1") in ("hadamard", "orthogonal"),
          f"{label}: lowbit.rotation.r1 = {field_value(reader, 'lowbit.rotation.r1')}")
    check(field_value(reader, "lowbit.rotation.r2") == ("none" if not r2 else
                                                        field_value(reader, "lowbit.rotation.r1")),
          f"{label}: lowbit.rotation.r2 = {field_value(reader, 'lowbit.rotation.r2')}")
    check(field_value(reader, "lowbit.rotation.head") == "untied" and "output.weight" in r,
          f"{label}: head untied, output.weight present")
    arch = field_value(reader, "general.architecture")
    heads = field_value(reader, f"{arch}.attention.head_count")
    kv_heads = field_value(reader, f"{arch}.attention.head_count_kv")
    E, Er = b["token_embd.weight"], r["token_embd.weight"]
    # Probe with 64 embedding rows spread over the vocabulary.
    rows = np.linspace(0, E.shape[0] - 1, 64).astype(int)
    P, Pr = E[rows], Er[rows]
    worst = close(Pr @ Pr.T, P @ P.T, "embedding Gram matrix")
    out_w = b.get("output.weight", E)
    worst = max(worst, close(Pr @ r["output.weight"].T,
                             (P * b["output_norm.weight"]) @ out_w.T, "output head"))
    ones = all(np.all(v == 1.0) for k, v in r.items() if k.endswith("norm.weight"))
    layers = sorted({int(k.split(".")[1]) for k in b if k.startswith("blk.")})
    for l in layers:
        p = f"blk.{l}."
        ga, gf = b[p + "attn_norm.weight"], b[p + "ffn_norm.weight"]
        for name, g in (("attn_q", ga), ("attn_k", ga), ("ffn_gate", gf), ("ffn_up", gf)) + \
                (() if r2 else (("attn_v", ga),)):
            worst = max(worst, close(Pr @ r[p + name + ".weight"].T,
                                     (P * g) @ b[p + name + ".weight"].T, p + name))
        worst = max(worst, close(Pr @ r[p + "ffn_down.weight"], P @ b[p + "ffn_down.weight"],
                                 p + "ffn_down"))
        if not r2:
            worst = max(worst, close(Pr @ r[p + "attn_output.weight"],
                                     P @ b[p + "attn_output.weight"], p + "attn_output"))
            continue
        # Per query head h of KV head h // group: E' O'_h V'_kv E'^T = E O_h V_kv diag(g) E^T.
        hd = b[p + "attn_v.weight"].shape[0] // kv_heads
        group = heads // kv_heads
        for h in range(heads):
            kv = h // group
            o, o_r = (x[p + "attn_output.weight"][:, h * hd:(h + 1) * hd] for x in (b, r))
            v, v_r = (x[p + "attn_v.weight"][kv * hd:(kv + 1) * hd] for x in (b, r))
            worst = max(worst, close(Pr @ o_r @ v_r @ Pr.T, P @ o @ (v * ga) @ P.T,
                                     f"{p}head {h}: output x value"))
            if p + "attn_v.bias" in b:
                bv, bv_r = (x[p + "attn_v.bias"][kv * hd:(kv + 1) * hd] for x in (b, r))
                worst = max(worst, close(Pr @ o_r @ bv_r, P @ o @ bv, f"{p}head {h}: v bias"))
    check(ones, f"{label}: every norm is all ones")
    check(worst <= 2e-5, f"{label}: rotated weights are an orthogonal change of basis of the "
                         f"original (worst relative error {worst:.2g})")


def evaluate(lowbit, model, text, ctx, chunks, *extra):
    p = must([lowbit, "eval", model, "--text", text, "--ctx", str(ctx), "--chunks", str(chunks),
              "--json", *extra])
    return json.loads(p.stdout)


def check_model(lowbit, label, model, extra_args, text, ctx, chunks, prompt, tmp, variants):
    base = os.path.join(tmp, "base.gguf")
    p = run([lowbit, "convert", model, base, *extra_args])
    if p.returncode == 3:
        print(f"skipped {label}: lowbit cannot convert it to f32 here: {p.stderr.strip()}")
        return False
    if p.returncode != 0:
        check(False, f"{label}: convert exited {p.returncode}: {p.stderr.strip()}")
        return True
    logits = os.path.join(tmp, "base.logits")
    ref = evaluate(lowbit, base, text, ctx, chunks, "--save-logits", logits)
    ref_gen = must([lowbit, "generate", base, "--prompt", prompt, "-n", "32"]).stdout
    print(f"{label}: unrotated PPL {ref['ppl']:.6f} over {ref['windows']} windows of {ctx}; "
          f"continuation {ref_gen.strip()!r}")
    for i, (rot, kind) in enumerate(variants):
        what = f"{label} --rotate {rot} --rotate-kind {kind}"
        out = os.path.join(tmp, "rotated.gguf")
        p = must([lowbit, "convert", model, out, *extra_args, "--rotate", rot,
                  "--rotate-kind", kind, "--rotate-seed", str(10 + i)])
        report = [line for line in p.stderr.splitlines() if "rotation:" in line]
        r1 = "r1 none" if rot == "r2" else f"r1 {kind}"
        check(len(report) == 1 and r1 in report[0] and ("head tied" in report[0]) ==
              (rot == "r2"), f"{what}: {report}")
        got = evaluate(lowbit, out, text, ctx, chunks, "--kld", logits)
        check(f"{got['ppl']:.4g}" == f"{ref['ppl']:.4g}",
              f"{what}: PPL {got['ppl']:.6f} = {ref['ppl']:.6f} to 4 digits "
              f"(KLD {got['kld']:.2g}, top-1 {got['top1']:.4f})")
        check(abs(got["kld"]) < 1e-5, f"{what}: |KLD| {got['kld']:.2g} < 1e-5")
        gen = must([lowbit, "generate", out, "--prompt", prompt, "-n", "32"]).stdout
        check(gen == ref_gen, f"{what}: same greedy continuation of 32 tokens")
        if i < 2:  # the algebra does not depend on the kind: the first two variants
            check_algebra(base, out, rot == "r1+r2", what)
        os.unlink(out)
    os.unlink(base)
    return True


def main():
    lowbit, shared = sys.argv[1:3]
    models = os.path.join(shared, "models")
    texts = os.path.join(shared, "text")
    smollm2 = os.environ.get("LB_ROTATE_SMOLLM2") or os.path.join(
        models, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
    cases = [
        ("stories260K", os.path.join(models, "stories260K", "stories260K.bin"),
         ["--tokenizer", os.path.join(models, "stories260K", "tok512.bin")],
         os.path.join(texts, "tinystories-valid-sample.txt"), 256, 60, "Once upon a time"),
        ("SmolLM2-135M", smollm2, [], os.path.join(texts, "wiki.test.raw"), 128, 4,
         "The capital of France is"),
    ]
    ran = 0
    for n, (label, model, extra, text, ctx, chunks, prompt) in enumerate(cases):
        if not os.path.exists(model) or not os.path.exists(text):
            print(f"skipped {label}: {model} or {text} not found")
            continue
        if n > 0 and os.environ.get("LB_SANITIZED"):
            print(f"skipped {label}: too slow under the sanitizers (the plain build checks it)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            ran += check_model(lowbit, label, model, extra, text, ctx, chunks, prompt, tmp,
                               VARIANTS if n == 0 else LARGE_VARIANTS)
    if failures:
        print(f"{len(failures)} failures")
        return 1
    return 0 if ran else 77


if __name__ == "__main__":
    sys.exit(main())
