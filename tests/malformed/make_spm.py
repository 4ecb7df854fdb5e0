#!/usr/bin/env python3
"""Writes the malformed SentencePiece corpus: tokenizer.model files (protobuf ModelProto) in
tests/malformed/spm/, one small file per defect, named for it. Every file must be rejected by
lb_spm_model_parse. Deterministic, python3 stdlib only; rerun after changing it and commit the
output. The encoders below also build the valid seeds of tests/fuzz/make_corpus.py."""
import os
import shutil
import struct
import sys

# Wire types and the field numbers of sentencepiece_model.proto that matter here.
VARINT, I64, LEN, GROUP_START, GROUP_END, I32 = 0, 1, 2, 3, 4, 5
MODEL_PIECES, MODEL_TRAINER_SPEC, MODEL_NORMALIZER_SPEC = 1, 2, 3
MODEL_SELF_TEST_DATA, MODEL_DENORMALIZER_SPEC = 4, 5
PIECE_TEXT, PIECE_SCORE, PIECE_TYPE = 1, 2, 3
TRAINER_MODEL_TYPE, TRAINER_VOCAB_SIZE, TRAINER_BYTE_FALLBACK = 3, 4, 35
TRAINER_UNK_ID, TRAINER_BOS_ID, TRAINER_EOS_ID, TRAINER_PAD_ID = 40, 41, 42, 43
TRAINER_UNK_PIECE, TRAINER_BOS_PIECE, TRAINER_EOS_PIECE = 45, 46, 47
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


def varint(v):
    """Base-128 varint of an int64/uint64 (negative: 10-byte two's complement, as protobuf)."""
    v &= 2**64 - 1
    out = bytearray()
    while True:
        byte = v & 0x7f
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vint(field, v):
    return key(field, VARINT) + varint(v)


def ld(field, payload):
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    return key(field, LEN) + varint(len(payload)) + payload


def f32(field, value):
    return key(field, I32) + struct.pack('<f', value)


def fixed64(field, raw=b'\x01\x02\x03\x04\x05\x06\x07\x08'):
    return key(field, I64) + raw


def fixed32(field, raw=b'\x01\x02\x03\x04'):
    return key(field, I32) + raw


def piece_body(text, score=0.0, ptype=NORMAL, extra=b''):
    """A ModelProto.SentencePiece message; ptype NORMAL is the default and is left out."""
    out = ld(PIECE_TEXT, text) + f32(PIECE_SCORE, score)
    if ptype != NORMAL:
        out += vint(PIECE_TYPE, ptype)
    return out + extra


def piece(text, score=0.0, ptype=NORMAL, extra=b''):
    return ld(MODEL_PIECES, piece_body(text, score, ptype, extra))


def trainer_spec(unk=0, bos=1, eos=2, pad=-1, model_type=BPE, vocab_size=None, extra=b''):
    """Ids set to None are left out (the reader's defaults 0, 1, 2, -1 apply)."""
    out = vint(TRAINER_MODEL_TYPE, model_type)
    if vocab_size is not None:
        out += vint(TRAINER_VOCAB_SIZE, vocab_size)
    for field, v in [(TRAINER_UNK_ID, unk), (TRAINER_BOS_ID, bos), (TRAINER_EOS_ID, eos),
                     (TRAINER_PAD_ID, pad)]:
        if v is not None:
            out += vint(field, v)
    return ld(MODEL_TRAINER_SPEC, out + extra)


def normalizer_spec(name='identity', charsmap=b'', add_dummy_prefix=True,
                    remove_extra_whitespaces=False, escape_whitespaces=True):
    out = ld(1, name)
    if charsmap:
        out += ld(2, charsmap)
    out += vint(3, int(add_dummy_prefix)) + vint(4, int(remove_extra_whitespaces))
    out += vint(5, int(escape_whitespaces))
    return ld(MODEL_NORMALIZER_SPEC, out)


SP = '\u2581'
# A few pieces of every type, in the order Llama 2's model has them.
PIECES = [('<unk>', 0.0, UNKNOWN), ('<s>', 0.0, CONTROL), ('</s>', 0.0, CONTROL),
          ('<0x0A>', 0.0, BYTE), ('<0x41>', 0.0, BYTE), (SP + 't', -1.0, NORMAL),
          ('he', -2.0, NORMAL), (SP + 'the', -3.0, NORMAL), ('<mask>', 0.0, USER_DEFINED),
          ('<unused0>', 0.0, UNUSED)]


def pieces(entries=PIECES):
    return b''.join(piece(*e) for e in entries)


def model(entries=PIECES, spec=True, normalizer=True):
    out = pieces(entries)
    if spec:
        out += trainer_spec(vocab_size=len(entries))
    if normalizer:
        out += normalizer_spec()
    return out


def piece_offset(index, entries=PIECES):
    """File offset of the key of pieces[index] in model(entries)."""
    return len(pieces(entries[:index]))


def malformed():
    files = {}
    valid = model()
    # Nothing to read.
    files['empty.model'] = b''
    files['zero_pieces.model'] = trainer_spec() + normalizer_spec()
    files['zero_pieces_unknown_fields.model'] = vint(99, 1) + ld(98, b'xyz')
    # Varints: cut, too long, overflowing; in a key, a length and a value.
    files['truncated_varint_key.model'] = valid + b'\x80'
    files['truncated_varint_length.model'] = pieces(PIECES[:3]) + key(MODEL_PIECES, LEN) + b'\xff'
    files['truncated_varint_type.model'] = ld(MODEL_PIECES, ld(PIECE_TEXT, 'a') +
                                              key(PIECE_TYPE, VARINT) + b'\x81')
    files['varint_11_bytes.model'] = pieces() + key(99, VARINT) + b'\xff' * 10 + b'\x01'
    files['varint_20_bytes.model'] = pieces() + key(99, VARINT) + b'\x80' * 19 + b'\x00'
    files['varint_overflow_64_bits.model'] = pieces() + key(99, VARINT) + b'\xff' * 9 + b'\x7f'
    files['key_varint_11_bytes.model'] = b'\x88' + b'\x80' * 10 + b'\x00' + pieces()
    # Keys: field number 0 or past 2^29-1, groups, wire types 6 and 7.
    files['field_number_zero.model'] = pieces() + b'\x00\x00'
    files['trailing_zero_byte.model'] = valid + b'\x00'
    files['field_number_2_29.model'] = pieces() + varint(2**29 << 3) + b'\x00'
    files['field_number_uint64_max.model'] = pieces() + varint(2**64 - 1)
    files['group_start.model'] = pieces() + key(20, GROUP_START) + key(20, GROUP_END)
    files['group_end.model'] = pieces() + key(20, GROUP_END)
    files['group_in_piece.model'] = piece('x', extra=key(7, GROUP_START) + key(7, GROUP_END))
    files['wire_type_6.model'] = pieces() + key(20, 6)
    files['wire_type_7.model'] = pieces() + key(20, 7)
    # Lengths past the end of the file, absurd lengths.
    files['length_past_eof.model'] = pieces() + key(MODEL_PIECES, LEN) + varint(100) + b'ab'
    files['length_2_63.model'] = pieces() + key(MODEL_PIECES, LEN) + varint(2**63) + b'ab'
    files['length_uint64_max.model'] = pieces() + key(98, LEN) + varint(2**64 - 1) + b'ab'
    files['length_2_32_plus_1.model'] = pieces() + key(MODEL_PIECES, LEN) + varint(2**32 + 1)
    files['cut_in_piece.model'] = valid[:piece_offset(6) + 5]
    files['cut_in_trainer_spec.model'] = valid[:len(pieces()) + 6]
    files['cut_last_byte.model'] = valid[:-1]
    # Nested lengths that fit the file but not their message.
    files['nested_text_past_piece.model'] = (
        key(MODEL_PIECES, LEN) + varint(4) + key(PIECE_TEXT, LEN) + varint(12) + b'ab' +
        b'0123456789' + pieces())
    files['nested_unknown_past_trainer_spec.model'] = pieces() + key(MODEL_TRAINER_SPEC, LEN) + \
        varint(4) + key(99, LEN) + varint(20) + b'xx' + normalizer_spec()
    files['nested_fixed32_past_piece.model'] = (
        key(MODEL_PIECES, LEN) + varint(5) + ld(PIECE_TEXT, 'ab') + key(PIECE_SCORE, I32) +
        b'\x00\x00\x80\xbf' + pieces())
    files['nested_fixed64_past_trainer_spec.model'] = pieces() + ld(
        MODEL_TRAINER_SPEC, vint(TRAINER_BOS_ID, 1) + key(99, I64) + b'\x01\x02\x03') + \
        b'\x04\x05\x06\x07\x08'
    files['nested_varint_past_piece.model'] = (
        key(MODEL_PIECES, LEN) + varint(6) + ld(PIECE_TEXT, 'ab') + key(PIECE_TYPE, VARINT) +
        b'\x80' + b'\x01' + pieces())
    # Pieces without text, or with an empty one.
    files['piece_without_text.model'] = pieces(PIECES[:4]) + ld(
        MODEL_PIECES, f32(PIECE_SCORE, -1.0) + vint(PIECE_TYPE, NORMAL)) + pieces(PIECES[4:])
    files['piece_empty_text.model'] = pieces(PIECES[:4]) + piece('') + pieces(PIECES[4:])
    files['piece_empty_message.model'] = pieces() + ld(MODEL_PIECES, b'')
    files['piece_text_wire_varint.model'] = ld(MODEL_PIECES, vint(PIECE_TEXT, 5)) + pieces()
    files['piece_text_wire_fixed32.model'] = ld(MODEL_PIECES, fixed32(PIECE_TEXT)) + pieces()
    # Wrong wire types for the fields the reader uses.
    files['score_wire_varint.model'] = pieces(PIECES[:2]) + ld(
        MODEL_PIECES, ld(PIECE_TEXT, 'x') + vint(PIECE_SCORE, 3)) + pieces(PIECES[2:])
    files['score_wire_64bit.model'] = pieces(PIECES[:2]) + ld(
        MODEL_PIECES, ld(PIECE_TEXT, 'x') + key(PIECE_SCORE, I64) + struct.pack('<d', -1.0)) + \
        pieces(PIECES[2:])
    files['score_wire_length.model'] = ld(MODEL_PIECES, ld(PIECE_TEXT, 'x') +
                                          ld(PIECE_SCORE, b'\x00\x00\x80\xbf')) + pieces()
    files['type_wire_fixed32.model'] = ld(MODEL_PIECES, ld(PIECE_TEXT, 'x') +
                                          fixed32(PIECE_TYPE, b'\x01\x00\x00\x00')) + pieces()
    files['pieces_wire_varint.model'] = vint(MODEL_PIECES, 1) + pieces()
    files['pieces_wire_fixed64.model'] = pieces() + fixed64(MODEL_PIECES)
    files['trainer_spec_wire_varint.model'] = pieces() + vint(MODEL_TRAINER_SPEC, 1)
    files['trainer_spec_wire_fixed32.model'] = pieces() + fixed32(MODEL_TRAINER_SPEC)
    files['bos_id_wire_length.model'] = pieces() + ld(MODEL_TRAINER_SPEC,
                                                      ld(TRAINER_BOS_ID, b'\x01'))
    files['unk_id_wire_fixed32.model'] = pieces() + ld(
        MODEL_TRAINER_SPEC, fixed32(TRAINER_UNK_ID, b'\x00\x00\x00\x00'))
    # Piece types outside the enum.
    for name, t in [('0', 0), ('7', 7), ('negative', -1), ('2_63', 2**63),
                    ('2_32_plus_1', 2**32 + 1)]:
        files['type_%s.model' % name] = pieces(PIECES[:5]) + piece('x', 0.0, t) + pieces(PIECES[5:])
    # Special ids out of [-1, pieces) or out of int32.
    n = len(PIECES)
    files['bos_id_equal_to_pieces.model'] = pieces() + trainer_spec(bos=n)
    files['eos_id_huge.model'] = pieces() + trainer_spec(eos=2**31 - 1)
    files['unk_id_minus_2.model'] = pieces() + trainer_spec(unk=-2)
    files['pad_id_past_end.model'] = pieces() + trainer_spec(pad=n + 5)
    files['bos_id_int32_overflow.model'] = pieces() + trainer_spec(bos=2**31)
    files['eos_id_int32_underflow.model'] = pieces() + trainer_spec(eos=-2**31 - 1)
    files['unk_id_int32_min.model'] = pieces() + trainer_spec(unk=-2**31)
    # Defaults (bos 1, eos 2) out of range for a one- or two-piece model.
    files['default_bos_one_piece.model'] = piece('<unk>', 0.0, UNKNOWN)
    files['default_eos_two_pieces.model'] = pieces(PIECES[:2])
    files['spec_ids_later_wins_out_of_range.model'] = (
        pieces() + trainer_spec(bos=1) + trainer_spec(bos=None, eos=None, unk=None, pad=None) +
        ld(MODEL_TRAINER_SPEC, vint(TRAINER_BOS_ID, 200)))
    # Truncated fixed-width values.
    files['truncated_score.model'] = ld(MODEL_PIECES, ld(PIECE_TEXT, 'x') + key(PIECE_SCORE, I32) +
                                        b'\x00\x00') + pieces()
    files['truncated_fixed64_eof.model'] = pieces() + key(99, I64) + b'\x01\x02\x03'
    files['truncated_fixed32_eof.model'] = pieces() + key(99, I32) + b'\x01'
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
    write_dir(os.path.join(out, 'spm'), malformed())


if __name__ == '__main__':
    main()
