/* What every fuzz target shares: the libFuzzer entry point and an invariant check that crashes. */
#ifndef LB_TESTS_FUZZ_TARGET_H
#define LB_TESTS_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/status.h"

/* Called by libFuzzer, or by replay_main.c over a corpus. Returns 0 (libFuzzer reserves other
 * values); a broken invariant traps so that both drivers report it as a crash. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                    \
    do {                                                                                     \
        if (!(cond))                                                                         \
            __builtin_trap();                                                                \
    } while (0)

/* Readers promise a one-line message on every failure; a NUL-free line keeps logs greppable. */
static inline void fuzz_check_failure(lb_status status)
{
    FUZZ_ASSERT(status < 0 && status >= LB_ERR_BAD_INPUT);
    FUZZ_ASSERT(strchr(lb_last_error(), '\n') == NULL);
}

/* Keeps the compiler from dropping reads whose only purpose is to let ASan see them. */
static inline void fuzz_consume(uint64_t value)
{
    volatile uint64_t sink = value;
    (void)sink;
}

#endif
