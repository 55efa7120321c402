/* eltwise.c - element-wise activations, derivatives and dropout passes, float and double.
 * Flat C-contiguous arrays of n elements; parallel over disjoint index ranges when n is large. */
#include "eltwise.h"

/* Element-wise passes are memory-bound: a parallel region (~25 us) only pays
 * off well above the generic threshold. */
#define NNF_ELTWISE_MIN_PARALLEL ((nnf_index)1 << 17)

#define T float
#define SFX f32
#include "eltwise_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "eltwise_impl.h"
#undef T
#undef SFX
