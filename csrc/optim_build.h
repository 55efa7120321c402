/* optim_build.h - the bodies of the optim family, built once per instruction set
 * by optim_base.c, optim_avx2.c and optim_avx512.c (NNF_ISA_TAG names the build).
 * SGD, Momentum, Nesterov, AdaGrad, RMSprop and Adam updates, float and double.
 * Flat C-contiguous arrays updated in place; parallel over disjoint index ranges when large. */
#include <math.h>

#include "optim.h"
#include "isa_build.h"

/* Memory-bound passes: stay serial below this many elements (a parallel region ~25 us). */
#define NNF_OPTIM_MIN_PARALLEL ((nnf_index)1 << 17)

#define T float
#define SFX f32
#define SQRT_T sqrtf
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT_T

#define T double
#define SFX f64
#define SQRT_T sqrt
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT_T
