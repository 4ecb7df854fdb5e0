/* One view over every supported checkpoint: llama2.c, safetensors (+ config.json and
 * tokenizer.json) and GGUF. Tensors carry llama.cpp names and GGUF shapes; rows come out as
 * f32 in GGUF's order whatever the source. */
#ifndef LB_FORMATS_CHECKPOINT_H
#define LB_FORMATS_CHECKPOINT_H

#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "formats/gguf.h"
#include "formats/hparams.h"
#include "formats/vocab.h"

typedef enum lb_checkpoint_format {
    LB_CHECKPOINT_LLAMA2C,
    LB_CHECKPOINT_SAFETENSORS,
    LB_CHECKPOINT_GGUF,
    /* Derived from another checkpoint, rows computed on read (e.g. lb_rotate_checkpoint): its
     * tensors are F32 with data NULL, read through lb_checkpoint_read_rows_f32 only. */
    LB_CHECKPOINT_VIEW,
} lb_checkpoint_format;

typedef struct lb_checkpoint_tensor {
    char *name;              /* llama.cpp name, e.g. "blk.3.ffn_up.weight" */
    char *source_name;       /* name in the source file */
    lb_type type;            /* storage type in the source */
    int n_dims;
    int64_t ne[LB_MAX_DIMS]; /* GGUF order */
    const void *data;        /* into the mapped source; NULL in a view */
    uint64_t nbytes;
    /* For Hugging Face q/k projections: rows are stored in the half-split rotary order and are
     * permuted to GGUF's interleaved order when read (0: no permutation, else head count). */
    int64_t rope_permute_heads;
} lb_checkpoint_tensor;

/* Decodes n elements (a multiple of the type's block size) of a packed type into f32. formats/
 * knows no block layout, so the caller hands one in: lb_kernels_dequantize (kernels/kernels.h). */
typedef lb_status (*lb_checkpoint_decode_fn)(lb_type type, const void *src, int64_t n,
                                             float *dst);

typedef struct lb_checkpoint_settings {
    const char *tokenizer_path; /* tokenizer.bin / tokenizer.json; NULL: look beside the model */
    lb_checkpoint_decode_fn decode; /* reads packed tensors as f32; NULL: they cannot be read */
} lb_checkpoint_settings;

typedef struct lb_checkpoint {
    lb_checkpoint_format format;
    char *path;
    lb_hparams hparams;
    int64_t n_tensors;
    lb_checkpoint_tensor *tensors;
    lb_vocab *vocab;         /* NULL when no tokenizer was found */
    char *tokenizer_path;    /* where the vocabulary came from, or NULL */
    const lb_gguf *gguf;     /* the source GGUF (its metadata), or NULL */
    void *source;            /* the format's own handle */
    lb_checkpoint_decode_fn decode; /* from the settings, or NULL */
} lb_checkpoint;

LB_API lb_checkpoint_settings lb_checkpoint_default_settings(void);

/* Detects the format by content (GGUF magic, safetensors header, llama2.c header) or, for a
 * directory, by its files (model.safetensors.index.json, model.safetensors, config.json). */
LB_API lb_status lb_checkpoint_open(lb_checkpoint **out, const char *path,
                                    const lb_checkpoint_settings *settings);
LB_API void lb_checkpoint_close(lb_checkpoint **checkpoint);

LB_API const char *lb_checkpoint_format_name(lb_checkpoint_format format);
LB_API int64_t lb_checkpoint_find(const lb_checkpoint *checkpoint, const char *name);

/* Reads row range [row0, row0 + n_rows) of tensor `index` (rows of ne[0] elements) as f32,
 * converting the type and applying the rotary permutation; packed source types through the
 * settings' decode function (LB_ERR_UNSUPPORTED when it was NULL). */
LB_API lb_status lb_checkpoint_read_rows_f32(const lb_checkpoint *checkpoint, int64_t index,
                                             int64_t row0, int64_t n_rows, float *dst);

/* The BOS token that text for this model starts with, as llama.cpp decides it
 * (llama_vocab_get_add_bos, which llama-perplexity, llama-imatrix and llama-cli follow):
 * tokenizer.ggml.add_bos_token (tokenizer_config.json's add_bos_token, llama2.c: yes) when the
 * vocabulary says; else by tokenizer model: yes for SentencePiece ("llama") and WordPiece
 * ("bert"), no for byte-level BPE ("gpt2") unless tokenizer.ggml.pre is llama3, llama-v3,
 * llama-bpe, falcon3, tekken or chameleon, no for any other model. Returns the BOS id, or -1
 * when none is added (or the checkpoint has no vocabulary or no BOS token). */
LB_API int32_t lb_checkpoint_text_bos(const lb_checkpoint *checkpoint);

/* Tells the kernel that the mapped pages of tensor `index` are not needed for now (they are
 * read again from the file if touched), so that a pass over a large checkpoint does not keep
 * it all resident. */
LB_API void lb_checkpoint_release_tensor(const lb_checkpoint *checkpoint, int64_t index);

/* Writes the checkpoint's llama.cpp metadata into a GGUF writer: architecture, general.name
 * and tokenizer; for a GGUF source its keys, less general.alignment, general.file_type,
 * general.quantization_version and lowbit.* (which a new file sets itself) but
 * lowbit.rotation.* (the weights stay rotated); for a view its base's, then the view's own. */
LB_API lb_status lb_checkpoint_write_metadata(const lb_checkpoint *checkpoint,
                                              lb_gguf_writer *writer);

/* Writes the checkpoint as a llama.cpp-loadable GGUF: architecture metadata, tokenizer,
 * general.file_type, and every tensor converted to out_type (F32, F16 or BF16; 1-d tensors
 * stay F32 as llama.cpp keeps norms). Through a temp file and rename. */
/* Every writer of the library (GGUF, imatrix, log-prob files) writes a temp file beside the
 * target and renames it when complete. A program that exits from a SIGINT/SIGTERM handler calls
 * this first: it removes the temp files of every write in progress. Async-signal-safe (unlink
 * only). */
LB_API void lb_atomic_file_cleanup_all_from_signal(void);

LB_API lb_status lb_checkpoint_write_gguf(const lb_checkpoint *checkpoint, const char *path,
                                          lb_type out_type);

#endif
