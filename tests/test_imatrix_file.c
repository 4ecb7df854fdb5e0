/* formats/imatrix_file.h's data structure on its own: insertion at the sorted place, lookup,
 * dataset names, bad arguments and failing allocations that leave it unchanged. (Both file
 * formats and accumulation are tested in test_imatrix.c, malformed files in
 * test_imatrix_malformed.c.) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc_internal.h"
#include "formats/imatrix_file.h"
#include "test_util.h"

static bool sorted_unique(const lb_imatrix *m)
{
    for (int64_t i = 1; i < m->n_entries; i++)
        if (strcmp(m->entries[i - 1].name, m->entries[i].name) >= 0)
            return false;
    return true;
}

static void test_insert(void)
{
    lb_imatrix *m = NULL;
    lb_imatrix_entry *e = NULL, *again = NULL;
    bool created = false;
    CHECK_OK(lb_imatrix_create(&m));
    if (!m)
        return;
    static const char *const names[] = {"blk.1.ffn_up.weight", "blk.0.attn_q.weight",
                                        "output.weight", "blk.0.attn_k.weight"};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(lb_imatrix_insert(m, names[i], 3 + i, 1 + i % 2, &e, &created));
        CHECK(created && e && strcmp(e->name, names[i]) == 0 && e->n_per_row == 3 + i &&
              e->n_mat == 1 + i % 2);
        for (int64_t j = 0; e && j < e->n_per_row * e->n_mat; j++)
            CHECK(e->sum_sq[j] == 0.0);
        for (int64_t j = 0; e && j < e->n_mat; j++)
            CHECK(e->counts[j] == 0);
    }
    CHECK(m->n_entries == 4 && sorted_unique(m));
    CHECK(strcmp(m->entries[0].name, "blk.0.attn_k.weight") == 0);
    for (int i = 0; i < 4; i++)
        CHECK(lb_imatrix_find(m, names[i]) != NULL &&
              strcmp(lb_imatrix_find(m, names[i])->name, names[i]) == 0);
    CHECK(lb_imatrix_find(m, "blk.0.attn_v.weight") == NULL);
    CHECK(lb_imatrix_find(m, NULL) == NULL && lb_imatrix_find(NULL, "x") == NULL);

    /* An existing entry comes back as it is, whatever shape is asked for. */
    CHECK_OK(lb_imatrix_insert(m, "output.weight", 100, 7, &again, &created));
    CHECK(!created && again == lb_imatrix_find(m, "output.weight") && again->n_per_row == 5 &&
          again->n_mat == 1 && m->n_entries == 4);

    /* Bad arguments leave m as it was. */
    CHECK(lb_imatrix_insert(m, "", 1, 1, &e, &created) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_insert(m, "x", 0, 1, &e, &created) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_insert(m, "x", 1, 0, &e, &created) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_insert(m, NULL, 1, 1, &e, &created) == LB_ERR_INVALID_ARG);
    CHECK(lb_imatrix_insert(m, "x", INT64_MAX, 2, &e, &created) == LB_ERR_NOMEM);
    CHECK(m->n_entries == 4 && lb_imatrix_find(m, "x") == NULL);

    /* Allocation k fails for k = 0.. until the insert succeeds: NOMEM and nothing added. */
    int64_t k;
    for (k = 0; k < 100; k++) {
        lb_alloc_fail_after(k);
        lb_status s = lb_imatrix_insert(m, "blk.0.attn_output.weight", 8, 2, &e, &created);
        lb_alloc_fail_after(-1);
        if (s == LB_OK)
            break;
        CHECK(s == LB_ERR_NOMEM && m->n_entries == 4 && sorted_unique(m));
    }
    CHECK(k > 0 && k < 100 && m->n_entries == 5 && sorted_unique(m));
    lb_imatrix_free(&m);
    CHECK(m == NULL);
    lb_imatrix_free(&m);
}

static void test_datasets(void)
{
    lb_imatrix *m = NULL;
    CHECK_OK(lb_imatrix_create(&m));
    if (!m)
        return;
    CHECK(m->n_entries == 0 && m->n_datasets == 0 && m->chunk_count == 0 && m->chunk_size == 0);
    CHECK_OK(lb_imatrix_append_dataset(m, "wiki.train.raw and more", 14));
    CHECK_OK(lb_imatrix_append_dataset(m, "code.txt", 8));
    CHECK(m->n_datasets == 2 && strcmp(m->datasets[0], "wiki.train.raw") == 0 &&
          strcmp(m->datasets[1], "code.txt") == 0);
    lb_alloc_fail_after(0);
    CHECK(lb_imatrix_append_dataset(m, "x", 1) == LB_ERR_NOMEM);
    lb_alloc_fail_after(-1);
    CHECK(m->n_datasets == 2);
    lb_imatrix_free(&m);
}

int main(void)
{
    test_insert();
    test_datasets();
    CHECK(lb_imatrix_format_for_path("a.DAT") == LB_IMATRIX_LEGACY &&
          lb_imatrix_format_for_path("a.dat.gguf") == LB_IMATRIX_GGUF &&
          lb_imatrix_format_for_path(NULL) == LB_IMATRIX_GGUF);
    return test_finish("test_imatrix_file");
}
