/* CPU feature detection (cpuid + xgetbv on x86-64, always-on NEON on AArch64). */
#include "common/cpu.h"

#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static unsigned detect(void)
{
    unsigned eax, ebx, ecx, edx, flags = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    bool osxsave = ecx & (1u << 27), fma = ecx & (1u << 12), f16c = ecx & (1u << 29);
    if (!osxsave)
        return 0;
    unsigned long long xcr0 = read_xcr0();
    bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    bool avx2 = ebx & (1u << 5);
    bool avx512 = (ebx & (1u << 16)) && (ebx & (1u << 17)) && (ebx & (1u << 30)) &&
                  (ebx & (1u << 31));
    if (ymm && avx2 && fma && f16c)
        flags |= LB_CPU_AVX2;
    if ((flags & LB_CPU_AVX2) && zmm && avx512)
        flags |= LB_CPU_AVX512;
    return flags;
}
#elif defined(__aarch64__)
static unsigned detect(void)
{
    return LB_CPU_NEON;
}
#else
static unsigned detect(void)
{
    return 0;
}
#endif

static unsigned parse_mask(const char *text)
{
    char *end;
    unsigned long value = strtoul(text, &end, 0);
    if (*text && *end == '\0')
        return (unsigned)value;
    if (strcmp(text, "c") == 0)
        return 0;
    if (strcmp(text, "avx2") == 0)
        return LB_CPU_AVX2;
    if (strcmp(text, "avx512") == 0)
        return LB_CPU_AVX2 | LB_CPU_AVX512;
    if (strcmp(text, "neon") == 0)
        return LB_CPU_NEON;
    return ~0u;
}

unsigned lb_cpu_flags(void)
{
    unsigned flags = detect();
    const char *mask = getenv("LB_CPU_MASK");
    if (mask)
        flags &= parse_mask(mask);
    return flags;
}
