#!/usr/bin/env python3
"""lowbit against figures that llama.cpp itself printed for SmolLM2-135M-Instruct (the Q4_1 file
of ../shared/models/smollm2-135m, and its f32 dequantization): perplexity with llama.cpp's BOS
rule (this vocabulary adds none: "bos": false) and the greedy continuation of a prompt. On
stories260K, whose SentencePiece vocabulary adds BOS, eval reports "bos": true.

llama.cpp's figures (Feb 2025 build, CPU, 2 threads), recorded with the commands that made them:

  llama-perplexity -m SmolLM2-135M-Instruct.Q4_1.gguf -f wiki.test.raw -c 512 --chunks 2 -t 2
      Final estimate: PPL = 21.6455 +/- 3.19735
  llama-perplexity -m smollm2-f32.gguf -f wiki.test.raw -c 512 --chunks 2 -t 2
      Final estimate: PPL = 21.6838 +/- 3.19757
      (smollm2-f32.gguf: llama-quantize's F32 dequantization of the Q4_1 file; its tensor data is
      byte-identical to `lowbit convert ... --type f32` of it, which this test uses.)
  llama-simple -m MODEL -n 32 "Once upon a time"   (greedy; the same text for both files)

The f32 model agrees to 4 significant digits (lowbit 21.6835; at 20 chunks 26.9262 against
llama.cpp's 26.9265). On the packed Q4_1 file both programs quantize the activations of every
matrix product to 8 bits, but not alike (llama.cpp: Q8_1 blocks with an f16 sum term, an f16 KV
cache and f16 attention inputs; lowbit: Q8_0 blocks, f32 attention), and on this model such
differences move each position's log-probability by about 0.08 (root mean square; 0.0015 for
f32): lowbit gives 21.7021 here (+0.26%), 22.4747 against 22.4200 at 4 chunks and 27.0576
against 27.0045 at 20. So the packed file is held to 0.5%, not to 4 digits.

usage: check_llamacpp_parity.py LOWBIT SHARED_DIR
Skips (77) without SmolLM2-135M or the text."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHUNKS = "2"
LLAMA_PPL_Q4_1 = 21.6455
LLAMA_PPL_F32 = 21.6838
PROMPT = "Once upon a time"
LLAMA_SIMPLE_32 = ("Once upon a time, the city of Nova Haven was a thriving metropolis, with "
                   "towering skyscrapers and bustling streets. But as the years went by, the city "
                   "began to lose its original")

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


def evaluate(lowbit, model, text, *extra):
    return json.loads(run([lowbit, "eval", model, "--text", text, "--json", *extra]))


def main():
    lowbit, shared = sys.argv[1], sys.argv[2]
    model = os.path.join(shared, "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
    text = os.path.join(shared, "text", "wiki.test.raw")
    if not os.path.exists(model) or not os.path.exists(text):
        print("skipped: SmolLM2-135M or wiki.test.raw not found")
        return 77
    with open(model, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SMOLLM2_SHA256:
        print(f"FAIL: {model} is not the file the figures were recorded on (sha256 {digest})")
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2-f32.gguf")
        run([lowbit, "convert", model, f32, "--type", "f32"])
        r = evaluate(lowbit, f32, text, "--ctx", "512", "--chunks", CHUNKS)
        check(r["bos"] is False and r["windows"] == int(CHUNKS),
              f"f32: no BOS (the vocabulary says add_bos_token = false), {r['windows']} windows")
        check(f"{r['ppl']:.4g}" == f"{LLAMA_PPL_F32:.4g}" and abs(r["ppl"] / LLAMA_PPL_F32 - 1) < 2e-4,
              f"f32: PPL {r['ppl']:.4f} agrees with llama-perplexity's {LLAMA_PPL_F32} to 4 digits")
        q = evaluate(lowbit, model, text, "--ctx", "512", "--chunks", CHUNKS)
        check(q["bos"] is False, "Q4_1: no BOS")
        check(abs(q["ppl"] / LLAMA_PPL_Q4_1 - 1) < 5e-3,
              f"Q4_1: PPL {q['ppl']:.4f} within 0.5% of llama-perplexity's {LLAMA_PPL_Q4_1}")
        text_out = run([lowbit, "eval", model, "--text", text, "--ctx", "64", "--chunks", "1"])
        check("bos: no (the vocabulary adds none)" in text_out, "the text output says no BOS")
        for name, path in (("Q4_1", model), ("f32", f32)):
            story = run([lowbit, "generate", path, "--prompt", PROMPT, "-n", "32"])
            check(story == LLAMA_SIMPLE_32 + "\n",
                  f"{name}: greedy 32 tokens equal llama-simple's: {story.strip()!r}")

    stories = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    tiny = os.path.join(shared, "text", "tinystories-valid-sample.txt")
    if os.path.exists(stories) and os.path.exists(tiny):
        s = evaluate(lowbit, stories, tiny, "--ctx", "64", "--chunks", "2")
        check(s["bos"] is True, "stories260K (SentencePiece, add_bos) evaluates with BOS")
    print("llama.cpp parity:", "failed: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
