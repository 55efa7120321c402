/* batchnorm_build.h - the bodies of the batchnorm family, built once per instruction set
 * by batchnorm_base.c, batchnorm_avx2.c and batchnorm_avx512.c (NNF_ISA_TAG names the build).
 * batch normalization passes, float and double.
 * x is (N, C, I) C-contiguous, statistics per channel c over (n, i); parallel over channel blocks. */
#include <math.h>
#include <stddef.h>

#include "batchnorm.h"
#include "isa_build.h"

#define T float
#define SFX f32
#define SQRT_T sqrtf
#include "batchnorm_impl.h"
#undef T
#undef SFX
#undef SQRT_T

#define T double
#define SFX f64
#define SQRT_T sqrt
#include "batchnorm_impl.h"
#undef T
#undef SFX
#undef SQRT_T
