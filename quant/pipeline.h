/* The layer-sequential quantizer: a checkpoint in, a packed GGUF file out. Block i is
 * calibrated on the outputs of the already quantized blocks 0..i-1 (H = Σ x xᵀ of each linear
 * layer's input), its matrices are rounded (GPTQ, or RTN with an optional imatrix), its
 * quantized outputs feed block i+1. Packed tensors are handed to the GGUF writer as it reaches
 * them, so only one block's results are held at a time. */
#ifndef LB_QUANT_PIPELINE_H
#define LB_QUANT_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "formats/checkpoint.h"
#include "model/model.h"
#include "quant/gptq.h"
#include "quant/imatrix.h"
#include "quant/mixture.h"

typedef enum lb_quant_method {
    LB_QUANT_RTN,  /* the kernels' quantizer, importance from the imatrix when one is given */
    LB_QUANT_GPTQ, /* needs calibration tokens */
} lb_quant_method;

/* What happened to one tensor, for the per-layer report. */
typedef struct lb_quantize_tensor_report {
    const char *name;
    lb_type type;
    const char *method;   /* "gptq", "rtn", "rtn+imatrix" or "copy" (float types) */
    int64_t rows, cols;
    double rel_rtn;       /* tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) of RTN, NaN when not measured */
    double rel_gptq;      /* the same for GPTQ, NaN when not GPTQ */
    const lb_gptq_report *gptq; /* details of a GPTQ run, else NULL */
    double seconds;
} lb_quantize_tensor_report;

typedef struct lb_quantize_params {
    lb_mixture mixture;
    lb_quant_method method;
    /* Calibration (GPTQ): the tokenized text, without BOS. Windows of seqlen tokens start with
     * BOS when the vocabulary adds one (lb_checkpoint_text_bos) and take the rest as text tokens
     * from a random offset (seeded) or, with consecutive, back to back from the start. */
    const int32_t *calib_tokens;
    int64_t calib_n_tokens;
    int64_t nsamples;
    int64_t seqlen;
    uint64_t seed;
    bool consecutive;
    const char *calib_name;   /* recorded in the file's metadata */
    uint64_t calib_hash;      /* FNV-1a 64 of the calibration file's bytes, recorded too */
    const lb_imatrix *imatrix; /* importance for RTN, or NULL */
    const char *imatrix_name;  /* its path, in messages (its base name in the metadata) */
    lb_gptq_options gptq;
    /* NaN or Inf in a tensor stops the run before any work, naming the tensor and element;
     * with allow_nonfinite such values are replaced by 0 and counted instead. */
    bool allow_nonfinite;
    /* Called after each matrix (done of total), from the calling thread. May be NULL. */
    void (*on_tensor)(void *context, const lb_quantize_tensor_report *report, int64_t done,
                      int64_t total);
    void *context;
} lb_quantize_params;

typedef struct lb_quantize_summary {
    int64_t n_tensors;
    int64_t n_weights;       /* elements of all tensors */
    uint64_t tensor_bytes;   /* their bytes in the file */
    double seconds;
    double seconds_forward;  /* calibration forward passes and Hessians */
    double ref_total, loss_rtn_total, loss_gptq_total; /* summed over GPTQ matrices */
    int64_t n_nonfinite;     /* values replaced by 0 (allow_nonfinite) */
    /* With an imatrix: matrices rounded with its importance, matrices it has no entry for,
     * and its entries that name no tensor of the model (all recorded in the file). */
    int64_t imatrix_used, imatrix_missing, imatrix_unused;
    const char *imatrix_first_missing, *imatrix_first_unused; /* names, or NULL */
} lb_quantize_summary;

/* Defaults: GPTQ options as lb_gptq_default_options, 128 samples of 512 tokens, seed 1234,
 * random windows; mixture and method must still be set. */
LB_API lb_quantize_params lb_quantize_default_params(void);

/* Quantizes `checkpoint` into out_path (temp file + rename: nothing is left on failure).
 * An imatrix (RTN) must fit: LB_ERR_BAD_INPUT when none of its entries names a matrix that is
 * rounded, or a matching entry's width differs from the matrix's rows, before any work.
 * model: built over the checkpoint, used for calibration (GPTQ); its weights are replaced by
 * their quantized values as the blocks are done. May be NULL for RTN. The output does not
 * depend on the thread count. */
LB_API lb_status lb_quantize_model(const lb_checkpoint *checkpoint, lb_model *model,
                                   const char *out_path, const lb_quantize_params *params,
                                   lb_quantize_summary *summary);

/* The calibration windows, as lb_quantize_model draws them: nsamples x seqlen token ids, each
 * window BOS (when bos >= 0) then seqlen - 1 (or seqlen) consecutive text tokens from a random
 * offset (seeded) or back to back from the start. LB_ERR_BAD_INPUT when the text is too
 * short. */
LB_API lb_status lb_calibration_windows(const int32_t *tokens, int64_t n_tokens, int32_t bos,
                                        int64_t nsamples, int64_t seqlen, uint64_t seed,
                                        bool consecutive, int32_t *windows);

/* Runs the windows through the model as it is and adds Σ x² of every linear layer's input to
 * `imatrix`, one entry per weight as llama.cpp's llama-imatrix writes them (q, k and v each
 * their own), counting tokens; the output layer too with include_output. Sets chunk_count and
 * chunk_size. */
LB_API lb_status lb_imatrix_collect(lb_model *model, const int32_t *windows, int64_t nsamples,
                                    int64_t seqlen, bool include_output, lb_imatrix *imatrix);

#endif
