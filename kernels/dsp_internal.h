/* Run-time dispatch of the hot kernels: one table of function pointers, filled with the C
 * references first and then upgraded per CPU feature (as dav1d's *_dsp_init does). */
#ifndef LB_KERNELS_DSP_INTERNAL_H
#define LB_KERNELS_DSP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/tensor.h"
#include "kernels/kernels.h"

/* Type ids index the table; GGUF ids of the supported types are all below this. */
#define LB_DSP_TYPE_SLOTS 32

/* Activation rows per vec_dot_x4 call. */
#define LB_DOT_X4_ROWS 4

/* out[j] = vec_dot(w, a + j * a_stride, n) for j < LB_DOT_X4_ROWS. */
typedef void (*lb_vec_dot_x4_fn)(const void *w, const void *a, size_t a_stride, int64_t n,
                                 float *out);

typedef struct lb_kernels_dsp {
    /* vec_dot[t]: dot of a weight row of type t with an activation row already quantized to
     * t's vec_dot_type (see lb_kernels_type); NULL where t has none. */
    lb_vec_dot_fn vec_dot[LB_DSP_TYPE_SLOTS];
    /* vec_dot_x4[t]: the dots of one weight row with LB_DOT_X4_ROWS activation rows at once,
     * each bit-identical to vec_dot[t] on that row (the weight codes are decoded once for
     * all of them); NULL where only vec_dot exists. lb_kernels_gemm uses it when it can. */
    lb_vec_dot_x4_fn vec_dot_x4[LB_DSP_TYPE_SLOTS];
    /* quantize_activations[t]: f32 activations -> t (Q8_0 and Q8_K; F32 is a copy). */
    lb_quantize_row_fn quantize_activations[LB_DSP_TYPE_SLOTS];
    unsigned cpu_flags; /* the LB_CPU_* features the table was filled for */
} lb_kernels_dsp;

/* Fills `dsp` for the given LB_CPU_* flags: C references, then every variant the flags allow. */
void lb_kernels_dsp_init(lb_kernels_dsp *dsp, unsigned cpu_flags);

/* The table for this CPU (lb_cpu_flags()), filled once; thread-safe. */
const lb_kernels_dsp *lb_kernels_dsp_get(void);

/* Per-ISA upgrades, each in its own file compiled with its own flags (kernels/x86/); they
 * only replace the entries they implement. Built where the compiler targets x86-64
 * (LB_HAVE_X86_KERNELS). */
void lb_kernels_dsp_init_avx2(lb_kernels_dsp *dsp);
/* Built for AArch64 (LB_HAVE_ARM_KERNELS): NEON vec_dot for every packed type, Q8_0 / Q8_K
 * activation quantizers. */
void lb_kernels_dsp_init_neon(lb_kernels_dsp *dsp);

/* lb_gemm over the given table (NULL: this CPU's, lb_kernels_dsp_get()). */
lb_status lb_kernels_gemm(const lb_kernels_dsp *dsp, lb_type weight_type, const void *weights,
                          int64_t rows, int64_t cols, const float *x, int64_t batch, float *y,
                          void *workspace);

#endif
