/* imatrix_main: prints, makes and converts imatrix files for tests/check_imatrix_oracle.py.
 *
 *   imatrix_main dump FILE          reads FILE (either format) and prints it
 *   imatrix_main make OUT [SEED]    builds a deterministic imatrix, prints it, writes OUT
 *   imatrix_main convert IN OUT     reads IN and writes OUT
 *
 * OUT's format follows its name (".dat": legacy, else GGUF). The printout, one item a line:
 *   chunk_count N / chunk_size N / datasets N / dataset NAME (N times) / entries N, then per
 *   entry: "entry NAME N_PER_ROW N_MAT", "counts C0 C1 ...", and per matrix k
 *   "sum_sq k V..." (%.17g) and "importance k V..." (%.9g, what llama.cpp's quantize uses). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "quant/imatrix.h"

#define DEFAULT_SEED 20250701u

static void print_imatrix(const lb_imatrix *m)
{
    printf("chunk_count %lld\nchunk_size %lld\ndatasets %lld\n", (long long)m->chunk_count,
           (long long)m->chunk_size, (long long)m->n_datasets);
    for (int64_t i = 0; i < m->n_datasets; i++)
        printf("dataset %s\n", m->datasets[i]);
    printf("entries %lld\n", (long long)m->n_entries);
    for (int64_t i = 0; i < m->n_entries; i++) {
        const lb_imatrix_entry *e = &m->entries[i];
        float *imp = malloc((size_t)e->n_per_row * sizeof *imp);
        printf("entry %s %lld %lld\ncounts", e->name, (long long)e->n_per_row,
               (long long)e->n_mat);
        for (int64_t k = 0; k < e->n_mat; k++)
            printf(" %lld", (long long)e->counts[k]);
        printf("\n");
        for (int64_t k = 0; k < e->n_mat; k++) {
            printf("sum_sq %lld", (long long)k);
            for (int64_t j = 0; j < e->n_per_row; j++)
                printf(" %.17g", e->sum_sq[k * e->n_per_row + j]);
            printf("\nimportance %lld", (long long)k);
            if (imp && lb_imatrix_importance(e, k, imp) == LB_OK)
                for (int64_t j = 0; j < e->n_per_row; j++)
                    printf(" %.9g", (double)imp[j]);
            printf("\n");
        }
        free(imp);
    }
}

/* Accumulates `tokens` random inputs of width n (scaled per column, so columns differ) into
 * matrix `mat` of entry `name`, the way a calibration pass would. */
static lb_status accumulate(lb_imatrix *m, lb_rng *rng, const char *name, int64_t n,
                            int64_t n_mat, int64_t mat, int64_t tokens)
{
    double sum[64] = {0};
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t j = 0; j < n && j < 64; j++) {
            double u = lb_rng_unit(rng) - 0.5;
            double x = u * (1.0 + (double)((j * 7) % 13));
            sum[j] += x * x;
        }
    return lb_imatrix_add_matrix(m, name, n, n_mat, mat, sum, tokens);
}

/* Dense weights over two calibration chunks, stacked experts with one never routed to, and
 * a weight that saw a single token. */
static lb_status make_sample(lb_imatrix *m, uint64_t seed)
{
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    lb_status s;
    const int64_t chunk = 64;
    for (int c = 0; c < 2; c++) {
        if ((s = accumulate(m, &rng, "blk.0.attn_q.weight", 32, 1, 0, chunk)) != LB_OK ||
            (s = accumulate(m, &rng, "blk.0.attn_k.weight", 32, 1, 0, chunk)) != LB_OK ||
            (s = accumulate(m, &rng, "blk.1.ffn_down.weight", 48, 1, 0, chunk)) != LB_OK ||
            (s = accumulate(m, &rng, "blk.0.ffn_gate_exps.weight", 16, 4, 0, 37 + c)) !=
                LB_OK ||
            (s = accumulate(m, &rng, "blk.0.ffn_gate_exps.weight", 16, 4, 1, 90)) != LB_OK ||
            (s = accumulate(m, &rng, "blk.0.ffn_gate_exps.weight", 16, 4, 3, 1)) != LB_OK)
            return s;
    }
    if ((s = accumulate(m, &rng, "output.weight", 8, 1, 0, 1)) != LB_OK ||
        (s = lb_imatrix_add_dataset(m, "calib/wiki.train.raw")) != LB_OK ||
        (s = lb_imatrix_add_dataset(m, "calib/code.txt")) != LB_OK)
        return s;
    m->chunk_count = 2;
    m->chunk_size = chunk;
    return LB_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: imatrix_main dump FILE | make OUT [SEED] | convert IN OUT\n");
    return 2;
}

int main(int argc, char **argv)
{
    lb_imatrix *m = NULL;
    lb_status s;
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "dump") == 0 && argc == 3) {
        if ((s = lb_imatrix_read(&m, argv[2])) == LB_OK)
            print_imatrix(m);
    } else if (strcmp(argv[1], "make") == 0 && (argc == 3 || argc == 4)) {
        uint64_t seed = argc == 4 ? strtoull(argv[3], NULL, 0) : DEFAULT_SEED;
        if ((s = lb_imatrix_create(&m)) == LB_OK && (s = make_sample(m, seed)) == LB_OK) {
            print_imatrix(m);
            s = lb_imatrix_write(m, argv[2], lb_imatrix_format_for_path(argv[2]));
        }
    } else if (strcmp(argv[1], "convert") == 0 && argc == 4) {
        if ((s = lb_imatrix_read(&m, argv[2])) == LB_OK)
            s = lb_imatrix_write(m, argv[3], lb_imatrix_format_for_path(argv[3]));
    } else {
        return usage();
    }
    lb_imatrix_free(&m);
    if (s != LB_OK) {
        fprintf(stderr, "imatrix_main: %s: %s\n", lb_status_name(s), lb_last_error());
        return 1;
    }
    return 0;
}
