#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/: small valid inputs of every format
the fuzz targets read, each exercising a different path of its reader. Deterministic, python3
stdlib only; rerun after changing it and commit the output. Crashing inputs found by fuzzing
are added by hand (see README.md) and are not touched by this script."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'malformed'))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import make_llama2c  # noqa: E402  (the tiny llama2.c model and tokenizer live there)
import make_imatrix  # noqa: E402  (valid imatrix files of both layouts live there)
import make_logprob  # noqa: E402  (valid LBLOGP01 log-probability files live there)
import make_spm  # noqa: E402  (the protobuf encoders for tokenizer.model live there)

# ---- GGUF ----
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR = {UINT8: '<B', INT8: '<b', UINT16: '<H', INT16: '<h', UINT32: '<I', INT32: '<i',
          FLOAT32: '<f', BOOL: '<?', UINT64: '<Q', INT64: '<q', FLOAT64: '<d'}
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30


def gstr(s):
    b = s.encode('utf-8') if isinstance(s, str) else s
    return struct.pack('<Q', len(b)) + b


def gvalue(vtype, v):
    if vtype == STRING:
        return gstr(v)
    if vtype == ARRAY:
        etype, items = v
        out = struct.pack('<IQ', etype, len(items))
        return out + b''.join(gvalue(etype, x) for x in items)
    return struct.pack(SCALAR[vtype], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, type, dims, data bytes)]."""
    out = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs))
    for key, vtype, v in kvs:
        out += gstr(key) + struct.pack('<I', vtype) + gvalue(vtype, v)
    offset = 0
    blobs = b''
    for name, ttype, dims, data in tensors:
        out += gstr(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        out += struct.pack('<IQ', ttype, offset)
        pad = (-len(data)) % alignment
        blobs += data + b'\0' * pad
        offset += len(data) + pad
    out += b'\0' * ((-len(out)) % alignment)
    return out + blobs


def f32s(n, scale=0.25):
    return struct.pack('<%df' % n, *((i % 13 - 6) * scale for i in range(n)))


def gguf_files():
    tokens = ['<unk>', '<s>', '</s>', '<0x0A>', '\u2581t', 'he', '\u2581the']
    llama = [
        ('general.architecture', STRING, 'llama'),
        ('general.name', STRING, 'tiny'),
        ('llama.block_count', UINT32, 1),
        ('llama.context_length', UINT32, 16),
        ('llama.embedding_length', UINT32, 8),
        ('llama.feed_forward_length', UINT32, 16),
        ('llama.attention.head_count', UINT32, 2),
        ('llama.attention.head_count_kv', UINT32, 1),
        ('llama.rope.freq_base', FLOAT32, 10000.0),
        ('llama.attention.layer_norm_rms_epsilon', FLOAT32, 1e-5),
        ('tokenizer.ggml.model', STRING, 'llama'),
        ('tokenizer.ggml.tokens', ARRAY, (STRING, tokens)),
        ('tokenizer.ggml.scores', ARRAY, (FLOAT32, [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0])),
        ('tokenizer.ggml.token_type', ARRAY, (INT32, [2, 3, 3, 6, 1, 1, 1])),
        ('tokenizer.ggml.bos_token_id', UINT32, 1),
        ('tokenizer.ggml.eos_token_id', UINT32, 2),
        ('tokenizer.ggml.add_bos_token', BOOL, True),
    ]
    tensors = [('token_embd.weight', T_F32, [8, 7], f32s(56)),
               ('blk.0.attn_norm.weight', T_F32, [8], f32s(8)),
               ('blk.0.attn_q.weight', T_F16, [8, 8], b'\x00\x3c' * 64),
               ('blk.0.ffn_down.weight', T_BF16, [16, 8], b'\x80\x3f' * 128),
               ('output_norm.weight', T_F32, [8], f32s(8))]
    every_type = [('t.u8', UINT8, 200), ('t.i8', INT8, -5), ('t.u16', UINT16, 60000),
                  ('t.i16', INT16, -300), ('t.u32', UINT32, 4000000000), ('t.i32', INT32, -7),
                  ('t.f32', FLOAT32, 0.5), ('t.bool', BOOL, False), ('t.str', STRING, 'h\u00e9'),
                  ('t.u64', UINT64, 2**63), ('t.i64', INT64, -2**40), ('t.f64', FLOAT64, -2.5),
                  ('t.arr_u8', ARRAY, (UINT8, [1, 2, 3])),
                  ('t.arr_bool', ARRAY, (BOOL, [True, False])),
                  ('t.arr_f64', ARRAY, (FLOAT64, [1.5])),
                  ('t.arr_empty', ARRAY, (INT64, [])),
                  ('t.arr_str', ARRAY, (STRING, ['', 'a', 'bc']))]
    q8 = struct.pack('<e', 0.5) + bytes(range(32))  # one Q8_0 block: f16 scale + 32 int8
    return {
        'llama_tiny.gguf': gguf(llama, tensors),
        'every_value_type.gguf': gguf(every_type, [('x', T_F32, [3, 1, 2], f32s(6))]),
        'alignment_64.gguf': gguf([('general.alignment', UINT32, 64)],
                                  [('a', T_F32, [5], f32s(5)), ('b', T_F16, [3], b'\x00\x3c' * 3)],
                                  alignment=64),
        # Valid once the Q8_0 kernels register the type; until then a path to UNSUPPORTED.
        'q8_0_block.gguf': gguf([('general.architecture', STRING, 'llama')],
                                [('b', T_Q8_0, [32], q8)]),
        'version_2.gguf': gguf([('general.architecture', STRING, 'llama')],
                               [('a', T_F32, [4], f32s(4))], version=2),
        'no_tensors.gguf': gguf([('general.architecture', STRING, 'llama')], []),
        'empty.gguf': gguf([], []),
    }


# ---- safetensors ----

def safetensors(entries, metadata=None):
    """entries: [(name, dtype, shape, data bytes)] in data order."""
    header, blob = {}, b''
    for name, dtype, shape, data in entries:
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata is not None:
        header['__metadata__'] = metadata
    h = json.dumps(header, sort_keys=True).encode('utf-8')
    h += b' ' * ((-len(h)) % 8)
    return struct.pack('<Q', len(h)) + h + blob


def safetensors_files():
    layer = [('model.embed_tokens.weight', 'F32', [4, 8], f32s(32)),
             ('model.layers.0.self_attn.q_proj.weight', 'BF16', [8, 8], b'\x80\x3f' * 64),
             ('model.layers.0.mlp.down_proj.weight', 'F16', [8, 3], b'\x00\x3c' * 24),
             ('model.norm.weight', 'F32', [8], f32s(8))]
    return {
        'llama_layer.safetensors': safetensors(layer, {'format': 'pt'}),
        'scalar_and_empty.safetensors': safetensors([('s', 'F32', [], f32s(1)),
                                                     ('e', 'F16', [0, 4], b'')]),
        'four_dims.safetensors': safetensors([('t', 'BF16', [2, 1, 2, 2], b'\x00\x40' * 8)]),
        'empty_header.safetensors': safetensors([]),
    }


# ---- Hugging Face JSON (first byte selects: even config.json, odd tokenizer.json) ----

CONFIG = {'architectures': ['LlamaForCausalLM'], 'hidden_act': 'silu', 'hidden_size': 64,
          'intermediate_size': 172, 'max_position_embeddings': 512, 'model_type': 'llama',
          'num_attention_heads': 8, 'num_hidden_layers': 5, 'num_key_value_heads': 4,
          'rms_norm_eps': 1e-05, 'rope_scaling': None, 'rope_theta': 10000.0,
          'tie_word_embeddings': True, 'vocab_size': 512, 'torch_dtype': 'float32'}

GPT2_TOKENIZER = {
    'version': '1.0',
    'added_tokens': [{'id': 10, 'content': '<|endoftext|>', 'special': True},
                     {'id': 11, 'content': '<|user|>', 'special': False}],
    'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False},
    'decoder': {'type': 'ByteLevel'},
    'model': {'type': 'BPE', 'unk_token': None, 'byte_fallback': False,
              'vocab': {'h': 0, 'e': 1, 'l': 2, 'o': 3, '\u0120': 4, 'w': 5, 'he': 6, 'll': 7,
                        'hell': 8, '\u0120w': 9},
              'merges': ['h e', 'l l', 'he ll', '\u0120 w']}}

LLAMA3_TOKENIZER = {
    'added_tokens': [{'id': 6, 'content': '<|begin_of_text|>', 'special': True},
                     {'id': 8, 'content': '<|end_of_text|>', 'special': True}],
    'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
        {'type': 'Split', 'pattern': {'Regex': '\\s+'}, 'behavior': 'Isolated'},
        {'type': 'ByteLevel', 'add_prefix_space': False, 'use_regex': False}]},
    'decoder': {'type': 'ByteLevel'},
    'model': {'type': 'BPE', 'ignore_merges': True, 'byte_fallback': False,
              'vocab': {'a': 0, 'b': 1, 'ab': 2, 'c': 3, 'abc': 4},
              'merges': [['a', 'b'], ['ab', 'c']]}}

LLAMA_TOKENIZER = {
    'added_tokens': [{'id': 0, 'content': '<unk>', 'special': True},
                     {'id': 1, 'content': '<s>', 'special': True},
                     {'id': 2, 'content': '</s>', 'special': True}],
    'pre_tokenizer': None,
    'decoder': {'type': 'Sequence', 'decoders': [
        {'type': 'Replace', 'pattern': {'String': '\u2581'}, 'content': ' '},
        {'type': 'ByteFallback'}, {'type': 'Fuse'}]},
    'model': {'type': 'BPE', 'unk_token': '<unk>', 'byte_fallback': True,
              'vocab': {'<unk>': 0, '<s>': 1, '</s>': 2, '<0x00>': 3, '<0x0A>': 4, '<0xFF>': 5,
                        '\u2581': 6, '\u2581t': 7, 'he': 8, '\u2581the': 9},
              'merges': ['\u2581 t', 'h e', '\u2581t he']}}


def hf_files():
    mistral = dict(CONFIG, model_type='mistral', sliding_window=4096, tie_word_embeddings=False)
    qwen2 = dict(CONFIG, model_type='qwen2', rope_theta=1000000.0, rms_norm_eps=1e-6,
                 use_sliding_window=False)
    minimal = {k: CONFIG[k] for k in ['hidden_size', 'intermediate_size', 'num_hidden_layers',
                                       'num_attention_heads', 'vocab_size', 'model_type']}

    def enc(selector, obj):
        return bytes([selector]) + json.dumps(obj, indent=1, ensure_ascii=False).encode('utf-8')

    return {
        'config_llama.json': enc(0, CONFIG),
        'config_mistral.json': enc(0, mistral),
        'config_qwen2.json': enc(0, qwen2),
        'config_minimal.json': enc(0, minimal),
        'tokenizer_gpt2.json': enc(1, GPT2_TOKENIZER),
        'tokenizer_llama3.json': enc(1, LLAMA3_TOKENIZER),
        'tokenizer_llama.json': enc(1, LLAMA_TOKENIZER),
    }


# ---- llama2.c ----

def llama2c_files():
    unshared = dict(vocab_size=-make_llama2c.BASE['vocab_size'])
    mha = dict(dim=8, hidden_dim=8, n_layers=1, n_heads=2, n_kv_heads=2, vocab_size=3, seq_len=1)
    return {
        'tiny_shared.bin': make_llama2c.model(),
        'tiny_unshared.bin': make_llama2c.model(**unshared),
        'tiny_mha.bin': make_llama2c.model(**mha),
    }


def tokenizer_files():
    byte_tokens = [b'<unk>', b'\n<s>\n', b'\n</s>\n'] + [b'<0x%02X>' % i for i in range(16)]
    return {
        'tiny.bin': make_llama2c.tokenizer(make_llama2c.token_records()),
        'bytes.bin': make_llama2c.tokenizer(make_llama2c.token_records(byte_tokens)),
        'min_three.bin': make_llama2c.tokenizer(make_llama2c.token_records(make_llama2c.TOKENS[:3])),
        'empty_piece.bin': make_llama2c.tokenizer(make_llama2c.token_records(
            make_llama2c.TOKENS[:3] + [b'', b' ', b'a b c'])),
    }


def imatrix_files():
    return {
        'legacy.dat': make_imatrix.legacy(),
        'experts.gguf': make_imatrix.valid_gguf(),
        'in_sum_no_dataset.gguf': make_imatrix.valid_gguf_with_in_sum(),
    }


def logprob_files():
    return make_logprob.valid_files()


# ---- SentencePiece tokenizer.model (protobuf ModelProto) ----

def spm_files():
    pb = make_spm
    # Pieces of every type, a score of each sign, and no trainer spec: the default ids.
    minimal = pb.pieces(pb.PIECES[:3] + [('<0x0A>', 0.0, pb.BYTE), (pb.SP + 'a', -1.5, pb.NORMAL),
                                         ('<user>', 0.0, pb.USER_DEFINED),
                                         ('<unused>', 0.0, pb.UNUSED), ('b', 2.0, pb.NORMAL)])
    # The trainer spec and normalizer spec a real model has, in its field order.
    spec_extra = (pb.ld(pb.TRAINER_UNK_PIECE, '<unk>') + pb.ld(pb.TRAINER_BOS_PIECE, '<s>') +
                  pb.ld(pb.TRAINER_EOS_PIECE, '</s>') + pb.vint(pb.TRAINER_BYTE_FALLBACK, 1))
    full = (pb.pieces() + pb.ld(pb.MODEL_TRAINER_SPEC,
                                pb.ld(1, 'corpus.txt') + pb.ld(2, 'tokenizer') +
                                pb.vint(pb.TRAINER_MODEL_TYPE, pb.BPE) +
                                pb.vint(pb.TRAINER_VOCAB_SIZE, len(pb.PIECES)) +
                                pb.f32(10, 0.9995) +
                                pb.vint(pb.TRAINER_UNK_ID, 0) + pb.vint(pb.TRAINER_BOS_ID, 1) +
                                pb.vint(pb.TRAINER_EOS_ID, 2) + pb.vint(pb.TRAINER_PAD_ID, -1) +
                                spec_extra) +
            pb.normalizer_spec('identity', b'\x00\x01\x02\x03', True, False, True) +
            pb.ld(pb.MODEL_DENORMALIZER_SPEC, pb.ld(1, 'identity')))
    # Unknown fields of every wire type (varint, 64-bit, length-delimited, 32-bit) at the top
    # level, inside pieces and inside the trainer spec; the reader skips them all.
    unknown = (pb.vint(99, 7) + pb.fixed64(98) + pb.ld(97, b'skip me') + pb.fixed32(96) +
               pb.vint(2**29 - 1, 2**64 - 1))
    odd = pb.vint(200, 1) + pb.fixed64(201) + pb.ld(202, b'\x0a\x01x') + pb.fixed32(203)
    unknown_fields = (unknown + b''.join(pb.piece(*e, extra=odd) for e in pb.PIECES[:5]) +
                      pb.ld(pb.MODEL_SELF_TEST_DATA, pb.ld(1, pb.ld(1, 'a') + pb.ld(2, 'b'))) +
                      pb.trainer_spec(model_type=pb.UNIGRAM, extra=odd) + unknown)
    # Ids absent (-1) and set by a second trainer spec, which merges with the first; pieces
    # with an explicit NORMAL type, no score, an embedded NUL and a raw space.
    merged = (pb.ld(pb.MODEL_PIECES, pb.ld(pb.PIECE_TEXT, '<unk>') + pb.vint(pb.PIECE_TYPE, 2)) +
              pb.ld(pb.MODEL_PIECES, pb.ld(pb.PIECE_TEXT, 'a\x00b') + pb.vint(pb.PIECE_TYPE, 1)) +
              pb.ld(pb.MODEL_PIECES, pb.vint(pb.PIECE_TYPE, 1) + pb.ld(pb.PIECE_TEXT, ' x ')) +
              pb.trainer_spec(unk=0, bos=-1, eos=-1, pad=None) +
              pb.trainer_spec(unk=None, bos=None, eos=2, pad=1))
    # Llama 2's layout in small: <unk> <s> </s>, byte pieces, then merges by score.
    byte_pieces = (pb.PIECES[:3] + [('<0x%02X>' % b, 0.0, pb.BYTE) for b in range(0, 256, 8)] +
                   [(pb.SP + pb.SP, -1e9, pb.NORMAL), (pb.SP + 't', -1.0, pb.NORMAL),
                    ('er', -2.0, pb.NORMAL), (pb.SP, -3.0, pb.NORMAL)])
    llama_like = pb.model(byte_pieces)
    return {
        'minimal.model': minimal,
        'trainer_normalizer.model': full,
        'unknown_fields.model': unknown_fields,
        'ids_absent_merged_spec.model': merged,
        'llama_like.model': llama_like,
    }


def model_files():
    """Whole tiny llama models for fuzz_model: the valid model that check_hostile_model.py
    varies, with one and two blocks."""
    sys.path.insert(0, os.path.join(HERE, '..'))
    import check_hostile_model as hm
    import make_gguf as mg
    return {'llama_1_block.gguf': mg.build(hm.model_kvs(), hm.model_tensors()).data(),
            'llama_2_blocks.gguf': mg.build(hm.model_kvs(block_count=2),
                                            hm.model_tensors(n_blocks=2)).data()}


def write(target, files):
    path = os.path.join(HERE, 'corpus', target)
    os.makedirs(path, exist_ok=True)
    for name, data in sorted(files.items()):
        with open(os.path.join(path, 'seed_' + name), 'wb') as f:
            f.write(data)
    print('%s: %d seeds' % (path, len(files)))


def main():
    write('gguf', gguf_files())
    write('safetensors', safetensors_files())
    write('hf_json', hf_files())
    write('llama2c', llama2c_files())
    write('tokenizer_bin', tokenizer_files())
    write('imatrix', imatrix_files())
    write('logprob', logprob_files())
    write('spm_model', spm_files())
    write('model', model_files())


if __name__ == '__main__':
    main()
