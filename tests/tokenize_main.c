/* Test driver: prints lowbit's token ids for a text file, for check_tokenizer_oracle.py. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "formats/hf_internal.h"
#include "formats/llama2c_internal.h"
#include "formats/spm_model_internal.h"
#include "model/tokenizer.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            char *grown = realloc(data, (cap = cap ? 2 * cap : 1 << 20) + 1);
            if (!grown) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = grown;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return data;
}

static int encode_print(const lb_tokenizer *t, const char *text, size_t len, bool bos)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    lb_status s = lb_tokenizer_encode(t, text, len, bos, &ids, &n);
    if (s != LB_OK) {
        fprintf(stderr, "tokenize: %s\n", lb_last_error());
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
    lb_free(ids);
    return 0;
}

int main(int argc, char **argv)
{
    bool bos = false, lines = false, timing = false;
    int arg = 1;
    for (; arg < argc && argv[arg][0] == '-' && argv[arg][1] == '-'; arg++) {
        if (!strcmp(argv[arg], "--bos"))
            bos = true;
        else if (!strcmp(argv[arg], "--lines"))
            lines = true;
        else if (!strcmp(argv[arg], "--time"))
            timing = true;
        else
            break;
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: tokenize_main [--bos] [--lines] [--time] VOCAB TEXT\n"
                        "  VOCAB: tokenizer.model, llama2.c tokenizer.bin, or tokenizer.json\n"
                        "  prints the ids of the whole text on one line, or with --lines the ids\n"
                        "  of each line (without its newline) on a line of its own\n");
        return 2;
    }
    const char *vocab_path = argv[arg], *text_path = argv[arg + 1];
    lb_vocab *vocab = NULL;
    lb_status s = ends_with(vocab_path, ".model") ? lb_spm_model_load(&vocab, vocab_path)
                : ends_with(vocab_path, ".bin")   ? lb_llama2c_tokenizer_load(&vocab, vocab_path, 0)
                                                  : lb_hf_tokenizer_load(&vocab, vocab_path);
    lb_tokenizer *t = NULL;
    if (s == LB_OK)
        s = lb_tokenizer_create(&t, vocab);
    if (s != LB_OK) {
        fprintf(stderr, "tokenize: %s\n", lb_last_error());
        lb_vocab_free(&vocab);
        return 1;
    }
    size_t len = 0;
    char *text = read_all(text_path, &len);
    int rc = 0;
    if (!text) {
        fprintf(stderr, "tokenize: cannot read %s\n", text_path);
        rc = 1;
    } else if (lines) {
        for (size_t start = 0; rc == 0 && start < len;) {
            const char *nl = memchr(text + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - text) : len;
            rc = encode_print(t, text + start, end - start, bos);
            start = end + 1;
        }
    } else {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = encode_print(t, text, len, bos);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (timing)
            fprintf(stderr, "encoded %zu bytes in %.3f s (with printing)\n", len,
                    (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    free(text);
    lb_tokenizer_free(&t);
    lb_vocab_free(&vocab);
    return rc;
}
