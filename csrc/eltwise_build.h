/* eltwise_build.h - the bodies of the eltwise family, built once per instruction set
 * by eltwise_base.c, eltwise_avx2.c and eltwise_avx512.c (NNF_ISA_TAG names the build).
 * element-wise activations, derivatives and dropout passes, float and double.
 * Flat C-contiguous arrays of n elements; parallel over disjoint index ranges when n is large. */
#include "eltwise.h"
#include "isa_build.h"

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
