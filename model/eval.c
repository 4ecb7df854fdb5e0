/* Perplexity (llama.cpp's protocol), and KL divergence against saved log-probabilities. */
#include "model/eval.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "common/hash.h"
#include "formats/logprob_file_internal.h"

lb_eval_settings lb_eval_default_settings(void)
{
    lb_eval_settings settings = {.ctx = 512, .max_windows = 0, .bos_id = 1};
    return settings;
}

/* ---- the math of one position ---- */

/* log-softmax in double; returns the most likely token (lowest id on ties). */
static int32_t log_softmax(const float *logits, int64_t n, double *out)
{
    double max = logits[0];
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        if (logits[i] > max) {
            max = logits[i];
            best = (int32_t)i;
        }
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    double log_sum = max + log(sum);
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)logits[i] - log_sum;
    return best;
}

/* KL(base || current) over decoded distributions. Both sides go through the same 16-bit
 * encoding, so a model compared with its own file gives exactly 0. */
static double kl_divergence(const double *base, const double *current, int64_t n_vocab)
{
    double kl = 0.0;
    for (int64_t i = 0; i < n_vocab; i++)
        kl += exp(base[i]) * (base[i] - current[i]);
    return kl;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean and standard error of the mean, summed in index order (thread-count independent). */
static void mean_and_stderr(const double *v, int64_t n, double *mean, double *stderr_of_mean)
{
    double sum = 0.0, sum_sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += v[i];
        sum_sq += v[i] * v[i];
    }
    *mean = n ? sum / (double)n : 0.0;
    double var = n ? sum_sq / (double)n - *mean * *mean : 0.0;
    *stderr_of_mean = n > 1 && var > 0 ? sqrt(var / (double)(n - 1)) : 0.0;
}

/* ---- windows ---- */

/* Which tokens one evaluation runs and which positions it scores. */
typedef struct eval_plan {
    int64_t ctx, n_vocab, n_windows;
    int64_t first;       /* first scored position of a window: ctx / 2 */
    int64_t per_window;  /* scored positions per window: ctx - 1 - first */
    int64_t n_positions; /* n_windows * per_window */
    int32_t bos_id;      /* replaces each window's first token; -1: kept */
    bool kld;            /* compare with a base file */
    bool records;        /* encode positions (to save them, or to compare) */
} eval_plan;

static lb_status plan_windows(const lb_model *model, int64_t n_tokens,
                              const lb_eval_settings *settings, eval_plan *plan)
{
    const int64_t ctx = settings->ctx;
    if (ctx < 4 || ctx % 2 != 0)
        return lb_error(LB_ERR_INVALID_ARG, "--ctx must be an even number >= 4, not %lld",
                        (long long)ctx);
    int64_t n_windows = n_tokens / ctx;
    if (settings->max_windows > 0 && settings->max_windows < n_windows)
        n_windows = settings->max_windows;
    if (n_windows < 1)
        return lb_error(LB_ERR_BAD_INPUT,
                        "the text has %lld tokens: fewer than one window of --ctx %lld",
                        (long long)n_tokens, (long long)ctx);
    plan->ctx = ctx;
    plan->n_vocab = lb_model_hparams(model)->vocab_size;
    plan->n_windows = n_windows;
    plan->first = ctx / 2;
    plan->per_window = ctx - 1 - plan->first;
    plan->n_positions = n_windows * plan->per_window;
    plan->bos_id = settings->bos_id;
    plan->kld = settings->kld_path != NULL;
    plan->records = settings->save_logprobs_path || settings->kld_path;
    return LB_OK;
}

/* Window w of the text as the model sees it. */
static void window_tokens(const eval_plan *plan, const int32_t *tokens, int64_t w,
                          int32_t *window)
{
    memcpy(window, tokens + w * plan->ctx, (size_t)plan->ctx * sizeof *window);
    if (plan->bos_id >= 0)
        window[0] = plan->bos_id;
}

/* FNV-1a over exactly the token windows that are scored, BOS substitution included: what a
 * saved file must match. */
static uint64_t hash_windows(const eval_plan *plan, const int32_t *tokens, int32_t *window)
{
    uint64_t hash = LB_FNV1A64_OFFSET;
    for (int64_t w = 0; w < plan->n_windows; w++) {
        window_tokens(plan, tokens, w, window);
        hash = lb_fnv1a64_update_u32le(hash, (const uint32_t *)window, (size_t)plan->ctx);
    }
    return hash;
}

/* ---- buffers ---- */

/* Everything one evaluation allocates; the per-thread workspace is allocated once, not per
 * position inside the parallel loop. */
typedef struct eval_buffers {
    int32_t *window;      /* [ctx] */
    float *logits;        /* [ctx][n_vocab] */
    double *nll;          /* [n_positions]: -log p(target) */
    double *base_nll;     /* [n_positions], with KLD */
    double *kld;          /* [n_positions], with KLD */
    uint8_t *top1_agree;  /* [n_positions], with KLD */
    uint8_t *records;     /* [per_window][record_bytes]: one window's encoded positions */
    uint64_t record_bytes;
    int n_threads;        /* threads of the scoring loop */
    int64_t stride;       /* doubles of one thread's workspace */
    double *workspace;    /* [n_threads][stride]: log p, then (KLD) the decoded base */
} eval_buffers;

static void buffers_free(eval_buffers *b)
{
    lb_free(b->window);
    lb_free(b->logits);
    lb_free(b->nll);
    lb_free(b->base_nll);
    lb_free(b->kld);
    lb_free(b->top1_agree);
    lb_free(b->records);
    lb_free(b->workspace);
    memset(b, 0, sizeof *b);
}

static lb_status buffers_alloc(eval_buffers *b, const eval_plan *plan)
{
    const size_t n_positions = (size_t)plan->n_positions, n_vocab = (size_t)plan->n_vocab;
    memset(b, 0, sizeof *b);
    b->record_bytes = lb_logprob_record_bytes(plan->n_vocab);
    b->n_threads = omp_get_max_threads();
    b->stride = (plan->kld ? 2 : 1) * plan->n_vocab;
    b->window = lb_malloc((size_t)plan->ctx * sizeof *b->window);
    b->logits = lb_malloc((size_t)plan->ctx * n_vocab * sizeof *b->logits);
    b->nll = lb_malloc(n_positions * sizeof *b->nll);
    b->workspace = lb_malloc((size_t)b->n_threads * (size_t)b->stride * sizeof *b->workspace);
    if (plan->kld) {
        b->base_nll = lb_malloc(n_positions * sizeof *b->base_nll);
        b->kld = lb_malloc(n_positions * sizeof *b->kld);
        b->top1_agree = lb_malloc(n_positions);
    }
    if (plan->records)
        b->records = lb_malloc((size_t)plan->per_window * (size_t)b->record_bytes);
    if (!b->window || !b->logits || !b->nll || !b->workspace ||
        (plan->kld && (!b->base_nll || !b->kld || !b->top1_agree)) ||
        (plan->records && !b->records)) {
        buffers_free(b);
        return lb_nomem("out of memory for evaluation buffers");
    }
    return LB_OK;
}

/* ---- scoring ---- */

/* Scores position j of the window at `index` overall: its NLL, its record, and against the
 * base its KL divergence, base NLL and top-1 agreement. lp holds n_vocab doubles (2 * n_vocab
 * with a base). Writes only slot `index` / record j, so positions run in any order. */
static void score_position(const eval_plan *plan, eval_buffers *b,
                           const lb_logprob_file *base, const float *logits, int32_t target,
                           int64_t j, int64_t index, double *lp)
{
    const int64_t n_vocab = plan->n_vocab;
    int32_t top1 = log_softmax(logits, n_vocab, lp);
    b->nll[index] = -lp[target];
    if (!plan->records)
        return;
    uint8_t *record = b->records + (size_t)j * b->record_bytes;
    lb_logprob_encode(lp, n_vocab, target, top1, record);
    if (!plan->kld)
        return;
    /* KL over what both files hold: the decoded current record against the decoded base. */
    const uint8_t *base_record = lb_logprob_record(base, index);
    double *base_lp = lp + n_vocab;
    lb_logprob_decode(record, n_vocab, lp);
    lb_logprob_decode(base_record, n_vocab, base_lp);
    b->kld[index] = kl_divergence(base_lp, lp, n_vocab);
    lb_logprob_position saved = lb_logprob_position_of(base_record);
    b->base_nll[index] = -saved.target_logprob;
    b->top1_agree[index] = saved.top1 == (uint32_t)top1;
}

/* Runs window w through the model and scores its positions, in parallel; the sums over them
 * are taken later in index order, so nothing depends on the thread count. */
static lb_status score_window(const lb_model *model, lb_model_state *state,
                              const eval_plan *plan, eval_buffers *b,
                              const lb_logprob_file *base, const int32_t *tokens, int64_t w,
                              double *forward_seconds)
{
    window_tokens(plan, tokens, w, b->window);
    double start = omp_get_wtime();
    lb_status status =
        lb_model_forward(model, state, b->window, plan->ctx, 0, b->logits, false);
    if (status != LB_OK)
        return status;
    *forward_seconds += omp_get_wtime() - start;
#pragma omp parallel num_threads(b->n_threads)
    {
        double *lp = b->workspace + (size_t)omp_get_thread_num() * (size_t)b->stride;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < plan->per_window; j++) {
            int64_t pos = plan->first + j;
            score_position(plan, b, base, b->logits + (size_t)pos * (size_t)plan->n_vocab,
                           b->window[pos + 1], j, w * plan->per_window + j, lp);
        }
    }
    return LB_OK;
}

/* ---- results ---- */

static void summarize_ppl(const eval_plan *plan, const eval_buffers *b, lb_eval_result *result)
{
    result->windows = plan->n_windows;
    result->tokens = plan->n_positions;
    result->prefill_tokens_per_second =
        result->forward_seconds > 0
            ? (double)(plan->n_windows * plan->ctx) / result->forward_seconds
            : 0.0;
    double mean, se;
    mean_and_stderr(b->nll, plan->n_positions, &mean, &se);
    result->ppl = exp(mean);
    result->ppl_stderr = result->ppl * se;
}

/* The base's PPL, the log PPL ratio, KLD statistics and top-1 agreement. Reuses base_nll for
 * the per-position differences and sorts kld. */
static void summarize_kld(const eval_plan *plan, eval_buffers *b, lb_eval_result *result)
{
    const int64_t n = plan->n_positions;
    double mean, se;
    result->has_kld = true;
    mean_and_stderr(b->base_nll, n, &mean, &se);
    result->base_ppl = exp(mean);
    result->base_ppl_stderr = result->base_ppl * se;
    for (int64_t i = 0; i < n; i++)
        b->base_nll[i] = b->nll[i] - b->base_nll[i];
    mean_and_stderr(b->base_nll, n, &result->ln_ppl_ratio, &result->ln_ppl_ratio_stderr);
    mean_and_stderr(b->kld, n, &result->kld, &result->kld_stderr);
    int64_t agree = 0;
    for (int64_t i = 0; i < n; i++)
        agree += b->top1_agree[i];
    result->top1 = (double)agree / (double)n;
    qsort(b->kld, (size_t)n, sizeof *b->kld, compare_doubles);
    result->kld_max = b->kld[n - 1];
    result->kld_p99 = b->kld[(int64_t)floor(0.99 * (double)(n - 1))];
}

lb_status lb_eval_perplexity(const lb_model *model, const int32_t *tokens, int64_t n_tokens,
                             const lb_eval_settings *settings, lb_eval_result *result)
{
    memset(result, 0, sizeof *result);
    eval_plan plan;
    eval_buffers b;
    /* NaN/Inf weights would give a NaN PPL that compares false with any limit: name them
     * before any work instead. */
    lb_status status = lb_model_check_finite(model);
    if (status != LB_OK || (status = plan_windows(model, n_tokens, settings, &plan)) != LB_OK ||
        (status = buffers_alloc(&b, &plan)) != LB_OK)
        return status;
    lb_model_state *state = NULL;
    lb_logprob_file *base = NULL;
    lb_logprob_writer *out = NULL;
    lb_logprob_header header = {plan.n_vocab, plan.ctx, plan.n_windows, plan.n_positions, 0};
    if ((status = lb_model_state_create(&state, model, plan.ctx, plan.ctx)) != LB_OK)
        goto done;
    header.tokens_hash = hash_windows(&plan, tokens, b.window);
    if (plan.kld && (status = lb_logprob_open(&base, settings->kld_path, &header)) != LB_OK)
        goto done;
    if (settings->save_logprobs_path &&
        (status = lb_logprob_writer_open(&out, settings->save_logprobs_path, &header)) != LB_OK)
        goto done;

    for (int64_t w = 0; w < plan.n_windows; w++) {
        status = score_window(model, state, &plan, &b, base, tokens, w,
                              &result->forward_seconds);
        if (status != LB_OK)
            goto done;
        if (out)
            status = lb_logprob_writer_append(out, b.records, plan.per_window);
        if (settings->progress)
            settings->progress(settings->progress_context, w + 1, plan.n_windows);
        if (status != LB_OK)
            goto done;
    }
    summarize_ppl(&plan, &b, result);
    if (plan.kld)
        summarize_kld(&plan, &b, result);
    if (out)
        status = lb_logprob_writer_commit(&out);
done:
    lb_logprob_writer_abort(&out);
    lb_logprob_close(&base);
    lb_model_state_free(&state);
    buffers_free(&b);
    return status;
}
