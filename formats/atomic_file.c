/* Temp-file-and-rename writer, with a signal-safe list of temp files to remove on SIGINT. */
#include "formats/atomic_file_internal.h"
#include "formats/checkpoint.h" /* lb_atomic_file_cleanup_all_from_signal */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc_internal.h"

#define WRITE_BUFFER_BYTES (1u << 20)
#define MAX_OPEN_TEMP_FILES 16

struct lb_atomic_file {
    char *target;
    char *temp_path;
    int fd;
    int slot; /* index in open_temp_paths, or -1 */
    uint64_t offset;
    size_t buffered;
    uint8_t *buffer;
};

/* Temp paths a signal handler may unlink. A slot is published by setting its flag after the
 * path is written, and retired by clearing the flag first. */
static char open_temp_paths[MAX_OPEN_TEMP_FILES][PATH_MAX];
static volatile sig_atomic_t open_temp_used[MAX_OPEN_TEMP_FILES];

static int register_temp_path(const char *path)
{
    if (strlen(path) >= PATH_MAX)
        return -1;
    for (int i = 0; i < MAX_OPEN_TEMP_FILES; i++) {
        if (!open_temp_used[i]) {
            strcpy(open_temp_paths[i], path);
            open_temp_used[i] = 1;
            return i;
        }
    }
    return -1;
}

static void unregister_temp_path(int slot)
{
    if (slot >= 0)
        open_temp_used[slot] = 0;
}

void lb_atomic_file_cleanup_all_from_signal(void)
{
    for (int i = 0; i < MAX_OPEN_TEMP_FILES; i++)
        if (open_temp_used[i])
            unlink(open_temp_paths[i]);
}

static void free_file(lb_atomic_file *file)
{
    lb_free(file->target);
    lb_free(file->temp_path);
    lb_free(file->buffer);
    lb_free(file);
}

lb_status lb_atomic_file_open(lb_atomic_file **out, const char *target)
{
    *out = NULL;
    lb_atomic_file *file = lb_calloc(1, sizeof *file);
    size_t temp_len = strlen(target) + sizeof ".tmp.XXXXXX";
    if (!file)
        return lb_nomem("%s: out of memory for the writer", target);
    file->fd = -1;
    file->slot = -1;
    file->target = lb_strdup(target);
    file->temp_path = lb_malloc(temp_len);
    file->buffer = lb_malloc(WRITE_BUFFER_BYTES);
    if (!file->target || !file->temp_path || !file->buffer) {
        free_file(file);
        return lb_nomem("%s: out of memory for the temp path and write buffer", target);
    }
    /* The temp path is published for the signal handler before the file is created (then
     * O_EXCL): a signal between creating and publishing would leave the file behind, and
     * blocking signals in this thread would not stop another thread from taking one. A signal
     * between publishing and creating just unlinks a path that does not exist yet. */
    static unsigned counter;
    uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL) ^
                    (uint64_t)(uintptr_t)file;
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100 && file->fd < 0; attempt++) {
        uint64_t z = seed + (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) *
                                0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
        char suffix[7];
        for (int i = 0; i < 6; i++, z /= 62)
            suffix[i] = alphabet[z % 62];
        suffix[6] = '\0';
        snprintf(file->temp_path, temp_len, "%s.tmp.%s", target, suffix);
        file->slot = register_temp_path(file->temp_path);
        file->fd = open(file->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (file->fd < 0) {
            int err = errno;
            unregister_temp_path(file->slot);
            file->slot = -1;
            if (err != EEXIST) {
                lb_status status = lb_error(LB_ERR_IO, "%s: cannot create temporary file %s: %s",
                                            target, file->temp_path, strerror(err));
                free_file(file);
                return status;
            }
        }
    }
    if (file->fd < 0) {
        lb_status status = lb_error(LB_ERR_IO, "%s: cannot create a temporary file beside it",
                                    target);
        free_file(file);
        return status;
    }
    *out = file;
    return LB_OK;
}

static lb_status write_all(lb_atomic_file *file, const uint8_t *data, size_t bytes)
{
    while (bytes > 0) {
        ssize_t n = write(file->fd, data, bytes);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return lb_error(LB_ERR_IO, "%s: write failed at offset %llu: %s", file->temp_path,
                            (unsigned long long)file->offset, strerror(errno));
        }
        data += n;
        bytes -= (size_t)n;
    }
    return LB_OK;
}

static lb_status flush_buffer(lb_atomic_file *file)
{
    lb_status status = write_all(file, file->buffer, file->buffered);
    file->buffered = 0;
    return status;
}

lb_status lb_atomic_file_write(lb_atomic_file *file, const void *data, size_t bytes)
{
    const uint8_t *src = data;
    while (bytes > 0) {
        if (file->buffered == WRITE_BUFFER_BYTES) {
            lb_status status = flush_buffer(file);
            if (status != LB_OK)
                return status;
        }
        size_t room = WRITE_BUFFER_BYTES - file->buffered;
        size_t chunk = bytes < room ? bytes : room;
        memcpy(file->buffer + file->buffered, src, chunk);
        file->buffered += chunk;
        file->offset += chunk;
        src += chunk;
        bytes -= chunk;
    }
    return LB_OK;
}

lb_status lb_atomic_file_write_zeros(lb_atomic_file *file, size_t bytes)
{
    static const uint8_t zeros[256];
    while (bytes > 0) {
        size_t chunk = bytes < sizeof zeros ? bytes : sizeof zeros;
        lb_status status = lb_atomic_file_write(file, zeros, chunk);
        if (status != LB_OK)
            return status;
        bytes -= chunk;
    }
    return LB_OK;
}

uint64_t lb_atomic_file_offset(const lb_atomic_file *file)
{
    return file->offset;
}

static void sync_parent_directory(const char *target)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(target, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t len = (size_t)(slash - target);
        if (len >= sizeof dir)
            return;
        memcpy(dir, target, len ? len : 1);
        dir[len ? len : 1] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: the rename itself already happened */
        close(fd);
    }
}

lb_status lb_atomic_file_commit(lb_atomic_file **filep)
{
    lb_atomic_file *file = *filep;
    lb_status status = flush_buffer(file);
    if (status == LB_OK && fsync(file->fd) != 0)
        status = lb_error(LB_ERR_IO, "%s: fsync failed: %s", file->temp_path, strerror(errno));
    if (close(file->fd) != 0 && status == LB_OK)
        status = lb_error(LB_ERR_IO, "%s: close failed: %s", file->temp_path, strerror(errno));
    file->fd = -1;
    if (status == LB_OK && rename(file->temp_path, file->target) != 0)
        status = lb_error(LB_ERR_IO, "%s: cannot rename %s over it: %s", file->target,
                          file->temp_path, strerror(errno));
    if (status != LB_OK) {
        unregister_temp_path(file->slot);
        unlink(file->temp_path);
    } else {
        unregister_temp_path(file->slot);
        sync_parent_directory(file->target);
    }
    free_file(file);
    *filep = NULL;
    return status;
}

void lb_atomic_file_abort(lb_atomic_file **filep)
{
    if (!filep || !*filep)
        return;
    lb_atomic_file *file = *filep;
    unregister_temp_path(file->slot);
    if (file->fd >= 0)
        close(file->fd);
    unlink(file->temp_path);
    free_file(file);
    *filep = NULL;
}
