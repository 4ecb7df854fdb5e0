/* CPU feature detection for run-time kernel dispatch. */
#ifndef LB_COMMON_CPU_H
#define LB_COMMON_CPU_H

#include "common/status.h"

enum {
    LB_CPU_AVX2 = 1u << 0,     /* AVX2 + FMA + F16C (x86-64 v3) */
    LB_CPU_AVX512 = 1u << 1,   /* AVX-512 F, BW, VL, DQ (x86-64 v4) */
    LB_CPU_NEON = 1u << 2,     /* AArch64 Advanced SIMD */
};

/* The features of this CPU (and OS: AVX state must be enabled), limited by the environment
 * variable LB_CPU_MASK when set (a number: only those bits stay, e.g. 0 forces the C
 * reference; names "c", "avx2", "avx512", "neon" are accepted too). */
LB_API unsigned lb_cpu_flags(void);

#endif
