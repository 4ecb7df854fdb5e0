/* SentencePiece model files (tokenizer.model, a protobuf ModelProto) read into an lb_vocab. */
#ifndef LB_FORMATS_SPM_MODEL_INTERNAL_H
#define LB_FORMATS_SPM_MODEL_INTERNAL_H

#include <stdint.h>

#include "common/status.h"
#include "formats/vocab.h"

/* Reads the pieces (text, score, type) of a SentencePiece ModelProto with a bounds-checked
 * protobuf wire-format reader (no protobuf library): model "llama", types mapped to GGUF's
 * (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6), bos/eos/unk ids from the
 * trainer spec (defaults 1, 2, 0). Errors name the file, field and byte offset. */
lb_status lb_spm_model_load(lb_vocab **out, const char *path);
lb_status lb_spm_model_parse(lb_vocab **out, const char *name, const void *data,
                                    uint64_t size);

#endif
