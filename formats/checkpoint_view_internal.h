/* A derived checkpoint: the tensors of a base checkpoint (plus added ones) whose rows a
 * callback computes, read like any checkpoint through lb_checkpoint_read_rows_f32 and written
 * through lb_checkpoint_write_metadata / lb_checkpoint_write_gguf. The rotations folded into
 * the weights (quant/rotate.c) are one. */
#ifndef LB_FORMATS_CHECKPOINT_VIEW_INTERNAL_H
#define LB_FORMATS_CHECKPOINT_VIEW_INTERNAL_H

#include "formats/checkpoint.h"

/* What a view computes. context is the view's (see lb_checkpoint_view_open). */
typedef struct lb_checkpoint_view_ops {
    /* Rows [row0, row0 + n_rows) of the view's tensor `index` as f32 into dst; the range is
     * already checked against the tensor's shape. Calls of one view come one at a time
     * (an implementation may keep a cache in its context). */
    lb_status (*read_rows)(void *context, const lb_checkpoint *view, int64_t index, int64_t row0,
                           int64_t n_rows, float *dst);
    /* Optional: tensor `index` is not needed for now (drop caches, release base pages). */
    void (*release)(void *context, const lb_checkpoint *view, int64_t index);
    /* Optional: metadata keys written after the base's (lb_checkpoint_write_metadata). */
    lb_status (*write_metadata)(void *context, const lb_checkpoint *view, lb_gguf_writer *writer);
    /* Optional: frees the context when the view is closed. */
    void (*free)(void *context);
} lb_checkpoint_view_ops;

/* Makes a view of `base`: same path (for messages), hyperparameters, vocabulary and GGUF
 * metadata (borrowed from base), and one tensor per base tensor with its name and shape,
 * type F32 and no data in memory (data NULL: rows only through lb_checkpoint_read_rows_f32).
 * The view borrows base until lb_checkpoint_view_take_base. On success the view owns context
 * (ops->free at close); on failure nothing is taken. ops is copied. */
lb_status lb_checkpoint_view_open(lb_checkpoint **out, lb_checkpoint *base,
                                  const lb_checkpoint_view_ops *ops, void *context);

/* Appends a tensor (F32, no data) to a view: its index in *index (may be NULL). */
lb_status lb_checkpoint_view_add_tensor(lb_checkpoint *view, const char *name, int n_dims,
                                        const int64_t *ne, int64_t *index);

/* The view owns its base from now on: lb_checkpoint_close(view) closes base too. */
void lb_checkpoint_view_take_base(lb_checkpoint *view);

/* The base checkpoint of a view. */
const lb_checkpoint *lb_checkpoint_view_base(const lb_checkpoint *view);

/* The dispatch of checkpoint.c / convert.c for LB_CHECKPOINT_VIEW. */
lb_status lb_checkpoint_view_read_rows(const lb_checkpoint *view, int64_t index, int64_t row0,
                                       int64_t n_rows, float *dst);
void lb_checkpoint_view_release(const lb_checkpoint *view, int64_t index);
lb_status lb_checkpoint_view_write_metadata(const lb_checkpoint *view, lb_gguf_writer *writer);
/* Frees what the view owns besides the generic lb_checkpoint fields, and clears the fields
 * it borrowed from base (vocab, tokenizer_path, gguf) so that close does not free them. */
void lb_checkpoint_view_close_source(lb_checkpoint *view);

#endif
