#!/usr/bin/env python3
"""Writes the malformed imatrix corpus in tests/malformed/imatrix/: llama.cpp's legacy .dat
layout and its GGUF layout, one small file per defect, named for it. Every file must be
rejected as a corrupt file (test_imatrix_malformed checks). Deterministic, python3 stdlib
only; rerun after changing it and commit the output. make_corpus.py takes its valid seeds
from here."""
import os
import shutil
import struct
import sys

INT32_MAX = 2**31 - 1
NAN = struct.unpack('<f', struct.pack('<I', 0x7FC00000))[0]
INF = float('inf')

# ---- legacy: int32 n_entries; per entry int32 len, name, int32 ncall, int32 nval,
# float32[nval]; then int32 chunk count, int32 dataset length, dataset name ----


def i32(v):
    return struct.pack('<i', v)


def f32s(values):
    return struct.pack('<%df' % len(values), *values)


def legacy_entry(name, ncall, values, nval=None):
    name = name.encode() if isinstance(name, str) else name
    nval = len(values) if nval is None else nval
    return i32(len(name)) + name + i32(ncall) + i32(nval) + f32s(values)


LEGACY_ENTRIES = [('blk.0.attn_k.weight', 2, [1.0, 2.5, 300.0]),
                  ('blk.0.attn_q.weight', 4, [4.0, 0.5, 12.0, 0.0])]


def legacy(entries=None, n_entries=None, trailer=True, chunks=10, dataset=b'wiki.train.raw'):
    entries = LEGACY_ENTRIES if entries is None else entries
    out = i32(len(entries) if n_entries is None else n_entries)
    out += b''.join(legacy_entry(*e) for e in entries)
    if trailer:
        out += i32(chunks) + i32(len(dataset)) + dataset
    return out


def legacy_files():
    valid = legacy()
    first = 4 + 4 + len(LEGACY_ENTRIES[0][0])  # offset of the first entry's ncall
    entries_end = len(legacy(trailer=False))
    f = {}
    f['empty.dat'] = b''
    f['cut_in_n_entries.dat'] = valid[:2]
    f['n_entries_zero.dat'] = i32(0) + valid[4:]
    f['n_entries_negative.dat'] = i32(-2) + valid[4:]
    f['n_entries_int32_max.dat'] = i32(INT32_MAX) + valid[4:]
    f['n_entries_more_than_present.dat'] = i32(3) + valid[4:]
    f['name_length_negative.dat'] = legacy([(b'x', 1, [1.0])])[:4] + i32(-1) + valid[8:]
    f['name_length_zero.dat'] = legacy([(b'', 1, [1.0, 2.0])])
    f['name_length_past_end.dat'] = i32(1) + i32(1000) + b'blk.0'
    f['name_length_int32_max.dat'] = i32(1) + i32(INT32_MAX) + valid[8:]
    f['name_with_nul.dat'] = legacy([(b'blk.0\0attn', 1, [1.0])])
    f['cut_in_name.dat'] = valid[:12]
    f['cut_in_ncall.dat'] = valid[:first + 2]
    f['cut_in_nval.dat'] = valid[:first + 6]
    f['cut_in_values.dat'] = valid[:first + 8 + 6]
    f['cut_in_second_entry.dat'] = valid[:entries_end - 3]
    f['ncall_negative.dat'] = legacy([('blk.0.attn_k.weight', -1, [1.0])])
    f['nval_zero.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, 2.0], 0)])
    f['nval_negative.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, 2.0], -2)])
    f['nval_past_end.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, 2.0], 100)])
    f['nval_int32_max.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, 2.0], INT32_MAX)])
    f['value_nan.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, NAN])])
    f['value_inf.dat'] = legacy([('blk.0.attn_k.weight', 1, [INF, 1.0])])
    f['value_negative.dat'] = legacy([('blk.0.attn_k.weight', 1, [1.0, -0.5])])
    f['value_negative_inf.dat'] = legacy([('blk.0.attn_k.weight', 1, [-INF])])
    f['duplicate_names.dat'] = legacy([('a', 1, [1.0]), ('b', 1, [1.0]), ('a', 1, [2.0])])
    f['cut_in_chunk_count.dat'] = valid[:entries_end + 2]
    f['cut_in_dataset_length.dat'] = valid[:entries_end + 6]
    f['cut_in_dataset_name.dat'] = valid[:-1]
    f['chunk_count_negative.dat'] = legacy(chunks=-1)
    f['dataset_length_negative.dat'] = legacy(trailer=False) + i32(10) + i32(-1) + b'abc'
    f['dataset_length_past_end.dat'] = legacy(trailer=False) + i32(10) + i32(500) + b'abc'
    f['dataset_name_with_nul.dat'] = legacy(dataset=b'wiki\0raw')
    f['trailing_bytes.dat'] = valid + b'\0\0\0\0'
    f['text_file.dat'] = b'this is not an imatrix file, just some text\n'
    return f


# ---- GGUF: general.type, imatrix.datasets / chunk_count / chunk_size; F32 tensors
# <weight>.in_sum2 [n_per_row, n_mat] and <weight>.counts [1, n_mat] ----

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64 = range(12)
SCALAR = {UINT32: '<I', INT32: '<i', FLOAT32: '<f', UINT64: '<Q', INT64: '<q'}
T_F32, T_F16 = 0, 1


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack('<Q', len(b)) + b


def gvalue(vtype, v):
    if vtype == STRING:
        return gstr(v)
    if vtype == ARRAY:
        etype, items = v
        return struct.pack('<IQ', etype, len(items)) + b''.join(gvalue(etype, x) for x in items)
    return struct.pack(SCALAR[vtype], v)


def gguf(kvs, tensors, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, type, dims, data bytes)]."""
    out = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs))
    for key, vtype, v in kvs:
        out += gstr(key) + struct.pack('<I', vtype) + gvalue(vtype, v)
    offset, blobs = 0, b''
    for name, ttype, dims, data in tensors:
        out += gstr(name) + struct.pack('<I', len(dims))
        out += b''.join(struct.pack('<Q', d) for d in dims) + struct.pack('<IQ', ttype, offset)
        pad = (-len(data)) % alignment
        blobs += data + b'\0' * pad
        offset += len(data) + pad
    out += b'\0' * ((-len(out)) % alignment)
    return out + blobs


def imatrix_kvs(type_value=(STRING, 'imatrix'), datasets=(ARRAY, (STRING, ['calib.txt'])),
                chunk_count=(UINT32, 7), chunk_size=(UINT32, 512)):
    kvs = []
    for key, tv in (('general.type', type_value), ('imatrix.datasets', datasets),
                    ('imatrix.chunk_count', chunk_count), ('imatrix.chunk_size', chunk_size)):
        if tv is not None:
            kvs.append((key, tv[0], tv[1]))
    return kvs


def pair(weight, sums, counts, n_mat=1):
    """The two tensors of one weight, shaped as ggml writes them (trailing 1s dropped)."""
    n_per_row = len(sums) // n_mat
    return [(weight + '.in_sum2', T_F32, [n_per_row] if n_mat == 1 else [n_per_row, n_mat],
             f32s(sums)),
            (weight + '.counts', T_F32, [1] if n_mat == 1 else [1, n_mat], f32s(counts))]


def valid_tensors():
    return (pair('blk.0.attn_q.weight', [3.0, 1.5, 0.0, 8.0], [512.0]) +
            pair('blk.0.ffn_up_exps.weight', [1.0, 2.0, 0.0, 0.0, 5.0, 6.0], [4.0, 0.0, 9.0],
                 n_mat=3))


def valid_gguf():
    return gguf(imatrix_kvs(), valid_tensors())


def valid_gguf_with_in_sum():
    """A newer llama.cpp file: in_sum (sum of x) beside in_sum2, and no dataset."""
    t = pair('blk.3.ffn_down.weight', [0.25, 0.5], [3.0])
    t.append(('blk.3.ffn_down.weight.in_sum', T_F32, [2], f32s([-0.5, 1.0])))
    return gguf(imatrix_kvs(datasets=(ARRAY, (STRING, [''])), chunk_count=(UINT32, 1),
                            chunk_size=(UINT32, 3)), t)


def gguf_files():
    w = 'blk.0.attn_q.weight'
    ok = pair(w, [3.0, 1.5, 0.0, 8.0], [512.0])
    f = {}
    f['type_model.gguf'] = gguf(imatrix_kvs(type_value=(STRING, 'model')), ok)
    f['type_not_string.gguf'] = gguf(imatrix_kvs(type_value=(UINT32, 1)), ok)
    f['model_tensors_only.gguf'] = gguf([('general.architecture', STRING, 'llama')],
                                        [(w, T_F32, [4], f32s([1, 2, 3, 4]))])
    f['no_tensors.gguf'] = gguf(imatrix_kvs(), [])
    f['missing_counts.gguf'] = gguf(imatrix_kvs(), ok[:1])
    f['missing_in_sum2.gguf'] = gguf(imatrix_kvs(), ok[1:])
    f['orphan_in_sum.gguf'] = gguf(imatrix_kvs(), ok + [(w[:-6] + 'x.weight.in_sum', T_F32, [4],
                                                         f32s([1, 2, 3, 4]))])
    f['in_sum_wrong_size.gguf'] = gguf(imatrix_kvs(), ok + [(w + '.in_sum', T_F32, [3],
                                                             f32s([1, 2, 3]))])
    f['in_sum_f16.gguf'] = gguf(imatrix_kvs(), ok + [(w + '.in_sum', T_F16, [4], b'\0' * 8)])
    f['in_sum2_f16.gguf'] = gguf(imatrix_kvs(), [(w + '.in_sum2', T_F16, [4], b'\0\x3c' * 4),
                                                 ok[1]])
    f['counts_f16.gguf'] = gguf(imatrix_kvs(), [ok[0], (w + '.counts', T_F16, [1], b'\0\x3c')])
    f['in_sum2_3d.gguf'] = gguf(imatrix_kvs(), [(w + '.in_sum2', T_F32, [2, 1, 2],
                                                 f32s([1, 2, 3, 4])), ok[1]])
    f['in_sum2_zero_columns.gguf'] = gguf(imatrix_kvs(), [(w + '.in_sum2', T_F32, [0, 1], b''),
                                                          ok[1]])
    f['counts_wrong_size.gguf'] = gguf(imatrix_kvs(), [ok[0], (w + '.counts', T_F32, [1, 2],
                                                               f32s([1, 1]))])
    f['counts_fewer_than_experts.gguf'] = gguf(imatrix_kvs(), [
        (w + '.in_sum2', T_F32, [2, 2], f32s([1, 2, 3, 4])), ok[1]])
    f['in_sum2_nan.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, NAN, 0.0, 8.0], [512.0]))
    f['in_sum2_inf.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.0, INF, 8.0], [512.0]))
    f['in_sum2_negative.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.0, 0.0, -8.0], [512.0]))
    f['counts_negative.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.5, 0.0, 8.0], [-1.0]))
    f['counts_nan.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.5, 0.0, 8.0], [NAN]))
    f['counts_inf.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.5, 0.0, 8.0], [INF]))
    f['counts_huge.gguf'] = gguf(imatrix_kvs(), pair(w, [3.0, 1.5, 0.0, 8.0], [1e20]))
    f['chunk_count_float.gguf'] = gguf(imatrix_kvs(chunk_count=(FLOAT32, 7.0)), ok)
    f['chunk_count_negative.gguf'] = gguf(imatrix_kvs(chunk_count=(INT32, -7)), ok)
    f['chunk_size_string.gguf'] = gguf(imatrix_kvs(chunk_size=(STRING, '512')), ok)
    f['chunk_size_past_int64.gguf'] = gguf(imatrix_kvs(chunk_size=(UINT64, 2**63 + 5)), ok)
    f['datasets_string.gguf'] = gguf(imatrix_kvs(datasets=(STRING, 'calib.txt')), ok)
    f['datasets_int_array.gguf'] = gguf(imatrix_kvs(datasets=(ARRAY, (INT32, [1, 2]))), ok)
    f['datasets_name_with_nul.gguf'] = gguf(imatrix_kvs(datasets=(ARRAY, (STRING, ['a\0b']))),
                                            ok)
    f['empty_weight_name.gguf'] = gguf(imatrix_kvs(), pair('', [1.0], [1.0]))
    f['duplicate_tensor_names.gguf'] = gguf(imatrix_kvs(), ok + ok[1:])
    valid = valid_gguf()
    f['cut_in_tensor_data.gguf'] = valid[:len(valid) - 40]
    f['cut_in_header.gguf'] = valid[:60]
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
    files = legacy_files()
    files.update(gguf_files())
    write_dir(os.path.join(out, 'imatrix'), files)


if __name__ == '__main__':
    main()
