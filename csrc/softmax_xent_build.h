/* softmax_xent_build.h - the bodies of the softmax_xent family, built once per instruction set
 * by softmax_xent_base.c, softmax_xent_avx2.c and softmax_xent_avx512.c (NNF_ISA_TAG names the build).
 * row softmax and fused softmax + cross-entropy, float and double.
 * (rows, cols) C-contiguous, one sample per row; parallel over rows (outputs never overlap). */
#include <math.h>
#include <stddef.h>

#include "softmax_xent.h"
#include "isa_build.h"

static int nnf_labels_ok(const int64_t *labels, nnf_index rows, nnf_index cols)
{
    for (nnf_index r = 0; r < rows; ++r)
        if (labels[r] < 0 || labels[r] >= cols) return 0;
    return 1;
}

#define T float
#define SFX f32
#define LOG_T logf
#include "softmax_xent_impl.h"
#undef T
#undef SFX
#undef LOG_T

#define T double
#define SFX f64
#define LOG_T log
#include "softmax_xent_impl.h"
#undef T
#undef SFX
#undef LOG_T
