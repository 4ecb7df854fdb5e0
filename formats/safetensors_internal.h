/* safetensors reader: single files and sharded checkpoints (model.safetensors.index.json). */
#ifndef LB_FORMATS_SAFETENSORS_INTERNAL_H
#define LB_FORMATS_SAFETENSORS_INTERNAL_H

#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "formats/mapped_file_internal.h"

typedef struct lb_safetensors_tensor {
    char *name;              /* as in the file, e.g. "model.layers.0.self_attn.q_proj.weight" */
    lb_type type;            /* F32, F16 or BF16 */
    int n_dims;              /* 1..4 (0-d scalars are stored as 1-d of length 1) */
    int64_t ne[LB_MAX_DIMS]; /* GGUF order: ne[0] is the LAST safetensors dimension */
    uint64_t nbytes;
    const void *data;        /* into the mapped shard; not necessarily aligned to the type */
    int shard;               /* index into files */
} lb_safetensors_tensor;

typedef struct lb_safetensors {
    int n_files;
    lb_mapped_file **files;
    int64_t n_tensors;
    lb_safetensors_tensor *tensors; /* in file order, shard by shard */
    int64_t *by_name;        /* private: tensor indices sorted by name, for lb_safetensors_find */
} lb_safetensors;

/* Opens `path`: a .safetensors file, a model.safetensors.index.json (every shard it names,
 * relative to its directory), or a directory holding either. Validates the 8-byte header
 * length, the JSON header (via jansson), each tensor's dtype, shape and data_offsets against
 * the file, overlapping or out-of-range data, duplicate names across shards, and that the
 * index's weight_map agrees with the shards. dtypes other than F32/F16/BF16 are
 * LB_ERR_UNSUPPORTED naming the tensor and dtype. "__metadata__" is skipped. */
lb_status lb_safetensors_open(lb_safetensors **out, const char *path);

/* Parses one in-memory safetensors file (fuzzing, tests); the buffer must outlive the result.
 * The result has n_files 0 and files NULL (every tensor's shard is 0). */
lb_status lb_safetensors_open_memory(lb_safetensors **out, const char *name,
                                            const void *data, uint64_t size);

/* Index of the tensor called `name`, or -1. */
int64_t lb_safetensors_find(const lb_safetensors *st, const char *name);

/* Takes NULL and clears the pointer. */
void lb_safetensors_close(lb_safetensors **st);

#endif
