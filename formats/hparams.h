/* Architecture hyperparameters of a llama-family checkpoint, whatever format it came from. */
#ifndef LB_FORMATS_HPARAMS_H
#define LB_FORMATS_HPARAMS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct lb_hparams {
    char arch[16];          /* "llama" (llama, mistral and llama2.c map here) or "qwen2" */
    int64_t dim;            /* embedding length */
    int64_t hidden_dim;     /* feed-forward length */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    int64_t head_dim;       /* usually dim / n_heads */
    int64_t vocab_size;
    int64_t context_length;
    double rope_theta;
    double rms_eps;
    bool tied_embeddings;   /* output matrix shared with the token embedding */
} lb_hparams;

#endif
