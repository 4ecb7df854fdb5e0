#!/usr/bin/env python3
"""Writes a llama2.c checkpoint with random weights and chosen shapes, for speed benchmarks
(the values mean nothing; the shapes are what a benchmark needs).

usage: make_synthetic_llama2c.py OUT.bin [--dim 2048] [--hidden 5632] [--layers 4]
           [--heads 32] [--kv-heads 4] [--vocab 32000] [--seq 512] [--seed 1]"""
import argparse
import struct

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    for name, default in (("dim", 2048), ("hidden", 5632), ("layers", 4), ("heads", 32),
                          ("kv-heads", 4), ("vocab", 32000), ("seq", 512), ("seed", 1)):
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    head = a.dim // a.heads
    kv_dim = head * a.kv_heads

    def weights(*shape, scale=None):
        fan_in = shape[-1]
        w = rng.standard_normal(shape, dtype=np.float32)
        return w * np.float32(scale if scale is not None else fan_in ** -0.5)

    with open(a.out, "wb") as f:
        f.write(struct.pack("<7i", a.dim, a.hidden, a.layers, a.heads, a.kv_heads, a.vocab, a.seq))
        f.write(weights(a.vocab, a.dim, scale=1.0).tobytes())
        f.write(np.ones((a.layers, a.dim), np.float32).tobytes())
        for shape in ((a.dim, a.dim), (kv_dim, a.dim), (kv_dim, a.dim), (a.dim, a.dim)):
            for _ in range(a.layers):
                f.write(weights(*shape).tobytes())
        f.write(np.ones((a.layers, a.dim), np.float32).tobytes())
        for shape in ((a.hidden, a.dim), (a.dim, a.hidden), (a.hidden, a.dim)):
            for _ in range(a.layers):
                f.write(weights(*shape).tobytes())
        f.write(np.ones(a.dim, np.float32).tobytes())
        f.write(np.zeros((2, a.seq, head // 2), np.float32).tobytes())


if __name__ == "__main__":
    main()
