/* The kernel dispatch table: C references from the type registry, upgraded per CPU feature. */
#include "kernels/dsp_internal.h"

#include <pthread.h>
#include <string.h>

#include "common/cpu.h"

void lb_kernels_dsp_init(lb_kernels_dsp *dsp, unsigned cpu_flags)
{
    memset(dsp, 0, sizeof *dsp);
    dsp->cpu_flags = cpu_flags;
    for (uint32_t t = 0; t < LB_DSP_TYPE_SLOTS; t++) {
        const lb_kernel_type *k = lb_kernels_type((lb_type)t);
        if (!k)
            continue;
        dsp->vec_dot[t] = k->vec_dot;
        /* Only the activation types get a quantizer; the registry's F32 quantizer is a copy. */
        if (t == LB_TYPE_Q8_0 || t == LB_TYPE_Q8_K || t == LB_TYPE_F32)
            dsp->quantize_activations[t] = k->quantize_row;
    }
#ifdef LB_HAVE_X86_KERNELS
    if (cpu_flags & LB_CPU_AVX2)
        lb_kernels_dsp_init_avx2(dsp);
#endif
#ifdef LB_HAVE_ARM_KERNELS
    if (cpu_flags & LB_CPU_NEON)
        lb_kernels_dsp_init_neon(dsp);
#endif
}

static lb_kernels_dsp global_dsp;
static pthread_once_t global_dsp_once = PTHREAD_ONCE_INIT;

static void init_global_dsp(void)
{
    lb_kernels_dsp_init(&global_dsp, lb_cpu_flags());
}

const lb_kernels_dsp *lb_kernels_dsp_get(void)
{
    pthread_once(&global_dsp_once, init_global_dsp);
    return &global_dsp;
}
