/* mmap-based read-only file access. */
#include "formats/mapped_file_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc_internal.h"

const char *lb_file_kind(unsigned mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return S_ISREG(mode) ? "a regular file" : "not a file";
}

lb_status lb_mapped_file_open(lb_mapped_file **out, const char *path)
{
    *out = NULL;
    lb_mapped_file *file = lb_calloc(1, sizeof *file);
    if (!file || !(file->path = lb_strdup(path))) {
        lb_free(file);
        return lb_nomem("%s: out of memory for the file record", path);
    }
    lb_status status = LB_OK;
    /* Non-blocking, so that a FIFO without a writer is refused below instead of blocking the
     * open forever; on a regular file the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        status = lb_error(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = lb_error(LB_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        status = lb_error(LB_ERR_BAD_INPUT, "%s: not a regular file (%s)", path,
                          lb_file_kind((unsigned)st.st_mode));
        goto fail;
    }
    file->size = (uint64_t)st.st_size;
    if (file->size > 0) {
        void *map = mmap(NULL, (size_t)file->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            status = lb_error(LB_ERR_IO, "%s: cannot map %llu bytes: %s", path,
                              (unsigned long long)file->size, strerror(errno));
            goto fail;
        }
        file->data = map;
    }
    close(fd);
    *out = file;
    return LB_OK;
fail:
    if (fd >= 0)
        close(fd);
    lb_free(file->path);
    lb_free(file);
    return status;
}

void lb_mapped_file_close(lb_mapped_file **file)
{
    if (!file || !*file)
        return;
    if ((*file)->data)
        munmap((void *)(*file)->data, (size_t)(*file)->size);
    lb_free((*file)->path);
    lb_free(*file);
    *file = NULL;
}
