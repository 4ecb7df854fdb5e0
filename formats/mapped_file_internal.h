/* Read-only memory mapping of an input file. */
#ifndef LB_FORMATS_MAPPED_FILE_INTERNAL_H
#define LB_FORMATS_MAPPED_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct lb_mapped_file {
    char *path;          /* as given to open; used in error messages */
    const uint8_t *data; /* size bytes, read-only; NULL when size is 0 */
    uint64_t size;
} lb_mapped_file;

/* Maps `path` read-only. Errors: LB_ERR_IO (cannot open or map, errno text in the message),
 * LB_ERR_BAD_INPUT (not a regular file: a directory, FIFO or device, refused without blocking
 * or reading it), LB_ERR_NOMEM. */
lb_status lb_mapped_file_open(lb_mapped_file **out, const char *path);

/* "a directory", "a FIFO", ... for a stat st_mode, in messages. */
const char *lb_file_kind(unsigned mode);

/* Unmaps and frees; takes NULL and clears the pointer. */
void lb_mapped_file_close(lb_mapped_file **file);

#endif
