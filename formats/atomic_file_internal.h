/* Output files that appear whole or not at all: write a temp file beside the target, fsync,
 * rename over the target. */
#ifndef LB_FORMATS_ATOMIC_FILE_INTERNAL_H
#define LB_FORMATS_ATOMIC_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct lb_atomic_file lb_atomic_file;

/* Creates "<target>.tmp.XXXXXX" in the target's directory. Errors: LB_ERR_IO. */
lb_status lb_atomic_file_open(lb_atomic_file **out, const char *target);

/* Appends bytes (buffered). Errors: LB_ERR_IO naming the temp file. */
lb_status lb_atomic_file_write(lb_atomic_file *file, const void *data, size_t bytes);

/* Appends `bytes` zero bytes. */
lb_status lb_atomic_file_write_zeros(lb_atomic_file *file, size_t bytes);

/* Bytes written so far. */
uint64_t lb_atomic_file_offset(const lb_atomic_file *file);

/* Flushes, fsyncs, renames over the target, fsyncs the directory and frees `*file`.
 * On failure the temp file is removed and the target is untouched. */
lb_status lb_atomic_file_commit(lb_atomic_file **file);

/* Removes the temp file and frees; takes NULL and clears the pointer. */
void lb_atomic_file_abort(lb_atomic_file **file);


#endif
