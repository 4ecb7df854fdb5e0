#!/usr/bin/env python3
"""Writes the malformed llama2.c corpus: checkpoints in tests/malformed/llama2c/ and
tokenizer.bin files in tests/malformed/tokenizer/, one small file per defect, named for it.
Deterministic, python3 stdlib only; rerun after changing it and commit the output."""
import os
import shutil
import struct
import sys

FIELDS = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len']
# The smallest shape that still has GQA, two layers and an even head size.
BASE = dict(dim=8, hidden_dim=16, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=16, seq_len=4)
INT32_MAX = 2**31 - 1
INT32_MIN = -2**31


def header(**changes):
    h = dict(BASE, **changes)
    return struct.pack('<7i', *(h[f] for f in FIELDS))


def arrays(h=None):
    """(name, float count) of every array in file order, for a header dict."""
    h = dict(BASE, **(h or {}))
    dim, hid, layers = h['dim'], h['hidden_dim'], h['n_layers']
    head = dim // h['n_heads']
    kv = head * h['n_kv_heads']
    vocab = abs(h['vocab_size'])
    out = [('token_embd', vocab * dim)]
    per_layer = [('attn_norm', dim), ('attn_q', dim * dim), ('attn_k', kv * dim),
                 ('attn_v', kv * dim), ('attn_output', dim * dim), ('ffn_norm', dim),
                 ('ffn_gate', hid * dim), ('ffn_down', dim * hid), ('ffn_up', hid * dim)]
    for name, n in per_layer:
        out += [('blk.%d.%s' % (l, name), n) for l in range(layers)]
    out += [('output_norm', dim), ('freq_cis_real', h['seq_len'] * head // 2),
            ('freq_cis_imag', h['seq_len'] * head // 2)]
    if h['vocab_size'] < 0:
        out.append(('output', vocab * dim))
    return out


def body(h=None):
    """Deterministic f32 payload: small distinct values, so a shifted read is visible."""
    n = sum(count for _, count in arrays(h))
    return struct.pack('<%df' % n, *(((i * 37) % 101 - 50) / 64.0 for i in range(n)))


def offset_of(name, h=None):
    pos = 28
    for n, count in arrays(h):
        if n == name:
            return pos
        pos += 4 * count
    raise KeyError(name)


def model(**changes):
    return header(**changes) + body(changes)


def checkpoints():
    files = {}
    valid = model()
    # Cut inside each header field (two of its four bytes present), and before any byte.
    files['empty.bin'] = b''
    for i, f in enumerate(FIELDS):
        files['truncated_header_%s.bin' % f] = valid[:4 * i + 2]
    files['header_only.bin'] = valid[:28]
    # Non-positive fields: each is a header error before any size is computed.
    for f in FIELDS:
        files['%s_zero.bin' % f] = header(**{f: 0}) + body()
    for f in ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'seq_len']:
        files['%s_negative.bin' % f] = header(**{f: -8}) + body()
    files['vocab_size_int32_min.bin'] = header(vocab_size=INT32_MIN) + body()
    files['dim_not_divisible_by_heads.bin'] = header(n_heads=3) + body()
    files['kv_heads_not_dividing_heads.bin'] = header(n_heads=4, n_kv_heads=3) + body()
    files['kv_heads_more_than_heads.bin'] = header(n_kv_heads=4) + body()
    files['odd_head_size.bin'] = header(dim=6, n_heads=2) + body()
    # Sizes whose products overflow 64 bits unless the fields are capped first.
    files['huge_all_int32_max.bin'] = struct.pack('<7i', *[INT32_MAX] * 7) + body()
    files['huge_dim.bin'] = header(dim=2**30, n_heads=2**29, n_kv_heads=2**29) + body()
    files['huge_layers.bin'] = header(n_layers=INT32_MAX) + body()
    files['huge_vocab_unshared.bin'] = header(vocab_size=-INT32_MAX) + body()
    files['huge_hidden_times_layers.bin'] = header(hidden_dim=2**30, n_layers=2**20) + body()
    # Every field at a size a real model could have, but the file holds the tiny body.
    files['large_dims_short_file.bin'] = header(
        dim=16384, hidden_dim=65536, n_layers=128, n_heads=128, n_kv_heads=8,
        vocab_size=-262144, seq_len=131072) + body()
    # Cut inside a tensor, and exactly at a boundary (a whole tensor missing).
    for name, cut in [('token_embd', 10), ('blk.1.attn_k', 6), ('blk.0.ffn_down', 100),
                      ('blk.1.ffn_up', 0), ('output_norm', 4), ('freq_cis_imag', 12)]:
        pos = offset_of(name) + cut
        files['cut_in_%s.bin' % name.replace('.', '_')] = valid[:pos]
    unshared = model(vocab_size=-BASE['vocab_size'])
    pos = offset_of('output', dict(vocab_size=-BASE['vocab_size']))
    files['cut_in_output_unshared.bin'] = unshared[:pos + 64]
    files['cut_last_byte.bin'] = valid[:-1]
    # Trailing bytes, including a classifier appended to a file whose header says shared.
    files['trailing_1_byte.bin'] = valid + b'\0'
    files['trailing_4_bytes.bin'] = valid + struct.pack('<f', 1.0)
    files['trailing_classifier_shared.bin'] = valid + body()[:4 * 16 * 8]
    files['unshared_flag_missing_classifier.bin'] = header(
        vocab_size=-BASE['vocab_size']) + body()
    return files


TOKENS = [b'<unk>', b'\n<s>\n', b'\n</s>\n', b'<0x0A>', b'<0x41>', b' t', b'he', b' a',
          b'nd', b' the', b'ed', b' to', b'in', b'it', b' w', b'as']


def token_records(tokens=TOKENS):
    """(score bytes, length bytes, text) per token, as tokenizer.py writes them."""
    return [(struct.pack('<f', -float(i)), struct.pack('<i', len(t)), t)
            for i, t in enumerate(tokens)]


def tokenizer(records, max_len=None):
    if max_len is None:
        max_len = max(len(t) for _, _, t in records)
    return struct.pack('<i', max_len) + b''.join(s + l + t for s, l, t in records)


def record_offset(records, index):
    return 4 + sum(8 + len(t) for _, _, t in records[:index])


def tokenizers():
    files = {}
    recs = token_records()
    valid = tokenizer(recs)
    files['empty.bin'] = b''
    files['truncated_max_token_length.bin'] = valid[:2]
    files['max_token_length_zero.bin'] = tokenizer(recs, 0)
    files['max_token_length_negative.bin'] = tokenizer(recs, -6)
    files['max_token_length_huge.bin'] = tokenizer(recs, INT32_MAX)
    bad = list(recs)
    bad[5] = (recs[5][0], struct.pack('<i', -1), recs[5][2])
    files['length_negative.bin'] = tokenizer(bad, 6)
    bad = list(recs)
    bad[6] = (recs[6][0], struct.pack('<i', INT32_MIN), recs[6][2])
    files['length_int32_min.bin'] = tokenizer(bad, 6)
    bad = list(recs)
    bad[4] = (recs[4][0], struct.pack('<i', 7), recs[4][2] + b'x')
    files['length_exceeds_max.bin'] = tokenizer(bad, 6)
    bad = list(recs)
    bad[-1] = (recs[-1][0], struct.pack('<i', 5), recs[-1][2])
    files['length_past_eof.bin'] = tokenizer(bad)
    files['truncated_score.bin'] = valid[:record_offset(recs, 9) + 2]
    files['truncated_length.bin'] = valid[:record_offset(recs, 9) + 6]
    files['truncated_bytes.bin'] = valid[:record_offset(recs, 9) + 9]
    bad = list(recs)
    bad[7] = (struct.pack('<I', 0x7FC00000), recs[7][1], recs[7][2])
    files['score_nan.bin'] = tokenizer(bad)
    bad = list(recs)
    bad[8] = (struct.pack('<I', 0xFF800000), recs[8][1], recs[8][2])
    files['score_negative_infinity.bin'] = tokenizer(bad)
    files['too_few_tokens.bin'] = tokenizer(recs[:2])
    files['max_token_length_only.bin'] = valid[:4]
    return files


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
    write_dir(os.path.join(out, 'llama2c'), checkpoints())
    write_dir(os.path.join(out, 'tokenizer'), tokenizers())


if __name__ == '__main__':
    main()
