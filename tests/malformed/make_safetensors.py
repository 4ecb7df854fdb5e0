#!/usr/bin/python3
"""Writes the malformed safetensors corpus: one small file per defect, named by the defect.

Usage: make_safetensors.py [OUTDIR]  (default: safetensors/ beside this script)

Python standard library only, so the committed files can be regenerated anywhere. Every file
must be rejected by lowbit's reader with "corrupt file" or, where noted in the name
(unsupported_*), "unsupported"; tests/test_safetensors.c holds the expected status of each.
"""
import json
import os
import struct
import sys


def header_file(header_bytes, data=b"", length=None):
    """8-byte little-endian length (default: the true one), header bytes, data buffer."""
    if length is None:
        length = len(header_bytes)
    return struct.pack("<Q", length) + header_bytes + data


def json_file(header, data):
    return header_file(json.dumps(header).encode("utf-8"), data)


def valid_header():
    return {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
    }


DATA = bytes(range(32))


def with_entry(name, **fields):
    h = valid_header()
    h[name] = dict(h[name], **fields)
    return h


def without_key(name, key):
    h = valid_header()
    del h[name][key]
    return h


def corpus():
    good = json.dumps(valid_header()).encode("utf-8")
    files = {
        "file_shorter_than_length.safetensors": b"\x10\x00\x00",
        "header_length_past_end.safetensors": header_file(good, DATA, length=len(good) + 1000),
        "header_length_zero.safetensors": header_file(b"", good + DATA, length=0),
        "header_length_huge.safetensors": header_file(good, DATA, length=0xFFFFFFFFFFFFFFF0),
        "header_not_json.safetensors": header_file(b"this is not json at all", DATA),
        "header_json_array.safetensors": header_file(b"[1, 2, 3]", DATA),
        "header_truncated_json.safetensors": header_file(good[: len(good) // 2], DATA),
        "header_invalid_utf8.safetensors": header_file(
            good.replace(b'"a"', b'"\xff\xfe"', 1), DATA),
        "duplicate_tensor_names.safetensors": header_file(
            b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
            b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}', DATA),
        "metadata_not_strings.safetensors": json_file(
            dict(valid_header(), __metadata__={"format": 5}), DATA),
        "entry_not_object.safetensors": json_file(dict(valid_header(), a=[1, 2]), DATA),
        "dtype_missing.safetensors": json_file(without_key("a", "dtype"), DATA),
        "dtype_not_string.safetensors": json_file(with_entry("a", dtype=32), DATA),
        "dtype_unknown.safetensors": json_file(with_entry("a", dtype="F33"), DATA),
        "unsupported_dtype_i32.safetensors": json_file(with_entry("a", dtype="I32"), DATA),
        "shape_missing.safetensors": json_file(without_key("a", "shape"), DATA),
        "shape_not_list.safetensors": json_file(with_entry("a", shape=6), DATA),
        "shape_negative.safetensors": json_file(with_entry("a", shape=[-2, -3]), DATA),
        "shape_float.safetensors": json_file(with_entry("a", shape=[2.0, 3]), DATA),
        "shape_product_overflow.safetensors": json_file(
            with_entry("a", shape=[2**32, 2**32, 2]), DATA),
        "unsupported_shape_5d.safetensors": json_file(
            with_entry("a", shape=[1, 1, 2, 1, 3]), DATA),
        "data_offsets_missing.safetensors": json_file(without_key("a", "data_offsets"), DATA),
        "data_offsets_three.safetensors": json_file(with_entry("a", data_offsets=[0, 24, 32]),
                                                    DATA),
        "data_offsets_reversed.safetensors": json_file(with_entry("a", data_offsets=[24, 0]),
                                                       DATA),
        "data_offsets_past_end.safetensors": json_file(with_entry("b", data_offsets=[32, 40]),
                                                       DATA),
        "data_offsets_overlapping.safetensors": json_file(
            with_entry("b", data_offsets=[16, 24]), DATA),
        "size_mismatch_with_shape.safetensors": json_file(with_entry("a", shape=[2, 2]), DATA),
    }
    return files


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "safetensors")
    os.makedirs(outdir, exist_ok=True)
    for name, blob in sorted(corpus().items()):
        assert len(blob) < 4096, name
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
