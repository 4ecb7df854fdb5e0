/* checkkern's inputs: seeded float rows of several shapes, packed rows written byte by byte,
 * and buffers with guard bytes or ending at an unreadable page (tests/checkkern.c). */
#ifndef LB_TESTS_CHECKKERN_INPUTS_H
#define LB_TESTS_CHECKKERN_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "common/tensor.h"

/* Values in [-1, 1) with an outlier every so often and, in some rows, a run of zeros (a
 * block whose scale is 0). */
void fill_values(float *x, int64_t n, lb_rng *rng);

/* The inputs the checks try: float rows for the quantizers (and, through the C reference
 * quantizer, for vec_dot), or packed rows written byte by byte. */
typedef enum input_kind {
    IN_RANDOM,    /* fill_values: one scale per row, outliers, sometimes a zero block */
    IN_ZERO,      /* all 0 */
    IN_CONST,     /* one value everywhere */
    IN_OUTLIER,   /* noise of 1e-3 with one value of 1e3 */
    IN_SPIKE,     /* zeros with one non-zero */
    IN_TIES,      /* +-127 at every 32nd element, the rest k + 0.5: exact rounding ties */
    IN_SPECIAL,   /* quantizers only: NaN, +-Inf, -0, subnormals, -3e38 sprinkled in */
    IN_TINY,      /* quantizers only: magnitudes below 2^-128 (scales overflow on inversion) */
    IN_HUGE,      /* quantizers only: magnitudes near FLT_MAX (f16 scales saturate) */
    IN_RAW,       /* packed rows only: random block bytes with finite scales */
    IN_EXTREME,   /* as IN_RAW with bytes 0x00, 0xff, 0x80, 0x7f only */
    IN_SATURATED, /* legacy and IQ4_NL weights: every code at its extreme (all bits set, Q8_0
                     -128) */
    IN_MIN,       /* Q8_0 activations: all -128, a code the quantizer never writes */
    IN_MAX,       /* Q8_0 activations: all +127 */
} input_kind;

/* The kinds' names, for messages. */
extern const char *const kind_names[];

/* n floats of a float kind (IN_RANDOM to IN_HUGE; the packed kinds give IN_RANDOM's). */
void fill_kind(float *x, int64_t n, input_kind kind, lb_rng *rng);

/* A row of `type` from an input of the given kind: the C reference quantizer of the type on
 * floats (importance NULL), then for IN_SATURATED / IN_MIN / IN_MAX codes overwritten; or, for
 * IN_RAW / IN_EXTREME, bytes. scratch holds n floats. */
void make_row(lb_type type, input_kind kind, int64_t n, float *scratch, uint8_t *row,
              lb_rng *rng);

/* The bytes of a block of `t` that hold codes (not scales), as [start, end); false for the
 * float types. */
bool code_bytes(lb_type t, size_t *start, size_t *end);

/* Where a buffer's bytes sit in its mapping. GUARDED: `misalign` bytes past a 64-byte
 * boundary with guard bytes either side (a write outside shows). AT_PAGE_END: ending where a
 * PROT_NONE page begins, guard bytes before (a read or write past the end faults; the start's
 * alignment is whatever the size gives). */
typedef enum layout { GUARDED, AT_PAGE_END } layout;

typedef struct guarded {
    uint8_t *base; /* the mapping: `usable` bytes, then one PROT_NONE page */
    uint8_t *data;
    size_t size, usable;
} guarded;

/* Maps `size` bytes laid out as `where` says (misalign: GUARDED only); exits on failure. */
void guarded_alloc(guarded *g, size_t size, size_t misalign, layout where);
/* Whether every byte outside the data still holds its guard value. */
bool guarded_intact(const guarded *g);
/* Unmaps; takes a freed or never-mapped (zeroed) buffer. */
void guarded_free(guarded *g);

#endif
