/* Log-probability files (LBLOGP01): encoding exactness, writer/reader round trip, the header
 * comparison a --kld run makes, writes that fail without leaving a file, the malformed corpus. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/logprob_file_internal.h"
#include "test_util.h"

#define N_VOCAB 37
#define N_POSITIONS 5
#define MIN_CORPUS_FILES 15

static char tmp_dir[] = "/tmp/lowbit-test-logprob-XXXXXX";

/* A log-softmax of made-up logits in double, as eval computes it; returns the argmax. */
static int32_t distribution(int64_t p, double *lp)
{
    double logits[N_VOCAB], max = -INFINITY, sum = 0.0;
    int32_t best = 0;
    for (int i = 0; i < N_VOCAB; i++) {
        logits[i] = sin(0.7 * (double)(i + 1) * (double)(p + 3)) * 4.0 - 0.01 * i;
        if (logits[i] > max) {
            max = logits[i];
            best = i;
        }
    }
    for (int i = 0; i < N_VOCAB; i++)
        sum += exp(logits[i] - max);
    for (int i = 0; i < N_VOCAB; i++)
        lp[i] = logits[i] - (max + log(sum));
    return best;
}

static int count_files(void)
{
    int n = 0;
    DIR *d = opendir(tmp_dir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Encoded values decode to within half a code step of the input, the bounds exactly; the
 * target's log-probability is stored exactly. */
static void test_encode(void)
{
    double lp[N_VOCAB], back[N_VOCAB];
    uint8_t record[24 + 2 * N_VOCAB];
    CHECK(lb_logprob_record_bytes(N_VOCAB) == sizeof record);
    for (int64_t p = 0; p < N_POSITIONS; p++) {
        int32_t top1 = distribution(p, lp), target = (int32_t)(p * 5 % N_VOCAB);
        double lo = lp[0], hi = lp[0];
        for (int i = 1; i < N_VOCAB; i++) {
            lo = fmin(lo, lp[i]);
            hi = fmax(hi, lp[i]);
        }
        lb_logprob_encode(lp, N_VOCAB, target, top1, record);
        lb_logprob_decode(record, N_VOCAB, back);
        lb_logprob_position pos = lb_logprob_position_of(record);
        CHECK(pos.target == (uint32_t)target && pos.top1 == (uint32_t)top1);
        CHECK(pos.target_logprob == lp[target]);
        /* Half a code step, and the rounding of the bounds to f32. */
        const double step = ((double)(float)hi - (double)(float)lo) / 65535.0;
        const double slack = 0.5 * step * 1.001 + 1e-7 * (fabs(lo) + fabs(hi));
        for (int i = 0; i < N_VOCAB; i++)
            CHECK(fabs(back[i] - lp[i]) <= slack);
    }
    /* A flat distribution has range 0: every code 0, every value the bound. */
    for (int i = 0; i < N_VOCAB; i++)
        lp[i] = -log((double)N_VOCAB);
    lb_logprob_encode(lp, N_VOCAB, 0, 0, record);
    lb_logprob_decode(record, N_VOCAB, back);
    for (int i = 0; i < N_VOCAB; i++)
        CHECK(back[i] == (double)(float)lp[0]);
}

static lb_logprob_header sample_header(void)
{
    lb_logprob_header h = {N_VOCAB, 12, 1, N_POSITIONS, 0xfeedfacecafebeefull};
    return h;
}

static lb_status write_sample(const char *path, int64_t records)
{
    const lb_logprob_header h = sample_header();
    uint8_t record[24 + 2 * N_VOCAB];
    double lp[N_VOCAB];
    lb_logprob_writer *w = NULL;
    lb_status status = lb_logprob_writer_open(&w, path, &h);
    for (int64_t p = 0; p < records && status == LB_OK; p++) {
        int32_t top1 = distribution(p, lp);
        lb_logprob_encode(lp, N_VOCAB, (int32_t)(p % N_VOCAB), top1, record);
        status = lb_logprob_writer_append(w, record, 1);
    }
    if (status == LB_OK)
        return lb_logprob_writer_commit(&w);
    lb_logprob_writer_abort(&w);
    return status;
}

static void test_round_trip(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/run.logits", tmp_dir);
    CHECK_OK(write_sample(path, N_POSITIONS));
    const lb_logprob_header h = sample_header();
    lb_logprob_file *f = NULL;
    CHECK_OK(lb_logprob_open(&f, path, &h));
    if (!f)
        return;
    CHECK(f->header.n_vocab == N_VOCAB && f->header.ctx == 12 && f->header.n_windows == 1 &&
          f->header.n_positions == N_POSITIONS && f->header.tokens_hash == h.tokens_hash);
    double lp[N_VOCAB], back[N_VOCAB], again[N_VOCAB];
    uint8_t record[24 + 2 * N_VOCAB];
    for (int64_t p = 0; p < N_POSITIONS; p++) {
        int32_t top1 = distribution(p, lp);
        lb_logprob_encode(lp, N_VOCAB, (int32_t)(p % N_VOCAB), top1, record);
        CHECK(memcmp(lb_logprob_record(f, p), record, sizeof record) == 0);
        lb_logprob_decode(lb_logprob_record(f, p), N_VOCAB, back);
        lb_logprob_decode(record, N_VOCAB, again);
        CHECK(memcmp(back, again, sizeof back) == 0);
    }
    lb_logprob_close(&f);
    CHECK(f == NULL);
    lb_logprob_close(&f);

    /* Another run: the message names the file, the header offset, and both sets of values. */
    lb_logprob_header other = h;
    other.ctx = 64;
    CHECK(lb_logprob_open(&f, path, &other) == LB_ERR_BAD_INPUT && f == NULL);
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s: header at offset 8: saved for vocab %d, ctx 12, 1 windows, %d positions and "
             "other tokens; this run has vocab %d, ctx 64, 1 windows (use the same text, --ctx "
             "and --chunks)",
             path, N_VOCAB, N_POSITIONS, N_VOCAB);
    CHECK(strcmp(lb_last_error(), expected) == 0);
    other = h;
    other.tokens_hash++;
    CHECK(lb_logprob_open(&f, path, &other) == LB_ERR_BAD_INPUT && f == NULL);
    CHECK(lb_logprob_open(&f, path, NULL) == LB_OK && f != NULL);
    lb_logprob_close(&f);
    unlink(path);
}

/* A writer that does not get every record, or gets too many, publishes nothing. */
static void test_write_failures(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/short.logits", tmp_dir);
    CHECK(write_sample(path, N_POSITIONS - 1) == LB_ERR_INVALID_ARG);
    CHECK(access(path, F_OK) != 0);
    CHECK(write_sample(path, N_POSITIONS + 1) == LB_ERR_INVALID_ARG);
    CHECK(access(path, F_OK) != 0);
    lb_logprob_header bad = sample_header();
    bad.n_vocab = 0;
    lb_logprob_writer *w = NULL;
    CHECK(lb_logprob_writer_open(&w, path, &bad) == LB_ERR_INVALID_ARG && w == NULL);
    bad = sample_header();
    bad.ctx = (int64_t)UINT32_MAX + 1;
    CHECK(lb_logprob_writer_open(&w, path, &bad) == LB_ERR_INVALID_ARG && w == NULL);
    snprintf(path, sizeof path, "%s/no/such/dir.logits", tmp_dir);
    bad = sample_header();
    CHECK(lb_logprob_writer_open(&w, path, &bad) == LB_ERR_IO && w == NULL);
    CHECK(count_files() == 0);
}

/* Every malformed file is a corrupt file with a one-line message naming it and an offset;
 * every seed opens. */
static void test_corpus(void)
{
    char *names[64], dir[512], path[1024];
    size_t n = test_list_corpus("tests/malformed/logprob", ".logits", names, 64, dir, sizeof dir);
    CHECK(n >= MIN_CORPUS_FILES);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        lb_logprob_file *f = NULL;
        lb_status status = lb_logprob_open(&f, path, NULL);
        const char *msg = lb_last_error();
        if (status != LB_ERR_CORRUPT_FILE || f || strchr(msg, '\n') || !strstr(msg, path) ||
            !strstr(msg, "offset")) {
            fprintf(stderr, "%s: status %d, message: %s\n", names[i], (int)status, msg);
            test_failures++;
        }
        lb_logprob_close(&f);
        free(names[i]);
    }
    n = test_list_corpus("tests/fuzz/corpus/logprob", ".logits", names, 64, dir, sizeof dir);
    CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        lb_logprob_file *f = NULL;
        CHECK_OK(lb_logprob_open(&f, path, NULL));
        lb_logprob_close(&f);
        free(names[i]);
    }
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_encode();
    test_round_trip();
    test_write_failures();
    test_corpus();
    rmdir(tmp_dir);
    return test_finish("test_logprob");
}
