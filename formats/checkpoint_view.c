/* Derived checkpoints: a base checkpoint's tensors (and added ones) whose rows a callback
 * computes; see checkpoint_view_internal.h. */
#include "formats/checkpoint_view_internal.h"

#include <string.h>

#include "common/alloc_internal.h"

typedef struct view_source {
    lb_checkpoint *base;
    bool owns_base;
    lb_checkpoint_view_ops ops;
    void *context;
    int64_t capacity; /* of view->tensors */
} view_source;

static lb_status set_tensor(lb_checkpoint *view, lb_checkpoint_tensor *t, const char *name,
                            int n_dims, const int64_t *ne)
{
    memset(t, 0, sizeof *t);
    t->name = lb_strdup(name);
    t->source_name = lb_strdup(name);
    if (!t->name || !t->source_name) {
        lb_free(t->name);
        lb_free(t->source_name);
        t->name = t->source_name = NULL;
        return lb_nomem("%s: out of memory for the name of view tensor '%s'", view->path, name);
    }
    t->type = LB_TYPE_F32;
    t->n_dims = n_dims;
    for (int d = 0; d < LB_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    int64_t count = 1;
    lb_tensor_count(n_dims, t->ne, &count);
    t->nbytes = (uint64_t)count * sizeof(float);
    t->data = NULL;
    return LB_OK;
}

lb_status lb_checkpoint_view_open(lb_checkpoint **out, lb_checkpoint *base,
                                  const lb_checkpoint_view_ops *ops, void *context)
{
    *out = NULL;
    if (!base || !ops || !ops->read_rows)
        return lb_error(LB_ERR_INVALID_ARG, "checkpoint view: NULL base or read_rows");
    lb_checkpoint *view = lb_calloc(1, sizeof *view);
    view_source *src = lb_calloc(1, sizeof *src);
    if (!view || !src || !(view->path = lb_strdup(base->path))) {
        lb_free(view);
        lb_free(src);
        return lb_nomem("%s: out of memory for a checkpoint view", base->path);
    }
    src->base = base;
    src->ops = *ops;
    src->context = context;
    src->capacity = base->n_tensors + 4;
    view->format = LB_CHECKPOINT_VIEW;
    view->source = src;
    view->hparams = base->hparams;
    view->vocab = base->vocab;
    view->tokenizer_path = base->tokenizer_path;
    view->gguf = base->gguf;
    lb_status status = LB_OK;
    view->tensors = lb_calloc((size_t)src->capacity, sizeof *view->tensors);
    if (!view->tensors)
        status = lb_nomem("%s: out of memory for the view's table of %lld tensors", base->path,
                          (long long)src->capacity);
    for (int64_t i = 0; i < base->n_tensors && status == LB_OK; i++) {
        const lb_checkpoint_tensor *t = &base->tensors[i];
        status = set_tensor(view, &view->tensors[i], t->name, t->n_dims, t->ne);
        if (status == LB_OK)
            view->n_tensors++;
    }
    if (status != LB_OK) {
        src->ops.free = NULL; /* the caller keeps its context on failure */
        lb_checkpoint_close(&view);
        return status;
    }
    *out = view;
    return LB_OK;
}

lb_status lb_checkpoint_view_add_tensor(lb_checkpoint *view, const char *name, int n_dims,
                                        const int64_t *ne, int64_t *index)
{
    if (view->format != LB_CHECKPOINT_VIEW || n_dims < 1 || n_dims > LB_MAX_DIMS)
        return lb_error(LB_ERR_INVALID_ARG, "%s: tensor '%s' cannot be added", view->path, name);
    if (lb_checkpoint_find(view, name) >= 0)
        return lb_error(LB_ERR_INVALID_ARG, "%s: the view already has a tensor '%s'",
                        view->path, name);
    view_source *src = view->source;
    if (view->n_tensors == src->capacity) {
        int64_t capacity = src->capacity * 2;
        lb_checkpoint_tensor *grown =
            lb_realloc(view->tensors, (size_t)capacity * sizeof *grown);
        if (!grown)
            return lb_nomem("%s: out of memory for the view's table of %lld tensors", view->path,
                            (long long)capacity);
        view->tensors = grown;
        src->capacity = capacity;
    }
    lb_status status = set_tensor(view, &view->tensors[view->n_tensors], name, n_dims, ne);
    if (status != LB_OK)
        return status;
    if (index)
        *index = view->n_tensors;
    view->n_tensors++;
    return LB_OK;
}

void lb_checkpoint_view_take_base(lb_checkpoint *view)
{
    ((view_source *)view->source)->owns_base = true;
}

const lb_checkpoint *lb_checkpoint_view_base(const lb_checkpoint *view)
{
    return view->format == LB_CHECKPOINT_VIEW ? ((const view_source *)view->source)->base
                                              : NULL;
}

lb_status lb_checkpoint_view_read_rows(const lb_checkpoint *view, int64_t index, int64_t row0,
                                       int64_t n_rows, float *dst)
{
    const view_source *src = view->source;
    return src->ops.read_rows(src->context, view, index, row0, n_rows, dst);
}

void lb_checkpoint_view_release(const lb_checkpoint *view, int64_t index)
{
    const view_source *src = view->source;
    if (src->ops.release)
        src->ops.release(src->context, view, index);
}

lb_status lb_checkpoint_view_write_metadata(const lb_checkpoint *view, lb_gguf_writer *writer)
{
    const view_source *src = view->source;
    lb_status status = lb_checkpoint_write_metadata(src->base, writer);
    if (status == LB_OK && src->ops.write_metadata)
        status = src->ops.write_metadata(src->context, view, writer);
    return status;
}

void lb_checkpoint_view_close_source(lb_checkpoint *view)
{
    view_source *src = view->source;
    view->vocab = NULL;
    view->tokenizer_path = NULL;
    view->gguf = NULL;
    if (!src)
        return;
    if (src->ops.free)
        src->ops.free(src->context);
    if (src->owns_base)
        lb_checkpoint_close(&src->base);
    lb_free(src);
    view->source = NULL;
}
