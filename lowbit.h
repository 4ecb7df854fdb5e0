/* lowbit's public API: include this one header. */
#ifndef LOWBIT_H
#define LOWBIT_H

#include "common/alloc.h"
#include "common/cpu.h"
#include "common/hash.h"
#include "common/rng.h"
#include "common/status.h"
#include "common/tensor.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "formats/hparams.h"
#include "formats/imatrix_file.h"
#include "formats/vocab.h"
#include "kernels/kernels.h"
#include "linalg/linalg.h"
#include "model/eval.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "quant/imatrix.h"
#include "quant/mixture.h"
#include "quant/pipeline.h"
#include "quant/rotate.h"

#endif
