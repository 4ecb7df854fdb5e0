#!/usr/bin/env python3
"""Writes the malformed GGUF corpus in tests/malformed/gguf/: one small file per defect, named
for it. Deterministic, python3 stdlib only; rerun after changing it and commit the output."""
import os
import struct
import sys

(UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64,
 FLOAT64) = range(13)
F32 = 0
ALIGN = 32


def u32(v):
    return struct.pack('<I', v)


def u64(v):
    return struct.pack('<Q', v)


def i64(v):
    return struct.pack('<q', v)


class Doc:
    """A GGUF file as (label, bytes) segments, so a defect can be put at a named field."""

    def __init__(self):
        self.segs = []

    def add(self, label, data):
        assert all(label != l for l, _ in self.segs), label
        self.segs.append((label, data))

    def data(self):
        return b''.join(d for _, d in self.segs)

    def find(self, label):
        offset = 0
        for l, d in self.segs:
            if l == label:
                return offset, d
            offset += len(d)
        raise KeyError(label)

    def patched(self, label, data):
        return b''.join(data if l == label else d for l, d in self.segs)


def kv_scalar(key, vtype, payload):
    return [('key_length', u64(len(key))), ('key_bytes', key), ('value_type', u32(vtype)),
            ('value', payload)]


def kv_string(key, s):
    return [('key_length', u64(len(key))), ('key_bytes', key), ('value_type', u32(STRING)),
            ('value_length', u64(len(s))), ('value_bytes', s)]


def kv_array(key, etype, count, elems):
    return [('key_length', u64(len(key))), ('key_bytes', key), ('value_type', u32(ARRAY)),
            ('array_type', u32(etype)), ('array_count', u64(count)), ('array_elements', elems)]


def kv_strings(key, strings):
    segs = [('key_length', u64(len(key))), ('key_bytes', key), ('value_type', u32(ARRAY)),
            ('array_type', u32(STRING)), ('array_count', u64(len(strings)))]
    for j, s in enumerate(strings):
        segs += [('element%d_length' % j, u64(len(s))), ('element%d_bytes' % j, s)]
    return segs


def tensor(name, dims, data_bytes=None, ttype=F32, elem_bytes=4):
    n = 1
    for d in dims:
        n *= d
    if data_bytes is None:
        data_bytes = bytes((i * 7 + 1) & 0xFF for i in range(n * elem_bytes))
    return {'name': name, 'dims': dims, 'type': ttype, 'data': data_bytes}


def base_kvs():
    return [
        kv_string(b'general.architecture', b'llama'),
        kv_scalar(b'test.count', UINT32, u32(7)),
        kv_array(b'test.values', UINT32, 3, u32(1) + u32(2) + u32(3)),
        kv_strings(b'test.names', [b'ab', b'cde']),
        kv_scalar(b'test.flag', BOOL, b'\x01'),
        kv_array(b'test.bools', BOOL, 3, b'\x00\x01\x01'),
    ]


def base_tensors():
    return [tensor(b'blk.0.attn_q.weight', [4, 2]), tensor(b'output_norm.weight', [3])]


def build(kvs=None, tensors=None, magic=b'GGUF', version=u32(3), n_kv=None, n_tensors=None,
          alignment=ALIGN):
    kvs = base_kvs() if kvs is None else kvs
    tensors = base_tensors() if tensors is None else tensors
    doc = Doc()
    doc.add('magic', magic)
    doc.add('version', version)
    doc.add('n_tensors', u64(len(tensors) if n_tensors is None else n_tensors))
    doc.add('n_kv', u64(len(kvs) if n_kv is None else n_kv))
    for i, kv in enumerate(kvs):
        for label, data in kv:
            doc.add('kv%d_%s' % (i, label), data)
    offset = 0
    for i, t in enumerate(tensors):
        doc.add('tensor%d_name_length' % i, u64(len(t['name'])))
        doc.add('tensor%d_name_bytes' % i, t['name'])
        doc.add('tensor%d_n_dims' % i, u32(len(t['dims'])))
        for d, ne in enumerate(t['dims']):
            doc.add('tensor%d_ne%d' % (i, d), u64(ne))
        doc.add('tensor%d_type' % i, u32(t['type']))
        doc.add('tensor%d_offset' % i, u64(offset))
        offset += (len(t['data']) + alignment - 1) // alignment * alignment
    header = len(doc.data())
    doc.add('padding', bytes(-header % alignment))
    for i, t in enumerate(tensors):
        doc.add('data%d' % i, t['data'])
        doc.add('data%d_padding' % i, bytes(-len(t['data']) % alignment))
    return doc


def corpus():
    files = {}
    base = build()
    last_padding = 'data%d_padding' % (len(base_tensors()) - 1)
    assert len(base.find('padding')[1]) >= 2, 'the base file needs padding to truncate inside'
    # Truncated inside every field (at the start of one-byte fields). Padding after the last
    # tensor is not needed, so a cut there leaves a valid file.
    for label, data in base.segs:
        if not data or label == last_padding:
            continue
        start, _ = base.find(label)
        files['truncated_in_%s' % label] = base.data()[:start + len(data) // 2]
    files['empty_file'] = b''
    files['bad_magic'] = build(magic=b'GGUX').data()
    files['magic_lowercase'] = build(magic=b'gguf').data()
    files['version_0'] = build(version=u32(0)).data()
    files['version_1'] = build(version=u32(1)).data()
    files['version_99'] = build(version=u32(99)).data()
    files['version_big_endian'] = build(version=struct.pack('>I', 3)).data()
    files['n_kv_absurd_2e60'] = build(n_kv=1 << 60).data()
    files['n_tensors_absurd_2e60'] = build(n_tensors=1 << 60).data()
    files['n_kv_one_too_many'] = build(n_kv=len(base_kvs()) + 1).data()
    files['n_tensors_one_too_many'] = build(n_tensors=len(base_tensors()) + 1).data()
    files['key_length_absurd'] = base.patched('kv0_key_length', u64(1 << 62))
    files['string_length_absurd'] = base.patched('kv0_value_length', u64(1 << 62))
    files['string_length_max'] = base.patched('kv0_value_length', u64((1 << 64) - 1))
    files['array_count_terabytes_u32'] = base.patched('kv2_array_count', u64(1 << 40))
    files['array_count_max_u32'] = base.patched('kv2_array_count', u64((1 << 64) - 1))
    files['array_count_terabytes_strings'] = base.patched('kv3_array_count', u64(1 << 40))
    files['array_count_past_end'] = base.patched('kv2_array_count', u64(1000))
    files['string_array_element_length_absurd'] = base.patched('kv3_element1_length', u64(1 << 61))
    files['unknown_value_type_13'] = base.patched('kv1_value_type', u32(13))
    files['unknown_value_type_max'] = base.patched('kv1_value_type', u32(0xFFFFFFFF))
    files['unknown_array_type'] = base.patched('kv2_array_type', u32(13))
    files['nested_array'] = base.patched('kv2_array_type', u32(ARRAY))
    files['bool_value_2'] = base.patched('kv4_value', b'\x02')
    files['bool_array_element_2'] = base.patched('kv5_array_elements', b'\x00\x02\x01')
    files['n_dims_0'] = base.patched('tensor0_n_dims', u32(0))
    files['n_dims_5'] = base.patched('tensor0_n_dims', u32(5))
    files['ne_negative'] = base.patched('tensor0_ne1', i64(-1))
    files['ne_product_overflow'] = build(tensors=[tensor(b'big', [1 << 32, 1 << 32], b'')]).data()
    files['ne_product_overflow_4d'] = build(
        tensors=[tensor(b'big', [1 << 16, 1 << 16, 1 << 16, 1 << 16], b'')]).data()
    files['ne_bytes_overflow'] = build(tensors=[tensor(b'big', [1 << 62], b'')]).data()
    files['ne_data_past_end'] = build(tensors=[tensor(b'big', [1 << 40], b'')]).data()
    files['tensor_type_999'] = base.patched('tensor1_type', u32(999))
    files['tensor_offset_past_end'] = base.patched('tensor1_offset', u64(1 << 20))
    files['tensor_offset_overflow'] = base.patched('tensor1_offset', u64((1 << 64) - ALIGN))
    files['tensor_offset_not_aligned'] = base.patched('tensor1_offset', u64(ALIGN + 8))
    files['tensors_overlap'] = base.patched('tensor1_offset', u64(0))
    files['tensors_overlap_reordered'] = build(
        tensors=[tensor(b'a', [16]), tensor(b'b', [16]), tensor(b'c', [16])]).patched(
            'tensor0_offset', u64(64))
    alignment_kv = lambda payload, vtype=UINT32: kv_scalar(b'general.alignment', vtype, payload)
    files['alignment_0'] = build(kvs=base_kvs() + [alignment_kv(u32(0))]).data()
    files['alignment_3'] = build(kvs=base_kvs() + [alignment_kv(u32(3))]).data()
    files['alignment_string'] = build(
        kvs=base_kvs() + [kv_string(b'general.alignment', b'32')]).data()
    files['alignment_uint64'] = build(kvs=base_kvs() + [alignment_kv(u64(32), UINT64)]).data()
    files['duplicate_keys'] = build(
        kvs=base_kvs() + [kv_scalar(b'test.count', UINT32, u32(8))]).data()
    files['duplicate_tensor_names'] = build(
        tensors=[tensor(b'same', [4]), tensor(b'other', [2]), tensor(b'same', [4])]).data()
    bad_key = lambda key: build(kvs=base_kvs() + [kv_scalar(key, UINT8, b'\x01')]).data()
    files['key_invalid_utf8_ff'] = bad_key(b'general.\xffname')
    files['key_invalid_utf8_overlong'] = bad_key(b'general.\xc0\xaf')
    files['key_invalid_utf8_surrogate'] = bad_key(b'general.\xed\xa0\x80')
    files['key_invalid_utf8_cut'] = bad_key(b'general.\xe2\x82')
    files['key_with_nul'] = bad_key(b'general\x00name')
    bad_name = lambda name: build(tensors=[tensor(name, [4])]).data()
    files['tensor_name_invalid_utf8_fe'] = bad_name(b'blk.0.\xfe.weight')
    files['tensor_name_invalid_utf8_cut'] = bad_name(b'output.\xe2\x82')
    files['tensor_name_invalid_utf8_past_max'] = bad_name(b'x\xf4\x90\x80\x80')
    return files


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gguf')
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(out)):
        if name.endswith('.gguf'):
            os.remove(os.path.join(out, name))
    files = corpus()
    for name in sorted(files):
        assert len(files[name]) < 4096, name
        with open(os.path.join(out, name + '.gguf'), 'wb') as f:
            f.write(files[name])
    print('wrote %d files to %s' % (len(files), out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
