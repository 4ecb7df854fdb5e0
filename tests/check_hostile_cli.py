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
        (gen, "--seed", "\x1b[31mred", "--seed '\\x1b[31mred'"),
        (ev, "--threads", "4294967298", "--threads '4294967298'"),
        (ev, "--threads", "1e3", "--threads '1e3'"),
        (ev, "--ctx", "64k", "--ctx '64k'"),
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


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    lowbit, shared = sys.argv[1:3]
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
    print("%d failures" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
