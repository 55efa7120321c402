/* batchnorm.c - batch normalization passes, float and double.
 * x is (N, C, I) C-contiguous, statistics per channel c over (n, i); parallel over channel blocks. */
#include <math.h>
#include <stddef.h>

#include "batchnorm.h"

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
