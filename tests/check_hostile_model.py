#!/usr/bin/python3
"""Hostile and careless checkpoints (issue 14): each case generates a small file in a temp dir,
runs lowbit on it and checks the exit code, that stderr is one line naming the file and the
field, and that no output or temp file is left. One positive control per generator shows the
unmodified file is accepted, so a case cannot pass because the generator is broken.

Usage: check_hostile_model.py LOWBIT [SOURCE_DIR]
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "malformed"))
import make_gguf as mg  # noqa: E402
import make_safetensors as ms  # noqa: E402
import make_spm  # noqa: E402

LOWBIT = sys.argv[1] if __name__ == "__main__" else None  # fuzz/make_corpus.py imports the models
FAILURES = []
F32, Q4_0, Q5_0, Q8_0 = 0, 2, 6, 8
DIM, HIDDEN, HEADS, HEAD_DIM, N_VOCAB = 32, 64, 2, 32, 8
Q_DIM = HEADS * HEAD_DIM
BLOCK_SHAPES = [("attn_norm.weight", [DIM]), ("attn_q.weight", [DIM, Q_DIM]),
                ("attn_k.weight", [DIM, Q_DIM]), ("attn_v.weight", [DIM, Q_DIM]),
                ("attn_output.weight", [Q_DIM, DIM]), ("ffn_norm.weight", [DIM]),
                ("ffn_gate.weight", [DIM, HIDDEN]), ("ffn_up.weight", [DIM, HIDDEN]),
                ("ffn_down.weight", [HIDDEN, DIM])]
TOKENS = [b"<unk>", b"<s>", b"</s>", b"\xe2\x96\x81a", b"a", b"b", b"c", b"d"]


def f32_data(n, seed):
    return struct.pack("<%df" % n, *[((i * 7 + seed) % 13 - 6) * 0.01 for i in range(n)])


def f32_tensor(name, dims, seed=1):
    n = 1
    for d in dims:
        n *= d
    return mg.tensor(name.encode(), dims, f32_data(n, seed))


def model_tensors(n_blocks=1, shapes=None, drop=(), n_rows=N_VOCAB):
    shapes = shapes or {}
    out = [f32_tensor("token_embd.weight", [DIM, n_rows])]
    for b in range(n_blocks):
        for i, (suffix, dims) in enumerate(BLOCK_SHAPES):
            name = "blk.%d.%s" % (b, suffix)
            if name not in drop:
                out.append(f32_tensor(name, shapes.get(name, dims), seed=b * 13 + i))
    out.append(f32_tensor("output_norm.weight", [DIM]))
    return out


def u32(key, v):
    return mg.kv_scalar(key.encode(), mg.UINT32, struct.pack("<I", v))


def f32(key, v):
    return mg.kv_scalar(key.encode(), mg.FLOAT32, struct.pack("<f", v))


def model_kvs(block_count=1, rope_theta=10000.0, key_length=HEAD_DIM, tokens=None, extra=()):
    tokens = TOKENS if tokens is None else tokens
    kvs = [mg.kv_string(b"general.architecture", b"llama"),
           u32("llama.embedding_length", DIM), u32("llama.feed_forward_length", HIDDEN),
           u32("llama.block_count", block_count), u32("llama.attention.head_count", HEADS),
           u32("llama.attention.head_count_kv", HEADS),
           u32("llama.attention.key_length", key_length), u32("llama.context_length", 64),
           f32("llama.rope.freq_base", rope_theta),
           f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
           mg.kv_string(b"tokenizer.ggml.model", b"llama"),
           mg.kv_strings(b"tokenizer.ggml.tokens", tokens),
           mg.kv_array(b"tokenizer.ggml.scores", mg.FLOAT32, len(tokens),
                       b"".join(struct.pack("<f", -float(i)) for i in range(len(tokens)))),
           mg.kv_array(b"tokenizer.ggml.token_type", mg.INT32, len(tokens),
                       b"".join(struct.pack("<i", 2 if i == 0 else 3 if i < 3 else 1)
                                for i in range(len(tokens)))),
           u32("tokenizer.ggml.unknown_token_id", 0), u32("tokenizer.ggml.bos_token_id", 1),
           u32("tokenizer.ggml.eos_token_id", 2)]
    return kvs + list(extra)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def gguf_model(tmp, name, kvs=None, tensors=None, alignment=mg.ALIGN):
    doc = mg.build(model_kvs() if kvs is None else kvs,
                   model_tensors() if tensors is None else tensors, alignment=alignment)
    return write(os.path.join(tmp, name), doc.data())


def st_file(path, tensors):
    """tensors: [(name, shape, dtype)] with zero-filled data, or an explicit data_offsets."""
    header, data, sizes = {}, b"", {"F32": 4, "F16": 2}
    for name, shape, dtype in tensors:
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + n]}
        data += f32_data(n // 4, len(header)) + bytes(n % 4)
    return write(path, ms.json_file(header, data))


def hf_tensors(n_blocks):
    out = [("model.embed_tokens.weight", [N_VOCAB, DIM], "F32")]
    hf = {"attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
          "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
          "attn_output.weight": "self_attn.o_proj.weight",
          "ffn_norm.weight": "post_attention_layernorm.weight",
          "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
          "ffn_down.weight": "mlp.down_proj.weight"}
    for b in range(n_blocks):
        for suffix, dims in BLOCK_SHAPES:
            out.append(("model.layers.%d.%s" % (b, hf[suffix]), list(reversed(dims)), "F32"))
    out.append(("model.norm.weight", [DIM], "F32"))
    return out


def hf_dir(tmp, name, n_blocks=1, num_hidden_layers=1, shards=None):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    config = {"model_type": "llama", "hidden_size": DIM, "intermediate_size": HIDDEN,
              "num_hidden_layers": num_hidden_layers, "num_attention_heads": HEADS,
              "num_key_value_heads": HEADS, "head_dim": HEAD_DIM, "vocab_size": N_VOCAB,
              "rms_norm_eps": 1e-5, "tie_word_embeddings": True}
    write(os.path.join(d, "config.json"), json.dumps(config).encode())
    tensors = hf_tensors(n_blocks)
    if shards:
        half = len(tensors) // 2
        st_file(os.path.join(d, "model-00001-of-00002.safetensors"), tensors[:half])
        st_file(os.path.join(d, "model-00002-of-00002.safetensors"), tensors[half:])
    else:
        st_file(os.path.join(d, "model.safetensors"), tensors)
    return d


def leftovers(tmp, before):
    return sorted(set(os.listdir(tmp)) - before)


def run(label, args, tmp, code=3, needles=(), max_seconds=1.0):
    """Runs lowbit ARGS; checks the exit code, one stderr line holding every needle, the time,
    and that the run left nothing new in tmp (an output or a temp file)."""
    before = set(os.listdir(tmp))
    start = time.monotonic()
    proc = subprocess.run([LOWBIT] + args, capture_output=True, timeout=120)
    seconds = time.monotonic() - start
    err = proc.stderr.decode("utf-8", "replace")
    problems = []
    if proc.returncode != code:
        problems.append("exit %d, expected %d" % (proc.returncode, code))
    if code != 0:
        lines = err.splitlines()
        if len(lines) != 1:
            problems.append("%d stderr lines" % len(lines))
        for needle in needles:
            if needle not in err:
                problems.append("stderr lacks %r" % needle)
        if re.search(r"\blb_\w+:", err):
            problems.append("an internal function name in the message")
        left = leftovers(tmp, before)
        if left:
            problems.append("left files %s" % left)
    # The sanitized build is slower; the budget is for a fail-fast check, not for a pass.
    limit = max_seconds * (3 if os.environ.get("LB_SANITIZED") else 1)
    if seconds > limit:
        problems.append("took %.2f s (limit %.1f s)" % (seconds, limit))
    status = "FAIL" if problems else "ok"
    print("%-4s %-48s exit %d %.2fs %s" % (status, label, proc.returncode, seconds,
                                            err.strip()[:300]))
    for p in problems:
        print("     problem:", p)
    if problems:
        FAILURES.append(label)
    return proc


def text_file(tmp):
    return write(os.path.join(tmp, "text.txt"), b"a b c d a b c d " * 8)


def quantize_args(model, tmp):
    return ["quantize", model, os.path.join(tmp, "out.gguf"), "--type", "Q8_0",
            "--method", "rtn"]


def eval_args(model, tmp):
    return ["eval", model, "--text", text_file(tmp), "--ctx", "16"]


def cleanup_output(tmp):
    out = os.path.join(tmp, "out.gguf")
    if os.path.exists(out):
        os.remove(out)


def case_controls(tmp):
    """The generators' unmodified files are accepted."""
    good = gguf_model(tmp, "good.gguf", tensors=model_tensors(n_blocks=1))
    run("control: quantize rtn of the good GGUF", quantize_args(good, tmp), tmp, code=0)
    cleanup_output(tmp)
    run("control: eval of the good GGUF", eval_args(good, tmp), tmp, code=0, max_seconds=5)
    d = hf_dir(tmp, "good_hf")
    run("control: quantize rtn of the good HF dir", quantize_args(d, tmp), tmp, code=0)
    cleanup_output(tmp)


def case_shards_without_index(tmp):
    d = hf_dir(tmp, "two_shards", shards=True)
    for cmd in (["convert", d, os.path.join(tmp, "out.gguf")], quantize_args(d, tmp)):
        run("shards without index: " + cmd[0], cmd, tmp,
            needles=[d, "more than one *.safetensors without model.safetensors.index.json"])


def case_unused_blocks(tmp):
    # Tensors for 2 blocks, block_count 1: block 1 would be silently dropped.
    path = gguf_model(tmp, "blocks_2_declared_1.gguf", tensors=model_tensors(n_blocks=2))
    for args in (quantize_args(path, tmp), eval_args(path, tmp),
                 ["generate", path, "--prompt", "a", "-n", "2"]):
        run("block_count < blocks present: " + args[0], args, tmp,
            needles=[path, "blk.1.attn_norm.weight", "block_count"])
    d = hf_dir(tmp, "hf_layers_2_declared_1", n_blocks=2, num_hidden_layers=1)
    run("num_hidden_layers < layers present: quantize", quantize_args(d, tmp), tmp,
        needles=[d, "blk.1.attn_norm.weight"])
    extra = model_tensors() + [f32_tensor("rope_freqs.weight", [HEAD_DIM // 2])]
    path = gguf_model(tmp, "unknown_tensor.gguf", tensors=extra)
    run("a tensor the model does not read: quantize", quantize_args(path, tmp), tmp,
        needles=[path, "rope_freqs.weight"])


def case_quantize_validates(tmp):
    """quantize's RTN path rejects what eval rejects."""
    cases = [
        ("transposed q", dict(tensors=model_tensors(shapes={"blk.0.attn_q.weight":
                                                             [Q_DIM, DIM]})),
         ["blk.0.attn_q.weight", "{64, 32}"]),
        ("missing ffn_up", dict(tensors=model_tensors(drop={"blk.0.ffn_up.weight"})),
         ["blk.0.ffn_up.weight", "missing"]),
        ("NaN rope theta", dict(kvs=model_kvs(rope_theta=float("nan"))), ["rope_theta", "nan"]),
        ("odd head size", dict(kvs=model_kvs(key_length=15)), ["head_dim 15"]),
        ("empty vocabulary", dict(kvs=model_kvs(tokens=[])), ["vocabulary is empty"]),
        ("context_length 0", dict(kvs=[u32("llama.context_length", 0) if k[1][1] ==
                                       b"llama.context_length" else k for k in model_kvs()]),
         ["context_length = 0"]),
    ]
    for label, kw, needles in cases:
        path = gguf_model(tmp, label.replace(" ", "_") + ".gguf", **kw)
        run("quantize rtn validates: " + label, quantize_args(path, tmp), tmp,
            needles=[path] + needles)
        run("eval validates: " + label, eval_args(path, tmp), tmp, needles=[path] + needles)


def case_vocab_vs_embedding(tmp):
    """More tokens than embedding rows is refused; fewer is padding (Hugging Face Qwen2 rounds
    its embedding up), accepted, and generate never picks a padding id."""
    for n_tokens in (N_VOCAB - 1, N_VOCAB + 1):
        tokens = (TOKENS + [b"e"])[:n_tokens]
        path = gguf_model(tmp, "vocab_%d_rows_%d.gguf" % (n_tokens, N_VOCAB),
                          kvs=model_kvs(tokens=tokens))
        needles = [path, "%d tokens" % n_tokens, "%d rows" % N_VOCAB]
        code = 3 if n_tokens > N_VOCAB else 0
        for args in (eval_args(path, tmp), ["generate", path, "--prompt", "a", "-n", "8"],
                     quantize_args(path, tmp)):
            run("vocabulary %d vs %d rows: %s" % (n_tokens, N_VOCAB, args[0]), args, tmp,
                code=code, needles=needles)
        if code == 0:
            os.unlink(quantize_args(path, tmp)[2])


def case_block_count_huge(tmp):
    for count in (20000000, 2147483647 // 4):
        path = gguf_model(tmp, "block_count_%d.gguf" % count, kvs=model_kvs(block_count=count))
        for args in (eval_args(path, tmp), quantize_args(path, tmp)):
            run("block_count %d: %s" % (count, args[0]), args, tmp,
                needles=[path, "block_count) %d" % count, "blk.1.attn_norm.weight"])
    d = hf_dir(tmp, "hf_layers_20000000", num_hidden_layers=20000000)
    run("num_hidden_layers 20000000: quantize", quantize_args(d, tmp), tmp,
        needles=[d, "20000000"])


def case_zero_dimension(tmp):
    """A zero dimension beside a huge one: refused at read, no loop over 2^62 empty rows."""
    for dims in ([0, 1 << 62], [1 << 62, 0], [1 << 40, 0]):
        zero = dims.index(0)
        path = gguf_model(tmp, "zero_dim_%d_%d.gguf" % tuple(dims),
                          tensors=model_tensors() + [mg.tensor(b"empty", dims, b"")])
        for args in (["convert", path, os.path.join(tmp, "out.gguf")], quantize_args(path, tmp)):
            run("GGUF dims %s: %s" % (dims, args[0]), args, tmp,
                needles=[path, "'empty'", "ne[%d]" % zero, "dimension 0"])
        d = hf_dir(tmp, "st_zero_dim_%d_%d" % tuple(dims))
        st = os.path.join(d, "model.safetensors")
        st_file(st, hf_tensors(1) + [("model.layers.0.mlp.up_proj.bias", dims, "F32")])
        for args in (["convert", d, os.path.join(tmp, "out.gguf")], quantize_args(d, tmp)):
            run("safetensors shape %s: %s" % (dims, args[0]), args, tmp,
                needles=[st, "up_proj.bias", "entry %d is 0" % zero])


def case_tokenizers(tmp):
    """tokenizer.json ids bounded before the vocabulary is built; SentencePiece models that are
    not BPE, or normalize, refused."""
    d = hf_dir(tmp, "hf_tok")
    tok = {"model": {"type": "BPE", "byte_fallback": True,
                     "vocab": dict([(t.decode(), i) for i, t in enumerate(TOKENS[:-1])] +
                                   [("d", 9999999)]),
                     "merges": []},
           "added_tokens": []}
    tok_path = write(os.path.join(d, "tokenizer.json"), json.dumps(tok).encode())
    run("tokenizer.json id 9999999: quantize", quantize_args(d, tmp), tmp,
        needles=[tok_path, "model.vocab token 'd'", "9999999"])
    good = hf_dir(tmp, "hf_spm")
    spm_cases = [
        ("control: BPE", make_spm.model(make_spm.PIECES[:N_VOCAB]), 0, []),
        ("UNIGRAM", make_spm.pieces(make_spm.PIECES[:N_VOCAB]) + make_spm.trainer_spec(model_type=1) +
         make_spm.normalizer_spec(), 3, ["model_type", "UNIGRAM"]),
        ("WORD", make_spm.pieces(make_spm.PIECES[:N_VOCAB]) + make_spm.trainer_spec(model_type=3) +
         make_spm.normalizer_spec(), 3, ["model_type", "WORD"]),
        ("nmt_nfkc normalizer", make_spm.pieces(make_spm.PIECES[:N_VOCAB]) + make_spm.trainer_spec() +
         make_spm.normalizer_spec(name="nmt_nfkc", charsmap=b"\x01\x02"), 3,
         ["normalizer_spec.name"]),
        ("remove_extra_whitespaces", make_spm.pieces(make_spm.PIECES[:N_VOCAB]) + make_spm.trainer_spec() +
         make_spm.normalizer_spec(remove_extra_whitespaces=True), 3,
         ["remove_extra_whitespaces"]),
    ]
    for label, data, code, needles in spm_cases:
        path = write(os.path.join(tmp, "tokenizer.model"), data)
        # A vocabulary of another size than the embedding is refused later, by design: the
        # control only needs the tokenizer itself to be accepted, so it runs inspect.
        run("SentencePiece %s" % label, ["inspect", good, "--tokenizer", path], tmp, code=code,
            needles=[path] + needles)


def case_misaligned_blocks(tmp):
    """general.alignment = 1 and odd tensor offsets (llama.cpp accepts them): Q8_0, Q4_0 and Q5_0
    blocks are decoded without a misaligned struct read (UBSan) and to the same values as from
    an aligned file."""
    half_one = struct.pack("<e", 1.0)
    q8 = half_one + bytes((j - 16) & 0xFF for j in range(32))  # values -16 .. 15
    q4 = half_one + bytes(range(16))
    q5 = half_one + struct.pack("<I", 0xA5A5A5A5) + bytes(range(16, 32))
    blocks = [mg.tensor(b"q8", [32, 2], q8 * 2, ttype=Q8_0), mg.tensor(b"q4", [32, 1], q4, ttype=Q4_0),
              mg.tensor(b"q5", [32, 3], q5 * 3, ttype=Q5_0)]
    outs = []
    for alignment in (32, 1):
        # "xy" makes the header length odd, so with alignment 1 the first tensor starts at an odd
        # byte and the others at whatever offset the block sizes (34, 18, 22) give.
        kvs = model_kvs(extra=[mg.kv_string(b"general.pad", b"xy"),
                               u32("general.alignment", alignment)])
        doc = mg.build(kvs, blocks, alignment=alignment)
        if alignment == 1 and doc.find("data0")[0] % 2 != 1:
            print("FAIL the generator did not put the first tensor at an odd offset")
            FAILURES.append("misaligned generator")
        path = write(os.path.join(tmp, "align_%d.gguf" % alignment), doc.data())
        out = os.path.join(tmp, "out_%d.gguf" % alignment)
        run("alignment %d: convert" % alignment,
            ["convert", path, out, "--type", "f32"], tmp, code=0)
        outs.append(open(out, "rb").read() if os.path.exists(out) else b"")
    if struct.pack("<32f", *range(-16, 16)) not in outs[1] or outs[0] != outs[1]:
        print("FAIL misaligned blocks decode to other values than aligned ones")
        FAILURES.append("misaligned blocks")


def main():
    if not os.access(LOWBIT, os.X_OK):
        print("lowbit binary not found:", LOWBIT)
        return 1
    cases = [case_controls, case_shards_without_index, case_unused_blocks,
             case_quantize_validates, case_vocab_vs_embedding, case_block_count_huge,
             case_zero_dimension, case_tokenizers, case_misaligned_blocks]
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="hostile_") as tmp:
            case(tmp)
    if FAILURES:
        print("%d case(s) failed: %s" % (len(FAILURES), ", ".join(FAILURES)))
        return 1
    print("all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
