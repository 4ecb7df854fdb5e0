/* SentencePiece ModelProto reader: a bounds-checked protobuf wire-format parser, no libprotobuf. */
#include "formats/spm_model_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "formats/cursor_internal.h"
#include "formats/mapped_file_internal.h"

/* Protobuf wire types (https://protobuf.dev/programming-guides/encoding/). 3 and 4 are the
 * deprecated groups, which sentencepiece_model.proto never uses: rejected, not skipped. */
enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_GROUP_START = 3, WIRE_GROUP_END = 4,
       WIRE_I32 = 5 };

/* Field numbers of sentencepiece_model.proto. */
enum { MODEL_PIECES = 1, MODEL_TRAINER_SPEC = 2, MODEL_NORMALIZER_SPEC = 3 };
enum { TRAINER_MODEL_TYPE = 3, MODEL_TYPE_BPE = 2 };
/* NormalizerSpec fields; the tokenizer implements Llama's settings only: no normalization
 * rules, a dummy prefix, whitespace escaped to U+2581 and kept as it is. */
enum { NORM_NAME = 1, NORM_CHARSMAP = 2, NORM_DUMMY_PREFIX = 3, NORM_REMOVE_SPACES = 4,
       NORM_ESCAPE_SPACES = 5, NORM_RULE_TSV = 6 };
enum { PIECE_TEXT = 1, PIECE_SCORE = 2, PIECE_TYPE = 3 };
enum { TRAINER_UNK_ID = 40, TRAINER_BOS_ID = 41, TRAINER_EOS_ID = 42, TRAINER_PAD_ID = 43 };

/* A cursor over [pos, end) of the whole buffer, so offsets in messages are file offsets.
 * message and index name the message being read in errors ("pieces", 12 -> "pieces[12]");
 * they are only formatted when an error is reported. */
typedef struct pb_reader {
    const char *name;
    const uint8_t *data;
    uint64_t pos;
    uint64_t end;
    const char *message;
    int64_t index; /* -1: not an element of a repeated field */
} pb_reader;

static const char *wire_name(uint32_t wire)
{
    switch (wire) {
    case WIRE_VARINT: return "varint";
    case WIRE_I64: return "64-bit";
    case WIRE_LEN: return "length-delimited";
    case WIRE_I32: return "32-bit";
    case WIRE_GROUP_START:
    case WIRE_GROUP_END: return "group";
    default: return "invalid";
    }
}

/* "<file>: <message>[<index>].<field> at offset <N>: <what>"; field may be NULL. */
static lb_status pb_corrupt(const pb_reader *r, const char *field, uint64_t offset,
                            const char *what)
{
    char index[32] = "";
    if (r->index >= 0)
        snprintf(index, sizeof index, "[%lld]", (long long)r->index);
    return lb_error(LB_ERR_CORRUPT_FILE, "%s: %s%s%s%s at offset %llu: %s", r->name, r->message,
                    index, field ? "." : "", field ? field : "", (unsigned long long)offset, what);
}

/* Base-128 varint, at most 10 bytes; the 10th may only carry the top bit of a uint64. */
static lb_status pb_varint(pb_reader *r, const char *field, uint64_t *out)
{
    uint64_t start = r->pos, value = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->pos >= r->end)
            return pb_corrupt(r, field, start, "varint runs past the end of its message");
        uint8_t byte = r->data[r->pos++];
        if (i == 9 && (byte & 0x80))
            break;
        if (i == 9 && byte > 1)
            return pb_corrupt(r, field, start, "varint overflows 64 bits");
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = value;
            return LB_OK;
        }
    }
    return pb_corrupt(r, field, start, "varint longer than 10 bytes");
}

/* Reads a field key; field numbers are 1 .. 2^29-1 by the protobuf spec. */
static lb_status pb_key(pb_reader *r, uint32_t *field, uint32_t *wire)
{
    uint64_t start = r->pos, key;
    lb_status status = pb_varint(r, NULL, &key);
    if (status != LB_OK)
        return status;
    if (key >> 3 == 0 || key >> 3 > 0x1fffffff)
        return pb_corrupt(r, NULL, start, "field key with an invalid field number");
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    return LB_OK;
}

/* A length-delimited payload; *sub covers it (read as message[index]) and r moves past it. */
static lb_status pb_len(pb_reader *r, const char *field, pb_reader *sub, const char *message,
                        int64_t index)
{
    uint64_t start = r->pos, len;
    lb_status status = pb_varint(r, field, &len);
    if (status != LB_OK)
        return status;
    if (len > r->end - r->pos)
        return pb_corrupt(r, field, start, "length runs past the end of its message");
    *sub = (pb_reader){r->name, r->data, r->pos, r->pos + len, message, index};
    r->pos += len;
    return LB_OK;
}

static lb_status pb_fixed(pb_reader *r, const char *field, unsigned bytes, uint64_t *out)
{
    if (bytes > r->end - r->pos)
        return pb_corrupt(r, field, r->pos, "fixed-width value runs past the end of its message");
    /* little-endian on the wire, whatever the host */
    *out = bytes == 8 ? lb_le_load64(r->data + r->pos) : lb_le_load32(r->data + r->pos);
    r->pos += bytes;
    return LB_OK;
}

/* Skips the value of a field this reader does not use. */
static lb_status pb_skip(pb_reader *r, const char *field, uint64_t key_offset, uint32_t wire)
{
    uint64_t ignored;
    pb_reader sub;
    switch (wire) {
    case WIRE_VARINT: return pb_varint(r, field, &ignored);
    case WIRE_I64: return pb_fixed(r, field, 8, &ignored);
    case WIRE_I32: return pb_fixed(r, field, 4, &ignored);
    case WIRE_LEN: return pb_len(r, field, &sub, r->message, r->index);
    case WIRE_GROUP_START:
    case WIRE_GROUP_END: return pb_corrupt(r, field, key_offset, "groups are not supported");
    default: return pb_corrupt(r, field, key_offset, "invalid wire type");
    }
}

static lb_status pb_expect_wire(const pb_reader *r, const char *field, uint64_t key_offset,
                                uint32_t wire, uint32_t expected)
{
    if (wire == expected)
        return LB_OK;
    char what[96];
    snprintf(what, sizeof what, "wire type %u (%s), expected %u (%s)", wire, wire_name(wire),
             expected, wire_name(expected));
    return pb_corrupt(r, field, key_offset, what);
}

/* An int32 field: protobuf writes negative values as 10-byte sign-extended varints. */
static lb_status pb_int32(pb_reader *r, const char *field, int32_t *out)
{
    uint64_t start = r->pos, value;
    lb_status status = pb_varint(r, field, &value);
    if (status != LB_OK)
        return status;
    int64_t signed_value = (int64_t)value;
    if (signed_value < INT32_MIN || signed_value > INT32_MAX)
        return pb_corrupt(r, field, start, "value out of the int32 range");
    *out = (int32_t)signed_value;
    return LB_OK;
}

/* The trainer spec's special ids, in field order 40..43, and where each was read (0 for a
 * default) so that a bad one can be reported with its offset. */
enum { ID_UNK, ID_BOS, ID_EOS, ID_PAD, N_IDS };
static const char *const ID_NAMES[N_IDS] = {"unk_id", "bos_id", "eos_id", "pad_id"};
typedef struct spm_ids {
    int32_t id[N_IDS];
    uint64_t offset[N_IDS];
    uint64_t model_type, model_type_offset; /* TrainerSpec.model_type */
    const char *normalizer_problem;         /* a NormalizerSpec setting not implemented */
    uint64_t normalizer_offset;
} spm_ids;

static lb_status parse_trainer_spec(pb_reader *r, spm_ids *ids)
{
    while (r->pos < r->end) {
        uint64_t key_offset = r->pos;
        uint32_t field, wire;
        lb_status status = pb_key(r, &field, &wire);
        if (status != LB_OK)
            return status;
        if (field == TRAINER_MODEL_TYPE) {
            ids->model_type_offset = key_offset;
            if ((status = pb_expect_wire(r, "model_type", key_offset, wire, WIRE_VARINT)) ==
                LB_OK)
                status = pb_varint(r, "model_type", &ids->model_type);
        } else if (field < TRAINER_UNK_ID || field > TRAINER_PAD_ID) {
            status = pb_skip(r, NULL, key_offset, wire);
        } else {
            unsigned k = field - TRAINER_UNK_ID;
            ids->offset[k] = key_offset;
            if ((status = pb_expect_wire(r, ID_NAMES[k], key_offset, wire, WIRE_VARINT)) == LB_OK)
                status = pb_int32(r, ID_NAMES[k], &ids->id[k]);
        }
        if (status != LB_OK)
            return status;
    }
    return LB_OK;
}

/* NormalizerSpec: notes the first setting the tokenizer does not implement. An absent flag is
 * taken as Llama's setting: sentencepiece's trainer writes all three, and minimal files (the
 * unit tests', GGUF-derived ones) leave them out meaning Llama's behaviour. */
static lb_status parse_normalizer_spec(pb_reader *r, spm_ids *ids)
{
    bool flags[NORM_ESCAPE_SPACES + 1] = {false, false, false, true, false, true};
    uint64_t flag_at[NORM_ESCAPE_SPACES + 1] = {0};
    while (r->pos < r->end) {
        uint64_t key_offset = r->pos, value;
        uint32_t field, wire;
        lb_status status = pb_key(r, &field, &wire);
        if (status != LB_OK)
            return status;
        pb_reader sub;
        if (field == NORM_NAME || field == NORM_CHARSMAP || field == NORM_RULE_TSV) {
            static const char *const names[] = {"", "name", "precompiled_charsmap", "", "", "",
                                                "normalization_rule_tsv"};
            if ((status = pb_expect_wire(r, names[field], key_offset, wire, WIRE_LEN)) != LB_OK ||
                (status = pb_len(r, names[field], &sub, r->message, r->index)) != LB_OK)
                return status;
            size_t len = (size_t)(sub.end - sub.pos);
            bool identity = field == NORM_NAME
                                ? len == 0 || (len == 8 && memcmp(sub.data + sub.pos,
                                                                  "identity", 8) == 0)
                                : len == 0;
            if (!identity && !ids->normalizer_problem) {
                ids->normalizer_problem = field == NORM_NAME ? "name: only 'identity' is "
                                                               "implemented"
                                          : field == NORM_CHARSMAP
                                              ? "precompiled_charsmap: normalization rules "
                                                "are not implemented"
                                              : "normalization_rule_tsv: normalization rules "
                                                "are not implemented";
                ids->normalizer_offset = key_offset;
            }
        } else if (field >= NORM_DUMMY_PREFIX && field <= NORM_ESCAPE_SPACES) {
            if ((status = pb_expect_wire(r, NULL, key_offset, wire, WIRE_VARINT)) != LB_OK ||
                (status = pb_varint(r, NULL, &value)) != LB_OK)
                return status;
            flags[field] = value != 0;
            flag_at[field] = key_offset;
        } else if ((status = pb_skip(r, NULL, key_offset, wire)) != LB_OK) {
            return status;
        }
    }
    static const struct {
        int field;
        bool want;
        const char *problem;
    } need[] = {
        {NORM_DUMMY_PREFIX, true, "add_dummy_prefix: false is not implemented"},
        {NORM_REMOVE_SPACES, false, "remove_extra_whitespaces: true is not implemented"},
        {NORM_ESCAPE_SPACES, true, "escape_whitespaces: false is not implemented"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0] && !ids->normalizer_problem; i++) {
        if (flags[need[i].field] != need[i].want) {
            ids->normalizer_problem = need[i].problem;
            ids->normalizer_offset = flag_at[need[i].field];
        }
    }
    return LB_OK;
}

/* One ModelProto.SentencePiece (r->index is its id); with vocab NULL it is only validated. */
static lb_status parse_piece(pb_reader *r, lb_vocab *vocab)
{
    uint64_t message_offset = r->pos;
    pb_reader text = {0};
    bool has_text = false;
    float score = 0.0f;
    int32_t type = LB_TOKEN_NORMAL; /* the proto's default */
    while (r->pos < r->end) {
        uint64_t key_offset = r->pos, value = 0;
        uint32_t field, wire;
        lb_status status = pb_key(r, &field, &wire);
        if (status != LB_OK)
            return status;
        switch (field) {
        case PIECE_TEXT:
            status = pb_expect_wire(r, "piece", key_offset, wire, WIRE_LEN);
            if (status == LB_OK)
                status = pb_len(r, "piece", &text, r->message, r->index);
            has_text = true;
            break;
        case PIECE_SCORE:
            status = pb_expect_wire(r, "score", key_offset, wire, WIRE_I32);
            if (status == LB_OK && (status = pb_fixed(r, "score", 4, &value)) == LB_OK) {
                uint32_t bits = (uint32_t)value;
                memcpy(&score, &bits, sizeof score);
            }
            break;
        case PIECE_TYPE:
            status = pb_expect_wire(r, "type", key_offset, wire, WIRE_VARINT);
            if (status == LB_OK && (status = pb_varint(r, "type", &value)) == LB_OK) {
                /* SentencePiece's Type enum has the same numbers as GGUF's token types. */
                if (value < LB_TOKEN_NORMAL || value > LB_TOKEN_BYTE)
                    return pb_corrupt(r, "type", key_offset, "unknown piece type");
                type = (int32_t)value;
            }
            break;
        default:
            status = pb_skip(r, NULL, key_offset, wire);
            break;
        }
        if (status != LB_OK)
            return status;
    }
    /* sentencepiece itself refuses empty pieces: they would match everywhere. */
    if (!has_text || text.end == text.pos)
        return pb_corrupt(r, "piece", message_offset, "missing or empty piece");
    if (!vocab)
        return LB_OK;
    lb_status status = lb_vocab_set_token(vocab, r->index, (const char *)text.data + text.pos,
                                          (size_t)(text.end - text.pos));
    if (status != LB_OK)
        return status;
    vocab->scores[r->index] = score;
    vocab->token_types[r->index] = type;
    return LB_OK;
}

/* One pass over the top-level ModelProto: counts (or, with vocab, stores) pieces and reads
 * the trainer spec. Repeated trainer_spec messages merge, later fields winning, as in protobuf. */
static lb_status parse_model(pb_reader r, lb_vocab *vocab, int64_t *n_pieces, spm_ids *ids)
{
    int64_t count = 0;
    while (r.pos < r.end) {
        uint64_t key_offset = r.pos;
        uint32_t field, wire;
        lb_status status = pb_key(&r, &field, &wire);
        if (status != LB_OK)
            return status;
        pb_reader sub;
        if (field == MODEL_PIECES) {
            /* errors in the piece's key or length are reported as pieces[count] */
            pb_reader at = r;
            at.message = "pieces";
            at.index = count;
            if ((status = pb_expect_wire(&at, NULL, key_offset, wire, WIRE_LEN)) != LB_OK ||
                (status = pb_len(&at, NULL, &sub, "pieces", count)) != LB_OK ||
                (status = parse_piece(&sub, vocab)) != LB_OK)
                return status;
            r.pos = at.pos;
            count++;
        } else if (field == MODEL_TRAINER_SPEC) {
            if ((status = pb_expect_wire(&r, "trainer_spec", key_offset, wire, WIRE_LEN)) !=
                    LB_OK ||
                (status = pb_len(&r, "trainer_spec", &sub, "trainer_spec", -1)) != LB_OK ||
                (status = parse_trainer_spec(&sub, ids)) != LB_OK)
                return status;
        } else if (field == MODEL_NORMALIZER_SPEC && !vocab) {
            if ((status = pb_expect_wire(&r, "normalizer_spec", key_offset, wire, WIRE_LEN)) !=
                    LB_OK ||
                (status = pb_len(&r, "normalizer_spec", &sub, "normalizer_spec", -1)) != LB_OK ||
                (status = parse_normalizer_spec(&sub, ids)) != LB_OK)
                return status;
        } else if ((status = pb_skip(&r, NULL, key_offset, wire)) != LB_OK) {
            return status;
        }
    }
    *n_pieces = count;
    return LB_OK;
}

lb_status lb_spm_model_parse(lb_vocab **out, const char *name, const void *data, uint64_t size)
{
    *out = NULL;
    if (!data && size > 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: no data", name);
    pb_reader r = {name, data, 0, size, "ModelProto", -1};
    /* An absent model_type is taken as BPE (protobuf's default would be UNIGRAM): sentencepiece
     * always writes it, and minimal files without a trainer_spec mean Llama's BPE. */
    spm_ids ids = {{0, 1, 2, -1}, {0}, MODEL_TYPE_BPE, 0, NULL, 0};
    int64_t n_pieces = 0;
    /* Pass 1 validates the whole file and counts pieces, so the vocab is allocated once. */
    lb_status status = parse_model(r, NULL, &n_pieces, &ids);
    if (status != LB_OK)
        return status;
    if (n_pieces == 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: pieces at offset 0: the model has no pieces",
                        name);
    /* Only BPE is implemented: a Unigram or Word model tokenized as BPE gives other ids. */
    if (ids.model_type != MODEL_TYPE_BPE)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: trainer_spec.model_type at offset %llu: %s "
                        "(%llu) tokenizers are not supported (BPE only)", name,
                        (unsigned long long)ids.model_type_offset,
                        ids.model_type == 1   ? "UNIGRAM"
                        : ids.model_type == 3 ? "WORD"
                        : ids.model_type == 4 ? "CHAR"
                                              : "unknown",
                        (unsigned long long)ids.model_type);
    if (ids.normalizer_problem)
        return lb_error(LB_ERR_UNSUPPORTED, "%s: normalizer_spec.%s (offset %llu)", name,
                        ids.normalizer_problem, (unsigned long long)ids.normalizer_offset);
    if (n_pieces > INT32_MAX) /* token ids are int32 */
        return lb_error(LB_ERR_UNSUPPORTED, "%s: pieces: %lld pieces are too many", name,
                        (long long)n_pieces);
    for (int k = 0; k < N_IDS; k++)
        if (ids.id[k] < -1 || ids.id[k] >= n_pieces)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: trainer_spec.%s at offset %llu: id %d out "
                            "of range for %lld pieces", name, ID_NAMES[k],
                            (unsigned long long)ids.offset[k], (int)ids.id[k],
                            (long long)n_pieces);
    lb_vocab *vocab;
    if ((status = lb_vocab_create(&vocab, "llama", n_pieces, true, true)) != LB_OK)
        return status;
    int64_t stored = 0;
    if ((status = parse_model(r, vocab, &stored, &ids)) != LB_OK) {
        lb_vocab_free(&vocab);
        return status;
    }
    vocab->unk_id = ids.id[ID_UNK];
    vocab->bos_id = ids.id[ID_BOS];
    vocab->eos_id = ids.id[ID_EOS];
    vocab->pad_id = ids.id[ID_PAD];
    *out = vocab;
    return LB_OK;
}

lb_status lb_spm_model_load(lb_vocab **out, const char *path)
{
    *out = NULL;
    lb_mapped_file *file;
    lb_status status = lb_mapped_file_open(&file, path);
    if (status != LB_OK)
        return status;
    status = lb_spm_model_parse(out, path, file->data, file->size);
    lb_mapped_file_close(&file);
    return status;
}
