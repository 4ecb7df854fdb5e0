#!/usr/bin/env python3
"""Byte compatibility of lowbit's block types with llama.cpp, using the `gguf` package's numpy
implementation (gguf.quants, maintained with llama.cpp) as the oracle:
- dequantization: blocks quantized by lowbit decode to the same floats in gguf.quants and in
  lowbit, for every type;
- quantization: where gguf.quants implements llama.cpp's reference rounding (Q4_0, Q4_1, Q5_0,
  Q5_1, Q8_0), lowbit's importance-free rounding writes the same bytes (gguf.quants has no
  IQ4_NL / IQ4_XS quantizer: tests/test_quants_iq4.c pins those bytes to llama.cpp's by hash);
- blocks written by gguf.quants decode to the same floats in lowbit ("and vice versa").

usage: check_quants_oracle.py QUANTS_MAIN
Exits 77 (skipped) when the gguf package is unavailable, unless LB_REQUIRE_ORACLE=1."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

np, gguf, quants = oracle_env.require("numpy", "gguf", "gguf.quants")

SEED = 20261123
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL", "IQ4_XS"]
GGUF_QUANTIZES = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}


def rows_for_test(rng, n_rows, row):
    """Gaussian rows with heavy-tailed outliers, plus edge rows (zero, constant, tiny, huge)."""
    x = rng.standard_normal((n_rows, row)).astype(np.float32)
    x[::7] *= rng.standard_t(3, size=(len(x[::7]), row)).astype(np.float32)
    x[1] = 0.0
    x[2] = 0.25
    x[3] *= 1e-20
    x[4] *= 1e3  # large, with block scales still inside the f16 range
    x[5, 17] = 40.0
    return x


def main():
    driver = sys.argv[1]
    rng = np.random.default_rng(SEED)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in TYPES:
            qtype = getattr(gguf.GGMLQuantizationType, name)
            block, _ = gguf.GGML_QUANT_SIZES[qtype]
            row = 4 * 256
            x = rows_for_test(rng, 64, row)
            src, qpath, dpath = (os.path.join(tmp, f"{name}.{e}") for e in ("f32", "q", "deq"))
            x.tofile(src)
            subprocess.run([driver, "quantize", name, str(row), src, qpath], check=True)
            ours = np.fromfile(qpath, dtype=np.uint8).reshape(len(x), -1)
            subprocess.run([driver, "dequantize", name, str(row), qpath, dpath], check=True)
            our_deq = np.fromfile(dpath, dtype=np.float32).reshape(x.shape)
            ref_deq = quants.dequantize(ours, qtype).astype(np.float32)
            if not np.array_equal(our_deq.view(np.uint32), ref_deq.view(np.uint32)):
                bad = np.argwhere(our_deq.view(np.uint32) != ref_deq.view(np.uint32))
                print(f"FAIL {name}: dequantization differs from gguf.quants at {len(bad)} "
                      f"values, first {bad[0].tolist()}: {our_deq[tuple(bad[0])]!r} vs "
                      f"{ref_deq[tuple(bad[0])]!r}")
                failures += 1
            if name in GGUF_QUANTIZES:
                theirs = quants.quantize(x, qtype)
                if not np.array_equal(ours, theirs):
                    bad = np.argwhere(ours != theirs)
                    print(f"FAIL {name}: quantized bytes differ from gguf.quants at {len(bad)} "
                          f"bytes (first row/byte {bad[0].tolist()})")
                    failures += 1
                # Their blocks decode to the same floats in lowbit.
                tpath = os.path.join(tmp, f"{name}.theirs")
                theirs.tofile(tpath)
                subprocess.run([driver, "dequantize", name, str(row), tpath, dpath], check=True)
                mine = np.fromfile(dpath, dtype=np.float32).reshape(x.shape)
                if not np.array_equal(mine.view(np.uint32),
                                      quants.dequantize(theirs, qtype).view(np.uint32)):
                    print(f"FAIL {name}: lowbit decodes gguf.quants blocks differently")
                    failures += 1
            rel = np.sqrt(np.mean((our_deq[6:] - x[6:]) ** 2) / np.mean(x[6:] ** 2))
            print(f"{name}: {len(x)} rows of {row}, block {block}, relative RMS error {rel:.4f}")
    print("quants oracle:", f"{failures} failed (seed {SEED})" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
