/* Perplexity with llama.cpp's protocol, saved log-probabilities, and KL divergence against them. */
#ifndef LB_MODEL_EVAL_H
#define LB_MODEL_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "model/model.h"

typedef struct lb_eval_settings {
    int64_t ctx;                   /* window length in tokens; default 512, at least 4 */
    int64_t max_windows;           /* 0: every full window of the text */
    int32_t bos_id;                /* replaces the first token of each window; -1: keep it (as
                                    * llama.cpp does when the vocabulary adds no BOS: pass
                                    * lb_checkpoint_text_bos) */
    const char *save_logprobs_path; /* write the scored positions' log-probabilities here */
    const char *kld_path;          /* compare with log-probabilities saved earlier */
    /* Called after each window (may be NULL). */
    void (*progress)(void *context, int64_t windows_done, int64_t windows_total);
    void *progress_context;
} lb_eval_settings;

typedef struct lb_eval_result {
    int64_t windows;        /* windows evaluated */
    int64_t tokens;         /* scored tokens: windows * (ctx/2 - 1) */
    double ppl, ppl_stderr; /* exp(mean NLL); PPL * sqrt(var(NLL) / (tokens - 1)) */
    double forward_seconds; /* wall time spent in the forward passes */
    double prefill_tokens_per_second; /* windows * ctx / forward_seconds */
    /* Only with kld_path: */
    bool has_kld;
    double base_ppl, base_ppl_stderr;   /* of the model that saved the file */
    double ln_ppl_ratio, ln_ppl_ratio_stderr; /* mean(NLL - NLL_base) and its standard error */
    double kld, kld_stderr; /* mean KL(base || this) per token and its standard error */
    double kld_p99, kld_max;
    double top1;            /* fraction of positions whose most likely token agrees */
} lb_eval_result;

LB_API lb_eval_settings lb_eval_default_settings(void);

/* Scores `tokens` (the whole text, tokenized once, with BOS in front when the vocabulary adds
 * one) as llama.cpp's perplexity tool does: consecutive non-overlapping windows of ctx tokens (a
 * trailing partial window is dropped), the first token of each replaced by bos_id (unless -1),
 * and the logits at positions ctx/2 .. ctx-2 of each window scored against the next token.
 * LB_ERR_NUMERIC (before any work) when a weight holds NaN or Inf (lb_model_check_finite).
 * LB_ERR_BAD_INPUT when the text holds no full window. With kld_path, the file must come
 * from the same tokens, ctx and vocabulary (LB_ERR_BAD_INPUT otherwise; LB_ERR_CORRUPT_FILE for a record holding a non-finite or
 * positive log-probability). */
LB_API lb_status lb_eval_perplexity(const lb_model *model, const int32_t *tokens,
                                    int64_t n_tokens, const lb_eval_settings *settings,
                                    lb_eval_result *result);

#endif
