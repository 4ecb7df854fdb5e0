/* Perplexity (llama.cpp's protocol), the saved log-probability file, and KL divergence. */
#include "model/eval.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "formats/atomic_file.h"
#include "formats/mapped_file.h"

/* Log-probability file ("LBLOGP01", little-endian), written by --save-logits and read by
 * --kld. Header: magic[8], u32 n_vocab, u32 ctx, u32 n_windows, u32 reserved (0),
 * u64 n_positions, u64 tokens_hash (FNV-1a of the evaluated windows' token ids). Then per
 * scored position: u32 target token, u32 most likely token, f64 log p(target) (exact, so that
 * the base PPL is reproduced to the last digit), f32 min and f32 max log-probability, and
 * u16 q[n_vocab] with log p_i = min + q_i * (max - min) / 65535.
 * Sixteen bits per entry keeps a 32k-vocabulary run at 64 KB a position, as llama.cpp's own
 * KL-divergence file does. */
#define LOGPROB_MAGIC "LBLOGP01"
#define LOGPROB_HEADER_BYTES 40
#define LOGPROB_RECORD_FIXED_BYTES 24

lb_eval_settings lb_eval_default_settings(void)
{
    lb_eval_settings settings = {.ctx = 512, .max_windows = 0, .bos_id = 1};
    return settings;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_f64(uint8_t *p, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    put_u64(p, u);
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = get_u64(p);
    double f;
    memcpy(&f, &u, 8);
    return f;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(p, u);
}

static float get_f32(const uint8_t *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One scored position's distribution, encoded as in the file. */
static void encode_position(const double *logprobs, int64_t n_vocab, int32_t target,
                            int32_t top1, uint8_t *record)
{
    double lo = logprobs[0], hi = logprobs[0];
    for (int64_t i = 1; i < n_vocab; i++) {
        lo = logprobs[i] < lo ? logprobs[i] : lo;
        hi = logprobs[i] > hi ? logprobs[i] : hi;
    }
    /* The bounds are stored as f32; quantize against the stored values so decoding is exact. */
    float lo32 = (float)lo, hi32 = (float)hi;
    double range = (double)hi32 - (double)lo32;
    put_u32(record, (uint32_t)target);
    put_u32(record + 4, (uint32_t)top1);
    put_f64(record + 8, logprobs[target]);
    put_f32(record + 16, lo32);
    put_f32(record + 20, hi32);
    uint8_t *q = record + LOGPROB_RECORD_FIXED_BYTES;
    for (int64_t i = 0; i < n_vocab; i++) {
        double scaled = range > 0 ? (logprobs[i] - lo32) / range * 65535.0 : 0.0;
        long code = lrint(scaled < 0 ? 0 : scaled > 65535 ? 65535 : scaled);
        q[2 * i] = (uint8_t)(code & 0xff);
        q[2 * i + 1] = (uint8_t)(code >> 8);
    }
}

static double decoded_logprob(const uint8_t *record, int64_t i)
{
    double lo = get_f32(record + 16), hi = get_f32(record + 20);
    const uint8_t *q = record + LOGPROB_RECORD_FIXED_BYTES;
    unsigned code = (unsigned)q[2 * i] | (unsigned)q[2 * i + 1] << 8;
    return lo + (double)code * ((hi - lo) / 65535.0);
}

/* KL(base || current) over the decoded distributions. Both sides go through the same 16-bit
 * encoding, so a model compared with its own file gives exactly 0. */
static double kl_divergence(const uint8_t *base, const uint8_t *current, int64_t n_vocab)
{
    double kl = 0.0;
    for (int64_t i = 0; i < n_vocab; i++) {
        double lb = decoded_logprob(base, i), lc = decoded_logprob(current, i);
        kl += exp(lb) * (lb - lc);
    }
    return kl;
}

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

typedef struct base_logprobs {
    lb_mapped_file *file;
    uint64_t record_bytes;
} base_logprobs;

static lb_status open_base(base_logprobs *base, const char *path, int64_t n_vocab, int64_t ctx,
                           int64_t n_windows, int64_t n_positions, uint64_t hash)
{
    lb_status status = lb_mapped_file_open(&base->file, path);
    if (status != LB_OK)
        return status;
    const uint8_t *d = base->file->data;
    uint64_t size = base->file->size;
    if (size < LOGPROB_HEADER_BYTES || memcmp(d, LOGPROB_MAGIC, 8) != 0)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: magic at offset 0: not a lowbit logits file",
                        path);
    if (get_u32(d + 8) != (uint32_t)n_vocab || get_u32(d + 12) != (uint32_t)ctx ||
        get_u32(d + 16) != (uint32_t)n_windows || get_u64(d + 24) != (uint64_t)n_positions ||
        get_u64(d + 32) != hash)
        return lb_error(LB_ERR_BAD_INPUT,
                        "%s: header at offset 8: saved for vocab %u, ctx %u, %u windows, %llu "
                        "positions and other tokens; this run has vocab %lld, ctx %lld, %lld "
                        "windows (use the same text, --ctx and --chunks)",
                        path, get_u32(d + 8), get_u32(d + 12), get_u32(d + 16),
                        (unsigned long long)get_u64(d + 24), (long long)n_vocab, (long long)ctx,
                        (long long)n_windows);
    base->record_bytes = LOGPROB_RECORD_FIXED_BYTES + 2 * (uint64_t)n_vocab;
    if (size != LOGPROB_HEADER_BYTES + base->record_bytes * (uint64_t)n_positions)
        return lb_error(LB_ERR_CORRUPT_FILE, "%s: size at offset %llu: expected %llu bytes",
                        path, (unsigned long long)size,
                        (unsigned long long)(LOGPROB_HEADER_BYTES +
                                             base->record_bytes * (uint64_t)n_positions));
    for (int64_t p = 0; p < n_positions; p++) {
        const uint8_t *r = d + LOGPROB_HEADER_BYTES + base->record_bytes * (uint64_t)p;
        if (get_u32(r) >= (uint64_t)n_vocab || get_u32(r + 4) >= (uint64_t)n_vocab)
            return lb_error(LB_ERR_CORRUPT_FILE, "%s: record %lld at offset %llu: token id out "
                            "of range", path, (long long)p,
                            (unsigned long long)(r - d));
    }
    return LB_OK;
}

lb_status lb_eval_perplexity(const lb_model *model, const int32_t *tokens, int64_t n_tokens,
                             const lb_eval_settings *settings, lb_eval_result *result)
{
    memset(result, 0, sizeof *result);
    const int64_t ctx = settings->ctx, n_vocab = lb_model_hparams(model)->vocab_size;
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
    const int64_t first = ctx / 2, per_window = ctx - 1 - first;
    const int64_t n_positions = n_windows * per_window;
    const uint64_t record_bytes = LOGPROB_RECORD_FIXED_BYTES + 2 * (uint64_t)n_vocab;
    const bool need_records = settings->save_logprobs_path || settings->kld_path;

    lb_status status = LB_OK;
    lb_model_state *state = NULL;
    lb_atomic_file *out = NULL;
    base_logprobs base = {0};
    int32_t *window = lb_malloc((size_t)ctx * sizeof *window);
    float *logits = lb_malloc((size_t)ctx * (size_t)n_vocab * sizeof *logits);
    double *nll = lb_malloc((size_t)n_positions * sizeof *nll);
    double *base_nll = settings->kld_path ? lb_malloc((size_t)n_positions * sizeof *nll) : NULL;
    double *kld = settings->kld_path ? lb_malloc((size_t)n_positions * sizeof *kld) : NULL;
    uint8_t *top1_agree = settings->kld_path ? lb_malloc((size_t)n_positions) : NULL;
    uint8_t *records = need_records ? lb_malloc((size_t)per_window * record_bytes) : NULL;
    if (!window || !logits || !nll || (settings->kld_path && (!base_nll || !kld || !top1_agree)) ||
        (need_records && !records)) {
        status = lb_error(LB_ERR_NOMEM, "out of memory for evaluation buffers");
        goto done;
    }
    if ((status = lb_model_state_create(&state, model, ctx, ctx)) != LB_OK)
        goto done;

    /* The hash covers exactly the token windows that are scored, BOS substitution included. */
    uint64_t hash = LB_FNV1A64_OFFSET;
    for (int64_t w = 0; w < n_windows; w++) {
        memcpy(window, tokens + w * ctx, (size_t)ctx * sizeof *window);
        if (settings->bos_id >= 0)
            window[0] = settings->bos_id;
        hash = lb_fnv1a64_update_u32le(hash, (const uint32_t *)window, (size_t)ctx);
    }
    if (settings->kld_path &&
        (status = open_base(&base, settings->kld_path, n_vocab, ctx, n_windows, n_positions,
                            hash)) != LB_OK)
        goto done;
    if (settings->save_logprobs_path) {
        if ((status = lb_atomic_file_open(&out, settings->save_logprobs_path)) != LB_OK)
            goto done;
        uint8_t header[LOGPROB_HEADER_BYTES] = {0};
        memcpy(header, LOGPROB_MAGIC, 8);
        put_u32(header + 8, (uint32_t)n_vocab);
        put_u32(header + 12, (uint32_t)ctx);
        put_u32(header + 16, (uint32_t)n_windows);
        put_u64(header + 24, (uint64_t)n_positions);
        put_u64(header + 32, hash);
        if ((status = lb_atomic_file_write(out, header, sizeof header)) != LB_OK)
            goto done;
    }

    for (int64_t w = 0; w < n_windows && status == LB_OK; w++) {
        memcpy(window, tokens + w * ctx, (size_t)ctx * sizeof *window);
        if (settings->bos_id >= 0)
            window[0] = settings->bos_id;
        double start = omp_get_wtime();
        if ((status = lb_model_forward(model, state, window, ctx, 0, logits, false)) != LB_OK)
            break;
        result->forward_seconds += omp_get_wtime() - start;
        int failed = 0;
        /* Positions are independent; each writes only its own slots, so the sums below (in
         * index order) do not depend on the thread count. */
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < per_window; j++) {
            int64_t pos = first + j, index = w * per_window + j;
            int32_t target = window[pos + 1];
            double *lp = lb_malloc((size_t)n_vocab * sizeof *lp);
            if (!lp) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            int32_t top1 = log_softmax(logits + (size_t)pos * (size_t)n_vocab, n_vocab, lp);
            nll[index] = -lp[target];
            if (need_records) {
                uint8_t *record = records + (size_t)j * record_bytes;
                encode_position(lp, n_vocab, target, top1, record);
                if (settings->kld_path) {
                    const uint8_t *b = base.file->data + LOGPROB_HEADER_BYTES +
                                       base.record_bytes * (uint64_t)index;
                    kld[index] = kl_divergence(b, record, n_vocab);
                    base_nll[index] = -get_f64(b + 8);
                    top1_agree[index] = get_u32(b + 4) == (uint32_t)top1;
                }
            }
            lb_free(lp);
        }
        if (failed) {
            status = lb_error(LB_ERR_NOMEM, "out of memory for log-probabilities");
            break;
        }
        if (out)
            status = lb_atomic_file_write(out, records, (size_t)per_window * record_bytes);
        if (settings->progress)
            settings->progress(settings->progress_context, w + 1, n_windows);
    }
    if (status != LB_OK)
        goto done;

    result->windows = n_windows;
    result->tokens = n_positions;
    result->prefill_tokens_per_second =
        result->forward_seconds > 0 ? (double)(n_windows * ctx) / result->forward_seconds : 0.0;
    double mean, se;
    mean_and_stderr(nll, n_positions, &mean, &se);
    result->ppl = exp(mean);
    result->ppl_stderr = result->ppl * se;
    if (settings->kld_path) {
        result->has_kld = true;
        mean_and_stderr(base_nll, n_positions, &mean, &se);
        result->base_ppl = exp(mean);
        result->base_ppl_stderr = result->base_ppl * se;
        for (int64_t i = 0; i < n_positions; i++)
            base_nll[i] = nll[i] - base_nll[i];
        mean_and_stderr(base_nll, n_positions, &result->ln_ppl_ratio,
                        &result->ln_ppl_ratio_stderr);
        mean_and_stderr(kld, n_positions, &result->kld, &result->kld_stderr);
        int64_t agree = 0;
        for (int64_t i = 0; i < n_positions; i++)
            agree += top1_agree[i];
        result->top1 = (double)agree / (double)n_positions;
        qsort(kld, (size_t)n_positions, sizeof *kld, compare_doubles);
        result->kld_max = kld[n_positions - 1];
        result->kld_p99 = kld[(int64_t)floor(0.99 * (double)(n_positions - 1))];
    }
    if (out)
        status = lb_atomic_file_commit(&out);
done:
    lb_atomic_file_abort(&out);
    lb_mapped_file_close(&base.file);
    lb_model_state_free(&state);
    lb_free(window);
    lb_free(logits);
    lb_free(nll);
    lb_free(base_nll);
    lb_free(kld);
    lb_free(top1_agree);
    lb_free(records);
    return status;
}
