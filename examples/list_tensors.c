/* Example: open any supported checkpoint through the public API and print its tensors. */
#include <stdio.h>

#include "lowbit.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CHECKPOINT\n", argv[0]);
        return 2;
    }
    lb_checkpoint *checkpoint = NULL;
    lb_status status = lb_checkpoint_open(&checkpoint, argv[1], NULL);
    if (status != LB_OK) {
        fprintf(stderr, "%s\n", lb_last_error());
        return 3;
    }
    printf("%s checkpoint, architecture %s, %lld tensors\n",
           lb_checkpoint_format_name(checkpoint->format), checkpoint->hparams.arch,
           (long long)checkpoint->n_tensors);
    for (int64_t i = 0; i < checkpoint->n_tensors; i++) {
        const lb_checkpoint_tensor *t = &checkpoint->tensors[i];
        const lb_type_info *type = lb_type_get((uint32_t)t->type);
        printf("%-28s %-5s", t->name, type ? type->name : "?");
        for (int d = 0; d < t->n_dims; d++)
            printf(" %lld", (long long)t->ne[d]);
        printf("\n");
    }
    lb_checkpoint_close(&checkpoint);
    return 0;
}
