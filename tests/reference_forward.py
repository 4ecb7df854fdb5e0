#!/usr/bin/python3
"""Independent float64 forward pass of a llama2.c checkpoint: logits or llama.cpp-style perplexity.

Usage:
  reference_forward.py MODEL --tokens 1,403,407 [--out logits.npy|logits.bin]
  reference_forward.py MODEL --tokens-file ids.txt --ppl --ctx 256

An oracle for lowbit's C forward pass (model/model_forward.c): it reads the legacy llama2.c file with its
own reader and computes the transformer straight from the math in numpy float64, over the whole
sequence at once with a causal mask (no KV cache), sharing nothing with the C code.

Logits: without --out they are printed as text, one line per position; --out FILE.npy writes a
float64 [n_tokens, vocab] .npy, any other name raw little-endian float64 in the same order.

Perplexity (llama.cpp's protocol): the tokens are cut into non-overlapping windows of --ctx
tokens (a trailing partial window is dropped), the first token of each window is replaced by BOS
(id 1), and the logits at positions ctx/2 .. ctx-2 are scored against the next token;
PPL = exp(mean NLL), printed with the standard error of the mean NLL propagated to PPL.
"""
import argparse
import struct
import sys

import numpy as np

BOS = 1


def read_checkpoint(path):
    """Header of 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    vocab_size < 0 means a separate classifier), then f32 arrays in run.c's order."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 28:
        sys.exit("reference_forward: %s: too short for a llama2.c header" % path)
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack_from("<7i", raw)
    shared_classifier = vocab > 0
    vocab = abs(vocab)
    head_dim = dim // n_heads
    kv_dim = head_dim * n_kv_heads
    floats = np.frombuffer(raw, dtype="<f4", offset=28)
    cursor = [0]

    def take(*shape):
        count = int(np.prod(shape))
        if cursor[0] + count > floats.size:
            sys.exit("reference_forward: %s: truncated" % path)
        block = floats[cursor[0]:cursor[0] + count].astype(np.float64).reshape(shape)
        cursor[0] += count
        return block

    w = {"embed": take(vocab, dim)}
    w["attn_norm"] = take(n_layers, dim)
    w["wq"] = take(n_layers, dim, dim)          # [out, in] per layer
    w["wk"] = take(n_layers, kv_dim, dim)
    w["wv"] = take(n_layers, kv_dim, dim)
    w["wo"] = take(n_layers, dim, dim)
    w["ffn_norm"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)       # gate
    w["w2"] = take(n_layers, dim, hidden)       # down
    w["w3"] = take(n_layers, hidden, dim)       # up
    w["final_norm"] = take(dim)
    take(seq_len, head_dim // 2)                # freq_cis_real: recomputed below
    take(seq_len, head_dim // 2)                # freq_cis_imag
    w["classifier"] = w["embed"] if shared_classifier else take(vocab, dim)
    if cursor[0] != floats.size:
        sys.exit("reference_forward: %s: %d trailing floats" % (path, floats.size - cursor[0]))
    config = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads,
                  n_kv_heads=n_kv_heads, vocab=vocab, head_dim=head_dim,
                  rope_theta=10000.0, rms_eps=1e-5)
    return config, w


def rmsnorm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope_interleaved(x, n_heads, head_dim, theta):
    """Rotates pairs (2i, 2i+1) of every head of x [T, n_heads*head_dim] by pos * theta^(-2i/hd)."""
    t = x.shape[0]
    pairs = x.reshape(t, n_heads, head_dim // 2, 2)
    freq = theta ** (-2.0 * np.arange(head_dim // 2) / head_dim)
    angle = np.arange(t)[:, None] * freq[None, :]
    cos = np.cos(angle)[:, None, :]
    sin = np.sin(angle)[:, None, :]
    a, b = pairs[..., 0], pairs[..., 1]
    out = np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1)
    return out.reshape(t, n_heads * head_dim)


def attention(q, k, v, c):
    """Causal grouped-query attention: query head h reads kv head h // (n_heads / n_kv_heads)."""
    t, hd = q.shape[0], c["head_dim"]
    group = c["n_heads"] // c["n_kv_heads"]
    q = q.reshape(t, c["n_heads"], hd).transpose(1, 0, 2)            # [H, T, hd]
    k = k.reshape(t, c["n_kv_heads"], hd).transpose(1, 0, 2)         # [KVH, T, hd]
    v = v.reshape(t, c["n_kv_heads"], hd).transpose(1, 0, 2)
    k = np.repeat(k, group, axis=0)
    v = np.repeat(v, group, axis=0)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)                  # [H, T, T]
    future = np.triu(np.ones((t, t), dtype=bool), k=1)
    scores[:, future] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return (probs @ v).transpose(1, 0, 2).reshape(t, c["n_heads"] * hd)


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(c, w, tokens):
    """Logits [len(tokens), vocab] for positions 0.. of one sequence."""
    x = w["embed"][np.asarray(tokens)]
    eps, theta = c["rms_eps"], c["rope_theta"]
    for layer in range(c["n_layers"]):
        h = rmsnorm(x, w["attn_norm"][layer], eps)
        q = rope_interleaved(h @ w["wq"][layer].T, c["n_heads"], c["head_dim"], theta)
        k = rope_interleaved(h @ w["wk"][layer].T, c["n_kv_heads"], c["head_dim"], theta)
        v = h @ w["wv"][layer].T
        x = x + attention(q, k, v, c) @ w["wo"][layer].T
        h = rmsnorm(x, w["ffn_norm"][layer], eps)
        x = x + (silu(h @ w["w1"][layer].T) * (h @ w["w3"][layer].T)) @ w["w2"][layer].T
    return rmsnorm(x, w["final_norm"], eps) @ w["classifier"].T


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def perplexity(c, w, tokens, ctx):
    if ctx < 4:
        sys.exit("reference_forward: --ctx must be at least 4")
    n_windows = len(tokens) // ctx
    if n_windows == 0:
        sys.exit("reference_forward: %d tokens are fewer than one window of %d"
                 % (len(tokens), ctx))
    first = ctx // 2
    nll = []
    for window in range(n_windows):
        chunk = list(tokens[window * ctx:(window + 1) * ctx])
        chunk[0] = BOS
        logp = log_softmax(forward(c, w, chunk))
        for pos in range(first, ctx - 1):
            nll.append(-logp[pos, chunk[pos + 1]])
    nll = np.array(nll)
    mean = nll.mean()
    ppl = np.exp(mean)
    stderr = ppl * nll.std(ddof=1) / np.sqrt(nll.size) if nll.size > 1 else 0.0
    return ppl, stderr, n_windows, nll.size


def parse_ids(text):
    ids = [int(s) for s in text.replace(",", " ").split()]
    if not ids:
        sys.exit("reference_forward: no token ids given")
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="llama2.c checkpoint (.bin)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokens", help="comma-separated token ids")
    source.add_argument("--tokens-file", help="file of comma- or newline-separated token ids")
    parser.add_argument("--out", help="write logits to FILE.npy or raw float64 FILE")
    parser.add_argument("--ppl", action="store_true", help="perplexity instead of logits")
    parser.add_argument("--ctx", type=int, default=512, help="perplexity window (default 512)")
    args = parser.parse_args()

    c, w = read_checkpoint(args.model)
    if args.tokens is not None:
        tokens = parse_ids(args.tokens)
    else:
        with open(args.tokens_file) as f:
            tokens = parse_ids(f.read())
    bad = [t for t in tokens if t < 0 or t >= c["vocab"]]
    if bad:
        sys.exit("reference_forward: token id %d outside the vocabulary of %d"
                 % (bad[0], c["vocab"]))

    if args.ppl:
        ppl, stderr, windows, scored = perplexity(c, w, tokens, args.ctx)
        print("windows %d, scored tokens %d, PPL = %.6f +/- %.6f" % (windows, scored, ppl, stderr))
        return
    logits = forward(c, w, tokens)
    if args.out is None:
        for row in logits:
            print(" ".join("%.10g" % v for v in row))
    elif args.out.endswith(".npy"):
        np.save(args.out, logits)
    else:
        logits.astype("<f8").tofile(args.out)


if __name__ == "__main__":
    main()
