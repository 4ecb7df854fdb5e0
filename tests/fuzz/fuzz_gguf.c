/* Fuzz target: the GGUF reader from memory, then every metadata value and tensor byte. */
#include "formats/gguf.h"
#include "fuzz_target.h"

static uint64_t touch_value(const lb_gguf *g, const lb_gguf_kv *kv)
{
    const lb_gguf_value *v = &kv->value;
    uint64_t sum = strlen(kv->key);
    int64_t i64;
    double f64;
    bool b;
    lb_gguf_string s;
    const lb_gguf_value *arr;
    /* The typed getters must agree with the lookup and never crash on any type. */
    FUZZ_ASSERT(lb_gguf_find_kv(g, kv->key) != NULL);
    sum += lb_gguf_get_int(g, kv->key, &i64) == LB_OK;
    sum += lb_gguf_get_float(g, kv->key, &f64) == LB_OK;
    sum += lb_gguf_get_bool(g, kv->key, &b) == LB_OK;
    sum += lb_gguf_get_string(g, kv->key, &s) == LB_OK;
    switch (v->type) {
    case LB_GGUF_STRING:
        for (uint64_t j = 0; j < v->v.str.len; j++)
            sum += (uint8_t)v->v.str.data[j];
        break;
    case LB_GGUF_ARRAY:
        sum += lb_gguf_get_array(g, kv->key, v->v.arr.elem_type, &arr) == LB_OK;
        if (v->v.arr.elem_type == LB_GGUF_STRING) {
            for (uint64_t j = 0; j < v->v.arr.count; j++)
                for (uint64_t k = 0; k < v->v.arr.strings[j].len; k++)
                    sum += (uint8_t)v->v.arr.strings[j].data[k];
        } else {
            for (uint64_t j = 0; j < v->v.arr.count; j++)
                sum += (uint64_t)lb_gguf_array_int(v, j) + (lb_gguf_array_float(v, j) > 0.0);
        }
        break;
    default:
        sum += lb_gguf_type_size(v->type);
        break;
    }
    sum += strlen(lb_gguf_type_name(v->type));
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_gguf *g = NULL;
    lb_status status = lb_gguf_open_memory(&g, "fuzz", data, size);
    if (status != LB_OK) {
        FUZZ_ASSERT(g == NULL);
        fuzz_check_failure(status);
        return 0;
    }
    uint64_t sum = 0;
    for (int64_t i = 0; i < g->n_kv; i++)
        sum += touch_value(g, &g->kv[i]);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        FUZZ_ASSERT(t->n_dims >= 1 && t->n_dims <= LB_MAX_DIMS);
        FUZZ_ASSERT(lb_gguf_find_tensor(g, t->name) == i);
        const uint8_t *bytes = t->data;
        for (uint64_t j = 0; j < t->nbytes; j++)
            sum += bytes[j];
    }
    fuzz_consume(sum);
    lb_gguf_close(&g);
    FUZZ_ASSERT(g == NULL);
    return 0;
}
