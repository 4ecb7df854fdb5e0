#include "common/rng.h"

void lb_rng_seed(lb_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t lb_rng_next(lb_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t lb_rng_below(lb_rng *rng, uint64_t bound)
{
    /* Rejection of the top partial range keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t v;
    do
        v = lb_rng_next(rng);
    while (v >= limit);
    return v % bound;
}

double lb_rng_unit(lb_rng *rng)
{
    return (double)(lb_rng_next(rng) >> 11) * 0x1.0p-53;
}

float lb_rng_uniform_pm1(lb_rng *rng)
{
    return (float)(lb_rng_unit(rng) * 2.0 - 1.0);
}
