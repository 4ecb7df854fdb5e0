/* Minimal assertion helpers shared by lowbit's C tests (no outside test library). */
#ifndef LB_TESTS_TEST_UTIL_H
#define LB_TESTS_TEST_UTIL_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/status.h"

static int test_failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
            test_failures++;                                                            \
        }                                                                               \
    } while (0)

/* Checks that an lb_status expression is LB_OK; prints the library's message if not. */
#define CHECK_OK(expr)                                                                  \
    do {                                                                                \
        lb_status check_status_ = (expr);                                               \
        if (check_status_ != LB_OK) {                                                   \
            fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", __FILE__, __LINE__,     \
                    #expr, (int)check_status_, lb_status_name(check_status_),           \
                    lb_last_error());                                                   \
            test_failures++;                                                            \
        }                                                                               \
    } while (0)

/* Path of a file under ../shared (or $LB_SHARED_DIR), in a static buffer per call site. */
static inline const char *test_shared_path(char *buffer, size_t size, const char *relative)
{
    const char *dir = getenv("LB_SHARED_DIR");
    snprintf(buffer, size, "%s/%s", dir ? dir : "../shared", relative);
    return buffer;
}

/* Path of a file in the source tree (or $LB_SOURCE_DIR). */
static inline const char *test_source_path(char *buffer, size_t size, const char *relative)
{
    const char *dir = getenv("LB_SOURCE_DIR");
    snprintf(buffer, size, "%s/%s", dir ? dir : ".", relative);
    return buffer;
}

static inline int test_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files ending in `suffix` of source directory `relative` (e.g.
 * "tests/malformed/gguf") in name order: up to `capacity` strdup'ed names (the caller frees
 * them) and the directory's path in dir. Counts a failure when the directory cannot be read. */
static inline size_t test_list_corpus(const char *relative, const char *suffix, char **names,
                                      size_t capacity, char *dir, size_t dir_size)
{
    size_t n = 0, suffix_len = strlen(suffix);
    test_source_path(dir, dir_size, relative);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s (set LB_SOURCE_DIR)\n", dir);
        test_failures++;
        return 0;
    }
    for (struct dirent *e; (e = readdir(d)) && n < capacity;) {
        size_t len = strlen(e->d_name);
        if (len > suffix_len && strcmp(e->d_name + len - suffix_len, suffix) == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], test_compare_names);
    return n;
}

/* Seeded test data comes from common/rng.h's lb_rng (lb_rng_seed, lb_rng_next, lb_rng_unit,
 * lb_rng_uniform_pm1); these are the distributions more than one test draws. */

/* Standard normal by Box-Muller in double; u1 = (k + 1/2) * 2^-53 is never 0. */
static inline double test_rng_normal(lb_rng *rng)
{
    double u1 = ((double)(lb_rng_next(rng) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(lb_rng_next(rng) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Standard normal by Box-Muller, rounded to float; u + 1e-300 is never 0. A second variant
 * because the quantizer tests' inputs (and their pinned results) were drawn with it. */
static inline float test_rng_normal_f(lb_rng *rng)
{
    double u = lb_rng_unit(rng) + 1e-300, v = lb_rng_unit(rng);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* Prints the verdict; returns the process exit code. */
static inline int test_finish(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
