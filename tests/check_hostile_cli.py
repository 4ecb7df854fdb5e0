#!/usr/bin/env python3
"""Hostile and careless command lines and inputs for `lowbit` (issue 14): each case is made in
a temp dir, run once, and must end with the stated exit code, exactly one line on stderr naming
the option or file and the offending value, and no file left behind.

- numbers: every numeric option is parsed strictly (trailing junk, overflow, a sign where none
  is allowed, nan/inf), --threads is bounded (1..1024) and generate -n cannot overflow: exit 2;
- non-regular files (FIFO, directory, character device) as --text, --calib, --kld,
  --imatrix, --tokenizer, a checkpoint or a shard: exit 3 "not a regular file", never a hang;
- non-finite numbers: NaN/Inf weights are named (tensor, element) before eval or generate runs
  (exit 3); a log-prob file with a non-finite or impossible value is bad input (exit 3, file
  and offset); a non-finite PPL, base PPL, KLD or drift fails the --max-drift gate (exit 4)
  and is null in --json.

usage: check_hostile_cli.py LOWBIT SHARED_DIR"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

LOGP_HEADER = 40  # formats/logprob_file_internal.h: magic, u32 x4, u64 x2
LOGP_FIXED = 24   # per record: u32 target, u32 top1, f64 log p(target), f32 min, f32 max
TEXT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in "
        "the park with her friends. One day, she saw a big red ball under a tree. ") * 6

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(cmd, timeout=20):
    """(exit code, stdout, stderr); a hang is reported as exit code None."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           errors="backslashreplace")
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %d s" % timeout
    return p.returncode, p.stdout, p.stderr


def expect(what, cmd, code, *needles, workdir=None, keep=(), timeout=20):
    """Runs cmd; checks the exit code, one stderr line holding every needle, and that workdir
    holds no files but `keep` afterwards."""
    rc, out, err = run(cmd, timeout)
    lines = err.splitlines()
    ok = rc == code and len(lines) == 1 and all(n in lines[0] for n in needles)
    if ok and workdir is not None:
        left = sorted(set(os.listdir(workdir)) - set(keep))
        if left:
            ok = False
            err += "\nleft behind: %s" % left
    check(ok, "%s: exit %s (want %d)" % (what, rc, code))
    if not ok:
        print("  command: %s\n  stderr: %s" % (" ".join(cmd), err.rstrip()))
    return out


def number_cases(lowbit, model, tok, text):
    """Strict parsing of every numeric option; exit 2 naming the option and the value."""
    gen = [lowbit, "generate", model, "--tokenizer", tok, "--prompt", "Once"]
    ev = [lowbit, "eval", model, "--tokenizer", tok, "--text", text]
    cases = [
        (gen, "--seed", "abc", "--seed 'abc'"),
        (gen, "--seed", "12abc", "--seed '12abc'"),
        (gen, "--seed", "-1", "--seed '-1'"),
        (gen, "--seed", " 7", "--seed ' 7'"),
        (gen, "--seed", "99999999999999999999", "--seed '99999999999999999999'"),
        (gen, "--threads", "4294967298", "--threads '4294967298' is not an integer in 1..1024"),
        (gen, "--threads", "10000", "--threads '10000'"),
        (gen, "--threads", "0", "--threads '0'"),
        (gen, "-n", "9223372036854775807", "-n '9223372036854775807'"),
        (gen, "-n", "-5", "-n '-5'"),
        (gen, "--temp", "nan", "--temp 'nan'"),
        (gen, "--temp", "inf", "--temp 'inf'"),
        (gen, "--temp", "1e999", "--temp '1e999'"),
        (gen, "--temp", "0.5x", "--temp '0.5x'"),
        (gen, "--temp", "-0x1p-2", "--temp '-0x1p-2'"),
        (gen, "--temp", "1" * 60, "--temp '%s...'" % ("1" * 40)),
        (gen, "--seed", "\x1b[31mred", "--seed '\\x1b[31mred'"),
        (ev, "--threads", "4294967298", "--threads '4294967298'"),
        (ev, "--threads", "1e3", "--threads '1e3'"),
        (ev, "--ctx", "64k", "--ctx '64k'"),
        (ev, "--ctx", "65", "--ctx '65' is not an even number"),
        (ev, "--ctx", "18446744073709551616", "--ctx '18446744073709551616'"),
        (ev, "--chunks", "-1", "--chunks '-1'"),
        (ev, "--max-drift", "nan", "--max-drift 'nan'"),
        (ev, "--max-drift", "-1", "--max-drift '-1'"),
        (ev, "--max-drift", "1%", "--max-drift '1%'"),
        ([lowbit, "quantize", model, "out.gguf", "--tokenizer", tok], "--threads", "2x",
         "--threads '2x'"),
        ([lowbit, "quantize", model, "out.gguf", "--tokenizer", tok], "--seed", "1.5",
         "--seed '1.5'"),
        ([lowbit, "quantize", model, "out.gguf", "--tokenizer", tok], "--damp", "nan",
         "--damp 'nan'"),
        ([lowbit, "quantize", model, "out.gguf", "--tokenizer", tok], "--nsamples", "+3",
         "--nsamples '+3'"),
        ([lowbit, "quantize", model, "out.gguf", "--tokenizer", tok], "--rotate-seed", "0x10",
         "--rotate-seed '0x10'"),
        ([lowbit, "imatrix", model, "-o", "out.dat", "--calib", text, "--tokenizer", tok],
         "--threads", "4294967298", "--threads '4294967298'"),
        ([lowbit, "imatrix", model, "-o", "out.dat", "--calib", text, "--tokenizer", tok],
         "--seqlen", "1", "--seqlen '1'"),
        ([lowbit, "bench", "gemv"], "--threads", "1025", "--threads '1025'"),
        ([lowbit, "bench", "gemv"], "--rows", "4096 ", "--rows '4096 '"),
    ]
    for base, option, value, needle in cases:
        expect("%s %s %r" % (base[1], option, value), base + [option, value], 2, needle)
    # generate -n past the model's context: a usage error too, after the model is loaded.
    expect("generate -n 2147483647 (past the context)", gen + ["-n", "2147483647"], 2,
           "exceeds the model's context of 512")
    rc, out, _ = run(gen + ["-n", "4", "--seed", "0", "--temp", "0.5", "--threads", "1"])
    check(rc == 0 and out.startswith("Once"), "valid numbers are still accepted")


def nonregular_cases(lowbit, model, tok, text, tmp):
    """FIFOs, directories and devices wherever a file is read: exit 3, never a hang (a FIFO
    with no writer blocks a plain open forever)."""
    work = os.path.join(tmp, "nonregular")
    os.mkdir(work)
    fifo = os.path.join(work, "fifo")
    os.mkfifo(fifo)
    folder = os.path.join(work, "folder")
    os.mkdir(folder)
    # A sharded checkpoint whose index names a FIFO as its shard, and a directory whose
    # model.safetensors is a FIFO.
    sharded = os.path.join(work, "sharded")
    os.mkdir(sharded)
    os.mkfifo(os.path.join(sharded, "model-00001-of-00001.safetensors"))
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {"model.norm.weight": "model-00001-of-00001.safetensors"}}, f)
    single = os.path.join(work, "single")
    os.mkdir(single)
    os.mkfifo(os.path.join(single, "model.safetensors"))
    keep = sorted(os.listdir(work))
    ev = [lowbit, "eval", model, "--tokenizer", tok, "--ctx", "64", "--chunks", "1"]
    q = [lowbit, "quantize", model, os.path.join(work, "out.gguf"), "--tokenizer", tok]
    im = [lowbit, "imatrix", model, "-o", os.path.join(work, "out.dat"), "--tokenizer", tok]
    cases = [
        ("eval --text FIFO", ev + ["--text", fifo], fifo, "a FIFO"),
        ("eval --text directory", ev + ["--text", folder], folder, "a directory"),
        ("eval --text /dev/null", ev + ["--text", "/dev/null"], "/dev/null",
         "a character device"),
        ("eval --kld FIFO", ev + ["--text", text, "--kld", fifo], fifo, "a FIFO"),
        ("eval --kld directory", ev + ["--text", text, "--kld", folder], folder, "a directory"),
        ("eval --tokenizer FIFO", [lowbit, "eval", model, "--tokenizer", fifo, "--text", text],
         fifo, "a FIFO"),
        ("eval MODEL=FIFO", [lowbit, "eval", fifo, "--text", text], fifo, "a FIFO"),
        ("inspect MODEL=/dev/zero", [lowbit, "inspect", "/dev/zero"], "/dev/zero",
         "a character device"),
        ("convert MODEL=FIFO", [lowbit, "convert", fifo, os.path.join(work, "out.gguf")], fifo,
         "a FIFO"),
        ("inspect shard FIFO (index)", [lowbit, "inspect", sharded],
         "model-00001-of-00001.safetensors", "a FIFO"),
        ("inspect model.safetensors FIFO", [lowbit, "inspect", single], "model.safetensors",
         "a FIFO"),
        ("quantize --calib FIFO", q + ["--type", "q4_0", "--method", "gptq", "--calib", fifo],
         fifo, "a FIFO"),
        ("quantize --imatrix FIFO", q + ["--type", "q4_0", "--imatrix", fifo], fifo, "a FIFO"),
        ("quantize --imatrix directory", q + ["--type", "q4_0", "--imatrix", folder], folder,
         "a directory"),
        ("imatrix --calib FIFO", im + ["--calib", fifo], fifo, "a FIFO"),
        ("imatrix --calib directory", im + ["--calib", folder], folder, "a directory"),
    ]
    for what, cmd, name, kind in cases:
        expect(what, cmd, 3, name, "not a regular file (%s)" % kind, workdir=work, keep=keep,
               timeout=10)


def patched_model(model, path, element, value):
    """A copy of the llama2.c checkpoint with token_embd.weight[element] (the first tensor,
    after the 7-int header) set to `value`."""
    shutil.copyfile(model, path)
    with open(path, "r+b") as f:
        f.seek(28 + 4 * element)
        f.write(struct.pack("<f", value))
    return path


def patched_logits(base, path, record, offset, fmt, value):
    """A copy of a saved log-prob file with one field of one record replaced; returns the
    field's byte offset in the file."""
    with open(base, "rb") as f:
        data = bytearray(f.read())
    n_vocab = struct.unpack_from("<I", data, 8)[0]
    at = LOGP_HEADER + record * (LOGP_FIXED + 2 * n_vocab) + offset
    struct.pack_into(fmt, data, at, value)
    with open(path, "wb") as f:
        f.write(data)
    return at


def nonfinite_cases(lowbit, model, tok, text, tmp):
    """NaN/Inf weights named before any work; log-prob files with impossible values refused;
    a non-finite result fails the drift gate and is null in --json."""
    work = os.path.join(tmp, "nonfinite")
    os.mkdir(work)
    base = os.path.join(work, "base.logits")
    ev = [lowbit, "eval", "--tokenizer", tok, "--text", text, "--ctx", "64", "--chunks", "1"]
    rc, out, err = run(ev[:2] + [model] + ev[2:] + ["--save-logits", base])
    check(rc == 0 and os.path.exists(base), "eval --save-logits (the base file): exit %s" % rc)
    if rc != 0:
        print(err)
        return
    # stories260K: dim 64, so element 64 * 5 + 3 is row 5, column 3 of token_embd.
    for value, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")):
        bad = patched_model(model, os.path.join(work, "bad.bin"), 64 * 5 + 3, value)
        keep = sorted(os.listdir(work))
        for cmd in (["eval", bad] + ev[2:], ["eval", bad] + ev[2:] + ["--kld", base,
                    "--max-drift", "1", "--json"],
                    ["generate", bad, "--tokenizer", tok, "--prompt", "Once", "-n", "4"],
                    ["imatrix", bad, "--tokenizer", tok, "--calib", text, "-o",
                     os.path.join(work, "never.dat"), "--nsamples", "1", "--seqlen", "64"]):
            expect("%s with a %s weight" % (" ".join(cmd[:1] + cmd[-2:]), shown),
                   [lowbit] + cmd, 3, bad, "tensor 'token_embd.weight' element 323 "
                   "(row 5, column 3) is %s" % shown, workdir=work, keep=keep)
    os.remove(bad)
    keep = sorted(os.listdir(work))
    # Log-prob files: each field of a record that cannot hold what it does.
    for field, record, offset, fmt, value, shown in (
            ("log p(target)", 3, 8, "<d", float("nan"), "nan"),
            ("log p(target)", 0, 8, "<d", float("-inf"), "-inf"),
            ("log p(target)", 7, 8, "<d", 2.5, "2.5"),
            ("min log p", 1, 16, "<f", float("nan"), "nan"),
            ("max log p", 2, 20, "<f", float("inf"), "inf"),
            ("max log p", 4, 20, "<f", -1e30, "-1e+30")):  # below the record's min
        bad = os.path.join(work, "bad.logits")
        at = patched_logits(base, bad, record, offset, fmt, value)
        expect("eval --kld with %s %s" % (field, shown), [lowbit, "eval", model] + ev[2:] +
               ["--kld", bad, "--max-drift", "1"], 3, bad, "offset %d" % at,
               "record %d %s" % (record, field), "%s is not a log-probability" % shown,
               workdir=work, keep=keep + ["bad.logits"])
        os.remove(bad)
    # Finite inputs, non-finite results: a weight of 3e38 overflows the RMS norm (PPL NaN);
    # a base file whose log p(target) is -1e300 (finite, <= 0: a valid file) gives an
    # infinite base PPL and a drift of exactly -100%, which "drift > limit" let through.
    huge = patched_model(model, os.path.join(work, "huge.bin"), 64 * 5 + 3, 3e38)
    far = os.path.join(work, "far.logits")
    n_vocab = struct.unpack_from("<I", open(base, "rb").read(), 8)[0]
    with open(base, "rb") as f:
        data = bytearray(f.read())
    n_records = (len(data) - LOGP_HEADER) // (LOGP_FIXED + 2 * n_vocab)
    for r in range(n_records):
        struct.pack_into("<d", data, LOGP_HEADER + r * (LOGP_FIXED + 2 * n_vocab) + 8, -1e300)
    with open(far, "wb") as f:
        f.write(data)
    keep = sorted(os.listdir(work))
    for what, m, kld, needle, key in (
            ("PPL NaN (weight 3e38)", huge, base, "lowbit eval: PPL is ", "ppl"),
            ("base PPL inf", model, far, "lowbit eval: base PPL is inf", "base_ppl")):
        for fmt in ([], ["--json"]):
            out = expect("eval --max-drift 1 %s %s" % (" ".join(fmt), what),
                         [lowbit, "eval", m] + ev[2:] + ["--kld", kld, "--max-drift", "1"]
                         + fmt, 4, needle, "not finite: the --max-drift gate fails", workdir=work,
                         keep=keep)
            if fmt:
                try:
                    r = json.loads(out)
                    ok = key in r and r[key] is None and "drift_pct" in r and "kld" in r
                except ValueError:
                    ok = False
                check(ok, "--json %s: key '%s' present and null" % (what, key))
    # The same file against itself still passes the gate.
    rc, out, err = run([lowbit, "eval", model] + ev[2:] + ["--kld", base, "--max-drift", "0",
                       "--json"])
    check(rc == 0 and json.loads(out)["kld"] == 0.0, "the model against its own logits: exit 0")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    lowbit, shared = (os.path.abspath(a) for a in sys.argv[1:3])
    model = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    tok = os.path.join(shared, "models", "stories260K", "tok512.bin")
    if not os.path.exists(model) or not os.path.exists(tok):
        print("skipped: stories260K not found")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # relative output names of the cases land here, if anywhere
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            f.write(TEXT)
        number_cases(lowbit, model, tok, text)
        nonregular_cases(lowbit, model, tok, text, tmp)
        nonfinite_cases(lowbit, model, tok, text, tmp)
    print("%d failures" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
