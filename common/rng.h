/* The one seeded random generator of the tree (splitmix64): the same seed gives the same
 * sequence on every machine and compiler, so tests, benchmarks and random rotations are
 * reproducible. Not for cryptography. */
#ifndef LB_COMMON_RNG_H
#define LB_COMMON_RNG_H

#include <stdint.h>

#include "common/status.h"

typedef struct lb_rng {
    uint64_t state;
} lb_rng;

LB_API void lb_rng_seed(lb_rng *rng, uint64_t seed);
LB_API uint64_t lb_rng_next(lb_rng *rng);
/* Uniform in [0, bound), bound > 0, without modulo bias. */
LB_API uint64_t lb_rng_below(lb_rng *rng, uint64_t bound);
/* Uniform in [0, 1) with 53 random bits: (next >> 11) * 2^-53. */
LB_API double lb_rng_unit(lb_rng *rng);
/* Uniform in [-1, 1): 2 * unit - 1 (exact in double), rounded to float. */
LB_API float lb_rng_uniform_pm1(lb_rng *rng);

#endif
