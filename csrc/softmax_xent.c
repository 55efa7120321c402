/* softmax_xent.c - row softmax and fused softmax + cross-entropy, float and double.
 * (rows, cols) C-contiguous, one sample per row; parallel over rows (outputs never overlap). */
#include <math.h>
#include <stddef.h>

#include "softmax_xent.h"

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
