#!/usr/bin/env python3
"""Independent check of lowbit's SentencePiece-style tokenizer: Google's `sentencepiece`
package must produce exactly lowbit's token ids for the Llama 2 tokenizer.model, over the whole
of wiki.test.raw as one text, over each of its lines, over the TinyStories sample, and over
random mixed-script text from a fixed seed.

usage: check_tokenizer_oracle.py TOKENIZE_MAIN SHARED_DIR
TOKENIZE_MAIN is tests/tokenize_main (prints lowbit's ids). Exits 77 (skipped) when the
sentencepiece package or the shared files are unavailable, unless LB_REQUIRE_ORACLE=1."""
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

spm, = oracle_env.require("sentencepiece")


def lowbit_ids(exe, model, path, lines):
    args = [exe] + (["--lines"] if lines else []) + [model, path]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [[int(x) for x in row.split()] for row in out.split("\n")[:-1]]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def compare(label, expected, got):
    if expected == got:
        return True
    i = first_difference(expected, got)
    print(f"{label}: differs at token {i} of {len(expected)} (lowbit has {len(got)})")
    print(f"  sentencepiece: {expected[max(0, i - 3):i + 8]}")
    print(f"  lowbit:        {got[max(0, i - 3):i + 8]}")
    return False


def random_text(rng, n_lines):
    parts = ["the", " the", "Once", " upon", "a", " ", "  ", "\t", ".", ",", "!", "?", "'", "\"",
             "0", "1", "42", "2023", "-", "@", "café", "naïve", "—", "…", "日本語", "中文",
             "😀", "👍🏽", "Привет", "مرحبا", "שלום", "ß", "Ω", "π", "≈", "\u00a0", "\u200b",
             "<s>", "</s>", "<unk>", "<0x41>", "▁", "ing", "tion", "A", "Z", "x"]
    return "\n".join("".join(rng.choice(parts) for _ in range(rng.randrange(0, 40)))
                     for _ in range(n_lines))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    exe, shared = sys.argv[1], sys.argv[2]
    model = os.path.join(shared, "models", "llama2-tokenizer", "tokenizer.model")
    wiki = os.path.join(shared, "text", "wiki.test.raw")
    stories = os.path.join(shared, "text", "tinystories-valid-sample.txt")
    for path in (model, wiki, stories):
        if not os.path.exists(path):
            # missing data skips even where the oracle is required, as the other tests do
            print(f"skipped: {path} missing")
            return 77
    sp = spm.SentencePieceProcessor(model_file=model)
    ok = True

    with open(wiki, encoding="utf-8", newline="") as f:
        text = f.read()
    got = lowbit_ids(exe, model, wiki, lines=False)
    ok &= compare("wiki.test.raw as one text", sp.encode(text), got[0] if got else [])

    seed = 20240513
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        rand_path = os.path.join(tmp, "random.txt")
        with open(rand_path, "w", encoding="utf-8", newline="") as f:
            f.write(random_text(rng, 2000))
        for label, path in (("wiki.test.raw", wiki), ("tinystories sample", stories),
                            (f"random text (seed {seed})", rand_path)):
            with open(path, encoding="utf-8", newline="") as f:
                lines = f.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            got = lowbit_ids(exe, model, path, lines=True)
            if len(got) != len(lines):
                print(f"{label}: lowbit printed {len(got)} lines for {len(lines)}")
                ok = False
                continue
            bad = 0
            for i, line in enumerate(lines):
                if not compare(f"{label} line {i + 1}", sp.encode(line), got[i]):
                    bad += 1
                    if bad >= 5:
                        break
            ok &= bad == 0
            print(f"{label}: {len(lines)} lines {'match' if bad == 0 else 'DIFFER'}")

    print("sentencepiece", spm.__version__, "agrees" if ok else "DISAGREES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
