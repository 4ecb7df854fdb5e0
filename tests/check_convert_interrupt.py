#!/usr/bin/env python3
"""Interrupted `lowbit convert`: SIGINT or SIGTERM while the output is being written leaves the
target path as it was (an existing file untouched, a new path absent) and no temp file behind.

The input is a small synthetic Llama-shaped safetensors checkpoint (about 90 MB of bf16, 1 s to
convert to f32), so that the signal lands mid-write: the test waits for the writer's temp file to
appear and signals at once.

usage: check_convert_interrupt.py LOWBIT SHARED_DIR"""
import os
import signal
import subprocess
import sys
import tempfile
import time

ATTEMPTS = 3  # a run that finishes before the signal lands is retried, not counted


def interrupt_once(cmd, workdir, sig):
    """Starts cmd, signals it as soon as a temp file shows up. None if it finished first."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if any(".tmp." in f for f in os.listdir(workdir)):
            proc.send_signal(sig)
            proc.wait()
            return proc.returncode
        time.sleep(0.001)
    proc.wait()
    return None


def main():
    lowbit, shared = sys.argv[1:3]
    tokenizer = os.path.join(shared, "models", "llama2-tokenizer", "tokenizer.model")
    if not os.path.exists(tokenizer):
        print(f"SKIP: {tokenizer} not found")
        sys.exit(77)
    here = os.path.dirname(os.path.abspath(__file__))
    failures = 0

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        python = os.environ.get("LB_ORACLE_PYTHON", sys.executable)  # the generator needs numpy
        if subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode != 0:
            print(f"SKIP: {python} has no numpy (tests/ci.sh sets LB_ORACLE_PYTHON)")
            sys.exit(1 if os.environ.get("LB_REQUIRE_ORACLE") else 77)
        subprocess.run([python, os.path.join(here, "make_synthetic_safetensors.py"), model,
                        "--dim", "512", "--hidden", "1408", "--layers", "4", "--heads", "8",
                        "--kv-heads", "8", "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        for sig in [signal.SIGINT, signal.SIGTERM]:
            for existing in [True, False]:
                target = os.path.join(out_dir, "model.gguf")
                if existing:
                    with open(target, "wb") as f:
                        f.write(b"previous contents")
                cmd = [lowbit, "convert", model, target, "--tokenizer", tokenizer]
                code = None
                for _ in range(ATTEMPTS):
                    code = interrupt_once(cmd, out_dir, sig)
                    if code is not None:
                        break
                    if os.path.exists(target):  # finished before the signal: start over
                        os.remove(target)
                    if existing:
                        with open(target, "wb") as f:
                            f.write(b"previous contents")
                if existing:
                    with open(target, "rb") as f:
                        kept = f.read() == b"previous contents"
                else:
                    kept = not os.path.exists(target)
                left = [f for f in os.listdir(out_dir) if ".tmp." in f]
                ok = code is not None and code != 0 and kept and not left
                what = "existing target untouched" if existing else "no target created"
                print(f"{'ok' if ok else 'FAIL'}: {signal.Signals(sig).name} during convert: "
                      f"exit {code}, {what}: {kept}, temp files left: {left}")
                failures += not ok
                if os.path.exists(target):
                    os.remove(target)

    if failures:
        print(f"{failures} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
