#!/usr/bin/env python3
"""Writes the malformed log-probability corpus in tests/malformed/logprob/: lowbit's LBLOGP01
layout (the --save-logits / --kld file, formats/logprob_file_internal.h), one small file per defect,
named for it. Every file must be rejected as a corrupt file (fuzz_logprob replays them).
Deterministic, python3 stdlib only; rerun after changing it and commit the output.
make_corpus.py takes its valid seeds from here."""
import math
import os
import shutil
import struct
import sys

MAGIC = b'LBLOGP01'
HEADER_BYTES = 40
FIXED_BYTES = 24  # u32 target, u32 top1, f64 log p(target), f32 min, f32 max


def header(n_vocab, ctx, n_windows, n_positions, tokens_hash=0x0123456789abcdef, reserved=0,
           magic=MAGIC):
    return magic + struct.pack('<IIIIQQ', n_vocab, ctx, n_windows, reserved, n_positions,
                               tokens_hash)


def record(n_vocab, target, top1, seed):
    """One position: a made-up distribution, quantized as lb_logprob_encode does."""
    logits = [((seed * 7 + i * 13) % 17) * 0.25 for i in range(n_vocab)]
    top = max(logits)
    log_sum = top + math.log(sum(math.exp(x - top) for x in logits))
    lp = [x - log_sum for x in logits]
    lo = struct.unpack('<f', struct.pack('<f', min(lp)))[0]
    hi = struct.unpack('<f', struct.pack('<f', max(lp)))[0]
    rng = hi - lo
    codes = [min(65535, max(0, round((x - lo) / rng * 65535))) if rng > 0 else 0 for x in lp]
    return (struct.pack('<IIdff', target, top1, lp[target % n_vocab], lo, hi) +
            struct.pack('<%dH' % n_vocab, *codes))


def logprob(n_vocab=5, ctx=8, n_windows=2, positions=None, **kw):
    """A valid file: ctx/2 - 1 scored positions per window unless `positions` says."""
    n = n_windows * (ctx - 1 - ctx // 2) if positions is None else positions
    body = b''.join(record(n_vocab, (p * 3) % n_vocab, (p * 2) % n_vocab, p) for p in range(n))
    return header(n_vocab, ctx, n_windows, n, **kw) + body


def valid_files():
    return {
        'small.logits': logprob(),
        'one_token_vocab.logits': logprob(n_vocab=1, ctx=4, n_windows=3),
        'no_positions.logits': logprob(positions=0),
        'reserved_set.logits': logprob(reserved=7),
    }


def malformed_files():
    valid = logprob()
    rec = FIXED_BYTES + 2 * 5
    f = {}
    f['empty.logits'] = b''
    f['cut_in_magic.logits'] = valid[:5]
    f['cut_in_header.logits'] = valid[:HEADER_BYTES - 1]
    f['magic_lowercase.logits'] = b'lblogp01' + valid[8:]
    f['magic_gguf.logits'] = b'GGUF\x03\x00\x00\x00' + valid[8:]
    f['cut_in_first_record.logits'] = valid[:HEADER_BYTES + 10]
    f['cut_in_last_record.logits'] = valid[:-1]
    f['one_record_missing.logits'] = valid[:-rec]
    f['trailing_byte.logits'] = valid + b'\0'
    f['one_record_too_many.logits'] = valid + valid[HEADER_BYTES:HEADER_BYTES + rec]
    f['n_positions_zero_with_records.logits'] = header(5, 8, 2, 0) + valid[HEADER_BYTES:]
    f['n_positions_2e63.logits'] = header(5, 8, 2, 2**63) + valid[HEADER_BYTES:]
    f['n_positions_max_u64.logits'] = header(5, 8, 2, 2**64 - 1) + valid[HEADER_BYTES:]
    f['n_vocab_max_u32.logits'] = header(2**32 - 1, 8, 2, 6) + valid[HEADER_BYTES:]
    f['n_vocab_max_u32_overflow.logits'] = header(2**32 - 1, 8, 2, 2**40) + valid[HEADER_BYTES:]
    f['n_vocab_zero.logits'] = header(0, 4, 1, 1) + valid[HEADER_BYTES:HEADER_BYTES + FIXED_BYTES]
    f['n_vocab_too_small.logits'] = header(4, 8, 2, 6) + valid[HEADER_BYTES:]
    bad = bytearray(valid)
    struct.pack_into('<I', bad, HEADER_BYTES + 2 * rec, 5)
    f['target_out_of_range.logits'] = bytes(bad)
    bad = bytearray(valid)
    struct.pack_into('<I', bad, HEADER_BYTES + 5 * rec + 4, 0xffffffff)
    f['top1_out_of_range.logits'] = bytes(bad)
    return f


def write_dir(path, files):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    for name, data in sorted(files.items()):
        assert len(data) < 8192, name
        with open(os.path.join(path, name), 'wb') as f:
            f.write(data)
    print('%s: %d files' % (path, len(files)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else here
    write_dir(os.path.join(out, 'logprob'), malformed_files())


if __name__ == '__main__':
    main()
